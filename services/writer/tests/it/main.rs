//! The writer's integration tests: real PostgreSQL (`TEST_DATABASE_URL`, a fresh database per
//! test), orcid-sim in-process, the in-process bus, and RabbitMQ (`TEST_AMQP_URL`) once.

mod config;
mod consumer;
mod csv_import;
mod failures;
mod helpers;
mod idempotency;
mod leaks;
mod lifecycle;
mod sqlite;
mod vault;
mod works;
