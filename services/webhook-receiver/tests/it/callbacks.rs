//! The callback endpoint under abuse: a flood of real callbacks for one iD makes one
//! "record changed"; wrong secrets, unknown ids and malformed paths have no effect, are
//! answered 404 and then 429 beyond the per-address budget (5 at once in these tests), while
//! a good callback from the same address is still taken.

use std::time::Duration;

use secrecy::ExposeSecret;
use webhook_receiver::registry::RegistrationState;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_callbacks_in_a_burst_make_one_record_changed() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    // A window much longer than the burst, even on a loaded machine.
    let mut receiver = Receiver::start_with_debounce(&sim, &db, 3000).await;
    let orcid = create_user(&sim, "Flood").await;
    let quiet = create_user(&sim, "Quiet").await;
    receiver.publish_ready(&orcid, "P-10").await;
    receiver.publish_ready(&quiet, "P-11").await;
    let registration = receiver
        .wait_state(&orcid, RegistrationState::Registered)
        .await;
    receiver
        .wait_state(&quiet, RegistrationState::Registered)
        .await;
    let url = receiver
        .app
        .registry()
        .callback_url(registration.hook_id)
        .expose_secret()
        .to_owned();

    let client = http();
    let started = std::time::Instant::now();
    let statuses = futures_util::future::join_all((0..50).map(|_| {
        let client = client.clone();
        let url = url.clone();
        async move { client.post(&url).send().await.expect("post").status() }
    }))
    .await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    let burst = started.elapsed();

    let changed = receiver.next_changed().await;
    assert_eq!(changed.orcid, orcid);
    // Nothing more: neither for this iD nor for the other one.
    let more = receiver.changed_within(Duration::from_secs(2)).await;
    assert!(
        more.is_empty(),
        "50 callbacks in {burst:?} gave more than one event: {more:?}"
    );

    receiver.stop().await;
    sim.stop().await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secrets_and_malformed_callbacks_have_no_effect_and_are_rate_limited() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let mut receiver = Receiver::start(&sim, &db).await;
    let orcid = create_user(&sim, "Target").await;
    receiver.publish_ready(&orcid, "P-20").await;
    let registration = receiver
        .wait_state(&orcid, RegistrationState::Registered)
        .await;
    let good = receiver
        .app
        .registry()
        .callback_url(registration.hook_id)
        .expose_secret()
        .to_owned();
    let hook = registration.hook_id.simple().to_string();
    let base = format!("{}/orcid/webhook", receiver.base);
    let wrong_secret = format!("{base}/{hook}/{}", "0".repeat(64));
    let bad = [
        wrong_secret.clone(),
        format!(
            "{base}/{}/{}",
            uuid::Uuid::new_v4().simple(),
            "a".repeat(64)
        ),
        format!("{base}/not-a-uuid/{}", "a".repeat(64)),
        format!("{base}/{hook}/short"),
        format!("{base}/{orcid}"),
        format!("{}/orcid/webhook", receiver.base),
    ];
    let client = http();
    // The budget is 5: the first five bad calls are 404, then 429.
    let mut statuses = Vec::new();
    for url in bad.iter().chain(std::iter::repeat_n(&wrong_secret, 14)) {
        statuses.push(
            client
                .post(url)
                .send()
                .await
                .expect("post")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..5], &[404; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another method on the good URL is not a callback either (and still limited).
    let get = client.get(&good).send().await.expect("get");
    assert_eq!(get.status(), 429);

    // None of it had an effect.
    assert!(
        receiver
            .changed_within(Duration::from_secs(2))
            .await
            .is_empty()
    );
    let row = receiver
        .app
        .registry()
        .registration(&orcid)
        .await
        .expect("registry")
        .expect("row");
    assert_eq!(row.last_callback_at, None);
    assert_eq!(row.pending_since, None);

    // ORCID's own callback from the same address still works.
    let res = client.post(&good).send().await.expect("post");
    assert_eq!(res.status(), 204);
    assert_eq!(receiver.next_changed().await.orcid, orcid);

    // Health is not limited.
    let health = client
        .get(format!("{}/health", receiver.base))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);

    receiver.stop().await;
    sim.stop().await;
    db.drop().await;
}

