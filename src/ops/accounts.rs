//! Virtual accounts and the compliance view, within the caller's reach.

use super::{Action, Caller, Result};
use crate::inventory;
use crate::licensing::catalog::Catalog;
use crate::licensing::compliance::ComplianceRow;
use crate::licensing::reports::{self, ReportKind};
use crate::store::accounts::VirtualAccount;
use crate::store::Db;

pub fn create(
    c: &Db,
    caller: &Caller,
    account: &str,
    name: &str,
    description: &str,
    now: i64,
) -> Result<VirtualAccount> {
    caller.authorize(Action::Administer, None)?;
    Ok(inventory::create_virtual_account(
        c,
        account,
        name,
        description,
        now,
    )?)
}

pub fn list(c: &Db, caller: &Caller, account: &str, now: i64) -> Result<Vec<VirtualAccount>> {
    let mut vas = inventory::virtual_accounts(c, account, now)?;
    vas.retain(|va| caller.reaches(&va.name));
    Ok(vas)
}

pub fn compliance(
    c: &Db,
    catalog: &Catalog,
    caller: &Caller,
    account: &str,
    virtual_account: Option<&str>,
    now: i64,
) -> Result<Vec<ComplianceRow>> {
    caller.authorize(Action::Read, virtual_account)?;
    let mut rows = inventory::compliance_rows(c, catalog, account, virtual_account, now)?;
    rows.retain(|r| caller.reaches(&r.virtual_account));
    Ok(rows)
}

/// Generates a report now (Manual Record or Compliance Warning Report).
pub fn generate_report(
    c: &Db,
    catalog: &Catalog,
    caller: &Caller,
    kind: ReportKind,
    account: &str,
    virtual_account: Option<&str>,
    now: i64,
) -> Result<i64> {
    match virtual_account {
        Some(va) => caller.authorize(Action::Operate, Some(va))?,
        None => caller.authorize(Action::Administer, None)?,
    }
    inventory::check_virtual_account(c, account, virtual_account, now)?;
    Ok(reports::generate(
        c,
        catalog,
        kind,
        account,
        virtual_account,
        now,
    )?)
}

/// The daily usage of the last `days` days (the trend charts).
pub fn usage_history(
    c: &Db,
    catalog: &Catalog,
    caller: &Caller,
    account: &str,
    virtual_account: Option<&str>,
    days: u32,
    now: i64,
) -> Result<Vec<crate::licensing::reports::UsageDay>> {
    caller.authorize(Action::Read, virtual_account)?;
    let mut rows = inventory::usage_history(c, catalog, account, virtual_account, days, now)?;
    rows.retain(|r| caller.reaches(&r.virtual_account));
    Ok(rows)
}

/// One virtual account as the portal's overview shows it.
#[derive(Debug, Clone, Default)]
pub struct VaOverview {
    pub name: String,
    /// At a cloud: the satellite that serves it (none: this node).
    pub served_by: Option<String>,
    pub pools: usize,
    /// Entitlement tags short, with their shortfall.
    pub short: Vec<(String, i64)>,
    /// Product instances by status (at a cloud, with its satellites').
    pub instances: std::collections::BTreeMap<String, i64>,
    pub alerts: usize,
}

/// Every virtual account the caller reaches, with its pools' compliance,
/// its instances by status and its open alerts.
pub fn overview(
    c: &Db,
    catalog: &Catalog,
    caller: &Caller,
    account: &str,
    now: i64,
) -> Result<Vec<VaOverview>> {
    use std::collections::BTreeMap;
    let mut by_name: BTreeMap<String, VaOverview> = list(c, caller, account, now)?
        .into_iter()
        .map(|va| {
            let row = VaOverview {
                name: va.name.clone(),
                served_by: va.served_by,
                ..VaOverview::default()
            };
            (va.name, row)
        })
        .collect();
    for row in compliance(c, catalog, caller, account, None, now)? {
        if let Some(va) = by_name.get_mut(&row.virtual_account) {
            va.pools += 1;
            if row.shortfall > 0 {
                va.short.push((row.tag, row.shortfall));
            }
        }
    }
    let direct = inventory::instance_statuses(c, now)?;
    let remote = crate::store::satellites::remote_status_counts(c)?;
    for (va, status, count) in direct.into_iter().chain(remote) {
        if let Some(va) = by_name.get_mut(&va) {
            *va.instances.entry(status).or_default() += count;
        }
    }
    for alert in super::alerts::list(c, catalog, caller, account, &[], super::Page::ALL, now)? {
        if let Some(va) = alert.virtual_account.and_then(|n| by_name.get_mut(&n)) {
            va.alerts += 1;
        }
    }
    Ok(by_name.into_values().collect())
}
