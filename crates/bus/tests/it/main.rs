//! Integration tests of the bus against the real RabbitMQ and PostgreSQL on this machine
//! (`TEST_AMQP_URL`, `TEST_DATABASE_URL`); they fail, never skip, when either is missing.
#![allow(clippy::unwrap_used)]

mod amqp_basics;
mod amqp_crash;
mod amqp_parking;
mod amqp_reconnect;
mod contracts;
mod helpers;
mod memory;
mod outbox_db;
mod outbox_lease;
mod outbox_relay;
mod partitions;
mod traces;
