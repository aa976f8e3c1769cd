//! Shared test plumbing: a fresh PostgreSQL database per test (or a SQLite file), a fresh
//! mail directory, configurations through the real loader, and a reader of `.eml` files.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use idbridge_platform::config::Sources;
use invitations::{DEFAULTS, Invitation, Invitations, InvitationsConfig};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use uuid::Uuid;

pub const DEADLINE: Duration = Duration::from_secs(30);
pub const PORTAL: &str = "https://orcid.example.edu";

/// Polls `check` until it returns `Some`, or panics naming `what` after [`DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of this test's own, migrated; [`TestDb::drop`] removes it.
pub struct TestDb {
    pub db: DatabaseConnection,
    pub url: String,
    name: Option<String>,
    path: Option<PathBuf>,
}

impl TestDb {
    /// A fresh PostgreSQL database `test_<uuid>` with the invitations table.
    pub async fn postgres() -> Self {
        let admin_url = database_url();
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("invitations tests need PostgreSQL at {admin_url} (set TEST_DATABASE_URL): {e}")
        });
        let name = format!("test_{}", Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        let _ = admin.close().await;
        let (base, _) = admin_url
            .split('?')
            .next()
            .and_then(|u| u.rsplit_once('/'))
            .expect("TEST_DATABASE_URL has a database path");
        let url = format!("{base}/{name}");
        let db = Database::connect(&url)
            .await
            .expect("connect to the test database");
        invitations::migrate(&db).await.expect("migrations apply");
        Self {
            db,
            url,
            name: Some(name),
            path: None,
        }
    }

    /// A fresh SQLite file with the invitations table.
    pub async fn sqlite() -> Self {
        let path =
            std::env::temp_dir().join(format!("invitations-{}.sqlite", Uuid::new_v4().simple()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = Database::connect(&url).await.expect("SQLite");
        invitations::migrate(&db).await.expect("migrations apply");
        Self {
            db,
            url,
            name: None,
            path: Some(path),
        }
    }

    /// Another connection pool to the same database (a second replica).
    pub async fn connect_again(&self) -> DatabaseConnection {
        Database::connect(&self.url)
            .await
            .expect("second connection")
    }

    pub async fn drop(self) {
        let _ = self.db.close().await;
        if let Some(name) = self.name {
            let admin = Database::connect(&database_url()).await.expect("admin");
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .expect("DROP DATABASE");
            let _ = admin.close().await;
        }
        if let Some(path) = self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A fresh directory for the file transport, removed by [`MailDir::remove`].
pub struct MailDir {
    pub path: PathBuf,
}

/// One `.eml` file, split into what the tests look at.
#[derive(Debug, Clone)]
pub struct Mail {
    pub headers: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl MailDir {
    pub fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("invitations-mail-{}", Uuid::new_v4().simple()));
        Self { path }
    }

    /// Every message written so far.
    pub fn mails(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| parse_eml(&std::fs::read_to_string(&p).expect("read .eml")))
            .collect()
    }

    pub fn count(&self) -> usize {
        self.mails().len()
    }

    /// Messages addressed to `address`.
    pub fn to(&self, address: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.to.contains(address))
            .collect()
    }

    pub fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Splits a raw message into headers and body and picks `To` and `Subject`.
pub fn parse_eml(raw: &str) -> Mail {
    let raw = raw.replace("\r\n", "\n");
    let (headers, body) = raw.split_once("\n\n").expect("headers and body");
    let header = |name: &str| {
        headers
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_default()
            .to_owned()
    };
    let body = if headers.contains("Content-Transfer-Encoding: quoted-printable") {
        decode_quoted_printable(body)
    } else {
        body.to_owned()
    };
    Mail {
        to: header("To"),
        subject: header("Subject"),
        headers: headers.to_owned(),
        body,
    }
}

/// Soft line breaks removed, `=XX` decoded (enough for the tests' ASCII text).
fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let (b'=', Some(b)) = (bytes[i], hex) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The configuration through the real loader: file transport into `dir`, the test portal,
/// and the given overrides (`("reminder_after", ["200ms", "400ms"])`…).
pub fn config(dir: &Path, overrides: &[(&str, serde_json::Value)]) -> InvitationsConfig {
    let mut sources = Sources::new(DEFAULTS)
        .set("invitations.file_dir", dir.display().to_string())
        .and_then(|s| s.set("invitations.portal_url", PORTAL))
        .and_then(|s| s.set("invitations.institution_name", "Boston University"))
        .and_then(|s| s.set("invitations.from", "ORCID at BU <orcid@bu.example>"))
        .and_then(|s| s.set("invitations.tick", "50ms"))
        .and_then(|s| s.set("invitations.retry_after", "100ms"))
        .expect("overrides");
    for (key, value) in overrides {
        sources = sources
            .set(&format!("invitations.{key}"), value)
            .expect("override");
    }
    InvitationsConfig::from_sources(&sources).expect("valid configuration")
}

/// Invitations over `db` with the file transport into `mail` and `overrides`.
pub fn service(
    db: &DatabaseConnection,
    mail: &MailDir,
    overrides: &[(&str, serde_json::Value)],
) -> Invitations {
    Invitations::new(db.clone(), config(&mail.path, overrides)).expect("invitations")
}

pub async fn get(inv: &Invitations, person_id: &str) -> Invitation {
    inv.get(person_id)
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("no invitation for {person_id}"))
}

/// A unique address for this test.
pub fn address(name: &str) -> String {
    format!(
        "{name}-{}@example.org",
        &Uuid::new_v4().simple().to_string()[..8]
    )
}
