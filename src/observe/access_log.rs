//! One JSON line per request: who asked (subscription id, never the key), what matched, who
//! produced the response, and where the time went.

use std::cell::RefCell;
use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::config::AccessLogTarget;
use crate::observe::metrics;

/// A key as `Json::key` writes it: `"name":`.
macro_rules! key {
    ($k:literal) => {
        concat!("\"", $k, "\":")
    };
}

#[derive(Default)]
pub struct Producer<'a> {
    /// `backend` or `gateway`.
    pub kind: &'a str,
    /// For gateway responses: the policy element or built-in step.
    pub policy: Option<&'a str>,
    pub policy_id: Option<&'a str>,
    pub section: Option<&'a str>,
    pub scope: Option<&'a str>,
}

/// One request's line. Written by `Entry::write_json` (fields in this order; `None` is `null`
/// unless the field says it is left out).
pub struct Entry<'a> {
    /// Seconds since the Unix epoch.
    pub ts: Duration,
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub api: Option<&'a str>,
    pub operation: Option<&'a str>,
    pub product: Option<&'a str>,
    pub subscription: Option<&'a str>,
    pub client: Option<Addr<'a>>,
    pub produced_by: Producer<'a>,
    /// Left out when `None`.
    pub error: Option<&'a str>,
    /// Left out when empty.
    pub traces: Vec<TraceLine<'a>>,
    pub duration: Duration,
    pub backend: Option<Duration>,
    /// The shared store was unreachable (its failure mode applied). Left out when false.
    pub store_degraded: bool,
    /// The W3C trace id (`correlation.trace_context`). Left out when `None`.
    pub trace_id: Option<String>,
    pub host: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// Body bytes read from and sent to the client.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Where the last upstream call went (`ip:port`, else the backend URL's authority).
    pub upstream: Option<Addr<'a>>,
    /// The backend entity or pool member that took the last call.
    pub backend_id: Option<&'a str>,
    /// Calls sent upstream (0 when the gateway answered; above 1 with retries or redirects).
    pub upstream_attempts: u32,
}

/// An address in the log. An IP socket address (the usual case) is written without `fmt`.
#[derive(Clone, Copy)]
pub enum Addr<'a> {
    Inet(std::net::SocketAddr),
    Other(&'a dyn std::fmt::Display),
}

pub struct TraceLine<'a> {
    pub source: &'a str,
    pub severity: &'a str,
    pub message: &'a str,
}

impl Entry<'_> {
    /// The line as JSON (no newline). Written by hand rather than through serde: this runs for
    /// every request, and the generic serializer cost more than the rest of logging together.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut j = Json::new(out);
        j.key(key!("ts"));
        j.seconds(self.ts);
        j.field(key!("request_id"), self.request_id);
        j.field(key!("method"), self.method);
        j.field(key!("path"), self.path);
        j.key(key!("status"));
        j.int(u64::from(self.status));
        j.opt_str(key!("api"), self.api);
        j.opt_str(key!("operation"), self.operation);
        j.opt_str(key!("product"), self.product);
        j.opt_str(key!("subscription"), self.subscription);
        j.opt_addr(key!("client"), self.client);
        j.key(key!("produced_by"));
        {
            let p = &self.produced_by;
            let mut o = j.object();
            o.field(key!("kind"), p.kind);
            for (k, v) in [
                (key!("policy"), p.policy),
                (key!("policy_id"), p.policy_id),
                (key!("section"), p.section),
                (key!("scope"), p.scope),
            ] {
                if let Some(v) = v {
                    o.key(k);
                    o.str(v);
                }
            }
            o.end();
        }
        if let Some(e) = self.error {
            j.field(key!("error"), e);
        }
        if !self.traces.is_empty() {
            j.key(key!("traces"));
            j.out.push(b'[');
            for (i, t) in self.traces.iter().enumerate() {
                if i > 0 {
                    j.out.push(b',');
                }
                let mut o = j.object();
                o.field(key!("source"), t.source);
                o.field(key!("severity"), t.severity);
                o.field(key!("message"), t.message);
                o.end();
            }
            j.out.push(b']');
        }
        j.key(key!("duration_ms"));
        j.millis(self.duration);
        j.key(key!("backend_ms"));
        match self.backend {
            Some(d) => j.millis(d),
            None => j.null(),
        }
        if self.store_degraded {
            j.key(key!("store_degraded"));
            j.out.extend_from_slice(b"true");
        }
        if let Some(t) = &self.trace_id {
            j.field(key!("trace_id"), t);
        }
        j.opt_str(key!("host"), self.host);
        j.opt_str(key!("user_agent"), self.user_agent);
        j.key(key!("bytes_in"));
        j.int(self.bytes_in);
        j.key(key!("bytes_out"));
        j.int(self.bytes_out);
        j.opt_addr(key!("upstream"), self.upstream);
        j.opt_str(key!("backend"), self.backend_id);
        j.key(key!("upstream_attempts"));
        j.int(u64::from(self.upstream_attempts));
        j.end();
    }
}

