//! Operators' passwords: argon2id in PHC format; hashes written by earlier
//! versions (salted PBKDF2) are still accepted and replaced at the next
//! login. Hashing is slow on purpose: callers run it off the database
//! writer and the async workers.

use super::PkiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;

/// argon2id with the crate's default (OWASP) parameters, in PHC format.
pub fn hash(password: &str) -> Result<String, PkiError> {
    let mut salt = [0u8; 16];
    crate::pki::fill_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| PkiError::Password(format!("cannot salt it: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PkiError::Password(e.to_string()))
}

/// Whether a stored hash is in an older format that should be replaced.
pub fn needs_rehash(stored: &str) -> bool {
    !stored.starts_with("$argon2id$")
}

/// Checks a password against a stored hash (argon2id PHC, or the legacy
/// PBKDF2 form); both comparisons run in constant time.
pub fn verify(password: &str, stored: &str) -> bool {
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

/// A fresh random password for the bootstrap admin (shown once) and its hash.
pub fn bootstrap() -> Result<(String, String), PkiError> {
    let mut secret = [0u8; 18];
    crate::pki::fill_random(&mut secret)?;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let hash = hash(&password)?;
    Ok((password, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let stored = hash("s3cret").expect("hash");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify("s3cret", &stored));
        assert!(!verify("s3cret!", &stored));
        assert!(!verify("s3cret", "garbage"));
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
        assert!(verify("old", &stored));
        assert!(!verify("new", &stored));
        assert!(needs_rehash(&stored));
    }
}
