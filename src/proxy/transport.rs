//! send-request over Pingora's connector: the same connection pools, TLS stack and timeouts as
//! forwarded requests.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use pingora::connectors::http::Connector;
use pingora::prelude::*;

use crate::exec::transport::{CallRequest, ForwardCall, ForwardResponse, Transport};
use crate::exec::ErrorKind;
use crate::expr::value::{Message, UrlData};
use crate::upstream::backend::DEFAULT_KEEPALIVE_TIMEOUT;

/// Largest response a policy call reads.
const MAX_RESPONSE: usize = 8 * 1024 * 1024;

pub struct PingoraTransport {
    pub connector: Arc<Connector>,
}

fn failure(e: &pingora::Error) -> (ErrorKind, String) {
    (super::failure_kind(e), super::failure_message(e))
}

#[async_trait]
impl Transport for PingoraTransport {
    async fn forward(&self, call: ForwardCall<'_>) -> Result<ForwardResponse, (ErrorKind, String)> {
        let peer =
            super::upstream::make_peer(call.gw, call.req, call.pick, call.version, call.timeout)
                .await
                .map_err(|e| failure(&e))?;
        let mut up =
            RequestHeader::build(call.req.method.clone(), b"/", None).map_err(|e| failure(&e))?;
        for (k, v) in call.headers.iter() {
            let _ = up.append_header(k.clone(), v.clone());
        }
        super::upstream::shape(call.gw, call.req, call.pick, &mut up).map_err(|e| failure(&e))?;
        let (head, body, elapsed) =
            super::upstream::exchange(&self.connector, &peer, up, call.body, call.timeout).await?;
        let mut headers = http::HeaderMap::new();
        for (n, v) in head.headers.iter() {
            headers.append(n.clone(), v.clone());
        }
        Ok(ForwardResponse {
            status: head.status.as_u16(),
            headers,
            body,
            elapsed,
        })
    }

    async fn send(
        &self,
        req: CallRequest,
        timeout: Duration,
    ) -> Result<Message, (ErrorKind, String)> {
        let url = url::Url::parse(&req.url).map_err(|e| {
            (
                ErrorKind::BackendConnectionFailure,
                format!("invalid URL {:?}: {e}", req.url),
            )
        })?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            s => {
                return Err((
                    ErrorKind::BackendConnectionFailure,
                    format!("unsupported scheme {s}"),
                ))
            }
        };
        let host = url
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let addr = match &req.proxy {
            Some(p) => p.resolve().await,
            None => tokio::net::lookup_host((host.as_str(), port))
                .await
                .ok()
                .and_then(|mut a| a.next()),
        }
        .ok_or((
            ErrorKind::BackendConnectionFailure,
            format!("cannot resolve {host}"),
        ))?;
        let mut peer = HttpPeer::new(addr, tls, host.clone());
        peer.client_cert_key = req.client_cert.clone();
        peer.options.connection_timeout = Some(timeout);
        peer.options.read_timeout = Some(timeout);
        peer.options.write_timeout = Some(timeout);
        if let Some(p) = req.proxy.as_ref().filter(|_| tls) {
            crate::upstream::tunnel::Tunnel::apply(p, &mut peer, &host, port, timeout);
        }
        let pq = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let mut rh = RequestHeader::build(req.method.clone(), pq.as_bytes(), None)
            .map_err(|e| failure(&e))?;
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        if let Some(p) = req.proxy.as_ref().filter(|_| !tls) {
            // Absolute-form target for a plain-HTTP forward proxy (HTTPS tunnels).
            crate::upstream::absolute_form(p, &mut rh, &authority, &pq).map_err(|e| failure(&e))?;
        }
        let _ = rh.insert_header(http::header::HOST, authority);
        for (k, v) in &req.headers {
            let _ = rh.append_header(k.clone(), v.clone());
        }
        if !req.body.is_empty()
            || matches!(
                req.method,
                http::Method::POST | http::Method::PUT | http::Method::PATCH
            )
        {
            let _ = rh.insert_header(http::header::CONTENT_LENGTH, req.body.len().to_string());
        }
        let connector = self.connector.clone();
        let body = req.body.clone();
        let exchange = async move {
            let (mut s, _) = connector.get_http_session(&peer).await?;
            s.write_request_header(Box::new(rh)).await?;
            if !body.is_empty() {
                s.write_request_body(body, true).await?;
            }
            s.finish_request_body().await?;
            s.read_response_header().await?;
            let head = s.response_header().cloned();
            let mut buf = BytesMut::new();
            while let Some(chunk) = s.read_response_body().await? {
                if buf.len() + chunk.len() > MAX_RESPONSE {
                    return Error::e_explain(
                        pingora::ErrorType::InternalError,
                        "response too large for a policy call",
                    );
                }
                buf.extend_from_slice(&chunk);
            }
            connector
                .release_http_session(s, &peer, Some(DEFAULT_KEEPALIVE_TIMEOUT))
                .await;
            Ok::<_, Box<pingora::Error>>((head, buf.freeze()))
        };
        let (head, body) = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(failure(&e)),
            Err(_) => {
                return Err((
                    ErrorKind::Timeout,
                    format!("no response within {timeout:?}"),
                ))
            }
        };
        let Some(head) = head else {
            return Err((
                ErrorKind::BackendConnectionFailure,
                "no response header".into(),
            ));
        };
        let mut headers: Vec<(String, Vec<String>)> = Vec::new();
        for (k, v) in head.headers.iter() {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            match headers.iter_mut().find(|(n, _)| n == k.as_str()) {
                Some((_, vs)) => vs.push(v),
                None => headers.push((k.as_str().to_string(), vec![v])),
            }
        }
        Ok(Message {
            status: head.status.as_u16() as i32,
            reason: head.status.canonical_reason().unwrap_or("").to_string(),
            method: req.method.as_str().to_string(),
            url: Some(UrlData {
                scheme: url.scheme().into(),
                host: url.host_str().unwrap_or("").into(),
                port: port as i32,
                path: url.path().into(),
                query: url
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            }),
            headers,
            body: Some(body.to_vec()),
        })
    }

    fn clone_box(&self) -> Arc<dyn Transport> {
        Arc::new(PingoraTransport {
            connector: self.connector.clone(),
        })
    }
}
