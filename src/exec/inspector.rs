//! APIM's request tracing (docs/operations.md, "Request tracing"): for a request that asks
//! with `Ocp-Apim-Trace: true` and presents the key of a subscription with `allow_tracing`,
//! each statement the engine runs is recorded (section, scope, position, time, outcome, the
//! `trace` policy's messages), with the request as received and the backend call. The adapter
//! renders it as APIM's `traceEntries` document, masks secrets, and serves it at the URL it
//! returns in `Ocp-Apim-Trace-Location`. Nobody else's request is ever recorded.

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::policy::Section;

/// Most entries one trace keeps; later ones are counted, not kept.
pub const MAX_ENTRIES: usize = 1000;

/// One request's trace while it runs.
#[derive(Debug)]
pub struct Inspector {
    started: Instant,
    /// The capability token of the trace's URL.
    pub token: String,
    entries: Vec<(Section, Json)>,
    dropped: usize,
}

/// `hh:mm:ss.fffffff`, as .NET prints a `TimeSpan` (APIM's `elapsed`).
fn timespan(d: Duration) -> String {
    let s = d.as_secs();
    format!(
        "{:02}:{:02}:{:02}.{:07}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        d.subsec_nanos() / 100
    )
}

impl Inspector {
    pub fn new(started: Instant, token: String) -> Inspector {
        Inspector {
            started,
            token,
            entries: Vec::new(),
            dropped: 0,
        }
    }

    /// Record an entry: `source` (the policy element or a built-in step) and its data.
    pub fn note(&mut self, section: Section, source: &str, mut data: Json) {
        if self.entries.len() >= MAX_ENTRIES {
            self.dropped += 1;
            return;
        }
        let elapsed = self.started.elapsed();
        if let Json::Object(m) = &mut data {
            m.insert("elapsed".into(), Json::String(timespan(elapsed)));
        }
        let entry = json!({
            "source": source,
            "timestamp": crate::expr::datetime::DateTime::now_utc().format("o"),
            "elapsed": timespan(elapsed),
            "data": data,
        });
        self.entries.push((section, entry));
    }

    /// The whole trace as APIM's document: `traceEntries` by section, in order.
    pub fn render(&self, request_id: &str, status: u16) -> Json {
        let mut by = serde_json::Map::new();
        for s in [
            Section::Inbound,
            Section::Backend,
            Section::Outbound,
            Section::OnError,
        ] {
            let list: Vec<Json> = self
                .entries
                .iter()
                .filter(|(sec, _)| *sec == s)
                .map(|(_, e)| e.clone())
                .collect();
            if !list.is_empty() {
                by.insert(s.name().to_string(), Json::Array(list));
            }
        }
        json!({
            "traceId": self.token,
            "requestId": request_id,
            "responseStatus": status,
            "elapsed": timespan(self.started.elapsed()),
            "droppedEntries": self.dropped,
            "traceEntries": by,
        })
    }
}
