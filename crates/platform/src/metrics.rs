//! Prometheus metrics: one recorder per process, rendered by each process's admin port.
//!
//! Code everywhere records through the [`metrics`] facade (`metrics::counter!`,
//! `histogram!`, `gauge!`) with the names in [`names`]; without a recorder those calls cost
//! next to nothing and record nothing. [`install`] installs the Prometheus recorder
//! (`metrics-exporter-prometheus`) as the process's global recorder, describes every metric
//! (help text and unit) and sets the histogram buckets; it returns the [`PrometheusHandle`]
//! whose [`render`](PrometheusHandle::render) is the `/metrics` body.
//!
//! [`install`] may be called any number of times, from any thread, with or without a Tokio
//! runtime: `idbridge serve` and `idbridge up` run several services in one process and tests
//! call it from every test. The first call installs; the others return the same handle.
//! A background thread runs the recorder's upkeep (draining histogram samples) every five
//! seconds, so memory stays bounded even when nobody scrapes.
//!
//! Labels are low-cardinality by contract: never an ORCID iD, person id, put code, token or
//! URL. The table of every metric is in `docs/metrics.md`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The Prometheus text format's content type, for the `/metrics` response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often the upkeep thread drains histogram samples.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Every metric name (as rendered), so that emitters, collectors and tests agree.
pub mod names {
    /// Counter: HTTP calls to ORCID by `endpoint`, `method`, `status`.
    pub const ORCID_REQUESTS_TOTAL: &str = "idbridge_orcid_requests_total";
    /// Histogram (seconds): ORCID call latency by `endpoint`, `method`.
    pub const ORCID_REQUEST_DURATION_SECONDS: &str = "idbridge_orcid_request_duration_seconds";
    /// Histogram (seconds): time spent waiting for a rate-limit permit, by `scope`.
    pub const RATELIMIT_WAIT_SECONDS: &str = "idbridge_ratelimit_wait_seconds";
    /// Counter: permits from the in-process fallback during a database outage.
    pub const RATELIMIT_FALLBACK_TOTAL: &str = "idbridge_ratelimit_fallback_total";
    /// Counter: tries of low-priority (yielding) callers the shared bucket refused because
    /// its level was below the reserve kept for writes.
    pub const RATELIMIT_YIELD_REFUSALS_TOTAL: &str = "idbridge_ratelimit_yield_refusals_total";
    /// Counter: low-priority callers that yielded for `read_max_yield_ms` and then took a
    /// normal permit: writes were using the whole limit.
    pub const RATELIMIT_YIELD_OVERRUNS_TOTAL: &str = "idbridge_ratelimit_yield_overruns_total";
    /// Counter: messages handled by bus consumers, by `queue`, `outcome`.
    pub const BUS_MESSAGES_TOTAL: &str = "idbridge_bus_messages_total";
    /// Histogram (seconds): handler time per message, by `queue`.
    pub const BUS_HANDLE_DURATION_SECONDS: &str = "idbridge_bus_handle_duration_seconds";
    /// Counter: publishes by `outcome` (confirmed, failed).
    pub const BUS_PUBLISHED_TOTAL: &str = "idbridge_bus_published_total";
    /// Counter: listings or replays of parked messages whose re-publishing failed.
    pub const BUS_PARKED_REFRESH_FAILURES_TOTAL: &str =
        "idbridge_bus_parked_refresh_failures_total";
    /// Gauge: messages ready in a queue, by `queue`.
    pub const QUEUE_MESSAGES: &str = "idbridge_queue_messages";
    /// Gauge: consumers of a queue, by `queue`.
    pub const QUEUE_CONSUMERS: &str = "idbridge_queue_consumers";
    /// Gauge: outbox rows not yet relayed, by `service`.
    pub const OUTBOX_PENDING: &str = "idbridge_outbox_pending";
    /// Gauge (seconds): age of the oldest unrelayed outbox row, by `service` (0 when empty).
    pub const OUTBOX_OLDEST_AGE_SECONDS: &str = "idbridge_outbox_oldest_age_seconds";
    /// Gauge: token-vault connections by `state`.
    pub const CONNECTIONS: &str = "idbridge_connections";
    /// Gauge: writer ledger items by `state`.
    pub const ITEMS: &str = "idbridge_items";
    /// Counter: token refreshes at ORCID by `outcome` (ok, failed).
    pub const TOKEN_REFRESHES_TOTAL: &str = "idbridge_token_refreshes_total";
    /// Counter: webhook callbacks by `outcome` (accepted, rejected, rate_limited).
    pub const WEBHOOK_CALLBACKS_TOTAL: &str = "idbridge_webhook_callbacks_total";
    /// Gauge (always 1): the binary's `version` and the `service` it runs.
    pub const BUILD_INFO: &str = "idbridge_build_info";
    /// Counter: collector runs that failed, by `collector` (queues, outbox, connections,
    /// items).
    pub const COLLECTOR_ERRORS_TOTAL: &str = "idbridge_collector_errors_total";
}

