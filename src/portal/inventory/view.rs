//! Reading what a tab shows (on a blocking thread) and rendering it.

use super::pages::*;
use super::query::*;
use crate::ops::events::EventQuery;
use crate::ops::instances::InstanceFilter;
use crate::ops::Service;
use crate::ops::{self, OpsError, Page};
use crate::portal::error::{status_of, PortalError};
use crate::portal::layout::{self, Notice, Section};
use crate::portal::session::Operator;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::html;

pub(super) struct Loaded {
    virtual_accounts: Vec<String>,
    /// The virtual account shown (none when the operator reaches none).
    current: Option<String>,
    content: Option<Content>,
}

pub(super) async fn load(
    service: &Service,
    operator: &Operator,
    tab: Tab,
    view: &View,
) -> Result<Loaded, PortalError> {
    let caller = operator.caller.clone();
    let account = service.config().account.clone();
    let catalog = service.catalog();
    let now = service.now();
    let view = view.clone();
    let loaded = service
        .read(move |c| {
            let virtual_accounts: Vec<String> = ops::accounts::list(c, &caller, &account, now)?
                .into_iter()
                .map(|va| va.name)
                .collect();
            let current = match View::nonempty(&view.va) {
                Some(va) => Some(va.to_string()),
                None => virtual_accounts
                    .iter()
                    .find(|v| v.as_str() == crate::domain::DEFAULT_VIRTUAL_ACCOUNT)
                    .or(virtual_accounts.first())
                    .cloned(),
            };
            let Some(va) = current.clone() else {
                return Ok(Loaded {
                    virtual_accounts,
                    current,
                    content: None,
                });
            };
            let page = Page {
                limit: PAGE_ROWS,
                offset: view.offset.unwrap_or(0),
            };
            let content = match tab {
                Tab::General => Content::General(ops::tokens::list(
                    c,
                    &caller,
                    &account,
                    Some(&va),
                    Page::ALL,
                    now,
                )?),
                Tab::Licenses => {
                    let days = view.days.unwrap_or(DEFAULT_HISTORY_DAYS).clamp(1, 450);
                    Content::Licenses {
                        pools: ops::licenses::summary(
                            c,
                            &catalog,
                            &caller,
                            &account,
                            std::slice::from_ref(&va),
                            Page::ALL,
                            now,
                        )?,
                        licenses: ops::licenses::list(
                            c,
                            &caller,
                            &account,
                            Some(&va),
                            Page::ALL,
                            now,
                        )?,
                        history: ops::accounts::usage_history(
                            c,
                            &catalog,
                            &caller,
                            &account,
                            Some(&va),
                            days,
                            now,
                        )?,
                        days,
                        skus: catalog
                            .skus()
                            .map(|s| (s.sku.clone(), format!("{} ({})", s.sku, s.tag)))
                            .collect(),
                    }
                }
                Tab::Instances => Content::Instances({
                    if let Some(status) = View::nonempty(&view.status) {
                        crate::portal::layout::check_status(status)?;
                    }
                    ops::instances::list(
                        c,
                        &caller,
                        &account,
                        &InstanceFilter {
                            virtual_account: Some(va.clone()),
                            status: View::nonempty(&view.status).map(str::to_string),
                            search: View::nonempty(&view.q).map(str::to_string),
                        },
                        page,
                        now,
                    )?
                }),
                Tab::Events => {
                    let since = View::nonempty(&view.from)
                        .map(|d| day_start("from", d))
                        .transpose()?;
                    let until = View::nonempty(&view.to)
                        .map(|d| day_start("to", d).map(|t| t + 86_400))
                        .transpose()?;
                    Content::Events(ops::events::list(
                        c,
                        &caller,
                        &EventQuery {
                            kind: View::nonempty(&view.kind),
                            severity: None,
                            since,
                            until,
                            virtual_account: Some(&va),
                        },
                        page,
                    )?)
                }
            };
            Ok(Loaded {
                virtual_accounts,
                current,
                content: Some(content),
            })
        })
        .await?;
    Ok(loaded)
}

/// Renders a tab, with the notice of the form that led here (if any).
pub(super) async fn render(
    service: &Service,
    operator: &Operator,
    tab: Tab,
    view: View,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let notice = notice.or_else(|| operator.take_notice());
    let (loaded, view, notice, status) = match load(service, operator, tab, &view).await {
        Ok(loaded) => (loaded, view, notice, status),
        // A bad filter, or a virtual account out of reach: the same tab
        // without the filters, else of the operator's first virtual
        // account, saying why.
        Err(PortalError::Ops(e)) if !matches!(e, OpsError::Unauthenticated(_)) => {
            crate::portal::error::log(&e);
            let unfiltered = View {
                va: view.va.clone(),
                ..View::default()
            };
            let (loaded, shown) = match load(service, operator, tab, &unfiltered).await {
                Ok(loaded) => (loaded, unfiltered),
                Err(_) => (
                    load(service, operator, tab, &View::default()).await?,
                    View::default(),
                ),
            };
            (
                loaded,
                shown,
                Some(Notice::error(e.to_string())),
                status_of(&e),
            )
        }
        Err(e) => return Err(e),
    };
    let body = match (&loaded.current, &loaded.content) {
        (None, _) => {
            html! { p { "Your account reaches no virtual account. Ask an administrator to give you one." } }
        }
        (Some(va), Some(content)) => {
            let cloud = service.config().role == crate::config::Role::Cloud;
            tab_content(
                operator,
                va,
                &loaded.virtual_accounts,
                &view,
                content,
                cloud,
            )
        }
        (Some(_), None) => html! {},
    };
    let content = html! {
        (selector(tab, &loaded.virtual_accounts, loaded.current.as_deref()))
        @if operator.is_admin() { (new_virtual_account(operator, tab)) }
        @if let Some(va) = &loaded.current { (tabs(tab, va)) }
        section.tab aria-label=(tab.label()) { (body) }
    };
    Ok(layout::html(
        status,
        layout::page(
            operator,
            Section::Inventory,
            "Inventory",
            notice.as_ref(),
            content,
        ),
    ))
}
