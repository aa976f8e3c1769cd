//! Group commit of the token reads' audit rows.
//!
//! A token read (user or client-credentials) hands its audit row to the [`AuditWriter`] and
//! waits for the answer; the token leaves the vault only once that row is committed, and when
//! the insert fails the read fails. One task writes: it takes the first waiting row and every
//! row already queued behind it (up to [`MAX_BATCH`]), inserts them with one multi-row
//! `INSERT` (one commit: one WAL flush on PostgreSQL instead of one per read) and answers
//! each caller with the result, the same error to all of them when it failed. There is no
//! timer: a lone read is written at once, and batches form only from reads that arrived while
//! the previous insert ran. The queue holds [`QUEUE_CAPACITY`] rows; beyond that, callers wait
//! for room.
//!
//! Revoke and disconnect rows do not come here ([`crate::store::audit::record`]): they are
//! written on their own, in the transaction that ends the connection when the call ends one.
//!
//! Stopping ([`AuditWriterTask::finish`], after the HTTP server has stopped): the queue is
//! closed, the rows already queued are written and answered, and later callers get
//! [`AuditError::Stopped`]. A caller never waits on a writer that is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{DatabaseConnection, DbErr, EntityTrait};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::error_chain;
use crate::store::audit::{self, Action};

/// The most rows one `INSERT` writes (6 bound values each: within SQLite's and PostgreSQL's
/// limits on parameters).
pub(crate) const MAX_BATCH: usize = 256;

/// How many rows may wait for the writer before callers wait for room.
pub(crate) const QUEUE_CAPACITY: usize = 1024;

/// Why an audit row was not committed.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum AuditError {
    /// The database refused the batch the row was in.
    #[error("inserting a batch of {rows} audit row(s) failed")]
    Insert {
        rows: usize,
        #[source]
        source: DbErr,
    },
    /// The database reported another number of inserted rows than it was given.
    #[error("the audit insert reported {inserted} row(s) inserted of {expected}")]
    Incomplete { expected: usize, inserted: u64 },
    /// The writer no longer accepts rows (the vault is stopping).
    #[error("the audit writer has stopped (the vault is shutting down)")]
    Stopped,
}

#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    batches: AtomicU64,
    rows: AtomicU64,
}

/// What the audit writer did so far: a cheap handle on its counters
/// ([`crate::Application::audit_stats`]).
#[derive(Clone, Debug, Default)]
pub struct AuditStats(Arc<Counters>);

impl AuditStats {
    /// Rows handed to the writer (committed, failed or still queued).
    pub fn submitted(&self) -> u64 {
        self.0.submitted.load(Ordering::Relaxed)
    }

    /// Multi-row `INSERT`s committed (one commit each).
    pub fn batches(&self) -> u64 {
        self.0.batches.load(Ordering::Relaxed)
    }

    /// Rows those `INSERT`s committed.
    pub fn rows(&self) -> u64 {
        self.0.rows.load(Ordering::Relaxed)
    }
}

/// A row waiting for the writer, and where its answer goes.
struct Pending {
    row: audit::ActiveModel,
    answer: oneshot::Sender<Result<(), AuditError>>,
}

/// The sending side, owned by the vault.
pub(crate) struct AuditWriter {
    queue: mpsc::Sender<Pending>,
    stats: AuditStats,
}

/// The writing task; [`Self::finish`] stops it.
pub(crate) struct AuditWriterTask {
    stop: CancellationToken,
    /// Cancelled when the task has ended, however it ended (a panic included).
    ended: CancellationToken,
    task: JoinHandle<()>,
    stats: AuditStats,
}

impl AuditWriter {
    /// Starts the writing task on `db`.
    pub(crate) fn spawn(db: DatabaseConnection) -> (Self, AuditWriterTask) {
        let (queue, rows) = mpsc::channel(QUEUE_CAPACITY);
        let stats = AuditStats::default();
        let stop = CancellationToken::new();
        let ended = CancellationToken::new();
        let task = spawn_marking_end(
            write_batches(db, rows, stop.clone(), stats.clone()),
            ended.clone(),
        );
        (
            Self {
                queue,
                stats: stats.clone(),
            },
            AuditWriterTask {
                stop,
                ended,
                task,
                stats,
            },
        )
    }

    /// Appends one audit row and returns once it is committed (or failed).
    pub(crate) async fn record(
        &self,
        caller: &str,
        action: Action,
        orcid: Option<&str>,
        scope: Option<&str>,
        purpose: &str,
    ) -> Result<(), AuditError> {
        let (answer, answered) = oneshot::channel();
        let row = audit::new_row(caller, action, orcid, scope, purpose);
        self.queue
            .send(Pending { row, answer })
            .await
            .map_err(|_| AuditError::Stopped)?;
        self.stats.0.submitted.fetch_add(1, Ordering::Relaxed);
        // The writer drops the answer unsent only when it ended abnormally.
        answered.await.unwrap_or(Err(AuditError::Stopped))
    }
}

impl AuditWriterTask {
    /// The writer's counters.
    pub(crate) fn stats(&self) -> AuditStats {
        self.stats.clone()
    }

    /// Cancelled once the task has ended. Before [`Self::finish`] that means it failed (only
    /// a bug can make it): no token read can be audited any more, so none can be served.
    pub(crate) fn ended(&self) -> CancellationToken {
        self.ended.clone()
    }

    /// Stops accepting rows, writes the queued ones, and waits for the task to end.
    pub(crate) async fn finish(self) {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the audit writer task failed");
        }
    }
}

