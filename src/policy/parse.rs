//! From XML elements to typed statements: named-value substitution, attribute checks, literal
//! preparation and expression compilation, with every problem reported with its position.

use ahash::AHashMap;
use http::{HeaderName, HeaderValue, Method};

use super::ast::*;
use super::catalog::{self, Support};
use super::xml::{Element, Node};
use crate::config::NamedValue;
use crate::diag::{Diagnostics, Invalid, Span};
use crate::expr;

/// What the parser needs from its surroundings.
pub struct Env<'a> {
    /// Named values; an unknown `{{name}}` is error P030.
    pub named: &'a AHashMap<String, NamedValue>,
    pub scope: Scope,
}

/// Substitute `{{name}}` references (textually, before interpretation; apim-reference.md §4.1).
pub fn substitute(text: &str, span: &Span, env: &Env, diags: &mut Diagnostics) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) => {
                let name = after[..close].trim();
                match env.named.get(name) {
                    Some(nv) => out.push_str(&nv.value),
                    None => {
                        diags.error(
                            "P030",
                            span.clone(),
                            format!("unknown named value `{{{{{name}}}}}`"),
                        );
                    }
                }
                rest = &after[close + 2..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parse a `<policies>` document.
pub fn parse_document(root: &Element, env: &Env, diags: &mut Diagnostics) -> PolicyDoc {
    let mut doc = PolicyDoc::default();
    if root.name != "policies" {
        diags.error(
            "P004",
            root.span.clone(),
            format!(
                "policy document root must be <policies>, found <{}>",
                root.name
            ),
        );
        return doc;
    }
    check_no_attrs(root, diags);
    for n in &root.children {
        match n {
            Node::Text(t) => diags.error("P005", t.span.clone(), "unexpected text in <policies>"),
            Node::Element(sec) => match Section::from_name(&sec.name) {
                Some(s) => {
                    if doc.sections[s.index()].is_some() {
                        diags.error(
                            "P006",
                            sec.span.clone(),
                            format!("section <{}> appears twice", sec.name),
                        );
                        continue;
                    }
                    check_no_attrs(sec, diags);
                    doc.sections[s.index()] = Some(parse_statements(sec, env, diags));
                }
                None => diags.error(
                    "P007",
                    sec.span.clone(),
                    format!(
                        "unknown section <{}>: expected inbound, backend, outbound or on-error",
                        sec.name
                    ),
                ),
            },
        }
    }
    doc
}

/// Parse a `<fragment>` document into statements.
pub fn parse_fragment(root: &Element, env: &Env, diags: &mut Diagnostics) -> Vec<Stmt> {
    if root.name != "fragment" {
        diags.error(
            "P004",
            root.span.clone(),
            format!("fragment root must be <fragment>, found <{}>", root.name),
        );
        return Vec::new();
    }
    let mut stmts = parse_statements(root, env, diags);
    // Report and drop what a fragment may not hold, so including it does not cascade.
    stmts.retain(|s| match s.kind {
        StmtKind::Base => {
            diags.error(
                "P032",
                s.span.clone(),
                "<base/> is not allowed in a fragment",
            );
            false
        }
        StmtKind::IncludeFragment(_) => {
            diags.error(
                "P033",
                s.span.clone(),
                "fragments cannot include other fragments",
            );
            false
        }
        _ => true,
    });
    stmts
}

fn check_no_attrs(el: &Element, diags: &mut Diagnostics) {
    for a in &el.attrs {
        diags.error(
            "P011",
            a.span.clone(),
            format!("<{}> has no attribute `{}`", el.name, a.name),
        );
    }
}

pub fn parse_statements(parent: &Element, env: &Env, diags: &mut Diagnostics) -> Vec<Stmt> {
    let mut out = Vec::new();
    for n in &parent.children {
        match n {
            Node::Text(t) => diags.error(
                "P005",
                t.span.clone(),
                format!("unexpected text in <{}>", parent.name),
            ),
            Node::Element(el) => {
                if let Some(s) = parse_statement(el, env, diags) {
                    out.push(s);
                }
            }
        }
    }
    out
}

fn parse_statement(el: &Element, env: &Env, diags: &mut Diagnostics) -> Option<Stmt> {
    let Some((element, support, _)) = catalog::lookup(&el.name) else {
        diags.error(
            "P010",
            el.span.clone(),
            format!("unknown policy element <{}>", el.name),
        );
        return None;
    };
    match support {
        Support::AzureOnly => {
            diags.error(
                "P020",
                el.span.clone(),
                format!(
                    "<{}> depends on an Azure service and is not supported by gatehouse",
                    el.name
                ),
            );
            return None;
        }
        Support::NotYet => {
            diags.error(
                "P021",
                el.span.clone(),
                format!("<{}> is not supported by this gatehouse build yet", el.name),
            );
            return None;
        }
        Support::Supported => {}
    }
    let mut r = Reader::new(el, env, diags);
    let id = r.literal("id").map(|(v, _)| v);
    let parse = STATEMENTS
        .iter()
        .find(|(name, _)| *name == element)
        .map(|(_, parse)| *parse)?;
    let kind = parse(&mut r, element)?;
    r.finish();
    Some(Stmt {
        kind,
        element,
        id,
        span: el.span.clone(),
        scope: env.scope,
        display: render_element(el),
    })
}

/// Reads one policy element into its statement; `None` when it is unusable (already reported).
type StatementParser = fn(&mut Reader, &str) -> Option<StmtKind>;

/// Every policy element gatehouse runs, with the function that reads it (the catalog says which
/// elements exist and which are supported; this table says how each supported one is read).
const STATEMENTS: &[(&str, StatementParser)] = &[
    ("base", base_statement),
    ("include-fragment", include_fragment_statement),
    ("set-header", set_header_statement),
    ("set-query-parameter", set_query_parameter_statement),
    ("set-method", set_method_statement),
    ("set-status", set_status_statement),
    ("set-body", set_body_statement),
    ("return-response", return_response_statement),
    ("mock-response", mock_response_statement),
    ("rewrite-uri", rewrite_uri_statement),
    ("set-backend-service", set_backend_service_statement),
    ("forward-request", forward_request_statement),
    ("choose", choose_statement),
    ("cache-lookup", cache_lookup_statement),
    ("cache-store", cache_store_statement),
    ("limit-concurrency", limit_concurrency_statement),
    ("validate-jwt", validate_jwt_statement),
    ("validate-azure-ad-token", validate_jwt_statement),
    ("cors", cors_statement),
    ("check-header", check_header_statement),
    ("ip-filter", ip_filter_statement),
    ("authentication-basic", authentication_basic_statement),
    (
        "authentication-certificate",
        authentication_certificate_statement,
    ),
    ("retry", retry_statement),
    ("wait", wait_statement),
    ("send-request", send_request_statement),
    ("send-one-way-request", send_request_statement),
    ("cache-lookup-value", cache_lookup_value_statement),
    ("cache-store-value", cache_store_value_statement),
    ("cache-remove-value", cache_remove_value_statement),
    ("rate-limit-by-key", rate_limit_by_key_statement),
    ("rate-limit", rate_limit_statement),
    ("quota-by-key", quota_by_key_statement),
    ("quota", quota_statement),
    ("set-variable", set_variable_statement),
    ("trace", trace_statement),
    ("find-and-replace", find_and_replace_statement),
];

fn base_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    Some(StmtKind::Base)
}

fn include_fragment_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let id = r.required_literal("fragment-id").unwrap_or_default();
    Some(StmtKind::IncludeFragment(id))
}

