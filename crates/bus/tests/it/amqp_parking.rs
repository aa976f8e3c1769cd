//! Parked-queue operations give back what they fetched: a listing leaves every message in
//! place and in order, a replay leaves nothing it re-published, a delivery limit on the
//! parked queue costs nothing however often it is listed, and a channel whose close the
//! broker never confirms fails the operation instead of hiding messages from the next
//! listing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bus::{
    Bus, BusError, ServiceSpec, Topology,
    parking::{REFRESH_AT, Selection},
};
use futures_util::StreamExt as _;
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{
        BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
        ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::tcp::{OwnedReadHalf, OwnedWriteHalf},
};

use crate::helpers::{
    BrokerProxy, TempUser, amqp_bus, amqp_bus_at, amqp_url, prefix, queue_depth, rabbitmqctl,
    wait_for,
};

/// How many messages are parked. RabbitMQ 3.10 keeps the order of returned messages up to
/// 32 in flight at once (see `give_back_and_close`); beyond, a listing may come back
/// reordered, though never short.
const PARKED: usize = 30;

/// Declares service `svc` and parks `PARKED` messages straight into its parking queue, as
/// a consumer would (with the queue they were parked from); returns their ids in order.
async fn park_messages(bus: &Bus) -> (Topology, Vec<String>) {
    let topology = Topology::new().service(ServiceSpec::new("svc").bind("events", "#"));
    bus.declare(&topology).await.unwrap();
    let ids: Vec<String> = (0..PARKED).map(|i| format!("parked-{i:03}")).collect();
    park(bus, &ids).await;
    (topology, ids)
}