/// A JSON object being written into a byte buffer.
struct Json<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Json<'o> {
    fn new(out: &'o mut Vec<u8>) -> Json<'o> {
        out.push(b'{');
        Json { out, first: true }
    }

    fn object(&mut self) -> Json<'_> {
        Json::new(self.out)
    }

    fn end(self) {
        self.out.push(b'}');
    }

    /// `k` is a key as written, quotes and colon included (`key!`): this module's constants,
    /// nothing to escape.
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(k.as_bytes());
    }

    fn null(&mut self) {
        self.out.extend_from_slice(b"null");
    }

    fn str(&mut self, s: &str) {
        escape_into(self.out, s);
    }

    fn field(&mut self, k: &str, v: &str) {
        self.key(k);
        self.str(v);
    }

    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        self.key(k);
        match v {
            Some(v) => self.str(v),
            None => self.null(),
        }
    }

    fn opt_addr(&mut self, k: &str, v: Option<Addr>) {
        self.key(k);
        match v {
            Some(Addr::Inet(std::net::SocketAddr::V4(a))) => {
                self.out.push(b'"');
                for (i, o) in a.ip().octets().into_iter().enumerate() {
                    if i > 0 {
                        self.out.push(b'.');
                    }
                    self.int(u64::from(o));
                }
                self.out.push(b':');
                self.int(u64::from(a.port()));
                self.out.push(b'"');
            }
            Some(Addr::Inet(a)) => self.display(&a),
            Some(Addr::Other(d)) => self.display(d),
            None => self.null(),
        }
    }

    fn display(&mut self, v: &dyn std::fmt::Display) {
        let mut text = String::new();
        let _ = std::fmt::write(&mut text, format_args!("{v}"));
        self.str(&text);
    }

    fn int(&mut self, n: u64) {
        if n < 10 {
            self.out.push(b'0' + n as u8);
            return;
        }
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.out.extend_from_slice(&digits[i..]);
    }

    /// `seconds.micros` (6 decimals).
    fn seconds(&mut self, d: Duration) {
        self.int(d.as_secs());
        self.fraction(u64::from(d.subsec_micros()), 6);
    }

    /// Milliseconds with 3 decimals (microsecond resolution).
    fn millis(&mut self, d: Duration) {
        let micros = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.int(micros / 1000);
        self.fraction(micros % 1000, 3);
    }

    fn fraction(&mut self, n: u64, width: u32) {
        self.out.push(b'.');
        let mut div = 10u64.pow(width - 1);
        while div > 0 {
            self.out.push(b'0' + ((n / div) % 10) as u8);
            div /= 10;
        }
    }
}

