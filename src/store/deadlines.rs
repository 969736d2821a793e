//! What ran out in a window of time: registration tokens and identity
//! certificates (authorization deadlines are `instances::deadline_passed_between`).
//! The clock-driven jobs ask each window once, so each expiry is announced once.

use super::sql::params;
use super::Db;
use crate::error::Result;

/// Unrevoked registration tokens that expired in `(after, now]`:
/// (token prefix, virtual account, description).
pub fn tokens_expired(c: &Db, after: i64, now: i64) -> Result<Vec<(String, String, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT t.prefix, va.name, t.description FROM registration_tokens t
         JOIN virtual_accounts va ON va.id = t.virtual_account_id
         WHERE t.revoked_at IS NULL AND t.expires_at > ?1 AND t.expires_at <= ?2 ORDER BY t.id",
    )?;
    let rows = stmt.query_map(params![after, now], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// Identity certificates still held by an instance (not revoked) that
/// expired in `(after, now]`: (UDI, serial, virtual account).
pub fn certificates_expired(c: &Db, after: i64, now: i64) -> Result<Vec<(String, String, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT c.udi, c.serial, va.name FROM certificates c
         JOIN product_instances p ON p.id = c.instance_id
         JOIN virtual_accounts va ON va.id = p.virtual_account_id
         WHERE c.revoked_at IS NULL AND c.not_after > ?1 AND c.not_after <= ?2 ORDER BY c.id",
    )?;
    let rows = stmt.query_map(params![after, now], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}