/// Parks messages with message ids `ids` on service `svc`'s parking queue, in order.
async fn park(bus: &Bus, ids: &[String]) {
    let names = bus.names();
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for (i, id) in ids.iter().enumerate() {
        let mut headers = FieldTable::default();
        headers.insert(
            "x-parked-from".into(),
            AMQPValue::LongString(names.queue("svc").into()),
        );
        headers.insert(
            "x-parked-reason".into(),
            AMQPValue::LongString("test".into()),
        );
        channel
            .basic_publish(
                "".into(),
                names.parked("svc").as_str().into(),
                BasicPublishOptions::default(),
                format!("{{\"n\":{i}}}").as_bytes(),
                BasicProperties::default()
                    .with_message_id(id.as_str().into())
                    .with_headers(headers)
                    .with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let _ = connection.close(200, "bye".into()).await;
}

fn ids(parked: &[bus::parking::ParkedMessage]) -> Vec<String> {
    parked
        .iter()
        .map(|p| p.message_id.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn listing_twice_shows_every_parked_message_in_order_and_a_replay_leaves_none() {
    let bus = amqp_bus(&prefix()).await;
    let (topology, parked) = park_messages(&bus).await;

    // Each listing gives every message back before it returns: the next one, at once,
    // sees them all again, in the order they were parked.
    for listing in 0..3 {
        let listed = bus.parked("svc", PARKED + 10).await.unwrap();
        assert_eq!(ids(&listed), parked, "listing {listing}");
    }
    // A listing cut short by its limit gives back what it fetched too. (Not in place: the
    // quorum queue serves returned messages in the order returned, so these five now come
    // after the others, returned by the listings above.)
    let first = bus.parked("svc", 5).await.unwrap();
    assert_eq!(ids(&first), parked[..5]);
    let mut all = ids(&bus.parked("svc", PARKED + 10).await.unwrap());
    all.sort();
    assert_eq!(all, parked);

    // A replay of some leaves the others parked, in order; a replay of all leaves none.
    let chosen = vec![parked[3].clone(), parked[17].clone()];
    let replayed = bus
        .replay_parked("svc", &Selection::Ids(chosen.clone()))
        .await
        .unwrap();
    assert_eq!(replayed, 2);
    let left: Vec<String> = parked
        .iter()
        .filter(|id| !chosen.contains(id))
        .cloned()
        .collect();
    let mut still_parked = ids(&bus.parked("svc", PARKED).await.unwrap());
    still_parked.sort();
    assert_eq!(still_parked, left);
    assert_eq!(
        bus.replay_parked("svc", &Selection::All).await.unwrap(),
        PARKED - 2
    );
    assert!(bus.parked("svc", PARKED).await.unwrap().is_empty());
    assert_eq!(
        queue_depth(&bus.names().queue("svc")).await,
        u32::try_from(PARKED).unwrap(),
        "every message back on its queue once"
    );

    bus.delete(&topology).await.unwrap();
    bus.close().await;
}

/// RabbitMQ 4 gives every quorum queue a delivery limit of 20 and drops a message given back
/// more often than that (the parked queue has nowhere to dead-letter it), and before 4.3 it
/// counts every give-back of a listing. A limit of exactly [`REFRESH_AT`], set here by policy
/// (RabbitMQ 3.10 has none by default), costs no parked message however often the queue is
/// listed, in full or cut short, or replayed in part; full listings show them in order, with
/// why and from where they were parked.
#[tokio::test]
async fn parked_messages_outlive_a_delivery_limit_however_often_they_are_listed_or_replayed() {
    let bus = amqp_bus(&prefix()).await;
    let (topology, parked) = park_messages(&bus).await;
    let names = bus.names();
    let origin = names.queue("svc");
    let control = names.queue("control");
    let limit = u32::try_from(REFRESH_AT).unwrap();
    declare_quorum_queue(&control).await;
    let _policy = DeliveryLimitPolicy::set(&[&names.parked("svc"), &control], limit).await;

    // The limit is in force: a message given back once more than it allows is dropped.
    assert_eq!(deliveries_until_dropped(&control).await, limit + 1);

    let full_listing_in_order = |expected: Vec<String>, what: String| {
        let bus = &bus;
        let origin = &origin;
        async move {
            let listed = bus.parked("svc", PARKED + 10).await.unwrap();
            assert_eq!(ids(&listed), expected, "{what}");
            assert!(
                listed
                    .iter()
                    .all(|p| p.reason == "test" && p.origin_queue.as_ref() == Some(origin)),
                "{what}: {listed:?}"
            );
        }
    };

    // A second message with the id of one of the first five (a copy left by a failed
    // refresh, say) is a message like any other.
    park(&bus, &[parked[2].clone()]).await;
    let parked: Vec<String> = parked.iter().chain([&parked[2]]).cloned().collect();

    // Listed REFRESH_AT times, every message has been given back as often as the limit
    // allows...
    for listing in 0..REFRESH_AT {
        full_listing_in_order(parked.clone(), format!("listing {listing}")).await;
    }
    // ...so a listing cut short re-publishes what it fetched, and the rest of the queue
    // behind it, in order.
    assert_eq!(ids(&bus.parked("svc", 5).await.unwrap()), parked[..5]);
    for listing in 0..3 * (REFRESH_AT + 1) {
        full_listing_in_order(parked.clone(), format!("after a short listing, {listing}")).await;
    }
    // Listings cut short, many more than the limit: nothing lost.
    for listing in 0..60 {
        let first = bus.parked("svc", 5).await.unwrap();
        assert_eq!(first.len(), 5, "short listing {listing}");
    }
    let mut all = ids(&bus.parked("svc", PARKED + 10).await.unwrap());
    all.sort();
    let mut expected = parked.clone();
    expected.sort();
    assert_eq!(all, expected, "every message still parked, once");

    // Fresh messages given back as often as the limit allows, then replayed in part: the
    // others are re-published, not given back once more. A second message with a chosen
    // id is replayed too.
    bus.purge_parked("svc").await.unwrap();
    let (_, parked) = park_messages(&bus).await;
    park(&bus, &[parked[3].clone()]).await;
    let parked: Vec<String> = parked.iter().chain([&parked[3]]).cloned().collect();
    for listing in 0..REFRESH_AT {
        full_listing_in_order(parked.clone(), format!("before the replay, {listing}")).await;
    }
    let chosen = vec![parked[3].clone(), parked[17].clone()];
    let replayed = bus
        .replay_parked("svc", &Selection::Ids(chosen.clone()))
        .await
        .unwrap();
    assert_eq!(replayed, 3);
    let left: Vec<String> = parked
        .iter()
        .filter(|id| !chosen.contains(id))
        .cloned()
        .collect();
    full_listing_in_order(left.clone(), "after the replay".into()).await;
    assert_eq!(
        bus.replay_parked("svc", &Selection::All).await.unwrap(),
        left.len()
    );
    assert_eq!(
        queue_depth(&origin).await,
        u32::try_from(parked.len()).unwrap(),
        "every message replayed on its queue once"
    );

    bus.delete(&topology).await.unwrap();
    bus.close().await;
}

/// A replay whose messages fail again at once (a consumer rejects them, and the broker
/// dead-letters them back to the parking queue, with no `x-parked-at`) stops at the first one
/// that comes back instead of replaying them round and round: each is replayed once, and
/// comes back stamped with the run's marker.
#[tokio::test]
async fn a_replay_stops_at_a_message_it_replayed_that_comes_back() {
    let bus = amqp_bus(&prefix()).await;
    let (topology, _) = park_messages(&bus).await;
    let origin = bus.names().queue("svc");
    let parked_queue = bus.names().parked("svc");
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut consumer = channel
        .basic_consume(
            origin.as_str().into(),
            "rejecter".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let rejecter = tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let _ = delivery
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: false,
                })
                .await;
        }
    });

    let replayed = bus.replay_parked("svc", &Selection::All).await.unwrap();
    assert_eq!(replayed, PARKED, "each replayed once");
    wait_for("the rejected messages to be parked again", || async {
        (queue_depth(&parked_queue).await == u32::try_from(PARKED).unwrap()).then_some(())
    })
    .await;
    let head = peek_headers(&parked_queue).await;
    assert!(head.contains_key("x-idbridge-replay"), "{head:?}");
    assert!(!head.contains_key("x-parked-at"), "{head:?}");

    rejecter.abort();
    let _ = connection.close(200, "bye".into()).await;
    bus.delete(&topology).await.unwrap();
    bus.close().await;
}

