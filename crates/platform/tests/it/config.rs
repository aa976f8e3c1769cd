//! Layering, validation messages and secret hygiene of the configuration loader.

use std::io::Write;

use idbridge_platform::config::{ConfigError, Problems, Sources, Validate};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const DEFAULTS: &str = r#"
[server]
host = "127.0.0.1"
port = 8080

[db]
url = "sqlite://default.sqlite"
"#;

#[derive(Debug, Deserialize)]
struct Settings {
    server: Server,
    db: Db,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Server {
    host: String,
    port: u16,
}

#[derive(Debug, Deserialize)]
struct Db {
    url: String,
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    pool: Option<u32>,
}

impl Validate for Settings {
    fn validate(&self, problems: &mut Problems) {
        if self.server.port == 1 {
            problems.add("server.port", "is 1", "use 0 (any) or a port above 1023");
        }
        if self.db.pool == Some(0) {
            problems.add("db.pool", "is zero", "use at least 1");
        }
    }
}

#[test]
fn defaults_then_file_then_env_then_overrides() {
    let dir = std::env::temp_dir().join(format!("platform-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("layer.toml");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(
        file,
        "[server]\nport = 9000\n[db]\nurl = \"postgres://file\""
    )
    .unwrap();

    let only_defaults: Settings = Sources::new(DEFAULTS).load().unwrap();
    assert_eq!(only_defaults.server.port, 8080);
    assert_eq!(only_defaults.db.url, "sqlite://default.sqlite");

    let with_file: Settings = Sources::new(DEFAULTS).file(&path).load().unwrap();
    assert_eq!(with_file.server.port, 9000);
    assert_eq!(
        with_file.server.host, "127.0.0.1",
        "untouched keys keep their default"
    );
    assert_eq!(with_file.db.url, "postgres://file");

    let with_env: Settings = Sources::new(DEFAULTS)
        .file(&path)
        .env([
            ("IDBRIDGE__SERVER__PORT", "9100"),
            ("idbridge__db__password", "TEST_DB_PASSWORD"),
            ("OTHER__SERVER__PORT", "1"),
        ])
        .load()
        .unwrap();
    assert_eq!(with_env.server.port, 9100);
    assert_eq!(with_env.db.url, "postgres://file");
    assert_eq!(
        with_env
            .db
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_owned())
            .as_deref(),
        Some("TEST_DB_PASSWORD"),
        "names are case-insensitive"
    );

    let overridden: Settings = Sources::new(DEFAULTS)
        .file(&path)
        .env([("IDBRIDGE__SERVER__PORT", "9100")])
        .set("server.port", 0u16)
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(overridden.server.port, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_mistyped_value_names_the_key_the_variable_and_the_fix_without_quoting_it() {
    let err = Sources::new(DEFAULTS)
        .env([("IDBRIDGE__SERVER__PORT", "TEST_SECRET_IN_WRONG_PLACE")])
        .load::<Settings>()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("server.port"), "{text}");
    assert!(text.contains("IDBRIDGE__SERVER__PORT"), "{text}");
    assert!(text.contains("expected u16"), "{text}");
    assert!(!text.contains("TEST_SECRET_IN_WRONG_PLACE"), "{text}");
    assert_eq!(err.problems().len(), 1);
}

#[test]
fn a_missing_key_says_how_to_set_it() {
    let err = Sources::new("[server]\nhost = \"h\"\nport = 1\n")
        .load::<Settings>()
        .unwrap_err();
    let problem = &err.problems()[0];
    assert_eq!(problem.key, "db");
    assert!(problem.fix.contains("IDBRIDGE__DB"), "{problem}");
}

#[test]
fn unknown_keys_in_strict_sections_are_refused() {
    let err = Sources::new(DEFAULTS)
        .env([("IDBRIDGE__SERVER__PROT", "1")])
        .load::<Settings>()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unknown key `prot`"), "{text}");
    assert!(text.contains("port"), "lists known keys: {text}");
}

#[test]
fn every_validation_problem_is_reported_at_once() {
    let err = Sources::new(DEFAULTS)
        .env([("IDBRIDGE__SERVER__PORT", "1"), ("IDBRIDGE__DB__POOL", "0")])
        .load::<Settings>()
        .unwrap_err();
    let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["server.port", "db.pool"]);
    let text = err.to_string();
    assert!(text.contains("use at least 1"), "{text}");
}

#[test]
fn a_named_file_must_exist() {
    let err = Sources::new(DEFAULTS)
        .file("/nonexistent/idbridge.toml")
        .load::<Settings>()
        .unwrap_err();
    assert!(matches!(err, ConfigError::FileMissing { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/idbridge.toml"));
}

#[test]
fn a_broken_file_does_not_echo_its_lines() {
    let path = std::env::temp_dir().join(format!("platform-broken-{}.toml", std::process::id()));
    std::fs::write(&path, "[db]\npassword = \"TEST_SECRET_LINE\n").unwrap();
    let err = Sources::new(DEFAULTS)
        .file(&path)
        .load::<Settings>()
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("TEST_SECRET_LINE"), "{text}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn debug_of_sources_shows_names_not_values() {
    let sources = Sources::new(DEFAULTS).env([("IDBRIDGE__DB__PASSWORD", "TEST_DB_PASSWORD")]);
    let debug = format!("{sources:?}");
    assert!(debug.contains("IDBRIDGE__DB__PASSWORD"), "{debug}");
    assert!(!debug.contains("TEST_DB_PASSWORD\""), "{debug}");
    assert!(!debug.contains("= TEST_DB_PASSWORD"), "{debug}");
}
