//! One tracing bootstrap for every service.
//!
//! - [`init`]: production and development. Format from [`TelemetryConfig::format`]: `json`
//!   (one object per line, span fields included — what log collectors want), `pretty` or
//!   `compact` (for people), or `auto` (pretty when stdout is a terminal, JSON otherwise).
//!   The filter is `RUST_LOG` when set, else [`TelemetryConfig::filter`].
//! - [`init_for_tests`]: the test harness's writer, so output shows only for failing tests.
//! - [`init_with_writer`]: any writer (tests that capture and search the log).
//!
//! - [`init_for_tests_with_exporter`]: as [`init_for_tests`], plus OpenTelemetry spans sent
//!   synchronously to any [`SpanExporter`] (e.g. opentelemetry_sdk's `InMemorySpanExporter`
//!   with its `testing` feature), so a test can assert on the spans a flow produced.
//!
//! All of them install the process-wide subscriber once; later calls (from other services
//! in the same process, or other tests) do nothing and succeed, so every entry point can
//! call them without coordinating. They return a [`TelemetryGuard`] to hold until exit.
//!
//! ## OpenTelemetry
//!
//! When an OTLP endpoint is known — `telemetry.otlp_endpoint`, else the standard
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` variables — [`init`]
//! adds a `tracing-opentelemetry` layer whose spans go to an OTLP/HTTP (protobuf) batch
//! exporter, and installs the W3C TraceContext propagator (what `tracing-actix-web` uses to
//! continue an incoming `traceparent`). The guard flushes and shuts the exporter down when
//! dropped. Without an endpoint nothing of this is set up: no layer, no thread, no cost.
//!
//! The span's `service.name` is `telemetry.service_name`, else `OTEL_SERVICE_NAME`, else
//! the name the caller passes to [`init_service`] ([`service_name`] of the services run).
//! New traces are kept with probability `telemetry.sampling_ratio` (default 1); a span
//! whose parent came from elsewhere (an HTTP or AMQP `traceparent`) follows the parent's
//! decision. Public endpoints ([`http::PublicRequestSpan`]: the portal, the webhook
//! receiver) ignore an incoming `traceparent`, so only internal callers can decide.
//!
//! Only spans are exported, never log events, and without the attributes in
//! [`REDACTED_ATTRIBUTES`] (`orcid`, `person_id`, `put_code`, …): the logs keep them.
//!
//! Outgoing calls carry the current trace with [`trace_headers`]; the bus does the same in
//! its AMQP headers.
//!
//! Never put a token in a span or event field: types holding secrets redact their `Debug`,
//! and instrumented functions use `#[tracing::instrument(skip_all, fields(..))]`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanExporter};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

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
///
/// ```toml
/// [telemetry]
/// format = "json"
/// filter = "info"
/// otlp_endpoint = "http://otel-collector:4318"   # spans go to …/v1/traces
/// sampling_ratio = 0.25
/// # service_name = "idbridge-writer"              # default: from the service run
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Output format.
    #[serde(default)]
    pub format: LogFormat,
    /// `tracing` filter directives (`info`, `info,token_vault=debug`); `RUST_LOG` overrides.
    /// It also decides which spans are exported.
    #[serde(default = "default_filter")]
    pub filter: String,
    /// OTLP/HTTP endpoint of a collector (`http://otel-collector:4318`): spans are POSTed to
    /// `{endpoint}/v1/traces` (a URL already ending in `/v1/traces` is used as it is).
    /// Unset: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` when
    /// set, else no OpenTelemetry at all.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// Fraction of new traces recorded and exported, 0.0–1.0 (default 1.0). Spans with a
    /// remote parent follow the parent's sampling decision (internal services only: public
    /// endpoints start their own traces).
    #[serde(default = "default_sampling_ratio")]
    pub sampling_ratio: f64,
    /// The exported `service.name`. Default: `OTEL_SERVICE_NAME`, else the service being
    /// run (`idbridge-writer`, or `idbridge` for several services in one process).
    #[serde(default)]
    pub service_name: Option<String>,
}

fn default_filter() -> String {
    "info".to_owned()
}

fn default_sampling_ratio() -> f64 {
    1.0
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            filter: default_filter(),
            otlp_endpoint: None,
            sampling_ratio: default_sampling_ratio(),
            service_name: None,
        }
    }
}

/// The OTLP traces URL from the configuration or the standard environment variables;
/// `None` when spans are not exported.
pub fn otlp_traces_url(config: &TelemetryConfig) -> Option<String> {
    let non_empty = |s: String| {
        let s = s.trim().to_owned();
        (!s.is_empty()).then_some(s)
    };
    if let Some(endpoint) = config.otlp_endpoint.clone().and_then(non_empty) {
        return Some(traces_url(&endpoint));
    }
    if let Some(url) = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .ok()
        .and_then(non_empty)
    {
        return Some(url);
    }
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .and_then(non_empty)
        .map(|base| traces_url(&base))
}

fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The `service.name` for a process running `services` (as `serve` names them):
/// `idbridge-<service>` for one, `idbridge` for several or none.
#[must_use]
pub fn service_name<'a>(services: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = services.into_iter().collect();
    names.dedup();
    match names.as_slice() {
        [one] => format!("idbridge-{one}"),
        _ => "idbridge".to_owned(),
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
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            problems.add(
                "telemetry.sampling_ratio",
                "must be between 0.0 and 1.0",
                "use 1.0 to keep every trace, 0.1 to keep one in ten",
            );
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            let endpoint = endpoint.trim();
            let http = endpoint.starts_with("http://") || endpoint.starts_with("https://");
            if !(endpoint.is_empty() || http) {
                problems.add(
                    "telemetry.otlp_endpoint",
                    "is not an http(s) URL",
                    "give the collector's OTLP/HTTP address, e.g. `http://otel-collector:4318`",
                );
            }
        }
        if self
            .service_name
            .as_deref()
            .is_some_and(|n| n.trim().is_empty())
        {
            problems.add(
                "telemetry.service_name",
                "is empty",
                "leave it out to use the service's own name",
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
    /// The OTLP exporter could not be built (a malformed endpoint).
    #[error(
        "the OTLP exporter for {endpoint} could not be set up ({reason}); check telemetry.otlp_endpoint / OTEL_EXPORTER_OTLP_ENDPOINT"
    )]
    Exporter {
        /// The traces URL.
        endpoint: String,
        /// The exporter's message.
        reason: String,
    },
}

/// Hold until the process exits. When this call set up OpenTelemetry, dropping it exports
/// the spans still buffered and shuts the exporter down (waiting at most a few seconds).
#[derive(Debug)]
#[must_use = "hold the guard until the process exits"]
pub struct TelemetryGuard {
    installed_here: bool,
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether this call installed the subscriber (false when an earlier call or another
    /// library already had).
    pub fn installed_here(&self) -> bool {
        self.installed_here
    }

    /// Whether this call set up OpenTelemetry export.
    pub fn exports_spans(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans finished so far now (the batch exporter otherwise sends every few
    /// seconds).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            let provider = provider.clone();
            // The batch processor blocks until its thread answered: keep that off the
            // async runtime's threads.
            let _ = std::thread::spawn(move || provider.force_flush()).join();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // `shutdown` blocks while the last batch is exported; a thread of its own keeps
            // that off the async runtime (rust-stack.md P4).
            let done =
                std::thread::spawn(move || provider.shutdown_with_timeout(Duration::from_secs(5)))
                    .join();
            if let Ok(Err(e)) = done {
                eprintln!("telemetry: exporting the last spans failed: {e}");
            }
        }
    }
}

/// The W3C trace context of the current span as HTTP headers (`traceparent`, and
/// `tracestate` when there is one), to add to an outgoing request so the callee's spans
/// join this trace. Empty when OpenTelemetry is not set up or the span is not sampled in.
#[must_use]
pub fn trace_headers() -> Vec<(&'static str, String)> {
    let context = tracing::Span::current().context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    let mut headers = Vec::new();
    for name in ["traceparent", "tracestate"] {
        if let Some(value) = carrier.remove(name).filter(|v| !v.is_empty()) {
            headers.push((name, value));
        }
    }
    headers
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

/// Installs the subscriber writing to stdout, with OpenTelemetry export when an endpoint
/// is configured (see the module docs); `service.name` defaults to `idbridge`.
///
/// # Errors
/// [`TelemetryError::BadFilter`], [`TelemetryError::Exporter`].
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    init_service(config, "idbridge")
}

/// As [`init`], naming the service being run (the `service.name` of exported spans unless
/// `telemetry.service_name` or `OTEL_SERVICE_NAME` says otherwise).
///
/// # Errors
/// [`TelemetryError::BadFilter`], [`TelemetryError::Exporter`].
pub fn init_service(
    config: &TelemetryConfig,
    service: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    let format = match config.format {
        LogFormat::Auto if std::io::stdout().is_terminal() => LogFormat::Pretty,
        LogFormat::Auto => LogFormat::Json,
        other => other,
    };
    if INSTALLED.get().is_some() {
        return Ok(not_installed());
    }
    let provider = match otlp_traces_url(config) {
        None => None,
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig as _;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| TelemetryError::Exporter {
                    endpoint: endpoint.clone(),
                    reason: e.to_string(),
                })?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(Redacting(exporter))
                .with_sampler(sampler(config.sampling_ratio))
                .with_resource(resource(config, service))
                .build();
            Some(provider)
        }
    };
    install(
        config,
        format,
        std::io::stdout,
        std::io::stdout().is_terminal(),
        provider,
    )
}

