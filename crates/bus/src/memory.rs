//! The in-process backend: for `idbridge up` on embedded defaults and for fast handler tests.
//!
//! Same semantics where they matter: topic routing, partitions with one active consumer and
//! one message in flight each, ack only after the handler answered, retry tiers with their
//! delays and attempt counting, parking with reason and history, invalid envelopes parked,
//! a killed consumer's in-flight message redelivered. Not durable: messages live in memory
//! and are gone when the process ends (the outbox, being in the database, is not).

use std::{
    collections::{HashMap, VecDeque},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex, MutexGuard},
};

use chrono::{DateTime, Utc};
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    AttemptOutcome, AttemptRecord, BusError, ConsumerHandle, ConsumerOptions, Delivery, Envelope,
    Handler, TraceContext,
    handler::run_guarded,
    message::OutgoingMessage,
    observe,
    parking::{ParkedMessage, Selection},
    policy::Action,
    topology::{Names, ServiceSpec, Topology},
};

#[derive(Clone, Debug)]
struct Stored {
    body: Vec<u8>,
    trace: TraceContext,
    exchange: String,
    routing_key: String,
    partition_key: Option<String>,
    history: Vec<AttemptRecord>,
    redelivered: bool,
    parked: Option<ParkInfo>,
}

#[derive(Clone, Debug)]
struct ParkInfo {
    reason: String,
    at: DateTime<Utc>,
    from: String,
    attempts: u32,
}

impl Stored {
    fn attempt(&self) -> u32 {
        let retries = self
            .history
            .iter()
            .filter(|r| r.outcome == AttemptOutcome::Retry)
            .count();
        u32::try_from(retries).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// Id and type read from the body, for operator listings.
    fn identity(&self) -> (Option<String>, Option<String>) {
        let value: Option<serde_json::Value> = serde_json::from_slice(&self.body).ok();
        let field = |name: &str| {
            value
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        (field("message_id"), field("type"))
    }
}

#[derive(Default)]
struct MemQueue {
    messages: Mutex<VecDeque<Stored>>,
    notify: Notify,
    /// Held by the one active consumer of a partition (single active consumer).
    active: Arc<tokio::sync::Mutex<()>>,
}

impl MemQueue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Stored>> {
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push_back(&self, message: Stored) {
        self.lock().push_back(message);
        self.notify.notify_one();
    }

    fn push_front(&self, message: Stored) {
        self.lock().push_front(message);
        self.notify.notify_one();
    }

    async fn pop(&self) -> Stored {
        loop {
            let notified = self.notify.notified();
            {
                let mut messages = self.lock();
                if let Some(message) = messages.pop_front() {
                    if !messages.is_empty() {
                        // Wake another worker for the rest.
                        self.notify.notify_one();
                    }
                    return message;
                }
            }
            notified.await;
        }
    }
}

#[derive(Clone, Debug)]
enum Target {
    Queue(String),
    Partitions(Vec<String>),
}

#[derive(Clone, Debug)]
struct Route {
    pattern: String,
    target: Target,
}

#[derive(Default)]
struct State {
    exchanges: HashMap<String, Vec<Route>>,
    queues: HashMap<String, Arc<MemQueue>>,
}

struct Inner {
    names: Names,
    state: Mutex<State>,
}

/// The in-process side of a [`crate::Bus`].
#[derive(Clone)]
pub(crate) struct MemoryBus {
    inner: Arc<Inner>,
}

/// AMQP topic matching: `*` is one word, `#` zero or more.
pub(crate) fn topic_matches(pattern: &str, key: &str) -> bool {
    fn matches(pattern: &[&str], key: &[&str]) -> bool {
        match (pattern.split_first(), key.split_first()) {
            (None, None) => true,
            (Some((&"#", rest)), _) => {
                matches(rest, key) || key.split_first().is_some_and(|(_, k)| matches(pattern, k))
            }
            (Some((p, prest)), Some((k, krest))) => (*p == "*" || p == k) && matches(prest, krest),
            _ => false,
        }
    }
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    };
    matches(&pattern, &key)
}

fn partition_of(key: Option<&str>, partitions: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    usize::try_from(hasher.finish() % u64::try_from(partitions.max(1)).unwrap_or(1)).unwrap_or(0)
}

impl MemoryBus {
    pub(crate) fn new(names: Names) -> Self {
        Self {
            inner: Arc::new(Inner {
                names,
                state: Mutex::new(State::default()),
            }),
        }
    }

