//! Parking-queue operations on RabbitMQ.
//!
//! Listing reads with `basic.get` without acknowledging, then gives every message back (one
//! `basic.nack` with requeue each, in order) and closes the channel; replay acknowledges only
//! what it re-published and gives back the rest the same way. Both are safe to interrupt.
//! Running two replays of one service at once is not supported.
//!
//! The channel is on the shared publishing connection, so a channel whose close the broker
//! does not confirm could keep holding what it fetched, invisible to the next listing, until
//! that connection dies. Then the connection is reset (which makes the broker put back
//! everything) and the operation fails with [`BusError::ChannelCloseUnconfirmed`] instead of
//! reporting a result that may be short.
//!
//! A replay stops at the first message that was parked after it started, or that it has
//! already seen: a replayed message that fails again is parked again at the tail, and must
//! wait for the next replay instead of looping. (The queue's message count is no bound: a
//! listing just before puts its messages back asynchronously, so the count can read low.)

use std::{
    collections::HashSet,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use lapin::{
    Channel, Connection,
    options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueuePurgeOptions},
    types::{DeliveryTag, FieldTable},
};

use super::{AmqpBus, CLOSE_TIMEOUT, headers};
use crate::{
    BusError,
    parking::{ParkedMessage, Selection},
};

/// Stops a replay from holding an unbounded number of unselected messages.
const MAX_SCAN: usize = 100_000;

/// What tells parked messages apart: the message id, or for garbage without one its body.
fn identity(parked: &ParkedMessage) -> String {
    parked.message_id.clone().unwrap_or_else(|| {
        let mut hasher = DefaultHasher::new();
        parked.body.hash(&mut hasher);
        format!("body:{:x}", hasher.finish())
    })
}

fn parse(delivery: &lapin::message::Delivery) -> ParkedMessage {
    let empty = FieldTable::default();
    let h = delivery.properties.headers().as_ref().unwrap_or(&empty);
    let deaths = headers::deaths(h);
    // Parked by the broker (delivery limit) rather than by a consumer: x-death says why.
    let broker_death = deaths.iter().find(|d| d.reason != "expired");
    let reason = headers::get_str(h, headers::PARKED_REASON).unwrap_or_else(|| {
        broker_death.map_or_else(
            || "unknown (no x-parked-reason header)".to_owned(),
            |d| {
                format!(
                    "dead-lettered by the broker from {} ({})",
                    d.queue, d.reason
                )
            },
        )
    });
    let history = headers::history(h);
    let attempts = headers::get(h, headers::ATTEMPTS)
        .and_then(|v| v.as_long_long_int())
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_else(|| u32::try_from(history.len()).unwrap_or(u32::MAX));
    ParkedMessage {
        message_id: delivery
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str().to_owned()),
        message_type: delivery
            .properties
            .kind()
            .as_ref()
            .map(|t| t.as_str().to_owned()),
        reason,
        parked_at: headers::get_str(h, headers::PARKED_AT)
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|d| d.with_timezone(&Utc)),
        origin_queue: headers::get_str(h, headers::PARKED_FROM)
            .or_else(|| broker_death.map(|d| d.queue.clone())),
        routing_key: headers::get_str(h, headers::ORIGINAL_ROUTING_KEY),
        attempts,
        history,
        body: String::from_utf8_lossy(&delivery.data).into_owned(),
    }
}

/// Gives back the deliveries `held` (fetched on `channel` and not acknowledged, in the
/// order fetched), then closes the channel: the nacks within [`CLOSE_TIMEOUT`] plus 1 ms
/// each, the close within [`CLOSE_TIMEOUT`].
///
/// One `basic.nack` with requeue per delivery, in order: the quorum queue serves returned
/// messages first, in the order returned. Closing the channel with them unacknowledged, or
/// one nack of all of them (`multiple`), returns them in one batch that RabbitMQ 3.10 applies
/// in hash-map order (measured: 30 listed messages came back shuffled after a close, 40
/// rotated after one nack). One by one, the order is kept for up to 32 returns in flight;
/// beyond, the broker's queue client batches them again (40 came back rotated, never short,
/// on a third listing). A listing cut short by its limit puts its messages behind those
/// returned before. `basic.nack` rather than `basic.reject`: from RabbitMQ 4.3 a reject
/// counts as a failed delivery towards the queue's delivery limit.
///
/// A close that did not finish in time leaves the broker's side of the channel possibly
/// open, still holding messages (the nacks, sent just before, may not have been processed
/// either): the shared `connection` it is on is reset so that the broker puts them back, and
/// the `operation` fails with [`BusError::ChannelCloseUnconfirmed`].
async fn give_back_and_close(
    bus: &AmqpBus,
    channel: &Channel,
    connection: &Arc<Connection>,
    held: &[DeliveryTag],
    operation: &'static str,
) -> Result<(), BusError> {
    // The nacks get a budget of their own, growing with their number (a replay may hold
    // up to `MAX_SCAN` unselected messages): the close's time limit is for the close.
    let budget = CLOSE_TIMEOUT
        + Duration::from_millis(u64::try_from(held.len()).unwrap_or(u64::MAX).min(600_000));
    let given_back = tokio::time::timeout(budget, async {
        for &tag in held {
            // Refused only when the channel is already closed or closing: then the broker
            // has put back (or is putting back) everything it held, and the close says so.
            if channel
                .basic_nack(
                    tag,
                    BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    },
                )
                .await
                .is_err()
            {
                break;
            }
        }
    })
    .await
    .is_ok();
    if !given_back {
        tracing::warn!(
            operation,
            held = held.len(),
            "giving back the fetched parked messages took too long; resetting the connection"
        );
    }
    let closed =
        given_back && super::bounded_close("channel", channel.close(200, operation.into())).await;
    if closed {
        return Ok(());
    }
    bus.reset_connection(connection).await;
    Err(BusError::ChannelCloseUnconfirmed {
        operation,
        timeout: CLOSE_TIMEOUT,
    })
}