/// As [`init_for_tests`], with every span also sent (synchronously, as it closes) to
/// `exporter` with `service.name` = `service`: typically opentelemetry_sdk's
/// `InMemorySpanExporter` (its `testing` feature), whose finished spans the test inspects.
/// Everything is sampled; the filter is `RUST_LOG`, else `info`. Like the others it installs
/// only once per process: check [`TelemetryGuard::exports_spans`].
pub fn init_for_tests_with_exporter<E>(service: &str, exporter: E) -> TelemetryGuard
where
    E: SpanExporter + 'static,
{
    if INSTALLED.get().is_some() {
        return not_installed();
    }
    let config = TelemetryConfig {
        format: LogFormat::Compact,
        ..TelemetryConfig::default()
    };
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(Redacting(exporter))
        .with_sampler(Sampler::AlwaysOn)
        .with_resource(resource(&config, service))
        .build();
    let filter = filter(&config).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_test_writer()
        .compact()
        .boxed();
    mark(finish(filter, fmt, Some(provider)))
}

/// Span attributes never exported: they name a person or a client (their values are
/// people's iDs, internal ids, ORCID put codes, e-mail addresses) or hold a secret. The log
/// lines keep them; an exported span keeps its name, timing, parent and other attributes.
pub const REDACTED_ATTRIBUTES: &[&str] = &[
    "orcid",
    "person_id",
    "put_code",
    "position_id",
    "work_id",
    "client_id",
    "email",
    "name",
    "token",
];

/// Wraps the real exporter: strips [`REDACTED_ATTRIBUTES`] from every span and drops every
/// span event (`tracing-opentelemetry` turns log events into span events with all their
/// fields, and a message may name anyone), so nothing identifying leaves the process.
#[derive(Debug)]
struct Redacting<E>(E);

impl<E: SpanExporter> SpanExporter for Redacting<E> {
    fn export(
        &self,
        mut batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> impl Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        for span in &mut batch {
            redact(span);
        }
        self.0.export(batch)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource);
    }
}

/// Removes what [`Redacting`] promises to remove from one span.
fn redact(span: &mut opentelemetry_sdk::trace::SpanData) {
    let before = span.attributes.len();
    span.attributes
        .retain(|kv| !REDACTED_ATTRIBUTES.contains(&kv.key.as_str()));
    let removed = u32::try_from(before - span.attributes.len()).unwrap_or(u32::MAX);
    span.dropped_attributes_count = span.dropped_attributes_count.saturating_add(removed);
    let events = u32::try_from(span.events.events.len()).unwrap_or(u32::MAX);
    span.events.events.clear();
    span.events.dropped_count = span.events.dropped_count.saturating_add(events);
}

fn sampler(ratio: f64) -> Sampler {
    let ratio = if ratio.is_finite() {
        ratio.clamp(0.0, 1.0)
    } else {
        1.0
    };
    Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
}

fn resource(config: &TelemetryConfig, service: &str) -> opentelemetry_sdk::Resource {
    let name = config
        .service_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| {
            std::env::var("OTEL_SERVICE_NAME")
                .ok()
                .filter(|n| !n.trim().is_empty())
        })
        .unwrap_or_else(|| service.to_owned());
    opentelemetry_sdk::Resource::builder()
        .with_service_name(name)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build()
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
    install(config, format, writer, false, None)
}

/// Installs a compact subscriber on the test harness's writer (output shown for failing
/// tests only); filter from `RUST_LOG`, else `info`.
pub fn init_for_tests() -> TelemetryGuard {
    let config = TelemetryConfig {
        format: LogFormat::Compact,
        ..TelemetryConfig::default()
    };
    if INSTALLED.get().is_some() {
        return not_installed();
    }
    let filter = filter(&config).unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .compact()
        .try_init()
        .is_ok();
    mark((installed, None))
}

fn install<W>(
    config: &TelemetryConfig,
    format: LogFormat,
    writer: W,
    ansi: bool,
    provider: Option<SdkTracerProvider>,
) -> Result<TelemetryGuard, TelemetryError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    if INSTALLED.get().is_some() {
        return Ok(not_installed());
    }
    let filter = filter(config)?;
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    let fmt: BoxedLayer = match format {
        LogFormat::Json | LogFormat::Auto => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
        LogFormat::Pretty => layer.pretty().with_ansi(ansi).boxed(),
        LogFormat::Compact => layer.compact().with_ansi(ansi).boxed(),
    };
    Ok(mark(finish(filter, fmt, provider)))
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs registry + filter + `fmt` (+ the OpenTelemetry layer over `provider`); returns
/// the guard's state: whether it was installed, and the provider to shut down.
fn finish(
    filter: EnvFilter,
    fmt: BoxedLayer,
    provider: Option<SdkTracerProvider>,
) -> (bool, Option<SdkTracerProvider>) {
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("idbridge"))
            // Spans only: log events would become span events carrying all their fields
            // (`Redacting` drops any that get through anyway).
            .with_filter(
                export_filter(&filter).and(tracing_subscriber::filter::filter_fn(|m| m.is_span())),
            )
    });
    // The filter applies to the log lines; the OpenTelemetry layer has its own copy (see
    // `export_filter`), so a span is exported when it would be logged.
    let installed = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    // `try_init` fails only when a global subscriber already exists (installed by someone
    // else): logs then go there, which is what idempotence asks for.
    (installed, if installed { provider } else { None })
}

