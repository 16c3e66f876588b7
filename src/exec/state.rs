//! Per-request state the engine reads and changes: the backend-bound request (method, target,
//! path, query, body) and the response being shaped.

use bytes::Bytes;
use http::Method;

use crate::gateway::BaseUrl;
use crate::policy::{Scope, Section, Stmt};

/// Where the request goes: a base URL, and the backend entity when one is used.
#[derive(Clone, Debug)]
pub struct Target {
    pub base: BaseUrl,
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
        QueryState { raw: Some(q.to_string()), pairs: Vec::new() }
    }

    /// Decoded pairs for changing; from now on the query is re-encoded.
    pub fn pairs_mut(&mut self) -> &mut Vec<(String, String)> {
        if let Some(r) = self.raw.take() {
            self.pairs = crate::gateway::router::parse_query(&r);
        }
        &mut self.pairs
    }

    pub fn pairs(&self) -> Vec<(String, String)> {
        match &self.raw {
            Some(r) => crate::gateway::router::parse_query(r),
            None => self.pairs.clone(),
        }
    }

    /// The encoded query, without `?`.
    pub fn encoded(&self) -> String {
        match &self.raw {
            Some(r) => r.clone(),
            None => encode_pairs(&self.pairs),
        }
    }
}

const QUERY_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub fn encode_component(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_SET).to_string()
}

pub fn encode_pairs(p: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in p.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&encode_component(k));
        out.push('=');
        out.push_str(&encode_component(v));
    }
    out
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
        s
    }
}

/// The response being shaped (status, reason, replacement body). Headers live in a
/// `HeaderStore` beside it.
#[derive(Debug, Default)]
pub struct RespState {
    pub status: u16,
    pub reason: Option<String>,
    pub body: Option<Bytes>,
}

/// Who produced a response, for the access log and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Backend,
    /// A built-in step: `routing`, `subscription`, `forward-request`.
    Builtin(&'static str),
    Policy { element: &'static str, id: Option<String>, section: Section, scope: Scope },
}

impl Origin {
    pub fn policy(st: &Stmt, section: Section) -> Origin {
        Origin::Policy { element: st.element, id: st.id.clone(), section, scope: st.scope }
    }

    pub fn producer(&self) -> &'static str {
        match self {
            Origin::Backend => "backend",
            _ => "gateway",
        }
    }
}
