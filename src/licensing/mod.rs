//! The license authority: catalog, pool arithmetic, authorization,
//! compliance, reports and the jobs that run on the clock.

pub mod catalog;
pub mod compliance;
pub mod jobs;
pub mod pool;
pub mod reports;
pub mod rules;
pub mod serving;

use crate::domain::EntitlementRequest;
use crate::error::Result;
use crate::store::instances::{self, Instance};
use crate::store::usage;
use crate::store::Db;
use catalog::Catalog;
use pool::Transition;
use rules::EntitlementStatus;
use std::collections::{BTreeMap, BTreeSet};

/// The outcome of an ENTITLEMENT or RENEW auth message.
#[derive(Debug)]
pub struct Authorization {
    pub overall: EntitlementStatus,
    pub entitlements: Vec<(String, u32, EntitlementStatus)>,
    pub authorized_at: i64,
    pub next_communication: i64,
    pub deadline: i64,
    pub transitions: Vec<Transition>,
}

/// Applies a device's full current demand and decides its status (DESIGN §6).
/// Runs inside the writer's transaction, so pools are exact under any
/// concurrency: requests are decided one after another against the counts
/// the previous ones left. `instance` and `stored` (its demand as stored,
/// see [`usage::counts_of`]) are left as this makes their rows. `cache`:
/// the writer's copies of the pools (see [`pool::PoolCache`]), kept up to
/// date with what this changes.
pub fn authorize(
    c: &Db,
    catalog: &Catalog,
    instance: &mut Instance,
    stored: &mut Vec<usage::Demand>,
    requested: &[EntitlementRequest],
    now: i64,
    mut cache: Option<&mut pool::Pools<'_>>,
) -> Result<Authorization> {
    // The same tag twice in one message adds up.
    let mut demand: BTreeMap<&str, u32> = BTreeMap::new();
    for e in requested {
        let count = demand.entry(e.tag.as_str()).or_default();
        *count = count.saturating_add(e.count);
    }
    let va = instance.virtual_account_id;
    if let Some(cache) = cache.as_deref_mut() {
        // Demand still counted in another pool (never so after a move,
        // which moves it): the triggers move it back, the copies start over.
        if stored.iter().any(|r| r.virtual_account_id != va) {
            cache.forget();
        }
    }
    // Write only what changed: a router repeats its demand far more often
    // than it changes it, and every unchanged row left alone is a page
    // neither dirtied nor logged.
    let before: BTreeMap<&str, (i64, i64)> = stored
        .iter()
        .map(|r| (r.tag.as_str(), (r.count, r.virtual_account_id)))
        .collect();
    let mut touched = BTreeSet::new();
    for (tag, count) in &demand {
        if catalog.tag(tag).is_none() {
            continue;
        }
        let was = before.get(*tag).copied();
        let after = i64::from(*count);
        if after == 0 {
            if let Some((was, _)) = was {
                usage::remove(c, instance.id, tag)?;
                if let Some(cache) = cache.as_deref_mut() {
                    cache.add_in_use(va, tag, -was);
                }
                touched.insert(tag.to_string());
            }
            continue;
        }
        match was {
            Some((was, in_va)) if was == after && in_va == va => continue,
            Some((_, in_va)) if in_va == va => {
                usage::change_count(c, instance.id, tag, after, now)?
            }
            _ => usage::set(c, instance.id, va, tag, after, now)?,
        }
        if let Some(cache) = cache.as_deref_mut() {
            cache.add_in_use(va, tag, after - was.map_or(0, |(n, _)| n));
        }
        touched.insert(tag.to_string());
    }
    for (tag, (was, _)) in &before {
        if !demand.contains_key(tag) {
            usage::remove(c, instance.id, tag)?;
            if let Some(cache) = cache.as_deref_mut() {
                cache.add_in_use(va, tag, -was);
            }
            touched.insert(tag.to_string());
        }
    }
    *stored = demand
        .iter()
        .filter(|(tag, count)| **count > 0 && catalog.tag(tag).is_some())
        .map(|(tag, count)| usage::Demand {
            tag: tag.to_string(),
            count: i64::from(*count),
            virtual_account_id: va,
        })
        .collect();
    // Every pool the answer speaks of is evaluated once: the changed ones
    // for compliance events, all of them for their status now.
    let mut pools: BTreeSet<String> = touched;
    pools.extend(
        demand
            .iter()
            .filter(|(tag, count)| **count > 0 && catalog.tag(tag).is_some())
            .map(|(tag, _)| tag.to_string()),
    );
    let pools: Vec<String> = pools.into_iter().collect();
    let (transitions, states) = pool::evaluate_with_states(
        c,
        catalog,
        instance.virtual_account_id,
        &instance.virtual_account,
        &pools,
        now,
        cache,
    )?;
    let evaluated: BTreeMap<&str, pool::PoolState> =
        pools.iter().map(String::as_str).zip(states).collect();
    let mut entitlements = Vec::with_capacity(demand.len());
    for (tag, count) in demand {
        let status = if catalog.tag(tag).is_none() {
            EntitlementStatus::Invalid
        } else if count == 0 {
            EntitlementStatus::Authorized
        } else {
            let status = match evaluated.get(tag) {
                Some(state) => state.status,
                None => pool::state(c, catalog, instance.virtual_account_id, tag, now)?.status,
            };
            rules::entitlement_status(status)
        };
        entitlements.push((tag.to_string(), count, status));
    }
    let overall = rules::overall(entitlements.iter().map(|e| e.2));
    let next_communication = now + rules::NEXT_COMMUNICATION;
    let deadline = now + rules::COMMUNICATION_DEADLINE;
    // A second message within the same second, with the same outcome,
    // would write the row as it is.
    let recorded = instance.authorized_at == Some(now)
        && instance.last_contact_at == now
        && instance.next_communication == Some(next_communication)
        && instance.deadline == Some(deadline)
        && instance.authorization_status.as_deref() == Some(overall.as_str());
    if !recorded {
        instances::record_authorization(
            c,
            instance.id,
            overall.as_str(),
            now,
            next_communication,
            deadline,
        )?;
        instance.authorized_at = Some(now);
        instance.last_contact_at = now;
        instance.next_communication = Some(next_communication);
        instance.deadline = Some(deadline);
        instance.authorization_status = Some(overall.as_str().to_string());
    }
    Ok(Authorization {
        overall,
        entitlements,
        authorized_at: now,
        next_communication,
        deadline,
        transitions,
    })
}
