//! Inventory: a virtual-account selector and the tabs of Cisco's manager —
//! General (registration tokens), Licenses (pools, terms and usage trends),
//! Product Instances, Event Log. Reads and changes go through the
//! operations layer with the operator's identity, as the API's do.

use super::chart::{self, Point};
use super::error::{status_of, PortalError};
use super::layout::{self, csrf, select, when, Notice, Section};
use super::session::Operator;
use crate::domain::token::{DEFAULT_DAYS, MAX_DAYS, MIN_DAYS};
use crate::domain::TokenTerms;
use crate::licensing::rules::PoolStatus;
use crate::ops::events::EventQuery;
use crate::ops::instances::InstanceFilter;
use crate::ops::Service;
use crate::ops::{self, OpsError, Page};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Rows on one page of instances or events.
const PAGE_ROWS: u32 = 50;
/// Days of usage history the charts show unless asked otherwise.
const DEFAULT_HISTORY_DAYS: u32 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    General,
    Licenses,
    Instances,
    Events,
}

impl Tab {
    fn path(self) -> &'static str {
        match self {
            Self::General => "/portal/inventory",
            Self::Licenses => "/portal/inventory/licenses",
            Self::Instances => "/portal/inventory/instances",
            Self::Events => "/portal/inventory/events",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::General => "General",
            Self::Licenses => "Licenses",
            Self::Instances => "Product Instances",
            Self::Events => "Event Log",
        }
    }
}

/// Everything a tab may be asked for in its query string.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct View {
    pub va: Option<String>,
    /// Instances: part of a UDI, hostname or instance id.
    pub q: Option<String>,
    /// Instances: a status word.
    pub status: Option<String>,
    /// Events: a kind.
    pub kind: Option<String>,
    /// Events: `YYYY-MM-DD`, from the start of that day.
    pub from: Option<String>,
    /// Events: `YYYY-MM-DD`, to the end of that day.
    pub to: Option<String>,
    pub offset: Option<u32>,
    /// Licenses: days of history in the charts.
    pub days: Option<u32>,
}

impl View {
    fn of_va(va: &str) -> Self {
        Self {
            va: Some(va.to_string()),
            ..Self::default()
        }
    }

    fn nonempty(value: &Option<String>) -> Option<&str> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
}

/// A date field as a Unix time at the start of that day (UTC).
fn day_start(field: &str, text: &str) -> Result<i64, OpsError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| {
            crate::error::Error::invalid(field, format!("{text:?} is not a date (YYYY-MM-DD)"))
                .into()
        })
}

/// What a tab shows, read in one go on a blocking thread.
enum Content {
    General(Vec<crate::ops::views::TokenInfo>),
    Licenses {
        pools: Vec<ops::licenses::LicenseSummary>,
        licenses: Vec<crate::ops::views::License>,
        history: Vec<crate::licensing::reports::UsageDay>,
        days: u32,
    },
    Instances(Vec<crate::ops::views::InstanceView>),
    Events(Vec<crate::ops::views::AuditedEvent>),
}

struct Loaded {
    virtual_accounts: Vec<String>,
    /// The virtual account shown (none when the operator reaches none).
    current: Option<String>,
    content: Option<Content>,
}

