//! Call Home alerts waiting for delivery, and what became of delivered ones.
//!
//! An alert is written here in the same transaction as the change that
//! caused it, so a crash right after the commit loses nothing: whoever
//! delivers next (the server's delivery thread, or the command that caused
//! it) finds it here. A lease keeps two deliverers off the same alert.

use super::sql::params;
use super::Db;
use crate::error::Result;

/// An alert as written by the change that caused it.
pub struct NewAlert<'a> {
    pub category: &'a str,
    pub message_type: &'a str,
    pub severity: &'a str,
    pub summary: &'a str,
    pub detail: &'a str,
}

/// An alert waiting in the outbox.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub id: i64,
    pub created_at: i64,
    pub category: String,
    pub message_type: String,
    pub severity: String,
    pub summary: String,
    pub detail: String,
    /// Profiles that already have it (delivered, or dropped for their configuration).
    pub done: Vec<String>,
    pub attempts: i64,
}

pub fn enqueue(c: &Db, alert: &NewAlert<'_>, now: i64) -> Result<i64> {
    let id = c.prepare_cached(
        "INSERT INTO call_home_outbox (created_at, category, message_type, severity, summary, detail, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?1) RETURNING id",
    )?
    .query_row(params![
        now,
        alert.category,
        alert.message_type,
        alert.severity,
        alert.summary,
        alert.detail
    ], |r| r.get::<i64>(0))?;
    Ok(id)
}

fn waiting_row(r: &super::sql::Row<'_>) -> super::sql::SqlResult<Waiting> {
    let done: String = r.get(7)?;
    Ok(Waiting {
        id: r.get(0)?,
        created_at: r.get(1)?,
        category: r.get(2)?,
        message_type: r.get(3)?,
        severity: r.get(4)?,
        summary: r.get(5)?,
        detail: r.get(6)?,
        done: done.lines().map(str::to_string).collect(),
        attempts: r.get(8)?,
    })
}

const COLUMNS: &str =
    "id, created_at, category, message_type, severity, summary, detail, done, attempts";

/// Alerts due for an attempt (all unleased ones with `ignore_backoff`), oldest first.
pub fn due(c: &Db, now: i64, ignore_backoff: bool, limit: u32) -> Result<Vec<Waiting>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM call_home_outbox
         WHERE lease_until <= ?1 AND (?2 OR next_attempt_at <= ?1) ORDER BY id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![now, ignore_backoff, limit], waiting_row)?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// Every alert still waiting (for the Inqueue statistic).
pub fn all(c: &Db) -> Result<Vec<Waiting>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM call_home_outbox ORDER BY id"
    ))?;
    let rows = stmt.query_map((), waiting_row)?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// Takes an alert for delivery until `until`; false when another deliverer holds it.
pub fn claim(c: &Db, id: i64, now: i64, until: i64) -> Result<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE call_home_outbox SET lease_until = ?3 WHERE id = ?1 AND lease_until <= ?2",
        )?
        .execute(params![id, now, until])?;
    Ok(changed == 1)
}

/// Every profile has it: the alert leaves the outbox.
pub fn finish(c: &Db, id: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM call_home_outbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Some profile still lacks it: try again at `next_attempt_at`.
pub fn retry_later(c: &Db, id: i64, done: &[String], next_attempt_at: i64) -> Result<()> {
    c.prepare_cached(
        "UPDATE call_home_outbox SET done = ?2, attempts = attempts + 1,
           next_attempt_at = ?3, lease_until = 0 WHERE id = ?1",
    )?
    .execute(params![id, done.join("\n"), next_attempt_at])?;
    Ok(())
}

/// When the oldest waiting alert was created.
pub fn oldest(c: &Db) -> Result<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT MIN(created_at) FROM call_home_outbox")?
            .query_row((), |r| r.get(0))?,
    )
}