fn set_header_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    Some(StmtKind::SetHeader(parse_set_header(r)))
}

fn set_query_parameter_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    Some(StmtKind::SetQueryParameter(parse_set_query(r)))
}

fn set_method_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let v = r
        .text_value(true, parse_method)
        .unwrap_or(Val::Lit(Method::GET));
    Some(StmtKind::SetMethod(v))
}

fn set_status_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    Some(StmtKind::SetStatus(parse_set_status(r)))
}

fn set_body_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    if let Some((t, span)) = r.literal("template") {
        if t == "liquid" {
            r.diags.error(
                "P021",
                span,
                "set-body template=\"liquid\" is not supported by this gatehouse build yet",
            );
        } else {
            r.diags.error(
                "P012",
                span,
                format!("set-body template must be \"liquid\", found {t:?}"),
            );
        }
    }
    r.no_children();
    r.literal("xsi-nil");
    r.literal("parse-date");
    let v = r
        .text_value(false, |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    Some(StmtKind::SetBody(v))
}

fn return_response_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    Some(StmtKind::ReturnResponse(parse_return_response(r)))
}

fn mock_response_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let status = r.parsed_literal("status-code", parse_status).unwrap_or(200);
    let content_type = r.literal("content-type").map(|(v, _)| v);
    r.literal("index");
    Some(StmtKind::MockResponse(MockResponse {
        status,
        content_type,
    }))
}

fn rewrite_uri_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let template = r
        .required_value("template", parse_uri_template)
        .unwrap_or(Val::Lit(UriTemplate {
            path: vec![],
            query: vec![],
        }));
    let copy = r
        .value("copy-unmatched-params", parse_bool)
        .unwrap_or(Val::Lit(true));
    Some(StmtKind::RewriteUri(RewriteUri {
        template,
        copy_unmatched_params: copy,
    }))
}

fn set_backend_service_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let el = r.el;
    r.no_children();
    for a in &el.attrs {
        if a.name.starts_with("sf-") || a.name.starts_with("dapr-") {
            r.used.push(a.name.clone());
            r.diags.error("P020", a.span.clone(), format!("set-backend-service `{}` (Service Fabric / Dapr) is not supported by gatehouse", a.name));
        }
    }
    let base = r.value("base-url", |s| {
        crate::net::url::BaseUrl::parse(s).map(|_| s.trim().to_string())
    });
    let id = r.value("backend-id", |s| Ok(s.to_string()));
    Some(match (base, id) {
        (Some(b), None) => StmtKind::SetBackendService(BackendTarget::BaseUrl(b)),
        (None, Some(i)) => StmtKind::SetBackendService(BackendTarget::BackendId(i)),
        (Some(_), Some(_)) => {
            r.diags.error(
                "P013",
                el.span.clone(),
                "set-backend-service takes exactly one of `base-url` or `backend-id`, not both",
            );
            return None;
        }
        (None, None) => {
            r.diags.error(
                "P013",
                el.span.clone(),
                "set-backend-service needs `base-url` or `backend-id`",
            );
            return None;
        }
    })
}

fn forward_request_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    Some(StmtKind::ForwardRequest(parse_forward_request(r)))
}

fn choose_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    Some(StmtKind::Choose(parse_choose(r)))
}

fn cache_lookup_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let vary_by_developer = r
        .required_value("vary-by-developer", parse_bool)
        .unwrap_or(Val::Lit(false));
    let vary_by_developer_groups = r
        .required_value("vary-by-developer-groups", parse_bool)
        .unwrap_or(Val::Lit(false));
    let caching = parse_caching(r);
    let downstream = r.value("downstream-caching-type", |s| match s.trim() {
        "none" | "private" | "public" => Ok(s.trim().to_string()),
        other => Err(crate::invalid!(
            "downstream-caching-type must be none, private or public, found {other:?}"
        )),
    });
    let must_revalidate = r
        .value("must-revalidate", parse_bool)
        .unwrap_or(Val::Lit(true));
    let allow_private = r
        .value("allow-private-response-caching", parse_bool)
        .unwrap_or(Val::Lit(false));
    let (mut vary_headers, mut vary_query) = (Vec::new(), Vec::new());
    for child in r.children() {
        let mut cr = Reader::new(child, r.env, r.diags);
        cr.no_children();
        match child.name.as_str() {
            "vary-by-header" => {
                vary_headers.extend(child.text().map(|t| t.value.trim().to_ascii_lowercase()))
            }
            "vary-by-query-parameter" => {
                vary_query.extend(child.text().into_iter().flat_map(|t| {
                    t.value
                        .split(';')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect::<Vec<_>>()
                }))
            }
            other => {
                cr.diags.error("P014", child.span.clone(), format!("<{other}> is not allowed in <cache-lookup>; expected vary-by-header or vary-by-query-parameter"));
                continue;
            }
        }
        cr.finish();
    }
    vary_headers.sort();
    vary_query.sort();
    Some(StmtKind::CacheLookup(CacheLookup {
        vary_by_developer,
        vary_by_developer_groups,
        caching,
        downstream: downstream.unwrap_or(Val::Lit("none".into())),
        must_revalidate,
        allow_private,
        vary_headers,
        vary_query,
    }))
}

fn cache_store_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let duration = r
        .required_value("duration", parse_u64)
        .unwrap_or(Val::Lit(0));
    let cache_response = r.value("cache-response", parse_bool);
    Some(StmtKind::CacheStore {
        duration,
        cache_response,
    })
}

fn limit_concurrency_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let key = r
        .required_value("key", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let max = r.parsed_literal("max-count", parse_u64).unwrap_or(1);
    if r.el.attr("max-count").is_none() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<limit-concurrency> needs attribute `max-count`",
        );
    }
    r.children_checked = true;
    let body = parse_statements(r.el, r.env, r.diags);
    Some(StmtKind::LimitConcurrency { key, max, body })
}

fn validate_jwt_statement(r: &mut Reader, element: &str) -> Option<StmtKind> {
    Some(StmtKind::ValidateJwt(Box::new(parse_validate_jwt(
        r,
        element == "validate-azure-ad-token",
    ))))
}

