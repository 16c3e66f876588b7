//! The backend hop: the peer for a request, the shape of the upstream request, and the
//! buffered forward used when outbound policies read the response body (the gateway then sends
//! the request itself over Pingora's connector and reads the whole response before shaping it).

use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::header;
use pingora::connectors::http::Connector;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::ErrorType;

use super::Ctx;
use crate::exec::policies::forward_request::HttpVersion;
use crate::exec::{self, ErrorKind, PolicyError};
use crate::upstream::backend::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT};

/// Largest backend response buffered for outbound policies.
pub const MAX_BUFFERED_RESPONSE: usize = 8 * 1024 * 1024;

pub async fn peer(ctx: &Ctx) -> Result<HttpPeer> {
    let (Some(req), Some(p)) = (&ctx.req, &ctx.pipeline) else {
        return Error::e_explain(ErrorType::InternalError, "no route for upstream");
    };
    let Some(fwd) = &p.forward else {
        return Error::e_explain(ErrorType::InternalError, "no forward-request");
    };
    // Within a whole deadline, each connect, read and write gets at most what is left of it.
    let per_io = match ctx.forward_deadline {
        Some(d) => d
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
        None => timeout(ctx),
    };
    make_peer(&ctx.gw, req, ctx.pick, fwd.options.http_version, per_io).await
}

/// The deadline for the response headers of a streaming forward: set when a timeout is
/// configured (on forward-request or the backend) and the backend is spoken to over HTTP/1.
/// Without one, Pingora's per-IO timeouts of 300 s apply. Over HTTP/2, Pingora already bounds
/// the whole wait for the response headers with one timeout (streams share the connection, so
/// it is not shut down).
pub fn deadline(ctx: &Ctx) -> Option<Instant> {
    let fwd = ctx.pipeline.as_ref()?.forward.as_ref()?;
    if fwd.options.http_version != HttpVersion::Http1 {
        return None;
    }
    let explicit = ctx
        .forward_timeout
        .or_else(|| ctx.pick.and_then(|p| ctx.gw.backends[p.backend].timeout))?;
    Some(Instant::now() + explicit)
}

/// The peer for one call: the request's base URL, the picked backend's TLS settings and
/// timeouts. `timeout` bounds each connect, write and read.
pub async fn make_peer(
    gw: &crate::gateway::Gateway,
    req: &exec::ReqState,
    pick: Option<crate::upstream::Pick>,
    version: HttpVersion,
    timeout: Duration,
) -> Result<HttpPeer> {
    let base = &req.target.base;
    let backend = pick.map(|p| &gw.backends[p.backend]);
    let addr = match forward_proxy(req, backend) {
        Some(proxy) => proxy.resolve().await,
        None => match tokio::net::lookup_host((base.host_bare(), base.port)).await {
            Ok(mut it) => it.next(),
            Err(_) => None,
        },
    };
    let Some(addr) = addr else {
        return Error::e_explain(
            ErrorType::ConnectNoRoute,
            format!("cannot resolve backend host {}", base.host),
        );
    };
    let sni = backend.map_or_else(|| base.host_bare().to_string(), |b| b.sni.clone());
    let mut peer = HttpPeer::new(addr, base.tls, sni);
    let connect = backend.map_or(DEFAULT_CONNECT_TIMEOUT, |b| b.connect_timeout);
    if let Some(proxy) = forward_proxy(req, backend).filter(|_| base.tls) {
        let t = connect.min(timeout);
        crate::upstream::tunnel::Tunnel::apply(proxy, &mut peer, base.host_bare(), base.port, t);
    }
    peer.options.connection_timeout = Some(connect.min(timeout));
    peer.options.total_connection_timeout = Some(connect.min(timeout));
    peer.options.read_timeout = Some(timeout);
    peer.options.write_timeout = Some(timeout);
    peer.options.idle_timeout =
        Some(backend.map_or(DEFAULT_KEEPALIVE_TIMEOUT, |b| b.keepalive_timeout));
    if let Some(b) = backend {
        peer.options.verify_cert = b.verify_cert;
        peer.options.verify_hostname = b.verify_hostname;
        peer.options.ca = b.ca.clone();
        peer.client_cert_key = b.client_cert.clone();
    }
    if req.client_cert.is_some() {
        // authentication-certificate in the policy wins over the backend's certificate.
        peer.client_cert_key = req.client_cert.clone();
    }
    peer.options.alpn = match version {
        HttpVersion::Http1 => pingora::protocols::ALPN::H1,
        HttpVersion::Http2Or1 => pingora::protocols::ALPN::H2H1,
        HttpVersion::Http2 => pingora::protocols::ALPN::H2,
    };
    Ok(peer)
}

