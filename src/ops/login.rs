//! Logging in: a user's password or a client's credentials become a bearer
//! token; a bearer token becomes a `Caller`. Failed logins are counted per
//! source and refused for a while past a limit; secrets are compared in
//! constant time and never logged.

use super::{Caller, OpsError, Result, Role};
use crate::error::Error;
use crate::store::sessions::{self, Holder};
use crate::store::Db;
use crate::store::{clients, users};
use base64::Engine;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a bearer token lives.
pub const TOKEN_SECONDS: i64 = 3600;
/// How long a portal session lives: an operator's working day.
pub const SESSION_SECONDS: i64 = 8 * 3600;
/// Failed logins allowed for one name from one source within `WINDOW_SECONDS`.
pub const MAX_FAILURES: u32 = 5;
/// Failed logins allowed from one source for all names together: guessing
/// across many names is bounded too, far above what one misconfigured
/// poller reaches.
pub const MAX_SOURCE_FAILURES: u32 = 50;
pub const WINDOW_SECONDS: i64 = 300;

/// `/backend/oauth/token`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

/// Credentials that checked out, waiting for their token (checking is slow
/// and runs on a blocking thread; issuing is a quick write).
#[derive(Debug, Clone)]
pub struct Verified {
    pub holder: Holder,
    pub name: String,
    /// A legacy password hash to replace with argon2id.
    pub rehash: Option<String>,
}

/// Login attempts per source (client address) and name (user name or
/// client id), in memory: a restart forgets them, which only gives an
/// attacker back one window. Only the name being guessed is locked, so a
/// poller with a wrong secret does not lock out every other client behind
/// the same address; a source guessing across names meets a wider cap. An
/// attempt is counted when it starts, under the lock, and forgiven only
/// when it succeeds: a burst of parallel guesses cannot all pass the check
/// before the first (slow) password verification ends.
#[derive(Default)]
pub struct Limiter {
    attempts: Mutex<Attempts>,
}

#[derive(Default)]
struct Attempts {
    by_name: HashMap<(String, String), (u32, i64)>,
    by_source: HashMap<String, (u32, i64)>,
}

/// Counts one attempt in a window entry; refuses past `max`.
fn count(entry: &mut (u32, i64), max: u32, now: i64) -> std::result::Result<(), i64> {
    if now - entry.1 >= WINDOW_SECONDS {
        *entry = (0, now);
    }
    if entry.0 >= max {
        return Err(WINDOW_SECONDS - (now - entry.1));
    }
    entry.0 += 1;
    Ok(())
}

impl Limiter {
    /// Counts an attempt for `name` from `source`, or refuses it when that
    /// name (or the source as a whole) has used up its attempts.
    pub fn attempt(&self, source: &str, name: &str, now: i64) -> Result<()> {
        let Ok(mut attempts) = self.attempts.lock() else {
            return Ok(());
        };
        let Attempts { by_name, by_source } = &mut *attempts;
        // Bounded: a flood of sources or names cannot grow this without end.
        if by_name.len() > 10_000 {
            by_name.retain(|_, (_, since)| now - *since < WINDOW_SECONDS);
        }
        if by_source.len() > 10_000 {
            by_source.retain(|_, (_, since)| now - *since < WINDOW_SECONDS);
        }
        let refuse = |retry_after| OpsError::TooManyAttempts {
            source_addr: source.to_string(),
            retry_after,
        };
        let key = (source.to_string(), name.to_string());
        let mut named = by_name.get(&key).copied().unwrap_or((0, now));
        let mut all = by_source.get(source).copied().unwrap_or((0, now));
        count(&mut named, MAX_FAILURES, now).map_err(refuse)?;
        count(&mut all, MAX_SOURCE_FAILURES, now).map_err(refuse)?;
        by_name.insert(key, named);
        by_source.insert(source.to_string(), all);
        Ok(())
    }

    /// A login that succeeded: that name's attempts from the source are
    /// forgiven, and taken off the source's count.
    pub fn succeeded(&self, source: &str, name: &str) {
        if let Ok(mut attempts) = self.attempts.lock() {
            let Attempts { by_name, by_source } = &mut *attempts;
            let forgiven = by_name
                .remove(&(source.to_string(), name.to_string()))
                .map_or(0, |(n, _)| n);
            if let Some(all) = by_source.get_mut(source) {
                all.0 = all.0.saturating_sub(forgiven);
            }
        }
    }
}

fn refused() -> OpsError {
    OpsError::Unauthenticated("the credentials are not valid".into())
}

/// Checks a user's password (slow: argon2id).
pub fn check_password(c: &Db, username: &str, password: &str) -> Result<Verified> {
    let found = users::find_with_hash(c, username)?;
    let Some((user, hash)) = found else {
        // Spend the same time as a real check, so timing does not tell
        // which user names exist.
        let _ = crate::pki::password::verify(password, dummy_hash());
        return Err(refused());
    };
    if !crate::pki::password::verify(password, &hash) {
        return Err(refused());
    }
    let rehash = if crate::pki::password::needs_rehash(&hash) {
        Some(crate::pki::password::hash(password).map_err(Error::from)?)
    } else {
        None
    };
    Ok(Verified {
        holder: Holder::User(user.id),
        name: format!("user:{}", user.username),
        rehash,
    })
}

/// An argon2id hash of nothing anyone knows, for unknown user names.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| crate::pki::password::hash("no user has this password").unwrap_or_default())
}

/// Checks a client's credentials (fast: the secret is random, a hash of it
/// is compared in constant time).
pub fn check_client(c: &Db, client_id: &str, secret: &str) -> Result<Verified> {
    let Some((client, stored)) = clients::find_by_client_id(c, client_id)? else {
        return Err(refused());
    };
    let presented = super::clients::secret_hash(secret);
    let matches = crate::pki::same_secret(&presented[..], &stored[..]);
    if !matches || client.revoked_at.is_some() {
        return Err(refused());
    }
    Ok(Verified {
        holder: Holder::Client(client.id),
        name: format!("client:{}", client.name),
        rehash: None,
    })
}

