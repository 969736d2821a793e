//! Bearer tokens handed out by `/backend/oauth/token`. Only a SHA-256 of
//! each is stored; a token belongs to one user or one client and dies with it.

use super::optional;
use super::sql::params;
use super::Db;
use crate::error::Result;

/// Whom a live token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    User(i64),
    Client(i64),
}

pub fn insert(c: &Db, hash: &[u8], holder: Holder, now: i64, expires_at: i64) -> Result<()> {
    let (user, client) = match holder {
        Holder::User(id) => (Some(id), None),
        Holder::Client(id) => (None, Some(id)),
    };
    // Expired tokens are of no use to anyone: drop them on the way.
    c.execute("DELETE FROM access_tokens WHERE expires_at <= ?1", [now])?;
    c.execute(
        "INSERT INTO access_tokens (token_hash, user_id, client_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![hash, user, client, now, expires_at],
    )?;
    Ok(())
}

/// The holder of an unexpired token whose client (if any) is not revoked.
pub fn find(c: &Db, hash: &[u8], now: i64) -> Result<Option<Holder>> {
    let row: Option<(Option<i64>, Option<i64>)> = optional(
        c.prepare_cached(
            "SELECT t.user_id, t.client_id FROM access_tokens t
             LEFT JOIN api_clients k ON k.id = t.client_id
             WHERE t.token_hash = ?1 AND t.expires_at > ?2 AND k.revoked_at IS NULL",
        )?
        .query_row(params![hash, now], |r| Ok((r.get(0)?, r.get(1)?))),
    )?;
    Ok(match row {
        Some((Some(user), _)) => Some(Holder::User(user)),
        Some((None, Some(client))) => Some(Holder::Client(client)),
        _ => None,
    })
}

/// Ends a token before its time (a portal logout).
pub fn delete(c: &Db, hash: &[u8]) -> Result<()> {
    c.execute("DELETE FROM access_tokens WHERE token_hash = ?1", [hash])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_die_with_their_client() {
        let c = Db::migrated_in_memory();
        let client_row = c.query_row(
            "INSERT INTO api_clients (name, client_id, secret_hash, role, created_at) VALUES ('m', 'id', x'00', 'viewer', 0) RETURNING id",
            (), |r| r.get::<i64>(0)
        )
        .expect("client");
        let client = Holder::Client(client_row);
        insert(&c, b"live", client, 10, 100).expect("insert");
        assert_eq!(find(&c, b"live", 99).expect("find"), Some(client));
        assert_eq!(find(&c, b"live", 100).expect("find"), None, "expired");
        assert_eq!(find(&c, b"other", 50).expect("find"), None);
        c.execute("UPDATE api_clients SET revoked_at = 50", ())
            .expect("revoke");
        assert_eq!(find(&c, b"live", 60).expect("find"), None, "revoked");
    }
}
