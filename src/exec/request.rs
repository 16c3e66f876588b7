//! From a request as the adapter sees it to the engine's request state: the canonical path,
//! the API and operation (apim-reference.md §1.3), the subscription key and the admission
//! decision (§5.3), the caller's address, and the `ReqState` the sections then work on.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{header, HeaderMap, HeaderName, Method};

use super::admission::{self, Access};
use super::model::{Example, Gateway, Pipeline};
use super::state::{QueryState, ReqState, RequestInfo, Target};
use super::{ErrorKind, PolicyError};

/// What routing and admission read of a request.
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// `Host`, else the request target's authority.
    pub host: Option<&'a str>,
    /// The request target's path as received (canonicalised here).
    pub path: &'a [u8],
    pub path_is_utf8: bool,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// The TCP peer.
    pub peer: Option<IpAddr>,
    /// Whether the request came over TLS.
    pub tls: bool,
    /// The certificate the client presented on this connection.
    pub client_certificate: Option<&'a super::state::PeerCertificate>,
}

/// A request matched to an operation and admitted.
pub struct Admitted {
    pub api: usize,
    pub operation: usize,
    pub subscription: Option<usize>,
    pub product: Option<usize>,
    pub pipeline: Arc<Pipeline>,
    pub examples: Arc<[Example]>,
    pub req: Box<ReqState>,
    /// The subscription-key header to remove before the request goes on (`strip_key`).
    pub strip_header: Option<HeaderName>,
}

/// A request that was not admitted, with what was matched before the failure (the API's
/// on-error runs when the API is known).
pub struct Refused {
    pub error: PolicyError,
    pub api: Option<usize>,
    pub operation: Option<usize>,
    /// `WWW-Authenticate` names this header when the key is missing.
    pub www_authenticate: Option<String>,
}

/// 400 `BadRequest` with the reason in the body (`{"statusCode":400,"message":"Bad request: ..."}`).
pub fn bad_request(why: &str) -> PolicyError {
    let message = format!("Bad request: {why}.");
    let mut e = PolicyError::builtin(ErrorKind::BadRequest, "configuration", message.clone());
    e.detail = Some(super::error::LimitDetail::response(400, message));
    e
}

/// The answer to a request no API serves, when the gateway has one: the global
/// `<cross-domain>` policy file at `GET /crossdomain.xml`.
pub fn builtin_answer(gw: &Gateway, method: &Method, path: &[u8]) -> Option<bytes::Bytes> {
    let body = gw.cross_domain.as_ref()?;
    (path == b"/crossdomain.xml" && (*method == Method::GET || *method == Method::HEAD))
        .then(|| body.clone())
}

const TRACEPARENT: &str = "traceparent";