async fn load(
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
                    }
                }
                Tab::Instances => Content::Instances({
                    if let Some(status) = View::nonempty(&view.status) {
                        if !STATUSES.contains(&status) {
                            return Err(crate::error::Error::invalid(
                                "status",
                                format!(
                                    "{status:?} is not a status; use one of {}",
                                    STATUSES.join(", ")
                                ),
                            )
                            .into());
                        }
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
async fn render(
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
            super::error::log(&e);
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

fn selector(tab: Tab, virtual_accounts: &[String], current: Option<&str>) -> Markup {
    let options: Vec<(String, String)> = virtual_accounts
        .iter()
        .map(|v| (v.clone(), v.clone()))
        .collect();
    html! {
        form.selector #va-selector method="get" action=(tab.path()) {
            label for="va" { "Virtual Account" }
            (select("va", "va", &options, current.unwrap_or_default()))
            button type="submit" { "Show" }
        }
    }
}

fn new_virtual_account(operator: &Operator, tab: Tab) -> Markup {
    html! {
        details.new-va {
            summary { "New Virtual Account" }
            form.filters method="post" action="/portal/inventory/virtual-accounts" {
                (csrf(operator))
                input type="hidden" name="tab" value=(tab.label());
                label for="new-va-name" { "Name" }
                input #new-va-name type="text" name="name" maxlength="64" required;
                label for="new-va-description" { "Description" }
                input #new-va-description type="text" name="description" maxlength="200";
                button type="submit" { "Create" }
            }
        }
    }
}

/// At the cloud: licenses move between virtual accounts of the account.
fn transfer_form(
    operator: &Operator,
    va: &str,
    vas: &[String],
    licenses: &[crate::ops::views::License],
) -> Markup {
    let targets: Vec<(String, String)> = vas
        .iter()
        .filter(|v| v.as_str() != va && operator.can_operate(v))
        .map(|v| (v.clone(), v.clone()))
        .collect();
    let mut skus: Vec<(String, String)> = licenses
        .iter()
        .filter(|l| l.active)
        .map(|l| (l.sku.clone(), l.sku.clone()))
        .collect();
    skus.sort();
    skus.dedup();
    if !operator.can_operate(va) || targets.is_empty() || skus.is_empty() {
        return html! {};
    }
    html! {
        details.transfer {
            summary { "Transfer Licenses" }
            form.filters method="post" action="/portal/inventory/licenses/transfer" {
                (csrf(operator))
                input type="hidden" name="va" value=(va);
                label for="transfer-sku" { "SKU" }
                (select("sku", "transfer-sku", &skus, ""))
                label for="transfer-quantity" { "Quantity" }
                input #transfer-quantity type="number" name="quantity" min="1" value="1" required;
                label for="transfer-to" { "To" }
                (select("to", "transfer-to", &targets, ""))
                button type="submit" { "Transfer" }
            }
        }
    }
}

fn tab_link(tab: Tab, va: &str) -> String {
    format!("{}?va={}", tab.path(), url(va))
}

fn url(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

fn tabs(current: Tab, va: &str) -> Markup {
    html! {
        nav.tabs aria-label="Inventory tabs" {
            ul {
                @for tab in [Tab::General, Tab::Licenses, Tab::Instances, Tab::Events] {
                    li { a href=(tab_link(tab, va)) aria-current=[(tab == current).then_some("page")] { (tab.label()) } }
                }
            }
        }
    }
}

fn tab_content(
    operator: &Operator,
    va: &str,
    vas: &[String],
    view: &View,
    content: &Content,
    cloud: bool,
) -> Markup {
    match content {
        Content::General(tokens) => general(operator, va, tokens),
        Content::Licenses {
            pools,
            licenses,
            history,
            days,
        } => html! {
            (licenses_tab(va, pools, licenses, history, *days, cloud))
            @if cloud { (transfer_form(operator, va, vas, licenses)) }
        },
        Content::Instances(instances) => instances_tab(operator, va, vas, view, instances),
        Content::Events(events) => events_tab(va, view, events),
    }
}

fn general(operator: &Operator, va: &str, tokens: &[crate::ops::views::TokenInfo]) -> Markup {
    let operate = operator.can_operate(va);
    html! {
        h2 { "Product Instance Registration Tokens" }
        @if tokens.is_empty() {
            p.empty { "No registration tokens in " (va) " yet." }
        } @else {
            table #tokens {
                thead { tr {
                    th scope="col" { "Token" } th scope="col" { "Description" } th scope="col" { "Created" }
                    th scope="col" { "Expires" } th scope="col" { "Uses" } th scope="col" { "Export-Controlled" }
                    th scope="col" { "Status" } @if operate { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for t in tokens {
                        tr {
                            td { code { (t.token_prefix) "…" } }
                            td { (t.description) }
                            td { (when(&t.created_at)) }
                            td { (when(&t.expires_at)) }
                            td.num { (t.uses) @if let Some(max) = t.max_uses { " of " (max) } }
                            td { (if t.export_controlled { "Allowed" } else { "Not Allowed" }) }
                            td { span class=(format!("status {}", t.status.to_lowercase())) { (t.status) } }
                            @if operate {
                                td {
                                    @if t.status == crate::ops::views::TOKEN_ACTIVE {
                                        form.inline method="post" action="/portal/inventory/tokens/revoke" {
                                            (csrf(operator))
                                            input type="hidden" name="va" value=(va);
                                            input type="hidden" name="token" value=(t.token_prefix);
                                            button.danger type="submit" aria-label=(format!("Revoke token {}…", t.token_prefix)) { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if operate {
            details.new-token open[tokens.is_empty()] {
                summary { "New Token" }
                form.stacked #new-token method="post" action="/portal/inventory/tokens" {
                    (csrf(operator))
                    input type="hidden" name="va" value=(va);
                    label for="description" { "Description" }
                    input #description type="text" name="description" maxlength="200";
                    label for="days" { "Expire After (days, " (MIN_DAYS) "–" (MAX_DAYS) ")" }
                    input #days type="number" name="days" min=(MIN_DAYS) max=(MAX_DAYS) value=(DEFAULT_DAYS) required;
                    label for="max_uses" { "Max. Number of Uses (empty: unlimited)" }
                    input #max_uses type="number" name="max_uses" min="1";
                    label.check {
                        input #export_controlled type="checkbox" name="export_controlled" value="on" checked;
                        " Allow export-controlled functionality on the products registered with this token"
                    }
                    button type="submit" { "Create Token" }
                }
            }
        }
    }
}

fn licenses_tab(
    va: &str,
    pools: &[ops::licenses::LicenseSummary],
    licenses: &[crate::ops::views::License],
    history: &[crate::licensing::reports::UsageDay],
    days: u32,
    cloud: bool,
) -> Markup {
    let mut by_tag: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for day in history {
        by_tag.entry(day.tag.as_str()).or_default().push(Point {
            day: day.day.clone(),
            in_use: day.in_use,
            available: day.available,
        });
    }
    for points in by_tag.values_mut() {
        points.sort_by(|a, b| a.day.cmp(&b.day));
    }
    html! {
        h2 { "Licenses" }
        @if pools.is_empty() {
            p.empty { "No licenses and no usage in " (va) " yet." }
        } @else {
            table #licenses {
                thead { tr {
                    th scope="col" { "License" } th scope="col" { "Purchased" } th scope="col" { "In Use" }
                    th scope="col" { "Available" } th scope="col" { "Shortfall" } th scope="col" { "Status" }
                } }
                tbody {
                    @for pool in pools {
                        // A tracking tag is counted, never short (DESIGN §6).
                        @let shortfall = if pool.status == PoolStatus::OutOfCompliance.as_str() { (pool.in_use - pool.quantity).max(0) } else { 0 };
                        tr class=(if shortfall > 0 { "short" } else { "" }) {
                            th scope="row" { (pool.license) }
                            td.num { (pool.quantity) }
                            td.num { (pool.in_use) }
                            td.num { (pool.available.max(0)) }
                            td.num { (shortfall) }
                            td { span class=(if shortfall > 0 { "status out" } else { "status in" }) { (pool.status) } }
                        }
                    }
                }
            }
        }
        h3 { "Purchased licenses" }
        @if licenses.is_empty() {
            p.empty {
                @if cloud { "None yet: add what was bought with `satellite license add`." }
                @else { "None: licenses arrive from the cloud by synchronization." }
            }
        } @else {
            table #terms {
                thead { tr {
                    th scope="col" { "SKU" } th scope="col" { "Entitlement Tag" } th scope="col" { "Type" }
                    th scope="col" { "Quantity" } th scope="col" { "Start" } th scope="col" { "End" }
                } }
                tbody {
                    @for l in licenses {
                        tr class=(if l.active { "" } else { "ended" }) {
                            td { (l.sku) } td { (l.tag) } td { (l.license_type) }
                            td.num { (l.quantity) } td { (when(&l.start)) }
                            td { @match &l.end { Some(end) => { (when(end)) @if !l.active { " (not in term)" } }, None => { "—" } } }
                        }
                    }
                }
            }
        }
        h3 { "Usage trend" }
        form.selector method="get" action=(Tab::Licenses.path()) {
            input type="hidden" name="va" value=(va);
            label for="days-shown" { "Days" }
            (select("days", "days-shown", &[30, 90, 180, 365].map(|d: u32| (d.to_string(), format!("last {d} days"))), &days.to_string()))
            button type="submit" { "Show" }
        }
        @if by_tag.is_empty() {
            p.empty { "No daily usage recorded yet: the history grows one row a day per pool." }
        }
        @for (tag, points) in &by_tag {
            h4 { (tag) }
            (chart::trend(tag, points))
        }
    }
}

const STATUSES: &[&str] = &[
    "AUTHORIZED",
    "OUT_OF_COMPLIANCE",
    "INVALID",
    "AUTHORIZATION_EXPIRED",
    "GRACE_PERIOD_EXPIRED",
    "REGISTERED",
];

fn paging(tab: Tab, view: &View, va: &str, shown: usize, extra: &[(&str, Option<&str>)]) -> Markup {
    let offset = view.offset.unwrap_or(0);
    let link = |offset: u32| {
        let mut pairs: Vec<(&str, String)> = vec![("va", va.to_string())];
        for (k, v) in extra {
            if let Some(v) = v {
                pairs.push((k, v.to_string()));
            }
        }
        pairs.push(("offset", offset.to_string()));
        format!(
            "{}?{}",
            tab.path(),
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    html! {
        nav.paging aria-label="Pages" {
            @if offset > 0 { a href=(link(offset.saturating_sub(PAGE_ROWS))) rel="prev" { "← Previous" } " " }
            span { "Rows " (offset + 1) "–" (offset as usize + shown) }
            @if shown == PAGE_ROWS as usize { " " a href=(link(offset + PAGE_ROWS)) rel="next" { "Next →" } }
        }
    }
}

fn instances_tab(
    operator: &Operator,
    va: &str,
    vas: &[String],
    view: &View,
    instances: &[crate::ops::views::InstanceView],
) -> Markup {
    let operate = operator.can_operate(va);
    let q = View::nonempty(&view.q);
    let status = View::nonempty(&view.status);
    let mut statuses = vec![(String::new(), "any".to_string())];
    statuses.extend(STATUSES.iter().map(|s| (s.to_string(), s.to_string())));
    let targets: Vec<(String, String)> = vas
        .iter()
        .filter(|v| v.as_str() != va && operator.can_operate(v))
        .map(|v| (v.clone(), v.clone()))
        .collect();
    html! {
        h2 { "Product Instances" }
        form.filters #instance-search method="get" action=(Tab::Instances.path()) role="search" {
            input type="hidden" name="va" value=(va);
            label for="q" { "UDI or hostname" }
            input #q type="search" name="q" value=[q];
            label for="status" { "Status" }
            (select("status", "status", &statuses, status.unwrap_or_default()))
            button type="submit" { "Search" }
        }
        @if instances.is_empty() {
            p.empty { "No product instances " @if q.is_some() || status.is_some() { "match." } @else { "in " (va) " yet." } }
        } @else {
            table #instances {
                thead { tr {
                    th scope="col" { "Name (UDI)" } th scope="col" { "Hostname" } th scope="col" { "Status" }
                    th scope="col" { "Registered" } th scope="col" { "Last Contact" }
                    @if operate { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for i in instances {
                        tr {
                            th scope="row" { code { (i.udi) } }
                            td { (i.hostname.as_deref().unwrap_or("—")) }
                            td { span class=(format!("status {}", i.status.to_lowercase())) { (i.status) } }
                            td { (when(&i.registered_at)) }
                            td { (when(&i.last_contact_at)) }
                            @if operate {
                                td {
                                    @if i.satellite.is_none() {
                                        details.actions {
                                            summary aria-label=(format!("Actions for {}", i.udi)) { "Actions" }
                                            @if !targets.is_empty() {
                                                form.inline method="post" action="/portal/inventory/instances/move" {
                                                    (csrf(operator))
                                                    input type="hidden" name="va" value=(va);
                                                    input type="hidden" name="instance" value=(i.instance_id);
                                                    label for=(format!("to-{}", i.instance_id)) { "Move to" }
                                                    (select("to", &format!("to-{}", i.instance_id), &targets, ""))
                                                    button type="submit" { "Move" }
                                                }
                                            }
                                            form.inline method="post" action="/portal/inventory/instances/remove" {
                                                (csrf(operator))
                                                input type="hidden" name="va" value=(va);
                                                input type="hidden" name="instance" value=(i.instance_id);
                                                button.danger type="submit" { "Remove" }
                                            }
                                        }
                                    } @else {
                                        "via " (i.satellite.as_deref().unwrap_or_default())
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (paging(Tab::Instances, view, va, instances.len(), &[("q", q), ("status", status)]))
        }
    }
}

fn events_tab(va: &str, view: &View, events: &[crate::ops::views::AuditedEvent]) -> Markup {
    let kind = View::nonempty(&view.kind);
    let (from, to) = (View::nonempty(&view.from), View::nonempty(&view.to));
    let mut kinds = vec![(String::new(), "any".to_string())];
    kinds.extend(
        crate::inventory::EVENT_KINDS
            .iter()
            .map(|k| (k.to_string(), k.replace('_', " "))),
    );
    html! {
        h2 { "Event Log" }
        form.filters #event-filter method="get" action=(Tab::Events.path()) {
            input type="hidden" name="va" value=(va);
            label for="kind" { "Kind" }
            (select("kind", "kind", &kinds, kind.unwrap_or_default()))
            label for="from" { "From" }
            input #from type="date" name="from" value=[from];
            label for="to" { "To" }
            input #to type="date" name="to" value=[to];
            button type="submit" { "Filter" }
        }
        @if events.is_empty() {
            p.empty { "No events match." }
        } @else {
            table #events {
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Kind" } th scope="col" { "Severity" }
                    th scope="col" { "Message" } th scope="col" { "By" }
                } }
                tbody {
                    @for e in events {
                        tr {
                            td { (when(&e.at)) }
                            td { (e.kind) }
                            td { span class=(format!("severity {}", e.severity)) { (e.severity) } }
                            td { (e.message) }
                            td { (e.actor.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
            (paging(Tab::Events, view, va, events.len(), &[("kind", kind), ("from", from), ("to", to)]))
        }
    }
}

/// Mounts the inventory's pages and forms (inside the portal's scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    for tab in [Tab::General, Tab::Licenses, Tab::Instances, Tab::Events] {
        let path = tab.path().trim_start_matches("/portal");
        cfg.route(
            path,
            web::get().to(
                move |service: web::Data<Service>, operator: Operator, view: web::Query<View>| async move {
                    render(
                        &service,
                        &operator,
                        tab,
                        view.into_inner(),
                        None,
                        StatusCode::OK,
                    )
                    .await
                },
            ),
        );
    }
    let forms: [(&str, actix_web::Route); 6] = [
        ("/inventory/tokens", web::post().to(create_token)),
        ("/inventory/tokens/revoke", web::post().to(revoke_token)),
        (
            "/inventory/instances/remove",
            web::post().to(remove_instance),
        ),
        ("/inventory/instances/move", web::post().to(move_instance)),
        (
            "/inventory/licenses/transfer",
            web::post().to(transfer_licenses),
        ),
        (
            "/inventory/virtual-accounts",
            web::post().to(create_virtual_account),
        ),
    ];
    for (path, post) in forms {
        cfg.route(path, post)
            .route(path, super::back_to(super::HOME_PATH));
    }
}

/// Shows a tab after a form: its notice, and the refusal's status if refused.
async fn after(
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
        Err(PortalError::Ops(e)) if !matches!(e, OpsError::Unauthenticated(_)) => {
            super::error::log(&e);
            let notice = Notice::error(e.to_string());
            render(
                service,
                operator,
                tab,
                View::of_va(va),
                Some(notice),
                status_of(&e),
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

fn number(field: &str, text: &str) -> Result<Option<u32>, PortalError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        crate::error::Error::invalid(field, format!("{text:?} is not a whole number")).into()
    })
}

async fn create_token(
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
}

async fn revoke_token(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<RevokeToken>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
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
}

async fn remove_instance(
    service: web::Data<Service>,
    operator: Operator,
    form: web::Form<InstanceAction>,
) -> Result<HttpResponse, PortalError> {
    operator.check_csrf(&form.csrf)?;
    let form = form.into_inner();
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

async fn move_instance(
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
struct TransferForm {
    #[serde(default)]
    csrf: String,
    va: String,
    #[serde(default)]
    sku: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    to: String,
}

async fn transfer_licenses(
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
        let ((), transitions) = service
            .change_pools(caller, move |c, caller| {
                let transfer = crate::inventory::Transfer {
                    from: &from,
                    to: &to,
                    sku: &sku,
                    quantity: i64::from(quantity),
                };
                ops::licenses::transfer(c, &catalog, caller, role, &account, &transfer, now)
                    .map(|transitions| ((), transitions))
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
struct NewVirtualAccount {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

async fn create_virtual_account(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_in_utc() {
        assert_eq!(day_start("from", "1970-01-02").ok(), Some(86_400));
        assert!(day_start("from", "02/01/1970").is_err());
    }

    #[test]
    fn virtual_account_names_are_escaped_in_links() {
        assert_eq!(
            tab_link(Tab::Licenses, "Lab & Co"),
            "/portal/inventory/licenses?va=Lab+%26+Co"
        );
    }
}