    pub(crate) fn names(&self) -> &Names {
        &self.inner.names
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn queue(&self, name: &str) -> Result<Arc<MemQueue>, BusError> {
        self.state()
            .queues
            .get(name)
            .cloned()
            .ok_or_else(|| BusError::Config(format!("queue {name} is not declared")))
    }

    pub(crate) fn declare(&self, topology: &Topology) -> Result<(), BusError> {
        topology.validate()?;
        let names = self.names().clone();
        let mut state = self.state();
        // Same rule as on RabbitMQ: a service's partitioning is not changed in place.
        for service in &topology.services {
            let declared = |queue: &str| state.queues.contains_key(queue);
            let unchanged = match service.partitions {
                None => !declared(&names.partition(&service.name, 0)),
                Some(n) => {
                    !declared(&names.queue(&service.name))
                        && (!declared(&names.partition(&service.name, 0))
                            || (declared(&names.partition(&service.name, n - 1))
                                && !declared(&names.partition(&service.name, n))))
                }
            };
            if !unchanged {
                return Err(BusError::Config(format!(
                    "service {} was declared with other partitions before; changing them \
                     in place is refused (see Bus::declare)",
                    service.name
                )));
            }
        }
        for exchange in &topology.exchanges {
            state.exchanges.entry(names.exchange(exchange)).or_default();
        }
        for service in &topology.services {
            let mut queues = names.work_queues(service);
            queues.push(names.parked(&service.name));
            for queue in queues {
                state.queues.entry(queue).or_default();
            }
            let target = match service.partitions {
                None => Target::Queue(names.queue(&service.name)),
                Some(_) => Target::Partitions(names.work_queues(service)),
            };
            for binding in &service.bindings {
                let routes = state
                    .exchanges
                    .entry(names.exchange(&binding.exchange))
                    .or_default();
                let exists = routes.iter().any(|r| {
                    r.pattern == binding.pattern
                        && match (&r.target, &target) {
                            (Target::Queue(a), Target::Queue(b)) => a == b,
                            (Target::Partitions(a), Target::Partitions(b)) => a == b,
                            _ => false,
                        }
                });
                if !exists {
                    routes.push(Route {
                        pattern: binding.pattern.clone(),
                        target: target.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    pub(crate) fn delete(&self, topology: &Topology) {
        let names = self.names().clone();
        let mut state = self.state();
        for service in &topology.services {
            for queue in names.work_queues(service) {
                state.queues.remove(&queue);
            }
            state.queues.remove(&names.parked(&service.name));
        }
        for exchange in &topology.exchanges {
            state.exchanges.remove(&names.exchange(exchange));
        }
    }

    pub(crate) fn publish(
        &self,
        message: &OutgoingMessage,
        mandatory: bool,
    ) -> Result<(), BusError> {
        self.publish_bytes(
            &message.exchange,
            &message.routing_key,
            message.partition_key.as_deref(),
            message.envelope.to_json()?,
            message.envelope.trace.clone(),
            mandatory,
        )
    }

    pub(crate) fn publish_bytes(
        &self,
        exchange: &str,
        routing_key: &str,
        partition_key: Option<&str>,
        body: Vec<u8>,
        trace: TraceContext,
        mandatory: bool,
    ) -> Result<(), BusError> {
        let full = self.names().exchange(exchange);
        let state = self.state();
        let routes = state
            .exchanges
            .get(&full)
            .ok_or_else(|| BusError::Config(format!("exchange {full} is not declared")))?;
        let stored = Stored {
            body,
            trace,
            exchange: full.clone(),
            routing_key: routing_key.to_owned(),
            partition_key: partition_key.map(str::to_owned),
            history: Vec::new(),
            redelivered: false,
            parked: None,
        };
        // Like a topic exchange: one copy per matching binding target; none is an error
        // only for a mandatory publish.
        let mut delivered = false;
        for route in routes
            .iter()
            .filter(|r| topic_matches(&r.pattern, routing_key))
        {
            let queue = match &route.target {
                Target::Queue(q) => q,
                Target::Partitions(qs) => {
                    let Some(q) = qs.get(partition_of(partition_key, qs.len())) else {
                        continue;
                    };
                    q
                }
            };
            if let Some(q) = state.queues.get(queue) {
                q.push_back(stored.clone());
                delivered = true;
            }
        }
        if mandatory && !delivered {
            return Err(BusError::Unroutable {
                exchange: full,
                routing_key: routing_key.to_owned(),
            });
        }
        Ok(())
    }

    pub(crate) fn consume<H: Handler>(
        &self,
        spec: &ServiceSpec,
        options: &ConsumerOptions,
        handler: H,
    ) -> Result<ConsumerHandle, BusError> {
        let queues = self
            .names()
            .work_queues(spec)
            .iter()
            .map(|name| Ok((name.clone(), self.queue(name)?)))
            .collect::<Result<Vec<_>, BusError>>()?;
        let stop = options.shutdown.child_token();
        let kill = CancellationToken::new();
        let handler = Arc::new(handler);
        let spec = Arc::new(spec.clone());
        let mut workers = JoinSet::new();
        let partitioned = spec.partitions.is_some();
        let per_queue = if partitioned {
            1
        } else {
            options.prefetch.max(1)
        };
        for (name, queue) in queues {
            for _ in 0..per_queue {
                let worker = Worker {
                    bus: self.clone(),
                    spec: spec.clone(),
                    handler: handler.clone(),
                    queue_name: name.clone(),
                    queue: queue.clone(),
                    stop: stop.clone(),
                    kill: kill.clone(),
                };
                workers.spawn(worker.run(partitioned));
            }
        }
        let task = tokio::spawn(async move { while workers.join_next().await.is_some() {} });
        Ok(ConsumerHandle { stop, kill, task })
    }

    fn settle(&self, spec: &ServiceSpec, queue_name: &str, mut stored: Stored, action: Action) {
        let attempt = stored.attempt();
        match action {
            Action::Ack => {}
            Action::Retry { tier, reason } => {
                let delay = spec.retry.tiers.get(tier).copied().unwrap_or_default();
                stored.history.push(AttemptRecord {
                    attempt,
                    at: Utc::now(),
                    outcome: AttemptOutcome::Retry,
                    reason,
                    delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                });
                stored.redelivered = false;
                let bus = self.clone();
                let queue_name = queue_name.to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Ok(queue) = bus.queue(&queue_name) {
                        queue.push_back(stored);
                    }
                });
            }
            Action::Park { reason } => {
                let at = Utc::now();
                stored.history.push(AttemptRecord {
                    attempt,
                    at,
                    outcome: AttemptOutcome::Park,
                    reason: reason.clone(),
                    delay_ms: 0,
                });
                tracing::warn!(service = %spec.name, attempt, %reason, "parking message");
                stored.parked = Some(ParkInfo {
                    reason,
                    at,
                    from: queue_name.to_owned(),
                    attempts: attempt,
                });
                if let Ok(parked) = self.queue(&self.names().parked(&spec.name)) {
                    parked.push_back(stored);
                }
            }
        }
    }

    pub(crate) fn parked(
        &self,
        service: &str,
        limit: usize,
    ) -> Result<Vec<ParkedMessage>, BusError> {
        let queue = self.queue(&self.names().parked(service))?;
        let messages = queue.lock();
        Ok(messages
            .iter()
            .take(limit)
            .map(|m| {
                let (message_id, message_type) = m.identity();
                let info = m.parked.as_ref();
                ParkedMessage {
                    message_id,
                    message_type,
                    reason: info.map_or_else(String::new, |p| p.reason.clone()),
                    parked_at: info.map(|p| p.at),
                    origin_queue: info.map(|p| p.from.clone()),
                    routing_key: Some(m.routing_key.clone()),
                    attempts: info.map_or(0, |p| p.attempts),
                    history: m.history.clone(),
                    body: String::from_utf8_lossy(&m.body).into_owned(),
                }
            })
            .collect())
    }

    /// Moves the selected parked messages back to their origin queues. Targets are looked
    /// up before anything is taken out of the parking queue, so a message whose origin no
    /// longer exists stays parked instead of being lost.
    pub(crate) fn replay(&self, service: &str, selection: &Selection) -> Result<usize, BusError> {
        let parked = self.queue(&self.names().parked(service))?;
        // A snapshot of the queues, taken before the parking queue is locked (the state
        // lock is always taken before a queue's, as in publish).
        let queues = self.state().queues.clone();
        let mut chosen = Vec::new();
        {
            let mut messages = parked.lock();
            let mut kept = VecDeque::with_capacity(messages.len());
            for message in messages.drain(..) {
                let target = message
                    .parked
                    .as_ref()
                    .and_then(|info| queues.get(&info.from));
                match target {
                    Some(target) if selection.matches(message.identity().0.as_deref()) => {
                        chosen.push((target.clone(), message));
                    }
                    None if selection.matches(message.identity().0.as_deref()) => {
                        tracing::warn!(
                            message_id = ?message.identity().0,
                            origin = ?message.parked.as_ref().map(|p| &p.from),
                            "parked message whose origin queue does not exist left in place"
                        );
                        kept.push_back(message);
                    }
                    _ => kept.push_back(message),
                }
            }
            *messages = kept;
        }
        let replayed = chosen.len();
        for (target, mut message) in chosen {
            message.parked = None;
            message.history.clear();
            message.redelivered = false;
            target.push_back(message);
        }
        Ok(replayed)
    }

    pub(crate) fn purge(&self, service: &str) -> Result<usize, BusError> {
        let parked = self.queue(&self.names().parked(service))?;
        let mut messages = parked.lock();
        let purged = messages.len();
        messages.clear();
        Ok(purged)
    }
}

struct Worker<H> {
    bus: MemoryBus,
    spec: Arc<ServiceSpec>,
    handler: Arc<H>,
    queue_name: String,
    queue: Arc<MemQueue>,
    stop: CancellationToken,
    kill: CancellationToken,
}

/// Puts an unsettled message back at the head of its queue (as redelivered) if the worker
/// is dropped mid-handling, like a broker requeueing a dead consumer's unacked message.
struct InFlight<'a> {
    queue: &'a MemQueue,
    message: Option<Stored>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(mut message) = self.message.take() {
            message.redelivered = true;
            self.queue.push_front(message);
        }
    }
}

impl<H: Handler> Worker<H> {
    async fn run(self, single_active: bool) {
        // Partitions: wait to become the one active consumer of this queue.
        let _active = if single_active {
            tokio::select! {
                guard = self.queue.active.clone().lock_owned() => Some(guard),
                () = self.stop.cancelled() => return,
            }
        } else {
            None
        };
        loop {
            let message = tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                m = self.queue.pop() => m,
            };
            let mut in_flight = InFlight {
                queue: &self.queue,
                message: Some(message.clone()),
            };
            tokio::select! {
                biased;
                () = self.kill.cancelled() => return,
                action = self.handle(&message) => {
                    in_flight.message = None;
                    self.bus.settle(&self.spec, &self.queue_name, message, action);
                }
            }
        }
    }

    async fn handle(&self, message: &Stored) -> Action {
        let attempt = message.attempt();
        match Envelope::from_json(&message.body, message.trace.clone()) {
            Err(e) => {
                let action = Action::Park {
                    reason: format!("invalid envelope: {e}"),
                };
                let span = observe::rejected_span(&self.queue_name, "memory");
                observe::handled(&span, &self.queue_name, &action, None);
                action
            }
            Ok(envelope) => {
                let delivery = Delivery {
                    envelope,
                    attempt,
                    redelivered: message.redelivered,
                    exchange: message.exchange.clone(),
                    routing_key: message.routing_key.clone(),
                    partition_key: message.partition_key.clone(),
                    queue: self.queue_name.clone(),
                    history: message.history.clone(),
                };
                let span = observe::handle_span(&delivery, "memory");
                let started = std::time::Instant::now();
                let outcome = run_guarded(&*self.handler, delivery)
                    .instrument(span.clone())
                    .await;
                let action = self.spec.retry.decide(attempt, outcome);
                observe::handled(&span, &self.queue_name, &action, Some(started.elapsed()));
                action
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert!(topic_matches("hr.*", "hr.hire"));
        assert!(!topic_matches("hr.*", "hr.hire.x"));
        assert!(topic_matches("hr.#", "hr.hire.x"));
        assert!(topic_matches("hr.#", "hr"));
        assert!(topic_matches("#", "anything.at.all"));
        assert!(topic_matches("*.ready", "connection.ready"));
        assert!(!topic_matches("connection.ready", "connection.lost"));
        assert!(topic_matches("a.#.z", "a.b.c.z"));
    }

    fn parked(from: &str) -> Stored {
        Stored {
            body: br#"{"message_id":"m-1"}"#.to_vec(),
            trace: TraceContext::default(),
            exchange: "p.events".into(),
            routing_key: "x".into(),
            partition_key: None,
            history: Vec::new(),
            redelivered: false,
            parked: Some(ParkInfo {
                reason: "test".into(),
                at: Utc::now(),
                from: from.into(),
                attempts: 1,
            }),
        }
    }

    /// A parked message whose origin queue is gone stays parked; the others are replayed.
    #[test]
    fn replay_never_drops_a_message_it_cannot_deliver() {
        let bus = MemoryBus::new(Names::new("p").unwrap());
        bus.declare(&Topology::new().service(ServiceSpec::new("svc").bind("events", "#")))
            .unwrap();
        let parking = bus.queue("p.svc.parked").unwrap();
        parking.push_back(parked("p.gone"));
        parking.push_back(parked("p.svc"));
        assert_eq!(bus.replay("svc", &Selection::All).unwrap(), 1);
        assert_eq!(bus.queue("p.svc").unwrap().lock().len(), 1);
        let left = bus.parked("svc", 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].origin_queue.as_deref(), Some("p.gone"));
    }

    #[test]
    fn a_changed_partition_count_is_refused() {
        let bus = MemoryBus::new(Names::new("p").unwrap());
        let spec = ServiceSpec::new("w").bind("hr", "#");
        bus.declare(&Topology::new().service(spec.clone().partitioned(4)))
            .unwrap();
        bus.declare(&Topology::new().service(spec.clone().partitioned(4)))
            .unwrap();
        for changed in [
            spec.clone().partitioned(3),
            spec.clone().partitioned(5),
            spec,
        ] {
            assert!(bus.declare(&Topology::new().service(changed)).is_err());
        }
    }

    #[test]
    fn partitions_are_stable() {
        let a = partition_of(Some("0000-0002-1825-0097"), 8);
        assert_eq!(a, partition_of(Some("0000-0002-1825-0097"), 8));
        assert!(a < 8);
    }
}
