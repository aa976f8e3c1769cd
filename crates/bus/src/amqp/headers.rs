//! Envelope ↔ AMQP properties and headers, `x-death` and the attempt history.

use chrono::{DateTime, Utc};
use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString},
};

use crate::{
    AttemptOutcome, AttemptRecord, Delivery, Envelope, TraceContext, message::OutgoingMessage,
    topology::PARTITION_KEY_HEADER,
};

/// W3C trace context headers.
pub(crate) const TRACEPARENT: &str = "traceparent";
pub(crate) const TRACESTATE: &str = "tracestate";
/// Where the message was first published, kept when it is re-routed through retry tiers.
pub(crate) const ORIGINAL_EXCHANGE: &str = "x-original-exchange";
pub(crate) const ORIGINAL_ROUTING_KEY: &str = "x-original-routing-key";
/// The failed attempts so far (array of tables).
pub(crate) const HISTORY: &str = "x-idbridge-history";
/// Set on parked messages.
pub(crate) const PARKED_REASON: &str = "x-parked-reason";
pub(crate) const PARKED_AT: &str = "x-parked-at";
pub(crate) const PARKED_FROM: &str = "x-parked-from";
pub(crate) const ATTEMPTS: &str = "x-attempts";
/// Set by RabbitMQ when it dead-letters a message.
pub(crate) const X_DEATH: &str = "x-death";
/// Set by a quorum queue on a message delivered again: how many times it was given back
/// (from RabbitMQ 4.3, only the deliveries that failed; before, every return).
pub(crate) const DELIVERY_COUNT: &str = "x-delivery-count";
/// Set by RabbitMQ 4.3 and later on a message delivered again: every delivery so far.
pub(crate) const ACQUIRED_COUNT: &str = "x-acquired-count";
/// On a parked message's fresh copy: the refresh that made it (so that refresh stops at its
/// own copies).
pub(crate) const REFRESHED_BY: &str = "x-idbridge-refresh";
/// On a replayed message: the replay run that published it (so that the run stops when it
/// comes back parked again).
pub(crate) const REPLAYED_BY: &str = "x-idbridge-replay";

/// Properties of a fresh message: persistent, JSON, ids mirrored from the envelope so that
/// broker tools show them without parsing bodies.
pub(crate) fn properties_for(message: &OutgoingMessage) -> BasicProperties {
    let envelope = &message.envelope;
    let mut headers = FieldTable::default();
    put_str(
        &mut headers,
        "x-schema-version",
        &envelope.schema_version.to_string(),
    );
    if let Some(traceparent) = &envelope.trace.traceparent {
        put_str(&mut headers, TRACEPARENT, traceparent);
    }
    if let Some(tracestate) = &envelope.trace.tracestate {
        put_str(&mut headers, TRACESTATE, tracestate);
    }
    if let Some(key) = &message.partition_key {
        put_str(&mut headers, PARTITION_KEY_HEADER, key);
    }
    let timestamp = u64::try_from(envelope.occurred_at.timestamp()).unwrap_or(0);
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(envelope.message_id.to_string().into())
        .with_correlation_id(envelope.correlation_id.to_string().into())
        .with_type(short(&envelope.message_type))
        .with_timestamp(timestamp)
        .with_headers(headers)
}

/// A `ShortString` from arbitrary text, cut to AMQP's 255-byte limit at a char boundary.
pub(crate) fn short(text: &str) -> ShortString {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().into()
}

pub(crate) fn put_str(headers: &mut FieldTable, key: &str, value: &str) {
    headers.insert(key.into(), AMQPValue::LongString(value.into()));
}

pub(crate) fn get<'a>(headers: &'a FieldTable, key: &str) -> Option<&'a AMQPValue> {
    headers
        .inner()
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
}

pub(crate) fn get_str(headers: &FieldTable, key: &str) -> Option<String> {
    get(headers, key).and_then(value_str)
}

fn value_str(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(long_str(s)),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn long_str(s: &LongString) -> String {
    String::from_utf8_lossy(s.as_bytes()).into_owned()
}

fn value_u64(value: &AMQPValue) -> Option<u64> {
    match value {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::Timestamp(n) => Some(*n),
        _ => None,
    }
}

/// The quorum queue's `x-delivery-count` (0 when absent: never given back).
pub(crate) fn delivery_count(headers: &FieldTable) -> u64 {
    get(headers, DELIVERY_COUNT)
        .and_then(value_u64)
        .unwrap_or(0)
}

/// One entry of RabbitMQ's `x-death` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Death {
    pub(crate) queue: String,
    pub(crate) reason: String,
    pub(crate) count: u64,
}

