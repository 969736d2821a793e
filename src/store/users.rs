//! Operators of the admin listener: people with a password. Passwords are
//! stored as argon2id in PHC format; hashes written by earlier versions
//! (salted PBKDF2) are still accepted and replaced at the next login.

use super::optional;
use super::Db;
use crate::error::{Error, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use rusqlite::params;

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

/// argon2id with the crate's default (OWASP) parameters, in PHC format.
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    crate::pki::fill_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::invalid("password", format!("cannot salt the hash: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::invalid("password", format!("cannot hash it: {e}")))
}

/// Whether a stored hash is in an older format that should be replaced.
pub fn needs_rehash(stored: &str) -> bool {
    !stored.starts_with("$argon2id$")
}

/// Checks a password against a stored hash (argon2id PHC, or the legacy
/// PBKDF2 form); both comparisons run in constant time.
pub fn verify_password(password: &str, stored: &str) -> bool {
    if stored.starts_with('$') {
        return PasswordHash::new(stored)
            .map(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false);
    }
    verify_pbkdf2(password, stored)
}

fn verify_pbkdf2(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iter), Ok(salt), Ok(expected)) =
        (iter.parse::<usize>(), B64.decode(salt), B64.decode(hash))
    else {
        return false;
    };
    let mut actual = vec![0u8; expected.len()];
    openssl::pkcs5::pbkdf2_hmac(
        password.as_bytes(),
        &salt,
        iter,
        openssl::hash::MessageDigest::sha256(),
        &mut actual,
    )
    .is_ok()
        && !expected.is_empty()
        && crate::pki::same_secret(&actual, &expected)
}

/// Creates the bootstrap admin when there is no user at all; returns its
/// password, which is shown once and stored nowhere in clear.
pub fn create_bootstrap_admin(conn: &Db, now: i64) -> Result<Option<String>> {
    let users: i64 = conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
    if users > 0 {
        return Ok(None);
    }
    let mut secret = [0u8; 18];
    crate::pki::fill_random(&mut secret)?;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    conn.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, 'admin', ?3)",
        params![BOOTSTRAP_ADMIN, hash_password(&password)?, now],
    )?;
    Ok(Some(password))
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
            "a user {username:?} exists already; pick another name or `satellite user passwd {username}`"
        )));
    }
    c.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![username, password_hash, role, now],
    )?;
    let id = c.last_insert_rowid();
    for va in virtual_accounts {
        c.execute(
            "INSERT OR IGNORE INTO user_virtual_accounts (user_id, virtual_account) VALUES (?1, ?2)",
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
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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
                r.get::<_, String>(4)?,
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
    let mut users: Vec<User> = rows.collect::<rusqlite::Result<_>>()?;
    for user in &mut users {
        user.virtual_accounts = virtual_accounts_of(c, user.id)?;
    }
    Ok(users)
}

pub fn count_admins(c: &Db) -> Result<i64> {
    Ok(
        c.query_row("SELECT COUNT(*) FROM users WHERE role = 'admin'", [], |r| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let stored = hash_password("s3cret").expect("hash");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify_password("s3cret", &stored));
        assert!(!verify_password("s3cret!", &stored));
        assert!(!verify_password("s3cret", "garbage"));
        assert!(!needs_rehash(&stored));
    }

    #[test]
    fn legacy_pbkdf2_hashes_still_verify() {
        let salt = [7u8; 16];
        let mut hash = [0u8; 32];
        openssl::pkcs5::pbkdf2_hmac(
            b"old",
            &salt,
            1000,
            openssl::hash::MessageDigest::sha256(),
            &mut hash,
        )
        .expect("pbkdf2");
        let stored = format!(
            "pbkdf2-sha256$1000${}${}",
            B64.encode(salt),
            B64.encode(hash)
        );
        assert!(verify_password("old", &stored));
        assert!(!verify_password("new", &stored));
        assert!(needs_rehash(&stored));
    }
}
