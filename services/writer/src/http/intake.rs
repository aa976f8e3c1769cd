//! `POST /api/v1/hr-events`: HR events over HTTPS. Each event is checked against the
//! `hr-event` v1 schema and parsed into an [`HrEvent`] (and [`CheckedHrEvent`], the same
//! checks the writer applies), so a bad field is named at once instead of being parked
//! later. Good events are stored durably before the answer: all of a request's events are
//! recorded in the writer's outbox in one transaction, as the messages an AMQP publisher
//! would send (exchange `hr`, routing key `hr.<event_type>`, partition key = person id);
//! the relay publishes them and the writer consumes them like any other HR event.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bus::events::HrEvent;
use bus::outbox::Outbox;
use bus::{OutgoingMessage, TraceContext};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use crate::api::{EventResult, EventStatus, FieldError, IntakeResponse, Right};
use crate::desired::{CheckedHrEvent, InvalidEvent};

/// What the intake needs: where to store, whom to wake, the limits.
pub(crate) struct Intake {
    pub(crate) db: DatabaseConnection,
    pub(crate) outbox: Outbox,
    pub(crate) relay: Option<Arc<Notify>>,
    pub(crate) max_batch: usize,
    pub(crate) max_body_bytes: usize,
}

/// `POST /api/v1/hr-events`.
pub(super) async fn post_hr_events(
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    intake: web::Data<Intake>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::HrEventsWrite)?;
    require_json(&req)?;
    let body = read_body(&req, payload, intake.max_body_bytes).await?;
    let submitted = parse_submission(&body, intake.max_batch)?;
    // The request span's context (a child of the caller's `traceparent`) when traces are
    // exported; otherwise the caller's header travels on as it came.
    let current = TraceContext::current();
    let trace = if current.is_empty() {
        TraceContext::from_headers(
            header_str(&req, "traceparent"),
            header_str(&req, "tracestate"),
        )
    } else {
        current
    };

    let mut results = Vec::with_capacity(submitted.len());
    let mut messages = Vec::new();
    for (index, value) in submitted.iter().enumerate() {
        match check_event(value) {
            Ok(event) => {
                let message = event
                    .to_message(trace.clone())
                    .map_err(|e| ApiError::internal(&e))?;
                results.push(EventResult {
                    index,
                    status: EventStatus::Accepted,
                    event_id: Some(event.event.event_id.clone()),
                    message_id: Some(message.envelope.message_id),
                    errors: Vec::new(),
                });
                messages.push(message);
            }
            Err(errors) => results.push(EventResult {
                index,
                status: EventStatus::Rejected,
                event_id: submitted_event_id(value),
                message_id: None,
                errors,
            }),
        }
    }
    let accepted = messages.len();
    let rejected = results.len() - accepted;
    if !messages.is_empty() {
        store(&intake, &messages).await?;
        if let Some(relay) = &intake.relay {
            relay.notify_one();
        }
    }
    tracing::info!(caller = %caller.name, accepted, rejected, "HR events received");
    let response = IntakeResponse {
        results,
        accepted,
        rejected,
    };
    Ok(if accepted == 0 {
        HttpResponse::UnprocessableEntity().json(response)
    } else {
        HttpResponse::Accepted().json(response)
    })
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let content_type = header_str(req, header::CONTENT_TYPE.as_str()).unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "the body must be JSON: send `Content-Type: application/json` (got {})",
            if content_type.is_empty() {
                "no Content-Type".to_owned()
            } else {
                format!("{content_type:?}")
            }
        )))
    }
}

async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::TooLarge(format!(
            "the body is larger than {limit} bytes (writer.http.max_body_bytes); split the batch into smaller requests"
        ))
    };
    let declared =
        header_str(req, header::CONTENT_LENGTH.as_str()).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.map_or(8 * 1024, |n| n as usize));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The events of a request body: one event (an object), or `{"events": [ … ]}`.
pub(crate) fn parse_submission(body: &[u8], max_batch: usize) -> Result<Vec<Value>, ApiError> {
    const SHAPE: &str = "send one HR event (a JSON object) or a batch {\"events\": [event, …]}";
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON ({e}); {SHAPE}")))?;
    let Value::Object(mut object) = value else {
        return Err(ApiError::BadRequest(format!(
            "the body is JSON but not an object; {SHAPE}"
        )));
    };
    let Some(events) = object.remove("events") else {
        return Ok(vec![Value::Object(object)]);
    };
    if let Some(other) = object.keys().next() {
        return Err(ApiError::BadRequest(format!(
            "a batch has only the member `events`; remove `{other}`"
        )));
    }
    let Value::Array(events) = events else {
        return Err(ApiError::BadRequest(format!(
            "`events` is not an array; {SHAPE}"
        )));
    };
    if events.is_empty() {
        return Err(ApiError::BadRequest(
            "`events` is empty; send at least one event".to_owned(),
        ));
    }
    if events.len() > max_batch {
        return Err(ApiError::TooLarge(format!(
            "{} events in one request, at most {max_batch} (writer.http.max_batch); split the batch",
            events.len()
        )));
    }
    Ok(events)
}

