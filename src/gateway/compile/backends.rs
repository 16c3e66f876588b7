//! Backend entities: single backends, pools, circuit breakers, health checks and TLS to the
//! backend.

use super::*;

pub(super) fn compile_backends(
    cfg: &LoadedConfig,
    src: &Sources,
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
        if let Some(p) = b.protocol.as_deref() {
            if !p.eq_ignore_ascii_case("http") && !p.eq_ignore_ascii_case("soap") {
                d.error(
                    "C031",
                    cfg.locate(Some(&b.id), "protocol", p),
                    format!(
                        "backend `{}`: protocol must be http or soap, found {p:?}",
                        b.id
                    ),
                );
            }
        }
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
        let (ca, client_cert) = compile_backend_tls(cfg, src, &b.id, &b.tls, &span, d);
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

/// The name an ARM resource id ends with (`/subscriptions/.../<kind>/<name>` -> `<name>`); any
/// other text as it is.
pub(super) fn arm_name<'a>(id: &'a str, kind: &str) -> &'a str {
    let marker = format!("/{kind}/");
    match id.rfind(&marker) {
        Some(at) if id.starts_with('/') => id[at + marker.len()..].trim_end_matches('/'),
        _ => id,
    }
}

/// ARM's `credentials.certificateIds` / `credentials.certificate`: the backend presents the named
/// configured certificate (ids win over thumbprints; the first that resolves is used). A name
/// that resolves to nothing is C068.
pub(super) fn attach_credential_certificates(
    cfg: &LoadedConfig,
    backends: &mut [Backend],
    certificates: &upstream::Certificates,
    thumbprints: &AHashMap<String, String>,
    d: &mut Diagnostics,
) {
    for b in backends.iter_mut() {
        let Some(spec) = cfg.raw.backends.iter().find(|s| s.id == b.id) else {
            continue;
        };
        let c = &spec.credentials;
        if c.certificate_ids.is_empty() && c.certificates.is_empty() {
            continue;
        }
        let by_id = c
            .certificate_ids
            .iter()
            .map(|id| (id, arm_name(id, "certificates").to_string()));
        let by_thumb = c.certificates.iter().map(|t| {
            let t = t.trim().replace([':', ' '], "").to_ascii_uppercase();
            (t.clone(), thumbprints.get(&t).cloned().unwrap_or_default())
        });
        let mut chosen = None;
        for (given, id) in by_id.map(|(g, id)| (g.clone(), id)).chain(by_thumb) {
            match certificates.get(&id) {
                Some(cert) => {
                    chosen.get_or_insert_with(|| cert.clone());
                }
                None => d.error(
                    "C068",
                    cfg.locate(Some(&b.id), "", &given),
                    format!(
                        "backend `{}`: credentials name certificate {given:?}, which is not configured under `certificates`",
                        b.id
                    ),
                ),
            }
        }
        if b.client_cert.is_some() && chosen.is_some() {
            d.error(
                "C068",
                cfg.locate(None, "id", &b.id),
                format!(
                    "backend `{}`: give the client certificate once: `credentials` certificates or `tls.client_cert_file`",
                    b.id
                ),
            );
        } else if chosen.is_some() {
            b.client_cert = chosen;
        }
    }
}

/// Most members a pool may have (APIM's limit).
pub(super) const MAX_POOL_MEMBERS: usize = 30;

pub(super) fn compile_pool(
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
        let member = arm_name(&m.id, "backends");
        let Some(&i) = ids.get(member) else {
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
        // Weight 0 is what ARM writes for "no weight": the default, like an absent one.
        let weight = m.weight.filter(|w| *w != 0).unwrap_or(1);
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

pub(super) fn compile_breaker(
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
        shared: r.shared,
    })
}

pub(super) fn compile_health(
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

pub(super) type BackendTlsFiles = (
    Option<std::sync::Arc<Box<[openssl::x509::X509]>>>,
    Option<upstream::ClientCert>,
);

/// Custom CA and client certificate files of a backend, read and parsed at load.
pub(super) fn compile_backend_tls(
    cfg: &LoadedConfig,
    src: &Sources,
    id: &str,
    tls: &crate::config::BackendTls,
    span: &crate::diag::Span,
    d: &mut Diagnostics,
) -> BackendTlsFiles {
    let read = |f: &str, d: &mut Diagnostics| -> Option<Vec<u8>> {
        let path = cfg.dir.join(f);
        src.file(&path)
            .map(<[u8]>::to_vec)
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
