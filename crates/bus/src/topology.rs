//! The broker objects the bus declares, and how they are named.
//!
//! With prefix `idbridge` and a service `writer`:
//!
//! | object | name | kind |
//! |---|---|---|
//! | domain exchange `hr` | `idbridge.hr` | topic, durable |
//! | service queue | `idbridge.writer` | quorum; or, partitioned: |
//! | partition router | `idbridge.writer.partitions` | `x-consistent-hash` on header `x-partition-key` |
//! | partition *i* | `idbridge.writer.p{iii}` (`p000`, `p001`, …) | quorum, `x-single-active-consumer` |
//! | retry tier (5 s) | `idbridge.writer.retry.5s` | fanout exchange + quorum queue, TTL 5 s, dead-letters to the default exchange |
//! | parking | `idbridge.writer.parked` | quorum |
//!
//! See the crate README for why.

use std::time::Duration;

use crate::{BusError, policy::RetryPolicy, policy::delay_label};

/// Header carrying the partition key; the consistent-hash exchange hashes on it.
pub const PARTITION_KEY_HEADER: &str = "x-partition-key";

/// Most partitions a service may have. Partition queue names carry the index in three
/// digits (`p000`…`p999`) so that sorting them by name gives index order: RabbitMQ's
/// consistent-hash exchange rebuilds its ring from the bindings in name order after a
/// restart, and `p10` sorting before `p2` would move keys to other partitions.
pub const MAX_PARTITIONS: u16 = 1000;

/// Everything one deployment declares: domain exchanges and consuming services.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// Domain exchanges (topic), by name relative to the bus prefix (`hr`, `events`).
    pub exchanges: Vec<String>,
    /// One entry per consuming service.
    pub services: Vec<ServiceSpec>,
}

impl Topology {
    /// An empty topology.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a domain exchange (relative name).
    #[must_use]
    pub fn exchange(mut self, name: &str) -> Self {
        if !self.exchanges.iter().any(|e| e == name) {
            self.exchanges.push(name.to_owned());
        }
        self
    }

    /// Adds a consuming service; the exchanges it binds to and publishes to are added too.
    #[must_use]
    pub fn service(mut self, spec: ServiceSpec) -> Self {
        for binding in &spec.bindings {
            self = self.exchange(&binding.exchange);
        }
        for exchange in &spec.publishes {
            self = self.exchange(exchange);
        }
        self.services.push(spec);
        self
    }

    /// The spec of `service`.
    ///
    /// # Errors
    /// [`BusError::UnknownService`].
    pub fn find(&self, service: &str) -> Result<&ServiceSpec, BusError> {
        self.services
            .iter()
            .find(|s| s.name == service)
            .ok_or_else(|| BusError::UnknownService(service.to_owned()))
    }

    /// Checks names, partition counts and retry policies.
    ///
    /// # Errors
    /// [`BusError::Config`] naming the offending item.
    pub fn validate(&self) -> Result<(), BusError> {
        for exchange in &self.exchanges {
            check_name("exchange", exchange)?;
        }
        for service in &self.services {
            service.validate()?;
        }
        Ok(())
    }
}

/// A consuming service: its queue(s), what they receive, how failures are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Service name (`writer`); part of every queue name.
    pub name: String,
    /// What the service's queue receives.
    pub bindings: Vec<Binding>,
    /// `Some(n)`: `n` partition queues, at most one message in flight per partition key
    /// across all replicas. `None`: one queue, competing consumers.
    pub partitions: Option<u16>,
    /// Retry tiers and attempt limit.
    pub retry: RetryPolicy,
    /// Exchanges (relative names) the service publishes to, directly or through its outbox.
    /// Declaring them at start means a publish never names a missing exchange, which the
    /// broker answers by closing the publishing channel.
    pub publishes: Vec<String>,
    /// Quorum-queue `x-delivery-limit`: a message redelivered this many times without a
    /// verdict (its consumer keeps crashing on it) is dead-lettered to the parking queue.
    /// `None` leaves the broker's default: no limit before RabbitMQ 4.0, from 4.0 a limit of
    /// 20 after which the message is dropped, not parked.
    pub delivery_limit: Option<u32>,
}

