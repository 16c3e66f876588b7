//! The typed policy AST: what a policy document means once read and checked. Values are
//! `Val::Lit` (prepared at load) or `Val::Expr` (evaluated per request).

use http::Method;

use crate::diag::Span;
use crate::expr::Expr;

// Each policy's typed form lives with its reader in policy/parse/<policy>.rs.
pub use super::parse::access::{CertificateRef, CheckHeader, IpFilter};
pub use super::parse::cache::{CacheLookup, CachingType};
pub use super::parse::choose::Choose;
pub use super::parse::cors::Cors;
pub use super::parse::forward_request::{ForwardRequest, HttpVersion};
pub use super::parse::jwt::{JwtKey, JwtKeyMaterial, RequiredClaim, TokenSource, ValidateJwt};
pub use super::parse::limits::{
    LimitOutputs, QuotaByKey, QuotaPolicy, RateLimit, RateLimitByKey, ScopedLimit,
};
pub use super::parse::retry::Retry;
pub use super::parse::return_response::{MockResponse, ReturnResponse};
pub use super::parse::rewrite_uri::RewriteUri;
pub use super::parse::send_request::SendRequest;
pub use super::parse::set_backend_service::BackendTarget;
pub use super::parse::set_header::SetHeader;
pub use super::parse::set_query_parameter::SetQueryParameter;
pub use super::parse::set_status::SetStatus;
pub use super::parse::variables::{Severity, Trace};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Inbound,
    Backend,
    Outbound,
    OnError,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::Inbound,
        Section::Backend,
        Section::Outbound,
        Section::OnError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Inbound => "inbound",
            Section::Backend => "backend",
            Section::Outbound => "outbound",
            Section::OnError => "on-error",
        }
    }

    pub fn from_name(s: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|x| x.name() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    Product,
    Api,
    Operation,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Product => "product",
            Scope::Api => "api",
            Scope::Operation => "operation",
        }
    }

    pub fn from_name(s: &str) -> Option<Scope> {
        [Scope::Global, Scope::Product, Scope::Api, Scope::Operation]
            .into_iter()
            .find(|x| x.name() == s)
    }
}

