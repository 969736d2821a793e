//! The running server's share of sync: bundles dropped into the import
//! folder are applied within seconds and filed away, and a satellite in
//! disconnected mode writes its usage bundle on `sync.export_schedule`.

use super::bundle::{self, Limits, Rule};
use super::folder::{self, Settled};
use super::live::{self, LiveState};
use super::status::EXPORT_LAST_RUN;
use super::{cloud, current_catalog, satellite, Keys, SyncError};
use crate::clock::Clock;
use crate::config::{Config, Role, SyncMode};
use crate::notify::Notifier;
use crate::store::{settings, Store};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const LIVE_LAST_RUN: &str = "sync.live.last_run";
/// The overdue level already announced for the current last sync.
const OVERDUE_ANNOUNCED: &str = "sync.overdue.announced";
/// Days without a successful sync before the `sync` alerts go out.
pub const OVERDUE_DAYS: [i64; 2] = [30, 60];
/// A file that is not a whole zip yet (no end of central directory) and
/// was written to this recently may still be on its way: a copy from a slow
/// stick, or one an operator paused. It waits, and is read again each time
/// it settles; only a file that has not changed for this long is rejected.
pub const STALLED: Duration = Duration::from_secs(10 * 60);

pub struct SyncService {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub notifier: Arc<Notifier>,
    pub keys: Arc<Keys>,
    pub export_schedule: cron::Schedule,
    /// `sync.schedule`: live sync in connected mode.
    pub live_schedule: cron::Schedule,
}

/// What happened to one file of the import folder.
#[derive(Debug)]
pub enum Outcome {
    Applied(String),
    Rejected(String),
    /// Not complete yet: looked at again later.
    Waiting,
}

