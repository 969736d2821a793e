//! One server per data dir. Two servers on one database would both run the
//! daily jobs, both export on schedule and both watch the import folder;
//! the second is refused at start, naming the first. The lock is the
//! kernel's (`flock`), so a server killed with SIGKILL leaves none behind.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file, beside the database.
pub const FILE: &str = "serve.lock";

/// Held for as long as the server runs; released when dropped (or when the
/// process ends in any way).
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{dir}: a satellite is already serving from this data dir (pid {pid}); stop it first (systemctl stop satellite)")]
    Held { dir: String, pid: String },
    #[error("{path}: cannot take the server lock: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

fn try_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor this `File` owns; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

fn held(data_dir: &Path, file: &mut File) -> LockError {
    let mut pid = String::new();
    let _ = file.read_to_string(&mut pid);
    LockError::Held {
        dir: data_dir.display().to_string(),
        pid: match pid.trim() {
            "" => "unknown".into(),
            p => p.to_string(),
        },
    }
}

/// Takes the data dir's server lock, or says who holds it.
pub fn acquire(data_dir: &Path) -> Result<ServeLock, LockError> {
    let path = path(data_dir);
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    if !try_lock(&file).map_err(io)? {
        return Err(held(data_dir, &mut file));
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(ServeLock { _file: file })
}

/// Refuses when a server holds the data dir's lock (a restore under it
/// would be overwritten). A data dir without the file has no server.
pub fn ensure_free(data_dir: &Path) -> Result<(), LockError> {
    let path = path(data_dir);
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    else {
        return Ok(());
    };
    match try_lock(&file) {
        // Taken and released at once when this file closes.
        Ok(true) => Ok(()),
        Ok(false) => Err(held(data_dir, &mut file)),
        Err(source) => Err(LockError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_server_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(ensure_free(dir.path()).is_ok(), "no file, no server");
        let first = acquire(dir.path()).expect("first");
        let refused = acquire(dir.path()).expect_err("second");
        let text = refused.to_string();
        assert!(text.contains(&std::process::id().to_string()), "{text}");
        assert!(matches!(
            ensure_free(dir.path()),
            Err(LockError::Held { .. })
        ));
        drop(first);
        assert!(ensure_free(dir.path()).is_ok());
        acquire(dir.path()).expect("free again");
    }
}
