//! Re-evaluating pools after anything that changes demand or availability,
//! and recording the compliance events, warning reports and Call Home
//! alerts that follow, in the same transaction as the change.

use super::catalog::Catalog;
use super::reports::{self, ReportKind};
use super::rules::{self, PoolStatus};
use crate::config::CallHomeCategory;
use crate::error::Result;
use crate::notify::Alert;
use crate::store::events::{NewEvent, Severity};
use crate::store::usage::PoolRow;
use crate::store::Db;
use crate::store::{events, licenses, names, pools, usage};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub use super::compliance::{state, PoolState};
pub use crate::domain::Transition;

/// Each pool's demand, recorded status and availability, kept by the writer
/// thread between device messages, so deciding an ENTITLEMENT reads no pool
/// or license row: the pool arithmetic stays in the writer's transaction,
/// one request after another, only without SQL. Exact by construction: it
/// is used only in writes made with `Writer::write_keeping_copies`, which
/// update it for everything they change, and it is dropped whenever the
/// writer's generation (any other write on its connection, any write
/// undone, a failed commit, a commit by any other connection such as a
/// CLI command) says the data moved under it.
/// Availability depends on the time, so it is kept for one second.
#[derive(Default)]
pub struct PoolCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// The writer generation the copies are exact for.
    seen: Option<u64>,
    pools: HashMap<(i64, String), CachedPool>,
}

struct CachedPool {
    row: PoolRow,
    available: i64,
    available_at: i64,
}

/// The cache, checked for one write; held for the length of the write.
pub struct Pools<'a> {
    state: MutexGuard<'a, CacheState>,
}

impl PoolCache {
    /// Opens the cache inside a write; `generation` is the writer's now.
    pub fn open(&self, generation: u64) -> Pools<'_> {
        // Only the writer thread takes it; a poisoned lock just means a
        // write panicked (and bumped the generation): start afresh.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.seen != Some(generation) {
            state.pools.clear();
            state.seen = Some(generation);
        }
        Pools { state }
    }
}

impl Pools<'_> {
    fn get(&mut self, c: &Db, va_id: i64, tag: &str, now: i64) -> Result<(PoolRow, i64)> {
        let key = (va_id, tag.to_string());
        if let Some(cached) = self.state.pools.get_mut(&key) {
            if cached.available_at != now {
                cached.available = licenses::available(c, va_id, tag, now)?;
                cached.available_at = now;
            }
            return Ok((cached.row.clone(), cached.available));
        }
        let row = usage::pool(c, va_id, tag)?;
        let available = licenses::available(c, va_id, tag, now)?;
        self.state.pools.insert(
            key,
            CachedPool {
                row: row.clone(),
                available,
                available_at: now,
            },
        );
        Ok((row, available))
    }

    /// Demand in a pool moved by `delta` (the triggers did the same in SQL).
    pub fn add_in_use(&mut self, va_id: i64, tag: &str, delta: i64) {
        if let Some(cached) = self.state.pools.get_mut(&(va_id, tag.to_string())) {
            cached.row.in_use += delta;
        }
    }

    /// Forgets every copy: the next use reads them again.
    pub fn forget(&mut self) {
        self.state.pools.clear();
    }

    fn recorded(&mut self, va_id: i64, tag: &str, status: &str, shortfall: i64, now: i64) {
        if let Some(cached) = self.state.pools.get_mut(&(va_id, tag.to_string())) {
            cached.row.status = status.to_string();
            cached.row.shortfall = shortfall;
            cached.row.announced_at = Some(now);
            cached.row.held = false;
        }
    }

    fn held(&mut self, va_id: i64, tag: &str, held: bool) {
        if let Some(cached) = self.state.pools.get_mut(&(va_id, tag.to_string())) {
            cached.row.held = held;
        }
    }
}

/// A shortfall that deepens again within this many seconds of the last
/// announcement waits for the window's end: a burst of registrations into
/// a short pool is one warning (event, report, alert), not one per device.
pub const COALESCE_SECONDS: i64 = 300;

/// Re-evaluates the given pools of one virtual account. Each change of
/// status, and each shortfall that got deeper, is an event; when any pool
/// fell (further) short, a Compliance Warning Report is written and a Call
/// Home alert queued, all in the caller's transaction.
pub fn evaluate(
    c: &Db,
    catalog: &Catalog,
    va_id: i64,
    va_name: &str,
    tags: &[String],
    now: i64,
) -> Result<Vec<Transition>> {
    evaluate_with_states(c, catalog, va_id, va_name, tags, now, None).map(|(t, _)| t)
}

