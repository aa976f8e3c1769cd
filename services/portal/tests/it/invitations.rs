//! The invitations page against the REAL writer (`[writer.invitations] enabled = true`,
//! `[invitations] transport = "file"` into a temporary directory): a hire with an e-mail for
//! a person not connected is invited, the administrators' page lists it, "Resend" sends a
//! second e-mail (CSRF checked, administrators only), a person who connects is shown
//! connected and is not sent anything more; a writer with invitations off gives a clear
//! notice.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Browser, DEADLINE, Options, TestPortal, connect, http, spawn_with};
use crate::real_writer::{
    HR_AT_WRITER, PORTAL_AT_WRITER, RealWriter, free_port, start_writer_with,
};

pub(crate) async fn portal_for_writer(writer_port: u16) -> TestPortal {
    spawn_with(Options {
        portal_env: vec![
            (
                "IDBRIDGE__PORTAL__WRITER__URL".to_owned(),
                format!("http://127.0.0.1:{writer_port}"),
            ),
            (
                "IDBRIDGE__PORTAL__WRITER__CALLER_TOKEN".to_owned(),
                PORTAL_AT_WRITER.to_owned(),
            ),
        ],
        ..Options::default()
    })
    .await
}

pub(crate) async fn writer_with_invitations(
    portal: &TestPortal,
    port: u16,
    mail_dir: &Path,
) -> RealWriter {
    let env = [
        ("IDBRIDGE__WRITER__INVITATIONS__ENABLED", "true"),
        ("IDBRIDGE__INVITATIONS__TRANSPORT", "file"),
        (
            "IDBRIDGE__INVITATIONS__FILE_DIR",
            mail_dir.to_str().expect("utf-8 temp dir"),
        ),
        ("IDBRIDGE__INVITATIONS__PORTAL_URL", portal.url.as_str()),
        ("IDBRIDGE__INVITATIONS__TICK", "200ms"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    start_writer_with(portal, port, env).await
}

pub(crate) fn eml_files(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub(crate) async fn post_hire(writer: &RealWriter, person_id: &str, email: &str) {
    post_hire_named(writer, person_id, email, "Josiah").await;
}

async fn post_hire_named(writer: &RealWriter, person_id: &str, email: &str, given: &str) {
    let event = json!({
        "event_id": format!("hr-{}", Uuid::new_v4().simple()),
        "event_type": "hire",
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "person": {"person_id": person_id, "email": email,
                   "names": {"given_names": given, "family_name": "Carberry"}},
        "position": {"position_id": format!("POS-{person_id}"), "department": "Psychoceramics",
                     "role_title": "Professor", "start_date": "2026-12-01"}
    });
    let response = http()
        .post(format!("{}/api/v1/hr-events", writer.url))
        .bearer_auth(HR_AT_WRITER)
        .json(&json!({"events": [event]}))
        .send()
        .await
        .expect("POST /api/v1/hr-events");
    let status = response.status();
    let answer: Value = response.json().await.expect("json");
    assert_eq!(status, 202, "{answer}");
}

/// The `<tr>` of `person_id` on an invitations page.
fn invitation_row(body: &str, person_id: &str) -> Option<String> {
    body.split(&format!(
        "data-testid=\"invitation\" data-person-id=\"{person_id}\""
    ))
    .nth(1)
    .and_then(|rest| rest.split("</tr>").next())
    .map(str::to_owned)
}

/// Polls `/admin/invitations` until `person_id`'s row is in `state`; returns the row.
async fn wait_row(admin: &mut Browser, person_id: &str, state: &str) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE * 2;
    loop {
        let page = admin.get("/admin/invitations").await;
        assert_eq!(page.status, 200, "{}", page.body);
        if let Some(row) = invitation_row(&page.body, person_id)
            .filter(|r| r.contains(&format!("data-state=\"{state}\"")))
        {
            return row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {person_id}'s invitation {state}: {}",
            page.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_see_invitations_and_resend_them() {
    let writer_port = free_port();
    let portal = portal_for_writer(writer_port).await;
    let mail_dir = std::env::temp_dir().join(format!("portal-invitations-{}", Uuid::new_v4()));
    let writer = writer_with_invitations(&portal, writer_port, &mail_dir).await;
    let person = format!("P-INV-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let email = format!("{}@example.org", person.to_lowercase());

    post_hire(&writer, &person, &email).await;

    // The administrator's page lists the person as sent, with counts by state.
    let mut admin = portal.browser();
    admin.dev_sign_in("P-INV-ADMIN", "Oz", "", true).await;
    let page = admin.get("/admin").await;
    assert!(
        page.body
            .contains("href=\"/admin/invitations\" id=\"invitations-link\""),
        "{}",
        page.body
    );
    let row = wait_row(&mut admin, &person, "sent").await;
    assert!(row.contains(&format!("<td>{email}</td>")), "{row}");
    assert!(
        row.contains("<td>Josiah Carberry</td>") || row.contains("Josiah"),
        "{row}"
    );
    assert!(row.contains("<td>sent</td><td>1</td><td>0</td>"), "{row}");
    assert!(
        row.contains(&format!("action=\"/admin/invitations/{person}/resend\"")),
        "{row}"
    );
    assert_eq!(eml_files(&mail_dir).len(), 1, "one invitation e-mail");
    let page = admin.get("/admin/invitations").await;
    assert!(
        page.body.contains("data-state=\"sent\" data-count=\"1\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("data-state=\"connected\" data-count=\"0\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"resend-notice\""));
    let csrf = page.hidden("csrf").expect("csrf on the invitations page");

    // Filters: by person id, by state.
    let page = admin
        .get(&format!("/admin/invitations?person_id={person}&state=sent"))
        .await;
    assert!(
        invitation_row(&page.body, &person).is_some(),
        "{}",
        page.body
    );
    let page = admin
        .get("/admin/invitations?person_id=nobody-at-all")
        .await;
    assert!(page.body.contains("id=\"no-invitations\""), "{}", page.body);
    let page = admin.get("/admin/invitations?state=connected").await;
    assert!(
        invitation_row(&page.body, &person).is_none(),
        "{}",
        page.body
    );
    let page = admin.get("/admin/invitations?state=lost").await;
    assert!(
        page.body.contains("id=\"invitations-note\""),
        "{}",
        page.body
    );

    // Resend without CSRF (missing, wrong): refused, nothing sent.
    let resend = format!("/admin/invitations/{person}/resend");
    let page = admin.post(&resend, &[]).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(page.error_code().as_deref(), Some("csrf"));
    let page = admin.post(&resend, &[("csrf", "forged")]).await;
    assert_eq!(page.status, 403, "{}", page.body);

    // A researcher: 403 on the page and on resend (with their own valid CSRF token).
    let mut researcher = portal.browser();
    researcher
        .dev_sign_in("P-INV-RESEARCHER", "Nia", "", false)
        .await;
    let page = researcher.get("/admin/invitations").await;
    assert_eq!(page.status, 403, "{}", page.body);
    let theirs = researcher.csrf().await;
    let page = researcher.post(&resend, &[("csrf", theirs.as_str())]).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(page.error_code().as_deref(), Some("not_admin"));
    let page = researcher.get("/admin/reports/invitations.csv").await;
    assert_eq!(page.status, 403);
    assert_eq!(
        eml_files(&mail_dir).len(),
        1,
        "nothing sent by refused requests"
    );

    // Resend with CSRF: back to the list (filters kept) with "sent", a second e-mail.
    let page = admin
        .post(
            &resend,
            &[
                ("csrf", csrf.as_str()),
                ("state", "sent"),
                ("filter_person_id", person.as_str()),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location(),
        format!("/admin/invitations?state=sent&person_id={person}")
    );
    let page = admin.get(&page.location()).await;
    assert!(
        page.body
            .contains("id=\"resend-notice\" data-outcome=\"sent\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("Invitation sent again to {person}"))
    );
    let row = invitation_row(&page.body, &person).expect("row after resend");
    assert!(row.contains("<td>sent</td><td>2</td>"), "{row}");
    assert_eq!(eml_files(&mail_dir).len(), 2, "a second e-mail");
    // The notice is shown once.
    let page = admin.get("/admin/invitations").await;
    assert!(!page.body.contains("id=\"resend-notice\""), "{}", page.body);

    // Nobody invited with that id: the notice says so.
    let page = admin
        .post(
            "/admin/invitations/P-NEVER-INVITED/resend",
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(page.status, 303);
    let page = admin.get(&page.location()).await;
    assert!(
        page.body.contains("data-outcome=\"not_found\""),
        "{}",
        page.body
    );

    // The report.
    let page = admin.get("/admin/reports/invitations.csv").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .starts_with("person_id,display_name,email,state,sent_count,"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("{person},Josiah Carberry,{email},sent,2,")),
        "{}",
        page.body
    );
    let page = admin.get("/admin/reports/invitations.json").await;
    let rows: Value = serde_json::from_str(&page.body).expect("json report");
    assert_eq!(rows[0]["person_id"], person.as_str(), "{rows}");

    // The person connects: shown connected, no Resend button, and resend says so.
    let mut invited = portal.browser();
    invited.dev_sign_in(&person, "Josiah", &email, false).await;
    connect(&portal, &mut invited).await;
    portal.wait_connected(&person).await;
    let row = wait_row(&mut admin, &person, "connected").await;
    assert!(!row.contains("data-testid=\"resend\""), "{row}");
    let page = admin.post(&resend, &[("csrf", csrf.as_str())]).await;
    assert_eq!(page.status, 303);
    let page = admin.get(&page.location()).await;
    assert!(
        page.body
            .contains("id=\"resend-notice\" data-outcome=\"already_connected\""),
        "{}",
        page.body
    );
    assert_eq!(
        eml_files(&mail_dir).len(),
        2,
        "nothing sent to a connected person"
    );

    // The mail transport fails (the mail directory replaced by a plain file): the notice
    // gives the transport's reason and the row its last error.
    let second = format!("{person}-B");
    post_hire(&writer, &second, "second@example.org").await;
    wait_row(&mut admin, &second, "sent").await;
    assert_eq!(eml_files(&mail_dir).len(), 3);
    std::fs::remove_dir_all(&mail_dir).expect("remove the mail directory");
    std::fs::write(&mail_dir, b"not a directory").expect("a file in its place");
    let page = admin
        .post(
            &format!("/admin/invitations/{second}/resend"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = admin.get(&page.location()).await;
    let notice = page
        .body
        .split("id=\"resend-notice\" data-outcome=\"mail_failed\">")
        .nth(1)
        .unwrap_or_else(|| panic!("mail_failed notice: {}", page.body));
    let notice = notice.split("</p>").next().expect("notice");
    let lead = format!("The e-mail to {second} could not be sent: ");
    assert!(
        notice.starts_with(&lead) && notice.len() > lead.len(),
        "the reason is given: {notice}"
    );
    let row = invitation_row(&page.body, &second).expect("the failed row");
    assert!(row.contains("data-state=\"failed\""), "{row}");
    let last_error = row
        .split("</td>")
        .nth(8)
        .expect("last error cell")
        .trim_start_matches("<td>")
        .to_owned();
    assert!(!last_error.is_empty(), "{row}");
    std::fs::remove_file(&mail_dir).expect("the file in the mail directory's place");

    writer.stop().await;
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_disabled_at_the_writer_are_said_clearly() {
    let writer_port = free_port();
    let portal = portal_for_writer(writer_port).await;
    // The writer's default: invitations off.
    let writer = start_writer_with(&portal, writer_port, Vec::new()).await;

    let mut admin = portal.browser();
    admin.dev_sign_in("P-INV-ADMIN2", "Oz", "", true).await;
    let page = admin.get("/admin/invitations").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("id=\"invitations-disabled\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("writer.invitations.enabled = true"));
    assert!(!page.body.contains("id=\"invitations\""));

    let csrf = page.hidden("csrf").expect("csrf");
    let page = admin
        .post(
            "/admin/invitations/P-ANY/resend",
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = admin.get(&page.location()).await;
    assert!(
        page.body
            .contains("id=\"resend-notice\" data-outcome=\"disabled\""),
        "{}",
        page.body
    );
    let page = admin.get("/admin/reports/invitations.csv").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(
        page.body.contains("disabled at the writer"),
        "{}",
        page.body
    );

    writer.stop().await;
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_a_space_or_a_slash_resend_through_the_real_writer_and_formulas_export_as_text() {
    let writer_port = free_port();
    let portal = portal_for_writer(writer_port).await;
    let mail_dir = std::env::temp_dir().join(format!("portal-invitations-{}", Uuid::new_v4()));
    let writer = writer_with_invitations(&portal, writer_port, &mail_dir).await;
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let spaced = format!("P INV {tag}");
    let slashed = format!("P/INV/{tag}");
    post_hire_named(
        &writer,
        &spaced,
        &format!("s-{tag}@example.org"),
        "=HYPERLINK(\"http://x\")",
    )
    .await;
    post_hire(&writer, &slashed, &format!("l-{tag}@example.org")).await;
    let deadline = tokio::time::Instant::now() + DEADLINE * 2;
    while eml_files(&mail_dir).len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for two invitations"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let mut admin = portal.browser();
    admin.dev_sign_in("P-INV-ADMIN2", "Oz", "", true).await;
    let page = admin.get("/admin/invitations").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.hidden("csrf").expect("csrf on the invitations page");
    // Each id is one percent-encoded path segment (not form encoding: no `+`).
    for href in [
        format!("/admin/invitations/P%20INV%20{tag}/resend"),
        format!("/admin/invitations/P%2FINV%2F{tag}/resend"),
    ] {
        assert!(
            page.body.contains(&format!("action=\"{href}\"")),
            "{href}: {}",
            page.body
        );
        let answer = admin.post(&href, &[("csrf", csrf.as_str())]).await;
        assert_eq!(answer.status, 303, "{href}: {}", answer.body);
        let notice = admin.get(&answer.location()).await;
        assert!(
            notice
                .body
                .contains("id=\"resend-notice\" data-outcome=\"sent\""),
            "{href}: {}",
            notice.body
        );
    }
    assert_eq!(eml_files(&mail_dir).len(), 4, "both resent");

    // The researcher-controlled name is neutralised in the CSV report.
    let page = admin.get("/admin/reports/invitations.csv").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let row = page
        .body
        .lines()
        .find(|l| l.starts_with(&spaced))
        .unwrap_or_else(|| panic!("no row: {}", page.body));
    assert!(
        row.contains(",\"'=HYPERLINK(\"\"http://x\"\")"),
        "neutralised: {row}"
    );

    writer.stop().await;
    portal.stop().await;
    let _ = std::fs::remove_dir_all(&mail_dir);
}
