//! What this node knows of its sync with the cloud: the ledger of bundles
//! sent and received, and the live link's health.

use super::live::LiveState;
use super::{stamp, SyncError};
use crate::store::sync as ledger;
use crate::store::Db;
use serde::Serialize;

/// What `satellite status` shows of sync.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    pub mode: String,
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

pub fn status(c: &Db, mode: &str, now: i64) -> Result<SyncStatus, SyncError> {
    let up = ledger::upstream(c)?;
    let mut s = SyncStatus {
        mode: mode.to_string(),
        registered: up.as_ref().is_some_and(|u| u.registered_at.is_some()),
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
    s.next_attempt = live.next_attempt_at.map(stamp);
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
