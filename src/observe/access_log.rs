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
