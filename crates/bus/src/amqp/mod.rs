//! The RabbitMQ backend (lapin 4).
//!
//! One connection publishes, shared by everything that publishes through a [`crate::Bus`];
//! on it, each kind of publisher has a channel (a [`Lane`]) of its own: application
//! publishes, consumers' re-routes to retry tiers and parking, and each outbox relay. A
//! channel-level error (a publish to a missing exchange closes the channel) therefore only
//! fails publishes on that lane, and the lane reopens its channel on the next publish.
//! Each consumer has a connection of its own, so that flow control on publishing never
//! stalls deliveries; declarations use a short-lived connection, so that a refused
//! declaration (which RabbitMQ may answer by closing the connection) touches nothing else.
//! Every connection is re-established after it drops, with back-off; nothing relies on
//! lapin's experimental auto-recovery.

pub(crate) mod consumer;
pub(crate) mod declare;
pub(crate) mod headers;
pub(crate) mod parking;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use backon::{ExponentialBuilder, Retryable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    uri::AMQPUri,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::{BusError, message::OutgoingMessage, topology::Names};

/// How to reach RabbitMQ.
#[derive(Clone)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:5672/%2f` (may carry `?heartbeat=` and friends). Secret:
    /// it holds the password; errors and `Debug` show it redacted.
    pub url: SecretString,
    /// Shown by `rabbitmqctl list_connections client_properties` and the management UI;
    /// each connection appends its role (`:publisher`, `:consumer:writer`).
    pub connection_name: String,
    /// Limit for one connection attempt.
    pub connect_timeout: Duration,
    /// Limit for one publish to be confirmed, opening the publishing channel (when it has to
    /// be opened) included.
    pub publish_timeout: Duration,
    /// Tries of [`crate::Bus::publish`] on transient failures before giving up (the outbox
    /// relay has its own, unbounded loop).
    pub publish_attempts: u32,
    /// Longest pause between two reconnection attempts of a consumer.
    pub max_reconnect_delay: Duration,
}

impl AmqpConfig {
    /// Defaults for `url`: 10 s to connect, 30 s per confirm, 3 publish attempts,
    /// reconnecting at most every 5 s. The URL is checked when connecting (or by
    /// [`AmqpConfig::validate`]).
    #[must_use]
    pub fn new(url: &str) -> Self {
        Self::from_secret(SecretString::from(url))
    }

    /// As [`AmqpConfig::new`], for a URL already held as a secret.
    #[must_use]
    pub fn from_secret(url: SecretString) -> Self {
        Self {
            url,
            connection_name: "idbridge".to_owned(),
            connect_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(30),
            publish_attempts: 3,
            max_reconnect_delay: Duration::from_secs(5),
        }
    }

    /// Sets the connection name.
    #[must_use]
    pub fn connection_name(mut self, name: &str) -> Self {
        self.connection_name = name.to_owned();
        self
    }

    /// Checks the URL without connecting, for configuration loading.
    ///
    /// # Errors
    /// [`BusError::Config`] saying what is wrong, with the URL's password redacted.
    pub fn validate(&self) -> Result<(), BusError> {
        parse_uri(self.url.expose_secret()).map(|_| ())
    }
}

impl fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("connection_name", &self.connection_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("publish_timeout", &self.publish_timeout)
            .field("publish_attempts", &self.publish_attempts)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .finish()
    }
}

/// `amqp://user:secret@host` → `amqp://user:***@host`, so URLs can be logged. Whatever
/// stands between the scheme and the last `@` is treated as user information, so a
/// malformed URL is redacted too.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Parses the URL ourselves first: amq-protocol-uri's own errors repeat the whole URL,
/// password included, so none of them may reach a log. Also takes the host from the URL
/// for IP addresses, which amq-protocol-uri 10 replaces by `localhost`.
fn parse_uri(url: &str) -> Result<AMQPUri, BusError> {
    let bad = |why: &str| {
        BusError::Config(format!(
            "invalid AMQP URL {}: {why} (expected amqp[s]://user:password@host:port/vhost)",
            redact_url(url)
        ))
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "amqp" | "amqps") {
        return Err(bad("the scheme must be amqp or amqps"));
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(bad("no host")),
    };
    let mut uri: AMQPUri = url
        .parse()
        .map_err(|_| bad("a query parameter or an escape sequence is not valid"))?;
    if !matches!(parsed.host(), Some(url::Host::Domain(_))) {
        uri.authority.host = host;
    }
    if uri.query.frame_max.is_none() {
        uri.query.frame_max = Some(FRAME_MAX);
    }
    Ok(uri)
}

