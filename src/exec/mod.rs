//! The policy engine: runs a section of compiled statements over an `ExecCtx`. No Pingora here;
//! headers are reached through the `HeaderStore` trait, so the engine is testable without sockets.

pub mod error;
pub mod headers;
pub mod state;
pub mod steps;

use http::{HeaderName, HeaderValue};

use crate::gateway::{Example, Gateway};
use crate::policy::{Scope, Section, Stmt, StmtKind, Val};
pub use error::{ErrorKind, LastError, PolicyError};
pub use headers::HeaderStore;
pub use state::{Origin, QueryState, ReqState, RespState, Target};


/// Everything a statement may read or change while a section runs.
pub struct ExecCtx<'a> {
    pub gw: &'a Gateway,
    pub section: Section,
    pub req: &'a mut ReqState,
    pub req_headers: &'a mut dyn HeaderStore,
    pub resp: &'a mut RespState,
    pub resp_headers: &'a mut dyn HeaderStore,
    pub examples: &'a [Example],
}

impl ExecCtx<'_> {
    /// The headers a statement in this section works on: the request's in inbound and
    /// backend, the response's in outbound and on-error.
    pub fn section_headers(&mut self) -> &mut dyn HeaderStore {
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
    Respond { origin: Origin, run_outbound: bool },
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
}

impl StepError {
    pub fn expression(message: impl Into<String>) -> StepError {
        StepError { kind: ErrorKind::ExpressionValueEvaluationFailure, message: message.into() }
    }
}

/// The value of a prepared attribute. Expressions are rejected at load in this build, so an
/// `Expr` here is an evaluation failure, never a panic.
pub fn value<T>(v: &Val<T>) -> Result<&T, StepError> {
    match v {
        Val::Lit(t) => Ok(t),
        Val::Expr(e) => Err(StepError::expression(format!("expression at {} cannot be evaluated by this build", e.span))),
    }
}

/// Run statements in order. Stops at the first statement that responds or fails.
pub fn run_section(stmts: &[Stmt], cx: &mut ExecCtx) -> Flow {
    for (i, st) in stmts.iter().enumerate() {
        let outcome = match &st.kind {
            StmtKind::Base | StmtKind::IncludeFragment(_) | StmtKind::ForwardRequest(_) => Ok(Step::Next),
            StmtKind::SetHeader(sh) => steps::set_header::run(sh, cx).map(|_| Step::Next),
            StmtKind::SetQueryParameter(q) => steps::set_query_parameter::run(q, cx).map(|_| Step::Next),
            StmtKind::SetMethod(m) => steps::set_method::run(m, cx).map(|_| Step::Next),
            StmtKind::SetStatus(s) => steps::set_status::run(s, cx).map(|_| Step::Next),
            StmtKind::SetBody(b) => steps::set_body::run(b, cx).map(|_| Step::Next),
            StmtKind::ReturnResponse(r) => steps::return_response::run(r, cx),
            StmtKind::MockResponse(m) => steps::mock_response::run(m, cx),
            StmtKind::RewriteUri(r) => steps::rewrite_uri::run(r, cx).map(|_| Step::Next),
            StmtKind::SetBackendService(t) => steps::set_backend_service::run(t, cx).map(|_| Step::Next),
        };
        match outcome {
            Ok(Step::Next) => {}
            Ok(Step::Respond { run_outbound }) => {
                return Flow::Respond { origin: Origin::policy(st, cx.section), run_outbound };
            }
            Err(e) => return Flow::Fail(PolicyError::at(e, st, cx.section, path_of(stmts, i))),
        }
    }
    Flow::Continue
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
