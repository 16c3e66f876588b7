//! `<forward-request>` run by the engine, for a backend section that wraps it in `<retry>`. Each
//! run picks the backend again (a pool's next member), sends the buffered request with a
//! deadline for the response headers, reports the outcome to the circuit breaker, and puts the
//! whole response in `context.Response`. The streaming path (forward-request directly in
//! `<backend>`) is the proxy's, not this.

use http::{header, HeaderMap, HeaderName};

use crate::exec::transport::ForwardCall;
use crate::exec::{value, ExecCtx, StepError};
use crate::policy::ForwardRequest;
use crate::upstream::{self, Outcome};

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

pub async fn run(f: &ForwardRequest, cx: &mut ExecCtx<'_>) -> Result<(), StepError> {
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
    let result = cx.transport.forward(call).await;
    cx.req.forwarded += 1;
    let resp = match result {
        Ok(r) => r,
        Err((kind, message)) => {
            if let Some(p) = pick {
                upstream::record(&cx.gw.backends, p, Outcome::Error(kind.reason()));
            }
            return Err(StepError::new(kind, message));
        }
    };
    if let Some(p) = pick {
        upstream::record(
            &cx.gw.backends,
            p,
            Outcome::Status {
                status: resp.status,
                retry_after: upstream::retry_after(&resp.headers),
            },
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
