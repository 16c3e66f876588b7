//! The proxy's connections, around Pingora's HTTP/1 loop: a connection limit per listener, a
//! deadline for each request's line and headers, and an idle timeout between kept-alive requests
//! (`limits` and `listeners[].max_connections`; docs/security.md). Pingora alone waits 60 s per
//! read with no bound on a whole header, and forever between requests.
//!
//! The deadline runs from the start of each request's wait: `header_read_timeout` from the
//! connection's start, `keepalive_timeout` from the previous response on a kept-alive
//! connection; `early_request_filter` marks the headers as read through a task-local flag,
//! since Pingora awaits the proxy hooks inside this connection's task. HTTP/2 connections (ALPN
//! h2 on TLS; on a plain listener with `http2`, those that start with the preface within the
//! header deadline) are counted, then go to Pingora as they are (its own per-stream handling).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use tokio::io::AsyncWriteExt;

use super::Proxy;
use crate::runtime::Shared;

tokio::task_local! {
    /// Set once the current request's line and headers have been read.
    static HEADERS_READ: Arc<AtomicBool>;
}

/// Marks the current request's headers as read.
fn headers_read() {
    let _ = HEADERS_READ.try_with(|f| f.store(true, Ordering::Relaxed));
}

/// The proxy's listeners (one Pingora service, so one worker pool, for all of them), each with
/// its own connection count.
pub struct Listener {
    proxy: Arc<HttpProxy<Proxy>>,
    shared: Arc<Shared>,
    ports: Vec<Port>,
}

struct Port {
    address: String,
    addr: Option<std::net::SocketAddr>,
    max_connections: usize,
    /// Plain listener that takes HTTP/2 with prior knowledge (h2c) beside HTTP/1.1.
    h2c: bool,
    open: AtomicUsize,
}

/// One listener as configured.
pub struct PortSpec {
    pub address: String,
    pub max_connections: usize,
    pub h2c: bool,
}

impl Listener {
    pub fn new(
        mut proxy: HttpProxy<Proxy>,
        shared: Arc<Shared>,
        listeners: &[PortSpec],
    ) -> Listener {
        if listeners.iter().any(|l| l.h2c) {
            // Pingora's own switch; this wrapper only hands it connections that start with
            // the HTTP/2 preface, on listeners that take h2c.
            let mut options = pingora::apps::HttpServerOptions::default();
            options.h2c = true;
            proxy.server_options = Some(options);
        }
        Listener {
            proxy: Arc::new(proxy),
            shared,
            ports: listeners
                .iter()
                .map(|l| Port {
                    address: l.address.clone(),
                    addr: l.address.parse().ok(),
                    max_connections: l.max_connections,
                    h2c: l.h2c,
                    open: AtomicUsize::new(0),
                })
                .collect(),
        }
    }

    /// The listener a connection came in on, by its local address (an unspecified configured
    /// IP, `0.0.0.0:8080`, matches any local IP on that port).
    fn port_of(&self, stream: &Stream) -> Option<&Port> {
        let local = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied())?;
        self.ports.iter().find(|p| {
            p.addr.is_some_and(|a| {
                a.port() == local.port() && (a.ip() == local.ip() || a.ip().is_unspecified())
            })
        })
    }
}

impl Listener {
    /// Pingora's HTTP/1 keep-alive loop (`ServerApp for HttpServerApp`), with one deadline per
    /// request: its line and headers within `header_read_timeout` of the connection's start,
    /// and a kept-alive connection's next request within `keepalive_timeout` of the previous
    /// response (idle wait and headers together). One timer per connection, moved per request:
    /// Pingora's own per-read keep-alive timer stays off.
    async fn serve_http1(
        &self,
        port: &Port,
        stream: Stream,
        shutdown: &ShutdownWatch,
        limits: crate::gateway::Limits,
        read: Arc<AtomicBool>,
    ) {
        let mut session = ServerSession::new_http1(stream);
        session.set_keepalive(if *shutdown.borrow() { None } else { Some(0) });
        let mut deadline = limits.header_read_timeout;
        let timer = tokio::time::sleep(deadline);
        tokio::pin!(timer);
        loop {
            read.store(false, Ordering::Relaxed);
            timer.as_mut().reset(tokio::time::Instant::now() + deadline);
            let request = self.proxy.process_new_http(session, shutdown);
            tokio::pin!(request);
            let reused = tokio::select! {
                r = &mut request => r,
                () = &mut timer => {
                    if read.load(Ordering::Relaxed) {
                        request.await
                    } else {
                        // No whole request line and headers in time.
                        log::debug!("{}: no complete request within {deadline:?}; closing", port.address);
                        return;
                    }
                }
            };
            let Some(reused) = reused else { return };
            let (stream, settings) = reused.consume();
            session = ServerSession::new_http1(stream);
            if let Some(s) = settings {
                s.apply_to_session(&mut session);
            }
            deadline = limits.keepalive_timeout;
        }
    }
}

/// Holds one of the listener's connection slots.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What an HTTP/2 connection with prior knowledge starts with (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const OVER_LIMIT_BODY: &str =
    r#"{"statusCode":503,"message":"Service unavailable: too many connections."}"#;

fn over_limit() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{OVER_LIMIT_BODY}",
        OVER_LIMIT_BODY.len()
    )
}

#[async_trait]
impl ServerApp for Listener {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Some(port) = self.port_of(&stream) else {
            return ServerApp::process_new(&self.proxy, stream, shutdown).await;
        };
        let open = port.open.fetch_add(1, Ordering::Relaxed) + 1;
        let _slot = Slot(&port.open);
        if open > port.max_connections {
            if let Some(m) = crate::observe::metrics::get() {
                m.connections_refused
                    .with_label_values(&[&port.address])
                    .inc();
            }
            log::debug!(
                "{}: {} connections open; refusing one",
                port.address,
                open - 1
            );
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                stream.write_all(over_limit().as_bytes()),
            )
            .await;
            let _ =
                tokio::time::timeout(Duration::from_secs(1), AsyncWriteExt::shutdown(&mut stream))
                    .await;
            return None;
        }
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return ServerApp::process_new(&self.proxy, stream, shutdown).await;
        }
        let limits = self.shared.gateway.load().limits;
        if port.h2c && stream.get_ssl().is_none() {
            // The preface within the header deadline, as a request line would be.
            let mut buf = [0u8; H2_PREFACE.len()];
            match tokio::time::timeout(limits.header_read_timeout, stream.try_peek(&mut buf)).await
            {
                Ok(Ok(true)) if buf == H2_PREFACE => {
                    return ServerApp::process_new(&self.proxy, stream, shutdown).await;
                }
                Ok(_) => {}
                Err(_) => {
                    log::debug!(
                        "{}: nothing sent within {:?}; closing",
                        port.address,
                        limits.header_read_timeout
                    );
                    return None;
                }
            }
        }
        let read = Arc::new(AtomicBool::new(false));
        HEADERS_READ
            .scope(
                read.clone(),
                self.serve_http1(port, stream, shutdown, limits, read),
            )
            .await;
        None
    }

    async fn cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}

/// The body-read timeout for this request (`limits.body_read_timeout`), set when its headers
/// are complete.
pub fn on_headers(session: &mut pingora::proxy::Session, body_read_timeout: Duration) {
    headers_read();
    session.set_read_timeout(Some(body_read_timeout));
}
