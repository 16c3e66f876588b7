//! Finished request traces (`exec::inspector`), kept for a while for the client that asked for
//! one to fetch at the URL of its `Ocp-Apim-Trace-Location`. Bounded: the oldest go first, and
//! every trace expires.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Traces kept at once.
pub const CAPACITY: usize = 64;
/// How long a trace can be fetched.
pub const TTL: Duration = Duration::from_secs(15 * 60);
/// Largest rendered trace kept; a larger one is cut to a note saying so.
pub const MAX_TRACE_BYTES: usize = 512 * 1024;

pub enum Lookup {
    Ready(Bytes),
    /// The request is still running.
    Pending,
    Missing,
}

#[derive(Default)]
pub struct TraceStore {
    items: Mutex<VecDeque<(String, Instant, Option<Bytes>)>>,
}

impl TraceStore {
    fn with<T>(&self, f: impl FnOnce(&mut VecDeque<(String, Instant, Option<Bytes>)>) -> T) -> T {
        let mut q = match self.items.lock() {
            Ok(q) => q,
            Err(p) => p.into_inner(),
        };
        while q.front().is_some_and(|(_, t, _)| t.elapsed() > TTL) {
            q.pop_front();
        }
        f(&mut q)
    }

    /// A trace is being recorded under `token`.
    pub fn reserve(&self, token: &str) {
        self.with(|q| {
            if q.len() >= CAPACITY {
                q.pop_front();
            }
            q.push_back((token.to_string(), Instant::now(), None));
        });
    }

    /// The finished trace.
    pub fn put(&self, token: &str, trace: Bytes) {
        let trace = if trace.len() > MAX_TRACE_BYTES {
            Bytes::from(format!(
                "{{\"error\":\"the trace has {} bytes, above the {MAX_TRACE_BYTES} kept\"}}",
                trace.len()
            ))
        } else {
            trace
        };
        self.with(|q| {
            if let Some(e) = q.iter_mut().find(|(t, _, _)| t == token) {
                e.2 = Some(trace);
            }
        });
    }

    pub fn get(&self, token: &str) -> Lookup {
        self.with(|q| match q.iter().find(|(t, _, _)| t == token) {
            Some((_, _, Some(b))) => Lookup::Ready(b.clone()),
            Some((_, _, None)) => Lookup::Pending,
            None => Lookup::Missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_pending_until_put() {
        let s = TraceStore::default();
        s.reserve("a");
        assert!(matches!(s.get("a"), Lookup::Pending));
        s.put("a", Bytes::from_static(b"{}"));
        assert!(matches!(s.get("a"), Lookup::Ready(_)));
        for i in 0..CAPACITY {
            s.reserve(&i.to_string());
        }
        assert!(
            matches!(s.get("a"), Lookup::Missing),
            "the oldest went first"
        );
        assert!(matches!(s.get("nope"), Lookup::Missing));
    }
}
