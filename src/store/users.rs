//! Operators of the admin listener: people with a password, kept as the
//! hash `ops::password` made (the store never sees a password).

use super::optional;
use super::sql::params;
use super::Db;
use crate::error::{Error, Result};

pub const BOOTSTRAP_ADMIN: &str = "admin";

/// A user as the operations layer sees it (never the hash).
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub virtual_accounts: Vec<String>,
    pub created_at: i64,
}

/// Whether any user exists (none: the bootstrap admin is due).
pub fn exist(conn: &Db) -> Result<bool> {
    Ok(conn.query_row("SELECT EXISTS (SELECT 1 FROM users)", (), |r| r.get(0))?)
}

/// Creates the bootstrap admin with `password_hash`.
pub fn create_bootstrap_admin(conn: &Db, password_hash: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, 'admin', ?3)",
        params![BOOTSTRAP_ADMIN, password_hash, now],
    )?;
    Ok(())
}

pub fn insert(
    c: &Db,
    username: &str,
    password_hash: &str,
    role: &str,
    virtual_accounts: &[String],
    now: i64,
) -> Result<i64> {
    if find(c, username)?.is_some() {
        return Err(Error::Conflict(format!(
            "a user {username:?} exists already; pick another name"
        )));
    }
    let id = c.query_row(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
        params![username, password_hash, role, now], |r| r.get::<i64>(0)
    )?;
    for va in virtual_accounts {
        c.execute(
            "INSERT INTO user_virtual_accounts (user_id, virtual_account) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![id, va],
        )?;
    }
    Ok(id)
}

fn virtual_accounts_of(c: &Db, id: i64) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT virtual_account FROM user_virtual_accounts WHERE user_id = ?1 ORDER BY 1",
    )?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// The user and its password hash.
pub fn find_with_hash(c: &Db, username: &str) -> Result<Option<(User, String)>> {
    let found = optional(c.query_row(
        "SELECT id, username, role, created_at, password_hash FROM users WHERE username = ?1",
        [username],
        |r| {
            Ok((
                User {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    role: r.get(2)?,
                    virtual_accounts: Vec::new(),
                    created_at: r.get(3)?,
                },
                r.get::<String>(4)?,
            ))
        },
    ))?;
    match found {
        Some((mut user, hash)) => {
            user.virtual_accounts = virtual_accounts_of(c, user.id)?;
            Ok(Some((user, hash)))
        }
        None => Ok(None),
    }
}

pub fn find(c: &Db, username: &str) -> Result<Option<User>> {
    Ok(find_with_hash(c, username)?.map(|(user, _)| user))
}

pub fn find_by_id(c: &Db, id: i64) -> Result<Option<User>> {
    let name: Option<String> = optional(c.query_row(
        "SELECT username FROM users WHERE id = ?1",
        [id],
        |r| r.get(0),
    ))?;
    match name {
        Some(name) => find(c, &name),
        None => Ok(None),
    }
}

/// One page of users by name.
pub fn list(c: &Db, limit: u32, offset: u32) -> Result<Vec<User>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, username, role, created_at FROM users ORDER BY username LIMIT ?1 OFFSET ?2",
    )?;
    let rows = stmt.query_map(params![limit, offset], |r| {
        Ok(User {
            id: r.get(0)?,
            username: r.get(1)?,
            role: r.get(2)?,
            virtual_accounts: Vec::new(),
            created_at: r.get(3)?,
        })
    })?;
    let mut users: Vec<User> = rows.collect::<super::sql::SqlResult<_>>()?;
    for user in &mut users {
        user.virtual_accounts = virtual_accounts_of(c, user.id)?;
    }
    Ok(users)
}

pub fn count_admins(c: &Db) -> Result<i64> {
    Ok(
        c.query_row("SELECT COUNT(*) FROM users WHERE role = 'admin'", (), |r| {
            r.get(0)
        })?,
    )
}

/// Removes a user; its bearer tokens go with it (cascade).
pub fn delete(c: &Db, username: &str) -> Result<bool> {
    Ok(c.execute("DELETE FROM users WHERE username = ?1", [username])? > 0)
}

/// Sets a new password hash and ends the user's sessions.
pub fn set_password(c: &Db, id: i64, password_hash: &str) -> Result<()> {
    c.execute(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        params![id, password_hash],
    )?;
    c.execute("DELETE FROM access_tokens WHERE user_id = ?1", [id])?;
    Ok(())
}

/// Replaces a legacy hash after a successful login (sessions stay).
pub fn upgrade_hash(c: &Db, id: i64, password_hash: &str) -> Result<()> {
    c.execute(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        params![id, password_hash],
    )?;
    Ok(())
}
