//! Numbered schema steps, each applied in its own transaction and recorded.
//! Never edit a released step: add a new one.

use super::StoreError;
use rusqlite::Connection;

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "accounts, tokens, product instances, certificates, messages, events, users",
    sql: r#"
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
CREATE TABLE virtual_accounts (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    UNIQUE (account_id, name)
);
CREATE TABLE registration_tokens (
    id                 INTEGER PRIMARY KEY,
    prefix             TEXT NOT NULL UNIQUE,
    secret_hash        BLOB NOT NULL,
    virtual_account_id INTEGER NOT NULL REFERENCES virtual_accounts(id),
    description        TEXT NOT NULL DEFAULT '',
    export_controlled  INTEGER NOT NULL DEFAULT 1,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    max_uses           INTEGER,
    uses               INTEGER NOT NULL DEFAULT 0,
    revoked_at         INTEGER
);
CREATE TABLE product_instances (
    id                 INTEGER PRIMARY KEY,
    instance_id        TEXT NOT NULL UNIQUE,
    virtual_account_id INTEGER NOT NULL REFERENCES virtual_accounts(id),
    pid                TEXT NOT NULL,
    sn                 TEXT NOT NULL,
    hostname           TEXT,
    token_id           INTEGER REFERENCES registration_tokens(id) ON DELETE SET NULL,
    registered_at      INTEGER NOT NULL,
    renewed_at         INTEGER,
    last_contact_at    INTEGER NOT NULL,
    UNIQUE (pid, sn)
);
CREATE INDEX product_instances_va ON product_instances(virtual_account_id);
CREATE TABLE certificates (
    id           INTEGER PRIMARY KEY,
    serial       TEXT NOT NULL UNIQUE,
    fingerprint  BLOB NOT NULL UNIQUE,   -- SHA-256 of the DER certificate
    instance_id  INTEGER REFERENCES product_instances(id) ON DELETE SET NULL,
    udi          TEXT NOT NULL,
    not_before   INTEGER NOT NULL,
    not_after    INTEGER NOT NULL,
    revoked_at   INTEGER,
    revocation_reason TEXT,
    pem          TEXT NOT NULL
);
CREATE INDEX certificates_instance ON certificates(instance_id);
CREATE TABLE device_messages (
    udi          TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    type         TEXT NOT NULL,
    response     TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    acknowledged_at INTEGER,
    PRIMARY KEY (udi, message_id)
) WITHOUT ROWID;
CREATE INDEX device_messages_received ON device_messages(received_at);
CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    virtual_account TEXT,
    subject         TEXT,
    message         TEXT NOT NULL
);
CREATE INDEX events_at ON events(at);
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
}];

pub fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
         );",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let failed = |source| StoreError::Migration {
            version: migration.version,
            name: migration.name,
            source,
        };
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(failed)?;
        tx.execute_batch(migration.sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
            (migration.version, migration.name),
        )
        .map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied database migration"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_changes_nothing() {
        let mut conn = Connection::open_in_memory().expect("memory db");
        apply(&mut conn).expect("first");
        apply(&mut conn).expect("second");
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, MIGRATIONS.len() as i64);
    }
}
