//! Per-request state the engine reads and changes: the backend-bound request (method, target,
//! path, query, body) and the response being shaped.

use bytes::Bytes;
use http::Method;

use crate::exec::Stmt;
use crate::net::url::BaseUrl;
use crate::policy::{Scope, Section};

/// Where the request goes: a base URL, and the backend entity when one is used.
#[derive(Clone, Debug)]
pub struct Target {
    pub base: std::sync::Arc<BaseUrl>,
    pub backend: Option<usize>,
}

/// The backend query string: kept raw (byte for byte) until a policy changes it.
#[derive(Clone, Debug, Default)]
pub struct QueryState {
    raw: Option<String>,
    pairs: Vec<(String, String)>,
}

impl QueryState {
    pub fn raw(q: &str) -> QueryState {
        QueryState {
            raw: Some(q.to_string()),
            pairs: Vec::new(),
        }
    }

    /// Decoded pairs for changing; from now on the query is re-encoded.
    pub fn pairs_mut(&mut self) -> &mut Vec<(String, String)> {
        if let Some(r) = self.raw.take() {
            self.pairs = crate::codec::query::parse(&r);
        }
        &mut self.pairs
    }

    pub fn pairs(&self) -> Vec<(String, String)> {
        match &self.raw {
            Some(r) => crate::codec::query::parse(r),
            None => self.pairs.clone(),
        }
    }

    /// The encoded query, without `?`.
    pub fn encoded(&self) -> String {
        match &self.raw {
            Some(r) => r.clone(),
            None => crate::codec::query::encode_pairs(&self.pairs),
        }
    }
}

pub struct ReqState {
    pub request_id: String,
    pub method: Method,
    pub target: Target,
    /// Path relative to the target's base path: starts with `/`, or is empty.
    pub path: String,
    pub query: QueryState,
    /// `context.Request.MatchedParameters`.
    pub matched: Vec<(String, String)>,
    /// Query parameters the operation's template matched (not copied by rewrite-uri).
    pub template_query: Vec<String>,
    /// A replacement request body set by policy.
    pub body: Option<Bytes>,
    /// The original request body, when the pipeline buffers it.
    pub original_body: Option<Bytes>,
    /// `context.Variables`.
    pub vars: Vec<(String, crate::expr::Value)>,
    /// Who and what the request is, for `context.*`.
    pub info: RequestInfo,
    /// `context.LastError` while on-error runs.
    pub last_error: Option<super::PolicyError>,
    /// `trace` policy output and `context.Trace(...)` calls.
    pub traces: Vec<TraceEntry>,
    /// Counter increments that wait for the response (expression conditions, bandwidth).
    pub deferred: Vec<Deferred>,
    /// Headers policies add to the final response (remaining / total calls).
    pub extra_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// quota-by-key keys already incremented by this request (each counts once).
    pub quota_keys: Vec<String>,
    /// limit-concurrency slots held until the request ends.
    pub held_slots: Vec<String>,
    /// cache-lookup's key and outcome, for cache-store.
    pub cache: Option<super::policies::cache::CacheState>,
    /// A store read made early, beside the limit statements before the statement that needs
    /// it: the key and what the store held (`policies::limits::ReadsAhead`).
    pub read_ahead: Option<(String, Option<Vec<u8>>)>,
    /// The request's trace, when it asked for one and may (`inspector`).
    pub inspector: Option<Box<super::inspector::Inspector>>,
    /// Times forward-request ran in the engine (inside `retry`), and the last one's time to
    /// response headers.
    pub forwarded: u32,
    pub backend_time: Option<std::time::Duration>,
    /// A CORS preflight (OPTIONS + Origin + Access-Control-Request-Method routed to the
    /// operation of the requested method).
    pub preflight: bool,
    /// A client certificate for the backend call (`authentication-certificate`).
    pub client_cert: Option<crate::upstream::ClientCert>,
    /// An HTTP forward proxy set by the `proxy` policy (over the backend's own).
    pub proxy: Option<std::sync::Arc<crate::net::proxy::ForwardProxy>>,
}

/// An increment applied after the response (in the logging phase).
#[derive(Clone, Debug)]
pub enum Deferred {
    Sliding {
        key: String,
        window: std::time::Duration,
        condition: Option<crate::policy::Val<bool>>,
        count: Option<crate::policy::Val<u64>>,
    },
    QuotaCalls {
        key: String,
        window_id: i64,
        ttl: Option<std::time::Duration>,
        condition: Option<crate::policy::Val<bool>>,
        count: Option<crate::policy::Val<u64>>,
    },
    QuotaBytes {
        key: String,
        window_id: i64,
        ttl: Option<std::time::Duration>,
    },
}

