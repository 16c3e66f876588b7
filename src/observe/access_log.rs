//! One JSON line per request: who asked (subscription id, never the key), what matched, who
//! produced the response, and where the time went.

use std::io::Write;

use serde::Serialize;

use crate::config::AccessLogTarget;

#[derive(Serialize)]
pub struct Producer<'a> {
    /// `backend` or `gateway`.
    pub kind: &'a str,
    /// For gateway responses: the policy element or built-in step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'a str>,
}

#[derive(Serialize)]
pub struct Entry<'a> {
    pub ts: f64,
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub api: Option<&'a str>,
    pub operation: Option<&'a str>,
    pub product: Option<&'a str>,
    pub subscription: Option<&'a str>,
    pub client: Option<String>,
    pub produced_by: Producer<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<TraceLine<'a>>,
    pub duration_ms: f64,
    pub backend_ms: Option<f64>,
    /// The shared store was unreachable (its failure mode applied).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub store_degraded: bool,
    /// The W3C trace id (`correlation.trace_context`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    pub host: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// Body bytes read from and sent to the client.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Where the last upstream call went (`ip:port`, else the backend URL's authority).
    pub upstream: Option<String>,
    /// The backend entity or pool member that took the last call.
    pub backend: Option<&'a str>,
    /// Calls sent upstream (0 when the gateway answered; above 1 with retries or redirects).
    pub upstream_attempts: u32,
}

#[derive(Serialize)]
pub struct TraceLine<'a> {
    pub source: &'a str,
    pub severity: &'a str,
    pub message: &'a str,
}

pub fn write(target: AccessLogTarget, entry: &Entry) {
    if target == AccessLogTarget::Off {
        return;
    }
    let line = match serde_json::to_string(entry) {
        Ok(l) => l,
        Err(_) => return,
    };
    match target {
        AccessLogTarget::Off => {}
        AccessLogTarget::Stdout => {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
        AccessLogTarget::Stderr => {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}
