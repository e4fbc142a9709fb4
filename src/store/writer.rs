//! The batched, asynchronous writer in front of a [`Store`]: many callers, one task, group
//! commit, and an admission path that never waits.
//!
//! * [`Writer::submit`] checks the event and puts it in a bounded queue (`try_acquire`: no
//!   waiting). A full queue or a stopped writer is a [`Rejected`] the caller logs and counts:
//!   admission goes on, the event is lost, and [`WriterStats::rejected`] says how many.
//! * [`Writer::submit_acked`] waits (at most [`ACK_QUEUE_WAIT`]) for room, then until the batch
//!   holding its events has **committed**: `Ok` means durable (on SQLite with
//!   `synchronous=FULL`, on PostgreSQL by its commit).
//! * One task collects events until [`WriterOptions::max_batch`] events are waiting or
//!   [`WriterOptions::max_delay`] has passed since the first, and writes them in one
//!   transaction ([`Store::record`]'s path).
//! * A failed batch (disk full, connection lost, a commit over [`RECORD_TIMEOUT`]) is logged with
//!   `tracing::error!`, counted, and its acknowledged submitters get the error; its other events
//!   are lost (counted in [`WriterStats::failed_events`]). The task keeps running: the next
//!   batch waits a bounded backoff (100 ms doubling up to [`MAX_BACKOFF`]) and tries again, the
//!   pool reconnecting as needed. Meanwhile the queue fills and `submit` starts rejecting —
//!   memory stays bounded.
//!
//! The queue counts events (an acknowledged submit of n events takes n places), including the
//! batch being written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::input::{Row, Rows, limit};
use super::{Event, Store, StoreError};

/// How long [`Writer::submit_acked`] waits for room in the queue.
pub const ACK_QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Longest a batch's transaction may take before it counts as failed.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause between a failed batch and the next attempt.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// How the writer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Most events per transaction (default 2 000). Batches only grow this large when events
    /// queue up faster than they commit: a lone event waits at most [`Self::max_delay`]. Large
    /// batches are what make random index inserts cheap: a page changed by many events of one
    /// transaction is written to the journal once (`cargo bench --bench store`: 500 → 2 000 is
    /// +30 % events/s on SQLite). An acknowledged submit is never split, so one batch may
    /// exceed this by that submit's size.
    pub max_batch: usize,
    /// Longest an event waits for companions before its batch is written (default 20 ms).
    pub max_delay: Duration,
    /// Events waiting or being written, at most (default 100 000).
    pub queue: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_batch: 2000,
            max_delay: Duration::from_millis(20),
            queue: 100_000,
        }
    }
}

/// Why [`Writer::submit`] did not take an event. The event is not recorded.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum Rejected {
    /// Occurs when the queue is full (the store is slow or down).
    #[error("the lineage store queue is full ({capacity} events): the store is slow or down")]
    QueueFull {
        /// The queue's size.
        capacity: usize,
    },
    /// Occurs when the writer task has stopped.
    #[error("the lineage store writer has stopped")]
    Stopped,
    /// Occurs when the event itself is not acceptable (bad time, digest, …).
    #[error("invalid lineage event: {0}")]
    Invalid(StoreError),
}

/// Counters since the writer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterStats {
    /// Events waiting or being written now.
    pub queued: usize,
    /// Events committed.
    pub written: u64,
    /// Batches committed.
    pub batches: u64,
    /// Batches that failed.
    pub failed_batches: u64,
    /// Events lost in failed batches.
    pub failed_events: u64,
    /// Events [`Writer::submit`] refused.
    pub rejected: u64,
}

/// A handle on the writer task (cheap to clone). The task ends, after writing what it holds,
/// when every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.stats())
            .finish()
    }
}

struct Shared {
    permits: Arc<Semaphore>,
    capacity: usize,
    written: AtomicU64,
    batches: AtomicU64,
    failed_batches: AtomicU64,
    failed_events: AtomicU64,
    rejected: AtomicU64,
}

type Ack = oneshot::Sender<Result<(), StoreError>>;

