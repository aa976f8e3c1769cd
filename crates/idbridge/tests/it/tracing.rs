//! One trace from an HR system's HTTP call to the ORCID write: the writer (its HTTP intake,
//! outbox relay, RabbitMQ consumer and ORCID client) runs in this process against real
//! PostgreSQL, RabbitMQ and orcid-sim, with `telemetry::init_for_tests_with_exporter`
//! sending every span to OpenTelemetry's in-memory exporter. The HR system's call carries
//! a `traceparent`; the test then follows the parent links:
//!
//! `test.hr-system` → `POST /api/v1/hr-events` (server) → `bus.publish` (producer, by the
//! outbox relay) → `bus.handle` (consumer) → … → `orcid.request` (client, POST employment).
//!
//! The subscriber is process-wide (actix serves on threads of its own), so this test wants a
//! process of its own, as nextest gives every test; under `cargo test` it fails loudly if
//! another test installed a subscriber first.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::events::{HrEvent, HrEventType, Person, PersonNames, Position};
use idbridge_platform::config::Sources;
use idbridge_platform::telemetry;
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use orcid::OrcidId;
use orcid::client::{AccessToken, ClientConfig, OrcidClient};
use serde_json::json;
use tracing::Instrument as _;
use writer::config::{DEFAULTS, WriterConfig};
use writer::ledger::ItemState;
use writer::tokens::{PersonToken, TokenError, TokenSource};
use writer::{Application, Dependencies};

use crate::helpers::*;

const CLIENT_ID: &str = "APP-IDBRIDGETRACE001";
const CLIENT_SECRET: &str = "idbridge-trace-test-secret";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const HR_TOKEN: &str = "test-trace-hr-token";
const ROR_ID: &str = "https://ror.org/05qwgg493";

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Drops a test's database and deletes its broker objects when the test ends, passed or
/// failed (a failed assertion unwinds through it). Runs on a thread of its own with a
/// runtime of its own, since `Drop` cannot await.
pub(crate) struct Cleanup {
    pub db_name: String,
    pub prefix: String,
    pub topologies: Vec<bus::Topology>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let db_name = std::mem::take(&mut self.db_name);
        let prefix = std::mem::take(&mut self.prefix);
        let topologies = std::mem::take(&mut self.topologies);
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if !topologies.is_empty()
                    && let Ok(Ok(bus)) = tokio::time::timeout(
                        Duration::from_secs(10),
                        bus::Bus::amqp(bus::AmqpConfig::new(&amqp_url()), &prefix),
                    )
                    .await
                {
                    for topology in &topologies {
                        let _ = bus.delete(topology).await;
                    }
                    bus.close().await;
                }
                if !db_name.is_empty() {
                    drop_database(&db_name).await;
                }
            });
        })
        .join();
    }
}

/// One connected person, with a real token from the simulator's OAuth.
struct OneToken(PersonToken);

impl TokenSource for OneToken {
    fn token<'a>(&'a self, person_id: &'a str) -> BoxFuture<'a, Result<PersonToken, TokenError>> {
        Box::pin(async move {
            if person_id == "P-TRACE" {
                Ok(self.0.clone())
            } else {
                Err(TokenError::NotConnected)
            }
        })
    }

    fn mark_revoked<'a>(
        &'a self,
        _person_id: &'a str,
        _token: &'a PersonToken,
        _reason: &'a str,
    ) -> BoxFuture<'a, Result<(), TokenError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A researcher on the simulator who authorised the client; their iD and token.
