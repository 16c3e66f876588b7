//! APIM circuit breaker, one rule per backend (apim-reference.md §4.3). Failures are counted in
//! a sliding interval of ten buckets; reaching `count` failures (or `percentage` of the calls)
//! trips the circuit for `trip_duration`, or for the backend's `Retry-After` when
//! `accept_retry_after` is set. After the trip one probe request goes through (half-open); its
//! outcome closes the circuit or trips it again. Everything is kept in atomics: the request path
//! takes no lock.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::*};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BUCKETS: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub count: Option<u32>,
    pub percentage: Option<u32>,
    pub interval: Duration,
    /// Inclusive status ranges that count as failures.
    pub status_ranges: Vec<(u16, u16)>,
    /// Error Reasons (`BackendConnectionFailure`, `Timeout`, ...) that count as failures;
    /// compared case-insensitively, other strings never match.
    pub error_reasons: Vec<String>,
    pub trip_duration: Duration,
    pub accept_retry_after: bool,
    pub half_open: bool,
    /// Trips are published to, and read from, the shared store (`upstream::shared`).
    pub shared: bool,
}

/// What one call to the backend came to.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    Error(&'a str),
}

impl Rule {
    pub fn is_failure(&self, o: &Outcome) -> bool {
        match o {
            Outcome::Status { status, .. } => self
                .status_ranges
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(status)),
            Outcome::Error(reason) => self
                .error_reasons
                .iter()
                .any(|r| r.eq_ignore_ascii_case(reason)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }
}

/// Whether a request may go to the backend now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// The one half-open probe: its outcome decides.
    Probe,
    No,
}

struct Bucket {
    epoch: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
}