/// Route and admit a request.
#[allow(clippy::result_large_err)]
pub fn admit(
    gw: &Gateway,
    r: &RequestView,
    request_id: &str,
    started: Instant,
) -> Result<Admitted, Refused> {
    let refused = |error, api, operation| Refused {
        error,
        api,
        operation,
        www_authenticate: None,
    };
    // One canonical path for routing, policies and the backend (codec::path).
    let path = if r.path_is_utf8 {
        crate::codec::path::normalize(r.path)
    } else {
        Err(crate::codec::path::PathError::NotUtf8)
    }
    .map_err(|e| refused(bad_request(&e.to_string()), None, None))?
    .into_owned();
    let not_found = || {
        PolicyError::builtin(
            ErrorKind::OperationNotFound,
            "configuration",
            "Unable to match incoming request to an operation.",
        )
    };
    let (ai, prefix_len) = gw
        .match_api(r.host, &path, r.headers, r.query)
        .ok_or_else(|| refused(not_found(), None, None))?;
    let api = &gw.apis[ai];
    let remainder = &path[prefix_len..];
    let query_pairs = crate::codec::query::parse(r.query);
    let method = r.method;
    let find = |m: Option<&Method>, cors_only: bool| {
        api.operations
            .iter()
            .enumerate()
            .filter(|(_, o)| m.is_none_or(|m| super::route::method_matches(&o.method, m)))
            .filter(|(_, o)| !cors_only || o.pipelines.first().is_some_and(|p| p.has_cors))
            .find_map(|(i, o)| o.template.matches(remainder, &query_pairs).map(|x| (i, x)))
    };
    // A CORS preflight for an operation without an OPTIONS operation of its own goes to the
    // operation of the requested method, when its policy has <cors>.
    let requested = (*method == Method::OPTIONS && r.headers.contains_key(header::ORIGIN))
        .then(|| r.headers.get(header::ACCESS_CONTROL_REQUEST_METHOD))
        .flatten()
        .and_then(|v| Method::from_bytes(v.as_bytes()).ok());
    let (oi, matched, preflight) = match find(Some(method), false) {
        Some((i, m)) => (i, m, false),
        None => {
            // The operation of the requested method; else any operation of the path with
            // <cors> (whose policy then refuses the method).
            let (i, m) = requested
                .as_ref()
                .and_then(|q| find(Some(q), true).or_else(|| find(None, true)))
                .ok_or_else(|| refused(not_found(), Some(ai), None))?;
            (i, m, true)
        }
    };
    let op = &api.operations[oi];
    // Subscription key: header first, then the query parameter.
    let key = r
        .headers
        .get(&api.key_header)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            query_pairs
                .iter()
                .find(|(k, _)| *k == api.key_query)
                .map(|(_, v)| v.clone())
        });
    // A preflight carries no key: it runs the operation's policy without a product.
    let decision = if preflight {
        Ok(Access {
            subscription: None,
            product: None,
            pipeline: 0,
        })
    } else {
        admission::decide(gw, ai, key.as_deref())
    };
    let a = decision.map_err(|kind| {
        let msg = kind.client_message().unwrap_or_default();
        Refused {
            error: PolicyError::builtin(kind, "authorization", msg),
            api: Some(ai),
            operation: Some(oi),
            www_authenticate: (kind == ErrorKind::SubscriptionKeyNotFound)
                .then(|| api.key_header.as_str().to_string()),
        }
    })?;
    let mut query = QueryState::raw(r.query);
    if api.strip_key && query_pairs.iter().any(|(k, _)| *k == api.key_query) {
        query.pairs_mut().retain(|(k, _)| *k != api.key_query);
    }
    let xff: Vec<&str> = r
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let client_ip = r.peer.map(|p| gw.client_ip(p, &xff));
    let peer_ip = r.peer.map(ip_string).unwrap_or_default();
    let scheme = if r.tls { "https" } else { "http" };
    let (original_host, original_port) = match r.host.and_then(|h| {
        h.rsplit_once(':')
            .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
    }) {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(80)),
        None => (
            r.host.unwrap_or_default().to_string(),
            if r.tls { 443 } else { 80 },
        ),
    };
    // `path` moves into the request's information; the backend path is what follows the API's.
    let remainder = remainder.to_string();
    let info = RequestInfo {
        api: Some(ai),
        operation: Some(oi),
        product: a.product,
        subscription: a.subscription,
        key: if a.subscription.is_some() { key } else { None },
        ip: match (client_ip, r.peer) {
            (Some(c), Some(p)) if c == p => peer_ip.clone(),
            (c, _) => c.map(ip_string).unwrap_or_default(),
        },
        peer_ip,
        peer_trusted: r.peer.is_some_and(|p| gw.is_trusted_proxy(p)),
        host_header: r.host.unwrap_or_default().to_string(),
        original_method: method.as_str().to_string(),
        original_scheme: scheme.into(),
        original_host,
        original_port,
        original_path: path,
        original_query: r.query.to_string(),
        timestamp_ticks: crate::expr::datetime::DateTime::now_utc().ticks,
        started: Some(started),
        client_certificate: r.client_certificate.cloned().map(Arc::new),
        trace: if gw.trace_context {
            crate::codec::trace_context::TraceContext::continue_or_start(
                r.headers.get_all(TRACEPARENT).iter().map(|v| v.as_bytes()),
            )
        } else {
            Default::default()
        },
    };
    let mut req = Box::new(ReqState {
        matched,
        preflight,
        template_query: op.template.query.iter().map(|(n, _)| n.clone()).collect(),
        ..ReqState::new(
            request_id.to_string(),
            method.clone(),
            Target {
                base: api.service.clone(),
                backend: api.service_backend,
            },
            remainder,
            query,
            info,
        )
    });
    if a.subscription
        .is_some_and(|s| gw.subscriptions.list[s].allow_tracing)
        && r.headers
            .get("ocp-apim-trace")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        start_inspector(gw, &mut req, r, ai, oi, started);
    }
    Ok(Admitted {
        api: ai,
        operation: oi,
        subscription: a.subscription,
        product: a.product,
        pipeline: op.pipelines[a.pipeline].clone(),
        examples: op.examples.clone(),
        req,
        strip_header: api.strip_key.then(|| api.key_header.clone()),
    })
}

/// Begin the request's trace with APIM's `api-inspector` entry: the request as received and
/// what it matched.
fn start_inspector(
    gw: &Gateway,
    req: &mut ReqState,
    r: &RequestView,
    ai: usize,
    oi: usize,
    started: Instant,
) {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    let token: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let mut i = super::inspector::Inspector::new(started, token);
    let mut headers = serde_json::Map::new();
    for (k, v) in r.headers.iter() {
        headers.insert(
            k.as_str().to_string(),
            serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        );
    }
    let info = &req.info;
    let api = &gw.apis[ai];
    i.note(
        crate::policy::Section::Inbound,
        "api-inspector",
        serde_json::json!({
            "request": {
                "method": info.original_method,
                "url": format!("{}://{}{}{}{}", info.original_scheme, info.host_header, info.original_path,
                    if info.original_query.is_empty() { "" } else { "?" }, info.original_query),
                "headers": headers,
            },
            "configuration": {
                "api": api.id,
                "operation": api.operations[oi].id,
                "product": info.product.map(|p| gw.products[p].id.as_str()),
                "subscription": info.subscription.map(|s| gw.subscriptions.list[s].id.as_str()),
                "backend": req.target.base.to_string(),
            },
        }),
    );
    req.inspector = Some(Box::new(i));
}

/// An IP address as text; IPv4 without the formatting machinery (every request formats its
/// peer's address).
pub fn ip_string(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
            out
        }
        std::net::IpAddr::V6(_) => ip.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ip_string_matches_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.99.100.109",
            "::1",
            "2001:db8::8a2e:370:7334",
        ] {
            let addr: std::net::IpAddr = ip.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(super::ip_string(addr), addr.to_string());
        }
    }
}
