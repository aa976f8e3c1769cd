//! `orcid-sim`: the ORCID sandbox stand-in as a command-line server.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use orcid_sim::{RateLimit, SimClient, SimConfig};

/// An offline stand-in for the ORCID sandbox: OAuth, OpenID Connect, member API v3.0,
/// webhooks and rate limits on one port, with test hooks under /_sim/.
#[derive(Debug, Parser)]
#[command(name = "orcid-sim", version)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// A member client, ID:SECRET:REDIRECT (REDIRECT is everything after the second colon).
    /// Repeatable. Such a client may use every member scope, webhooks included.
    #[arg(long = "client", value_name = "ID:SECRET:REDIRECT", value_parser = parse_client)]
    clients: Vec<SimClient>,
    /// Enforce ORCID's member API rate limit (24 requests/s per client, burst 40, then 503).
    #[arg(long)]
    rate_limit: bool,
    /// Origin written into Location headers, paths and `iss` (default http://ADDR).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Webhook delivery interval in milliseconds (ORCID: about five minutes).
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    webhook_interval_ms: u64,
    /// Unit of the linear webhook retry back-off, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    webhook_retry_delay_ms: u64,
    /// Failed callbacks after which a webhook stops firing.
    #[arg(long, default_value_t = 15, value_name = "N")]
    webhook_max_attempts: u32,
    /// How long one webhook callback may take before it counts as failed, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    webhook_timeout_ms: u64,
    /// HTTP worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Default of `revoke_old` when a refresh request leaves it out.
    #[arg(long)]
    revoke_old_default: bool,
    /// Serve /oauth/jwks as one bare JWK object (ORCID's documented controller) instead of
    /// {"keys":[…]}.
    #[arg(long)]
    jwks_bare: bool,
}

fn parse_client(spec: &str) -> Result<SimClient, String> {
    SimClient::parse_cli(spec).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    if let Some(url) = &cli.public_url {
        url::Url::parse(url)
            .with_context(|| format!("--public-url {url} is not an absolute URL"))?;
    }
    if cli.clients.is_empty() {
        tracing::warn!("no --client given: nobody can obtain a token");
    }
    let config = SimConfig {
        listen: cli.listen,
        public_url: cli.public_url,
        clients: cli.clients,
        rate_limit: cli.rate_limit.then(RateLimit::default),
        webhook_interval: Duration::from_millis(cli.webhook_interval_ms),
        webhook_retry_delay: Duration::from_millis(cli.webhook_retry_delay_ms),
        webhook_max_attempts: cli.webhook_max_attempts,
        webhook_timeout: Duration::from_millis(cli.webhook_timeout_ms),
        jwks_bare: cli.jwks_bare,
        workers: cli.workers.max(1),
        revoke_old_default: cli.revoke_old_default,
        ..SimConfig::default()
    };
    let sim = orcid_sim::spawn(config)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", sim.addr())?;
        out.flush()?;
    }
    wait_for_signal().await?;
    tracing::info!("stopping");
    sim.stop().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
