//! Parking-queue operations on RabbitMQ.
//!
//! Listing reads with `basic.get` without acknowledging, then gives every message back (one
//! `basic.nack` with requeue each, in order) or re-publishes it (below) and closes the
//! channel; replay acknowledges only what it re-published to its origin and settles the rest
//! the same way. Both are safe to interrupt: an interruption never loses a message, though
//! in the middle of re-publishing it can leave one parked twice (see [`refresh`]). Running
//! two replays of one service at once is not supported.
//!
//! The channel is on the shared publishing connection, so a channel whose close the broker
//! does not confirm could keep holding what it fetched, invisible to the next listing, until
//! that connection dies. Then the connection is reset (which makes the broker put back
//! everything) and the operation fails with [`BusError::ChannelCloseUnconfirmed`] instead of
//! reporting a result that may be short.
//!
//! A replay stops at the first message that was parked after it started, or that it
//! replayed itself (its publishes carry the run's `x-idbridge-replay` marker, which
//! consumers and the broker keep when they park a message): a replayed message that fails
//! again is parked again at the tail, and must wait for the next replay instead of looping.
//! A second message with the id of another (a copy left by a failure) is replayed too.
//! (The queue's message count is no bound: a listing just before puts its messages back
//! asynchronously, so the count can read low.)
//!
//! Giving a message back counts as a delivery: the broker's `x-delivery-count` grows by one
//! each time. RabbitMQ 4.0 gives every quorum queue a delivery limit of 20 and drops a
//! message that passes it (the parked queue has no dead-letter target: it is the end of
//! the line), and RabbitMQ before 4.3 counts every return. So the parked messages would be
//! lost after about 20 listings. Instead, once a fetched message has been given back
//! [`REFRESH_AT`] times, the operation re-publishes what it fetched as fresh copies at the
//! tail (each confirmed before its original is acknowledged), which starts their counts
//! again. A listing cut short by its limit then re-publishes the rest of the queue too, one
//! message at a time, so that a listing usually keeps the queue's order; a replay does not
//! (what it did not fetch stays ahead of the copies). A message parked while copies are
//! being made lands among them, a queue count that reads low leaves the last messages
//! ahead of the copies, and a failure part way leaves the copies made behind the messages
//! given back. A failure (or a refresh due on a channel already closed) is logged and
//! counted (`idbridge_bus_parked_refresh_failures_total`); the listing or replay still
//! succeeds. This needs no broker configuration, on any version; a delivery limit below
//! [`REFRESH_AT`] on parked queues (by policy) would still drop messages.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use lapin::{
    BasicProperties, Channel, Connection,
    message::Delivery,
    options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueuePurgeOptions},
    types::{DeliveryTag, FieldTable},
};

use super::{AmqpBus, CLOSE_TIMEOUT, headers};
use crate::{
    BusError,
    parking::{ParkedMessage, REFRESH_AT, Selection},
};

/// Stops a replay from holding, or a listing's refresh from re-publishing, an unbounded
/// number of messages.
const MAX_SCAN: usize = 100_000;

/// Parked by the broker (delivery limit) rather than by a consumer: `x-death` says from
/// where and why.
fn broker_death(h: &FieldTable) -> Option<(String, String)> {
    headers::deaths(h)
        .into_iter()
        .find(|d| d.reason != "expired")
        .map(|d| {
            let reason = format!(
                "dead-lettered by the broker from {} ({})",
                d.queue, d.reason
            );
            (d.queue, reason)
        })
}

/// The headers of a delivered message (none: an empty table).
fn headers_in(properties: &BasicProperties) -> &FieldTable {
    static EMPTY: std::sync::LazyLock<FieldTable> = std::sync::LazyLock::new(FieldTable::default);
    properties.headers().as_ref().unwrap_or(&EMPTY)
}

fn headers_of(delivery: &Delivery) -> &FieldTable {
    headers_in(&delivery.properties)
}

