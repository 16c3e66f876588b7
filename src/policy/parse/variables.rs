//! `<set-variable>`, `<trace>`, `<find-and-replace>`.

use super::*;

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

impl Trace {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        visit_val(&self.message, f);
        self.metadata.iter().for_each(|(_, x)| visit_val(x, f));
    }
}

pub(super) fn set_variable_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let name = r.required_literal("name").unwrap_or_default();
    let value = r
        .required_value("value", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    Some(StmtKind::SetVariable { name, value })
}

pub(super) fn trace_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    Some(StmtKind::Trace(parse_trace(r)))
}

pub(super) fn find_and_replace_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
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

pub(super) fn parse_trace(r: &mut Reader) -> Trace {
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
        let mut cr = r.child(child);
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