/// The AMQP frame size asked for unless the URL sets `?frame_max=`: 32 KiB. The client keeps
/// receive and send buffers of 32 frames per connection, so RabbitMQ's default of 128 KiB
/// costs 8 MiB of resident memory per connection (about 23 MiB of a service's 30 MiB of heap,
/// measured by the pipeline benchmark); our messages are a few KiB, and a larger one is
/// simply sent in more frames.
pub const FRAME_MAX: u32 = 32 * 1024;

pub(crate) async fn connect(config: &AmqpConfig, role: &str) -> Result<Connection, BusError> {
    let uri = parse_uri(config.url.expose_secret())?;
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("{}:{role}", config.connection_name).into());
    let connection = tokio::time::timeout(
        config.connect_timeout,
        Connection::connect_uri(uri, properties),
    )
    .await
    .map_err(|_| BusError::ConnectTimeout(config.connect_timeout))??;
    tracing::debug!(url = %redact_url(config.url.expose_secret()), role, "connected to RabbitMQ");
    Ok(connection)
}

/// How long a close waits for the broker's close-ok: a discarded channel's (on a task of its
/// own) and every other ([`bounded_close`]).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Awaits the close of a channel or connection for at most [`CLOSE_TIMEOUT`]. Seen once:
/// the socket was already shut and lapin's close never completed, which held the caller's
/// shutdown forever. Either way the channel or connection is gone for us afterwards.
///
/// Returns whether the close finished in time, successfully or not (a close that fails
/// found the channel or connection already gone). `false` means the broker may still hold
/// the channel or connection open, with whatever it had not acknowledged: callers that
/// fetched messages on it must not report success (see [`AmqpBus::reset_connection`]).
pub(crate) async fn bounded_close<F>(what: &'static str, close: F) -> bool
where
    F: Future<Output = Result<(), lapin::Error>>,
{
    let finished = tokio::time::timeout(CLOSE_TIMEOUT, close).await.is_ok();
    if !finished {
        tracing::warn!(
            what,
            timeout_s = CLOSE_TIMEOUT.as_secs(),
            "RabbitMQ did not confirm the close in time; dropping it"
        );
    }
    finished
}

/// A publishing channel (confirm mode) of one kind of publisher, on the shared publishing
/// connection; reopened on the next publish after it (or the connection) died.
pub(crate) struct Lane {
    name: &'static str,
    slot: Mutex<Option<LaneChannel>>,
    generations: AtomicU64,
}

struct LaneChannel {
    channel: Channel,
    /// Tells channels apart, so a publish that failed on an old channel does not discard
    /// the fresh one another task already opened.
    generation: u64,
}

impl Lane {
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            slot: Mutex::new(None),
            generations: AtomicU64::new(0),
        }
    }

    async fn channel(&self, bus: &Inner) -> Result<(Channel, u64), BusError> {
        let mut slot = self.slot.lock().await;
        if let Some(open) = slot.as_ref()
            && open.channel.status().connected()
        {
            return Ok((open.channel.clone(), open.generation));
        }
        slot.take();
        let connection = bus.connection().await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(lane = self.name, "opened a publishing channel");
        *slot = Some(LaneChannel {
            channel: channel.clone(),
            generation,
        });
        Ok((channel, generation))
    }

    /// Drops the channel of `generation` (if still current) so the next publish opens a
    /// fresh one: after a timeout its confirms can no longer be matched to publishes. The
    /// channel is closed on a task of its own, for at most [`CLOSE_TIMEOUT`]: on a
    /// connection that stopped answering the close would never complete.
    async fn discard(&self, generation: u64) {
        let old = self
            .slot
            .lock()
            .await
            .take_if(|open| open.generation == generation);
        if let Some(old) = old
            && old.channel.status().connected()
        {
            tokio::spawn(async move {
                let close = old.channel.close(200, "discarded".into());
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
            });
        }
    }
}

pub(crate) struct Inner {
    pub(crate) config: AmqpConfig,
    pub(crate) names: Names,
    connection: Mutex<Option<Arc<Connection>>>,
    /// `Bus::publish` and friends.
    pub(crate) app: Lane,
    /// Consumers' retry and parking re-routes, and replays of parked messages.
    pub(crate) reroute: Lane,
}

