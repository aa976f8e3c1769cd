//! Tokens never reach the log, the ledger, the history or the outbox — also when ORCID
//! refuses them.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bus::Outcome;
use bus::events::HrEventType;
use idbridge_platform::telemetry::{self, LogFormat, TelemetryConfig, TelemetryGuard};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::*;

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The captured lines, and the guard kept for the life of the process.
static LOGS: OnceLock<(Arc<Mutex<Vec<u8>>>, TelemetryGuard)> = OnceLock::new();

/// Every event of every crate at TRACE, as JSON, from every test of this binary.
fn logs() -> String {
    let (buffer, _) = LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let config = TelemetryConfig {
            format: LogFormat::Json,
            filter: "trace".to_owned(),
            ..TelemetryConfig::default()
        };
        let guard =
            telemetry::init_with_writer(&config, Capture(buffer.clone())).expect("telemetry");
        assert!(
            guard.installed_here(),
            "the capture is the process's subscriber"
        );
        (buffer, guard)
    });
    String::from_utf8_lossy(&buffer.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
}

#[tokio::test]
async fn tokens_stay_out_of_logs_and_tables() {
    logs();
    let h = Harness::new().await;
    let orcid = h.connected("P-110").await;
    let token = h.tokens_token("P-110").await;
    let hire = hire("P-110", "POS-110", "2026-01-01");
    assert_eq!(h.apply(&hire.event).await, Outcome::Ack);
    // ORCID refuses the token (it answers 401 and, like ORCID, echoes the token).
    let res = sim_post(
        &h.sim,
        &format!("/_sim/users/{orcid}/revoke"),
        json!({"client_id": TEST_CLIENT_ID}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let leave = hire.then(HrEventType::Leave).end("2026-12-31");
    assert_eq!(h.apply(&leave.event).await, Outcome::Ack);

    let secret = token.expose_secret().to_owned();
    let logged = logs();
    assert!(
        logged.contains("\"outcome\":\"revoked\""),
        "the ledger lines are logged"
    );
    assert!(!logged.contains(&secret), "a token reached the log");
    for table in [
        "writer_items",
        "writer_item_attempts",
        "writer_events",
        "writer_outbox",
        "writer_inbox",
    ] {
        let rows =
            h.db.db
                .query_all_raw(Statement::from_string(
                    h.db.db.get_database_backend(),
                    format!("SELECT t::text AS row FROM {table} t"),
                ))
                .await
                .expect("dump");
        for row in rows {
            let text: String = row.try_get("", "row").expect("text");
            assert!(!text.contains(&secret), "a token reached {table}: {text}");
        }
    }
    h.finish().await;
}