/// A refresh the broker refuses (the bus's user may not publish) loses nothing: the listing
/// still shows every message, gives them back, counts the failure in
/// `idbridge_bus_parked_refresh_failures_total`, and the next listing once the user may
/// publish again re-publishes them, in order.
#[test]
fn a_refresh_the_broker_refuses_gives_the_messages_back_and_is_counted() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let failures = || {
        metrics
            .render()
            .lines()
            .find_map(|line| {
                line.strip_prefix("idbridge_bus_parked_refresh_failures_total ")
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no refresh failure counter in {}", metrics.render()))
    };
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let prefix = prefix();
            let admin = amqp_bus(&prefix).await;
            let (topology, parked) = park_messages(&admin).await;
            // May read the parked queue, may not publish anywhere (nor declare).
            let user = TempUser::create().await;
            rabbitmqctl(&["set_permissions", "-p", "/", &user.name, "^$", "^$", ".*"]).await;
            let bus = amqp_bus_at(&user.url(), &prefix).await;
            assert_eq!(failures(), "0");

            for listing in 0..REFRESH_AT + 2 {
                let mut listed = ids(&bus.parked("svc", PARKED + 10).await.unwrap());
                listed.sort();
                assert_eq!(listed, parked, "listing {listing}");
            }
            // Listings REFRESH_AT and REFRESH_AT + 1 tried to re-publish.
            assert_eq!(failures(), "2");

            user.grant().await;
            let bus = amqp_bus_at(&user.url(), &prefix).await;
            let mut listed = ids(&bus.parked("svc", PARKED + 10).await.unwrap());
            listed.sort();
            assert_eq!(listed, parked, "the listing that re-published");
            let head = peek_headers(&admin.names().parked("svc")).await;
            assert!(
                head.contains_key("x-idbridge-refresh"),
                "a fresh copy: {head:?}"
            );
            // Never given back: RabbitMQ 3.10 says 0, later versions may leave it out.
            assert!(
                matches!(
                    head.inner().get("x-delivery-count"),
                    None | Some(AMQPValue::LongLongInt(0) | AMQPValue::LongInt(0))
                ),
                "{head:?}"
            );
            let mut listed = ids(&bus.parked("svc", PARKED + 10).await.unwrap());
            listed.sort();
            assert_eq!(listed, parked, "after the peek");
            assert_eq!(failures(), "2");

            bus.close().await;
            user.delete().await;
            admin.delete(&topology).await.unwrap();
            admin.close().await;
        });
    });
}

