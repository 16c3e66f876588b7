//! The request as Pingora read it: framing and limit checks before routing, and reading the
//! body for policies that need it.

use http::header;
use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::Ctx;
use crate::exec::{self, ErrorKind, PolicyError};

/// 413 with its message in the body (no Retry-After).
pub(super) fn too_large(message: String) -> PolicyError {
    let mut e = PolicyError::builtin(ErrorKind::PayloadTooLarge, "configuration", message.clone());
    e.detail = Some(exec::error::LimitDetail {
        message,
        retry_after_secs: 0,
        retry_after_header: None,
        status: None,
    });
    e
}

/// Request framing a gateway can vouch for, before anything else reads the request: an HTTP/1.1
/// request names its `Host` (RFC 9112 §3.2), and `Content-Length` is one decimal number.
/// Identical duplicates (`Content-Length: 4, 4`, or the header twice) are collapsed to one
/// header, so the backend sees what Pingora framed; differing or invalid values are 400.
#[allow(clippy::result_large_err)]
pub(super) fn check_framing(req: &mut RequestHeader) -> Result<(), PolicyError> {
    // HTTP/2 carries the authority as a pseudo-header: policies, routing and the access log
    // see it as `Host`, as they do for HTTP/1.1 (RFC 9113 §8.3.1).
    if req.version == http::Version::HTTP_2 && !req.headers.contains_key(header::HOST) {
        if let Some(a) = req.uri.authority().map(|a| a.as_str().to_string()) {
            let _ = req.insert_header(header::HOST, a);
        }
    }
    if req.version == http::Version::HTTP_11 && !req.headers.contains_key(header::HOST) {
        return Err(exec::request::bad_request(
            "an HTTP/1.1 request must have a Host header",
        ));
    }
    let mut values = req.headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(first) = values.next() else {
        return Ok(());
    };
    let single = values.next().is_none() && first.as_bytes().iter().all(u8::is_ascii_digit);
    if single && !first.is_empty() {
        return Ok(());
    }
    let mut length: Option<u64> = None;
    for v in req.headers.get_all(header::CONTENT_LENGTH) {
        for part in v.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            let n = (!part.is_empty() && part.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(part).ok()?.parse::<u64>().ok())
                .flatten();
            match (n, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(l)) if n == l => {}
                _ => {
                    return Err(exec::request::bad_request(
                        "the Content-Length values are invalid or differ",
                    ))
                }
            }
        }
    }
    if let Some(n) = length {
        let _ = req.insert_header(header::CONTENT_LENGTH, n.to_string());
    }
    Ok(())
}

/// Request limits (`limits` in the configuration), before routing.
#[allow(clippy::result_large_err)]
pub(super) fn check_limits(
    l: &crate::gateway::Limits,
    req: &RequestHeader,
) -> Result<(), PolicyError> {
    let target = req.raw_path().len();
    if target > l.max_url_length {
        return Err(PolicyError::builtin(
            ErrorKind::UriTooLong,
            "configuration",
            format!(
                "the request target has {target} bytes; the limit is {}",
                l.max_url_length
            ),
        ));
    }
    let count = req.headers.len();
    let bytes: usize = req
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if count > l.max_headers || bytes > l.max_header_bytes {
        return Err(PolicyError::builtin(
            ErrorKind::RequestHeadersTooLarge,
            "configuration",
            format!(
                "{count} header lines, {bytes} bytes; the limits are {} and {}",
                l.max_headers, l.max_header_bytes
            ),
        ));
    }
    let declared = req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if l.max_body_bytes > 0 && declared.is_some_and(|n| n > l.max_body_bytes) {
        return Err(too_large(format!(
            "Request body is larger than the {} bytes allowed.",
            l.max_body_bytes
        )));
    }
    Ok(())
}

/// Largest request body buffered for policies that read it: Pingora's retry buffer (64 KiB),
/// through which the buffered body is sent upstream. Larger bodies get 413.
pub const MAX_BUFFERED_BODY: usize = 64 * 1024;

/// Read the whole request body for policies that need it (expressions reading
/// `context.Request.Body`, find-and-replace). Pingora's retry buffer makes it call
/// `request_body_filter` once more, where the buffered body is sent upstream as is (or as a
/// policy changed it).
pub(super) async fn read_request_body(
    session: &mut Session,
    ctx: &mut Ctx,
    limit: usize,
    retry_buffer: bool,
) -> Result<(), PolicyError> {
    if retry_buffer {
        session.as_mut().enable_retry_buffering();
    }
    let mut buf = bytes::BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    // The client is told the limit that applied (64 KiB, or 8 MiB when the
                    // gateway forwards the request itself).
                    return Err(too_large(format!(
                        "Request body is larger than the {limit} bytes policies can read."
                    )));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(PolicyError::builtin(
                    ErrorKind::Internal,
                    "configuration",
                    format!("reading the request body: {e}"),
                ))
            }
        }
    }
    if let Some(r) = ctx.req.as_mut() {
        let body = buf.freeze();
        if !body.is_empty() {
            r.body = Some(body.clone());
        }
        r.original_body = Some(body);
    }
    Ok(())
}

/// Largest request body the gateway forwards itself (pipelines that buffer the response).
pub const MAX_FORWARDED_BODY: usize = 8 * 1024 * 1024;
