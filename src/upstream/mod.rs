//! Backend entities at run time: which member of a pool takes a call, whether a backend is
//! available (circuit breaker, active health), and what a call's outcome does to the breaker.
//! The state lives in `BackendState`, shared across configuration reloads for a backend whose
//! id and rules did not change.

pub mod backend;
pub mod breaker;
pub mod health;
pub mod pool;
pub mod shared;
pub mod tunnel;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::observe::metrics;
pub use backend::{Backend, Certificates, ClientCert};
pub use breaker::{Admit, Breaker, Outcome, Rule};
pub use pool::Pool;

pub enum Kind {
    Single,
    Pool(Pool),
}

/// Run-time state of one backend.
pub struct BackendState {
    /// False while the active health check says so.
    pub healthy: AtomicBool,
    pub breaker: Option<Breaker>,
    pub metrics: metrics::BackendMetrics,
}

impl BackendState {
    pub fn new(id: &str, rule: Option<Rule>) -> Arc<BackendState> {
        let breaker = rule.map(|r| {
            let id = id.to_string();
            Breaker::new(
                r,
                Box::new(move |s, open_for| {
                    match open_for {
                        Some(d) => log::warn!(
                            "backend `{id}`: circuit breaker tripped, open for {:.1}s",
                            d.as_secs_f64()
                        ),
                        None => log::warn!("backend `{id}`: circuit breaker {}", s.name()),
                    }
                    if let Some(m) = metrics::get() {
                        let v = match s {
                            breaker::State::Closed => 0,
                            breaker::State::Open => 1,
                            breaker::State::HalfOpen => 2,
                        };
                        m.breaker_state.with_label_values(&[&id]).set(v);
                        m.breaker_transitions
                            .with_label_values(&[&id, s.name()])
                            .inc();
                    }
                }),
            )
        });
        Arc::new(BackendState {
            healthy: AtomicBool::new(true),
            breaker,
            metrics: Default::default(),
        })
    }

    pub fn available(&self) -> bool {
        self.healthy.load(Ordering::Acquire) && self.breaker.as_ref().is_none_or(|b| b.available())
    }

    fn admit(&self) -> Admit {
        if !self.healthy.load(Ordering::Acquire) {
            return Admit::No;
        }
        self.breaker.as_ref().map_or(Admit::Yes, |b| b.admit())
    }
}

/// The backend that takes one call, and how the breaker admitted it.
#[derive(Clone, Copy, Debug)]
pub struct Pick {
    pub backend: usize,
    pub admit: Admit,
}

/// Resolve a backend entity (single or pool) to the backend that takes this call. `None`: none
/// is available (circuit open, unhealthy, or every pool member so); the caller answers 503.
pub fn choose(backends: &[Backend], backend: usize) -> Option<Pick> {
    choose_except(backends, backend, &[])
}

/// `choose`, never picking a pool member in `except` (members this request already tried).
pub fn choose_except(backends: &[Backend], backend: usize, except: &[usize]) -> Option<Pick> {
    let b = &backends[backend];
    match &b.kind {
        Kind::Single => match b.state.admit() {
            Admit::No => None,
            admit => Some(Pick { backend, admit }),
        },
        Kind::Pool(p) => {
            // A member can become unavailable between the pick and the admission (another
            // request took the half-open probe): pick again without it, so a priority pool
            // moves on to the next member instead of asking the same one again.
            let mut refused: smallvec::SmallVec<[usize; 4]> = smallvec::SmallVec::new();
            for _ in 0..p.size() {
                let m = p.pick(&|m| {
                    !except.contains(&m) && !refused.contains(&m) && backends[m].state.available()
                })?;
                #[cfg(test)]
                tests::between_pick_and_admit(m);
                match backends[m].state.admit() {
                    Admit::No => refused.push(m),
                    admit => return Some(Pick { backend: m, admit }),
                }
            }
            None
        }
    }
}

/// The soonest an open circuit of `backend` (or of a pool member) lets a call through; `None`
/// when no open circuit explains the unavailability (unhealthy members, no breaker).
pub fn reopens_in(backends: &[Backend], backend: usize) -> Option<std::time::Duration> {
    let of = |m: usize| {
        let s = &backends[m].state;
        s.breaker.as_ref().and_then(|b| b.reopens_in())
    };
    match &backends[backend].kind {
        Kind::Single => of(backend),
        Kind::Pool(p) => p
            .groups
            .iter()
            .flat_map(|g| g.members.iter())
            .filter_map(|&m| of(m))
            .min(),
    }
}

/// Report a call's outcome to the picked backend's breaker and metrics; `elapsed` from sending
/// the call.
pub fn record(backends: &[Backend], pick: Pick, outcome: Outcome, elapsed: Option<Duration>) {
    let b = &backends[pick.backend];
    let status = match outcome {
        Outcome::Status { status, .. } => Ok(status),
        Outcome::Error(reason) => Err(reason),
    };
    b.state
        .metrics
        .record(&b.id, status, elapsed.map(|d| d.as_secs_f64()));
    if let Some(br) = &b.state.breaker {
        br.record(pick.admit, outcome);
    }
}

