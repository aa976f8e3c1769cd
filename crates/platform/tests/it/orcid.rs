//! `[orcid]` with `[orcid.rate_limit]`: defaults when absent, per-key overrides, the bucket
//! named after the client id, validation keys, and a client built on a shared bucket.

use idbridge_platform::config::{ConfigError, Problems, Sources, Validate};
use idbridge_platform::orcid::OrcidConfig;
use idbridge_platform::ratelimit::RateLimitConfig;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde::Deserialize;
use uuid::Uuid;

pub(crate) const DEFAULTS: &str = r#"
[orcid]
registry = "sandbox"
client_id = "APP-ABCDEFGHIJKLMNOP"
client_secret = "test-secret"
"#;

#[derive(Debug, Deserialize)]
pub(crate) struct Settings {
    pub(crate) orcid: OrcidConfig,
}

impl Validate for Settings {
    fn validate(&self, problems: &mut Problems) {
        self.orcid.validate(problems);
    }
}

fn keys(error: &ConfigError) -> Vec<String> {
    error.problems().iter().map(|p| p.key.clone()).collect()
}

#[test]
fn without_a_rate_limit_section_orcid_member_limits_are_shared_under_the_client_id() {
    let settings: Settings = Sources::new(DEFAULTS).load().unwrap();
    assert_eq!(settings.orcid.rate_limit, OrcidConfig::default_rate_limit());
    assert!(settings.orcid.rate_limit.bucket.is_empty());
    let effective = settings.orcid.rate_limit();
    assert_eq!(
        effective,
        RateLimitConfig::orcid_member("orcid:APP-ABCDEFGHIJKLMNOP")
    );
    assert!(effective.shared);
    assert_eq!((effective.per_second, effective.burst), (24, 40));
    let client = settings.orcid.client_config().unwrap();
    assert_eq!(client.rate_limit.per_second, 24);
    assert_eq!(client.rate_limit.burst, 40);
}

#[test]
fn single_keys_override_the_defaults_from_a_file_or_the_environment() {
    let defaults = format!("{DEFAULTS}\n[orcid.rate_limit]\nper_second = 10\n");
    let settings: Settings = Sources::new(defaults)
        .env([
            ("IDBRIDGE__ORCID__RATE_LIMIT__BURST", "12"),
            ("IDBRIDGE__ORCID__RATE_LIMIT__BUCKET", "shared-orcid"),
            ("IDBRIDGE__ORCID__RATE_LIMIT__REPLICAS_HINT", "3"),
        ])
        .load()
        .unwrap();
    let limit = settings.orcid.rate_limit();
    assert_eq!(limit.per_second, 10);
    assert_eq!(limit.burst, 12);
    assert_eq!(limit.bucket, "shared-orcid");
    assert_eq!(limit.replicas_hint, 3);
    assert_eq!(limit.batch, 1);
    assert!(limit.shared);
    let client = settings.orcid.client_config().unwrap();
    assert_eq!(
        (client.rate_limit.per_second, client.rate_limit.burst),
        (10, 12)
    );
}

#[test]
fn bad_rate_limits_are_named_with_their_keys() {
    let error = Sources::new(DEFAULTS)
        .env([
            ("IDBRIDGE__ORCID__RATE_LIMIT__PER_SECOND", "0"),
            ("IDBRIDGE__ORCID__RATE_LIMIT__BATCH", "0"),
        ])
        .load::<Settings>()
        .unwrap_err();
    let found = keys(&error);
    assert!(
        found.contains(&"orcid.rate_limit.per_second".to_owned()),
        "{error}"
    );
    assert!(
        found.contains(&"orcid.rate_limit.batch".to_owned()),
        "{error}"
    );

    let error = Sources::new(format!("{DEFAULTS}\n[orcid.rate_limit]\nper_secnd = 5\n"))
        .load::<Settings>()
        .unwrap_err();
    assert!(error.to_string().contains("per_secnd"), "{error}");

    // An empty bucket is fine (the client id names it); a blank client id is reported once,
    // under its own key.
    let error = Sources::new(DEFAULTS)
        .env([("IDBRIDGE__ORCID__CLIENT_ID", "nope")])
        .load::<Settings>()
        .unwrap_err();
    assert_eq!(keys(&error), vec!["orcid.client_id".to_owned()], "{error}");
}

#[tokio::test]
async fn the_client_takes_its_permits_from_the_bucket_in_the_database() {
    let path = std::env::temp_dir().join(format!("platform-orcid-{}.sqlite", Uuid::new_v4()));
    let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let settings: Settings = Sources::new(DEFAULTS).load().unwrap();
    let client = settings.orcid.client(&db).await.unwrap();
    client.rate_limiter().acquire().await;
    client.rate_limiter().acquire().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT name, tokens FROM idbridge_rate_buckets",
        ))
        .await
        .unwrap()
        .expect("the bucket's row");
    assert_eq!(
        row.try_get::<String>("", "name").unwrap(),
        "orcid:APP-ABCDEFGHIJKLMNOP"
    );
    let tokens: f64 = row.try_get("", "tokens").unwrap();
    assert!(
        (37.0..=38.5).contains(&tokens),
        "two permits taken: {tokens}"
    );

    // Not shared: no table is needed.
    let local: Settings = Sources::new(DEFAULTS)
        .env([("IDBRIDGE__ORCID__RATE_LIMIT__SHARED", "false")])
        .load()
        .unwrap();
    let other = Database::connect("sqlite::memory:").await.unwrap();
    let client = local.orcid.client(&other).await.unwrap();
    client.rate_limiter().acquire().await;
    let tables = other
        .query_one_raw(Statement::from_string(
            other.get_database_backend(),
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'idbridge_rate_buckets'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(tables, 0);

    let _ = db.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}
