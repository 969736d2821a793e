//! The inventory's markup: the selector, the tabs and their forms.

use super::query::*;
use crate::domain::token::{DEFAULT_DAYS, MAX_DAYS, MIN_DAYS};
use crate::licensing::rules::PoolStatus;
use crate::ops::{self};
use crate::portal::chart::{self, Point};
use crate::portal::layout::{confirmed_action, csrf, select, status_words, when};
use crate::portal::session::Operator;
use maud::{html, Markup};
use std::collections::BTreeMap;

pub(super) fn selector(tab: Tab, virtual_accounts: &[String], current: Option<&str>) -> Markup {
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

pub(super) fn new_virtual_account(operator: &Operator, tab: Tab) -> Markup {
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

/// At the cloud: licenses bought for this virtual account (admins).
pub(super) fn add_license_form(operator: &Operator, va: &str, skus: &[(String, String)]) -> Markup {
    if !operator.is_admin() || va.is_empty() {
        return html! {};
    }
    html! {
        details.transfer {
            summary { "Add Licenses" }
            form.filters #add-license method="post" action="/portal/inventory/licenses/add" {
                (csrf(operator))
                input type="hidden" name="va" value=(va);
                label for="license-sku" { "SKU" }
                (select("sku", "license-sku", skus, ""))
                label for="license-quantity" { "Quantity" }
                input #license-quantity type="number" name="quantity" min="1" value="1" required;
                label for="license-start" { "Start (optional)" }
                input #license-start type="date" name="start";
                label for="license-end" { "End (optional; a term SKU ends after its years)" }
                input #license-end type="date" name="end";
                button type="submit" { "Add Licenses" }
            }
        }
    }
}

/// At the cloud: licenses move between virtual accounts of the account.
pub(super) fn transfer_form(
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
                label.check {
                    input type="checkbox" name="short_ok" value="yes";
                    "even if it leaves " (va) " short (its routers go out of compliance)"
                }
                button type="submit" { "Transfer" }
            }
        }
    }
}

pub(super) fn tab_link(tab: Tab, va: &str) -> String {
    format!("{}?va={}", tab.path(), url(va))
}

pub(super) fn url(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

pub(super) fn tabs(current: Tab, va: &str) -> Markup {
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

pub(super) fn tab_content(
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
            skus,
        } => html! {
            (licenses_tab(va, pools, licenses, history, *days, cloud))
            @if cloud {
                (add_license_form(operator, va, skus))
                (transfer_form(operator, va, vas, licenses))
            }
        },
        Content::Instances(instances) => instances_tab(operator, va, vas, view, instances),
        Content::Events(events) => events_tab(va, view, events),
    }
}

pub(super) fn general(
    operator: &Operator,
    va: &str,
    tokens: &[crate::ops::views::TokenInfo],
) -> Markup {
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
                            td { span class=(format!("status {}", t.status.to_lowercase())) { (status_words(t.status)) } }
                            @if operate {
                                td {
                                    @if t.status == crate::ops::views::TOKEN_ACTIVE {
                                        (confirmed_action(
                                            operator,
                                            "/portal/inventory/tokens/revoke",
                                            &[("va", va), ("token", &t.token_prefix)],
                                            "it registers no more routers (those it registered stay)",
                                            "Revoke",
                                            Some(format!("Revoke token {}…", t.token_prefix)),
                                        ))
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

pub(super) fn licenses_tab(
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
                @if cloud { "None yet: add what was bought (Add Licenses, below)." }
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

pub(super) fn paging(
    tab: Tab,
    view: &View,
    va: &str,
    shown: usize,
    extra: &[(&str, Option<&str>)],
) -> Markup {
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

pub(super) fn instances_tab(
    operator: &Operator,
    va: &str,
    vas: &[String],
    view: &View,
    instances: &[crate::ops::views::InstanceView],
) -> Markup {
    let operate = operator.can_operate(va);
    let q = View::nonempty(&view.q);
    let status = View::nonempty(&view.status);
    let statuses = crate::portal::layout::status_choices("any");
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
                            td { span class=(format!("status {}", i.status.to_lowercase())) { (status_words(&i.status)) } }
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
                                            (confirmed_action(
                                                operator,
                                                "/portal/inventory/instances/remove",
                                                &[("va", va), ("instance", &i.instance_id)],
                                                "its certificate is revoked and its licenses released",
                                                "Remove",
                                                None,
                                            ))
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

pub(super) fn events_tab(
    va: &str,
    view: &View,
    events: &[crate::ops::views::AuditedEvent],
) -> Markup {
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
                            td { (e.kind.replace('_', " ")) }
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
