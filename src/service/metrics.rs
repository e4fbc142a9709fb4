//! Prometheus metrics (OpenMetrics text at `/metrics`), on an explicit registry (no globals).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::verdict::{Verdict, VerdictDecision};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    decision: String,
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    status: String,
}

/// The service's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    verdicts: Family<VerdictLabels, Counter>,
    verification_seconds: Histogram,
    requests: Family<RouteLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    cache_hits: Counter,
    cache_misses: Counter,
    registry_requests: Counter,
    registry_errors: Counter,
    lineage_dropped: Counter,
    lineage_written: Counter,
    lineage_failed_batches: Counter,
    lineage_failed_events: Counter,
    /// The lineage store's writer, whose counters the three above follow.
    writer: OnceLock<crate::store::Writer>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("custody");
        let verdicts = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "verdicts",
            "Verdicts made, by decision and policy (cache hits not counted)",
            verdicts.clone(),
        );
        let verification_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "verification_seconds",
            "Time to make a verdict (registry + verification + policy)",
            verification_seconds.clone(),
        );
        let requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00005, 2.0, 18))
        });
        registry.register(
            "http_request_seconds",
            "HTTP request latency by route and status",
            request_seconds.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "verdict_cache_hits",
            "Verdicts served from the cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "verdict_cache_misses",
            "Verdicts not in the cache",
            cache_misses.clone(),
        );
        let registry_requests = Counter::default();
        registry.register(
            "registry_requests",
            "HTTP requests made to registries",
            registry_requests.clone(),
        );
        let registry_errors = Counter::default();
        registry.register(
            "registry_errors",
            "Verdicts that ended in an error (registry, deadline)",
            registry_errors.clone(),
        );
        let lineage_dropped = Counter::default();
        registry.register(
            "lineage_events_dropped",
            "Lineage events not recorded because the store queue was full or the store down",
            lineage_dropped.clone(),
        );
        let lineage_written = Counter::default();
        registry.register(
            "lineage_events_written",
            "Lineage events committed to the store",
            lineage_written.clone(),
        );
        let lineage_failed_batches = Counter::default();
        registry.register(
            "lineage_batches_failed",
            "Lineage store transactions that failed (disk full, connection lost, timeout)",
            lineage_failed_batches.clone(),
        );
        let lineage_failed_events = Counter::default();
        registry.register(
            "lineage_events_failed",
            "Lineage events in failed transactions: lost, unless an acknowledged submitter retries",
            lineage_failed_events.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            verdicts,
            verification_seconds,
            requests,
            request_seconds,
            cache_hits,
            cache_misses,
            registry_requests,
            registry_errors,
            lineage_dropped,
            lineage_written,
            lineage_failed_batches,
            lineage_failed_events,
            writer: OnceLock::new(),
        }
    }

    /// Follows `writer`'s counters from now on (`custody_lineage_events_written`,
    /// `…_batches_failed`, `…_events_failed`).
    pub(super) fn set_writer(&self, writer: crate::store::Writer) {
        let _ = self.writer.set(writer);
    }

    pub(super) fn lineage_dropped(&self) {
        self.lineage_dropped.inc();
    }

    pub(super) fn cache_hit(&self) {
        self.cache_hits.inc();
    }

    pub(super) fn cache_miss(&self) {
        self.cache_misses.inc();
    }

    pub(super) fn registry_requests(&self, n: u64) {
        self.registry_requests.inc_by(n);
    }

    pub(super) fn verdict(&self, v: &Verdict, took: Duration) {
        let decision = match v.decision {
            VerdictDecision::Allow => "allow",
            VerdictDecision::Deny => "deny",
            VerdictDecision::Error => "error",
        };
        if v.decision == VerdictDecision::Error {
            self.registry_errors.inc();
        }
        self.verdicts
            .get_or_create(&VerdictLabels {
                decision: decision.into(),
                policy: v.policy.name.clone(),
            })
            .inc();
        self.verification_seconds.observe(took.as_secs_f64());
    }

    pub(super) fn request(&self, route: &str, status: u16, took: Duration) {
        let labels = RouteLabels {
            route: route.into(),
            status: status.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            // Under the lock, so two scrapes never add the same difference twice.
            if let Some(w) = self.writer.get() {
                let s = w.stats();
                catch_up(&self.lineage_written, s.written);
                catch_up(&self.lineage_failed_batches, s.failed_batches);
                catch_up(&self.lineage_failed_events, s.failed_events);
            }
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        }
        out
    }
}

/// Brings `counter` up to `total` (the writer's own count, which only grows).
fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}
