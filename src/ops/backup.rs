//! A backup through the operators' surfaces: the same consistent copy as
//! `satellite backup FILE`, handed over as a download. Administrators only:
//! it holds the CA and signing keys. (Restore stays a command for a stopped
//! satellite: a running server cannot swap its own database.)

use super::{Action, Caller, Result};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;

/// The backup file's bytes and its suggested name. Blocking.
pub fn download(caller: &Caller, config: &Config, clock: &Clock) -> Result<(Vec<u8>, String)> {
    caller.authorize(Action::Administer, None)?;
    // Staged in the data dir (0700): the zip holds private keys.
    let staging = tempfile::Builder::new()
        .prefix(".api-backup")
        .tempdir_in(&config.data_dir)
        .map_err(|e| Error::Conflict(format!("cannot stage the backup: {e}")))?;
    let name = format!(
        "satellite-backup-{}.zip",
        crate::clock::rfc3339(clock.unix()).replace(':', "")
    );
    let file = staging.path().join(&name);
    crate::backup::backup(config, clock, &file)
        .map_err(|e| Error::Conflict(format!("backup failed: {e}")))?;
    let bytes = std::fs::read(&file)
        .map_err(|e| Error::Conflict(format!("cannot read the backup back: {e}")))?;
    Ok((bytes, name))
}
