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
