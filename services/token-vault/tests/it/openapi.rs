//! The OpenAPI document is served, and every path it lists is a route of the server.

use serde_json::Value;

use crate::helpers::{Backend, TEST_WRITER_TOKEN, http, spawn_vault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_matches_the_routes() {
    let vault = spawn_vault(Backend::Sqlite).await;
    let res = http()
        .get(format!("{}/openapi.json", vault.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 9, "{:?}", paths.keys().collect::<Vec<_>>());
    for (path, operations) in paths {
        let concrete = path
            .replace("{orcid}", "0000-0002-1825-0097")
            .replace("{scope}", "webhook")
            .replace("{person_id}", "P-openapi");
        for method in operations.as_object().unwrap().keys() {
            let url = format!("{}{concrete}?purpose=openapi-test", vault.base_url);
            let request = match method.as_str() {
                "get" => http().get(&url),
                "post" => http().post(&url),
                "delete" => http().delete(&url),
                other => panic!("unexpected method {other}"),
            };
            let res = request.bearer_auth(TEST_WRITER_TOKEN).send().await.unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            // The router's own 404/405 have no JSON body; the vault's answers always do.
            let routed = status != 404 && status != 405 || body.contains("\"error\"");
            assert!(routed, "{method} {path} is not served: {status} {body}");
        }
    }
    // The hand-off key the portal needs.
    let key = vault.client(TEST_WRITER_TOKEN).handoff_key().await.unwrap();
    assert_eq!(key.key_id, vault.settings.handoff_key_id);
    assert_eq!(key.public_key, vault.settings.handoff_public.to_string());
    vault.stop().await;
}
