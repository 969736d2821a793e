//! The compliance each pool was last announced with: its status and how deep
//! its shortfall was, so a shortfall that gets deeper is announced again.

use super::Db;
use crate::domain::PoolStatus;
use crate::error::Result;
use rusqlite::params;

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

pub fn record(
    c: &Db,
    virtual_account_id: i64,
    tag: &str,
    status: &str,
    shortfall: i64,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO pools (virtual_account_id, tag, in_use, status, shortfall) VALUES (?1, ?2, 0, ?3, ?4)
         ON CONFLICT (virtual_account_id, tag) DO UPDATE SET
           status = excluded.status, shortfall = excluded.shortfall",
    )?
    .execute(params![virtual_account_id, tag, status, shortfall])?;
    Ok(())
}
