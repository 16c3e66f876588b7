//! The policies gatehouse runs, one module each: a policy's typed form, how its element is read
//! and checked, what it needs from the pipeline, its expressions and how it runs all live in
//! its module; the `policies!` table below is the one place that lists them.
//!
//! Adding a policy: write `<name>.rs` with a type implementing [`Policy`], add one line to the
//! table (variant, type, element names and the sections each may appear in), drop the
//! element's line from `policy::catalog` (which lists only the elements gatehouse does not
//! run), and test it.

use std::future::Future;

use crate::diag::Span;
use crate::exec::{ExecCtx, Flow, StepError};
use crate::expr::Expr;
use crate::policy::catalog::{ALL, B, E, I, O};
use crate::policy::reader::Reader;
use crate::policy::{Scope, Section};

// The prelude the policy modules share (`use super::*`).
use crate::diag::Invalid;
use crate::policy::reader::{
    parse_action, parse_bool, parse_header_name, parse_header_value, parse_method, parse_period,
    parse_start, parse_status, parse_u64, parse_uri_template, substitute,
};
use crate::policy::{visit_val, ExistsAction, TemplatePart, UriTemplate, Val};
use http::{HeaderName, HeaderValue, Method};

pub mod compose;
pub mod document;

pub mod access;
pub mod base;
pub mod cache;
pub mod cache_value;
pub mod choose;
pub mod cors;
pub mod find_and_replace;
pub mod forward_request;
pub mod jwt;
pub mod limit_concurrency;
pub mod limits;
pub mod mock_response;
pub mod quota;
pub mod rate_limit;
pub mod retry;
pub mod return_response;
pub mod rewrite_uri;
pub mod send_request;
pub mod set_backend_service;
pub mod set_body;
pub mod set_header;
pub mod set_method;
pub mod set_query_parameter;
pub mod set_status;
pub mod set_variable;
pub mod trace;
pub mod wait;

pub use document::{document_from_text, fragment_from_text, parse_document, parse_fragment};

/// One policy: everything the gateway needs to know about it, in its own module.
pub trait Policy: Sized {
    /// Read and check the element (attributes, children, named values, expressions); `None`
    /// when it is unusable (the problem is already reported).
    fn read(r: &mut Reader, element: &str) -> Option<Self>;

    /// What this policy needs from the pipeline that runs it (not counting its children or
    /// its expressions, which are added separately). Required, so that no policy forgets to
    /// decide whether its body must be buffered.
    fn needs(&self) -> Needs;

    /// Every expression of this policy and of the statements nested in it.
    fn exprs(&self, _f: &mut dyn FnMut(&Expr)) {}

    /// The statements nested in this policy (choose branches, retry and wait bodies).
    fn children(&self) -> Vec<&Stmt> {
        Vec::new()
    }

    /// Run it over the request. `at` places it (for `LastError.Path` and nested runs).
    fn run(&self, cx: &mut ExecCtx<'_>, at: &At<'_>) -> impl Future<Output = Outcome> + Send;
}

/// A large policy is boxed in its table line so that every statement stays small.
impl<T: Policy> Policy for Box<T> {
    fn read(r: &mut Reader, element: &str) -> Option<Self> {
        T::read(r, element).map(Box::new)
    }

    fn needs(&self) -> Needs {
        (**self).needs()
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        (**self).exprs(f)
    }

    fn children(&self) -> Vec<&Stmt> {
        (**self).children()
    }

    fn run(&self, cx: &mut ExecCtx<'_>, at: &At<'_>) -> impl Future<Output = Outcome> + Send {
        (**self).run(cx, at)
    }
}

/// What one statement did.
#[derive(Debug)]
pub enum Step {
    Next,
    /// The gateway answers with `ctx.resp` (see `Flow::Respond`).
    Respond {
        run_outbound: bool,
    },
    /// Nested statements ended the section (responded or failed, already placed).
    End(Flow),
}

