//! Operators of the admin listener. Passwords are stored as salted PBKDF2.

use crate::error::Result;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use rusqlite::{params, Connection};

const ITERATIONS: usize = 210_000;
pub const BOOTSTRAP_ADMIN: &str = "admin";

pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt)?;
    let mut hash = [0u8; 32];
    openssl::pkcs5::pbkdf2_hmac(
        password.as_bytes(),
        &salt,
        ITERATIONS,
        openssl::hash::MessageDigest::sha256(),
        &mut hash,
    )?;
    Ok(format!(
        "pbkdf2-sha256${ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(hash)
    ))
}

pub fn verify_password(password: &str, stored: &str) -> bool {
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
        && openssl::memcmp::eq(&actual, &expected)
}

/// Creates the bootstrap admin when there is no user at all; returns its
/// password, which is shown once and stored nowhere in clear.
pub fn create_bootstrap_admin(conn: &Connection, now: i64) -> Result<Option<String>> {
    let users: i64 = conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
    if users > 0 {
        return Ok(None);
    }
    let mut secret = [0u8; 18];
    openssl::rand::rand_bytes(&mut secret)?;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    conn.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, 'admin', ?3)",
        params![BOOTSTRAP_ADMIN, hash_password(&password)?, now],
    )?;
    Ok(Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let stored = hash_password("s3cret").expect("hash");
        assert!(verify_password("s3cret", &stored));
        assert!(!verify_password("s3cret!", &stored));
        assert!(!verify_password("s3cret", "garbage"));
    }
}
