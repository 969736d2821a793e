//! What the operator surfaces read: listings and single items, checked the
//! same way for the CLI, the REST API and the portal (one copy of each).

use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::licensing::catalog::Catalog;
use crate::licensing::compliance::{self, ComplianceRow};
use crate::licensing::reports::{self, EntitlementUsage, Report, ReportSummary, UsageDay};
use crate::store::accounts::VirtualAccount;
use crate::store::events::Event;
use crate::store::instances::InstanceView;
use crate::store::licenses::License;
use crate::store::tokens::TokenInfo;
use crate::store::Db;
use crate::store::{accounts, events, instances, licenses, tokens, usage};
use serde::Serialize;

/// The usage history keeps this many days (the daily snapshots are pruned
/// beyond it), so asking for more could only mislead.
pub const MAX_HISTORY_DAYS: u32 = 450;

/// Event kinds the satellite writes. A kind outside this list is still
/// accepted once the log holds an event of it (kinds added later).
pub const EVENT_KINDS: &[&str] = &[
    "registration",
    "deregistration",
    "renewal",
    "token",
    "virtual_account",
    "instance_move",
    "license",
    "license_transfer",
    "compliance",
    "authorization_expired",
    "grace_period_expired",
    "system",
    "call_home",
    "sync",
    "satellite",
    "user",
    "client",
    crate::time_guard::EVENT_KIND,
];

/// Refuses an unknown virtual account by name (none given: nothing to check).
pub fn check_virtual_account(c: &Db, account: &str, va: Option<&str>, now: i64) -> Result<()> {
    let _ = now;
    if let Some(va) = va {
        accounts::require_id(c, account, va)?;
    }
    Ok(())
}

pub fn virtual_accounts(c: &Db, account: &str, now: i64) -> Result<Vec<VirtualAccount>> {
    accounts::list(c, account, now)
}

pub fn token_list(c: &Db, account: &str, va: Option<&str>, now: i64) -> Result<Vec<TokenInfo>> {
    check_virtual_account(c, account, va, now)?;
    tokens::list(c, account, va, now)
}

pub fn instance_list(
    c: &Db,
    account: &str,
    va: Option<&str>,
    now: i64,
) -> Result<Vec<InstanceView>> {
    let mut list = Vec::new();
    for_each_instance(c, account, va, now, |v| {
        list.push(v);
        Ok(true)
    })?;
    Ok(list)
}

/// Listing pages are read this many rows at a time (cursor pages).
const CHUNK: usize = 1000;

/// Every instance in listing order (local ones, then on the cloud those its
/// satellites reported), read in bounded chunks and handed to `each` one by
/// one; `each` returns false to stop. Memory stays bounded at any size.
pub fn for_each_instance(
    c: &Db,
    account: &str,
    va: Option<&str>,
    now: i64,
    mut each: impl FnMut(InstanceView) -> Result<bool>,
) -> Result<()> {
    check_virtual_account(c, account, va, now)?;
    let mut after: Option<instances::ListingKey> = None;
    loop {
        let mut got = 0;
        let mut stop = None;
        let mut last = None;
        instances::page(c, account, va, after.as_ref(), 0, CHUNK, |i| {
            got += 1;
            last = Some(i.listing_key());
            match each(i.view(now)) {
                Ok(true) => true,
                Ok(false) => {
                    stop = Some(Ok(()));
                    false
                }
                Err(e) => {
                    stop = Some(Err(e));
                    false
                }
            }
        })?;
        if let Some(done) = stop {
            return done;
        }
        after = last;
        if got < CHUNK {
            break;
        }
    }
    for view in remote_instances(c, va)? {
        if !each(view)? {
            break;
        }
    }
    Ok(())
}