enum Job {
    Event(Row, OwnedSemaphorePermit),
    Acked(Vec<Row>, OwnedSemaphorePermit, Ack),
    Flush(Ack),
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    ///
    /// Zero `max_batch` or `queue` count as 1; `queue` is capped at `u32::MAX`.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub fn spawn(store: Store, opts: WriterOptions) -> Self {
        let capacity = opts.queue.clamp(1, u32::MAX as usize);
        let opts = WriterOptions {
            max_batch: opts.max_batch.max(1),
            queue: capacity,
            ..opts
        };
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            written: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            failed_events: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        });
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, opts, rx, shared.clone()));
        Self { jobs, shared }
    }

    /// Queues one event without waiting.
    ///
    /// # Errors
    /// [`Rejected::QueueFull`], [`Rejected::Stopped`], or [`Rejected::Invalid`] for an event
    /// [`Event::validate`] refuses. Every rejection is counted in [`WriterStats::rejected`].
    pub fn submit(&self, event: Event) -> Result<(), Rejected> {
        let result = self.try_submit(&event);
        if result.is_err() {
            self.shared.rejected.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn try_submit(&self, event: &Event) -> Result<(), Rejected> {
        let row = Row::from_event(event).map_err(Rejected::Invalid)?;
        let permit = match self.shared.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                return Err(Rejected::QueueFull {
                    capacity: self.shared.capacity,
                });
            }
            Err(tokio::sync::TryAcquireError::Closed) => return Err(Rejected::Stopped),
        };
        self.jobs
            .send(Job::Event(row, permit))
            .map_err(|_| Rejected::Stopped)
    }

    /// Queues `events` and resolves once the batch holding them has committed (or failed).
    ///
    /// # Errors
    /// An input error for the first bad event (nothing is queued); [`StoreError::Limit`] when
    /// there are more events than the queue holds; [`StoreError::QueueFull`] after waiting
    /// [`ACK_QUEUE_WAIT`] for room; the batch's error when its transaction fails;
    /// [`StoreError::WriterStopped`].
    pub async fn submit_acked(&self, events: Vec<Event>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = events
            .iter()
            .map(Row::from_event)
            .collect::<Result<Vec<_>, _>>()?;
        if rows.len() > self.shared.capacity {
            return Err(limit(
                "events in one acknowledged submit (the writer queue size)",
                self.shared.capacity,
                rows.len(),
            ));
        }
        let n = u32::try_from(rows.len()).map_err(|_| {
            limit(
                "events in one acknowledged submit",
                u32::MAX as usize,
                rows.len(),
            )
        })?;
        let permit = match tokio::time::timeout(
            ACK_QUEUE_WAIT,
            self.shared.permits.clone().acquire_many_owned(n),
        )
        .await
        {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(StoreError::WriterStopped),
            Err(_) => {
                return Err(StoreError::QueueFull {
                    capacity: self.shared.capacity,
                    waited: ACK_QUEUE_WAIT,
                });
            }
        };
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Acked(rows, permit, tx))
            .map_err(|_| StoreError::WriterStopped)?;
        rx.await.unwrap_or(Err(StoreError::WriterStopped))
    }

    /// Writes everything queued before this call and resolves when it is committed.
    ///
    /// # Errors
    /// The last batch error since the previous flush, if any batch failed (its events are
    /// lost); [`StoreError::WriterStopped`].
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Flush(tx))
            .map_err(|_| StoreError::WriterStopped)?;
        rx.await.unwrap_or(Err(StoreError::WriterStopped))
    }

    /// The counters.
    pub fn stats(&self) -> WriterStats {
        let s = &self.shared;
        WriterStats {
            queued: s.capacity.saturating_sub(s.permits.available_permits()),
            written: s.written.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            failed_batches: s.failed_batches.load(Ordering::Relaxed),
            failed_events: s.failed_events.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
        }
    }
}

/// What one transaction carries, and who waits for it.
#[derive(Default)]
struct Batch {
    rows: Rows,
    permits: Vec<OwnedSemaphorePermit>,
    acks: Vec<Ack>,
    flushes: Vec<Ack>,
}

impl Batch {
    /// Adds a job; `false` when it asks to write now (a flush).
    fn add(&mut self, job: Job) -> bool {
        match job {
            Job::Event(row, permit) => {
                self.rows.push(row);
                self.permits.push(permit);
                true
            }
            Job::Acked(rows, permit, ack) => {
                for row in rows {
                    self.rows.push(row);
                }
                self.permits.push(permit);
                self.acks.push(ack);
                true
            }
            Job::Flush(ack) => {
                self.flushes.push(ack);
                false
            }
        }
    }
}

async fn run(
    store: Store,
    opts: WriterOptions,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    shared: Arc<Shared>,
) {
    let mut failures: u32 = 0;
    // The last failure not yet reported to a flush.
    let mut unreported: Option<StoreError> = None;
    while let Some(first) = jobs.recv().await {
        let mut batch = Batch::default();
        let mut collecting = batch.add(first);
        if collecting {
            let timer = tokio::time::sleep(opts.max_delay);
            tokio::pin!(timer);
            while collecting && batch.rows.len() < opts.max_batch {
                tokio::select! {
                    biased;
                    job = jobs.recv() => match job {
                        Some(job) => collecting = batch.add(job),
                        None => break,
                    },
                    () = &mut timer => break,
                }
            }
        }
        let n = u64::try_from(batch.rows.len()).unwrap_or(u64::MAX);
        let result = if batch.rows.is_empty() {
            Ok(())
        } else {
            if failures > 0 {
                tokio::time::sleep(backoff(failures)).await;
            }
            match tokio::time::timeout(RECORD_TIMEOUT, store.record_rows(&batch.rows)).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Timeout {
                    operation: "writing a batch",
                    after: RECORD_TIMEOUT,
                }),
            }
        };
        match &result {
            Ok(()) if n > 0 => {
                failures = 0;
                shared.written.fetch_add(n, Ordering::Relaxed);
                shared.batches.fetch_add(1, Ordering::Relaxed);
            }
            Ok(()) => {}
            Err(e) => {
                failures = failures.saturating_add(1);
                shared.failed_batches.fetch_add(1, Ordering::Relaxed);
                shared.failed_events.fetch_add(n, Ordering::Relaxed);
                tracing::error!(
                    error = %e,
                    events = n,
                    acknowledged_waiters = batch.acks.len(),
                    consecutive_failures = failures,
                    store = store.location(),
                    "lineage store: batch not written; events lost unless acknowledged submitters retry"
                );
                unreported = Some(e.clone());
            }
        }
        for ack in batch.acks.drain(..) {
            let _ = ack.send(result.clone());
        }
        drop(batch.permits);
        for flush in batch.flushes.drain(..) {
            let _ = flush.send(match unreported.take() {
                Some(e) => Err(e),
                None => Ok(()),
            });
        }
    }
}

fn backoff(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF.saturating_mul(1 << shift).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(100), MAX_BACKOFF);
    }
}
