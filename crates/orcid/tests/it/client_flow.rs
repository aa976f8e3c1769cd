//! The whole client against orcid-sim (started in-process on port 0): OAuth, member API
//! reads and writes, bulk works, refresh, revocation and webhooks.

use orcid::client::{
    OrcidClient, Refresh, Scope, Scopes, Section, UserTokens, WebhookRegistration,
};
use orcid::model::{
    Affiliation, AffiliationType, DisambiguationSource, ExternalId, Organization, PartialDate,
    Work, WorkType,
};
use orcid::{Error, OrcidId};
use orcid_sim::{SimConfig, SimHandle};
use serde_json::{Value, json};

use crate::client_helpers::{CannedServer, Reply, TEST_CLIENT_ID, TEST_CLIENT_SECRET, test_config};

const REDIRECT_URI: &str = "https://idbridge.example/orcid/callback";

/// A running simulator, an `OrcidClient` of it, and a plain HTTP client for its test hooks.
struct Sim {
    handle: SimHandle,
    client: OrcidClient,
    hooks: reqwest::Client,
}

impl Sim {
    async fn start() -> Sim {
        let handle = orcid_sim::spawn(SimConfig::for_tests().with_client(
            TEST_CLIENT_ID,
            TEST_CLIENT_SECRET,
            REDIRECT_URI,
        ))
        .await
        .unwrap();
        let client = OrcidClient::new(test_config(handle.base_url())).unwrap();
        let hooks = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Sim {
            handle,
            client,
            hooks,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// `POST /_sim/users`: a new registered user.
    async fn new_user(&self, given: &str, family: &str) -> OrcidId {
        let email = format!("{}.{}@mailinator.com", given.to_lowercase(), rand_suffix());
        let response = self
            .hooks
            .post(self.url("/_sim/users"))
            .json(&json!({"given-names": given, "family-name": family, "email": email, "password": "test-password-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        let body: Value = response.json().await.unwrap();
        body["orcid"].as_str().unwrap().parse().unwrap()
    }

    /// The user approves the client at `/oauth/authorize` (headless); returns the code.
    async fn authorize(&self, user: &OrcidId, scopes: impl Into<Scopes>) -> String {
        let url = format!(
            "{}&sim_user={user}&sim_decision=authorize",
            self.client
                .authorize_url(REDIRECT_URI, scopes)
                .state("flow-state")
                .to_url()
        );
        let response = self.hooks.get(url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 302);
        let location = response.headers()["location"].to_str().unwrap();
        let location = url::Url::parse(location).unwrap();
        assert!(location.as_str().starts_with(REDIRECT_URI), "{location}");
        let get = |k: &str| {
            location
                .query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(get("state").as_deref(), Some("flow-state"));
        get("code").expect("a code on the redirect")
    }

    /// A new user who connected with `scopes`.
    async fn connected_user(&self, scopes: impl Into<Scopes>) -> UserTokens {
        let user = self.new_user("Sofia", "Garcia").await;
        let code = self.authorize(&user, scopes).await;
        let tokens = self
            .client
            .exchange_code(&code, REDIRECT_URI)
            .await
            .unwrap();
        assert_eq!(tokens.orcid, user);
        tokens
    }

    /// The user removes the client from their trusted organizations.
    async fn user_revokes(&self, user: &OrcidId) {
        let response = self
            .hooks
            .post(self.url(&format!("/_sim/users/{user}/revoke")))
            .json(&json!({"client_id": TEST_CLIENT_ID}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    u64::from(std::process::id()) * 1_000_000 + NEXT.fetch_add(1, Ordering::Relaxed)
}

fn employment() -> Affiliation {
    Affiliation::new(Organization::new(
        "Boston University",
        "Boston",
        Some("Massachusetts".to_owned()),
        "US",
        DisambiguationSource::Ror,
        "https://ror.org/05qwgg493",
    ))
    .with_department("Primary Care Health Services")
    .with_role("Research Engineer")
    .with_start(PartialDate::new(2021, Some(1), Some(1)).unwrap())
}

fn work(title: &str, doi: &str) -> Work {
    Work::new(
        title,
        WorkType::JournalArticle,
        ExternalId::self_id("doi", doi),
    )
}

const EMPLOYMENT: AffiliationType = AffiliationType::Employment;

#[tokio::test]
async fn code_exchange_then_employment_create_read_update_list_delete() {
    let sim = Sim::start().await;
    let tokens = sim
        .connected_user([Scope::ReadLimited, Scope::ActivitiesUpdate])
        .await;
    assert!(
        tokens.scopes.contains(&Scope::ActivitiesUpdate),
        "{}",
        tokens.scopes
    );
    assert!(tokens.scopes.contains(&Scope::ReadLimited));
    assert!(tokens.refresh_token.is_some());
    assert!(tokens.expires_in.is_some_and(|d| !d.is_zero()));
    let (client, token, orcid) = (&sim.client, &tokens.access_token, &tokens.orcid);

    let put_code = client
        .create_affiliation(token, orcid, EMPLOYMENT, &employment())
        .await
        .unwrap();

    let read = client
        .affiliation(token, orcid, EMPLOYMENT, put_code)
        .await
        .unwrap();
    assert_eq!(read.put_code, Some(put_code));
    assert_eq!(
        read.department_name.as_deref(),
        Some("Primary Care Health Services")
    );
    assert_eq!(
        read.source.as_ref().and_then(|s| s.client_id()),
        Some(TEST_CLIENT_ID)
    );

    // Update from what was read: add an end date.
    let changed = read
        .clone()
        .with_end(PartialDate::new(2023, Some(6), None).unwrap());
    let updated = client
        .update_affiliation(token, orcid, EMPLOYMENT, put_code, &changed)
        .await
        .unwrap();
    assert_eq!(updated.put_code, Some(put_code));
    let end = updated.end_date.as_ref().and_then(|d| d.valid()).unwrap();
    assert_eq!((end.year(), end.month()), (2023, Some(6)));

    let listing = client.affiliations(token, orcid, EMPLOYMENT).await.unwrap();
    assert_eq!(listing.put_codes(), vec![put_code]);

    client
        .delete(token, orcid, Section::from(EMPLOYMENT), put_code)
        .await
        .unwrap();
    let error = client
        .affiliation(token, orcid, EMPLOYMENT, put_code)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    assert!(
        client
            .affiliations(token, orcid, EMPLOYMENT)
            .await
            .unwrap()
            .put_codes()
            .is_empty()
    );

    // The whole record reads, and a generic read of the same listing works too.
    let record = client.record(token, orcid).await.unwrap();
    assert!(record.activities_summary.is_some());
    let raw: Value = client
        .read(
            token,
            orcid,
            orcid::client::Resource::List(Section::from(EMPLOYMENT)),
        )
        .await
        .unwrap();
    assert!(raw.get("affiliation-group").is_some(), "{raw}");
    sim.handle.stop().await;
}

#[tokio::test]
async fn bulk_create_and_bulk_read_works() {
    let sim = Sim::start().await;
    let tokens = sim
        .connected_user([Scope::ReadLimited, Scope::ActivitiesUpdate])
        .await;
    let (client, token, orcid) = (&sim.client, &tokens.access_token, &tokens.orcid);

    let works = [
        work("First work", "10.5555/flow-1"),
        work("Second work", "10.5555/flow-2"),
        // Same self DOI as the first, from the same source: refused in place (9021).
        work("First again", "10.5555/flow-1"),
    ];
    let result = client.create_works(token, orcid, &works).await.unwrap();
    let put_codes = result.put_codes();
    assert_eq!(put_codes.len(), 3);
    assert!(
        put_codes[0].is_some() && put_codes[1].is_some(),
        "{result:?}"
    );
    assert_eq!(put_codes[2], None);
    let errors: Vec<_> = result.errors().collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, 2);
    assert_eq!(errors[0].1.error_code, Some(9021));

    let created: Vec<_> = put_codes.into_iter().flatten().collect();
    let read = client.works_bulk(token, orcid, &created).await.unwrap();
    let titles: Vec<_> = read
        .works()
        .map(|(_, w)| w.title_text().unwrap_or("").to_owned())
        .collect();
    assert_eq!(titles, ["First work", "Second work"]);

    let listing = client.works(token, orcid).await.unwrap();
    let mut listed = listing.put_codes();
    listed.sort();
    let mut expected = created.clone();
    expected.sort();
    assert_eq!(listed, expected);

    // One work by itself, and a duplicate by POST.
    let one = client.work(token, orcid, created[1]).await.unwrap();
    assert_eq!(one.title_text(), Some("Second work"));
    let error = client
        .create_work(token, orcid, &work("Dup", "10.5555/flow-2"))
        .await
        .unwrap_err();
    match error {
        Error::Duplicate { put_code, .. } => assert_eq!(put_code, Some(created[1])),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    sim.handle.stop().await;
}

#[tokio::test]
async fn refresh_keeping_and_revoking_the_old_token_then_revoke() {
    let sim = Sim::start().await;
    let first = sim
        .connected_user([Scope::ReadLimited, Scope::ActivitiesUpdate])
        .await;
    let (client, orcid) = (&sim.client, &first.orcid);

    // revoke_old=false: both the old and the new token work.
    let second = client
        .refresh(
            first.refresh_token.as_ref().unwrap(),
            &Refresh::keeping_old(),
        )
        .await
        .unwrap();
    assert_eq!(&second.orcid, orcid);
    assert_ne!(
        second.access_token.expose_secret(),
        first.access_token.expose_secret()
    );
    client.works(&first.access_token, orcid).await.unwrap();
    client.works(&second.access_token, orcid).await.unwrap();

    // revoke_old=true: the old one stops working.
    let third = client
        .refresh(
            second.refresh_token.as_ref().unwrap(),
            &Refresh::revoking_old(),
        )
        .await
        .unwrap();
    let error = client.works(&second.access_token, orcid).await.unwrap_err();
    assert!(matches!(error, Error::InvalidToken), "{error:?}");
    client.works(&third.access_token, orcid).await.unwrap();

    // A narrower scope: the new token may read but not write.
    let narrow = client
        .refresh(
            third.refresh_token.as_ref().unwrap(),
            &Refresh::keeping_old().with_scopes(Scope::ReadLimited),
        )
        .await
        .unwrap();
    assert_eq!(narrow.scopes, Scopes::from(Scope::ReadLimited));
    let error = client
        .create_work(&narrow.access_token, orcid, &work("W", "10.5555/narrow"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::MissingScope { .. }), "{error:?}");
    assert_eq!(error.error_code(), Some(9038));

    // The client revokes a token: it stops working.
    client.revoke(&third.access_token).await.unwrap();
    let error = client.works(&third.access_token, orcid).await.unwrap_err();
    assert!(matches!(error, Error::InvalidToken), "{error:?}");
    assert!(error.needs_new_token());

    // The refresh token of a revoked pair is refused by the token endpoint ("Parent token is
    // disabled": ORCID's status for it is not documented, so either shape will do).
    let error = client
        .refresh(
            third.refresh_token.as_ref().unwrap(),
            &Refresh::keeping_old(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidToken
                | Error::OAuth {
                    kind: orcid::OAuthErrorKind::InvalidGrant,
                    ..
                }
        ),
        "{error:?}"
    );
    assert!(error.needs_new_token());
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_token_the_user_revoked_is_invalid_but_may_still_delete() {
    let sim = Sim::start().await;
    let tokens = sim
        .connected_user([Scope::ReadLimited, Scope::ActivitiesUpdate])
        .await;
    let (client, token, orcid) = (&sim.client, &tokens.access_token, &tokens.orcid);
    let put_code = client
        .create_work(
            token,
            orcid,
            &work("Written before revocation", "10.5555/revoked"),
        )
        .await
        .unwrap();

    sim.user_revokes(orcid).await;

    let error = client.works(token, orcid).await.unwrap_err();
    assert!(matches!(error, Error::InvalidToken), "{error:?}");
    assert!(!error.is_retryable());
    let error = client
        .create_work(token, orcid, &work("After", "10.5555/after"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidToken), "{error:?}");
    // ORCID lets the client clean up its own items (reference §4.2).
    client
        .delete(token, orcid, Section::Work, put_code)
        .await
        .unwrap();
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_token_for_another_record_is_refused() {
    let sim = Sim::start().await;
    let tokens = sim.connected_user([Scope::ReadLimited]).await;
    let other = sim.new_user("Other", "Person").await;
    let error = sim
        .client
        .works(&tokens.access_token, &other)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::TokenForOtherRecord { .. }),
        "{error:?}"
    );
    assert_eq!(error.error_code(), Some(9017));
    sim.handle.stop().await;
}

#[tokio::test]
async fn webhook_register_twice_then_unregister() {
    let sim = Sim::start().await;
    let user = sim.new_user("Webhook", "Watcher").await;
    // Deliveries, if any, go to a loopback server of the test.
    let receiver = CannedServer::always(Reply::status(204)).await;
    let callback = format!("{}/orcid/{user}/updated", receiver.base_url());

    let webhook_token = sim.client.client_credentials(Scope::Webhook).await.unwrap();
    assert!(webhook_token.scopes.contains(&Scope::Webhook));
    let token = &webhook_token.access_token;

    let first = sim
        .client
        .register_webhook(token, &user, &callback)
        .await
        .unwrap();
    assert_eq!(first, WebhookRegistration::Created);
    let again = sim
        .client
        .register_webhook(token, &user, &callback)
        .await
        .unwrap();
    assert_eq!(again, WebhookRegistration::AlreadyRegistered);

    sim.client
        .unregister_webhook(token, &user, &callback)
        .await
        .unwrap();
    let error = sim
        .client
        .unregister_webhook(token, &user, &callback)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");

    // A /read-public token may not register webhooks.
    let read_public = sim
        .client
        .client_credentials(Scope::ReadPublic)
        .await
        .unwrap();
    let error = sim
        .client
        .register_webhook(&read_public.access_token, &user, &callback)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::MissingScope { .. }), "{error:?}");
    sim.handle.stop().await;
}

#[tokio::test]
async fn a_wrong_code_is_an_oauth_invalid_grant() {
    let sim = Sim::start().await;
    let error = sim
        .client
        .exchange_code("Zz9Yy8", REDIRECT_URI)
        .await
        .unwrap_err();
    match &error {
        Error::OAuth { kind, .. } => {
            assert_eq!(*kind, orcid::error::OAuthErrorKind::InvalidGrant)
        }
        other => panic!("expected OAuth, got {other:?}"),
    }
    assert!(!error.to_string().contains("Zz9Yy8"));
    sim.handle.stop().await;
}
