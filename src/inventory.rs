//! Operator operations on the inventory: virtual accounts, registration
//! tokens, product instances. Each runs inside the caller's transaction, so
//! the CLI and the REST API share them and a failure changes nothing.

mod reads;
pub use reads::*;

use crate::clock::rfc3339;
use crate::config::Role;
use crate::domain::{check_name, TokenSecret, TokenTerms, Udi};
use crate::error::{Error, Result};
use crate::licensing::catalog::Catalog;
use crate::licensing::pool::{self, Transition};
use crate::licensing::{rules, serving};
use crate::store::events::{NewEvent, Severity};
use crate::store::instances::Instance;
use crate::store::Db;
use crate::store::{accounts, certificates, events, instances, licenses, tokens, usage};
use serde::Serialize;

/// `token create --json`: the fields scripts rely on, then the terms.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    pub token: String,
    pub virtual_account: String,
    pub expires_at: String,
    pub description: String,
    pub max_uses: Option<u32>,
    pub export_controlled: bool,
}

pub fn create_virtual_account(
    c: &Db,
    account: &str,
    name: &str,
    description: &str,
    now: i64,
) -> Result<accounts::VirtualAccount> {
    check_name("virtual account name", name).map_err(|r| Error::invalid("name", r))?;
    let va = accounts::create_virtual_account(c, account, name, description, now)?;
    events::record(
        c,
        now,
        NewEvent {
            kind: "virtual_account",
            severity: Severity::Info,
            virtual_account: Some(name),
            subject: None,
            message: format!("virtual account {name:?} created"),
        },
    )?;
    Ok(va)
}

pub fn create_token(
    c: &Db,
    account: &str,
    virtual_account: &str,
    terms: &TokenTerms,
    now: i64,
) -> Result<CreatedToken> {
    terms.check().map_err(|r| Error::invalid("token", r))?;
    let va = accounts::require(c, account, virtual_account, now)?;
    serving::check_served_here(c, va.id, &va.name, "a registration token")?;
    let secret = TokenSecret::generate()?;
    tokens::insert(c, va.id, &secret, terms, now)?;
    let expires_at = now + i64::from(terms.days) * 86_400;
    events::record(
        c,
        now,
        NewEvent {
            kind: "token",
            severity: Severity::Info,
            virtual_account: Some(&va.name),
            subject: secret.prefix(),
            message: format!(
                "registration token {}… created, valid {} days{}",
                secret.prefix().unwrap_or(""),
                terms.days,
                terms
                    .max_uses
                    .map(|n| format!(", at most {n} uses"))
                    .unwrap_or_default()
            ),
        },
    )?;
    Ok(CreatedToken {
        token: secret.as_str().to_string(),
        virtual_account: va.name,
        expires_at: rfc3339(expires_at),
        description: terms.description.clone(),
        max_uses: terms.max_uses,
        export_controlled: terms.export_controlled,
    })
}

/// Revokes a token. Devices it already registered stay registered.
pub fn revoke_token(c: &Db, account: &str, token: &str, now: i64) -> Result<String> {
    let (prefix, va) = tokens::revoke(c, account, token, now)?;
    events::record(
        c,
        now,
        NewEvent {
            kind: "token",
            severity: Severity::Info,
            virtual_account: Some(&va),
            subject: Some(&prefix),
            message: format!(
                "registration token {prefix}… revoked; devices it registered stay registered"
            ),
        },
    )?;
    Ok(prefix)
}

/// Finds an instance by instance id, `PID:SN` or `PID:x,SN:y`.
pub fn find_instance(c: &Db, key: &str) -> Result<Instance> {
    let key = key.trim();
    let by_udi = parse_udi(key)
        .map(|udi| instances::find_by_udi(c, &udi.pid, &udi.sn))
        .transpose()?
        .flatten();
    if let Some(found) = by_udi {
        return Ok(found);
    }
    if let Some(found) = instances::find_by_instance_id(c, key)? {
        return Ok(found);
    }
    // On the cloud: an instance a satellite reported belongs to that satellite.
    if let Some((remote, _)) = find_remote(c, key)? {
        return Err(Error::Conflict(format!(
            "product instance {} came through satellite {:?}: change it there; the cloud follows at \
             that satellite's next sync (`satellite instance show` shows it here)",
            remote.instance_id, remote.satellite
        )));
    }
    Err(Error::NotFound(format!(
        "no product instance {key:?}; give its instance id or UDI (PID:SN), see `satellite instance list`"
    )))
}

/// A product instance a satellite reported to this cloud, with its demand.
pub fn find_remote(c: &Db, key: &str) -> Result<Option<crate::store::satellites::RemoteWithUsage>> {
    let key = key.trim();
    let udi = parse_udi(key);
    crate::store::satellites::find_remote(
        c,
        key,
        udi.as_ref().map(|u| (u.pid.as_str(), u.sn.as_str())),
    )
}

