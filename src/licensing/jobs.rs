//! Work the clock triggers: term licenses starting and ending, the Periodic
//! Record on `reports.schedule`, and the daily usage snapshot.

use super::catalog::SharedCatalog;
use super::pool;
use super::reports::{self, ReportKind};
use crate::clock::Clock;
use crate::config::CallHomeCategory;
use crate::error::{Error, Result};
use crate::notify::Alert;
use crate::notify::Notifier;
use crate::store::events::{NewEvent, Severity};
use crate::store::Db;
use crate::store::{
    deadlines, events, instances, licenses, messages, names, pools, settings, Store,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const LAST_RUN: &str = "jobs.last_run";
const LAST_SNAPSHOT_DAY: &str = "jobs.last_usage_snapshot";
/// A Periodic Record that came due and is not stored yet (its time).
const PERIODIC_DUE: &str = "jobs.periodic_due";
/// How far each kind of lapse has been announced: `deadline:row id`.
const LAPSED_THROUGH: [&str; 2] = ["jobs.lapsed.authorization", "jobs.lapsed.grace"];
/// Lapsed instances announced per write: each batch holds the writer a few ms.
const LAPSE_BATCH: usize = 500;
/// How long a device may retry a message and still get the first answer.
const ANSWER_RETENTION: i64 = 30 * super::rules::DAY;
/// Old answers pruned per write: each batch holds the writer a few ms.
const PRUNE_BATCH: usize = 500;
/// Left between two batches. SQLite's lock is not a queue: batches sent
/// back to back left a CLI command (polling every millisecond) waiting
/// through several of them, 106 ms at 100k instances, while no batch held
/// the lock for more than 29 ms.
const BETWEEN_BATCHES: Duration = Duration::from_millis(3);

pub struct Jobs {
    pub store: Store,
    pub catalog: Arc<SharedCatalog>,
    pub clock: Clock,
    pub account: String,
    pub report_schedule: cron::Schedule,
    pub notifier: Arc<Notifier>,
}

/// What one run did (for logs and tests).
#[derive(Debug, Default, Clone)]
pub struct RunOutcome {
    pub compliance_changes: usize,
    pub authorizations_expired: usize,
    pub grace_periods_expired: usize,
    pub periodic_reports: usize,
    pub usage_snapshots: usize,
    /// Registration tokens and identity certificates that ran out.
    pub expiry_alerts: usize,
}

impl Jobs {
    /// Does whatever came due since the last run. Blocking: call it from a
    /// plain thread (the scheduler's, or a test's).
    pub fn run_due(&self) -> Result<RunOutcome> {
        let span = tracing::info_span!("jobs");
        let _entered = span.enter();
        let now = self.clock.unix();
        // Catalog additions may have arrived by sync, from any process.
        if let Err(e) = self.store.read(|c| {
            self.catalog
                .refresh(c)
                .map_err(|e| Error::invalid("catalog", e))
        }) {
            tracing::error!(error = %e, "cannot reload the catalog; keeping the one loaded");
        }
        let catalog = self.catalog.get();
        let account = self.account.clone();
        let schedule = self.report_schedule.clone();
        // Each write here is short: work that grows with the number of
        // product instances runs in bounded batches or off the writer.
        let (mut outcome, transitions) = self.store.writer().write_blocking(move |c| {
            let mut outcome = RunOutcome::default();
            let mut transitions = Vec::new();
            let last: Option<i64> = settings::get(c, LAST_RUN)?.and_then(|v| v.parse().ok());
            // The first run only marks the start: nothing before it is due.
            let last = last.unwrap_or(now);
            for key in LAPSED_THROUGH {
                if settings::get(c, key)?.is_none() {
                    settings::set(c, key, &format!("{last}:{}", i64::MAX))?;
                }
            }
            if now > last {
                for (va_id, tag) in licenses::pools_changing_between(c, last, now)? {
                    let va_name = names::virtual_account(c, va_id)?;
                    transitions.extend(pool::evaluate(c, &catalog, va_id, &va_name, &[tag], now)?);
                }
                outcome.expiry_alerts = alert_expiries(c, last, now)?;
            }
            // Deeper shortfalls held back within the window, announced now.
            for (va_id, tag) in pools::held_until(c, now - pool::COALESCE_SECONDS)? {
                let va_name = names::virtual_account(c, va_id)?;
                transitions.extend(pool::evaluate(c, &catalog, va_id, &va_name, &[tag], now)?);
            }
            if now > last && crate::config::fires_between(&schedule, last, now) {
                settings::set(c, PERIODIC_DUE, &now.to_string())?;
            }
            // A clock set back never replays a window already handled.
            settings::set(c, LAST_RUN, &now.max(last).to_string())?;
            let today = time::OffsetDateTime::from_unix_timestamp(now)
                .map(|t| t.date().to_string())
                .unwrap_or_default();
            if settings::get(c, LAST_SNAPSHOT_DAY)?.as_deref() != Some(today.as_str()) {
                outcome.usage_snapshots = reports::snapshot_usage(c, &catalog, &account, now)?;
                settings::set(c, LAST_SNAPSHOT_DAY, &today)?;
            }
            outcome.compliance_changes = transitions.len();
            Ok::<_, Error>((outcome, transitions))
        })?;
        (
            outcome.authorizations_expired,
            outcome.grace_periods_expired,
        ) = self.record_expired_authorizations(now)?;
        outcome.periodic_reports = self.periodic_record()?;
        // Old answers go in bounded batches, each its own short write.
        loop {
            let before = now - ANSWER_RETENTION;
            let pruned = self
                .store
                .writer()
                .write_blocking(move |c| messages::prune(c, before, PRUNE_BATCH))?;
            if pruned < PRUNE_BATCH {
                break;
            }
            std::thread::sleep(BETWEEN_BATCHES);
        }
        self.notifier.compliance(&transitions);
        if outcome.expiry_alerts > 0 {
            self.notifier.queued();
        }
        if outcome.periodic_reports > 0 {
            tracing::info!("generated the Periodic Record");
        }
        Ok(outcome)
    }

    /// Runs `run_due` every few seconds until `stop` is set.
    pub fn spawn(
        self: Arc<Self>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("jobs".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // The pair's standby node leaves the jobs to the active one.
                if !self.store.is_active() {
                    std::thread::sleep(Duration::from_millis(250));
                    continue;
                }
                if let Err(e) = self.run_due() {
                    tracing::error!(error = %e, "scheduled jobs failed; retrying at the next tick");
                }
                for _ in 0..20 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        })
    }
}

