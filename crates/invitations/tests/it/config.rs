//! The `[invitations]` section: defaults, validation with keys and fixes, no secret leaks.

use idbridge_platform::config::Sources;
use invitations::{DEFAULTS, InvitationsConfig, TransportKind};
use std::time::Duration;

#[test]
fn defaults_are_valid_and_use_the_file_transport() {
    let cfg = InvitationsConfig::defaults().expect("defaults load");
    assert_eq!(cfg.transport, TransportKind::File);
    assert_eq!(
        cfg.reminder_schedule().expect("schedule"),
        vec![
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(14 * 86_400)
        ]
    );
    assert_eq!(cfg.tick_interval().expect("tick"), Duration::from_secs(30));
    assert_eq!(
        cfg.subject_line(),
        "Connect your ORCID iD to Example University"
    );
}

#[test]
fn environment_overrides_apply() {
    let cfg = InvitationsConfig::from_sources(&Sources::new(DEFAULTS).env([
        (
            "IDBRIDGE__INVITATIONS__REMINDER_AFTER",
            r#"["3d", "10d", "20d"]"#,
        ),
        ("IDBRIDGE__INVITATIONS__TICK", "5s"),
    ]))
    .expect("valid");
    assert_eq!(cfg.reminder_schedule().expect("schedule").len(), 3);
    assert_eq!(cfg.tick_interval().expect("tick"), Duration::from_secs(5));
}

fn problems(overrides: &[(&str, &str)]) -> Vec<String> {
    let mut sources = Sources::new(DEFAULTS);
    for (k, v) in overrides {
        sources = sources.set(k, *v).expect("override");
    }
    InvitationsConfig::from_sources(&sources)
        .expect_err("invalid")
        .problems()
        .iter()
        .map(|p| format!("{}: {}", p.key, p.problem))
        .collect()
}

#[test]
fn invalid_values_are_reported_by_key() {
    let p = problems(&[("invitations.transport", "smtp")]);
    assert!(
        p.iter()
            .any(|p| p.starts_with("invitations.smtp_url: is missing")),
        "{p:?}"
    );

    let secret = "hunter2-not-shown";
    let p = problems(&[
        ("invitations.transport", "smtp"),
        (
            "invitations.smtp_url",
            &format!("smtp://u:{secret}@mail.example.org"),
        ),
    ]);
    assert!(p.iter().any(|p| p.contains("unencrypted")), "{p:?}");
    assert!(p.iter().all(|p| !p.contains(secret)), "{p:?}");

    let p = problems(&[
        ("invitations.transport", "smtp"),
        (
            "invitations.smtp_url",
            &format!("https://u:{secret}@mail.example.org"),
        ),
    ]);
    assert!(
        p.iter()
            .any(|p| p.starts_with("invitations.smtp_url: is not")),
        "{p:?}"
    );
    assert!(p.iter().all(|p| !p.contains(secret)), "{p:?}");

    let p = problems(&[
        ("invitations.portal_url", "not a url"),
        ("invitations.from", "nobody"),
    ]);
    assert!(
        p.iter().any(|p| p.starts_with("invitations.portal_url")),
        "{p:?}"
    );
    assert!(p.iter().any(|p| p.starts_with("invitations.from")), "{p:?}");

    let p = problems(&[("invitations.tick", "soon")]);
    assert!(p.iter().any(|p| p.starts_with("invitations.tick")), "{p:?}");

    let mut sources = Sources::new(DEFAULTS)
        .set("invitations.reminder_after", vec!["14d", "7d"])
        .expect("override");
    let err = InvitationsConfig::from_sources(&sources).expect_err("decreasing");
    assert!(
        err.to_string().contains("invitations.reminder_after"),
        "{err}"
    );
    sources = sources
        .set("invitations.reminder_after", Vec::<String>::new())
        .expect("override");
    assert!(
        InvitationsConfig::from_sources(&sources).is_ok(),
        "no reminders is allowed"
    );
}

#[test]
fn tls_urls_with_credentials_are_accepted() {
    for url in [
        "smtps://user:pw@mail.example.org:465",
        "smtp://user:pw@mail.example.org:587?tls=required",
        "smtp://relay.internal:25",
    ] {
        let cfg = InvitationsConfig::from_sources(
            &Sources::new(DEFAULTS)
                .set("invitations.transport", "smtp")
                .and_then(|s| s.set("invitations.smtp_url", url))
                .expect("override"),
        );
        assert!(cfg.is_ok(), "{url}: {:?}", cfg.err());
    }
}
