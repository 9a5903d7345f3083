//! The embedded SQLite store: one writer thread that group-commits, and a small pool of reader
//! connections.
//!
//! Why a writer thread: SQLite allows one writer at a time, and durability costs one fsync per
//! commit. The writer drains every write that is waiting, runs each inside its own savepoint
//! (so one failing write does not undo the others) and commits them together: one fsync for
//! the whole batch. Each caller is answered only after that commit, so an acknowledged write
//! survives `kill -9` and power loss (`journal_mode=WAL`, `synchronous=FULL`).

mod devices;
mod jobs;
mod queries;
mod rules;
mod schema;
mod sessions;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{StoreError, StoreResult};

/// At most this many writes share one commit; bounds the latency one batch adds.
const MAX_BATCH: usize = 256;

/// At most this many reads run at once. Without a bound, a burst of concurrent requests
/// (thousands of devices updating their jobs) would each take a blocking thread and open a
/// connection of its own: hundreds of threads contending for two cores, each connection with
/// its own page cache. A handful of connections keep the cores busy; the rest wait their turn.
const MAX_CONCURRENT_READS: usize = 8;

/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// The WAL size (in pages) at which the writer checkpoints by itself: a backstop only.
/// SQLite's default (1,000 pages) would make the writer stop every few batches of scattered
/// updates (each touching a page in several b-trees) to copy pages and fsync the database
/// file, time during which no write is committed.
const WRITER_CHECKPOINT_PAGES: i64 = 65_536;

type Finisher = Box<dyn FnOnce(Result<(), String>) + Send>;
type WriteJob = Box<dyn FnOnce(&Connection) -> Finisher + Send>;

/// The SQLite implementation of [`crate::Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: std::sync::mpsc::Sender<WriteJob>,
    readers: Arc<Mutex<Vec<Connection>>>,
    read_slots: Arc<tokio::sync::Semaphore>,
    /// Dropped with the store, which stops the checkpointer thread.
    _checkpointer: std::sync::mpsc::Sender<()>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs migrations.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut conn = open_connection(path)?;
        schema::migrate(&mut conn)?;
        // The checkpointer thread moves the WAL into the database file; the writer only
        // checkpoints by itself if the WAL grows far past what the checkpointer leaves.
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
            .map_err(backend)?;
        let (writer, jobs) = std::sync::mpsc::channel::<WriteJob>();
        std::thread::Builder::new()
            .name("drover-sqlite-writer".into())
            .spawn(move || writer_loop(conn, jobs))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        let checkpoint_conn = open_connection(path)?;
        let (checkpointer, stop) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("drover-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, stop))
            .map_err(|e| StoreError::Backend(format!("cannot start the checkpointer: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            readers: Arc::default(),
            read_slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_READS)),
            _checkpointer: checkpointer,
        })
    }

    /// Runs `f` in the writer's next batch; returns once the batch is durably committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn: &Connection| {
            let outcome = in_savepoint(conn, f);
            Box::new(move |committed: Result<(), String>| {
                let result = match committed {
                    Ok(()) => outcome,
                    Err(e) => Err(StoreError::Backend(format!("commit failed: {e}"))),
                };
                let _ = reply.send(result);
            })
        });
        self.writer
            .send(job)
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?
    }

    /// Runs `f` on a pooled reader connection on the blocking thread pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let slot = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("the SQLite reader pool is closed".into()))?;
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let pooled = readers
                .lock()
                .expect("reader pool lock is never poisoned")
                .pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&path)?,
            };
            let result = f(&conn);
            readers
                .lock()
                .expect("reader pool lock is never poisoned")
                .push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("reader task failed: {e}")))?
    }
}

/// Opens a connection with drover's settings. Beyond durability (WAL, synchronous=FULL), each
/// connection keeps up to 64 MiB of pages and maps the file for reads: fleet-index scans touch
/// many pages, and mapped reads avoid a read() call per page. Writes still go through write()
/// and fsync, so durability is unchanged.
fn open_connection(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         PRAGMA foreign_keys=ON;
         PRAGMA busy_timeout=10000;
         PRAGMA temp_store=MEMORY;
         PRAGMA journal_size_limit=67108864;
         PRAGMA cache_size=-65536;
         PRAGMA mmap_size=1073741824;",
    )
    .map_err(backend)?;
    // rusqlite keeps 16 prepared statements by default; drover's writer and readers run far
    // more distinct ones, and re-preparing a statement costs more than running it.
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    // Prepared once per connection: the writer runs these around every write.
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut statement| statement.execute([]))
            .map_err(backend)
    };
    run("SAVEPOINT job")?;
    let result = f(conn);
    if result.is_err() {
        run("ROLLBACK TO job")?;
    }
    run("RELEASE job")?;
    result
}

fn writer_loop(conn: Connection, jobs: std::sync::mpsc::Receiver<WriteJob>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Fall back to one transaction per write: outside a transaction each job's
            // SAVEPOINT starts one and its RELEASE commits it, so every job still commits (or
            // fails) on its own.
            tracing::warn!(error = %e, "cannot start a batch transaction; committing writes one by one");
            for job in batch {
                let finisher = job(&conn);
                finisher(Ok(()));
            }
            continue;
        }
        let finishers: Vec<Finisher> = batch.into_iter().map(|job| job(&conn)).collect();
        let committed = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for finish in finishers {
            finish(committed.clone());
        }
    }
}

/// Checkpoints the WAL in the background (PASSIVE: never waits for readers or the writer,
/// which keeps committing meanwhile) until the store is dropped. Durability does not depend
/// on it: commits are durable once the WAL is fsync'd.
fn checkpoint_loop(conn: Connection, stop: std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(CHECKPOINT_INTERVAL)
    {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "background WAL checkpoint failed");
        }
    }
}

/// The outcome of a compare-and-swap UPDATE that changed no row: the record exists at another
/// version, or not at all. `exists_sql` selects 1 for the record's key, bound as `?1`.
pub(crate) fn missed_cas(
    conn: &Connection,
    exists_sql: &str,
    key: &str,
) -> StoreResult<crate::CasOutcome> {
    use rusqlite::OptionalExtension;
    let exists = conn
        .prepare_cached(exists_sql)
        .and_then(|mut statement| statement.query_row([key], |_| Ok(())).optional())
        .map_err(backend)?;
    Ok(match exists {
        Some(()) => crate::CasOutcome::VersionMismatch,
        None => crate::CasOutcome::NotFound,
    })
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Maps a constraint failure to the store's error kinds.
pub(crate) fn constraint(e: rusqlite::Error, what: &str) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(err, _)
            if err.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            match err.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => {
                    StoreError::AlreadyExists(what.to_string())
                }
                rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                    StoreError::MissingReference(what.to_string())
                }
                _ => backend(e),
            }
        }
        _ => backend(e),
    }
}
