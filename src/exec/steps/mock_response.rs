//! `<mock-response>`: answer with the operation's example for the status code and content type
//! (configured under the operation's `examples`), or an empty body. The backend is skipped;
//! outbound still runs (apim-reference.md §1.4: the recommended reading of an unverified rule).

use bytes::Bytes;
use http::{header::CONTENT_TYPE, HeaderValue};

use crate::exec::{ExecCtx, Step, StepError};
use crate::policy::MockResponse;

pub fn run(m: &MockResponse, cx: &mut ExecCtx) -> Result<Step, StepError> {
    let example = cx.examples.iter().find(|e| {
        e.status == m.status
            && m.content_type
                .as_ref()
                .is_none_or(|c| c.eq_ignore_ascii_case(&e.content_type))
    });
    cx.resp_headers.clear();
    cx.resp.status = m.status;
    cx.resp.reason = None;
    let content_type = m
        .content_type
        .clone()
        .or_else(|| example.map(|e| e.content_type.clone()));
    if let Some(ct) = content_type {
        if let Ok(v) = HeaderValue::from_str(&ct) {
            cx.resp_headers.set(&CONTENT_TYPE, &[v]);
        }
    }
    cx.resp.body = Some(example.map_or_else(Bytes::new, |e| Bytes::from(e.body.clone())));
    Ok(Step::Respond { run_outbound: true })
}
