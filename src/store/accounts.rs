//! Smart accounts and their virtual accounts.

use super::optional;
use super::sql::params;
use super::Db;
use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct VirtualAccount {
    #[serde(skip)]
    pub id: i64,
    pub account: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    /// Registered here, plus (at a cloud) reported by its satellites.
    pub product_instances: i64,
    /// Of those, reported by satellites (at a cloud).
    pub satellite_instances: i64,
    pub active_tokens: i64,
    /// At a cloud: the satellite that serves it (none: this node does).
    pub served_by: Option<String>,
}

/// Creates the account if it is missing; returns its id.
pub fn ensure_account(conn: &Db, name: &str, now: i64) -> Result<i64> {
    conn.execute(
        "INSERT INTO accounts (name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
        params![name, now],
    )?;
    Ok(
        conn.query_row("SELECT id FROM accounts WHERE name = ?1", [name], |r| {
            r.get(0)
        })?,
    )
}

/// Creates the virtual account if it is missing; returns its id.
pub fn ensure_virtual_account(conn: &Db, account_id: i64, name: &str, now: i64) -> Result<i64> {
    conn.execute(
        "INSERT INTO virtual_accounts (account_id, name, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(account_id, name) DO NOTHING",
        params![account_id, name, now],
    )?;
    Ok(conn.query_row(
        "SELECT id FROM virtual_accounts WHERE account_id = ?1 AND name = ?2",
        params![account_id, name],
        |r| r.get(0),
    )?)
}

pub fn create_virtual_account(
    conn: &Db,
    account: &str,
    name: &str,
    description: &str,
    now: i64,
) -> Result<VirtualAccount> {
    let account_id: i64 = optional(conn.query_row(
        "SELECT id FROM accounts WHERE name = ?1",
        [account],
        |r| r.get(0),
    ))?
    .ok_or_else(|| Error::NotFound(format!("smart account {account:?} does not exist")))?;
    let inserted = conn.execute(
        "INSERT INTO virtual_accounts (account_id, name, description, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(account_id, name) DO NOTHING",
        params![account_id, name, description, now],
    )?;
    if inserted == 0 {
        return Err(Error::Conflict(format!(
            "virtual account {name:?} already exists in {account:?}"
        )));
    }
    find(conn, account, name, now)?
        .ok_or_else(|| Error::NotFound(format!("virtual account {name:?} vanished")))
}

const SELECT: &str = "SELECT va.id, a.name, va.name, va.description, va.created_at,
        (SELECT COUNT(*) FROM product_instances p WHERE p.virtual_account_id = va.id),
        (SELECT COUNT(*) FROM registration_tokens t WHERE t.virtual_account_id = va.id
            AND t.revoked_at IS NULL AND t.expires_at > ?1),
        (SELECT COUNT(*) FROM remote_instances r WHERE r.virtual_account_id = va.id),
        (SELECT s.name FROM satellite_virtual_accounts sv JOIN satellites s ON s.id = sv.satellite_id
            WHERE sv.virtual_account_id = va.id AND s.revoked_at IS NULL ORDER BY s.name LIMIT 1)
     FROM virtual_accounts va JOIN accounts a ON a.id = va.account_id";

fn row(r: &super::sql::Row<'_>) -> super::sql::SqlResult<VirtualAccount> {
    Ok(VirtualAccount {
        id: r.get(0)?,
        account: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        created_at: crate::clock::rfc3339(r.get(4)?),
        product_instances: r.get::<i64>(5)? + r.get::<i64>(7)?,
        satellite_instances: r.get(7)?,
        active_tokens: r.get(6)?,
        served_by: r.get(8)?,
    })
}

pub fn find(conn: &Db, account: &str, name: &str, now: i64) -> Result<Option<VirtualAccount>> {
    // ?1 is `now`, in SELECT.
    let sql = format!("{SELECT} WHERE a.name = ?2 AND va.name = ?3");
    Ok(optional(conn.query_row(
        &sql,
        params![now, account, name],
        row,
    ))?)
}

/// Finds a virtual account or says which ones exist.
pub fn require(conn: &Db, account: &str, name: &str, now: i64) -> Result<VirtualAccount> {
    if let Some(va) = find(conn, account, name, now)? {
        return Ok(va);
    }
    let known: Vec<String> = list(conn, account, now)?
        .into_iter()
        .map(|va| va.name)
        .collect();
    Err(Error::NotFound(format!(
        "virtual account {name:?} does not exist in {account:?} (known: {}); create it with `satellite va create {name}`",
        known.join(", ")
    )))
}

/// [`require`] without the counts (which read every product instance of
/// the account): its row id and name.
pub fn require_id(conn: &Db, account: &str, name: &str) -> Result<(i64, String)> {
    let vas = ids(conn, account)?;
    if let Some(found) = vas.iter().find(|(_, n)| n == name) {
        return Ok(found.clone());
    }
    let known: Vec<String> = vas.into_iter().map(|(_, n)| n).collect();
    Err(Error::NotFound(format!(
        "virtual account {name:?} does not exist in {account:?} (known: {}); create it with `satellite va create {name}`",
        known.join(", ")
    )))
}

pub fn list(conn: &Db, account: &str, now: i64) -> Result<Vec<VirtualAccount>> {
    let sql = format!("{SELECT} WHERE a.name = ?2 ORDER BY va.name");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now, account], row)?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// Every smart account's name (a cloud holds several).
pub fn names(conn: &Db) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM accounts ORDER BY name")?;
    let rows = stmt.query_map((), |r| r.get(0))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// (id, name) of every virtual account of the account.
pub fn ids(conn: &Db, account: &str) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT va.id, va.name FROM virtual_accounts va JOIN accounts a ON a.id = va.account_id
         WHERE a.name = ?1 ORDER BY va.name",
    )?;
    let rows = stmt.query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}