/// Buckets for ORCID call latencies: 5 ms to 30 s (a call's timeout).
pub const ORCID_LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets for rate-limit waits. `le="0"` counts the permits that were free at once, so
/// `1 - bucket{le="0"} / count` is the share of calls that had to wait.
pub const RATELIMIT_WAIT_BUCKETS: &[f64] = &[
    0.0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets for bus handler times: 1 ms to 60 s (a handler may call ORCID several times).
pub const HANDLE_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Installing the recorder failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MetricsError {
    /// Another global `metrics` recorder was installed first (not by [`install`]).
    #[error("cannot install the Prometheus recorder: {0}")]
    Install(String),
}

static HANDLE: OnceLock<Result<PrometheusHandle, MetricsError>> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle; later calls
/// return the same handle. See the [module docs](self).
///
/// # Errors
/// [`MetricsError::Install`] when another global recorder was installed before (every call
/// then returns the same error).
pub fn install() -> Result<&'static PrometheusHandle, MetricsError> {
    HANDLE
        .get_or_init(|| {
            let recorder = builder()?.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder)
                .map_err(|e| MetricsError::Install(e.to_string()))?;
            describe();
            let upkeep = handle.clone();
            // A thread, not a task: the first caller's runtime may be a test's, gone soon.
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics: no upkeep thread; histograms drain on scrape only");
            }
            Ok(handle)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The handle when [`install`] succeeded before, without installing.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(|h| h.as_ref().ok())
}

/// The builder with idbridge's buckets (also for tests that want a local recorder).
///
/// # Errors
/// [`MetricsError::Install`] if a bucket list were empty (they are constants, never empty).
pub fn builder() -> Result<PrometheusBuilder, MetricsError> {
    let bucket_error = |e: metrics_exporter_prometheus::BuildError| {
        MetricsError::Install(format!("histogram buckets: {e}"))
    };
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::ORCID_REQUEST_DURATION_SECONDS.to_owned()),
            ORCID_LATENCY_BUCKETS,
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(names::RATELIMIT_WAIT_SECONDS.to_owned()),
                RATELIMIT_WAIT_BUCKETS,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(names::BUS_HANDLE_DURATION_SECONDS.to_owned()),
                HANDLE_DURATION_BUCKETS,
            )
        })
        .map_err(bucket_error)
}

