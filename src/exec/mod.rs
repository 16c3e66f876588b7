//! The policy engine: runs a section of compiled statements over an `ExecCtx`. No Pingora here;
//! headers are reached through the `HeaderStore` trait, so the engine is testable without sockets.

pub mod admission;
pub mod backend;
pub mod deferred;
pub mod env;
pub mod error;
pub mod failure;
pub mod headers;
pub mod jwks;
pub mod model;
pub mod record;
pub mod request;
pub mod route;
pub mod state;
pub mod steps;
pub mod subscriptions;
pub mod transport;

use crate::diag::Invalid;
use std::borrow::Cow;

use http::{HeaderName, HeaderValue, Method};

use crate::expr::{EvalError, Value};
use crate::policy::{ExistsAction, Scope, Section, Stmt, StmtKind, UriTemplate, Val};
pub use error::{ErrorKind, LastError, PolicyError};
pub use headers::HeaderStore;
use model::{Example, Gateway};
pub use state::{Origin, QueryState, ReqState, RequestInfo, RespState, Target, TraceEntry};

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

/// What one statement did.
pub enum Step {
    Next,
    Respond { run_outbound: bool },
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
        crate::policy::parse::parse_uri_template(&v.to_display())
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

pub(crate) fn run_nested<'a, 'b: 'a>(
    stmts: &'a [Stmt],
    cx: &'a mut ExecCtx<'b>,
    prefix: String,
) -> FlowFuture<'a> {
    Box::pin(async move {
        for (i, st) in stmts.iter().enumerate() {
            let outcome = match &st.kind {
                StmtKind::Base | StmtKind::IncludeFragment(_) => Ok(Step::Next),
                // Reached only in a backend section the engine forwards itself (forward-request
                // inside retry); otherwise the proxy forwards and it is not among the statements.
                StmtKind::ForwardRequest(f) => {
                    steps::forward_request::run(f, cx).await.map(|_| Step::Next)
                }
                StmtKind::CheckHeader(c) => steps::access::check_header(c, cx).map(|_| Step::Next),
                StmtKind::Cors(c) => steps::cors::run(c, cx),
                StmtKind::ValidateJwt(j) => steps::jwt::run(j, cx).await.map(|_| Step::Next),
                StmtKind::IpFilter(f) => steps::access::ip_filter(f, cx).map(|_| Step::Next),
                StmtKind::AuthenticationBasic { username, password } => {
                    steps::access::basic(username, password, cx).map(|_| Step::Next)
                }
                StmtKind::AuthenticationCertificate(c) => {
                    steps::access::certificate(c, cx).map(|_| Step::Next)
                }
                StmtKind::Retry(r) => {
                    let inner = format!("{prefix}{}/", path_of(stmts, i));
                    match steps::retry::run(r, cx, inner).await {
                        Ok(None) => Ok(Step::Next),
                        Ok(Some(flow)) => return flow,
                        Err(e) => Err(e),
                    }
                }
                StmtKind::Wait { any, body } => {
                    let inner = format!("{prefix}{}/", path_of(stmts, i));
                    match steps::wait::run(any, body, cx, inner).await {
                        Ok(None) => Ok(Step::Next),
                        Ok(Some(flow)) => return flow,
                        Err(e) => Err(e),
                    }
                }
                StmtKind::SetHeader(sh) => steps::set_header::run(sh, cx).map(|_| Step::Next),
                StmtKind::SetQueryParameter(q) => {
                    steps::set_query_parameter::run(q, cx).map(|_| Step::Next)
                }
                StmtKind::SetMethod(m) => steps::set_method::run(m, cx).map(|_| Step::Next),
                StmtKind::SetStatus(s) => steps::set_status::run(s, cx).map(|_| Step::Next),
                StmtKind::SetBody(b) => steps::set_body::run(b, cx).map(|_| Step::Next),
                StmtKind::ReturnResponse(r) => steps::return_response::run(r, cx),
                StmtKind::MockResponse(m) => steps::mock_response::run(m, cx),
                StmtKind::RewriteUri(r) => steps::rewrite_uri::run(r, cx).map(|_| Step::Next),
                StmtKind::SetBackendService(t) => {
                    steps::set_backend_service::run(t, cx).map(|_| Step::Next)
                }
                StmtKind::SetVariable { name, value } => {
                    steps::set_variable::run(name, value, cx).map(|_| Step::Next)
                }
                StmtKind::Trace(t) => steps::trace::run(t, cx).map(|_| Step::Next),
                StmtKind::FindAndReplace { from, to } => {
                    steps::find_and_replace::run(from, to, cx).map(|_| Step::Next)
                }
                StmtKind::SendRequest(r) => {
                    steps::send_request::run(r, cx).await.map(|_| Step::Next)
                }
                StmtKind::CacheLookup(c) => steps::cache::lookup(c, cx).await,
                StmtKind::CacheStore {
                    duration,
                    cache_response,
                } => steps::cache::store(duration, cache_response.as_ref(), cx)
                    .await
                    .map(|_| Step::Next),
                StmtKind::AcquireSlot { key, max } => {
                    steps::limit_concurrency::acquire(key, *max, cx)
                        .await
                        .map(|k| {
                            cx.req.held_slots.push(k);
                            Step::Next
                        })
                }
                StmtKind::LimitConcurrency { key, max, body } => {
                    match steps::limit_concurrency::acquire(key, *max, cx).await {
                        Ok(k) => {
                            let inner = format!("{prefix}{}/", path_of(stmts, i));
                            let flow = run_nested(body, cx, inner).await;
                            // The slot is released however the block ends.
                            cx.store.release(&k).await;
                            match flow {
                                Flow::Continue => Ok(Step::Next),
                                other => return other,
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
                StmtKind::CacheLookupValue {
                    key,
                    variable,
                    default,
                    caching,
                } => steps::cache_value::lookup(key, variable, default.as_ref(), *caching, cx)
                    .await
                    .map(|_| Step::Next),
                StmtKind::CacheStoreValue {
                    key,
                    value,
                    duration,
                    caching,
                } => steps::cache_value::store(key, value, duration, *caching, cx)
                    .await
                    .map(|_| Step::Next),
                StmtKind::CacheRemoveValue { key, caching } => {
                    steps::cache_value::remove(key, *caching, cx)
                        .await
                        .map(|_| Step::Next)
                }
                StmtKind::RateLimitByKey(r) => {
                    steps::rate_limit::by_key(r, cx).await.map(|_| Step::Next)
                }
                StmtKind::RateLimit(r) => steps::rate_limit::per_subscription(r, cx)
                    .await
                    .map(|_| Step::Next),
                StmtKind::QuotaByKey(q) => steps::quota::by_key(q, cx).await.map(|_| Step::Next),
                StmtKind::Quota(q) => steps::quota::per_subscription(q, cx)
                    .await
                    .map(|_| Step::Next),
                StmtKind::Choose(c) => {
                    let path = format!("{prefix}{}", path_of(stmts, i));
                    match steps::choose::select(c, cx, &path) {
                        Ok(Some((body, inner))) => match run_nested(body, cx, inner).await {
                            Flow::Continue => Ok(Step::Next),
                            other => return other,
                        },
                        Ok(None) => Ok(Step::Next),
                        Err(e) => Err(e),
                    }
                }
            };
            match outcome {
                Ok(Step::Next) => {}
                Ok(Step::Respond { run_outbound }) => {
                    return Flow::Respond {
                        origin: Origin::policy(st, cx.section),
                        run_outbound,
                    };
                }
                Err(e) => {
                    return Flow::Fail(PolicyError::at(
                        e,
                        st,
                        cx.section,
                        format!("{prefix}{}", path_of(stmts, i)),
                    ))
                }
            }
        }
        Flow::Continue
    })
}

/// `element[n]`: the statement's position among same-named siblings (1-based).
fn path_of(stmts: &[Stmt], i: usize) -> String {
    let name = stmts[i].element;
    let n = stmts[..=i].iter().filter(|s| s.element == name).count();
    format!("{name}[{n}]")
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
