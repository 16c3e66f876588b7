//! `<set-body>`: replace the request body (inbound, backend) or the response body
//! (outbound, on-error). An expression may return a string, a JSON object (serialised as
//! `ToString()` would) or a `byte[]`.

use bytes::Bytes;

use crate::exec::{eval, ExecCtx, StepError};
use crate::expr::Value;
use crate::policy::{Section, Val};

pub fn body_of(b: &Val<String>, cx: &mut ExecCtx) -> Result<Bytes, StepError> {
    Ok(match b {
        Val::Lit(s) => Bytes::from(s.clone()),
        Val::Expr(e) => match eval(e, cx)? {
            Value::Bytes(b) => Bytes::from(b.to_vec()),
            Value::Null => Bytes::new(),
            Value::JObject(_) | Value::JArray(_) | Value::JProperty(_) => {
                // JToken.ToString() is indented, as APIM's would be.
                let v = eval(e, cx)?;
                Bytes::from(crate::expr::value::json_text(&v, true))
            }
            other => Bytes::from(other.to_display()),
        },
    })
}

pub fn run(b: &Val<String>, cx: &mut ExecCtx) -> Result<(), StepError> {
    let body = body_of(b, cx)?;
    match cx.section {
        Section::Inbound | Section::Backend => cx.req.body = Some(body),
        Section::Outbound | Section::OnError => cx.resp.body = Some(body),
    }
    Ok(())
}
