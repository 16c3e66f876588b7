//! Per-request context of the Pingora adapter: the gateway snapshot taken at the start, what
//! matched, the engine's request and response state, and timing for the access log.

use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderMap, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

use crate::exec::Stmt;
use crate::exec::{
    self, ErrorKind, ExecCtx, Flow, HeaderStore, Origin, PolicyError, ReqState, RespState,
};
use crate::gateway::{Example, Gateway, Pipeline};
use crate::policy::Section;
use crate::runtime::Shared;

pub struct Ctx {
    pub gw: Arc<Gateway>,
    pub store: Arc<dyn crate::store::Store>,
    pub transport: Arc<dyn exec::transport::Transport>,
    pub start: Instant,
    pub request_id: String,
    pub api: Option<usize>,
    pub op: Option<usize>,
    pub product: Option<usize>,
    pub subscription: Option<usize>,
    pub pipeline: Option<Arc<Pipeline>>,
    pub examples: Arc<[Example]>,
    pub req: Option<Box<ReqState>>,
    pub resp: RespState,
    /// Headers of a gateway-built response.
    pub resp_headers: HeaderMap,
    pub origin: Origin,
    pub error: Option<PolicyError>,
    pub upstream_start: Option<Instant>,
    /// When the inbound section ended (the first upstream call began), and when the backend's
    /// response headers arrived: the phases of the request's span (`observe::otlp`).
    pub inbound_done: Option<Instant>,
    pub response_at: Option<Instant>,
    /// Response compression for this request's API.
    pub compression: Option<Arc<crate::exec::model::Compression>>,
    /// The address of the last upstream connection Pingora made (access log).
    pub upstream_addr: Option<PingoraAddr>,
    pub backend_time: Option<Duration>,
    /// Outbound or on-error replaced the upstream body: `response_body_filter` swaps it.
    pub replace_response_body: bool,
    pub response_started: bool,
    pub client_gone: bool,
    pub final_status: u16,
    /// Set for a missing key: the header name for `WWW-Authenticate`.
    pub www_authenticate: Option<String>,
    /// Redirects followed so far, and whether the current upstream error is one.
    pub redirects: u8,
    pub redirecting: bool,
    /// The next upstream attempt follows a redirect: keep its target, pick no other backend.
    pub redirected: bool,
    /// forward-request's timeout and follow-redirects, evaluated when the backend section
    /// reaches it.
    pub forward_timeout: Option<Duration>,
    pub follow_redirects: bool,
    /// The backend that takes the call (a pool member), and whether its outcome is still to be
    /// reported to its circuit breaker.
    pub pick: Option<crate::upstream::Pick>,
    pub pick_pending: bool,
    /// Pool members this request was sent to (a retry after a failed connection skips them).
    pub tried: Vec<usize>,
    /// Upstream attempts Pingora made (retries of connection failures, redirects).
    pub attempts: u32,
    /// Request body bytes streamed so far (for `limits.max_body_bytes`).
    pub body_seen: u64,
    /// The streaming forward's deadline for the response headers (an explicit timeout over
    /// HTTP/1), its watch over the current connection, and whether it expired.
    pub forward_deadline: Option<Instant>,
    pub deadline_watch: Option<super::deadline::Watch>,
    pub deadline_expired: bool,
}

impl Ctx {
    pub fn new(
        gw: Arc<Gateway>,
        store: Arc<dyn crate::store::Store>,
        transport: Arc<dyn exec::transport::Transport>,
    ) -> Ctx {
        Ctx {
            gw,
            store,
            transport,
            start: Instant::now(),
            request_id: request_id(),
            api: None,
            op: None,
            product: None,
            subscription: None,
            pipeline: None,
            examples: Arc::from(Vec::new()),
            req: None,
            resp: RespState {
                status: 200,
                reason: None,
                body: None,
                original_body: None,
            },
            resp_headers: HeaderMap::new(),
            origin: Origin::Backend,
            error: None,
            upstream_start: None,
            upstream_addr: None,
            compression: None,
            inbound_done: None,
            response_at: None,
            backend_time: None,
            replace_response_body: false,
            response_started: false,
            client_gone: false,
            final_status: 0,
            www_authenticate: None,
            redirects: 0,
            redirecting: false,
            redirected: false,
            forward_timeout: None,
            follow_redirects: false,
            pick: None,
            pick_pending: false,
            tried: Vec::new(),
            attempts: 0,
            body_seen: 0,
            forward_deadline: None,
            deadline_watch: None,
            deadline_expired: false,
        }
    }

