//! OAuth client-credentials clients (scripts, monitoring). The secret is
//! random and high-entropy, so a SHA-256 of it is kept, not the secret.

use super::optional;
use super::sql::params;
use super::Db;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Client {
    pub id: i64,
    pub name: String,
    pub client_id: String,
    pub role: String,
    pub virtual_accounts: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub struct NewClient<'a> {
    pub name: &'a str,
    pub client_id: &'a str,
    pub secret_hash: &'a [u8],
    pub role: &'a str,
    pub virtual_accounts: &'a [String],
}

pub fn insert(c: &Db, client: &NewClient<'_>, now: i64) -> Result<i64> {
    let exists: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM api_clients WHERE name = ?1)",
        [client.name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(Error::Conflict(format!(
            "an API client {:?} exists (or existed: names of revoked clients stay taken); pick another name",
            client.name
        )));
    }
    let id = c.query_row(
        "INSERT INTO api_clients (name, client_id, secret_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![client.name, client.client_id, client.secret_hash, client.role, now], |r| r.get::<i64>(0)
    )?;
    for va in client.virtual_accounts {
        c.execute(
            "INSERT INTO api_client_virtual_accounts (client_id, virtual_account) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![id, va],
        )?;
    }
    Ok(id)
}

fn virtual_accounts_of(c: &Db, id: i64) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT virtual_account FROM api_client_virtual_accounts WHERE client_id = ?1 ORDER BY 1",
    )?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

const COLUMNS: &str = "id, name, client_id, role, created_at, revoked_at";

fn row(r: &super::sql::Row<'_>) -> super::sql::SqlResult<Client> {
    Ok(Client {
        id: r.get(0)?,
        name: r.get(1)?,
        client_id: r.get(2)?,
        role: r.get(3)?,
        virtual_accounts: Vec::new(),
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

/// The client with this public id, and its secret hash.
pub fn find_by_client_id(c: &Db, client_id: &str) -> Result<Option<(Client, Vec<u8>)>> {
    let found = optional(c.query_row(
        &format!("SELECT {COLUMNS}, secret_hash FROM api_clients WHERE client_id = ?1"),
        [client_id],
        |r| Ok((row(r)?, r.get::<Vec<u8>>(6)?)),
    ))?;
    match found {
        Some((mut client, hash)) => {
            client.virtual_accounts = virtual_accounts_of(c, client.id)?;
            Ok(Some((client, hash)))
        }
        None => Ok(None),
    }
}

pub fn find_by_id(c: &Db, id: i64) -> Result<Option<Client>> {
    let found = optional(c.query_row(
        &format!("SELECT {COLUMNS} FROM api_clients WHERE id = ?1"),
        [id],
        row,
    ))?;
    match found {
        Some(mut client) => {
            client.virtual_accounts = virtual_accounts_of(c, client.id)?;
            Ok(Some(client))
        }
        None => Ok(None),
    }
}

/// A client by its name or its client id.
pub fn find(c: &Db, key: &str) -> Result<Option<Client>> {
    let id: Option<i64> = optional(c.query_row(
        "SELECT id FROM api_clients WHERE name = ?1 OR client_id = ?1",
        [key],
        |r| r.get(0),
    ))?;
    match id {
        Some(id) => find_by_id(c, id),
        None => Ok(None),
    }
}

pub fn list(c: &Db, limit: u32, offset: u32) -> Result<Vec<Client>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_clients ORDER BY name LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt.query_map(params![limit, offset], row)?;
    let mut clients: Vec<Client> = rows.collect::<super::sql::SqlResult<_>>()?;
    for client in &mut clients {
        client.virtual_accounts = virtual_accounts_of(c, client.id)?;
    }
    Ok(clients)
}

/// Revokes a client and ends every bearer token it holds.
pub fn revoke(c: &Db, id: i64, now: i64) -> Result<()> {
    c.execute(
        "UPDATE api_clients SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
        params![id, now],
    )?;
    c.execute("DELETE FROM access_tokens WHERE client_id = ?1", [id])?;
    Ok(())
}
