//! Integration tests of the webhook receiver against PostgreSQL, RabbitMQ and orcid-sim.

mod callbacks;
mod config;
mod helpers;
mod leaks;
mod lifecycle;
mod reregister;
mod vault;