    /// Stop the deadline watch of the current upstream attempt; remember whether it expired.
    pub fn stop_deadline_watch(&mut self) {
        if let Some(w) = self.deadline_watch.take() {
            self.deadline_expired |= w.disarm();
        }
    }

    /// Run statements with the request's headers and the gateway-built response's headers.
    pub async fn run(&mut self, session: &mut Session, section: Section, stmts: &[Stmt]) -> Flow {
        let mut h = std::mem::take(&mut self.resp_headers);
        let flow = self
            .run_with(session.req_header_mut(), &mut h, section, stmts)
            .await;
        self.resp_headers = h;
        flow
    }

    async fn run_with(
        &mut self,
        req_h: &mut RequestHeader,
        resp_h: &mut (dyn HeaderStore + Send),
        section: Section,
        stmts: &[Stmt],
    ) -> Flow {
        if stmts.is_empty() {
            return Flow::Continue;
        }
        let mut cx = self.exec_ctx(req_h, resp_h, section);
        exec::run_section(stmts, &mut cx).await
    }

    /// Outbound (after backend statements, when there was a backend response).
    /// `upstream`: the backend response's headers; `None` for gateway-built responses.
    pub async fn after_response(
        &mut self,
        session: &mut Session,
        p: &Pipeline,
        upstream: Option<&mut ResponseHeader>,
    ) {
        match upstream {
            Some(up) => {
                let mut flow = self
                    .run_with(
                        session.req_header_mut(),
                        up,
                        Section::Backend,
                        &p.backend_post,
                    )
                    .await;
                if matches!(flow, Flow::Continue) {
                    flow = self
                        .run_with(session.req_header_mut(), up, Section::Outbound, &p.outbound)
                        .await;
                }
                match flow {
                    Flow::Continue => {}
                    Flow::Respond { origin, .. } => self.origin = origin,
                    Flow::Fail(e) => {
                        self.fail_on_upstream_response(session, e, &p.on_error, up)
                            .await
                    }
                }
            }
            None => match self
                .run(
                    session,
                    Section::Outbound,
                    outbound_from(p, self.req.as_deref()),
                )
                .await
            {
                Flow::Continue => {}
                Flow::Respond { origin, .. } => self.origin = origin,
                Flow::Fail(e) => self.fail(session, e, &p.on_error).await,
            },
        }
    }

    /// Backend-after-forward and outbound over a response the gateway buffered itself.
    pub async fn after_buffered_response(&mut self, session: &mut Session, p: &Pipeline) {
        let mut flow = self.run(session, Section::Backend, &p.backend_post).await;
        if matches!(flow, Flow::Continue) {
            flow = self.run(session, Section::Outbound, &p.outbound).await;
        }
        match flow {
            Flow::Continue => {}
            Flow::Respond { origin, .. } => self.origin = origin,
            Flow::Fail(e) => self.fail(session, e, &p.on_error).await,
        }
    }

    /// fail-on-error-status-code on a buffered response: on-error runs with the backend's
    /// response kept.
    pub async fn fail_keep_response(
        &mut self,
        session: &mut Session,
        e: PolicyError,
        on_error: &[Stmt],
    ) {
        let mut h = std::mem::take(&mut self.resp_headers);
        let origin = self.origin.clone();
        self.on_error(session.req_header_mut(), &mut h, e, on_error, Some(origin))
            .await;
        self.resp_headers = h;
    }

    /// A failure with a gateway-built response: default error response, then on-error.
    pub async fn fail(&mut self, session: &mut Session, e: PolicyError, on_error: &[Stmt]) {
        let mut h = std::mem::take(&mut self.resp_headers);
        self.on_error(session.req_header_mut(), &mut h, e, on_error, None)
            .await;
        self.resp_headers = h;
    }

    /// A failure after the backend answered: the backend response's headers are reset to the
    /// default error response (or, for `fail-on-error-status-code`, kept as the backend sent
    /// them), then on-error runs on them.
    pub async fn fail_on_upstream_response(
        &mut self,
        session: &mut Session,
        e: PolicyError,
        on_error: &[Stmt],
        up: &mut ResponseHeader,
    ) {
        if e.kind == ErrorKind::BackendErrorStatusCode {
            // The backend response stays in context.Response [apim-reference §1.4, unverified].
            self.on_error(
                session.req_header_mut(),
                up,
                e,
                on_error,
                Some(Origin::Backend),
            )
            .await;
            return;
        }
        self.on_error(session.req_header_mut(), up, e, on_error, None)
            .await;
    }