/// One page of instances in listing order, of those `keep` keeps. With no
/// `keep` (all of them), the page is read straight from its index range.
pub fn instance_page(
    c: &Db,
    account: &str,
    va: Option<&str>,
    now: i64,
    offset: usize,
    limit: usize,
    keep: Option<&dyn Fn(&InstanceView) -> bool>,
) -> Result<Vec<InstanceView>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let Some(keep) = keep else {
        check_virtual_account(c, account, va, now)?;
        instances::page(c, account, va, None, offset, limit, |i| {
            out.push(i.view(now));
            true
        })?;
        if out.len() == limit {
            return Ok(out);
        }
        // The rest of the page from the remote instances (the cloud).
        let skip = if out.is_empty() {
            let local = usize::try_from(instances::count(c, account, va)?).unwrap_or(0);
            offset.saturating_sub(local)
        } else {
            0
        };
        let rest = limit - out.len();
        out.extend(remote_instances(c, va)?.into_iter().skip(skip).take(rest));
        return Ok(out);
    };
    let mut skip = offset;
    for_each_instance(c, account, va, now, |v| {
        if keep(&v) {
            if skip > 0 {
                skip -= 1;
            } else {
                out.push(v);
            }
        }
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// On the cloud, the instances its satellites reported, naming each satellite.
fn remote_instances(c: &Db, va: Option<&str>) -> Result<Vec<InstanceView>> {
    Ok(crate::store::satellites::remote_instances(c, va)?
        .into_iter()
        .map(|r| {
            let udi = crate::domain::Udi {
                pid: r.pid.clone(),
                sn: r.sn.clone(),
            };
            InstanceView {
                instance_id: r.instance_id,
                udi: udi.to_string(),
                pid: r.pid,
                sn: r.sn,
                hostname: r.hostname,
                virtual_account: r.virtual_account,
                status: r.status,
                registered_at: crate::clock::rfc3339(r.registered_at),
                last_contact_at: crate::clock::rfc3339(r.last_contact_at),
                next_communication: None,
                deadline: None,
                satellite: Some(r.satellite),
                satellite_status: Some(r.reported_status),
            }
        })
        .collect())
}

/// One product instance with what it consumes.
pub fn instance_detail(
    c: &Db,
    key: &str,
    now: i64,
) -> Result<(InstanceView, Vec<EntitlementUsage>)> {
    let found = match super::find_instance(c, key) {
        Ok(found) => found,
        Err(Error::Conflict(_)) => return remote_detail(c, key),
        Err(e) => return Err(e),
    };
    let entitlements = usage::of_instance(c, found.id)?
        .into_iter()
        .map(|(tag, count, status)| EntitlementUsage { tag, count, status })
        .collect();
    Ok((found.view(now), entitlements))
}

pub fn license_list(c: &Db, account: &str, va: Option<&str>, now: i64) -> Result<Vec<License>> {
    check_virtual_account(c, account, va, now)?;
    licenses::list(c, account, va, now)
}

/// One license row by its id, as listings show it.
pub fn license(c: &Db, account: &str, va: &str, id: i64, now: i64) -> Result<License> {
    licenses::list(c, account, Some(va), now)?
        .into_iter()
        .find(|l| l.id == id)
        .ok_or_else(|| Error::NotFound(format!("no license {id} in {va:?}")))
}

pub fn compliance_rows(
    c: &Db,
    catalog: &Catalog,
    account: &str,
    va: Option<&str>,
    now: i64,
) -> Result<Vec<ComplianceRow>> {
    let mut rows = compliance::rows(c, catalog, account, va, now)?;
    // On the cloud: how much of each pool's use came through each satellite.
    for (virtual_account, tag, satellite, in_use) in crate::store::satellites::remote_demand(c)? {
        if let Some(row) = rows
            .iter_mut()
            .find(|r| r.virtual_account == virtual_account && r.tag == tag)
        {
            row.in_use_by_satellite.insert(satellite, in_use);
        }
    }
    Ok(rows)
}

/// The daily usage of the last `days` days; today's rows are the live
/// numbers (the snapshot of today was taken at its first job run and may be
/// hours old).
pub fn usage_history(
    c: &Db,
    catalog: &Catalog,
    account: &str,
    va: Option<&str>,
    days: u32,
    now: i64,
) -> Result<Vec<UsageDay>> {
    if !(1..=MAX_HISTORY_DAYS).contains(&days) {
        return Err(Error::invalid(
            "history",
            format!("{days} days is out of range: ask for 1 to {MAX_HISTORY_DAYS} days (the history kept)"),
        ));
    }
    check_virtual_account(c, account, va, now)?;
    let today = time::OffsetDateTime::from_unix_timestamp(now)
        .map(|t| t.date().to_string())
        .map_err(|e| Error::invalid("clock", e.to_string()))?;
    let mut rows = reports::usage_history(c, account, va, days, now)?;
    rows.retain(|r| r.day != today);
    rows.extend(
        compliance::rows(c, catalog, account, va, now)?
            .into_iter()
            .map(|r| UsageDay {
                day: today.clone(),
                virtual_account: r.virtual_account,
                tag: r.tag,
                available: r.available,
                in_use: r.in_use,
            }),
    );
    Ok(rows)
}

pub fn report(c: &Db, id: i64) -> Result<Report> {
    reports::load(c, id)
}

pub fn report_list(c: &Db, limit: u32) -> Result<Vec<ReportSummary>> {
    reports::list(c, limit)
}

/// The newest `limit` events, optionally of one kind; an unknown kind is
/// refused with the known ones (a typo would otherwise print nothing).
pub fn event_list(c: &Db, kind: Option<&str>, limit: u32) -> Result<Vec<Event>> {
    if let Some(kind) = kind {
        if !EVENT_KINDS.contains(&kind) && events::list(c, Some(kind), 1)?.is_empty() {
            return Err(Error::invalid(
                "kind",
                format!(
                    "{kind:?} is not an event kind; use one of {}",
                    EVENT_KINDS.join(", ")
                ),
            ));
        }
    }
    events::list(c, kind, limit)
}

/// `status`: what this satellite holds.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub virtual_accounts: usize,
    pub product_instances: usize,
    pub active_tokens: usize,
    pub now: String,
}

pub fn totals(c: &Db, account: &str, now: i64) -> Result<Totals> {
    let vas = accounts::list(c, account, now)?;
    Ok(Totals {
        virtual_accounts: vas.len(),
        // At a cloud, with what its satellites report.
        product_instances: usize::try_from(vas.iter().map(|va| va.product_instances).sum::<i64>())
            .unwrap_or(0),
        active_tokens: tokens::list(c, account, None, now)?
            .iter()
            .filter(|t| t.status == "ACTIVE")
            .count(),
        now: rfc3339(now),
    })
}

/// Product instances counted by virtual account and status, over every
/// account (for `/metrics`).
pub fn instance_statuses(c: &Db, now: i64) -> Result<Vec<(String, String, i64)>> {
    let mut counts: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for account in accounts::names(c)? {
        // Read in bounded chunks: a scrape never holds the inventory.
        let mut after: Option<instances::ListingKey> = None;
        loop {
            let mut got = 0;
            let mut last = None;
            instances::page(c, &account, None, after.as_ref(), 0, CHUNK, |instance| {
                got += 1;
                let key = (
                    instance.virtual_account.clone(),
                    instance.status(now).to_string(),
                );
                *counts.entry(key).or_default() += 1;
                last = Some(instance.listing_key());
                true
            })?;
            after = last;
            if got < CHUNK {
                break;
            }
        }
    }
    Ok(counts.into_iter().map(|((va, s), n)| (va, s, n)).collect())
}

/// On the cloud: an instance as its satellite last reported it.
fn remote_detail(c: &Db, key: &str) -> Result<(InstanceView, Vec<EntitlementUsage>)> {
    let Some((r, usage)) = super::find_remote(c, key)? else {
        return Err(Error::NotFound(format!("no product instance {key:?}")));
    };
    let udi = crate::domain::Udi {
        pid: r.pid.clone(),
        sn: r.sn.clone(),
    };
    let view = InstanceView {
        instance_id: r.instance_id,
        udi: udi.to_string(),
        pid: r.pid,
        sn: r.sn,
        hostname: r.hostname,
        virtual_account: r.virtual_account,
        status: r.status.clone(),
        registered_at: crate::clock::rfc3339(r.registered_at),
        last_contact_at: crate::clock::rfc3339(r.last_contact_at),
        next_communication: None,
        deadline: None,
        satellite: Some(r.satellite),
        satellite_status: Some(r.reported_status.clone()),
    };
    let entitlements = usage
        .into_iter()
        .map(|(tag, count)| EntitlementUsage {
            tag,
            count,
            status: r.status.clone(),
        })
        .collect();
    Ok((view, entitlements))
}
