//! SQLite: the single source of truth.
//!
//! One writer thread owns the only write connection and groups concurrent
//! writes into one transaction (group commit); readers take a connection from
//! a small pool. Any CLI command may open its own connection while the server
//! runs: WAL mode and a busy timeout make that safe.

mod batch;
mod db;
pub mod error;
pub mod leader;
mod location;
mod migrations;
mod postgres;
pub(crate) mod sql;
mod writer;

pub mod accounts;
pub mod audit;
pub mod backup;
pub mod certificates;
pub mod clients;
pub mod deadlines;
pub mod events;
pub mod instances;
pub mod licenses;
pub mod messages;
pub mod names;
pub mod outbox;
pub mod pools;
pub mod reports;
pub mod satellites;
pub mod sessions;
pub mod sync;
pub mod to_postgres;
pub mod tokens;
pub mod usage;
pub mod users;

pub use batch::Claim;
pub use db::Db;
pub use error::StoreError;
pub use location::{Location, PgTarget};
pub use writer::{Writer, WriterStats};

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Beside the database: what the file looked like when the server last
/// stopped cleanly (size, modification time, inode), written only once no
/// connection held it any more.
fn clean_stop_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".clean-stop");
    PathBuf::from(name)
}

fn file_identity(db: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(db).ok()?;
    Some(format!(
        "{} {} {} {}",
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ino()
    ))
}

