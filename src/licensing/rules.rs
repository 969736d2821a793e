//! The entitlement rules of DESIGN §5 and §6 as plain functions.

use crate::store::instances::{Instance, InstanceView};

pub const DAY: i64 = 86_400;
/// After each successful ENTITLEMENT/RENEW the device comes back within 30 days…
pub const NEXT_COMMUNICATION: i64 = 30 * DAY;
/// …and is AUTHORIZATION_EXPIRED if silent for 90…
pub const COMMUNICATION_DEADLINE: i64 = 90 * DAY;
/// …then GRACE_PERIOD_EXPIRED after 90 more (DESIGN §5).
pub const GRACE_PERIOD: i64 = 90 * DAY;

/// When the grace period that follows a communication deadline ends.
pub fn grace_end(deadline: i64) -> i64 {
    deadline.saturating_add(GRACE_PERIOD)
}

pub use crate::domain::{EntitlementStatus, InstanceStatus, PoolStatus};

/// Demand ≤ available, or a tracking tag (counted, never short).
pub fn pool_status(tracking: bool, in_use: i64, available: i64) -> PoolStatus {
    if tracking || in_use <= available {
        PoolStatus::InCompliance
    } else {
        PoolStatus::OutOfCompliance
    }
}

pub fn shortfall(tracking: bool, in_use: i64, available: i64) -> i64 {
    if tracking {
        0
    } else {
        (in_use - available).max(0)
    }
}

pub fn entitlement_status(pool: PoolStatus) -> EntitlementStatus {
    match pool {
        PoolStatus::InCompliance => EntitlementStatus::Authorized,
        PoolStatus::OutOfCompliance => EntitlementStatus::OutOfCompliance,
    }
}

/// The overall status of a message: a shortfall anywhere dominates, then an
/// unknown tag; authorized only when everything is.
pub fn overall(statuses: impl IntoIterator<Item = EntitlementStatus>) -> EntitlementStatus {
    let mut result = EntitlementStatus::Authorized;
    for status in statuses {
        match status {
            EntitlementStatus::OutOfCompliance => return EntitlementStatus::OutOfCompliance,
            EntitlementStatus::Invalid | EntitlementStatus::AuthorizationExpired => result = status,
            EntitlementStatus::Authorized => {}
        }
    }
    result
}

/// REGISTERED until the first authorization; then, silent past the
/// deadline, AUTHORIZATION_EXPIRED and after the grace period
/// GRACE_PERIOD_EXPIRED (either way it still counts against its pools until
/// removed); OUT_OF_COMPLIANCE while a pool it uses is short, whoever pushed
/// it short; INVALID if its last request named an unknown tag; else AUTHORIZED.
pub fn instance_status(
    last: Option<EntitlementStatus>,
    deadline: Option<i64>,
    short: bool,
    now: i64,
) -> InstanceStatus {
    let Some(last) = last else {
        return InstanceStatus::Registered;
    };
    match deadline {
        Some(deadline) if now >= grace_end(deadline) => InstanceStatus::GracePeriodExpired,
        Some(deadline) if now >= deadline => InstanceStatus::AuthorizationExpired,
        _ if short => InstanceStatus::OutOfCompliance,
        _ if last == EntitlementStatus::Invalid => InstanceStatus::Invalid,
        _ => InstanceStatus::Authorized,
    }
}

// The store keeps an instance's facts; its status is a rule, so it is
// derived here (the store does not know the rules).
impl Instance {
    pub fn status(&self, now: i64) -> InstanceStatus {
        // A stored word this version does not know still means it was answered.
        let last = self
            .authorization_status
            .as_deref()
            .map(|s| EntitlementStatus::parse(s).unwrap_or(EntitlementStatus::Authorized));
        instance_status(last, self.deadline, self.short, now)
    }

    /// What listings print and scripts read.
    pub fn view(&self, now: i64) -> InstanceView {
        self.facts_view(self.status(now).as_str())
    }
}

/// When a term license ends: an explicit end wins, else start + term years.
pub fn term_end(start: i64, term_years: Option<u32>, explicit_end: Option<i64>) -> Option<i64> {
    explicit_end.or_else(|| {
        let years = term_years?;
        let start = time::OffsetDateTime::from_unix_timestamp(start).ok()?;
        let year = start.year() + i32::try_from(years).ok()?;
        // 29 February plus n years falls on 28 February when needed.
        let end = start
            .replace_year(year)
            .or_else(|_| start.replace_day(28).and_then(|d| d.replace_year(year)))
            .ok()?;
        Some(end.unix_timestamp())
    })
}

/// A license counts at `t` when its term covers `t` (perpetual: always once started).
pub fn counts_at(start: i64, end: Option<i64>, t: i64) -> bool {
    start <= t && end.is_none_or(|end| t < end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use EntitlementStatus::*;

    #[test]
    fn demand_within_availability_is_compliant() {
        assert_eq!(pool_status(false, 10, 10), PoolStatus::InCompliance);
        assert_eq!(pool_status(false, 11, 10), PoolStatus::OutOfCompliance);
        assert_eq!(
            pool_status(true, 11, 0),
            PoolStatus::InCompliance,
            "tracking never short"
        );
        assert_eq!(shortfall(false, 11, 10), 1);
        assert_eq!(shortfall(true, 11, 0), 0);
    }

    #[test]
    fn overall_status_prefers_the_worst() {
        assert_eq!(overall([Authorized, Authorized]), Authorized);
        assert_eq!(overall([Authorized, Invalid]), Invalid);
        assert_eq!(
            overall([Invalid, OutOfCompliance, Authorized]),
            OutOfCompliance
        );
        assert_eq!(overall([]), Authorized);
    }

    #[test]
    fn silence_past_the_deadline_expires_authorization_then_the_grace_period() {
        use InstanceStatus as I;
        let d = 100 * DAY;
        let status = |last, short, now| instance_status(last, Some(d), short, now);
        assert_eq!(instance_status(None, None, false, d), I::Registered);
        assert_eq!(status(Some(Authorized), false, d - 1), I::Authorized);
        assert_eq!(status(Some(Authorized), true, d - 1), I::OutOfCompliance);
        assert_eq!(status(Some(Invalid), false, d - 1), I::Invalid);
        assert_eq!(status(Some(OutOfCompliance), false, d - 1), I::Authorized);
        assert_eq!(status(Some(Authorized), true, d), I::AuthorizationExpired);
        assert_eq!(
            status(Some(Authorized), false, d + GRACE_PERIOD - 1),
            I::AuthorizationExpired
        );
        assert_eq!(
            status(Some(Authorized), false, d + GRACE_PERIOD),
            I::GracePeriodExpired
        );
        assert_eq!(grace_end(i64::MAX), i64::MAX, "no overflow");
        assert_eq!(EntitlementStatus::parse("INVALID"), Some(Invalid));
        assert_eq!(EntitlementStatus::parse("nope"), None);
    }

    #[test]
    fn terms_run_whole_years_and_explicit_ends_win() {
        let start = time::macros::datetime!(2024-02-29 00:00 UTC).unix_timestamp();
        let end = term_end(start, Some(3), None).expect("end");
        assert_eq!(
            end,
            time::macros::datetime!(2027-02-28 00:00 UTC).unix_timestamp()
        );
        assert_eq!(term_end(start, Some(3), Some(5)), Some(5));
        assert_eq!(term_end(start, None, None), None);
        assert!(counts_at(10, Some(20), 19));
        assert!(!counts_at(10, Some(20), 20));
        assert!(!counts_at(10, None, 9));
        assert!(counts_at(10, None, i64::MAX));
    }
}
