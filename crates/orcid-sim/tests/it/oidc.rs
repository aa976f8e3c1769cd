//! OpenID Connect (§1.4): discovery, JWKS, and an `id_token` verified with aws-lc-rs.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn discovery_document() {
    let sim = spawn_sim().await;
    let res = http()
        .get(format!(
            "{}/.well-known/openid-configuration",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/json;charset=UTF-8"
    );
    let d: Value = res.json().await.unwrap();
    let iss = sim.base_url();
    assert_eq!(d["issuer"], iss);
    assert_eq!(
        d["authorization_endpoint"],
        format!("{iss}/oauth/authorize")
    );
    assert_eq!(d["token_endpoint"], format!("{iss}/oauth/token"));
    assert_eq!(d["userinfo_endpoint"], format!("{iss}/oauth/userinfo"));
    assert_eq!(d["jwks_uri"], format!("{iss}/oauth/jwks"));
    assert_eq!(d["scopes_supported"], serde_json::json!(["openid"]));
    assert_eq!(
        d["response_types_supported"],
        serde_json::json!(["code", "id_token", "id_token token"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_post"])
    );
    assert_eq!(d["claims_parameter_supported"], false);
    assert!(
        d.get("code_challenge_methods_supported").is_none(),
        "no PKCE advertised"
    );
    sim.stop().await;
}

#[tokio::test]
async fn public_url_is_the_issuer() {
    let mut config = test_config();
    config.public_url = Some("https://sandbox.example.org/".to_owned());
    let sim = spawn_sim_with(config).await;
    assert_eq!(sim.base_url(), "https://sandbox.example.org");
    let d: Value = http()
        .get(format!(
            "http://{}/.well-known/openid-configuration",
            sim.addr()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], "https://sandbox.example.org");
    assert_eq!(d["jwks_uri"], "https://sandbox.example.org/oauth/jwks");
    sim.stop().await;
}

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

#[tokio::test]
async fn id_token_verifies_against_jwks_and_carries_nonce() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let res = http()
        .get(format!("{}/oauth/authorize", sim.base_url()))
        .query(&[
            ("client_id", TEST_CLIENT_ID),
            ("response_type", "code"),
            ("scope", "openid"),
            ("redirect_uri", TEST_REDIRECT_URI),
            ("nonce", "n-0S6_WzA2Mj"),
            ("sim_user", &orcid.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let token: TokenJson = http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", TEST_CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", TEST_REDIRECT_URI),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token.scope, "openid");
    let id_token = token.id_token.expect("id_token with openid");

    let jwks: Value = http()
        .get(format!("{}/oauth/jwks", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let jwk = &keys[0];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["e"], "AQAB");

    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    assert_eq!(
        header,
        serde_json::json!({"kid": jwk["kid"], "alg": "RS256"})
    );
    let key = RsaPublicKeyComponents {
        n: b64(jwk["n"].as_str().unwrap()),
        e: b64(jwk["e"].as_str().unwrap()),
    };
    let signed = format!("{}.{}", parts[0], parts[1]);
    key.verify(
        &RSA_PKCS1_2048_8192_SHA256,
        signed.as_bytes(),
        &b64(parts[2]),
    )
    .expect("RS256 signature verifies");
    let mut tampered = b64(parts[2]);
    tampered[0] ^= 1;
    assert!(
        key.verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &tampered)
            .is_err()
    );

    let claims: Value = serde_json::from_slice(&b64(parts[1])).unwrap();
    assert_eq!(claims["iss"], sim.base_url());
    assert_eq!(claims["aud"], TEST_CLIENT_ID);
    assert_eq!(claims["sub"], orcid.to_string());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["given_name"], "Sofia");
    assert_eq!(claims["family_name"], "Garcia");
    assert_eq!(claims["amr"], "pwd");
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 600);
    assert!((iat - chrono::Utc::now().timestamp()).abs() < 60);
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.access_token.as_bytes());
    assert_eq!(
        claims["at_hash"],
        URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
    );

    // Without openid, no id_token.
    let plain = connect(&sim, &orcid, "/authenticate").await;
    assert!(plain.id_token.is_none());
    sim.stop().await;
}

fn claims_of(id_token: &str) -> Value {
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&b64(payload)).unwrap()
}

