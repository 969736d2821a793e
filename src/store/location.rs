//! Where a satellite's database is: the embedded SQLite file in its data
//! dir, or a PostgreSQL database (`storage:` in satellite.yaml). Everything
//! that opens the database goes through here, so the server, the CLI and
//! the background jobs never name an engine.

use super::postgres::PgConn;
use super::{Db, StoreError};
use crate::config::{Config, StorageBackend};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub enum Location {
    /// The SQLite file in the data dir.
    Embedded(PathBuf),
    Postgres(PgTarget),
}

/// A PostgreSQL database and how to prove who we are to it. The password
/// is read from its file at every connection (a rotated password needs no
/// restart of the CLI) and is never part of a message.
#[derive(Clone, Debug)]
pub struct PgTarget {
    url: String,
    password_file: Option<PathBuf>,
}

impl PgTarget {
    pub fn new(url: &str, password_file: Option<&Path>) -> Self {
        Self {
            url: url.to_string(),
            password_file: password_file.map(Path::to_path_buf),
        }
    }

    /// Hosts and database, without credentials: what messages may name.
    pub fn shown(&self) -> String {
        super::to_postgres::target(&self.url)
    }

    fn password(&self) -> Result<Option<String>, StoreError> {
        let Some(file) = &self.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file).map_err(|e| StoreError::Unreachable {
            target: self.shown(),
            reason: format!(
                "cannot read the password file {}: {e}; check `storage.password_file`",
                file.display()
            ),
        })?;
        // One line, as `echo secret > file` writes it.
        Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
    }

    pub fn connect(&self) -> Result<Db, StoreError> {
        let password = self.password()?;
        PgConn::connect(&self.url, password.as_deref())
            .map(Db::postgres)
            .map_err(|e| StoreError::Unreachable {
                target: self.shown(),
                reason: e.to_string(),
            })
    }
}

impl Location {
    /// Where `config` says the database is.
    pub fn of(config: &Config) -> Self {
        match config.storage.backend {
            StorageBackend::Sqlite => Self::Embedded(config.database_path()),
            StorageBackend::Postgres => Self::Postgres(PgTarget::new(
                config.storage.url.as_deref().unwrap_or_default(),
                config.storage.password_file.as_deref(),
            )),
        }
    }

    /// The file, for what only the embedded database has (integrity checks,
    /// free space, the clean-stop record).
    pub fn embedded_file(&self) -> Option<&Path> {
        match self {
            Self::Embedded(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Embedded(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// The file's path, or the PostgreSQL hosts and database.
    pub fn shown(&self) -> String {
        match self {
            Self::Embedded(path) => path.display().to_string(),
            Self::Postgres(target) => format!("postgresql://{}", target.shown()),
        }
    }

    /// A connection to the satellite's database if there is one (the file,
    /// or the schema in the PostgreSQL database, which must answer), not
    /// brought up to date: one connection serves both the question and
    /// what comes next.
    pub fn connect_if_exists(&self) -> Result<Option<Db>, StoreError> {
        match self {
            Self::Embedded(path) if !path.is_file() => Ok(None),
            Self::Embedded(path) => super::connect(path).map(Some),
            Self::Postgres(target) => {
                let db = target.connect()?;
                Ok(super::migrations::has_schema(&db)?.then_some(db))
            }
        }
    }

    /// Brings `db`'s schema up to date (creates it in an empty database).
    pub fn migrate(&self, db: &mut Db) -> Result<(), StoreError> {
        match self {
            Self::Embedded(_) => super::migrations::apply(db.sqlite_mut()?),
            Self::Postgres(target) => super::migrations::apply_postgres(db, &target.shown()),
        }
    }

    /// A connection with the settings every connection must have.
    pub fn connect(&self) -> Result<Db, StoreError> {
        match self {
            Self::Embedded(path) => super::connect(path),
            Self::Postgres(target) => target.connect(),
        }
    }

    /// A connection to a database whose schema is brought up to date first
    /// (created, in an empty database).
    pub fn open_and_migrate(&self) -> Result<Db, StoreError> {
        match self {
            Self::Embedded(path) => super::open_and_migrate(path),
            Self::Postgres(target) => {
                let mut db = target.connect()?;
                self.migrate(&mut db)?;
                Ok(db)
            }
        }
    }
}
