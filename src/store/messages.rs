//! Answers already given to devices, by (UDI, message id), so a retried
//! message gets the first answer and changes nothing twice.

use super::batch::{Batched, Column};
use super::db::Claimed;
use super::optional;
use super::sql::params;
use super::Claim;
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

static RECORD_FIRST: Batched = Batched {
    one: "INSERT INTO device_messages (udi, message_id, type, response, token_id, received_at)
          VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (udi, message_id) DO NOTHING",
    many: "INSERT INTO device_messages (udi, message_id, type, response, token_id, received_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
           ON CONFLICT (udi, message_id) DO NOTHING
           RETURNING udi, message_id",
    columns: &[
        Column::Text,
        Column::Text,
        Column::Text,
        Column::Text,
        Column::Int,
        Column::Int,
    ],
    domain: "message",
    key: 2,
};

/// What became of an answer given to `record_first`.
#[derive(Debug)]
pub enum Recorded {
    /// Recorded: it is the first answer to the message.
    First,
    /// The message was answered already (a retry that raced with its
    /// first try), and nothing is written.
    Answered,
    /// Recorded with the commit, unless the claim is found taken by then
    /// (as `Answered`): then nothing else of the writer's job is written
    /// either, and the first answer stands. PostgreSQL sends the answers
    /// of a group commit together.
    AtCommit(Claim),
}

/// Records the answer unless this message was answered already. On the
/// hot path this replaces a look-up before every write: retries are rare,
/// so the common case probes the index once. The job's last write.
pub fn record_first(
    conn: &Db,
    sender: &Sender<'_>,
    message_id: &str,
    response: &str,
    now: i64,
) -> Result<Recorded> {
    let claimed = conn.claim(
        &RECORD_FIRST,
        params![
            sender.udi_key,
            message_id,
            sender.message_type,
            response,
            sender.token_id,
            now
        ],
    )?;
    Ok(match claimed {
        Claimed::Now(true) => Recorded::First,
        Claimed::Now(false) => Recorded::Answered,
        Claimed::Later(claim) => Recorded::AtCommit(claim),
    })
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
        assert!(matches!(
            record_first(&conn, &sender, "new", "{}", 300),
            Ok(Recorded::Answered)
        ));
    }
}
