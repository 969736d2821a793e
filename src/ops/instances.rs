//! Product instances: paged listing with filters, show, remove, move.

use super::{Action, Caller, Page, Result};
use crate::error::Error;
use crate::inventory;
use crate::licensing::catalog::Catalog;
use crate::licensing::pool::Transition;
use crate::licensing::reports::EntitlementUsage;
use crate::store::instances::InstanceView;
use crate::store::Db;

/// What a listing may be narrowed to.
#[derive(Debug, Default, Clone)]
pub struct InstanceFilter {
    pub virtual_account: Option<String>,
    /// An instance status word (`AUTHORIZED`, `OUT_OF_COMPLIANCE`, ...).
    pub status: Option<String>,
    /// Part of the UDI, hostname or instance id.
    pub search: Option<String>,
}

pub fn list(
    c: &Db,
    caller: &Caller,
    account: &str,
    filter: &InstanceFilter,
    page: Page,
    now: i64,
) -> Result<Vec<InstanceView>> {
    let va = filter.virtual_account.as_deref();
    caller.authorize(Action::Read, va)?;
    // Filtered in the listing's order as the rows are read; a page of an
    // unfiltered listing is read straight from its index range.
    let keep_all = filter.status.is_none() && filter.search.is_none() && caller.scope().is_none();
    let query = filter.search.as_deref().map(str::to_lowercase);
    let keep = |v: &InstanceView| keeps(caller, filter, query.as_deref(), v);
    Ok(inventory::instance_page(
        c,
        account,
        va,
        now,
        page.offset as usize,
        page.limit as usize,
        if keep_all { None } else { Some(&keep) },
    )?)
}

fn keeps(caller: &Caller, filter: &InstanceFilter, query: Option<&str>, v: &InstanceView) -> bool {
    caller.reaches(&v.virtual_account)
        && filter.status.as_deref().is_none_or(|s| v.status == s)
        && query.is_none_or(|q| {
            v.udi.to_lowercase().contains(q)
                || v.instance_id.to_lowercase().contains(q)
                || v.hostname
                    .as_deref()
                    .is_some_and(|h| h.to_lowercase().contains(q))
        })
}

/// Every instance the listing would give, page after page, handed to `each`
/// as it is read (the command line prints whole listings without holding
/// them); `each` returns false to stop.
pub fn for_each(
    c: &Db,
    caller: &Caller,
    account: &str,
    filter: &InstanceFilter,
    now: i64,
    mut each: impl FnMut(InstanceView) -> Result<bool>,
) -> Result<()> {
    let va = filter.virtual_account.as_deref();
    caller.authorize(Action::Read, va)?;
    let query = filter.search.as_deref().map(str::to_lowercase);
    let mut failed = None;
    inventory::for_each_instance(c, account, va, now, |v| {
        if !keeps(caller, filter, query.as_deref(), &v) {
            return Ok(true);
        }
        match each(v) {
            Ok(more) => Ok(more),
            Err(e) => {
                failed = Some(e);
                Ok(false)
            }
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// An instance the caller may read; one it may not is "not found", so its
/// existence is not told either.
fn reachable(
    c: &Db,
    caller: &Caller,
    key: &str,
    now: i64,
) -> Result<(InstanceView, Vec<EntitlementUsage>)> {
    let (view, entitlements) = inventory::instance_detail(c, key, now)?;
    if !caller.reaches(&view.virtual_account) {
        return Err(Error::NotFound(format!("no product instance {key:?}")).into());
    }
    Ok((view, entitlements))
}

pub fn show(
    c: &Db,
    caller: &Caller,
    key: &str,
    now: i64,
) -> Result<(InstanceView, Vec<EntitlementUsage>)> {
    reachable(c, caller, key, now)
}

pub fn remove(
    c: &Db,
    catalog: &Catalog,
    caller: &Caller,
    key: &str,
    now: i64,
) -> Result<(InstanceView, Vec<Transition>)> {
    let (view, _) = reachable(c, caller, key, now)?;
    caller.authorize(Action::Operate, Some(&view.virtual_account))?;
    let (removed, transitions) = inventory::remove_instance(c, catalog, key, now)?;
    Ok((removed.view(now), transitions))
}

pub fn move_to(
    c: &Db,
    catalog: &Catalog,
    caller: &Caller,
    account: &str,
    key: &str,
    to: &str,
    now: i64,
) -> Result<(InstanceView, Vec<Transition>)> {
    let (view, _) = reachable(c, caller, key, now)?;
    caller.authorize(Action::Operate, Some(&view.virtual_account))?;
    caller.authorize(Action::Operate, Some(to))?;
    let (moved, transitions) = inventory::move_instance(c, catalog, account, key, to, now)?;
    Ok((moved.view(now), transitions))
}