impl Inner {
    /// The publishing connection, re-established after it dropped.
    async fn connection(&self) -> Result<Arc<Connection>, BusError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref()
            && connection.status().connected()
        {
            return Ok(connection.clone());
        }
        let connection = Arc::new(connect(&self.config, "publisher").await?);
        *slot = Some(connection.clone());
        Ok(connection)
    }
}

/// The RabbitMQ side of a [`crate::Bus`].
#[derive(Clone)]
pub(crate) struct AmqpBus {
    pub(crate) inner: Arc<Inner>,
}

impl AmqpBus {
    pub(crate) async fn connect(config: AmqpConfig, names: Names) -> Result<Self, BusError> {
        let bus = Self {
            inner: Arc::new(Inner {
                config,
                names,
                connection: Mutex::new(None),
                app: Lane::new("app"),
                reroute: Lane::new("reroute"),
            }),
        };
        // Fail fast on a wrong URL or credentials instead of at the first publish.
        bus.inner.app.channel(&bus.inner).await?;
        crate::observe::parked_refresh_failed(0);
        Ok(bus)
    }

    pub(crate) fn names(&self) -> &Names {
        &self.inner.names
    }

    pub(crate) fn config(&self) -> &AmqpConfig {
        &self.inner.config
    }

    /// A new channel on the publishing connection, for operator tools, with that connection:
    /// the one to [reset](AmqpBus::reset_connection) when the channel will not close.
    pub(crate) async fn fresh_channel(&self) -> Result<(Channel, Arc<Connection>), BusError> {
        let connection = self.inner.connection().await?;
        let channel = connection.create_channel().await?;
        Ok((channel, connection))
    }

    /// Drops the publishing connection `connection` (if still the current one, so the next
    /// use connects afresh) and closes it, for at most [`CLOSE_TIMEOUT`]: closing it makes
    /// the broker put back every message its channels held unacknowledged, which is how a
    /// channel whose own close went unconfirmed is made to let go of what it fetched. The
    /// lanes' channels die with it and reopen on their next publish (a publish under way
    /// fails and is retried like any connection loss).
    ///
    /// Returns whether the close finished in time.
    pub(crate) async fn reset_connection(&self, connection: &Arc<Connection>) -> bool {
        let mut slot = self.inner.connection.lock().await;
        slot.take_if(|current| Arc::ptr_eq(current, connection));
        drop(slot);
        tracing::warn!("resetting the publishing connection: a channel on it did not close");
        bounded_close(
            "connection",
            connection.close(200, "reset: a channel did not close".into()),
        )
        .await
    }

    /// Publishes once on `lane` and waits for the broker's confirm; opening the lane's
    /// channel, when it has none, counts in the `publish_timeout` too.
    pub(crate) async fn publish_raw(
        &self,
        lane: &Lane,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
        mandatory: bool,
    ) -> Result<(), BusError> {
        // The channel of this publish, once open: the one to discard after a timeout. A
        // timeout while opening it leaves the lane without one (`Lane::channel` empties the
        // slot first), so the next publish opens a new one anyway.
        let mut generation = None;
        let publish = async {
            let (channel, opened) = lane.channel(&self.inner).await?;
            generation = Some(opened);
            let confirm = channel
                .basic_publish(
                    exchange.into(),
                    headers::short(routing_key),
                    BasicPublishOptions {
                        mandatory,
                        immediate: false,
                    },
                    body,
                    properties,
                )
                .await?
                .await?;
            match confirm {
                Confirmation::Ack(None) => Ok(()),
                Confirmation::Ack(Some(_)) => Err(BusError::Unroutable {
                    exchange: exchange.to_owned(),
                    routing_key: routing_key.to_owned(),
                }),
                Confirmation::Nack(_) | Confirmation::NotRequested => Err(BusError::Nacked {
                    exchange: exchange.to_owned(),
                }),
            }
        };
        let timeout = self.inner.config.publish_timeout;
        let result = tokio::time::timeout(timeout, publish)
            .await
            .unwrap_or(Err(BusError::PublishTimeout(timeout)));
        if matches!(result, Err(BusError::PublishTimeout(_)))
            && let Some(generation) = generation
        {
            lane.discard(generation).await;
        }
        // Any other failure left the channel (or the connection) closed, and the next
        // publish on this lane opens a new one.
        result
    }

