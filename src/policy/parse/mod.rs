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

pub mod access;
pub mod cache;
pub mod choose;
pub mod cors;
pub mod forward_request;
pub mod jwt;
pub mod limit_concurrency;
pub mod limits;
pub mod reader;
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
pub mod variables;

pub use self::cors::normalise_origin;
pub use self::reader::{parse_bool, parse_uri_template};
use self::{
    access::*, cache::*, choose::*, cors::*, forward_request::*, jwt::*, limit_concurrency::*,
    limits::*, reader::*, retry::*, return_response::*, rewrite_uri::*, send_request::*,
    set_backend_service::*, set_body::*, set_header::*, set_method::*, set_query_parameter::*,
    set_status::*, variables::*,
};

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