/// Count a 503 for lack of an available backend.
pub fn note_unavailable(backends: &[Backend], backend: usize) {
    if let Some(m) = metrics::get() {
        m.backend_unavailable
            .with_label_values(&[&backends[backend].id])
            .inc();
    }
}

/// Keep breaker and health state across a reload for backends whose id, breaker rule and
/// health check are unchanged.
pub fn carry_over(old: &[Backend], new: &mut [Backend]) {
    for b in new.iter_mut() {
        let Some(prev) = old.iter().find(|p| p.id == b.id) else {
            continue;
        };
        let same_rule = match (&prev.state.breaker, &b.state.breaker) {
            (Some(x), Some(y)) => x.rule == y.rule,
            (None, None) => true,
            _ => false,
        };
        if same_rule && prev.health == b.health && prev.url == b.url {
            b.state = prev.state.clone();
        }
    }
}

/// The breaker's `Retry-After` for a failing response.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| breaker::parse_retry_after(v.as_bytes()))
}

pub use crate::net::proxy::ForwardProxy;

/// Address a plain-HTTP request to a forward proxy: the absolute-form target
/// `http://{authority}{path_and_query}` and, with credentials, `Proxy-Authorization`.
pub fn absolute_form(
    proxy: &ForwardProxy,
    req: &mut pingora::http::RequestHeader,
    authority: &str,
    path_and_query: &str,
) -> pingora::Result<()> {
    req.set_raw_path(format!("http://{authority}{path_and_query}").as_bytes())?;
    if let Some(a) = &proxy.authorization {
        req.insert_header(http::header::PROXY_AUTHORIZATION, a.clone())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// What another request does between this one's pick and its admission.
    type Race = Option<Box<dyn Fn(usize)>>;

    thread_local! {
        static RACE: RefCell<Race> = RefCell::new(None);
    }

    pub(super) fn between_pick_and_admit(m: usize) {
        RACE.with(|r| {
            if let Some(f) = r.borrow().as_ref() {
                f(m)
            }
        });
    }

    fn backend(id: &str, kind: Kind, rule: Option<Rule>) -> Backend {
        Backend {
            id: id.into(),
            url: Arc::new(
                crate::net::url::BaseUrl::parse("http://127.0.0.1:9")
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            headers: Vec::new(),
            query: Vec::new(),
            authorization: None,
            verify_cert: true,
            verify_hostname: true,
            sni: String::new(),
            connect_timeout: Duration::from_secs(1),
            timeout: None,
            keepalive_timeout: Duration::from_secs(1),
            kind,
            state: BackendState::new(id, rule),
            health: None,
            ca: None,
            client_cert: None,
            proxy: None,
        }
    }

    fn breaker_rule() -> Rule {
        Rule {
            name: "r".into(),
            count: Some(1),
            percentage: None,
            interval: Duration::from_secs(10),
            status_ranges: vec![(500, 599)],
            error_reasons: Vec::new(),
            trip_duration: Duration::from_millis(1),
            accept_retry_after: false,
            half_open: true,
            shared: false,
        }
    }

    /// Issue 12, item 9: a member whose half-open probe another request takes between this
    /// request's pick and its admission must not turn the pool's answer into 503 while another
    /// member is healthy; the pick moves on to the next member.
    #[test]
    fn a_member_lost_between_pick_and_admission_moves_the_pick_on() {
        let pool = Pool {
            groups: vec![
                pool::Group::new(1, vec![1], vec![1]),
                pool::Group::new(2, vec![2], vec![1]),
            ],
        };
        let backends = vec![
            backend("p", Kind::Pool(pool), None),
            backend("a", Kind::Single, Some(breaker_rule())),
            backend("b", Kind::Single, None),
        ];
        // Trip a's breaker; once its 1 ms trip ends, a is available for one probe.
        let a = backends[1]
            .state
            .breaker
            .as_ref()
            .unwrap_or_else(|| panic!("a breaker"));
        a.record(
            Admit::Yes,
            Outcome::Status {
                status: 503,
                retry_after: None,
            },
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(backends[1].state.available());
        // Another request takes a's probe right after this one picked a.
        let a_state = backends[1].state.clone();
        RACE.with(|r| {
            *r.borrow_mut() = Some(Box::new(move |m| {
                if m == 1 {
                    let _ = a_state.admit();
                }
            }))
        });
        let pick = choose(&backends, 0);
        RACE.with(|r| *r.borrow_mut() = None);
        assert_eq!(
            pick.map(|p| p.backend),
            Some(2),
            "the healthy member b takes the call"
        );
    }
}
