//! Callback secrets, the callback key and bearer headers never reach the log: registration (also
//! when ORCID fails it), good and bad callbacks, unregistration.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use idbridge_platform::telemetry::{self, LogFormat, TelemetryConfig, TelemetryGuard};
use secrecy::ExposeSecret;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use webhook_receiver::registry::RegistrationState;

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

static LOGS: OnceLock<(Arc<Mutex<Vec<u8>>>, TelemetryGuard)> = OnceLock::new();

/// Every event of the receiver, the bus, the ORCID client and the vault at TRACE (others at
/// INFO), as JSON.
fn logs() -> String {
    let (buffer, _) = LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let config = TelemetryConfig {
            format: LogFormat::Json,
            filter: "info,webhook_receiver=trace,orcid=trace,bus=trace,token_vault=trace"
                .to_owned(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_the_log() {
    logs();
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let mut receiver = Receiver::start(&sim, &db).await;
    let orcid = create_user(&sim, "Leak").await;

    // ORCID fails the first registrations: the error path is logged too.
    let res = http()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"endpoint": "PUT /*/webhook/**", "status": 500, "count": 4}))
        .send()
        .await
        .expect("fault");
    assert_eq!(res.status(), 201);
    receiver.publish_ready(&orcid, "P-60").await;
    let registration = receiver
        .wait_state(&orcid, RegistrationState::Registered)
        .await;
    let url = receiver.app.registry().callback_url(registration.hook_id);
    let url = url.expose_secret().to_owned();
    let secret = url.rsplit('/').next().expect("secret").to_owned();
    assert_eq!(secret.len(), 64);

    assert_eq!(http().post(&url).send().await.expect("post").status(), 204);
    let wrong = url.replace(&secret, &"f".repeat(64));
    assert_eq!(
        http().post(&wrong).send().await.expect("post").status(),
        404
    );
    assert_eq!(receiver.next_changed().await.orcid, orcid);
    receiver.publish_lost(&orcid, "P-60").await;
    receiver
        .wait_state(&orcid, RegistrationState::Unregistered)
        .await;
    receiver.stop().await;

    let log = logs();
    assert!(
        log.contains("webhook registration failed"),
        "the failure is logged"
    );
    assert!(log.contains("webhook registered"));
    assert!(log.contains("webhook unregistered"));
    assert!(!log.contains(&secret), "a callback secret in the log");
    assert!(
        !log.contains(TEST_CALLBACK_KEY),
        "the callback key in the log"
    );
    // No bearer header (the /webhook token) is ever logged.
    assert!(
        !log.to_ascii_lowercase().contains("bearer "),
        "a bearer header in the log"
    );

    sim.stop().await;
    db.drop().await;
}
