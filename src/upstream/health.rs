//! Active health checks, run as a Pingora background service. Each checked backend gets a
//! `pingora-load-balancing` `LoadBalancer` over its one address with an `HttpHealthCheck` or
//! `TcpHealthCheck`; the library applies the consecutive pass/fail thresholds and this service
//! copies the result into the backend's `BackendState::healthy`, logging and exporting changes.
//! The set of checked backends follows configuration reloads.

use crate::diag::Invalid;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::lb::health_check::{HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::prelude::*;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::Backend;
use super::BackendState;
use crate::net::url::BaseUrl;
use crate::observe::metrics;

/// A backend's health check, as compiled from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSpec {
    pub tcp: bool,
    pub path: String,
    /// Statuses that pass; empty = 200 only.
    pub expected: Vec<u16>,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: usize,
    pub unhealthy_threshold: usize,
}

struct Probe {
    spec: HealthSpec,
    url: BaseUrl,
    state: Arc<BackendState>,
    lb: Arc<LoadBalancer<RoundRobin>>,
    next: Instant,
    running: Arc<AtomicBool>,
}

/// The backends of the configuration in force (the service follows reloads through it).
pub type CurrentBackends = Box<dyn Fn() -> Arc<dyn AsRef<[Backend]> + Send + Sync> + Send + Sync>;

pub struct HealthService {
    pub backends: CurrentBackends,
}

/// How often the service looks for due checks and configuration changes.
const TICK: Duration = Duration::from_millis(100);

#[async_trait]
impl BackgroundService for HealthService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut probes: HashMap<String, Probe> = HashMap::new();
        let mut unresolved: HashMap<String, Instant> = HashMap::new();
        loop {
            let current = (self.backends)();
            reconcile((*current).as_ref(), &mut probes, &mut unresolved).await;
            let now = Instant::now();
            for (id, p) in probes.iter_mut() {
                if p.next > now || p.running.swap(true, Ordering::AcqRel) {
                    continue;
                }
                p.next = now + p.spec.interval;
                let (lb, state, running, id) =
                    (p.lb.clone(), p.state.clone(), p.running.clone(), id.clone());
                tokio::spawn(async move {
                    lb.backends().run_health_check(false).await;
                    let ready = lb
                        .backends()
                        .get_backend()
                        .iter()
                        .next()
                        .is_some_and(|b| lb.backends().ready(b));
                    publish(&id, &state, ready);
                    running.store(false, Ordering::Release);
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => break,
            }
        }
    }
}

fn publish(id: &str, state: &BackendState, healthy: bool) {
    let was = state.healthy.swap(healthy, Ordering::AcqRel);
    if let Some(m) = metrics::get() {
        m.backend_healthy
            .with_label_values(&[id])
            .set(i64::from(healthy));
        if was != healthy {
            let h = if healthy { "healthy" } else { "unhealthy" };
            m.health_transitions.with_label_values(&[id, h]).inc();
        }
    }
    if was != healthy {
        if healthy {
            log::info!("backend `{id}`: health check passes again; back in service");
        } else {
            log::warn!("backend `{id}`: health check failing; out of service");
        }
    }
}

/// Add checks for new backends, rebuild changed ones, drop removed ones.
async fn reconcile(
    backends: &[Backend],
    probes: &mut HashMap<String, Probe>,
    unresolved: &mut HashMap<String, Instant>,
) {
    probes.retain(|id, p| {
        backends.iter().any(|b| {
            &b.id == id
                && b.health.as_ref() == Some(&p.spec)
                && *b.url == p.url
                && Arc::ptr_eq(&b.state, &p.state)
        })
    });
    for b in backends {
        // A pool's check is applied to its members (at compile time), not to the pool.
        let Some(spec) = b.health.as_ref().filter(|_| !b.is_pool()) else {
            continue;
        };
        if probes.contains_key(&b.id) || unresolved.get(&b.id).is_some_and(|t| *t > Instant::now())
        {
            continue;
        }
        match build(b, spec).await {
            Ok(lb) => {
                unresolved.remove(&b.id);
                probes.insert(
                    b.id.clone(),
                    Probe {
                        spec: spec.clone(),
                        url: (*b.url).clone(),
                        state: b.state.clone(),
                        lb: Arc::new(lb),
                        next: Instant::now(),
                        running: Arc::new(AtomicBool::new(false)),
                    },
                );
            }
            Err(e) => {
                // Unresolvable now: not checked (and not marked down); tried again after one
                // check interval, logged once until it resolves.
                let first = unresolved
                    .insert(b.id.clone(), Instant::now() + spec.interval)
                    .is_none();
                if first {
                    log::warn!("backend `{}`: health check not started: {e}", b.id);
                }
            }
        }
    }
}

