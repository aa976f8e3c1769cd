//! At most one message in flight per partition key across all replicas of a consumer, when
//! the active replica leaves gracefully and when it crashes.
//!
//! What RabbitMQ 3.10 does with single-active-consumer queues: the first replica to
//! subscribe is the active consumer of every partition, the others wait; when it leaves, one
//! of them takes over. These tests check what the bus relies on (one consumer per partition
//! at a time, nothing lost, no key handled twice at once), not a spread across replicas.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bus::{
    Bus, BusError, ConsumerHandle, ConsumerOptions, Delivery, Outcome, ServiceSpec, Topology,
    handler_fn,
};
use serde_json::json;

use crate::helpers::{amqp_bus, message, prefix, wait_for};

const KEYS: usize = 10;
const MESSAGES: usize = 120;

#[derive(Clone, Debug)]
struct Span {
    key: String,
    message_id: String,
    queue: String,
    consumer: usize,
    redelivered: bool,
    start: Instant,
    end: Instant,
}

#[derive(Default)]
struct Journal {
    /// Handlings that ran to the end.
    spans: Vec<Span>,
    in_flight: HashMap<String, usize>,
    /// Handlings running now, per consumer.
    running: HashMap<usize, usize>,
    /// Keys seen with two handlings at the same moment.
    overlaps: Vec<String>,
}

type Shared = Arc<Mutex<Journal>>;

/// Counts a handling as running until it ends or is dropped (a crashed consumer's handler
/// is dropped mid-way).
struct Running {
    journal: Shared,
    key: String,
    consumer: usize,
}

