//! The single database writer with group commit.
//!
//! Concurrent writes queue here; the writer thread takes every job waiting,
//! runs each in its own savepoint (so one job's failure undoes only its own
//! changes), commits them all with one fsync, and only then answers each
//! caller. A caller is never told "done" for data that is not on disk.

use super::leader::{Leadership, Role};
use super::Db;
use super::StoreError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use tokio::sync::oneshot;

/// How many writes may wait before callers are told to come back later.
const QUEUE_DEPTH: usize = 8192;
/// Upper bound on one group, so one commit never holds the lock for long.
const MAX_GROUP: usize = 256;

trait Work: Send {
    /// Runs the job in its savepoint. True if what it did may have left an
    /// in-memory copy of the data stale (see [`Writer::generation`]).
    fn run(&mut self, conn: &Db) -> bool;
    fn complete(self: Box<Self>, committed: Result<(), &StoreError>);
    /// Answers `refused` without running the job.
    fn refuse(self: Box<Self>, refused: StoreError);
}

struct Task<F, T, E> {
    /// Whether the job keeps the writer's in-memory copies up to date itself.
    keeps_copies: bool,
    work: Option<F>,
    result: Option<Result<T, E>>,
    reply: Option<oneshot::Sender<Result<T, E>>>,
}

impl<F, T, E> Work for Task<F, T, E>
where
    F: FnOnce(&Db) -> Result<T, E> + Send,
    T: Send,
    E: From<StoreError> + Send,
{
    fn run(&mut self, conn: &Db) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        if let Err(e) = conn.begin_job() {
            self.result = Some(Err(E::from(e.into())));
            return true;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn)));
        let keep = matches!(outcome, Ok(Ok(_)));
        let undo = if keep {
            conn.keep_job()
        } else {
            conn.undo_job()
        };
        let stale = !keep || undo.is_err() || !self.keeps_copies;
        self.result = Some(match (outcome, undo) {
            (_, Err(e)) => Err(E::from(e.into())),
            (Ok(result), Ok(())) => result,
            (Err(_), Ok(())) => {
                tracing::error!("a database write panicked; its changes were rolled back");
                Err(E::from(StoreError::WorkPanicked))
            }
        });
        stale
    }

    fn complete(mut self: Box<Self>, committed: Result<(), &StoreError>) {
        let result = match (committed, self.result.take()) {
            // A refused operation stands as it is: it wrote nothing anyway.
            (_, Some(Err(e))) => Err(e),
            (Ok(()), Some(ok)) => ok,
            (Err(_), Some(Ok(_))) | (Err(_), None) | (Ok(()), None) => {
                Err(E::from(StoreError::WriterGone))
            }
        };
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }

    fn refuse(mut self: Box<Self>, refused: StoreError) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(E::from(refused)));
        }
    }
}

/// Counters for `/metrics`: commits and the writes they carried.
#[derive(Default, Debug)]
pub struct WriterStats {
    pub commits: AtomicU64,
    pub writes: AtomicU64,
    pub failed_commits: AtomicU64,
    /// The longest a group held the write lock, from `BEGIN` to the end of
    /// `COMMIT`, and the longest `COMMIT` (the fsync) alone, in µs.
    pub longest_hold_us: AtomicU64,
    pub longest_commit_us: AtomicU64,
    /// The longest the writer spent finishing a checkpoint between two
    /// groups (no group runs meanwhile), in µs.
    pub longest_checkpoint_us: AtomicU64,
    /// Bumped whenever the data may have changed behind an in-memory copy
    /// kept by jobs: after every job not marked as keeping copies, every
    /// job undone (its copies saw changes that were rolled back), every
    /// failed commit, and before a group that follows another
    /// connection's commit.
    generation: AtomicU64,
    /// Set when the writer thread has ended, by returning or by a panic.
    stopped: AtomicBool,
    /// When the group in progress started, in ms since `epoch` plus one;
    /// 0 while the writer waits for work.
    busy_since_ms: AtomicU64,
    epoch: std::sync::OnceLock<std::time::Instant>,
}

impl WriterStats {
    fn now_ms(&self) -> u64 {
        let epoch = self.epoch.get_or_init(std::time::Instant::now);
        u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Marks a thread's end in its flag however the thread ends (a panic
/// unwinds through it too), so a supervisor can see that it is gone.
pub(crate) struct EndMark<'a>(pub(crate) &'a AtomicBool);

impl Drop for EndMark<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[derive(Clone)]
pub struct Writer {
    queue: SyncSender<Box<dyn Work>>,
    stats: Arc<WriterStats>,
}

impl Writer {
    pub fn start(conn: Db) -> Result<Self, StoreError> {
        Self::start_with(conn, Arc::new(AtomicBool::new(false)))
    }