async fn connected_researcher(sim: &orcid_sim::SimHandle) -> (OrcidId, AccessToken) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let user: serde_json::Value = http
        .post(format!("{}/_sim/users", sim.base_url()))
        .json(&json!({"given-names": "Josiah", "family-name": "Carberry",
            "email": format!("jc-{}@mailinator.com", uuid::Uuid::new_v4().simple()),
            "password": "test-user-password"}))
        .send()
        .await
        .expect("POST /_sim/users")
        .json()
        .await
        .expect("JSON");
    let orcid = OrcidId::parse(user["orcid"].as_str().expect("an iD")).expect("valid iD");
    let answer = http
        .get(format!("{}/oauth/authorize", sim.base_url()))
        .query(&[
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("scope", "/read-limited /activities/update"),
            ("redirect_uri", REDIRECT_URI),
            ("sim_user", &orcid.to_string()),
            ("sim_decision", "authorize"),
        ])
        .send()
        .await
        .expect("GET /oauth/authorize");
    assert_eq!(answer.status(), 302, "headless authorize");
    let location = answer.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let code = url::Url::parse(&location)
        .expect("absolute")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let client = OrcidClient::new(
        ClientConfig::custom(sim.base_url(), CLIENT_ID, CLIENT_SECRET.to_owned().into())
            .expect("loopback URL"),
    )
    .expect("client");
    let tokens = client
        .exchange_code(&code, REDIRECT_URI)
        .await
        .expect("code exchange");
    (orcid, tokens.access_token)
}

fn writer_config(sim_url: &str, db_url: &str, prefix: &str) -> WriterConfig {
    let mut config = WriterConfig::from_sources(
        &Sources::new(DEFAULTS)
            .set("database.url", db_url)
            .and_then(|s| s.set("bus.prefix", prefix))
            .and_then(|s| s.set("orcid.registry", sim_url))
            .and_then(|s| s.set("orcid.client_id", CLIENT_ID))
            .and_then(|s| s.set("orcid.client_secret", CLIENT_SECRET))
            .and_then(|s| s.set("institution.name", "Boston University"))
            .and_then(|s| s.set("institution.city", "Boston"))
            .and_then(|s| s.set("institution.country", "US"))
            .and_then(|s| s.set("institution.disambiguated_id", ROR_ID))
            .and_then(|s| s.set("writer.partitions", 2))
            .and_then(|s| s.set("writer.http.listen", "127.0.0.1:0"))
            .expect("overrides"),
    )
    .expect("valid configuration");
    config.writer.http.callers = serde_json::from_value(json!([
        {"name": "hr-system", "token_sha256": writer::api::token_sha256_hex(HR_TOKEN),
         "rights": ["hr-events:write"]},
    ]))
    .expect("callers");
    config
}

