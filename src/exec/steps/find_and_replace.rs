//! `<find-and-replace>`: replace every occurrence of a string in the current body (the request
//! body in inbound and backend, the response body in outbound and on-error). The pipeline
//! buffers that body (decided at load).

use bytes::Bytes;

use crate::exec::{value, ExecCtx, StepError};
use crate::policy::{Section, Val};

pub fn run(from: &Val<String>, to: &Val<String>, cx: &mut ExecCtx) -> Result<(), StepError> {
    let from = value(from, cx)?.into_owned();
    let to = value(to, cx)?.into_owned();
    if from.is_empty() {
        return Err(StepError::expression(
            "find-and-replace `from` evaluated to an empty string",
        ));
    }
    let (current, target) = match cx.section {
        Section::Inbound | Section::Backend => (
            cx.req.body.clone().or_else(|| cx.req.original_body.clone()),
            &mut cx.req.body,
        ),
        Section::Outbound | Section::OnError => (
            cx.resp
                .body
                .clone()
                .or_else(|| cx.resp.original_body.clone()),
            &mut cx.resp.body,
        ),
    };
    let Some(body) = current else { return Ok(()) };
    let text = String::from_utf8_lossy(&body);
    if text.contains(&from) {
        *target = Some(Bytes::from(text.replace(&from, &to)));
    }
    Ok(())
}