pub(crate) fn deaths(headers: &FieldTable) -> Vec<Death> {
    let Some(AMQPValue::FieldArray(entries)) = get(headers, X_DEATH) else {
        return Vec::new();
    };
    entries
        .as_slice()
        .iter()
        .filter_map(|entry| match entry {
            AMQPValue::FieldTable(t) => Some(Death {
                queue: get_str(t, "queue").unwrap_or_default(),
                reason: get_str(t, "reason").unwrap_or_default(),
                count: get(t, "count").and_then(value_u64).unwrap_or(1),
            }),
            _ => None,
        })
        .collect()
}

/// Retries so far: every expiry out of one of this service's retry tiers is one.
pub(crate) fn retries_from_x_death(headers: &FieldTable, retry_prefix: &str) -> u64 {
    deaths(headers)
        .iter()
        .filter(|d| d.reason == "expired" && d.queue.starts_with(retry_prefix))
        .map(|d| d.count)
        .sum()
}

pub(crate) fn history(headers: &FieldTable) -> Vec<AttemptRecord> {
    let Some(AMQPValue::FieldArray(entries)) = get(headers, HISTORY) else {
        return Vec::new();
    };
    entries
        .as_slice()
        .iter()
        .filter_map(|entry| match entry {
            // An entry with an outcome this version does not know is not ours to count.
            AMQPValue::FieldTable(t) => Some(AttemptRecord {
                outcome: get_str(t, "outcome")
                    .as_deref()
                    .and_then(AttemptOutcome::parse)?,
                attempt: get(t, "attempt")
                    .and_then(value_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0),
                at: get_str(t, "at")
                    .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                    .map_or_else(Utc::now, |d| d.with_timezone(&Utc)),
                reason: get_str(t, "reason").unwrap_or_default(),
                delay_ms: get(t, "delay_ms").and_then(value_u64).unwrap_or(0),
            }),
            _ => None,
        })
        .collect()
}

pub(crate) fn set_history(headers: &mut FieldTable, records: &[AttemptRecord]) {
    let entries: Vec<AMQPValue> = records
        .iter()
        .map(|r| {
            let mut t = FieldTable::default();
            t.insert(
                "attempt".into(),
                AMQPValue::LongLongInt(i64::from(r.attempt)),
            );
            put_str(&mut t, "at", &r.at.to_rfc3339());
            put_str(&mut t, "outcome", r.outcome.as_str());
            put_str(&mut t, "reason", &r.reason);
            t.insert(
                "delay_ms".into(),
                AMQPValue::LongLongInt(i64::try_from(r.delay_ms).unwrap_or(i64::MAX)),
            );
            AMQPValue::FieldTable(t)
        })
        .collect();
    headers.insert(
        HISTORY.into(),
        AMQPValue::FieldArray(FieldArray::from(entries)),
    );
}

/// The attempt number of this delivery: one more than the retries already done. Counted from
/// `x-death` (the broker's own record) and from our history header, whichever is larger, so a
/// broker that stops honouring client-copied `x-death` entries cannot reset the count.
pub(crate) fn attempt(headers: &FieldTable, retry_prefix: &str) -> u32 {
    let from_deaths = retries_from_x_death(headers, retry_prefix);
    let from_history = history(headers)
        .iter()
        .filter(|r| r.outcome == AttemptOutcome::Retry)
        .count();
    let retries = from_deaths.max(u64::try_from(from_history).unwrap_or(u64::MAX));
    u32::try_from(retries.saturating_add(1)).unwrap_or(u32::MAX)
}

/// Decodes a delivery for a handler, or says why the body is not a valid envelope.
pub(crate) fn decode(
    delivery: &lapin::message::Delivery,
    queue: &str,
    retry_prefix: &str,
) -> Result<Delivery, String> {
    let empty = FieldTable::default();
    let headers = delivery.properties.headers().as_ref().unwrap_or(&empty);
    let trace = TraceContext::from_headers(
        get_str(headers, TRACEPARENT).as_deref(),
        get_str(headers, TRACESTATE).as_deref(),
    );
    let envelope =
        Envelope::from_json(&delivery.data, trace).map_err(|e| format!("invalid envelope: {e}"))?;
    Ok(Delivery {
        envelope,
        attempt: attempt(headers, retry_prefix),
        redelivered: delivery.redelivered,
        exchange: get_str(headers, ORIGINAL_EXCHANGE)
            .unwrap_or_else(|| delivery.exchange.as_str().to_owned()),
        routing_key: get_str(headers, ORIGINAL_ROUTING_KEY)
            .unwrap_or_else(|| delivery.routing_key.as_str().to_owned()),
        partition_key: get_str(headers, PARTITION_KEY_HEADER),
        queue: queue.to_owned(),
        history: history(headers),
    })
}

