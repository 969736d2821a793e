//! The device-side evaluation period: a budget of seconds consumed only while
//! licenses are in use and the device is unregistered (DESIGN §5).

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// A device that was never registered.
pub const FIRST_PERIOD: Duration = Duration::days(90);
/// After `license smart deregister` or a refused ID renewal (seed).
pub const AFTER_DEREGISTRATION: Duration = Duration::days(30);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eval {
    /// Seconds left, as of `counting_since` (or now, when not counting).
    pub remaining_secs: i64,
    /// Set while the period is being consumed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub counting_since: Option<OffsetDateTime>,
    /// When the budget ran out.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expired_at: Option<OffsetDateTime>,
}

impl Default for Eval {
    fn default() -> Self {
        Self::starting(FIRST_PERIOD)
    }
}

impl Eval {
    pub fn starting(budget: Duration) -> Self {
        Self {
            remaining_secs: budget.whole_seconds(),
            counting_since: None,
            expired_at: None,
        }
    }

    /// Charges the time in use up to `now`.
    pub fn account(&mut self, now: OffsetDateTime) {
        let Some(since) = self.counting_since else {
            return;
        };
        // A clock moved backwards charges nothing and restarts the span.
        let used = (now - since).whole_seconds().max(0);
        if used >= self.remaining_secs {
            self.expired_at = Some(since + Duration::seconds(self.remaining_secs));
            self.remaining_secs = 0;
            self.counting_since = None;
        } else {
            self.remaining_secs -= used;
            self.counting_since = Some(now);
        }
    }

    /// Starts or stops the countdown; call after `account`.
    pub fn set_in_use(&mut self, in_use: bool, now: OffsetDateTime) {
        if in_use && self.remaining_secs > 0 {
            self.counting_since.get_or_insert(now);
        } else {
            self.counting_since = None;
        }
    }

    pub fn is_expired(&self) -> bool {
        self.remaining_secs <= 0
    }

    pub fn remaining(&self) -> Duration {
        Duration::seconds(self.remaining_secs.max(0))
    }
}

/// `46 days, 7 hours, 12 minutes, 3 seconds`, as the device prints it.
pub fn format_remaining(d: Duration) -> String {
    let s = d.whole_seconds().max(0);
    format!(
        "{} days, {} hours, {} minutes, {} seconds",
        s / 86_400,
        s % 86_400 / 3_600,
        s % 3_600 / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn counts_down_only_while_in_use() {
        let t0 = datetime!(2030-01-01 0:00 UTC);
        let mut e = Eval::default();
        e.account(t0 + Duration::days(10));
        assert_eq!(e.remaining(), FIRST_PERIOD, "not in use: nothing consumed");
        e.set_in_use(true, t0);
        e.account(t0 + Duration::days(1));
        e.set_in_use(false, t0 + Duration::days(1));
        e.account(t0 + Duration::days(50));
        assert_eq!(e.remaining(), Duration::days(89));
    }

    #[test]
    fn expires_at_the_exact_instant() {
        let t0 = datetime!(2030-01-01 0:00 UTC);
        let mut e = Eval::starting(AFTER_DEREGISTRATION);
        e.set_in_use(true, t0);
        e.account(t0 + Duration::days(45));
        assert!(e.is_expired());
        assert_eq!(e.expired_at, Some(t0 + Duration::days(30)));
        e.set_in_use(true, t0 + Duration::days(46));
        assert_eq!(e.counting_since, None, "an empty budget is not counted");
    }

    #[test]
    fn formats_like_the_device() {
        let d =
            Duration::days(46) + Duration::hours(7) + Duration::minutes(12) + Duration::seconds(3);
        assert_eq!(
            format_remaining(d),
            "46 days, 7 hours, 12 minutes, 3 seconds"
        );
    }
}
