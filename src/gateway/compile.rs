//! `compile`: configuration + policy documents -> an immutable `Gateway`, with every problem
//! collected (never only the first).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ahash::AHashMap;
use http::{HeaderName, HeaderValue, Method};

use super::*;
use crate::config::{self, LoadedConfig, NamedValue};
use crate::diag::{Diagnostics, Span};
use crate::policy::compose::{self, Fragments};
use crate::policy::parse::{self, Env};
use crate::policy::{self, BackendTarget, PolicyDoc, Scope, Section, Stmt, StmtKind, Val};
use crate::upstream;

/// Policy documents found on disk, keyed by what they apply to.
struct PolicySet {
    global: PolicyDoc,
    products: AHashMap<String, PolicyDoc>,
    apis: AHashMap<String, PolicyDoc>,
    operations: AHashMap<(String, String), PolicyDoc>,
}

/// Compile a loaded configuration. On success, warnings come back with the gateway.
/// No diagnostic shows a secret named value's value: each is masked as `***`.
pub fn compile(cfg: &LoadedConfig) -> Result<(Gateway, Diagnostics), Diagnostics> {
    let mut secrets = Vec::new();
    let result = compile_unmasked(cfg, &mut secrets);
    match result {
        Ok((gw, mut w)) => {
            w.mask_secrets(&secrets);
            Ok((gw, w))
        }
        Err(mut d) => {
            d.mask_secrets(&secrets);
            Err(d)
        }
    }
}

/// `compile`, leaving the values of the secret named values in `secrets` (read once, here).
fn compile_unmasked(
    cfg: &LoadedConfig,
    secrets: &mut Vec<String>,
) -> Result<(Gateway, Diagnostics), Diagnostics> {
    let mut d = Diagnostics::new();
    check_listeners(cfg, &mut d);
    let named = config::resolve_named_values(cfg, &mut d);
    secrets.extend(named.values().filter(|v| v.secret).map(|v| v.value.clone()));
    let policy_dir = clean_path(&cfg.dir.join(&cfg.raw.policies.dir));
    let (backends, backend_ids) = compile_backends(cfg, &named, &mut d);
    let mut api_index: AHashMap<&str, usize> = AHashMap::new();
    let mut seen: AHashMap<&str, usize> = AHashMap::new();
    for (i, a) in cfg.raw.apis.iter().enumerate() {
        let n = seen.entry(&a.id).or_insert(0);
        if *n > 0 {
            d.error(
                "C020",
                cfg.locate_nth("id", &a.id, *n),
                format!("duplicate API id `{}`", a.id),
            );
        } else {
            api_index.insert(&a.id, i);
        }
        *n += 1;
    }
    let products = compile_products(cfg, &api_index, &mut d);
    let set = load_policies(cfg, &policy_dir, &named, &products, &mut d);

    let global_on_error: Arc<[Stmt]> = compose::compose(&[&set.global], Section::OnError).into();
    let mut apis = Vec::new();
    for (ai, spec) in cfg.raw.apis.iter().enumerate() {
        if let Some(api) = compile_api(
            cfg,
            ai,
            spec,
            &set,
            &products,
            &backends,
            &backend_ids,
            &mut d,
        ) {
            apis.push(api);
        }
    }
    let subscriptions = compile_subscriptions(cfg, &api_index, &products, &mut d);
    let (certificates, thumbprints, certificate_x509) = compile_certificates(cfg, &mut d);
    let mut trusted_proxies = Vec::new();
    for t in &cfg.raw.client_identity.trusted_proxies {
        match crate::net::cidr::parse(t) {
            Ok(c) => trusted_proxies.push(c),
            Err(e) => d.error(
                "C039",
                cfg.locate(None, "trusted_proxies", t),
                format!("client_identity.trusted_proxies: {e}"),
            ),
        }
    }
    check_certificate_refs(&apis, &certificates, &thumbprints, &mut d);
    if d.has_errors() {
        return Err(d.sorted());
    }
    let (api_index, root_apis) = super::index_apis(&apis);
    let gw = Gateway {
        name: cfg.raw.name.clone(),
        api_index,
        root_apis,
        apis,
        backends,
        backend_ids,
        products,
        subscriptions,
        global_on_error,
        certificates,
        thumbprints,
        trusted_proxies,
        forwarded_headers: cfg.raw.client_identity.forwarded_headers,
        certificate_x509,
        limits: super::Limits {
            max_url_length: cfg.raw.limits.max_url_length,
            max_headers: cfg.raw.limits.max_headers,
            max_header_bytes: cfg.raw.limits.max_header_bytes,
            max_body_bytes: cfg.raw.limits.max_body_bytes,
            header_read_timeout: cfg.raw.limits.header_read_timeout.0,
            keepalive_timeout: cfg.raw.limits.keepalive_timeout.0,
            body_read_timeout: cfg.raw.limits.body_read_timeout.0,
        },
        secrets: secrets.clone(),
        jwt: super::JwtSettings {
            keys_refresh: cfg.raw.jwt.keys_refresh.0,
            min_refetch: cfg.raw.jwt.min_refetch.0,
            azure_ad_authority: cfg
                .raw
                .jwt
                .azure_ad_authority
                .trim_end_matches('/')
                .to_string(),
        },
    };
    Ok((gw, d.sorted()))
}

type Certificates = (
    upstream::Certificates,
    AHashMap<String, String>,
    AHashMap<String, openssl::x509::X509>,
);

