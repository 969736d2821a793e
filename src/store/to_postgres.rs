//! Moving up: a stopped embedded satellite's database copied, table by
//! table and row by row, into an empty PostgreSQL database with the same
//! schema (`postgres_schema.sql`), in one transaction: all of it or none.

use super::db::Begin;
use super::postgres::PgConn;
use super::sql::{Column, Param, SqlError, SqlResult, Value};
use super::{Db, StoreError};

use super::migrations::{POSTGRES_SCHEMA as SCHEMA, POSTGRES_SCHEMA_VERSION as SCHEMA_VERSION};

/// Rows copied, per table, in the order they were copied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Copied {
    /// Where to, without credentials.
    pub target: String,
    pub tables: Vec<(String, u64)>,
}

impl Copied {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("cannot connect to PostgreSQL ({target}): {reason}; check the URL, that the server runs and accepts this host, and the password (--password-file)")]
    Connect { target: String, reason: String },
    #[error("the PostgreSQL database {target} is not empty ({tables} tables); give an empty database (createdb -O USER satellite)")]
    NotEmpty { target: String, tables: i64 },
    #[error("the embedded database is at schema {found}, this build moves schema {SCHEMA_VERSION}; start this version of the satellite once (or run `satellite init`) to bring it up to date, stop it, and move it then")]
    Schema { found: i64 },
    #[error("copying table {table} failed: {source}; nothing was written to PostgreSQL")]
    Copy { table: String, source: SqlError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SqlError> for MoveError {
    fn from(e: SqlError) -> Self {
        Self::Store(e.into())
    }
}

/// Where a URL points, without its credentials: what messages may name.
pub fn target(url: &str) -> String {
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return "the given URL (it does not parse)".into();
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    format!(
        "{}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or("(default database)")
    )
}

pub fn connect(url: &str, password: Option<&str>) -> Result<Db, MoveError> {
    PgConn::connect(url, password)
        .map(Db::postgres)
        .map_err(|e| MoveError::Connect {
            target: target(url),
            reason: e.to_string(),
        })
}

/// Copies every table of `embedded` into `pg` (an empty database).
pub fn copy(embedded: &Db, pg: &Db, target_name: &str) -> Result<Copied, MoveError> {
    check_schema(embedded)?;
    let tables = super::migrations::table_count(pg)?;
    if tables > 0 {
        return Err(MoveError::NotEmpty {
            target: target_name.to_string(),
            tables,
        });
    }
    let tx = pg.begin(Begin::Schema)?;
    let copied = fill(embedded, pg)?;
    tx.commit()?;
    Ok(Copied {
        target: target_name.to_string(),
        tables: copied,
    })
}

/// Replaces everything the satellite keeps in `pg` with `embedded` (a
/// restored backup), in one transaction: the satellite's tables and
/// functions are dropped, made again and filled, or nothing changes.
pub fn replace(embedded: &Db, pg: &Db, target_name: &str) -> Result<Copied, MoveError> {
    check_schema(embedded)?;
    let tx = pg.begin(Begin::Schema)?;
    drop_each(
        pg,
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        "TABLE",
        "",
    )?;
    drop_each(
        pg,
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = current_schema() AND p.prokind = 'f'",
        "FUNCTION",
        "()",
    )?;
    let copied = fill(embedded, pg)?;
    tx.commit()?;
    Ok(Copied {
        target: target_name.to_string(),
        tables: copied,
    })
}

/// Copies every row of `pg` into `embedded`, a database just made at the
/// same schema (its migrations ledger is its own), as of one moment of
/// `pg`: what a backup of a PostgreSQL-backed satellite holds.
pub fn copy_out(pg: &Db, embedded: &Db) -> Result<u64, MoveError> {
    check_schema(embedded)?;
    let names: Vec<String> = table_names(embedded)?
        .into_iter()
        .filter(|t| t != "schema_migrations")
        .collect();
    let _snapshot = pg.begin(Begin::Read)?;
    let tx = embedded.begin(Begin::Write)?;
    let mut rows = 0;
    for table in names.iter().filter(|t| *t != "pools") {
        rows += copy_table(embedded, pg, embedded, table).map_err(|source| MoveError::Copy {
            table: table.clone(),
            source,
        })?;
    }
    // The usage rows added to the pools on their way in (SQLite's
    // triggers cannot be paused): the pools are taken as they were.
    embedded.execute("DELETE FROM pools", ())?;
    rows += copy_table(embedded, pg, embedded, "pools").map_err(|source| MoveError::Copy {
        table: "pools".into(),
        source,
    })?;
    tx.commit()?;
    Ok(rows)
}

/// Drops every object of `kind` that `list` names (with their dependents).
fn drop_each(pg: &Db, list: &str, kind: &str, arguments: &str) -> SqlResult<()> {
    let names: Vec<String> = pg
        .prepare_cached(list)?
        .query_map((), |r| r.get(0))?
        .collect::<SqlResult<_>>()?;
    for name in &names {
        pg.execute_batch(&format!(
            "DROP {kind} IF EXISTS {}{arguments} CASCADE",
            identifier(name)
        ))?;
    }
    Ok(())
}

fn check_schema(embedded: &Db) -> Result<(), MoveError> {
    let found: i64 = embedded.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        (),
        |r| r.get(0),
    )?;
    if found != SCHEMA_VERSION {
        return Err(MoveError::Schema { found });
    }
    Ok(())
}

