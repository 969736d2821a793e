//! The inventory's forms: each runs one operation as the signed-in
//! operator and shows the tab it changed.

use super::pages::*;
use super::query::*;
use super::view::render;
use crate::domain::token::DEFAULT_DAYS;
use crate::domain::TokenTerms;
use crate::ops::Service;
use crate::ops::{self, OpsError};
use crate::portal::error::{confirmed, refused, PortalError};
use crate::portal::layout::{number, when, Notice};
use crate::portal::session::Operator;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

/// Shows a tab after a form: its notice, and the refusal's status if refused.
pub(super) async fn after(
    service: &Service,
    operator: &Operator,
    tab: Tab,
    va: &str,
    outcome: Result<Notice, PortalError>,
) -> Result<HttpResponse, PortalError> {
    match outcome {
        Ok(notice) => Ok(operator.redirect(&tab_link(tab, va), notice)),
        // A refused form shows its page again, saying why (a reload only
        // asks again for what was refused).
        Err(PortalError::Ops(e)) => {
            let (notice, status) = refused(e)?;
            render(
                service,
                operator,
                tab,
                View::of_va(va),
                Some(notice),
                status,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct NewToken {
    #[serde(default)]
    csrf: String,
    va: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    max_uses: String,
    #[serde(default)]
    export_controlled: Option<String>,
}

pub(super) async fn create_token(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<NewToken>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let va = form.va.clone();
    let outcome = async {
        let terms = TokenTerms {
            days: number("days", &form.days)?.unwrap_or(DEFAULT_DAYS),
            max_uses: number("max_uses", &form.max_uses)?,
            description: form.description.trim().to_string(),
            export_controlled: form.export_controlled.is_some(),
        };
        terms
            .check()
            .map_err(|reason| crate::error::Error::invalid("token", reason))?;
        let (caller, account, now) = (operator.caller.clone(), service.config().account.clone(), service.now());
        let va = form.va.clone();
        let created = service
            .change(caller, move |c, caller| ops::tokens::create(c, caller, &account, &va, &terms, now))
            .await?;
        tracing::info!(who = %operator.caller.name, virtual_account = %created.virtual_account, "registration token created in the portal");
        Ok(Notice {
            ok: true,
            text: format!(
                "New registration token for {}, valid until {}. Copy it now: it is not shown again.",
                created.virtual_account,
                when(&created.expires_at)
            ),
            secret: Some(created.token),
            link: None,
        })
    }
    .await;
    after(&service, &operator, Tab::General, &va, outcome).await
}

#[derive(Debug, Deserialize)]
pub struct RevokeToken {
    #[serde(default)]
    csrf: String,
    va: String,
    token: String,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn revoke_token(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<RevokeToken>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    if let Err(refused) = confirmed(
        &form.confirm,
        "the token registers no more routers (those it registered stay)",
    ) {
        return after(&service, &operator, Tab::General, &form.va, Err(refused)).await;
    }
    let (caller, account, now) = (
        operator.caller.clone(),
        service.config().account.clone(),
        service.now(),
    );
    let (va, token) = (form.va.clone(), form.token.clone());
    let outcome = service
        .change(caller, move |c, caller| {
            ops::tokens::revoke(c, caller, &account, Some(&va), &token, now)
        })
        .await
        .map(|revoked| {
            Notice::ok(format!(
                "Token {revoked}… revoked. Devices already registered with it stay registered."
            ))
        })
        .map_err(PortalError::from);
    after(&service, &operator, Tab::General, &form.va, outcome).await
}

#[derive(Debug, Deserialize)]
pub struct InstanceAction {
    #[serde(default)]
    csrf: String,
    va: String,
    instance: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn remove_instance(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<InstanceAction>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    if let Err(refused) = confirmed(
        &form.confirm,
        "the instance's certificate is revoked and its licenses released",
    ) {
        return after(&service, &operator, Tab::Instances, &form.va, Err(refused)).await;
    }
    let (caller, catalog, now) = (operator.caller.clone(), service.catalog(), service.now());
    let key = form.instance.clone();
    let outcome = service
        .change_pools(caller, move |c, caller| {
            ops::instances::remove(c, &catalog, caller, &key, now)
        })
        .await;
    let outcome = match outcome {
        Ok((removed, _)) => Ok(Notice::ok(format!(
            "Product instance {} removed; its licenses are released.",
            removed.udi
        ))),
        Err(e) => Err(e.into()),
    };
    after(&service, &operator, Tab::Instances, &form.va, outcome).await
}

pub(super) async fn move_instance(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<InstanceAction>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let to = form.to.clone().unwrap_or_default();
    let (caller, catalog, account, now) = (
        operator.caller.clone(),
        service.catalog(),
        service.config().account.clone(),
        service.now(),
    );
    let key = form.instance.clone();
    let outcome = service
        .change_pools(caller, move |c, caller| {
            ops::instances::move_to(c, &catalog, caller, &account, &key, &to, now)
        })
        .await;
    let outcome = match outcome {
        Ok((moved, _)) => Ok(Notice::ok(format!(
            "Product instance {} moved to {} with its license usage.",
            moved.udi, moved.virtual_account
        ))),
        Err(e) => Err(e.into()),
    };
    after(&service, &operator, Tab::Instances, &form.va, outcome).await
}

#[derive(Debug, Deserialize)]
pub(super) struct TransferForm {
    #[serde(default)]
    csrf: String,
    va: String,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    to: String,
    /// Ticked: a transfer that leaves the source short goes ahead.
    #[serde(default)]
    short_ok: String,
}

pub(super) async fn transfer_licenses(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<TransferForm>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let outcome = async {
        let quantity = number("quantity", &form.quantity)?.ok_or_else(|| {
            crate::error::Error::invalid("quantity", "give how many licenses to transfer")
        })?;
        let (caller, catalog, account, role, now) = (
            operator.caller.clone(),
            service.catalog(),
            service.config().account.clone(),
            service.config().role,
            service.now(),
        );
        let (from, to, sku) = (form.va.clone(), form.to.clone(), form.sku.clone());
        let short_ok = form.short_ok == "yes";
        let ((), transitions) = service
            .change_pools(caller, move |c, caller| {
                let transfer = crate::inventory::Transfer {
                    from: &from,
                    to: &to,
                    sku: &sku,
                    quantity: i64::from(quantity),
                };
                let transitions =
                    ops::licenses::transfer(c, &catalog, caller, role, &account, &transfer, now)?;
                // Checked on the result, in the transaction: refused, it
                // is rolled back whole.
                let short: Vec<String> = transitions
                    .iter()
                    .filter(|t| t.virtual_account == from && t.shortfall() > 0)
                    .map(|t| format!("{} by {}", t.tag, t.shortfall()))
                    .collect();
                if !short.is_empty() && !short_ok {
                    return Err(crate::error::Error::Conflict(format!(
                        "Nothing was transferred: it would leave {from} short of {} and its \
                         routers out of compliance. Tick the box to transfer anyway.",
                        short.join(", ")
                    ))
                    .into());
                }
                Ok(((), transitions))
            })
            .await?;
        let short: Vec<String> = transitions
            .iter()
            .filter(|t| t.shortfall() > 0)
            .map(|t| {
                format!(
                    "{} is now short of {} by {}",
                    t.virtual_account,
                    t.tag,
                    t.shortfall()
                )
            })
            .collect();
        Ok(Notice::ok(format!(
            "{quantity} × {} transferred from {} to {}.{}",
            form.sku,
            form.va,
            form.to,
            if short.is_empty() {
                String::new()
            } else {
                format!(" {}.", short.join("; "))
            }
        )))
    }
    .await;
    after(&service, &operator, Tab::Licenses, &form.va, outcome).await
}

#[derive(Debug, Deserialize)]
pub(super) struct NewLicenses {
    #[serde(default)]
    csrf: String,
    va: String,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
}

/// At the cloud: licenses bought, as `satellite license add` adds them.
pub(super) async fn add_licenses(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<NewLicenses>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let outcome = async {
        let quantity = number("quantity", &form.quantity)?.ok_or_else(|| {
            crate::error::Error::invalid("quantity", "give how many licenses were bought")
        })?;
        let day = |field: &str, text: &str| -> Result<Option<i64>, OpsError> {
            match text.trim() {
                "" => Ok(None),
                text => day_start(field, text).map(Some),
            }
        };
        let (start, end) = (day("start", &form.start)?, day("end", &form.end)?);
        let (caller, catalog, account, role, now) = (
            operator.caller.clone(),
            service.catalog(),
            service.config().account.clone(),
            service.config().role,
            service.now(),
        );
        let (va, sku) = (form.va.clone(), form.sku.clone());
        service
            .change_pools(caller, move |c, caller| {
                let order = crate::inventory::LicenseOrder {
                    virtual_account: &va,
                    sku: &sku,
                    quantity: i64::from(quantity),
                    start,
                    end,
                };
                ops::licenses::add(c, &catalog, caller, role, &account, &order, now)
            })
            .await?;
        Ok(Notice::ok(format!(
            "{quantity} × {} added to {}.",
            form.sku, form.va
        )))
    }
    .await;
    after(&service, &operator, Tab::Licenses, &form.va, outcome).await
}

#[derive(Debug, Deserialize)]
pub(super) struct NewVirtualAccount {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

pub(super) async fn create_virtual_account(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<NewVirtualAccount>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let (caller, account, now) = (
        operator.caller.clone(),
        service.config().account.clone(),
        service.now(),
    );
    let (name, description) = (
        form.name.trim().to_string(),
        form.description.trim().to_string(),
    );
    let outcome = service
        .change(caller, move |c, caller| {
            ops::accounts::create(c, caller, &account, &name, &description, now)
        })
        .await
        .map(|va| Notice::ok(format!("Virtual account {} created.", va.name)))
        .map_err(PortalError::from);
    let shown = match &outcome {
        Ok(_) => form.name.trim().to_string(),
        Err(_) => String::new(),
    };
    after(&service, &operator, Tab::General, &shown, outcome).await
}
