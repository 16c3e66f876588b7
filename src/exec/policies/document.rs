//! From XML documents to typed statements: the `<policies>` and `<fragment>` roots, their
//! sections, and each element handed to the reader its policy registered.

use std::path::Path;
use std::sync::Arc;

use super::{PolicyDoc, Stmt, StmtKind, STATEMENTS};
use crate::diag::{Diagnostics, Invalid, Span};
use crate::policy::catalog::{self, Support};
use crate::policy::reader::{Env, Reader};
use crate::policy::xml::{self, Element, Node};
use crate::policy::{Section, MAX_DOCUMENT_BYTES, MAX_FRAGMENT_BYTES};

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
        StmtKind::Base(_) => {
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
    let Some(&(element, _, read)) = STATEMENTS.iter().find(|(name, _, _)| *name == el.name) else {
        match catalog::lookup(&el.name) {
            Some((_, Support::AzureOnly, _)) => diags.error(
                "P020",
                el.span.clone(),
                format!(
                    "<{}> depends on an Azure service and is not supported by gatehouse",
                    el.name
                ),
            ),
            Some((_, Support::NotYet, _)) => diags.error(
                "P021",
                el.span.clone(),
                format!("<{}> is not supported by this gatehouse build yet", el.name),
            ),
            None => diags.error(
                "P010",
                el.span.clone(),
                format!("unknown policy element <{}>", el.name),
            ),
        }
        return None;
    };
    let mut r = Reader::new(el, env, diags);
    let id = r.literal("id").map(|(v, _)| v);
    let kind = read(&mut r, element)?;
    r.finish();
    Some(Stmt {
        kind,
        element,
        id,
        span: el.span.clone(),
        scope: env.scope,
        display: render_element(el).into(),
    })
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

/// Parse a `<policies>` document from its text as the loader read it (at most one byte past
/// the limit, or the read error).
pub fn document_from_text(
    path: &Path,
    text: Result<&str, Invalid>,
    env: &Env,
    diags: &mut Diagnostics,
) -> Option<PolicyDoc> {
    let (file, text) = checked(path, text, MAX_DOCUMENT_BYTES, diags)?;
    match xml::parse(&file, text) {
        Ok(root) => Some(parse_document(&root, env, diags)),
        Err(d) => {
            diags.extend(d);
            None
        }
    }
}

/// Parse a `<fragment>` document from its text as the loader read it.
pub fn fragment_from_text(
    path: &Path,
    text: Result<&str, Invalid>,
    env: &Env,
    diags: &mut Diagnostics,
) -> Option<Vec<Stmt>> {
    let (file, text) = checked(path, text, MAX_FRAGMENT_BYTES, diags)?;
    match xml::parse(&file, text) {
        Ok(root) => Some(parse_fragment(&root, env, diags)),
        Err(d) => {
            diags.extend(d);
            None
        }
    }
}

fn checked<'t>(
    path: &Path,
    text: Result<&'t str, Invalid>,
    max: usize,
    diags: &mut Diagnostics,
) -> Option<(Arc<str>, &'t str)> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    match text {
        Ok(t) if t.len() > max => {
            diags.error(
                "P008",
                Span::new(&file, 1, 1),
                format!("document is over {max} bytes, the limit"),
            );
            None
        }
        Ok(t) => Some((file, t)),
        Err(e) => {
            diags.error(
                "P009",
                Span::new(&file, 1, 1),
                format!("cannot read policy document: {e}"),
            );
            None
        }
    }
}
