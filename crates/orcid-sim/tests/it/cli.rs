//! The `orcid-sim` binary: flags, the `listening on` line, graceful stop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Running {
    child: Child,
    base: String,
}

/// A failed assertion must not leave the simulator running.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orcid-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    Running { child, base }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn binary_serves_discovery_and_stops_on_sigterm() {
    let mut sim = start(&[
        "--listen",
        "127.0.0.1:0",
        "--client",
        "APP-CLI0000000000001:cli-test-secret:http://127.0.0.1:9/cb",
    ]);
    let d: Value = reqwest::get(format!("{}/.well-known/openid-configuration", sim.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], sim.base);
    // The --client works, redirect with its colons intact.
    let res = reqwest::Client::new()
        .post(format!("{}/oauth/token", sim.base))
        .form(&[
            ("client_id", "APP-CLI0000000000001"),
            ("client_secret", "cli-test-secret"),
            ("grant_type", "client_credentials"),
            ("scope", "/webhook"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{}/oauth/authorize?client_id=APP-CLI0000000000001&response_type=code&scope=/authenticate&redirect_uri=http://127.0.0.1:9/cb",
            sim.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let status = Command::new("kill")
        .args(["-TERM", &sim.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_exit(&mut sim.child, Duration::from_secs(15));
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn public_url_and_rate_limit_flags() {
    let sim = start(&[
        "--listen",
        "127.0.0.1:0",
        "--public-url",
        "https://sandbox.example.org",
        "--rate-limit",
        "--jwks-bare",
        "--webhook-max-attempts",
        "3",
        "--webhook-timeout-ms",
        "500",
    ]);
    let d: Value = reqwest::get(format!("{}/.well-known/openid-configuration", sim.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], "https://sandbox.example.org");
    // --jwks-bare: one JWK object.
    let jwk: Value = reqwest::get(format!("{}/oauth/jwks", sim.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwk["kty"], "RSA", "{jwk}");
    assert!(jwk.get("keys").is_none());
    // Rate limit on (24/s, burst 40): anonymous webhook calls share one bucket per IP. Fired
    // at once, 160 calls outrun the bucket unless they take over 5 s (40 + 24 × 5 = 160).
    let client = reqwest::Client::new();
    let statuses: Vec<u16> = futures_util::future::join_all((0..160).map(|_| {
        let request = client.put(format!("{}/0009-0000-0000-0009/webhook/x", sim.base));
        async move { request.send().await.unwrap().status().as_u16() }
    }))
    .await;
    let limited = statuses.iter().filter(|s| **s == 503).count();
    assert!(limited > 0, "some calls are refused: {statuses:?}");
    assert!(
        statuses.len() - limited >= 40,
        "the burst passes: {statuses:?}"
    );
    drop(sim);
}

#[test]
fn help_lists_the_flags_and_bad_clients_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_orcid-sim"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--client",
        "--rate-limit",
        "--public-url",
        "--webhook-interval-ms",
        "--webhook-retry-delay-ms",
        "--webhook-max-attempts",
        "--webhook-timeout-ms",
        "--workers",
        "--revoke-old-default",
        "--jwks-bare",
    ] {
        assert!(help.contains(flag), "{flag} in --help");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_orcid-sim"))
        .args(["--client", "APP-ONLYID"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ID:SECRET:REDIRECT"));
}