/// Facts about the request that expressions read (`context.Api`, `context.Request.IpAddress`, ...).
#[derive(Clone, Debug, Default)]
pub struct RequestInfo {
    pub api: Option<usize>,
    pub operation: Option<usize>,
    pub product: Option<usize>,
    pub subscription: Option<usize>,
    /// The key the caller presented (`context.Subscription.Key`).
    pub key: Option<String>,
    /// The caller's address (the TCP peer, or from X-Forwarded-For behind trusted proxies).
    pub ip: String,
    /// The TCP peer, and whether it is a trusted proxy.
    pub peer_ip: String,
    pub peer_trusted: bool,
    /// The Host header the client sent.
    pub host_header: String,
    pub original_method: String,
    pub original_scheme: String,
    pub original_host: String,
    pub original_port: i32,
    pub original_path: String,
    pub original_query: String,
    pub timestamp_ticks: i64,
    pub started: Option<std::time::Instant>,
    /// The certificate the client presented (`context.Request.Certificate`).
    pub client_certificate: Option<std::sync::Arc<PeerCertificate>>,
    /// The request's W3C trace (unset when `correlation.trace_context` is off).
    pub trace: crate::codec::trace_context::TraceContext,
}

/// A TLS client's certificate and the intermediates it sent with it.
#[derive(Clone, Debug)]
pub struct PeerCertificate {
    pub leaf: openssl::x509::X509,
    pub chain: Vec<openssl::x509::X509>,
}

#[derive(Clone, Debug)]
pub struct TraceEntry {
    pub source: String,
    pub severity: &'static str,
    pub message: String,
    pub metadata: Vec<(String, String)>,
}

impl ReqState {
    /// A request's state before any policy ran: nothing matched, set, deferred or held yet.
    /// Record a request-trace entry when this request is traced (`inspector`).
    pub fn inspect(
        &mut self,
        section: crate::policy::Section,
        source: &str,
        data: impl FnOnce() -> serde_json::Value,
    ) {
        if let Some(i) = self.inspector.as_mut() {
            i.note(section, source, data());
        }
    }

    pub fn new(
        request_id: String,
        method: Method,
        target: Target,
        path: String,
        query: QueryState,
        info: RequestInfo,
    ) -> ReqState {
        ReqState {
            request_id,
            method,
            target,
            path,
            query,
            matched: Vec::new(),
            template_query: Vec::new(),
            body: None,
            original_body: None,
            vars: Vec::new(),
            info,
            last_error: None,
            traces: Vec::new(),
            deferred: Vec::new(),
            extra_headers: Vec::new(),
            read_ahead: None,
            quota_keys: Vec::new(),
            held_slots: Vec::new(),
            cache: None,
            inspector: None,
            forwarded: 0,
            backend_time: None,
            client_cert: None,
            proxy: None,
            preflight: false,
        }
    }

    pub fn variable(&self, name: &str) -> Option<&crate::expr::Value> {
        self.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn set_variable(&mut self, name: &str, v: crate::expr::Value) {
        match self.vars.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = v,
            None => self.vars.push((name.to_string(), v)),
        }
    }
}

impl ReqState {
    /// Path and query for the backend request line.
    pub fn path_and_query(&self) -> String {
        let mut s = String::with_capacity(self.target.base.path.len() + self.path.len() + 16);
        s.push_str(&self.target.base.path);
        s.push_str(&self.path);
        if s.is_empty() {
            s.push('/');
        }
        let q = self.query.encoded();
        if !q.is_empty() {
            s.push('?');
            s.push_str(&q);
        }
        // A base URL's own query follows the request's.
        let base = &self.target.base.query;
        if !base.is_empty() {
            s.push(if q.is_empty() { '?' } else { '&' });
            s.push_str(base);
        }
        s
    }
}

/// The response being shaped (status, reason, replacement body). Headers live in a
/// `HeaderStore` beside it.
#[derive(Debug, Default)]
pub struct RespState {
    pub status: u16,
    pub reason: Option<String>,
    /// A replacement body set by policy.
    pub body: Option<Bytes>,
    /// The backend's body, when the pipeline buffers it.
    pub original_body: Option<Bytes>,
}

/// Who produced a response, for the access log and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Backend,
    /// A built-in step: `routing`, `subscription`, `forward-request`.
    Builtin(&'static str),
    Policy {
        element: &'static str,
        id: Option<String>,
        section: Section,
        scope: Scope,
    },
}

impl Origin {
    pub fn policy(st: &Stmt, section: Section) -> Origin {
        Origin::Policy {
            element: st.element,
            id: st.id.clone(),
            section,
            scope: st.scope,
        }
    }

    pub fn producer(&self) -> &'static str {
        match self {
            Origin::Backend => "backend",
            _ => "gateway",
        }
    }
}
