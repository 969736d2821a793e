//! Answers already given to devices, by (UDI, message id), so a retried
//! message gets the first answer and changes nothing twice.

use super::optional;
use crate::error::Result;
use rusqlite::{params, Connection};

pub fn find(conn: &Connection, udi_key: &str, message_id: &str) -> Result<Option<String>> {
    Ok(optional(
        conn.prepare_cached(
            "SELECT response FROM device_messages WHERE udi = ?1 AND message_id = ?2",
        )?
        .query_row(params![udi_key, message_id], |r| r.get(0)),
    )?)
}

pub fn record(
    conn: &Connection,
    udi_key: &str,
    message_id: &str,
    kind: &str,
    response: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO device_messages (udi, message_id, type, response, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![udi_key, message_id, kind, response, now])?;
    Ok(())
}

/// Marks an earlier answer as installed by the device. False if unknown.
pub fn acknowledge(conn: &Connection, udi_key: &str, message_id: &str, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE device_messages SET acknowledged_at = COALESCE(acknowledged_at, ?3)
             WHERE udi = ?1 AND message_id = ?2",
        )?
        .execute(params![udi_key, message_id, now])?
        > 0)
}

/// Forgets answers older than `before`; a retry that late is a new message.
pub fn prune(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM device_messages WHERE received_at < ?1",
        [before],
    )?)
}
