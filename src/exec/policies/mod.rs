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
use crate::exec::{ExecCtx, Flow, FlowFuture, Origin, PolicyError, StepError};
use crate::expr::Expr;
use crate::policy::catalog::{ALL, B, E, I, O};
use crate::policy::reader::Reader;
use crate::policy::{Scope, Section};

// The prelude the policy modules share (`use super::*`).
use crate::diag::Invalid;
use crate::policy::reader::{
    not_allowed, parse_action, parse_bool, parse_header_name, parse_header_value, parse_method,
    parse_period, parse_start, parse_status, parse_u64, parse_uri_template, substitute,
    substitute_known,
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
pub mod cross_domain;
pub mod emit_metric;
pub mod find_and_replace;
pub mod forward_request;
pub mod json_to_xml;
pub mod jsonp;
pub mod jwt;
pub mod limit_concurrency;
pub mod limits;
pub mod managed_identity;
pub mod mock_response;
pub mod proxy;
pub mod quota;
pub mod rate_limit;
pub mod redirect_content_urls;
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
pub mod validate_client_certificate;
pub mod validate_content;
pub mod validate_headers;
pub mod validate_odata_request;
pub mod validate_parameters;
pub mod validate_status_code;
pub mod validation;
pub mod wait;
pub mod xml_to_json;
pub mod xsl_transform;

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

    /// A limit policy that counts in the store (it may share a store call with its neighbours).
    fn counts(&self) -> Option<&dyn limits::Counts> {
        None
    }

    /// A policy whose first store read may start beside the limit statements before it.
    fn reads_ahead(&self) -> Option<&dyn limits::ReadsAhead> {
        None
    }
}

/// How a policy that never waits runs (headers, variables, the URL, a response built from the
/// request): a plain call, no future. `at` places it (for `LastError.Path`).
pub trait RunsNow: Policy {
    fn run(&self, cx: &mut ExecCtx<'_>, at: &At<'_>) -> Outcome;
}

/// How a policy that waits runs (the store, the network, timers, nested statements).
pub trait Waits: Policy {
    fn run(&self, cx: &mut ExecCtx<'_>, at: &At<'_>) -> impl Future<Output = Outcome> + Send;
}

/// A large policy is boxed in its table line so that every statement stays small (each one is
/// copied into every pipeline that composes it; the policies above 250 bytes are boxed).
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

    fn counts(&self) -> Option<&dyn limits::Counts> {
        (**self).counts()
    }

    fn reads_ahead(&self) -> Option<&dyn limits::ReadsAhead> {
        (**self).reads_ahead()
    }
}

impl<T: RunsNow> RunsNow for Box<T> {
    fn run(&self, cx: &mut ExecCtx<'_>, at: &At<'_>) -> Outcome {
        (**self).run(cx, at)
    }
}