fn parse(delivery: &Delivery) -> ParkedMessage {
    let h = headers_of(delivery);
    let broker_death = broker_death(h);
    let reason = headers::get_str(h, headers::PARKED_REASON).unwrap_or_else(|| {
        broker_death.as_ref().map_or_else(
            || "unknown (no x-parked-reason header)".to_owned(),
            |(_, reason)| reason.clone(),
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
            .or_else(|| broker_death.map(|(queue, _)| queue)),
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

/// The properties of a fresh copy of a parked message (`properties` as delivered), made by
/// the refresh `marker`: the same, without the broker's delivery counts, marked, and with
/// why and from where it was parked in our own headers, so that a listing still says so if
/// the broker's `x-death` does not survive re-publishing.
fn refreshed_properties(properties: &BasicProperties, marker: &str) -> BasicProperties {
    let h = headers_in(properties);
    let mut fresh = FieldTable::default();
    for (key, value) in h {
        if !matches!(
            key.as_str(),
            headers::DELIVERY_COUNT | headers::ACQUIRED_COUNT
        ) {
            fresh.insert(key.clone(), value.clone());
        }
    }
    headers::put_str(&mut fresh, headers::REFRESHED_BY, marker);
    if let Some((queue, reason)) = broker_death(h) {
        if !fresh.contains_key(headers::PARKED_REASON) {
            headers::put_str(&mut fresh, headers::PARKED_REASON, &reason);
        }
        if !fresh.contains_key(headers::PARKED_FROM) {
            headers::put_str(&mut fresh, headers::PARKED_FROM, &queue);
        }
    }
    properties.clone().with_headers(fresh).with_delivery_mode(2)
}

/// Re-publishes each of `held` (fetched from `queue` on `channel`, in order) at the tail of
/// `queue`, acknowledging each original once its copy is confirmed; returns how many were
/// done, and the error that stopped it. Never loses a message, but can leave one parked
/// twice: a copy whose confirm timed out may still have been queued, and the
/// acknowledgements are not confirmed, so a channel that dies before the broker processed
/// them puts the originals back beside their copies.
async fn refresh(
    bus: &AmqpBus,
    channel: &Channel,
    queue: &str,
    held: &[Delivery],
    marker: &str,
) -> (usize, Result<(), BusError>) {
    for (done, delivery) in held.iter().enumerate() {
        if let Err(e) = copy_and_ack(bus, channel, queue, delivery, marker).await {
            return (done, Err(e));
        }
    }
    (held.len(), Ok(()))
}

async fn copy_and_ack(
    bus: &AmqpBus,
    channel: &Channel,
    queue: &str,
    delivery: &Delivery,
    marker: &str,
) -> Result<(), BusError> {
    bus.publish_raw(
        &bus.inner.reroute,
        "",
        queue,
        &delivery.data,
        refreshed_properties(&delivery.properties, marker),
        true,
    )
    .await?;
    channel
        .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
        .await?;
    Ok(())
}

/// After [`refresh`] re-published the head of `queue` with `marker`: re-publishes the
/// `rest` messages that were behind it (the queue's count at the last fetch), one at a time
/// (fetch, copy, acknowledge), so that the copies keep the queue's order. Stops early at the
/// end of the queue, after [`MAX_SCAN`], or, should the count have read high, at the first
/// copy this refresh made (marked with `marker`; given back where it was). Returns how many
/// it re-published.
async fn refresh_rest(
    bus: &AmqpBus,
    channel: &Channel,
    queue: &str,
    rest: usize,
    marker: &str,
) -> Result<usize, BusError> {
    let mut done = 0;
    while done < rest.min(MAX_SCAN) {
        let Some((delivery, _)) = get(channel, queue).await? else {
            break;
        };
        let stop = headers::get_str(headers_of(&delivery), headers::REFRESHED_BY).as_deref()
            == Some(marker);
        let copy = if stop {
            Ok(())
        } else {
            copy_and_ack(bus, channel, queue, &delivery, marker).await
        };
        if stop || copy.is_err() {
            // Not re-published: back to the head, where it came from.
            let _ = channel
                .basic_nack(
                    delivery.delivery_tag,
                    BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    },
                )
                .await;
            return copy.map(|()| done);
        }
        done += 1;
    }
    Ok(done)
}

/// Settles what an operation fetched from `queue` and did not consume (`held`, in order):
/// gives it back, or, when one of them has been given back [`REFRESH_AT`] times,
/// re-publishes it (and the `rest` of the queue behind it, if given), giving back
/// whatever a failure left; then closes the channel as [`give_back_and_close`] does, whose
/// error is the only one returned. A failed re-publishing is logged: the operation itself
/// (a listing, a replay) did what it was asked.
async fn settle(
    bus: &AmqpBus,
    channel: &Channel,
    connection: &Arc<Connection>,
    queue: &str,
    held: &[Delivery],
    rest: Option<usize>,
    operation: &'static str,
) -> Result<(), BusError> {
    let highest = held
        .iter()
        .map(|d| headers::delivery_count(headers_of(d)))
        .max()
        .unwrap_or(0);
    let mut done = 0;
    if highest >= REFRESH_AT && !channel.status().connected() {
        // The broker puts them back itself, one delivery closer to its limit.
        crate::observe::parked_refresh_failed(1);
        tracing::error!(
            operation,
            queue,
            highest_delivery_count = highest,
            "re-publishing parked messages failed: the channel was already closed, and the \
             broker put them back, one delivery closer to the queue's delivery limit"
        );
    } else if highest >= REFRESH_AT {
        let marker = uuid::Uuid::new_v4().to_string();
        let (copied, mut result) = refresh(bus, channel, queue, held, &marker).await;
        done = copied;
        let mut refreshed = copied;
        if let (Ok(()), Some(rest)) = (&result, rest) {
            result = refresh_rest(bus, channel, queue, rest, &marker)
                .await
                .map(|rest| refreshed += rest);
        }
        match result {
            Ok(()) => tracing::info!(
                operation,
                queue,
                refreshed,
                "re-published parked messages to start their delivery counts again"
            ),
            Err(e) => {
                crate::observe::parked_refresh_failed(1);
                tracing::error!(
                    operation,
                    queue,
                    refreshed,
                    highest_delivery_count = highest,
                    error = %e,
                    "re-publishing parked messages failed; the others were given back, one \
                     delivery closer to the queue's delivery limit (RabbitMQ 4 drops a \
                     message past it, by default its 21st delivery)"
                );
            }
        }
    }
    let rest: Vec<DeliveryTag> = held
        .get(done..)
        .unwrap_or_default()
        .iter()
        .map(|d| d.delivery_tag)
        .collect();
    give_back_and_close(bus, channel, connection, &rest, operation).await
}

/// The next message of `queue`, and how many are ready behind it.
async fn get(channel: &Channel, queue: &str) -> Result<Option<(Delivery, usize)>, BusError> {
    Ok(channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await?
        .map(|m| {
            let behind = usize::try_from(m.message_count).unwrap_or(usize::MAX);
            (m.delivery, behind)
        }))
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
    // Ready behind the last message fetched: what a listing cut short did not see.
    let mut behind = 0;
    let result = async {
        while parked.len() < limit {
            match get(&channel, &queue).await? {
                Some((delivery, rest)) => {
                    parked.push(parse(&delivery));
                    held.push(delivery);
                    behind = rest;
                }
                None => {
                    behind = 0;
                    break;
                }
            }
        }
        Ok::<_, BusError>(())
    }
    .await;
    // Nothing listed is consumed: every message goes back or is re-published, in order
    // (the rest of the queue too when the listing was cut short). A fetch error comes
    // first; a close the broker did not confirm is an error too, since the messages the
    // channel holds would be missing from the next listing.
    let settled = settle(
        bus,
        &channel,
        &connection,
        &queue,
        &held,
        Some(behind),
        "list",
    )
    .await;
    result.and(settled).map(|()| parked)
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
    let mut held: Vec<Delivery> = Vec::new();
    let started = Utc::now();
    let result = async {
        // Stamped on what this run replays: a message carrying it came back (it failed again).
        let run = uuid::Uuid::new_v4().to_string();
        for _ in 0..MAX_SCAN {
            let Some((delivery, _)) = get(&channel, &queue).await? else {
                break;
            };
            let parked = parse(&delivery);
            let came_back = headers::get_str(headers_of(&delivery), headers::REPLAYED_BY)
                .as_deref()
                == Some(run.as_str());
            held.push(delivery);
            let parked_since = parked.parked_at.is_some_and(|at| at >= started);
            if parked_since || came_back {
                // Parked (again) since this replay started, and so is everything behind
                // it: it goes back, for the next replay.
                break;
            }
            let Some(origin) = parked.origin_queue.as_deref() else {
                tracing::warn!(message_id = ?parked.message_id, "parked message without origin queue left in place");
                continue;
            };
            if !selection.matches(parked.message_id.as_deref()) {
                continue;
            }
            let Some(delivery) = held.pop() else {
                break;
            };
            // A replay starts counting attempts afresh.
            let mut fresh = headers::strip_for_replay(headers_of(&delivery));
            headers::put_str(&mut fresh, headers::REPLAYED_BY, &run);
            let properties = delivery
                .properties
                .clone()
                .with_headers(fresh)
                .with_delivery_mode(2);
            let published = bus
                .publish_raw(
                    &bus.inner.reroute,
                    "",
                    origin,
                    &delivery.data,
                    properties,
                    true,
                )
                .await;
            // Not re-published, or its acknowledgement refused (the channel is closing, which
            // puts it back): still held.
            if let Err(e) = published {
                held.push(delivery);
                return Err(e);
            }
            if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                held.push(delivery);
                return Err(e.into());
            }
            replayed += 1;
        }
        Ok::<_, BusError>(())
    }
    .await;
    // Messages not selected (or not re-published) were never acknowledged: they go back (or
    // are re-published), in order.
    let settled = settle(bus, &channel, &connection, &queue, &held, None, "replay").await;
    result.and(settled).map(|()| replayed)
}

/// Purges the parking queue of `service`. Once the broker answered the purge it is done: a
/// channel close it then does not confirm only resets the connection (the channel held no
/// message), with a warning.
pub(crate) async fn purge(bus: &AmqpBus, service: &str) -> Result<usize, BusError> {
    let (channel, connection) = bus.fresh_channel().await?;
    let purged = channel
        .queue_purge(
            bus.names().parked(service).into(),
            QueuePurgeOptions::default(),
        )
        .await;
    let closed = give_back_and_close(bus, &channel, &connection, &[], "purge").await;
    let purged = purged?;
    if let Err(e) = closed {
        tracing::warn!(
            error = %e,
            purged,
            "the parked queue was purged; its channel did not close in time"
        );
    }
    Ok(usize::try_from(purged).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use lapin::types::{AMQPValue, FieldArray};

    use super::*;

    fn death(queue: &str, reason: &str) -> AMQPValue {
        let mut t = FieldTable::default();
        headers::put_str(&mut t, "queue", queue);
        headers::put_str(&mut t, "reason", reason);
        t.insert("count".into(), AMQPValue::LongLongInt(1));
        AMQPValue::FieldTable(t)
    }

    fn with_headers(h: FieldTable) -> BasicProperties {
        BasicProperties::default()
            .with_message_id("m-1".into())
            .with_headers(h)
    }

    #[test]
    fn a_refreshed_copy_drops_the_delivery_count_and_keeps_why_it_was_parked() {
        // Parked by the broker: only x-death says why and from where.
        let mut h = FieldTable::default();
        h.insert(
            headers::X_DEATH.into(),
            AMQPValue::FieldArray(FieldArray::from(vec![death("p.w", "delivery_limit")])),
        );
        h.insert(headers::DELIVERY_COUNT.into(), AMQPValue::LongLongInt(12));
        let fresh = refreshed_properties(&with_headers(h), "refresh-1");
        let fh = fresh.headers().clone().unwrap_or_default();
        assert_eq!(headers::delivery_count(&fh), 0);
        assert!(!fh.contains_key(headers::DELIVERY_COUNT));
        assert_eq!(
            headers::get_str(&fh, headers::PARKED_REASON).as_deref(),
            Some("dead-lettered by the broker from p.w (delivery_limit)")
        );
        assert_eq!(
            headers::get_str(&fh, headers::PARKED_FROM).as_deref(),
            Some("p.w")
        );
        assert!(fh.contains_key(headers::X_DEATH));
        assert_eq!(
            headers::get_str(&fh, headers::REFRESHED_BY).as_deref(),
            Some("refresh-1")
        );
        assert_eq!(fresh.delivery_mode(), &Some(2));
        assert_eq!(fresh.message_id().as_ref().map(|m| m.as_str()), Some("m-1"));

        // Parked by a consumer: its own reason and origin stay as they were.
        let mut h = FieldTable::default();
        headers::put_str(&mut h, headers::PARKED_REASON, "bad payload");
        headers::put_str(&mut h, headers::PARKED_FROM, "p.svc");
        h.insert(
            headers::X_DEATH.into(),
            AMQPValue::FieldArray(FieldArray::from(vec![death("p.other", "rejected")])),
        );
        let fh = refreshed_properties(&with_headers(h), "refresh-2")
            .headers()
            .clone()
            .unwrap_or_default();
        assert_eq!(
            headers::get_str(&fh, headers::PARKED_REASON).as_deref(),
            Some("bad payload")
        );
        assert_eq!(
            headers::get_str(&fh, headers::PARKED_FROM).as_deref(),
            Some("p.svc")
        );
    }
}