impl Step {
    /// The step after a nested run: go on when it ran to the end.
    pub fn after(flow: Flow) -> Step {
        match flow {
            Flow::Continue => Step::Next,
            other => Step::End(other),
        }
    }
}

pub type Outcome = Result<Step, StepError>;

/// Where a statement runs: its siblings and its position among them, under a path prefix.
pub struct At<'s> {
    pub stmts: &'s [Stmt],
    pub index: usize,
    pub prefix: &'s str,
}

impl At<'_> {
    /// `prefix/element[n]`: the statement's position among same-named siblings (1-based).
    pub fn path(&self) -> String {
        let name = self.stmts[self.index].element;
        let n = self.stmts[..=self.index]
            .iter()
            .filter(|s| s.element == name)
            .count();
        format!("{}{name}[{n}]", self.prefix)
    }

    /// The prefix of the statements nested in this one.
    pub fn inner(&self) -> String {
        format!("{}/", self.path())
    }
}

/// The registry: one line per policy type. Generates `StmtKind` (one variant per type), the
/// element table the reader dispatches on, and the dispatch of `needs`, `exprs`, `children`
/// and `run`.
macro_rules! policies {
    ($( $variant:ident($ty:ty) $(= $($element:literal in $sections:expr),+)? ; )*) => {
        /// A statement's policy, one variant per policy type.
        // Statements are built once at load; variant sizes do not matter on the request path.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Debug)]
        pub enum StmtKind {
            $( $variant($ty), )*
        }

        /// Every policy element gatehouse runs: its name, the sections it may appear in (a
        /// mask of `policy::catalog` bits) and its reader.
        pub const STATEMENTS: &[(&str, u8, StatementReader)] = &[
            $($( $( ($element, $sections, |r, e| {
                <$ty as Policy>::read(r, e).map(StmtKind::$variant)
            }), )+ )?)*
        ];

        impl StmtKind {
            pub fn needs(&self) -> Needs {
                match self { $( StmtKind::$variant(p) => p.needs(), )* }
            }

            pub fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
                match self { $( StmtKind::$variant(p) => p.exprs(f), )* }
            }

            pub fn children(&self) -> Vec<&Stmt> {
                match self { $( StmtKind::$variant(p) => p.children(), )* }
            }

            pub async fn run(&self, cx: &mut ExecCtx<'_>, at: &At<'_>) -> Outcome {
                match self { $( StmtKind::$variant(p) => p.run(cx, at).await, )* }
            }
        }
    };
}

/// Reads one policy element into its statement.
pub type StatementReader = fn(&mut Reader, &str) -> Option<StmtKind>;

