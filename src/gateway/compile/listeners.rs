//! Listener settings checked at load.

use super::*;

/// Listener and admin addresses must parse; TLS files must exist.
/// The admin listener's bearer token: the value of the named value `admin.token` names.
/// An admin listener off loopback without one is an error: `/config` and `/metrics` would be
/// open to the network.
pub(super) fn admin_token(
    cfg: &LoadedConfig,
    named: &ahash::AHashMap<String, crate::config::NamedValue>,
    d: &mut Diagnostics,
) -> Option<std::sync::Arc<str>> {
    let admin = &cfg.raw.admin;
    let token = match &admin.token {
        None => None,
        Some(name) => match named.get(name) {
            Some(v) if v.value.len() >= 16 => Some(std::sync::Arc::from(v.value.as_str())),
            Some(_) => {
                d.error(
                    "C061",
                    cfg.locate(None, "token", name),
                    format!("admin.token: named value `{name}` is shorter than 16 characters"),
                );
                None
            }
            None => {
                d.error(
                    "C060",
                    cfg.locate(None, "token", name),
                    format!("admin.token: no named value `{name}`"),
                );
                None
            }
        },
    };
    let loopback = admin
        .address
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    if !admin.address.is_empty() && !loopback && admin.token.is_none() {
        d.error(
            "C062",
            cfg.locate(None, "address", &admin.address),
            format!(
                "admin listener {} is not on loopback: set admin.token (a secret named value) so /metrics and /config are not open to the network",
                admin.address
            ),
        );
    }
    token
}

/// `correlation.request_id_header`: a valid header name that is not one the gateway or HTTP
/// framing owns.
pub(super) fn request_id_header(
    cfg: &LoadedConfig,
    d: &mut Diagnostics,
) -> Option<http::HeaderName> {
    let name = cfg.raw.correlation.request_id_header.as_deref()?;
    let reserved = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "traceparent",
        "tracestate",
        "authorization",
        "cookie",
        "set-cookie",
    ];
    match http::HeaderName::from_bytes(name.as_bytes()) {
        Ok(h) if !reserved.contains(&h.as_str()) => Some(h),
        _ => {
            d.error(
                "C063",
                cfg.locate(None, "request_id_header", name),
                format!("correlation.request_id_header: {name:?} is not a header name the gateway may set"),
            );
            None
        }
    }
}

/// How to reach Redis (`store`): the URL, the ACL user, the password from its named value, and
/// the TLS files, read by the loader. Problems are C006 (the URL) and C066 (the rest).
pub fn redis_target(
    cfg: &LoadedConfig,
    src: &Sources,
    d: &mut Diagnostics,
) -> Option<crate::store::redis::Target> {
    let st = &cfg.raw.store;
    let given = [
        st.url.is_some(),
        st.sentinel.is_some(),
        st.cluster.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        d.error(
            "C006",
            cfg.locate(None, "type", "redis"),
            "store type redis needs exactly one of `url` (redis://host:port or rediss://host:port), `sentinel` or `cluster`",
        );
        return None;
    }
    let url = match (&st.url, &st.cluster) {
        (Some(u), _) => u.clone(),
        (None, Some(c)) if c.tls => "rediss://".to_string(),
        _ => String::new(),
    };
    let mut t = crate::store::redis::Target {
        url: url.clone(),
        username: st.username.clone(),
        sentinel: st
            .sentinel
            .as_ref()
            .map(|s| crate::store::redis::SentinelTarget {
                master: s.master_name.clone(),
                nodes: s.nodes.clone(),
                tls: s.tls,
                username: s.username.clone(),
                ..Default::default()
            }),
        cluster: st.cluster.as_ref().map(|c| c.nodes.clone()),
        ..Default::default()
    };
    let mut ok = true;
    let mut secret = |name: &Option<String>, what: &str| -> Option<String> {
        let name = name.as_ref()?;
        match src.named.get(name) {
            Some(v) => Some(v.value.clone()),
            None => {
                ok = false;
                d.error(
                    "C066",
                    cfg.locate(None, "password", name),
                    format!("{what}: no named value `{name}`"),
                );
                None
            }
        }
    };
    t.password = secret(&st.password, "store.password");
    if let (Some(s), Some(spec)) = (t.sentinel.as_mut(), st.sentinel.as_ref()) {
        s.password = secret(&spec.password, "store.sentinel.password");
    }
    let mut read = |f: &Option<String>, what: &str| -> Option<Vec<u8>> {
        let f = f.as_ref()?;
        let path = cfg.dir.join(f);
        match src.file(&path) {
            Ok(b) => Some(b.to_vec()),
            Err(e) => {
                ok = false;
                d.error(
                    "C066",
                    cfg.locate(None, what, f),
                    format!("store.tls.{what}: cannot read {}: {e}", path.display()),
                );
                None
            }
        }
    };
    if let Some(tls) = &st.tls {
        t.ca = read(&tls.ca_file, "ca_file");
        let cert = read(&tls.cert_file, "cert_file");
        let key = read(&tls.key_file, "key_file");
        t.client_cert = cert.zip(key);
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            ok = false;
            d.error(
                "C066",
                cfg.locate(None, "tls", ""),
                "store.tls: a client certificate needs both cert_file and key_file",
            );
        }
    }
    if let Err(e) = t.client() {
        d.error("C006", cfg.locate(None, "url", &url), format!("store: {e}"));
        return None;
    }
    ok.then_some(t)
}

pub(super) fn check_listeners(cfg: &LoadedConfig, src: &Sources, d: &mut Diagnostics) {
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
            for f in tls.files() {
                if !src.is_file(&cfg.dir.join(f)) {
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
    if cfg.raw.store.r#type == crate::config::StoreType::Redis {
        let _ = redis_target(cfg, src, d);
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
