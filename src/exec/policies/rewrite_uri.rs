//! `<rewrite-uri>`: replace the backend path (relative to the backend base URL) from a template
//! filled with `MatchedParameters`; optionally keep the query parameters the operation's
//! template did not match.

use super::*;
use crate::codec::query::encode_component;
use crate::exec::value;

#[derive(Clone, Debug)]
pub struct RewriteUri {
    pub template: Val<UriTemplate>,
    pub copy_unmatched_params: Val<bool>,
}

impl Policy for RewriteUri {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read(r)
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.template, f);
        visit_val(&self.copy_unmatched_params, f);
    }
}

impl RunsNow for RewriteUri {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run(self, cx).map(|_| Step::Next)
    }
}

fn read(r: &mut Reader) -> Option<RewriteUri> {
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
    Some(RewriteUri {
        template,
        copy_unmatched_params: copy,
    })
}

fn render(
    parts: &[TemplatePart],
    matched: &[(String, String)],
    encode: bool,
) -> Result<String, StepError> {
    let mut out = String::new();
    for p in parts {
        match p {
            TemplatePart::Text(t) => out.push_str(t),
            TemplatePart::Param(name) => {
                let v = matched
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
                    .ok_or_else(|| {
                        StepError::new(
                            crate::exec::ErrorKind::Internal,
                            format!("rewrite-uri: template parameter {{{name}}} was not matched"),
                        )
                    })?;
                if encode {
                    out.push_str(&encode_component(v));
                } else {
                    out.push_str(v);
                }
            }
        }
    }
    Ok(out)
}

fn run(r: &RewriteUri, cx: &mut ExecCtx) -> Result<(), StepError> {
    let t = value(&r.template, cx)?.into_owned();
    let copy = *value(&r.copy_unmatched_params, cx)?;
    let path = render(&t.path, &cx.req.matched, true)?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, parts) in &t.query {
        pairs.push((name.clone(), render(parts, &cx.req.matched, false)?));
    }
    if copy {
        for (k, v) in cx.req.query.pairs() {
            let matched = cx.req.template_query.contains(&k);
            let named = t.query.iter().any(|(n, _)| *n == k);
            if !matched && !named {
                pairs.push((k, v));
            }
        }
    }
    // A template from an expression can carry any character; none that cannot stand in a
    // request line (controls, space) may reach the backend request. Query names and values
    // are percent-encoded when the URL is written.
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(StepError::expression(
            "rewrite-uri: the new path has a control character or a space",
        ));
    }
    cx.req.path = if path == "/" { String::new() } else { path };
    *cx.req.query.pairs_mut() = pairs;
    Ok(())
}
