//! The RabbitMQ consumer loop: subscribe, hand each delivery to the handler, settle it
//! (ack, retry tier, parking), reconnect when the connection drops.
//!
//! When the consumer's channel dies, the broker requeues its unacknowledged messages and
//! may hand them to another replica at once. So handlers still running are dropped (as a
//! crash would), and nothing is re-routed to a retry tier or the parking queue for a
//! delivery whose channel is gone: the ack could not follow, and the copy would be a second
//! live instance of the message beside the redelivered one.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use futures_util::StreamExt;
use lapin::{
    Channel, Connection,
    options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions},
    types::{AMQPValue, FieldTable},
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{AmqpBus, connect, headers};
use crate::{
    AttemptRecord, BusError, ConsumerHandle, ConsumerOptions, Handler, handler::run_guarded,
    message::AttemptOutcome, observe, policy::Action, topology::ServiceSpec,
};
use tracing::Instrument as _;

struct Ctx<H> {
    bus: AmqpBus,
    spec: ServiceSpec,
    prefetch: u16,
    handler: H,
    stop: CancellationToken,
}

type Slot = std::sync::Mutex<Option<Arc<Connection>>>;

pub(crate) async fn start<H: Handler>(
    bus: AmqpBus,
    spec: ServiceSpec,
    options: ConsumerOptions,
    handler: H,
) -> Result<ConsumerHandle, BusError> {
    let stop = options.shutdown.child_token();
    let kill = CancellationToken::new();
    let ctx = Arc::new(Ctx {
        bus,
        spec,
        prefetch: options.prefetch.max(1),
        handler,
        stop: stop.clone(),
    });
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = tokio::spawn(run(ctx, kill.clone(), ready_tx));
    let handle = ConsumerHandle { stop, kill, task };
    match ready_rx.await {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            handle.task.abort();
            Err(e)
        }
        Err(_) => Err(BusError::Closed),
    }
}

async fn run<H: Handler>(
    ctx: Arc<Ctx<H>>,
    kill: CancellationToken,
    ready: oneshot::Sender<Result<(), BusError>>,
) {
    let mut ready = Some(ready);
    let current: Slot = std::sync::Mutex::new(None);
    let first_delay = Duration::from_millis(100);
    let mut delay = first_delay;
    loop {
        let mut connected = false;
        let result = tokio::select! {
            biased;
            () = kill.cancelled() => {
                // As if the process died: no acks, the broker requeues what was in flight.
                let connection = current.lock().ok().and_then(|mut c| c.take());
                if let Some(connection) = connection {
                    super::bounded_close("connection", connection.close(200, "consumer killed".into())).await;
                }
                return;
            }
            r = session(&ctx, &mut ready, &current, &mut connected) => r,
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
                if connected {
                    delay = first_delay;
                }
                tracing::warn!(service = %ctx.spec.name, error = %e, ?delay, "consumer lost its connection; reconnecting");
                tokio::select! {
                    () = tokio::time::sleep(crate::policy::jittered(delay)) => {}
                    () = ctx.stop.cancelled() => return,
                }
                delay = (delay * 2).min(ctx.bus.config().max_reconnect_delay);
            }
        }
    }
}

async fn session<H: Handler>(
    ctx: &Ctx<H>,
    ready: &mut Option<oneshot::Sender<Result<(), BusError>>>,
    current: &Slot,
    connected: &mut bool,
) -> Result<(), BusError> {
    let connection =
        Arc::new(connect(ctx.bus.config(), &format!("consumer:{}", ctx.spec.name)).await?);
    if let Ok(mut slot) = current.lock() {
        *slot = Some(connection.clone());
    }
    let channel = connection.create_channel().await?;
    let partitioned = ctx.spec.partitions.is_some();
    // Per-consumer prefetch (global = false): with one consumer per partition queue, a
    // prefetch of 1 is one message in flight per partition.
    let prefetch = if partitioned { 1 } else { ctx.prefetch };
    channel
        .basic_qos(prefetch, BasicQosOptions { global: false })
        .await?;
    let mut consumers = Vec::new();
    for queue in ctx.bus.names().work_queues(&ctx.spec) {
        let tag = format!("{}-{}", ctx.spec.name, Uuid::new_v4().simple());
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        consumers.push((queue, consumer));
    }
    *connected = true;
    if let Some(tx) = ready.take() {
        let _ = tx.send(Ok(()));
    }
    tracing::info!(service = %ctx.spec.name, queues = consumers.len(), "consuming");

    let concurrency = if partitioned {
        1
    } else {
        usize::from(prefetch)
    };
    let failure: std::sync::Mutex<Option<lapin::Error>> = std::sync::Mutex::new(None);
    let failure = &failure;
    // Cancelled when the channel reports an error: in-flight handlers are abandoned.
    let lost = CancellationToken::new();
    let (lost, channel_ref) = (&lost, &channel);
    let runs = consumers.into_iter().map(|(queue, consumer)| async move {
        let queue = queue.as_str();
        // `None` marks the end of the broker's stream; if the channel is gone too (and we
        // are not stopping, which ends the stream before the marker), whatever is still
        // running has lost its channel.
        consumer
            .map(Some)
            .chain(futures_util::stream::once(async { None }))
            .take_until(ctx.stop.cancelled())
            .for_each_concurrent(concurrency, |item| async move {
                match item {
                    Some(Ok(delivery)) => process(ctx, channel_ref, lost, queue, delivery).await,
                    Some(Err(e)) => {
                        lost.cancel();
                        if let Ok(mut f) = failure.lock() {
                            *f = Some(e);
                        }
                    }
                    None if !channel_ref.status().connected() => lost.cancel(),
                    None => {}
                }
            })
            .await;
    });
    futures_util::future::join_all(runs).await;

    if ctx.stop.is_cancelled() {
        super::bounded_close("channel", channel.close(200, "stopping".into())).await;
        super::bounded_close("connection", connection.close(200, "stopping".into())).await;
        if let Ok(mut slot) = current.lock() {
            slot.take();
        }
        tracing::info!(service = %ctx.spec.name, "consumer stopped");
        return Ok(());
    }
    let error = failure.lock().ok().and_then(|mut f| f.take());
    Err(error.map_or_else(
        || BusError::Config("the broker cancelled the consumer (queue deleted?)".into()),
        BusError::Amqp,
    ))
}

