//! Shared simulator state.
//!
//! Every part synchronises itself with short-lived `std` locks (never held across an await),
//! so handlers on different workers only meet on the map they actually touch.

use std::collections::HashMap;

use orcid::OrcidId;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{SimClient, SimConfig};
use crate::faults::Faults;
use crate::oidc::{IdTokenSigner, SignerError};
use crate::ratelimit::RateLimiter;
use crate::stats::Stats;
use crate::tokens::{CodeStore, TokenStore};
use crate::users::Users;
use crate::webhooks::{FlushRequest, RunSummary, Webhooks};

/// Everything the handlers share, behind `web::Data<SimState>`. Each part synchronises itself.
pub struct SimState {
    /// The configuration the simulator started with.
    pub config: SimConfig,
    /// Resolved public origin, e.g. `http://127.0.0.1:8090` (no trailing slash).
    pub public_url: String,
    /// Records and their items (records side).
    pub records: crate::records::Records,
    /// People who can sign in, and their browser sessions.
    pub users: Users,
    /// Issued access and refresh tokens.
    pub tokens: TokenStore,
    /// Outstanding authorization codes.
    pub codes: CodeStore,
    /// Registered webhooks and their delivery state.
    pub webhooks: Webhooks,
    /// Injected faults.
    pub faults: Faults,
    /// Request counters.
    pub stats: Stats,
    /// `Some` when the rate limit is on.
    pub rate_limiter: Option<RateLimiter>,
    /// Signs `id_token`s; its public key is served at `/oauth/jwks`.
    pub signer: IdTokenSigner,
    /// Cancelled when the simulator stops (ends hung requests and the delivery task).
    pub shutdown: CancellationToken,
    clients: HashMap<String, SimClient>,
    flush: mpsc::Sender<FlushRequest>,
}

impl SimState {
    /// Builds the state; `flush` reaches the webhook delivery task.
    pub fn new(
        config: SimConfig,
        public_url: String,
        flush: mpsc::Sender<FlushRequest>,
        shutdown: CancellationToken,
    ) -> Result<Self, SignerError> {
        let clients = config
            .clients
            .iter()
            .map(|c| (c.id.clone(), c.clone()))
            .collect();
        Ok(SimState {
            public_url: public_url.trim_end_matches('/').to_owned(),
            records: crate::records::Records::default(),
            users: Users::default(),
            tokens: TokenStore::default(),
            codes: CodeStore::default(),
            webhooks: Webhooks::default(),
            faults: Faults::default(),
            stats: Stats::default(),
            rate_limiter: config.rate_limit.map(RateLimiter::new),
            signer: IdTokenSigner::generate()?,
            shutdown,
            clients,
            flush,
            config,
        })
    }

    /// A registered client.
    pub fn client(&self, id: &str) -> Option<&SimClient> {
        self.clients.get(id)
    }

    /// A client's display name (its id when unknown).
    pub fn client_name(&self, id: &str) -> String {
        self.clients
            .get(id)
            .map_or_else(|| id.to_owned(), |c| c.name.clone())
    }

    /// Called after every change to a record (API write, user edit): schedules webhooks.
    pub fn record_changed(&self, orcid: &OrcidId) {
        self.webhooks.record_changed(orcid);
    }

    /// Runs webhook delivery now (ignoring back-off) and waits for the summary; `None` if the
    /// delivery task has stopped.
    pub async fn flush_webhooks(&self) -> Option<RunSummary> {
        let (tx, rx) = oneshot::channel();
        self.flush.send(tx).await.ok()?;
        rx.await.ok()
    }
}
