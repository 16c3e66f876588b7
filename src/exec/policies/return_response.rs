//! `<return-response>`: build a fresh response and end the whole pipeline (outbound does not run).

use super::set_header::{parse_set_header, SetHeader};
use super::set_status::{parse_set_status, SetStatus};
use super::*;
use bytes::Bytes;

#[derive(Clone, Debug)]
pub struct ReturnResponse {
    /// A variable holding an `IResponse` (from send-request) to start from.
    pub response_variable: Option<String>,
    pub status: Option<SetStatus>,
    pub headers: Vec<SetHeader>,
    pub body: Option<super::set_body::Body>,
}

impl Policy for ReturnResponse {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        Some(parse_return_response(r))
    }

    /// A Liquid body that reads `body` needs the section's body buffered.
    fn needs(&self) -> Needs {
        let reads = self
            .body
            .as_ref()
            .is_some_and(|b| super::set_body::needs(b).request_body);
        Needs {
            request_body: reads,
            response_body: reads,
            ..Needs::NONE
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        if let Some(s) = &self.status {
            s.exprs(f);
        }
        for h in &self.headers {
            h.exprs(f);
        }
        if let Some(b) = &self.body {
            super::set_body::exprs(b, f);
        }
    }
}

impl RunsNow for ReturnResponse {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run(self, cx)
    }
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
        let mut cr = r.child(child);
        match child.name.as_str() {
            "set-status" if out.status.is_none() => {
                cr.no_children();
                out.status = Some(parse_set_status(&mut cr));
            }
            "set-header" => out.headers.push(parse_set_header(&mut cr)),
            "set-body" if out.body.is_none() => {
                out.body = super::set_body::read(&mut cr);
            }
            "set-status" | "set-body" => {
                cr.diags.error(
                    "P017",
                    child.span.clone(),
                    format!("<{}> may appear only once in <return-response>", child.name),
                );
            }
            _ => {
                not_allowed(
                    cr.diags,
                    child,
                    "return-response",
                    "set-status, set-header or set-body",
                );
                continue;
            }
        }
        cr.literal("id");
        cr.finish();
    }
    out
}

fn run(r: &ReturnResponse, cx: &mut ExecCtx) -> Outcome {
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
