//! The policy engine: runs a section of compiled statements over an `ExecCtx`. No Pingora here;
//! headers are reached through the `HeaderStore` trait, so the engine is testable without sockets.

pub mod admission;
pub mod backend;
pub mod child;
pub mod deferred;
pub mod env;
pub mod error;
pub mod failure;
pub mod headers;
pub mod identity;
pub mod inspector;
pub mod jwks;
pub mod model;
pub mod policies;
pub mod record;
pub mod request;
pub mod route;
pub mod state;
pub mod subscriptions;
pub mod transport;
pub mod trust;

use crate::diag::Invalid;
use std::borrow::Cow;

use http::{HeaderName, HeaderValue, Method};

use crate::expr::{EvalError, Value};
use crate::policy::{ExistsAction, Scope, Section, UriTemplate, Val};
pub use error::{ErrorKind, LastError, PolicyError};
pub use headers::HeaderStore;
use model::{Example, Gateway};
pub(crate) use policies::run_nested;
pub use policies::{At, PolicyDoc, Step, Stmt, StmtKind};
pub use state::{
    Origin, PeerCertificate, QueryState, ReqState, RequestInfo, RespState, Target, TraceEntry,
};

/// Everything a statement may read or change while a section runs.
pub struct ExecCtx<'a> {
    pub gw: &'a Gateway,
    pub section: Section,
    pub req: &'a mut ReqState,
    pub req_headers: &'a mut (dyn HeaderStore + Send),
    pub resp: &'a mut RespState,
    pub resp_headers: &'a mut (dyn HeaderStore + Send),
    pub examples: &'a [Example],
    /// Counters, caches and concurrency slots.
    pub store: &'a dyn crate::store::Store,
    /// Calls the engine makes itself (send-request, forward-request inside retry).
    pub transport: &'a dyn transport::Transport,
}

/// A section run in progress (boxed: `choose` nests).
pub type FlowFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Flow> + Send + 'a>>;

impl ExecCtx<'_> {
    /// The headers a statement in this section works on: the request's in inbound and
    /// backend, the response's in outbound and on-error.
    pub fn section_headers(&mut self) -> &mut (dyn HeaderStore + Send) {
        match self.section {
            Section::Inbound | Section::Backend => &mut *self.req_headers,
            Section::Outbound | Section::OnError => &mut *self.resp_headers,
        }
    }

    /// Whether this section works on the request (inbound, backend) or the response.
    pub fn on_request_side(&self) -> bool {
        matches!(self.section, Section::Inbound | Section::Backend)
    }

    /// The body this section works on, as a policy replaced it or as it was received.
    pub fn section_body(&self) -> Option<bytes::Bytes> {
        if self.on_request_side() {
            self.req
                .body
                .clone()
                .or_else(|| self.req.original_body.clone())
        } else {
            self.resp
                .body
                .clone()
                .or_else(|| self.resp.original_body.clone())
        }
    }

    /// Whether the request's `Accept` names a media type of this suffix (`json`: `*/json` or
    /// `*+json`; `*/*` does not count).
    pub fn accepts(&self, suffix: &str) -> bool {
        let (slash, plus) = (format!("/{suffix}"), format!("+{suffix}"));
        self.req_headers
            .get_all(&http::header::ACCEPT)
            .iter()
            .any(|v| {
                v.to_str().unwrap_or("").split(',').any(|m| {
                    let m = m
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    m.ends_with(&slash) || m.ends_with(&plus)
                })
            })
    }

    /// Whether the Content-Type of the side this section works on contains `word`.
    pub fn section_content_type_has(&mut self, word: &str) -> bool {
        self.section_headers()
            .get_all(&http::header::CONTENT_TYPE)
            .iter()
            .any(|v| v.to_str().unwrap_or("").to_ascii_lowercase().contains(word))
    }

    /// Replace the body this section works on.
    pub fn set_section_body(&mut self, body: bytes::Bytes) {
        if self.on_request_side() {
            self.req.body = Some(body);
        } else {
            self.resp.body = Some(body);
        }
    }
}

/// How a section ended.
#[derive(Debug)]
pub enum Flow {
    Continue,
    /// The gateway answers with `ctx.resp`. `run_outbound`: mock-response skips the backend but
    /// outbound still runs; return-response ends the whole pipeline.
    Respond {
        origin: Origin,
        run_outbound: bool,
    },
    Fail(PolicyError),
}

/// A statement's failure before it is placed (scope, section, path) by `run_section`.
#[derive(Debug)]
pub struct StepError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<error::LimitDetail>,
}

impl StepError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> StepError {
        StepError {
            kind,
            message: message.into(),
            detail: None,
        }
    }

    pub fn expression(message: impl Into<String>) -> StepError {
        StepError::new(ErrorKind::ExpressionValueEvaluationFailure, message)
    }
}