impl<T: Waits> Waits for Box<T> {
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

/// The registry: one line per policy type, in the group of how it runs. Generates `StmtKind`
/// (one variant per type), the element table the reader dispatches on, and the dispatch of
/// `needs`, `exprs`, `children` and running (a `match`: static calls; a policy that never waits
/// runs without creating a future).
macro_rules! policies {
    (
        runs_now { $( $now:ident($now_ty:ty) = $($now_el:literal in $now_in:expr),+ ; )* }
        waits { $( $wait:ident($wait_ty:ty) $(= $($wait_el:literal in $wait_in:expr),+)? ; )* }
    ) => {
        /// A statement's policy, one variant per policy type.
        // Statements are built once at load; variant sizes do not matter on the request path.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Debug)]
        pub enum StmtKind {
            $( $now($now_ty), )*
            $( $wait($wait_ty), )*
        }

        /// Every policy element gatehouse runs: its name, the sections it may appear in (a
        /// mask of `policy::catalog` bits) and its reader.
        pub const STATEMENTS: &[(&str, u8, StatementReader)] = &[
            $( $( ($now_el, $now_in, |r, e| {
                <$now_ty as Policy>::read(r, e).map(StmtKind::$now)
            }), )+ )*
            $($( $( ($wait_el, $wait_in, |r, e| {
                <$wait_ty as Policy>::read(r, e).map(StmtKind::$wait)
            }), )+ )?)*
        ];

        impl StmtKind {
            pub fn needs(&self) -> Needs {
                match self {
                    $( StmtKind::$now(p) => p.needs(), )*
                    $( StmtKind::$wait(p) => p.needs(), )*
                }
            }

            pub fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
                match self {
                    $( StmtKind::$now(p) => p.exprs(f), )*
                    $( StmtKind::$wait(p) => p.exprs(f), )*
                }
            }

            pub fn children(&self) -> Vec<&Stmt> {
                match self {
                    $( StmtKind::$now(p) => p.children(), )*
                    $( StmtKind::$wait(p) => p.children(), )*
                }
            }

            pub fn counts(&self) -> Option<&dyn limits::Counts> {
                match self {
                    $( StmtKind::$now(p) => p.counts(), )*
                    $( StmtKind::$wait(p) => p.counts(), )*
                }
            }

            pub fn reads_ahead(&self) -> Option<&dyn limits::ReadsAhead> {
                match self {
                    $( StmtKind::$now(p) => p.reads_ahead(), )*
                    $( StmtKind::$wait(p) => p.reads_ahead(), )*
                }
            }

        }

        /// Run statements in order, stopping at the first that responds or fails; `prefix`
        /// places them (`LastError.Path`). Generated with the registry so that running a
        /// statement is a static call in place: a policy that never waits creates no future,
        /// and a waiting one's future is part of this section's.
        pub(crate) fn run_nested<'a, 'b: 'a>(
            stmts: &'a [Stmt],
            cx: &'a mut ExecCtx<'b>,
            prefix: String,
        ) -> FlowFuture<'a> {
            Box::pin(async move {
                let mut i = 0;
                while i < stmts.len() {
                    let inspected = cx
                        .req
                        .inspector
                        .is_some()
                        .then(|| (std::time::Instant::now(), cx.req.traces.len()));
                    // Limit statements in a row count in one store call (beside the first read
                    // of a cache lookup right after them).
                    if limits::batchable(stmts, i) {
                        let outcomes = limits::run_together(stmts, i, cx).await;
                        for outcome in outcomes {
                            if let Some(flow) = settle(stmts, i, &prefix, cx, inspected, outcome) {
                                return flow;
                            }
                            i += 1;
                        }
                        continue;
                    }
                    let st = &stmts[i];
                    let at = At {
                        stmts,
                        index: i,
                        prefix: &prefix,
                    };
                    let outcome = match &st.kind {
                        $( StmtKind::$now(p) => RunsNow::run(p, cx, &at), )*
                        $( StmtKind::$wait(p) => Waits::run(p, cx, &at).await, )*
                    };
                    if let Some(flow) = settle(stmts, i, &prefix, cx, inspected, outcome) {
                        return flow;
                    }
                    i += 1;
                }
                Flow::Continue
            })
        }

        /// The size of each waiting policy's future (every section's future holds the largest).
        #[cfg(test)]
        fn waiting_future_sizes() -> Vec<(&'static str, usize)> {
            vec![ $( (
                stringify!($wait),
                future_size::<$wait_ty, _, _>(|p, cx, at| Waits::run(p, cx, at)),
            ), )* ]
        }
    };
}

/// After statement `i` ran: record it in the trace when inspected, and the flow that ends the
/// section if it responded or failed (`None`: go on).
fn settle(
    stmts: &[Stmt],
    i: usize,
    prefix: &str,
    cx: &mut ExecCtx<'_>,
    inspected: Option<(std::time::Instant, usize)>,
    outcome: Outcome,
) -> Option<Flow> {
    let st = &stmts[i];
    let at = At {
        stmts,
        index: i,
        prefix,
    };
    if let Some((t0, traces)) = inspected {
        inspect(cx, st, &at, t0, traces, &outcome);
    }
    match outcome {
        Ok(Step::Next) => None,
        Ok(Step::Respond { run_outbound }) => Some(Flow::Respond {
            origin: Origin::policy(st, cx.section),
            run_outbound,
        }),
        Ok(Step::End(flow)) => Some(flow),
        Err(e) => Some(Flow::Fail(PolicyError::at(e, st, cx.section, at.path()))),
    }
}

