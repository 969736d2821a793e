//! Registration tokens. Only a hash of each secret is stored.

use super::optional;
use super::sql::params;
use super::Db;
use crate::clock::rfc3339;
use crate::domain::token::TokenUse;
use crate::domain::{TokenSecret, TokenTerms};
use crate::error::{Error, Result};
use serde::Serialize;

/// A token as listings show it: never the whole secret.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub token_prefix: String,
    pub virtual_account: String,
    pub description: String,
    pub created_at: String,
    pub expires_at: String,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub export_controlled: bool,
    pub status: &'static str,
}

/// What registration needs to know about a presented token.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub id: i64,
    pub secret_hash: Vec<u8>,
    pub virtual_account_id: i64,
    pub virtual_account: String,
    pub account: String,
    pub export_controlled: bool,
    pub state: TokenUse,
}

pub fn insert(
    conn: &Db,
    virtual_account_id: i64,
    secret: &TokenSecret,
    terms: &TokenTerms,
    now: i64,
) -> Result<i64> {
    let prefix = secret
        .prefix()
        .ok_or_else(|| Error::invalid("token", "generated secret too short"))?;
    let id = conn.query_row(
        "INSERT INTO registration_tokens
           (prefix, secret_hash, virtual_account_id, description, export_controlled, created_at, expires_at, max_uses)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        params![
            prefix,
            secret.hash().as_slice(),
            virtual_account_id,
            terms.description,
            terms.export_controlled,
            now,
            now + i64::from(terms.days) * 86_400,
            terms.max_uses,
        ], |r| r.get::<i64>(0)
    )?;
    Ok(id)
}

pub fn find(conn: &Db, secret: &TokenSecret) -> Result<Option<StoredToken>> {
    let Some(prefix) = secret.prefix() else {
        return Ok(None);
    };
    let found = optional(
        conn.prepare_cached(
            "SELECT t.id, t.secret_hash, t.virtual_account_id, va.name, a.name,
                t.expires_at, t.revoked_at, t.max_uses, t.uses, t.export_controlled
         FROM registration_tokens t
         JOIN virtual_accounts va ON va.id = t.virtual_account_id
         JOIN accounts a ON a.id = va.account_id
         WHERE t.prefix = ?1",
        )?
        .query_row([prefix], |r| {
            Ok(StoredToken {
                id: r.get(0)?,
                secret_hash: r.get(1)?,
                virtual_account_id: r.get(2)?,
                virtual_account: r.get(3)?,
                account: r.get(4)?,
                export_controlled: r.get(9)?,
                state: TokenUse {
                    expires_at: r.get(5)?,
                    revoked_at: r.get(6)?,
                    max_uses: r.get(7)?,
                    uses: r.get(8)?,
                },
            })
        }),
    )?;
    // The prefix only narrows the search; the whole secret must match.
    Ok(found.filter(|t| secret.matches(&t.secret_hash)))
}

pub fn record_use(conn: &Db, id: i64) -> Result<()> {
    conn.prepare_cached("UPDATE registration_tokens SET uses = uses + 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The status of a token that still registers devices.
pub const ACTIVE: &str = "ACTIVE";

fn status(state: &TokenUse, now: i64) -> &'static str {
    use crate::domain::TokenProblem::*;
    match state.check(now) {
        Ok(()) => ACTIVE,
        Err(Revoked) => "REVOKED",
        Err(Expired) => "EXPIRED",
        Err(Exhausted) => "EXHAUSTED",
        Err(Unknown) => "UNKNOWN",
    }
}

pub fn list(
    conn: &Db,
    account: &str,
    virtual_account: Option<&str>,
    now: i64,
) -> Result<Vec<TokenInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.prefix, va.name, t.description, t.created_at, t.expires_at, t.max_uses, t.uses,
                t.export_controlled, t.revoked_at
         FROM registration_tokens t
         JOIN virtual_accounts va ON va.id = t.virtual_account_id
         JOIN accounts a ON a.id = va.account_id
         WHERE a.name = ?1 AND (CAST(?2 AS TEXT) IS NULL OR va.name = ?2)
         ORDER BY t.created_at, t.id",
    )?;
    let rows = stmt.query_map(params![account, virtual_account], |r| {
        let state = TokenUse {
            expires_at: r.get(4)?,
            revoked_at: r.get(8)?,
            max_uses: r.get(5)?,
            uses: r.get(6)?,
        };
        Ok(TokenInfo {
            token_prefix: r.get(0)?,
            virtual_account: r.get(1)?,
            description: r.get(2)?,
            created_at: rfc3339(r.get(3)?),
            expires_at: rfc3339(state.expires_at),
            max_uses: state.max_uses,
            uses: state.uses,
            export_controlled: r.get(7)?,
            status: status(&state, now),
        })
    })?;
    Ok(rows.collect::<super::sql::SqlResult<_>>()?)
}

/// Revokes by the whole secret or by the prefix a listing shows.
/// Returns the prefix and virtual account of the revoked token.
pub fn revoke(conn: &Db, account: &str, token: &str, now: i64) -> Result<(String, String)> {
    let token = token.trim().trim_end_matches('…');
    let prefix: String = token
        .chars()
        .take(crate::domain::token::PREFIX_LEN)
        .collect();
    if prefix.len() < crate::domain::token::PREFIX_LEN {
        return Err(Error::invalid(
            "token",
            format!(
                "give the whole token or at least its first {} characters as `token list` shows them",
                crate::domain::token::PREFIX_LEN
            ),
        ));
    }
    let found: Option<(i64, Vec<u8>, String, Option<i64>)> = optional(conn.query_row(
        "SELECT t.id, t.secret_hash, va.name, t.revoked_at FROM registration_tokens t
         JOIN virtual_accounts va ON va.id = t.virtual_account_id
         JOIN accounts a ON a.id = va.account_id
         WHERE t.prefix = ?1 AND a.name = ?2",
        params![prefix, account],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    ))?;
    let Some((id, hash, va, revoked_at)) = found else {
        return Err(Error::NotFound(format!(
            "no token starts with {prefix:?}; see `satellite token list`"
        )));
    };
    // A whole secret must match; anything shorter is taken as a prefix.
    if token.len() >= crate::domain::token::SECRET_LEN
        && !TokenSecret::from_presented(token).matches(&hash)
    {
        return Err(Error::NotFound(format!(
            "no token {prefix}… matches what was given"
        )));
    }
    if revoked_at.is_some() {
        return Err(Error::Conflict(format!(
            "token {prefix}… is already revoked"
        )));
    }
    conn.execute(
        "UPDATE registration_tokens SET revoked_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok((prefix, va))
}