/// The parts of a submitted envelope the stored message keeps.
#[derive(Deserialize)]
struct SubmittedEnvelope {
    message_id: Uuid,
    occurred_at: DateTime<Utc>,
    correlation_id: Uuid,
}

/// A checked event, ready to be stored.
pub(crate) struct GoodEvent {
    event: HrEvent,
    envelope: Option<SubmittedEnvelope>,
}

impl GoodEvent {
    /// The message an AMQP publisher would send: exchange `hr`, routing key
    /// `hr.<event_type>`, partition key = person id, a new message id; from a submitted
    /// envelope its `occurred_at` and `correlation_id` (causation = its `message_id`),
    /// otherwise `occurred_at` = the event's.
    fn to_message(&self, trace: TraceContext) -> Result<OutgoingMessage, bus::BusError> {
        let submitted = self.envelope.as_ref();
        let occurred_at = submitted.map_or(self.event.occurred_at, |e| e.occurred_at);
        Ok(
            OutgoingMessage::event(&self.event)?.with_envelope(|envelope| {
                let mut envelope = envelope.occurred_at(occurred_at).with_trace(trace);
                if let Some(submitted) = submitted {
                    envelope.correlation_id = submitted.correlation_id;
                    envelope.causation_id = Some(submitted.message_id);
                }
                envelope
            }),
        )
    }
}

/// Checks one submitted event: a bare `hr-event` v1, or an envelope around one. Every bad
/// field is named, as a JSON Pointer into what was submitted.
pub(crate) fn check_event(value: &Value) -> Result<GoodEvent, Vec<FieldError>> {
    let is_envelope = value.as_object().is_some_and(|o| {
        ["payload", "type", "schema_version", "message_id"]
            .iter()
            .any(|k| o.contains_key(*k))
    });
    if !is_envelope {
        return check_payload(value, "").map(|event| GoodEvent {
            event,
            envelope: None,
        });
    }
    if let Err(e) = bus::schemas::validate(
        bus::schemas::ENVELOPE.name,
        bus::schemas::ENVELOPE.version,
        value,
    ) {
        return Err(schema_errors(e, ""));
    }
    let message_type = value.get("type").and_then(Value::as_str).unwrap_or("");
    let version = value.get("schema_version").and_then(Value::as_u64);
    if message_type != "hr-event" || version != Some(1) {
        return Err(vec![FieldError {
            field: "/type".to_owned(),
            message: format!(
                "this endpoint takes hr-event version 1 (got {message_type:?} version {}); set \"type\": \"hr-event\", \"schema_version\": 1",
                version.map_or("none".to_owned(), |v| v.to_string())
            ),
        }]);
    }
    let envelope: SubmittedEnvelope = serde_json::from_value(value.clone()).map_err(|e| {
        vec![FieldError {
            field: String::new(),
            message: format!("the envelope cannot be read: {e}"),
        }]
    })?;
    let payload = value.get("payload").unwrap_or(&Value::Null);
    check_payload(payload, "/payload").map(|event| GoodEvent {
        event,
        envelope: Some(envelope),
    })
}

fn check_payload(value: &Value, prefix: &str) -> Result<HrEvent, Vec<FieldError>> {
    if let Err(e) = bus::schemas::validate("hr-event", 1, value) {
        return Err(schema_errors(e, prefix));
    }
    let event: HrEvent = serde_json::from_value(value.clone()).map_err(|e| {
        vec![FieldError {
            field: prefix.to_owned(),
            message: format!("the event cannot be read: {e}"),
        }]
    })?;
    match CheckedHrEvent::check(&event) {
        Ok(_) => Ok(event),
        Err(e) => Err(vec![FieldError {
            field: format!("{prefix}{}", invalid_field(&e)),
            message: e.to_string(),
        }]),
    }
}

/// The JSON Pointer of the field an [`InvalidEvent`] is about.
fn invalid_field(error: &InvalidEvent) -> String {
    let dotted = match error {
        InvalidEvent::Empty(field) | InvalidEvent::Date { field, .. } => (*field).to_owned(),
        InvalidEvent::EndBeforeStart { .. }
        | InvalidEvent::EndWithoutStart { .. }
        | InvalidEvent::LeaveWithoutEnd => "position.end_date".to_owned(),
        InvalidEvent::Organization(_) => "position.organization".to_owned(),
        InvalidEvent::ExternalId { field, index, .. } => format!("{field}.{index}"),
        InvalidEvent::WorkType(_) => "work.type".to_owned(),
    };
    format!("/{}", dotted.replace('.', "/"))
}