policies! {
    Base(base::Base) = "base" in ALL;
    IncludeFragment(base::IncludeFragment) = "include-fragment" in ALL;
    SetHeader(set_header::SetHeader) = "set-header" in ALL;
    SetQueryParameter(set_query_parameter::SetQueryParameter) = "set-query-parameter" in I | B;
    SetMethod(set_method::SetMethod) = "set-method" in I | E;
    SetStatus(set_status::SetStatus) = "set-status" in ALL;
    SetBody(set_body::SetBody) = "set-body" in ALL;
    ReturnResponse(return_response::ReturnResponse) = "return-response" in ALL;
    MockResponse(mock_response::MockResponse) = "mock-response" in I | O | E;
    RewriteUri(rewrite_uri::RewriteUri) = "rewrite-uri" in I;
    SetBackendService(set_backend_service::BackendTarget) = "set-backend-service" in I | B;
    ForwardRequest(forward_request::ForwardRequest) = "forward-request" in B;
    Choose(choose::Choose) = "choose" in ALL;
    SetVariable(set_variable::SetVariable) = "set-variable" in ALL;
    Trace(trace::Trace) = "trace" in ALL;
    FindAndReplace(find_and_replace::FindAndReplace) = "find-and-replace" in ALL;
    RateLimit(rate_limit::RateLimit) = "rate-limit" in I;
    RateLimitByKey(rate_limit::RateLimitByKey) = "rate-limit-by-key" in I;
    Quota(quota::QuotaPolicy) = "quota" in I;
    QuotaByKey(quota::QuotaByKey) = "quota-by-key" in I;
    LimitConcurrency(limit_concurrency::LimitConcurrency) = "limit-concurrency" in ALL;
    // Not an element: compile turns a limit-concurrency around forward-request into this.
    AcquireSlot(limit_concurrency::AcquireSlot);
    CacheLookup(cache::CacheLookup) = "cache-lookup" in I;
    CacheStore(cache::CacheStore) = "cache-store" in O;
    CacheLookupValue(cache_value::CacheLookupValue) = "cache-lookup-value" in ALL;
    CacheStoreValue(cache_value::CacheStoreValue) = "cache-store-value" in ALL;
    CacheRemoveValue(cache_value::CacheRemoveValue) = "cache-remove-value" in ALL;
    Cors(cors::Cors) = "cors" in I;
    CheckHeader(access::CheckHeader) = "check-header" in I;
    IpFilter(access::IpFilter) = "ip-filter" in I;
    ValidateJwt(Box<jwt::ValidateJwt>) = "validate-jwt" in I, "validate-azure-ad-token" in I;
    AuthenticationBasic(access::AuthenticationBasic) = "authentication-basic" in I;
    AuthenticationCertificate(access::CertificateRef) = "authentication-certificate" in I;
    Retry(retry::Retry) = "retry" in ALL;
    Wait(wait::Wait) = "wait" in I | B | O;
    SendRequest(send_request::SendRequest) = "send-request" in ALL, "send-one-way-request" in ALL;
}

/// The sections a policy element may appear in, for elements gatehouse runs or knows.
pub fn allowed_sections(element: &str) -> Option<u8> {
    STATEMENTS
        .iter()
        .find(|(name, _, _)| *name == element)
        .map(|(_, mask, _)| *mask)
        .or_else(|| crate::policy::catalog::lookup(element).map(|(_, _, mask)| mask))
}

/// What a statement needs from the pipeline that runs it, decided once at load (the
/// expressions' own needs are added from `visit_exprs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Reads the request body (or sends a copy of it) when it runs on the request side.
    pub request_body: bool,
    /// Reads or keeps the backend's response body when it runs on the response side.
    pub response_body: bool,
    /// Replaces the request body when it runs on the request side (framing is rewritten).
    pub replaces_request_body: bool,
}

impl Needs {
    /// Nothing from the body: the policy works on headers, variables and the URL.
    pub const NONE: Needs = Needs {
        request_body: false,
        response_body: false,
        replaces_request_body: false,
    };
}

/// One policy statement, with where it came from.
#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    /// The XML element name, e.g. `set-header`.
    pub element: &'static str,
    pub id: Option<String>,
    pub span: Span,
    pub scope: Scope,
    /// The element as written (named values not substituted), for `explain`.
    pub display: String,
}

impl Stmt {
    /// Statements nested in this one.
    pub fn children(&self) -> Vec<&Stmt> {
        self.kind.children()
    }

    /// Every expression in this statement and its children.
    pub fn visit_exprs(&self, f: &mut dyn FnMut(&Expr)) {
        self.kind.exprs(f)
    }
}

/// A policy document: each section is `None` when omitted (treated as `<base/>`).
#[derive(Clone, Debug, Default)]
pub struct PolicyDoc {
    pub sections: [Option<Vec<Stmt>>; 4],
}

impl PolicyDoc {
    pub fn section(&self, s: Section) -> Option<&Vec<Stmt>> {
        self.sections[s.index()].as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_is_either_run_or_in_the_catalogue() {
        for (name, _, _) in STATEMENTS {
            assert!(
                crate::policy::catalog::lookup(name).is_none(),
                "<{name}> is run and also listed in policy::catalog"
            );
            assert_eq!(
                STATEMENTS.iter().filter(|(n, _, _)| n == name).count(),
                1,
                "<{name}> is registered twice"
            );
        }
    }
}