    /// The engine answers the failure: with `keep` the response as it stands (produced by
    /// `keep`'s origin) goes through on-error, else the default error response first.
    async fn on_error(
        &mut self,
        req_h: &mut RequestHeader,
        resp_h: &mut (dyn HeaderStore + Send),
        e: PolicyError,
        on_error: &[Stmt],
        keep: Option<Origin>,
    ) {
        let www = self.www_authenticate.clone();
        let mut cx = self.exec_ctx(req_h, resp_h, Section::OnError);
        let origin = match keep {
            Some(origin) => exec::failure::run_on_error(&mut cx, &e, on_error, origin).await,
            None => exec::failure::handle(&mut cx, &e, on_error, www.as_deref()).await,
        };
        self.origin = origin;
        self.error = Some(e);
    }

    /// Counter increments that waited for the response (expression conditions, bandwidth),
    /// evaluated against the final response.
    pub async fn apply_deferred(&mut self, session: &mut Session, bytes: u64) {
        if self.req.is_none() {
            return;
        }
        let mut h = std::mem::take(&mut self.resp_headers);
        let mut cx = self.exec_ctx(session.req_header_mut(), &mut h, Section::Outbound);
        exec::deferred::finish(&mut cx, bytes).await;
        self.resp_headers = h;
    }

    /// Headers policies asked to add to the final response.
    /// `correlation.request_id_header` on a response to the client, and where a traced
    /// request's trace will be (`Ocp-Apim-Trace-Location`).
    pub fn add_request_id(&self, resp: &mut ResponseHeader) {
        if let Some(h) = &self.gw.request_id_header {
            let _ = resp.insert_header(h.clone(), self.request_id.as_str());
        }
        if let (Some(i), Some(base)) = (
            self.req.as_ref().and_then(|r| r.inspector.as_ref()),
            &self.gw.trace_location,
        ) {
            let _ = resp.insert_header("ocp-apim-trace-location", format!("{base}{}", i.token));
        }
    }