/// [`evaluate`], also returning each pool's state as evaluated (in the
/// order of `tags`), so a caller needs not read the pools again; with
/// `cache`, pools are read from (and recorded into) the writer's copies.
pub fn evaluate_with_states(
    c: &Db,
    catalog: &Catalog,
    va_id: i64,
    va_name: &str,
    tags: &[String],
    now: i64,
    mut cache: Option<&mut Pools<'_>>,
) -> Result<(Vec<Transition>, Vec<PoolState>)> {
    let mut transitions = Vec::new();
    let mut states = Vec::with_capacity(tags.len());
    for tag in tags {
        // One read of the pool row gives demand and what was last recorded.
        let (row, available) = match cache.as_deref_mut() {
            Some(cache) => cache.get(c, va_id, tag, now)?,
            None => (
                usage::pool(c, va_id, tag)?,
                licenses::available(c, va_id, tag, now)?,
            ),
        };
        let current = PoolState {
            in_use: row.in_use,
            available,
            status: rules::pool_status(catalog.is_tracking(tag), row.in_use, available),
        };
        states.push(current);
        let shortfall = match current.status {
            PoolStatus::OutOfCompliance => {
                rules::shortfall(catalog.is_tracking(tag), current.in_use, current.available)
            }
            PoolStatus::InCompliance => 0,
        };
        let (stored, announced) = (PoolStatus::parse(&row.status), row.shortfall);
        // The deepest shortfall announced since the pool fell short: a
        // device flapping between two counts is not news every time, a
        // shortfall deeper than any announced is. (0 while short means "not
        // recorded yet", as in pools that were short before it was kept.)
        let peak = match (stored, current.status) {
            (_, PoolStatus::InCompliance) => 0,
            (PoolStatus::OutOfCompliance, _) => announced.max(shortfall),
            (PoolStatus::InCompliance, _) => shortfall,
        };
        if stored == current.status && announced == peak {
            // What was held is no deeper any more: nothing to announce.
            if row.held {
                pools::hold(c, va_id, tag, false)?;
                if let Some(cache) = cache.as_deref_mut() {
                    cache.held(va_id, tag, false);
                }
            }
            continue;
        }
        let deeper =
            stored == PoolStatus::OutOfCompliance && announced > 0 && shortfall > announced;
        // Deeper again soon after the last announcement: held, and
        // announced once when the window ends (here, or by the jobs).
        let recent = row
            .announced_at
            .is_some_and(|at| now.saturating_sub(at) < COALESCE_SECONDS);
        if deeper && stored == current.status && recent {
            if !row.held {
                pools::hold(c, va_id, tag, true)?;
                if let Some(cache) = cache.as_deref_mut() {
                    cache.held(va_id, tag, true);
                }
            }
            continue;
        }
        pools::record(c, va_id, tag, current.status.as_str(), peak, now)?;
        if let Some(cache) = cache.as_deref_mut() {
            cache.recorded(va_id, tag, current.status.as_str(), peak, now);
        }
        if stored != current.status || deeper {
            transitions.push(Transition {
                virtual_account: va_name.to_string(),
                tag: tag.clone(),
                in_use: current.in_use,
                available: current.available,
                to: current.status,
                previous_shortfall: if stored == PoolStatus::OutOfCompliance {
                    announced
                } else {
                    0
                },
            });
        }
    }
    for t in &transitions {
        let (severity, message) = match t.to {
            PoolStatus::OutOfCompliance if t.deeper() => (
                Severity::Major,
                format!(
                    "{} is further out of compliance in virtual account {:?}: {} in use, {} available, short {} (was short {})",
                    t.tag,
                    t.virtual_account,
                    t.in_use,
                    t.available,
                    t.shortfall(),
                    t.previous_shortfall
                ),
            ),
            PoolStatus::OutOfCompliance => (
                Severity::Major,
                format!(
                    "{} is out of compliance in virtual account {:?}: {} in use, {} available, short {}",
                    t.tag,
                    t.virtual_account,
                    t.in_use,
                    t.available,
                    t.shortfall()
                ),
            ),
            PoolStatus::InCompliance => (
                Severity::Info,
                format!(
                    "{} is back in compliance in virtual account {:?}: {} in use, {} available",
                    t.tag, t.virtual_account, t.in_use, t.available
                ),
            ),
        };
        events::record(
            c,
            now,
            NewEvent {
                kind: "compliance",
                severity,
                virtual_account: Some(&t.virtual_account),
                subject: Some(&t.tag),
                message,
            },
        )?;
    }
    let short: Vec<&Transition> = transitions
        .iter()
        .filter(|t| t.to == PoolStatus::OutOfCompliance)
        .collect();
    if !short.is_empty() {
        let report = warning_report(c, catalog, va_id, va_name, now)?;
        compliance_alert(&short, &report, now).enqueue(c)?;
    }
    Ok((transitions, states))
}

/// The Call Home message for pools that fell (further) short; full text
/// attaches the warning report as `satellite report show` prints it.
fn compliance_alert(short: &[&Transition], report: &reports::Report, now: i64) -> Alert {
    let first = short[0];
    let more = if short.len() > 1 {
        format!(" and {} more", short.len() - 1)
    } else {
        String::new()
    };
    let summary = if first.deeper() {
        format!(
            "{} further out of compliance in virtual account {} (short {}, was {}){more}",
            first.tag,
            first.virtual_account,
            first.shortfall(),
            first.previous_shortfall
        )
    } else {
        format!(
            "{} out of compliance in virtual account {} (short {}){more}",
            first.tag,
            first.virtual_account,
            first.shortfall()
        )
    };
    let detail = format!(
        "satellite report show {} (show compliance: pools that are short)\n{}",
        report.id,
        reports::render(report, reports::Format::Text)
    );
    Alert::new(
        CallHomeCategory::Compliance,
        "COMPLIANCE",
        "Major",
        summary,
        detail,
        now,
    )
}

fn warning_report(
    c: &Db,
    catalog: &Catalog,
    va_id: i64,
    va_name: &str,
    now: i64,
) -> Result<reports::Report> {
    let account = names::account_of(c, va_id)?;
    reports::build(
        c,
        catalog,
        ReportKind::ComplianceWarning,
        &account,
        Some(va_name),
        now,
    )
}

/// Writes a Compliance Warning Report for one virtual account.
pub fn warn(c: &Db, catalog: &Catalog, va_id: i64, va_name: &str, now: i64) -> Result<i64> {
    warning_report(c, catalog, va_id, va_name, now).map(|r| r.id)
}