/// The `certificates` section: PEM certificate (and key) files, read at load.
fn compile_certificates(cfg: &LoadedConfig, d: &mut Diagnostics) -> Certificates {
    let (mut by_id, mut thumbs, mut x509) = (AHashMap::new(), AHashMap::new(), AHashMap::new());
    for c in &cfg.raw.certificates {
        let span = cfg.locate(None, "id", &c.id);
        if x509.contains_key(&c.id) {
            d.error("C037", span, format!("duplicate certificate id `{}`", c.id));
            continue;
        }
        let read = |f: &str, d: &mut Diagnostics| {
            let path = cfg.dir.join(f);
            std::fs::read(&path)
                .map_err(|e| {
                    d.error(
                        "C037",
                        span.clone(),
                        format!(
                            "certificate `{}`: cannot read {}: {e}",
                            c.id,
                            path.display()
                        ),
                    )
                })
                .ok()
        };
        let Some(cert) = read(&c.cert_file, d) else {
            continue;
        };
        let certs = openssl::x509::X509::stack_from_pem(&cert).unwrap_or_default();
        let Some(first) = certs.first().cloned() else {
            d.error(
                "C037",
                span.clone(),
                format!(
                    "certificate `{}`: {} holds no PEM certificate",
                    c.id, c.cert_file
                ),
            );
            continue;
        };
        if let Ok(digest) = first.digest(openssl::hash::MessageDigest::sha1()) {
            let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
            thumbs.insert(hex, c.id.clone());
        }
        x509.insert(c.id.clone(), first);
        let Some(key_file) = &c.key_file else {
            continue;
        };
        let Some(key) = read(key_file, d) else {
            continue;
        };
        match openssl::pkey::PKey::private_key_from_pem(&key) {
            Ok(key) => {
                by_id.insert(c.id.clone(), upstream::backend::client_cert(certs, key));
            }
            Err(_) => d.error(
                "C037",
                span.clone(),
                format!(
                    "certificate `{}`: {key_file} is not a PEM private key",
                    c.id
                ),
            ),
        }
    }
    (by_id, thumbs, x509)
}

/// Every `authentication-certificate` must name a configured certificate.
fn check_certificate_refs(
    apis: &[Api],
    certificates: &upstream::Certificates,
    thumbprints: &AHashMap<String, String>,
    d: &mut Diagnostics,
) {
    use crate::policy::ast::CertificateRef;
    fn walk(stmts: &[Stmt], f: &mut dyn FnMut(&Stmt)) {
        for s in stmts {
            f(s);
            for c in s.children() {
                walk(std::slice::from_ref(c), f);
            }
        }
    }
    let mut reported = std::collections::HashSet::new();
    for p in apis
        .iter()
        .flat_map(|a| a.operations.iter())
        .flat_map(|o| o.pipelines.iter())
    {
        for stmts in [
            &p.inbound,
            &p.backend_pre,
            &p.backend_post,
            &p.outbound,
            &p.on_error,
        ] {
            walk(stmts, &mut |s| {
                let cert = match &s.kind {
                    StmtKind::SendRequest(r) => r.certificate.as_ref(),
                    StmtKind::AuthenticationCertificate(c) => Some(c),
                    _ => return,
                };
                let known = match cert {
                    None => true,
                    Some(CertificateRef::Id(id)) => certificates.contains_key(id),
                    Some(CertificateRef::Thumbprint(t)) => thumbprints
                        .get(t)
                        .is_some_and(|id| certificates.contains_key(id)),
                };
                if !known && reported.insert(s.span.to_string()) {
                    d.error(
                        "P048",
                        s.span.clone(),
                        format!(
                            "<{}> names a certificate that is not configured under `certificates`",
                            s.element
                        ),
                    );
                }
            });
        }
    }
}

/// Listener and admin addresses must parse; TLS files must exist.
fn check_listeners(cfg: &LoadedConfig, d: &mut Diagnostics) {
    if cfg.raw.listeners.is_empty() {
        d.error("C003", cfg.file_span(), "at least one listener is needed");
    }
    for l in &cfg.raw.listeners {
        if l.address.parse::<std::net::SocketAddr>().is_err() {
            d.error(
                "C004",
                cfg.locate(None, "address", &l.address),
                format!("listener address {:?} must be ip:port", l.address),
            );
        }
        if l.max_connections == 0 {
            d.error(
                "C056",
                cfg.locate_nth("max_connections", "0", 0),
                "`max_connections` must be at least 1",
            );
        }
        if let Some(tls) = &l.tls {
            for f in [&tls.cert, &tls.key] {
                if !cfg.dir.join(f).is_file() {
                    d.error(
                        "C005",
                        cfg.locate(None, "", f),
                        format!(
                            "TLS file {f:?} not found (relative to {})",
                            cfg.dir.display()
                        ),
                    );
                }
            }
        }
    }
    let lim = &cfg.raw.limits;
    for (name, t) in [
        ("header_read_timeout", lim.header_read_timeout),
        ("keepalive_timeout", lim.keepalive_timeout),
        ("body_read_timeout", lim.body_read_timeout),
    ] {
        if t.0.is_zero() {
            d.error(
                "C056",
                cfg.locate_nth(name, "", 0),
                format!("`limits.{name}` must be more than 0"),
            );
        }
    }
    let st = &cfg.raw.store;
    match (st.r#type, &st.url) {
        (crate::config::StoreType::Redis, None) => d.error(
            "C006",
            cfg.locate(None, "type", "redis"),
            "store type redis needs `url` (redis://host:port)",
        ),
        (crate::config::StoreType::Redis, Some(u)) if redis::Client::open(u.as_str()).is_err() => d
            .error(
                "C006",
                cfg.locate(None, "url", u),
                format!("invalid Redis URL {u:?}"),
            ),
        _ => {}
    }
    let admin = &cfg.raw.admin.address;
    if !admin.is_empty() && admin.parse::<std::net::SocketAddr>().is_err() {
        d.error(
            "C004",
            cfg.locate(None, "address", admin),
            format!("admin address {admin:?} must be ip:port"),
        );
    }
}

