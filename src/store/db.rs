//! The seam between the store and everything above it.
//!
//! Operations receive a `&Db` for their unit of work and call the store's
//! query functions with it; they never see the engine behind it. Only the
//! store's own modules reach the SQL methods below (`pub(in crate::store)`),
//! and they speak `sql`'s engine-free types (parameters, rows, errors): a
//! second engine implements these methods and `Statement`, and the store's
//! modules stay as they are. Opening, transactions, migrations and backups
//! are the engine's own (store/mod.rs, writer.rs, migrations.rs, backup.rs).

use super::batch::{Batched, Claim};
use super::postgres::{Mark, PgConn};
use super::sql::{Bind, Params, Row, RowRef, SqlError, SqlResult, Value};
use rusqlite::Connection;

/// One database connection, owned by whoever runs work on it: the writer
/// thread, a reader in the pool, or a one-shot command.
pub struct Db {
    engine: Engine,
    /// Who the transactions on this connection act for: the events they
    /// write carry the name (a one-shot command's connection is one caller's).
    actor: Option<String>,
}

enum Engine {
    Sqlite(Connection),
    Postgres(Box<PgConn>),
}

impl Db {
    pub(in crate::store) fn new(conn: Connection) -> Self {
        Self {
            engine: Engine::Sqlite(conn),
            actor: None,
        }
    }

    pub(in crate::store) fn postgres(conn: PgConn) -> Self {
        Self {
            engine: Engine::Postgres(Box::new(conn)),
            actor: None,
        }
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
        Self::new(conn)
    }

    /// The SQLite connection, for what only that engine does (opening,
    /// transactions, migrations, backups).
    pub(in crate::store) fn sqlite(&self) -> SqlResult<&Connection> {
        match &self.engine {
            Engine::Sqlite(conn) => Ok(conn),
            Engine::Postgres(_) => Err(SqlError::Engine("SQLite")),
        }
    }

    pub(in crate::store) fn sqlite_mut(&mut self) -> SqlResult<&mut Connection> {
        match &mut self.engine {
            Engine::Sqlite(conn) => Ok(conn),
            Engine::Postgres(_) => Err(SqlError::Engine("SQLite")),
        }
    }

    /// A statement, prepared once per connection and kept for reuse.
    pub(in crate::store) fn prepare_cached(&self, sql: &str) -> SqlResult<Statement<'_>> {
        Ok(match &self.engine {
            Engine::Sqlite(conn) => Statement::Sqlite(conn.prepare_cached(sql)?),
            // Prepared at its first run, which knows the parameters' values.
            Engine::Postgres(conn) => Statement::Postgres {
                conn,
                sql: sql.to_string(),
            },
        })
    }

    pub(in crate::store) fn execute<P: Params>(&self, sql: &str, params: P) -> SqlResult<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Several statements without parameters (schema work, temp tables).
    pub(in crate::store) fn execute_batch(&self, sql: &str) -> SqlResult<()> {
        match &self.engine {
            Engine::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Engine::Postgres(conn) => conn.batch(sql),
        }
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

/// What a transaction is for.
pub(in crate::store) enum Begin {
    /// Changes: SQLite takes the write lock at once (no deadlock upgrading
    /// a read later).
    Write,
    /// Reads that see one moment and hold no write lock.
    Read,
    /// Creating or changing the schema: the write lock, and nothing that
    /// needs the schema to exist.
    Schema,
}

/// An open transaction: rolled back when dropped uncommitted (an error or
/// a panic on the way), committed only by `commit`.
pub(in crate::store) struct Transaction<'c> {
    db: &'c Db,
    open: bool,
}

impl Transaction<'_> {
    pub(in crate::store) fn commit(mut self) -> SqlResult<()> {
        self.open = false;
        self.db.commit()
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.db.execute_batch("ROLLBACK");
        }
    }
}

