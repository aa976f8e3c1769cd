//! The client-wide rate limiter: shared by clones, counted by its own permits and waits.
//!
//! No assertion depends on how fast the machine is: the buckets refill at one permit per
//! second, so "the burst was free" holds unless the test stalls for a whole second, and
//! waiting is read from the limiter's counters, never from a clock.

use std::sync::Arc;
use std::time::Duration;

use orcid::client::{
    ClientConfig, GovernorRateLimiter, OrcidClient, RateLimit, RateLimiter, Resource, RetryPolicy,
    Section,
};
use orcid::model::PutCode;
use serde_json::Value;

use crate::client_helpers::*;

/// A bucket of `burst` permits that refills one per second.
fn slow_bucket(burst: u32) -> Arc<GovernorRateLimiter> {
    Arc::new(
        GovernorRateLimiter::new(RateLimit {
            per_second: 1,
            burst,
        })
        .unwrap(),
    )
}

#[tokio::test]
async fn clones_of_a_client_share_one_bucket() {
    let server = CannedServer::always(Reply::json(200, "application/vnd.orcid+json", "{}")).await;
    let limiter = slow_bucket(2);
    let client =
        OrcidClient::with_rate_limiter(test_config(server.base_url()), limiter.clone()).unwrap();
    let twin = client.clone();
    let read = |c: &OrcidClient| {
        let c = c.clone();
        async move {
            c.read::<Value>(&test_token(), &test_orcid(), Resource::Record)
                .await
                .unwrap()
        }
    };

    // One request through each clone takes the whole burst of two …
    read(&client).await;
    read(&twin).await;
    assert_eq!(limiter.stats().waits, 0, "{:?}", limiter.stats());
    // … so the next one, through either clone, waits for the refill.
    read(&client).await;
    let stats = limiter.stats();
    assert_eq!(stats.permits, 3, "{stats:?}");
    assert_eq!(stats.waits, 1, "{stats:?}");
    assert!(!stats.waited.is_zero(), "{stats:?}");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_burst_of_forty_is_free_and_the_forty_first_permit_waits() {
    let limiter = slow_bucket(40);
    for _ in 0..40 {
        assert_eq!(limiter.acquire().await, Duration::ZERO);
    }
    assert_eq!(limiter.stats().waits, 0, "{:?}", limiter.stats());
    let waited = limiter.acquire().await;
    let stats = limiter.stats();
    assert!(!waited.is_zero(), "the 41st permit waits: {stats:?}");
    assert_eq!(stats.waits, 1, "{stats:?}");
    assert_eq!(stats.permits, 41, "{stats:?}");
    assert_eq!(stats.waited, waited);
}

#[test]
fn the_default_limit_is_orcids_member_limit() {
    let member = RateLimit {
        per_second: 24,
        burst: 40,
    };
    assert_eq!(RateLimit::default(), member);
    assert_eq!(RateLimit::ORCID_MEMBER, member);
    let config = ClientConfig::sandbox(TEST_CLIENT_ID, TEST_CLIENT_SECRET.into());
    assert_eq!(config.rate_limit, member);
    let limiter = GovernorRateLimiter::new(config.rate_limit).unwrap();
    assert_eq!(limiter.limit(), member);
}

#[tokio::test]
async fn retries_take_permits_too() {
    let server = CannedServer::start(
        vec![Reply::status(503), Reply::status(503)],
        Reply::status(200),
    )
    .await;
    let limiter = Arc::new(GovernorRateLimiter::new(RateLimit::default()).unwrap());
    let client = OrcidClient::with_rate_limiter(
        test_config(server.base_url()).with_retry(RetryPolicy::new(
            3,
            Duration::from_millis(1),
            Duration::from_millis(5),
        )),
        limiter.clone(),
    )
    .unwrap();
    client
        .delete(&test_token(), &test_orcid(), Section::Work, PutCode(1))
        .await
        .unwrap();
    assert_eq!(limiter.stats().permits, 3);
    assert_eq!(server.hits(), 3);
}

#[test]
fn a_zero_rate_is_a_configuration_error() {
    let error = GovernorRateLimiter::new(RateLimit {
        per_second: 0,
        burst: 1,
    })
    .unwrap_err();
    assert!(matches!(error, orcid::Error::Config(_)), "{error:?}");
}
