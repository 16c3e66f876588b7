//! `<forward-request>` run by the engine, for a backend section that wraps it in `<retry>`. Each
//! run picks the backend again (a pool's next member), sends the buffered request with a
//! deadline for the response headers, reports the outcome to the circuit breaker, and puts the
//! whole response in `context.Response`. The streaming path (forward-request directly in
//! `<backend>`) is the proxy's, not this.

use super::*;
use crate::exec::transport::ForwardCall;
use crate::exec::value;
use crate::upstream;
use http::{header, HeaderMap, HeaderName};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    Http1,
    Http2Or1,
    Http2,
}

#[derive(Clone, Debug)]
pub struct ForwardRequest {
    /// Time to wait for the backend's response headers, in milliseconds. `None`: the
    /// backend entity's `timeout`, else 300 s.
    pub timeout_ms: Option<Val<u64>>,
    pub follow_redirects: Val<bool>,
    pub buffer_request_body: bool,
    pub buffer_response: bool,
    pub fail_on_error_status_code: bool,
    pub http_version: HttpVersion,
}

impl Policy for ForwardRequest {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        Some(parse_forward_request(r))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        if let Some(t) = &self.timeout_ms {
            visit_val(t, f);
        }
        visit_val(&self.follow_redirects, f);
    }
}

impl Waits for ForwardRequest {
    /// Reached only in a backend section the engine forwards itself (forward-request inside
    /// retry); otherwise the proxy forwards and it is not among the statements.
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run(self, cx).await.map(|_| Step::Next)
    }
}

pub(super) fn parse_forward_request(r: &mut Reader) -> ForwardRequest {
    let timeout_s = r.value("timeout", |s| {
        s.trim()
            .parse::<u64>()
            .map(|v| v * 1000)
            .map_err(|_| Invalid::from("expected whole seconds"))
    });
    let timeout_ms = r.value("timeout-ms", |s| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| Invalid::from("expected whole milliseconds"))
    });
    let timeout = match (timeout_s, timeout_ms) {
        (Some(_), Some(ms)) => {
            r.diags.error(
                "P013",
                r.el.span.clone(),
                "forward-request takes `timeout` or `timeout-ms`, not both",
            );
            Some(ms)
        }
        (Some(t), None) => Some(t),
        (None, Some(ms)) => Some(ms),
        (None, None) => None,
    };
    if let Some((_, span)) = r.literal("continue-timeout") {
        r.diags.warning(
            "P018",
            span,
            "continue-timeout is accepted and ignored: gatehouse does not wait for 100 Continue",
        );
    }
    let http_version = match r.literal("http-version") {
        None => HttpVersion::Http1,
        Some((v, span)) => match v.as_str() {
            "1" => HttpVersion::Http1,
            "2or1" => HttpVersion::Http2Or1,
            "2" => HttpVersion::Http2,
            _ => {
                r.diags.error(
                    "P012",
                    span,
                    format!("http-version must be 1, 2or1 or 2, found {v:?}"),
                );
                HttpVersion::Http1
            }
        },
    };
    let follow_redirects = r
        .value("follow-redirects", parse_bool)
        .unwrap_or(Val::Lit(false));
    let buffer_request_body = r
        .parsed_literal("buffer-request-body", parse_bool)
        .unwrap_or(false);
    let buffer_response = r
        .parsed_literal("buffer-response", parse_bool)
        .unwrap_or(true);
    let fail_on_error_status_code = r
        .parsed_literal("fail-on-error-status-code", parse_bool)
        .unwrap_or(false);
    ForwardRequest {
        timeout_ms: timeout,
        follow_redirects,
        buffer_request_body,
        buffer_response,
        fail_on_error_status_code,
        http_version,
    }
}

/// Hop-by-hop headers: never forwarded.
const HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn run(f: &ForwardRequest, cx: &mut ExecCtx<'_>) -> Result<(), StepError> {
    let policy_timeout = match &f.timeout_ms {
        Some(v) => Some(std::time::Duration::from_millis(*value(v, cx)?)),
        None => None,
    };
    let pick = crate::exec::backend::select(cx.gw, cx.req, &[])
        .map_err(|e| StepError::new(e.kind, e.message))?;
    let timeout = forward_timeout(cx.gw, pick, policy_timeout);
    let mut headers = HeaderMap::new();
    for n in cx.req_headers.names() {
        if HOP.contains(&n.as_str()) || n == "content-length" {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(n.as_bytes()) {
            for v in cx.req_headers.get_all(&name) {
                headers.append(name.clone(), v);
            }
        }
    }
    let body = cx
        .req
        .body
        .clone()
        .or_else(|| cx.req.original_body.clone())
        .unwrap_or_default();
    let call = ForwardCall {
        gw: cx.gw,
        req: cx.req,
        headers,
        body,
        pick,
        version: f.http_version,
        timeout,
    };
    let sent = std::time::Instant::now();
    let result = cx.transport.forward(call).await;
    cx.req.forwarded += 1;
    let resp = match result {
        Ok(r) => r,
        Err((kind, message)) => {
            if let Some(p) = pick {
                upstream::record(
                    &cx.gw.backends,
                    p,
                    upstream::Outcome::Error(kind.reason()),
                    Some(sent.elapsed()),
                );
            }
            return Err(StepError::new(kind, message));
        }
    };
    if let Some(p) = pick {
        upstream::record(
            &cx.gw.backends,
            p,
            upstream::Outcome::Status {
                status: resp.status,
                retry_after: upstream::retry_after(&resp.headers),
            },
            Some(resp.elapsed),
        );
    }
    cx.req.backend_time = Some(resp.elapsed);
    cx.resp.status = resp.status;
    cx.resp.reason = None;
    cx.resp.body = None;
    cx.resp.original_body = Some(resp.body);
    cx.resp_headers.clear();
    for (n, v) in resp.headers.iter() {
        if n == header::TRANSFER_ENCODING || n == header::CONTENT_LENGTH || n == header::CONNECTION
        {
            continue;
        }
        cx.resp_headers.append(n, v.clone());
    }
    if let Some(e) = crate::exec::backend::error_status(f.fail_on_error_status_code, resp.status) {
        return Err(StepError::new(e.kind, e.message));
    }
    Ok(())
}

/// The policy's timeout, else the picked backend's, else the default (300 s).
pub fn forward_timeout(
    gw: &crate::exec::model::Gateway,
    pick: Option<upstream::Pick>,
    policy: Option<std::time::Duration>,
) -> std::time::Duration {
    policy
        .or_else(|| pick.and_then(|p| gw.backends[p.backend].timeout))
        .unwrap_or(upstream::backend::DEFAULT_RESPONSE_TIMEOUT)
}
