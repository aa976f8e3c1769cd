//! orcid-sim as a separate process (its release binary), researchers connected through its
//! headless OAuth, its stats, and its raw `POST /employment` capacity.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

/// A member client of the simulator.
pub struct SimClient {
    pub id: String,
    pub secret: String,
    pub redirect: String,
}

/// A running `orcid-sim` process, killed on drop.
pub struct SimProcess {
    child: Child,
    pub base: String,
}

impl SimProcess {
    /// Starts `bin` on a free loopback port with `client`, `--rate-limit` when `limited`;
    /// waits (at most 30 s) for its `listening on` line.
    pub fn start(bin: &Path, client: &SimClient, limited: bool) -> anyhow::Result<Self> {
        let mut command = Command::new(bin);
        command
            .args(["--listen", "127.0.0.1:0", "--workers", "2", "--client"])
            .arg(format!(
                "{}:{}:{}",
                client.id, client.secret, client.redirect
            ))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if limited {
            command.arg("--rate-limit");
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("orcid-sim stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(base) = line.strip_prefix("listening on ") {
                    let _ = tx.send(base.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => Ok(Self { child, base }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("orcid-sim did not print its listening line within 30 s")
            }
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that does not follow redirects (the authorize answer is a 302).
pub fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()?)
}

/// A researcher connected to `client`: iD and the token response's access token.
#[derive(Clone, Debug)]
pub struct Connected {
    pub orcid: String,
    pub access_token: String,
    /// The whole token response, for the vault's hand-off.
    pub token_response: Value,
}

/// Creates `n` users at the simulator and connects each to `client` (headless approval and
/// the code exchange), 16 at a time.
pub async fn connect_users(
    base: &str,
    client: &SimClient,
    n: usize,
    tag: &str,
) -> anyhow::Result<Vec<Connected>> {
    let http = http()?;
    let results: Vec<anyhow::Result<Connected>> = stream::iter(0..n)
        .map(|i| {
            let http = http.clone();
            async move { connect_one(&http, base, client, &format!("{tag}-{i}")).await }
        })
        .buffered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn connect_one(
    http: &reqwest::Client,
    base: &str,
    client: &SimClient,
    name: &str,
) -> anyhow::Result<Connected> {
    let user: Value = http
        .post(format!("{base}/_sim/users"))
        .json(&json!({
            "given-names": "Bench",
            "family-name": name,
            "email": format!("{name}@mailinator.com"),
            "password": "bench-password",
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let orcid = user["orcid"]
        .as_str()
        .context("no orcid in /_sim/users")?
        .to_owned();
    let answer = http
        .get(format!("{base}/oauth/authorize"))
        .query(&[
            ("client_id", client.id.as_str()),
            ("response_type", "code"),
            ("scope", "/read-limited /activities/update"),
            ("redirect_uri", client.redirect.as_str()),
            ("sim_user", orcid.as_str()),
            ("sim_decision", "authorize"),
        ])
        .send()
        .await?;
    let location = answer
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .context("no Location in the authorize answer")?;
    let code = reqwest::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code in the authorize redirect")?;
    let token_response: Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect.as_str()),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let access_token = token_response["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned();
    Ok(Connected {
        orcid,
        access_token,
        token_response,
    })
}

/// `GET /_sim/stats`: `{"METHOD /template": {"status": count}}`.
pub async fn stats(base: &str) -> anyhow::Result<BTreeMap<String, BTreeMap<String, u64>>> {
    Ok(http()?
        .get(format!("{base}/_sim/stats"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// `DELETE /_sim/stats`.
pub async fn clear_stats(base: &str) -> anyhow::Result<()> {
    http()?
        .delete(format!("{base}/_sim/stats"))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// Answers with `status`, over every endpoint.
pub fn count(stats: &BTreeMap<String, BTreeMap<String, u64>>, status: &str) -> u64 {
    stats
        .values()
        .filter_map(|by_status| by_status.get(status))
        .sum()
}

/// Requests to the member API (`/v3.0/…`) of any status.
pub fn api_requests(stats: &BTreeMap<String, BTreeMap<String, u64>>) -> u64 {
    stats
        .iter()
        .filter(|(key, _)| key.contains(" /v3.0/"))
        .flat_map(|(_, by_status)| by_status.values())
        .sum()
}

/// A valid employment with a unique `self` id (no 409), as the writer would post it.
fn employment(n: u64) -> Value {
    json!({
        "department-name": "Benchmarks",
        "role-title": "Engineer",
        "start-date": {"year": {"value": "2020"}, "month": {"value": "01"}},
        "organization": {
            "name": "Boston University",
            "address": {"city": "Boston", "region": "Massachusetts", "country": "US"},
            "disambiguated-organization": {
                "disambiguated-organization-identifier": "https://ror.org/05qwgg493",
                "disambiguation-source": "ROR"
            }
        },
        "external-ids": {"external-id": [{
            "external-id-type": "other-id",
            "external-id-value": format!("raw-bench-{n}"),
            "external-id-relationship": "self"
        }]}
    })
}

/// The simulator alone: `POST /v3.0/{orcid}/employment` round-robin over `users` with
/// `concurrency` requests in flight for `window` (after a 1 s warm-up); writes/s (201s).
pub async fn raw_post_capacity(
    base: &str,
    users: &[Connected],
    concurrency: usize,
    window: Duration,
) -> anyhow::Result<f64> {
    if users.is_empty() {
        bail!("no users to post for");
    }
    let http = http()?;
    let users = Arc::new(users.to_vec());
    let next = Arc::new(AtomicU64::new(0));
    let created = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let warm_up = Duration::from_secs(1);
    let start = Instant::now();
    let measure_from = start + warm_up;
    let stop_at = measure_from + window;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, users, next, created, failed) = (
            http.clone(),
            users.clone(),
            next.clone(),
            created.clone(),
            failed.clone(),
        );
        let base = base.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let now = Instant::now();
                if now >= stop_at {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                let user = &users[usize::try_from(n).unwrap_or(0) % users.len()];
                let answer = http
                    .post(format!("{base}/v3.0/{}/employment", user.orcid))
                    .bearer_auth(&user.access_token)
                    .header("Content-Type", "application/vnd.orcid+json")
                    .header("Accept", "application/vnd.orcid+json")
                    .body(employment(n).to_string())
                    .send()
                    .await;
                let done = Instant::now();
                let ok = matches!(&answer, Ok(r) if r.status().as_u16() == 201);
                if done >= measure_from && done < stop_at {
                    if ok {
                        created.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} POSTs to the simulator failed in the raw run");
    }
    Ok(created.load(Ordering::Relaxed) as f64 / window.as_secs_f64())
}