/// Records that the database was left whole by a clean stop, once every
/// connection closed (SQLite removes the WAL with the last one); nothing is
/// recorded if the log is still there after a few seconds.
pub fn record_clean_stop(db: &Path) {
    let wal = {
        let mut name = db.as_os_str().to_owned();
        name.push("-wal");
        PathBuf::from(name)
    };
    for _ in 0..150 {
        if !wal.exists() {
            if let Some(identity) = file_identity(db) {
                let _ = std::fs::write(clean_stop_path(db), identity);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`check_integrity`], unless the database is exactly as the last clean
/// stop left it: the full check reads every page (about 9 s for a million
/// product instances), and a file no process touched since a clean stop
/// has nothing new to find. The record is consumed either way, so a crash
/// later, or any change in between, means a full check at the next start.
pub fn check_integrity_at_start(path: &Path) -> Result<(), StoreError> {
    let marker = clean_stop_path(path);
    let recorded = std::fs::read_to_string(&marker).ok();
    let _ = std::fs::remove_file(&marker);
    if recorded.is_some() && recorded == file_identity(path) {
        tracing::debug!("the database is as the last clean stop left it; integrity check skipped");
        return Ok(());
    }
    check_integrity(path)
}

/// Refuses a database that fails `PRAGMA quick_check` (or does not open as
/// one): serving from it could acknowledge what it then loses. Reads only.
pub fn check_integrity(path: &Path) -> Result<(), StoreError> {
    let damaged = |detail: String| StoreError::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| damaged(e.to_string()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let problems = backup::quick_check(&Db::new(conn)).map_err(|e| damaged(e.to_string()))?;
    if problems.is_empty() {
        return Ok(());
    }
    let detail: String = problems
        .into_iter()
        .take(3)
        .collect::<Vec<_>>()
        .join("; ")
        .chars()
        .take(200)
        .collect();
    Err(damaged(detail))
}

/// Upper bound of the memory map over the database file (address space,
/// not memory: the kernel's page cache backs it).
const MMAP_BYTES: i64 = 4 << 30;
/// Each connection's page cache, in KiB (negative `cache_size` means KiB):
/// room for a bulk transaction (a cloud's `process` of a large bundle, an
/// import) without spilling dirty pages mid-transaction.
const CACHE_KIB: i64 = 64 * 1024;
/// The server writer's: it commits hundreds of times a second, and SQLite
/// walks its page-cache hash table at the end of every write transaction,
/// which grows with the cache (with 64 MiB, 10% of the writer's time in
/// that loop alone). Still room for a daily-job batch of 500 rows.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// Opens a connection with the settings every connection must have.
pub fn connect(path: &Path) -> Result<Db, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL lets readers (and CLI commands) run beside the server's writer;
    // synchronous=FULL because an answer sent to a router must survive power loss.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Reads go through the memory map (shared by every connection, so
    // readers cost no private cache): with SQLite's default 2 MB page cache
    // and no map, the writer under load spent about 40% of its time copying
    // pages back in from the kernel. The page cache holds what a write
    // transaction changes.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(Db::new(conn))
}

/// Opens the database, creating it and bringing its schema up to date.
pub fn open_and_migrate(path: &Path) -> Result<Db, StoreError> {
    let existed = path.exists();
    let mut conn = connect(path)?;
    if !existed {
        crate::pki::files::restrict(path).ok();
    }
    migrations::apply(conn.sqlite_mut()?)?;
    Ok(conn)
}

/// Runs `f` in one immediate transaction: everything or nothing.
/// The `&mut` keeps a command from nesting one in another.
pub fn transaction<T, E>(db: &mut Db, f: impl FnOnce(&Db) -> Result<T, E>) -> Result<T, E>
where
    E: From<StoreError>,
{
    let tx = db.begin(db::Begin::Write).map_err(StoreError::from)?;
    let stamp = match db.actor() {
        Some(_) => Some(audit::last_event_id(db)?),
        None => None,
    };
    let value = f(db)?;
    if let (Some(after), Some(actor)) = (stamp, db.actor()) {
        audit::stamp_since(db, after, actor)?;
    }
    tx.commit().map_err(StoreError::from)?;
    Ok(value)
}

/// Runs `f` in a transaction that is always rolled back: what a change
/// would do, without doing it.
pub fn rehearse<T, E>(db: &mut Db, f: impl FnOnce(&Db) -> Result<T, E>) -> Result<T, E>
where
    E: From<StoreError>,
{
    let _rolled_back = db.begin(db::Begin::Write).map_err(StoreError::from)?;
    f(db)
}

/// Runs `f` on one read snapshot: all it reads is as of one moment, and it
/// holds no write lock (a long export beside the server's writer).
pub fn snapshot<T, E>(db: &Db, f: impl FnOnce(&Db) -> Result<T, E>) -> Result<T, E>
where
    E: From<StoreError>,
{
    let _snapshot = db.begin(db::Begin::Read).map_err(StoreError::from)?;
    f(db)
}

/// Readies a one-shot command's connection (the CLI, beside a running
/// server) so that its write transactions hold the lock for their own
/// statements only. SQLite seeds its random generator (WAL salts) on first
/// use: seeded here, not under the lock. And the command waits for the
/// lock in 1 ms steps: SQLite's own busy handler sleeps 10-100 ms at a time
/// and, beside a writer that is rarely idle, mostly misses the gaps between
/// its commits (CLI writes waited seconds under load).
pub fn ready_for_commands(conn: &Db) -> Result<(), StoreError> {
    // PostgreSQL's writers wait on a lock of their own (see `Db::begin`).
    let Ok(sqlite) = conn.sqlite() else {
        return Ok(());
    };
    conn.query_row("SELECT randomblob(1)", (), |_| Ok(()))?;
    sqlite.busy_handler(Some(command_busy))?;
    Ok(())
}

/// The server's handle on the database: a reader pool and the group-commit writer.
#[derive(Clone)]
pub struct Store {
    location: Arc<Location>,
    leadership: Arc<leader::Leadership>,
    readers: Arc<Mutex<Vec<Db>>>,
    writer: Writer,
    /// Set when the checkpoint thread has ended (never, on PostgreSQL,
    /// which checkpoints by itself).
    checkpoints_stopped: Arc<std::sync::atomic::AtomicBool>,
}

const MAX_IDLE_READERS: usize = 8;

impl Store {
    pub fn open(location: &Location) -> Result<Self, StoreError> {
        let checkpoints_stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let location = Arc::new(location.clone());
        let leadership = Arc::new(leader::Leadership::new(match &*location {
            Location::Embedded(_) => leader::Role::Active,
            Location::Postgres(_) => leader::Role::Standby,
        }));
        let writer = match &*location {
            Location::Embedded(path) => {
                Self::embedded_writer(path, &location, checkpoints_stopped.clone())?
            }
            Location::Postgres(_) => {
                let conn = location.open_and_migrate()?;
                // A connection lost (the primary failed over) is made again
                // for the next group, to whichever node is primary then.
                let again = Arc::downgrade(&location);
                Writer::start_reconnecting(
                    conn,
                    Box::new(move || match again.upgrade() {
                        Some(location) => location.connect(),
                        None => Err(StoreError::WriterGone),
                    }),
                    leadership.clone(),
                )?
            }
        };
        Ok(Self {
            location,
            leadership,
            readers: Arc::new(Mutex::new(Vec::new())),
            writer,
            checkpoints_stopped,
        })
    }

    fn embedded_writer(
        path: &Path,
        location: &Arc<Location>,
        checkpoints_stopped: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Writer, StoreError> {
        let conn = open_and_migrate(path)?;
        // The WAL file keeps the size of the largest transaction it held
        // (a bulk import: gigabytes at a million instances). It is copied
        // and cut to nothing here, before anyone waits on the writer, not
        // with `journal_size_limit`: that cuts the file at the commit after
        // the log starts over, and held such commits for 25-43 ms beside
        // the daily jobs. Busy (a CLI reading) leaves it as it is.
        let sqlite = conn.sqlite()?;
        sqlite.busy_timeout(Duration::from_millis(200))?;
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", (), |_| Ok(())) {
            tracing::warn!(error = %e, "could not empty the WAL at start; it is checkpointed as the server runs");
        }
        // Checkpoints copy the WAL into the database file and fsync it: on
        // the writer they stalled every device waiting for the next commit.
        // A thread of their own runs them beside the writer instead.
        sqlite.pragma_update(None, "wal_autocheckpoint", 0)?;
        sqlite.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        // Every job runs in a savepoint, whose journal SQLite spills to a
        // new temporary file (created, written, unlinked) once a group has
        // changed 64 KiB: several times a second under registrations.
        // A group is bounded (MAX_GROUP jobs), so its journal fits in memory.
        sqlite.pragma_update(None, "temp_store", "MEMORY")?;
        // When a CLI command holds the write lock for its millisecond, the
        // default busy handler would put the writer (and every router
        // waiting on it) to sleep for 10-100 ms steps; poll finely instead.
        sqlite.busy_handler(Some(writer_busy))?;
        let checkpoints = connect(path)?;
        let finish = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = Writer::start_with(conn, finish.clone())?;
        start_checkpoints(
            checkpoints,
            Arc::downgrade(location),
            finish,
            checkpoints_stopped,
        )?;
        Ok(writer)
    }

    /// The thread that has ended, if the writer or the checkpoint thread
    /// has, or the writer that is wedged: the store cannot recover in this
    /// process.
    pub fn stopped_thread(&self) -> Option<&'static str> {
        if self.writer.stopped() {
            Some("db-writer")
        } else if self.writer.wedged_longer_than(WEDGED_AFTER) {
            Some("db-writer (wedged in one group for over two minutes)")
        } else if self
            .checkpoints_stopped
            .load(std::sync::atomic::Ordering::Acquire)
        {
            Some("checkpoints")
        } else {
            None
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// This node's role: always active on the embedded database; on a
    /// shared PostgreSQL database, whether this node holds the leadership.
    pub fn leadership(&self) -> &leader::Leadership {
        &self.leadership
    }

    pub fn is_active(&self) -> bool {
        self.leadership.role() == leader::Role::Active
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Runs a read on a pooled connection. Reads are indexed look-ups that take
    /// microseconds, so they run on the caller's thread.
    pub fn read<T, E>(&self, f: impl FnOnce(&Db) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let pooled = self.readers.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => self.location.connect()?,
        };
        let result = f(&conn);
        // A session the database ended (a failover) is not kept.
        if !conn.is_broken() {
            if let Ok(mut idle) = self.readers.lock() {
                if idle.len() < MAX_IDLE_READERS {
                    idle.push(conn);
                }
            }
        }
        result
    }

    /// Queues a write for the next group commit and waits for the commit.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.write(f).await
    }

    /// Checks that the database answers; used by `/readyz`.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", (), |_| Ok(()))
                .map_err(StoreError::from)
        })
    }
}

