//! What a finished request leaves behind: its access-log record (who produced the response,
//! which policy, the Reason of a failure, traces with secrets masked, timings) and its metrics.

use std::time::{Duration, Instant};

use http::HeaderMap;

use super::model::Gateway;
use super::state::{Origin, ReqState};
use super::PolicyError;
use crate::config::AccessLogTarget;
use crate::observe::{access_log, metrics};

/// A finished request as the adapter saw it.
pub struct Finished<'a> {
    pub gw: &'a Gateway,
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// The client's request headers (their credentials are masked in traces).
    pub request_headers: &'a HeaderMap,
    pub status: u16,
    pub client: Option<access_log::Addr<'a>>,
    pub api: Option<usize>,
    pub operation: Option<usize>,
    pub product: Option<usize>,
    pub subscription: Option<usize>,
    pub origin: &'a Origin,
    pub error: Option<&'a PolicyError>,
    pub req: Option<&'a ReqState>,
    pub started: Instant,
    pub backend_time: Option<Duration>,
    pub store_degraded: bool,
    /// Request and response body bytes read from and sent to the client.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The address the last upstream connection went to (else the target's authority).
    pub upstream: Option<access_log::Addr<'a>>,
    /// The backend entity or pool member that took the last call.
    pub backend: Option<usize>,
    /// Calls sent upstream for this request (retries and redirects included).
    pub upstream_attempts: u32,
}

/// Write the access-log record (unless the log is off and nothing was traced) and record the
/// request's metrics.
pub fn record(f: &Finished, target: AccessLogTarget) {
    let traced = f.req.is_some_and(|r| !r.traces.is_empty());
    if target != AccessLogTarget::Off || traced {
        log(f, target);
    }
    record_metrics(f);
}

fn log(f: &Finished, target: AccessLogTarget) {
    let gw = f.gw;
    let api = f.api.map(|a| &gw.apis[a]);
    let op = api.and_then(|a| f.operation.map(|o| &a.operations[o]));
    let (policy, policy_id, section, scope) = match f.origin {
        Origin::Backend => (None, None, None, None),
        Origin::Builtin(s) => (Some(*s), None, None, None),
        Origin::Policy {
            element,
            id,
            section,
            scope,
        } => (
            Some(*element),
            id.as_deref(),
            Some(section.name()),
            Some(scope.name()),
        ),
    };
    // Trace text is the policy author's; secrets that reach it are masked (`redactor`).
    let traces: Vec<(String, String)> = match f.req {
        Some(r) if !r.traces.is_empty() => {
            let redact = redactor(&gw.secrets, r.info.key.as_deref(), f.request_headers);
            r.traces
                .iter()
                .map(|t| (redact(&t.source), redact(&t.message)))
                .collect()
        }
        // Most requests trace nothing: nothing to gather or mask.
        _ => Vec::new(),
    };
    let produced_by = access_log::Producer {
        kind: f.origin.producer(),
        policy,
        policy_id,
        section,
        scope,
    };
    let entry = access_log::Entry {
        ts: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
        request_id: f.request_id,
        method: f.method,
        path: f.path,
        status: f.status,
        api: api.map(|a| a.id.as_str()),
        operation: op.map(|o| o.id.as_str()),
        product: f.product.map(|p| gw.products[p].id.as_str()),
        subscription: f.subscription.map(|s| gw.subscriptions.list[s].id.as_str()),
        client: f.client,
        produced_by,
        error: f.error.map(|e| e.reason()),
        traces: f
            .req
            .map(|r| {
                r.traces
                    .iter()
                    .zip(&traces)
                    .map(|(t, (source, message))| access_log::TraceLine {
                        source,
                        severity: t.severity,
                        message,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        duration: f.started.elapsed(),
        backend: f.backend_time,
        store_degraded: f.store_degraded,
        trace_id: f
            .req
            .map(|r| r.info.trace)
            .filter(|t| t.is_set())
            .map(|t| t.trace_id_hex()),
        host: header(f.request_headers, http::header::HOST),
        user_agent: header(f.request_headers, http::header::USER_AGENT),
        bytes_in: f.bytes_in,
        bytes_out: f.bytes_out,
        upstream: f.upstream,
        backend_id: f.backend.map(|b| gw.backends[b].id.as_str()),
        upstream_attempts: f.upstream_attempts,
    };
    access_log::write(target, &entry);
    if let Some(r) = f.req {
        for (t, (source, message)) in r.traces.iter().zip(&traces) {
            log::info!(target: "gatehouse::trace", "request {} trace [{}] {source}: {message}", f.request_id, t.severity);
        }
    }
}

/// A request header's value as text, if it is text.
fn header(h: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Request counters and latency histograms.
fn record_metrics(f: &Finished) {
    let api = f.api.map(|a| &f.gw.apis[a]);
    let op = api.and_then(|a| f.operation.map(|o| &a.operations[o]));
    let duration = f.started.elapsed().as_secs_f64();
    let backend = f.backend_time.map(|b| b.as_secs_f64());
    let from_backend = f.origin.producer() == "backend";
    match (api, op) {
        (Some(a), Some(o)) => {
            o.metrics
                .record(&a.id, &o.id, f.status, from_backend, duration, backend)
        }
        _ => {
            // Requests that matched no operation: looked up each time (rare).
            if let Some(m) = metrics::get() {
                let api_id = api.map_or("", |a| a.id.as_str());
                m.requests
                    .with_label_values(&[
                        api_id,
                        "",
                        metrics::status_class(f.status),
                        f.origin.producer(),
                    ])
                    .inc();
                m.duration.with_label_values(&[api_id]).observe(duration);
            }
        }
    }
}

/// `text` with every sensitive value of this request masked (`redactor`).
pub fn mask(gw: &Gateway, req: &ReqState, headers: &HeaderMap, text: &str) -> String {
    redactor(&gw.secrets, req.info.key.as_deref(), headers)(text)
}

/// Masks every sensitive value of one request in trace text: secret named values, the caller's
/// key, and the Authorization / Proxy-Authorization / Cookie values (and the token inside a
/// `Bearer x`).
fn redactor(secrets: &[String], key: Option<&str>, headers: &HeaderMap) -> impl Fn(&str) -> String {
    let mut sensitive: Vec<String> = secrets.to_vec();
    sensitive.extend(key.map(str::to_string));
    for h in ["authorization", "proxy-authorization", "cookie"] {
        for v in headers.get_all(h) {
            if let Ok(v) = v.to_str() {
                sensitive.push(v.to_string());
                if let Some((_, token)) = v.split_once(' ') {
                    sensitive.push(token.trim().to_string());
                }
            }
        }
    }
    sensitive.retain(|s| s.len() >= 4);
    // Longest first, so a token is masked whole before any shorter value inside it.
    sensitive.sort_by_key(|s| std::cmp::Reverse(s.len()));
    move |text: &str| {
        let mut out = text.to_string();
        for s in &sensitive {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}
