//! The event log: registrations, deregistrations, token and compliance changes.

use super::sql::params;
use super::Db;
use crate::clock::rfc3339;
use crate::error::Result;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Minor,
    Major,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Minor => "minor",
            Severity::Major => "major",
        }
    }
}

pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub severity: Severity,
    pub virtual_account: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub severity: String,
    pub virtual_account: Option<String>,
    pub subject: Option<String>,
    pub message: String,
}

pub fn record(conn: &Db, now: i64, event: NewEvent<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (at, kind, severity, virtual_account, subject, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        now,
        event.kind,
        event.severity.as_str(),
        event.virtual_account,
        event.subject,
        event.message
    ])?;
    Ok(())
}

/// The newest `limit` events, oldest first, optionally of one kind.
pub fn list(conn: &Db, kind: Option<&str>, limit: u32) -> Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, kind, severity, virtual_account, subject, message FROM
           (SELECT * FROM events WHERE (CAST(?1 AS TEXT) IS NULL OR kind = ?1) ORDER BY id DESC LIMIT ?2) newest
         ORDER BY id",
    )?;
    let rows = stmt.query_map(params![kind, limit], |r| {
        Ok(Event {
            id: r.get(0)?,
            at: rfc3339(r.get(1)?),
            kind: r.get(2)?,
            severity: r.get(3)?,
            virtual_account: r.get(4)?,
            subject: r.get(5)?,
            message: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}
