//! Parking-queue operations on RabbitMQ.
//!
//! Listing reads with `basic.get` without acknowledging, then closes the channel so the
//! broker puts every message back; replay acknowledges only what it re-published. Both are
//! safe to interrupt. Running two replays of one service at once is not supported.
//!
//! A replay stops at the first message that was parked after it started, or that it has
//! already seen: a replayed message that fails again is parked again at the tail, and must
//! wait for the next replay instead of looping. (The queue's message count is no bound: a
//! listing just before puts its messages back asynchronously, so the count can read low.)

use std::{
    collections::HashSet,
    hash::{DefaultHasher, Hash, Hasher},
};

use chrono::{DateTime, Utc};
use lapin::{
    Channel,
    options::{BasicAckOptions, BasicGetOptions, QueuePurgeOptions},
    types::FieldTable,
};

use super::{AmqpBus, headers};
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
    let channel = bus.fresh_channel().await?;
    let mut parked = Vec::new();
    let result = async {
        while parked.len() < limit {
            match get(&channel, &queue).await? {
                Some(delivery) => parked.push(parse(&delivery)),
                None => break,
            }
        }
        Ok::<_, BusError>(())
    }
    .await;
    // Closing without acknowledging puts every message back.
    super::bounded_close("channel", channel.close(200, "listed".into())).await;
    result.map(|()| parked)
}

pub(crate) async fn replay(
    bus: &AmqpBus,
    service: &str,
    selection: &Selection,
) -> Result<usize, BusError> {
    let queue = bus.names().parked(service);
    let channel = bus.fresh_channel().await?;
    let mut replayed = 0;
    let started = Utc::now();
    let result = async {
        let mut seen = HashSet::new();
        for _ in 0..MAX_SCAN {
            let Some(delivery) = get(&channel, &queue).await? else {
                break;
            };
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
            replayed += 1;
        }
        Ok::<_, BusError>(())
    }
    .await;
    // Messages not selected were never acknowledged: closing puts them back.
    super::bounded_close("channel", channel.close(200, "replayed".into())).await;
    result.map(|()| replayed)
}

pub(crate) async fn purge(bus: &AmqpBus, service: &str) -> Result<usize, BusError> {
    let channel = bus.fresh_channel().await?;
    let purged = channel
        .queue_purge(
            bus.names().parked(service).into(),
            QueuePurgeOptions::default(),
        )
        .await;
    super::bounded_close("channel", channel.close(200, "purged".into())).await;
    Ok(usize::try_from(purged?).unwrap_or(usize::MAX))
}
