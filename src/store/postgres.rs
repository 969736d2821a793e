//! The PostgreSQL engine behind `Db`: a connection, its prepared
//! statements, and the translation of the store's vocabulary (`?N`
//! placeholders, `sql::Value` parameters, `sql::Column` reads).
//!
//! Integers are BIGINT throughout the schema, blobs BYTEA, text TEXT, so
//! the store's SQLite types map one to one; a parameter is converted to
//! whatever type PostgreSQL inferred for its placeholder.

use super::batch::{self, arrays, written_key, Batched, Claim, Kept, Owned, Row};
use super::sql::{SqlError, SqlResult, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio_postgres::types::{IsNull, ToSql, Type};

/// The transaction-level advisory lock every write transaction takes
/// first: writers run one at a time, as SQLite's do, so a command's
/// read-then-write never interleaves with the server's (READ COMMITTED
/// alone would let two of them read the same count).
pub(in crate::store) const WRITERS_LOCK: i64 = 0x5a7e_0001;

/// The `settings` key counting write transactions made beside the
/// server's writer (CLI commands, the live sync's own connection).
const OTHER_WRITES: &str = "store.other_writes";

pub(in crate::store) enum Mark {
    Read,
    Raise,
    /// The schema may not exist yet.
    None,
}

/// One PostgreSQL session with its statement cache. Calls block the
/// calling thread (as SQLite's do) while the store's I/O thread drives
/// the socket.
///
/// Statements whose answer nobody reads (savepoints, batched rows) are
/// only sent (see [`PgConn::push`]): they travel with the next statement
/// that is waited for. Rows of a `Batched` kind wait for others of their
/// kind (see `batch`), and a writer's job sends its savepoint only if it
/// sends anything itself: a group commit of ENTITLEMENTs is a statement
/// per kind of row, not several per router.
pub struct PgConn {
    client: Arc<tokio_postgres::Client>,
    statements: RefCell<HashMap<String, tokio_postgres::Statement>>,
    /// A transaction begun here is open.
    open: Cell<bool>,
    /// Sent and not yet answered, oldest first. Their answers are read
    /// before any later one: the session answers in order, and keeps
    /// later answers back while an earlier one is not taken.
    sent: RefCell<VecDeque<Sent>>,
    /// Savepoint statements not sent yet: a job's `RELEASE` and the next
    /// one's `SAVEPOINT` go as one message, before whatever comes next.
    held: RefCell<String>,
    /// Savepoint statements sent so far in this transaction: a sent write
    /// that failed can be undone by rolling back to the savepoint it was
    /// sent in, and by nothing after another savepoint statement.
    savepoints: Cell<u64>,
    /// The transaction is in PostgreSQL's failed state: only a rollback
    /// (to a savepoint) ends it. A COMMIT then would answer ROLLBACK
    /// without an error, so it is refused here.
    failed: Cell<bool>,
    /// A sent statement failed where no savepoint undoes it: the
    /// transaction can only be rolled back.
    lost: Cell<bool>,
    /// Rows kept to be sent with others of their kind.
    kept: RefCell<Kept>,
    /// The writer's job running (numbered from 1 in each session).
    job: Cell<u64>,
    job_state: Cell<Job>,
    /// A claimed row was found taken since this was last asked.
    claims_lost: Cell<bool>,
}

/// Where the writer's job running stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Job {
    /// No job runs (a command's transaction, or between jobs).
    Outside,
    /// A job runs and has sent nothing itself: its savepoint is not
    /// needed yet, its rows are only kept, and undoing it forgets them.
    Kept,
    /// A job runs whose savepoint was sent.
    Saved,
}

/// A statement sent, with its answer still to be read.
struct Sent {
    answer: Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send>>,
    /// `savepoints` when it was sent; `None` for a savepoint statement.
    savepoint: Option<u64>,
}

