//! `<return-response>`: build a fresh response and end the whole pipeline (outbound does not run).

use bytes::Bytes;

use crate::exec::{ExecCtx, Step, StepError};
use crate::policy::ReturnResponse;

pub fn run(r: &ReturnResponse, cx: &mut ExecCtx) -> Result<Step, StepError> {
    cx.resp_headers.clear();
    cx.resp.status = 200;
    cx.resp.reason = None;
    cx.resp.body = Some(Bytes::new());
    // Start from a response held in a variable (a send-request result).
    if let Some(var) = &r.response_variable {
        match cx.req.variable(var).cloned() {
            Some(crate::expr::Value::Obj(o)) => match &*o {
                crate::expr::value::Obj::Message(m) => {
                    cx.resp.status = u16::try_from(m.status).unwrap_or(200);
                    cx.resp.reason = (!m.reason.is_empty()).then(|| m.reason.clone());
                    for (k, vs) in &m.headers {
                        if let Ok(n) = http::HeaderName::from_bytes(k.as_bytes()) {
                            for v in vs {
                                if let Ok(v) = http::HeaderValue::from_str(v) {
                                    cx.resp_headers.append(&n, v);
                                }
                            }
                        }
                    }
                    cx.resp.body = Some(Bytes::from(m.body.clone().unwrap_or_default()));
                }
                _ => {
                    return Err(StepError::expression(format!(
                        "variable `{var}` does not hold an IResponse"
                    )))
                }
            },
            _ => {
                return Err(StepError::expression(format!(
                    "variable `{var}` does not hold an IResponse"
                )))
            }
        }
    }
    if let Some(s) = &r.status {
        super::set_status::run(s, cx)?;
    }
    for h in &r.headers {
        super::set_header::apply(h, cx, true)?;
    }
    if let Some(b) = &r.body {
        cx.resp.body = Some(super::set_body::body_of(b, cx)?);
    }
    Ok(Step::Respond {
        run_outbound: false,
    })
}
