//! Configuration: the embedded defaults plus the institution and ORCID credentials load; a
//! missing institution or a bad value fails naming the key and the fix.

use idbridge_platform::config::Sources;
use writer::config::{DEFAULTS, WriterConfig};

fn base() -> Sources {
    Sources::new(DEFAULTS).env([
        ("IDBRIDGE__ORCID__CLIENT_ID", "APP-TESTWRITER000001"),
        (
            "IDBRIDGE__ORCID__CLIENT_SECRET",
            "test-writer-client-secret",
        ),
        (
            "IDBRIDGE__WRITER__VAULT__CALLER_TOKEN",
            "TEST_WRITER_CALLER_TOKEN",
        ),
    ])
}

#[test]
fn a_complete_configuration_loads() {
    let config = WriterConfig::from_sources(&base().env([
        ("IDBRIDGE__INSTITUTION__NAME", "Boston University"),
        ("IDBRIDGE__INSTITUTION__CITY", "Boston"),
        ("IDBRIDGE__INSTITUTION__COUNTRY", "US"),
        (
            "IDBRIDGE__INSTITUTION__DISAMBIGUATED_ID",
            "https://ror.org/05qwgg493",
        ),
        ("IDBRIDGE__WRITER__PARTITIONS", "16"),
    ]))
    .expect("loads");
    assert_eq!(config.writer.partitions, 16);
    assert!(!config.writer.recreate_deleted);
    let spec = writer::service_spec(&config);
    assert_eq!(spec.partitions, Some(16));
    let keys: Vec<(&str, &str)> = spec
        .bindings
        .iter()
        .map(|b| (b.exchange.as_str(), b.pattern.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("hr", "hr.hire"),
            ("hr", "hr.leave"),
            ("hr", "hr.change"),
            ("works", "work.upsert"),
            ("works", "work.delete"),
            ("events", "connection.ready"),
            ("events", "record.updated")
        ]
    );
    let org = config.institution();
    assert_eq!(org.name.as_deref(), Some("Boston University"));
    // Secrets stay out of Debug output.
    let debug = format!("{config:?}");
    assert!(!debug.contains("test-writer-client-secret"), "{debug}");
    assert!(!debug.contains("TEST_WRITER_CALLER_TOKEN"), "{debug}");
}

