//! `<mock-response>`: answer with the operation's example for the status code and content type
//! (configured under the operation's `examples`, or given by its OpenAPI definition; `index`
//! picks among several, from 0; past the last: the first), or an empty body. The backend is skipped;
//! outbound still runs (apim-reference.md §1.4: the recommended reading of an unverified rule).

use super::*;
use bytes::Bytes;
use http::header::CONTENT_TYPE;

#[derive(Clone, Debug)]
pub struct MockResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub index: usize,
}

impl Policy for MockResponse {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let status = r.parsed_literal("status-code", parse_status).unwrap_or(200);
        let content_type = r.literal("content-type").map(|(v, _)| v);
        let index = r
            .parsed_literal("index", |s| {
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| crate::invalid!("must be a number from 0"))
            })
            .unwrap_or(0);
        Some(MockResponse {
            status,
            content_type,
            index,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }
}

impl RunsNow for MockResponse {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run(self, cx)
    }
}

fn run(m: &MockResponse, cx: &mut ExecCtx) -> Outcome {
    let matching = || {
        cx.examples.iter().filter(|e| {
            e.status == m.status
                && m.content_type
                    .as_ref()
                    .is_none_or(|c| c.eq_ignore_ascii_case(&e.content_type))
        })
    };
    let example = matching().nth(m.index).or_else(|| matching().next());
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
