//! Declares (idempotently) and deletes the broker objects of a [`Topology`], each time over
//! a connection of its own: probing for queues closes channels, and a refused exchange type
//! closes the whole connection.

use lapin::{
    Channel, Connection, ExchangeKind,
    options::{
        ExchangeBindOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldTable},
};

use crate::{
    BusError,
    topology::{MAX_PARTITIONS, Names, PARTITION_KEY_HEADER, ServiceSpec, Topology},
};

use super::{AmqpConfig, connect, headers::put_str};

/// The exchange type partitioned services need (plugin `rabbitmq_consistent_hash_exchange`).
const CONSISTENT_HASH: &str = "x-consistent-hash";

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    put_str(&mut args, "x-queue-type", "quorum");
    args
}

/// Dead-lettering that does not lose messages: the source keeps a message until the target
/// queue confirmed it (needs `reject-publish` overflow; RabbitMQ ≥ 3.10).
fn at_least_once(args: &mut FieldTable) {
    put_str(args, "x-dead-letter-strategy", "at-least-once");
    put_str(args, "x-overflow", "reject-publish");
}

pub(crate) async fn declare(
    config: &AmqpConfig,
    names: &Names,
    topology: &Topology,
) -> Result<(), BusError> {
    topology.validate()?;
    let connection = connect(config, "declare").await?;
    let result = declare_on(&connection, names, topology).await;
    if connection.status().connected() {
        super::bounded_close("connection", connection.close(200, "declared".into())).await;
    }
    result
}

async fn declare_on(
    connection: &Connection,
    names: &Names,
    topology: &Topology,
) -> Result<(), BusError> {
    // Before changing anything: a changed partition layout must not get half-declared.
    for service in &topology.services {
        check_partition_layout(connection, names, service).await?;
    }
    let channel = connection.create_channel().await?;
    for exchange in &topology.exchanges {
        channel
            .exchange_declare(
                names.exchange(exchange).into(),
                ExchangeKind::Topic,
                durable_exchange(),
                FieldTable::default(),
            )
            .await?;
    }
    for service in &topology.services {
        declare_service(&channel, names, service).await?;
    }
    super::bounded_close("channel", channel.close(200, "declared".into())).await;
    Ok(())
}

fn is_not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e)
        if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
}

