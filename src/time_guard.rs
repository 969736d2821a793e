//! The latest time the database has seen (its high-water mark), so a clock
//! set back (a wrong system clock, or `SATELLITE_NOW` in a rehearsal) cannot
//! replay or undo what the database already holds.
//!
//! `serve` refuses to start on a clock more than a day behind the mark; a
//! running server whose clock falls behind logs it, records an event and
//! keeps its own clock from going back (so no expiry is extended).

use crate::clock::{rfc3339, Clock};
use crate::error::{Error, Result};
use crate::store::events::{self, NewEvent, Severity};
use crate::store::Db;
use crate::store::{settings, Store};
use std::sync::atomic::{AtomicBool, Ordering};

/// The `settings` key holding the mark (Unix seconds).
pub const HIGH_WATER: &str = "clock.high_water";
/// How far behind the mark a clock may be: small differences between hosts
/// (a restored backup, a CLI on another machine) are not an error.
pub const TOLERANCE: i64 = 86_400;
/// The event kind written when the clock is found behind while running.
pub const EVENT_KIND: &str = "clock";

/// The mark, if anything has recorded one.
pub fn recorded(c: &Db) -> Result<Option<i64>> {
    Ok(settings::get(c, HIGH_WATER)?.and_then(|v| v.parse().ok()))
}

/// One transaction of a one-shot writer (a CLI command, a live sync) that
/// also raises the mark to the time it ran.
pub fn write<T, E>(
    conn: &mut Db,
    now: i64,
    f: impl FnOnce(&Db) -> std::result::Result<T, E>,
) -> std::result::Result<T, E>
where
    E: From<crate::store::StoreError> + From<Error>,
{
    crate::store::transaction(conn, |c| {
        let value = f(c)?;
        advance(c, now)?;
        Ok(value)
    })
}

/// Raises the mark to `now` (never lowers it); returns the mark.
pub fn advance(c: &Db, now: i64) -> Result<i64> {
    let mark = recorded(c)?.map_or(now, |m| m.max(now));
    settings::set(c, HIGH_WATER, &mark.to_string())?;
    Ok(mark)
}

fn behind_message(now: i64, mark: i64) -> String {
    format!(
        "the clock reads {} but this database has already seen {}: the clock is {} hours \
         behind, more than the day allowed, and timers would run backwards",
        rfc3339(now),
        rfc3339(mark),
        (mark - now) / 3600
    )
}

/// At start: refuses a clock more than a day behind the mark; otherwise
/// records the start and holds the clock at the mark or later.
pub fn check_start(c: &Db, clock: &Clock) -> Result<()> {
    let now = clock.unheld().unix_timestamp();
    if let Some(mark) = recorded(c)? {
        if now + TOLERANCE < mark {
            return Err(Error::invalid(
                "clock",
                format!(
                    "{}; fix the system clock (or SATELLITE_NOW), or if a rehearsal with \
                     SATELLITE_NOW ran on this database, restore it from backup (rehearse on a \
                     copy of the data dir, see README)",
                    behind_message(now, mark)
                ),
            ));
        }
    }
    let mark = advance(c, now)?;
    clock.hold_at_least(mark);
    Ok(())
}

/// What one check of the running clock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// The mark now stands at this time.
    Advanced(i64),
    /// The clock is more than a day behind the mark; `reported` is true the
    /// first time in a row (the event is written once per episode).
    Behind { now: i64, mark: i64, reported: bool },
}

/// The running server's check, run every few seconds beside its job loop.
pub struct ClockGuard {
    store: Store,
    clock: Clock,
    behind: AtomicBool,
}

impl ClockGuard {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self {
            store,
            clock,
            behind: AtomicBool::new(false),
        }
    }

    pub fn tick(&self) -> Result<Tick> {
        let now = self.clock.unheld().unix_timestamp();
        // Only this process's own readings hold its clock: a mark raised by
        // someone else (a CLI run with SATELLITE_NOW) must not move the
        // server's time forward.
        self.clock.hold_at_least(now);
        let already = self.behind.load(Ordering::Relaxed);
        let tick = self.store.writer().write_blocking(move |c| {
            let mark = recorded(c)?.unwrap_or(now);
            if now + TOLERANCE >= mark {
                return Ok::<_, Error>(Tick::Advanced(advance(c, now)?));
            }
            if !already {
                crate::notify::Alert::new(
                    crate::config::CallHomeCategory::System,
                    "CLOCK",
                    "Major",
                    format!(
                        "the clock is {} hours behind what the database has seen",
                        (mark - now) / 3600
                    ),
                    format!(
                        "satellite status\n{}\nFix the system clock.\n",
                        behind_message(now, mark)
                    ),
                    now,
                )
                .enqueue(c)?;
                events::record(
                    c,
                    now,
                    NewEvent {
                        kind: EVENT_KIND,
                        severity: Severity::Major,
                        virtual_account: None,
                        subject: None,
                        message: format!(
                            "{}; the server keeps its own time from going back, no expiry is \
                             extended; fix the system clock",
                            behind_message(now, mark)
                        ),
                    },
                )?;
            }
            Ok(Tick::Behind {
                now,
                mark,
                reported: !already,
            })
        })?;
        match tick {
            Tick::Behind {
                now,
                mark,
                reported: true,
            } => {
                self.behind.store(true, Ordering::Relaxed);
                tracing::error!(
                    clock = %rfc3339(now),
                    high_water = %rfc3339(mark),
                    "the clock is more than a day behind what the database has seen; fix the system clock"
                );
            }
            Tick::Advanced(_) => self.behind.store(false, Ordering::Relaxed),
            Tick::Behind { .. } => {}
        }
        Ok(tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_set_back_is_reported_once_and_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Store::open(&crate::store::Location::Embedded(dir.path().join("t.db"))).expect("store");
        let clock = Clock::system();
        let guard = ClockGuard::new(store.clone(), clock.clone());
        let Tick::Advanced(seen) = guard.tick().expect("tick") else {
            panic!("a first tick sets the mark");
        };
        clock.advance(time::Duration::days(-3));
        assert!(matches!(
            guard.tick().expect("tick"),
            Tick::Behind { reported: true, mark, .. } if mark == seen
        ));
        assert!(matches!(
            guard.tick().expect("tick"),
            Tick::Behind {
                reported: false,
                ..
            }
        ));
        assert!(clock.unix() >= seen, "the clock is held at what it saw");
        let events: i64 = store
            .read(|c| events::list(c, Some(EVENT_KIND), 10).map(|l| l.len() as i64))
            .expect("events");
        assert_eq!(events, 1);
        // Back in step: the mark moves on again.
        clock.advance(time::Duration::days(3));
        assert!(matches!(guard.tick().expect("tick"), Tick::Advanced(_)));
    }

    #[test]
    fn start_refuses_a_clock_more_than_a_day_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = crate::store::open_and_migrate(&dir.path().join("t.db")).expect("db");
        let clock = Clock::system();
        advance(&conn, clock.unix() + 2 * TOLERANCE).expect("mark");
        let err = crate::store::transaction(&mut conn, |c| check_start(c, &clock)).unwrap_err();
        assert!(err.to_string().contains("behind"), "{err}");
        let fresh = Clock::system();
        let mut conn = crate::store::open_and_migrate(&dir.path().join("u.db")).expect("db");
        advance(&conn, fresh.unix() + TOLERANCE / 2).expect("mark");
        crate::store::transaction(&mut conn, |c| check_start(c, &fresh)).expect("within a day");
        assert!(fresh.unix() >= fresh.unheld().unix_timestamp() + TOLERANCE / 2 - 5);
    }
}