fn parse_udi(key: &str) -> Option<Udi> {
    if let Some(rest) = key.strip_prefix("PID:") {
        let (pid, sn) = rest.split_once(",SN:")?;
        return Some(Udi {
            pid: pid.into(),
            sn: sn.into(),
        });
    }
    let (pid, sn) = key.split_once(':')?;
    Some(Udi {
        pid: pid.into(),
        sn: sn.into(),
    })
}

/// Removes an instance: its certificates are revoked and its licenses released.
pub fn remove_instance(
    c: &Db,
    catalog: &Catalog,
    key: &str,
    now: i64,
) -> Result<(Instance, Vec<Transition>)> {
    let instance = find_instance(c, key)?;
    let transitions = release(c, catalog, &instance, "removed by an operator", now)?;
    Ok((instance, transitions))
}

/// Takes an instance out of the inventory (deregistration or removal):
/// its certificates are revoked, its usage rows go with it (the pool
/// triggers release the counts) and the pools it used are re-evaluated.
pub fn release(
    c: &Db,
    catalog: &Catalog,
    instance: &Instance,
    why: &str,
    now: i64,
) -> Result<Vec<Transition>> {
    let tags = tags_of(c, instance)?;
    certificates::revoke_for_instance(c, instance.id, now, why)?;
    instances::delete(c, instance.id)?;
    let udi = instance.udi().to_string();
    events::record(
        c,
        now,
        NewEvent {
            kind: "deregistration",
            severity: Severity::Info,
            virtual_account: Some(&instance.virtual_account),
            subject: Some(&udi),
            message: format!("product instance {udi} {why}; its licenses were released"),
        },
    )?;
    pool::evaluate(
        c,
        catalog,
        instance.virtual_account_id,
        &instance.virtual_account,
        &tags,
        now,
    )
}

/// Moves an instance and its demand to another virtual account and
/// re-evaluates the pools on both sides (the usage triggers move the counts).
pub fn move_usage(
    c: &Db,
    catalog: &Catalog,
    instance: &Instance,
    to_id: i64,
    to_name: &str,
    now: i64,
) -> Result<Vec<Transition>> {
    let tags = tags_of(c, instance)?;
    instances::move_to(c, instance.id, to_id)?;
    let mut transitions = pool::evaluate(
        c,
        catalog,
        instance.virtual_account_id,
        &instance.virtual_account,
        &tags,
        now,
    )?;
    transitions.extend(pool::evaluate(c, catalog, to_id, to_name, &tags, now)?);
    Ok(transitions)
}

fn tags_of(c: &Db, instance: &Instance) -> Result<Vec<String>> {
    Ok(usage::of_instance(c, instance.id)?
        .into_iter()
        .map(|(tag, _, _)| tag)
        .collect())
}

/// Moves an instance (and its demand) to another virtual account of the account.
pub fn move_instance(
    c: &Db,
    catalog: &Catalog,
    account: &str,
    key: &str,
    to: &str,
    now: i64,
) -> Result<(Instance, Vec<Transition>)> {
    let instance = find_instance(c, key)?;
    let target = accounts::require(c, account, to, now)?;
    if target.id == instance.virtual_account_id {
        return Err(Error::Conflict(format!(
            "the instance is already in {to:?}"
        )));
    }
    serving::check_served_here(
        c,
        target.id,
        &target.name,
        "moving a product instance into it",
    )?;
    let transitions = move_usage(c, catalog, &instance, target.id, &target.name, now)?;
    let udi = instance.udi().to_string();
    events::record(
        c,
        now,
        NewEvent {
            kind: "instance_move",
            severity: Severity::Info,
            virtual_account: Some(&target.name),
            subject: Some(&udi),
            message: format!(
                "product instance {udi} moved from {:?} to {:?}",
                instance.virtual_account, target.name
            ),
        },
    )?;
    let moved = instances::find_by_row_id(c, instance.id)?
        .ok_or_else(|| Error::NotFound("the instance vanished during the move".into()))?;
    Ok((moved, transitions))
}

/// The most licenses one `license add` may add.
pub const MAX_LICENSE_QUANTITY: i64 = 1_000_000;

/// What `license add` asks for.
pub struct LicenseOrder<'a> {
    pub virtual_account: &'a str,
    pub sku: &'a str,
    pub quantity: i64,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// Adds purchased licenses to a virtual account. That is the cloud's job: a
