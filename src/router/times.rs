//! Times that come from outside the emulator (server answers, the state
//! file, `SATELLITE_NOW`): range checks, and the server's times moved onto
//! the router's own clock.
//!
//! The `time` crate panics when a conversion or an addition leaves its
//! years ±9999. Keeping every stored time within 2000..=8999 leaves
//! centuries of headroom for the timers' arithmetic (days, years) and the
//! UTC conversions of `show`, and no real certificate or authorization
//! dates from outside it.

use time::{Duration, OffsetDateTime, UtcOffset};

pub const EARLIEST_YEAR: i32 = 2000;
pub const LATEST_YEAR: i32 = 8999;

/// `Ok` when `t`, read in UTC, falls within the supported years.
pub fn check(t: OffsetDateTime) -> Result<(), String> {
    let year = t.checked_to_offset(UtcOffset::UTC).map(|u| u.year());
    match year {
        Some(y) if (EARLIEST_YEAR..=LATEST_YEAR).contains(&y) => Ok(()),
        _ => Err(format!(
            "{t} is outside the supported years {EARLIEST_YEAR} to {LATEST_YEAR}"
        )),
    }
}

/// `check`, naming the field that held the time.
pub fn check_field(field: &str, t: OffsetDateTime) -> Result<(), String> {
    check(t).map_err(|e| format!("{field}: {e}"))
}

/// `t` in UTC; a time whose conversion would overflow stays as it is,
/// so rendering never panics (such times are refused on input anyway).
pub fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.checked_to_offset(UtcOffset::UTC).unwrap_or(t)
}

/// `2014-04-24 18:24:34`, the statistics' Last-sent column.
pub fn stat_time(t: OffsetDateTime) -> String {
    let t = utc(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The identity renewal period the server's answers are built on (DESIGN §5).
pub const RENEW_ID_AFTER: Duration = Duration::days(180);

/// Clocks closer than this agree: the server's times are kept as they are.
const SKEW_TOLERANCE: Duration = Duration::minutes(1);

/// A router's timers run on its own clock; the server's answer gives the
/// periods. When the two clocks disagree, the server time `t` (from an
/// answer whose "now" was `server_now`) is moved onto the router's clock,
/// so a router whose clock is ahead neither renews again at once nor shows
/// an authorization it just received as expired.
pub fn on_device_clock(
    t: OffsetDateTime,
    server_now: OffsetDateTime,
    now: OffsetDateTime,
) -> OffsetDateTime {
    let skew = now - server_now;
    if skew.abs() <= SKEW_TOLERANCE {
        return t;
    }
    t.checked_add(skew)
        .filter(|moved| check(*moved).is_ok())
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn only_the_supported_years_pass() {
        assert!(check(datetime!(2000-01-01 0:00 UTC)).is_ok());
        assert!(check(datetime!(8999-12-31 23:59:59 UTC)).is_ok());
        assert!(check(datetime!(1999-12-31 23:59:59 UTC)).is_err());
        assert!(check(datetime!(9000-01-01 0:00 UTC)).is_err());
        // 2000-01-01 00:30 at +01:00 is still 1999 in UTC.
        assert!(check(datetime!(2000-01-01 0:30 +1)).is_err());
        let err = check_field("deadline", datetime!(9999-12-31 23:59:59 -23:59)).unwrap_err();
        assert!(err.starts_with("deadline: 9999-12-31"), "{err}");
    }

    #[test]
    fn utc_never_overflows() {
        let edge = datetime!(9999-12-31 23:59:59 -23:59);
        assert_eq!(utc(edge), edge);
        assert_eq!(
            utc(datetime!(2030-01-01 1:00 +1)),
            datetime!(2030-01-01 0:00 UTC)
        );
    }

    #[test]
    fn server_times_move_onto_the_router_clock_only_when_the_clocks_disagree() {
        let server_now = datetime!(2030-01-01 0:00 UTC);
        let deadline = server_now + Duration::days(90);
        let close = server_now + Duration::seconds(30);
        assert_eq!(on_device_clock(deadline, server_now, close), deadline);
        let ahead = server_now + Duration::days(366);
        assert_eq!(
            on_device_clock(deadline, server_now, ahead),
            ahead + Duration::days(90)
        );
        let edge = datetime!(8999-12-01 0:00 UTC);
        assert_eq!(
            on_device_clock(deadline, server_now, edge),
            deadline,
            "never past the supported years"
        );
    }
}