impl ServiceSpec {
    /// A non-partitioned service with the default retry policy and a delivery limit of 20.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            bindings: Vec::new(),
            partitions: None,
            retry: RetryPolicy::default(),
            publishes: Vec::new(),
            delivery_limit: Some(20),
        }
    }

    /// Receives what `exchange` (relative name) routes with keys matching `pattern`
    /// (topic syntax: `*` one word, `#` any number).
    #[must_use]
    pub fn bind(mut self, exchange: &str, pattern: &str) -> Self {
        self.bindings.push(Binding {
            exchange: exchange.to_owned(),
            pattern: pattern.to_owned(),
        });
        self
    }

    /// Declares that the service publishes to `exchange` (relative name), so that
    /// [`Topology::service`] declares it.
    #[must_use]
    pub fn publishes(mut self, exchange: &str) -> Self {
        if !self.publishes.iter().any(|e| e == exchange) {
            self.publishes.push(exchange.to_owned());
        }
        self
    }

    /// Splits the service's queue into `n` partitions (1 to [`MAX_PARTITIONS`]) keyed by
    /// `x-partition-key`. The count cannot be changed on a running deployment without
    /// draining the partitions first: [`crate::Bus::declare`] refuses a changed count.
    #[must_use]
    pub fn partitioned(mut self, n: u16) -> Self {
        self.partitions = Some(n);
        self
    }

    /// Replaces the retry policy.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets (or removes) the delivery limit.
    #[must_use]
    pub fn delivery_limit(mut self, limit: Option<u32>) -> Self {
        self.delivery_limit = limit;
        self
    }

    fn validate(&self) -> Result<(), BusError> {
        check_name("service", &self.name)?;
        for exchange in &self.publishes {
            check_name("exchange", exchange)?;
        }
        for binding in &self.bindings {
            check_name("exchange", &binding.exchange)?;
            if binding.pattern.is_empty() {
                return Err(BusError::Config(format!(
                    "service {}: empty binding pattern on exchange {}",
                    self.name, binding.exchange
                )));
            }
        }
        if let Some(n) = self.partitions
            && !(1..=MAX_PARTITIONS).contains(&n)
        {
            return Err(BusError::Config(format!(
                "service {}: partitions must be 1 to {MAX_PARTITIONS}, not {n}",
                self.name
            )));
        }
        if self.delivery_limit == Some(0) {
            return Err(BusError::Config(format!(
                "service {}: delivery_limit must be at least 1",
                self.name
            )));
        }
        self.retry
            .validate()
            .map_err(|e| BusError::Config(format!("service {}: {e}", self.name)))
    }
}

/// A binding from a domain exchange to a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Exchange, relative name.
    pub exchange: String,
    /// Topic pattern.
    pub pattern: String,
}

/// Service and exchange names are one dot-separated word of the broker names built from
/// them (`{prefix}.{service}.retry.5s`): a `.` inside would let two services' objects
/// collide (`a` + `.b.parked` vs `a.b` + `.parked`). The prefix may contain dots.
fn check_name(what: &str, name: &str) -> Result<(), BusError> {
    let dots_allowed = what == "prefix";
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b"-_".contains(&b)
                || (dots_allowed && b == b'.')
        });
    if ok {
        Ok(())
    } else if dots_allowed {
        Err(BusError::Config(format!(
            "{what} name {name:?} must be 1-100 characters of a-z, 0-9, '-', '_', '.'"
        )))
    } else {
        Err(BusError::Config(format!(
            "{what} name {name:?} must be 1-100 characters of a-z, 0-9, '-', '_' (no '.')"
        )))
    }
}