impl Db {
    pub(in crate::store) fn begin(&self, kind: Begin) -> SqlResult<Transaction<'_>> {
        match (&self.engine, kind) {
            (Engine::Sqlite(_), Begin::Write | Begin::Schema) => {
                self.execute_batch("BEGIN IMMEDIATE")?
            }
            (Engine::Sqlite(_), Begin::Read) => self.execute_batch("BEGIN DEFERRED")?,
            (Engine::Postgres(conn), Begin::Write) => {
                conn.begin_write(Mark::Raise)?;
            }
            (Engine::Postgres(conn), Begin::Schema) => {
                conn.begin_write(Mark::None)?;
            }
            (Engine::Postgres(_), Begin::Read) => {
                self.execute_batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?
            }
        }
        Ok(Transaction {
            db: self,
            open: true,
        })
    }

    /// Begins the writer's next group, with the write lock held, and
    /// answers whether another connection (a CLI command) wrote since the
    /// group before, judged by `seen` (which this updates): SQLite counts
    /// commits by others in `data_version`; on PostgreSQL every other
    /// write transaction raises a count in `settings` as it begins (under
    /// the writers' lock). Unknown counts as written.
    pub(in crate::store) fn begin_group(&self, seen: &mut Option<i64>) -> SqlResult<bool> {
        let (now, others) = match &self.engine {
            Engine::Sqlite(_) => {
                self.prepare_cached("BEGIN IMMEDIATE")?.execute(())?;
                let version = self
                    .prepare_cached("PRAGMA data_version")
                    .and_then(|mut s| s.query_row((), |r| r.get::<i64>(0)))
                    .ok();
                (version, version.is_none() || version != *seen)
            }
            Engine::Postgres(conn) => {
                let count = conn.begin_write(Mark::Read)?;
                (Some(count), *seen != Some(count))
            }
        };
        *seen = now;
        Ok(others)
    }

    /// The writer begins a job, whose changes `undo_job` undoes alone:
    /// SQLite takes a savepoint (a prepared statement); PostgreSQL sends
    /// one only if the job sends a statement of its own, and otherwise
    /// forgets the job's kept rows (see `batch`).
    pub(in crate::store) fn begin_job(&self) -> SqlResult<()> {
        match &self.engine {
            Engine::Sqlite(_) => self.run_cached("SAVEPOINT job"),
            Engine::Postgres(conn) => {
                conn.begin_job();
                Ok(())
            }
        }
    }

    /// Keeps what the job did, in the transaction.
    pub(in crate::store) fn keep_job(&self) -> SqlResult<()> {
        match &self.engine {
            Engine::Sqlite(_) => self.run_cached("RELEASE job"),
            Engine::Postgres(conn) => {
                conn.keep_job();
                Ok(())
            }
        }
    }

    /// Undoes what the job did, and nothing before it.
    pub(in crate::store) fn undo_job(&self) -> SqlResult<()> {
        match &self.engine {
            Engine::Sqlite(_) => {
                self.run_cached("ROLLBACK TO job")?;
                self.run_cached("RELEASE job")
            }
            Engine::Postgres(conn) => {
                conn.undo_job();
                Ok(())
            }
        }
    }

    fn run_cached(&self, sql: &str) -> SqlResult<()> {
        self.prepare_cached(sql)?.execute(()).map(|_| ())
    }

    /// A write of a kind many jobs make alike (see `batch`): SQLite runs
    /// it now, PostgreSQL sends it with the others of its kind.
    pub(in crate::store) fn execute_batched<P: Params>(
        &self,
        kind: &'static Batched,
        params: P,
    ) -> SqlResult<()> {
        match &self.engine {
            // Outside a transaction nothing would send it later.
            Engine::Postgres(conn) if conn.in_transaction() => {
                conn.keep_row(kind, &values(&params))
            }
            _ => self.run_one(kind, params).map(|_| ()),
        }
    }

    /// Writes a row of a kind whose statement writes it only if its key
    /// is new: whether it did is known now, or (on PostgreSQL, in a job
    /// that sent nothing of its own yet) by the time the commit is
    /// answered. Then, if the key was taken, nothing else of the job is
    /// written either: the claim must be the job's last write.
    pub(in crate::store) fn claim<P: Params>(
        &self,
        kind: &'static Batched,
        params: P,
    ) -> SqlResult<Claimed> {
        if let Engine::Postgres(conn) = &self.engine {
            if let Some(claim) = conn.claim_later(kind, &values(&params)) {
                return Ok(Claimed::Later(claim));
            }
        }
        Ok(Claimed::Now(self.run_one(kind, params)? > 0))
    }

    fn run_one<P: Params>(&self, kind: &'static Batched, params: P) -> SqlResult<usize> {
        self.prepare_cached(kind.one)?.execute(params)
    }

    /// Whether a claimed row was found taken since this was last asked:
    /// the job that claimed it changed copies it did not write.
    pub(in crate::store) fn take_lost_claims(&self) -> bool {
        match &self.engine {
            Engine::Sqlite(_) => false,
            Engine::Postgres(conn) => conn.take_lost_claims(),
        }
    }

    /// Commits the transaction open on this connection; refused (and
    /// rolled back) on PostgreSQL when a statement in it failed and no
    /// savepoint undid it, where the server itself would answer a COMMIT
    /// with a rollback and no error.
    pub(in crate::store) fn commit(&self) -> SqlResult<()> {
        match &self.engine {
            Engine::Sqlite(_) => self.run_cached("COMMIT"),
            Engine::Postgres(conn) => conn.batch("COMMIT"),
        }
    }

    /// Claims this node's leadership on a database other nodes share (see
    /// `leader`): true if this session holds it now. The embedded database
    /// has one node.
    pub(in crate::store) fn try_lead(&self) -> SqlResult<bool> {
        match &self.engine {
            Engine::Sqlite(_) => Ok(true),
            Engine::Postgres(_) => self.query_row(
                &format!(
                    "SELECT pg_try_advisory_lock({})",
                    super::leader::LEADER_LOCK
                ),
                (),
                |r| r.get(0),
            ),
        }
    }

    /// Whether the connection can no longer be used (PostgreSQL ended the
    /// session); a pool drops it, the writer makes a new one.
    pub(in crate::store) fn is_broken(&self) -> bool {
        match &self.engine {
            Engine::Sqlite(_) => false,
            Engine::Postgres(conn) => conn.is_closed(),
        }
    }

    /// Whether a transaction is open (SQLite ends one by itself on a disk
    /// full or I/O error: the writer must notice).
    pub(in crate::store) fn in_transaction(&self) -> bool {
        match &self.engine {
            Engine::Sqlite(conn) => !conn.is_autocommit(),
            Engine::Postgres(conn) => conn.in_transaction(),
        }
    }
}

