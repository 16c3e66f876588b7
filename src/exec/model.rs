//! The compiled gateway the engine runs: APIs, operations and their composed pipelines,
//! products, subscriptions, backends and limits. `gateway::compile` builds it once per load or
//! reload; it is shared behind an `ArcSwap` and never changes afterwards.

use std::sync::Arc;
use std::time::Duration;

use ahash::AHashMap;
use http::{HeaderName, Method};

use super::route::UrlTemplate;
use super::subscriptions::Subscriptions;
use crate::config::ProductState;
use crate::exec::policies::forward_request::ForwardRequest;
use crate::exec::Stmt;
use crate::net::url::BaseUrl;
use crate::upstream::{Backend, Certificates, ClientCert};

pub struct Gateway {
    pub name: String,
    /// What validate-client-certificate trusts (`trust`).
    pub client_trust: super::trust::ClientTrust,
    /// Continue or start a W3C trace per request and send `traceparent` on (`correlation`).
    pub trace_context: bool,
    /// The header that carries `context.RequestId` to the backend and the client.
    pub request_id_header: Option<http::HeaderName>,
    /// Where request traces are fetched: `<admin URL>/traces/` (`None` without an admin listener).
    pub trace_location: Option<String>,
    /// Bearer token of the admin listener's `/metrics`, `/config` and `/echo` (`admin.token`).
    pub admin_token: Option<Arc<str>>,
    pub apis: Vec<Api>,
    /// APIs by the lower-cased first segment of their path; APIs at the root separately.
    /// Routing looks only at these candidates, so its cost does not grow with the API count.
    pub api_index: AHashMap<String, Vec<usize>>,
    pub root_apis: Vec<usize>,
    pub backends: Vec<Backend>,
    pub backend_ids: AHashMap<String, usize>,
    pub products: Vec<Product>,
    pub subscriptions: Subscriptions,
    /// Global on-error: runs for errors before an API is matched.
    pub global_on_error: Arc<[Stmt]>,
    /// Configured client certificates: by id, and the id for each SHA-1 thumbprint.
    pub certificates: Certificates,
    pub thumbprints: AHashMap<String, String>,
    /// Proxies whose `X-Forwarded-For` is believed (address, prefix length).
    pub trusted_proxies: Vec<(std::net::IpAddr, u8)>,
    /// Add `X-Forwarded-*` to backend requests.
    pub forwarded_headers: bool,
    /// Configured certificates by id (public part; also those without a private key), for
    /// validate-jwt's `certificate-id` keys.
    pub certificate_x509: AHashMap<String, openssl::x509::X509>,
    pub jwt: JwtSettings,
    /// `schemas:` by id (validate-content `schema-id`).
    pub schemas: AHashMap<String, Arc<crate::config::contract::NamedSchema>>,
    /// `schemas:` that are XML Schemas (validate-content `validate-as="xml"`).
    pub xml_schemas: AHashMap<String, Arc<super::child::XmlSchema>>,
    /// The global policy's `<cross-domain>` content, served at `/crossdomain.xml`.
    pub cross_domain: Option<bytes::Bytes>,
    /// Values of secret named values (masked in traces).
    pub secrets: Vec<String>,
    pub limits: Limits,
    /// Where `authentication-managed-identity` gets tokens (`managed_identity`).
    pub managed_identity: Option<Arc<super::identity::TokenProvider>>,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_url_length: usize,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub header_read_timeout: std::time::Duration,
    pub keepalive_timeout: std::time::Duration,
    pub body_read_timeout: std::time::Duration,
}

#[derive(Clone, Debug)]
pub struct JwtSettings {
    pub keys_refresh: Duration,
    pub min_refetch: Duration,
    pub azure_ad_authority: String,
}

impl AsRef<[Backend]> for Gateway {
    fn as_ref(&self) -> &[Backend] {
        &self.backends
    }
}

impl Gateway {
    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies
            .iter()
            .any(|(net, len)| crate::net::cidr::contains(*net, *len, ip))
    }

    /// The caller's address: the TCP peer, or, when the peer is a trusted proxy, the
    /// right-most `X-Forwarded-For` entry that is not a trusted proxy (the left-most entry when
    /// all are trusted).
    pub fn client_ip(&self, peer: std::net::IpAddr, xff: &[&str]) -> std::net::IpAddr {
        if !self.is_trusted_proxy(peer) {
            return peer;
        }
        let hops: Vec<std::net::IpAddr> = xff
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse::<std::net::IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect();
        hops.iter()
            .rev()
            .find(|ip| !self.is_trusted_proxy(**ip))
            .or(hops.first())
            .copied()
            .unwrap_or(peer)
    }
}

