//! The writer's integration tests: real PostgreSQL (`TEST_DATABASE_URL`, a fresh database per
//! test), orcid-sim in-process, the in-process bus, and RabbitMQ (`TEST_AMQP_URL`) for the
//! bus wiring, the HTTP intake and the crash test.

mod config;
mod consumer;
mod crash;
mod csv_import;
mod deleted;
mod failures;
mod helpers;
mod http_intake;
mod http_invitations;
mod idempotency;
mod invite;
mod leaks;
mod lifecycle;
mod ratelimit;
mod section_memory;
mod sqlite;
mod summary;
mod vault;
mod works;