/// WAL frames (pages) past which the writer finishes a checkpoint itself:
/// a checkpoint on another connection never catches up with a writer that
/// never pauses, and the log starts over only once a checkpoint copied all
/// of it between two commits.
const RESTART_FRAMES: i64 = 4000;
/// What the writer may be left to copy when it finishes: about 10 ms of
/// random writes into the database file and its fsync, which every router
/// waits through. A pass that copied more than this ran beside commits
/// that left as much again, so the thread copies once more first.
const TAIL_FRAMES: i64 = 256;
/// How often the checkpoint thread copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Passes back to back at most, before the thread sleeps again.
const MAX_PASSES: usize = 8;

/// Checkpoints the WAL beside the writer until the store is dropped
/// (`alive` no longer upgrades): PASSIVE, so it never waits for the writer
/// or for readers and copies what it can. When the log has grown anyway it
/// copies again until a pass finds little new, then asks the writer
/// (`finish`) to copy the short tail between two commits. (Asked after one
/// 30 ms pass beside the daily jobs' batches, the writer was left 2,000
/// frames and stalled for 90 ms.)
fn start_checkpoints(
    conn: Db,
    alive: std::sync::Weak<Location>,
    finish: Arc<std::sync::atomic::AtomicBool>,
    stopped: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("checkpoints".into())
        .spawn(move || {
            let _end = writer::EndMark(&stopped);
            while alive.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_EVERY);
                let mut copied_before = None;
                for _ in 0..MAX_PASSES {
                    // (busy, frames in the WAL, frames copied so far)
                    let pass = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |r| {
                        Ok((r.get::<i64>(1)?, r.get::<i64>(2)?))
                    });
                    let (frames, copied) = match pass {
                        Ok(counts) => counts,
                        Err(e) => {
                            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                            break;
                        }
                    };
                    if frames < RESTART_FRAMES {
                        break;
                    }
                    // The log may have started over since the last pass.
                    let new = match copied_before {
                        Some(before) if copied >= before => copied - before,
                        _ => copied,
                    };
                    if new <= TAIL_FRAMES {
                        finish.store(true, std::sync::atomic::Ordering::Release);
                        break;
                    }
                    copied_before = Some(copied);
                }
            }
        })
        .map(|_| ())
        .map_err(|_| StoreError::WriterGone)
}

