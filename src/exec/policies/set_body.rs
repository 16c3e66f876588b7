//! `<set-body>`: replace the request body (inbound, backend) or the response body
//! (outbound, on-error). An expression may return a string, a JSON object (serialised as
//! `ToString()` would) or a `byte[]`.

use super::*;
use crate::exec::eval;
use crate::expr::Value;
use bytes::Bytes;

#[derive(Clone, Debug)]
pub struct SetBody(pub Val<String>);

impl Policy for SetBody {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read(r).map(SetBody)
    }

    fn needs(&self) -> Needs {
        Needs {
            replaces_request_body: true,
            ..Needs::NONE
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.0, f);
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
pub(super) fn read(r: &mut Reader) -> Option<Val<String>> {
    if let Some((t, span)) = r.literal("template") {
        if t == "none" {
            // APIM's explicit "no template": the body is taken as written.
        } else if t == "liquid" {
            r.diags.error(
                "P021",
                span,
                "set-body template=\"liquid\" is not supported by this gatehouse build yet",
            );
            // The template's own markup is not policy XML: no P014 for it.
            r.children_checked = true;
            return None;
        } else {
            r.diags.error(
                "P012",
                span,
                format!("set-body template must be \"liquid\" or \"none\", found {t:?}"),
            );
        }
    }
    r.no_children();
    r.literal("xsi-nil");
    r.literal("parse-date");
    let v = r
        .text_value(false, |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    Some(v)
}

pub fn body_of(b: &Val<String>, cx: &mut ExecCtx) -> Result<Bytes, StepError> {
    Ok(match b {
        Val::Lit(s) => Bytes::from(s.clone()),
        Val::Expr(e) => match eval(e, cx)? {
            Value::Bytes(b) => Bytes::from(b.to_vec()),
            Value::Null => Bytes::new(),
            // JToken.ToString() is indented, as APIM's would be.
            v @ (Value::JObject(_) | Value::JArray(_) | Value::JProperty(_)) => {
                Bytes::from(crate::expr::value::json_text(&v, true))
            }
            other => Bytes::from(other.to_display()),
        },
    })
}
