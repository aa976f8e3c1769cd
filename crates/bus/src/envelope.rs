//! The envelope every message travels in.
//!
//! On the wire the AMQP body is the envelope as JSON (`proto/schemas/envelope.v1.schema.json`);
//! the W3C trace context travels beside it in the AMQP headers `traceparent` and `tracestate`
//! so that tracing tools can read it without parsing the body.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{BusError, events::Event};

/// One message: identity, type, causality and a JSON payload.
/// Unknown fields are ignored when reading (tolerant reader); the schema is strict for
/// producers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id of this message (UUIDv7, so ids sort by creation time). Inboxes key on it.
    pub message_id: Uuid,
    /// What the payload is, e.g. `hr-event` (see [`crate::events`]).
    #[serde(rename = "type")]
    pub message_type: String,
    /// Version of the payload's schema; a breaking change gets a new version.
    pub schema_version: u32,
    /// When the fact the message reports happened (not when it was sent).
    pub occurred_at: DateTime<Utc>,
    /// Shared by every message descending from one origin (a click, an HR event).
    pub correlation_id: Uuid,
    /// The message that caused this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// W3C trace context; carried in AMQP headers, not in the JSON body.
    #[serde(skip)]
    pub trace: TraceContext,
    /// The event itself, valid against the schema for `type` and `schema_version`.
    pub payload: serde_json::Value,
}

impl Envelope {
    /// Wraps an event in a new envelope: fresh UUIDv7 id, correlation id = its own id,
    /// occurred now, the trace context of the current span ([`TraceContext::current`]).
    ///
    /// # Errors
    /// [`BusError::Json`] when the event does not serialise.
    pub fn new<E: Event>(event: &E) -> Result<Self, BusError> {
        let message_id = Uuid::now_v7();
        Ok(Self {
            message_id,
            message_type: E::TYPE.to_owned(),
            schema_version: E::VERSION,
            occurred_at: Utc::now(),
            correlation_id: message_id,
            causation_id: None,
            trace: TraceContext::current(),
            payload: serde_json::to_value(event)?,
        })
    }

    /// Wraps a payload that has no Rust type here (bridges, tests); the trace context is
    /// the current span's.
    #[must_use]
    pub fn raw(message_type: &str, schema_version: u32, payload: serde_json::Value) -> Self {
        let message_id = Uuid::now_v7();
        Self {
            message_id,
            message_type: message_type.to_owned(),
            schema_version,
            occurred_at: Utc::now(),
            correlation_id: message_id,
            causation_id: None,
            trace: TraceContext::current(),
            payload,
        }
    }

    /// Marks this message as caused by `parent`: same correlation id, causation id = the
    /// parent's message id. It stays in the parent's trace: its own context when it has one
    /// (made inside the handler's span, a descendant of the parent's), else the parent's.
    #[must_use]
    pub fn caused_by(mut self, parent: &Envelope) -> Self {
        self.correlation_id = parent.correlation_id;
        self.causation_id = Some(parent.message_id);
        if self.trace.is_empty() {
            self.trace = parent.trace.clone();
        }
        self
    }

    /// Sets when the reported fact happened.
    #[must_use]
    pub fn occurred_at(mut self, at: DateTime<Utc>) -> Self {
        self.occurred_at = at;
        self
    }

    /// Attaches a W3C trace context.
    #[must_use]
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = trace;
        self
    }

    /// Reads the payload as event `E`, checking type and version first.
    ///
    /// # Errors
    /// [`BusError::WrongType`] for another type or version, [`BusError::Json`] when the payload
    /// does not match `E`.
    pub fn payload<E: Event>(&self) -> Result<E, BusError> {
        if self.message_type != E::TYPE || self.schema_version != E::VERSION {
            return Err(BusError::WrongType {
                expected: format!("{}@{}", E::TYPE, E::VERSION),
                actual: format!("{}@{}", self.message_type, self.schema_version),
            });
        }
        Ok(E::deserialize(&self.payload)?)
    }

    /// The JSON body sent on the wire.
    ///
    /// # Errors
    /// [`BusError::Json`] (only for payloads serde cannot write, which `Value` never is).
    pub fn to_json(&self) -> Result<Vec<u8>, BusError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Parses a wire body; the trace context comes from the transport's headers.
    ///
    /// # Errors
    /// [`BusError::Json`] with serde's description of what is wrong.
    pub fn from_json(body: &[u8], trace: TraceContext) -> Result<Self, BusError> {
        let mut envelope: Envelope = serde_json::from_slice(body)?;
        envelope.trace = trace;
        Ok(envelope)
    }
}

/// W3C Trace Context (<https://www.w3.org/TR/trace-context/>) as carried in AMQP headers.
///
/// Kept as strings; [`TraceContext::current`] fills one from the current span and the
/// consumer makes it the parent of its span (the crate's `observe` module).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// `traceparent`, e.g. `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
    pub traceparent: Option<String>,
    /// `tracestate`, vendor-specific key/value list.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// Builds a context from header values, dropping a `traceparent` that is not well formed
    /// (a broken header from another system must not fail the message) and a `tracestate`
    /// without a `traceparent` (the spec says to ignore it then).
    #[must_use]
    pub fn from_headers(traceparent: Option<&str>, tracestate: Option<&str>) -> Self {
        let traceparent = traceparent
            .filter(|t| is_valid_traceparent(t))
            .map(str::to_owned);
        let tracestate = tracestate
            .filter(|_| traceparent.is_some())
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Self {
            traceparent,
            tracestate,
        }
    }
}

/// `version-traceid-parentid-flags`, lowercase hex, ids not all zero, version not `ff`.
fn is_valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let [version, trace_id, parent_id, flags, ..] = parts.as_slice() else {
        return false;
    };
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    hex(version, 2)
        && *version != "ff"
        && (parts.len() == 4 || *version != "00")
        && hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && hex(flags, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_checked() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            TraceContext::from_headers(Some(good), Some("k=v"))
                .traceparent
                .as_deref(),
            Some(good)
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let ctx = TraceContext::from_headers(Some(bad), Some("k=v"));
            assert_eq!(ctx, TraceContext::default(), "{bad:?} was accepted");
        }
    }
}
