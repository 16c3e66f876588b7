//! Backend entities at run time: which member of a pool takes a call, whether a backend is
//! available (circuit breaker, active health), and what a call's outcome does to the breaker.
//! The state lives in `BackendState`, shared across configuration reloads for a backend whose
//! id and rules did not change.

pub mod breaker;
pub mod health;
pub mod pool;
pub mod tunnel;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::Gateway;
use crate::observe::metrics;
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
pub fn choose(gw: &Gateway, backend: usize) -> Option<Pick> {
    choose_except(gw, backend, &[])
}

/// `choose`, never picking a pool member in `except` (members this request already tried).
pub fn choose_except(gw: &Gateway, backend: usize, except: &[usize]) -> Option<Pick> {
    let b = &gw.backends[backend];
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
                    !except.contains(&m)
                        && !refused.contains(&m)
                        && gw.backends[m].state.available()
                })?;
                match gw.backends[m].state.admit() {
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
fn reopens_in(gw: &Gateway, backend: usize) -> Option<std::time::Duration> {
    let of = |m: usize| {
        let s = &gw.backends[m].state;
        s.breaker.as_ref().and_then(|b| b.reopens_in())
    };
    match &gw.backends[backend].kind {
        Kind::Single => of(backend),
        Kind::Pool(p) => p
            .groups
            .iter()
            .flat_map(|g| g.members.iter())
            .filter_map(|&m| of(m))
            .min(),
    }
}

/// Report a call's outcome to the picked backend's breaker.
pub fn record(gw: &Gateway, pick: Pick, outcome: Outcome) {
    if let Some(b) = &gw.backends[pick.backend].state.breaker {
        b.record(pick.admit, outcome);
    }
}

/// Count a 503 for lack of an available backend.
pub fn note_unavailable(gw: &Gateway, backend: usize) {
    if let Some(m) = metrics::get() {
        m.backend_unavailable
            .with_label_values(&[&gw.backends[backend].id])
            .inc();
    }
}

/// Keep breaker and health state across a reload for backends whose id, breaker rule and
/// health check are unchanged.
pub fn carry_over(old: &Gateway, new: &mut Gateway) {
    for b in &mut new.backends {
        let Some((_, prev)) = old.backend(&b.id) else {
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

/// Resolve the request's backend entity before it is sent: the member that takes this call
/// (a pool member's URL becomes the request's base), or 503 `BackendUnavailable`.
#[allow(clippy::result_large_err)]
pub fn select(
    gw: &Gateway,
    req: &mut crate::exec::ReqState,
    except: &[usize],
) -> Result<Option<Pick>, crate::exec::PolicyError> {
    let Some(b) = req.target.backend else {
        return Ok(None);
    };
    match choose_except(gw, b, except) {
        Some(p) => {
            if gw.backends[b].is_pool() {
                req.target.base = gw.backends[p.backend].url.clone();
            }
            Ok(Some(p))
        }
        None => {
            note_unavailable(gw, b);

            let what = if gw.backends[b].is_pool() {
                "every member of pool"
            } else {
                "backend"
            };
            let mut e = crate::exec::PolicyError::builtin(
                crate::exec::ErrorKind::BackendUnavailable,
                "forward-request",
                format!(
                    "{what} `{}` is unavailable (circuit open or unhealthy)",
                    gw.backends[b].id
                ),
            );
            // When open circuits are why, say when the first of them lets a call through.
            if let Some(d) = reopens_in(gw, b) {
                e.detail = Some(crate::exec::error::LimitDetail {
                    message: crate::exec::ErrorKind::BackendUnavailable
                        .client_message()
                        .unwrap_or_default()
                        .to_string(),
                    retry_after_secs: d.as_millis().div_ceil(1000).max(1) as u64,
                    retry_after_header: Some(http::header::RETRY_AFTER),
                    status: None,
                });
            }
            Err(e)
        }
    }
}

/// An HTTP forward proxy: requests go to it in absolute form (`GET http://host/path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardProxy {
    pub host: String,
    pub port: u16,
    /// `Proxy-Authorization: Basic ...` when a user name is given.
    pub authorization: Option<http::HeaderValue>,
}

impl ForwardProxy {
    /// Parse `http://host:port` with optional credentials. Plain HTTP goes to the proxy in
    /// absolute form; HTTPS goes through a CONNECT tunnel (`tunnel.rs`).
    pub fn parse(
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<ForwardProxy, String> {
        let u = url::Url::parse(url).map_err(|e| format!("invalid proxy URL {url:?}: {e}"))?;
        if u.scheme() != "http" {
            return Err(format!("proxy URL {url:?} must be http://host:port"));
        }
        let host = u
            .host_str()
            .ok_or_else(|| format!("proxy URL {url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let authorization = match username {
            Some(user) => {
                use base64::Engine;
                let raw = format!("{user}:{}", password.unwrap_or(""));
                let v = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                );
                Some(
                    http::HeaderValue::from_str(&v)
                        .map_err(|_| "invalid proxy credentials".to_string())?,
                )
            }
            None => None,
        };
        Ok(ForwardProxy {
            host,
            port: u.port_or_known_default().unwrap_or(80),
            authorization,
        })
    }

    /// Address a plain-HTTP request to the proxy: the absolute-form target
    /// `http://{authority}{path_and_query}` and, with credentials, `Proxy-Authorization`.
    pub fn absolute_form(
        &self,
        req: &mut pingora::http::RequestHeader,
        authority: &str,
        path_and_query: &str,
    ) -> pingora::Result<()> {
        req.set_raw_path(format!("http://{authority}{path_and_query}").as_bytes())?;
        if let Some(a) = &self.authorization {
            req.insert_header(http::header::PROXY_AUTHORIZATION, a.clone())?;
        }
        Ok(())
    }

    pub async fn resolve(&self) -> Option<std::net::SocketAddr> {
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .ok()
            .and_then(|mut a| a.next())
    }
}
