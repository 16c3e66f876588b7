//! `<set-body>`: replace the request body (inbound, backend) or the response body
//! (outbound, on-error).

use bytes::Bytes;

use crate::exec::{value, ExecCtx, StepError};
use crate::policy::{Section, Val};

pub fn run(b: &Val<String>, cx: &mut ExecCtx) -> Result<(), StepError> {
    let body = Bytes::from(value(b)?.clone());
    match cx.section {
        Section::Inbound | Section::Backend => cx.req.body = Some(body),
        Section::Outbound | Section::OnError => cx.resp.body = Some(body),
    }
    Ok(())
}
