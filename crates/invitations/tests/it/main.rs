//! Integration tests of the invitations crate against real PostgreSQL (a database per test)
//! and SQLite, with the file transport into a fresh directory and, for SMTP, a closed port
//! and a tiny in-test SMTP server.

mod config;
mod helpers;
mod invite;
mod replicas;
mod schedule;
mod smtp;
mod sqlite;