impl Running {
    fn start(journal: &Shared, key: &str, consumer: usize) -> Self {
        let mut j = journal.lock().unwrap();
        let n = j.in_flight.entry(key.to_owned()).or_default();
        *n += 1;
        if *n > 1 {
            j.overlaps.push(key.to_owned());
        }
        *j.running.entry(consumer).or_default() += 1;
        Self {
            journal: journal.clone(),
            key: key.to_owned(),
            consumer,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut j = self.journal.lock().unwrap();
        if let Some(n) = j.in_flight.get_mut(&self.key) {
            *n -= 1;
        }
        if let Some(n) = j.running.get_mut(&self.consumer) {
            *n -= 1;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leave {
    /// `ConsumerHandle::stop`: in-flight handlers finish and acknowledge.
    Stop,
    /// `ConsumerHandle::kill`: as a crash, in-flight handlers are dropped unacknowledged.
    Crash,
}

async fn start_consumer(
    bus: &Bus,
    service: &ServiceSpec,
    index: usize,
    journal: Shared,
) -> ConsumerHandle {
    bus.consume(
        service,
        ConsumerOptions::default().prefetch(5),
        handler_fn(move |d: Delivery| {
            let journal = journal.clone();
            async move {
                let key = d.partition_key.clone().expect("partition key");
                let start = Instant::now();
                let running = Running::start(&journal, &key, index);
                // Long enough for a second message of the same key to arrive meanwhile.
                let i = d.envelope.payload["i"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(5 + (i % 4) * 3)).await;
                drop(running);
                journal.lock().unwrap().spans.push(Span {
                    key,
                    message_id: d.envelope.message_id.to_string(),
                    queue: d.queue.clone(),
                    consumer: index,
                    redelivered: d.redelivered,
                    start,
                    end: Instant::now(),
                });
                Outcome::Ack
            }
        }),
    )
    .await
    .unwrap()
}

/// What happened around the replica that left.
struct Run {
    journal: Journal,
    leaver: usize,
    /// When the leave began (`stop`/`kill` called) and ended (returned); the broker hands
    /// the partitions over in between.
    leaving_at: Instant,
    left_at: Instant,
}

/// Three replicas (separate connections) consume interleaved keys; the replica that handled
/// most so far (on RabbitMQ 3.10: the first to subscribe, active on every partition) leaves
/// a third of the way through, while handling, so that the others take over.
async fn run(buses: &[Bus; 3], service: &ServiceSpec, leave: Leave) -> Run {
    let journal: Shared = Arc::default();
    let mut consumers = Vec::new();
    for (i, bus) in buses.iter().enumerate() {
        consumers.push(Some(start_consumer(bus, service, i, journal.clone()).await));
    }
    let mut ids = HashSet::new();
    for i in 0..MESSAGES {
        // Two messages in a row share a key: published a moment apart, each still in its
        // handler when the next arrives, so without partitions they overlap however slowly
        // the broker confirms (keys ten messages apart overlapped only while publishing
        // outpaced handling, and a loaded CI machine sometimes did not).
        let key = format!("0000-0002-1825-{:04}", (i / 2) % KEYS);
        let m = message("hr", "hr.change", json!({"i": i})).partition_key(key);
        ids.insert(m.envelope.message_id.to_string());
        buses[0].publish(&m).await.unwrap();
    }
    wait_for("a third of the messages", || async {
        (journal.lock().unwrap().spans.len() >= MESSAGES / 3).then_some(())
    })
    .await;
    let leaver = {
        let j = journal.lock().unwrap();
        (0..3)
            .max_by_key(|c| j.spans.iter().filter(|s| s.consumer == *c).count())
            .unwrap()
    };
    // Leave mid-message, so that a crash has something in flight to lose (competing
    // consumers may have finished everything by now: then leave anyway).
    wait_for("the leaving replica to be handling a message", || async {
        let j = journal.lock().unwrap();
        (j.running.get(&leaver).copied().unwrap_or(0) > 0 || j.spans.len() >= MESSAGES)
            .then_some(())
    })
    .await;
    let leaving_at = Instant::now();
    let handle = consumers[leaver].take().unwrap();
    match leave {
        Leave::Stop => handle.stop().await,
        Leave::Crash => handle.kill().await,
    }
    let left_at = Instant::now();
    wait_for("every message", || async {
        let j = journal.lock().unwrap();
        let handled: HashSet<&str> = j.spans.iter().map(|s| s.message_id.as_str()).collect();
        (handled.len() >= MESSAGES).then_some(())
    })
    .await;
    for c in consumers.into_iter().flatten() {
        c.stop().await;
    }
    let journal = Arc::try_unwrap(journal).ok().unwrap().into_inner().unwrap();
    let handled: HashSet<String> = journal.spans.iter().map(|s| s.message_id.clone()).collect();
    assert_eq!(handled, ids, "nothing lost");
    let mut seen = HashSet::new();
    for span in &journal.spans {
        assert!(
            seen.insert(&span.message_id) || span.redelivered,
            "{} handled to the end twice without a redelivery",
            span.message_id
        );
    }
    if leave == Leave::Stop {
        assert_eq!(journal.spans.len(), MESSAGES, "nothing handled twice");
    }
    Run {
        journal,
        leaver,
        leaving_at,
        left_at,
    }
}

fn assert_no_overlap(run: &Run) {
    let journal = &run.journal;
    assert!(
        journal.overlaps.is_empty(),
        "keys handled twice at once: {:?}",
        journal.overlaps
    );
    let mut by_key: HashMap<&str, Vec<&Span>> = HashMap::new();
    for span in &journal.spans {
        by_key.entry(&span.key).or_default().push(span);
    }
    assert_eq!(by_key.len(), KEYS);
    for (key, mut spans) in by_key {
        spans.sort_by_key(|s| s.start);
        for pair in spans.windows(2) {
            assert!(
                pair[1].start >= pair[0].end,
                "key {key}: a handling started (consumer {}) before the previous ended (consumer {})",
                pair[1].consumer,
                pair[0].consumer
            );
        }
    }
    // One consumer per partition at a time: before the leave each partition was handled
    // by one replica; after it, the leaver started nothing.
    let mut before: HashMap<&str, HashSet<usize>> = HashMap::new();
    for span in journal.spans.iter().filter(|s| s.start < run.leaving_at) {
        before.entry(&span.queue).or_default().insert(span.consumer);
    }
    for (queue, consumers) in &before {
        assert_eq!(
            consumers.len(),
            1,
            "{queue} had consumers {consumers:?} at once"
        );
    }
    assert!(
        journal
            .spans
            .iter()
            .all(|s| s.consumer != run.leaver || s.start < run.left_at),
        "the replica that left kept handling"
    );
    let after: HashSet<usize> = journal
        .spans
        .iter()
        .filter(|s| s.start > run.left_at)
        .map(|s| s.consumer)
        .collect();
    assert!(
        !after.is_empty() && !after.contains(&run.leaver),
        "the partitions moved to another replica: {after:?}"
    );
}

#[tokio::test]
async fn at_most_one_message_in_flight_per_key_across_three_consumers() {
    let prefix = prefix();
    let buses = [
        amqp_bus(&prefix).await,
        amqp_bus(&prefix).await,
        amqp_bus(&prefix).await,
    ];
    let service = ServiceSpec::new("writer").bind("hr", "hr.*").partitioned(4);
    let topology = Topology::new().service(service.clone());
    buses[0].declare(&topology).await.unwrap();

    let run = run(&buses, &service, Leave::Stop).await;
    assert_no_overlap(&run);

    buses[0].delete(&topology).await.unwrap();
    for bus in &buses {
        bus.close().await;
    }
}

#[tokio::test]
async fn when_the_active_replica_crashes_its_partitions_move_and_nothing_is_lost() {
    let prefix = prefix();
    let buses = [
        amqp_bus(&prefix).await,
        amqp_bus(&prefix).await,
        amqp_bus(&prefix).await,
    ];
    let service = ServiceSpec::new("writer").bind("hr", "hr.*").partitioned(4);
    let topology = Topology::new().service(service.clone());
    buses[0].declare(&topology).await.unwrap();

    let run = run(&buses, &service, Leave::Crash).await;
    assert_no_overlap(&run);
    assert!(
        run.journal
            .spans
            .iter()
            .any(|s| s.redelivered && s.consumer != run.leaver),
        "what the crashed replica had in flight was redelivered to another"
    );

    buses[0].delete(&topology).await.unwrap();
    for bus in &buses {
        bus.close().await;
    }
}

/// A different partition count (or switching partitioning on or off) is refused before
/// anything is declared, with the way to do it.
#[tokio::test]
async fn a_changed_partition_count_is_refused_with_the_procedure() {
    let prefix = prefix();
    let bus = amqp_bus(&prefix).await;
    let service = ServiceSpec::new("writer").bind("hr", "hr.*");
    let declared = Topology::new().service(service.clone().partitioned(12));
    bus.declare(&declared).await.unwrap();
    bus.declare(&declared).await.unwrap();

    for (changed, says) in [
        (
            service.clone().partitioned(16),
            "declared with 16 partitions but the broker has 12",
        ),
        (
            service.clone().partitioned(4),
            "declared with 4 partitions but the broker has 12",
        ),
        (
            service.clone(),
            "declared without partitions but the broker has its 12",
        ),
    ] {
        let err = bus
            .declare(&Topology::new().service(changed))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, BusError::Config(_)), "{err:?}");
        assert!(text.contains(says), "{text}");
        assert!(
            text.contains(&format!("{prefix}.writer.p000…{prefix}.writer.p011"))
                && text.contains("rabbitmqctl delete_queue --if-empty"),
            "{text}"
        );
    }
    // Nothing of the refused layouts was declared.
    assert!(
        bus.declare(&Topology::new().service(service.clone().partitioned(16)))
            .await
            .is_err()
    );
    bus.declare(&declared).await.unwrap();

    // The queues gone (drained and deleted by an operator), the new count is accepted.
    bus.delete(&declared).await.unwrap();
    let new = Topology::new().service(service.partitioned(16));
    bus.declare(&new).await.unwrap();
    bus.delete(&new).await.unwrap();
    bus.close().await;
}

/// The control: the same workload on competing consumers without partitions does overlap,
/// so the test above can fail.
#[tokio::test]
async fn without_partitions_the_same_keys_are_handled_concurrently() {
    let prefix = prefix();
    let buses = [
        amqp_bus(&prefix).await,
        amqp_bus(&prefix).await,
        amqp_bus(&prefix).await,
    ];
    let service = ServiceSpec::new("writer").bind("hr", "hr.*");
    let topology = Topology::new().service(service.clone());
    buses[0].declare(&topology).await.unwrap();

    let run = run(&buses, &service, Leave::Stop).await;
    assert!(
        !run.journal.overlaps.is_empty(),
        "expected overlapping handling without partitions"
    );

    buses[0].delete(&topology).await.unwrap();
    for bus in &buses {
        bus.close().await;
    }
}

#[tokio::test]
async fn in_process_partitions_give_the_same_guarantee() {
    let bus = Bus::in_memory(&prefix()).unwrap();
    let service = ServiceSpec::new("writer").bind("hr", "hr.*").partitioned(4);
    bus.declare(&Topology::new().service(service.clone()))
        .await
        .unwrap();
    let run = run(&[bus.clone(), bus.clone(), bus], &service, Leave::Stop).await;
    assert_no_overlap(&run);
}
