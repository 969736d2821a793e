//! What a command can fail with.

use crate::app::StartError;
use crate::config::ConfigError;
use crate::error::Error;

/// Everything a command can fail with, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Service(#[from] Error),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    #[error("{0}")]
    Other(String),
}
