//! Prometheus metrics, registered once per process and exported on the admin listener.

use std::sync::OnceLock;

use prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge, HistogramVec,
    IntCounterVec, IntGauge,
};

pub struct Metrics {
    /// Requests by API, operation, status class and producer (`backend` / `gateway`).
    pub requests: IntCounterVec,
    /// Whole-request latency by API.
    pub duration: HistogramVec,
    /// Time waiting on the backend by API.
    pub backend_duration: HistogramVec,
    /// Reloads by result (`ok` / `error`).
    pub reloads: IntCounterVec,
    /// Generation of the configuration in service (1 at start, +1 per successful reload).
    pub generation: IntGauge,
    /// Keys evicted from the in-memory store because it was full.
    pub store_evictions: prometheus::IntCounter,
    /// Failed calls to the shared store (Redis).
    pub store_errors: prometheus::IntCounter,
    /// 1 while the shared store answers, 0 while its failure mode is in force.
    pub store_up: IntGauge,
    /// Circuit-breaker state per backend: 0 closed, 1 open, 2 half-open.
    pub breaker_state: prometheus::IntGaugeVec,
    /// Circuit-breaker transitions by backend and new state.
    pub breaker_transitions: IntCounterVec,
    /// Active health per backend: 1 healthy, 0 unhealthy.
    pub backend_healthy: prometheus::IntGaugeVec,
    /// Health changes by backend and new health (`healthy` / `unhealthy`).
    pub health_transitions: IntCounterVec,
    /// Requests answered 503 because no backend (or pool member) was available.
    pub backend_unavailable: IntCounterVec,
    /// Connections refused because the listener had `max_connections` open.
    pub connections_refused: IntCounterVec,
    /// Calls to each backend (pool members count as backends) by outcome: the response's
    /// status class, or the Reason of a failed call.
    pub backend_requests: IntCounterVec,
    /// Time from sending a call to a backend to its response headers (or failure).
    pub backend_latency: HistogramVec,
    /// Access-log lines dropped because the writer could not keep up (stdout blocked).
    pub access_log_dropped: prometheus::IntCounter,
    /// Always 1; the labels say which build serves.
    pub build_info: prometheus::IntGaugeVec,
}

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static METRICS: OnceLock<Option<Metrics>> = OnceLock::new();

fn build() -> Result<Metrics, prometheus::Error> {
    Ok(Metrics {
        requests: register_int_counter_vec!(
            "gatehouse_requests_total",
            "Requests by API, operation, status class and producer",
            &["api", "operation", "status_class", "producer"]
        )?,
        duration: register_histogram_vec!(
            "gatehouse_request_duration_seconds",
            "Whole-request latency",
            &["api"],
            BUCKETS.to_vec()
        )?,
        backend_duration: register_histogram_vec!(
            "gatehouse_backend_duration_seconds",
            "Time from sending the request upstream to receiving response headers",
            &["api"],
            BUCKETS.to_vec()
        )?,
        reloads: register_int_counter_vec!(
            "gatehouse_config_reloads_total",
            "Configuration reloads by result",
            &["result"]
        )?,
        generation: register_int_gauge!(
            "gatehouse_config_generation",
            "Generation of the configuration in service"
        )?,
        store_evictions: prometheus::register_int_counter!(
            "gatehouse_store_evictions_total",
            "Keys evicted from the in-memory store because it was full"
        )?,
        store_errors: prometheus::register_int_counter!(
            "gatehouse_store_errors_total",
            "Failed calls to the shared store"
        )?,
        access_log_dropped: prometheus::register_int_counter!(
            "gatehouse_access_log_dropped_total",
            "Access-log lines dropped because the writer could not keep up"
        )?,
        store_up: register_int_gauge!(
            "gatehouse_store_up",
            "1 while the shared store answers, 0 while its failure mode applies"
        )?,
        breaker_state: prometheus::register_int_gauge_vec!(
            "gatehouse_backend_circuit_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            &["backend"]
        )?,
        breaker_transitions: register_int_counter_vec!(
            "gatehouse_backend_circuit_transitions_total",
            "Circuit breaker transitions by new state",
            &["backend", "state"]
        )?,
        backend_healthy: prometheus::register_int_gauge_vec!(
            "gatehouse_backend_healthy",
            "Active health check result: 1 healthy, 0 unhealthy",
            &["backend"]
        )?,
        health_transitions: register_int_counter_vec!(
            "gatehouse_backend_health_transitions_total",
            "Health changes by new health",
            &["backend", "health"]
        )?,
        backend_unavailable: register_int_counter_vec!(
            "gatehouse_backend_unavailable_total",
            "Requests answered 503 because no backend or pool member was available",
            &["backend"]
        )?,
        connections_refused: register_int_counter_vec!(
            "gatehouse_connections_refused_total",
            "Connections refused because the listener had max_connections open",
            &["listener"]
        )?,
        backend_requests: register_int_counter_vec!(
            "gatehouse_backend_requests_total",
            "Calls to each backend or pool member by outcome (status class or failure Reason)",
            &["backend", "outcome"]
        )?,
        backend_latency: register_histogram_vec!(
            "gatehouse_backend_request_duration_seconds",
            "Time from sending a call to a backend or pool member to its response headers or failure",
            &["backend"],
            BUCKETS.to_vec()
        )?,
        build_info: {
            let g = prometheus::register_int_gauge_vec!(
                "gatehouse_build_info",
                "The build that serves: always 1",
                &["version", "pingora", "profile"]
            )?;
            g.with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                "0.9.1",
                if cfg!(debug_assertions) { "debug" } else { "release" },
            ])
            .set(1);
            g
        },
    })
}