#[test]
fn a_missing_institution_names_every_key() {
    let error = WriterConfig::from_sources(&base()).expect_err("institution required");
    let keys: Vec<&str> = error.problems().iter().map(|p| p.key.as_str()).collect();
    for key in [
        "institution.name",
        "institution.city",
        "institution.country",
        "institution.disambiguated_id",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert!(
        error.to_string().contains("IDBRIDGE__INSTITUTION__NAME"),
        "{error}"
    );
}

#[test]
fn bad_values_are_refused_with_the_fix() {
    let error = WriterConfig::from_sources(&base().env([
        ("IDBRIDGE__INSTITUTION__NAME", "Boston University"),
        ("IDBRIDGE__INSTITUTION__CITY", "Boston"),
        ("IDBRIDGE__INSTITUTION__COUNTRY", "usa"),
        ("IDBRIDGE__INSTITUTION__DISAMBIGUATED_ID", "05qwgg493"),
        ("IDBRIDGE__INSTITUTION__DISAMBIGUATION_SOURCE", "WIKIDATA"),
        ("IDBRIDGE__WRITER__RETRY_TIERS_MS", "[30000, 5000]"),
        ("IDBRIDGE__WRITER__PARTITIONS", "0"),
    ]))
    .expect_err("invalid");
    let keys: Vec<&str> = error.problems().iter().map(|p| p.key.as_str()).collect();
    for key in [
        "institution.country",
        "institution.disambiguation_source",
        "writer.retry_tiers_ms",
        "writer.partitions",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
}

fn institution() -> [(&'static str, &'static str); 4] {
    [
        ("IDBRIDGE__INSTITUTION__NAME", "Boston University"),
        ("IDBRIDGE__INSTITUTION__CITY", "Boston"),
        ("IDBRIDGE__INSTITUTION__COUNTRY", "US"),
        (
            "IDBRIDGE__INSTITUTION__DISAMBIGUATED_ID",
            "https://ror.org/05qwgg493",
        ),
    ]
}

#[test]
fn the_http_api_defaults_to_8082_with_no_callers_and_callers_are_checked() {
    let config = WriterConfig::from_sources(&base().env(institution())).expect("loads");
    let http = &config.writer.http;
    assert!(http.enabled);
    assert_eq!(http.listen, "127.0.0.1:8082");
    assert_eq!(http.max_batch, 500);
    assert!(http.callers.is_empty(), "no callers by default");

    let hash = writer::api::token_sha256_hex("TEST_HR_TOKEN");
    let good = base()
        .env(institution())
        .set(
            "writer.http.callers",
            serde_json::json!([{"name": "hr-system", "token_sha256": hash, "rights": ["hr-events:write", "items:read"]}]),
        )
        .expect("set");
    let config = WriterConfig::from_sources(&good).expect("loads");
    assert_eq!(
        config.writer.http.callers[0].rights,
        [
            writer::api::Right::HrEventsWrite,
            writer::api::Right::ItemsRead
        ]
    );

    let bad = base()
        .env(institution())
        .env([
            ("IDBRIDGE__WRITER__HTTP__LISTEN", "localhost"),
            ("IDBRIDGE__WRITER__HTTP__MAX_BATCH", "0"),
            // One byte over 64 MiB.
            ("IDBRIDGE__WRITER__HTTP__MAX_BODY_BYTES", "67108865"),
        ])
        .set(
            "writer.http.callers",
            serde_json::json!([
                {"name": "hr-system", "token_sha256": "TEST_NOT_A_HASH", "rights": ["hr-events:write"]},
                {"name": "hr-system", "token_sha256": hash, "rights": []},
            ]),
        )
        .expect("set");
    let error = WriterConfig::from_sources(&bad).expect_err("invalid");
    let keys: Vec<&str> = error.problems().iter().map(|p| p.key.as_str()).collect();
    for key in [
        "writer.http.listen",
        "writer.http.max_batch",
        "writer.http.max_body_bytes",
        "writer.http.callers[0].token_sha256",
        "writer.http.callers[1].name",
        "writer.http.callers[1].rights",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert!(!error.to_string().contains("TEST_NOT_A_HASH"), "{error}");

    let unknown_right = base()
        .env(institution())
        .set(
            "writer.http.callers",
            serde_json::json!([{"name": "x", "token_sha256": hash, "rights": ["everything"]}]),
        )
        .expect("set");
    let error = WriterConfig::from_sources(&unknown_right).expect_err("unknown right");
    assert!(
        error.to_string().contains("writer.http.callers.0.rights")
            && error.to_string().contains("hr-events:write, items:read"),
        "{error}"
    );
}

fn problem_keys(error: &idbridge_platform::ConfigError) -> Vec<String> {
    error.problems().iter().map(|p| p.key.clone()).collect()
}

#[test]
fn the_orcid_rate_limit_defaults_to_a_shared_member_bucket_named_after_the_client() {
    let config = WriterConfig::from_sources(&base().env(institution())).expect("loads");
    let limit = config.orcid.rate_limit();
    assert!(limit.shared);
    assert_eq!((limit.per_second, limit.burst), (24, 40));
    assert_eq!(limit.bucket, "orcid:APP-TESTWRITER000001");
    assert_eq!((limit.replicas_hint, limit.batch), (1, 1));

    let config = WriterConfig::from_sources(&base().env(institution()).env([
        ("IDBRIDGE__ORCID__RATE_LIMIT__PER_SECOND", "12"),
        ("IDBRIDGE__ORCID__RATE_LIMIT__REPLICAS_HINT", "3"),
    ]))
    .expect("loads");
    let limit = config.orcid.rate_limit();
    assert_eq!(
        (limit.per_second, limit.burst, limit.replicas_hint),
        (12, 40, 3)
    );

    let error = WriterConfig::from_sources(&base().env(institution()).env([
        ("IDBRIDGE__ORCID__RATE_LIMIT__BURST", "0"),
        ("IDBRIDGE__ORCID__RATE_LIMIT__REPLICAS_HINT", "0"),
    ]))
    .expect_err("refused");
    let keys = problem_keys(&error);
    assert!(
        keys.contains(&"orcid.rate_limit.burst".to_owned()),
        "{error}"
    );
    assert!(
        keys.contains(&"orcid.rate_limit.replicas_hint".to_owned()),
        "{error}"
    );
}

#[test]
fn invitations_are_checked_only_when_enabled() {
    let smtp_without_url = [("IDBRIDGE__INVITATIONS__TRANSPORT", "smtp")];
    // Off (the default): a broken [invitations] does not stop the writer.
    let config = WriterConfig::from_sources(&base().env(institution()).env(smtp_without_url))
        .expect("loads while disabled");
    assert!(config.invitations_config().is_none());

    let error = WriterConfig::from_sources(
        &base()
            .env(institution())
            .env(smtp_without_url)
            .env([("IDBRIDGE__WRITER__INVITATIONS__ENABLED", "true")]),
    )
    .expect_err("refused when enabled");
    assert!(
        problem_keys(&error)
            .iter()
            .all(|k| k.starts_with("invitations.")),
        "{error}"
    );
    assert!(!problem_keys(&error).is_empty());

    let config = WriterConfig::from_sources(
        &base()
            .env(institution())
            .env([("IDBRIDGE__WRITER__INVITATIONS__ENABLED", "true")]),
    )
    .expect("the file transport by default");
    assert!(config.invitations_config().is_some());
}
