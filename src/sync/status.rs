//! What this node knows of its sync with the cloud: the ledger of bundles
//! sent and received, and the live link's health.

use super::live::LiveState;
use super::{stamp, SyncError};
use crate::config::Config;
use crate::store::sync as ledger;
use crate::store::{settings, Db};
use serde::{Deserialize, Serialize};

/// When the export schedule last ran (the sync service keeps it).
pub(crate) const EXPORT_LAST_RUN: &str = "sync.export.last_run";

/// Where a running server records the sync settings it runs with.
const RUNNING_KEY: &str = "server.sync";

/// The sync settings a server runs with, recorded when it starts: `status`
/// shows what the server does, and says when the file has changed since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    pub mode: String,
    pub cloud_url: Option<String>,
    /// Without credentials.
    pub proxy: Option<String>,
    pub schedule: String,
    pub export_schedule: String,
}

impl Running {
    pub fn of(config: &Config) -> Self {
        Self {
            mode: config.sync.mode.as_str().to_string(),
            cloud_url: config.sync.cloud_url.clone(),
            proxy: config
                .sync
                .proxy
                .as_deref()
                .map(super::live::without_credentials),
            schedule: config.sync.schedule.clone(),
            export_schedule: config.sync.export_schedule.clone(),
        }
    }

    /// What differs between the file and the server, in words.
    fn differences(&self, file: &Running) -> Vec<String> {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        let mut said = Vec::new();
        let mut differ = |key: &str, running: String, in_file: String| {
            if running != in_file {
                said.push(format!(
                    "{key}: the server runs {running:?}, the file says {in_file:?}"
                ));
            }
        };
        differ("sync.mode", self.mode.clone(), file.mode.clone());
        differ(
            "sync.cloud_url",
            show(&self.cloud_url),
            show(&file.cloud_url),
        );
        differ("sync.proxy", show(&self.proxy), show(&file.proxy));
        differ(
            "sync.schedule",
            self.schedule.clone(),
            file.schedule.clone(),
        );
        differ(
            "sync.export_schedule",
            self.export_schedule.clone(),
            file.export_schedule.clone(),
        );
        said
    }
}

/// Records, at a server's start, the settings it runs with.
pub fn record_running(c: &Db, config: &Config) -> Result<(), SyncError> {
    let text = serde_json::to_string(&Running::of(config))
        .map_err(|e| crate::error::Error::invalid("sync", e.to_string()))?;
    Ok(settings::set(c, RUNNING_KEY, &text)?)
}

fn running(c: &Db) -> Result<Option<Running>, SyncError> {
    Ok(settings::get(c, RUNNING_KEY)?.and_then(|v| serde_json::from_str(&v).ok()))
}

/// What `satellite status` shows of sync.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    /// What the running server does (what the file says when none runs).
    pub mode: String,
    pub cloud_url: Option<String>,
    pub proxy: Option<String>,
    /// Whether a server is serving this data dir now.
    pub server_running: bool,
    /// Settings the file has changed since the running server started
    /// (they apply at its restart).
    pub config_differs: Vec<String>,
    /// Disconnected mode: when the server writes the next usage bundle.
    pub next_export: Option<String>,
    pub registered: bool,
    pub satellite_id: Option<String>,
    pub cloud_id: Option<String>,
    /// The cloud's bundle signer this satellite pinned (SHA-256 of its
    /// certificate): what an officer compares `signer.pem` with.
    pub cloud_signer_sha256: Option<String>,
    pub last_export: Option<String>,
    pub last_export_file: Option<String>,
    pub last_import: Option<String>,
    pub sequence_sent: Option<u64>,
    pub sequence_received: Option<u64>,
    pub last_acknowledged: Option<String>,
    /// Days since the cloud last acknowledged usage (since registration if never).
    pub days_since_acknowledged: Option<i64>,
    /// Live sync (connected mode): the last success, the next attempt (the
    /// schedule, or the retry after a failure), the last error.
    pub last_success: Option<String>,
    pub next_attempt: Option<String>,
    pub last_error: Option<String>,
    pub failures: u32,
}

/// Sync as it stands: the running server's settings when `server_running`
/// (else the file's), the ledger, and the live link's health.
pub fn status(
    c: &Db,
    config: &Config,
    server_running: bool,
    now: i64,
) -> Result<SyncStatus, SyncError> {
    let up = ledger::upstream(c)?;
    let file = Running::of(config);
    let recorded = if server_running { running(c)? } else { None };
    let config_differs = recorded
        .as_ref()
        .map(|r| r.differences(&file))
        .unwrap_or_default();
    let shown = recorded.unwrap_or(file);
    let registered = up.as_ref().is_some_and(|u| u.registered_at.is_some());
    let next_export = (shown.mode == "disconnected" && registered)
        .then(|| next_export(c, &shown.export_schedule, now))
        .transpose()?
        .flatten();
    let mut s = SyncStatus {
        mode: shown.mode.clone(),
        cloud_url: shown.cloud_url.clone(),
        proxy: shown.proxy.clone(),
        server_running,
        config_differs,
        next_export,
        registered,
        satellite_id: up.as_ref().map(|u| u.satellite_id.clone()),
        cloud_id: up.as_ref().map(|u| u.cloud_id.clone()),
        cloud_signer_sha256: up.as_ref().and_then(|u| u.cloud_signer_sha256.clone()),
        last_export: None,
        last_export_file: None,
        last_import: None,
        sequence_sent: None,
        sequence_received: None,
        last_acknowledged: None,
        days_since_acknowledged: None,
        last_success: None,
        next_attempt: None,
        last_error: None,
        failures: 0,
    };
    let live = LiveState::load(c)?;
    s.last_error = live.last_error;
    s.failures = live.failures;
    // The next live attempt means something only while the server is connected.
    if shown.mode == "connected" {
        s.next_attempt = live.next_attempt_at.map(stamp);
    }
    if let Some(up) = &up {
        let l = ledger::summary(c, &up.cloud_id)?;
        s.last_export = l.last_sent_at.map(stamp);
        s.last_export_file = l.last_sent_file;
        s.last_import = l.last_received_at.map(stamp);
        s.sequence_sent = l.last_sent_sequence;
        s.sequence_received = l.last_received_sequence;
        s.last_acknowledged = l.last_acknowledged_at.map(stamp);
        // A sync succeeded when the cloud's answer was applied, live or carried.
        s.last_success = l.last_received_at.map(stamp);
        s.days_since_acknowledged = l
            .last_acknowledged_at
            .or(up.registered_at)
            .map(|t| (now - t).max(0) / 86_400);
    }
    Ok(s)
}

/// When the export schedule next fires after the last scheduled export (or now).
fn next_export(c: &Db, schedule: &str, now: i64) -> Result<Option<String>, SyncError> {
    let Ok(schedule) = schedule.parse::<cron::Schedule>() else {
        return Ok(None);
    };
    let last: i64 = settings::get(c, EXPORT_LAST_RUN)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(now);
    Ok(crate::config::next_fire(&schedule, last).map(stamp))
}