pub struct Api {
    pub id: String,
    pub name: String,
    /// Normalised path prefix: `""` (root) or `/orders`.
    pub path: String,
    /// Lower-cased host names; empty = any host.
    pub hosts: Vec<String>,
    pub service: std::sync::Arc<BaseUrl>,
    pub service_backend: Option<usize>,
    pub subscription_required: bool,
    pub key_header: HeaderName,
    pub key_query: String,
    pub strip_key: bool,
    pub operations: Vec<Operation>,
    /// Products that contain this API (indices into `Gateway::products`).
    pub products: Vec<usize>,
    /// The open product (subscription not required) containing this API, if any.
    pub open_product: Option<usize>,
    /// Global + API on-error: runs for errors after the API match and before inbound.
    pub on_error: Arc<[Stmt]>,
    /// Response compression (the API's, else the top-level one); `None` when off.
    pub compression: Option<Arc<Compression>>,
    /// Query or header versioning: the requests this API takes among those for its path.
    pub version: Option<VersionRule>,
}

/// APIM's query or header versioning (a version set's scheme).
#[derive(Debug, Clone)]
pub struct VersionRule {
    pub by: VersionBy,
    pub value: String,
}

#[derive(Debug, Clone)]
pub enum VersionBy {
    Query(String),
    Header(HeaderName),
}

impl VersionRule {
    /// Whether the request names this version (values compare case-insensitively, as APIM's).
    pub fn matches(&self, headers: &http::HeaderMap, query: &str) -> bool {
        match &self.by {
            VersionBy::Header(h) => headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case(&self.value)),
            VersionBy::Query(name) => crate::codec::query::parse(query)
                .iter()
                .any(|(k, v)| k == name && v.eq_ignore_ascii_case(&self.value)),
        }
    }
}

/// How an API's responses are compressed.
#[derive(Debug)]
pub struct Compression {
    /// (algorithm, level), in the order of preference.
    pub algorithms: Vec<(crate::config::CompressionAlgorithm, u32)>,
    pub min_size: u64,
    /// Lower-case media types; `type/*` and `application/*+json` forms allowed.
    pub content_types: Vec<String>,
}

impl Compression {
    pub fn from_spec(s: &crate::config::CompressionSpec) -> Option<Arc<Compression>> {
        use crate::config::CompressionAlgorithm as A;
        if !s.enabled || s.algorithms.is_empty() {
            return None;
        }
        Some(Arc::new(Compression {
            algorithms: s
                .algorithms
                .iter()
                .map(|a| {
                    let level = s.level.unwrap_or(match a {
                        A::Gzip => 6,
                        A::Br => 5,
                        A::Zstd => 3,
                    });
                    (*a, level)
                })
                .collect(),
            min_size: s.min_size,
            content_types: s
                .content_types
                .iter()
                .map(|t| t.to_ascii_lowercase())
                .collect(),
        }))
    }

    /// Whether a response of this media type (parameters aside) and length is compressed.
    pub fn applies(&self, content_type: Option<&str>, length: Option<u64>) -> bool {
        if length.is_some_and(|n| n < self.min_size) {
            return false;
        }
        let Some(ct) = content_type else { return false };
        let ct = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let Some((ty, sub)) = ct.split_once('/') else {
            return false;
        };
        self.content_types.iter().any(|p| match p.split_once('/') {
            Some((pt, "*")) => pt == ty,
            Some((pt, ps)) => {
                pt == ty
                    && (ps == sub
                        || ps
                            .strip_prefix('*')
                            .is_some_and(|suffix| sub.ends_with(suffix)))
            }
            None => false,
        })
    }