fn compile_backends(
    cfg: &LoadedConfig,
    named: &AHashMap<String, NamedValue>,
    d: &mut Diagnostics,
) -> (Vec<Backend>, AHashMap<String, usize>) {
    use crate::config::BackendKind;
    let mut out = Vec::new();
    let mut ids = AHashMap::new();
    // Pools refer to other backends by id: every backend gets its index first.
    let mut specs = Vec::new();
    for b in &cfg.raw.backends {
        let span = cfg.locate(None, "id", &b.id);
        if ids.contains_key(&b.id) {
            d.error(
                "C030",
                span.clone(),
                format!("duplicate backend id `{}`", b.id),
            );
            continue;
        }
        ids.insert(b.id.clone(), specs.len());
        specs.push(b);
    }
    for b in &specs {
        let span = cfg.locate(None, "id", &b.id);
        let is_pool = b.kind == BackendKind::Pool;
        let url = if is_pool && b.url.is_empty() {
            BaseUrl::default()
        } else {
            match BaseUrl::parse(&b.url) {
                Ok(u) => u,
                Err(e) => {
                    d.error(
                        "C031",
                        cfg.locate(Some(&b.id), "url", &b.url),
                        format!("backend `{}`: {e}", b.id),
                    );
                    BaseUrl::default()
                }
            }
        };
        let env = Env {
            named,
            scope: Scope::Global,
        };
        let sub = |v: &str, d: &mut Diagnostics| parse::substitute(v, &span, &env, d);
        let mut headers = Vec::new();
        for (name, values) in &b.credentials.headers {
            let Ok(n) = HeaderName::from_bytes(name.as_bytes()) else {
                d.error(
                    "C032",
                    span.clone(),
                    format!(
                        "backend `{}`: invalid credential header name {name:?}",
                        b.id
                    ),
                );
                continue;
            };
            for v in values {
                match HeaderValue::from_str(&sub(v, d)) {
                    Ok(hv) => headers.push((n.clone(), hv)),
                    Err(_) => d.error(
                        "C032",
                        span.clone(),
                        format!(
                            "backend `{}`: invalid value for credential header {name}",
                            b.id
                        ),
                    ),
                }
            }
        }
        let mut query = Vec::new();
        for (name, values) in &b.credentials.query {
            for v in values {
                query.push((name.clone(), sub(v, d)));
            }
        }
        let authorization = b.credentials.authorization.as_ref().and_then(|a| {
            let v = format!("{} {}", a.scheme, sub(&a.parameter, d));
            HeaderValue::from_str(&v)
                .map_err(|_| {
                    d.error(
                        "C032",
                        span.clone(),
                        format!("backend `{}`: invalid authorization credential", b.id),
                    )
                })
                .ok()
        });
        let kind = match (&b.kind, &b.pool) {
            (BackendKind::Single, None) => upstream::Kind::Single,
            (BackendKind::Single, Some(_)) => {
                d.error(
                    "C033",
                    span.clone(),
                    format!("backend `{}` has `pool` but is not `type: pool`", b.id),
                );
                upstream::Kind::Single
            }
            (BackendKind::Pool, None) => {
                d.error(
                    "C033",
                    span.clone(),
                    format!("pool `{}` needs `pool.services`", b.id),
                );
                upstream::Kind::Single
            }
            (BackendKind::Pool, Some(p)) => {
                upstream::Kind::Pool(compile_pool(&b.id, p, &ids, &specs, &span, d))
            }
        };
        let rule = b
            .circuit_breaker
            .as_ref()
            .and_then(|cb| compile_breaker(&b.id, cb, &span, d));
        if is_pool && rule.is_some() {
            d.error(
                "C034",
                span.clone(),
                format!(
                    "pool `{}`: circuit breakers belong to the member backends",
                    b.id
                ),
            );
        }
        let health = b
            .health_check
            .as_ref()
            .and_then(|h| compile_health(&b.id, h, &span, d));
        let (ca, client_cert) = compile_backend_tls(cfg, &b.id, &b.tls, &span, d);
        let proxy = b.proxy.as_ref().and_then(|p| {
            let parsed = upstream::ForwardProxy::parse(
                &sub(&p.url, d),
                p.username.as_deref().map(|u| sub(u, d)).as_deref(),
                p.password.as_deref().map(|u| sub(u, d)).as_deref(),
            );
            match parsed {
                Ok(p) => Some(p),
                Err(e) => {
                    d.error("C038", span.clone(), format!("backend `{}`: {e}", b.id));
                    None
                }
            }
        });
        out.push(Backend {
            id: b.id.clone(),
            sni: b
                .tls
                .sni
                .clone()
                .unwrap_or_else(|| url.host_bare().to_string()),
            url: std::sync::Arc::new(url),
            headers,
            query,
            authorization,
            verify_cert: b.tls.verify_chain,
            verify_hostname: b.tls.verify_name,
            connect_timeout: b
                .connect_timeout
                .map_or(upstream::backend::DEFAULT_CONNECT_TIMEOUT, |t| t.0),
            timeout: b.timeout.map(|t| t.0),
            keepalive_timeout: b
                .keepalive_timeout
                .map_or(upstream::backend::DEFAULT_KEEPALIVE_TIMEOUT, |t| t.0),
            state: upstream::BackendState::new(&b.id, rule),
            kind,
            health,
            ca,
            client_cert,
            proxy,
        });
    }
    // A pool's health check applies to its members that have none; a pool's URL (for
    // `context.Request.Url` before a member is picked) is its first member's.
    for i in 0..out.len() {
        let (health, first) = match &out[i].kind {
            upstream::Kind::Pool(p) => (
                out[i].health.clone(),
                p.groups.first().and_then(|g| g.members.first().copied()),
            ),
            upstream::Kind::Single => continue,
        };
        if let Some(f) = first {
            out[i].url = out[f].url.clone();
        }
        if let (Some(h), upstream::Kind::Pool(p)) = (health, &out[i].kind) {
            let members: Vec<usize> = p.groups.iter().flat_map(|g| g.members.clone()).collect();
            for m in members {
                if out[m].health.is_none() {
                    out[m].health = Some(h.clone());
                }
            }
        }
    }
    (out, ids)
}

