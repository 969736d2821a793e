//! What ran out in a window of time: authorization deadlines, registration
//! tokens and identity certificates. The clock-driven jobs ask each window
//! once, so each expiry is announced once.

use crate::error::Result;
use rusqlite::{params, Connection};

/// A product instance whose communication deadline passed.
#[derive(Debug, Clone)]
pub struct SilentInstance {
    pub pid: String,
    pub sn: String,
    pub hostname: Option<String>,
    pub virtual_account: String,
    pub last_contact_at: i64,
}

/// Instances whose deadline fell in `(after, now]`.
pub fn authorizations_expired(c: &Connection, after: i64, now: i64) -> Result<Vec<SilentInstance>> {
    let mut stmt = c.prepare_cached(
        "SELECT p.pid, p.sn, p.hostname, va.name, p.last_contact_at FROM product_instances p
         JOIN virtual_accounts va ON va.id = p.virtual_account_id
         WHERE p.deadline > ?1 AND p.deadline <= ?2 ORDER BY p.id",
    )?;
    let rows = stmt.query_map([after, now], |r| {
        Ok(SilentInstance {
            pid: r.get(0)?,
            sn: r.get(1)?,
            hostname: r.get(2)?,
            virtual_account: r.get(3)?,
            last_contact_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Unrevoked registration tokens that expired in `(after, now]`:
/// (token prefix, virtual account, description).
pub fn tokens_expired(
    c: &Connection,
    after: i64,
    now: i64,
) -> Result<Vec<(String, String, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT t.prefix, va.name, t.description FROM registration_tokens t
         JOIN virtual_accounts va ON va.id = t.virtual_account_id
         WHERE t.revoked_at IS NULL AND t.expires_at > ?1 AND t.expires_at <= ?2 ORDER BY t.id",
    )?;
    let rows = stmt.query_map(params![after, now], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Identity certificates still held by an instance (not revoked) that
/// expired in `(after, now]`: (UDI, serial, virtual account).
pub fn certificates_expired(
    c: &Connection,
    after: i64,
    now: i64,
) -> Result<Vec<(String, String, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT c.udi, c.serial, va.name FROM certificates c
         JOIN product_instances p ON p.id = c.instance_id
         JOIN virtual_accounts va ON va.id = p.virtual_account_id
         WHERE c.revoked_at IS NULL AND c.not_after > ?1 AND c.not_after <= ?2 ORDER BY c.id",
    )?;
    let rows = stmt.query_map(params![after, now], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
