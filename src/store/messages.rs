//! Answers already given to devices, by (UDI, message id), so a retried
//! message gets the first answer and changes nothing twice.

use super::optional;
use super::sql::params;
use super::Db;
use crate::error::{Error, Result};

/// Who sent a message, as far as a retry must match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender<'a> {
    pub udi_key: &'a str,
    pub message_type: &'static str,
    /// The token a REGISTRATION presented: a retry must present it again.
    pub token_id: Option<i64>,
}

/// The first answer to this message, if it was answered. The same id sent
/// as another type or with another token is refused: a retry repeats its
/// message, and an answer goes only to whoever asked for it.
pub fn find(conn: &Db, sender: &Sender<'_>, message_id: &str) -> Result<Option<String>> {
    let found: Option<(String, String, Option<i64>)> = optional(
        conn.prepare_cached(
            "SELECT type, response, token_id FROM device_messages WHERE udi = ?1 AND message_id = ?2",
        )?
        .query_row(params![sender.udi_key, message_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))),
    )?;
    match found {
        None => Ok(None),
        Some((kind, response, token_id)) if kind == sender.message_type && token_id == sender.token_id => {
            Ok(Some(response))
        }
        Some((kind, _, _)) => Err(Error::invalid(
            "message_id",
            format!("{message_id:?} was already used by another {kind} message from this device; use a new message id"),
        )),
    }
}

pub fn record(
    conn: &Db,
    sender: &Sender<'_>,
    message_id: &str,
    response: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO device_messages (udi, message_id, type, response, token_id, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        sender.udi_key,
        message_id,
        sender.message_type,
        response,
        sender.token_id,
        now
    ])?;
    Ok(())
}

/// Records the answer unless this message was answered already; false
/// then (a retry that raced with its first try), and nothing is written.
/// On the hot path this replaces a look-up before every write: retries
/// are rare, so the common case probes the index once.
pub fn record_first(
    conn: &Db,
    sender: &Sender<'_>,
    message_id: &str,
    response: &str,
    now: i64,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO device_messages (udi, message_id, type, response, token_id, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (udi, message_id) DO NOTHING",
        )?
        .execute(params![
            sender.udi_key,
            message_id,
            sender.message_type,
            response,
            sender.token_id,
            now
        ])?
        > 0)
}

/// Marks an earlier answer as installed by the device. False if unknown.
pub fn acknowledge(conn: &Db, udi_key: &str, message_id: &str, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE device_messages SET acknowledged_at = COALESCE(acknowledged_at, ?3)
             WHERE udi = ?1 AND message_id = ?2",
        )?
        .execute(params![udi_key, message_id, now])?
        > 0)
}

/// Forgets at most `limit` answers older than `before` (a retry that late
/// is a new message); returns how many. Bounded, so a busy month of
/// messages is pruned in many short writes instead of one that holds the
/// writer for seconds.
pub fn prune(conn: &Db, before: i64, limit: usize) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM device_messages WHERE id IN
               (SELECT id FROM device_messages WHERE received_at < ?1 LIMIT ?2)",
        )?
        .execute(params![before, i64::try_from(limit).unwrap_or(i64::MAX)])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_takes_bounded_batches_of_old_answers_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::store::open_and_migrate(&dir.path().join("m.db")).expect("db");
        let sender = Sender {
            udi_key: "PID:P,SN:S",
            message_type: "ENTITLEMENT",
            token_id: None,
        };
        for i in 0..25 {
            record(&conn, &sender, &format!("old-{i}"), "{}", 100).expect("old");
        }
        record(&conn, &sender, "new", "{}", 200).expect("new");
        assert_eq!(prune(&conn, 150, 10).expect("prune"), 10);
        assert_eq!(prune(&conn, 150, 10).expect("prune"), 10);
        assert_eq!(prune(&conn, 150, 10).expect("prune"), 5);
        assert_eq!(prune(&conn, 150, 10).expect("prune"), 0);
        assert!(find(&conn, &sender, "new").expect("find").is_some());
        assert!(record_first(&conn, &sender, "new", "{}", 300).is_ok_and(|fresh| !fresh));
    }
}
