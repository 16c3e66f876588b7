//! The Pingora adapter: maps APIM sections onto `ProxyHttp` phases. Routing, the subscription
//! check and inbound run in `request_filter`; the backend target is chosen in `upstream_peer`
//! and shaped in `upstream_request_filter`; backend-after-forward and outbound run in
//! `upstream_response_filter`; connection failures and timeouts go to on-error in
//! `fail_to_proxy`; `logging` writes the access log and metrics.

mod compress;
pub mod ctx;
mod deadline;
pub mod headers;
pub mod listener;
mod request;
mod respond;
pub mod tls;
mod transport;
mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::header;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::ErrorType;

use crate::exec::{self, ErrorKind, Flow, Origin, PolicyError};
use crate::policy::Section;
use crate::runtime::Shared;
pub use ctx::Ctx;
use request::{
    check_framing, check_limits, read_request_body, too_large, MAX_BUFFERED_BODY,
    MAX_FORWARDED_BODY,
};

pub struct Proxy {
    pub shared: Arc<Shared>,
    /// Upstream connections for requests the gateway forwards itself (buffered responses,
    /// send-request).
    pub connector: Arc<pingora::connectors::http::Connector>,
    transport: Arc<dyn exec::transport::Transport>,
}

impl Proxy {
    pub fn new(shared: Arc<Shared>, connector: pingora::connectors::http::Connector) -> Proxy {
        let connector = Arc::new(connector);
        let transport = Arc::new(transport::PingoraTransport {
            connector: connector.clone(),
        });
        Proxy {
            shared,
            connector,
            transport,
        }
    }
}

#[async_trait]
impl ProxyHttp for Proxy {
    /// Boxed: Pingora keeps the context inside its per-request future, which it moves (memcpy)
    /// between states; a pointer moves cheaper than the 700-byte state.
    type CTX = Box<Ctx>;

    fn init_downstream_modules(&self, modules: &mut pingora::modules::http::HttpModules) {
        compress::register(modules);
    }

