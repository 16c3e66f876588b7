//! `<trace>`: add an entry to the request's trace (written to the access log line and the log).

use super::*;
use crate::exec::{value, TraceEntry};

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

impl Policy for Trace {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        Some(parse_trace(r))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.message, f);
        self.metadata.iter().for_each(|(_, x)| visit_val(x, f));
    }
}

impl RunsNow for Trace {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let message = value(&self.message, cx)?.into_owned();
        let mut metadata = Vec::with_capacity(self.metadata.len());
        for (k, v) in &self.metadata {
            metadata.push((k.clone(), value(v, cx)?.into_owned()));
        }
        let severity = match self.severity {
            Severity::Verbose => "verbose",
            Severity::Information => "information",
            Severity::Error => "error",
        };
        cx.req.traces.push(TraceEntry {
            source: self.source.clone(),
            severity,
            message,
            metadata,
        });
        Ok(Step::Next)
    }
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
            _ => {
                not_allowed(cr.diags, child, "trace", "<message> or <metadata>");
                continue;
            }
        }
        cr.finish();
    }
    // The legacy form `<trace source="x">text</trace>` (APIM still accepts it) has the message
    // as the element's text.
    let has_text = r.el.text().is_some_and(|t| !t.value.trim().is_empty());
    let legacy = || r.text_value(false, |s| Ok(s.trim().to_string()));
    let message = match message.or_else(|| has_text.then(legacy).flatten()) {
        Some(m) => m,
        None => {
            r.diags
                .error("P012", r.el.span.clone(), "<trace> needs a <message>");
            Val::Lit(String::new())
        }
    };
    Trace {
        source,
        severity,
        message,
        metadata,
    }
}
