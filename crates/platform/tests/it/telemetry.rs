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