/// Gives up on alerts created before `before` (a target down for days):
/// returns (message type, summary) of each, for the event log.
pub fn give_up_before(c: &Db, before: i64) -> Result<Vec<(String, String)>> {
    let mut stmt = c.prepare_cached(
        "DELETE FROM call_home_outbox WHERE created_at < ?1 RETURNING message_type, summary",
    )?;
    let rows = stmt.query_map([before], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// What one delivery attempt to one profile came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed,
    /// Undeliverable because of the profile's configuration.
    Dropped,
}

/// Counts one attempt in the per-profile, per-message-type statistics.
/// (The table's `inqueue` column from migration 2 stays 0: Inqueue is what
/// waits in this outbox, counted when the statistics are read.)
pub fn count(c: &Db, profile: &str, message_type: &str, outcome: Outcome, now: i64) -> Result<()> {
    let (success, failed, dropped) = match outcome {
        Outcome::Success => (1, 0, 0),
        Outcome::Failed => (0, 1, 0),
        Outcome::Dropped => (0, 0, 1),
    };
    c.prepare_cached(
        "INSERT INTO call_home_stats (profile, message_type, success, failed, inqueue, dropped, last_sent)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)
         ON CONFLICT (profile, message_type) DO UPDATE SET
           success = call_home_stats.success + excluded.success,
           failed = call_home_stats.failed + excluded.failed,
           dropped = call_home_stats.dropped + excluded.dropped, last_sent = excluded.last_sent",
    )?
    .execute(params![profile, message_type, success, failed, dropped, now])?;
    Ok(())
}

/// A statistics row as stored: (profile, message type, success, failed, dropped, last sent).
pub type Counted = (String, String, i64, i64, i64, Option<i64>);

pub fn counted(c: &Db) -> Result<Vec<Counted>> {
    let mut stmt = c.prepare_cached(
        "SELECT profile, message_type, success, failed, dropped, last_sent
         FROM call_home_stats ORDER BY profile, message_type",
    )?;
    let rows = stmt.query_map((), |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Db {
        Db::migrated_in_memory()
    }

    fn alert() -> NewAlert<'static> {
        NewAlert {
            category: "compliance",
            message_type: "COMPLIANCE",
            severity: "Major",
            summary: "short",
            detail: "table",
        }
    }

    #[test]
    fn a_leased_alert_is_not_handed_out_twice() {
        let c = db();
        let id = enqueue(&c, &alert(), 100).expect("enqueue");
        assert_eq!(due(&c, 100, false, 10).expect("due").len(), 1);
        assert!(claim(&c, id, 100, 160).expect("claim"));
        assert!(!claim(&c, id, 101, 161).expect("second claim"));
        assert!(due(&c, 101, true, 10).expect("due").is_empty());
        // A deliverer that died leaves the lease to run out: nothing is lost.
        assert_eq!(due(&c, 160, false, 10).expect("due").len(), 1);
    }

    #[test]
    fn a_retry_waits_for_its_time_and_keeps_what_was_done() {
        let c = db();
        let id = enqueue(&c, &alert(), 100).expect("enqueue");
        assert!(claim(&c, id, 100, 160).expect("claim"));
        retry_later(&c, id, &["noc".to_string()], 130).expect("retry");
        assert!(due(&c, 120, false, 10).expect("due").is_empty());
        let waiting = due(&c, 120, true, 10).expect("due");
        assert_eq!(
            (waiting[0].done.clone(), waiting[0].attempts),
            (vec!["noc".to_string()], 1)
        );
        finish(&c, id).expect("finish");
        assert!(all(&c).expect("all").is_empty());
    }

    #[test]
    fn only_alerts_older_than_the_limit_are_given_up() {
        let c = db();
        enqueue(&c, &alert(), 100).expect("old");
        enqueue(&c, &alert(), 200).expect("new");
        assert_eq!(oldest(&c).expect("oldest"), Some(100));
        let gone = give_up_before(&c, 150).expect("give up");
        assert_eq!(gone, vec![("COMPLIANCE".to_string(), "short".to_string())]);
        assert_eq!(all(&c).expect("all").len(), 1);
    }
}