fn cors_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let allow_credentials = r
        .value("allow-credentials", parse_bool)
        .unwrap_or(Val::Lit(false));
    let terminate_unmatched = r
        .value("terminate-unmatched-request", parse_bool)
        .unwrap_or(Val::Lit(true));
    let (mut origins, mut methods, mut headers, mut expose) =
        (Vec::new(), None, Vec::new(), Vec::new());
    let mut max_age = Val::Lit(0);
    let mut saw_origins = false;
    let mut saw_headers = false;
    for child in r.children() {
        let mut cr = Reader::new(child, r.env, r.diags);
        let (item, list): (&str, u8) = match child.name.as_str() {
            "allowed-origins" => ("origin", 0),
            "allowed-methods" => {
                max_age = cr
                    .value("preflight-result-max-age", parse_u64)
                    .unwrap_or(Val::Lit(0));
                ("method", 1)
            }
            "allowed-headers" => ("header", 2),
            "expose-headers" => ("header", 3),
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!("<{other}> is not allowed in <cors>"),
                );
                continue;
            }
        };
        let mut values = Vec::new();
        for g in cr.items(item) {
            let mut gr = Reader::new(g, cr.env, cr.diags);
            gr.no_children();
            if let Some((text, span)) = g.text().map(|t| {
                (
                    substitute(&t.value, &t.span, gr.env, gr.diags),
                    t.span.clone(),
                )
            }) {
                let text = text.trim().to_string();
                let normalised = match list {
                    0 => crate::policy::parse::normalise_origin(&text),
                    1 => Ok(text.to_ascii_uppercase()),
                    _ => Ok(text.to_ascii_lowercase()),
                };
                match normalised {
                    Ok(v) => values.push(v),
                    Err(e) => gr.diags.error("P012", span, format!("<{item}>: {e}")),
                }
            }
            gr.finish();
        }
        cr.finish();
        match list {
            0 => {
                saw_origins = true;
                origins = values;
            }
            1 => methods = Some(values),
            2 => {
                saw_headers = true;
                headers = values;
            }
            _ => expose = values,
        }
    }
    if !saw_origins || origins.is_empty() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<cors> needs <allowed-origins> with at least one <origin>",
        );
    }
    if origins.len() > 1 && origins.iter().any(|o| o == "*") {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<allowed-origins> holds either a single `*` or full origins",
        );
    }
    if !saw_headers {
        r.diags
            .error("P012", r.el.span.clone(), "<cors> needs <allowed-headers>");
    }
    Some(StmtKind::Cors(crate::policy::ast::Cors {
        allow_credentials,
        terminate_unmatched,
        origins,
        methods: methods.unwrap_or_else(|| vec!["GET".into(), "POST".into()]),
        max_age,
        headers,
        expose,
    }))
}

fn check_header_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let name = r
        .required_value("name", |s| Ok(s.trim().to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let code = r
        .required_value("failed-check-httpcode", parse_status)
        .unwrap_or(Val::Lit(401));
    let message = r
        .required_value("failed-check-error-message", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let ignore_case = r
        .required_value("ignore-case", parse_bool)
        .unwrap_or(Val::Lit(false));
    let mut values = Vec::new();
    for child in r.items("value") {
        let mut cr = Reader::new(child, r.env, r.diags);
        cr.no_children();
        values.push(
            cr.text_value(false, |s| Ok(s.to_string()))
                .unwrap_or(Val::Lit(String::new())),
        );
        cr.finish();
    }
    r.children_checked = true;
    Some(StmtKind::CheckHeader(crate::policy::ast::CheckHeader {
        name,
        code,
        message,
        ignore_case,
        values,
    }))
}

fn ip_filter_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let allow = r
        .required_value("action", |s| match s.trim() {
            "allow" => Ok(true),
            "forbid" => Ok(false),
            other => Err(crate::invalid!(
                "action must be allow or forbid, found {other:?}"
            )),
        })
        .unwrap_or(Val::Lit(true));
    let ip = |s: &str| {
        s.trim()
            .parse::<std::net::IpAddr>()
            .map(|_| s.trim().to_string())
            .map_err(|_| crate::invalid!("{:?} is not an IPv4 or IPv6 address", s.trim()))
    };
    let (mut addresses, mut ranges) = (Vec::new(), Vec::new());
    for child in r.children() {
        let mut cr = Reader::new(child, r.env, r.diags);
        cr.no_children();
        match child.name.as_str() {
            "address" => {
                if let Some(v) = cr.text_value(true, ip) {
                    addresses.push(v);
                }
            }
            "address-range" => {
                let from = cr.required_value("from", ip);
                let to = cr.required_value("to", ip);
                if let (Some(f), Some(t)) = (from, to) {
                    ranges.push((f, t));
                }
            }
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!("<{other}> is not allowed in <ip-filter>; expected <address> or <address-range>"),
                );
                continue;
            }
        }
        cr.finish();
    }
    if r.el.elements().next().is_none() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<ip-filter> needs at least one <address> or <address-range>",
        );
    }
    r.children_checked = true;
    Some(StmtKind::IpFilter(crate::policy::ast::IpFilter {
        allow,
        addresses,
        ranges,
    }))
}

fn authentication_basic_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let username = r
        .required_value("username", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let password = r
        .required_value("password", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    Some(StmtKind::AuthenticationBasic { username, password })
}

fn authentication_certificate_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let c =
        parse_certificate_ref(r).unwrap_or(crate::policy::ast::CertificateRef::Id(String::new()));
    Some(StmtKind::AuthenticationCertificate(c))
}

fn retry_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let condition = r
        .required_value("condition", parse_bool)
        .unwrap_or(Val::Lit(false));
    let count = r
        .required_value("count", |s| {
            parse_u64(s).and_then(|n| {
                if (1..=50).contains(&n) {
                    Ok(n)
                } else {
                    Err(crate::invalid!("count must be 1 to 50, found {n}"))
                }
            })
        })
        .unwrap_or(Val::Lit(1));
    let interval = r.value("interval", parse_u64).unwrap_or(Val::Lit(0));
    let delta = r.value("delta", parse_u64);
    let max_interval = r.value("max-interval", parse_u64);
    let first_fast_retry = r
        .value("first-fast-retry", parse_bool)
        .unwrap_or(Val::Lit(false));
    r.children_checked = true;
    let body = parse_statements(r.el, r.env, r.diags);
    Some(StmtKind::Retry(crate::policy::ast::Retry {
        condition,
        count,
        interval,
        delta,
        max_interval,
        first_fast_retry,
        body,
    }))
}

fn wait_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let any = r
        .value("for", |s| match s.trim() {
            "all" => Ok(false),
            "any" => Ok(true),
            other => Err(crate::invalid!("`for` must be all or any, found {other:?}")),
        })
        .unwrap_or(Val::Lit(false));
    r.children_checked = true;
    let body = parse_statements(r.el, r.env, r.diags);
    for st in &body {
        if !matches!(
            st.kind,
            StmtKind::SendRequest(_) | StmtKind::CacheLookupValue { .. } | StmtKind::Choose(_)
        ) {
            r.diags.error(
                "P046",
                st.span.clone(),
                format!(
                    "<{}> cannot be a child of <wait>; its children are send-request, cache-lookup-value and choose",
                    st.element
                ),
            );
        }
    }
    Some(StmtKind::Wait { any, body })
}

fn send_request_statement(r: &mut Reader, element: &str) -> Option<StmtKind> {
    Some(StmtKind::SendRequest(parse_send_request(
        r,
        element == "send-request",
    )))
}

fn cache_lookup_value_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let key = r
        .required_value("key", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let variable = r.required_literal("variable-name").unwrap_or_default();
    let default = r.value("default-value", |s| Ok(s.to_string()));
    let caching = parse_caching(r);
    Some(StmtKind::CacheLookupValue {
        key,
        variable,
        default,
        caching,
    })
}

