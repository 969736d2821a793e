//! The PostgreSQL engine behind `Db`: a connection, its prepared
//! statements, and the translation of the store's vocabulary (`?N`
//! placeholders, `sql::Value` parameters, `sql::Column` reads).
//!
//! Integers are BIGINT throughout the schema, blobs BYTEA, text TEXT, so
//! the store's SQLite types map one to one; a parameter is converted to
//! whatever type PostgreSQL inferred for its placeholder.

use super::sql::{SqlError, SqlResult, Value};
use std::cell::RefCell;
use std::collections::HashMap;
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
pub struct PgConn {
    client: tokio_postgres::Client,
    statements: RefCell<HashMap<String, tokio_postgres::Statement>>,
    /// A transaction begun here is open.
    open: std::cell::Cell<bool>,
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
            client,
            statements: RefCell::new(HashMap::new()),
            open: std::cell::Cell::new(false),
        })
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
        // A statement PostgreSQL refuses to parse ends the transaction it
        // was sent in; inside one, the first attempt gets a savepoint.
        let inside = self.open.get();
        if inside {
            wait(self.client.batch_execute("SAVEPOINT prepare")).map_err(SqlError::from)?;
        }
        let first = wait(self.client.prepare(&numbered));
        if inside {
            let end = match first {
                Ok(_) => "RELEASE prepare",
                Err(_) => "ROLLBACK TO prepare; RELEASE prepare",
            };
            wait(self.client.batch_execute(end)).map_err(SqlError::from)?;
        }
        let statement = match first {
            Err(e) if untyped(&e) => {
                let types: Vec<Type> = values.iter().map(type_of).collect();
                wait(self.client.prepare_typed(&numbered, &types)).map_err(SqlError::from)?
            }
            prepared => prepared.map_err(SqlError::from)?,
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
        wait(self.client.execute(statement, &params(&binds))).map_err(SqlError::from)
    }

    pub(in crate::store) fn query(
        &self,
        statement: &tokio_postgres::Statement,
        values: &[Value<'_>],
    ) -> SqlResult<Vec<tokio_postgres::Row>> {
        let binds = binds(values);
        wait(self.client.query(statement, &params(&binds))).map_err(SqlError::from)
    }

    /// Whether a transaction this connection began is open (a session the
    /// server ended has none).
    pub(in crate::store) fn in_transaction(&self) -> bool {
        self.open.get() && !self.is_closed()
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
        let answers = wait(self.client.simple_query(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({WRITERS_LOCK}); {then}"
        )))
        .map_err(SqlError::from)?;
        self.open.set(true);
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
        wait(self.client.batch_execute(sql)).map_err(SqlError::from)?;
        let mut words = sql.split_whitespace();
        let first = words.next().unwrap_or_default();
        let to_savepoint = words.next().is_some_and(|w| w.eq_ignore_ascii_case("TO"));
        if first.eq_ignore_ascii_case("BEGIN") {
            self.open.set(true);
        } else if first.eq_ignore_ascii_case("COMMIT")
            || (first.eq_ignore_ascii_case("ROLLBACK") && !to_savepoint)
        {
            self.open.set(false);
        }
        Ok(())
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