    /// Starts the writer; when `finish_checkpoint` is set (by the thread
    /// that checkpoints the WAL beside it), the writer copies the last few
    /// frames itself between two commits, so the next commit starts the
    /// log over instead of growing it.
    pub fn start_with(conn: Db, finish_checkpoint: Arc<AtomicBool>) -> Result<Self, StoreError> {
        Self::spawn(conn, finish_checkpoint, None)
    }

    /// Starts a writer whose connection the database may end (PostgreSQL:
    /// a failover, a restart): after a group that failed on an ended
    /// session, `reconnect` makes the next one. The writes of that group
    /// were refused with 503 and nothing told a caller otherwise; a router
    /// sends its message again and, if the commit did land after all,
    /// gets the answer recorded with it (device messages are idempotent).
    ///
    /// Its session also holds this node's leadership (see `leader`): the
    /// writer claims it at start and, while standby, every `LEADER_TICK`;
    /// while active it checks the session as often. A standby writer
    /// refuses every write (`StoreError::Standby`).
    pub fn start_reconnecting(
        conn: Db,
        reconnect: Reconnect,
        leadership: Arc<Leadership>,
    ) -> Result<Self, StoreError> {
        let seat = Seat {
            reconnect,
            leadership,
        };
        Self::spawn(conn, Arc::new(AtomicBool::new(false)), Some(seat))
    }

    fn spawn(
        conn: Db,
        finish_checkpoint: Arc<AtomicBool>,
        reconnect: Option<Seat>,
    ) -> Result<Self, StoreError> {
        let (queue, jobs) = sync_channel::<Box<dyn Work>>(QUEUE_DEPTH);
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || run(conn, jobs, &thread_stats, &finish_checkpoint, reconnect))
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Self { queue, stats })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Whether the writer thread has ended: no write can commit again.
    pub fn stopped(&self) -> bool {
        self.stats.stopped.load(Ordering::Acquire)
    }

    /// Whether the group in progress has run longer than `limit`: a writer
    /// wedged in a system call (a hung disk) that nothing here can free.
    pub fn wedged_longer_than(&self, limit: std::time::Duration) -> bool {
        let since = self.stats.busy_since_ms.load(Ordering::Acquire);
        since != 0
            && self.stats.now_ms().saturating_sub(since - 1)
                > u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
    }

    /// The writer's generation (see [`WriterStats`]); read inside a job, it
    /// says whether copies kept since the same generation are still exact,
    /// whoever wrote to the database.
    pub fn generation(&self) -> u64 {
        self.stats.generation.load(Ordering::Acquire)
    }

    /// [`Writer::write`] for a job that updates every in-memory copy of
    /// what it changes, so it leaves the generation as it is.
    pub async fn write_keeping_copies<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let receiver = self.submit(work, true)?;
        receiver
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::WriterGone)))
    }

    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let receiver = self.submit(work, false)?;
        receiver
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::WriterGone)))
    }

    /// The same as [`Writer::write`] for threads outside the async runtime.
    pub fn write_blocking<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let receiver = self.submit(work, false)?;
        receiver
            .blocking_recv()
            .unwrap_or_else(|_| Err(E::from(StoreError::WriterGone)))
    }

    fn submit<T, E, F>(
        &self,
        work: F,
        keeps_copies: bool,
    ) -> Result<oneshot::Receiver<Result<T, E>>, E>
    where
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        let task = Box::new(Task {
            keeps_copies,
            work: Some(work),
            result: None,
            reply: Some(reply),
        });
        self.queue.try_send(task).map_err(|e| match e {
            TrySendError::Full(_) => E::from(StoreError::Overloaded),
            TrySendError::Disconnected(_) => E::from(StoreError::WriterGone),
        })?;
        Ok(receiver)
    }
}

/// Makes a new connection for the writer.
pub type Reconnect = Box<dyn FnMut() -> Result<Db, StoreError> + Send>;

/// How often an idle writer on a shared database checks its session
/// (active) or tries to take the leadership (standby).
const LEADER_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// A writer on a database other nodes share: how it gets a new session,
/// and the role that session gives this node.
struct Seat {
    reconnect: Reconnect,
    leadership: Arc<Leadership>,
}

