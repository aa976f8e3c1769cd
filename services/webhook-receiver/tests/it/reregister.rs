//! `reregister_all` registers every connection again, idempotently: run twice, the simulator
//! still holds one webhook per iD (one delivery per edit), and a disconnected iD stays off.

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use orcid::client::AccessToken;
use tokio::sync::oneshot;
use webhook_receiver::callback::CallbackKey;
use webhook_receiver::registry::{RegistrationState, Registry};
use webhook_receiver::tokens::{ClientTokens, OrcidClientTokens, TokenError};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reregister_all_twice_makes_no_duplicates() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let receiver = Receiver::start(&sim, &db).await;
    let a = create_user(&sim, "Alpha").await;
    let b = create_user(&sim, "Beta").await;
    let c = create_user(&sim, "Gamma").await;
    receiver.publish_ready(&a, "P-30").await;
    receiver.publish_ready(&b, "P-31").await;
    receiver.publish_ready(&c, "P-32").await;
    for orcid in [&a, &b, &c] {
        receiver
            .wait_state(orcid, RegistrationState::Registered)
            .await;
    }
    receiver.publish_lost(&c, "P-32").await;
    receiver
        .wait_state(&c, RegistrationState::Unregistered)
        .await;

    // Through the library function the command calls (its own database connection).
    for _ in 0..2 {
        let report = webhook_receiver::reregister_all(
            &receiver.config,
            webhook_receiver::Dependencies {
                tokens: Some(Arc::new(OrcidClientTokens::new(orcid_client(&sim)))),
                orcid: Some(orcid_client(&sim)),
                ..webhook_receiver::Dependencies::default()
            },
        )
        .await
        .expect("reregister");
        assert_eq!(report.already_registered, 2, "{report:?}");
        assert_eq!(report.created, 0, "{report:?}");
        assert!(report.failed.is_empty(), "{report:?}");
    }

    // A webhook ORCID lost (e.g. removed by hand) comes back.
    let row = receiver
        .app
        .registry()
        .registration(&a)
        .await
        .expect("registry")
        .expect("row");
    let token = orcid_client(&sim)
        .client_credentials(orcid::client::Scope::Webhook)
        .await
        .expect("token");
    orcid_client(&sim)
        .unregister_webhook(
            &token.access_token,
            &a,
            secrecy::ExposeSecret::expose_secret(
                &receiver.app.registry().callback_url(row.hook_id),
            ),
        )
        .await
        .expect("removed by hand");
    let report = receiver
        .app
        .registry()
        .reregister_all()
        .await
        .expect("reregister");
    assert_eq!(
        (report.created, report.already_registered),
        (1, 1),
        "{report:?}"
    );

    for orcid in [&a, &b, &c] {
        user_edits_record(&sim, orcid).await;
    }
    let attempts = flush_webhooks(&sim).await;
    assert_eq!(attempts_for(&attempts, &a).len(), 1, "{attempts:#?}");
    assert_eq!(attempts_for(&attempts, &b).len(), 1, "{attempts:#?}");
    assert!(attempts_for(&attempts, &c).is_empty(), "{attempts:#?}");
    assert!(
        attempts.iter().all(|a| a["outcome"] == "delivered"),
        "{attempts:#?}"
    );

    receiver.stop().await;
    sim.stop().await;
    db.drop().await;
}

/// Holds the first `reregister` token request until released, so a "connection lost" can be
/// applied between `reregister_all` reading the rows and its `PUT`.
struct GatedTokens {
    inner: OrcidClientTokens,
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl ClientTokens for GatedTokens {
    fn webhook_token<'a>(
        &'a self,
        purpose: &'a str,
    ) -> BoxFuture<'a, Result<AccessToken, TokenError>> {
        Box::pin(async move {
            let gate = if purpose.starts_with("reregister") {
                self.gate.lock().expect("gate").take()
            } else {
                None
            };
            if let Some((reached, release)) = gate {
                let _ = reached.send(());
                let _ = release.await;
            }
            self.inner.webhook_token(purpose).await
        })
    }
}

/// `reregister_all` racing a "connection lost": the `PUT` lands after the `DELETE` and ORCID
/// re-creates the webhook (201), but the row is `unregistered` by then, so the webhook is
/// deleted again and a later edit calls nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reregistration_racing_a_lost_does_not_revive_the_webhook() {
    let sim = spawn_sim().await;
    let db = TestDb::postgres().await;
    let receiver = Receiver::start(&sim, &db).await;
    let orcid = create_user(&sim, "Racer").await;
    receiver.publish_ready(&orcid, "P-40").await;
    receiver
        .wait_state(&orcid, RegistrationState::Registered)
        .await;

    let (reached_tx, reached) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    let gated = Registry::new(
        db.db.clone(),
        orcid_client(&sim),
        Arc::new(GatedTokens {
            inner: OrcidClientTokens::new(orcid_client(&sim)),
            gate: Mutex::new(Some((reached_tx, release_rx))),
        }),
        CallbackKey::new(TEST_CALLBACK_KEY.as_bytes()),
        &receiver.config.public_url(),
    );
    let reregistering = tokio::spawn(async move { gated.reregister_all().await });
    reached.await.expect("reregister_all reached its PUT");

    // The connection is lost meanwhile: DELETE at ORCID, row `unregistered`.
    let lost = bus::events::ConnectionLost {
        orcid,
        person_id: "P-40".into(),
        reason: bus::events::LostReason::Disconnected,
        detected_at: chrono::Utc::now(),
        primary_orcid: None,
    };
    assert!(
        receiver
            .app
            .registry()
            .apply_lost(&lost)
            .await
            .expect("lost")
    );
    // Now the PUT: ORCID re-creates the webhook (201) for a row no longer eligible.
    release.send(()).expect("release");
    let report = reregistering.await.expect("task").expect("reregister_all");
    assert_eq!(report.withdrawn, 1, "{report:?}");
    assert_eq!(
        (report.created, report.already_registered),
        (0, 0),
        "{report:?}"
    );
    assert!(report.failed.is_empty(), "{report:?}");

    let row = receiver
        .app
        .registry()
        .registration(&orcid)
        .await
        .expect("registry")
        .expect("row");
    assert_eq!(row.state, RegistrationState::Unregistered);
    user_edits_record(&sim, &orcid).await;
    let attempts = flush_webhooks(&sim).await;
    assert!(attempts_for(&attempts, &orcid).is_empty(), "{attempts:#?}");

    receiver.stop().await;
    sim.stop().await;
    db.drop().await;
}