fn hire() -> HrEvent {
    HrEvent {
        event_id: format!("hr-{}", uuid::Uuid::new_v4().simple()),
        event_type: HrEventType::Hire,
        occurred_at: chrono::Utc::now(),
        person: Person {
            person_id: "P-TRACE".to_owned(),
            names: Some(PersonNames {
                given_names: Some("Josiah".to_owned()),
                family_name: Some("Carberry".to_owned()),
            }),
            email: None,
        },
        position: Position {
            position_id: "POS-TRACE".to_owned(),
            section: bus::events::AffiliationSection::Employment,
            department: Some("Psychoceramics".to_owned()),
            role_title: Some("Professor".to_owned()),
            start_date: Some(bus::events::PartialDate::parse("2026-01-15").expect("date")),
            end_date: None,
            organization: None,
            url: None,
            external_ids: Vec::new(),
        },
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// The chain of span names from `span` up to the root of what was exported.
fn ancestry<'a>(span: &'a SpanData, by_id: &HashMap<SpanId, &'a SpanData>) -> Vec<&'a SpanData> {
    let mut chain = vec![span];
    let mut current = span;
    while let Some(parent) = by_id.get(&current.parent_span_id) {
        chain.push(parent);
        current = parent;
    }
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hr_event_is_one_trace_from_the_http_call_to_the_orcid_write() {
    let exporter = InMemorySpanExporter::default();
    let guard = telemetry::init_for_tests_with_exporter("idbridge-writer", exporter.clone());
    assert!(
        guard.exports_spans(),
        "another test installed the tracing subscriber first: run this test in a process of its own (cargo nextest)"
    );
    // The Prometheus recorder too, to see the ORCID client's and the bus's metrics.
    let metrics = idbridge_platform::metrics::install().expect("the metrics recorder");

    let sim = orcid_sim::spawn(orcid_sim::SimConfig::for_tests().with_client(
        CLIENT_ID,
        CLIENT_SECRET,
        REDIRECT_URI,
    ))
    .await
    .expect("simulator");
    let (orcid, token) = connected_researcher(&sim).await;
    let (db_url, db_name) = create_database().await;
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let config = writer_config(sim.base_url(), &db_url, &prefix);
    let cleanup = Cleanup {
        db_name,
        prefix: prefix.clone(),
        topologies: vec![writer::topology(&writer::service_spec(&config))],
    };
    let app = Application::build_with(
        config.clone(),
        Dependencies {
            bus: Some(bus.clone()),
            tokens: Some(Arc::new(OneToken(PersonToken {
                orcid,
                access_token: token.clone(),
                generation: Some(1),
            }))),
            ..Dependencies::default()
        },
    )
    .await
    .expect("the writer starts");
    let port = app.http_port().expect("the HTTP API is on");

    // The HR system's call, in a span of its own, carrying its traceparent.
    let hr_system = tracing::info_span!("test.hr-system");
    let event = hire();
    let status = async {
        let mut request = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/v1/hr-events"))
            .bearer_auth(HR_TOKEN)
            .json(&event);
        let headers = telemetry::trace_headers();
        assert!(
            headers.iter().any(|(name, _)| *name == "traceparent"),
            "the test's span has a context to send: {headers:?}"
        );
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request
            .send()
            .await
            .expect("POST /api/v1/hr-events")
            .status()
    }
    .instrument(hr_system.clone())
    .await;
    assert_eq!(status, 202);
    drop(hr_system);

    // Written to ORCID (the ledger says so), then the ORCID call's span is exported.
    let end = Instant::now() + DEADLINE;
    let put_code = loop {
        let item = app
            .writer()
            .ledger()
            .item("P-TRACE", "POS-TRACE")
            .await
            .expect("ledger");
        if let Some(item) = item.filter(|i| i.state == ItemState::InOrcid) {
            break item
                .put_code
                .expect("a put code once in ORCID")
                .0
                .to_string();
        }
        assert!(
            Instant::now() < end,
            "the hire was not written to ORCID in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let spans = loop {
        let spans = exporter.get_finished_spans().expect("spans");
        let written = spans.iter().any(|s| {
            s.name == "orcid.request"
                && attribute(s, "endpoint").as_deref() == Some("employment")
                && attribute(s, "http.request.method").as_deref() == Some("POST")
        });
        let handled = spans.iter().any(|s| {
            s.name == "bus.handle" && attribute(s, "message_type").as_deref() == Some("hr-event")
        });
        if written && handled {
            break spans;
        }
        assert!(
            Instant::now() < end,
            "spans missing; exported: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let by_id: HashMap<SpanId, &SpanData> = spans
        .iter()
        .map(|s| (s.span_context.span_id(), s))
        .collect();
    let root = spans
        .iter()
        .find(|s| s.name == "test.hr-system")
        .expect("the HR system's span");
    let trace = root.span_context.trace_id();

    // The ORCID write's ancestry, nearest first.
    let write = spans
        .iter()
        .find(|s| {
            s.name == "orcid.request"
                && attribute(s, "endpoint").as_deref() == Some("employment")
                && attribute(s, "http.request.method").as_deref() == Some("POST")
        })
        .expect("the ORCID write");
    assert_eq!(write.span_kind, SpanKind::Client);
    assert_eq!(
        attribute(write, "http.response.status_code").as_deref(),
        Some("201")
    );
    let chain = ancestry(write, &by_id);
    let names: Vec<&str> = chain.iter().map(|s| s.name.as_ref()).collect();
    eprintln!("the ORCID write's ancestry: {names:?}");
    for span in &chain {
        assert_eq!(
            span.span_context.trace_id(),
            trace,
            "`{}` is not in the HR system's trace; chain {names:?}",
            span.name
        );
    }
    let at = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no `{name}` above the ORCID write: {names:?}"))
    };
    let (handle, publish, request, top) = (
        at("bus.handle"),
        at("bus.publish"),
        at("POST /api/v1/hr-events"),
        at("test.hr-system"),
    );
    assert!(
        handle < publish && publish == handle + 1 && request == publish + 1 && top == request + 1,
        "expected … → bus.handle → bus.publish → POST /api/v1/hr-events → test.hr-system: {names:?}"
    );
    assert_eq!(
        top,
        names.len() - 1,
        "the HR system's span is the root: {names:?}"
    );
    assert_eq!(chain[top].parent_span_id, SpanId::INVALID);
    // Across the two process boundaries the parent came from a header.
    assert!(chain[request].parent_span_is_remote, "HTTP traceparent");
    assert_eq!(chain[request].span_kind, SpanKind::Server);
    assert_eq!(
        attribute(chain[request], "http.route").as_deref(),
        Some("/api/v1/hr-events")
    );
    assert!(chain[handle].parent_span_is_remote, "AMQP traceparent");
    assert_eq!(chain[handle].span_kind, SpanKind::Consumer);
    assert_eq!(chain[publish].span_kind, SpanKind::Producer);
    assert_eq!(
        attribute(chain[handle], "outcome").as_deref(),
        Some("processed")
    );

    // Nothing exported names the person: no attribute or event of any span carries the
    // token, the iD, the person's or position's id or the put code (the writer's spans have
    // such fields for the logs; the exporter strips them and drops all events).
    let secret = token.expose_secret().to_owned();
    let forbidden = [
        ("the token", secret.as_str()),
        ("the iD", &orcid.to_string()),
        ("the person id", "P-TRACE"),
        ("the position id", "POS-TRACE"),
        ("the put code", put_code.as_str()),
    ]
    .map(|(what, value)| (what, value.to_owned()));
    let mut checked = 0;
    for span in &spans {
        let values = span
            .attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .chain(span.events.iter().flat_map(|event| {
                std::iter::once(("event".to_owned(), event.name.to_string())).chain(
                    event
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.to_string(), kv.value.to_string())),
                )
            }));
        for (key, value) in values {
            checked += 1;
            for (what, needle) in &forbidden {
                assert!(
                    !value.contains(needle.as_str()),
                    "`{}` carries {what} in {key}",
                    span.name
                );
            }
        }
        assert!(span.events.is_empty(), "`{}` exports events", span.name);
        for key in telemetry::REDACTED_ATTRIBUTES {
            assert!(
                attribute(span, key).is_none(),
                "`{}` exports {key}",
                span.name
            );
        }
    }
    assert!(checked > 0, "attributes were checked");

    // The same flow in the metrics (names and labels of docs/metrics.md).
    let rendered = metrics.render();
    for needle in [
        r#"idbridge_orcid_requests_total{endpoint="employment",method="POST",status="201"} 1"#,
        r#"idbridge_orcid_requests_total{endpoint="token",method="POST",status="200"} 1"#,
        r#"idbridge_orcid_request_duration_seconds_count{endpoint="employment",method="POST"} 1"#,
        r#"idbridge_bus_published_total{outcome="confirmed"}"#,
        "idbridge_bus_handle_duration_seconds_count{queue=",
    ] {
        assert!(
            rendered.contains(needle),
            "{needle} missing from:\n{rendered}"
        );
    }
    assert!(
        rendered
            .lines()
            .any(|l| l.starts_with("idbridge_bus_messages_total{")
                && l.contains(&prefix)
                && l.contains(r#"outcome="processed""#)),
        "{rendered}"
    );
    assert!(!rendered.contains(&orcid.to_string()), "no iD in a label");

    app.kill().await;
    bus.close().await;
    sim.stop().await;
    drop(cleanup);
    drop(guard);
}

// ---------------------------------------------------------------------------------------
// `idbridge serve` exporting over OTLP/HTTP to a receiver in the test

mod otlp {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message as _;

    /// One exported span, flattened.
    #[derive(Clone, Debug)]
    pub struct Span {
        pub service: String,
        pub name: String,
        pub trace_id: String,
        pub span_id: String,
        pub parent_span_id: String,
        pub kind: i32,
        pub attributes: Vec<(String, String)>,
        /// Each event's name and attribute values.
        pub events: Vec<Vec<String>>,
    }

    impl Span {
        pub fn attribute(&self, key: &str) -> Option<&str> {
            self.attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    /// A minimal OTLP/HTTP receiver: answers every `POST /v1/traces` with 200 and hands the
    /// decoded spans to the channel. Returns its port.
    pub fn receiver() -> (u16, mpsc::Receiver<Vec<Span>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let tx = tx.clone();
                std::thread::spawn(move || serve_connection(stream, &tx));
            }
        });
        (port, rx)
    }

    fn serve_connection(stream: std::net::TcpStream, tx: &mpsc::Sender<Vec<Span>>) {
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                return;
            }
            let mut length = 0usize;
            let mut content_type = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    match name.trim().to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        "content-type" => content_type = value.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            assert!(
                request_line.starts_with("POST /v1/traces "),
                "{request_line:?}"
            );
            assert_eq!(content_type, "application/x-protobuf");
            let request =
                ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
            let _ = tx.send(flatten(&request));
            let _ = writer.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
            );
        }
    }

    fn text(value: Option<&Value>) -> String {
        match value {
            Some(Value::StringValue(s)) => s.clone(),
            Some(Value::IntValue(n)) => n.to_string(),
            Some(Value::BoolValue(b)) => b.to_string(),
            Some(Value::DoubleValue(d)) => d.to_string(),
            _ => String::new(),
        }
    }

    fn flatten(request: &ExportTraceServiceRequest) -> Vec<Span> {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut spans = Vec::new();
        for resource_spans in &request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
                .unwrap_or_default();
            for scope in &resource_spans.scope_spans {
                for span in &scope.spans {
                    spans.push(Span {
                        service: service.clone(),
                        name: span.name.clone(),
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        kind: span.kind,
                        attributes: span
                            .attributes
                            .iter()
                            .map(|kv| {
                                (
                                    kv.key.clone(),
                                    text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                                )
                            })
                            .collect(),
                        events: span
                            .events
                            .iter()
                            .map(|event| {
                                std::iter::once(event.name.clone())
                                    .chain(event.attributes.iter().map(|kv| {
                                        text(kv.value.as_ref().and_then(|v| v.value.as_ref()))
                                    }))
                                    .collect()
                            })
                            .collect(),
                    });
                }
            }
        }
        spans
    }
}

