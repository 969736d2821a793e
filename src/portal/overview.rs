//! The landing page: every virtual account the operator may see, with its
//! pools' compliance, its product instances by status and its open alerts,
//! each a link to its detail; the satellite's sync state; and a search for
//! product instances across all of them.

use super::error::PortalError;
use super::layout::{self, select, status_words, when, Section};
use super::session::Operator;
use crate::ops::instances::InstanceFilter;
use crate::ops::{self, Action, Page, Service};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

/// Instances a search shows at most.
const SEARCH_ROWS: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
}

fn link(va: &str, tab: &str) -> String {
    let query = serde_urlencoded::to_string([("va", va)]).unwrap_or_default();
    format!("/portal/inventory{tab}?{query}")
}

pub async fn page(
    service: web::Data<Service>,
    operator: Operator,
    search: web::Query<Search>,
) -> Result<HttpResponse, PortalError> {
    let search = search.into_inner();
    let (caller, catalog, config, now) = (
        operator.caller.clone(),
        service.catalog(),
        service.config().clone(),
        service.now(),
    );
    let status_filter = Some(search.status.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if let Some(status) = &status_filter {
        layout::check_status(status)?;
    }
    let query = Some(search.q.trim())
        .filter(|q| !q.is_empty())
        .map(str::to_string);
    let searching = query.is_some() || status_filter.is_some();
    let is_satellite = config.role == crate::config::Role::Satellite;
    let (vas, found, sync) = service
        .read(move |c| {
            let vas = ops::accounts::overview(c, &catalog, &caller, &config.account, now)?;
            let found = if searching {
                let filter = InstanceFilter {
                    virtual_account: None,
                    status: status_filter,
                    search: query,
                };
                let page = Page::new(Some(i64::from(SEARCH_ROWS)), None)?;
                Some(ops::instances::list(
                    c,
                    &caller,
                    &config.account,
                    &filter,
                    page,
                    now,
                )?)
            } else {
                None
            };
            // Sync is an administrator's business, as in the API.
            let sync = (is_satellite && caller.authorize(Action::Administer, None).is_ok())
                .then(|| ops::sync::status(c, &caller, &config, true, now))
                .transpose()?;
            Ok::<_, ops::OpsError>((vas, found, sync))
        })
        .await?;
    let statuses = layout::status_choices("any status");
    let content = html! {
        @if let Some(sync) = &sync {
            p #sync-state {
                "Synchronization: " (sync.mode) " mode"
                @if let Some(last) = &sync.last_success { "; last exchange with the cloud " (when(last)) }
                @match sync.days_since_acknowledged {
                    Some(days) => { "; usage acknowledged " (days) " days ago" }
                    None => { "; not registered with a cloud yet" }
                }
                " · " a href="/portal/sync" { "Synchronization" }
            }
        }
        form.filters #overview-search method="get" action="/portal/overview" {
            label for="q" { "Find a product instance" }
            input #q type="search" name="q" value=(search.q) placeholder="UDI, hostname or instance id";
            label for="status" { "Status" }
            (select("status", "status", &statuses, &search.status))
            button type="submit" { "Search" }
        }
        @if let Some(found) = &found {
            (results(found))
        }
        h2 { "Virtual accounts" }
        @if vas.is_empty() {
            p.empty { "You reach no virtual account." }
        } @else {
            table #overview {
                thead { tr {
                    th scope="col" { "Virtual Account" }
                    @if !is_satellite { th scope="col" { "Served by" } }
                    th scope="col" { "Compliance" }
                    th scope="col" { "Product Instances" }
                    th scope="col" { "Alerts" }
                } }
                tbody {
                    @for va in &vas {
                        tr class=[(!va.short.is_empty()).then_some("short")] {
                            th scope="row" { a href=(link(&va.name, "")) { (va.name) } }
                            @if !is_satellite {
                                td { (va.served_by.as_deref().unwrap_or("this cloud")) }
                            }
                            td {
                                @if va.pools == 0 {
                                    span.empty { "no licenses or usage" }
                                } @else if va.short.is_empty() {
                                    a href=(link(&va.name, "/licenses")) {
                                        span.status.in { "In Compliance" } " (" (va.pools) " pools)"
                                    }
                                } @else {
                                    a href=(link(&va.name, "/licenses")) {
                                        span.status.out { "Out of Compliance" }
                                    }
                                    ": "
                                    @for (i, (tag, short)) in va.short.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        (tag) " short " (short)
                                    }
                                }
                            }
                            td {
                                @if va.instances.is_empty() {
                                    span.empty { "none" }
                                } @else {
                                    @for (i, (status, count)) in va.instances.iter().enumerate() {
                                        @if i > 0 { " · " }
                                        a href=(format!("{}&status={status}", link(&va.name, "/instances"))) {
                                            span class=(format!("status {}", status.to_lowercase())) { (status_words(status)) } " " (count)
                                        }
                                    }
                                }
                            }
                            td {
                                @if va.alerts == 0 { span.empty { "none" } }
                                @else { a href="/portal/alerts" { (va.alerts) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::html(
        StatusCode::OK,
        layout::page(&operator, Section::Overview, "Overview", None, content),
    ))
}

fn results(found: &[crate::ops::views::InstanceView]) -> Markup {
    html! {
        h2 { "Product instances found" }
        @if found.is_empty() {
            p.empty { "No product instance matches." }
        } @else {
            table #found {
                thead { tr {
                    th scope="col" { "UDI" } th scope="col" { "Hostname" }
                    th scope="col" { "Virtual Account" } th scope="col" { "Status" }
                    th scope="col" { "Last Contact" }
                } }
                tbody {
                    @for i in found {
                        tr {
                            th scope="row" { code { (i.udi) } }
                            td { (i.hostname.as_deref().unwrap_or("—")) }
                            td { a href=(link(&i.virtual_account, "/instances")) { (i.virtual_account) } }
                            td { span class=(format!("status {}", i.status.to_lowercase())) { (status_words(&i.status)) } }
                            td { (when(&i.last_contact_at)) }
                        }
                    }
                }
            }
            @if found.len() as u32 >= SEARCH_ROWS {
                p.empty { "The first " (SEARCH_ROWS) " are shown: narrow the search." }
            }
        }
    }
}