/// forward-request's timeout for response headers: the policy's, else the backend entity's,
/// else 300 s.
pub fn timeout(ctx: &Ctx) -> Duration {
    forward_timeout(&ctx.gw, ctx.pick, ctx.forward_timeout)
}

pub use crate::exec::policies::forward_request::forward_timeout;

/// Method, path and query, Host, backend credentials and body framing of the upstream request.
pub fn shape_request(ctx: &Ctx, up: &mut RequestHeader) -> Result<()> {
    let Some(req) = &ctx.req else { return Ok(()) };
    shape(&ctx.gw, req, ctx.pick, up)
}

/// Shape an upstream request from the engine's request state and the picked backend.
pub fn shape(
    gw: &crate::gateway::Gateway,
    req: &exec::ReqState,
    pick: Option<crate::upstream::Pick>,
    up: &mut RequestHeader,
) -> Result<()> {
    up.set_method(req.method.clone());
    let backend = pick.map(|p| &gw.backends[p.backend]);
    let mut pq = req.path_and_query();
    if let Some(b) = backend {
        for (k, v) in &b.query {
            pq.push(if pq.contains('?') { '&' } else { '?' });
            pq.push_str(&crate::codec::query::encode_component(k));
            pq.push('=');
            pq.push_str(&crate::codec::query::encode_component(v));
        }
    }
    // Plain HTTP through a forward proxy: absolute-form request target (HTTPS tunnels).
    match forward_proxy(req, backend).filter(|_| !req.target.base.tls) {
        Some(proxy) => crate::upstream::absolute_form(proxy, up, &req.target.base.authority, &pq)?,
        None => match http::Uri::from_maybe_shared(bytes::Bytes::from(pq)) {
            Ok(uri) => up.set_uri(uri),
            Err(_) => return Error::e_explain(ErrorType::InternalError, "invalid backend URL"),
        },
    }
    up.insert_header(header::HOST, req.target.base.authority.as_str())?;
    if gw.forwarded_headers && !req.info.peer_ip.is_empty() {
        // Append the peer to X-Forwarded-For; set Proto / Host unless a trusted proxy did.
        // One string, built only when a proxy before us sent the header (no temporary list).
        let mut xff = String::new();
        for v in up.headers.get_all("x-forwarded-for") {
            // An empty header line adds no empty entry.
            if let Some(v) = v.to_str().ok().filter(|v| !v.is_empty()) {
                xff.push_str(v);
                xff.push_str(", ");
            }
        }
        xff.push_str(&req.info.peer_ip);
        up.insert_header("x-forwarded-for", xff)?;
        let keep = req.info.peer_trusted;
        if !(keep && up.headers.contains_key("x-forwarded-proto")) {
            let proto = match req.info.original_scheme.as_str() {
                "https" => http::HeaderValue::from_static("https"),
                _ => http::HeaderValue::from_static("http"),
            };
            up.insert_header("x-forwarded-proto", proto)?;
        }
        let proxy_set_host = keep && up.headers.contains_key("x-forwarded-host");
        if !proxy_set_host && !req.info.host_header.is_empty() {
            up.insert_header("x-forwarded-host", req.info.host_header.as_str())?;
        }
    }
    if req.info.trace.is_set() {
        up.insert_header("traceparent", req.info.trace.header())?;
    }
    if let Some(h) = &gw.request_id_header {
        up.insert_header(h.clone(), req.request_id.as_str())?;
    }
    if let Some(body) = &req.body {
        // A replacement body is sent from request_body_filter (or by forward_buffered);
        // announce its length here, never on the downstream request, whose framing Pingora
        // still reads by.
        up.remove_header(&header::TRANSFER_ENCODING);
        up.insert_header(header::CONTENT_LENGTH, body.len().to_string())?;
    }
    if let Some(b) = backend {
        if b.keepalive_timeout.is_zero() {
            // No reuse: Pingora keeps an upstream connection alive unless the request says
            // `close` (an idle timeout of 0 only drops it from the pool when the pool's timer
            // task next runs, and a request in between still reuses it).
            up.insert_header(header::CONNECTION, "close")?;
        }
        for (n, _) in &b.headers {
            up.remove_header(n);
        }
        for (n, v) in &b.headers {
            up.append_header(n.clone(), v.clone())?;
        }
        if let Some(a) = &b.authorization {
            up.insert_header(header::AUTHORIZATION, a.clone())?;
        }
    }
    Ok(())
}

fn failure(e: &pingora::Error) -> PolicyError {
    PolicyError::builtin(
        super::failure_kind(e),
        "forward-request",
        super::failure_message(e),
    )
}

