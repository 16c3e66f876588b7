//! HTTPS to a backend through an HTTP forward proxy: a `CONNECT host:port` tunnel, built as
//! Pingora's custom L4 connect so that TLS (verification, SNI, client certificates), HTTP/2 and
//! connection reuse work over it exactly as they do over a direct connection. The backend's
//! host name is resolved by the proxy, not by the gateway.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::connectors::L4Connect;
use pingora::prelude::*;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora::protocols::l4::stream::Stream;
use pingora::ErrorType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ForwardProxy;

/// Largest CONNECT response head the gateway reads from a proxy.
const MAX_HEAD: usize = 16 * 1024;

/// One tunnel target through one proxy.
#[derive(Debug)]
pub struct Tunnel {
    /// `host:port` (brackets around an IPv6 host), as the CONNECT request names it.
    authority: String,
    authorization: Option<http::HeaderValue>,
    connect_timeout: Duration,
}

impl Tunnel {
    /// A tunnel to `host:port` through `proxy`.
    pub fn new(
        proxy: &ForwardProxy,
        host: &str,
        port: u16,
        connect_timeout: Duration,
    ) -> Arc<Tunnel> {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Arc::new(Tunnel {
            authority,
            authorization: proxy.authorization.clone(),
            connect_timeout,
        })
    }

    /// Route `peer` (whose address is the proxy's) through a tunnel to `host:port`; pooled
    /// connections are kept apart per target.
    pub fn apply(
        proxy: &ForwardProxy,
        peer: &mut HttpPeer,
        host: &str,
        port: u16,
        connect_timeout: Duration,
    ) {
        let tunnel = Tunnel::new(proxy, host, port, connect_timeout);
        let mut h = ahash::AHasher::default();
        tunnel.authority.hash(&mut h);
        peer.group_key = h.finish();
        peer.options.custom_l4 = Some(tunnel);
    }

    fn request(&self) -> Vec<u8> {
        let mut head =
            format!("CONNECT {a} HTTP/1.1\r\nHost: {a}\r\n", a = self.authority).into_bytes();
        if let Some(v) = &self.authorization {
            head.extend_from_slice(b"Proxy-Authorization: ");
            head.extend_from_slice(v.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    async fn open(&self, proxy: std::net::SocketAddr) -> Result<tokio::net::TcpStream> {
        let mut tcp = tokio::net::TcpStream::connect(proxy).await.map_err(|e| {
            let kind = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => ErrorType::ConnectRefused,
                _ => ErrorType::ConnectError,
            };
            Error::because(kind, format!("connecting to proxy {proxy}"), e)
        })?;
        tcp.write_all(&self.request())
            .await
            .or_err(ErrorType::ConnectProxyFailure, "sending CONNECT")?;
        // The proxy answers with a head only; the tunnel carries nothing until the TLS client
        // hello is sent, so reading in chunks cannot swallow tunnel bytes.
        let mut head = Vec::with_capacity(512);
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.or_err(
                ErrorType::ConnectProxyFailure,
                "reading the CONNECT response",
            )?;
            if n == 0 || head.len() + n > MAX_HEAD {
                return Error::e_explain(
                    ErrorType::ConnectProxyFailure,
                    format!("proxy {proxy} closed or overflowed the CONNECT response"),
                );
            }
            head.extend_from_slice(&buf[..n]);
        }
        let status = status_code(&head);
        if !(200..300).contains(&status) {
            return Error::e_explain(
                ErrorType::ConnectProxyFailure,
                format!(
                    "proxy {proxy} answered CONNECT {} with status {status}",
                    self.authority
                ),
            );
        }
        Ok(tcp)
    }
}

/// The status code of an HTTP/1 response head, 0 when it is not one.
fn status_code(head: &[u8]) -> u16 {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with(b"HTTP/1.") => std::str::from_utf8(code)
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

#[async_trait]
impl L4Connect for Tunnel {
    async fn connect(&self, addr: &PingoraAddr) -> Result<Stream> {
        let Some(proxy) = addr.as_inet().copied() else {
            return Error::e_explain(ErrorType::ConnectError, "proxy address is not TCP");
        };
        match tokio::time::timeout(self.connect_timeout, self.open(proxy)).await {
            Ok(tcp) => Ok(tcp?.into()),
            Err(_) => Error::e_explain(
                ErrorType::ConnectTimedout,
                format!(
                    "no tunnel to {} through proxy {proxy} within {:?}",
                    self.authority, self.connect_timeout
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::status_code;

    #[test]
    fn reads_the_status_of_a_connect_response() {
        assert_eq!(
            status_code(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            200
        );
        assert_eq!(
            status_code(b"HTTP/1.0 407 Proxy Authentication Required\r\n"),
            407
        );
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), 0);
        assert_eq!(status_code(b""), 0);
    }
}