/// Schema violations as field errors (`/path: message` from [`bus::schemas`]).
fn schema_errors(error: bus::schemas::SchemaError, prefix: &str) -> Vec<FieldError> {
    let bus::schemas::SchemaError::Invalid { errors, .. } = error else {
        return vec![FieldError {
            field: prefix.to_owned(),
            message: error.to_string(),
        }];
    };
    errors
        .iter()
        .map(|line| {
            let (path, message) = line.split_once(": ").unwrap_or(("", line.as_str()));
            let mut field = format!("{prefix}{path}");
            let mut message = message.to_owned();
            if let Some(name) = message
                .strip_suffix(" is a required property")
                .map(|n| n.trim_matches('"').to_owned())
            {
                field = format!("{field}/{name}");
                message = "is required".to_owned();
            } else if field.ends_with("_date") && message.contains(" does not match ") {
                message = format!(
                    "is not an ORCID date: write YYYY, YYYY-MM or YYYY-MM-DD ({})",
                    message.split(" does not match ").next().unwrap_or("")
                );
            }
            FieldError { field, message }
        })
        .collect()
}

fn submitted_event_id(value: &Value) -> Option<String> {
    value
        .get("event_id")
        .or_else(|| value.get("payload").and_then(|p| p.get("event_id")))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

async fn store(intake: &Intake, messages: &[OutgoingMessage]) -> Result<(), ApiError> {
    let txn = intake
        .db
        .begin()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    for message in messages {
        intake
            .outbox
            .record(&txn, message)
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    txn.commit().await.map_err(|e| ApiError::internal(&e))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hire() -> Value {
        json!({
            "event_id": "e-1",
            "event_type": "hire",
            "occurred_at": "2026-12-01T08:00:00Z",
            "person": {"person_id": "P-1"},
            "position": {"position_id": "POS-1", "start_date": "2026-12-01"},
        })
    }

    fn fields(value: &Value) -> Vec<String> {
        match check_event(value) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn a_good_event_becomes_the_message_an_amqp_publisher_sends() {
        let good = check_event(&hire()).unwrap();
        let message = good.to_message(TraceContext::default()).unwrap();
        assert_eq!(message.exchange, "hr");
        assert_eq!(message.routing_key, "hr.hire");
        assert_eq!(message.partition_key.as_deref(), Some("P-1"));
        assert_eq!(message.envelope.message_type, "hr-event");
        assert_eq!(
            message.envelope.occurred_at.to_rfc3339(),
            "2026-12-01T08:00:00+00:00"
        );
        bus::schemas::validate_message(
            &serde_json::from_slice(&message.envelope.to_json().unwrap()).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        let mut bad = hire();
        bad["position"]["start_date"] = json!("2026-13-01");
        assert_eq!(fields(&bad), ["/position/start_date"]);

        let mut bad = hire();
        bad["position"]["start_date"] = json!("2026-02-30");
        assert_eq!(fields(&bad), ["/position/start_date"]);

        let mut bad = hire();
        bad["position"]["end_date"] = json!("2026-01-01");
        assert_eq!(fields(&bad), ["/position/end_date"]);

        let mut bad = hire();
        bad["event_type"] = json!("leave");
        assert_eq!(fields(&bad), ["/position/end_date"]);

        let mut bad = hire();
        bad.as_object_mut().unwrap().remove("event_id");
        bad["position"]["section"] = json!("sabbatical");
        let mut found = fields(&bad);
        found.sort();
        assert_eq!(found, ["/event_id", "/position/section"]);
    }

    #[test]
    fn envelopes_are_checked_too() {
        let envelope = json!({
            "message_id": Uuid::now_v7(),
            "type": "hr-event",
            "schema_version": 1,
            "occurred_at": "2026-12-01T08:00:01Z",
            "correlation_id": Uuid::now_v7(),
            "payload": hire(),
        });
        let good = check_event(&envelope).unwrap();
        let message = good.to_message(TraceContext::default()).unwrap();
        assert_ne!(
            message.envelope.message_id.to_string(),
            envelope["message_id"].as_str().unwrap()
        );
        assert_eq!(
            message.envelope.correlation_id.to_string(),
            envelope["correlation_id"].as_str().unwrap()
        );

        let mut bad = envelope.clone();
        bad["payload"]["position"]["start_date"] = json!("soon");
        assert_eq!(fields(&bad), ["/payload/position/start_date"]);
        let mut bad = envelope;
        bad["type"] = json!("work-event");
        assert_eq!(fields(&bad), ["/type"]);
    }

    #[test]
    fn batches_have_a_shape_and_a_cap() {
        assert_eq!(
            parse_submission(br#"{"events":[{},{}]}"#, 2).unwrap().len(),
            2
        );
        assert_eq!(
            parse_submission(br#"{"event_id":"x"}"#, 2).unwrap().len(),
            1
        );
        assert!(matches!(
            parse_submission(br#"{"events":[{},{},{}]}"#, 2),
            Err(ApiError::TooLarge(_))
        ));
        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"events\":[]}",
            b"{\"events\":{}}",
            b"{\"events\":[],\"x\":1}",
        ] {
            assert!(
                matches!(parse_submission(bad, 2), Err(ApiError::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
