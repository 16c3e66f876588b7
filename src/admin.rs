//! The admin listener (loopback by default): `/healthz`, `/readyz`, `/metrics`, `/config`, and
//! the optional demo echo endpoint `/echo/...`, which reflects the request as JSON.
//!
//! `/traces/<token>` serves a request trace (`Ocp-Apim-Trace`) to whoever holds its URL.
//!
//! With `admin.token`, every endpoint but the two health probes and `/traces/` (which load balancers poll
//! without credentials, and which say nothing but the state) requires
//! `Authorization: Bearer <token>`, compared in constant time; the token is read from the
//! configuration snapshot, so a reload rotates it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::observe::metrics;
use crate::runtime::Shared;

pub struct Admin {
    pub shared: Arc<Shared>,
}

/// Largest request body the echo endpoint reads.
const ECHO_MAX_BODY: usize = 8 * 1024 * 1024;

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn json(status: u16, v: serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", v.to_string().into_bytes())
}

/// Whether the request carries the admin token (or none is configured).
fn authorized(token: Option<&str>, req: &pingora::http::RequestHeader) -> bool {
    use subtle::ConstantTimeEq;
    let Some(token) = token else { return true };
    let Some(given) = req
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    else {
        return false;
    };
    bool::from(given.ct_eq(token.as_bytes()))
}

fn unauthorized() -> Response<Vec<u8>> {
    let body = serde_json::json!({
        "statusCode": 401,
        "message": "Access denied due to missing or invalid admin token."
    })
    .to_string()
    .into_bytes();
    Response::builder()
        .status(401)
        .header("content-type", "application/json")
        .header("www-authenticate", "Bearer realm=\"gatehouse-admin\"")
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, s: &mut ServerSession) -> Response<Vec<u8>> {
        let path = s.req_header().uri.path().to_string();
        if let Some(token) = path.strip_prefix("/traces/") {
            return trace(&self.shared, token).await;
        }
        if !matches!(path.as_str(), "/healthz" | "/readyz") {
            let token = self.shared.gateway.load().admin_token.clone();
            if !authorized(token.as_deref(), s.req_header()) {
                return unauthorized();
            }
        }
        match path.as_str() {
            "/healthz" => json(200, serde_json::json!({"status": "ok"})),
            "/readyz" => {
                if self.shared.draining.load(Ordering::Relaxed) {
                    json(503, serde_json::json!({"status": "draining"}))
                } else if self.shared.ready.load(Ordering::Relaxed) {
                    json(200, serde_json::json!({"status": "ready"}))
                } else {
                    json(503, serde_json::json!({"status": "starting"}))
                }
            }
            "/metrics" => reply(200, "text/plain; version=0.0.4", metrics::render()),
            "/config" => {
                let gw = self.shared.gateway.load();
                json(
                    200,
                    serde_json::json!({
                        "name": gw.name,
                        "generation": self.shared.generation.load(Ordering::SeqCst),
                        "apis": gw.apis.len(),
                        "products": gw.products.len(),
                        "subscriptions": gw.subscriptions.list.len(),
                        "backends": gw.backends.len(),
                    }),
                )
            }
            p if self.shared.echo && (p == "/echo" || p.starts_with("/echo/")) => echo(s).await,
            _ => json(
                404,
                serde_json::json!({"statusCode": 404, "message": "Resource not found"}),
            ),
        }
    }
}

/// A request trace by its token (the capability its client was given in
/// `Ocp-Apim-Trace-Location`; no admin token, like APIM's signed trace URL). A trace still
/// being written is waited for, briefly.
async fn trace(shared: &Shared, token: &str) -> Response<Vec<u8>> {
    use crate::observe::traces::Lookup;
    for _ in 0..40 {
        match shared.traces.get(token) {
            Lookup::Ready(b) => return reply(200, "application/json", b.to_vec()),
            Lookup::Missing => break,
            Lookup::Pending => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    json(
        404,
        serde_json::json!({"statusCode": 404, "message": "No such trace (traces are kept for 15 minutes)"}),
    )
}

async fn echo(s: &mut ServerSession) -> Response<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        match s.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > ECHO_MAX_BODY {
                    return json(
                        413,
                        serde_json::json!({"statusCode": 413, "message": "Request body too large for echo"}),
                    );
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => {
                return json(
                    400,
                    serde_json::json!({"statusCode": 400, "message": "Cannot read request body"}),
                )
            }
        }
    }
    let req = s.req_header();
    let mut headers = serde_json::Map::new();
    for (k, v) in req.headers.iter() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        match headers.get_mut(k.as_str()) {
            Some(serde_json::Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                headers.insert(k.as_str().to_string(), serde_json::Value::String(v));
            }
        }
    }
    json(
        200,
        serde_json::json!({
            "method": req.method.as_str(),
            "path": req.uri.path(),
            "query": req.uri.query().unwrap_or(""),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        }),
    )
}
