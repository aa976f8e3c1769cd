//! idbridge's message bus.
//!
//! * [`Bus`]: publish with confirms, consume with a [`Handler`], declare a [`Topology`],
//!   operate parking queues — on RabbitMQ ([`AmqpConfig`]) or in process.
//! * [`Envelope`]: what every message looks like (id, type, version, causality, trace).
//! * [`outbox`]: record events in the service's transaction; a relay publishes them.
//! * [`inbox`]: processed message ids committed with the handler's effects.
//! * Traces and metrics: every publish and every handled delivery is a span, joined into
//!   one trace across the broker by the `traceparent` header (see the README).
//! * [`events`]: the Rust types of the contracts in `proto/`; [`schemas`] validates them.
//!
//! The crate README explains the topology, the handler contract, the outbox and the inbox.

#![warn(missing_docs)]

mod amqp;
mod bus;
mod consumer;
mod envelope;
mod error;
pub mod events;
mod handler;
pub mod inbox;
mod memory;
mod message;
pub mod migration;
mod observe;
pub mod outbox;
pub mod parking;
pub mod policy;
pub mod schemas;
pub mod topology;

pub use amqp::{AmqpConfig, redact_url};
pub use bus::Bus;
pub use consumer::{ConsumerHandle, ConsumerOptions};
pub use envelope::{Envelope, TraceContext};
pub use error::BusError;
pub use handler::{Handler, HandlerFn, handler_fn};
pub use message::{AttemptOutcome, AttemptRecord, Delivery, Outcome, OutgoingMessage};
pub use policy::RetryPolicy;
pub use topology::{ServiceSpec, Topology};
