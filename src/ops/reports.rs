//! Compliance reports: list and show within the caller's reach. A report of
//! the whole account shows every virtual account, so only an admin reads it.

use super::{Caller, Page, Result};
use crate::error::Error;
use crate::inventory;
use crate::licensing::reports::{Report, ReportSummary};
use crate::store::Db;

fn reaches(caller: &Caller, virtual_account: Option<&str>) -> bool {
    match virtual_account {
        Some(va) => caller.reaches(va),
        None => caller.scope().is_none(),
    }
}

pub fn list(c: &Db, caller: &Caller, page: Page) -> Result<Vec<ReportSummary>> {
    // Reports are few (monthly, and on compliance events): read the newest
    // bounded set, then narrow.
    let mut list = inventory::report_list(c, 10_000)?;
    list.retain(|r| reaches(caller, r.virtual_account.as_deref()));
    list.reverse();
    Ok(page.of(list))
}

pub fn show(c: &Db, caller: &Caller, id: i64) -> Result<Report> {
    let report = inventory::report(c, id)?;
    if !reaches(caller, report.virtual_account.as_deref()) {
        return Err(Error::NotFound(format!("no report {id}")).into());
    }
    Ok(report)
}
