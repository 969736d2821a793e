//! The running server's share of sync: bundles dropped into the import
//! folder are applied within seconds and filed away, and a satellite in
//! disconnected mode writes its usage bundle on `sync.export_schedule`.

use super::bundle::{self, Limits, Rule};
use super::folder::{self, Settled};
use super::{cloud, current_catalog, satellite, Keys, SyncError};
use crate::clock::Clock;
use crate::config::{Config, Role, SyncMode};
use crate::licensing::Notifier;
use crate::store::{settings, Store};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const EXPORT_LAST_RUN: &str = "sync.export.last_run";
/// A file that is not a zip yet and was written this recently may still be
/// on its way (a slow stick): it gets more time before it is rejected.
const STILL_ARRIVING: Duration = Duration::from_secs(30);

pub struct SyncService {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub notifier: Arc<Notifier>,
    pub keys: Arc<Keys>,
    pub export_schedule: cron::Schedule,
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
                while !stop.load(Ordering::Relaxed) {
                    self.tick(&mut settled);
                    for _ in 0..4 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(250));
                    }
                }
            })
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
    }

    /// Applies (satellite) or processes (cloud) one file, then files it away.
    pub fn handle_file(&self, path: &Path) -> Outcome {
        let result = self.apply_file(path);
        if let Err(SyncError::Refused(e)) = &result {
            let recent = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age < STILL_ARRIVING);
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
        let bytes = bundle::read_file(path, &limits)?;
        let opened = bundle::open(&bytes, &limits)?;
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
        let written = self.store.writer().write_blocking(move |c| {
            let last: Option<i64> = settings::get(c, EXPORT_LAST_RUN)?.and_then(|v| v.parse().ok());
            // The first run only marks the start: nothing before it is due.
            let last = last.unwrap_or(now);
            let due = crate::config::fires_between(&schedule, last, now);
            settings::set(c, EXPORT_LAST_RUN, &now.max(last).to_string())?;
            let registered =
                crate::store::sync::upstream(c)?.is_some_and(|u| u.registered_at.is_some());
            if !due || !registered {
                return Ok::<_, SyncError>(None);
            }
            let catalog = current_catalog(c, &config)?;
            satellite::export_usage(c, &keys.node(&config, &catalog, now)).map(Some)
        })?;
        if let Some(w) = &written {
            tracing::info!(path = %w.path, sequence = w.sequence, "scheduled usage export written; carry it to the cloud");
        }
        Ok(written)
    }
}