/// Most members a pool may have (APIM's limit).
const MAX_POOL_MEMBERS: usize = 30;

fn compile_pool(
    id: &str,
    p: &crate::config::PoolSpec,
    ids: &AHashMap<String, usize>,
    specs: &[&crate::config::BackendSpec],
    span: &crate::diag::Span,
    d: &mut Diagnostics,
) -> upstream::Pool {
    if p.services.is_empty() || p.services.len() > MAX_POOL_MEMBERS {
        d.error(
            "C033",
            span.clone(),
            format!(
                "pool `{id}` has {} members; a pool has 1 to {MAX_POOL_MEMBERS}",
                p.services.len()
            ),
        );
    }
    let mut groups: Vec<(u32, Vec<usize>, Vec<u32>)> = Vec::new();
    for m in &p.services {
        let Some(&i) = ids.get(&m.id) else {
            d.error(
                "C033",
                span.clone(),
                format!("pool `{id}` names unknown backend `{}`", m.id),
            );
            continue;
        };
        if specs[i].kind == crate::config::BackendKind::Pool {
            d.error(
                "C033",
                span.clone(),
                format!(
                    "pool `{id}`: member `{}` is a pool; members must be single backends",
                    m.id
                ),
            );
            continue;
        }
        let weight = m.weight.unwrap_or(1);
        if !(1..=1000).contains(&weight) {
            d.error(
                "C033",
                span.clone(),
                format!(
                    "pool `{id}`: member `{}` has weight {weight}; weights are 1 to 1000",
                    m.id
                ),
            );
            continue;
        }
        let priority = m.priority.unwrap_or(1);
        match groups.iter_mut().find(|g| g.0 == priority) {
            Some(g) => {
                g.1.push(i);
                g.2.push(weight);
            }
            None => groups.push((priority, vec![i], vec![weight])),
        }
    }
    groups.sort_by_key(|g| g.0);
    upstream::Pool {
        groups: groups
            .into_iter()
            .map(|(p, m, w)| upstream::pool::Group::new(p, m, w))
            .collect(),
    }
}

fn compile_breaker(
    id: &str,
    cb: &crate::config::CircuitBreakerSpec,
    span: &crate::diag::Span,
    d: &mut Diagnostics,
) -> Option<upstream::Rule> {
    if cb.rules.len() != 1 {
        d.error(
            "C034",
            span.clone(),
            format!(
                "backend `{id}`: a circuit breaker has exactly one rule (found {})",
                cb.rules.len()
            ),
        );
    }
    let r = cb.rules.first()?;
    let fc = &r.failure_condition;
    if fc.count.is_none() == fc.percentage.is_none() {
        d.error(
            "C034",
            span.clone(),
            format!("backend `{id}`: the failure condition needs exactly one of `count` or `percentage`"),
        );
        return None;
    }
    if fc.percentage.is_some_and(|p| !(1..=100).contains(&p)) || fc.count == Some(0) {
        d.error(
            "C034",
            span.clone(),
            format!("backend `{id}`: `count` must be at least 1 and `percentage` 1 to 100"),
        );
        return None;
    }
    if fc.status_code_ranges.is_empty() && fc.error_reasons.is_empty() {
        d.error(
            "C034",
            span.clone(),
            format!("backend `{id}`: the failure condition needs `status_code_ranges` or `error_reasons`"),
        );
        return None;
    }
    for sr in &fc.status_code_ranges {
        if sr.min > sr.max || !(100..=599).contains(&sr.min) || !(100..=599).contains(&sr.max) {
            d.error(
                "C034",
                span.clone(),
                format!(
                    "backend `{id}`: invalid status code range {}-{}",
                    sr.min, sr.max
                ),
            );
        }
    }
    if fc.interval.0.is_zero() || r.trip_duration.0.is_zero() {
        d.error(
            "C034",
            span.clone(),
            format!("backend `{id}`: `interval` and `trip_duration` must be positive"),
        );
        return None;
    }
    Some(upstream::Rule {
        name: r.name.clone().unwrap_or_default(),
        count: fc.count,
        percentage: fc.percentage,
        interval: fc.interval.0,
        status_ranges: fc
            .status_code_ranges
            .iter()
            .map(|sr| (sr.min, sr.max))
            .collect(),
        error_reasons: fc.error_reasons.clone(),
        trip_duration: r.trip_duration.0,
        accept_retry_after: r.accept_retry_after,
        half_open: r.half_open,
    })
}

fn compile_health(
    id: &str,
    h: &crate::config::HealthCheckSpec,
    span: &crate::diag::Span,
    d: &mut Diagnostics,
) -> Option<upstream::health::HealthSpec> {
    let interval = h.interval.map_or(Duration::from_secs(10), |t| t.0);
    let timeout = h.timeout.map_or(Duration::from_secs(2), |t| t.0);
    if interval < Duration::from_millis(100) || timeout.is_zero() {
        d.error(
            "C035",
            span.clone(),
            format!("backend `{id}`: health check `interval` must be at least 100ms and `timeout` positive"),
        );
        return None;
    }
    if !h.path.starts_with('/') {
        d.error(
            "C035",
            span.clone(),
            format!("backend `{id}`: health check `path` must start with `/`"),
        );
        return None;
    }
    if h.expected_statuses.iter().any(|s| !(100..=599).contains(s)) {
        d.error(
            "C035",
            span.clone(),
            format!("backend `{id}`: health check `expected_statuses` must be HTTP statuses"),
        );
    }
    Some(upstream::health::HealthSpec {
        tcp: h.kind == crate::config::HealthCheckKind::Tcp,
        path: h.path.clone(),
        expected: h.expected_statuses.clone(),
        interval,
        timeout,
        healthy_threshold: h.healthy_threshold.unwrap_or(1).max(1) as usize,
        unhealthy_threshold: h.unhealthy_threshold.unwrap_or(1).max(1) as usize,
    })
}

