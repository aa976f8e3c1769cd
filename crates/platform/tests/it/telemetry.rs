//! The telemetry bootstrap: JSON lines to a writer, idempotent installation, filter checks.

use std::io::Write;
use std::sync::{Arc, Mutex};

use idbridge_platform::config::{Problems, Validate};
use idbridge_platform::telemetry::{self, LogFormat, TelemetryConfig};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// One test owns the process-wide subscriber, so the assertions about installation are
// deterministic within this test binary.
#[test]
fn json_to_a_writer_once_then_idempotent() {
    let buffer = Buffer::default();
    let config = TelemetryConfig {
        format: LogFormat::Json,
        filter: "info".to_owned(),
        ..TelemetryConfig::default()
    };
    let guard = telemetry::init_with_writer(&config, buffer.clone()).unwrap();
    assert!(guard.installed_here());

    tracing::info_span!("request", route = "/v1/x").in_scope(|| {
        tracing::info!(answer = 42, "hello from the test");
    });
    tracing::debug!("filtered out");

    let again = telemetry::init(&config).unwrap();
    assert!(!again.installed_here(), "second init is a no-op");
    let test_init = telemetry::init_for_tests();
    assert!(!test_init.installed_here());

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("hello from the test"))
        .unwrap_or_else(|| panic!("no line in {text}"));
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(json["answer"], 42);
    assert_eq!(json["level"], "INFO");
    assert_eq!(json["span"]["route"], "/v1/x");
    assert!(!text.contains("filtered out"));
}

#[test]
fn an_invalid_filter_is_a_configuration_problem() {
    let config = TelemetryConfig {
        format: LogFormat::Auto,
        filter: "info,=[".to_owned(),
        ..TelemetryConfig::default()
    };
    let mut problems = Problems::default();
    config.validate(&mut problems);
    assert_eq!(problems.as_slice()[0].key, "telemetry.filter");
}

#[test]
fn otlp_settings_parse_and_bad_ones_are_named() {
    let config: TelemetryConfig = serde_json::from_value(serde_json::json!({
        "otlp_endpoint": "http://otel-collector:4318",
        "sampling_ratio": 0.25,
        "service_name": "idbridge-writer-eu",
    }))
    .unwrap();
    assert_eq!(
        config.otlp_endpoint.as_deref(),
        Some("http://otel-collector:4318")
    );
    assert!((config.sampling_ratio - 0.25).abs() < f64::EPSILON);
    let mut problems = Problems::default();
    config.validate(&mut problems);
    assert!(problems.is_empty());

    // Defaults: no endpoint (no OpenTelemetry), keep every trace.
    let defaults = TelemetryConfig::default();
    assert_eq!(defaults.otlp_endpoint, None);
    assert!((defaults.sampling_ratio - 1.0).abs() < f64::EPSILON);

    let bad = TelemetryConfig {
        otlp_endpoint: Some("otel-collector:4318".to_owned()),
        sampling_ratio: 1.5,
        service_name: Some(" ".to_owned()),
        ..TelemetryConfig::default()
    };
    let mut problems = Problems::default();
    bad.validate(&mut problems);
    let keys: Vec<&str> = problems.as_slice().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "telemetry.sampling_ratio",
            "telemetry.otlp_endpoint",
            "telemetry.service_name"
        ]
    );
}

#[test]
fn the_service_name_follows_the_services_run() {
    assert_eq!(telemetry::service_name(["writer"]), "idbridge-writer");
    assert_eq!(
        telemetry::service_name(["writer", "token-vault"]),
        "idbridge"
    );
    assert_eq!(telemetry::service_name([]), "idbridge");
}

#[test]
fn without_opentelemetry_there_are_no_trace_headers() {
    // No OpenTelemetry layer in this test: nothing to propagate, nothing invented.
    let span = tracing::info_span!("no-otel");
    let _entered = span.enter();
    assert!(telemetry::trace_headers().is_empty());
}

/// Collects what the provider exports.
#[derive(Clone, Debug, Default)]
struct Collected(Arc<Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanExporter for Collected {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

// Installs the process-wide subscriber with an exporter: nextest runs it in a process of its
// own; under `cargo test` it fails loudly when another test installed one first.
#[actix_web::test]
async fn exported_spans_name_nobody_and_public_endpoints_start_their_own_traces() {
    use actix_web::{App, HttpResponse, test, web};
    use opentelemetry::trace::{SpanId, TraceId};
    use telemetry::http::{PublicRequestSpan, RequestSpan, TracingLogger};

    let collected = Collected::default();
    let guard = telemetry::init_for_tests_with_exporter("platform-test", collected.clone());
    assert!(
        guard.exports_spans(),
        "another test installed the subscriber first: run with cargo nextest"
    );

    // A span with identifying fields, and a log event inside it.
    tracing::info_span!(
        "writer.handle",
        orcid = "0000-0002-1825-0097",
        person_id = "P-SECRET-1",
        put_code = 987_654_u64,
        outcome = "processed",
    )
    .in_scope(|| {
        tracing::info!(orcid = "0000-0002-1825-0097", "wrote for P-SECRET-1");
    });

    // The same incoming traceparent (sampled) on an internal and a public endpoint.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let internal = test::init_service(
        App::new()
            .wrap(TracingLogger::<RequestSpan>::new())
            .route("/internal", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let public = test::init_service(
        App::new()
            .wrap(TracingLogger::<PublicRequestSpan>::new())
            .route("/public", web::get().to(HttpResponse::Ok)),
    )
    .await;
    let request = |uri: &str| {
        test::TestRequest::get()
            .uri(uri)
            .insert_header(("traceparent", format!("00-{trace}-{parent}-01")))
            .to_request()
    };
    // Reading the body to its end closes the request span.
    let body = test::call_and_read_body(&internal, request("/internal")).await;
    assert!(body.is_empty());
    let body = test::call_and_read_body(&public, request("/public")).await;
    assert!(body.is_empty());
    guard.flush();

    let spans = collected.0.lock().unwrap().clone();
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no `{name}` in {:?}", spans.iter().map(|s| &s.name)))
    };

    let handle = find("writer.handle");
    let keys: Vec<&str> = handle.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert!(keys.contains(&"outcome"), "other attributes stay: {keys:?}");
    for span in &spans {
        assert!(span.events.is_empty(), "`{}` exports events", span.name);
        for kv in &span.attributes {
            let value = kv.value.to_string();
            assert!(
                !telemetry::REDACTED_ATTRIBUTES.contains(&kv.key.as_str()),
                "`{}` exports {}",
                span.name,
                kv.key
            );
            for needle in ["0000-0002-1825-0097", "P-SECRET-1", "987654"] {
                assert!(
                    !value.contains(needle),
                    "`{}` carries {needle} in {}",
                    span.name,
                    kv.key
                );
            }
        }
    }

    let internal = find("GET /internal");
    assert_eq!(
        internal.span_context.trace_id(),
        TraceId::from_hex(trace).unwrap(),
        "an internal service continues the caller's trace"
    );
    assert_eq!(internal.parent_span_id, SpanId::from_hex(parent).unwrap());
    assert!(internal.parent_span_is_remote);

    let public = find("GET /public");
    assert_ne!(
        public.span_context.trace_id(),
        TraceId::from_hex(trace).unwrap(),
        "a public endpoint starts a trace of its own"
    );
    assert_eq!(public.parent_span_id, SpanId::INVALID);
    assert!(!public.parent_span_is_remote);
}