/// Per-backend metric handles (the label lookups happen once per outcome, not per call).
#[derive(Default)]
pub struct BackendMetrics {
    /// By status class: 1xx..5xx, other.
    statuses: [OnceLock<prometheus::IntCounter>; 6],
    latency: OnceLock<prometheus::Histogram>,
}

impl BackendMetrics {
    /// One call's outcome: a status, or the Reason of a failure.
    pub fn record(&self, backend: &str, status: Result<u16, &str>, elapsed: Option<f64>) {
        let Some(m) = get() else { return };
        match status {
            Ok(status) => {
                let class = class_index(status);
                self.statuses[class]
                    .get_or_init(|| {
                        m.backend_requests
                            .with_label_values(&[backend, status_class(status)])
                    })
                    .inc();
            }
            // Failures are rare: their series are looked up each time.
            Err(reason) => m
                .backend_requests
                .with_label_values(&[backend, reason])
                .inc(),
        }
        if let Some(e) = elapsed {
            self.latency
                .get_or_init(|| m.backend_latency.with_label_values(&[backend]))
                .observe(e);
        }
    }
}

/// The process-wide metrics (`None` only if registration failed, which is logged once).
pub fn get() -> Option<&'static Metrics> {
    METRICS
        .get_or_init(|| match build() {
            // The default registry of `prometheus` (its `process` feature) carries the
            // `process_*` series itself.
            Ok(m) => Some(m),
            Err(e) => {
                log::error!("metrics registration failed: {e}");
                None
            }
        })
        .as_ref()
}

/// Per-operation metric handles: the label lookups happen once per (status class, producer),
/// not on every request. Allocated on the operation's first request: an operation never called
/// costs 16 bytes, not the handles' 224 (10,000 operations: 2 MB).
#[derive(Default)]
pub struct OperationMetrics(OnceLock<Box<Handles>>);

#[derive(Default)]
struct Handles {
    /// [status class][producer]: producer 0 = backend, 1 = gateway.
    requests: [[OnceLock<prometheus::IntCounter>; 2]; 6],
    duration: OnceLock<prometheus::Histogram>,
    backend: OnceLock<prometheus::Histogram>,
}

impl OperationMetrics {
    pub fn record(
        &self,
        api: &str,
        op: &str,
        status: u16,
        backend_produced: bool,
        duration: f64,
        backend: Option<f64>,
    ) {
        let Some(m) = get() else { return };
        let h = self.0.get_or_init(Box::default);
        let class = class_index(status);
        let producer = usize::from(!backend_produced);
        h.requests[class][producer]
            .get_or_init(|| {
                m.requests.with_label_values(&[
                    api,
                    op,
                    status_class(status),
                    if backend_produced {
                        "backend"
                    } else {
                        "gateway"
                    },
                ])
            })
            .inc();
        h.duration
            .get_or_init(|| m.duration.with_label_values(&[api]))
            .observe(duration);
        if let Some(b) = backend {
            h.backend
                .get_or_init(|| m.backend_duration.with_label_values(&[api]))
                .observe(b);
        }
    }
}

/// The index of a status's class: 1xx..5xx as 0..4, anything else 5.
fn class_index(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100 - 1),
        _ => 5,
    }
}

pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// Prometheus text exposition of every registered metric.
pub fn render() -> Vec<u8> {
    use prometheus::Encoder;
    let _ = get();
    let mut buf = Vec::new();
    let _ = prometheus::TextEncoder::new().encode(&prometheus::gather(), &mut buf);
    buf
}

/// Most label combinations one custom metric keeps; further ones are dropped and counted.
pub const MAX_CUSTOM_SERIES: usize = 1000;

