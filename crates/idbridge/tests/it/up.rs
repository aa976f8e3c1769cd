//! `idbridge up --demo` in a fresh directory: everything in one process on embedded
//! defaults, the scripted tour, the table of what landed in ORCID, exit 0.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use crate::helpers::*;

#[test]
fn up_demo_writes_three_researchers_and_exits_0() {
    let dir = TempDir::new();
    let mut command = idbridge(&["up", "--demo"]);
    command.current_dir(dir.path());
    let run = run(command, std::time::Duration::from_secs(240));
    assert_eq!(
        run.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    let out = &run.stdout;
    assert!(out.contains("ORCID simulator   http://127.0.0.1:"), "{out}");
    assert!(out.contains("token vault API   http://127.0.0.1:"), "{out}");
    assert!(out.contains("reader            reading"), "{out}");
    assert!(
        out.contains("webhooks          off (the receiver needs PostgreSQL"),
        "{out}"
    );

    // The table: person, iD, section, put code, state, detail.
    let table: Vec<Vec<&str>> = out
        .lines()
        .skip_while(|l| !l.starts_with("person "))
        .skip(1)
        .take_while(|l| l.starts_with("demo") && !l.starts_with("demo:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let people: BTreeSet<&str> = table.iter().map(|r| r[0]).collect();
    assert_eq!(people.len(), 3, "three researchers:\n{out}");
    for row in &table {
        assert!(orcid::OrcidId::parse(row[1]).is_ok(), "an iD: {row:?}");
        assert!(row[3].parse::<u64>().is_ok(), "a numeric put code: {row:?}");
        assert_eq!(row[4], "in_orcid", "{row:?}");
    }
    let employments = table.iter().filter(|r| r[2] == "employment").count();
    let works = table.iter().filter(|r| r[2] == "work").count();
    assert_eq!((employments, works), (3, 1), "{out}");
    assert!(
        table
            .iter()
            .any(|r| r[2] == "employment" && r.join(" ").contains("..2026-06-30")),
        "the leave end-dated one item: {out}"
    );

    // Keys on first start, 0600, never printed.
    for name in ["vault-kek", "handoff-key", "writer-api-token"] {
        let path = dir.path().join("data/keys").join(name);
        let mode = std::fs::metadata(&path)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
        let key = std::fs::read_to_string(&path).expect("key");
        assert!(
            !out.contains(key.trim()) && !run.stderr.contains(key.trim()),
            "{name} printed"
        );
    }
    assert!(dir.path().join("data/writer.sqlite").exists());
    assert!(dir.path().join("data/token-vault.sqlite").exists());
    assert!(dir.path().join("data/reader.sqlite").exists());
    assert!(!dir.path().join("data/keys/webhook-callback-key").exists());

    // `keys rotate` with a new active key re-wraps the three connections up stored.
    let kek = std::fs::read_to_string(dir.path().join("data/keys/vault-kek")).expect("kek");
    let handoff =
        std::fs::read_to_string(dir.path().join("data/keys/handoff-key")).expect("hand-off key");
    let new_kek = idbridge_crypto::KeyRing::generate_key().expect("key");
    let mut rotate = idbridge(&["keys", "rotate"]);
    rotate
        .env(
            "IDBRIDGE__DATABASE__URL",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("data/token-vault.sqlite").display()
            ),
        )
        .env(
            "IDBRIDGE__VAULT__KEYS",
            format!(
                "dev1:{},dev2:{}",
                kek.trim(),
                secrecy::ExposeSecret::expose_secret(&new_kek)
            ),
        )
        .env("IDBRIDGE__VAULT__ACTIVE_KEY", "dev2")
        .env(
            "IDBRIDGE__VAULT__HANDOFF_KEYS",
            format!("hk-dev1:{}", handoff.trim()),
        )
        .env("IDBRIDGE__ORCID__CLIENT_ID", "APP-DEMO000000000001")
        .env("IDBRIDGE__ORCID__CLIENT_SECRET", "demo-secret");
    let rotated = crate::helpers::run(rotate, DEADLINE);
    assert_eq!(
        rotated.code(),
        Some(0),
        "{}\n{}",
        rotated.stdout,
        rotated.stderr
    );
    assert!(
        rotated
            .stdout
            .contains("active key dev2: 3 rows re-wrapped")
            && rotated.stdout.contains("0 remaining"),
        "{}",
        rotated.stdout
    );

    // `report` reads the same ledger: four items in ORCID, and as CSV with their put codes.
    let ledger_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("data/writer.sqlite").display()
    );
    let mut summary = idbridge(&["report"]);
    summary.env("IDBRIDGE__DATABASE__URL", &ledger_url);
    let summary = crate::helpers::run(summary, DEADLINE);
    assert_eq!(summary.code(), Some(0), "{}", summary.stderr);
    assert!(summary.stdout.contains("items: 4"), "{}", summary.stdout);
    assert!(
        summary.stdout.contains("in_orcid         4"),
        "{}",
        summary.stdout
    );
    let mut export = idbridge(&["report", "--csv"]);
    export.env("IDBRIDGE__DATABASE__URL", &ledger_url);
    let export = crate::helpers::run(export, DEADLINE);
    assert_eq!(export.code(), Some(0), "{}", export.stderr);
    let lines: Vec<&str> = export.stdout.lines().collect();
    assert!(lines[0].starts_with("person-id,orcid,section,key,generation,put-code,state"));
    assert_eq!(lines.len(), 5, "{}", export.stdout);
    for row in table.iter() {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(row[0]) && l.contains(&format!(",{},in_orcid", row[3]))),
            "{row:?} in the export:\n{}",
            export.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_until_sigterm_then_exits_0() {
    let dir = TempDir::new();
    let mut command = idbridge(&["up"]);
    command.current_dir(dir.path());
    let mut process = Running::spawn(command);
    // The portal comes first in the banner.
    let portal_line = tokio::task::block_in_place(|| process.wait_line("idbridge is up"));
    assert_eq!(portal_line, "idbridge is up");
    let portal_line = tokio::task::block_in_place(|| process.wait_line("  "));
    assert!(
        portal_line.starts_with("  portal            http://127.0.0.1:")
            && portal_line.contains("sign in as a demo researcher, press Connect"),
        "{portal_line}"
    );
    let portal = portal_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the portal's URL")
        .to_owned();
    let sim_line = tokio::task::block_in_place(|| process.wait_line("ORCID simulator   http://"));
    // The demo client's redirect URI is the portal's callback.
    assert!(
        sim_line.contains(&format!("redirect {portal}/orcid/callback")),
        "{sim_line}"
    );
    let sim = sim_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the simulator's URL")
        .to_owned();
    tokio::task::block_in_place(|| process.wait_line("Ctrl-C stops everything."));
    // The portal answers: / leads to the development sign-in page.
    let home = reqwest::get(format!("{portal}/"))
        .await
        .expect("GET the portal");
    assert_eq!(home.status().as_u16(), 200, "{}", home.url());
    assert!(home.url().path().starts_with("/signin"), "{}", home.url());
    let page = home.text().await.expect("the page");
    assert!(page.contains("id=\"dev-signin-form\""), "{page}");
    assert!(
        page.contains("Boston University"),
        "the portal speaks for the demo institution the writer names: {page}"
    );
    // The demo researchers exist at the simulator.
    let researcher = process
        .seen
        .iter()
        .find(|l| l.contains("@demo.invalid"))
        .and_then(|l| {
            l.split_whitespace()
                .find(|w| orcid::OrcidId::parse(w).is_ok())
        })
        .expect("a demo researcher's iD")
        .to_owned();
    let record = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{sim}/_sim/records/{researcher}"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&record.stdout), "200");

    process.signal("TERM");
    let status =
        tokio::task::block_in_place(|| process.wait_exit(std::time::Duration::from_secs(30)));
    assert_eq!(status.code(), Some(0), "{}", process.seen.join("\n"));
    assert!(process.seen.iter().any(|l| l == "idbridge stopped"));
}

/// The same command on PostgreSQL and RabbitMQ (the simulator stays: no ORCID credentials).
#[tokio::test]
async fn up_demo_on_postgresql_and_rabbitmq() {
    let (db_url, db_name) = create_database().await;
    let prefix = prefix();
    let dir = TempDir::new();
    let mut command = idbridge(&[
        "up",
        "--demo",
        "--database-url",
        &db_url,
        "--amqp-url",
        &amqp_url(),
    ]);
    command
        .current_dir(dir.path())
        .env("IDBRIDGE__BUS__PREFIX", &prefix);
    let result =
        tokio::task::spawn_blocking(move || run(command, std::time::Duration::from_secs(240)))
            .await
            .expect("join");
    assert_eq!(
        result.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        result.stdout,
        result.stderr
    );
    let rows = result
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("person "))
        .skip(1)
        .take_while(|l| l.starts_with("demo") && !l.starts_with("demo:"))
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 4 && cols[3].parse::<u64>().is_ok() && cols[4] == "in_orcid"
        })
        .count();
    assert_eq!(rows, 4, "{}", result.stdout);
    // Nothing went to SQLite.
    assert!(!dir.path().join("data/writer.sqlite").exists());
    assert!(!dir.path().join("data/reader.sqlite").exists());
    // On PostgreSQL the webhook receiver runs, with a kept callback key (0600, never printed).
    assert!(
        result
            .stdout
            .contains("webhooks          on: the receiver at http://127.0.0.1:"),
        "{}",
        result.stdout
    );
    let key_file = dir.path().join("data/keys/webhook-callback-key");
    let mode = std::fs::metadata(&key_file)
        .expect("the callback key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let key = std::fs::read_to_string(&key_file).expect("key");
    assert!(key.trim().len() >= 32);
    assert!(!result.stdout.contains(key.trim()) && !result.stderr.contains(key.trim()));
    assert!(
        result.stderr.contains("webhook receiver stopped"),
        "the receiver stopped with the rest: {}",
        result.stderr
    );

    // The ledger is in PostgreSQL.
    let mut report = idbridge(&["report"]);
    report.env("IDBRIDGE__DATABASE__URL", &db_url);
    let report = tokio::task::spawn_blocking(move || run(report, DEADLINE))
        .await
        .expect("join");
    assert!(
        report.stdout.contains("in_orcid         4"),
        "{}\n{}",
        report.stdout,
        report.stderr
    );

    // Remove this run's broker objects and database.
    let config = writer::config::WriterConfig::from_sources(
        &idbridge_platform::config::Sources::new(writer::config::DEFAULTS)
            .set("institution.name", "x")
            .and_then(|s| s.set("institution.city", "x"))
            .and_then(|s| s.set("institution.country", "US"))
            .and_then(|s| s.set("institution.disambiguated_id", "https://ror.org/05qwgg493"))
            .and_then(|s| s.set("orcid.client_id", "APP-DEMO000000000001"))
            .and_then(|s| s.set("orcid.client_secret", "x"))
            .expect("overrides"),
    )
    .expect("writer config");
    let bus = amqp_bus(&prefix).await;
    let _ = bus
        .delete(&writer::topology(&writer::service_spec(&config)))
        .await;
    let _ = bus
        .delete(
            &bus::Topology::new()
                .exchange(bus::events::exchanges::EVENTS)
                .service(token_vault::service_spec()),
        )
        .await;
    let reader_config = reader::config::ReaderConfig::from_sources(
        &idbridge_platform::config::Sources::new(reader::config::DEFAULTS)
            .set("orcid.client_id", "APP-DEMO000000000001")
            .and_then(|s| s.set("orcid.client_secret", "x"))
            .expect("overrides"),
    )
    .expect("reader config");
    let _ = bus
        .delete(&reader::topology(&reader::service_spec(&reader_config)))
        .await;
    let receiver_config = webhook_receiver::config::ReceiverConfig::from_sources(
        &idbridge_platform::config::Sources::new(webhook_receiver::config::DEFAULTS)
            .set("webhooks.public_url", "http://127.0.0.1:9")
            .and_then(|s| s.set("webhooks.callback_key", "x".repeat(40)))
            .and_then(|s| s.set("orcid.client_id", "APP-DEMO000000000001"))
            .and_then(|s| s.set("orcid.client_secret", "x"))
            .expect("overrides"),
    )
    .expect("receiver config");
    let _ = bus
        .delete(&webhook_receiver::topology(
            &webhook_receiver::service_spec(&receiver_config),
        ))
        .await;
    bus.close().await;
    drop_database(&db_name).await;
}