/// How long a dead peer goes unnoticed at most: TCP keepalives probe an
/// idle session after 2 s, every second, and give up after 3 missed
/// answers, so a session whose server (or network) is gone ends within
/// about 5 s and the writer reconnects.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(2);
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
const KEEPALIVE_RETRIES: u32 = 3;
/// A statement sent into a silent network is given up after this long
/// unacknowledged: TCP's own retransmissions would wait for minutes, while
/// this node kept believing it leads.
const UNACKNOWLEDGED: std::time::Duration = std::time::Duration::from_secs(5);
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The runtime whose one thread drives every session's socket. A caller
/// waits on its own thread (an actix worker's included: the wait is not
/// tokio's, so it may run inside another runtime).
fn io() -> SqlResult<&'static tokio::runtime::Handle> {
    static IO: std::sync::OnceLock<Option<tokio::runtime::Handle>> = std::sync::OnceLock::new();
    IO.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("postgres-io".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .ok()?;
        Some(handle)
    })
    .as_ref()
    .ok_or(SqlError::Engine("PostgreSQL I/O thread"))
}

/// Waits for `work` on the I/O thread.
fn wait<T>(work: impl std::future::Future<Output = T>) -> T {
    futures_executor::block_on(work)
}

impl PgConn {
    /// Connects to `url` (a libpq URL; several hosts and
    /// `target_session_attrs=read-write` find the primary), with the
    /// password given apart from the URL (it is never logged or shown).
    pub fn connect(url: &str, password: Option<&str>) -> SqlResult<Self> {
        let mut config: tokio_postgres::Config = url.parse().map_err(SqlError::from)?;
        if let Some(password) = password {
            config.password(password);
        }
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES)
            .tcp_user_timeout(UNACKNOWLEDGED)
            .application_name("satellite");
        let io = io()?;
        let connecting = io.spawn(async move {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            // The session lives as long as this task: it ends when the
            // client is dropped or the server goes away.
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "a PostgreSQL session ended");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = wait(connecting)
            .map_err(|_| SqlError::Engine("PostgreSQL I/O thread"))?
            .map_err(SqlError::from)?;
        Ok(Self {
            client: Arc::new(client),
            statements: RefCell::new(HashMap::new()),
            open: Cell::new(false),
            sent: RefCell::new(VecDeque::new()),
            held: RefCell::new(String::new()),
            savepoints: Cell::new(0),
            failed: Cell::new(false),
            lost: Cell::new(false),
            kept: RefCell::new(Kept::default()),
            job: Cell::new(0),
            job_state: Cell::new(Job::Outside),
            claims_lost: Cell::new(false),
        })
    }