fn cache_store_value_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let key = r
        .required_value("key", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let value = r
        .required_value("value", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let duration = r
        .required_value("duration", parse_u64)
        .unwrap_or(Val::Lit(0));
    let caching = parse_caching(r);
    Some(StmtKind::CacheStoreValue {
        key,
        value,
        duration,
        caching,
    })
}

fn cache_remove_value_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let key = r
        .required_value("key", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let caching = parse_caching(r);
    Some(StmtKind::CacheRemoveValue { key, caching })
}

fn rate_limit_by_key_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let calls = r.required_value("calls", parse_u64).unwrap_or(Val::Lit(1));
    let period = r
        .required_value("renewal-period", parse_period(300))
        .unwrap_or(Val::Lit(1));
    let key = r
        .required_value("counter-key", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let increment_condition = r.value("increment-condition", parse_bool);
    let increment_count = r.value("increment-count", parse_u64);
    r.literal("increment-after-response");
    r.literal("flexible-retry-window");
    let outputs = parse_limit_outputs(r);
    Some(StmtKind::RateLimitByKey(RateLimitByKey {
        calls,
        period,
        key,
        increment_condition,
        increment_count,
        outputs,
    }))
}

fn rate_limit_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let calls = r.parsed_literal("calls", parse_u64).unwrap_or(1);
    if r.el.attr("calls").is_none() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<rate-limit> needs attribute `calls`",
        );
    }
    let period = r
        .parsed_literal("renewal-period", parse_period(300))
        .unwrap_or(1);
    let outputs = parse_limit_outputs(r);
    let nested = parse_nested_limits(r, false);
    Some(StmtKind::RateLimit(RateLimit {
        calls,
        period,
        nested,
        outputs,
    }))
}

fn quota_by_key_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let key = r
        .required_value("counter-key", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let calls = r.parsed_literal("calls", parse_u64).unwrap_or(0);
    let bandwidth_kb = r.parsed_literal("bandwidth", parse_u64).unwrap_or(0);
    if calls == 0 && bandwidth_kb == 0 {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<quota-by-key> needs `calls` and/or `bandwidth`",
        );
    }
    let period = r.parsed_literal("renewal-period", parse_u64).unwrap_or(0);
    if period != 0 && period < 300 {
        r.diags.error(
            "P012",
            r.el.attr("renewal-period")
                .map_or(r.el.span.clone(), |a| a.span.clone()),
            "quota-by-key `renewal-period` must be 0 (never renews) or at least 300 seconds",
        );
    }
    let increment_condition = r.value("increment-condition", parse_bool);
    let increment_count = r.value("increment-count", parse_u64);
    let first_period_start = r
        .parsed_literal("first-period-start", parse_start)
        .unwrap_or(crate::expr::datetime::EPOCH_0001);
    Some(StmtKind::QuotaByKey(QuotaByKey {
        key,
        calls,
        bandwidth_kb,
        period,
        increment_condition,
        increment_count,
        first_period_start,
    }))
}

fn quota_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let calls = r.parsed_literal("calls", parse_u64).unwrap_or(0);
    let bandwidth_kb = r.parsed_literal("bandwidth", parse_u64).unwrap_or(0);
    let period = r.parsed_literal("renewal-period", parse_u64).unwrap_or(0);
    if r.el.attr("renewal-period").is_none() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<quota> needs attribute `renewal-period`",
        );
    }
    let nested = parse_nested_limits(r, true);
    if calls == 0 && bandwidth_kb == 0 && nested.is_empty() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<quota> needs `calls` and/or `bandwidth`",
        );
    }
    Some(StmtKind::Quota(QuotaPolicy {
        calls,
        bandwidth_kb,
        period,
        nested,
    }))
}

fn set_variable_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let name = r.required_literal("name").unwrap_or_default();
    let value = r
        .required_value("value", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    Some(StmtKind::SetVariable { name, value })
}

fn trace_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    Some(StmtKind::Trace(parse_trace(r)))
}

fn find_and_replace_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let from = r
        .required_value("from", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let to = r
        .required_value("to", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    if let Val::Lit(f) = &from {
        if f.is_empty() {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "find-and-replace `from` cannot be empty",
            );
        }
    }
    Some(StmtKind::FindAndReplace { from, to })
}

fn parse_set_header(r: &mut Reader) -> SetHeader {
    let name = r
        .required_value("name", parse_header_name)
        .unwrap_or(Val::Lit(HeaderName::from_static("x-invalid")));
    let action = r
        .value("exists-action", parse_action)
        .unwrap_or(Val::Lit(ExistsAction::Override));
    let mut values = Vec::new();
    for child in r.children() {
        if child.name != "value" {
            r.diags.error(
                "P014",
                child.span.clone(),
                format!(
                    "<{}> is not allowed in <{}>; expected <value>",
                    child.name, r.el.name
                ),
            );
            continue;
        }
        let mut cr = Reader::new(child, r.env, r.diags);
        cr.no_children();
        if let Some(v) = cr.text_value(false, parse_header_value) {
            values.push(v);
        } else {
            values.push(Val::Lit(HeaderValue::from_static("")));
        }
        cr.finish();
    }
    if let (Val::Lit(ExistsAction::Delete), false) = (&action, values.is_empty()) {
        r.diags.warning(
            "P015",
            r.el.span.clone(),
            "exists-action=\"delete\" ignores <value> children",
        );
    }
    if let Val::Lit(n) = &name {
        let restricted = [
            "connection",
            "content-length",
            "keep-alive",
            "transfer-encoding",
        ];
        if restricted.contains(&n.as_str()) {
            r.diags.warning(
                "P016",
                r.el.span.clone(),
                format!("header `{n}` cannot be modified; this set-header is ignored"),
            );
        }
    }
    SetHeader {
        name,
        action,
        values,
    }
}

fn parse_set_query(r: &mut Reader) -> SetQueryParameter {
    let name = r
        .required_value("name", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let action = r
        .value("exists-action", parse_action)
        .unwrap_or(Val::Lit(ExistsAction::Override));
    let mut values = Vec::new();
    for child in r.children() {
        if child.name != "value" {
            r.diags.error(
                "P014",
                child.span.clone(),
                format!(
                    "<{}> is not allowed in <{}>; expected <value>",
                    child.name, r.el.name
                ),
            );
            continue;
        }
        let mut cr = Reader::new(child, r.env, r.diags);
        cr.no_children();
        values.push(
            cr.text_value(false, |s| Ok(s.to_string()))
                .unwrap_or(Val::Lit(String::new())),
        );
        cr.finish();
    }
    let deleting = matches!(action, Val::Lit(ExistsAction::Delete));
    if values.is_empty() && !deleting {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "set-query-parameter needs at least one <value> unless exists-action=\"delete\"",
        );
    }
    SetQueryParameter {
        name,
        action,
        values,
    }
}

fn parse_set_status(r: &mut Reader) -> SetStatus {
    let code = r
        .required_value("code", parse_status)
        .unwrap_or(Val::Lit(200));
    let reason = r.value("reason", |s| Ok(s.to_string()));
    SetStatus { code, reason }
}

fn parse_return_response(r: &mut Reader) -> ReturnResponse {
    let response_variable = r.literal("response-variable-name").map(|(v, _)| v);
    let mut out = ReturnResponse {
        response_variable,
        status: None,
        headers: Vec::new(),
        body: None,
    };
    for child in r.children() {
        let mut cr = Reader::new(child, r.env, r.diags);
        match child.name.as_str() {
            "set-status" if out.status.is_none() => {
                cr.no_children();
                out.status = Some(parse_set_status(&mut cr));
            }
            "set-header" => out.headers.push(parse_set_header(&mut cr)),
            "set-body" if out.body.is_none() => {
                out.body = cr.text_value(false, |s| Ok(s.to_string()));
            }
            "set-status" | "set-body" => {
                cr.diags.error(
                    "P017",
                    child.span.clone(),
                    format!("<{}> may appear only once in <return-response>", child.name),
                );
            }
            other => {
                cr.diags.error("P014", child.span.clone(), format!("<{other}> is not allowed in <return-response>; expected set-status, set-header or set-body"));
                continue;
            }
        }
        cr.literal("id");
        cr.finish();
    }
    out
}

