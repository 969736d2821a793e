//! Range checks on times that come from outside the emulator: server
//! answers, the state file, `SATELLITE_NOW`.
//!
//! The `time` crate panics when a conversion or an addition leaves its
//! years ±9999. Keeping every stored time within 2000..=8999 leaves
//! centuries of headroom for the timers' arithmetic (days, years) and the
//! UTC conversions of `show`, and no real certificate or authorization
//! dates from outside it.

use time::{OffsetDateTime, UtcOffset};

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
}
