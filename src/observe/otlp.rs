//! OpenTelemetry export of request spans over OTLP/HTTP (docs/operations.md, "OpenTelemetry"):
//! one SERVER span per sampled request, with the gateway's phases (inbound, backend, outbound)
//! as child spans, handed to the SDK's batch processor, whose own thread sends them with the
//! `opentelemetry-otlp` exporter. The spans carry the ids of the request's W3C trace context
//! (`codec::trace_context`), so they join the caller's trace and the backend's spans join
//! them; the SDK's tracer would make ids of its own, so the finished spans are built here.
//! Off unless `otlp.endpoint` is set.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;

/// Where and how spans go (`otlp` in the configuration).
pub struct Settings {
    pub endpoint: String,
    pub service_name: String,
    pub headers: Vec<(String, String)>,
    pub batch_delay: Duration,
    pub timeout: Duration,
}

struct Exporter {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// Start the exporter (its thread): once per process, after Pingora has forked.
pub fn init(s: &Settings) -> Result<(), String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(s.endpoint.clone())
        .with_timeout(s.timeout)
        .with_headers(s.headers.iter().cloned().collect())
        .build()
        .map_err(|e| e.to_string())?;
    let mut processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(s.batch_delay)
                .with_max_queue_size(8192)
                .build(),
        )
        .build();
    processor.set_resource(
        &Resource::builder()
            .with_service_name(s.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    let scope = InstrumentationScope::builder("gatehouse")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    EXPORTER
        .set(Exporter { processor, scope })
        .map_err(|_| "the OTLP exporter is already running".to_string())
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    EXPORTER.get().is_some()
}

/// Send what is queued (at shutdown).
pub fn flush() {
    if let Some(e) = EXPORTER.get() {
        let _ = e.processor.force_flush();
    }
}

/// A finished request, as the adapter saw it.
pub struct RequestSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The caller's span, when the trace was continued.
    pub parent: Option<[u8; 8]>,
    pub sampled: bool,
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    /// The gateway's phases: (name, start, end).
    pub phases: Vec<(&'static str, SystemTime, SystemTime)>,
    /// The Reason of a failure, or a 5xx.
    pub error: Option<String>,
}

fn random_span_id() -> SpanId {
    use rand::RngCore;
    let mut b = [0u8; 8];
    while b == [0; 8] {
        rand::thread_rng().fill_bytes(&mut b);
    }
    SpanId::from_bytes(b)
}

/// Queue the request's span and its phases (a no-op when export is off or the trace is not
/// sampled).
pub fn export(r: RequestSpan) {
    let Some(e) = EXPORTER.get() else { return };
    if !r.sampled {
        return;
    }
    let trace_id = TraceId::from_bytes(r.trace_id);
    let root = SpanId::from_bytes(r.span_id);
    let context = |span: SpanId| {
        SpanContext::new(
            trace_id,
            span,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        )
    };
    for (name, start, end) in &r.phases {
        e.processor.on_end(SpanData {
            span_context: context(random_span_id()),
            parent_span_id: root,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: (*name).into(),
            start_time: *start,
            end_time: *end,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: e.scope.clone(),
        });
    }
    let mut attributes = r.attributes;
    let status = match &r.error {
        Some(reason) => {
            attributes.push(KeyValue::new("error.type", reason.clone()));
            Status::error(reason.clone())
        }
        None => Status::Unset,
    };
    e.processor.on_end(SpanData {
        span_context: context(root),
        parent_span_id: r.parent.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: r.parent.is_some(),
        span_kind: SpanKind::Server,
        name: r.name.into(),
        start_time: r.start,
        end_time: r.end,
        attributes,
        dropped_attributes_count: 0,
        events: Default::default(),
        links: Default::default(),
        status,
        instrumentation_scope: e.scope.clone(),
    });
}