/// satellite gets its licenses by sync.
pub fn add_license(
    c: &Db,
    catalog: &Catalog,
    role: Role,
    account: &str,
    order: &LicenseOrder<'_>,
    now: i64,
) -> Result<(i64, Vec<Transition>)> {
    if role != Role::Cloud {
        return Err(Error::WrongRole(
            "a satellite's licenses come from its cloud: add them there with `satellite license add` \
             and bring them here by sync (connected mode, or an entitlement bundle through `satellite import`)"
                .into(),
        ));
    }
    if order.quantity <= 0 {
        return Err(Error::invalid("quantity", "must be at least 1"));
    }
    // Far above any real purchase, far below where pool sums could overflow.
    if order.quantity > MAX_LICENSE_QUANTITY {
        return Err(Error::invalid(
            "quantity",
            format!("must be at most {MAX_LICENSE_QUANTITY} per license add"),
        ));
    }
    let sku = catalog.sku(order.sku).ok_or_else(|| {
        Error::invalid(
            "sku",
            format!(
                "{} is not in the catalog (known: {})",
                order.sku,
                catalog
                    .skus()
                    .map(|s| s.sku.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let va = accounts::require(c, account, order.virtual_account, now)?;
    let start = order.start.unwrap_or(now);
    let end = rules::term_end(start, sku.term_years, order.end);
    if let (Some(years), None) = (sku.term_years, end) {
        return Err(Error::invalid(
            "start",
            format!("a {years}-year term from this start would end past the year 9999; give an earlier --start or an explicit --end"),
        ));
    }
    if end.is_some_and(|end| end <= start) {
        return Err(Error::invalid("end", "the end must be after the start"));
    }
    let id = licenses::insert(
        c,
        &licenses::NewLicense {
            virtual_account_id: va.id,
            sku: &sku.sku,
            tag: &sku.tag,
            quantity: order.quantity,
            start_at: start,
            end_at: end,
        },
        now,
    )?;
    let term = match end {
        Some(end) => format!("term {} to {}", rfc3339(start), rfc3339(end)),
        None => "perpetual".into(),
    };
    events::record(
        c,
        now,
        NewEvent {
            kind: "license",
            severity: Severity::Info,
            virtual_account: Some(&va.name),
            subject: Some(&sku.sku),
            message: format!(
                "{} x {} added ({term}), fills {}",
                order.quantity, sku.sku, sku.tag
            ),
        },
    )?;
    let transitions = pool::evaluate(
        c,
        catalog,
        va.id,
        &va.name,
        std::slice::from_ref(&sku.tag),
        now,
    )?;
    Ok((id, transitions))
}

/// What `license transfer` asks for.
pub struct Transfer<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub sku: &'a str,
    pub quantity: i64,
}

/// Moves licenses between virtual accounts of one account. Leaving the
/// source short is allowed, and reported (event and warning report).
pub fn transfer_license(
    c: &Db,
    catalog: &Catalog,
    account: &str,
    transfer: &Transfer<'_>,
    now: i64,
) -> Result<Vec<Transition>> {
    let Transfer {
        from,
        to,
        sku,
        quantity,
    } = *transfer;
    if quantity <= 0 {
        return Err(Error::invalid("quantity", "must be at least 1"));
    }
    if quantity > MAX_LICENSE_QUANTITY {
        return Err(Error::invalid(
            "quantity",
            format!("{quantity} is more than one transfer moves ({MAX_LICENSE_QUANTITY})"),
        ));
    }
    let source = accounts::require(c, account, from, now)?;
    let target = accounts::require(c, account, to, now)?;
    if source.id == target.id {
        return Err(Error::invalid(
            "to",
            "source and target are the same virtual account",
        ));
    }
    let tag = licenses::transfer(c, source.id, target.id, sku, quantity, now)?;
    let tags = std::slice::from_ref(&tag);
    let mut transitions = pool::evaluate(c, catalog, source.id, &source.name, tags, now)?;
    transitions.extend(pool::evaluate(
        c,
        catalog,
        target.id,
        &target.name,
        tags,
        now,
    )?);
    let left = pool::state(c, catalog, source.id, &tag, now)?;
    let short = left.status == rules::PoolStatus::OutOfCompliance;
    // A pool that was short already changes no state, but is shorter now:
    // that is a compliance event too.
    if short && !transitions.iter().any(|t| t.virtual_account == source.name) {
        pool::warn(c, catalog, source.id, &source.name, now)?;
    }
    let mut message = format!("{quantity} x {sku} transferred from {from:?} to {to:?}");
    if short {
        message.push_str(&format!(
            "; {from:?} is now short of {tag}: {} in use, {} available",
            left.in_use, left.available
        ));
    }
    events::record(
        c,
        now,
        NewEvent {
            kind: "license_transfer",
            severity: if short {
                Severity::Minor
            } else {
                Severity::Info
            },
            virtual_account: Some(&source.name),
            subject: Some(sku),
            message,
        },
    )?;
    Ok(transitions)
}