async fn get(channel: &Channel, queue: &str) -> Result<Option<lapin::message::Delivery>, BusError> {
    Ok(channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await?
        .map(|m| m.delivery))
}

pub(crate) async fn list(
    bus: &AmqpBus,
    service: &str,
    limit: usize,
) -> Result<Vec<ParkedMessage>, BusError> {
    let queue = bus.names().parked(service);
    let (channel, connection) = bus.fresh_channel().await?;
    let mut parked = Vec::new();
    let mut held = Vec::new();
    let result = async {
        while parked.len() < limit {
            match get(&channel, &queue).await? {
                Some(delivery) => {
                    held.push(delivery.delivery_tag);
                    parked.push(parse(&delivery));
                }
                None => break,
            }
        }
        Ok::<_, BusError>(())
    }
    .await;
    // Nothing listed is acknowledged: every message goes back, in order. A fetch error
    // comes first; a close the broker did not confirm is an error too, since the messages
    // the channel holds would be missing from the next listing.
    let closed = give_back_and_close(bus, &channel, &connection, &held, "list").await;
    result.and(closed).map(|()| parked)
}

pub(crate) async fn replay(
    bus: &AmqpBus,
    service: &str,
    selection: &Selection,
) -> Result<usize, BusError> {
    let queue = bus.names().parked(service);
    let (channel, connection) = bus.fresh_channel().await?;
    let mut replayed = 0;
    // Fetched and not (yet) acknowledged, in order.
    let mut held = Vec::new();
    let started = Utc::now();
    let result = async {
        let mut seen = HashSet::new();
        for _ in 0..MAX_SCAN {
            let Some(delivery) = get(&channel, &queue).await? else {
                break;
            };
            held.push(delivery.delivery_tag);
            let parked = parse(&delivery);
            let parked_since = parked.parked_at.is_some_and(|at| at >= started);
            if parked_since || !seen.insert(identity(&parked)) {
                // Parked (again) since this replay started, and so is everything behind
                // it: closing the channel puts it back, for the next replay.
                break;
            }
            let Some(origin) = parked.origin_queue.as_deref() else {
                tracing::warn!(message_id = ?parked.message_id, "parked message without origin queue left in place");
                continue;
            };
            if !selection.matches(parked.message_id.as_deref()) {
                continue;
            }
            let empty = FieldTable::default();
            let h = delivery.properties.headers().as_ref().unwrap_or(&empty);
            // A replay starts counting attempts afresh.
            let properties = delivery
                .properties
                .clone()
                .with_headers(headers::strip_for_replay(h))
                .with_delivery_mode(2);
            bus.publish_raw(
                &bus.inner.reroute,
                "",
                origin,
                &delivery.data,
                properties,
                true,
            )
            .await?;
            delivery.ack(BasicAckOptions::default()).await?;
            held.pop();
            replayed += 1;
        }
        Ok::<_, BusError>(())
    }
    .await;
    // Messages not selected (or not re-published) were never acknowledged: they go back, in
    // order.
    let closed = give_back_and_close(bus, &channel, &connection, &held, "replay").await;
    result.and(closed).map(|()| replayed)
}

pub(crate) async fn purge(bus: &AmqpBus, service: &str) -> Result<usize, BusError> {
    let (channel, connection) = bus.fresh_channel().await?;
    let purged = channel
        .queue_purge(
            bus.names().parked(service).into(),
            QueuePurgeOptions::default(),
        )
        .await;
    // The purge fetched nothing, so an unconfirmed close holds no message; it still fails
    // the purge (after the connection reset), as the channel's fate is unknown.
    let closed = give_back_and_close(bus, &channel, &connection, &[], "purge").await;
    let purged = purged?;
    closed?;
    Ok(usize::try_from(purged).unwrap_or(usize::MAX))
}