/// Whether a claimed row was written (see `Db::claim`).
pub(in crate::store) enum Claimed {
    Now(bool),
    Later(Claim),
}

/// A prepared statement of this connection.
pub(in crate::store) enum Statement<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    Postgres { conn: &'c PgConn, sql: String },
}

fn binds<P: Params>(params: &P) -> impl Iterator<Item = Bind<'_>> {
    params.each().map(Bind)
}

fn values<P: Params>(params: &P) -> Vec<Value<'_>> {
    params.each().map(|p| p.value()).collect()
}

impl Statement<'_> {
    pub(in crate::store) fn execute<P: Params>(&mut self, params: P) -> SqlResult<usize> {
        match self {
            Self::Sqlite(s) => Ok(s.execute(rusqlite::params_from_iter(binds(&params)))?),
            Self::Postgres { conn, sql } => {
                let values = values(&params);
                let n = conn.execute(&conn.prepare(sql, &values)?, &values)?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    pub(in crate::store) fn query_row<T, P, F>(&mut self, params: P, f: F) -> SqlResult<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> SqlResult<T>,
    {
        let mut f = Some(f);
        let mut found = None;
        self.for_each(params, |row| {
            if let Some(f) = f.take() {
                found = Some(f(row)?);
            }
            Ok(false)
        })?;
        found.ok_or(SqlError::NoRows)
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
        let mut out = Vec::new();
        self.for_each(params, |row| {
            out.push(f(row));
            Ok(true)
        })?;
        Ok(out.into_iter())
    }

    /// Rows one at a time, for as long as `f` answers true (SQLite
    /// streams them; PostgreSQL's come in one answer).
    pub(in crate::store) fn for_each<P, F>(&mut self, params: P, mut f: F) -> SqlResult<()>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> SqlResult<bool>,
    {
        match self {
            Self::Sqlite(s) => {
                let mut rows = s.query(rusqlite::params_from_iter(binds(&params)))?;
                while let Some(row) = rows.next()? {
                    if !f(&Row {
                        inner: RowRef::Sqlite(row),
                    })? {
                        break;
                    }
                }
            }
            Self::Postgres { conn, sql } => {
                let values = values(&params);
                for row in conn.query(&conn.prepare(sql, &values)?, &values)? {
                    if !f(&Row {
                        inner: RowRef::Postgres(&row),
                    })? {
                        break;
                    }
                }
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