    fn new_ctx(&self) -> Box<Ctx> {
        Box::new(Ctx::new(
            self.shared.gateway.load_full(),
            self.shared.store.clone(),
            self.transport.clone(),
        ))
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut Box<Ctx>) -> Result<()> {
        listener::on_headers(session, ctx.gw.limits.body_read_timeout);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Box<Ctx>) -> Result<bool> {
        self.close_if_draining(session);
        if let Err(e) = self.route(session, ctx) {
            let builtin = (ctx.api.is_none() && e.kind == exec::ErrorKind::OperationNotFound)
                .then(|| {
                    let req = session.req_header();
                    exec::request::builtin_answer(&ctx.gw, &req.method, req.uri.path().as_bytes())
                })
                .flatten();
            if let Some(body) = builtin {
                ctx.resp.status = 200;
                ctx.resp_headers.insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/xml"),
                );
                ctx.resp.body = Some(body);
                respond::write_gateway_response(session, ctx).await?;
                return Ok(true);
            }
            // Before an API matched: global on-error; after: global + API on-error.
            let stmts = match ctx.api {
                Some(a) => ctx.gw.apis[a].on_error.clone(),
                None => ctx.gw.global_on_error.clone(),
            };
            ctx.fail(session, e, &stmts).await;
            respond::write_gateway_response(session, ctx).await?;
            return Ok(true);
        }
        let Some(p) = ctx.pipeline.clone() else {
            return Ok(false);
        };
        if p.needs_request_body {
            // The buffered path sends the body itself; the streaming path replays it through
            // Pingora's retry buffer, which holds 64 KiB.
            let mut limit = if p.needs_response_body {
                MAX_FORWARDED_BODY
            } else {
                MAX_BUFFERED_BODY
            };
            let max = ctx.gw.limits.max_body_bytes;
            if max > 0 {
                limit = limit.min(usize::try_from(max).unwrap_or(usize::MAX));
            }
            if let Err(e) = read_request_body(session, ctx, limit, !p.needs_response_body).await {
                ctx.fail(session, e, &p.on_error).await;
                respond::write_gateway_response(session, ctx).await?;
                return Ok(true);
            }
        }
        let flow = ctx.run(session, Section::Inbound, &p.inbound).await;
        let flow = match flow {
            // A preflight no <cors> answered: an empty 200, nothing forwarded.
            Flow::Continue if ctx.req.as_ref().is_some_and(|r| r.preflight) => {
                ctx.resp.status = 200;
                ctx.resp.body = Some(Bytes::new());
                Flow::Respond {
                    origin: Origin::Builtin("cors"),
                    run_outbound: false,
                }
            }
            Flow::Continue => ctx.run(session, Section::Backend, &p.backend_pre).await,
            other => other,
        };
        let flow = match (flow, &p.forward) {
            (Flow::Continue, Some(fwd)) => match ctx.prepare_forward(session, &fwd.options) {
                Ok(()) => match ctx.select_backend() {
                    Ok(()) => Flow::Continue,
                    Err(e) => Flow::Fail(at_forward(Some(&p), e)),
                },
                Err(e) => Flow::Fail(PolicyError::at(
                    e,
                    &fwd.stmt,
                    Section::Backend,
                    "forward-request[1]".into(),
                )),
            },
            (other, _) => other,
        };
        match flow {
            Flow::Continue if p.engine_backend => {
                // The engine forwarded (inside retry); outbound shapes the buffered response.
                if let Some(r) = &ctx.req {
                    if r.forwarded > 0 {
                        ctx.origin = Origin::Backend;
                        ctx.backend_time = r.backend_time;
                    } else {
                        ctx.resp.status = 200;
                        ctx.origin = Origin::Builtin("no-forward-request");
                    }
                }
                ctx.after_buffered_response(session, &p).await;
            }
            Flow::Fail(e) if p.engine_backend && e.kind == ErrorKind::BackendErrorStatusCode => {
                ctx.origin = Origin::Backend;
                ctx.fail_keep_response(session, e, &p.on_error).await;
            }
            Flow::Continue if p.forward.is_some() && p.needs_response_body => {
                // Outbound reads the response body: forward and buffer it here, then shape it.
                match upstream::forward_buffered(&self.connector, session, ctx).await {
                    Ok(()) => {
                        if let Some(e) = p.error_status(ctx.resp.status) {
                            ctx.fail_keep_response(session, e, &p.on_error).await;
                        } else {
                            ctx.after_buffered_response(session, &p).await;
                        }
                    }
                    Err(e) => ctx.fail(session, e, &p.on_error).await,
                }
            }
            Flow::Continue if p.forward.is_some() => return Ok(false),
            Flow::Continue => {
                // No forward-request: nothing goes upstream; outbound runs on an empty 200.
                ctx.resp.status = 200;
                ctx.origin = Origin::Builtin("no-forward-request");
                ctx.after_response(session, &p, None).await;
            }
            Flow::Respond {
                origin,
                run_outbound,
            } => {
                ctx.origin = origin;
                if run_outbound {
                    ctx.after_response(session, &p, None).await;
                }
            }
            Flow::Fail(e) => ctx.fail(session, e, &p.on_error).await,
        }
        respond::write_gateway_response(session, ctx).await?;
        Ok(true)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Box<Ctx>,
    ) -> Result<()> {
        // A body without Content-Length is counted as it streams.
        if let Some(b) = body.as_ref() {
            ctx.body_seen += b.len() as u64;
            let max = ctx.gw.limits.max_body_bytes;
            if max > 0 && ctx.body_seen > max && ctx.req.as_ref().is_none_or(|r| r.body.is_none()) {
                return Error::e_explain(
                    ErrorType::HTTPStatus(413),
                    format!("request body larger than {max} bytes"),
                );
            }
        }
        if let Some(req) = &ctx.req {
            if let Some(replacement) = &req.body {
                *body = if end {
                    Some(replacement.clone())
                } else {
                    Some(Bytes::new())
                };
            }
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Box<Ctx>,
    ) -> Result<Box<HttpPeer>> {
        let redirected = std::mem::take(&mut ctx.redirected);
        if ctx.attempts > 0 && !redirected {
            // Pingora retries a failed connection: a pool picks again (another member when
            // one is available); a single backend is tried again only while available.
            if let Err(e) = ctx.select_backend() {
                return Error::e_explain(ErrorType::ConnectRefused, e.message);
            }
        }
        if ctx.attempts == 0 || redirected {
            ctx.forward_deadline = upstream::deadline(ctx);
        }
        ctx.attempts += 1;
        // Phase marks for the request's span: read the clock only when spans are exported.
        if crate::observe::otlp::enabled() {
            ctx.inbound_done.get_or_insert_with(Instant::now);
        }
        let peer = upstream::peer(ctx).await?;
        ctx.upstream_start = Some(Instant::now());
        Ok(Box::new(peer))
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        peer: &HttpPeer,
        fd: std::os::unix::io::RawFd,
        digest: Option<&pingora::protocols::Digest>,
        ctx: &mut Box<Ctx>,
    ) -> Result<()> {
        ctx.upstream_addr = Some(peer._address.clone());
        ctx.stop_deadline_watch();
        let Some(deadline) = ctx.forward_deadline else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            ctx.deadline_expired = true;
            return Error::e_explain(ErrorType::ReadTimedout, "forward-request deadline expired");
        }
        let sock = digest.and_then(|d| d.socket_digest.as_ref());
        ctx.deadline_watch =
            sock.and_then(|s| deadline::Watch::arm(fd, s.local_addr(), s.peer_addr(), deadline));
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut Box<Ctx>,
    ) -> Result<()> {
        upstream::shape_request(ctx, up)
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Box<Ctx>,
    ) -> Result<()> {
        // An interim response (`100 Continue` to `Expect: 100-continue`, `103 Early Hints`)
        // passes through; the backend section's outcome and the outbound section belong to the
        // final response.
        if interim(resp.status) {
            return Ok(());
        }
        ctx.stop_deadline_watch();
        if crate::observe::otlp::enabled() {
            ctx.response_at = Some(Instant::now());
        }
        if let Some(start) = ctx.upstream_start {
            ctx.backend_time = Some(start.elapsed());
        }
        let Some(p) = ctx.pipeline.clone() else {
            return Ok(());
        };
        if let Some(e) = self.follow_redirect(resp, ctx, &p) {
            return Err(e);
        }
        ctx.record_outcome(crate::upstream::Outcome::Status {
            status: resp.status.as_u16(),
            retry_after: crate::upstream::retry_after(&resp.headers),
        });
        ctx.origin = Origin::Backend;
        ctx.resp.status = resp.status.as_u16();
        ctx.resp.reason = None;
        if let Some(r) = ctx.req.as_mut().filter(|r| r.inspector.is_some()) {
            let (status, took, addr) = (
                resp.status.as_u16(),
                ctx.backend_time,
                ctx.upstream_addr.as_ref().map(|a| a.to_string()),
            );
            let url = r_url(r);
            r.inspect(crate::policy::Section::Backend, "forward-request", || {
                serde_json::json!({
                    "message": "Request forwarded to the backend; response received.",
                    "url": url,
                    "upstream": addr,
                    "status": status,
                    "duration": took.map(|d| format!("{:.3} ms", d.as_secs_f64() * 1000.0)),
                })
            });
        }
        if let Some(e) = p.error_status(ctx.resp.status) {
            ctx.fail_on_upstream_response(session, e, &p.on_error, resp)
                .await;
        } else {
            ctx.after_response(session, &p, Some(resp)).await;
        }
        ctx.apply_to_upstream_response(resp);
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Box<Ctx>,
    ) -> Result<Option<Duration>> {
        if ctx.replace_response_body {
            *body = if end { ctx.resp.body.take() } else { None };
        }
        Ok(None)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Box<Ctx>,
    ) -> Result<()> {
        if !interim(resp.status) {
            ctx.response_started = true;
            ctx.add_request_id(resp);
            if let Some(c) = ctx.compression.clone() {
                compress::on_response(session, &c, resp);
            }
        }
        self.close_if_draining(session);
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &pingora::Error,
        ctx: &mut Box<Ctx>,
    ) -> FailToProxy {
        ctx.stop_deadline_watch();
        // Only a failure on the backend's side counts against it (circuit breaker, health,
        // backend metrics): what the client caused is checked first. `backend_side`: the
        // failure is the backend's.
        let (err, backend_side) = match e.etype() {
            _ if ctx.deadline_expired => {
                ctx.record_outcome(crate::upstream::Outcome::Error(ErrorKind::Timeout.reason()));
                let message = format!(
                    "no response headers within {:?} (forward-request timeout)",
                    upstream::timeout(ctx)
                );
                let err = PolicyError::builtin(ErrorKind::Timeout, "forward-request", message);
                (at_forward(ctx.pipeline.as_deref(), err), true)
            }
            // A streamed body over `limits.max_body_bytes` (request_body_filter).
            ErrorType::HTTPStatus(413) => {
                let message = format!(
                    "Request body is larger than the {} bytes allowed.",
                    ctx.gw.limits.max_body_bytes
                );
                (too_large(message), false)
            }
            ErrorType::HTTPStatus(code) => {
                // Pingora refused the request itself (e.g. malformed); answer plainly.
                let code = *code;
                let _ = session.respond_error(code).await;
                ctx.final_status = code;
                return FailToProxy {
                    error_code: code,
                    can_reuse_downstream: false,
                };
            }
            ErrorType::ReadTimedout
                if e.esource() == &pingora::ErrorSource::Downstream && !ctx.response_started =>
            {
                // The client stopped sending its body (`limits.body_read_timeout`).
                let mut err =
                    exec::request::bad_request("the request body was not received in time");
                err.detail = Some(exec::error::LimitDetail::response(
                    408,
                    "Request timeout: the request body was not received in time.",
                ));
                (err, false)
            }
            _ if e.esource() == &pingora::ErrorSource::Downstream => {
                ctx.client_gone = true;
                return FailToProxy {
                    error_code: 0,
                    can_reuse_downstream: false,
                };
            }
            _ => {
                let kind = match upstream_kind(e) {
                    Some(k) => {
                        ctx.record_outcome(crate::upstream::Outcome::Error(k.reason()));
                        k
                    }
                    None => ErrorKind::Internal,
                };
                let err = PolicyError::builtin(kind, "forward-request", failure_message(e));
                (at_forward(ctx.pipeline.as_deref(), err), true)
            }
        };
        if ctx.response_started {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        if ctx.backend_time.is_none() && backend_side {
            ctx.backend_time = ctx.upstream_start.map(|s| s.elapsed());
        }
        let stmts = ctx
            .pipeline
            .as_ref()
            .map(|p| p.on_error.clone())
            .unwrap_or_default();
        ctx.fail(session, err, &stmts).await;
        // The connection is not reused after a failed proxy attempt: say so in the response
        // (`Connection: close`) so the client does not send its next request into a closing
        // connection.
        session.set_keepalive(None);
        let code = match respond::write_gateway_response(session, ctx).await {
            Ok(()) => ctx.resp.status,
            Err(_) => 0,
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Box<Ctx>,
        e: Box<pingora::Error>,
    ) -> Box<pingora::Error> {
        if let Some(k) = upstream_kind(&e) {
            ctx.record_outcome(crate::upstream::Outcome::Error(k.reason()));
        }
        // Nothing reached the backend: a pool tries its next member (any method), at most once
        // per member.
        let mut e = e;
        let pool_size = ctx
            .req
            .as_ref()
            .and_then(|r| r.target.backend)
            .and_then(|b| match &ctx.gw.backends[b].kind {
                crate::upstream::Kind::Pool(p) => Some(p.size()),
                crate::upstream::Kind::Single => None,
            });
        if pool_size.is_some_and(|n| (ctx.attempts as usize) < n) {
            e.set_retry(true);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<pingora::Error>,
        ctx: &mut Box<Ctx>,
        client_reused: bool,
    ) -> Box<pingora::Error> {
        if ctx.redirecting {
            // A redirect followed by forward-request: always try again, at the new location.
            ctx.redirecting = false;
            let mut e = e;
            e.set_retry(true);
            return e;
        }
        let mut e = e.more_context(format!("Peer: {peer}"));
        ctx.stop_deadline_watch();
        if ctx.deadline_expired
            || !session.req_header().method.is_idempotent()
            || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        ctx: &Box<Ctx>,
        e: &pingora::Error,
        _c: pingora::proxy::ProxyWarnLogContext,
    ) -> bool {
        // Followed redirects are not failures.
        ctx.redirects > 0 && matches!(e.etype(), ErrorType::HTTPStatus(300..=399))
    }

    /// The request as Pingora's own WARN and ERROR lines show it: without credentials.
    fn request_summary(&self, session: &Session, ctx: &Box<Ctx>) -> String {
        let req = session.req_header();
        let host = req
            .headers
            .get(header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .unwrap_or_default();
        format!(
            "{} {}, Host: {host}",
            req.method,
            summary_target(&ctx.gw, &String::from_utf8_lossy(req.raw_path()))
        )
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &Box<Ctx>, _e: &pingora::Error) -> bool {
        // Upstream failures are reported once, in the access log, with their Reason.
        ctx.error.is_some() || ctx.client_gone
    }

    async fn logging(
        &self,
        session: &mut Session,
        _e: Option<&pingora::Error>,
        ctx: &mut Box<Ctx>,
    ) {
        let status = session
            .response_written()
            .map_or(ctx.final_status, |r| r.status.as_u16());
        let client = session.client_addr().cloned();
        let (bytes_in, bytes_out) = (
            session.body_bytes_read() as u64,
            session.body_bytes_sent() as u64,
        );
        ctx.apply_deferred(session, bytes_in + bytes_out).await;
        ctx.finish_trace(&self.shared, session.req_header(), status);
        ctx.log(
            &self.shared,
            session.req_header(),
            status,
            client.as_ref(),
            (bytes_in, bytes_out),
        );
        ctx.export_span(session.req_header(), status, client.as_ref());
        #[cfg(feature = "perf-inject")]
        {
            // The perf gate's injected regression (Cargo feature `perf-inject`).
            let mut x = 0u64;
            for i in 0..380u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            std::hint::black_box(x);
        }
    }
}

/// The backend URL of a request, as forwarded.
fn r_url(r: &exec::ReqState) -> String {
    format!(
        "{}{}",
        r.target.base,
        r.path_and_query()
            .trim_start_matches(r.target.base.path.as_str())
    )
}

/// The Reason of an upstream failure: timeouts are `Timeout`, every other failure on the
/// upstream side is `BackendConnectionFailure`; `None` for failures that are not upstream's.
fn upstream_kind(e: &pingora::Error) -> Option<ErrorKind> {
    match e.etype() {
        ErrorType::ConnectTimedout
        | ErrorType::ReadTimedout
        | ErrorType::WriteTimedout
        | ErrorType::TLSHandshakeTimedout => Some(ErrorKind::Timeout),
        _ if e.esource() == &pingora::ErrorSource::Upstream => {
            Some(ErrorKind::BackendConnectionFailure)
        }
        ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::TLSHandshakeFailure
        | ErrorType::ConnectProxyFailure => Some(ErrorKind::BackendConnectionFailure),
        _ => None,
    }
}

/// The Reason of a failed call the gateway made itself: `Timeout` or
/// `BackendConnectionFailure`.
pub(crate) fn failure_kind(e: &pingora::Error) -> ErrorKind {
    upstream_kind(e).unwrap_or(ErrorKind::BackendConnectionFailure)
}

/// `context.LastError.Message` for a failed backend call: a stable text per kind of failure,
/// never Pingora's own (it names internal addresses, and a policy may echo the message to the
/// client). The full error goes to the log.
pub(crate) fn failure_message(e: &pingora::Error) -> String {
    log::debug!("backend call failed: {e}");
    match e.etype() {
        ErrorType::ConnectTimedout | ErrorType::TLSHandshakeTimedout => {
            "Timeout connecting to the backend service".into()
        }
        ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            "Request to the backend service timed out".into()
        }
        ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::ConnectProxyFailure => "Unable to connect to the remote server".into(),
        ErrorType::TLSHandshakeFailure => {
            "Unable to establish a TLS connection with the backend service".into()
        }
        _ => "Error occurred while calling the backend service".into(),
    }
}

/// Query parameters whose values are credentials by their name alone, beside each API's
/// subscription-key parameter.
const CREDENTIAL_PARAMS: &[&str] = &[
    "subscription-key",
    "access_token",
    "id_token",
    "refresh_token",
    "token",
    "api_key",
    "apikey",
    "key",
    "code",
    "password",
    "secret",
    "client_secret",
    "sig",
    "signature",
];

/// A request target for a log line: the value of every credential query parameter (each API's
/// subscription-key name and `CREDENTIAL_PARAMS`) is `***`, and so is any secret named value.
fn summary_target(gw: &crate::gateway::Gateway, target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out = path.to_string();
    if let Some(q) = query {
        out.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let (name, _) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            let credential = CREDENTIAL_PARAMS
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&decoded))
                || gw
                    .apis
                    .iter()
                    .any(|a| a.key_query.eq_ignore_ascii_case(&decoded));
            if credential && pair.contains('=') {
                out.push_str(name);
                out.push_str("=***");
            } else {
                out.push_str(pair);
            }
        }
    }
    for s in gw.secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// An interim response (1xx but `101 Switching Protocols`, which is final: the connection is
