//! What the storage layer can fail with, apart from the rules above it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Query(super::sql::SqlError),
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error(
        "the database was written by a newer version of satellite (schema {found}, this build knows {known})"
    )]
    TooNew { found: i64, known: i64 },
    #[error("cannot reach the database {target}: {reason}; check `storage.url`, that PostgreSQL runs and accepts this host, and the password in `storage.password_file`")]
    Unreachable { target: String, reason: String },
    #[error("the database {target} holds {tables} tables but no satellite schema; give the satellite an empty database of its own (createdb -O USER satellite)")]
    NotOurs { target: String, tables: i64 },
    #[error(
        "this node is the standby; the active node of the pair serves (its `/readyz` answers 200)"
    )]
    Standby,
    #[error("the database writer is not running")]
    WriterGone,
    #[error("too many writes are waiting; try again shortly")]
    Overloaded,
    #[error("a database write failed unexpectedly")]
    WorkPanicked,
    #[error("the database rolled back a group of writes (disk full or I/O error?)")]
    TransactionLost,
    #[error(
        "the database {path} is damaged ({detail}); stop here and restore the last backup with \
         `satellite restore FILE` (the damaged file is kept beside it)"
    )]
    Damaged { path: PathBuf, detail: String },
}

impl From<super::sql::SqlError> for StoreError {
    fn from(e: super::sql::SqlError) -> Self {
        match e {
            super::sql::SqlError::Sqlite(e) => Self::Sqlite(e),
            e => Self::Query(e),
        }
    }
}
