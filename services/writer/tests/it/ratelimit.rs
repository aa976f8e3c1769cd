//! The client-wide rate limit holds across writer replicas: two writers on one PostgreSQL
//! database, each consuming its own share of hires, take their ORCID permits from one bucket
//! in that database, so a simulator enforcing the client's limit never answers 503.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, OutgoingMessage};
use idbridge_platform::config::Sources;
use orcid_sim::{RateLimit, SimConfig};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;
use writer::config::{DEFAULTS, WriterConfig};
use writer::ledger::ItemState;
use writer::{Application, Dependencies};

use crate::helpers::*;

const PEOPLE: usize = 20;
const POSITIONS: usize = 2;
/// The simulator's limit for the client (ORCID's is 24/s, burst 40).
const SIM_LIMIT: RateLimit = RateLimit {
    per_second: 5,
    burst: 5,
};

/// A replica: its own pool on the shared database, its own bus (each replica consumes a
/// share of the work), the ORCID client built from `[orcid]` (`Dependencies.orcid` unset).
async fn replica(
    sim: &orcid_sim::SimHandle,
    db: &TestDb,
    tokens: Arc<SimTokens>,
) -> (Application, Bus) {
    let prefix = prefix();
    let bus = Bus::in_memory(&prefix).expect("bus");
    // The shared bucket is one token per second under the simulator's limit: a permit is
    // taken on the database's clock and the request reaches the simulator a little later,
    // so the margin absorbs that travel time. Two replicas with buckets of their own
    // (2 × 4/s, 2 × burst 4) would exceed 5/s at once.
    let config = WriterConfig::from_sources(
        &Sources::new(DEFAULTS)
            .set("database.url", db.url.as_str())
            .and_then(|s| s.set("bus.prefix", prefix.as_str()))
            .and_then(|s| s.set("orcid.registry", sim.base_url()))
            .and_then(|s| s.set("orcid.client_id", TEST_CLIENT_ID))
            .and_then(|s| s.set("orcid.client_secret", TEST_CLIENT_SECRET))
            .and_then(|s| s.set("orcid.rate_limit.shared", true))
            .and_then(|s| s.set("orcid.rate_limit.per_second", SIM_LIMIT.per_second - 1))
            .and_then(|s| s.set("orcid.rate_limit.burst", SIM_LIMIT.burst - 1))
            .and_then(|s| s.set("orcid.rate_limit.replicas_hint", 2))
            .and_then(|s| s.set("institution.name", "Boston University"))
            .and_then(|s| s.set("institution.city", "Boston"))
            .and_then(|s| s.set("institution.region", "Massachusetts"))
            .and_then(|s| s.set("institution.country", "US"))
            .and_then(|s| s.set("institution.disambiguated_id", ROR_ID))
            .and_then(|s| s.set("writer.partitions", 4))
            .and_then(|s| s.set("writer.retry_tiers_ms", vec![50u64, 100, 200]))
            .and_then(|s| s.set("writer.max_attempts", 6))
            .and_then(|s| s.set("writer.http.enabled", false))
            .expect("overrides"),
    )
    .expect("valid configuration");
    let app = Application::build_with(
        config,
        Dependencies {
            bus: Some(bus.clone()),
            tokens: Some(tokens),
            ..Dependencies::default()
        },
    )
    .await
    .expect("writer starts");
    (app, bus)
}

fn count_503(stats: &Value) -> u64 {
    stats
        .as_object()
        .map(|routes| {
            routes
                .values()
                .filter_map(|statuses| statuses["503"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn two_replicas_share_one_orcid_rate_limit_through_the_database() {
    let sim = orcid_sim::spawn(
        SimConfig::for_tests()
            .with_client(TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_REDIRECT_URI)
            .with_rate_limit(SIM_LIMIT),
    )
    .await
    .expect("simulator starts");
    let db = TestDb::postgres().await;
    let tokens = Arc::new(SimTokens::default());
    let client = orcid_client(&sim);
    let mut people = Vec::new();
    for p in 0..PEOPLE {
        let person_id = format!("P-RL{p}");
        let orcid = create_user(&sim, &person_id).await;
        let token = authorize(&sim, &orcid, WRITE_SCOPES, &client).await;
        tokens.connect(&person_id, &orcid, token);
        people.push((person_id, orcid));
    }
    let (first, first_bus) = replica(&sim, &db, tokens.clone()).await;
    let (second, second_bus) = replica(&sim, &db, tokens.clone()).await;

    // Half of the people to each replica, all at once.
    for (index, (person_id, _)) in people.iter().enumerate() {
        let bus = if index % 2 == 0 {
            &first_bus
        } else {
            &second_bus
        };
        for position in 0..POSITIONS {
            let hr = hire(
                person_id,
                &format!("POS-{person_id}-{position}"),
                "2026-01-01",
            );
            bus.publish(&OutgoingMessage::event(&hr.event).expect("message"))
                .await
                .expect("publish");
        }
    }

    let ledger = first.writer().ledger();
    let expected = PEOPLE * POSITIONS;
    // 2 calls per item (read the section, post) at 4/s: about 20 s; generous for 2 busy cores.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let mut written = 0;
        for (person_id, _) in &people {
            written += ledger
                .items_of(person_id)
                .await
                .expect("ledger")
                .iter()
                .filter(|i| i.state == ItemState::InOrcid && i.is_current())
                .count();
        }
        if written == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {written} of {expected} items written in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let stats = sim_stats(&sim).await;
    assert_eq!(
        count_503(&stats),
        0,
        "the simulator refused calls over the client's limit: {stats:#}"
    );
    assert_eq!(
        calls(&stats, "POST /v3.0/{orcid}/employment", "201"),
        u64::try_from(expected).expect("small")
    );
    // Both replicas wrote (each had only its own people's events).
    let mut by_replica = [BTreeSet::new(), BTreeSet::new()];
    for (index, (person_id, orcid)) in people.iter().enumerate() {
        let items = sim_items(&sim, orcid, "employments").await;
        assert_eq!(items.len(), POSITIONS, "{person_id}: {items:#?}");
        by_replica[index % 2].insert(person_id.clone());
    }
    assert!(by_replica.iter().all(|people| people.len() == PEOPLE / 2));
    // One bucket, named after the client id, in the shared database.
    let rows = db
        .db
        .query_all_raw(Statement::from_string(
            db.db.get_database_backend(),
            "SELECT name FROM idbridge_rate_buckets",
        ))
        .await
        .expect("bucket table");
    let names: Vec<String> = rows
        .iter()
        .map(|r| r.try_get("", "name").expect("name"))
        .collect();
    assert_eq!(names, vec![format!("orcid:{TEST_CLIENT_ID}")]);

    for app in [first, second] {
        app.shutdown_token().cancel();
        app.run_until_stopped().await;
    }
    sim.stop().await;
    db.drop().await;
}
