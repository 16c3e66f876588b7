//! `<send-request>` / `<send-one-way-request>`: a call of the policy's own. The response lands in
//! `response-variable-name` as an `IResponse`. A 4xx/5xx is not an error; a connection failure
//! or timeout is (`BackendConnectionFailure` / `Timeout` → on-error) unless `ignore-error`, which
//! sets the variable to null. send-one-way-request runs in the background and never delays the
//! request (bounded: calls beyond 256 in flight are dropped and logged).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

use crate::exec::transport::CallRequest;
use crate::exec::{value, ExecCtx, StepError};
use crate::expr::value::{Obj, Value};
use crate::policy::{Section, SendRequest};

static ONE_WAY_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
const ONE_WAY_MAX: usize = 256;

/// A send-request whose request is built (attributes and children evaluated), not yet sent.
pub struct Prepared {
    pub req: CallRequest,
    pub timeout: Duration,
}

pub async fn run(r: &SendRequest, cx: &mut ExecCtx<'_>) -> Result<(), StepError> {
    let p = prepare(r, cx)?;
    let Some(var) = &r.response_variable else {
        // One way: fire and forget, never delaying the request.
        if ONE_WAY_IN_FLIGHT.fetch_add(1, Ordering::SeqCst) >= ONE_WAY_MAX {
            ONE_WAY_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            log::warn!("send-one-way-request dropped: {ONE_WAY_MAX} already in flight");
            return Ok(());
        }
        let out = cx.transport.clone_box();
        tokio::spawn(async move {
            if let Err((_, m)) = out.send(p.req, p.timeout).await {
                log::info!("send-one-way-request failed: {m}");
            }
            ONE_WAY_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        });
        return Ok(());
    };
    let result = cx.transport.send(p.req, p.timeout).await;
    finish(var, r.ignore_error, result, cx)
}

/// Put a call's result in the response variable (or fail).
pub fn finish(
    var: &str,
    ignore_error: bool,
    result: Result<crate::expr::value::Message, (crate::exec::ErrorKind, String)>,
    cx: &mut ExecCtx<'_>,
) -> Result<(), StepError> {
    match result {
        Ok(msg) => cx.req.set_variable(var, Value::obj(Obj::Message(msg))),
        Err(_) if ignore_error => cx.req.set_variable(var, Value::Null),
        Err((kind, message)) => return Err(StepError::new(kind, message)),
    }
    Ok(())
}

/// Evaluate the call's attributes and children into a request.
pub fn prepare(r: &SendRequest, cx: &mut ExecCtx<'_>) -> Result<Prepared, StepError> {
    let copy = value(&r.copy, cx)?.as_str() == "copy";
    let timeout = Duration::from_secs(*value(&r.timeout, cx)?);
    // Start from a copy of the current request, or from nothing.
    let mut headers = HeaderMap::new();
    let (mut method, mut url, mut body) = (http::Method::GET, String::new(), Bytes::new());
    if copy {
        method = cx.req.method.clone();
        let base = &cx.req.target.base;
        url = format!(
            "{base}{}",
            cx.req
                .path_and_query()
                .trim_start_matches(base.path.as_str())
        );
        for n in cx.req_headers.names() {
            if let Ok(name) = http::HeaderName::from_bytes(n.as_bytes()) {
                for v in cx.req_headers.get_all(&name) {
                    headers.append(name.clone(), v);
                }
            }
        }
        if matches!(cx.section, Section::Inbound | Section::Backend) {
            body = cx
                .req
                .body
                .clone()
                .or_else(|| cx.req.original_body.clone())
                .unwrap_or_default();
        }
    }
    if let Some(u) = &r.url {
        url = value(u, cx)?.into_owned();
    }
    if let Some(m) = &r.method {
        method = value(m, cx)?.into_owned();
    }
    for h in &r.headers {
        let name = value(&h.name, cx)?.into_owned();
        let action = *value(&h.action, cx)?;
        let mut values = Vec::new();
        for v in &h.values {
            values.push(value(v, cx)?.into_owned());
        }
        super::set_header::apply_to(&name, action, values, &mut headers);
    }
    if let Some(b) = &r.body {
        body = super::set_body::body_of(b, cx)?;
    }
    headers.remove(http::header::HOST);
    headers.remove(http::header::CONTENT_LENGTH);
    headers.remove(http::header::TRANSFER_ENCODING);
    let req = CallRequest {
        method,
        url,
        headers: headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        body,
        client_cert: r.certificate.as_ref().and_then(|c| cx.gw.certificate(c)),
        proxy: r.proxy.clone(),
    };
    Ok(Prepared { req, timeout })
}