    /// Publishes an envelope on `lane`, retrying transient failures `attempts` times.
    pub(crate) async fn publish(
        &self,
        lane: &Lane,
        message: &OutgoingMessage,
        mandatory: bool,
        attempts: u32,
    ) -> Result<(), BusError> {
        let exchange = self.inner.names.exchange(&message.exchange);
        let body = message.envelope.to_json()?;
        let once = || async {
            self.publish_raw(
                lane,
                &exchange,
                &message.routing_key,
                &body,
                headers::properties_for(message),
                mandatory,
            )
            .await
        };
        once.retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(2))
                .with_jitter()
                .with_max_times(usize::try_from(attempts.max(1) - 1).unwrap_or(0)),
        )
        .sleep(tokio::time::sleep)
        .when(BusError::is_transient)
        .notify(|e, after| tracing::warn!(error = %e, ?after, "publish failed; retrying"))
        .await
    }

    pub(crate) async fn close(&self) {
        for lane in [&self.inner.app, &self.inner.reroute] {
            lane.slot.lock().await.take();
        }
        if let Some(connection) = self.inner.connection.lock().await.take() {
            bounded_close("connection", connection.close(200, "bye".into())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_PASSWORD: &str = "TEST_AMQP_PASSWORD";

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_url("amqp://127.0.0.1"), "amqp://127.0.0.1");
        assert_eq!(
            redact_url(&format!("u:{TEST_PASSWORD}@h")),
            "u:***@h",
            "no scheme"
        );
        let debug = format!("{:?}", AmqpConfig::new("amqp://u:TEST_SECRET@h/v"));
        assert!(!debug.contains("TEST_SECRET"), "{debug}");
    }

    /// Every way a URL can be wrong gives an error without the password, although
    /// amq-protocol-uri's own messages repeat the URL.
    #[test]
    fn url_errors_never_show_the_password() {
        for url in [
            format!("amqp://u:{TEST_PASSWORD}@host:notaport/%2f"),
            format!("http://u:{TEST_PASSWORD}@host/"),
            format!("amqp://u:{TEST_PASSWORD}@host/?heartbeat=soon"),
            format!("amqp://u:{TEST_PASSWORD}@host/?auth_mechanism=magic"),
            format!("amqp://u:{TEST_PASSWORD}@/vhost"),
            format!("amqp:u:{TEST_PASSWORD}@host"),
            format!("u:{TEST_PASSWORD}@host"),
        ] {
            let config = AmqpConfig::new(&url);
            let err = config.validate().expect_err(&redact_url(&url));
            assert!(matches!(err, BusError::Config(_)), "{err:?}");
            for shown in [err.to_string(), format!("{err:?}"), format!("{config:?}")] {
                assert!(!shown.contains(TEST_PASSWORD), "{shown}");
            }
        }
        assert!(
            AmqpConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f")
                .validate()
                .is_ok()
        );
    }

    /// The same through the public entry point: connecting with a bad URL.
    #[tokio::test]
    async fn connecting_with_a_bad_url_never_shows_the_password() {
        let url = format!("amqp://u:{TEST_PASSWORD}@host:99999/%2f");
        let config = AmqpConfig::from_secret(SecretString::from(url));
        let err = crate::Bus::amqp(config, "p").await.unwrap_err();
        assert!(matches!(err, BusError::Config(_)), "{err:?}");
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains(TEST_PASSWORD), "{shown}");
            assert!(shown.contains("amqp://u:***@host"), "{shown}");
        }
    }

    #[test]
    fn frames_are_32_kib_unless_the_url_says_otherwise() {
        let default = parse_uri("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(default.query.frame_max, Some(32 * 1024));
        let chosen = parse_uri("amqp://guest:guest@127.0.0.1:5672/%2f?frame_max=131072").unwrap();
        assert_eq!(chosen.query.frame_max, Some(131_072));
    }

    #[test]
    fn ip_hosts_are_kept() {
        let uri = parse_uri("amqp://u:p@10.1.2.3:5673/%2f").unwrap();
        assert_eq!(uri.authority.host, "10.1.2.3");
        assert_eq!(uri.authority.port, 5673);
        assert_eq!(uri.vhost, "/");
        let uri = parse_uri("amqp://u:p@[::1]/v").unwrap();
        assert_eq!(uri.authority.host, "::1");
        let uri = parse_uri("amqps://u:p@rabbit.example/v?heartbeat=10").unwrap();
        assert_eq!(uri.authority.host, "rabbit.example");
        assert_eq!(uri.query.heartbeat, Some(10));
    }
}