/// Headers for re-routing a delivery (to a retry tier or the parking queue): everything it
/// had, plus where it first came from and the history with `record` appended.
pub(crate) fn rerouted_headers(
    delivery: &lapin::message::Delivery,
    record: &AttemptRecord,
) -> FieldTable {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    if !headers.contains_key(ORIGINAL_EXCHANGE) {
        put_str(&mut headers, ORIGINAL_EXCHANGE, delivery.exchange.as_str());
        put_str(
            &mut headers,
            ORIGINAL_ROUTING_KEY,
            delivery.routing_key.as_str(),
        );
    }
    let mut records = history(&headers);
    records.push(record.clone());
    set_history(&mut headers, &records);
    headers
}

/// Headers with our bookkeeping and the broker's `x-death` removed, for a replay that starts
/// the attempt count afresh.
pub(crate) fn strip_for_replay(headers: &FieldTable) -> FieldTable {
    let mut fresh = FieldTable::default();
    for (key, value) in headers {
        let k = key.as_str();
        let drop = matches!(
            k,
            X_DEATH | HISTORY | PARKED_REASON | PARKED_AT | PARKED_FROM | ATTEMPTS
        ) || k.starts_with("x-first-death")
            || k.starts_with("x-last-death")
            || k == DELIVERY_COUNT
            || k == ACQUIRED_COUNT
            || k == REFRESHED_BY
            || k == REPLAYED_BY;
        if !drop {
            fresh.insert(key.clone(), value.clone());
        }
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    fn death(queue: &str, reason: &str, count: i64) -> AMQPValue {
        let mut t = FieldTable::default();
        put_str(&mut t, "queue", queue);
        put_str(&mut t, "reason", reason);
        t.insert("count".into(), AMQPValue::LongLongInt(count));
        AMQPValue::FieldTable(t)
    }

    #[test]
    fn attempts_come_from_retry_tier_expiries_only() {
        let mut h = FieldTable::default();
        h.insert(
            X_DEATH.into(),
            AMQPValue::FieldArray(
                vec![
                    death("p.w.retry.1s", "expired", 2),
                    death("p.w.retry.5s", "expired", 1),
                    death("p.w", "delivery_limit", 1),
                    death("p.other.retry.1s", "expired", 7),
                ]
                .into(),
            ),
        );
        assert_eq!(attempt(&h, "p.w.retry"), 4);
        assert_eq!(attempt(&FieldTable::default(), "p.w.retry"), 1);
    }

    #[test]
    fn history_round_trips() {
        let records = vec![AttemptRecord {
            attempt: 1,
            at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
            outcome: AttemptOutcome::Retry,
            reason: "ORCID 503".into(),
            delay_ms: 5000,
        }];
        let mut h = FieldTable::default();
        set_history(&mut h, &records);
        assert_eq!(history(&h), records);
        // The history alone counts too (a broker that drops client-set x-death).
        assert_eq!(attempt(&h, "p.w.retry"), 2);
    }

    #[test]
    fn short_strings_are_cut_at_char_boundaries() {
        let long = "é".repeat(200);
        assert!(short(&long).as_str().len() <= 255);
    }

    #[test]
    fn a_replay_drops_bookkeeping_counts_and_markers_and_keeps_the_rest() {
        let mut h = FieldTable::default();
        for key in [
            PARKED_REASON,
            PARKED_AT,
            PARKED_FROM,
            REFRESHED_BY,
            REPLAYED_BY,
            HISTORY,
            "x-first-death-queue",
            "x-last-death-reason",
        ] {
            put_str(&mut h, key, "x");
        }
        h.insert(X_DEATH.into(), death("p.w", "rejected", 1));
        h.insert(DELIVERY_COUNT.into(), AMQPValue::LongLongInt(7));
        h.insert(ACQUIRED_COUNT.into(), AMQPValue::LongLongInt(9));
        h.insert(ATTEMPTS.into(), AMQPValue::LongLongInt(3));
        let kept = [
            TRACEPARENT,
            ORIGINAL_EXCHANGE,
            ORIGINAL_ROUTING_KEY,
            PARTITION_KEY_HEADER,
        ];
        for key in kept {
            put_str(&mut h, key, "kept");
        }
        let fresh = strip_for_replay(&h);
        let mut keys: Vec<&str> = fresh.inner().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        let mut expected = kept.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }
}