/// Whether `queue` exists (a passive declare, on a channel of its own since the broker
/// closes the channel when the queue is missing).
async fn queue_exists(connection: &Connection, queue: &str) -> Result<bool, BusError> {
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    match channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
    {
        Ok(_) => {
            super::bounded_close("channel", channel.close(200, "probed".into())).await;
            Ok(true)
        }
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// How to change a service's partitioning, for the error that refuses doing it in place.
fn repartition_procedure(names: &Names, service: &str, old_queues: &str) -> String {
    format!(
        "Changing how a service is partitioned moves keys to other queues while the old \
         ones may still hold messages, which would break the one-message-per-key guarantee, \
         so it is not done in place. To change it: (1) stop every replica of {service}; \
         (2) wait until its queues {old_queues} and its retry tiers {}.* are empty \
         (`rabbitmqctl list_queues name messages messages_unacknowledged`), with the \
         publishers stopped or their outboxes holding their events; (3) delete the old \
         queues (`rabbitmqctl delete_queue --if-empty <name>`); (4) start with the new \
         setting, which declares the new queues.",
        names.retry_prefix(service)
    )
}

/// Refuses a partition count (or partitioned/not) different from what the broker has.
async fn check_partition_layout(
    connection: &Connection,
    names: &Names,
    service: &ServiceSpec,
) -> Result<(), BusError> {
    let name = &service.name;
    let single = names.queue(name);
    let first = names.partition(name, 0);
    let Some(wanted) = service.partitions else {
        if queue_exists(connection, &first).await? {
            let existing = count_partitions(connection, names, name).await?;
            let old = format!("{first}…{}", names.partition(name, existing - 1));
            return Err(BusError::Config(format!(
                "service {name} is declared without partitions but the broker has its \
                 {existing} partition queues. {}",
                repartition_procedure(names, name, &old)
            )));
        }
        return Ok(());
    };
    if queue_exists(connection, &single).await? {
        return Err(BusError::Config(format!(
            "service {name} is declared with {wanted} partitions but the broker has its \
             unpartitioned queue {single}. {}",
            repartition_procedure(names, name, &single)
        )));
    }
    if !queue_exists(connection, &first).await? {
        return Ok(()); // first declaration
    }
    let has_last = queue_exists(connection, &names.partition(name, wanted - 1)).await?;
    let has_beyond =
        wanted < MAX_PARTITIONS && queue_exists(connection, &names.partition(name, wanted)).await?;
    if has_last && !has_beyond {
        return Ok(());
    }
    let existing = count_partitions(connection, names, name).await?;
    let old = format!("{first}…{}", names.partition(name, existing - 1));
    Err(BusError::Config(format!(
        "service {name} is declared with {wanted} partitions but the broker has {existing} \
         ({old}). {}",
        repartition_procedure(names, name, &old)
    )))
}

/// How many partition queues of `service` exist, counting from `p000` (which does).
async fn count_partitions(
    connection: &Connection,
    names: &Names,
    service: &str,
) -> Result<u16, BusError> {
    let mut count = 1;
    while count < MAX_PARTITIONS
        && queue_exists(connection, &names.partition(service, count)).await?
    {
        count += 1;
    }
    Ok(count)
}

/// Declares the consistent-hash exchange in front of the partitions, naming the plugin to
/// enable when the broker does not know the exchange type.
async fn declare_router(channel: &Channel, router: &str, kind: &str) -> Result<(), BusError> {
    let mut args = FieldTable::default();
    put_str(&mut args, "hash-header", PARTITION_KEY_HEADER);
    channel
        .exchange_declare(
            router.into(),
            ExchangeKind::Custom(kind.into()),
            durable_exchange(),
            args,
        )
        .await
        .map_err(|e| match e.kind() {
            lapin::ErrorKind::ProtocolError(amqp)
                if amqp.get_message().as_str().contains("exchange type") =>
            {
                BusError::Config(format!(
                    "RabbitMQ refused exchange type {kind:?} for {router} ({}): partitioned \
                     services need the consistent-hash exchange plugin; enable it with \
                     `rabbitmq-plugins enable rabbitmq_consistent_hash_exchange`",
                    amqp.get_message()
                ))
            }
            _ => BusError::Amqp(e),
        })
}

async fn declare_queue(channel: &Channel, name: &str, args: FieldTable) -> Result<(), BusError> {
    channel
        .queue_declare(name.into(), QueueDeclareOptions::durable(), args)
        .await?;
    Ok(())
}

async fn declare_service(
    channel: &Channel,
    names: &Names,
    service: &ServiceSpec,
) -> Result<(), BusError> {
    let parked = names.parked(&service.name);
    declare_queue(channel, &parked, quorum()).await?;

    for delay in &service.retry.tiers {
        let tier = names.retry_tier(&service.name, *delay);
        channel
            .exchange_declare(
                tier.as_str().into(),
                ExchangeKind::Fanout,
                durable_exchange(),
                FieldTable::default(),
            )
            .await?;
        let mut args = quorum();
        let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        // Expired messages go to the default exchange under the routing key they were
        // published with here: the name of the queue they came from.
        put_str(&mut args, "x-dead-letter-exchange", "");
        at_least_once(&mut args);
        declare_queue(channel, &tier, args).await?;
        channel
            .queue_bind(
                tier.as_str().into(),
                tier.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }

    let mut work = quorum();
    // A message whose consumer keeps dying on it is parked by the broker itself.
    if let Some(limit) = service.delivery_limit {
        work.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(limit)),
        );
        put_str(&mut work, "x-dead-letter-exchange", "");
        put_str(&mut work, "x-dead-letter-routing-key", &parked);
        at_least_once(&mut work);
    }

    match service.partitions {
        None => {
            let queue = names.queue(&service.name);
            declare_queue(channel, &queue, work).await?;
            for binding in &service.bindings {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        names.exchange(&binding.exchange).into(),
                        binding.pattern.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        Some(partitions) => {
            let router = names.partition_exchange(&service.name);
            declare_router(channel, &router, CONSISTENT_HASH).await?;
            let mut partition_args = work;
            // One consumer at a time per partition, across every replica: with prefetch 1
            // that is one message in flight per partition, hence per key.
            partition_args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
            for index in 0..partitions {
                let queue = names.partition(&service.name, index);
                declare_queue(channel, &queue, partition_args.clone()).await?;
                // The binding key of a consistent-hash binding is the partition's weight.
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        router.as_str().into(),
                        "1".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
            for binding in &service.bindings {
                channel
                    .exchange_bind(
                        router.as_str().into(),
                        names.exchange(&binding.exchange).into(),
                        binding.pattern.as_str().into(),
                        ExchangeBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

/// Deletes every queue and exchange of the topology, messages included.
pub(crate) async fn delete(
    config: &AmqpConfig,
    names: &Names,
    topology: &Topology,
) -> Result<(), BusError> {
    let connection = connect(config, "declare").await?;
    let channel = connection.create_channel().await?;
    let result = delete_on(&channel, names, topology).await;
    super::bounded_close("connection", connection.close(200, "deleted".into())).await;
    result
}

async fn delete_on(channel: &Channel, names: &Names, topology: &Topology) -> Result<(), BusError> {
    for service in &topology.services {
        let mut queues = names.work_queues(service);
        queues.push(names.parked(&service.name));
        let mut exchanges = Vec::new();
        for delay in &service.retry.tiers {
            let tier = names.retry_tier(&service.name, *delay);
            queues.push(tier.clone());
            exchanges.push(tier);
        }
        if service.partitions.is_some() {
            exchanges.push(names.partition_exchange(&service.name));
        }
        for queue in queues {
            channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in exchanges {
            channel
                .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
                .await?;
        }
    }
    for exchange in &topology.exchanges {
        channel
            .exchange_delete(
                names.exchange(exchange).into(),
                ExchangeDeleteOptions::default(),
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broker without the exchange type answers with a connection error; the bus turns
    /// it into a configuration error that says which plugin to enable. (The test broker has
    /// the plugin, so an unknown type stands in for the missing one.)
    #[tokio::test]
    async fn an_unknown_exchange_type_names_the_plugin_to_enable() {
        let url = std::env::var("TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
        let connection = connect(&AmqpConfig::new(&url), "declare-test")
            .await
            .expect("RabbitMQ at TEST_AMQP_URL");
        let channel = connection.create_channel().await.expect("channel");
        let router = format!("t{}.x.partitions", uuid::Uuid::new_v4().simple());
        let err = declare_router(&channel, &router, "x-idbridge-no-such-type")
            .await
            .expect_err("unknown type");
        let text = err.to_string();
        assert!(matches!(err, BusError::Config(_)), "{err:?}");
        assert!(
            text.contains("rabbitmq-plugins enable rabbitmq_consistent_hash_exchange"),
            "{text}"
        );
    }
}
