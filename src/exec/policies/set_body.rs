//! `<set-body>`: replace the request body (inbound, backend) or the response body
//! (outbound, on-error). An expression may return a string, a JSON object (serialised as
//! `ToString()` would) or a `byte[]`. With `template="liquid"` the content is a Liquid
//! template in APIM's DotLiquid dialect (`policy::liquid`) over `context` and `body`.

use super::*;
use crate::exec::{eval, ErrorKind};
use crate::expr::Value;
use crate::policy::liquid;
use bytes::Bytes;

/// What a `set-body` produces: a literal or expression, or a rendered Liquid template.
#[derive(Clone, Debug)]
pub enum Body {
    Val(Val<String>),
    Liquid(Box<(liquid::Template, liquid::Options)>),
}

#[derive(Clone, Debug)]
pub struct SetBody(pub Body);

impl Policy for SetBody {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read(r).map(SetBody)
    }

    fn needs(&self) -> Needs {
        needs(&self.0)
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        exprs(&self.0, f);
    }
}

/// A Liquid template that reads `body` needs the body buffered; every set-body replaces it.
pub(super) fn needs(b: &Body) -> Needs {
    let reads = matches!(b, Body::Liquid(l) if l.0.uses_body);
    Needs {
        request_body: reads,
        response_body: reads,
        replaces_request_body: true,
    }
}

pub(super) fn exprs(b: &Body, f: &mut dyn FnMut(&Expr)) {
    if let Body::Val(v) = b {
        visit_val(v, f);
    }
}

impl RunsNow for SetBody {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let body = body_of(&self.0, cx)?;
        match cx.section {
            Section::Inbound | Section::Backend => cx.req.body = Some(body),
            Section::Outbound | Section::OnError => cx.resp.body = Some(body),
        }
        Ok(Step::Next)
    }
}

/// Read a `<set-body>`, top-level or nested in return-response / send-request: the same
/// attributes and the same diagnostics wherever it stands.
pub(super) fn read(r: &mut Reader) -> Option<Body> {
    let mut liquid = false;
    if let Some((t, span)) = r.literal("template") {
        match t.trim() {
            // APIM's explicit "no template": the body is taken as written.
            "none" => {}
            "liquid" => liquid = true,
            _ => r.diags.error(
                "P012",
                span,
                format!("set-body template must be \"liquid\" or \"none\", found {t:?}"),
            ),
        }
    }
    let nil_is_null = r
        .parsed_literal("xsi-nil", |s| match s.trim() {
            "blank" => Ok(false),
            "null" => Ok(true),
            _ => Err(crate::invalid!("must be \"blank\" or \"null\"")),
        })
        .unwrap_or(false);
    let parse_date = r.parsed_literal("parse-date", parse_bool).unwrap_or(true);
    if liquid {
        // The template's markup is kept as written by the XML reader: no P014 for it.
        r.children_checked = true;
        let Some(t) = r.el.text() else {
            return Some(Body::Val(Val::Lit(String::new())));
        };
        let source = substitute_known(&t.value, r.env);
        return match liquid::compile(&source) {
            Ok(template) => Some(Body::Liquid(Box::new((
                template,
                liquid::Options {
                    nil_is_null,
                    parse_date,
                },
            )))),
            Err(e) => {
                // The place in the template as written (named values not yet substituted).
                let span = match e.at.and_then(|at| t.value.get(..at)) {
                    Some(before) => t.span.advanced(before),
                    None => t.span,
                };
                r.diags.error(
                    "P012",
                    span,
                    format!("set-body Liquid template: {}", e.message),
                );
                None
            }
        };
    }
    r.no_children();
    let v = r
        .text_value(false, |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    Some(Body::Val(v))
}

pub fn body_of(b: &Body, cx: &mut ExecCtx) -> Result<Bytes, StepError> {
    Ok(match b {
        Body::Val(Val::Lit(s)) => Bytes::from(s.clone()),
        Body::Val(Val::Expr(e)) => match eval(e, cx)? {
            Value::Bytes(b) => Bytes::from(b.to_vec()),
            Value::Null => Bytes::new(),
            // JToken.ToString() is indented, as APIM's would be.
            v @ (Value::JObject(_) | Value::JArray(_) | Value::JProperty(_)) => {
                Bytes::from(crate::expr::value::json_text(&v, true))
            }
            other => Bytes::from(other.to_display()),
        },
        Body::Liquid(l) => Bytes::from(render(&l.0, l.1, cx)?),
    })
}

/// Render a template over the section's message: `body` is its body read as JSON or XML (by
/// Content-Type; any other body is no `body`), `context` the request.
fn render(
    t: &liquid::Template,
    opts: liquid::Options,
    cx: &mut ExecCtx,
) -> Result<Vec<u8>, StepError> {
    let fail = |e: String| StepError::new(ErrorKind::Internal, format!("set-body liquid: {e}"));
    let mut parsed = None;
    if t.uses_body {
        let raw = cx.section_body().unwrap_or_default();
        if !raw.is_empty() {
            if cx.section_content_type_has("json") {
                let j: serde_json::Value = serde_json::from_slice(&raw)
                    .map_err(|e| fail(format!("the body is not valid JSON: {e}")))?;
                parsed = Some((j, false));
            } else if cx.section_content_type_has("xml") {
                let style = super::xml_to_json::Style {
                    friendly: true,
                    always_array: false,
                };
                let j = super::xml_to_json::convert(&raw, style).map_err(|e| fail(e.0))?;
                parsed = Some((j, true));
            }
        }
    }
    let body = parsed.as_ref().map(|(json, from_xml)| liquid::Body {
        json,
        from_xml: *from_xml,
    });
    let max = usize::try_from(cx.gw.limits.max_body_bytes).unwrap_or(usize::MAX);
    liquid::render(t, cx, body, opts, max).map_err(fail)
}