/// The log filter (`EnvFilter` is not `Clone`: its directives re-parse to the same filter)
/// minus the ORCID client's API-level spans (`orcid::client`, e.g. `create`), which name
/// the researcher's iD for the logs; its per-call `orcid.request` spans (`orcid::http`:
/// endpoint, method, status) are what traces show of ORCID.
fn export_filter(filter: &EnvFilter) -> EnvFilter {
    EnvFilter::try_new(format!("{filter},orcid::client=off"))
        .unwrap_or_else(|_| EnvFilter::new("info,orcid::client=off"))
}

fn not_installed() -> TelemetryGuard {
    TelemetryGuard {
        installed_here: false,
        provider: None,
    }
}

fn mark((installed, provider): (bool, Option<SdkTracerProvider>)) -> TelemetryGuard {
    // Either way a subscriber is now in place; later calls need not try again.
    let _ = INSTALLED.set(());
    TelemetryGuard {
        installed_here: installed,
        provider,
    }
}

/// The span of every incoming HTTP request, for `tracing-actix-web`'s `TracingLogger`:
/// `App::new().wrap(TracingLogger::<RequestSpan>::new())`.
pub mod http {
    use actix_web::body::MessageBody;
    use actix_web::dev::{ServiceRequest, ServiceResponse};
    use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    /// Re-exported so services need no dependency of their own.
    pub use tracing_actix_web::TracingLogger;

    /// A request span (`HTTP request`, kind server) named after the *route pattern*
    /// (`GET /v1/tokens/{orcid}`) and carrying only method, route and status: never the
    /// path itself, the query, headers or the client address, since paths hold iDs and a
    /// webhook callback's path holds a secret. Its parent is the caller's `traceparent`
    /// when there is one: for internal services only (see [`PublicRequestSpan`]).
    #[derive(Debug, Clone, Copy)]
    pub struct RequestSpan;

    /// As [`RequestSpan`] for endpoints open to anyone (the portal, the webhook receiver):
    /// an incoming `traceparent` is ignored, so every request starts a new trace that the
    /// configured sampling ratio decides on. A caller cannot force recording (and export)
    /// with a crafted `traceparent`, nor graft its requests onto someone else's trace.
    #[derive(Debug, Clone, Copy)]
    pub struct PublicRequestSpan;

    impl tracing_actix_web::RootSpanBuilder for PublicRequestSpan {
        fn on_request_start(request: &ServiceRequest) -> Span {
            let span = request_span(request);
            // A fresh root even when this request runs inside some other span.
            let _ = span.set_parent(opentelemetry::Context::new());
            span
        }

        fn on_request_end<B: MessageBody>(
            span: Span,
            outcome: &Result<ServiceResponse<B>, actix_web::Error>,
        ) {
            RequestSpan::on_request_end(span, outcome);
        }
    }

    impl tracing_actix_web::RootSpanBuilder for RequestSpan {
        fn on_request_start(request: &ServiceRequest) -> Span {
            let span = request_span(request);
            let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
            // Fails only without an OpenTelemetry layer: nothing to link then.
            let _ = span.set_parent(parent);
            span
        }

        fn on_request_end<B: MessageBody>(
            span: Span,
            outcome: &Result<ServiceResponse<B>, actix_web::Error>,
        ) {
            let status = match outcome {
                Ok(response) => response.status(),
                Err(error) => error.as_response_error().status_code(),
            };
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
        }
    }

    /// The `HTTP request` span without a parent decided yet.
    fn request_span(request: &ServiceRequest) -> Span {
        let method = request.method().as_str().to_owned();
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        tracing::info_span!(
            "HTTP request",
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %method,
            http.route = %route,
            http.response.status_code = tracing::field::Empty,
        )
    }

    /// actix's (http 0.2) headers as an OpenTelemetry extractor.
    struct Headers<'a>(&'a actix_web::http::header::HeaderMap);

    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }

        fn keys(&self) -> Vec<&str> {
            self.0
                .keys()
                .map(actix_web::http::header::HeaderName::as_str)
                .collect()
        }
    }
}
