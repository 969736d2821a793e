//! The PostgreSQL engine behind `Db`: a connection, its prepared
//! statements, and the translation of the store's vocabulary (`?N`
//! placeholders, `sql::Value` parameters, `sql::Column` reads).
//!
//! Integers are BIGINT throughout the schema, blobs BYTEA, text TEXT, so
//! the store's SQLite types map one to one; a parameter is converted to
//! whatever type PostgreSQL inferred for its placeholder.

use super::sql::{SqlError, SqlResult, Value};
use postgres::types::{IsNull, ToSql, Type};
use std::cell::RefCell;
use std::collections::HashMap;

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

/// One PostgreSQL session with its statement cache.
pub struct PgConn {
    client: RefCell<postgres::Client>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    /// A transaction begun here is open.
    open: std::cell::Cell<bool>,
}

/// How long a dead peer goes unnoticed at most: TCP keepalives at these
/// intervals end a session whose server (or network) is gone.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(2);
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl PgConn {
    /// Connects to `url` (a libpq URL; several hosts and
    /// `target_session_attrs=read-write` find the primary), with the
    /// password given apart from the URL (it is never logged or shown).
    pub fn connect(url: &str, password: Option<&str>) -> SqlResult<Self> {
        let mut config: postgres::Config = url.parse().map_err(SqlError::from)?;
        if let Some(password) = password {
            config.password(password);
        }
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .application_name("satellite");
        let client = config.connect(postgres::NoTls).map_err(SqlError::from)?;
        Ok(Self {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
            open: std::cell::Cell::new(false),
        })
    }

    /// The prepared form of `sql` (store SQL, `?N` placeholders), prepared
    /// once per session.
    pub(in crate::store) fn prepare(&self, sql: &str) -> SqlResult<postgres::Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .client
            .borrow_mut()
            .prepare(&placeholders(sql))
            .map_err(SqlError::from)?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(in crate::store) fn execute(
        &self,
        statement: &postgres::Statement,
        values: &[Value<'_>],
    ) -> SqlResult<u64> {
        self.call(values, |client, params| client.execute(statement, params))
    }

    pub(in crate::store) fn query(
        &self,
        statement: &postgres::Statement,
        values: &[Value<'_>],
    ) -> SqlResult<Vec<postgres::Row>> {
        self.call(values, |client, params| client.query(statement, params))
    }

    /// Runs `f` with `values` as the postgres crate takes parameters.
    fn call<T>(
        &self,
        values: &[Value<'_>],
        f: impl FnOnce(&mut postgres::Client, &[&(dyn ToSql + Sync)]) -> Result<T, postgres::Error>,
    ) -> SqlResult<T> {
        let binds: Vec<PgValue<'_>> = values.iter().copied().map(PgValue).collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        f(&mut self.client.borrow_mut(), &params).map_err(SqlError::from)
    }

    /// Whether a transaction this connection began is open (a session the
    /// server ended has none).
    pub(in crate::store) fn in_transaction(&self) -> bool {
        self.open.get() && !self.is_closed()
    }

    /// Whether the session has ended (the server went away, a failover):
    /// nothing more can be done on it.
    pub(in crate::store) fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
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
        let answers = self
            .client
            .borrow_mut()
            .simple_query(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({WRITERS_LOCK}); {then}"
            ))
            .map_err(SqlError::from)?;
        self.open.set(true);
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(row) => row.get(0),
                _ => None,
            })
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    pub(in crate::store) fn batch(&self, sql: &str) -> SqlResult<()> {
        self.client
            .borrow_mut()
            .batch_execute(sql)
            .map_err(SqlError::from)?;
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

    postgres::types::to_sql_checked!();
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