impl SyncService {
    pub fn spawn(
        self: Arc<Self>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("sync".into())
            .spawn(move || {
                let mut settled = Settled::default();
                let mut recorded = false;
                while !stop.load(Ordering::Relaxed) {
                    // The pair's standby node leaves sync to the active one.
                    if self.store.is_active() {
                        if !recorded {
                            recorded = self.record_running();
                        }
                        self.tick(&mut settled);
                    }
                    for _ in 0..4 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(250));
                    }
                }
            })
    }

    /// What `status` shows as the server's sync, whatever the file says
    /// later: recorded once this node serves.
    fn record_running(&self) -> bool {
        let config = self.config.clone();
        match self
            .store
            .writer()
            .write_blocking(move |c| super::status::record_running(c, &config))
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot record the sync settings the server runs with");
                false
            }
        }
    }

    fn tick(&self, settled: &mut Settled) {
        for path in settled.ready(&self.config.sync.import_dir) {
            let span = tracing::info_span!("import_folder", file = %path.display());
            let _entered = span.enter();
            match self.handle_file(&path) {
                Outcome::Waiting => settled.forget(&path),
                Outcome::Applied(what) => tracing::info!("{}: {what}", path.display()),
                Outcome::Rejected(why) => tracing::warn!(
                    "{}: rejected, moved to {}/: {why}",
                    path.display(),
                    folder::REJECTED
                ),
            }
        }
        if let Err(e) = self.export_if_due() {
            tracing::error!(error = %e, "scheduled usage export failed; it is retried at the next tick");
        }
        match self.live_if_due() {
            Ok(Some(synced)) => tracing::info!(
                sent = synced.sent.sequence,
                received = synced.received.sequence,
                millis = synced.millis as u64,
                "live sync with the cloud done"
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "live sync with the cloud failed; retried after a backoff, routers are served from the local database meanwhile")
            }
        }
        if let Err(e) = self.announce_overdue() {
            tracing::error!(error = %e, "cannot check whether sync is overdue");
        }
    }

    fn next_live(&self, after: i64) -> Option<i64> {
        crate::config::next_fire(&self.live_schedule, after)
    }

    /// Runs the live sync when `sync.schedule` comes due, or when the
    /// backoff after a failure has passed, on a registered connected
    /// satellite. Uses its own connection: the network exchange happens
    /// between two short transactions and must not hold the writer.
    pub fn live_if_due(&self) -> Result<Option<live::Synced>, SyncError> {
        if self.config.role != Role::Satellite || self.config.sync.mode != SyncMode::Connected {
            return Ok(None);
        }
        let now = self.clock.unix();
        let mut conn = self.store.location().connect()?;
        let registered =
            crate::store::sync::upstream(&conn)?.is_some_and(|u| u.registered_at.is_some());
        if !registered {
            return Ok(None);
        }
        let state = LiveState::load(&conn)?;
        let last_run: Option<i64> =
            settings::get(&conn, LIVE_LAST_RUN)?.and_then(|v| v.parse().ok());
        let due = if state.failures > 0 {
            state.next_attempt_at.is_none_or(|t| t <= now)
        } else {
            // The first run only marks the start: nothing before it is due.
            last_run
                .and_then(|last| self.next_live(last))
                .is_some_and(|next| next <= now)
        };
        if !due {
            if last_run.is_none() {
                settings::set(&conn, LIVE_LAST_RUN, &now.to_string())?;
            }
            // What `satellite status` shows as the next attempt (written
            // only when it changes, e.g. after a `satellite sync`).
            if let Some(next) = self.next_live(last_run.unwrap_or(now)) {
                if state.failures == 0 && state.next_attempt_at != Some(next) {
                    crate::store::transaction(&mut conn, |c| LiveState::scheduled(c, next))?;
                }
            }
            return Ok(None);
        }
        settings::set(&conn, LIVE_LAST_RUN, &now.to_string())?;
        let (synced, transitions) = live::exchange_and_record(
            &mut conn,
            &self.config,
            &self.keys,
            now,
            self.next_live(now),
        )?;
        self.notifier.compliance(&transitions);
        Ok(Some(synced))
    }

    /// Events and Call Home `sync` alerts when a registered satellite has
    /// not synced for 30 and again for 60 days (live or by carried files:
    /// the last entitlement bundle applied is the last sync).
    fn announce_overdue(&self) -> Result<(), SyncError> {
        if self.config.role != Role::Satellite {
            return Ok(());
        }
        let now = self.clock.unix();
        // Read first: the writer is only asked when an alert is due.
        if self.store.read(|c| overdue(c, now))?.is_none() {
            return Ok(());
        }
        let mode = self.config.sync.mode;
        self.store.writer().write_blocking(move |c| {
            let Some((cloud_id, last, days)) = overdue(c, now)? else {
                return Ok(());
            };
            crate::notify::sync_overdue(c, Some(last), last + days * 86_400, now)?;
            crate::store::events::record(
                c,
                now,
                crate::store::events::NewEvent {
                    kind: "sync",
                    severity: crate::store::events::Severity::Major,
                    virtual_account: None,
                    subject: Some(&cloud_id),
                    message: format!(
                        "no successful sync with cloud {cloud_id} for {days} days (last: {}); {}",
                        crate::clock::rfc3339(last),
                        match mode {
                            SyncMode::Connected =>
                                "check sync.cloud_url, sync.proxy and the network",
                            SyncMode::Disconnected =>
                                "carry a usage bundle to the cloud and import its answer",
                        }
                    ),
                },
            )?;
            settings::set(
                c,
                OVERDUE_ANNOUNCED,
                &serde_json::to_string(&(last, days)).unwrap_or_default(),
            )?;
            Ok::<_, SyncError>(())
        })
    }

    /// Applies (satellite) or processes (cloud) one file, then files it away.
    pub fn handle_file(&self, path: &Path) -> Outcome {
        let result = self.apply_file(path);
        if let Err(SyncError::Refused(e)) = &result {
            let recent = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age < STALLED);
            if e.rule == Rule::NotABundle && recent {
                return Outcome::Waiting;
            }
        }
        let (applied, text) = match result {
            Ok(text) => (true, text),
            Err(e) => (false, e.to_string()),
        };
        let reason = (!applied).then_some(text.as_str());
        if let Err(e) = folder::file_away(path, applied, reason) {
            tracing::error!(error = %e, "{}: cannot move it out of the import folder", path.display());
        }
        if applied {
            Outcome::Applied(text)
        } else {
            Outcome::Rejected(text)
        }
    }

    fn apply_file(&self, path: &Path) -> Result<String, SyncError> {
        let limits = Limits::default();
        let opened = bundle::open_file(path, &limits)?;
        let config = self.config.clone();
        let keys = self.keys.clone();
        let now = self.clock.unix();
        match self.config.role {
            Role::Satellite => {
                let (applied, transitions) = self.store.writer().write_blocking(move |c| {
                    let catalog = current_catalog(c, &config)?;
                    satellite::import(c, &keys.node(&config, &catalog, now), &opened)
                })?;
                self.notifier.compliance(&transitions);
                Ok(if applied.already_applied {
                    format!(
                        "already applied ({} bundle {}); nothing changed",
                        applied.kind, applied.sequence
                    )
                } else {
                    format!(
                        "{} bundle {} from {} applied: {}",
                        applied.kind, applied.sequence, applied.from, applied.counts
                    )
                })
            }
            Role::Cloud => {
                let (processed, transitions) = self.store.writer().write_blocking(move |c| {
                    let catalog = current_catalog(c, &config)?;
                    cloud::process(c, &keys.node(&config, &catalog, now), &opened)
                })?;
                self.notifier.compliance(&transitions);
                Ok(format!(
                    "{} bundle {} from satellite {:?} processed; answer written to {}",
                    processed.request.kind,
                    processed.request.sequence,
                    processed.satellite,
                    processed.path
                ))
            }
        }
    }

    /// Writes the usage bundle when `sync.export_schedule` comes due, on a
    /// registered satellite in disconnected mode.
    pub fn export_if_due(&self) -> Result<Option<super::Written>, SyncError> {
        if self.config.role != Role::Satellite || self.config.sync.mode != SyncMode::Disconnected {
            return Ok(None);
        }
        let config = self.config.clone();
        let keys = self.keys.clone();
        let schedule = self.export_schedule.clone();
        let now = self.clock.unix();
        let (last, registered) = self.store.read(|c| {
            let last: Option<i64> = settings::get(c, EXPORT_LAST_RUN)?.and_then(|v| v.parse().ok());
            let registered =
                crate::store::sync::upstream(c)?.is_some_and(|u| u.registered_at.is_some());
            Ok::<_, SyncError>((last, registered))
        })?;
        // The first run only marks the start: nothing before it is due.
        let last = last.unwrap_or(now);
        let mark = now.max(last).to_string();
        if !crate::config::fires_between(&schedule, last, now) || !registered {
            self.store
                .writer()
                .write_blocking(move |c| settings::set(c, EXPORT_LAST_RUN, &mark))?;
            return Ok(None);
        }
        // Sealed from a read snapshot on a connection of its own; the
        // writer (and the routers behind it) waits only for the record.
        let mut conn = self.store.location().connect()?;
        let written = satellite::export_usage_from_snapshot(&mut conn, &config, &keys, now, |c| {
            settings::set(c, EXPORT_LAST_RUN, &mark).map_err(SyncError::from)
        })
        .map(Some)?;
        if let Some(w) = &written {
            tracing::info!(path = %w.path, sequence = w.sequence, "scheduled usage export written; carry it to the cloud");
        }
        Ok(written)
    }
}

/// The overdue level (30 or 60 days) reached and not yet announced for the
/// current last sync: (cloud id, last sync, days).
fn overdue(c: &crate::store::Db, now: i64) -> Result<Option<(String, i64, i64)>, SyncError> {
    let Some(up) = crate::store::sync::upstream(c)? else {
        return Ok(None);
    };
    let Some(registered_at) = up.registered_at else {
        return Ok(None);
    };
    let last = crate::store::sync::summary(c, &up.cloud_id)?
        .last_received_at
        .unwrap_or(registered_at);
    let announced: (i64, i64) = settings::get(c, OVERDUE_ANNOUNCED)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or((0, 0));
    let already = if announced.0 == last { announced.1 } else { 0 };
    let reached = OVERDUE_DAYS
        .iter()
        .rev()
        .find(|&&d| now - last >= d * 86_400)
        .copied();
    Ok(reached
        .filter(|&days| days > already)
        .map(|days| (up.cloud_id, last, days)))
}