type BackendTlsFiles = (
    Option<std::sync::Arc<Box<[openssl::x509::X509]>>>,
    Option<upstream::ClientCert>,
);

/// Custom CA and client certificate files of a backend, read and parsed at load.
fn compile_backend_tls(
    cfg: &LoadedConfig,
    id: &str,
    tls: &crate::config::BackendTls,
    span: &crate::diag::Span,
    d: &mut Diagnostics,
) -> BackendTlsFiles {
    let read = |f: &str, d: &mut Diagnostics| -> Option<Vec<u8>> {
        let path = cfg.dir.join(f);
        std::fs::read(&path)
            .map_err(|e| {
                d.error(
                    "C036",
                    span.clone(),
                    format!("backend `{id}`: cannot read {}: {e}", path.display()),
                )
            })
            .ok()
    };
    let ca = tls.ca_file.as_deref().and_then(|f| {
        let pem = read(f, d)?;
        match openssl::x509::X509::stack_from_pem(&pem) {
            Ok(certs) if !certs.is_empty() => Some(std::sync::Arc::new(certs.into_boxed_slice())),
            _ => {
                d.error(
                    "C036",
                    span.clone(),
                    format!("backend `{id}`: {f} holds no PEM certificate"),
                );
                None
            }
        }
    });
    let client = match (&tls.client_cert_file, &tls.client_key_file) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            let (cert, key) = (read(c, d), read(k, d));
            match (cert, key) {
                (Some(cert), Some(key)) => {
                    let certs = openssl::x509::X509::stack_from_pem(&cert).unwrap_or_default();
                    match (
                        certs.is_empty(),
                        openssl::pkey::PKey::private_key_from_pem(&key),
                    ) {
                        (false, Ok(key)) => Some(upstream::backend::client_cert(certs, key)),
                        _ => {
                            d.error(
                                "C036",
                                span.clone(),
                                format!("backend `{id}`: {c} / {k} are not a PEM certificate and private key"),
                            );
                            None
                        }
                    }
                }
                _ => None,
            }
        }
        _ => {
            d.error(
                "C036",
                span.clone(),
                format!("backend `{id}`: `client_cert_file` and `client_key_file` go together"),
            );
            None
        }
    };
    (ca, client)
}

fn compile_products(
    cfg: &LoadedConfig,
    api_index: &AHashMap<&str, usize>,
    d: &mut Diagnostics,
) -> Vec<Product> {
    let mut out: Vec<Product> = Vec::new();
    for p in &cfg.raw.products {
        if out.iter().any(|x| x.id == p.id) {
            d.error(
                "C040",
                cfg.locate(None, "id", &p.id),
                format!("duplicate product id `{}`", p.id),
            );
            continue;
        }
        let mut apis = Vec::new();
        for a in &p.apis {
            match api_index.get(a.as_str()) {
                Some(&i) => apis.push(i),
                None => d.error(
                    "C041",
                    cfg.locate(Some(&p.id), "", a),
                    format!("product `{}` lists unknown API `{a}`", p.id),
                ),
            }
        }
        out.push(Product {
            id: p.id.clone(),
            name: p.name.clone().unwrap_or_else(|| p.id.clone()),
            subscription_required: p.subscription_required,
            state: p.state,
            apis,
        });
    }
    out
}

fn default_global() -> PolicyDoc {
    let mut doc = PolicyDoc::default();
    let fwd = policy::ForwardRequest {
        timeout_ms: None,
        follow_redirects: Val::Lit(false),
        buffer_request_body: false,
        buffer_response: true,
        fail_on_error_status_code: false,
        http_version: policy::HttpVersion::Http1,
    };
    doc.sections[Section::Backend.index()] = Some(vec![Stmt {
        kind: StmtKind::ForwardRequest(fwd),
        element: "forward-request",
        id: None,
        span: Span::file("<default global policy>"),
        scope: Scope::Global,
        display: "<forward-request />".into(),
    }]);
    doc
}

fn load_policies(
    cfg: &LoadedConfig,
    dir: &Path,
    named: &AHashMap<String, NamedValue>,
    products: &[Product],
    d: &mut Diagnostics,
) -> PolicySet {
    // Fragments first: documents include them.
    let mut fragments: Fragments = AHashMap::new();
    for (id, path) in xml_files(&dir.join("fragments")) {
        let env = Env {
            named,
            scope: Scope::Global,
        };
        if let Some(stmts) = policy::load_fragment(&path, &env, d) {
            fragments.insert(id, stmts);
        }
    }
    let load = |path: &Path, scope: Scope, d: &mut Diagnostics| -> Option<PolicyDoc> {
        let env = Env { named, scope };
        let doc = policy::load_document(path, &env, d)?;
        let doc = compose::expand_document(&doc, &fragments, d);
        compose::check_legality(&doc, d);
        Some(doc)
    };
    let global_path = dir.join("global.xml");
    let global = if global_path.exists() {
        load(&global_path, Scope::Global, d).unwrap_or_default()
    } else {
        default_global()
    };
    let mut set = PolicySet {
        global,
        products: AHashMap::new(),
        apis: AHashMap::new(),
        operations: AHashMap::new(),
    };
    for (id, path) in xml_files(&dir.join("products")) {
        if !products.iter().any(|p| p.id == id) {
            d.error(
                "P050",
                Span::file(&path.display().to_string()),
                format!("policy file for unknown product `{id}`"),
            );
            continue;
        }
        if let Some(doc) = load(&path, Scope::Product, d) {
            set.products.insert(id, doc);
        }
    }
    let apis_dir = dir.join("apis");
    for (id, path) in xml_files(&apis_dir) {
        if !cfg.raw.apis.iter().any(|a| a.id == id) {
            d.error(
                "P050",
                Span::file(&path.display().to_string()),
                format!("policy file for unknown API `{id}`"),
            );
            continue;
        }
        if let Some(doc) = load(&path, Scope::Api, d) {
            set.apis.insert(id, doc);
        }
    }
    for api in &cfg.raw.apis {
        for (op, path) in xml_files(&apis_dir.join(&api.id)) {
            if !api.operations.iter().any(|o| o.id == op) {
                d.error(
                    "P050",
                    Span::file(&path.display().to_string()),
                    format!(
                        "policy file for unknown operation `{op}` of API `{}`",
                        api.id
                    ),
                );
                continue;
            }
            if let Some(doc) = load(&path, Scope::Operation, d) {
                set.operations.insert((api.id.clone(), op), doc);
            }
        }
    }
    set
}