async fn process<H: Handler>(
    ctx: &Ctx<H>,
    channel: &Channel,
    lost: &CancellationToken,
    queue: &str,
    delivery: lapin::message::Delivery,
) {
    let service = &ctx.spec.name;
    let retry_prefix = ctx.bus.names().retry_prefix(service);
    let (action, attempt, message_id, span) = match headers::decode(&delivery, queue, &retry_prefix)
    {
        Ok(decoded) => {
            let attempt = decoded.attempt;
            let message_id = decoded.envelope.message_id.to_string();
            let span = observe::handle_span(&decoded, "rabbitmq");
            let started = Instant::now();
            let outcome = tokio::select! {
                outcome = run_guarded(&ctx.handler, decoded).instrument(span.clone()) => outcome,
                () = lost.cancelled() => {
                    tracing::warn!(parent: &span, %service, %message_id, "the consumer's channel died mid-handler; abandoning it (the broker redelivers the message)");
                    return;
                }
            };
            let action = ctx.spec.retry.decide(attempt, outcome);
            observe::handled(&span, queue, &action, Some(started.elapsed()));
            (action, attempt, message_id, span)
        }
        Err(reason) => {
            let empty = FieldTable::default();
            let h = delivery.properties.headers().as_ref().unwrap_or(&empty);
            let message_id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default();
            let span = observe::rejected_span(queue, "rabbitmq");
            let action = Action::Park { reason };
            observe::handled(&span, queue, &action, None);
            (action, headers::attempt(h, &retry_prefix), message_id, span)
        }
    };
    settle(ctx, channel, queue, delivery, action, attempt, &message_id)
        .instrument(span)
        .await;
}

/// Acknowledges, re-routes to a retry tier or parks a handled delivery.
async fn settle<H: Handler>(
    ctx: &Ctx<H>,
    channel: &Channel,
    queue: &str,
    delivery: lapin::message::Delivery,
    action: Action,
    attempt: u32,
    message_id: &str,
) {
    let service = &ctx.spec.name;

    if !matches!(action, Action::Ack) && !channel.status().connected() {
        tracing::warn!(%service, %message_id, attempt, "the consumer's channel died before the message was settled; not re-routing it (the broker redelivers it)");
        return;
    }
    let settled = match &action {
        Action::Ack => Ok(()),
        Action::Retry { tier, reason } => {
            let delay = ctx.spec.retry.tiers.get(*tier).copied().unwrap_or_default();
            tracing::info!(%service, %message_id, attempt, ?delay, %reason, "retrying message");
            let record = AttemptRecord {
                attempt,
                at: Utc::now(),
                outcome: AttemptOutcome::Retry,
                reason: reason.clone(),
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            };
            let properties = delivery
                .properties
                .clone()
                .with_headers(headers::rerouted_headers(&delivery, &record))
                .with_delivery_mode(2);
            // Routing key = the queue it came from: the tier dead-letters it back there.
            ctx.bus
                .publish_raw(
                    &ctx.bus.inner.reroute,
                    &ctx.bus.names().retry_tier(service, delay),
                    queue,
                    &delivery.data,
                    properties,
                    true,
                )
                .await
        }
        Action::Park { reason } => {
            tracing::warn!(%service, %message_id, attempt, %reason, "parking message");
            let now = Utc::now();
            let record = AttemptRecord {
                attempt,
                at: now,
                outcome: AttemptOutcome::Park,
                reason: reason.clone(),
                delay_ms: 0,
            };
            let mut h = headers::rerouted_headers(&delivery, &record);
            headers::put_str(&mut h, headers::PARKED_REASON, reason);
            headers::put_str(&mut h, headers::PARKED_AT, &now.to_rfc3339());
            headers::put_str(&mut h, headers::PARKED_FROM, queue);
            h.insert(
                headers::ATTEMPTS.into(),
                AMQPValue::LongLongInt(i64::from(attempt)),
            );
            let properties = delivery
                .properties
                .clone()
                .with_headers(h)
                .with_delivery_mode(2);
            ctx.bus
                .publish_raw(
                    &ctx.bus.inner.reroute,
                    "",
                    &ctx.bus.names().parked(service),
                    &delivery.data,
                    properties,
                    true,
                )
                .await
        }
    };

    match settled {
        Ok(()) => {
            if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                // The channel is gone; the broker redelivers and the inbox absorbs it.
                tracing::warn!(%service, %message_id, error = %e, "ack failed");
            }
        }
        Err(e) => {
            tracing::warn!(%service, %message_id, error = %e, "could not re-route message; returning it to the queue");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = ctx.stop.cancelled() => {}
            }
            let _ = delivery
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await;
        }
    }
}