    /// The request's span and its phases, to the OpenTelemetry exporter (sampled, routed
    /// requests, when `otlp` is on).
    pub fn export_span(&self, req: &RequestHeader, status: u16, client: Option<&PingoraAddr>) {
        use opentelemetry::KeyValue;
        if !crate::observe::otlp::enabled() {
            return;
        }
        let Some(r) = self.req.as_ref() else { return };
        let t = r.info.trace;
        if !t.is_set() {
            return;
        }
        let (sys_now, now) = (std::time::SystemTime::now(), Instant::now());
        let at = |i: Instant| {
            sys_now
                .checked_sub(now.saturating_duration_since(i))
                .unwrap_or(sys_now)
        };
        let api = self.api.map(|a| &self.gw.apis[a]);
        let op = api.and_then(|a| self.op.map(|o| &a.operations[o]));
        let name = match (api, op) {
            (Some(a), Some(o)) => format!("{} {}{}", req.method, a.path, o.url_template),
            _ => req.method.to_string(),
        };
        let mut attributes = vec![
            KeyValue::new("http.request.method", req.method.to_string()),
            KeyValue::new("url.path", r.info.original_path.clone()),
            KeyValue::new("url.scheme", r.info.original_scheme.clone()),
            KeyValue::new("server.address", r.info.original_host.clone()),
            KeyValue::new("http.response.status_code", i64::from(status)),
            KeyValue::new("gatehouse.request_id", self.request_id.clone()),
            KeyValue::new("gatehouse.produced_by", self.origin.producer()),
        ];
        if let Some(c) = client {
            attributes.push(KeyValue::new("client.address", c.to_string()));
        }
        if let Some(a) = api {
            attributes.push(KeyValue::new("gatehouse.api", a.id.clone()));
        }
        if let Some(o) = op {
            attributes.push(KeyValue::new("gatehouse.operation", o.id.clone()));
            attributes.push(KeyValue::new("http.route", o.url_template.clone()));
        }
        if let Some(s) = self.subscription {
            attributes.push(KeyValue::new(
                "gatehouse.subscription",
                self.gw.subscriptions.list[s].id.clone(),
            ));
        }
        if let Some(ua) = req
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            attributes.push(KeyValue::new("user_agent.original", ua.to_string()));
        }
        if let Some(u) = &self.upstream_addr {
            attributes.push(KeyValue::new("gatehouse.upstream", u.to_string()));
        }
        let mut phases = Vec::new();
        let inbound_end = self.inbound_done.unwrap_or(now);
        phases.push(("inbound", at(self.start), at(inbound_end)));
        if let Some(done) = self.inbound_done {
            let back_end = self.response_at.unwrap_or(now);
            phases.push(("backend", at(done), at(back_end)));
            if let Some(resp) = self.response_at {
                phases.push(("outbound", at(resp), sys_now));
            }
        }
        let error = self
            .error
            .as_ref()
            .map(|e| e.reason().to_string())
            .or_else(|| (status >= 500).then(|| status.to_string()));
        crate::observe::otlp::export(crate::observe::otlp::RequestSpan {
            trace_id: t.trace_id,
            span_id: t.span_id,
            parent: t.parent_id,
            sampled: t.flags & 1 == 1,
            name,
            start: at(self.start),
            end: sys_now,
            attributes,
            phases,
            error,
        });
    }

    /// A traced request's trace, finished, masked and kept for its client to fetch.
    pub fn finish_trace(&mut self, shared: &Shared, req: &RequestHeader, status: u16) {
        let Some(r) = self.req.as_mut() else { return };
        let Some(mut i) = r.inspector.take() else {
            return;
        };
        let origin = self.origin.producer();
        i.note(
            crate::policy::Section::Outbound,
            "response",
            serde_json::json!({ "status": status, "producedBy": origin }),
        );
        let text = i.render(&self.request_id, status).to_string();
        let masked = exec::record::mask(&self.gw, r, &req.headers, &text);
        shared.traces.put(&i.token, bytes::Bytes::from(masked));
    }

    pub fn extra_headers(&self) -> Vec<(http::HeaderName, HeaderValue)> {
        self.req
            .as_ref()
            .map(|r| r.extra_headers.clone())
            .unwrap_or_default()
    }

    /// Make the backend response carry what outbound / on-error decided.
    pub fn apply_to_upstream_response(&mut self, up: &mut ResponseHeader) {
        for (n, v) in self.extra_headers() {
            let _ = up.insert_header(n, v);
        }
        if up.status.as_u16() != self.resp.status {
            let _ = up.set_status(self.resp.status);
        }
        if let Some(r) = self
            .resp
            .reason
            .as_deref()
            .filter(|r| crate::exec::policies::set_status::valid_reason(r))
        {
            let _ = up.set_reason_phrase(Some(r));
        }
        if let Some(body) = &self.resp.body {
            self.replace_response_body = true;
            up.remove_header(&header::TRANSFER_ENCODING);
            let _ = up.insert_header(header::CONTENT_LENGTH, body.len().to_string());
        }
    }

    /// Access log line and metrics.
    pub fn log(
        &self,
        shared: &Shared,
        req: &RequestHeader,
        status: u16,
        client: Option<&PingoraAddr>,
        bytes: (u64, u64),
    ) {
        // Formatted only when the access log is written.
        let authority = self
            .req
            .as_ref()
            .filter(|r| r.forwarded > 0 || self.attempts > 0)
            .map(|r| &r.target.base.authority);
        use crate::observe::access_log::Addr;
        fn addr(a: &PingoraAddr) -> Addr<'_> {
            a.as_inet().map_or(Addr::Other(a), |i| Addr::Inet(*i))
        }
        let upstream = match (&self.upstream_addr, authority) {
            (Some(a), _) => Some(addr(a)),
            (None, Some(a)) => Some(Addr::Other(a)),
            (None, None) => None,
        };
        exec::record::record(
            &exec::record::Finished {
                gw: &self.gw,
                request_id: &self.request_id,
                method: req.method.as_str(),
                path: req.uri.path(),
                request_headers: &req.headers,
                status,
                client: client.map(addr),
                api: self.api,
                operation: self.op,
                product: self.product,
                subscription: self.subscription,
                origin: &self.origin,
                error: self.error.as_ref(),
                req: self.req.as_deref(),
                started: self.start,
                backend_time: self.backend_time,
                store_degraded: self.store.degraded(),
                bytes_in: bytes.0,
                bytes_out: bytes.1,
                upstream,
                backend: self.pick.map(|p| p.backend),
                upstream_attempts: self.attempts + self.req.as_ref().map_or(0, |r| r.forwarded),
            },
            shared.access_log,
        );
    }
}

