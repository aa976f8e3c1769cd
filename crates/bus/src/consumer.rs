//! Running consumers: options and the handle that stops them.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How a consumer runs.
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// Unacknowledged messages the broker hands this consumer at once, which is also how
    /// many the handler runs concurrently. Partitioned services ignore it: one per partition.
    pub prefetch: u16,
    /// Cancelling this stops the consumer gracefully (as [`ConsumerHandle::stop`] does);
    /// pass the service's shutdown token.
    pub shutdown: CancellationToken,
}

impl Default for ConsumerOptions {
    /// Prefetch 10, a fresh shutdown token.
    fn default() -> Self {
        Self {
            prefetch: 10,
            shutdown: CancellationToken::new(),
        }
    }
}

impl ConsumerOptions {
    /// Sets the prefetch.
    #[must_use]
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// Ties the consumer to a shutdown token.
    #[must_use]
    pub fn shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }
}

/// A running consumer. Dropping the handle leaves it running until its shutdown token is
/// cancelled.
#[derive(Debug)]
pub struct ConsumerHandle {
    pub(crate) stop: CancellationToken,
    pub(crate) kill: CancellationToken,
    pub(crate) task: JoinHandle<()>,
}

impl ConsumerHandle {
    /// Stops taking messages, lets the handlers in flight finish and acknowledge, then
    /// returns. Messages prefetched but not started go back to the queue.
    pub async fn stop(self) {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "consumer task failed");
        }
    }

    /// Stops at once, as a crash would: handlers in flight are dropped mid-way and nothing
    /// more is acknowledged, so the broker redelivers what was in flight. For tests and for
    /// abandoning a stuck consumer.
    pub async fn kill(self) {
        self.kill.cancel();
        self.stop.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "consumer task failed");
        }
    }

    /// Whether the consumer has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}