/// The headers of the message at the head of `queue`, given back.
async fn peek_headers(queue: &str) -> FieldTable {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let message = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("a parked message");
    let headers = message
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default();
    channel
        .basic_nack(
            message.delivery.delivery_tag,
            BasicNackOptions {
                multiple: false,
                requeue: true,
            },
        )
        .await
        .unwrap();
    let _ = connection.close(200, "bye".into()).await;
    headers
}

/// Declares quorum queue `queue` (durable, empty).
async fn declare_quorum_queue(queue: &str) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(queue.into(), QueueDeclareOptions::durable(), args)
        .await
        .unwrap();
    let _ = connection.close(200, "bye".into()).await;
}

/// Puts one message in quorum queue `queue` and fetches it, giving it back each time, until
/// the broker drops it; returns how many times it was fetched, and deletes the queue.
async fn deliveries_until_dropped(queue: &str) -> u32 {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"control",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let mut fetched = 0;
    'fetching: for _ in 0..100 {
        // A give-back is applied asynchronously: look for the message for up to 5 s.
        for _ in 0..200 {
            if let Some(message) = channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                .await
                .unwrap()
            {
                fetched += 1;
                channel
                    .basic_nack(
                        message.delivery.delivery_tag,
                        BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        },
                    )
                    .await
                    .unwrap();
                continue 'fetching;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        break;
    }
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let _ = connection.close(200, "bye".into()).await;
    fetched
}

/// A policy of this test's own giving some queues a delivery limit, cleared on drop (also
/// when the test fails).
struct DeliveryLimitPolicy {
    name: String,
}

impl DeliveryLimitPolicy {
    /// Sets it and waits until the broker applies it to every one of `queues` (which must
    /// exist, or be declared within 10 s).
    async fn set(queues: &[&str], limit: u32) -> Self {
        let name = format!("test-delivery-limit-{}", queues[0]);
        let alternatives: Vec<String> = queues.iter().map(|q| q.replace('.', "\\.")).collect();
        let pattern = format!("^({})$", alternatives.join("|"));
        // `queues` rather than `quorum_queues`, which RabbitMQ 3.10 does not know.
        rabbitmqctl(&[
            "set_policy",
            "--apply-to",
            "queues",
            &name,
            &pattern,
            &format!("{{\"delivery-limit\":{limit}}}"),
        ])
        .await;
        let policy = Self { name };
        for _ in 0..100 {
            let listed = rabbitmqctl(&["list_queues", "-q", "name", "policy"]).await;
            let applied = |queue: &str| {
                listed
                    .lines()
                    .any(|line| line.split_whitespace().eq([queue, policy.name.as_str()]))
            };
            if queues.iter().all(|q| applied(q)) {
                return policy;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "policy {} was not applied to {queues:?} within 10 s",
            policy.name
        );
    }
}

impl Drop for DeliveryLimitPolicy {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["clear_policy", &self.name])
            .output();
    }
}

