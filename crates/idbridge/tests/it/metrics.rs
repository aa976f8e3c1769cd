//! `/metrics` of `idbridge serve token-vault writer webhook-receiver` against real
//! PostgreSQL, RabbitMQ and orcid-sim: a researcher connects (with a token the vault must
//! refresh), HR hires them, the writer writes the employment to the simulator, the
//! simulator calls the webhook back, bad callbacks arrive until the receiver refuses them;
//! the scrape shows each of those, and no secret. Also the collectors on their own, and
//! `idbridge up`'s `/metrics`.

use std::time::{Duration, Instant};

use bus::events::{
    AffiliationSection, HrEvent, HrEventType, IdConnected, PartialDate, Person, PersonNames,
    Position, exchanges,
};
use bus::{OutgoingMessage, Topology};
use chrono::Utc;
use orcid::client::{ClientConfig, OrcidClient, UserTokens};
use secrecy::SecretString;

use crate::helpers::*;

const CLIENT_ID: &str = "APP-IDBRIDGEMETRICS1";
const CLIENT_SECRET: &str = "idbridge-metrics-test-secret";
const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
const WRITER_TOKEN: &str = "TEST_IDBRIDGE_METRICS_WRITER_0001";
const RECEIVER_TOKEN: &str = "TEST_IDBRIDGE_METRICS_RECEIVER_01";

/// The file for `serve token-vault writer webhook-receiver`: the receiver on a port of its
/// own (its public URL names it) and a rate limit that a few callbacks exhaust.
fn serve_config(db_url: &str, prefix: &str, sim_url: &str, handoff: &SecretString) -> ServeConfig {
    let receiver_port = free_port();
    ServeConfig::new(db_url, prefix, sim_url, CLIENT_ID, CLIENT_SECRET)
        .sample_seconds(1)
        .handoff(handoff)
        .writer(WRITER_TOKEN, "127.0.0.1:0")
        .webhook_receiver(
            RECEIVER_TOKEN,
            &format!("http://127.0.0.1:{receiver_port}"),
            &format!("127.0.0.1:{receiver_port}"),
        )
        .table("[webhooks.rate_limit]\nper_minute = 1\nburst = 2\n")
}

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