fn parse_choose(r: &mut Reader) -> Choose {
    let mut out = Choose {
        whens: Vec::new(),
        otherwise: None,
    };
    for child in r.children() {
        let mut cr = Reader::new(child, r.env, r.diags);
        match child.name.as_str() {
            "when" if out.otherwise.is_none() => {
                let cond = cr
                    .required_value("condition", parse_bool)
                    .unwrap_or(Val::Lit(false));
                let body = parse_statements(child, cr.env, cr.diags);
                out.whens.push((cond, body));
            }
            "otherwise" if out.otherwise.is_none() => {
                out.otherwise = Some(parse_statements(child, cr.env, cr.diags));
            }
            "when" | "otherwise" => {
                cr.diags.error(
                    "P017",
                    child.span.clone(),
                    format!("<{}> cannot follow <otherwise> in <choose>", child.name),
                );
            }
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!("<{other}> is not allowed in <choose>; expected <when> or <otherwise>"),
                );
                continue;
            }
        }
        cr.literal("id");
        cr.finish();
    }
    if out.whens.is_empty() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<choose> needs at least one <when>",
        );
    }
    out
}

fn parse_trace(r: &mut Reader) -> Trace {
    let source = r.required_literal("source").unwrap_or_default();
    let severity = match r.literal("severity") {
        None => Severity::Verbose,
        Some((s, span)) => match s.as_str() {
            "verbose" => Severity::Verbose,
            "information" => Severity::Information,
            "error" => Severity::Error,
            _ => {
                r.diags.error(
                    "P012",
                    span,
                    format!("trace severity must be verbose, information or error, found {s:?}"),
                );
                Severity::Verbose
            }
        },
    };
    let mut message = None;
    let mut metadata = Vec::new();
    for child in r.children() {
        let mut cr = Reader::new(child, r.env, r.diags);
        match child.name.as_str() {
            "message" if message.is_none() => {
                cr.no_children();
                message = Some(
                    cr.text_value(false, |s| Ok(s.to_string()))
                        .unwrap_or(Val::Lit(String::new())),
                );
            }
            "metadata" => {
                cr.no_children();
                let name = cr.required_literal("name").unwrap_or_default();
                let value = cr
                    .required_value("value", |s| Ok(s.to_string()))
                    .unwrap_or(Val::Lit(String::new()));
                metadata.push((name, value));
            }
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!(
                        "<{other}> is not allowed in <trace>; expected <message> or <metadata>"
                    ),
                );
                continue;
            }
        }
        cr.finish();
    }
    let message = message.unwrap_or_else(|| {
        r.diags
            .error("P012", r.el.span.clone(), "<trace> needs a <message>");
        Val::Lit(String::new())
    });
    Trace {
        source,
        severity,
        message,
        metadata,
    }
}

fn parse_forward_request(r: &mut Reader) -> ForwardRequest {
    let timeout_s = r.value("timeout", |s| {
        s.trim()
            .parse::<u64>()
            .map(|v| v * 1000)
            .map_err(|_| Invalid::from("expected whole seconds"))
    });
    let timeout_ms = r.value("timeout-ms", |s| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| Invalid::from("expected whole milliseconds"))
    });
    let timeout = match (timeout_s, timeout_ms) {
        (Some(_), Some(ms)) => {
            r.diags.error(
                "P013",
                r.el.span.clone(),
                "forward-request takes `timeout` or `timeout-ms`, not both",
            );
            Some(ms)
        }
        (Some(t), None) => Some(t),
        (None, Some(ms)) => Some(ms),
        (None, None) => None,
    };
    if let Some((_, span)) = r.literal("continue-timeout") {
        r.diags.warning(
            "P018",
            span,
            "continue-timeout is accepted and ignored: gatehouse does not wait for 100 Continue",
        );
    }
    let http_version = match r.literal("http-version") {
        None => HttpVersion::Http1,
        Some((v, span)) => match v.as_str() {
            "1" => HttpVersion::Http1,
            "2or1" => HttpVersion::Http2Or1,
            "2" => HttpVersion::Http2,
            _ => {
                r.diags.error(
                    "P012",
                    span,
                    format!("http-version must be 1, 2or1 or 2, found {v:?}"),
                );
                HttpVersion::Http1
            }
        },
    };
    let follow_redirects = r
        .value("follow-redirects", parse_bool)
        .unwrap_or(Val::Lit(false));
    let buffer_request_body = r
        .parsed_literal("buffer-request-body", parse_bool)
        .unwrap_or(false);
    let buffer_response = r
        .parsed_literal("buffer-response", parse_bool)
        .unwrap_or(true);
    let fail_on_error_status_code = r
        .parsed_literal("fail-on-error-status-code", parse_bool)
        .unwrap_or(false);
    ForwardRequest {
        timeout_ms: timeout,
        follow_redirects,
        buffer_request_body,
        buffer_response,
        fail_on_error_status_code,
        http_version,
    }
}

fn parse_send_request(r: &mut Reader, two_way: bool) -> SendRequest {
    let copy = r.value("mode", |s| match s.trim() {
        "new" | "copy" => Ok(s.trim().to_string()),
        other => Err(crate::invalid!("mode must be new or copy, found {other:?}")),
    });
    let response_variable = if two_way {
        r.required_literal("response-variable-name")
    } else {
        None
    };
    let timeout = r.value("timeout", parse_u64).unwrap_or(Val::Lit(60));
    let ignore_error = if two_way {
        r.parsed_literal("ignore-error", parse_bool)
            .unwrap_or(false)
    } else {
        true
    };
    let mut out = SendRequest {
        copy: copy.unwrap_or(Val::Lit("new".into())),
        response_variable,
        timeout,
        ignore_error,
        url: None,
        method: None,
        headers: Vec::new(),
        body: None,
        certificate: None,
        proxy: None,
    };
    for child in r.children() {
        let mut cr = Reader::new(child, r.env, r.diags);
        match child.name.as_str() {
            "set-url" => {
                cr.no_children();
                out.url = cr.text_value(true, |s| Ok(s.trim().to_string()));
            }
            "set-method" => {
                cr.no_children();
                out.method = cr.text_value(true, parse_method);
            }
            "set-header" => out.headers.push(parse_set_header(&mut cr)),
            "set-body" => {
                cr.no_children();
                out.body = cr.text_value(false, |s| Ok(s.to_string()));
            }
            "authentication-certificate" => {
                cr.no_children();
                out.certificate = parse_certificate_ref(&mut cr);
            }
            "proxy" => {
                cr.no_children();
                let url = cr.literal("url");
                let user = cr.literal("username").map(|(v, _)| v);
                let pass = cr.literal("password").map(|(v, _)| v);
                match url {
                    Some((u, span)) => {
                        match crate::net::proxy::ForwardProxy::parse(
                            &u,
                            user.as_deref(),
                            pass.as_deref(),
                        ) {
                            Ok(p) => out.proxy = Some(p),
                            Err(e) => cr.diags.error("P012", span, format!("<proxy>: {e}")),
                        }
                    }
                    None => {
                        cr.diags
                            .error("P012", child.span.clone(), "<proxy> needs attribute `url`")
                    }
                }
            }
            "authentication-managed-identity" => {
                cr.diags.error(
                    "P021",
                    child.span.clone(),
                    format!(
                        "<{}> inside <{}> is not supported by this gatehouse build yet",
                        child.name, r.el.name
                    ),
                );
                continue;
            }
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!("<{other}> is not allowed in <{}>", r.el.name),
                );
                continue;
            }
        }
        cr.literal("id");
        cr.finish();
    }
    if out.url.is_none() && matches!(&out.copy, Val::Lit(m) if m == "new") {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            format!("<{}> mode=\"new\" needs <set-url>", r.el.name),
        );
    }
    out
}