/// Spawns `work` and cancels `ended` when it ends, by returning or by panicking (the guard
/// is dropped while the panic unwinds).
fn spawn_marking_end<F>(work: F, ended: CancellationToken) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let _ended = ended.drop_guard();
        work.await;
    })
}

async fn write_batches(
    db: DatabaseConnection,
    mut rows: mpsc::Receiver<Pending>,
    stop: CancellationToken,
    stats: AuditStats,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // `recv_many` waits for one row, then takes every row already queued (up to the
        // limit). Cancel-safe: a row is never lost to the stop branch.
        let received = tokio::select! {
            biased;
            received = rows.recv_many(&mut batch, MAX_BATCH) => received,
            () = stop.cancelled() => break,
        };
        if received == 0 {
            // Every sender is gone: nothing can arrive any more.
            return;
        }
        write(&db, &mut batch, &stats).await;
    }
    rows.close();
    while rows.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write(&db, &mut batch, &stats).await;
    }
}

/// Inserts `batch` with one statement and answers every caller in it.
async fn write(db: &DatabaseConnection, batch: &mut Vec<Pending>, stats: &AuditStats) {
    let expected = batch.len();
    let (models, answers): (Vec<_>, Vec<_>) = batch.drain(..).map(|p| (p.row, p.answer)).unzip();
    let result = match audit::Entity::insert_many(models)
        .exec_without_returning(db)
        .await
    {
        Ok(inserted) if usize::try_from(inserted).ok() == Some(expected) => {
            stats.0.batches.fetch_add(1, Ordering::Relaxed);
            stats.0.rows.fetch_add(inserted, Ordering::Relaxed);
            Ok(())
        }
        Ok(inserted) => Err(AuditError::Incomplete { expected, inserted }),
        Err(source) => Err(AuditError::Insert {
            rows: expected,
            source,
        }),
    };
    if let Err(e) = &result {
        tracing::warn!(error = %error_chain(e), rows = expected, "audit insert failed; the token reads waiting on it fail");
    }
    for answer in answers {
        // A caller that went away (request cancelled) needs no answer.
        let _ = answer.send(result.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, Database, PaginatorTrait};

    /// A migrated SQLite file of the test's own (removed by [`remove`]).
    async fn sqlite() -> (DatabaseConnection, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "token-vault-audit-{}.sqlite",
            uuid::Uuid::new_v4().simple()
        ));
        let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        crate::migrate(&db).await.unwrap();
        (db, path)
    }

    async fn remove(db: DatabaseConnection, path: std::path::PathBuf) {
        let _ = db.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test]
    async fn queued_rows_are_written_before_the_writer_stops_and_later_rows_are_refused() {
        let (db, path) = sqlite().await;
        let (writer, task) = AuditWriter::spawn(db.clone());
        let writer = Arc::new(writer);
        let reads: Vec<_> = (0..20)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer
                        .record(
                            "writer",
                            Action::TokenRead,
                            Some("0000-0002-1825-0097"),
                            None,
                            &format!("test {i}"),
                        )
                        .await
                })
            })
            .collect();
        // Every read is queued (or already written) before the stop.
        let stats = task.stats();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while stats.submitted() < 20 {
            assert!(tokio::time::Instant::now() < deadline, "reads not queued");
            tokio::task::yield_now().await;
        }
        task.finish().await;
        for read in reads {
            read.await.unwrap().unwrap();
        }
        assert_eq!(audit::Entity::find().count(&db).await.unwrap(), 20);
        assert_eq!(stats.rows(), 20);
        let refused = writer
            .record("writer", Action::TokenRead, None, None, "after the stop")
            .await;
        assert!(matches!(refused, Err(AuditError::Stopped)), "{refused:?}");
        remove(db, path).await;
    }

    /// The end of the writing task is seen however it ends: the vault's supervision
    /// (`startup.rs`) stops the vault when it ends before a stop was asked for.
    #[tokio::test]
    async fn the_end_of_the_task_is_marked_even_when_it_panics() {
        let ended = CancellationToken::new();
        let task = spawn_marking_end(
            async { panic!("TEST: a bug in the audit writer") },
            ended.clone(),
        );
        tokio::time::timeout(std::time::Duration::from_secs(5), ended.cancelled())
            .await
            .expect("the end of a panicked task is marked");
        assert!(task.await.unwrap_err().is_panic());

        let (db, path) = sqlite().await;
        let (writer, task) = AuditWriter::spawn(db.clone());
        let ended = task.ended();
        assert!(!ended.is_cancelled(), "running");
        writer
            .record("writer", Action::TokenRead, None, None, "test")
            .await
            .unwrap();
        assert!(!ended.is_cancelled(), "still running after a write");
        task.finish().await;
        assert!(ended.is_cancelled(), "a normal stop is marked too");
        remove(db, path).await;
    }

    #[tokio::test]
    async fn a_failed_insert_fails_every_caller_of_the_batch() {
        let (db, path) = sqlite().await;
        db.execute_unprepared("DROP TABLE token_vault_audit")
            .await
            .unwrap();
        let (writer, task) = AuditWriter::spawn(db.clone());
        let failed = writer
            .record(
                "writer",
                Action::ClientTokenRead,
                None,
                Some("/webhook"),
                "x",
            )
            .await;
        assert!(
            matches!(failed, Err(AuditError::Insert { .. })),
            "{failed:?}"
        );
        assert_eq!(task.stats().batches(), 0);
        task.finish().await;
        remove(db, path).await;
    }
}