/// Record one statement in the request's trace (`inspector`): where it is, how long it took,
/// how it ended, and the `trace` messages it wrote.
fn inspect(
    cx: &mut ExecCtx<'_>,
    st: &Stmt,
    at: &At<'_>,
    t0: std::time::Instant,
    traces: usize,
    outcome: &Outcome,
) {
    let messages: Vec<serde_json::Value> = cx.req.traces[traces.min(cx.req.traces.len())..]
        .iter()
        .map(|t| serde_json::json!({"source": t.source, "severity": t.severity, "message": t.message}))
        .collect();
    let (result, error) = match outcome {
        Ok(Step::Next) => ("continue", None),
        Ok(Step::Respond { .. }) => ("respond", None),
        Ok(Step::End(_)) => ("end", None),
        Err(e) => (
            "error",
            Some(serde_json::json!({"reason": e.kind.reason(), "message": e.message})),
        ),
    };
    let section = cx.section;
    let path = at.path();
    let took = t0.elapsed();
    cx.req.inspect(section, st.element, || {
        let mut d = serde_json::json!({
            "scope": st.scope.name(),
            "path": path,
            "duration": format!("{:.3} ms", took.as_secs_f64() * 1000.0),
            "result": result,
        });
        if let Some(id) = &st.id {
            d["policyId"] = serde_json::Value::String(id.clone());
        }
        if let Some(e) = error {
            d["error"] = e;
        }
        if !messages.is_empty() {
            d["messages"] = serde_json::Value::Array(messages);
        }
        d
    });
}

/// Reads one policy element into its statement.
pub type StatementReader = fn(&mut Reader, &str) -> Option<StmtKind>;

