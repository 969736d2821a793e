//! The seam between the store and everything above it.
//!
//! Operations receive a `&Db` for their unit of work and call the store's
//! query functions with it; they never see the engine behind it. Only the
//! store's own modules reach the SQL methods below (`pub(in crate::store)`),
//! and they speak `sql`'s engine-free types (parameters, rows, errors): a
//! second engine implements these methods and `Statement`, and the store's
//! modules stay as they are. Opening, transactions, migrations and backups
//! are the engine's own (store/mod.rs, writer.rs, migrations.rs, backup.rs).

use super::sql::{Bind, Params, Row, SqlError, SqlResult};
use rusqlite::Connection;

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

    /// A statement, prepared once per connection and kept for reuse.
    pub(in crate::store) fn prepare_cached(&self, sql: &str) -> SqlResult<Statement<'_>> {
        Ok(Statement {
            inner: self.conn.prepare_cached(sql)?,
        })
    }

    pub(in crate::store) fn execute<P: Params>(&self, sql: &str, params: P) -> SqlResult<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Several statements without parameters (schema work, temp tables).
    pub(in crate::store) fn execute_batch(&self, sql: &str) -> SqlResult<()> {
        Ok(self.conn.execute_batch(sql)?)
    }

    /// The one row a query returns (`SqlError::NoRows` if none).
    pub(in crate::store) fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> SqlResult<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> SqlResult<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// A prepared statement of this connection.
pub(in crate::store) struct Statement<'c> {
    inner: rusqlite::CachedStatement<'c>,
}

fn binds<P: Params>(params: &P) -> impl Iterator<Item = Bind<'_>> {
    params.each().map(Bind)
}

impl Statement<'_> {
    pub(in crate::store) fn execute<P: Params>(&mut self, params: P) -> SqlResult<usize> {
        Ok(self
            .inner
            .execute(rusqlite::params_from_iter(binds(&params)))?)
    }

    pub(in crate::store) fn query_row<T, P, F>(&mut self, params: P, f: F) -> SqlResult<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> SqlResult<T>,
    {
        let mut rows = self
            .inner
            .query(rusqlite::params_from_iter(binds(&params)))?;
        match rows.next()? {
            Some(row) => f(&Row { inner: row }),
            None => Err(SqlError::NoRows),
        }
    }

    /// Every row, each read by `f`.
    pub(in crate::store) fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> SqlResult<std::vec::IntoIter<SqlResult<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> SqlResult<T>,
    {
        let mut rows = self
            .inner
            .query(rusqlite::params_from_iter(binds(&params)))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(f(&Row { inner: row }));
        }
        Ok(out.into_iter())
    }

    /// Rows one at a time, for as long as `f` answers true (streams: a
    /// large result is never held whole).
    pub(in crate::store) fn for_each<P, F>(&mut self, params: P, mut f: F) -> SqlResult<()>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> SqlResult<bool>,
    {
        let mut rows = self
            .inner
            .query(rusqlite::params_from_iter(binds(&params)))?;
        while let Some(row) = rows.next()? {
            if !f(&Row { inner: row })? {
                break;
            }
        }
        Ok(())
    }
}

/// The store's functions answer in the service's error type; an engine
/// error is a store error there.
impl From<SqlError> for crate::error::Error {
    fn from(e: SqlError) -> Self {
        Self::Store(super::StoreError::from(e))
    }
}