/// A listing whose give-backs and channel close never reach the broker (the proxy drops the
/// client's `basic.nack` and `channel.close`) fails instead of returning a listing, and
/// leaves no message held: resetting the connection makes the broker put back every message,
/// and the next listing, on another connection, sees all of them.
#[tokio::test]
async fn a_listing_whose_channel_close_is_not_confirmed_fails_and_holds_nothing() {
    let prefix = prefix();
    let proxy = CloseDroppingProxy::start().await;
    let through_proxy = amqp_bus_at(&proxy.url(), &prefix).await;
    let (topology, parked) = park_messages(&through_proxy).await;

    proxy.drop_give_backs(true);
    let err = through_proxy
        .parked("svc", PARKED + 10)
        .await
        .expect_err("a listing whose channel did not close");
    assert!(
        matches!(
            err,
            BusError::ChannelCloseUnconfirmed {
                operation: "list",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(err.to_string().contains("retry"), "{err}");

    // Put back by the connection's end, in one batch (asynchronously): all of them, in no
    // particular order.
    let parked_queue = through_proxy.names().parked("svc");
    wait_for("the reset connection's messages to be put back", || async {
        (queue_depth(&parked_queue).await == u32::try_from(PARKED).unwrap()).then_some(())
    })
    .await;
    let direct = amqp_bus(&prefix).await;
    let mut listed = ids(&direct.parked("svc", PARKED + 10).await.unwrap());
    listed.sort();
    assert_eq!(listed, parked);

    // The bus behind the proxy reconnects and works again once give-backs get through.
    proxy.drop_give_backs(false);
    let mut listed = ids(&through_proxy.parked("svc", PARKED + 10).await.unwrap());
    listed.sort();
    assert_eq!(listed, parked);

    direct.delete(&topology).await.unwrap();
    direct.close().await;
    through_proxy.close().await;
}

/// A TCP proxy to RabbitMQ that, once told to, drops every `basic.nack` and `channel.close`
/// the client sends: the broker never sees them, as when it stops answering, and the client
/// waits for a close-ok that never comes. Everything else goes through.
struct CloseDroppingProxy {
    proxy: BrokerProxy,
    dropping: Arc<AtomicBool>,
}

impl CloseDroppingProxy {
    async fn start() -> Self {
        let dropping = Arc::new(AtomicBool::new(false));
        let flag = dropping.clone();
        let proxy = BrokerProxy::start(move |client, server| {
            let (from_client, mut to_client) = client.into_split();
            let (mut from_server, to_server) = server.into_split();
            vec![
                tokio::spawn(filter_client_frames(from_client, to_server, flag.clone())),
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                }),
            ]
        })
        .await;
        Self { proxy, dropping }
    }

    /// `TEST_AMQP_URL` through this proxy.
    fn url(&self) -> String {
        self.proxy.url()
    }

    fn drop_give_backs(&self, dropping: bool) {
        self.dropping.store(dropping, Ordering::SeqCst);
    }
}

/// Forwards the client's bytes: the 8-byte protocol header, then whole AMQP frames (type,
/// channel, size, payload, end octet), leaving out `channel.close` (class 20, method 40) and
/// `basic.nack` (class 60, method 120) while `dropping`.
async fn filter_client_frames(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    dropping: Arc<AtomicBool>,
) {
    const PROTOCOL_HEADER: usize = 8;
    const FRAME_HEADER: usize = 7;
    let mut header_left = PROTOCOL_HEADER;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        let header = header_left.min(pending.len());
        out.extend(pending.drain(..header));
        header_left -= header;
        while header_left == 0 && pending.len() >= FRAME_HEADER {
            let size = u32::from_be_bytes(pending[3..7].try_into().unwrap()) as usize;
            let end = FRAME_HEADER + size + 1;
            if pending.len() < end {
                break;
            }
            let frame: Vec<u8> = pending.drain(..end).collect();
            let method =
                (frame[0] == 1 && size >= 4).then(|| &frame[FRAME_HEADER..FRAME_HEADER + 4]);
            let give_back = matches!(method, Some([0, 20, 0, 40] | [0, 60, 0, 120]));
            if !(give_back && dropping.load(Ordering::SeqCst)) {
                out.extend(frame);
            }
        }
        if to.write_all(&out).await.is_err() {
            return;
        }
    }
}