/// A group the writer has been in this long is wedged (a hung disk): the
/// longest real one, a million-instance snapshot, takes seconds, and the
/// busy handler gives up on a lock after 10 s.
const WEDGED_AFTER: Duration = Duration::from_secs(120);

/// Below this much free space where the database lives, the satellite is
/// not ready (`/readyz`) and does not start: a router's registration takes
/// new pages, and SQLite can fail at any of them.
pub const MIN_FREE_BYTES: u64 = 1 << 20;

/// Bytes an unprivileged process may still write on the file system that
/// holds `path`, if the system says.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer statvfs fills on success.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the buffer.
    let stats = unsafe { stats.assume_init() };
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// The writer's busy handler: retries every 200 µs for up to 10 s (the
/// same patience as `busy_timeout`, without its coarse sleeps).
fn writer_busy(attempts: i32) -> bool {
    const STEP: Duration = Duration::from_micros(200);
    if attempts >= 50_000 {
        return false;
    }
    std::thread::sleep(STEP);
    true
}

/// A one-shot command's busy handler: every millisecond for up to 10 s.
fn command_busy(attempts: i32) -> bool {
    const STEP: Duration = Duration::from_millis(1);
    if attempts >= 10_000 {
        return false;
    }
    std::thread::sleep(STEP);
    true
}

pub(crate) use sql::optional;

/// Small named values the server keeps between runs (job bookkeeping).
pub mod settings {
    use super::Db;
    use crate::error::Result;

    pub fn get(c: &Db, key: &str) -> Result<Option<String>> {
        Ok(super::optional(c.query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [key],
            |r| r.get(0),
        ))?)
    }

    pub fn set(c: &Db, key: &str, value: &str) -> Result<()> {
        c.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    pub fn remove(c: &Db, key: &str) -> Result<()> {
        c.execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_frames(path: &Path) -> i64 {
        let conn = connect(path).expect("connect");
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |r| r.get(1))
            .expect("checkpoint")
    }

    #[test]
    fn the_wal_is_checkpointed_and_started_over_beside_a_writer_that_never_pauses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.db");
        let store = Store::open(&Location::Embedded(path.clone())).expect("open");
        store
            .writer()
            .write_blocking(|c: &Db| {
                c.execute_batch("CREATE TABLE blobs (b BLOB NOT NULL)")
                    .map_err(StoreError::from)
            })
            .expect("schema");
        // About 4 MB a round, without a pause between rounds: far more
        // than the log may grow to.
        let wal = path.with_extension("db-wal");
        let mut rounds = 0;
        let mut largest = 0;
        while rounds < 40 {
            rounds += 1;
            store
                .writer()
                .write_blocking(|c: &Db| {
                    for _ in 0..1000 {
                        c.execute("INSERT INTO blobs VALUES (zeroblob(4000))", ())?;
                    }
                    c.execute("DELETE FROM blobs", ())?;
                    Ok::<_, StoreError>(())
                })
                .expect("write");
            let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            largest = largest.max(size);
            // Busy, but paced to the checkpoint thread's tick: on a fast
            // machine 40 unpaced rounds end before it has woken twice.
            std::thread::sleep(CHECKPOINT_EVERY / 10);
        }
        // Without restarts 40 rounds make a log of about 160 MB.
        assert!(
            largest < 64 << 20,
            "the log kept growing under a busy writer: {largest} bytes"
        );
        std::thread::sleep(CHECKPOINT_EVERY * 3);
        store
            .writer()
            .write_blocking(|c: &Db| {
                c.execute("INSERT INTO blobs VALUES (zeroblob(10))", ())
                    .map(|_| ())
                    .map_err(StoreError::from)
            })
            .expect("write");
        let frames = wal_frames(&path);
        assert!(
            frames < RESTART_FRAMES,
            "the log was not started over: {frames} frames"
        );
    }
}