async fn build(b: &Backend, spec: &HealthSpec) -> Result<LoadBalancer<RoundRobin>, Invalid> {
    // Through a forward proxy the check goes where the traffic goes: to the proxy, which
    // tunnels (TCP checks, HTTPS) or forwards in absolute form (HTTP).
    let addr = match &b.proxy {
        Some(p) => p.resolve().await,
        None => tokio::net::lookup_host((b.url.host_bare(), b.url.port))
            .await
            .ok()
            .and_then(|mut a| a.next()),
    }
    .ok_or_else(|| match &b.proxy {
        Some(p) => format!("cannot resolve proxy {}", p.host),
        None => format!("cannot resolve {}", b.url.host_bare()),
    })?;
    let mut lb =
        LoadBalancer::<RoundRobin>::try_from_iter([addr]).map_err(|e| Invalid(e.to_string()))?;
    let check: Box<dyn pingora::lb::health_check::HealthCheck + Send + Sync> = if spec.tcp {
        let mut hc = if b.url.tls {
            TcpHealthCheck::new_tls(&b.sni)
        } else {
            TcpHealthCheck::new()
        };
        hc.consecutive_success = spec.healthy_threshold;
        hc.consecutive_failure = spec.unhealthy_threshold;
        hc.peer_template.options.connection_timeout = Some(spec.timeout);
        hc.peer_template.options.total_connection_timeout = Some(spec.timeout);
        if let Some(p) = &b.proxy {
            let t = super::tunnel::Tunnel::new(p, b.url.host_bare(), b.url.port, spec.timeout);
            hc.peer_template.options.custom_l4 = Some(t);
        }
        hc
    } else {
        let mut hc = HttpHealthCheck::new(&b.url.authority, b.url.tls);
        hc.consecutive_success = spec.healthy_threshold;
        hc.consecutive_failure = spec.unhealthy_threshold;
        hc.peer_template.sni = b.sni.clone();
        hc.peer_template.options.connection_timeout = Some(spec.timeout);
        hc.peer_template.options.read_timeout = Some(spec.timeout);
        hc.peer_template.options.write_timeout = Some(spec.timeout);
        hc.peer_template.options.verify_cert = b.verify_cert;
        hc.peer_template.options.verify_hostname = b.verify_hostname;
        hc.peer_template.options.ca = b.ca.clone();
        hc.peer_template.client_cert_key = b.client_cert.clone();
        if let Some(p) = b.proxy.as_ref().filter(|_| b.url.tls) {
            super::tunnel::Tunnel::apply(
                p,
                &mut hc.peer_template,
                b.url.host_bare(),
                b.url.port,
                spec.timeout,
            );
        }
        let mut path = b.url.path.clone();
        path.push_str(&spec.path);
        let mut req = RequestHeader::build("GET", path.as_bytes(), None)
            .map_err(|e| crate::invalid!("health check path {:?}: {e}", spec.path))?;
        if let Some(p) = b.proxy.as_ref().filter(|_| !b.url.tls) {
            crate::upstream::absolute_form(p, &mut req, &b.url.authority, &path)
                .map_err(|e| Invalid(e.to_string()))?;
        }
        req.insert_header(http::header::HOST, b.url.authority.as_str())
            .map_err(|e| Invalid(e.to_string()))?;
        req.insert_header(http::header::USER_AGENT, "gatehouse-health-check")
            .map_err(|e| Invalid(e.to_string()))?;
        hc.req = req;
        let expected = spec.expected.clone();
        hc.validator = Some(Box::new(move |resp: &ResponseHeader| {
            let s = resp.status.as_u16();
            let ok = if expected.is_empty() {
                s == 200
            } else {
                expected.contains(&s)
            };
            if ok {
                Ok(())
            } else {
                Error::e_explain(
                    pingora::ErrorType::CustomCode("unexpected health check status", s),
                    "health check",
                )
            }
        }));
        Box::new(hc)
    };
    lb.set_health_check(check);
    Ok(lb)
}
