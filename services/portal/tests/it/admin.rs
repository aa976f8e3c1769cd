//! The administrators' view: access, listing and search, reports, the chart.

use crate::helpers::{connect, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_see_search_and_export_connections() {
    let portal = spawn().await;
    // A researcher connects.
    let mut researcher = portal.browser();
    researcher
        .dev_sign_in("P-ADM-RES", "Mia Wong", "", false)
        .await;
    let (orcid, _) = connect(&portal, &mut researcher).await;
    portal.wait_connected("P-ADM-RES").await;
    // Not an administrator.
    let page = researcher.get("/admin").await;
    assert_eq!(page.status, 403);
    assert_eq!(page.error_code().as_deref(), Some("not_admin"));
    assert!(!page.body.contains("id=\"nav-admin\""));
    let page = researcher.get("/admin/reports/connections.csv").await;
    assert_eq!(page.status, 403);

    let mut admin = portal.browser();
    admin.dev_sign_in("P-ADMIN", "Root", "", true).await;
    let page = admin.get("/admin").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("data-person-id=\"P-ADM-RES\""));
    let uri = format!("{}/{orcid}", portal.sim.base_url());
    assert!(page.body.contains(&uri));
    assert!(page.body.contains("id=\"connections-chart\""), "the chart");
    assert!(
        page.body.contains("data-value=\"1\""),
        "one connection this month"
    );
    // Search by person id and by name, never by iD.
    let page = admin.get("/admin?q=adm-res").await;
    assert!(page.body.contains("data-person-id=\"P-ADM-RES\""));
    let page = admin.get("/admin?q=nobody-like-this").await;
    assert!(!page.body.contains("data-testid=\"connection-row\""));
    assert!(page.body.contains("0 connection(s) matching"));
    let page = admin.get(&format!("/admin?q={orcid}")).await;
    assert!(
        !page.body.contains("data-testid=\"connection-row\""),
        "no search by iD"
    );

    // Reports.
    let page = admin.get("/admin/reports/connections.csv").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/csv"));
    let mut lines = page.body.lines();
    assert_eq!(
        lines.next().unwrap(),
        "person_id,orcid,name,state,scopes,granted_at,ended_at"
    );
    assert!(page.body.contains(&format!("P-ADM-RES,{uri},")));
    let page = admin.get("/admin/reports/connections.json").await;
    let rows: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["person_id"] == "P-ADM-RES")
        .expect("the row");
    assert_eq!(row["state"], "active");
    assert_eq!(row["orcid"], uri);
    let page = admin.get("/admin/reports/summary.json").await;
    assert_eq!(page.status, 200);
    let months: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    let last = months.as_array().unwrap().last().expect("a month").clone();
    assert_eq!(last["connections_made"], 1);
    assert_eq!(last["active_at_end"], 1);
    assert!(last["items_written"].is_null(), "no writer configured");
    let page = admin.get("/admin/reports/summary.csv").await;
    assert!(
        page.body
            .starts_with("month,connections_made,connections_ended,active_at_end")
    );
    // Items need the writer; without it the report says so.
    let page = admin.get("/admin/reports/items.csv").await;
    assert_eq!(page.status, 503);
    let page = admin.get("/admin/reports/nothing.csv").await;
    assert_eq!(page.status, 404);
    let page = admin.get("/admin/reports/connections.xml").await;
    assert_eq!(page.status, 404);
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_list_makes_administrators() {
    let portal = crate::helpers::spawn_with(crate::helpers::Options {
        portal_env: vec![(
            "IDBRIDGE__PORTAL__ADMINS".to_owned(),
            "[\"P-LISTED\"]".to_owned(),
        )],
        ..crate::helpers::Options::default()
    })
    .await;
    let mut listed = portal.browser();
    listed.dev_sign_in("P-LISTED", "Rae", "", false).await;
    let page = listed.get("/admin").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut other = portal.browser();
    other.dev_sign_in("P-UNLISTED", "Sam", "", false).await;
    assert_eq!(other.get("/admin").await.status, 403);
    portal.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_formula_in_a_researchers_name_exports_as_text() {
    let portal = spawn().await;
    let mut researcher = portal.browser();
    researcher.dev_sign_in("P-ADM-CSV", "Eve", "", false).await;
    // The ORCID public name (researcher-controlled) arrives through the vault.
    let (_, email) = portal.sim_user("=HYPERLINK(\"http://x\")").await;
    let authorize = researcher.start_connect().await;
    let callback = crate::helpers::orcid_decides(&authorize, &email, true).await;
    let page = researcher.get(&callback).await;
    assert_eq!(page.status, 303, "{}", page.body);
    portal.wait_connected("P-ADM-CSV").await;

    let mut admin = portal.browser();
    admin.dev_sign_in("P-ADMIN", "Root", "", true).await;
    let page = admin.get("/admin/reports/connections.csv").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let row = page
        .body
        .lines()
        .find(|l| l.starts_with("P-ADM-CSV,"))
        .unwrap_or_else(|| panic!("no row in {}", page.body));
    assert!(
        row.contains(",\"'=HYPERLINK(\"\"http://x\"\")"),
        "the name is neutralised: {row}"
    );
    assert!(!row.contains(",\"=HYPERLINK"), "{row}");
    portal.stop().await;
}