    /// The algorithms to offer a client, from its `Accept-Encoding`: those it accepts (q > 0),
    /// most wanted first, ties in this API's order; `*` stands for every one not named.
    pub fn negotiate(&self, accept: &[u8]) -> Vec<crate::config::CompressionAlgorithm> {
        use crate::config::CompressionAlgorithm as A;
        let mut named: Vec<(String, f32)> = Vec::new();
        for item in accept.split(|&b| b == b',') {
            let item = String::from_utf8_lossy(item);
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .map(str::trim)
                        .map(str::to_string)
                })
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if !coding.is_empty() {
                named.push((coding, q));
            }
        }
        let token = |a: A| match a {
            A::Gzip => "gzip",
            A::Br => "br",
            A::Zstd => "zstd",
        };
        let star = named.iter().find(|(c, _)| c == "*").map(|(_, q)| *q);
        let mut out: Vec<(A, f32, usize)> = self
            .algorithms
            .iter()
            .enumerate()
            .filter_map(|(i, (a, _))| {
                let q = named
                    .iter()
                    .find(|(c, _)| c == token(*a))
                    .map(|(_, q)| *q)
                    .or(star)?;
                (q > 0.0).then_some((*a, q, i))
            })
            .collect();
        out.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.2.cmp(&y.2)));
        out.into_iter().map(|(a, _, _)| a).collect()
    }
}

pub struct Operation {
    pub id: String,
    pub name: String,
    /// `None` matches any method (`*`).
    pub method: Option<Method>,
    pub url_template: String,
    pub template: UrlTemplate,
    pub examples: Arc<[Example]>,
    /// Composed pipelines: index 0 without a product, `k + 1` for `Api::products[k]`.
    pub pipelines: Vec<Arc<Pipeline>>,
    /// Metric handles resolved on first use (label lookups off the request path).
    pub metrics: crate::observe::metrics::OperationMetrics,
    /// From the API's OpenAPI definition (validate-* policies); None without one.
    pub contract: Option<std::sync::Arc<crate::config::contract::Contract>>,
}

/// An example response for mock-response.
#[derive(Clone, Debug)]
pub struct Example {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// The effective policy of one (operation, product context), split for the proxy phases.
pub struct Pipeline {
    pub inbound: Vec<Stmt>,
    /// Backend statements before `forward-request`.
    pub backend_pre: Vec<Stmt>,
    pub forward: Option<Forward>,
    /// Backend statements after `forward-request` (run on the response).
    pub backend_post: Vec<Stmt>,
    pub outbound: Vec<Stmt>,
    pub on_error: Vec<Stmt>,
    /// Whether any statement replaces the request body (the proxy then rewrites framing).
    pub replaces_request_body: bool,
    /// Whether statements read the request body (it is buffered before inbound runs).
    pub needs_request_body: bool,
    /// Whether backend-after-forward or outbound statements read the response body (the
    /// gateway then forwards the request itself and buffers the response).
    pub needs_response_body: bool,
    /// Inbound has a `<cors>` (preflights are routed to this operation).
    pub has_cors: bool,
    /// forward-request sits inside `retry`: the engine runs the whole backend section
    /// (`backend_pre`) and forwards the buffered request itself, once per attempt.
    pub engine_backend: bool,
}

impl Pipeline {
    /// The `fail-on-error-status-code` rule of this pipeline's forward-request applied to a
    /// backend status.
    pub fn error_status(&self, status: u16) -> Option<super::PolicyError> {
        let fail = self
            .forward
            .as_ref()
            .is_some_and(|f| f.options.fail_on_error_status_code);
        super::backend::error_status(fail, status)
    }
}

pub struct Forward {
    pub options: ForwardRequest,
    pub stmt: Stmt,
}

pub struct Product {
    pub id: String,
    pub name: String,
    pub subscription_required: bool,
    pub state: ProductState,
    pub apis: Vec<usize>,
}

impl Gateway {
    /// Find the API for a host and path: the longest matching path prefix wins; among APIs of
    /// one path, a versioned one (query or header versioning) only when the request names its
    /// version, and then before an unversioned one.
    pub fn match_api(
        &self,
        host: Option<&str>,
        path: &str,
        headers: &http::HeaderMap,
        query: &str,
    ) -> Option<(usize, usize)> {
        let host = host.map(|h| {
            h.rsplit_once(':')
                .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
                .map_or(h, |(h, _)| h)
        });
        let mut best: Option<(usize, usize)> = None;
        let seg = first_segment(path);
        // Lower-case only when needed: no allocation for the usual lower-case path.
        let first: std::borrow::Cow<str> = if seg.bytes().any(|b| b.is_ascii_uppercase()) {
            seg.to_ascii_lowercase().into()
        } else {
            seg.into()
        };
        let candidates = self
            .api_index
            .get(first.as_ref())
            .into_iter()
            .flatten()
            .chain(self.root_apis.iter());
        for &i in candidates {
            let api = &self.apis[i];
            if !api.hosts.is_empty()
                && !host.is_some_and(|h| api.hosts.iter().any(|x| x.eq_ignore_ascii_case(h)))
            {
                continue;
            }
            let Some(rest) = strip_prefix_ci(path, &api.path) else {
                continue;
            };
            if !(rest.is_empty() || rest.starts_with('/')) {
                continue;
            }
            if api
                .version
                .as_ref()
                .is_some_and(|v| !v.matches(headers, query))
            {
                continue;
            }
            let better = match best {
                None => true,
                Some((b, _)) => {
                    let b = &self.apis[b];
                    api.path.len() > b.path.len()
                        || (api.path.len() == b.path.len()
                            && ((!api.hosts.is_empty() && b.hosts.is_empty())
                                || (api.version.is_some() && b.version.is_none())))
                }
            };
            if better {
                best = Some((i, api.path.len()));
            }
        }
        best
    }

