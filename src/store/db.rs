//! The seam between the store and everything above it.
//!
//! Operations receive a `&Db` for their unit of work and call the store's
//! query functions with it; they never see the engine behind it. Only the
//! store's own modules reach the SQL methods below (`pub(in crate::store)`),
//! so a second backend changes this file and the store's modules, nothing
//! above them.

use rusqlite::{CachedStatement, Connection, Params, Row, Statement};

/// One database connection, owned by whoever runs work on it: the writer
/// thread, a reader in the pool, or a one-shot command.
pub struct Db {
    conn: Connection,
    /// Who the transactions on this connection act for: the events they
    /// write carry the name (a one-shot command's connection is one caller's).
    actor: Option<String>,
}

impl Db {
    pub(in crate::store) fn new(conn: Connection) -> Self {
        Self { conn, actor: None }
    }

    /// Stamps the events that later transactions on this connection write
    /// with `actor` (`cli:alice`): for operations that span several
    /// transactions, such as a live exchange with the network in between.
    pub fn act_for(&mut self, actor: &str) {
        self.actor = Some(actor.to_string());
    }

    pub(in crate::store) fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// A fresh database in memory with the whole schema, for unit tests.
    #[cfg(test)]
    pub(in crate::store) fn migrated_in_memory() -> Self {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        super::migrations::apply(&mut conn).expect("migrations");
        Self { conn, actor: None }
    }

    pub(in crate::store) fn sqlite(&self) -> &Connection {
        &self.conn
    }

    pub(in crate::store) fn sqlite_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub(in crate::store) fn prepare_cached(
        &self,
        sql: &str,
    ) -> rusqlite::Result<CachedStatement<'_>> {
        self.conn.prepare_cached(sql)
    }

    pub(in crate::store) fn prepare(&self, sql: &str) -> rusqlite::Result<Statement<'_>> {
        self.conn.prepare(sql)
    }

    pub(in crate::store) fn execute<P: Params>(
        &self,
        sql: &str,
        params: P,
    ) -> rusqlite::Result<usize> {
        self.conn.execute(sql, params)
    }

    pub(in crate::store) fn execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(sql)
    }

    pub(in crate::store) fn query_row<T, P, F>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.conn.query_row(sql, params, f)
    }

    pub(in crate::store) fn last_insert_rowid(&self) -> i64 {
        self.conn.last_insert_rowid()
    }
}

/// The store's functions answer in the service's error type; an engine
/// error is a store error there.
impl From<rusqlite::Error> for crate::error::Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(super::StoreError::from(e))
    }
}
