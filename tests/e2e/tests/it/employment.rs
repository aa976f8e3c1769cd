//! HR hire → an employment at ORCID with a put code, stored by the writer; HR leave → the
//! same employment gets its end date (no second employment).

use idbridge_e2e::{Service, Stack, StackOptions, hr};
use serde_json::Value;

use crate::DEADLINE;

fn text(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer).and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hire_writes_an_employment_and_leave_ends_the_same_one() {
    let stack = Stack::start(
        StackOptions::new("hire_writes_an_employment_and_leave_ends_the_same_one").services(&[
            Service::TokenVault,
            Service::Writer,
            Service::Portal,
        ]),
    )
    .await
    .expect("the stack starts");
    let user = stack
        .connect_researcher("p-hire-1", "Josiah", "Carberry")
        .await
        .expect("the researcher connects through the portal");
    let orcid = user.researcher.orcid.clone();
    let sim = stack.sim().expect("sim");
    let api = stack.writer_api().expect("writer API");

    // Hire.
    let hire = hr::hire(&user.researcher, "pos-1", "Professor", "2024-09-01").expect("event");
    let answer = api.send(std::slice::from_ref(&hire)).await.expect("intake");
    assert_eq!(answer.accepted, 1);
    let item = stack
        .wait_item_written("p-hire-1", "pos-1", &hire.event_id, DEADLINE)
        .await
        .expect("the hire is written");
    let put_code = item.put_code.expect("a put code");
    assert_eq!(item.section, "employment");
    assert_eq!(item.orcid.as_deref(), Some(orcid.as_str()));

    let employments = sim.items(&orcid, "employments").await.expect("record");
    assert_eq!(employments.len(), 1, "{employments:#?}");
    let at_orcid = &employments[0];
    assert_eq!(text(at_orcid, "/put-code"), Some(put_code.to_string()));
    assert_eq!(text(at_orcid, "/role-title").as_deref(), Some("Professor"));
    assert_eq!(
        text(at_orcid, "/start-date/year/value").as_deref(),
        Some("2024")
    );
    assert!(
        at_orcid.pointer("/end-date").is_none_or(Value::is_null),
        "no end date yet: {at_orcid:#}"
    );
    assert_eq!(
        text(at_orcid, "/source/source-client-id/path").as_deref(),
        Some(idbridge_e2e::stack::CLIENT_ID),
        "written by our client: {at_orcid:#}"
    );

    // Leave: the same put code gets an end date.
    let leave = hr::leave(&hire, "2026-06-30").expect("event");
    api.send(std::slice::from_ref(&leave))
        .await
        .expect("intake");
    let item = stack
        .wait_item_written("p-hire-1", "pos-1", &leave.event_id, DEADLINE)
        .await
        .expect("the leave is written");
    assert_eq!(item.put_code, Some(put_code), "the same item");
    let employments = sim.items(&orcid, "employments").await.expect("record");
    assert_eq!(
        employments.len(),
        1,
        "no second employment: {employments:#?}"
    );
    let ended = &employments[0];
    assert_eq!(text(ended, "/put-code"), Some(put_code.to_string()));
    assert_eq!(
        text(ended, "/end-date/year/value").as_deref(),
        Some("2026"),
        "{ended:#}"
    );
    assert_eq!(text(ended, "/end-date/month/value").as_deref(), Some("06"));
    assert_eq!(text(ended, "/end-date/day/value").as_deref(), Some("30"));

    // The researcher sees it on their page.
    let mut user = user;
    let me = user.me().await.expect("/me");
    assert!(me.body.contains(&orcid), "{}", me.body);

    stack
        .stop()
        .await
        .expect("every process stops cleanly on SIGTERM");
}
