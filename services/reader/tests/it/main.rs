//! The reader's integration tests: real PostgreSQL (`TEST_DATABASE_URL`, a fresh database per
//! test), real RabbitMQ (`TEST_AMQP_URL`, a fresh prefix per test) and orcid-sim in-process.

mod concurrency;
mod config;
mod helpers;
mod reading;
mod reconcile;
mod vault;
