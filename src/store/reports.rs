//! Stored reports (Periodic Record, Manual Record, Compliance Warning
//! Report) and the daily usage snapshots behind the usage trends.

use super::sql::params;
use super::Db;
use crate::error::Result;

/// A stored report's listing line: (id, kind, created at, virtual account, summary).
pub type Listed = (i64, String, i64, Option<String>, String);

/// Stores a report whose body needs its own id: `body` is called with it.
pub fn insert(
    c: &Db,
    kind: &str,
    virtual_account: Option<&str>,
    summary: &str,
    now: i64,
    body: impl FnOnce(i64) -> Result<String>,
) -> Result<i64> {
    let id = c.prepare_cached(
        "INSERT INTO reports (kind, created_at, virtual_account, summary, body) VALUES (?1, ?2, ?3, ?4, '') RETURNING id",
    )?
    .query_row(params![kind, now, virtual_account, summary], |r| r.get::<i64>(0))?;
    let body = body(id)?;
    c.prepare_cached("UPDATE reports SET body = ?2 WHERE id = ?1")?
        .execute(params![id, body])?;
    Ok(id)
}

/// The newest `limit` reports, oldest first.
pub fn list(c: &Db, limit: u32) -> Result<Vec<Listed>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, kind, created_at, virtual_account, summary FROM
           (SELECT * FROM reports ORDER BY id DESC LIMIT ?1) newest ORDER BY id",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// A report's stored body (JSON), if there is such a report.
pub fn body(c: &Db, id: i64) -> Result<Option<String>> {
    Ok(crate::store::optional(
        c.prepare_cached("SELECT body FROM reports WHERE id = ?1")?
            .query_row([id], |r| r.get(0)),
    )?)
}

/// Records one pool's usage on `day` (YYYY-MM-DD), replacing that day's figure.
pub fn snapshot(
    c: &Db,
    day: &str,
    virtual_account_id: i64,
    tag: &str,
    in_use: i64,
    available: i64,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO usage_history (day, virtual_account_id, tag, in_use, available) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (day, virtual_account_id, tag) DO UPDATE SET in_use = excluded.in_use, available = excluded.available",
    )?
    .execute(params![day, virtual_account_id, tag, in_use, available])?;
    Ok(())
}

/// Forgets snapshots from before `day`.
pub fn forget_history_before(c: &Db, day: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM usage_history WHERE day < ?1")?
        .execute([day])?;
    Ok(())
}

/// One day of one pool: (day, virtual account, tag, available, in use).
pub type HistoryDay = (String, String, String, i64, i64);

/// Snapshots after `since` (YYYY-MM-DD) of an account, or of one of its
/// virtual accounts.
pub fn history(
    c: &Db,
    account: &str,
    virtual_account: Option<&str>,
    since: &str,
) -> Result<Vec<HistoryDay>> {
    let mut stmt = c.prepare_cached(
        "SELECT h.day, va.name, h.tag, h.available, h.in_use FROM usage_history h
         JOIN virtual_accounts va ON va.id = h.virtual_account_id
         JOIN accounts a ON a.id = va.account_id
         WHERE a.name = ?1 AND (CAST(?2 AS TEXT) IS NULL OR va.name = ?2) AND h.day > ?3
         ORDER BY h.day, va.name, h.tag",
    )?;
    let rows = stmt.query_map(params![account, virtual_account, since], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}