/// Full broker names for one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Names under `prefix` (`idbridge` in production; random in tests).
    ///
    /// # Errors
    /// [`BusError::Config`] for an unusable prefix.
    pub fn new(prefix: &str) -> Result<Self, BusError> {
        check_name("prefix", prefix)?;
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A domain exchange: `{prefix}.{name}`.
    #[must_use]
    pub fn exchange(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// The service's queue (non-partitioned): `{prefix}.{service}`.
    #[must_use]
    pub fn queue(&self, service: &str) -> String {
        format!("{}.{service}", self.prefix)
    }

    /// The consistent-hash exchange in front of a partitioned service's queues.
    #[must_use]
    pub fn partition_exchange(&self, service: &str) -> String {
        format!("{}.{service}.partitions", self.prefix)
    }

    /// Partition `index` of a service: `{prefix}.{service}.p007`. Three digits, so that
    /// names sort in index order (see [`MAX_PARTITIONS`]).
    #[must_use]
    pub fn partition(&self, service: &str, index: u16) -> String {
        format!("{}.{service}.p{index:03}", self.prefix)
    }

    /// The queues a service's consumers read: one, or one per partition.
    #[must_use]
    pub fn work_queues(&self, spec: &ServiceSpec) -> Vec<String> {
        match spec.partitions {
            None => vec![self.queue(&spec.name)],
            Some(n) => (0..n).map(|i| self.partition(&spec.name, i)).collect(),
        }
    }

    /// Retry tier with `delay` (both the fanout exchange and its queue carry this name).
    /// The delay is in the name so a changed policy declares new tiers instead of clashing
    /// with the old queues' arguments.
    #[must_use]
    pub fn retry_tier(&self, service: &str, delay: Duration) -> String {
        format!("{}.{}", self.retry_prefix(service), delay_label(delay))
    }

    /// Common prefix of a service's retry tiers (attempts are counted from `x-death` entries
    /// whose queue starts with it).
    #[must_use]
    pub fn retry_prefix(&self, service: &str) -> String {
        format!("{}.{service}.retry", self.prefix)
    }

    /// The service's parking queue.
    #[must_use]
    pub fn parked(&self, service: &str) -> String {
        format!("{}.{service}.parked", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = Names::new("idbridge").unwrap();
        assert_eq!(n.exchange("hr"), "idbridge.hr");
        assert_eq!(n.queue("writer"), "idbridge.writer");
        assert_eq!(n.partition("writer", 3), "idbridge.writer.p003");
        assert_eq!(n.partition("writer", 999), "idbridge.writer.p999");
        assert_eq!(
            n.retry_tier("writer", Duration::from_secs(30)),
            "idbridge.writer.retry.30s"
        );
        assert_eq!(n.parked("writer"), "idbridge.writer.parked");
        assert!(Names::new("Bad Prefix").is_err());
    }

    #[test]
    fn validation() {
        let ok = Topology::new().service(ServiceSpec::new("writer").bind("hr", "hr.*"));
        assert!(ok.validate().is_ok());
        assert_eq!(ok.exchanges, vec!["hr".to_owned()]);
        let bad = Topology::new().service(ServiceSpec::new("writer").partitioned(0));
        assert!(bad.validate().is_err());
        let too_many = ServiceSpec::new("writer").partitioned(MAX_PARTITIONS + 1);
        assert!(Topology::new().service(too_many).validate().is_err());
        let publisher = ServiceSpec::new("vault").publishes("events");
        assert_eq!(
            Topology::new().service(publisher).exchanges,
            vec!["events".to_owned()]
        );
    }

    #[test]
    fn dots_are_refused_in_service_and_exchange_names_but_not_in_the_prefix() {
        for bad in [
            Topology::new().service(ServiceSpec::new("writer.retry")),
            Topology::new().exchange("hr.x"),
            Topology::new().service(ServiceSpec::new("w").bind("a.b", "#")),
            Topology::new().service(ServiceSpec::new("w").publishes("a.b")),
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains("no '.'"), "{err}");
        }
        assert!(Names::new("idbridge.staging").is_ok());
    }

    /// The consistent-hash exchange rebuilds its ring from bindings sorted by queue name
    /// after a broker restart; the partitions must sort in index order or keys move.
    #[test]
    fn partition_names_sort_in_index_order() {
        let names = Names::new("idbridge").unwrap();
        for count in [1, 2, 10, 11, 12, 100, 101, MAX_PARTITIONS] {
            let spec = ServiceSpec::new("writer").partitioned(count);
            let in_index_order = names.work_queues(&spec);
            let mut sorted = in_index_order.clone();
            sorted.sort();
            assert_eq!(sorted, in_index_order, "{count} partitions");
        }
    }
}
