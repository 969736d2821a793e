//! The one clock every timer reads.
//!
//! Token expiry, certificate validity, authorization renewal and sync deadlines
//! all ask this clock, so tests (and operators rehearsing a scenario) can move
//! time without touching the system clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::OffsetDateTime;

/// Environment variable that starts a binary's clock at a given instant
/// (RFC 3339). Time then advances normally from there. Meant for rehearsals
/// and black-box tests, never for production.
pub const NOW_ENV: &str = "SATELLITE_NOW";

#[derive(Clone, Debug)]
pub struct Clock {
    /// Nanoseconds added to the system time.
    offset_ns: Arc<AtomicI64>,
    /// Unix seconds this clock never reads below (see `hold_at_least`).
    floor: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self {
            offset_ns: Arc::new(AtomicI64::new(0)),
            floor: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// A clock that reads `start` now and advances in real time from there.
    pub fn starting_at(start: OffsetDateTime) -> Self {
        let clock = Self::system();
        clock.set(start);
        clock
    }

    /// The system clock, unless `SATELLITE_NOW` says otherwise.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(NOW_ENV) {
            Ok(value) if !value.trim().is_empty() => {
                let start = OffsetDateTime::parse(
                    value.trim(),
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|e| {
                    format!(
                        "{NOW_ENV}={value}: not an RFC 3339 time ({e}); e.g. 2027-01-31T12:00:00Z"
                    )
                })?;
                Ok(Self::starting_at(start))
            }
            _ => Ok(Self::system()),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        let now = self.unheld();
        let floor = self.floor.load(Ordering::Relaxed);
        if now.unix_timestamp() < floor {
            OffsetDateTime::from_unix_timestamp(floor).unwrap_or(now)
        } else {
            now
        }
    }

    /// The time before any floor: what the system clock (or `SATELLITE_NOW`)
    /// says, even when that is behind what this process has already seen.
    pub fn unheld(&self) -> OffsetDateTime {
        let ns = self.offset_ns.load(Ordering::Relaxed);
        OffsetDateTime::now_utc() + time::Duration::nanoseconds(ns)
    }

    /// From now on this clock (and every clone) reads at least `unix`: a
    /// clock set back while the server runs must not make an expired token,
    /// authorization or term valid again.
    pub fn hold_at_least(&self, unix: i64) {
        self.floor.fetch_max(unix, Ordering::Relaxed);
    }

    /// Seconds since the Unix epoch, the unit the database stores.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Moves this clock (and every clone of it) forward or back.
    pub fn advance(&self, by: time::Duration) {
        let ns = i64::try_from(by.whole_nanoseconds()).unwrap_or(i64::MAX);
        self.offset_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Makes this clock read `at` now.
    pub fn set(&self, at: OffsetDateTime) {
        let delta = at - OffsetDateTime::now_utc();
        let ns = i64::try_from(delta.whole_nanoseconds()).unwrap_or(i64::MAX);
        self.offset_ns.store(ns, Ordering::Relaxed);
    }
}

/// RFC 3339 text of a Unix time, as every JSON surface writes it.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.unix();
        clock.advance(time::Duration::days(91));
        let moved = other.unix() - before;
        assert!((91 * 86_400..91 * 86_400 + 5).contains(&moved), "{moved}");
    }

    #[test]
    fn a_held_clock_never_reads_earlier() {
        let clock = Clock::system();
        let seen = clock.unix();
        clock.hold_at_least(seen);
        clock.advance(time::Duration::days(-3));
        assert!(clock.unix() >= seen, "a clock set back must not go back");
        assert!(clock.unheld().unix_timestamp() < seen - 2 * 86_400);
    }

    #[test]
    fn rfc3339_is_utc_with_z() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