/// Send the request upstream and read the whole response into `ctx.resp` / `ctx.resp_headers`.
pub async fn forward_buffered(
    connector: &Connector,
    session: &mut Session,
    ctx: &mut Ctx,
) -> Result<(), PolicyError> {
    let peer = peer(ctx).await.map_err(|e| failure(&e))?;
    let mut up = session.req_header().clone();
    // The original body has been read already; what is sent is `req.body` (set by the policies
    // or to the buffered original).
    let body = ctx
        .req
        .as_ref()
        .and_then(|r| r.body.clone().or_else(|| r.original_body.clone()))
        .unwrap_or_default();
    if let Some(r) = ctx.req.as_mut() {
        if r.body.is_none() && !body.is_empty() {
            r.body = Some(body.clone());
        }
    }
    shape_request(ctx, &mut up).map_err(|e| failure(&e))?;
    let deadline = timeout(ctx);
    ctx.upstream_start = Some(Instant::now());
    let result = exchange(connector, &peer, up, body, deadline).await;
    let (head, body, elapsed) = match result {
        Ok(r) => r,
        Err((kind, message)) => {
            ctx.record_outcome(crate::upstream::Outcome::Error(kind.reason()));
            return Err(PolicyError::builtin(kind, "forward-request", message));
        }
    };
    ctx.backend_time = Some(elapsed);
    ctx.record_outcome(crate::upstream::Outcome::Status {
        status: head.status.as_u16(),
        retry_after: crate::upstream::retry_after(&head.headers),
    });
    ctx.resp.status = head.status.as_u16();
    ctx.resp.reason = None;
    ctx.resp.body = None;
    ctx.resp.original_body = Some(body);
    ctx.resp_headers.clear();
    for (n, v) in head.headers.iter() {
        if n == header::TRANSFER_ENCODING || n == header::CONTENT_LENGTH || n == header::CONNECTION
        {
            continue;
        }
        ctx.resp_headers.append(n.clone(), v.clone());
    }
    ctx.origin = crate::exec::Origin::Backend;
    Ok(())
}

/// One buffered exchange: send the request and its whole body, wait at most `deadline` for the
/// response headers (a whole-request deadline, not per IO), then read the whole body (at most
/// `MAX_BUFFERED_RESPONSE`). Returns the head, the body and the time to the headers.
pub async fn exchange(
    connector: &Connector,
    peer: &HttpPeer,
    mut up: RequestHeader,
    body: bytes::Bytes,
    deadline: Duration,
) -> Result<(ResponseHeader, bytes::Bytes, Duration), (ErrorKind, String)> {
    up.remove_header(&header::TRANSFER_ENCODING);
    if body.is_empty() {
        if up.headers.contains_key(header::CONTENT_LENGTH)
            || matches!(
                up.method,
                http::Method::POST | http::Method::PUT | http::Method::PATCH
            )
        {
            let _ = up.insert_header(header::CONTENT_LENGTH, "0");
        }
    } else {
        let _ = up.insert_header(header::CONTENT_LENGTH, body.len().to_string());
    }
    let start = Instant::now();
    let exchange = async {
        let (mut s, _reused) = connector.get_http_session(peer).await?;
        s.write_request_header(Box::new(up)).await?;
        if !body.is_empty() {
            s.write_request_body(body.clone(), true).await?;
        }
        s.finish_request_body().await?;
        s.read_response_header().await?;
        Ok::<_, Box<pingora::Error>>(s)
    };
    let mut s = match tokio::time::timeout(deadline, exchange).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let f = failure(&e);
            return Err((f.kind, f.message));
        }
        Err(_) => {
            return Err((
                ErrorKind::Timeout,
                format!("no response headers within {deadline:?}"),
            ))
        }
    };
    let elapsed = start.elapsed();
    let Some(head) = s.response_header().cloned() else {
        return Err((
            ErrorKind::BackendConnectionFailure,
            "no response header".into(),
        ));
    };
    let mut buf = BytesMut::new();
    loop {
        match s.read_response_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_BUFFERED_RESPONSE {
                    return Err((ErrorKind::Internal, format!("backend response larger than {MAX_BUFFERED_RESPONSE} bytes cannot be buffered for policies")));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                let f = failure(&e);
                return Err((f.kind, f.message));
            }
        }
    }
    connector
        .release_http_session(s, peer, peer.options.idle_timeout)
        .await;
    Ok((head, buf.freeze(), elapsed))
}

/// The HTTP forward proxy for this call: the `proxy` policy's, else the backend's.
fn forward_proxy<'a>(
    req: &'a exec::ReqState,
    backend: Option<&'a crate::upstream::Backend>,
) -> Option<&'a crate::net::proxy::ForwardProxy> {
    req.proxy
        .as_deref()
        .or_else(|| backend.and_then(|b| b.proxy.as_ref()))
}