    /// A configured client certificate, by id or thumbprint (a handle the adapter gives to
    /// the connector).
    pub fn certificate(
        &self,
        c: &crate::exec::policies::access::CertificateRef,
    ) -> Option<ClientCert> {
        let id = match c {
            crate::exec::policies::access::CertificateRef::Id(id) => id,
            crate::exec::policies::access::CertificateRef::Thumbprint(t) => {
                self.thumbprints.get(t)?
            }
        };
        self.certificates.get(id).cloned()
    }

    pub fn backend(&self, id: &str) -> Option<(usize, &Backend)> {
        self.backend_ids.get(id).map(|&i| (i, &self.backends[i]))
    }
}

/// `orders` of `/orders/v2/x`.
pub fn first_segment(path: &str) -> &str {
    let p = path.trim_start_matches('/');
    p.split('/').next().unwrap_or("")
}

/// The routing index of a list of APIs.
pub fn index_apis(apis: &[Api]) -> (AHashMap<String, Vec<usize>>, Vec<usize>) {
    let (mut index, mut root): (AHashMap<String, Vec<usize>>, Vec<usize>) = Default::default();
    for (i, a) in apis.iter().enumerate() {
        if a.path.is_empty() {
            root.push(i);
        } else {
            index
                .entry(first_segment(&a.path).to_ascii_lowercase())
                .or_default()
                .push(i);
        }
    }
    (index, root)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        s.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod compression_tests {
    use super::Compression;
    use crate::config::{CompressionAlgorithm as A, CompressionSpec};

    fn on() -> std::sync::Arc<Compression> {
        Compression::from_spec(&CompressionSpec {
            enabled: true,
            ..Default::default()
        })
        .unwrap_or_else(|| panic!("enabled"))
    }

    #[test]
    fn negotiation_weighs_q_values_then_the_configured_order() {
        let c = on();
        assert_eq!(c.negotiate(b"gzip, br"), vec![A::Br, A::Gzip]);
        assert_eq!(c.negotiate(b"gzip;q=0.9, br;q=0.1"), vec![A::Gzip, A::Br]);
        assert_eq!(c.negotiate(b"*;q=0.5, gzip;q=0"), vec![A::Br, A::Zstd]);
        assert_eq!(c.negotiate(b"identity"), vec![]);
        assert_eq!(c.negotiate(b"GZIP ; q=1.0"), vec![A::Gzip]);
        assert_eq!(c.negotiate(b""), vec![]);
        assert!(
            Compression::from_spec(&CompressionSpec::default()).is_none(),
            "off by default"
        );
    }

    #[test]
    fn media_types_and_sizes() {
        let c = on();
        assert!(c.applies(Some("application/json; charset=utf-8"), Some(5000)));
        assert!(c.applies(Some("Text/HTML"), None));
        assert!(c.applies(Some("application/vnd.api+json"), Some(2000)));
        assert!(!c.applies(Some("application/json"), Some(10)));
        assert!(!c.applies(Some("image/png"), Some(5000)));
        assert!(!c.applies(None, Some(5000)));
        assert!(!c.applies(Some("nonsense"), Some(5000)));
    }
}