/// A callback taken just before a restart is not lost: it is in the database before the
/// window ends, and the next process publishes it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_inside_the_window_loses_nothing() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    // A window long enough to restart inside it.
    let receiver = Receiver::start_with_debounce(&sim, &db, 4000).await;
    let orcid = create_user(&sim, "Durable").await;
    receiver.publish_ready(&orcid, "P-50").await;
    let registration = receiver
        .wait_state(&orcid, RegistrationState::Registered)
        .await;
    let url = receiver
        .app
        .registry()
        .callback_url(registration.hook_id)
        .expose_secret()
        .to_owned();
    let res = http().post(&url).send().await.expect("post");
    assert_eq!(res.status(), 204);
    let registry = receiver.app.registry().clone();
    wait_for("the callback stored", || async {
        registry
            .registration(&orcid)
            .await
            .expect("registry")
            .and_then(|r| r.pending_since)
    })
    .await;

    let mut receiver = receiver.restart(&sim, &db).await;
    let changed = receiver.next_changed().await;
    assert_eq!(changed.orcid, orcid);
    assert!(
        receiver
            .changed_within(Duration::from_secs(2))
            .await
            .is_empty()
    );

    receiver.stop().await;
    sim.stop().await;
    db.drop().await;
}

/// A wrong method on a real path is no more than any other bad request: 404 (never 405),
/// charged to the address like the others, then 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_are_404_and_rate_limited() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let mut receiver = Receiver::start(&sim, &db).await;
    let orcid = create_user(&sim, "Method").await;
    receiver.publish_ready(&orcid, "P-60").await;
    let registration = receiver
        .wait_state(&orcid, RegistrationState::Registered)
        .await;
    let good = receiver
        .app
        .registry()
        .callback_url(registration.hook_id)
        .expose_secret()
        .to_owned();
    let health = format!("{}/health", receiver.base);
    let client = http();
    // The budget is 5: five wrong methods are 404, the sixth 429.
    let calls = [
        client.get(&good),
        client.put(&good),
        client.delete(&good),
        client.post(&health),
        client.put(&health),
        client.get(&good),
    ];
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.send().await.expect("request").status().as_u16());
    }
    assert_eq!(statuses, [404, 404, 404, 404, 404, 429]);

    // No effect; the right method still works, and health too.
    let row = receiver
        .app
        .registry()
        .registration(&orcid)
        .await
        .expect("registry")
        .expect("row");
    assert_eq!(row.last_callback_at, None);
    assert_eq!(client.post(&good).send().await.expect("post").status(), 204);
    assert_eq!(receiver.next_changed().await.orcid, orcid);
    assert_eq!(
        client.get(&health).send().await.expect("health").status(),
        200
    );

    receiver.stop().await;
    sim.stop().await;
    db.drop().await;
}

/// Between the shutdown signal and the end of the endpoint's graceful stop, callbacks are
/// still answered 204; they must still be stored (the debouncer stops only after the
/// endpoint), and the next process publishes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_answered_while_stopping_is_not_lost() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let receiver = Receiver::start(&sim, &db).await;
    let orcid = create_user(&sim, "Late").await;
    receiver.publish_ready(&orcid, "P-70").await;
    let registration = receiver
        .wait_state(&orcid, RegistrationState::Registered)
        .await;
    let url = receiver
        .app
        .registry()
        .callback_url(registration.hook_id)
        .expose_secret()
        .to_owned();
    let registry = receiver.app.registry().clone();

    // The shutdown is signalled; the endpoint still answers until `run_until_stopped` has
    // stopped it. (The pause only gives a debouncer wrongly tied to the shutdown signal
    // time to stop, so that this test fails reliably with one.)
    receiver.app.shutdown_token().cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = http().post(&url).send().await.expect("post");
    assert_eq!(res.status(), 204);
    receiver.stop().await;

    // Stored before the process ended...
    let row = registry
        .registration(&orcid)
        .await
        .expect("registry")
        .expect("row");
    assert!(
        row.pending_since.is_some() && row.last_callback_at.is_some(),
        "the callback answered while stopping was lost: {row:?}"
    );
    // ...so the next process publishes it.
    let mut next = Receiver::start(&sim, &db).await;
    assert_eq!(next.next_changed().await.orcid, orcid);

    next.stop().await;
    sim.stop().await;
    db.drop().await;
}
