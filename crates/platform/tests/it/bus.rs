//! The shared `[bus]` section: its validation messages and the bus it opens.

use idbridge_platform::bus::{BusConfig, connect};
use idbridge_platform::config::{Problems, Validate};
use secrecy::SecretString;

fn problems(config: &BusConfig) -> Vec<(String, String)> {
    let mut problems = Problems::default();
    config.validate(&mut problems);
    problems
        .as_slice()
        .iter()
        .map(|p| (p.key.clone(), p.problem.clone()))
        .collect()
}

#[test]
fn amqp_urls_and_no_url_are_accepted() {
    for url in [None, Some("amqp://u:p@h:5672/%2f"), Some("amqps://h")] {
        let config = BusConfig {
            amqp_url: url.map(|u| SecretString::from(u.to_owned())),
            prefix: "idbridge".to_owned(),
        };
        assert!(problems(&config).is_empty(), "{url:?}");
    }
}

#[test]
fn an_empty_prefix_and_a_foreign_url_are_both_reported_without_the_url() {
    let config = BusConfig {
        amqp_url: Some(SecretString::from(
            "http://u:TEST_AMQP_PASSWORD@h".to_owned(),
        )),
        prefix: "  ".to_owned(),
    };
    let found = problems(&config);
    assert_eq!(
        found,
        [
            ("bus.prefix".to_owned(), "is empty".to_owned()),
            (
                "bus.amqp_url".to_owned(),
                "is not an amqp:// or amqps:// URL".to_owned()
            ),
        ]
    );
    assert!(!format!("{found:?} {config:?}").contains("TEST_AMQP_PASSWORD"));
}

#[tokio::test]
async fn without_a_url_the_bus_is_in_process_under_the_prefix() {
    let bus = connect(&BusConfig {
        amqp_url: None,
        prefix: "platformtest".to_owned(),
    })
    .await
    .unwrap();
    assert_eq!(bus.names().prefix(), "platformtest");
    assert_eq!(bus.names().queue("writer"), "platformtest.writer");
}

#[tokio::test]
async fn a_prefix_the_bus_refuses_is_an_error() {
    let refused = connect(&BusConfig {
        amqp_url: None,
        prefix: "has spaces and #".to_owned(),
    })
    .await;
    assert!(refused.is_err());
}