/// One custom metric family (`emit-metric`): its counter, its label names, the combinations
/// seen so far.
struct Custom {
    counter: prometheus::CounterVec,
    labels: Vec<String>,
    series: ahash::AHashSet<Vec<String>>,
}

static CUSTOM: OnceLock<parking_lot::Mutex<ahash::AHashMap<String, Custom>>> = OnceLock::new();
static CUSTOM_DROPPED: OnceLock<Option<IntCounterVec>> = OnceLock::new();

/// A Prometheus name from anything: characters other than `[A-Za-z0-9_]` become `_`, and a
/// leading digit gets a `_` before it.
pub fn prometheus_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn custom_dropped(metric: &str, reason: &str) {
    let dropped = CUSTOM_DROPPED.get_or_init(|| {
        register_int_counter_vec!(
            "gatehouse_custom_metric_dropped_total",
            "emit-metric values not recorded, by metric and reason (labels, cardinality, value)",
            &["metric", "reason"]
        )
        .ok()
    });
    if let Some(d) = dropped {
        d.with_label_values(&[metric, reason]).inc();
    }
}

/// Add `value` to the custom metric `gatehouse_custom_<name>_total{namespace, <dimensions>}`
/// (`emit-metric`). A metric keeps the dimension names it was first emitted with; a value with
/// other dimensions, past `MAX_CUSTOM_SERIES` combinations, or negative / not finite is
/// dropped and counted in `gatehouse_custom_metric_dropped_total`.
pub fn emit_custom(name: &str, namespace: &str, dimensions: &[(String, String)], value: f64) {
    let metric = format!("gatehouse_custom_{}_total", prometheus_name(name));
    if !value.is_finite() || value < 0.0 {
        custom_dropped(&metric, "value");
        return;
    }
    let labels: Vec<String> = std::iter::once("namespace".to_string())
        .chain(dimensions.iter().map(|(k, _)| prometheus_name(k)))
        .collect();
    let values: Vec<String> = std::iter::once(namespace.to_string())
        .chain(dimensions.iter().map(|(_, v)| v.clone()))
        .collect();
    let mut all = CUSTOM
        .get_or_init(|| parking_lot::Mutex::new(ahash::AHashMap::new()))
        .lock();
    if !all.contains_key(&metric) {
        let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let opts = prometheus::Opts::new(metric.clone(), format!("emit-metric {name}"));
        let counter = match prometheus::CounterVec::new(opts, &refs)
            .and_then(|c| prometheus::register(Box::new(c.clone())).map(|_| c))
        {
            Ok(c) => c,
            Err(_) => {
                drop(all);
                custom_dropped(&metric, "labels");
                return;
            }
        };
        all.insert(
            metric.clone(),
            Custom {
                counter,
                labels: labels.clone(),
                series: ahash::AHashSet::new(),
            },
        );
    }
    let Some(c) = all.get_mut(&metric) else {
        return;
    };
    if c.labels != labels {
        drop(all);
        custom_dropped(&metric, "labels");
        return;
    }
    if !c.series.contains(&values) {
        if c.series.len() >= MAX_CUSTOM_SERIES {
            drop(all);
            custom_dropped(&metric, "cardinality");
            return;
        }
        c.series.insert(values.clone());
    }
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    c.counter.with_label_values(&refs).inc_by(value);
}

#[cfg(test)]
mod custom_tests {
    use super::*;

    fn dropped(metric: &str, reason: &str) -> u64 {
        CUSTOM_DROPPED
            .get()
            .and_then(|d| d.as_ref())
            .map_or(0, |d| d.with_label_values(&[metric, reason]).get())
    }

    #[test]
    fn custom_metrics_are_bounded() {
        let dims = |v: &str| vec![("Tier".to_string(), v.to_string())];
        let m = "gatehouse_custom_bounded_test_total";
        for i in 0..MAX_CUSTOM_SERIES + 5 {
            emit_custom("bounded test", "ns", &dims(&i.to_string()), 1.0);
        }
        assert_eq!(dropped(m, "cardinality"), 5);
        // A known combination still counts after the bound is reached.
        emit_custom("bounded test", "ns", &dims("0"), 1.0);
        assert_eq!(dropped(m, "cardinality"), 5);
        // Other dimension names than the metric's first, and bad values, are dropped.
        emit_custom("bounded test", "ns", &[], 1.0);
        assert_eq!(dropped(m, "labels"), 1);
        emit_custom("bounded test", "ns", &dims("0"), -1.0);
        emit_custom("bounded test", "ns", &dims("0"), f64::NAN);
        assert_eq!(dropped(m, "value"), 2);
        assert_eq!(prometheus_name("API ID"), "api_id");
        assert_eq!(prometheus_name("9lives"), "_9lives");
    }
}
