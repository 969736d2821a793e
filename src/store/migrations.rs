//! Numbered schema steps, each applied in its own transaction and recorded.
//! Never edit a released step: add a new one.

use super::StoreError;
use rusqlite::Connection;

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
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
    token_id     INTEGER,               -- the token a REGISTRATION presented
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
    },
    Migration {
        version: 2,
        name: "licenses, entitlement usage, pools, usage history, reports, call home statistics",
        sql: r#"
CREATE TABLE licenses (
    id                 INTEGER PRIMARY KEY,
    virtual_account_id INTEGER NOT NULL REFERENCES virtual_accounts(id),
    sku                TEXT NOT NULL,
    tag                TEXT NOT NULL,
    quantity           INTEGER NOT NULL CHECK (quantity > 0),
    license_type       TEXT NOT NULL CHECK (license_type IN ('PERPETUAL', 'TERM')),
    start_at           INTEGER NOT NULL,
    end_at             INTEGER,
    created_at         INTEGER NOT NULL
);
CREATE INDEX licenses_pool ON licenses(virtual_account_id, tag);
CREATE INDEX licenses_end ON licenses(end_at);

-- The latest demand of each instance per tag (an ENTITLEMENT states the full demand).
CREATE TABLE entitlement_usage (
    instance_id        INTEGER NOT NULL REFERENCES product_instances(id) ON DELETE CASCADE,
    virtual_account_id INTEGER NOT NULL REFERENCES virtual_accounts(id),
    tag                TEXT NOT NULL,
    count              INTEGER NOT NULL CHECK (count > 0),
    requested_at       INTEGER NOT NULL,
    PRIMARY KEY (instance_id, tag)
) WITHOUT ROWID;

-- Demand per (virtual account, tag), kept exact by triggers on every path that
-- changes usage (requests, deregistration, removal, moves): no scan of instances.
CREATE TABLE pools (
    virtual_account_id INTEGER NOT NULL REFERENCES virtual_accounts(id),
    tag                TEXT NOT NULL,
    in_use             INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL DEFAULT 'In Compliance',
    PRIMARY KEY (virtual_account_id, tag)
) WITHOUT ROWID;
CREATE TRIGGER usage_added AFTER INSERT ON entitlement_usage BEGIN
    INSERT INTO pools (virtual_account_id, tag, in_use) VALUES (NEW.virtual_account_id, NEW.tag, NEW.count)
    ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = in_use + NEW.count;
END;
CREATE TRIGGER usage_removed AFTER DELETE ON entitlement_usage BEGIN
    UPDATE pools SET in_use = in_use - OLD.count
    WHERE virtual_account_id = OLD.virtual_account_id AND tag = OLD.tag;
END;
CREATE TRIGGER usage_changed AFTER UPDATE OF count, virtual_account_id, tag ON entitlement_usage BEGIN
    UPDATE pools SET in_use = in_use - OLD.count
    WHERE virtual_account_id = OLD.virtual_account_id AND tag = OLD.tag;
    INSERT INTO pools (virtual_account_id, tag, in_use) VALUES (NEW.virtual_account_id, NEW.tag, NEW.count)
    ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = in_use + NEW.count;
END;

ALTER TABLE product_instances ADD COLUMN authorized_at INTEGER;
ALTER TABLE product_instances ADD COLUMN next_communication INTEGER;
ALTER TABLE product_instances ADD COLUMN deadline INTEGER;
ALTER TABLE product_instances ADD COLUMN authorization_status TEXT;
CREATE INDEX product_instances_deadline ON product_instances(deadline);

CREATE TABLE usage_history (
    day                TEXT NOT NULL,
    virtual_account_id INTEGER NOT NULL REFERENCES virtual_accounts(id),
    tag                TEXT NOT NULL,
    in_use             INTEGER NOT NULL,
    available          INTEGER NOT NULL,
    PRIMARY KEY (day, virtual_account_id, tag)
) WITHOUT ROWID;

-- Per Call Home profile and message type (seed: Success, Failed, Inqueue, Dropped, Last-sent).
CREATE TABLE call_home_stats (
    profile      TEXT NOT NULL,
    message_type TEXT NOT NULL,
    success      INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    inqueue      INTEGER NOT NULL DEFAULT 0,
    dropped      INTEGER NOT NULL DEFAULT 0,
    last_sent    INTEGER,
    PRIMARY KEY (profile, message_type)
) WITHOUT ROWID;

CREATE TABLE reports (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    virtual_account TEXT,
    summary         TEXT NOT NULL,
    body            TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 3,
        name: "call home outbox, announced shortfall per pool",
        sql: r#"
-- Alerts written in the transaction that caused them; delivered from here.
CREATE TABLE call_home_outbox (
    id              INTEGER PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    category        TEXT NOT NULL,
    message_type    TEXT NOT NULL,
    severity        TEXT NOT NULL,
    summary         TEXT NOT NULL,
    detail          TEXT NOT NULL,
    done            TEXT NOT NULL DEFAULT '',   -- profiles that have it, one a line
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0
);
-- The shortfall last announced, so a deeper one is announced again.
ALTER TABLE pools ADD COLUMN shortfall INTEGER NOT NULL DEFAULT 0;
"#,
    },
    Migration {
        version: 4,
        name: "sync: bundle ledger, upstream cloud, catalog additions, the cloud's satellites and their usage",
        sql: r#"
-- Every bundle this node sent or applied, per peer: sequence numbers, the
-- hash chain, and (for the cloud) the answer given, so a repeated usage
-- bundle gets the same bytes back.
CREATE TABLE sync_bundles (
    id           INTEGER PRIMARY KEY,
    direction    TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
    peer         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    in_reply_to  TEXT,
    created_at   INTEGER NOT NULL,
    recorded_at  INTEGER NOT NULL,
    file_name    TEXT,
    summary      TEXT NOT NULL,
    watermarks   TEXT,                 -- sent usage: what it carried (events, reports, history)
    acknowledged_at INTEGER,           -- sent: when the peer's answer acknowledged it
    response     BLOB,                 -- received by the cloud: the answer bundle
    UNIQUE (direction, peer, sequence),
    UNIQUE (direction, sha256)
);

-- The cloud this satellite syncs with (one row). The CA is pinned from the
-- satellite token's fingerprint before anything is received.
CREATE TABLE upstream (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    satellite_id    TEXT NOT NULL,
    cloud_id        TEXT NOT NULL,
    cloud_ca_sha256 TEXT NOT NULL,
    requested_at    INTEGER NOT NULL,
    registered_at   INTEGER,
    cloud_account   TEXT
);

-- SKUs and tags that arrived from the cloud (or were added there), beyond
-- the built-in table: the running server and the CLI read the same ones.
CREATE TABLE catalog_entries (
    kind        TEXT NOT NULL CHECK (kind IN ('tag', 'sku')),
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

-- The cloud's satellites.
CREATE TABLE satellites (
    id               INTEGER PRIMARY KEY,
    satellite_id     TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL UNIQUE,
    token_hash       BLOB NOT NULL,
    token_expires_at INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    registered_at    INTEGER,
    signer_ca_sha256 TEXT,
    revoked_at       INTEGER,
    last_contact_at  INTEGER
);
CREATE TABLE satellite_virtual_accounts (
    satellite_id       INTEGER NOT NULL REFERENCES satellites(id) ON DELETE CASCADE,
    virtual_account_id INTEGER NOT NULL REFERENCES virtual_accounts(id),
    PRIMARY KEY (satellite_id, virtual_account_id)
) WITHOUT ROWID;

-- What each satellite last reported: its product instances and their
-- demand. Remote demand counts in the cloud's pools like direct demand.
CREATE TABLE remote_instances (
    satellite_id       INTEGER NOT NULL REFERENCES satellites(id) ON DELETE CASCADE,
    instance_id        TEXT NOT NULL,
    virtual_account_id INTEGER NOT NULL REFERENCES virtual_accounts(id),
    pid                TEXT NOT NULL,
    sn                 TEXT NOT NULL,
    hostname           TEXT,
    status             TEXT NOT NULL,
    registered_at      INTEGER NOT NULL,
    last_contact_at    INTEGER NOT NULL,
    PRIMARY KEY (satellite_id, instance_id)
) WITHOUT ROWID;
CREATE TABLE remote_usage (
    satellite_id       INTEGER NOT NULL REFERENCES satellites(id) ON DELETE CASCADE,
    instance_id        TEXT NOT NULL,
    virtual_account_id INTEGER NOT NULL REFERENCES virtual_accounts(id),
    tag                TEXT NOT NULL,
    count              INTEGER NOT NULL CHECK (count > 0),
    PRIMARY KEY (satellite_id, instance_id, tag)
) WITHOUT ROWID;
CREATE TRIGGER remote_usage_added AFTER INSERT ON remote_usage BEGIN
    INSERT INTO pools (virtual_account_id, tag, in_use) VALUES (NEW.virtual_account_id, NEW.tag, NEW.count)
    ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = in_use + NEW.count;
END;
CREATE TRIGGER remote_usage_removed AFTER DELETE ON remote_usage BEGIN
    UPDATE pools SET in_use = in_use - OLD.count
    WHERE virtual_account_id = OLD.virtual_account_id AND tag = OLD.tag;
END;
CREATE TABLE remote_events (
    satellite_id    INTEGER NOT NULL REFERENCES satellites(id) ON DELETE CASCADE,
    remote_id       INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    virtual_account TEXT,
    subject         TEXT,
    message         TEXT NOT NULL,
    PRIMARY KEY (satellite_id, remote_id)
) WITHOUT ROWID;
CREATE TABLE remote_reports (
    satellite_id    INTEGER NOT NULL REFERENCES satellites(id) ON DELETE CASCADE,
    remote_id       INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    virtual_account TEXT,
    summary         TEXT NOT NULL,
    body            TEXT NOT NULL,
    PRIMARY KEY (satellite_id, remote_id)
) WITHOUT ROWID;
CREATE TABLE remote_usage_history (
    satellite_id    INTEGER NOT NULL REFERENCES satellites(id) ON DELETE CASCADE,
    day             TEXT NOT NULL,
    virtual_account TEXT NOT NULL,
    tag             TEXT NOT NULL,
    in_use          INTEGER NOT NULL,
    available       INTEGER NOT NULL,
    PRIMARY KEY (satellite_id, day, virtual_account, tag)
) WITHOUT ROWID;
"#,
    },
    Migration {
        version: 5,
        name: "operators: users' virtual accounts, API clients, bearer tokens, who made each change",
        sql: r#"
-- The virtual accounts a va-admin or viewer may reach (an admin reaches all).
CREATE TABLE user_virtual_accounts (
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    virtual_account TEXT NOT NULL,
    PRIMARY KEY (user_id, virtual_account)
) WITHOUT ROWID;
-- OAuth client-credentials clients for scripts and monitoring. Only a hash
-- of the (random, high-entropy) secret is kept.
CREATE TABLE api_clients (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    client_id   TEXT NOT NULL UNIQUE,
    secret_hash BLOB NOT NULL,
    role        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE TABLE api_client_virtual_accounts (
    client_id       INTEGER NOT NULL REFERENCES api_clients(id) ON DELETE CASCADE,
    virtual_account TEXT NOT NULL,
    PRIMARY KEY (client_id, virtual_account)
) WITHOUT ROWID;
-- Bearer tokens: a hash of each, and whom it stands for. A token dies with
-- its user or client.
CREATE TABLE access_tokens (
    token_hash BLOB PRIMARY KEY,
    user_id    INTEGER REFERENCES users(id) ON DELETE CASCADE,
    client_id  INTEGER REFERENCES api_clients(id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (client_id IS NULL))
) WITHOUT ROWID;
CREATE INDEX access_tokens_expiry ON access_tokens(expires_at);
-- Who made a change through the CLI or the API (NULL: the satellite itself).
ALTER TABLE events ADD COLUMN actor TEXT;
"#,
    },
    Migration {
        version: 6,
        name: "live sync: the upstream identity certificates the cloud issued to its satellites",
        sql: r#"
-- A connected satellite is known on the cloud's device listener by the
-- certificate issued at its registration, never by a name it sends.
CREATE TABLE satellite_identities (
    fingerprint  BLOB PRIMARY KEY,
    satellite_id INTEGER NOT NULL REFERENCES satellites(id) ON DELETE CASCADE,
    serial_hex   TEXT NOT NULL,
    issued_at    INTEGER NOT NULL,
    not_after    INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    },
    Migration {
        version: 7,
        name: "indexes for listing instances in order and finding expired certificates",
        sql: r#"
-- Listings page through one virtual account at a time in (PID, SN) order:
-- a page is an index range, not a sort of every instance. The old index
-- on the virtual account alone is a prefix of this one.
CREATE INDEX product_instances_listing ON product_instances(virtual_account_id, pid, sn);
DROP INDEX product_instances_va;
-- The daily jobs find the certificates that ran out without reading them all.
CREATE INDEX certificates_expiry ON certificates(not_after) WHERE revoked_at IS NULL;
"#,
    },
    Migration {
        version: 8,
        name: "a changed count moves its pool in one statement",
        sql: r#"
-- A device states a new count for a tag it already uses far more often
-- than its demand moves between pools: that case is one pool row
-- changed by one statement, not a subtraction and an upsert.
DROP TRIGGER usage_changed;
CREATE TRIGGER usage_count_changed AFTER UPDATE OF count ON entitlement_usage
WHEN OLD.virtual_account_id = NEW.virtual_account_id AND OLD.tag = NEW.tag BEGIN
    UPDATE pools SET in_use = in_use + NEW.count - OLD.count
    WHERE virtual_account_id = NEW.virtual_account_id AND tag = NEW.tag;
END;
CREATE TRIGGER usage_moved AFTER UPDATE OF count, virtual_account_id, tag ON entitlement_usage
WHEN OLD.virtual_account_id <> NEW.virtual_account_id OR OLD.tag <> NEW.tag BEGIN
    UPDATE pools SET in_use = in_use - OLD.count
    WHERE virtual_account_id = OLD.virtual_account_id AND tag = OLD.tag;
    INSERT INTO pools (virtual_account_id, tag, in_use) VALUES (NEW.virtual_account_id, NEW.tag, NEW.count)
    ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = in_use + NEW.count;
END;
"#,
    },
    Migration {
        version: 9,
        name: "device answers kept in arrival order, found by a narrow index",
        sql: r#"
-- A WITHOUT ROWID table keeps whole rows in its interior pages too: with
-- answers of a few hundred bytes the tree was deep and every group commit
-- split and rewrote pages across it (66 WAL frames per 22 answers). Rows
-- now go to the end of the table in arrival order; only the narrow
-- (udi, message_id) index takes random inserts (38 frames per 22).
CREATE TABLE device_answers (
    id              INTEGER PRIMARY KEY,
    udi             TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    type            TEXT NOT NULL,
    response        TEXT NOT NULL,
    token_id        INTEGER,               -- the token a REGISTRATION presented
    received_at     INTEGER NOT NULL,
    acknowledged_at INTEGER
);
INSERT INTO device_answers (udi, message_id, type, response, token_id, received_at, acknowledged_at)
    SELECT udi, message_id, type, response, token_id, received_at, acknowledged_at
    FROM device_messages ORDER BY received_at;
DROP TABLE device_messages;
ALTER TABLE device_answers RENAME TO device_messages;
CREATE UNIQUE INDEX device_messages_key ON device_messages(udi, message_id);
CREATE INDEX device_messages_received ON device_messages(received_at);
"#,
    },
    Migration {
        version: 10,
        name: "a satellite's snapshot moves each cloud pool once",
        sql: r#"
-- Only a satellite's snapshot changes remote usage, and it moves each pool
-- by its net change in one statement (store::satellites::replace_instances):
-- a trigger per row made a first snapshot of a million instances two
-- million pool updates.
DROP TRIGGER remote_usage_added;
DROP TRIGGER remote_usage_removed;
"#,
    },
    Migration {
        version: 11,
        name: "each peer's bundle signer pinned, not only its CA",
        sql: r#"
-- The peer's CA also certifies router and upstream identities and server
-- certificates; only its bundle signer may sign bundles. Pinned at the
-- first bundle that passes every other check (rows from before this step
-- start empty and are pinned by the next one: a certificate the CA issued
-- for anything else never passes), moved only by a rollover the pinned
-- signer signed; the replaced one is kept to name it when it shows up.
ALTER TABLE upstream ADD COLUMN cloud_signer_sha256 TEXT;
ALTER TABLE upstream ADD COLUMN retired_cloud_signer_sha256 TEXT;
ALTER TABLE satellites ADD COLUMN signer_sha256 TEXT;
ALTER TABLE satellites ADD COLUMN retired_signer_sha256 TEXT;
"#,
    },
    Migration {
        version: 12,
        name: "a virtual account has one serving node",
        sql: r#"
-- Who serves a virtual account is asked at every registration, token and
-- move at the cloud. A database where two satellites already share one is
-- named at start and at each of their syncs (`satellite va serve`).
CREATE INDEX satellite_virtual_accounts_by_va ON satellite_virtual_accounts (virtual_account_id);
"#,
    },
    Migration {
        version: 13,
        name: "a pool's deeper shortfalls are announced at most once per window",
        sql: r#"
-- A burst of registrations into a short pool deepened its shortfall once
-- per device, each with an event, a Compliance Warning Report and an alert.
-- Now a deeper shortfall within the window after an announcement is held
-- (held = 1) and announced once when the window ends.
ALTER TABLE pools ADD COLUMN announced_at INTEGER;
ALTER TABLE pools ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
CREATE INDEX pools_held ON pools (announced_at) WHERE held = 1;
"#,
    },
];

/// PostgreSQL's schema, whole, at the version it holds: each engine has its
/// own DDL (identity columns, PL/pgSQL triggers), numbered as SQLite's.
pub(in crate::store) const POSTGRES_SCHEMA: &str = include_str!("postgres_schema.sql");
pub(in crate::store) const POSTGRES_SCHEMA_VERSION: i64 = 13;

/// Whether a PostgreSQL database holds a satellite's schema.
pub(in crate::store) fn has_schema(db: &super::Db) -> super::sql::SqlResult<bool> {
    db.query_row(
        "SELECT to_regclass('schema_migrations') IS NOT NULL",
        (),
        |r| r.get(0),
    )
}

/// The tables of a PostgreSQL database's current schema, whoever made them.
pub(in crate::store) fn table_count(db: &super::Db) -> super::sql::SqlResult<i64> {
    db.query_row(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
        (),
        |r| r.get(0),
    )
}

/// Brings a PostgreSQL database to the schema this build knows: creates it
/// in an empty database, refuses one written by a newer build or one that
/// holds something else. Under the write lock, so two nodes starting at
/// once create it once.
pub(in crate::store) fn apply_postgres(db: &super::Db, target: &str) -> Result<(), StoreError> {
    // A schema that is there needs no lock to be read (every command asks).
    if has_schema(db)? {
        return check_postgres_version(db);
    }
    let tx = db.begin(super::db::Begin::Schema)?;
    // Another node may have created it while this one waited for the lock.
    if has_schema(db)? {
        return check_postgres_version(db);
    }
    let tables = table_count(db)?;
    if tables > 0 {
        return Err(StoreError::NotOurs {
            target: target.to_string(),
            tables,
        });
    }
    db.execute_batch(POSTGRES_SCHEMA)?;
    // The same ledger as SQLite's: a database moved up by `migrate` and one
    // created here read alike.
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version <= POSTGRES_SCHEMA_VERSION)
    {
        db.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
            super::sql::params![m.version, m.name],
        )?;
    }
    tx.commit()?;
    tracing::info!(database = %target, version = POSTGRES_SCHEMA_VERSION, "created the satellite schema in PostgreSQL");
    Ok(())
}

/// Refuses a schema written by a newer build. Versions below the first
/// PostgreSQL schema never existed there; a later build adds its numbered
/// steps here, as SQLite's list does.
fn check_postgres_version(db: &super::Db) -> Result<(), StoreError> {
    let found: i64 = db.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        (),
        |r| r.get(0),
    )?;
    if found > POSTGRES_SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            known: POSTGRES_SCHEMA_VERSION,
        });
    }
    Ok(())
}

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
        // Another process (the server, a CLI command) may have applied it
        // while this one waited for the lock.
        let applied: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [migration.version],
                |row| row.get(0),
            )
            .map_err(failed)?;
        if applied {
            continue;
        }
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
