//! One JSON line per request: who asked (subscription id, never the key), what matched, who
//! produced the response, and where the time went.

use std::cell::RefCell;
use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use serde::Serialize;

use crate::config::AccessLogTarget;
use crate::observe::metrics;

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

/// How long the writer waits after the first line of a batch before it writes the batch: lines
/// reach stdout at most this late, and a busy gateway makes one `write` per batch, not per line.
const BATCH_WINDOW: Duration = Duration::from_millis(10);

/// Lines held while the writer cannot keep up (a blocked stdout pipe): past this, new lines are
/// dropped and counted (`gatehouse_access_log_dropped_total`) rather than held without bound or
/// allowed to stall requests.
const MAX_PENDING: usize = 8 << 20;

/// Lines waiting for the writer thread, per stream.
struct Pending {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }
}

struct Sink {
    pending: Mutex<Pending>,
    /// Signalled when a line lands in an empty batch (once per batch, not per line).
    wake: Condvar,
    /// Set while `flush` writes, so lines are written in the order they were logged.
    writing: Mutex<()>,
}

static SINK: OnceLock<Option<Sink>> = OnceLock::new();

thread_local! {
    /// Each worker serialises its line here, outside the lock.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn sink() -> Option<&'static Sink> {
    SINK.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(|| {
                // Runs once `SINK` holds the sink built below.
                if let Some(sink) = SINK.wait() {
                    sink.run();
                }
            });
        match spawned {
            Ok(_) => Some(Sink::new()),
            Err(e) => {
                log::error!("cannot start the access-log writer ({e}); lines are written in place");
                None
            }
        }
    })
    .as_ref()
}

impl Sink {
    fn new() -> Sink {
        Sink {
            pending: Mutex::new(Pending {
                stdout: Vec::new(),
                stderr: Vec::new(),
            }),
            wake: Condvar::new(),
            writing: Mutex::new(()),
        }
    }

    /// The writer thread: sleeps until a batch starts, lets it fill for `BATCH_WINDOW`, writes it.
    fn run(&self) {
        loop {
            {
                let mut p = self.pending.lock();
                while p.is_empty() {
                    self.wake.wait(&mut p);
                }
            }
            std::thread::sleep(BATCH_WINDOW);
            self.flush();
        }
    }

    /// Write what is pending now (the writer's batches, and once more at exit).
    fn flush(&self) {
        let _order = self.writing.lock();
        let (out, err) = {
            let mut p = self.pending.lock();
            (std::mem::take(&mut p.stdout), std::mem::take(&mut p.stderr))
        };
        if !out.is_empty() {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&out);
            let _ = o.flush();
        }
        if !err.is_empty() {
            let _ = std::io::stderr().lock().write_all(&err);
        }
    }

    fn push(&self, target: AccessLogTarget, line: &[u8]) {
        let mut p = self.pending.lock();
        let was_empty = p.is_empty();
        let buf = match target {
            AccessLogTarget::Stderr => &mut p.stderr,
            _ => &mut p.stdout,
        };
        if buf.len() + line.len() > MAX_PENDING {
            drop(p);
            if let Some(m) = metrics::get() {
                m.access_log_dropped.inc();
            }
            return;
        }
        buf.extend_from_slice(line);
        drop(p);
        if was_empty {
            self.wake.notify_one();
        }
    }
}

/// Queue one access-log line. It is serialised here (on the request's thread) and written by the
/// `access-log` thread in batches, so a request never waits for a `write` to stdout.
pub fn write(target: AccessLogTarget, entry: &Entry) {
    if target == AccessLogTarget::Off {
        return;
    }
    LINE.with_borrow_mut(|line| {
        line.clear();
        if serde_json::to_writer(&mut *line, entry).is_err() {
            return;
        }
        line.push(b'\n');
        match sink() {
            Some(s) => s.push(target, line),
            None => match target {
                AccessLogTarget::Stderr => {
                    let _ = std::io::stderr().lock().write_all(line);
                }
                _ => {
                    let _ = std::io::stdout().lock().write_all(line);
                }
            },
        }
        // A rare huge line (many traces) does not keep its buffer for the thread's life.
        if line.capacity() > 64 << 10 {
            *line = Vec::new();
        }
    });
}

/// Write the lines still queued; called when the server has stopped, before the process exits.
pub fn flush() {
    if let Some(s) = SINK.get().and_then(Option::as_ref) {
        s.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_a_stalled_writer_has_not_taken_are_bounded_and_counted() {
        let sink = Sink::new();
        let line = [b'x'; 1000];
        let dropped = || metrics::get().map_or(0, |m| m.access_log_dropped.get());
        let before = dropped();
        for _ in 0..(MAX_PENDING / line.len() + 100) {
            sink.push(AccessLogTarget::Stdout, &line);
        }
        let held = sink.pending.lock().stdout.len();
        assert!(
            held <= MAX_PENDING && held > MAX_PENDING - line.len(),
            "{held}"
        );
        assert!(dropped() - before >= 100, "{}", dropped() - before);
        // The other stream has its own bound.
        sink.push(AccessLogTarget::Stderr, &line);
        assert_eq!(sink.pending.lock().stderr.len(), line.len());
    }
}