fn parse_caching(r: &mut Reader) -> CachingType {
    r.parsed_literal("caching-type", |s| match s.trim() {
        "internal" => Ok(CachingType::Internal),
        "external" => Ok(CachingType::External),
        "prefer-external" => Ok(CachingType::PreferExternal),
        other => Err(crate::invalid!(
            "caching-type must be internal, external or prefer-external, found {other:?}"
        )),
    })
    .unwrap_or(CachingType::PreferExternal)
}

fn parse_limit_outputs(r: &mut Reader) -> LimitOutputs {
    let header = |r: &mut Reader, n: &str| {
        r.parsed_literal(n, |s| {
            HeaderName::from_bytes(s.trim().as_bytes())
                .map_err(|_| crate::invalid!("invalid header name {s:?}"))
        })
    };
    LimitOutputs {
        retry_after_header: header(r, "retry-after-header-name"),
        retry_after_variable: r.literal("retry-after-variable-name").map(|(v, _)| v),
        remaining_header: header(r, "remaining-calls-header-name"),
        remaining_variable: r.literal("remaining-calls-variable-name").map(|(v, _)| v),
        total_header: header(r, "total-calls-header-name"),
    }
}

/// `<api name|id calls renewal-period><operation .../></api>` children of rate-limit / quota.
fn parse_nested_limits(r: &mut Reader, quota: bool) -> Vec<ScopedLimit> {
    let mut out = Vec::new();
    for api in r.children() {
        let mut ar = Reader::new(api, r.env, r.diags);
        if api.name != "api" {
            ar.diags.error(
                "P014",
                api.span.clone(),
                format!("<{}> is not allowed here; expected <api>", api.name),
            );
            continue;
        }
        let limit = |rr: &mut Reader| -> (String, u64, u64, u64) {
            let id = rr
                .literal("id")
                .or_else(|| rr.literal("name"))
                .map(|(v, _)| v)
                .unwrap_or_default();
            let _ = rr.literal("name");
            let calls = rr.parsed_literal("calls", parse_u64).unwrap_or(0);
            let bw = if quota {
                rr.parsed_literal("bandwidth", parse_u64).unwrap_or(0)
            } else {
                0
            };
            let period = rr.parsed_literal("renewal-period", parse_u64).unwrap_or(0);
            (id, calls, bw, period)
        };
        let (api_id, calls, bw, period) = limit(&mut ar);
        if calls > 0 || bw > 0 {
            out.push(ScopedLimit {
                api: api_id.clone(),
                operation: None,
                calls,
                bandwidth_kb: bw,
                period,
            });
        }
        for op in ar.children() {
            let mut or = Reader::new(op, ar.env, ar.diags);
            if op.name != "operation" {
                or.diags.error(
                    "P014",
                    op.span.clone(),
                    format!(
                        "<{}> is not allowed in <api>; expected <operation>",
                        op.name
                    ),
                );
                continue;
            }
            let (op_id, calls, bw, period) = limit(&mut or);
            out.push(ScopedLimit {
                api: api_id.clone(),
                operation: Some(op_id),
                calls,
                bandwidth_kb: bw,
                period,
            });
            or.no_children();
            or.finish();
        }
        ar.finish();
    }
    out
}

// ---- literal parsers -------------------------------------------------------------------

fn parse_u64(s: &str) -> Result<u64, Invalid> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| crate::invalid!("expected a whole number, found {s:?}"))
}

/// A renewal period in seconds, 1..=max.
fn parse_period(max: u64) -> impl Fn(&str) -> Result<u64, Invalid> {
    move |s: &str| match s.trim().parse::<u64>() {
        Ok(p) if (1..=max).contains(&p) => Ok(p),
        _ => Err(crate::invalid!(
            "renewal-period must be 1 to {max} seconds, found {s:?}"
        )),
    }
}

/// `first-period-start`: `yyyy-MM-ddTHH:mm:ssZ` to unix seconds.
fn parse_start(s: &str) -> Result<i64, Invalid> {
    crate::expr::datetime::DateTime::parse(s)
        .map(|d| d.unix_seconds())
        .ok_or_else(|| {
            crate::invalid!("first-period-start must be yyyy-MM-ddTHH:mm:ssZ, found {s:?}")
        })
}

pub fn parse_bool(s: &str) -> Result<bool, Invalid> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(crate::invalid!("expected true or false, found {s:?}")),
    }
}

fn parse_status(s: &str) -> Result<u16, Invalid> {
    match s.trim().parse::<u16>() {
        Ok(c) if (100..=999).contains(&c) => Ok(c),
        _ => Err(crate::invalid!(
            "expected an HTTP status code (100-999), found {s:?}"
        )),
    }
}

fn parse_method(s: &str) -> Result<Method, Invalid> {
    let t = s.trim();
    if t.is_empty() {
        return Err("expected an HTTP method".into());
    }
    Method::from_bytes(t.to_ascii_uppercase().as_bytes())
        .map_err(|_| crate::invalid!("invalid HTTP method {t:?}"))
}

fn parse_action(s: &str) -> Result<ExistsAction, Invalid> {
    ExistsAction::parse(s.trim()).ok_or_else(|| {
        crate::invalid!("exists-action must be override, skip, append or delete, found {s:?}")
    })
}

fn parse_header_name(s: &str) -> Result<HeaderName, Invalid> {
    HeaderName::from_bytes(s.trim().as_bytes())
        .map_err(|_| crate::invalid!("invalid header name {s:?}"))
}

fn parse_header_value(s: &str) -> Result<HeaderValue, Invalid> {
    HeaderValue::from_str(s).map_err(|_| {
        crate::invalid!("invalid header value {s:?}: control characters are not allowed")
    })
}

/// Parse a rewrite-uri template: `/path/{param}?name=value&other={p}`.
pub fn parse_uri_template(s: &str) -> Result<UriTemplate, Invalid> {
    let s = s.trim();
    let (path, query) = match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    };
    if !path.starts_with('/') && !path.is_empty() {
        return Err(crate::invalid!("template {s:?} must start with '/'"));
    }
    let path = template_parts(path)?;
    let mut q = Vec::new();
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            if n.contains('{') {
                return Err(crate::invalid!(
                    "query parameter names in {s:?} cannot be placeholders"
                ));
            }
            q.push((n.to_string(), template_parts(v)?));
        }
    }
    Ok(UriTemplate { path, query: q })
}

fn template_parts(s: &str) -> Result<Vec<TemplatePart>, Invalid> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| crate::invalid!("unclosed '{{' in template {s:?}"))?
            + open;
        let name = rest[open + 1..close].trim().trim_start_matches('*');
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return Err(crate::invalid!("invalid placeholder in template {s:?}"));
        }
        parts.push(TemplatePart::Param(name.to_string()));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    Ok(parts)
}

