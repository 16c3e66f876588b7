//! Calls policies make themselves (send-request, send-one-way-request): the engine describes
//! the request; the adapter sends it over the gateway's upstream connections.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};

use super::ErrorKind;
use crate::expr::value::Message;

#[derive(Debug, Clone)]
pub struct CallRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// Client certificate for the TLS handshake (`authentication-certificate`).
    pub client_cert: Option<crate::upstream::ClientCert>,
    /// HTTP forward proxy (`<proxy>`).
    pub proxy: Option<crate::net::proxy::ForwardProxy>,
}

/// forward-request run by the engine (inside `retry`): the request as the pipeline shaped it,
/// sent to the picked backend with a deadline for the response headers.
pub struct ForwardCall<'a> {
    pub gw: &'a crate::exec::model::Gateway,
    pub req: &'a super::ReqState,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub pick: Option<crate::upstream::Pick>,
    pub version: crate::exec::policies::forward_request::HttpVersion,
    pub timeout: Duration,
}

/// The backend's whole response.
pub struct ForwardResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// Time to the response headers.
    pub elapsed: Duration,
}

#[async_trait]
pub trait Transport: Send + Sync {
    /// Forward the request to the backend and read the whole response.
    async fn forward(&self, call: ForwardCall<'_>) -> Result<ForwardResponse, (ErrorKind, String)>;
    /// Send and read the whole response; `timeout` bounds the whole exchange.
    async fn send(
        &self,
        req: CallRequest,
        timeout: Duration,
    ) -> Result<Message, (ErrorKind, String)>;
    /// A handle that can outlive the request (for fire-and-forget calls).
    fn clone_box(&self) -> std::sync::Arc<dyn Transport>;
}

/// For contexts without a network (tests of the pure engine).
pub struct NoTransport;

#[async_trait]
impl Transport for NoTransport {
    async fn forward(
        &self,
        _call: ForwardCall<'_>,
    ) -> Result<ForwardResponse, (ErrorKind, String)> {
        Err((
            ErrorKind::BackendConnectionFailure,
            "no outbound client".into(),
        ))
    }

    async fn send(
        &self,
        _req: CallRequest,
        _timeout: Duration,
    ) -> Result<Message, (ErrorKind, String)> {
        Err((
            ErrorKind::BackendConnectionFailure,
            "no outbound client".into(),
        ))
    }

    fn clone_box(&self) -> std::sync::Arc<dyn Transport> {
        std::sync::Arc::new(NoTransport)
    }
}
