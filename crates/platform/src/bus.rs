//! The `[bus]` section every service on the bus reads, its validation, and the one way to
//! open the bus from it.

use ::bus::{AmqpConfig, Bus, BusError};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::{Problems, Validate};

/// `[bus]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// RabbitMQ; unset means an in-process bus.
    #[serde(default)]
    pub amqp_url: Option<SecretString>,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
}

impl Validate for BusConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.prefix.trim().is_empty() {
            problems.add(
                "bus.prefix",
                "is empty",
                "set it to the deployment's prefix, e.g. idbridge",
            );
        }
        if let Some(url) = &self.amqp_url {
            let url = url.expose_secret();
            if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                problems.add(
                    "bus.amqp_url",
                    "is not an amqp:// or amqps:// URL",
                    "write it as amqp://user:password@host:5672/%2f, or unset it for the in-process bus",
                );
            }
        }
    }
}

/// Connects to RabbitMQ at `config.amqp_url`, or makes an in-process bus when it is unset;
/// either way every name starts with `config.prefix`.
///
/// # Errors
/// [`BusError`] when RabbitMQ is unreachable or the prefix is refused.
pub async fn connect(config: &BusConfig) -> Result<Bus, BusError> {
    match &config.amqp_url {
        Some(url) => Bus::amqp(AmqpConfig::new(url.expose_secret()), &config.prefix).await,
        None => Bus::in_memory(&config.prefix),
    }
}