async fn scrape(admin: &str) -> String {
    let res = reqwest::get(format!("{admin}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(res.status().as_u16(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    res.text().await.expect("body")
}

/// Scrapes until `done` holds for the text, failing after [`DEADLINE`] with `what` and the
/// last scrape.
async fn scrape_until(admin: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + DEADLINE;
    loop {
        let text = scrape(admin).await;
        if done(&text) {
            return text;
        }
        assert!(
            Instant::now() < end,
            "{what}: not within {DEADLINE:?}; last scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The researcher approves the client at the simulator; the client exchanges the code.
async fn authorize(sim_url: &str, orcid: &str) -> UserTokens {
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{sim_url}/oauth/authorize"))
        .query(&[
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("scope", "/read-limited /activities/update"),
            ("redirect_uri", REDIRECT_URI),
            ("sim_user", orcid),
            ("sim_decision", "authorize"),
        ])
        .send()
        .await
        .expect("authorize");
    let code = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url::Url::parse(l).ok())
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        })
        .expect("a code in the redirect");
    let client = OrcidClient::new(
        ClientConfig::custom(
            sim_url,
            CLIENT_ID,
            SecretString::from(CLIENT_SECRET.to_owned()),
        )
        .expect("client config"),
    )
    .expect("client");
    client
        .exchange_code(&code, REDIRECT_URI)
        .await
        .expect("token exchange")
}

fn hire(person: &str) -> HrEvent {
    HrEvent {
        event_id: format!("metrics-{}", uuid::Uuid::new_v4().simple()),
        event_type: HrEventType::Hire,
        occurred_at: Utc::now(),
        person: Person {
            person_id: person.to_owned(),
            names: Some(PersonNames {
                given_names: Some("Josiah".to_owned()),
                family_name: Some("Carberry".to_owned()),
            }),
            email: None,
        },
        position: Position {
            position_id: format!("{person}-pos"),
            section: AffiliationSection::Employment,
            department: Some("Psychoceramics".to_owned()),
            role_title: Some("Professor".to_owned()),
            start_date: PartialDate::parse("2024-09-01").ok(),
            end_date: None,
            organization: None,
            url: None,
            external_ids: Vec::new(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_metrics_show_queues_states_refreshes_callbacks_and_no_secret() {
    let sim = orcid_sim::spawn(orcid_sim::SimConfig::for_tests().with_client(
        CLIENT_ID,
        CLIENT_SECRET,
        REDIRECT_URI,
    ))
    .await
    .expect("simulator");
    let sim_url = sim.base_url().to_owned();
    let (db_url, db_name) = create_database().await;
    let prefix = prefix();
    let dir = TempDir::new();
    let (handoff_private, handoff_public) =
        token_vault::handoff::generate_handoff_key().expect("hand-off key");
    let config = serve_config(&db_url, &prefix, &sim_url, &handoff_private);
    let file = config.write(&dir);
    let writer_config = writer::config::WriterConfig::load(Some(&file)).expect("config");
    let receiver_config =
        webhook_receiver::config::ReceiverConfig::load(Some(&file)).expect("config");
    let cleanup = crate::tracing::Cleanup {
        db_name,
        prefix: prefix.clone(),
        topologies: vec![
            writer::topology(&writer::service_spec(&writer_config)),
            webhook_receiver::topology(&webhook_receiver::service_spec(&receiver_config)),
            Topology::new()
                .exchange(exchanges::EVENTS)
                .service(token_vault::service_spec()),
        ],
    };

    let mut process = Running::spawn(serve_command(
        &["token-vault", "writer", "webhook-receiver"],
        &file,
    ));
    let admin = process.admin_url();
    let receiver_line =
        tokio::task::block_in_place(|| process.wait_line("webhook-receiver callbacks on port "));
    let receiver_port: u16 = receiver_line
        .rsplit(' ')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("the receiver's port");
    tokio::task::block_in_place(|| process.wait_line("idbridge serving: "));

    // Before any activity: build info per service, the queue gauges of every work, retry
    // and parking queue, the outboxes, and every known state at 0.
    let writer_work = format!("{prefix}.writer.p000");
    let writer_parked = format!("{prefix}.writer.parked");
    let vault_queue = format!("{prefix}.token-vault");
    let text = scrape_until(&admin, "queue and state gauges", |t| {
        sample(
            t,
            &format!("idbridge_queue_consumers{{queue=\"{writer_work}\"}}"),
        )
        .is_some_and(|n| n >= 1.0)
            && sample(
                t,
                &format!("idbridge_queue_consumers{{queue=\"{vault_queue}\"}}"),
            )
            .is_some_and(|n| n >= 1.0)
            && sample(t, "idbridge_items{state=\"pending\"}").is_some()
            && sample(t, "idbridge_connections{state=\"active\"}").is_some()
            && sample(t, "idbridge_outbox_pending{service=\"webhook-receiver\"}").is_some()
    })
    .await;
    let version = env!("CARGO_PKG_VERSION");
    for service in ["token-vault", "writer", "webhook-receiver"] {
        assert_eq!(
            sample(
                &text,
                &format!("idbridge_build_info{{version=\"{version}\",service=\"{service}\"}}")
            ),
            Some(1.0),
            "{text}"
        );
        assert!(
            sample(
                &text,
                &format!("idbridge_outbox_pending{{service=\"{service}\"}}")
            )
            .is_some(),
            "{text}"
        );
        assert!(
            sample(
                &text,
                &format!("idbridge_outbox_oldest_age_seconds{{service=\"{service}\"}}")
            )
            .is_some(),
            "{text}"
        );
    }
    assert_eq!(
        sample(
            &text,
            &format!("idbridge_queue_messages{{queue=\"{writer_parked}\"}}")
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("idbridge_queue_consumers{{queue=\"{writer_parked}\"}}")
        ),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            &format!("idbridge_queue_messages{{queue=\"{prefix}.writer.retry.5s\"}}")
        )
        .is_some(),
        "the first retry tier: {text}"
    );
    assert_eq!(
        sample(&text, "idbridge_connections{state=\"active\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "idbridge_items{state=\"in_orcid\"}"),
        Some(0.0)
    );
    assert!(text.contains("# HELP idbridge_items "), "{text}");
    assert!(
        text.contains("# TYPE idbridge_queue_messages gauge"),
        "{text}"
    );
    assert!(text.contains("\nidbridge_up 1\n"), "{text}");

    // A researcher connects. The token response is sealed as the portal does, but says the
    // token expires within the hour: the vault refreshes it at ORCID on its first use.
    let orcid_text = sim_researcher(&sim_url, "jc-metrics@example.invalid").await;
    let orcid = orcid::OrcidId::parse(&orcid_text).expect("an iD");
    let mut tokens = authorize(&sim_url, &orcid_text).await;
    tokens.expires_in = Some(Duration::from_secs(3600));
    let access_token = tokens.access_token.expose_secret().to_owned();
    let refresh_token = tokens
        .refresh_token
        .as_ref()
        .map(|r| r.expose_secret().to_owned())
        .expect("a refresh token");
    let person = format!(
        "metrics-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let sealed =
        token_vault::handoff::seal_tokens(&handoff_public, &orcid, &person, &tokens).expect("seal");
    let connected = IdConnected {
        orcid,
        person_id: person.clone(),
        name: tokens.name.clone(),
        scopes: tokens
            .scopes
            .to_string()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        sealed_token: sealed,
        key_id: "hk1".to_owned(),
        granted_at: Utc::now(),
    };
    let bus = amqp_bus(&prefix).await;
    bus.publish(&OutgoingMessage::event(&connected).expect("message"))
        .await
        .expect("publish iD connected");
    scrape_until(&admin, "one active connection", |t| {
        sample(t, "idbridge_connections{state=\"active\"}") == Some(1.0)
    })
    .await;

    // HR hires them: the writer reads the token (refreshed), writes to the simulator.
    bus.publish(&OutgoingMessage::event(&hire(&person)).expect("message"))
        .await
        .expect("publish the hire");
    let text = scrape_until(&admin, "the employment written", |t| {
        sample(t, "idbridge_items{state=\"in_orcid\"}") == Some(1.0)
    })
    .await;
    assert_eq!(
        sample(&text, "idbridge_token_refreshes_total{outcome=\"ok\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "idbridge_token_refreshes_total{outcome=\"failed\"}"),
        None,
        "{text}"
    );
    let waits: f64 = ["shared", "local"]
        .iter()
        .filter_map(|scope| {
            sample(
                &text,
                &format!("idbridge_ratelimit_wait_seconds_count{{scope=\"{scope}\"}}"),
            )
        })
        .sum();
    assert!(waits >= 1.0, "rate-limit permits recorded: {text}");
    assert!(
        text.contains("# TYPE idbridge_ratelimit_wait_seconds histogram"),
        "{text}"
    );
    assert_eq!(sample(&text, "idbridge_items{state=\"error\"}"), Some(0.0));

    // The simulator calls the webhook registered at connect back for the changed record:
    // accepted.
    scrape_until(&admin, "ORCID's callback accepted", |t| {
        sample(t, "idbridge_webhook_callbacks_total{outcome=\"accepted\"}")
            .is_some_and(|n| n >= 1.0)
    })
    .await;
    // Callbacks with a wrong secret: 404 within the source's burst (2), then 429.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let bad = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{receiver_port}/orcid/webhook/{}/{}",
                uuid::Uuid::new_v4().simple(),
                "0".repeat(64)
            ))
            .send()
            .await
            .expect("callback");
        statuses.push(bad.status().as_u16());
    }
    assert_eq!(statuses, [404, 404, 429]);
    let text = scrape_until(&admin, "the refused callbacks", |t| {
        sample(
            t,
            "idbridge_webhook_callbacks_total{outcome=\"rate_limited\"}",
        )
        .is_some()
    })
    .await;
    assert_eq!(
        sample(
            &text,
            "idbridge_webhook_callbacks_total{outcome=\"rejected\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "idbridge_webhook_callbacks_total{outcome=\"rate_limited\"}"
        ),
        Some(1.0),
        "{text}"
    );

    // Nothing secret in the scrape.
    for (what, secret) in [
        ("access token", access_token.as_str()),
        ("refresh token", refresh_token.as_str()),
        ("client secret", CLIENT_SECRET),
        ("writer caller token", WRITER_TOKEN),
        ("receiver caller token", RECEIVER_TOKEN),
        ("vault key", config.kek()),
        ("hand-off key", config.handoff_key()),
        ("callback key", config.callback_key()),
        ("AMQP password", "guest@"),
    ] {
        assert!(!text.contains(secret), "the scrape shows the {what}");
    }
    assert!(!text.contains(&orcid_text), "no iD in a label");
    assert!(!text.contains(&person), "no person id in a label");

    process.signal("TERM");
    let status = tokio::task::block_in_place(|| process.wait_exit(Duration::from_secs(30)));
    assert_eq!(
        status.code(),
        Some(0),
        "stdout:\n{}",
        process.seen.join("\n")
    );

    bus.close().await;
    sim.stop().await;
    drop(cleanup);
}

/// The collectors on their own, with a recorder of the test's: outbox backlog and age, states
/// (known ones at 0, an unknown one while it has rows), queue depth and consumers, and
/// failing sources that count an error and set nothing.
#[test]
fn collectors_sample_outboxes_states_and_queues_and_survive_failures() {
    use idbridge::admin::collectors::{Collector, Source};
    use sea_orm::ConnectionTrait;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let recorder = idbridge_platform::metrics::builder()
        .expect("builder")
        .build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let (db_url, db_name) = create_database().await;
            let db = sea_orm::Database::connect(&db_url).await.expect("connect");
            db.execute_unprepared(
                "CREATE TABLE svc_outbox (seq bigserial PRIMARY KEY, created_at timestamptz NOT NULL, sent_at timestamptz NULL);
                 INSERT INTO svc_outbox (created_at, sent_at) VALUES
                   (now() - interval '120 seconds', NULL),
                   (now() - interval '5 seconds', NULL),
                   (now() - interval '1 hour', now());
                 CREATE TABLE svc_items (state text NOT NULL);
                 INSERT INTO svc_items (state) VALUES ('in_orcid'), ('in_orcid'), ('future_state');",
            )
            .await
            .expect("tables");
            let prefix = prefix();
            let bus = amqp_bus(&prefix).await;
            let spec = bus::ServiceSpec::new("probe").bind(exchanges::HR, "hr.*");
            let topology = Topology::new().exchange(exchanges::HR).service(spec.clone());
            let cleanup = crate::tracing::Cleanup {
                db_name: db_name.clone(),
                prefix: prefix.clone(),
                topologies: vec![topology.clone()],
            };
            bus.declare(&topology).await.expect("declare");
            bus.publish_bytes(exchanges::HR, "hr.hire", None, b"{}".to_vec())
                .await
                .expect("one message waits in the queue");
            let mut queues = idbridge::serve::queue_names(&prefix, &spec).expect("names");
            assert_eq!(queues.first(), Some(&format!("{prefix}.probe")));
            assert_eq!(queues.last(), Some(&format!("{prefix}.probe.parked")));
            queues.push(format!("{prefix}.missing"));

            let collector = Collector::default();
            collector
                .add(vec![
                    Source::Outbox {
                        service: "svc",
                        db: db.clone(),
                        table: "svc_outbox",
                    },
                    Source::Outbox {
                        service: "gone",
                        db: db.clone(),
                        table: "gone_outbox",
                    },
                    Source::States {
                        collector: "items",
                        gauge: "idbridge_items",
                        db: db.clone(),
                        table: "svc_items",
                        known: vec!["pending", "in_orcid"],
                    },
                    Source::Queues {
                        url: SecretString::from(amqp_url()),
                        queues,
                    },
                ]);
            collector.sample().await;
            let text = handle.render();
            assert_eq!(
                sample(&text, "idbridge_outbox_pending{service=\"svc\"}"),
                Some(2.0),
                "{text}"
            );
            let age = sample(&text, "idbridge_outbox_oldest_age_seconds{service=\"svc\"}")
                .expect("an age");
            assert!((119.0..600.0).contains(&age), "{age}");
            // The missing table: an error counted, nothing set.
            assert_eq!(sample(&text, "idbridge_outbox_pending{service=\"gone\"}"), None);
            assert_eq!(
                sample(&text, "idbridge_collector_errors_total{collector=\"outbox\"}"),
                Some(1.0),
                "{text}"
            );
            assert_eq!(sample(&text, "idbridge_items{state=\"in_orcid\"}"), Some(2.0));
            assert_eq!(sample(&text, "idbridge_items{state=\"pending\"}"), Some(0.0));
            assert_eq!(sample(&text, "idbridge_items{state=\"future_state\"}"), Some(1.0));
            // The existing queues were sampled although one is missing.
            assert_eq!(
                sample(&text, &format!("idbridge_queue_messages{{queue=\"{prefix}.probe\"}}")),
                Some(1.0),
                "{text}"
            );
            assert_eq!(
                sample(&text, &format!("idbridge_queue_consumers{{queue=\"{prefix}.probe\"}}")),
                Some(0.0),
                "{text}"
            );
            assert_eq!(
                sample(
                    &text,
                    &format!("idbridge_queue_messages{{queue=\"{prefix}.probe.parked\"}}")
                ),
                Some(0.0),
                "{text}"
            );
            assert_eq!(
                sample(&text, &format!("idbridge_queue_messages{{queue=\"{prefix}.missing\"}}")),
                None
            );
            assert_eq!(
                sample(&text, "idbridge_collector_errors_total{collector=\"queues\"}"),
                Some(1.0),
                "{text}"
            );
            assert!(!text.contains("guest@"), "no AMQP credentials: {text}");

            // Rows move: the gauges follow; a state that is gone reads 0.
            db.execute_unprepared(
                "UPDATE svc_outbox SET sent_at = now();
                 DELETE FROM svc_items WHERE state = 'future_state';
                 INSERT INTO svc_items (state) VALUES ('pending');",
            )
            .await
            .expect("update");
            collector.sample().await;
            let text = handle.render();
            assert_eq!(sample(&text, "idbridge_outbox_pending{service=\"svc\"}"), Some(0.0));
            assert_eq!(
                sample(&text, "idbridge_outbox_oldest_age_seconds{service=\"svc\"}"),
                Some(0.0)
            );
            assert_eq!(sample(&text, "idbridge_items{state=\"future_state\"}"), Some(0.0));
            assert_eq!(sample(&text, "idbridge_items{state=\"pending\"}"), Some(1.0));
            assert_eq!(
                sample(&text, "idbridge_collector_errors_total{collector=\"outbox\"}"),
                Some(2.0)
            );

            bus.close().await;
            let _ = db.close().await;
            drop(cleanup);
        });
    });
}

/// `idbridge up` serves `/metrics` too (no collectors): build info for each service it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_metrics_with_build_info() {
    let dir = TempDir::new();
    let mut command = idbridge(&["up"]);
    command.current_dir(dir.path());
    let mut process = Running::spawn(command);
    let line = tokio::task::block_in_place(|| process.wait_line("  metrics           http://"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the metrics URL")
        .to_owned();
    let admin = url.trim_end_matches("/metrics").to_owned();
    tokio::task::block_in_place(|| process.wait_line("Ctrl-C stops everything."));
    let text = scrape(&admin).await;
    let version = env!("CARGO_PKG_VERSION");
    for service in ["token-vault", "writer", "reader", "portal"] {
        assert_eq!(
            sample(
                &text,
                &format!("idbridge_build_info{{version=\"{version}\",service=\"{service}\"}}")
            ),
            Some(1.0),
            "{text}"
        );
    }
    assert!(text.contains("\nidbridge_up 1\n"), "{text}");
    process.signal("TERM");
    let status = tokio::task::block_in_place(|| process.wait_exit(Duration::from_secs(30)));
    assert_eq!(status.code(), Some(0), "{}", process.seen.join("\n"));
}