/// Conversion of an expression's result to an attribute's type.
pub trait FromValue: Sized + Clone {
    fn from_value(v: Value) -> Result<Self, Invalid>;
}

impl FromValue for String {
    fn from_value(v: Value) -> Result<Self, Invalid> {
        Ok(match v {
            Value::JObject(_) | Value::JArray(_) => crate::expr::value::json_text(&v, true),
            other => other.to_display(),
        })
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self, Invalid> {
        match v {
            Value::Bool(b) => Ok(b),
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            other => Err(crate::invalid!(
                "expected a bool, the expression returned {}",
                other.type_name()
            )),
        }
    }
}

impl FromValue for u16 {
    fn from_value(v: Value) -> Result<Self, Invalid> {
        let n = match &v {
            Value::Str(s) => s.trim().parse::<i64>().ok(),
            other => other.as_i64(),
        };
        n.and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..=999).contains(n))
            .ok_or_else(|| {
                crate::invalid!(
                    "expected an HTTP status code, the expression returned {}",
                    v.to_display()
                )
            })
    }
}

impl FromValue for u64 {
    fn from_value(v: Value) -> Result<Self, Invalid> {
        let n = match &v {
            Value::Str(s) => s.trim().parse::<i64>().ok(),
            other => other.as_i64(),
        };
        n.and_then(|n| u64::try_from(n).ok()).ok_or_else(|| {
            crate::invalid!(
                "expected a non-negative number, the expression returned {}",
                v.to_display()
            )
        })
    }
}

impl FromValue for HeaderName {
    fn from_value(v: Value) -> Result<Self, Invalid> {
        HeaderName::from_bytes(v.to_display().trim().as_bytes())
            .map_err(|_| crate::invalid!("invalid header name {:?}", v.to_display()))
    }
}

impl FromValue for HeaderValue {
    fn from_value(v: Value) -> Result<Self, Invalid> {
        HeaderValue::from_str(&String::from_value(v.clone())?)
            .map_err(|_| Invalid::from("invalid header value: control characters are not allowed"))
    }
}

impl FromValue for Method {
    fn from_value(v: Value) -> Result<Self, Invalid> {
        Method::from_bytes(v.to_display().trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| crate::invalid!("invalid HTTP method {:?}", v.to_display()))
    }
}

impl FromValue for ExistsAction {
    fn from_value(v: Value) -> Result<Self, Invalid> {
        ExistsAction::parse(v.to_display().trim()).ok_or_else(|| {
            crate::invalid!(
                "exists-action must be override, skip, append or delete, found {:?}",
                v.to_display()
            )
        })
    }
}

impl FromValue for UriTemplate {
    fn from_value(v: Value) -> Result<Self, Invalid> {
        crate::policy::reader::parse_uri_template(&v.to_display())
    }
}

/// Evaluate an expression against the request.
pub fn eval(e: &crate::expr::Expr, cx: &mut ExecCtx) -> Result<Value, StepError> {
    e.eval(cx).map_err(|err| match err {
        EvalError::Exception { ty, message } => StepError::expression(format!("{ty}: {message}")),
        EvalError::Limit(m) => StepError::expression(m),
    })
}

/// The value of an attribute: the prepared literal, or the expression's result converted to
/// the attribute's type (a failed conversion is an `ExpressionValueEvaluationFailure`).
pub fn value<'v, T: FromValue>(v: &'v Val<T>, cx: &mut ExecCtx) -> Result<Cow<'v, T>, StepError> {
    match v {
        Val::Lit(t) => Ok(Cow::Borrowed(t)),
        Val::Expr(e) => {
            let r = eval(e, cx)?;
            T::from_value(r)
                .map(Cow::Owned)
                .map_err(|e| StepError::expression(e.0))
        }
    }
}

/// Run statements in order. Stops at the first statement that responds or fails.
pub async fn run_section(stmts: &[Stmt], cx: &mut ExecCtx<'_>) -> Flow {
    run_nested(stmts, cx, String::new()).await
}

/// Headers that are sent as separate lines rather than joined with commas
/// (apim-reference.md §2.7 set-header).
pub fn separate_lines(name: &HeaderName) -> bool {
    const LIST: [&str; 12] = [
        "user-agent",
        "www-authenticate",
        "proxy-authenticate",
        "cookie",
        "set-cookie",
        "warning",
        "date",
        "expires",
        "if-modified-since",
        "if-unmodified-since",
        "last-modified",
        "retry-after",
    ];
    LIST.contains(&name.as_str())
}

/// Join several values into one comma-separated value.
pub fn join_values(values: &[HeaderValue]) -> HeaderValue {
    let mut v = Vec::new();
    for (i, x) in values.iter().enumerate() {
        if i > 0 {
            v.extend_from_slice(b", ");
        }
        v.extend_from_slice(x.as_bytes());
    }
    HeaderValue::from_bytes(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The scope name for logs: where a statement was defined.
pub fn scope_name(s: Scope) -> &'static str {
    s.name()
}
