//! Product instances: paged listing with filters, show, remove, move.

use super::{audited, Action, Caller, Page, Result};
use crate::error::Error;
use crate::inventory;
use crate::licensing::catalog::Catalog;
use crate::licensing::pool::Transition;
use crate::licensing::reports::EntitlementUsage;
use crate::store::instances::InstanceView;
use rusqlite::Connection;

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
    c: &Connection,
    caller: &Caller,
    account: &str,
    filter: &InstanceFilter,
    page: Page,
    now: i64,
) -> Result<Vec<InstanceView>> {
    let va = filter.virtual_account.as_deref();
    caller.authorize(Action::Read, va)?;
    let mut views = inventory::instance_list(c, account, va, now)?;
    views.retain(|v| {
        caller.reaches(&v.virtual_account)
            && filter.status.as_deref().is_none_or(|s| v.status == s)
            && filter.search.as_deref().is_none_or(|q| {
                let q = q.to_lowercase();
                v.udi.to_lowercase().contains(&q)
                    || v.instance_id.to_lowercase().contains(&q)
                    || v.hostname
                        .as_deref()
                        .is_some_and(|h| h.to_lowercase().contains(&q))
            })
    });
    Ok(page.of(views))
}

/// An instance the caller may read; one it may not is "not found", so its
/// existence is not told either.
fn reachable(
    c: &Connection,
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
    c: &Connection,
    caller: &Caller,
    key: &str,
    now: i64,
) -> Result<(InstanceView, Vec<EntitlementUsage>)> {
    reachable(c, caller, key, now)
}

pub fn remove(
    c: &Connection,
    catalog: &Catalog,
    caller: &Caller,
    key: &str,
    now: i64,
) -> Result<(InstanceView, Vec<Transition>)> {
    let (view, _) = reachable(c, caller, key, now)?;
    caller.authorize(Action::Operate, Some(&view.virtual_account))?;
    audited(c, caller, |c| {
        let (removed, transitions) = inventory::remove_instance(c, catalog, key, now)?;
        Ok((removed.view(now), transitions))
    })
}

pub fn move_to(
    c: &Connection,
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
    audited(c, caller, |c| {
        let (moved, transitions) = inventory::move_instance(c, catalog, account, key, to, now)?;
        Ok((moved.view(now), transitions))
    })
}
