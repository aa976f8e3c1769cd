//! The handler contract.
//!
//! A handler gets a [`Delivery`] and answers an [`Outcome`]. The consumer acknowledges only
//! after the handler returned, so whatever the handler committed before answering `Ack` is
//! durable before the broker forgets the message. Redelivery after a crash is possible (the
//! handler ran, the ack did not reach the broker); handlers with database effects use
//! [`crate::inbox::Transactional`] so the effects and the "processed" mark commit together.
//!
//! A handler that panics is treated as `Retry` with the panic message as reason; the consumer
//! keeps running.

use std::future::Future;

use crate::{Delivery, Outcome};

/// Processes deliveries. Implemented by structs holding the service's state, and by closures
/// through [`handler_fn`].
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery. Must not acknowledge anything itself: the answer decides.
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Outcome> + Send;
}

/// A handler made of an async closure.
#[derive(Clone, Debug)]
pub struct HandlerFn<F>(F);

/// Wraps `f` (`Fn(Delivery) -> impl Future<Output = Outcome>`) as a [`Handler`].
pub fn handler_fn<F, Fut>(f: F) -> HandlerFn<F>
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    HandlerFn(f)
}

impl<F, Fut> Handler for HandlerFn<F>
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Outcome> + Send {
        (self.0)(delivery)
    }
}

impl<H: Handler> Handler for std::sync::Arc<H> {
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Outcome> + Send {
        (**self).handle(delivery)
    }
}

/// Runs a handler, turning a panic into `Retry` so one bad message cannot stop a consumer.
pub(crate) async fn run_guarded<H: Handler>(handler: &H, delivery: Delivery) -> Outcome {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(handler.handle(delivery))
        .catch_unwind()
        .await
    {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_owned());
            tracing::error!(%message, "handler panicked; retrying the message");
            Outcome::retry(
                std::time::Duration::ZERO,
                format!("handler panicked: {message}"),
            )
        }
    }
}
