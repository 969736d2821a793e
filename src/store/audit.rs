//! Who made a change: the operations layer stamps the events an operation
//! wrote with the caller's name, and the API lists the log with it.

use super::sql::params;
use super::Db;
use crate::clock::rfc3339;
use crate::error::Result;
use serde::Serialize;

/// The newest event id, to stamp what an operation writes after it.
pub fn last_event_id(c: &Db) -> std::result::Result<i64, super::StoreError> {
    Ok(c.query_row("SELECT COALESCE(MAX(id), 0) FROM events", (), |r| r.get(0))?)
}

/// Stamps the events written after `after` with who made the change.
pub fn stamp_since(c: &Db, after: i64, actor: &str) -> std::result::Result<(), super::StoreError> {
    c.execute(
        "UPDATE events SET actor = ?2 WHERE id > ?1 AND actor IS NULL",
        params![after, actor],
    )?;
    Ok(())
}

/// An event with the name of whoever caused it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditedEvent {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub severity: String,
    pub virtual_account: Option<String>,
    pub subject: Option<String>,
    pub message: String,
    pub actor: Option<String>,
}

/// What an event listing may be narrowed to.
#[derive(Debug, Default, Clone)]
pub struct EventFilter<'a> {
    pub kind: Option<&'a str>,
    pub severity: Option<&'a str>,
    pub since: Option<i64>,
    /// Events before this time only.
    pub until: Option<i64>,
    /// `None`: every virtual account and the satellite-wide events.
    pub virtual_accounts: Option<&'a [String]>,
}

/// One page of events, newest first.
pub fn events(
    c: &Db,
    filter: &EventFilter<'_>,
    limit: u32,
    offset: u32,
) -> Result<Vec<AuditedEvent>> {
    // The caller's virtual accounts, one placeholder each (a user's list
    // is short); none means every event.
    let scope = match filter.virtual_accounts {
        None => String::new(),
        Some([]) => " AND 0 = 1".to_string(),
        Some(vas) => {
            let marks: Vec<String> = (7..7 + vas.len()).map(|i| format!("?{i}")).collect();
            format!(" AND virtual_account IN ({})", marks.join(", "))
        }
    };
    let sql = format!(
        "SELECT id, at, kind, severity, virtual_account, subject, message, actor FROM events
         WHERE (CAST(?1 AS TEXT) IS NULL OR kind = ?1) AND (CAST(?2 AS TEXT) IS NULL OR severity = ?2)
           AND (CAST(?3 AS BIGINT) IS NULL OR at >= ?3) AND (CAST(?4 AS BIGINT) IS NULL OR at < ?4){scope}
         ORDER BY id DESC LIMIT ?5 OFFSET ?6"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let mut values: Vec<&dyn super::sql::Param> = vec![
        &filter.kind,
        &filter.severity,
        &filter.since,
        &filter.until,
        &limit,
        &offset,
    ];
    for va in filter.virtual_accounts.unwrap_or_default() {
        values.push(va);
    }
    let rows = stmt.query_map(values.as_slice(), |r| {
        Ok(AuditedEvent {
            id: r.get(0)?,
            at: rfc3339(r.get(1)?),
            kind: r.get(2)?,
            severity: r.get(3)?,
            virtual_account: r.get(4)?,
            subject: r.get(5)?,
            message: r.get(6)?,
            actor: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}
