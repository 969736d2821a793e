//! The record of live sync attempts: what `satellite status` and `/metrics`
//! show, and what spaces out retries while the cloud is unreachable.

use crate::clock::rfc3339;
use crate::config::CallHomeCategory;
use crate::notify::Alert;
use crate::store::events::{self, NewEvent, Severity};
use crate::store::settings;
use crate::store::Db;
use serde::{Deserialize, Serialize};

pub const STATE_KEY: &str = "sync.live";
/// The first retry after a failure, then doubling up to `BACKOFF_MAX`.
pub const BACKOFF_BASE: i64 = 2;
pub const BACKOFF_MAX: i64 = 3_600;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    pub last_attempt_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub failures: u32,
}

/// Exponential backoff with jitter: the `failures`-th retry waits between
/// half and all of `BACKOFF_BASE * 2^(failures-1)` seconds (capped), so a
/// fleet of satellites that lost the cloud together does not return in step.
pub fn backoff(failures: u32, random: u32) -> i64 {
    let exp = failures.saturating_sub(1).min(20);
    let full = (BACKOFF_BASE << exp).min(BACKOFF_MAX);
    let half = full / 2;
    half + i64::from(random) % (full - half + 1)
}

fn random() -> u32 {
    let mut b = [0u8; 4];
    // Without randomness the retry still happens, only not spread out.
    let _ = crate::pki::fill_random(&mut b);
    u32::from_le_bytes(b)
}

impl LiveState {
    pub fn load(c: &Db) -> crate::error::Result<Self> {
        Ok(settings::get(c, STATE_KEY)?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default())
    }

    fn save(&self, c: &Db) -> crate::error::Result<()> {
        settings::set(
            c,
            STATE_KEY,
            &serde_json::to_string(self).unwrap_or_default(),
        )
    }

    /// Records a success; `next` is the next scheduled sync, if known.
    pub fn succeeded(c: &Db, now: i64, next: Option<i64>) -> crate::error::Result<()> {
        let mut s = Self::load(c)?;
        if s.failures > 0 {
            events::record(
                c,
                now,
                NewEvent {
                    kind: "sync",
                    severity: Severity::Info,
                    virtual_account: None,
                    subject: None,
                    message: format!(
                        "live sync with the cloud succeeded again after {} failed attempts",
                        s.failures
                    ),
                },
            )?;
        }
        s.last_attempt_at = Some(now);
        s.last_success_at = Some(now);
        s.next_attempt_at = next;
        s.last_error = None;
        s.failures = 0;
        s.save(c)
    }

    /// Records a failure: an event, a Call Home `sync` alert at the first
    /// failure of a run of them, and the next attempt after a backoff.
    pub fn failed(c: &Db, now: i64, error: &str) -> crate::error::Result<Self> {
        let mut s = Self::load(c)?;
        s.failures = s.failures.saturating_add(1);
        s.last_attempt_at = Some(now);
        s.last_error = Some(error.to_string());
        let next = now + backoff(s.failures, random());
        s.next_attempt_at = Some(next);
        s.save(c)?;
        let message = format!(
            "live sync with the cloud failed (attempt {}); routers are served from the local \
             database meanwhile; next attempt at {}: {error}",
            s.failures,
            rfc3339(next)
        );
        events::record(
            c,
            now,
            NewEvent {
                kind: "sync",
                severity: Severity::Minor,
                virtual_account: None,
                subject: None,
                message: message.clone(),
            },
        )?;
        if s.failures == 1 {
            let last = s.last_success_at.map_or_else(|| "never".into(), rfc3339);
            Alert::new(
                CallHomeCategory::Sync,
                "SYNC",
                "Minor",
                format!("live sync with the cloud failed: {error}"),
                format!(
                    "show sync status\nLast successful sync: {last}\nLast error: {error}\nNext attempt: {}\n\
                     Check sync.cloud_url, sync.proxy and the network; the satellite keeps retrying.\n",
                    rfc3339(next)
                ),
                now,
            )
            .enqueue(c)?;
        }
        Ok(s)
    }

    /// Records when the schedule next runs (before any attempt was made).
    pub fn scheduled(c: &Db, next: i64) -> crate::error::Result<()> {
        let mut s = Self::load(c)?;
        if s.failures == 0 && s.next_attempt_at != Some(next) {
            s.next_attempt_at = Some(next);
            s.save(c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for failures in 1..30 {
            let full = (BACKOFF_BASE << (failures - 1).min(20)).min(BACKOFF_MAX);
            for random in [0, 1, 7, u32::MAX] {
                let b = backoff(failures, random);
                assert!(b >= full / 2 && b <= full, "{failures} {random}: {b}");
            }
        }
        assert_eq!(backoff(1, 0), 1);
        assert!(backoff(40, u32::MAX) <= BACKOFF_MAX && backoff(40, 0) == BACKOFF_MAX / 2);
        let spread: std::collections::BTreeSet<i64> = (0..64).map(|r| backoff(8, r)).collect();
        assert!(spread.len() > 32, "jitter spreads retries: {spread:?}");
    }

    #[test]
    fn failures_back_off_and_a_success_resets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = crate::store::open_and_migrate(&dir.path().join("db")).expect("db");
        let first = LiveState::failed(&c, 1_000, "cannot reach the cloud").expect("failed");
        assert_eq!(first.failures, 1);
        let next = first.next_attempt_at.expect("next");
        assert!((1_001..=1_002).contains(&next), "{next}");
        let third = {
            LiveState::failed(&c, 1_010, "again").expect("failed");
            LiveState::failed(&c, 1_020, "again").expect("failed")
        };
        assert_eq!(third.failures, 3);
        assert!(third.next_attempt_at.expect("next") >= 1_024);
        LiveState::succeeded(&c, 1_030, Some(2_000)).expect("ok");
        let s = LiveState::load(&c).expect("load");
        assert_eq!(
            (
                s.failures,
                s.last_success_at,
                s.next_attempt_at,
                s.last_error
            ),
            (0, Some(1_030), Some(2_000), None)
        );
    }
}
