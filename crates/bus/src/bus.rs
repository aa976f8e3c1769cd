//! [`Bus`]: one interface over the RabbitMQ and in-process backends.

use std::sync::Arc;

use crate::{
    BusError, ConsumerHandle, ConsumerOptions, Handler, TraceContext,
    amqp::{AmqpBus, AmqpConfig, Lane, declare},
    memory::MemoryBus,
    message::OutgoingMessage,
    observe,
    parking::{ParkedMessage, Selection},
    topology::{Names, ServiceSpec, Topology},
};

/// A publishing channel of its own (RabbitMQ), for a publisher that must not share the
/// fate of others' publishes (the outbox relay). Nothing for the in-process backend.
#[derive(Clone)]
pub(crate) struct PublishLane(Option<Arc<Lane>>);

#[derive(Clone)]
enum Backend {
    Amqp(AmqpBus),
    Memory(MemoryBus),
}

/// A handle on the message bus; cheap to clone, shared by everything in a process.
#[derive(Clone)]
pub struct Bus {
    backend: Backend,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, names) = match &self.backend {
            Backend::Amqp(b) => ("amqp", b.names()),
            Backend::Memory(b) => ("memory", b.names()),
        };
        f.debug_struct("Bus")
            .field("backend", &kind)
            .field("prefix", &names.prefix())
            .finish()
    }
}

impl Bus {
    /// Connects to RabbitMQ; every name is put under `prefix` (`idbridge`).
    ///
    /// # Errors
    /// [`BusError::Config`] for a bad prefix or URL (the password redacted); connection
    /// errors when the broker cannot be reached or refuses the credentials.
    pub async fn amqp(config: AmqpConfig, prefix: &str) -> Result<Self, BusError> {
        let names = Names::new(prefix)?;
        Ok(Self {
            backend: Backend::Amqp(AmqpBus::connect(config, names).await?),
        })
    }

    /// An in-process bus (nothing survives the process).
    ///
    /// # Errors
    /// [`BusError::Config`] for a bad prefix.
    pub fn in_memory(prefix: &str) -> Result<Self, BusError> {
        Ok(Self {
            backend: Backend::Memory(MemoryBus::new(Names::new(prefix)?)),
        })
    }

    /// How broker objects are named.
    #[must_use]
    pub fn names(&self) -> &Names {
        match &self.backend {
            Backend::Amqp(b) => b.names(),
            Backend::Memory(b) => b.names(),
        }
    }

    /// Declares the topology; idempotent, run at every start (on RabbitMQ over a
    /// short-lived connection of its own).
    ///
    /// Changing a service's retry tiers declares new tier queues beside the old ones (the
    /// delay is in the name); changing arguments of an existing queue (e.g. its delivery
    /// limit) is refused by RabbitMQ and needs the queue deleted first. Changing a service's
    /// partition count, or switching it between partitioned and not, is refused with the
    /// procedure to follow (drain, delete, redeclare): keys would move to other queues while
    /// the old ones still hold messages, breaking the one-message-per-key guarantee.
    ///
    /// # Errors
    /// [`BusError::Config`] for an invalid topology, a changed partition count, or a broker
    /// without the consistent-hash exchange plugin; broker errors.
    pub async fn declare(&self, topology: &Topology) -> Result<(), BusError> {
        match &self.backend {
            Backend::Amqp(b) => declare::declare(b.config(), b.names(), topology).await,
            Backend::Memory(b) => b.declare(topology),
        }
    }

    /// Deletes every queue and exchange of the topology, with their messages. For tests and
    /// for decommissioning; never needed at start.
    ///
    /// # Errors
    /// Broker errors.
    pub async fn delete(&self, topology: &Topology) -> Result<(), BusError> {
        match &self.backend {
            Backend::Amqp(b) => declare::delete(b.config(), b.names(), topology).await,
            Backend::Memory(b) => {
                b.delete(topology);
                Ok(())
            }
        }
    }

    /// Publishes a persistent message and waits until the broker confirmed it (RabbitMQ:
    /// publisher confirm; transient failures are retried a few times on a fresh channel).
    /// A message no binding matches is dropped by the exchange, as AMQP does; use
    /// [`Bus::publish_mandatory`] to be told.
    ///
    /// Code that changes state should not call this directly but record the message in its
    /// [`crate::outbox::Outbox`] in the same transaction.
    ///
    /// # Errors
    /// Broker errors after the retries; [`BusError::Nacked`]; [`BusError::PublishTimeout`].
    pub async fn publish(&self, message: &OutgoingMessage) -> Result<(), BusError> {
        self.publish_on(&PublishLane(None), message, false, true)
            .await
    }

    /// As [`Bus::publish`], but a message that no queue receives is an error: the broker
    /// returns it and this answers [`BusError::Unroutable`].
    ///
    /// # Errors
    /// As [`Bus::publish`]; [`BusError::Unroutable`].
    pub async fn publish_mandatory(&self, message: &OutgoingMessage) -> Result<(), BusError> {
        self.publish_on(&PublishLane(None), message, true, true)
            .await
    }

    /// A publishing channel of its own (see [`PublishLane`]).
    pub(crate) fn dedicated_lane(&self, name: &'static str) -> PublishLane {
        match &self.backend {
            Backend::Amqp(_) => PublishLane(Some(Arc::new(Lane::new(name)))),
            Backend::Memory(_) => PublishLane(None),
        }
    }