impl Jobs {
    /// Instances whose communication deadline passed since the last run
    /// are AUTHORIZATION_EXPIRED from now on, and those whose grace period
    /// ended then are GRACE_PERIOD_EXPIRED: one event at each deadline.
    /// Either way they still count until removed. Announced in batches,
    /// each with its cursor in the same write, so each is told exactly once
    /// and no write grows with the number of instances that lapsed at once.
    /// Returns how many lapsed at each deadline.
    fn record_expired_authorizations(&self, now: i64) -> Result<(usize, usize)> {
        let mut lapsed = [0; 2];
        for (i, (offset, kind, status, severity, consequence)) in [
            (
                0,
                "authorization_expired",
                "AUTHORIZATION_EXPIRED",
                Severity::Minor,
                "it is in its 90-day grace period; its licenses stay in use until it renews or is removed",
            ),
            (
                super::rules::GRACE_PERIOD,
                "grace_period_expired",
                "GRACE_PERIOD_EXPIRED",
                Severity::Major,
                "its grace period is over; its licenses stay in use until it renews or is removed (`satellite instance remove` releases them)",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let key = LAPSED_THROUGH[i];
            loop {
                let n = self.store.writer().write_blocking(move |c| {
                    let Some(cursor) = settings::get(c, key)? else {
                        return Ok::<_, Error>(0);
                    };
                    let (at, row) = cursor
                        .split_once(':')
                        .and_then(|(a, r)| Some((a.parse().ok()?, r.parse().ok()?)))
                        .unwrap_or((now, i64::MAX));
                    let expired =
                        instances::deadline_passed_after(c, offset, (at, row), now, LAPSE_BATCH)?;
                    for instance in &expired {
                        let udi = instance.udi.to_string();
                        events::record(
                            c,
                            now,
                            NewEvent {
                                kind,
                                severity,
                                virtual_account: Some(&instance.virtual_account),
                                subject: Some(&udi),
                                message: format!(
                                    "product instance {udi} ({}) has not communicated since {}: {status}; {consequence}",
                                    instance.hostname.as_deref().unwrap_or("no hostname"),
                                    crate::clock::rfc3339(instance.last_contact_at)
                                ),
                            },
                        )?;
                    }
                    // Where this batch ended, or (all done) `now` itself.
                    let through = match expired.last() {
                        Some(l) if expired.len() == LAPSE_BATCH => (l.lapsed_at, l.row_id),
                        _ => (now.max(at), i64::MAX),
                    };
                    settings::set(c, key, &format!("{}:{}", through.0, through.1))?;
                    Ok(expired.len())
                })?;
                lapsed[i] += n;
                if n < LAPSE_BATCH {
                    break;
                }
                std::thread::sleep(BETWEEN_BATCHES);
            }
        }
        Ok((lapsed[0], lapsed[1]))
    }

    /// The Periodic Record that came due: built from a read snapshot (at a
    /// million product instances that reads for seconds), then stored in a
    /// short write that also clears the mark, so it is stored exactly once
    /// even across a crash in between.
    fn periodic_record(&self) -> Result<usize> {
        let Some(due) = self.store.read(|c| settings::get(c, PERIODIC_DUE))? else {
            return Ok(0);
        };
        let Ok(at) = due.parse::<i64>() else {
            return Ok(0);
        };
        let catalog = self.catalog.get();
        let account = self.account.clone();
        let composed = self.store.read(|c| {
            crate::store::snapshot(c, |snapshot| {
                reports::compose(snapshot, &catalog, ReportKind::Periodic, &account, None, at)
            })
        })?;
        self.store.writer().write_blocking(move |c| {
            if settings::get(c, PERIODIC_DUE)?.as_deref() != Some(due.as_str()) {
                return Ok::<_, Error>(0);
            }
            reports::store(c, composed)?;
            settings::remove(c, PERIODIC_DUE)?;
            Ok(1)
        })
    }
}

/// Registration tokens and identity certificates that ran out in
/// `(after, now]`: one Call Home registration alert each, queued in the
/// jobs' transaction so each is announced exactly once.
fn alert_expiries(c: &Db, after: i64, now: i64) -> Result<usize> {
    let mut n = 0;
    for (prefix, va, description) in deadlines::tokens_expired(c, after, now)? {
        Alert::new(
            CallHomeCategory::Registration,
            "TOKEN_EXPIRED",
            "Minor",
            format!("registration token {prefix}… of virtual account {va} expired"),
            format!(
                "satellite token list --va {va}\nToken: {prefix}…\nDescription: {description}\nStatus: EXPIRED\nDevices it registered stay registered; create a new token for new devices.\n"
            ),
            now,
        )
        .enqueue(c)?;
        n += 1;
    }
    for (udi, serial, va) in deadlines::certificates_expired(c, after, now)? {
        Alert::new(
            CallHomeCategory::Registration,
            "CERTIFICATE_EXPIRED",
            "Major",
            format!("identity certificate of {udi} in virtual account {va} expired without renewal"),
            format!(
                "satellite instance show {udi}\nCertificate serial: {serial}\nThe device must register again (license smart register idtoken <token>).\n"
            ),
            now,
        )
        .enqueue(c)?;
        n += 1;
    }
    Ok(n)
}