    /// Waits for `work`'s answer, after those of the statements sent
    /// before it (and the rows kept, which go first).
    fn answer<T>(
        &self,
        work: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> SqlResult<T> {
        self.send_kept()?;
        self.raw_answer(work)
    }

    /// `answer` for what sends the kept rows themselves. `work` is put on
    /// the wire first, so it travels with what was sent before it: one
    /// round trip for all.
    fn raw_answer<T>(
        &self,
        work: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> SqlResult<T> {
        self.send_held();
        let mut work = std::pin::pin!(work);
        let first = work.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        let earlier = self.settle();
        let result = match first {
            Poll::Ready(result) => result,
            Poll::Pending => wait(work),
        };
        earlier?;
        result.map_err(|e| {
            self.failed.set(self.open.get());
            SqlError::from(e)
        })
    }

    /// Reads the answers of every statement sent. The first failure is
    /// returned; it leaves the transaction failed, and lost if no
    /// savepoint statement still to come can undo it.
    fn settle(&self) -> SqlResult<()> {
        let mut first = Ok(());
        loop {
            let next = self.sent.borrow_mut().pop_front();
            let Some(sent) = next else { break };
            if let Err(e) = wait(sent.answer) {
                if self.open.get() {
                    self.failed.set(true);
                    if sent.savepoint != Some(self.savepoints.get()) {
                        self.lost.set(true);
                    }
                }
                if first.is_ok() {
                    first = Err(SqlError::from(e));
                }
            }
        }
        first
    }

    /// Puts `work` on the wire and returns without its answer, which is
    /// read (and a failure reported) before the next statement waited for.
    fn push(
        &self,
        work: impl Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
        savepoint: Option<u64>,
    ) {
        let mut answer: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(work);
        if let Poll::Ready(result) = answer
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            answer = Box::pin(std::future::ready(result));
        }
        self.sent.borrow_mut().push_back(Sent { answer, savepoint });
    }

    /// The writer begins a job (see `Job`).
    pub(in crate::store) fn begin_job(&self) {
        self.job.set(self.job.get() + 1);
        self.job_state.set(Job::Kept);
    }

    /// The writer keeps what the job did: its kept rows now belong to the
    /// transaction.
    pub(in crate::store) fn keep_job(&self) {
        if self.job_state.get() == Job::Saved {
            self.hold("RELEASE job");
        }
        self.job_state.set(Job::Outside);
    }

    /// The writer undoes the job: its kept rows are forgotten, and what it
    /// sent is rolled back to its savepoint.
    pub(in crate::store) fn undo_job(&self) {
        let job = self.job.get();
        self.kept.borrow_mut().take(|row| row.job == job);
        if self.job_state.get() == Job::Saved {
            self.hold_undo("job");
        }
        self.job_state.set(Job::Outside);
    }

    /// Keeps a row to be sent with others of its kind (see `batch`).
    pub(in crate::store) fn keep_row(
        &self,
        kind: &'static Batched,
        values: &[Value<'_>],
    ) -> SqlResult<()> {
        let row = Row {
            kind,
            job: match self.job_state.get() {
                Job::Outside => 0,
                Job::Kept | Job::Saved => self.job.get(),
            },
            values: values.iter().map(Owned::from).collect(),
            claim: None,
        };
        if self.kept.borrow().holds(&row) {
            self.send_kept()?;
        }
        self.kept.borrow_mut().keep(row);
        Ok(())
    }

    /// Keeps a claimed row to be answered when the transaction is sent
    /// (see `Db::claim`), if the job has sent nothing itself, so every
    /// write of it can still be forgotten if the claim turns out taken,
    /// and no kept row claims the same key (which would make this job send
    /// its savepoint, and its rows, before the claim is answered).
    pub(in crate::store) fn claim_later(
        &self,
        kind: &'static Batched,
        values: &[Value<'_>],
    ) -> Option<Claim> {
        if !self.open.get() || self.job_state.get() != Job::Kept {
            return None;
        }
        let claim = Claim::default();
        let row = Row {
            kind,
            job: self.job.get(),
            values: values.iter().map(Owned::from).collect(),
            claim: Some(claim.clone()),
        };
        if self.kept.borrow().holds(&row) {
            return None;
        }
        self.kept.borrow_mut().keep(row);
        Some(claim)
    }

    /// Whether a claimed row was found taken since this was last asked
    /// (the job that claimed it wrote nothing, whatever it computed).
    pub(in crate::store) fn take_lost_claims(&self) -> bool {
        self.claims_lost.replace(false)
    }

    /// Sends the kept rows: before anything else is sent, so no statement
    /// reads around them. Rows of jobs before the running one go first;
    /// then the running job's savepoint, since it now sends something of
    /// its own, and its rows inside it.
    fn send_kept(&self) -> SqlResult<()> {
        if self.job_state.get() == Job::Kept {
            let job = self.job.get();
            let earlier = self.kept.borrow_mut().take(|row| row.job != job);
            self.send_rows(earlier)?;
            self.hold("SAVEPOINT job");
            self.job_state.set(Job::Saved);
        }
        if self.kept.borrow().is_empty() {
            return Ok(());
        }
        let rows = self.kept.borrow_mut().take(|_| true);
        self.send_rows(rows)
    }

    /// One statement per kind. Claimed rows are waited for first: the
    /// rows of a job whose claim was taken are not sent at all.
    fn send_rows(&self, rows: Vec<Row>) -> SqlResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let (claims, mut rest): (Vec<Row>, Vec<Row>) =
            rows.into_iter().partition(|row| row.claim.is_some());
        for kind in batch::by_kind(claims) {
            let statement = self.prepare_many(kind[0].kind)?;
            let arrays = arrays(&kind)?;
            let rows =
                self.raw_answer(self.client.query(&statement, &batch::array_params(&arrays)))?;
            let written: HashSet<Vec<Owned>> = rows
                .iter()
                .map(|r| written_key(kind[0].kind, r))
                .collect::<SqlResult<_>>()?;
            let lost = batch::settle_claims(&kind, &written);
            if !lost.is_empty() {
                self.claims_lost.set(true);
                rest.retain(|row| !lost.contains(&row.job));
            }
        }
        self.send_held();
        for kind in batch::by_kind(rest) {
            let statement = self.prepare_many(kind[0].kind)?;
            let arrays = arrays(&kind)?;
            let client = self.client.clone();
            self.push(
                async move {
                    client
                        .execute(&statement, &batch::array_params(&arrays))
                        .await
                        .map(|_| ())
                },
                Some(self.savepoints.get()),
            );
        }
        Ok(())
    }

    /// The array statement of a kind, prepared once per session.
    fn prepare_many(&self, kind: &Batched) -> SqlResult<tokio_postgres::Statement> {
        if let Some(statement) = self.statements.borrow().get(kind.many) {
            return Ok(statement.clone());
        }
        let statement = self.raw_answer(self.client.prepare(kind.many))?;
        self.statements
            .borrow_mut()
            .insert(kind.many.to_string(), statement.clone());
        Ok(statement)
    }

    /// Holds a savepoint statement to go with the next statement sent,
    /// without waiting: they fail only in a transaction that failed
    /// already, and then the commit is refused.
    fn hold(&self, sql: &str) {
        self.savepoints.set(self.savepoints.get() + 1);
        let mut held = self.held.borrow_mut();
        if !held.is_empty() {
            held.push_str("; ");
        }
        held.push_str(sql);
    }

    /// Holds the undoing of savepoint `name`, which ends the failed state
    /// of a transaction unless a failure it cannot undo was seen.
    fn hold_undo(&self, name: &str) {
        self.hold(&format!("ROLLBACK TO {name}"));
        self.hold(&format!("RELEASE {name}"));
        self.failed.set(self.lost.get());
    }

    fn send_held(&self) {
        let held = std::mem::take(&mut *self.held.borrow_mut());
        if !held.is_empty() {
            let client = self.client.clone();
            self.push(async move { client.batch_execute(&held).await }, None);
        }
    }

    /// The prepared form of `sql` (store SQL, `?N` placeholders), prepared
    /// once per session. PostgreSQL infers each parameter's type from where
    /// it stands; where it cannot (`?2 IS NULL OR name = ?2`, `?1 - ?2`),
    /// the statement is prepared again with the types of the values given
    /// the first time (a NULL as text), as SQLite would have taken them.
    pub(in crate::store) fn prepare(
        &self,
        sql: &str,
        values: &[Value<'_>],
    ) -> SqlResult<tokio_postgres::Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let numbered = placeholders(sql);
        self.send_kept()?;
        // A statement PostgreSQL refuses to parse ends the transaction it
        // was sent in; inside one, the first attempt gets a savepoint.
        let inside = self.open.get();
        if inside {
            self.hold("SAVEPOINT prepare");
        }
        let first = self.answer(self.client.prepare(&numbered));
        if inside {
            match first {
                Ok(_) => self.hold("RELEASE prepare"),
                Err(_) => {
                    self.hold_undo("prepare");
                }
            }
        }
        let statement = match first {
            Err(SqlError::Postgres(e)) if untyped(&e) => {
                let types: Vec<Type> = values.iter().map(type_of).collect();
                self.answer(self.client.prepare_typed(&numbered, &types))?
            }
            prepared => prepared?,
        };
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(in crate::store) fn execute(
        &self,
        statement: &tokio_postgres::Statement,
        values: &[Value<'_>],
    ) -> SqlResult<u64> {
        let binds = binds(values);
        self.answer(self.client.execute(statement, &params(&binds)))
    }

    pub(in crate::store) fn query(
        &self,
        statement: &tokio_postgres::Statement,
        values: &[Value<'_>],
    ) -> SqlResult<Vec<tokio_postgres::Row>> {
        let binds = binds(values);
        self.answer(self.client.query(statement, &params(&binds)))
    }

    /// Whether a transaction this connection began is open (a session the
    /// server ended has none).
    pub(in crate::store) fn in_transaction(&self) -> bool {
        self.open.get() && !self.failed.get() && !self.is_closed()
    }

    /// Whether the session has ended (the server went away, a failover):
    /// nothing more can be done on it.
    pub(in crate::store) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Begins a write transaction and waits for the writers' lock (see
    /// `WRITERS_LOCK`). `Mark` says what becomes of the count of writes
    /// made beside the server's writer (see `Db::begin_group`): it is read
    /// (the writer) or raised (everyone else). One round trip either way.
    pub(in crate::store) fn begin_write(&self, mark: Mark) -> SqlResult<i64> {
        let then = match mark {
            Mark::Read => format!("SELECT value FROM settings WHERE key = '{OTHER_WRITES}'"),
            Mark::None => String::new(),
            Mark::Raise => format!(
                "INSERT INTO settings (key, value) VALUES ('{OTHER_WRITES}', '1') \
                 ON CONFLICT (key) DO UPDATE SET value = (settings.value::bigint + 1)::text \
                 RETURNING value"
            ),
        };
        let answers = self.answer(self.client.simple_query(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({WRITERS_LOCK}); {then}"
        )))?;
        self.opened();
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0),
                _ => None,
            })
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    pub(in crate::store) fn batch(&self, sql: &str) -> SqlResult<()> {
        let mut words = sql.split_whitespace();
        let first = words.next().unwrap_or_default();
        let to_savepoint = words.next().is_some_and(|w| w.eq_ignore_ascii_case("TO"));
        let commit = first.eq_ignore_ascii_case("COMMIT");
        let ends = commit || (first.eq_ignore_ascii_case("ROLLBACK") && !to_savepoint);
        if ends && !commit {
            // Nothing kept or held is wanted by a transaction rolled back.
            self.kept.borrow_mut().forget();
            self.held.borrow_mut().clear();
        }
        if commit && self.open.get() && self.failed.get() {
            let _ = self.answer(self.client.batch_execute("ROLLBACK"));
            self.closed();
            return Err(SqlError::TransactionFailed);
        }
        let done = self.answer(self.client.batch_execute(sql));
        if first.eq_ignore_ascii_case("BEGIN") && done.is_ok() {
            self.opened();
        } else if ends {
            self.closed();
        }
        done
    }

    fn opened(&self) {
        self.open.set(true);
        self.kept.borrow_mut().forget();
        self.job_state.set(Job::Outside);
        self.savepoints.set(0);
        self.failed.set(false);
        self.lost.set(false);
    }

    fn closed(&self) {
        self.open.set(false);
        self.kept.borrow_mut().forget();
        self.job_state.set(Job::Outside);
        self.failed.set(false);
        self.lost.set(false);
    }
}

/// `?N` → `$N` outside quoted text; a bare `?` takes the next number, as
/// SQLite numbers them.
pub(in crate::store) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut highest = 0u32;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = digits.parse::<u32>().unwrap_or(highest + 1);
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// The server could not tell a parameter's type from the statement.
fn untyped(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|code| {
        [
            SqlState::INDETERMINATE_DATATYPE,
            SqlState::AMBIGUOUS_PARAMETER,
            SqlState::AMBIGUOUS_FUNCTION,
        ]
        .contains(code)
    })
}

fn type_of(value: &Value<'_>) -> Type {
    match value {
        Value::Integer(_) => Type::INT8,
        Value::Real(_) => Type::FLOAT8,
        Value::Blob(_) => Type::BYTEA,
        Value::Null | Value::Text(_) => Type::TEXT,
    }
}

fn binds<'a>(values: &[Value<'a>]) -> Vec<PgValue<'a>> {
    values.iter().copied().map(PgValue).collect()
}

/// The parameters as the client takes them.
fn params<'a>(binds: &'a [PgValue<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect()
}

/// A parameter converted to the type PostgreSQL inferred for it.
#[derive(Debug)]
struct PgValue<'a>(Value<'a>);

impl ToSql for PgValue<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(format!("an integer cannot go into a {ty} parameter").into()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => Err(format!("a real cannot go into a {ty} parameter").into()),
            },
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            placeholders("SELECT '?1', x FROM t WHERE a = ?1 AND b = ?12 AND c = ?"),
            "SELECT '?1', x FROM t WHERE a = $1 AND b = $12 AND c = $13"
        );
        assert_eq!(placeholders("VALUES (?, ?)"), "VALUES ($1, $2)");
    }
}
