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
            ("events", "connection.ready")
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
