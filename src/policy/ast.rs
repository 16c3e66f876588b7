//! The typed policy AST: what a policy document means once read and checked. Values are
//! `Val::Lit` (prepared at load) or `Val::Expr` (evaluated per request).

use http::{HeaderName, HeaderValue, Method};

use crate::diag::Span;
use crate::expr::Expr;

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

#[derive(Clone, Debug)]
pub struct SetHeader {
    pub name: Val<HeaderName>,
    pub action: Val<ExistsAction>,
    pub values: Vec<Val<HeaderValue>>,
}

#[derive(Clone, Debug)]
pub struct SetQueryParameter {
    pub name: Val<String>,
    pub action: Val<ExistsAction>,
    pub values: Vec<Val<String>>,
}

#[derive(Clone, Debug)]
pub struct SetStatus {
    pub code: Val<u16>,
    pub reason: Option<Val<String>>,
}

#[derive(Clone, Debug)]
pub struct ReturnResponse {
    /// A variable holding an `IResponse` (from send-request) to start from.
    pub response_variable: Option<String>,
    pub status: Option<SetStatus>,
    pub headers: Vec<SetHeader>,
    pub body: Option<Val<String>>,
}

#[derive(Clone, Debug)]
pub struct MockResponse {
    pub status: u16,
    pub content_type: Option<String>,
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

#[derive(Clone, Debug)]
pub struct RewriteUri {
    pub template: Val<UriTemplate>,
    pub copy_unmatched_params: Val<bool>,
}

#[derive(Clone, Debug)]
pub enum BackendTarget {
    BaseUrl(Val<String>),
    BackendId(Val<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    Http1,
    Http2Or1,
    Http2,
}

#[derive(Clone, Debug)]
pub struct ForwardRequest {
    /// Time to wait for the backend's response headers, in milliseconds. `None`: the
    /// backend entity's `timeout`, else 300 s.
    pub timeout_ms: Option<Val<u64>>,
    pub follow_redirects: Val<bool>,
    pub buffer_request_body: bool,
    pub buffer_response: bool,
    pub fail_on_error_status_code: bool,
    pub http_version: HttpVersion,
}

#[derive(Clone, Debug)]
pub struct Choose {
    pub whens: Vec<(Val<bool>, Vec<Stmt>)>,
    pub otherwise: Option<Vec<Stmt>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Verbose,
    Information,
    Error,
}

#[derive(Clone, Debug)]
pub struct Trace {
    pub source: String,
    pub severity: Severity,
    pub message: Val<String>,
    pub metadata: Vec<(String, Val<String>)>,
}

/// Response headers and variables the rate-limit and quota policies set.
#[derive(Clone, Debug, Default)]
pub struct LimitOutputs {
    pub retry_after_header: Option<HeaderName>,
    pub retry_after_variable: Option<String>,
    pub remaining_header: Option<HeaderName>,
    pub remaining_variable: Option<String>,
    pub total_header: Option<HeaderName>,
}

#[derive(Clone, Debug)]
pub struct RateLimitByKey {
    pub calls: Val<u64>,
    pub period: Val<u64>,
    pub key: Val<String>,
    pub increment_condition: Option<Val<bool>>,
    pub increment_count: Option<Val<u64>>,
    pub outputs: LimitOutputs,
}

/// A nested `<api>` / `<operation>` limit of rate-limit or quota: matched by id (or name).
#[derive(Clone, Debug)]
pub struct ScopedLimit {
    pub api: String,
    pub operation: Option<String>,
    pub calls: u64,
    pub bandwidth_kb: u64,
    pub period: u64,
}

#[derive(Clone, Debug)]
pub struct RateLimit {
    pub calls: u64,
    pub period: u64,
    pub nested: Vec<ScopedLimit>,
    pub outputs: LimitOutputs,
}

#[derive(Clone, Debug)]
pub struct QuotaByKey {
    pub key: Val<String>,
    pub calls: u64,
    pub bandwidth_kb: u64,
    /// Seconds; 0 = the quota never renews.
    pub period: u64,
    pub increment_condition: Option<Val<bool>>,
    pub increment_count: Option<Val<u64>>,
    /// Unix seconds the windows are aligned to.
    pub first_period_start: i64,
}

/// Where validate-jwt reads the token.
#[derive(Clone, Debug)]
pub enum TokenSource {
    Header(Val<String>),
    Query(Val<String>),
    Value(Val<String>),
}

/// A configured signing key (`<issuer-signing-keys><key>`).
#[derive(Clone, Debug)]
pub enum JwtKeyMaterial {
    /// Symmetric (HS*), decoded from base64.
    Secret(Vec<u8>),
    /// RSA modulus and exponent, base64url.
    Rsa { n: String, e: String },
    /// The public key of a configured certificate.
    Certificate(String),
}

#[derive(Clone, Debug)]
pub struct JwtKey {
    pub id: Option<String>,
    pub material: JwtKeyMaterial,
}

#[derive(Clone, Debug)]
pub struct RequiredClaim {
    pub name: String,
    /// `match="all"` (default) or `any`.
    pub all: bool,
    pub separator: Option<String>,
    pub values: Vec<Val<String>>,
}

#[derive(Clone, Debug)]
pub struct ValidateJwt {
    pub source: TokenSource,
    /// The token came from `Authorization` (require-scheme applies only then).
    pub from_authorization: bool,
    pub code: Val<u16>,
    pub message: Option<Val<String>>,
    pub require_expiration: Val<bool>,
    pub require_scheme: Option<Val<String>>,
    pub require_signed: Val<bool>,
    pub clock_skew: Val<u64>,
    pub output_variable: Option<String>,
    /// Discovery documents (`openid-config url`).
    pub openid: Vec<String>,
    pub keys: Vec<JwtKey>,
    pub audiences: Vec<Val<String>>,
    pub issuers: Vec<Val<String>>,
    pub claims: Vec<RequiredClaim>,
    /// validate-azure-ad-token: `azp` / `appid` must be one of these.
    pub client_application_ids: Vec<Val<String>>,
    /// `keys` decoded once, on first use (certificate keys need the gateway's certificates).
    pub decoded_keys: std::sync::OnceLock<Vec<crate::codec::jwk::Key>>,
}

/// `<cors>` (apim-reference.md §2.6). Origins are normalised `scheme://host[:port]` (default
/// ports dropped) or `*`; methods upper-case (`*` = any); headers lower-case (`*` = any).
#[derive(Clone, Debug)]
pub struct Cors {
    pub allow_credentials: Val<bool>,
    pub terminate_unmatched: Val<bool>,
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub max_age: Val<u64>,
    pub headers: Vec<String>,
    pub expose: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct CheckHeader {
    pub name: Val<String>,
    pub code: Val<u16>,
    pub message: Val<String>,
    pub ignore_case: Val<bool>,
    pub values: Vec<Val<String>>,
}

#[derive(Clone, Debug)]
pub struct IpFilter {
    /// `action="allow"` (true) or `forbid`.
    pub allow: Val<bool>,
    pub addresses: Vec<Val<String>>,
    pub ranges: Vec<(Val<String>, Val<String>)>,
}

/// `<retry>`: times in seconds.
#[derive(Clone, Debug)]
pub struct Retry {
    pub condition: Val<bool>,
    pub count: Val<u64>,
    pub interval: Val<u64>,
    pub delta: Option<Val<u64>>,
    pub max_interval: Option<Val<u64>>,
    pub first_fast_retry: Val<bool>,
    pub body: Vec<Stmt>,
}

#[derive(Clone, Debug)]
pub struct SendRequest {
    /// `new` or `copy`.
    pub copy: Val<String>,
    /// None for send-one-way-request.
    pub response_variable: Option<String>,
    /// Seconds.
    pub timeout: Val<u64>,
    pub ignore_error: bool,
    pub url: Option<Val<String>>,
    pub method: Option<Val<Method>>,
    pub headers: Vec<SetHeader>,
    pub body: Option<Val<String>>,
    /// `<authentication-certificate>`: a configured certificate by id or thumbprint.
    pub certificate: Option<CertificateRef>,
    /// `<proxy url username password>`: an HTTP forward proxy (http:// URLs).
    pub proxy: Option<crate::net::proxy::ForwardProxy>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateRef {
    Id(String),
    /// SHA-1 of the DER certificate, upper-case hex.
    Thumbprint(String),
}

#[derive(Clone, Debug)]
pub struct CacheLookup {
    pub vary_by_developer: Val<bool>,
    pub vary_by_developer_groups: Val<bool>,
    pub caching: CachingType,
    /// `none`, `private` or `public`.
    pub downstream: Val<String>,
    pub must_revalidate: Val<bool>,
    pub allow_private: Val<bool>,
    pub vary_headers: Vec<String>,
    pub vary_query: Vec<String>,
}

/// `caching-type`: which cache a cache policy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachingType {
    Internal,
    External,
    PreferExternal,
}

#[derive(Clone, Debug)]
pub struct QuotaPolicy {
    pub calls: u64,
    pub bandwidth_kb: u64,
    pub period: u64,
    pub nested: Vec<ScopedLimit>,
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
        fn v<T>(x: &Val<T>, f: &mut dyn FnMut(&crate::expr::Expr)) {
            if let Val::Expr(e) = x {
                f(e);
            }
        }
        match &self.kind {
            StmtKind::SetHeader(h) => {
                v(&h.name, f);
                v(&h.action, f);
                h.values.iter().for_each(|x| v(x, f));
            }
            StmtKind::SetQueryParameter(q) => {
                v(&q.name, f);
                v(&q.action, f);
                q.values.iter().for_each(|x| v(x, f));
            }
            StmtKind::SetMethod(m) => v(m, f),
            StmtKind::SetStatus(s) => {
                v(&s.code, f);
                if let Some(r) = &s.reason {
                    v(r, f);
                }
            }
            StmtKind::SetBody(b) => v(b, f),
            StmtKind::ReturnResponse(r) => {
                if let Some(s) = &r.status {
                    v(&s.code, f);
                    if let Some(x) = &s.reason {
                        v(x, f);
                    }
                }
                for h in &r.headers {
                    v(&h.name, f);
                    v(&h.action, f);
                    h.values.iter().for_each(|x| v(x, f));
                }
                if let Some(b) = &r.body {
                    v(b, f);
                }
            }
            StmtKind::RewriteUri(r) => {
                v(&r.template, f);
                v(&r.copy_unmatched_params, f);
            }
            StmtKind::SetBackendService(
                BackendTarget::BaseUrl(x) | BackendTarget::BackendId(x),
            ) => v(x, f),
            StmtKind::ForwardRequest(fr) => {
                if let Some(t) = &fr.timeout_ms {
                    v(t, f);
                }
                v(&fr.follow_redirects, f);
            }
            StmtKind::Choose(c) => {
                for (cond, body) in &c.whens {
                    v(cond, f);
                    body.iter().for_each(|s| s.visit_exprs(f));
                }
                c.otherwise.iter().flatten().for_each(|s| s.visit_exprs(f));
            }
            StmtKind::SetVariable { value, .. } => v(value, f),
            StmtKind::Trace(t) => {
                v(&t.message, f);
                t.metadata.iter().for_each(|(_, x)| v(x, f));
            }
            StmtKind::FindAndReplace { from, to } => {
                v(from, f);
                v(to, f);
            }
            StmtKind::CacheLookup(c) => {
                v(&c.vary_by_developer, f);
                v(&c.vary_by_developer_groups, f);
                v(&c.downstream, f);
                v(&c.must_revalidate, f);
                v(&c.allow_private, f);
            }
            StmtKind::CacheStore {
                duration,
                cache_response,
            } => {
                v(duration, f);
                if let Some(c) = cache_response {
                    v(c, f);
                }
            }
            StmtKind::LimitConcurrency { key, body, .. } => {
                v(key, f);
                body.iter().for_each(|s| s.visit_exprs(f));
            }
            StmtKind::Retry(r) => {
                v(&r.condition, f);
                v(&r.count, f);
                v(&r.interval, f);
                if let Some(d) = &r.delta {
                    v(d, f);
                }
                if let Some(m) = &r.max_interval {
                    v(m, f);
                }
                v(&r.first_fast_retry, f);
                r.body.iter().for_each(|s| s.visit_exprs(f));
            }
            StmtKind::Wait { any, body } => {
                v(any, f);
                body.iter().for_each(|s| s.visit_exprs(f));
            }
            StmtKind::ValidateJwt(j) => {
                match &j.source {
                    TokenSource::Header(x) | TokenSource::Query(x) | TokenSource::Value(x) => {
                        v(x, f)
                    }
                }
                v(&j.code, f);
                if let Some(m) = &j.message {
                    v(m, f);
                }
                v(&j.require_expiration, f);
                if let Some(s) = &j.require_scheme {
                    v(s, f);
                }
                v(&j.require_signed, f);
                v(&j.clock_skew, f);
                j.audiences.iter().for_each(|x| v(x, f));
                j.issuers.iter().for_each(|x| v(x, f));
                j.client_application_ids.iter().for_each(|x| v(x, f));
                for c in &j.claims {
                    c.values.iter().for_each(|x| v(x, f));
                }
            }
            StmtKind::Cors(c) => {
                v(&c.allow_credentials, f);
                v(&c.terminate_unmatched, f);
                v(&c.max_age, f);
            }
            StmtKind::CheckHeader(c) => {
                v(&c.name, f);
                v(&c.code, f);
                v(&c.message, f);
                v(&c.ignore_case, f);
                c.values.iter().for_each(|x| v(x, f));
            }
            StmtKind::IpFilter(i) => {
                v(&i.allow, f);
                i.addresses.iter().for_each(|x| v(x, f));
                for (a, b) in &i.ranges {
                    v(a, f);
                    v(b, f);
                }
            }
            StmtKind::AuthenticationBasic { username, password } => {
                v(username, f);
                v(password, f);
            }
            StmtKind::AcquireSlot { key, .. } => v(key, f),
            StmtKind::AuthenticationCertificate(_) => {}
            StmtKind::SendRequest(r) => {
                v(&r.copy, f);
                v(&r.timeout, f);
                if let Some(u) = &r.url {
                    v(u, f);
                }
                if let Some(m) = &r.method {
                    v(m, f);
                }
                for h in &r.headers {
                    v(&h.name, f);
                    v(&h.action, f);
                    h.values.iter().for_each(|x| v(x, f));
                }
                if let Some(b) = &r.body {
                    v(b, f);
                }
            }
            StmtKind::CacheLookupValue { key, default, .. } => {
                v(key, f);
                if let Some(d) = default {
                    v(d, f);
                }
            }
            StmtKind::CacheStoreValue {
                key,
                value,
                duration,
                ..
            } => {
                v(key, f);
                v(value, f);
                v(duration, f);
            }
            StmtKind::CacheRemoveValue { key, .. } => v(key, f),
            StmtKind::RateLimitByKey(r) => {
                v(&r.calls, f);
                v(&r.period, f);
                v(&r.key, f);
                if let Some(c) = &r.increment_condition {
                    v(c, f);
                }
                if let Some(c) = &r.increment_count {
                    v(c, f);
                }
            }
            StmtKind::QuotaByKey(q) => {
                v(&q.key, f);
                if let Some(c) = &q.increment_condition {
                    v(c, f);
                }
                if let Some(c) = &q.increment_count {
                    v(c, f);
                }
            }
            StmtKind::Base
            | StmtKind::IncludeFragment(_)
            | StmtKind::MockResponse(_)
            | StmtKind::RateLimit(_)
            | StmtKind::Quota(_) => {}
        }
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