async fn settings(sim: &orcid_sim::SimHandle, orcid: &orcid::OrcidId, patch: Value) {
    let res = http()
        .post(format!("{}/_sim/records/{orcid}/settings", sim.base_url()))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn userinfo(sim: &orcid_sim::SimHandle, token: &str) -> Value {
    let res = http()
        .get(format!("{}/oauth/userinfo", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The name in the token response, the `id_token` and userinfo is the record's, read when
/// asked (§1.3, §1.4), and only while the name is public.
#[tokio::test]
async fn names_come_from_the_record_and_only_when_public() {
    let sim = spawn_sim().await;
    let orcid = create_user(&sim).await;
    let before = connect(&sim, &orcid, "openid /read-limited").await;
    assert_eq!(before.name.as_deref(), Some("Sofia Garcia"));

    // The user renames themselves on ORCID's site.
    settings(
        &sim,
        &orcid,
        serde_json::json!({"given-names": "Sofía", "family-name": "García López", "credit-name": "S. García"}),
    )
    .await;
    let token = connect(&sim, &orcid, "openid /read-limited").await;
    assert_eq!(
        token.name.as_deref(),
        Some("S. García"),
        "credit name first"
    );
    let claims = claims_of(token.id_token.as_deref().unwrap());
    assert_eq!(claims["given_name"], "Sofía");
    assert_eq!(claims["family_name"], "García López");
    assert_eq!(claims["name"], "S. García");
    // Userinfo reads the record now, whichever token asks.
    let info = userinfo(&sim, &before.access_token).await;
    assert_eq!(info["name"], "S. García");
    assert_eq!(info["given_name"], "Sofía");
    assert_eq!(info["family_name"], "García López");
    // The HTTP hook shows the same name.
    let user: Value = http()
        .get(format!("{}/_sim/users/{orcid}", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["given-names"], "Sofía");
    assert_eq!(user["family-name"], "García López");
    // Without a credit name: given and family names.
    settings(&sim, &orcid, serde_json::json!({"credit-name": ""})).await;
    assert_eq!(
        userinfo(&sim, &before.access_token).await["name"],
        "Sofía García López"
    );

    // A name that is not public is left out everywhere.
    settings(
        &sim,
        &orcid,
        serde_json::json!({"name-visibility": "limited"}),
    )
    .await;
    let hidden = connect(&sim, &orcid, "openid /read-limited").await;
    assert_eq!(hidden.name, None);
    assert_eq!(hidden.orcid.as_deref(), Some(orcid.to_string().as_str()));
    let claims = claims_of(hidden.id_token.as_deref().unwrap());
    for claim in ["given_name", "family_name", "name"] {
        assert!(claims.get(claim).is_none(), "{claim} in {claims}");
    }
    assert_eq!(claims["sub"], orcid.to_string());
    let info = userinfo(&sim, &hidden.access_token).await;
    assert_eq!(
        info,
        serde_json::json!({"id": format!("{}/{orcid}", sim.base_url()), "sub": orcid.to_string()})
    );
    sim.stop().await;
}

/// `--jwks-bare`: one JWK object, as ORCID's documented controller answers (§1.4); an
/// `id_token` verifies against it.
#[tokio::test]
async fn jwks_can_be_the_bare_key() {
    let mut config = test_config();
    config.jwks_bare = true;
    let sim = spawn_sim_with(config).await;
    let orcid = create_user(&sim).await;
    let jwk: Value = http()
        .get(format!("{}/oauth/jwks", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwk.get("keys").is_none(), "{jwk}");
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["e"], "AQAB");
    let token = connect(&sim, &orcid, "openid").await;
    let id_token = token.id_token.unwrap();
    let parts: Vec<&str> = id_token.split('.').collect();
    let header: Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    assert_eq!(header["kid"], jwk["kid"]);
    let key = RsaPublicKeyComponents {
        n: b64(jwk["n"].as_str().unwrap()),
        e: b64(jwk["e"].as_str().unwrap()),
    };
    key.verify(
        &RSA_PKCS1_2048_8192_SHA256,
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &b64(parts[2]),
    )
    .expect("RS256 signature verifies against the bare JWK");
    sim.stop().await;
}