/// Whether no byte of `bytes` needs escaping: eight bytes at a time (a byte below 0x20, `"` or
/// `\\` in a word sets its high bit in `hits`), then byte by byte for the rest.
fn all_plain(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Non-zero iff some byte of `x` is zero (the classic test: a borrow only starts at a zero
    // byte, so it cannot make the whole word non-zero by itself).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_ne_bytes(w);
        // Bytes below 0x20: their top three bits are zero.
        let control = zero(x & u64::from_ne_bytes([0xe0; 8]));
        let quote = zero(x ^ u64::from_ne_bytes([b'"'; 8]));
        let backslash = zero(x ^ u64::from_ne_bytes([b'\\'; 8]));
        if control | quote | backslash != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// `s` as a JSON string: `"` and `\` escaped, control characters as `\n`-style or `\u00XX`
/// escapes; everything else (UTF-8 included) as it is.
fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let plain = |b: u8| b >= 0x20 && b != b'"' && b != b'\\';
    if all_plain(bytes) {
        out.extend_from_slice(bytes);
    } else {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut from = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if plain(b) {
                continue;
            }
            out.extend_from_slice(&bytes[from..i]);
            from = i + 1;
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                _ => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]),
            }
        }
        out.extend_from_slice(&bytes[from..]);
    }
    out.push(b'"');
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
    /// The writer's own (stdout, stderr) buffers; held while `flush` writes, so lines are
    /// written in the order they were logged.
    writing: Mutex<(Vec<u8>, Vec<u8>)>,
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
            writing: Mutex::new((Vec::new(), Vec::new())),
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
        // The writer's buffers: swapped with the pending ones, so neither side grows a new
        // buffer for every batch.
        let mut spare = self.writing.lock();
        let (out, err) = &mut *spare;
        {
            let mut p = self.pending.lock();
            std::mem::swap(&mut p.stdout, out);
            std::mem::swap(&mut p.stderr, err);
        }
        if !out.is_empty() {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(out);
            let _ = o.flush();
        }
        if !err.is_empty() {
            let _ = std::io::stderr().lock().write_all(err);
        }
        for b in [out, err] {
            b.clear();
            // After a burst, do not keep megabytes for the quiet that follows.
            if b.capacity() > 1 << 20 {
                *b = Vec::new();
            }
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
        entry.write_json(line);
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
    fn a_line_is_json_whatever_its_strings_hold() {
        let hostile = "q\"uo\\te\r\n\t\u{1}\u{1f}\u{7f} é 😀 </script>";
        let client = Addr::Inet(std::net::SocketAddr::from(([127, 0, 0, 1], 4711)));
        let authority: &dyn std::fmt::Display = &"backend.example:8443";
        let entry = Entry {
            ts: Duration::new(1_796_315_953, 605_933_123),
            request_id: "id",
            method: "GET",
            path: hostile,
            status: 404,
            api: None,
            operation: Some("op"),
            product: None,
            subscription: None,
            client: Some(client),
            produced_by: Producer {
                kind: "gateway",
                policy: Some("return-response"),
                ..Producer::default()
            },
            error: Some(hostile),
            traces: vec![TraceLine {
                source: "s",
                severity: "information",
                message: hostile,
            }],
            duration: Duration::from_micros(2_287_355),
            backend: Some(Duration::from_nanos(999)),
            store_degraded: true,
            trace_id: None,
            host: Some(hostile),
            user_agent: None,
            bytes_in: 0,
            bytes_out: u64::MAX,
            upstream: Some(Addr::Other(authority)),
            backend_id: None,
            upstream_attempts: 0,
        };
        let mut out = Vec::new();
        entry.write_json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
        assert_eq!(v["path"], hostile);
        assert_eq!(v["error"], hostile);
        assert_eq!(v["host"], hostile);
        assert_eq!(v["traces"][0]["message"], hostile);
        assert_eq!(v["ts"].as_f64(), Some(1_796_315_953.605_933));
        assert_eq!(v["duration_ms"].as_f64(), Some(2_287.355));
        assert_eq!(v["backend_ms"].as_f64(), Some(0.0));
        assert_eq!(v["status"], 404);
        assert_eq!(v["bytes_out"], u64::MAX);
        assert_eq!(v["client"], "127.0.0.1:4711");
        assert!(v["api"].is_null() && v["product"].is_null());
        assert_eq!(v["upstream"], "backend.example:8443");
        assert_eq!(
            v["produced_by"],
            serde_json::json!({"kind": "gateway", "policy": "return-response"})
        );
        assert_eq!(v["store_degraded"], true);
        assert!(v.get("trace_id").is_none());
        // No raw control character is left in the line (one line per request).
        assert!(
            !out.iter().any(|&b| b < 0x20),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn every_byte_that_needs_escaping_is_found_at_every_position() {
        let reference = |s: &[u8]| s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
        for len in [0, 1, 7, 8, 9, 16, 17] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    assert_eq!(all_plain(&s), reference(&s), "byte {b:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn addresses_are_written_as_their_display() {
        for a in [
            "10.1.2.3:80",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "[::1]:8080",
        ] {
            let Ok(sa) = a.parse::<std::net::SocketAddr>() else {
                panic!("{a}")
            };
            let mut out = Vec::new();
            let mut j = Json::new(&mut out);
            j.opt_addr(key!("a"), Some(Addr::Inet(sa)));
            j.end();
            assert_eq!(String::from_utf8_lossy(&out), format!("{{\"a\":\"{sa}\"}}"));
        }
    }

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
