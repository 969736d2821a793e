//! The compliance each pool was last announced with: its status and how deep
//! its shortfall was, so a shortfall that gets deeper is announced again.

use super::sql::params;
use super::Db;
use crate::domain::PoolStatus;
use crate::error::Result;

/// (status, shortfall) last recorded for a pool; a pool never evaluated is
/// in compliance.
pub fn recorded(c: &Db, virtual_account_id: i64, tag: &str) -> Result<(String, i64)> {
    Ok(crate::store::optional(
        c.prepare_cached(
            "SELECT status, shortfall FROM pools WHERE virtual_account_id = ?1 AND tag = ?2",
        )?
        .query_row(params![virtual_account_id, tag], |r| {
            Ok((r.get(0)?, r.get(1)?))
        }),
    )?
    .unwrap_or_else(|| (PoolStatus::InCompliance.as_str().to_string(), 0)))
}

/// Records what was announced of a pool, and when.
pub fn record(
    c: &Db,
    virtual_account_id: i64,
    tag: &str,
    status: &str,
    shortfall: i64,
    now: i64,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO pools (virtual_account_id, tag, in_use, status, shortfall, announced_at, held)
         VALUES (?1, ?2, 0, ?3, ?4, ?5, 0)
         ON CONFLICT (virtual_account_id, tag) DO UPDATE SET
           status = excluded.status, shortfall = excluded.shortfall,
           announced_at = excluded.announced_at, held = 0",
    )?
    .execute(params![virtual_account_id, tag, status, shortfall, now])?;
    Ok(())
}

/// Marks (or unmarks) a pool whose deeper shortfall waits for the end of
/// the window.
pub fn hold(c: &Db, virtual_account_id: i64, tag: &str, held: bool) -> Result<()> {
    c.prepare_cached("UPDATE pools SET held = ?3 WHERE virtual_account_id = ?1 AND tag = ?2")?
        .execute(params![virtual_account_id, tag, held])?;
    Ok(())
}

/// Pools holding a deeper shortfall announced last at or before `cutoff`:
/// due to be announced now.
pub fn held_until(c: &Db, cutoff: i64) -> Result<Vec<(i64, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT virtual_account_id, tag FROM pools WHERE held = 1 AND announced_at <= ?1",
    )?;
    let rows = stmt.query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}