pub struct Breaker {
    pub rule: Rule,
    state: AtomicU8,
    /// Milliseconds (process clock) until which an open circuit stays open.
    open_until: AtomicU64,
    probe: AtomicBool,
    probe_started: AtomicU64,
    /// Until when (process ms) this instance's own last trip holds, and how much of that was
    /// published to the other instances (`rule.shared`).
    local_until: AtomicU64,
    published_until: AtomicU64,
    buckets: [Bucket; BUCKETS],
    /// Called with (new state, open for) on every transition: logs and metrics.
    on_change: Box<dyn Fn(State, Option<Duration>) + Send + Sync>,
}

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Breaker {
    pub fn new(rule: Rule, on_change: Box<dyn Fn(State, Option<Duration>) + Send + Sync>) -> Self {
        Breaker {
            rule,
            state: AtomicU8::new(0),
            open_until: AtomicU64::new(0),
            probe: AtomicBool::new(false),
            probe_started: AtomicU64::new(0),
            local_until: AtomicU64::new(0),
            published_until: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| Bucket {
                epoch: AtomicU64::new(0),
                calls: AtomicU32::new(0),
                failures: AtomicU32::new(0),
            }),
            on_change,
        }
    }

    /// While the circuit is open: how long until it lets a probe through.
    pub fn reopens_in(&self) -> Option<Duration> {
        if self.state() != State::Open {
            return None;
        }
        let until = self.open_until.load(Acquire);
        let now = now_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }

    pub fn state(&self) -> State {
        match self.state.load(Acquire) {
            0 => State::Closed,
            1 => State::Open,
            _ => State::HalfOpen,
        }
    }

    fn bucket_ms(&self) -> u64 {
        (self.rule.interval.as_millis() as u64 / BUCKETS as u64).max(1)
    }

    /// The probe slot is free, or its holder has been gone for longer than a trip (a client
    /// that disconnected never reports).
    fn probe_free(&self, now: u64) -> bool {
        !self.probe.load(Acquire)
            || now.saturating_sub(self.probe_started.load(Acquire))
                > self.rule.trip_duration.as_millis() as u64
    }

    /// Whether the backend would take a request now (no side effects; for pool selection).
    pub fn available(&self) -> bool {
        match self.state() {
            State::Closed => true,
            State::Open | State::HalfOpen => {
                let now = now_ms();
                now >= self.open_until.load(Acquire)
                    && (!self.rule.half_open || self.probe_free(now))
            }
        }
    }

    /// Admit a request: closed circuits admit everything; an expired open circuit admits one
    /// probe (or closes, without half-open).
    pub fn admit(&self) -> Admit {
        if self.state() == State::Closed {
            return Admit::Yes;
        }
        let now = now_ms();
        if now < self.open_until.load(Acquire) {
            return Admit::No;
        }
        if !self.rule.half_open {
            self.close();
            return Admit::Yes;
        }
        if !self.probe_free(now) {
            return Admit::No;
        }
        let held = self.probe.load(Acquire);
        if self
            .probe
            .compare_exchange(held, true, AcqRel, Acquire)
            .is_err()
        {
            return Admit::No;
        }
        self.probe_started.store(now, Release);
        if self.state.swap(2, AcqRel) != 2 {
            (self.on_change)(State::HalfOpen, None);
        }
        Admit::Probe
    }

    fn close(&self) {
        for b in &self.buckets {
            b.calls.store(0, Relaxed);
            b.failures.store(0, Relaxed);
        }
        self.probe.store(false, Release);
        if self.state.swap(0, AcqRel) != 0 {
            (self.on_change)(State::Closed, None);
        }
    }

    /// A trip of this instance's not yet told to the others: how long it still holds.
    pub fn unpublished_trip(&self) -> Option<Duration> {
        let until = self.local_until.load(Acquire);
        let now = now_ms();
        if until <= now || self.published_until.swap(until, AcqRel) == until {
            return None;
        }
        Some(Duration::from_millis(until - now))
    }

    /// Open the circuit because another instance tripped it: for `d`, unless it is already
    /// open at least that long. Returns whether it opened (or stayed open longer) here.
    pub fn trip_remote(&self, d: Duration) -> bool {
        let until = now_ms() + d.as_millis() as u64;
        if self.state() == State::Open && self.open_until.load(Acquire) >= until {
            return false;
        }
        self.open_until.store(until, Release);
        self.probe.store(false, Release);
        if self.state.swap(1, AcqRel) != 1 {
            (self.on_change)(State::Open, Some(d));
        }
        true
    }

    fn trip(&self, retry_after: Option<Duration>) {
        let d = match retry_after {
            Some(r) if self.rule.accept_retry_after => r,
            _ => self.rule.trip_duration,
        };
        let until = now_ms() + d.as_millis() as u64;
        self.open_until.store(until, Release);
        self.local_until.store(until, Release);
        self.probe.store(false, Release);
        let was = self.state.swap(1, AcqRel);
        if was != 1 {
            (self.on_change)(State::Open, Some(d));
        }
    }

    /// Record the outcome of a call admitted with `admit`.
    pub fn record(&self, admitted: Admit, o: Outcome) {
        let failure = self.rule.is_failure(&o);
        let retry_after = match o {
            Outcome::Status { retry_after, .. } => retry_after,
            Outcome::Error(_) => None,
        };
        if admitted == Admit::Probe {
            if failure {
                self.trip(retry_after);
            } else {
                self.close();
            }
            return;
        }
        if self.state() != State::Closed {
            // A call admitted before the trip finishing late: it neither trips again nor closes.
            return;
        }
        let now = now_ms();
        let epoch = now / self.bucket_ms();
        let b = &self.buckets[(epoch % BUCKETS as u64) as usize];
        let old = b.epoch.load(Acquire);
        if old != epoch
            && b.epoch
                .compare_exchange(old, epoch, AcqRel, Acquire)
                .is_ok()
        {
            b.calls.store(0, Relaxed);
            b.failures.store(0, Relaxed);
        }
        b.calls.fetch_add(1, Relaxed);
        if !failure {
            return;
        }
        b.failures.fetch_add(1, Relaxed);
        let (mut calls, mut failures) = (0u64, 0u64);
        for b in &self.buckets {
            if epoch.saturating_sub(b.epoch.load(Acquire)) < BUCKETS as u64 {
                calls += u64::from(b.calls.load(Relaxed));
                failures += u64::from(b.failures.load(Relaxed));
            }
        }
        let by_count = self.rule.count.is_some_and(|c| failures >= u64::from(c));
        let by_pct = self
            .rule
            .percentage
            .is_some_and(|p| calls > 0 && failures * 100 >= u64::from(p) * calls);
        if by_count || by_pct {
            self.trip(retry_after);
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(v: &[u8]) -> Option<Duration> {
    let s = std::str::from_utf8(v).ok()?.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let t = httpdate::parse_http_date(s).ok()?;
    Some(
        t.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(count: Option<u32>, pct: Option<u32>) -> Rule {
        Rule {
            name: "r".into(),
            count,
            percentage: pct,
            interval: Duration::from_secs(10),
            status_ranges: vec![(500, 599)],
            error_reasons: vec!["BackendConnectionFailure".into()],
            trip_duration: Duration::from_millis(200),
            accept_retry_after: true,
            half_open: true,
            shared: false,
        }
    }

    fn st(status: u16) -> Outcome<'static> {
        Outcome::Status {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn trips_at_count_and_probes_after_the_trip() {
        let b = Breaker::new(rule(Some(3), None), Box::new(|_, _| {}));
        for _ in 0..2 {
            assert_eq!(b.admit(), Admit::Yes);
            b.record(Admit::Yes, st(503));
        }
        b.record(Admit::Yes, st(200));
        assert_eq!(b.state(), State::Closed);
        b.record(Admit::Yes, Outcome::Error("backendconnectionfailure"));
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.admit(), Admit::No);
        assert!(!b.available());
        std::thread::sleep(Duration::from_millis(250));
        assert!(b.available());
        assert_eq!(b.admit(), Admit::Probe);
        // Only one probe at a time.
        assert_eq!(b.admit(), Admit::No);
        b.record(Admit::Probe, st(500));
        assert_eq!(b.state(), State::Open);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(b.admit(), Admit::Probe);
        b.record(Admit::Probe, st(200));
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.admit(), Admit::Yes);
    }

    #[test]
    fn percentage_and_retry_after() {
        let b = Breaker::new(rule(None, Some(50)), Box::new(|_, _| {}));
        b.record(Admit::Yes, st(200));
        b.record(Admit::Yes, st(200));
        b.record(Admit::Yes, st(500));
        assert_eq!(b.state(), State::Closed);
        b.record(
            Admit::Yes,
            Outcome::Status {
                status: 503,
                retry_after: Some(Duration::from_secs(60)),
            },
        );
        assert_eq!(b.state(), State::Open);
        std::thread::sleep(Duration::from_millis(250));
        // Retry-After (60 s) replaced the 200 ms trip.
        assert_eq!(b.admit(), Admit::No);
    }

    #[test]
    fn unknown_reasons_and_other_statuses_are_not_failures() {
        let r = rule(Some(1), None);
        assert!(!r.is_failure(&Outcome::Error("Server errors")));
        assert!(!r.is_failure(&st(429)));
        assert!(r.is_failure(&st(599)));
        assert_eq!(parse_retry_after(b" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(b"soon"), None);
    }
}