/// Render an element back to one line of XML as written (for `explain`).
fn render_element(el: &Element) -> String {
    let mut s = format!("<{}", el.name);
    for a in &el.attrs {
        s.push_str(&format!(
            " {}=\"{}\"",
            a.name,
            a.value.replace('"', "&quot;")
        ));
    }
    if el.children.is_empty() {
        s.push_str(" />");
        return s;
    }
    s.push('>');
    for n in &el.children {
        match n {
            Node::Element(c) => s.push_str(&render_element(c)),
            Node::Text(t) => s.push_str(t.value.trim()),
        }
    }
    s.push_str(&format!("</{}>", el.name));
    s
}

// ---- attribute reader ---------------------------------------------------------------------

/// Reads the attributes and text of one element, substituting named values, and reports
/// any attribute it was not asked for as unknown.
struct Reader<'e, 'a, 'd> {
    el: &'e Element,
    env: &'e Env<'a>,
    diags: &'d mut Diagnostics,
    used: Vec<String>,
    children_checked: bool,
}

impl<'e, 'a, 'd> Reader<'e, 'a, 'd> {
    fn new(el: &'e Element, env: &'e Env<'a>, diags: &'d mut Diagnostics) -> Self {
        Reader {
            el,
            env,
            diags,
            used: Vec::new(),
            children_checked: false,
        }
    }

    fn literal(&mut self, name: &str) -> Option<(String, Span)> {
        self.used.push(name.to_string());
        let a = self.el.attr(name)?;
        Some((
            substitute(&a.value, &a.span, self.env, self.diags),
            a.span.clone(),
        ))
    }

    fn required_literal(&mut self, name: &str) -> Option<String> {
        let v = self.literal(name);
        if v.is_none() {
            self.diags.error(
                "P012",
                self.el.span.clone(),
                format!("<{}> needs attribute `{name}`", self.el.name),
            );
        }
        v.map(|(v, _)| v)
    }

    /// A literal-only attribute parsed into a type.
    fn parsed_literal<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        let (v, span) = self.literal(name)?;
        if expr::is_expression(&v) {
            self.diags.error(
                "P019",
                span,
                format!(
                    "`{name}` of <{}> takes a literal value, not an expression",
                    self.el.name
                ),
            );
            return None;
        }
        match parse(&v) {
            Ok(t) => Some(t),
            Err(e) => {
                self.diags
                    .error("P012", span, format!("`{name}` of <{}>: {e}", self.el.name));
                None
            }
        }
    }

    /// An attribute that may be a literal or an expression.
    fn value<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Option<Val<T>> {
        let (v, span) = self.literal(name)?;
        Some(self.make_val(&v, &span, name, parse))
    }

    fn required_value<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Option<Val<T>> {
        let v = self.value(name, parse);
        if v.is_none() && self.el.attr(name).is_none() {
            self.diags.error(
                "P012",
                self.el.span.clone(),
                format!("<{}> needs attribute `{name}`", self.el.name),
            );
        }
        v
    }

    /// The element's text as a value; `required` reports an empty element.
    fn text_value<T>(
        &mut self,
        required: bool,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Option<Val<T>> {
        let Some(t) = self.el.text() else {
            if required {
                self.diags.error(
                    "P012",
                    self.el.span.clone(),
                    format!("<{}> needs a value", self.el.name),
                );
            }
            return None;
        };
        let v = substitute(&t.value, &t.span, self.env, self.diags);
        let what = format!("<{}>", self.el.name);
        Some(self.make_val(&v, &t.span, &what, parse))
    }

    fn make_val<T>(
        &mut self,
        v: &str,
        span: &Span,
        what: &str,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Val<T> {
        if expr::is_expression(v) {
            match expr::compile(v.trim(), span) {
                Ok(e) => return Val::Expr(e),
                Err(d) => {
                    self.diags.error(d.code, d.span, d.message);
                }
            }
        } else {
            match parse(v) {
                Ok(t) => return Val::Lit(t),
                Err(e) => self.diags.error(
                    "P012",
                    span.clone(),
                    format!("{what} of <{}>: {e}", self.el.name),
                ),
            }
        }
        Val::Expr(crate::expr::Expr::placeholder(v, span))
    }

    fn children(&mut self) -> Vec<&'e Element> {
        self.children_checked = true;
        self.el.elements().collect()
    }

    /// The children named `item`; any other child is error P014.
    fn items(&mut self, item: &str) -> Vec<&'e Element> {
        let mut out = Vec::new();
        for c in self.children() {
            if c.name == item {
                out.push(c);
            } else {
                self.diags.error(
                    "P014",
                    c.span.clone(),
                    format!(
                        "<{}> is not allowed in <{}>; expected <{item}>",
                        c.name, self.el.name
                    ),
                );
            }
        }
        out
    }

    fn no_children(&mut self) {
        self.children_checked = true;
        for c in self.el.elements() {
            self.diags.error(
                "P014",
                c.span.clone(),
                format!("<{}> is not allowed inside <{}>", c.name, self.el.name),
            );
        }
    }

    fn finish(self) {
        for a in &self.el.attrs {
            if !self.used.iter().any(|u| u == &a.name) {
                self.diags.error(
                    "P011",
                    a.span.clone(),
                    format!("unknown attribute `{}` on <{}>", a.name, self.el.name),
                );
            }
        }
        let _ = self.children_checked;
    }
}

/// `certificate-id` or `thumbprint` of an `<authentication-certificate>` (literal values).
fn parse_certificate_ref(r: &mut Reader) -> Option<crate::policy::ast::CertificateRef> {
    let id = r.literal("certificate-id").map(|(v, _)| v);
    let thumb = r.literal("thumbprint").map(|(v, _)| v);
    for unsupported in ["body", "password"] {
        if let Some((_, span)) = r.literal(unsupported) {
            r.diags.error(
                "P021",
                span,
                format!("`{unsupported}` of <authentication-certificate> is not supported yet; configure the certificate under `certificates` and use certificate-id"),
            );
        }
    }
    match (id, thumb) {
        (Some(id), None) => Some(crate::policy::ast::CertificateRef::Id(id)),
        (None, Some(t)) => Some(crate::policy::ast::CertificateRef::Thumbprint(
            t.trim().to_ascii_uppercase(),
        )),
        _ => {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "<authentication-certificate> needs exactly one of `certificate-id` or `thumbprint`",
            );
            None
        }
    }
}

/// `scheme://host[:port]` lower-cased, default port dropped; `*` stays.
pub fn normalise_origin(o: &str) -> Result<String, Invalid> {
    if o == "*" {
        return Ok(o.to_string());
    }
    let (scheme, rest) = o
        .split_once("://")
        .ok_or_else(|| crate::invalid!("{o:?} is not an origin (scheme://host[:port])"))?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.trim_end_matches('/').to_ascii_lowercase();
    if rest.is_empty() || rest.contains('/') {
        return Err(crate::invalid!(
            "{o:?} is not an origin (scheme://host[:port])"
        ));
    }
    let default = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    let host = rest.strip_suffix(default).unwrap_or(&rest);
    Ok(format!("{scheme}://{host}"))
}