/// `serve writer token-vault` with `OTEL_EXPORTER_OTLP_ENDPOINT` set: an HR system's call
/// with a `traceparent` becomes, in the spans the process exports, the parent of the
/// writer's request span, whose outbox message is published and handled in the same trace,
/// and whose call to the vault (over HTTP, in another actix server) is in it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_one_trace_over_otlp_across_http_and_the_broker() {
    let (otlp_port, exported) = otlp::receiver();
    let sim = orcid_sim::spawn(orcid_sim::SimConfig::for_tests().with_client(
        CLIENT_ID,
        CLIENT_SECRET,
        REDIRECT_URI,
    ))
    .await
    .expect("simulator");
    let (db_url, db_name) = create_database().await;
    let prefix = prefix();
    let dir = TempDir::new();
    let writer_port = free_port();
    let writer_token = "TEST_TRACE_WRITER_TOKEN_0001";
    let file = ServeConfig::new(&db_url, &prefix, sim.base_url(), CLIENT_ID, CLIENT_SECRET)
        .writer(writer_token, &format!("127.0.0.1:{writer_port}"))
        .table(&format!(
            r#"[[writer.http.callers]]
name = "hr-system"
token_sha256 = "{}"
rights = ["hr-events:write"]
"#,
            writer::api::token_sha256_hex(HR_TOKEN)
        ))
        .write(&dir);

    let mut command = serve_command(&["writer", "token-vault"], &file);
    command
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp_port}"),
        )
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        // Batches every 200 ms instead of 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    let config = WriterConfig::load(Some(&file)).expect("config");
    let cleanup = Cleanup {
        db_name,
        prefix: prefix.clone(),
        topologies: vec![
            writer::topology(&writer::service_spec(&config)),
            bus::Topology::new()
                .exchange(bus::events::exchanges::EVENTS)
                .service(token_vault::service_spec()),
        ],
    };
    let mut process = Running::spawn(command);
    tokio::task::block_in_place(|| process.wait_line("idbridge serving"));

    // The HR system's call: a person nobody connected, so the writer asks the vault and
    // keeps the item pending.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = "00f067aa0ba902b7";
    let status = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{writer_port}/api/v1/hr-events"))
        .bearer_auth(HR_TOKEN)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&hire())
        .send()
        .await
        .expect("POST /api/v1/hr-events")
        .status();
    assert_eq!(status, 202);

    // Collect what the process exports until the whole chain is there.
    let end = Instant::now() + DEADLINE;
    let mut spans: Vec<otlp::Span> = Vec::new();
    let chain = loop {
        while let Ok(batch) = exported.try_recv() {
            spans.extend(batch);
        }
        let in_trace: Vec<&otlp::Span> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
        let find = |pred: &dyn Fn(&otlp::Span) -> bool| in_trace.iter().copied().find(|s| pred(s));
        let request = find(&|s| s.name == "POST /api/v1/hr-events");
        let publish = request
            .and_then(|r| find(&|s| s.name == "bus.publish" && s.parent_span_id == r.span_id));
        let handle = publish
            .and_then(|p| find(&|s| s.name == "bus.handle" && s.parent_span_id == p.span_id));
        let vault = find(&|s| s.name == "GET /v1/tokens");
        if let (Some(request), Some(publish), Some(handle), Some(vault)) =
            (request, publish, handle, vault)
        {
            break (
                request.clone(),
                publish.clone(),
                handle.clone(),
                vault.clone(),
            );
        }
        assert!(
            Instant::now() < end,
            "the chain was not exported in time; spans of the trace: {:?}",
            in_trace
                .iter()
                .map(|s| (&s.name, &s.span_id, &s.parent_span_id))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (request, publish, handle, vault) = chain;
    assert_eq!(
        request.parent_span_id, caller_span,
        "the caller's traceparent is the parent"
    );
    assert_eq!(request.kind, 2, "server");
    assert_eq!(publish.kind, 4, "producer");
    assert_eq!(handle.kind, 5, "consumer");
    assert_eq!(handle.attribute("message_type"), Some("hr-event"));
    assert_eq!(request.service, "idbridge", "two services in one process");
    // The vault's request span (another HTTP server) is below the consumer's span: the
    // writer's client sent the traceparent.
    let by_id: HashMap<&str, &otlp::Span> = spans
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .map(|s| (s.span_id.as_str(), s))
        .collect();
    let mut ancestors = Vec::new();
    let mut current = &vault;
    while let Some(parent) = by_id.get(current.parent_span_id.as_str()) {
        ancestors.push(parent.name.clone());
        current = parent;
    }
    assert!(
        ancestors.iter().any(|n| n == "bus.handle"),
        "the vault's span descends from the writer's handling: {ancestors:?}"
    );
    assert_eq!(vault.attribute("http.route"), Some("/v1/tokens"));
    // Route patterns only, no token; and of no span (of any trace) an attribute or an event
    // that names the person or the position (the writer's and the vault's spans have such
    // fields for the logs; nothing of them is exported).
    while let Ok(batch) = exported.try_recv() {
        spans.extend(batch);
    }
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains(writer_token) && !value.contains(HR_TOKEN),
                "`{}` carries a token in {key}",
                span.name
            );
            assert!(
                !value.contains("P-TRACE") && !value.contains("POS-TRACE"),
                "`{}` names the person or position in {key}",
                span.name
            );
            assert!(
                !telemetry::REDACTED_ATTRIBUTES.contains(&key.as_str()),
                "`{}` exports {key}",
                span.name
            );
        }
        assert!(
            span.events.is_empty(),
            "`{}` exports events: {:?}",
            span.name,
            span.events
        );
    }

    process.signal("TERM");
    let status = tokio::task::block_in_place(|| process.wait_exit(Duration::from_secs(30)));
    assert_eq!(status.code(), Some(0), "{}", process.seen.join("\n"));

    sim.stop().await;
    drop(cleanup);
}
