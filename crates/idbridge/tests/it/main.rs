//! idbridge's integration tests: the built binary as a separate process against real
//! PostgreSQL, RabbitMQ and orcid-sim.

mod helpers;

mod dlq;
mod help;
mod hr;
mod metrics;
mod serve;
mod tracing;
mod up;