/// upgraded).
fn interim(status: http::StatusCode) -> bool {
    status.is_informational() && status != http::StatusCode::SWITCHING_PROTOCOLS
}

/// A failure of forward-request itself (no backend available, connection, timeout), placed at
/// the statement, so `context.LastError` has its Scope, Section and Path.
fn at_forward(p: Option<&crate::gateway::Pipeline>, e: PolicyError) -> PolicyError {
    match p.and_then(|p| p.forward.as_ref()) {
        Some(fwd) => PolicyError {
            scope: Some(fwd.stmt.scope),
            section: Some(Section::Backend),
            path: "forward-request[1]".into(),
            policy_id: fwd.stmt.id.clone(),
            ..e
        },
        None => e,
    }
}

/// Most redirects one request follows (`follow-redirects="true"`).
const MAX_REDIRECTS: u8 = 10;

impl Proxy {
    /// With `follow-redirects="true"`, a 3xx with a `Location` re-targets the request and asks
    /// Pingora to try again (the response is dropped; nothing has been sent downstream yet).
    /// 303, and 301/302 after a POST, continue as a GET without a body.
    fn follow_redirect(
        &self,
        resp: &ResponseHeader,
        ctx: &mut Ctx,
        p: &crate::gateway::Pipeline,
    ) -> Option<Box<pingora::Error>> {
        let fwd = p.forward.as_ref()?;
        let _ = fwd;
        let follow = ctx.follow_redirects;
        let status = resp.status.as_u16();
        if !follow
            || !matches!(status, 301 | 302 | 303 | 307 | 308)
            || ctx.redirects >= MAX_REDIRECTS
        {
            return None;
        }
        let location = resp
            .headers
            .get(header::LOCATION)?
            .to_str()
            .ok()?
            .to_string();
        let req = ctx.req.as_mut()?;
        let (path_and_query, base) =
            if location.starts_with("http://") || location.starts_with("https://") {
                let after_scheme = location.split_once("://").map_or("", |(_, r)| r);
                let split = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
                let origin_part = &location[..location.len() - after_scheme.len() + split];
                (
                    after_scheme[split..].to_string(),
                    Arc::new(crate::net::url::BaseUrl::parse(origin_part).ok()?),
                )
            } else if location.starts_with('/') {
                let mut base = (*req.target.base).clone();
                base.path.clear();
                (location.clone(), Arc::new(base))
            } else {
                return None;
            };
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((&path_and_query, ""));
        req.target = exec::Target {
            base,
            backend: req.target.backend,
        };
        req.path = if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        };
        req.query = exec::QueryState::raw(query);
        if status == 303 || (matches!(status, 301 | 302) && req.method == http::Method::POST) {
            req.method = http::Method::GET;
            req.body = Some(Bytes::new());
        }
        ctx.redirects += 1;
        ctx.redirecting = true;
        ctx.redirected = true;
        let mut e = pingora::Error::explain(
            ErrorType::HTTPStatus(status),
            format!("following redirect to {location}"),
        );
        e.set_retry(true);
        Some(e)
    }

    /// While draining (SIGTERM, SIGQUIT), every response closes its connection
    /// (`Connection: close`), so a client's next request opens a connection to another instance
    /// or to the upgraded process instead of racing this one's close.
    fn close_if_draining(&self, session: &mut Session) {
        if self
            .shared
            .draining
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            session.set_keepalive(None);
        }
    }

    /// Match API and operation, decide the subscription, and prepare the request state.
    #[allow(clippy::result_large_err)]
    /// Check the request's framing and limits, then let the engine route and admit it.
    fn route(&self, session: &mut Session, ctx: &mut Ctx) -> Result<(), PolicyError> {
        let gw = ctx.gw.clone();
        check_framing(session.req_header_mut())?;
        let req = session.req_header();
        check_limits(&gw.limits, req)?;
        let view = exec::request::RequestView {
            method: &req.method,
            host: req
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or(req.uri.host()),
            path: req.uri.path().as_bytes(),
            path_is_utf8: req.raw_path_is_utf8(),
            query: req.uri.query().unwrap_or(""),
            headers: &req.headers,
            peer: session
                .client_addr()
                .and_then(|c| c.as_inet())
                .map(|c| c.ip().to_canonical()),
            tls: session.digest().is_some_and(|d| d.ssl_digest.is_some()),
            client_certificate: tls::client_certificate(session),
        };
        match exec::request::admit(&gw, &view, &ctx.request_id, ctx.start) {
            Ok(r) => {
                if let Some(i) = &r.req.inspector {
                    if gw.trace_location.is_some() {
                        self.shared.traces.reserve(&i.token);
                    }
                }
                ctx.compression = gw.apis[r.api].compression.clone();
                if let Some(c) = &ctx.compression {
                    compress::on_request(session, c);
                }
                ctx.api = Some(r.api);
                ctx.op = Some(r.operation);
                ctx.subscription = r.subscription;
                ctx.product = r.product;
                ctx.pipeline = Some(r.pipeline);
                ctx.examples = r.examples;
                if let Some(h) = r.strip_header {
                    session.req_header_mut().remove_header(&h);
                }
                ctx.req = Some(r.req);
                Ok(())
            }
            Err(u) => {
                ctx.api = u.api;
                ctx.op = u.operation;
                ctx.www_authenticate = u.www_authenticate;
                Err(u.error)
            }
        }
    }
}
