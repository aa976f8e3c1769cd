//! One tracing bootstrap for every service.
//!
//! - [`init`]: production and development. Format from [`TelemetryConfig::format`]: `json`
//!   (one object per line, span fields included — what log collectors want), `pretty` or
//!   `compact` (for people), or `auto` (pretty when stdout is a terminal, JSON otherwise).
//!   The filter is `RUST_LOG` when set, else [`TelemetryConfig::filter`].
//! - [`init_for_tests`]: the test harness's writer, so output shows only for failing tests.
//! - [`init_with_writer`]: any writer (tests that capture and search the log).
//!
//! All three install the process-wide subscriber once; later calls (from other services in
//! the same process, or other tests) do nothing and succeed, so every entry point can call
//! them without coordinating. They return a [`TelemetryGuard`] to hold until exit; it is
//! where exporters will be flushed once OpenTelemetry is configured here.
//!
//! Never put a token in a span or event field: types holding secrets redact their `Debug`,
//! and instrumented functions use `#[tracing::instrument(skip_all, fields(..))]`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{Problems, Validate};

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Pretty when stdout is a terminal, JSON otherwise.
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// Multi-line, coloured, for a terminal.
    Pretty,
    /// One line per event, for a terminal.
    Compact,
}

/// The `[telemetry]` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Output format.
    #[serde(default)]
    pub format: LogFormat,
    /// `tracing` filter directives (`info`, `info,token_vault=debug`); `RUST_LOG` overrides.
    #[serde(default = "default_filter")]
    pub filter: String,
}

fn default_filter() -> String {
    "info".to_owned()
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            filter: default_filter(),
        }
    }
}

impl Validate for TelemetryConfig {
    fn validate(&self, problems: &mut Problems) {
        if EnvFilter::try_new(&self.filter).is_err() {
            problems.add(
                "telemetry.filter",
                "is not a valid tracing filter",
                "use directives such as `info` or `warn,token_vault=debug`",
            );
        }
    }
}

/// Setting up telemetry failed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter (from `RUST_LOG` or the configuration) does not parse.
    #[error(
        "the log filter from {origin} is invalid ({reason}); use directives such as `info` or `warn,token_vault=debug`"
    )]
    BadFilter {
        /// `RUST_LOG` or `telemetry.filter`.
        origin: &'static str,
        /// The parser's message.
        reason: String,
    },
}

/// Hold until the process exits. Dropping it flushes nothing today; it will flush trace
/// exporters once they are configured here.
#[derive(Debug)]
#[must_use = "hold the guard until the process exits"]
pub struct TelemetryGuard {
    installed_here: bool,
}

impl TelemetryGuard {
    /// Whether this call installed the subscriber (false when an earlier call or another
    /// library already had).
    pub fn installed_here(&self) -> bool {
        self.installed_here
    }
}

static INSTALLED: OnceLock<()> = OnceLock::new();

fn filter(config: &TelemetryConfig) -> Result<EnvFilter, TelemetryError> {
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(directives).map_err(|e| TelemetryError::BadFilter {
                origin: "RUST_LOG",
                reason: e.to_string(),
            })
        }
        _ => EnvFilter::try_new(&config.filter).map_err(|e| TelemetryError::BadFilter {
            origin: "telemetry.filter",
            reason: e.to_string(),
        }),
    }
}

/// Installs the subscriber writing to stdout (see the module docs).
///
/// # Errors
/// [`TelemetryError::BadFilter`].
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let format = match config.format {
        LogFormat::Auto if std::io::stdout().is_terminal() => LogFormat::Pretty,
        LogFormat::Auto => LogFormat::Json,
        other => other,
    };
    install(
        config,
        format,
        std::io::stdout,
        std::io::stdout().is_terminal(),
    )
}

/// Installs a subscriber writing `format` lines to `writer` (no colours), e.g. a buffer a
/// test searches afterwards.
///
/// # Errors
/// [`TelemetryError::BadFilter`].
pub fn init_with_writer<W>(
    config: &TelemetryConfig,
    writer: W,
) -> Result<TelemetryGuard, TelemetryError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let format = match config.format {
        LogFormat::Auto => LogFormat::Json,
        other => other,
    };
    install(config, format, writer, false)
}

/// Installs a compact subscriber on the test harness's writer (output shown for failing
/// tests only); filter from `RUST_LOG`, else `info`.
pub fn init_for_tests() -> TelemetryGuard {
    let config = TelemetryConfig {
        format: LogFormat::Compact,
        filter: default_filter(),
    };
    if INSTALLED.get().is_some() {
        return TelemetryGuard {
            installed_here: false,
        };
    }
    let filter = filter(&config).unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .compact()
        .try_init()
        .is_ok();
    mark(installed)
}

fn install<W>(
    config: &TelemetryConfig,
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Result<TelemetryGuard, TelemetryError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    if INSTALLED.get().is_some() {
        return Ok(TelemetryGuard {
            installed_here: false,
        });
    }
    let filter = filter(config)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // `try_init` fails only when a global subscriber already exists (installed by someone
    // else): logs then go there, which is what idempotence asks for.
    let installed = match format {
        LogFormat::Json | LogFormat::Auto => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
            .is_ok(),
        LogFormat::Pretty => builder.pretty().with_ansi(ansi).try_init().is_ok(),
        LogFormat::Compact => builder.compact().with_ansi(ansi).try_init().is_ok(),
    };
    Ok(mark(installed))
}

fn mark(installed: bool) -> TelemetryGuard {
    // Either way a subscriber is now in place; later calls need not try again.
    let _ = INSTALLED.set(());
    TelemetryGuard {
        installed_here: installed,
    }
}