/// Creates the schema in `pg` (inside the caller's transaction) and
/// copies every table of `embedded` into it.
fn fill(embedded: &Db, pg: &Db) -> Result<Vec<(String, u64)>, MoveError> {
    let names = table_names(embedded)?;
    pg.execute_batch(SCHEMA)?;
    // Pools are copied as they are: the usage rows must not add to them
    // again on their way in.
    pg.execute_batch("ALTER TABLE entitlement_usage DISABLE TRIGGER USER")?;
    let mut copied = Vec::new();
    for table in &names {
        let rows = copy_table(embedded, embedded, pg, table).map_err(|source| MoveError::Copy {
            table: table.clone(),
            source,
        })?;
        copied.push((table.clone(), rows));
    }
    pg.execute_batch("ALTER TABLE entitlement_usage ENABLE TRIGGER USER")?;
    // Identity columns continue after the ids copied.
    for table in &names {
        let identity: bool = pg.query_row(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = \
             current_schema() AND table_name = ?1 AND column_name = 'id' AND is_identity = 'YES')",
            [table.as_str()],
            |r| r.get(0),
        )?;
        if identity {
            pg.execute_batch(&format!(
                "SELECT setval(pg_get_serial_sequence('{}', 'id'), \
                 COALESCE((SELECT MAX(id) FROM {}), 0) + 1, false)",
                table.replace('\'', "''"),
                identifier(table)
            ))?;
        }
    }
    Ok(copied)
}

/// The embedded database's tables in the order they were created (each
/// after the tables it refers to), the migrations ledger included.
fn table_names(embedded: &Db) -> SqlResult<Vec<String>> {
    embedded
        .prepare_cached(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY rowid",
        )?
        .query_map((), |r| r.get(0))?
        .collect()
}

/// Copies the rows of `table` from `from` into `to`, with the columns
/// the embedded database's schema lists (both engines have the same).
fn copy_table(embedded: &Db, from: &Db, to: &Db, table: &str) -> SqlResult<u64> {
    // Names come from the database's own catalogue, quoted all the same.
    let columns: Vec<String> = embedded
        .prepare_cached("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
        .query_map([table], |r| r.get(0))?
        .collect::<SqlResult<_>>()?;
    let quoted: Vec<String> = columns.iter().map(|c| identifier(c)).collect();
    let list = quoted.join(", ");
    let select = format!("SELECT {list} FROM {}", identifier(table));
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let insert = format!(
        "INSERT INTO {} ({list}) VALUES ({})",
        identifier(table),
        marks.join(", ")
    );
    let mut rows = 0u64;
    let mut failed = None;
    from.prepare_cached(&select)?.for_each((), |row| {
        let values: Vec<Stored> = (0..columns.len())
            .map(|i| row.get::<Stored>(i))
            .collect::<SqlResult<_>>()?;
        let params: Vec<&dyn Param> = values.iter().map(|v| v as &dyn Param).collect();
        if let Err(e) = to.execute(&insert, params.as_slice()) {
            failed = Some(e);
            return Ok(false);
        }
        rows += 1;
        Ok(true)
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

/// A table or column name as a quoted SQL identifier.
fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whatever a column holds, as SQLite holds it.
enum Stored {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Column for Stored {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> SqlResult<Self> {
        use rusqlite::types::ValueRef;
        Ok(match row.get_ref(index)? {
            ValueRef::Null => Self::Null,
            ValueRef::Integer(i) => Self::Integer(i),
            ValueRef::Real(f) => Self::Real(f),
            ValueRef::Text(t) => Self::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Self::Blob(b.to_vec()),
        })
    }

    fn from_pg_opt(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<Self>> {
        use tokio_postgres::types::Type;
        let ty = row.columns().get(index).map(|c| c.type_().clone());
        Ok(Some(match ty {
            Some(Type::FLOAT8 | Type::FLOAT4) => match f64::from_pg_opt(row, index)? {
                Some(f) => Self::Real(f),
                None => Self::Null,
            },
            Some(Type::BYTEA) => match Vec::<u8>::from_pg_opt(row, index)? {
                Some(b) => Self::Blob(b),
                None => Self::Null,
            },
            Some(Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME) => {
                match String::from_pg_opt(row, index)? {
                    Some(t) => Self::Text(t),
                    None => Self::Null,
                }
            }
            _ => match i64::from_pg_opt(row, index)? {
                Some(i) => Self::Integer(i),
                None => Self::Null,
            },
        }))
    }
}

impl Param for Stored {
    fn value(&self) -> Value<'_> {
        match self {
            Self::Null => Value::Null,
            Self::Integer(i) => Value::Integer(*i),
            Self::Real(f) => Value::Real(*f),
            Self::Text(t) => Value::Text(t),
            Self::Blob(b) => Value::Blob(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_targets_never_show_credentials() {
        assert_eq!(identifier("odd\"name"), "\"odd\"\"name\"");
        let shown = target(
            "postgresql://satellite:hunter2@db1:5433,db2/satellite?target_session_attrs=read-write",
        );
        assert_eq!(shown, "db1:5433,db2:5432/satellite");
        assert!(!target("postgresql://u:hunter2@").contains("hunter2"));
    }
}
