//! The `idbridge` command: every service in one process ([`up`]), the named services for
//! Kubernetes with an admin server ([`serve`]), migrations, key rotation, HR imports and
//! parked-message tools ([`hr`], [`ops`]). The binary is a thin wrapper around [`run`], so
//! tests can also drive the commands in-process.
//!
//! The README lists the commands, the configuration and the exit codes.
#![warn(missing_docs)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod demo;
pub mod devkeys;
pub mod error;
pub mod hr;
pub mod ops;
pub mod report;
pub mod serve;
pub mod up;

use std::io::Write;
use std::path::Path;

use cli::{Cli, Command, DlqCommand, HrCommand, KeysCommand, WebhooksCommand};
use config::IdbridgeConfig;
pub use error::{Error, exit};

fn command_config(file: Option<&Path>) -> Result<IdbridgeConfig, Error> {
    IdbridgeConfig::load(file).map_err(|source| Error::Config {
        what: "idbridge",
        source,
    })
}

/// Runs one command line, writing its report to `out`. Returns the exit code (see
/// [`exit`]).
///
/// # Errors
/// [`Error`] (the binary prints it and exits 1).
pub async fn run(cli: Cli, out: &mut impl Write) -> Result<u8, Error> {
    match cli.command {
        Command::Up(args) => up::up(&args, out).await,
        Command::Serve(args) => {
            serve::serve(&args.services, args.config.config.as_deref(), out).await
        }
        Command::Migrate(args) => {
            ops::migrate(&args.services, args.config.config.as_deref(), out).await
        }
        Command::Webhooks(WebhooksCommand::Reregister(args)) => {
            ops::reregister_webhooks(args.config.as_deref(), out).await
        }
        Command::Keys(KeysCommand::Rotate(args)) => {
            ops::rotate_keys(args.config.as_deref(), out).await
        }
        Command::Hr(HrCommand::Import(args)) => {
            let config = command_config(args.config.config.as_deref())?;
            hr::import(&config, &args.file, args.dry_run, out).await
        }
        Command::Hr(HrCommand::Send(args)) => {
            let config = command_config(args.config.config.as_deref())?;
            hr::send(&config, &args.file, out).await
        }
        Command::Report(args) => {
            report::report(args.config.config.as_deref(), args.days, args.csv, out).await
        }
        Command::Dlq(DlqCommand::List(args)) => {
            let config = command_config(args.config.config.as_deref())?;
            ops::dlq_list(&config, args.service, args.limit, out).await
        }
        Command::Dlq(DlqCommand::Replay(args)) => {
            let config = command_config(args.config.config.as_deref())?;
            ops::dlq_replay(&config, args.service, args.ids, out).await
        }
    }
}