impl Seat {
    /// Between groups: a new session for an ended one, then the leadership
    /// claimed (standby) or the session checked (active).
    fn tend(&mut self, conn: &mut Db, seen_version: &mut Option<i64>) {
        if conn.is_broken() {
            self.leadership.set(Role::Standby);
            match (self.reconnect)() {
                Ok(fresh) => {
                    tracing::warn!("the database ended the writer's session; reconnected");
                    *conn = fresh;
                    // Whatever was written meanwhile is unknown here.
                    *seen_version = None;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the database ended the writer's session and cannot be reached again yet");
                    return;
                }
            }
        }
        match self.leadership.role() {
            Role::Standby => match conn.try_lead() {
                Ok(true) => self.leadership.set(Role::Active),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot ask the database for the leadership"),
            },
            Role::Active => {
                if let Err(e) = conn.query_row("SELECT 1", (), |_| Ok(())) {
                    tracing::error!(error = %e, "the writer's session failed its check; this node stops serving until it has a session again");
                    self.leadership.set(Role::Standby);
                }
            }
        }
    }
}

fn run(
    mut conn: Db,
    jobs: Receiver<Box<dyn Work>>,
    stats: &WriterStats,
    finish_checkpoint: &AtomicBool,
    mut seat: Option<Seat>,
) {
    let _end = EndMark(&stats.stopped);
    let mut group: Vec<Box<dyn Work>> = Vec::with_capacity(MAX_GROUP);
    let mut seen_version = None;
    if let Some(seat) = seat.as_mut() {
        seat.tend(&mut conn, &mut seen_version);
    }
    loop {
        let first = match seat.as_mut() {
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
            Some(seat) => match jobs.recv_timeout(LEADER_TICK) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    seat.tend(&mut conn, &mut seen_version);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        group.push(first);
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Some(seat) = seat.as_mut() {
            if seat.leadership.role() == Role::Standby {
                seat.tend(&mut conn, &mut seen_version);
            }
            if seat.leadership.role() == Role::Standby {
                for job in group.drain(..) {
                    job.refuse(StoreError::Standby);
                }
                continue;
            }
        }
        let span = tracing::debug_span!("group_commit", writes = group.len());
        let _entered = span.enter();
        stats
            .busy_since_ms
            .store(stats.now_ms().saturating_add(1), Ordering::Release);
        let outcome = commit_group(&conn, &mut group, stats, &mut seen_version);
        stats.busy_since_ms.store(0, Ordering::Release);
        match &outcome {
            Ok(()) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats
                    .writes
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                stats.failed_commits.fetch_add(1, Ordering::Relaxed);
                stats.generation.fetch_add(1, Ordering::AcqRel);
                tracing::error!(error = %e, writes = group.len(), "group commit failed; every write in it was refused with 503");
            }
        }
        for job in group.drain(..) {
            job.complete(outcome.as_ref().map(|_| ()));
        }
        // A session lost with the group: this node no longer leads, and
        // whoever takes over has to see that from the database alone.
        if let Some(seat) = seat.as_mut().filter(|_| conn.is_broken()) {
            seat.tend(&mut conn, &mut seen_version);
        }
        if finish_checkpoint.swap(false, Ordering::AcqRel) {
            // PASSIVE: never waits for readers; the other thread copied
            // most of the log already, this copies the tail.
            let began = std::time::Instant::now();
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |_| Ok(())) {
                tracing::warn!(error = %e, "WAL checkpoint failed; it is tried again later");
            }
            stats
                .longest_checkpoint_us
                .fetch_max(micros(began.elapsed()), Ordering::Relaxed);
        }
    }
    tracing::debug!("database writer stopped");
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn commit_group(
    conn: &Db,
    group: &mut [Box<dyn Work>],
    stats: &WriterStats,
    seen_version: &mut Option<i64>,
) -> Result<(), StoreError> {
    // Another connection (a CLI command) can commit only between two
    // groups, while this one holds no lock: asked once per group, its
    // commits move the generation like any write that left copies stale.
    if conn.begin_group(seen_version)? {
        stats.generation.fetch_add(1, Ordering::AcqRel);
    }
    let began = std::time::Instant::now();
    for job in group.iter_mut() {
        if job.run(conn) {
            stats.generation.fetch_add(1, Ordering::AcqRel);
        }
        // Some errors (disk full, I/O) make SQLite roll back the whole
        // transaction. Running on would commit the rest on their own while
        // every caller is told nothing was recorded: stop here instead.
        if !conn.in_transaction() {
            return Err(StoreError::TransactionLost);
        }
    }
    let committing = std::time::Instant::now();
    let committed = conn.commit();
    // A job whose claimed row was there already wrote nothing, but
    // changed the in-memory copies as if it had.
    if conn.take_lost_claims() {
        stats.generation.fetch_add(1, Ordering::AcqRel);
    }
    if let Err(e) = committed {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    stats
        .longest_commit_us
        .fetch_max(micros(committing.elapsed()), Ordering::Relaxed);
    stats
        .longest_hold_us
        .fetch_max(micros(began.elapsed()), Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum TestError {
        Store,
        Refused,
    }
    impl From<StoreError> for TestError {
        fn from(_: StoreError) -> Self {
            TestError::Store
        }
    }

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = super::super::connect(&dir.path().join("w.db")).expect("open");
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .expect("schema");
        (dir, Writer::start(conn).expect("start"))
    }

    #[test]
    fn a_refused_write_leaves_the_others_in_its_group() {
        let (dir, writer) = writer();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut waits = Vec::new();
            for i in 0..50 {
                let w = writer.clone();
                waits.push(tokio::spawn(async move {
                    w.write(move |c: &Db| {
                        c.execute("INSERT INTO t VALUES (?1)", [i])
                            .map_err(|_| TestError::Store)?;
                        if i % 10 == 0 {
                            return Err(TestError::Refused);
                        }
                        Ok(i)
                    })
                    .await
                }));
            }
            let mut refused = 0;
            for wait in waits {
                if matches!(wait.await.expect("join"), Err(TestError::Refused)) {
                    refused += 1;
                }
            }
            assert_eq!(refused, 5);
        });
        let conn = super::super::connect(&dir.path().join("w.db")).expect("open");
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", (), |r| r.get(0))
            .expect("count");
        assert_eq!(n, 45, "refused writes must leave nothing behind");
    }

    #[test]
    fn another_connections_commit_moves_the_generation_and_the_writers_own_do_not() {
        let (dir, writer) = writer();
        let generation_in_a_job = |w: &Writer| {
            let (w, probe) = (w.clone(), w.clone());
            async move {
                w.write_keeping_copies(move |c: &Db| {
                    c.execute("INSERT INTO t VALUES (1)", ())
                        .map_err(|_| TestError::Store)?;
                    Ok::<_, TestError>(probe.generation())
                })
                .await
            }
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let first = generation_in_a_job(&writer).await.expect("write");
            let again = generation_in_a_job(&writer).await.expect("write");
            assert_eq!(first, again, "a job keeping copies leaves them exact");
            let cli = super::super::connect(&dir.path().join("w.db")).expect("open");
            cli.execute("INSERT INTO t VALUES (2)", ())
                .expect("cli write");
            let after = generation_in_a_job(&writer).await.expect("write");
            assert!(
                after > again,
                "a commit by another connection makes copies stale"
            );
        });
    }

    #[test]
    fn a_panicking_write_is_rolled_back_and_the_writer_lives_on() {
        let (_dir, writer) = writer();
        let r: Result<(), TestError> = writer.write_blocking(|c: &Db| {
            c.execute("INSERT INTO t VALUES (1)", ()).ok();
            panic!("boom")
        });
        assert!(matches!(r, Err(TestError::Store)));
        let n: Result<i64, TestError> = writer.write_blocking(|c: &Db| {
            c.query_row("SELECT COUNT(*) FROM t", (), |r| r.get(0))
                .map_err(|_| TestError::Store)
        });
        assert_eq!(n.expect("writer alive"), 0);
    }

    /// A job whose completion panics: outside every guard of the writer,
    /// the one way its thread can still end.
    struct Fatal;

    impl Work for Fatal {
        fn run(&mut self, _: &Db) -> bool {
            false
        }
        fn complete(self: Box<Self>, _: Result<(), &StoreError>) {
            panic!("the writer thread ends here")
        }
        fn refuse(self: Box<Self>, _: StoreError) {}
    }

    #[test]
    fn a_writer_thread_that_ends_is_seen_and_refuses_every_write() {
        let (_dir, writer) = writer();
        assert!(!writer.stopped());
        writer.queue.try_send(Box::new(Fatal)).expect("queued");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !writer.stopped() {
            assert!(std::time::Instant::now() < deadline, "not seen");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let r: Result<(), TestError> = writer.write_blocking(|_: &Db| Ok(()));
        assert!(matches!(r, Err(TestError::Store)), "refused, not hung");
    }

    #[test]
    fn a_group_that_runs_too_long_is_seen_as_wedged() {
        let (_dir, writer) = writer();
        let limit = std::time::Duration::from_millis(50);
        assert!(!writer.wedged_longer_than(limit));
        let slow = writer.clone();
        let job = std::thread::spawn(move || {
            slow.write_blocking(|_: &Db| {
                std::thread::sleep(std::time::Duration::from_millis(400));
                Ok::<_, TestError>(())
            })
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !writer.wedged_longer_than(limit) {
            assert!(std::time::Instant::now() < deadline, "not seen");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(job.join().expect("job").is_ok());
        assert!(!writer.wedged_longer_than(limit), "idle again");
    }
}
