//! `<return-response>`: build a fresh response and end the whole pipeline (outbound does not run).

use bytes::Bytes;

use crate::exec::{ExecCtx, Step, StepError};
use crate::policy::ReturnResponse;

pub fn run(r: &ReturnResponse, cx: &mut ExecCtx) -> Result<Step, StepError> {
    cx.resp_headers.clear();
    cx.resp.status = 200;
    cx.resp.reason = None;
    cx.resp.body = Some(Bytes::new());
    if let Some(s) = &r.status {
        super::set_status::run(s, cx)?;
    }
    for h in &r.headers {
        super::set_header::apply(h, cx, true)?;
    }
    if let Some(b) = &r.body {
        cx.resp.body = Some(super::set_body::body_of(b, cx)?);
    }
    Ok(Step::Respond { run_outbound: false })
}
