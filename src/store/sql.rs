//! The store's own vocabulary for queries, free of any engine's types:
//! parameters as `Value`s, rows read by `Column` types, one error type.
//! The store's modules speak only this; `Db` translates it for the engine
//! it runs on (SQLite today; the PostgreSQL backend plugs in here).

/// A parameter's value as the engine receives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// What can be bound to a `?N` placeholder.
pub trait Param {
    fn value(&self) -> Value<'_>;
}

macro_rules! integer_params {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value<'_> {
                Value::Integer(i64::from(*self))
            }
        }
    )*};
}
integer_params!(i64, i32, u32, u16, u8, bool);

/// Counts and sequence numbers beyond `i64::MAX` do not occur; one that
/// did would be stored saturated rather than wrapped negative.
impl Param for u64 {
    fn value(&self) -> Value<'_> {
        Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl Param for usize {
    fn value(&self) -> Value<'_> {
        Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl Param for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl Param for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<const N: usize> Param for [u8; N] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        match self {
            Some(v) => v.value(),
            None => Value::Null,
        }
    }
}

/// A query's parameters, in placeholder order: `params![a, b]`, or an
/// array of one type (`[id]`).
pub trait Params {
    fn each(&self) -> impl Iterator<Item = &dyn Param>;
}

impl Params for &[&dyn Param] {
    fn each(&self) -> impl Iterator<Item = &dyn Param> {
        self.iter().copied()
    }
}

impl Params for () {
    fn each(&self) -> impl Iterator<Item = &dyn Param> {
        std::iter::empty()
    }
}

impl<T: Param, const N: usize> Params for [T; N] {
    fn each(&self) -> impl Iterator<Item = &dyn Param> {
        self.iter().map(|p| p as &dyn Param)
    }
}

/// `params![a, b]`: a query's parameters, in placeholder order.
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::sql::Param] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::sql::Param),+] as &[&dyn $crate::store::sql::Param] };
}
pub(crate) use params;

/// What the engine can fail with, in the store's words.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    #[error("{}", postgres_message(.0))]
    Postgres(tokio_postgres::Error),
    /// A row broke a UNIQUE, PRIMARY KEY or CHECK constraint.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// Work only one engine does, asked of the other.
    #[error("this needs the {0} engine")]
    Engine(&'static str),
    /// A statement of the transaction failed and nothing undid it: the
    /// commit became a rollback.
    #[error("a statement of this transaction failed, so it was rolled back instead of committed")]
    TransactionFailed,
    /// A query that must return one row returned none.
    #[error("the query returned no rows")]
    NoRows,
    /// A column held something its Rust type cannot take.
    #[error("column {column}: {reason}")]
    Column { column: usize, reason: String },
}

impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Self::NoRows,
            rusqlite::Error::SqliteFailure(f, message)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Self::Constraint(message.unwrap_or_else(|| f.to_string()))
            }
            e => Self::Sqlite(e),
        }
    }
}

impl From<tokio_postgres::Error> for SqlError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        let constraint = e.code().is_some_and(|code| {
            [
                SqlState::UNIQUE_VIOLATION,
                SqlState::CHECK_VIOLATION,
                SqlState::NOT_NULL_VIOLATION,
                SqlState::FOREIGN_KEY_VIOLATION,
            ]
            .contains(code)
        });
        if constraint {
            return Self::Constraint(
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string()),
            );
        }
        Self::Postgres(e)
    }
}

/// The server's own words (and its detail and hint), or the client's with
/// its cause: the postgres crate's Display says only "db error".
fn postgres_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        for extra in [db.detail(), db.hint()].into_iter().flatten() {
            text.push_str("; ");
            text.push_str(extra);
        }
        return text;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

pub type SqlResult<T> = Result<T, SqlError>;

/// `Ok(None)` for a single-row query that found no row.
pub fn optional<T>(result: SqlResult<T>) -> SqlResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(SqlError::NoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One row of a result, read column by column.
pub struct Row<'a> {
    pub(in crate::store) inner: RowRef<'a>,
}

pub(in crate::store) enum RowRef<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a tokio_postgres::Row),
}

impl Row<'_> {
    pub fn get<T: Column>(&self, index: usize) -> SqlResult<T> {
        match self.inner {
            RowRef::Sqlite(row) => T::from_sqlite(row, index),
            RowRef::Postgres(row) => T::from_pg_opt(row, index)?.ok_or(SqlError::Column {
                column: index,
                reason: "NULL where a value was expected".into(),
            }),
        }
    }
}

/// A Rust type a column is read as.
pub trait Column: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> SqlResult<Self>;
    /// The column's value, `None` for NULL.
    fn from_pg_opt(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<Self>>;
}