/// Help text and unit of every metric (shown once a metric has a value).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names::ORCID_REQUESTS_TOTAL,
        Unit::Count,
        "HTTP calls to ORCID by endpoint, method and status (HTTP code, or \"error\" when no response came)."
    );
    describe_histogram!(
        names::ORCID_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Latency of HTTP calls to ORCID by endpoint and method."
    );
    describe_histogram!(
        names::RATELIMIT_WAIT_SECONDS,
        Unit::Seconds,
        "Time each ORCID call waited for a rate-limit permit (0 when one was free) by scope: shared (the bucket in the database), shared-yield (a low-priority permit from that bucket, which yields to shared ones while they queue) or local (in-process, including the fallback during a database outage)."
    );
    describe_counter!(
        names::RATELIMIT_FALLBACK_TOTAL,
        Unit::Count,
        "Permits given by the in-process fallback because the shared rate limit's database did not answer."
    );
    describe_counter!(
        names::RATELIMIT_YIELD_REFUSALS_TOTAL,
        Unit::Count,
        "Tries of low-priority callers (the reader's reads) that the shared rate limit refused because it kept its reserve for writes; they try again when the bucket refills."
    );
    describe_counter!(
        names::RATELIMIT_YIELD_OVERRUNS_TOTAL,
        Unit::Count,
        "Low-priority callers that yielded for orcid.rate_limit.read_max_yield_ms and then took a normal permit: writes were using the whole ORCID rate limit."
    );
    describe_counter!(
        names::BUS_MESSAGES_TOTAL,
        Unit::Count,
        "Messages handled by bus consumers by queue and outcome (processed, retried, parked, rejected)."
    );
    describe_histogram!(
        names::BUS_HANDLE_DURATION_SECONDS,
        Unit::Seconds,
        "Time a consumer's handler took per message by queue."
    );
    describe_counter!(
        names::BUS_PUBLISHED_TOTAL,
        Unit::Count,
        "Publishes to the broker by outcome (confirmed, failed)."
    );
    describe_counter!(
        names::BUS_PARKED_REFRESH_FAILURES_TOTAL,
        Unit::Count,
        "Listings or replays of parked messages that could not re-publish them to start their delivery counts again."
    );
    describe_gauge!(
        names::QUEUE_MESSAGES,
        Unit::Count,
        "Messages ready in a work, retry or parking queue (sampled by idbridge serve)."
    );
    describe_gauge!(
        names::QUEUE_CONSUMERS,
        Unit::Count,
        "Consumers attached to a work, retry or parking queue (sampled by idbridge serve)."
    );
    describe_gauge!(
        names::OUTBOX_PENDING,
        Unit::Count,
        "Outbox rows not yet relayed to the broker, by service (sampled by idbridge serve)."
    );
    describe_gauge!(
        names::OUTBOX_OLDEST_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest outbox row not yet relayed, by service; 0 when none waits (sampled by idbridge serve)."
    );
    describe_gauge!(
        names::CONNECTIONS,
        Unit::Count,
        "Token-vault connections by state (sampled by idbridge serve)."
    );
    describe_gauge!(
        names::ITEMS,
        Unit::Count,
        "Writer ledger items by state (sampled by idbridge serve)."
    );
    describe_counter!(
        names::TOKEN_REFRESHES_TOTAL,
        Unit::Count,
        "Access-token refreshes the vault asked ORCID for, by outcome (ok, failed)."
    );
    describe_counter!(
        names::WEBHOOK_CALLBACKS_TOTAL,
        Unit::Count,
        "Requests to the webhook receiver's callback endpoint by outcome (accepted, rejected, rate_limited)."
    );
    describe_gauge!(
        names::BUILD_INFO,
        Unit::Count,
        "Always 1; the labels give the binary's version and each service this process runs."
    );
    describe_counter!(
        names::COLLECTOR_ERRORS_TOTAL,
        Unit::Count,
        "Runs of an idbridge serve collector (queues, outbox, connections, items) that failed; their gauges keep the last values."
    );
}

/// Sets `idbridge_build_info{version, service} 1` for a service this process runs
/// (`version`: the binary's, `env!("CARGO_PKG_VERSION")` of the caller).
pub fn build_info(version: &'static str, service: &'static str) {
    metrics::gauge!(
        names::BUILD_INFO,
        "version" => version,
        "service" => service
    )
    .set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_is_idempotent_and_renders_help_lines() {
        let first = install().expect("installs");
        let again = install().expect("a second call succeeds");
        let from_thread = std::thread::spawn(|| install().map(|h| h as *const _ as usize))
            .join()
            .expect("thread")
            .expect("a call from another thread succeeds");
        assert!(std::ptr::eq(first, again), "the same handle");
        assert_eq!(from_thread, first as *const _ as usize);
        assert!(handle().is_some());

        metrics::counter!(names::WEBHOOK_CALLBACKS_TOTAL, "outcome" => "accepted").increment(2);
        metrics::histogram!(names::RATELIMIT_WAIT_SECONDS, "scope" => "local").record(0.0);
        metrics::histogram!(names::RATELIMIT_WAIT_SECONDS, "scope" => "local").record(0.3);
        build_info(env!("CARGO_PKG_VERSION"), "writer");
        let text = first.render();
        assert!(
            text.contains("# HELP idbridge_webhook_callbacks_total Requests to the webhook"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE idbridge_webhook_callbacks_total counter"),
            "{text}"
        );
        assert!(
            text.contains("idbridge_webhook_callbacks_total{outcome=\"accepted\"} 2"),
            "{text}"
        );
        // A real histogram with idbridge's buckets, not a summary.
        assert!(
            text.contains("# TYPE idbridge_ratelimit_wait_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("idbridge_ratelimit_wait_seconds_bucket{scope=\"local\",le=\"0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("idbridge_ratelimit_wait_seconds_bucket{scope=\"local\",le=\"0.5\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("idbridge_ratelimit_wait_seconds_count{scope=\"local\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "idbridge_build_info{{version=\"{}\",service=\"writer\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        // No unit suffix is appended: the names are the contract's.
        assert!(!text.contains("_seconds_seconds"), "{text}");
    }
}
