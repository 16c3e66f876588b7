//! A backend entity as compiled: where it is, how to connect, and its breaker/health state.

use std::sync::Arc;
use std::time::Duration;

use ahash::AHashMap;
use http::{HeaderName, HeaderValue};

use crate::net::proxy::ForwardProxy;
use crate::net::url::BaseUrl;

/// Time to connect to a backend when its entity sets none (and for base-URL targets).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle time an upstream connection is kept for reuse when the backend sets none.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time to the response headers when neither forward-request nor the backend sets one.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);

/// Configured client certificates by id (key material for mTLS; the engine refers to them by
/// id and the adapter resolves the id here).
pub type Certificates = AHashMap<String, ClientCert>;
pub type ClientCert = Arc<pingora::utils::tls::CertKey>;

pub struct Backend {
    pub id: String,
    pub url: Arc<BaseUrl>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub query: Vec<(String, String)>,
    pub authorization: Option<HeaderValue>,
    pub verify_cert: bool,
    pub verify_hostname: bool,
    pub sni: String,
    pub connect_timeout: Duration,
    pub timeout: Option<Duration>,
    /// Idle time an upstream connection is kept for reuse.
    pub keepalive_timeout: Duration,
    /// Single backend or pool (members are indices into `Gateway::backends`).
    pub kind: super::Kind,
    /// Breaker and health state (kept across reloads when unchanged).
    pub state: Arc<super::BackendState>,
    pub health: Option<super::health::HealthSpec>,
    /// Trusted CA certificates for this backend (instead of the system's).
    pub ca: Option<Arc<Box<[openssl::x509::X509]>>>,
    /// Client certificate presented to the backend (mTLS).
    pub client_cert: Option<ClientCert>,
    /// HTTP forward proxy (plain-HTTP backends only).
    pub proxy: Option<ForwardProxy>,
}

impl Backend {
    pub fn is_pool(&self) -> bool {
        matches!(self.kind, super::Kind::Pool(_))
    }
}

/// Key material for mTLS from a certificate chain (leaf first) and its private key.
pub fn client_cert(
    chain: Vec<openssl::x509::X509>,
    key: openssl::pkey::PKey<openssl::pkey::Private>,
) -> ClientCert {
    Arc::new(pingora::utils::tls::CertKey::new(chain, key))
}