/// The outbound statements to run: after a cache hit, only those after cache-store
/// (apim-reference.md §1.4).
fn outbound_from<'p>(p: &'p Pipeline, req: Option<&ReqState>) -> &'p [Stmt] {
    let hit = req.and_then(|r| r.cache.as_ref()).is_some_and(|c| c.hit);
    if hit {
        if let Some(i) = p
            .outbound
            .iter()
            .position(|s| matches!(s.kind, crate::exec::StmtKind::CacheStore(_)))
        {
            return &p.outbound[i + 1..];
        }
    }
    &p.outbound
}

/// Request state for errors raised before routing finished (on-error still runs).
fn placeholder_request(request_id: &str, req: &RequestHeader) -> ReqState {
    ReqState::new(
        request_id.to_string(),
        req.method.clone(),
        exec::Target {
            base: Default::default(),
            backend: None,
        },
        req.uri.path().to_string(),
        exec::QueryState::raw(req.uri.query().unwrap_or("")),
        exec::RequestInfo::default(),
    )
}

impl Ctx {
    /// Pick the backend (pool member) for the call, or fail with 503 `BackendUnavailable`.
    #[allow(clippy::result_large_err)]
    pub fn select_backend(&mut self) -> Result<(), PolicyError> {
        let gw = self.gw.clone();
        let Some(req) = self.req.as_mut() else {
            return Ok(());
        };
        // Pingora's retry after a failed connection goes to a member not yet tried.
        self.pick = crate::exec::backend::select(&gw, req, &self.tried)?;
        self.pick_pending = self.pick.is_some();
        if let Some(p) = self.pick {
            self.tried.push(p.backend);
        }
        Ok(())
    }

    /// Report the call's outcome to the picked backend's circuit breaker (once per attempt).
    pub fn record_outcome(&mut self, o: crate::upstream::Outcome) {
        if std::mem::take(&mut self.pick_pending) {
            if let Some(p) = self.pick {
                let elapsed = self.upstream_start.map(|s| s.elapsed());
                crate::upstream::record(&self.gw.backends, p, o, elapsed);
            }
        }
    }

    /// Evaluate forward-request's timeout and follow-redirects (they may be expressions).
    pub fn prepare_forward(
        &mut self,
        session: &mut Session,
        fwd: &crate::exec::policies::forward_request::ForwardRequest,
    ) -> Result<(), exec::StepError> {
        let mut h = std::mem::take(&mut self.resp_headers);
        let r = self.with_exec(session.req_header_mut(), &mut h, Section::Backend, |cx| {
            let timeout = match &fwd.timeout_ms {
                Some(v) => Some(Duration::from_millis(*exec::value(v, cx)?)),
                None => None,
            };
            let follow = *exec::value(&fwd.follow_redirects, cx)?;
            Ok((timeout, follow))
        });
        self.resp_headers = h;
        let (timeout, follow) = r?;
        self.forward_timeout = timeout;
        self.follow_redirects = follow;
        Ok(())
    }

    fn with_exec<T>(
        &mut self,
        req_h: &mut RequestHeader,
        resp_h: &mut (dyn HeaderStore + Send),
        section: Section,
        f: impl FnOnce(&mut ExecCtx) -> T,
    ) -> T {
        f(&mut self.exec_ctx(req_h, resp_h, section))
    }

    /// The engine's view of this request for one section (a placeholder request state when the
    /// request failed before routing built one).
    fn exec_ctx<'s>(
        &'s mut self,
        req_h: &'s mut RequestHeader,
        resp_h: &'s mut (dyn HeaderStore + Send),
        section: Section,
    ) -> ExecCtx<'s> {
        let req = self
            .req
            .get_or_insert_with(|| Box::new(placeholder_request(&self.request_id, req_h)));
        ExecCtx {
            gw: &self.gw,
            section,
            req,
            req_headers: req_h,
            resp: &mut self.resp,
            resp_headers: resp_h,
            examples: &self.examples,
            store: &*self.store,
            transport: &*self.transport,
        }
    }
}

/// A random (version 4) UUID from the thread's seeded generator: no system call per request
/// (`Uuid::new_v4` asks the kernel for randomness every time).
fn request_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .hyphenated()
        .to_string()
}