/// Bearer tokens and portal session cookies share one table but not one
/// hash, so a stolen cookie is no bearer token and the reverse.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bearer,
    Session,
}

fn token_hash(kind: Kind, token: &str) -> [u8; 32] {
    let mut hasher = crate::pki::Sha256::new();
    if let Kind::Session = kind {
        hasher.update(b"portal-session:");
    }
    hasher.update(token.as_bytes());
    hasher.finish()
}

fn new_secret(c: &Db, verified: &Verified, kind: Kind, now: i64, lifetime: i64) -> Result<String> {
    if let (Holder::User(id), Some(hash)) = (verified.holder, &verified.rehash) {
        users::upgrade_hash(c, id, hash)?;
    }
    let mut secret = [0u8; 32];
    crate::pki::fill_random(&mut secret).map_err(Error::from)?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    sessions::insert(
        c,
        &token_hash(kind, &token),
        verified.holder,
        now,
        now + lifetime,
    )?;
    Ok(token)
}

/// Issues a bearer token for verified credentials.
pub fn issue(c: &Db, verified: &Verified, now: i64) -> Result<Issued> {
    Ok(Issued {
        access_token: new_secret(c, verified, Kind::Bearer, now, TOKEN_SECONDS)?,
        token_type: "Bearer",
        expires_in: TOKEN_SECONDS,
    })
}

/// Opens a portal session for a user's verified password; the secret goes
/// into the session cookie and lives `SESSION_SECONDS`.
pub fn open_session(c: &Db, verified: &Verified, now: i64) -> Result<String> {
    new_secret(c, verified, Kind::Session, now, SESSION_SECONDS)
}

/// The caller a portal session cookie stands for.
pub fn session_caller(c: &Db, secret: &str, now: i64) -> Result<Caller> {
    caller_of(c, Kind::Session, secret, now)
}

/// Logs a portal session out: its cookie is worthless from now on.
pub fn close_session(c: &Db, secret: &str) -> Result<()> {
    Ok(sessions::delete(c, &token_hash(Kind::Session, secret))?)
}

/// The caller a bearer token stands for.
pub fn authenticate(c: &Db, token: &str, now: i64) -> Result<Caller> {
    caller_of(c, Kind::Bearer, token, now)
}

fn caller_of(c: &Db, kind: Kind, token: &str, now: i64) -> Result<Caller> {
    let gone = || {
        OpsError::Unauthenticated(match kind {
            Kind::Bearer => "the bearer token is unknown, expired or revoked; get a new one at /backend/oauth/token",
            Kind::Session => "the session has ended; log in again",
        }.into())
    };
    let holder = sessions::find(c, &token_hash(kind, token), now)?.ok_or_else(gone)?;
    let (name, role, virtual_accounts) = match holder {
        Holder::User(id) => {
            let user = users::find_by_id(c, id)?.ok_or_else(gone)?;
            (
                format!("user:{}", user.username),
                user.role,
                user.virtual_accounts,
            )
        }
        Holder::Client(id) => {
            let client = clients::find_by_id(c, id)?.ok_or_else(gone)?;
            (
                format!("client:{}", client.name),
                client.role,
                client.virtual_accounts,
            )
        }
    };
    Ok(Caller {
        name,
        role: Role::parse(&role)?,
        virtual_accounts,
    })
}

/// Before a user changes their own password: the current one, checked as a
/// login checks it (slow on purpose: run it off the writer).
pub fn check_current_password(
    c: &Db,
    caller: &Caller,
    username: &str,
    current: Option<&str>,
) -> Result<()> {
    if !super::users::is_self(caller, username) {
        return Ok(());
    }
    let current = current.filter(|p| !p.is_empty()).ok_or_else(|| {
        Error::invalid("currentPassword", "give your current password to change it")
    })?;
    check_password(c, username, current).map_err(|_| {
        OpsError::from(Error::invalid(
            "currentPassword",
            "that is not your current password",
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_refused_after_too_many_failures_then_forgiven() {
        let limiter = Limiter::default();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.attempt("10.0.0.1", "nagios", 100).is_ok());
        }
        assert!(matches!(
            limiter.attempt("10.0.0.1", "nagios", 101),
            Err(OpsError::TooManyAttempts { .. })
        ));
        // Another client behind the same address is not locked out.
        assert!(limiter.attempt("10.0.0.1", "zabbix", 101).is_ok());
        limiter.succeeded("10.0.0.1", "zabbix");
        assert!(limiter.attempt("10.0.0.2", "nagios", 101).is_ok());
        assert!(limiter
            .attempt("10.0.0.1", "nagios", 100 + WINDOW_SECONDS)
            .is_ok());
        limiter.succeeded("10.0.0.1", "nagios");
        for _ in 0..MAX_FAILURES {
            assert!(
                limiter
                    .attempt("10.0.0.1", "nagios", 100 + WINDOW_SECONDS)
                    .is_ok(),
                "forgiven"
            );
        }
    }

    #[test]
    fn a_source_guessing_across_names_meets_its_own_cap() {
        let limiter = Limiter::default();
        let mut allowed = 0;
        for n in 0..MAX_SOURCE_FAILURES * 2 {
            if limiter
                .attempt("10.0.0.9", &format!("user{n}"), 100)
                .is_ok()
            {
                allowed += 1;
            }
        }
        assert_eq!(allowed, MAX_SOURCE_FAILURES);
        assert!(limiter.attempt("10.0.0.8", "user1", 100).is_ok());
    }
}