/// A literal prepared at load time, or an expression evaluated per request.
#[derive(Clone, Debug)]
pub enum Val<T> {
    Lit(T),
    Expr(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistsAction {
    Override,
    Skip,
    Append,
    Delete,
}

impl ExistsAction {
    pub fn parse(s: &str) -> Option<ExistsAction> {
        match s {
            "override" => Some(ExistsAction::Override),
            "skip" => Some(ExistsAction::Skip),
            "append" => Some(ExistsAction::Append),
            "delete" => Some(ExistsAction::Delete),
            _ => None,
        }
    }
}

/// One piece of a rewrite-uri template: literal text or a `{param}` placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    Param(String),
}

#[derive(Clone, Debug)]
pub struct UriTemplate {
    pub path: Vec<TemplatePart>,
    /// Query parameters named by the template: name and value template.
    pub query: Vec<(String, Vec<TemplatePart>)>,
}

// Statements are built once at load; variant sizes do not matter on the request path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum StmtKind {
    Base,
    IncludeFragment(String),
    SetHeader(SetHeader),
    SetQueryParameter(SetQueryParameter),
    SetMethod(Val<Method>),
    SetStatus(SetStatus),
    SetBody(Val<String>),
    ReturnResponse(ReturnResponse),
    MockResponse(MockResponse),
    RewriteUri(RewriteUri),
    SetBackendService(BackendTarget),
    ForwardRequest(ForwardRequest),
    Choose(Choose),
    /// `value`: a literal is stored as a string; an expression's value is stored as it is.
    SetVariable {
        name: String,
        value: Val<String>,
    },
    Trace(Trace),
    FindAndReplace {
        from: Val<String>,
        to: Val<String>,
    },
    SendRequest(SendRequest),
    CacheLookup(CacheLookup),
    /// `duration` seconds; `cache_response`: None = only 200s are stored.
    CacheStore {
        duration: Val<u64>,
        cache_response: Option<Val<bool>>,
    },
    /// `<limit-concurrency key max-count>` around nested statements.
    LimitConcurrency {
        key: Val<String>,
        max: u64,
        body: Vec<Stmt>,
    },
    /// `<retry>` around nested statements.
    Retry(Retry),
    CheckHeader(CheckHeader),
    Cors(Cors),
    /// `<validate-jwt>` and `<validate-azure-ad-token>` (compiled to the same check).
    ValidateJwt(Box<ValidateJwt>),
    IpFilter(IpFilter),
    /// `<authentication-basic username password>`.
    AuthenticationBasic {
        username: Val<String>,
        password: Val<String>,
    },
    /// `<authentication-certificate>`: the client certificate for the backend call.
    AuthenticationCertificate(CertificateRef),
    /// `<wait for="all|any">`: send-request, cache-lookup-value and choose children run
    /// concurrently.
    Wait {
        any: Val<bool>,
        body: Vec<Stmt>,
    },
    /// Takes a slot held until the request ends (a limit-concurrency around forward-request).
    AcquireSlot {
        key: Val<String>,
        max: u64,
    },
    CacheLookupValue {
        key: Val<String>,
        variable: String,
        default: Option<Val<String>>,
        caching: CachingType,
    },
    CacheStoreValue {
        key: Val<String>,
        value: Val<String>,
        duration: Val<u64>,
        caching: CachingType,
    },
    CacheRemoveValue {
        key: Val<String>,
        caching: CachingType,
    },
    RateLimitByKey(RateLimitByKey),
    RateLimit(RateLimit),
    QuotaByKey(QuotaByKey),
    Quota(QuotaPolicy),
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

impl StmtKind {
    /// The pipeline needs of this statement alone (not of its children). The match names every
    /// policy, so a new one cannot be added without deciding what it needs.
    pub fn needs(&self) -> Needs {
        let none = Needs::default();
        match self {
            // find-and-replace edits the body of the side it runs on.
            StmtKind::FindAndReplace { .. } => Needs {
                request_body: true,
                response_body: true,
                ..none
            },
            // send-request mode="copy" (the default) sends a copy of the request body.
            StmtKind::SendRequest(r) => Needs {
                request_body: !matches!(&r.copy, Val::Lit(m) if m == "new"),
                ..none
            },
            // cache-store saves the response body.
            StmtKind::CacheStore { .. } => Needs {
                response_body: true,
                ..none
            },
            StmtKind::SetBody(_) => Needs {
                replaces_request_body: true,
                ..none
            },
            StmtKind::Base
            | StmtKind::IncludeFragment(_)
            | StmtKind::SetHeader(_)
            | StmtKind::SetQueryParameter(_)
            | StmtKind::SetMethod(_)
            | StmtKind::SetStatus(_)
            | StmtKind::ReturnResponse(_)
            | StmtKind::MockResponse(_)
            | StmtKind::RewriteUri(_)
            | StmtKind::SetBackendService(_)
            | StmtKind::ForwardRequest(_)
            | StmtKind::Choose(_)
            | StmtKind::SetVariable { .. }
            | StmtKind::Trace(_)
            | StmtKind::CacheLookup(_)
            | StmtKind::LimitConcurrency { .. }
            | StmtKind::Retry(_)
            | StmtKind::CheckHeader(_)
            | StmtKind::Cors(_)
            | StmtKind::ValidateJwt(_)
            | StmtKind::IpFilter(_)
            | StmtKind::AuthenticationBasic { .. }
            | StmtKind::AuthenticationCertificate(_)
            | StmtKind::Wait { .. }
            | StmtKind::AcquireSlot { .. }
            | StmtKind::CacheLookupValue { .. }
            | StmtKind::CacheStoreValue { .. }
            | StmtKind::CacheRemoveValue { .. }
            | StmtKind::RateLimitByKey(_)
            | StmtKind::RateLimit(_)
            | StmtKind::QuotaByKey(_)
            | StmtKind::Quota(_) => none,
        }
    }
}

impl Stmt {
    /// Statements nested in this one (choose branches).
    pub fn children(&self) -> Vec<&Stmt> {
        match &self.kind {
            StmtKind::Choose(c) => c
                .whens
                .iter()
                .flat_map(|(_, b)| b.iter())
                .chain(c.otherwise.iter().flatten())
                .collect(),
            StmtKind::LimitConcurrency { body, .. }
            | StmtKind::Retry(Retry { body, .. })
            | StmtKind::Wait { body, .. } => body.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Every expression in this statement and its children.
    pub fn visit_exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        match &self.kind {
            StmtKind::SetHeader(p) => p.exprs(f),
            StmtKind::SetQueryParameter(p) => p.exprs(f),
            StmtKind::SetMethod(m) => visit_val(m, f),
            StmtKind::SetStatus(p) => p.exprs(f),
            StmtKind::SetBody(b) => visit_val(b, f),
            StmtKind::ReturnResponse(p) => p.exprs(f),
            StmtKind::RewriteUri(p) => p.exprs(f),
            StmtKind::SetBackendService(
                BackendTarget::BaseUrl(x) | BackendTarget::BackendId(x),
            ) => visit_val(x, f),
            StmtKind::ForwardRequest(p) => p.exprs(f),
            StmtKind::Choose(p) => p.exprs(f),
            StmtKind::SetVariable { value, .. } => visit_val(value, f),
            StmtKind::Trace(p) => p.exprs(f),
            StmtKind::FindAndReplace { from, to } => {
                visit_val(from, f);
                visit_val(to, f);
            }
            StmtKind::CacheLookup(p) => p.exprs(f),
            StmtKind::CacheStore {
                duration,
                cache_response,
            } => {
                visit_val(duration, f);
                if let Some(c) = cache_response {
                    visit_val(c, f);
                }
            }
            StmtKind::LimitConcurrency { key, body, .. } => {
                visit_val(key, f);
                body.iter().for_each(|s| s.visit_exprs(f));
            }
            StmtKind::Retry(p) => p.exprs(f),
            StmtKind::Wait { any, body } => {
                visit_val(any, f);
                body.iter().for_each(|s| s.visit_exprs(f));
            }
            StmtKind::ValidateJwt(p) => p.exprs(f),
            StmtKind::Cors(p) => p.exprs(f),
            StmtKind::CheckHeader(p) => p.exprs(f),
            StmtKind::IpFilter(p) => p.exprs(f),
            StmtKind::AuthenticationBasic { username, password } => {
                visit_val(username, f);
                visit_val(password, f);
            }
            StmtKind::AcquireSlot { key, .. } => visit_val(key, f),
            StmtKind::AuthenticationCertificate(_) => {}
            StmtKind::SendRequest(p) => p.exprs(f),
            StmtKind::CacheLookupValue { key, default, .. } => {
                visit_val(key, f);
                if let Some(d) = default {
                    visit_val(d, f);
                }
            }
            StmtKind::CacheStoreValue {
                key,
                value,
                duration,
                ..
            } => {
                visit_val(key, f);
                visit_val(value, f);
                visit_val(duration, f);
            }
            StmtKind::CacheRemoveValue { key, .. } => visit_val(key, f),
            StmtKind::RateLimitByKey(p) => p.exprs(f),
            StmtKind::QuotaByKey(p) => p.exprs(f),
            StmtKind::Base
            | StmtKind::IncludeFragment(_)
            | StmtKind::MockResponse(_)
            | StmtKind::RateLimit(_)
            | StmtKind::Quota(_) => {}
        }
    }
}

/// Call `f` with the expression of a value, if it is one.
pub fn visit_val<T>(x: &Val<T>, f: &mut dyn FnMut(&crate::expr::Expr)) {
    if let Val::Expr(e) = x {
        f(e);
    }
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