fn out_of_range(index: usize, value: impl std::fmt::Display) -> SqlError {
    SqlError::Column {
        column: index,
        reason: format!("{value} is out of range for its type"),
    }
}

macro_rules! integer_columns {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> SqlResult<Self> {
                Ok(row.get(index)?)
            }
            fn from_pg_opt(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<Self>> {
                pg_integer(row, index)?
                    .map(|i| <$t>::try_from(i).map_err(|_| out_of_range(index, i)))
                    .transpose()
            }
        }
    )*};
}
integer_columns!(i64, i32, u32, u16, u8, u64, usize);

impl Column for bool {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> SqlResult<Self> {
        Ok(row.get(index)?)
    }
    fn from_pg_opt(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<Self>> {
        Ok(pg_integer(row, index)?.map(|i| i != 0))
    }
}

impl Column for f64 {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> SqlResult<Self> {
        Ok(row.get(index)?)
    }
    fn from_pg_opt(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<Self>> {
        match row.columns().get(index).map(|c| c.type_().clone()) {
            Some(tokio_postgres::types::Type::FLOAT8) => pg(row, index),
            _ => Ok(pg_integer(row, index)?.map(|i| i as f64)),
        }
    }
}

impl Column for String {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> SqlResult<Self> {
        Ok(row.get(index)?)
    }
    fn from_pg_opt(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<Self>> {
        pg(row, index)
    }
}

impl Column for Vec<u8> {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> SqlResult<Self> {
        Ok(row.get(index)?)
    }
    fn from_pg_opt(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<Self>> {
        pg(row, index)
    }
}

/// An integer column of any width (or a boolean, as SQLite keeps them).
fn pg_integer(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<i64>> {
    let column = row.columns().get(index).ok_or(SqlError::Column {
        column: index,
        reason: "no such column".into(),
    })?;
    let read = |e: tokio_postgres::Error| SqlError::Column {
        column: index,
        reason: e.to_string(),
    };
    Ok(match *column.type_() {
        tokio_postgres::types::Type::INT8 => row.try_get::<_, Option<i64>>(index).map_err(read)?,
        tokio_postgres::types::Type::INT4 => row
            .try_get::<_, Option<i32>>(index)
            .map_err(read)?
            .map(i64::from),
        tokio_postgres::types::Type::INT2 => row
            .try_get::<_, Option<i16>>(index)
            .map_err(read)?
            .map(i64::from),
        tokio_postgres::types::Type::BOOL => row
            .try_get::<_, Option<bool>>(index)
            .map_err(read)?
            .map(i64::from),
        ref other => {
            return Err(SqlError::Column {
                column: index,
                reason: format!("a {other} column read as an integer"),
            })
        }
    })
}

/// A column the postgres crate reads as `T` itself.
fn pg<T>(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<T>>
where
    for<'r> T: tokio_postgres::types::FromSql<'r>,
{
    row.try_get::<_, Option<T>>(index)
        .map_err(|e| SqlError::Column {
            column: index,
            reason: e.to_string(),
        })
}

impl<const N: usize> Column for [u8; N] {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> SqlResult<Self> {
        let bytes: Vec<u8> = row.get(index)?;
        fixed(index, bytes)
    }
    fn from_pg_opt(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<Self>> {
        pg::<Vec<u8>>(row, index)?
            .map(|b| fixed(index, b))
            .transpose()
    }
}

fn fixed<const N: usize>(index: usize, bytes: Vec<u8>) -> SqlResult<[u8; N]> {
    bytes.try_into().map_err(|b: Vec<u8>| SqlError::Column {
        column: index,
        reason: format!("{} bytes where {N} were expected", b.len()),
    })
}

impl<T: Column> Column for Option<T> {
    fn from_sqlite(row: &rusqlite::Row<'_>, index: usize) -> SqlResult<Self> {
        match row.get_ref(index)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            _ => T::from_sqlite(row, index).map(Some),
        }
    }
    fn from_pg_opt(row: &tokio_postgres::Row, index: usize) -> SqlResult<Option<Self>> {
        T::from_pg_opt(row, index).map(Some)
    }
}

/// The engine's form of a parameter (SQLite: borrowed, no copy).
pub(in crate::store) struct Bind<'a>(pub &'a dyn Param);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self.0.value() {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_keep_their_values_and_none_is_null() {
        let text = String::from("Lab");
        let none: Option<i64> = None;
        let blob = [1u8, 2];
        let bound = params![7i64, text, none, true, blob];
        let values: Vec<Value<'_>> = bound.iter().map(|p| p.value()).collect();
        assert_eq!(
            values,
            [
                Value::Integer(7),
                Value::Text("Lab"),
                Value::Null,
                Value::Integer(1),
                Value::Blob(&[1, 2])
            ]
        );
        assert_eq!(u64::MAX.value(), Value::Integer(i64::MAX));
    }
}