fn parse_validate_jwt(r: &mut Reader, azure: bool) -> crate::policy::ast::ValidateJwt {
    use crate::policy::ast::{JwtKey, JwtKeyMaterial, RequiredClaim, TokenSource, ValidateJwt};
    let text = |s: &str| Ok(s.to_string());
    let header = r.value("header-name", text);
    let query = r.value("query-parameter-name", text);
    let token = r.value("token-value", text);
    let from_authorization = matches!(&header, Some(Val::Lit(h)) if h.eq_ignore_ascii_case("authorization"))
        || (azure && header.is_none() && query.is_none() && token.is_none());
    let source = match (header, query, token) {
        (Some(h), None, None) => TokenSource::Header(h),
        (None, Some(q), None) => TokenSource::Query(q),
        (None, None, Some(t)) => TokenSource::Value(t),
        (None, None, None) if azure => TokenSource::Header(Val::Lit("Authorization".into())),
        _ => {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                format!("<{}> needs exactly one of `header-name`, `query-parameter-name` or `token-value`", r.el.name),
            );
            TokenSource::Header(Val::Lit("Authorization".into()))
        }
    };
    let code = r
        .value("failed-validation-httpcode", parse_status)
        .unwrap_or(Val::Lit(401));
    let message = r.value("failed-validation-error-message", text);
    let require_expiration = r
        .value("require-expiration-time", parse_bool)
        .unwrap_or(Val::Lit(true));
    let require_scheme = r.value("require-scheme", text);
    let require_signed = r
        .value("require-signed-tokens", parse_bool)
        .unwrap_or(Val::Lit(true));
    let clock_skew = r.value("clock-skew", parse_u64).unwrap_or(Val::Lit(0));
    let output_variable = r.literal("output-token-variable-name").map(|(v, _)| v);
    let mut openid = Vec::new();
    if azure {
        match r.literal("tenant-id") {
            Some((t, span)) if crate::expr::is_expression(&t) => r.diags.error(
                "P019",
                span,
                "`tenant-id` of <validate-azure-ad-token> takes a literal value (named values allowed)",
            ),
            Some((t, _)) => openid.push(format!("azure-ad:{}", t.trim())),
            None => r.diags.error(
                "P012",
                r.el.span.clone(),
                "<validate-azure-ad-token> needs attribute `tenant-id`",
            ),
        }
    }
    let (mut keys, mut audiences, mut issuers, mut claims, mut apps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for child in r.children() {
        let mut cr = Reader::new(child, r.env, r.diags);
        match child.name.as_str() {
            "openid-config" if !azure => {
                cr.no_children();
                if let Some(u) = cr.required_literal("url") {
                    openid.push(u.trim().to_string());
                }
                cr.literal("validate-connectivity");
            }
            "issuer-signing-keys" if !azure => {
                for k in cr.items("key") {
                    let mut kr = Reader::new(k, cr.env, cr.diags);
                    kr.no_children();
                    let id = kr.literal("id").map(|(v, _)| v);
                    let cert = kr.literal("certificate-id").map(|(v, _)| v);
                    let n = kr.literal("n").map(|(v, _)| v);
                    let e = kr.literal("e").map(|(v, _)| v);
                    let body = k
                        .text()
                        .map(|t| {
                            substitute(&t.value, &t.span, kr.env, kr.diags)
                                .trim()
                                .to_string()
                        })
                        .filter(|t| !t.is_empty());
                    let material = match (cert, n, e, body) {
                        (Some(c), None, None, None) => Some(JwtKeyMaterial::Certificate(c)),
                        (None, Some(n), Some(e), None) => Some(JwtKeyMaterial::Rsa { n, e }),
                        (None, None, None, Some(b)) => {
                            use base64::Engine;
                            match base64::engine::general_purpose::STANDARD.decode(b.as_bytes()) {
                                Ok(bytes) if !bytes.is_empty() => {
                                    Some(JwtKeyMaterial::Secret(bytes))
                                }
                                _ => {
                                    kr.diags.error(
                                        "P012",
                                        k.span.clone(),
                                        "a symmetric <key> is base64 text",
                                    );
                                    None
                                }
                            }
                        }
                        _ => {
                            kr.diags.error("P012", k.span.clone(), "a <key> is base64 text (symmetric), `certificate-id`, or `n` and `e` (RSA)");
                            None
                        }
                    };
                    if let Some(material) = material {
                        keys.push(JwtKey { id, material });
                    }
                    kr.finish();
                }
            }
            "audiences" | "issuers" | "client-application-ids" | "backend-application-ids" => {
                let item = match child.name.as_str() {
                    "audiences" => "audience",
                    "issuers" => "issuer",
                    _ => "application-id",
                };
                for g in cr.items(item) {
                    let mut gr = Reader::new(g, cr.env, cr.diags);
                    gr.no_children();
                    if let Some(v) = gr.text_value(true, |s| Ok(s.trim().to_string())) {
                        match child.name.as_str() {
                            "audiences" => audiences.push(v),
                            "issuers" => issuers.push(v),
                            "client-application-ids" => apps.push(v),
                            _ => {}
                        }
                    }
                    gr.finish();
                }
            }
            "required-claims" => {
                for c in cr.items("claim") {
                    let mut ccr = Reader::new(c, cr.env, cr.diags);
                    let name = ccr.required_literal("name").unwrap_or_default();
                    let all = match ccr.literal("match").map(|(v, _)| v) {
                        None => true,
                        Some(m) if m == "all" => true,
                        Some(m) if m == "any" => false,
                        Some(m) => {
                            ccr.diags.error(
                                "P012",
                                c.span.clone(),
                                format!("`match` must be all or any, found {m:?}"),
                            );
                            true
                        }
                    };
                    let separator = ccr.literal("separator").map(|(v, _)| v);
                    let mut values = Vec::new();
                    for v in ccr.items("value") {
                        let mut vr = Reader::new(v, ccr.env, ccr.diags);
                        vr.no_children();
                        if let Some(x) = vr.text_value(true, |s| Ok(s.trim().to_string())) {
                            values.push(x);
                        }
                        vr.finish();
                    }
                    claims.push(RequiredClaim {
                        name,
                        all,
                        separator,
                        values,
                    });
                    ccr.finish();
                }
            }
            "decryption-keys" => {
                cr.diags.error(
                    "P021",
                    child.span.clone(),
                    "encrypted tokens (<decryption-keys>) are not supported yet",
                );
                continue;
            }
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!("<{other}> is not allowed in <{}>", r.el.name),
                );
                continue;
            }
        }
        cr.finish();
    }
    if !azure && openid.is_empty() && keys.is_empty() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<validate-jwt> needs <openid-config> or <issuer-signing-keys> to verify signatures",
        );
    }
    if azure && apps.is_empty() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<validate-azure-ad-token> needs <client-application-ids>",
        );
    }
    ValidateJwt {
        source,
        from_authorization,
        code,
        message,
        require_expiration,
        require_scheme,
        require_signed,
        clock_skew,
        output_variable,
        openid,
        keys,
        audiences,
        issuers,
        claims,
        client_application_ids: apps,
        decoded_keys: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_templates() {
        let t = parse_uri_template("/v2/{store}/x?City=city&o={order}")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.path,
            vec![
                TemplatePart::Text("/v2/".into()),
                TemplatePart::Param("store".into()),
                TemplatePart::Text("/x".into())
            ]
        );
        assert_eq!(t.query.len(), 2);
        assert!(parse_uri_template("/a/{").is_err());
    }
}