/// `(stem, path)` of every `*.xml` in a directory, sorted; a missing directory is empty.
fn xml_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "xml"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p.clone())))
        .collect();
    out.sort();
    out
}

#[allow(clippy::too_many_arguments)]
fn compile_api(
    cfg: &LoadedConfig,
    ai: usize,
    spec: &crate::config::ApiSpec,
    set: &PolicySet,
    products: &[Product],
    backends: &[Backend],
    backend_ids: &AHashMap<String, usize>,
    d: &mut Diagnostics,
) -> Option<Api> {
    let span = cfg.locate(None, "id", &spec.id);
    // Problems with the service are reported, and the operations are still checked.
    let mut ok = true;
    let (service, service_backend) = match (&spec.service_url, &spec.backend) {
        (Some(u), None) => match BaseUrl::parse(u) {
            Ok(b) => (std::sync::Arc::new(b), None),
            Err(e) => {
                d.error(
                    "C021",
                    cfg.locate(Some(&spec.id), "service_url", u),
                    format!("API `{}`: {e}", spec.id),
                );
                ok = false;
                (Default::default(), None)
            }
        },
        (None, Some(b)) => match backend_ids.get(b) {
            Some(&i) => (backends[i].url.clone(), Some(i)),
            None => {
                d.error(
                    "C022",
                    cfg.locate(Some(&spec.id), "backend", b),
                    format!("API `{}` uses unknown backend `{b}`", spec.id),
                );
                ok = false;
                (Default::default(), None)
            }
        },
        _ => {
            d.error(
                "C023",
                span.clone(),
                format!(
                    "API `{}` needs exactly one of `service_url` or `backend`",
                    spec.id
                ),
            );
            ok = false;
            (Default::default(), None)
        }
    };
    let path = normalize_path(&spec.path);
    let key_header = match HeaderName::from_bytes(spec.subscription_key.header.as_bytes()) {
        Ok(h) => h,
        Err(_) => {
            d.error(
                "C024",
                span.clone(),
                format!("API `{}`: invalid subscription key header name", spec.id),
            );
            return None;
        }
    };
    let api_products: Vec<usize> = products
        .iter()
        .enumerate()
        .filter(|(_, p)| p.apis.contains(&ai))
        .map(|(i, _)| i)
        .collect();
    let open: Vec<usize> = api_products
        .iter()
        .copied()
        .filter(|&p| !products[p].subscription_required)
        .collect();
    if open.len() > 1 {
        d.error(
            "C042",
            span.clone(),
            format!(
                "API `{}` is in more than one open product ({}); at most one is allowed",
                spec.id,
                open.iter()
                    .map(|&p| products[p].id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let empty = PolicyDoc::default();
    let api_doc = set.apis.get(&spec.id).unwrap_or(&empty);
    let on_error: Arc<[Stmt]> = compose::compose(&[&set.global, api_doc], Section::OnError).into();

    let mut operations = Vec::new();
    for op in &spec.operations {
        let op_span = cfg.locate(Some(&spec.id), "id", &op.id);
        if operations.iter().any(|o: &Operation| o.id == op.id) {
            d.error(
                "C025",
                op_span.clone(),
                format!("API `{}`: duplicate operation id `{}`", spec.id, op.id),
            );
            continue;
        }
        let method = if op.method == "*" {
            None
        } else {
            match Method::from_bytes(op.method.to_ascii_uppercase().as_bytes()) {
                Ok(m) => Some(m),
                Err(_) => {
                    d.error(
                        "C026",
                        cfg.locate(Some(&op.id), "method", &op.method),
                        format!("operation `{}`: invalid method {:?}", op.id, op.method),
                    );
                    continue;
                }
            }
        };
        let template = match UrlTemplate::parse(&op.url_template) {
            Ok(t) => t,
            Err(e) => {
                d.error(
                    "C027",
                    cfg.locate(Some(&op.id), "url_template", &op.url_template),
                    format!("operation `{}`: {e}", op.id),
                );
                continue;
            }
        };
        let op_doc = set
            .operations
            .get(&(spec.id.clone(), op.id.clone()))
            .unwrap_or(&empty);
        let mut pipelines = vec![Arc::new(build_pipeline(
            &[&set.global, api_doc, op_doc],
            backend_ids,
            d,
        ))];
        for &p in &api_products {
            let prod_doc = set.products.get(&products[p].id).unwrap_or(&empty);
            pipelines.push(Arc::new(build_pipeline(
                &[&set.global, prod_doc, api_doc, op_doc],
                backend_ids,
                d,
            )));
        }
        let examples: Arc<[Example]> = op
            .examples
            .iter()
            .map(|e| Example {
                status: e.status,
                content_type: e.content_type.clone(),
                body: e.body.clone(),
            })
            .collect();
        operations.push(Operation {
            metrics: Default::default(),
            id: op.id.clone(),
            name: op.name.clone().unwrap_or_else(|| op.id.clone()),
            method,
            url_template: op.url_template.clone(),
            template,
            examples,
            pipelines,
        });
    }
    // Most specific template first, so `/users/me` wins over `/users/{id}`.
    operations.sort_by_key(|o| std::cmp::Reverse(o.template.specificity));
    if !ok {
        return None;
    }
    Some(Api {
        id: spec.id.clone(),
        name: spec.name.clone().unwrap_or_else(|| spec.id.clone()),
        path,
        hosts: spec.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        service,
        service_backend,
        subscription_required: spec.subscription_required,
        key_header,
        key_query: spec.subscription_key.query.clone(),
        strip_key: spec.strip_subscription_key,
        operations,
        products: api_products,
        open_product: open.first().copied(),
        on_error,
    })
}

/// Lexically remove `.` and `..` components, so positions print as `policies/x.xml`.
fn clean_path(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn normalize_path(p: &str) -> String {
    let t = p.trim().trim_matches('/');
    if t.is_empty() {
        String::new()
    } else {
        format!("/{t}")
    }
}

/// Compose the four sections over a scope chain and split the backend section at
/// `forward-request`.
pub fn build_pipeline(
    chain: &[&PolicyDoc],
    backend_ids: &AHashMap<String, usize>,
    d: &mut Diagnostics,
) -> Pipeline {
    let mut sections: Vec<Vec<Stmt>> = Vec::new();
    for s in Section::ALL {
        let stmts = compose::compose(chain, s);
        compose::check_composed(s, &stmts, d);
        for st in &stmts {
            if let StmtKind::SetBackendService(BackendTarget::BackendId(Val::Lit(id))) = &st.kind {
                if !backend_ids.is_empty() && !backend_ids.contains_key(id) {
                    d.error(
                        "P043",
                        st.span.clone(),
                        format!("set-backend-service names unknown backend `{id}`"),
                    );
                }
            }
        }
        sections.push(stmts);
    }
    let on_error = sections.pop().unwrap_or_default();
    let outbound = sections.pop().unwrap_or_default();
    let backend = sections.pop().unwrap_or_default();
    let inbound = sections.pop().unwrap_or_default();
    // forward-request inside retry: the engine runs the whole backend section and forwards
    // itself (buffered), so the retry can resend the request and read each response.
    fn forwards_inside_retry(stmts: &[Stmt], in_retry: bool) -> bool {
        stmts.iter().any(|s| match &s.kind {
            StmtKind::ForwardRequest(_) => in_retry,
            StmtKind::Retry(_) => {
                forwards_inside_retry(&s.children().into_iter().cloned().collect::<Vec<_>>(), true)
            }
            _ => forwards_inside_retry(
                &s.children().into_iter().cloned().collect::<Vec<_>>(),
                in_retry,
            ),
        })
    }
    let engine_backend = forwards_inside_retry(&backend, false);
    let (mut pre, mut forward, mut post) = (Vec::new(), None, Vec::new());
    // A limit-concurrency around forward-request: take the slot before forwarding and hold it
    // until the request ends; the statements around forward-request run before / after it.
    let mut flat = Vec::new();
    if engine_backend {
        pre = backend.clone();
    }
    for st in backend.into_iter().filter(|_| !engine_backend) {
        match &st.kind {
            StmtKind::LimitConcurrency { key, max, body }
                if body
                    .iter()
                    .any(|b| matches!(b.kind, StmtKind::ForwardRequest(_))) =>
            {
                let mut acquire = st.clone();
                acquire.kind = StmtKind::AcquireSlot {
                    key: key.clone(),
                    max: *max,
                };
                flat.push(acquire);
                flat.extend(body.iter().cloned());
            }
            _ => flat.push(st),
        }
    }
    for st in flat {
        match (&st.kind, &forward) {
            (StmtKind::ForwardRequest(f), None) => {
                forward = Some(Forward {
                    options: f.clone(),
                    stmt: st.clone(),
                })
            }
            (_, None) => pre.push(st),
            (_, Some(_)) => post.push(st),
        }
    }
    let replaces_request_body = inbound
        .iter()
        .chain(pre.iter())
        .any(|s| matches!(s.kind, StmtKind::SetBody(_)));
    // Which bodies the statements read: decided here, once, not per request.
    let mut needs_request_body = false;
    let mut needs_response_body = false;
    fn walk(stmts: &[Stmt], f: &mut dyn FnMut(&Stmt)) {
        for s in stmts {
            f(s);
            for c in s.children() {
                walk(std::slice::from_ref(c), f);
            }
        }
    }
    let request_side: Vec<&Vec<Stmt>> = vec![&inbound, &pre];
    for stmts in request_side {
        walk(stmts, &mut |s| {
            // find-and-replace edits it; send-request mode="copy" sends a copy of it.
            let copies = matches!(&s.kind, StmtKind::SendRequest(r) if !matches!(&r.copy, Val::Lit(m) if m == "new"));
            if matches!(s.kind, StmtKind::FindAndReplace { .. }) || copies {
                needs_request_body = true;
            }
        });
    }
    for (i, stmts) in [&inbound, &pre, &on_error, &post, &outbound]
        .into_iter()
        .enumerate()
    {
        walk(stmts, &mut |s| {
            s.visit_exprs(&mut |e| {
                needs_request_body |= e.reads_request_body();
                if i >= 3 && forward.is_some() && e.reads_response_body() {
                    needs_response_body = true;
                }
            });
        });
    }
    for stmts in [&post, &outbound] {
        walk(stmts, &mut |s| {
            // find-and-replace edits the response body; cache-store saves it.
            if matches!(
                s.kind,
                StmtKind::FindAndReplace { .. } | StmtKind::CacheStore { .. }
            ) && forward.is_some()
            {
                needs_response_body = true;
            }
        });
    }
    if engine_backend {
        needs_response_body = true;
    }
    let mut has_cors = false;
    walk(&inbound, &mut |s| {
        has_cors |= matches!(s.kind, StmtKind::Cors(_))
    });
    // The buffered forward sends the request body itself, so it reads it first.
    if needs_response_body {
        needs_request_body = true;
    }
    Pipeline {
        inbound,
        backend_pre: pre,
        forward,
        backend_post: post,
        outbound,
        on_error,
        replaces_request_body,
        needs_request_body,
        needs_response_body,
        engine_backend,
        has_cors,
    }
}

fn compile_subscriptions(
    cfg: &LoadedConfig,
    api_index: &AHashMap<&str, usize>,
    products: &[Product],
    d: &mut Diagnostics,
) -> Subscriptions {
    let mut list: Vec<Subscription> = Vec::new();
    let mut seen_digests: AHashMap<[u8; 32], String> = AHashMap::new();
    for s in &cfg.raw.subscriptions {
        let span = cfg.locate(None, "id", &s.id);
        if list.iter().any(|x| x.id == s.id) {
            d.error(
                "C050",
                span.clone(),
                format!("duplicate subscription id `{}`", s.id),
            );
            continue;
        }
        let scope = match s.scope.split_once(':') {
            Some(("product", p)) => products
                .iter()
                .position(|x| x.id == p)
                .map(SubScope::Product),
            Some(("api", a)) => api_index.get(a).map(|&i| SubScope::Api(i)),
            None if s.scope == "all-apis" => Some(SubScope::AllApis),
            None if s.scope == "all-access" => Some(SubScope::AllAccess),
            _ => None,
        };
        let Some(scope) = scope else {
            d.error(
                "C051",
                cfg.locate(Some(&s.id), "scope", &s.scope),
                format!("subscription `{}`: scope {:?} must be product:<id>, api:<id>, all-apis or all-access, naming a configured product or API", s.id, s.scope),
            );
            continue;
        };
        if s.primary_key.is_none() && s.secondary_key.is_none() {
            d.error(
                "C052",
                span.clone(),
                format!(
                    "subscription `{}` needs a primary_key or secondary_key",
                    s.id
                ),
            );
        }
        let mut hashes: [Option<[u8; 32]>; 2] = [None, None];
        for (slot, k) in [&s.primary_key, &s.secondary_key].into_iter().enumerate() {
            let Some(k) = k else { continue };
            let digest = match crate::exec::subscriptions::parse_hashed(k) {
                Some(Ok(d)) => {
                    hashes[slot] = Some(d);
                    d
                }
                Some(Err(e)) => {
                    d.error(
                        "C053",
                        span.clone(),
                        format!("subscription `{}`: {e}", s.id),
                    );
                    continue;
                }
                None => crate::exec::subscriptions::digest(k),
            };
            if let Some(other) = seen_digests.insert(digest, s.id.clone()) {
                d.error("C054", span.clone(), format!("subscription `{}` reuses a key of subscription `{other}`; keys must be unique", s.id));
            }
            if hashes[slot].is_some() {
                continue;
            }
            if k.len() < 8 {
                d.error(
                    "C053",
                    span.clone(),
                    format!(
                        "subscription `{}`: keys must be at least 8 characters",
                        s.id
                    ),
                );
            }
        }
        let start = match &s.start_date {
            None => crate::expr::datetime::EPOCH_0001,
            Some(t) => match crate::expr::datetime::DateTime::parse(t) {
                Some(dt) => dt.unix_seconds(),
                None => {
                    d.error("C055", cfg.locate(Some(&s.id), "start_date", t), format!("subscription `{}`: start_date must be yyyy-MM-ddTHH:mm:ssZ, found {t:?}", s.id));
                    crate::expr::datetime::EPOCH_0001
                }
            },
        };
        list.push(Subscription {
            start,
            id: s.id.clone(),
            name: s.name.clone().unwrap_or_else(|| s.id.clone()),
            scope,
            primary_key: s.primary_key.clone().filter(|_| hashes[0].is_none()),
            secondary_key: s.secondary_key.clone().filter(|_| hashes[1].is_none()),
            primary_hash: hashes[0],
            secondary_hash: hashes[1],
            state: s.state,
            allow_tracing: s.allow_tracing,
        });
    }
    Subscriptions::new(list)
}

/// Check one standalone policy or fragment document (`gatehouse check --policy`), with the
/// same checks as a full load. Named values and fragments are unknown here and reported
/// (P030, P031).
pub fn check_policy_file(path: &Path, scope: Scope) -> Diagnostics {
    let mut d = Diagnostics::new();
    let named = AHashMap::new();
    let env = Env {
        named: &named,
        scope,
    };
    let file: Arc<str> = Arc::from(path.display().to_string());
    let text = match config::read_bounded(path, policy::MAX_DOCUMENT_BYTES as u64 + 1) {
        Ok(t) => t,
        Err(e) => {
            d.error(
                "P009",
                Span::new(&file, 1, 1),
                format!("cannot read policy document: {e}"),
            );
            return d;
        }
    };
    let root = match policy::xml::parse(&file, &text) {
        Ok(r) => r,
        Err(e) => return e.sorted(),
    };
    if root.name == "fragment" {
        if text.len() > policy::MAX_FRAGMENT_BYTES {
            d.error(
                "P008",
                Span::new(&file, 1, 1),
                format!(
                    "fragment is over {} bytes, the limit",
                    policy::MAX_FRAGMENT_BYTES
                ),
            );
        }
        parse::parse_fragment(&root, &env, &mut d);
    } else {
        if text.len() > policy::MAX_DOCUMENT_BYTES {
            d.error(
                "P008",
                Span::new(&file, 1, 1),
                format!(
                    "document is over {} bytes, the limit",
                    policy::MAX_DOCUMENT_BYTES
                ),
            );
        }
        let doc = parse::parse_document(&root, &env, &mut d);
        let doc = compose::expand_document(&doc, &AHashMap::new(), &mut d);
        compose::check_legality(&doc, &mut d);
        build_pipeline(&[&doc], &AHashMap::new(), &mut d);
    }
    d.sorted()
}