    /// Publishes on `lane` (the application lane for `PublishLane(None)`), retrying
    /// transient failures when `retry`; in a `bus.publish` span whose context travels with
    /// the message (see the `observe` module).
    pub(crate) async fn publish_on(
        &self,
        lane: &PublishLane,
        message: &OutgoingMessage,
        mandatory: bool,
        retry: bool,
    ) -> Result<(), BusError> {
        use tracing::Instrument as _;
        let system = match &self.backend {
            Backend::Amqp(_) => "rabbitmq",
            Backend::Memory(_) => "memory",
        };
        let span = observe::publish_span(message, system);
        let traced = observe::with_span_context(message, &span);
        let message = traced.as_ref().unwrap_or(message);
        let result = self
            .publish_traced(lane, message, mandatory, retry)
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            span.record("otel.status_code", "ERROR");
            tracing::debug!(parent: &span, error = %e, "publish failed");
        }
        observe::published(result.is_ok());
        result
    }

    async fn publish_traced(
        &self,
        lane: &PublishLane,
        message: &OutgoingMessage,
        mandatory: bool,
        retry: bool,
    ) -> Result<(), BusError> {
        match &self.backend {
            Backend::Amqp(b) => {
                let attempts = if retry {
                    b.config().publish_attempts
                } else {
                    1
                };
                let lane = lane.0.as_deref().unwrap_or(&b.inner.app);
                b.publish(lane, message, mandatory, attempts).await
            }
            Backend::Memory(b) => b.publish(message, mandatory),
        }
    }

    /// Publishes a body as it is, without checking it is an envelope: for bridges that
    /// forward foreign messages, and for tests of what consumers do with garbage.
    ///
    /// # Errors
    /// As [`Bus::publish`].
    pub async fn publish_bytes(
        &self,
        exchange: &str,
        routing_key: &str,
        partition_key: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(), BusError> {
        match &self.backend {
            Backend::Amqp(b) => {
                let mut headers = lapin::types::FieldTable::default();
                if let Some(key) = partition_key {
                    crate::amqp::headers::put_str(
                        &mut headers,
                        crate::topology::PARTITION_KEY_HEADER,
                        key,
                    );
                }
                let properties = lapin::BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_headers(headers);
                b.publish_raw(
                    &b.inner.app,
                    &b.names().exchange(exchange),
                    routing_key,
                    &body,
                    properties,
                    false,
                )
                .await
            }
            Backend::Memory(b) => b.publish_bytes(
                exchange,
                routing_key,
                partition_key,
                body,
                TraceContext::default(),
                false,
            ),
        }
    }

    /// Starts consuming the service's queue(s) with `handler`; returns once subscribed.
    /// The consumer reconnects by itself after the connection drops.
    ///
    /// # Errors
    /// When the first subscription fails (broker unreachable, queues not declared).
    pub async fn consume<H: Handler>(
        &self,
        service: &ServiceSpec,
        options: ConsumerOptions,
        handler: H,
    ) -> Result<ConsumerHandle, BusError> {
        match &self.backend {
            Backend::Amqp(b) => {
                crate::amqp::consumer::start(b.clone(), service.clone(), options, handler).await
            }
            Backend::Memory(b) => b.consume(service, &options, handler),
        }
    }

    /// Up to `limit` parked messages of `service`, in the parking queue's order (oldest
    /// first, give or take: on RabbitMQ, messages given back by a listing cut short by its
    /// limit, or more than 32 at once, or re-published by a replay or after a failure, may
    /// come back behind others), with reasons and history. Leaves them parked.
    ///
    /// # Errors
    /// Broker errors; [`BusError::Config`] when the service was never declared (in-process).
    pub async fn parked(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<ParkedMessage>, BusError> {
        match &self.backend {
            Backend::Amqp(b) => crate::amqp::parking::list(b, service, limit).await,
            Backend::Memory(b) => b.parked(service, limit),
        }
    }

    /// Puts the selected parked messages back on the queue they were parked from, with the
    /// attempt count reset; returns how many. Looks at most at the messages parked when it
    /// started, so a replayed message that is parked again meanwhile is not replayed twice.
    ///
    /// # Errors
    /// Broker errors (messages not yet re-published stay parked).
    pub async fn replay_parked(
        &self,
        service: &str,
        selection: &Selection,
    ) -> Result<usize, BusError> {
        match &self.backend {
            Backend::Amqp(b) => crate::amqp::parking::replay(b, service, selection).await,
            Backend::Memory(b) => b.replay(service, selection),
        }
    }

    /// Deletes every parked message of `service`; returns how many.
    ///
    /// # Errors
    /// Broker errors.
    pub async fn purge_parked(&self, service: &str) -> Result<usize, BusError> {
        match &self.backend {
            Backend::Amqp(b) => crate::amqp::parking::purge(b, service).await,
            Backend::Memory(b) => b.purge(service),
        }
    }

    /// Closes the publishing connection (consumers are stopped through their handles).
    pub async fn close(&self) {
        if let Backend::Amqp(b) = &self.backend {
            b.close().await;
        }
    }
}
