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
    };
    let mut problems = Problems::default();
    config.validate(&mut problems);
    assert_eq!(problems.as_slice()[0].key, "telemetry.filter");
}