policies! {
    runs_now {
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
        SetVariable(set_variable::SetVariable) = "set-variable" in ALL;
        Trace(trace::Trace) = "trace" in ALL;
        FindAndReplace(find_and_replace::FindAndReplace) = "find-and-replace" in ALL;
        Cors(Box<cors::Cors>) = "cors" in I;
        CrossDomain(cross_domain::CrossDomain) = "cross-domain" in I;
        CheckHeader(access::CheckHeader) = "check-header" in I;
        IpFilter(access::IpFilter) = "ip-filter" in I;
        ValidateParameters(validate_parameters::ValidateParameters) = "validate-parameters" in I;
        ValidateHeaders(validate_headers::ValidateHeaders) = "validate-headers" in O | E;
        ValidateStatusCode(validate_status_code::ValidateStatusCode) = "validate-status-code" in O | E;
        ValidateODataRequest(validate_odata_request::ValidateODataRequest) = "validate-odata-request" in I;
        ValidateClientCertificate(validate_client_certificate::ValidateClientCertificate) = "validate-client-certificate" in I;
        AuthenticationBasic(access::AuthenticationBasic) = "authentication-basic" in I;
        AuthenticationCertificate(access::CertificateRef) = "authentication-certificate" in I;
        XmlToJson(xml_to_json::XmlToJson) = "xml-to-json" in I | O | E;
        JsonToXml(Box<json_to_xml::JsonToXml>) = "json-to-xml" in I | O | E;
        Jsonp(jsonp::Jsonp) = "jsonp" in O;
        RedirectContentUrls(redirect_content_urls::RedirectContentUrls) = "redirect-content-urls" in I | O;
        EmitMetric(emit_metric::EmitMetric) = "emit-metric" in ALL;
        Proxy(proxy::Proxy) = "proxy" in I;
    }
    waits {
        ForwardRequest(forward_request::ForwardRequest) = "forward-request" in B;
        Choose(choose::Choose) = "choose" in ALL;
        RateLimit(rate_limit::RateLimit) = "rate-limit" in I;
        RateLimitByKey(Box<rate_limit::RateLimitByKey>) = "rate-limit-by-key" in I;
        Quota(quota::QuotaPolicy) = "quota" in I;
        QuotaByKey(quota::QuotaByKey) = "quota-by-key" in I;
        LimitConcurrency(limit_concurrency::LimitConcurrency) = "limit-concurrency" in ALL;
        // Not an element: compile turns a limit-concurrency around forward-request into this.
        AcquireSlot(limit_concurrency::AcquireSlot);
        XslTransform(xsl_transform::XslTransform) = "xsl-transform" in I | O | E;
        ValidateContent(Box<validate_content::ValidateContent>) = "validate-content" in I | O | E;
        CacheLookup(Box<cache::CacheLookup>) = "cache-lookup" in I;
        CacheStore(cache::CacheStore) = "cache-store" in O;
        CacheLookupValue(cache_value::CacheLookupValue) = "cache-lookup-value" in ALL;
        CacheStoreValue(cache_value::CacheStoreValue) = "cache-store-value" in ALL;
        CacheRemoveValue(cache_value::CacheRemoveValue) = "cache-remove-value" in ALL;
        ValidateJwt(Box<jwt::ValidateJwt>) = "validate-jwt" in I, "validate-azure-ad-token" in I;
        Retry(Box<retry::Retry>) = "retry" in ALL;
        Wait(wait::Wait) = "wait" in I | B | O;
        SendRequest(Box<send_request::SendRequest>) = "send-request" in ALL, "send-one-way-request" in ALL;
        AuthenticationManagedIdentity(managed_identity::ManagedIdentity) = "authentication-managed-identity" in I;
    }
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
    /// The element as written (named values not substituted), for `explain`. Shared by the
    /// copies composition makes of a statement (a global policy's statements are in every
    /// operation's pipeline).
    pub display: std::sync::Arc<str>,
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

    /// docs/policies.md names every element gatehouse runs or knows.
    #[test]
    fn the_policy_page_lists_every_element() {
        let page = include_str!("../../../docs/policies.md");
        // The first cell of a table row names the element (alone or with its siblings).
        let first_cells: Vec<&str> = page
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .map(|l| l.split(" |").next().unwrap_or(""))
            .collect();
        let missing: Vec<&str> = STATEMENTS
            .iter()
            .map(|(n, _, _)| *n)
            .chain(crate::policy::catalog::names())
            .filter(|n| {
                !first_cells
                    .iter()
                    .any(|c| format!("`{c}").contains(&format!("`{n}`")))
            })
            .collect();
        assert!(missing.is_empty(), "not in docs/policies.md: {missing:?}");
    }

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
/// The size of the future `f` would return (never called).
#[cfg(test)]
fn future_size<T: 'static, F, Fut>(_: F) -> usize
where
    F: FnOnce(&'static T, &'static mut ExecCtx<'static>, &'static At<'static>) -> Fut,
{
    std::mem::size_of::<Fut>()
}

#[cfg(test)]
mod future_size {
    use super::*;

    /// Every section's future holds the largest waiting policy's future, on every request: a
    /// policy whose future is large boxes it (validate-jwt and retry do; 1,016 and 656 bytes
    /// before they did, in a debug build).
    #[test]
    fn waiting_policies_keep_their_futures_small() {
        let large: Vec<_> = waiting_future_sizes()
            .into_iter()
            .filter(|(_, size)| *size > 512)
            .collect();
        assert!(large.is_empty(), "box these policies' futures: {large:?}");
    }
}

#[cfg(test)]
mod size {
    /// Every pipeline holds its own copy of each statement it composes (a global policy's
    /// statements are in every operation's pipeline): a statement's inline size is memory per
    /// operation. 544 bytes before the large policies were boxed.
    #[test]
    fn a_statement_stays_small() {
        let size = std::mem::size_of::<super::Stmt>();
        assert!(
            size <= 360,
            "Stmt is {size} bytes: box the policy that grew it"
        );
    }
}
