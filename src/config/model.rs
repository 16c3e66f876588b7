//! The raw configuration model: exactly what `conf/gatehouse.yaml` may say, parsed strictly
//! (`deny_unknown_fields` everywhere), with human durations and explicit defaults.

use serde::Deserialize;
use std::collections::BTreeMap;

use super::duration::HumanDuration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Instance-group name; namespaces shared state and appears in logs and metrics.
    #[serde(default = "default_gateway_name")]
    pub name: String,
    #[serde(default)]
    pub server: ServerSettings,
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub access_log: AccessLogTarget,
    #[serde(default)]
    pub policies: PolicyPaths,
    #[serde(default)]
    pub store: StoreSettings,
    #[serde(default)]
    pub named_values: BTreeMap<String, NamedValueSpec>,
    #[serde(default)]
    pub backends: Vec<BackendSpec>,
    /// Client certificates policies present by id (`authentication-certificate`).
    #[serde(default)]
    pub certificates: Vec<CertificateSpec>,
    #[serde(default)]
    pub apis: Vec<ApiSpec>,
    /// JSON Schemas validate-content names by `schema-id` (APIM's schema entities).
    #[serde(default)]
    pub schemas: BTreeMap<String, SchemaSpec>,
    #[serde(default)]
    pub products: Vec<ProductSpec>,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionSpec>,
    #[serde(default)]
    pub client_identity: ClientIdentitySpec,
    #[serde(default)]
    pub correlation: CorrelationSpec,
    #[serde(default)]
    pub trust: TrustSpec,
    /// Response compression for every API without its own `compression`.
    #[serde(default)]
    pub compression: CompressionSpec,
    /// OpenTelemetry export of request spans (off unless `endpoint` is set).
    #[serde(default)]
    pub otlp: OtlpSpec,
    #[serde(default)]
    pub jwt: JwtSettingsSpec,
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Where `authentication-managed-identity` gets its tokens off Azure.
    #[serde(default)]
    pub managed_identity: Option<ManagedIdentitySpec>,
    /// An Azure APIOps extract whose APIs, products, named values, backends, fragments and
    /// policies are served as if written here (`config::apiops`).
    #[serde(default)]
    pub apiops: Option<ApiopsSpec>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ApiopsSpec {
    /// The extract's folder (`apimartifacts/`), relative to this file.
    pub dir: String,
    /// Leave out the APIs gatehouse cannot serve (listed as warnings) instead of refusing.
    #[serde(default)]
    pub skip_unsupported: bool,
}

/// `authentication-managed-identity` off Azure: an OAuth 2.0 client-credentials token provider
/// (Entra ID or any other), with a client secret from a named value or a federated token file
/// (workload identity). The identity without `client-id` is this one; `identities` holds the
/// user-assigned ones, by the `client-id` the policies name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedIdentitySpec {
    /// The token endpoint (`https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`).
    pub token_url: String,
    pub client_id: String,
    /// The named value whose value is the client secret (make it a secret).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A file holding a federated token, sent as the client assertion (re-read per fetch).
    #[serde(default)]
    pub token_file: Option<String>,
    /// How `resource` is sent: `scope` (`<resource>/.default`, Entra v2, the default) or
    /// `resource` (Entra v1 and providers that take a resource).
    #[serde(default)]
    pub resource_as: ResourceParam,
    /// Tokens are renewed this long before they expire.
    #[serde(default = "default_refresh_before")]
    pub refresh_before: HumanDuration,
    /// Longest wait for the token endpoint.
    #[serde(default = "default_token_timeout")]
    pub timeout: HumanDuration,
    /// User-assigned identities: the policy's `client-id` -> its credential.
    #[serde(default)]
    pub identities: BTreeMap<String, IdentityCredentialSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityCredentialSpec {
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub token_file: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResourceParam {
    #[default]
    Scope,
    Resource,
}

fn default_refresh_before() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

fn default_token_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}

/// Request limits, checked before anything else runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Longest request target (path and query) in bytes: 414 beyond.
    #[serde(default = "default_max_url")]
    pub max_url_length: usize,
    /// Most request header lines: 431 beyond.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// Largest total of header names and values in bytes: 431 beyond.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Largest request body in bytes (0 = no limit): 413 beyond.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Time a new connection has to send its first request line and headers; the connection is
    /// closed beyond (10s).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// Time a kept-alive connection has, from the end of a response, to send its next request
    /// line and headers (idle wait included); the connection is closed beyond (60s).
    #[serde(default = "default_keepalive_timeout")]
    pub keepalive_timeout: HumanDuration,
    /// Longest wait for the next bytes of a request body: 408 beyond (30s).
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: HumanDuration,
}

fn default_header_read_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_keepalive_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(60))
}
fn default_body_read_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

fn default_max_url() -> usize {
    8192
}
fn default_max_headers() -> usize {
    100
}
fn default_max_header_bytes() -> usize {
    65536
}
fn default_max_body() -> u64 {
    100 * 1024 * 1024
}

impl Default for LimitsSpec {
    fn default() -> Self {
        LimitsSpec {
            max_url_length: default_max_url(),
            max_headers: default_max_headers(),
            max_header_bytes: default_max_header_bytes(),
            max_body_bytes: default_max_body(),
            header_read_timeout: default_header_read_timeout(),
            keepalive_timeout: default_keepalive_timeout(),
            body_read_timeout: default_body_read_timeout(),
        }
    }
}

/// validate-jwt's key fetching.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettingsSpec {
    /// How long discovery documents and JWKS are kept (1h, as APIM).
    #[serde(default = "default_jwks_refresh")]
    pub keys_refresh: HumanDuration,
    /// At most one refetch per key set within this time, on an unknown `kid` or a failed
    /// fetch (5m, as APIM).
    #[serde(default = "default_jwks_min_refetch")]
    pub min_refetch: HumanDuration,
    /// validate-azure-ad-token's authority (the discovery document is
    /// `<authority>/<tenant>/v2.0/.well-known/openid-configuration`).
    #[serde(default = "default_azure_authority")]
    pub azure_ad_authority: String,
}

fn default_jwks_refresh() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(3600))
}

fn default_jwks_min_refetch() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

fn default_azure_authority() -> String {
    "https://login.microsoftonline.com".to_string()
}

impl Default for JwtSettingsSpec {
    fn default() -> Self {
        JwtSettingsSpec {
            keys_refresh: default_jwks_refresh(),
            min_refetch: default_jwks_min_refetch(),
            azure_ad_authority: default_azure_authority(),
        }
    }
}

/// Who the caller is behind proxies, and what the backend is told about it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientIdentitySpec {
    /// Addresses or CIDR ranges of proxies in front of gatehouse. When the TCP peer is one of
    /// them, the caller is the right-most untrusted `X-Forwarded-For` address.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Append `X-Forwarded-For` and set `X-Forwarded-Proto` / `X-Forwarded-Host` on backend
    /// requests (default true).
    #[serde(default = "default_true")]
    pub forwarded_headers: bool,
}

impl Default for ClientIdentitySpec {
    fn default() -> Self {
        ClientIdentitySpec {
            trusted_proxies: Vec::new(),
            forwarded_headers: true,
        }
    }
}

/// Request correlation: W3C trace context and a request id header.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationSpec {
    /// Continue the caller's `traceparent` (or start a trace) and send it to backends and
    /// send-request calls (default true).
    #[serde(default = "default_true")]
    pub trace_context: bool,
    /// A header carrying `context.RequestId` to the backend and back to the client, e.g.
    /// `X-Request-Id` (none by default).
    #[serde(default)]
    pub request_id_header: Option<String>,
}

impl Default for CorrelationSpec {
    fn default() -> Self {
        CorrelationSpec {
            trace_context: true,
            request_id_header: None,
        }
    }
}

fn default_gateway_name() -> String {
    "gatehouse".to_string()
}

/// Pingora server settings (the subset an operator tunes).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    #[serde(default = "default_threads")]
    pub threads: usize,
    #[serde(default = "default_true")]
    pub work_stealing: bool,
    #[serde(default = "default_pid_file")]
    pub pid_file: String,
    #[serde(default = "default_upgrade_sock")]
    pub upgrade_sock: String,
    /// How long to keep accepting after SIGTERM / SIGQUIT before closing listeners (5s).
    #[serde(default = "default_grace")]
    pub grace_period: HumanDuration,
    /// How long in-flight requests get after the grace period (10s).
    #[serde(default = "default_shutdown")]
    pub graceful_shutdown_timeout: HumanDuration,
    #[serde(default)]
    pub error_log: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default = "default_keepalive_pool")]
    pub upstream_keepalive_pool_size: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            threads: default_threads(),
            work_stealing: true,
            pid_file: default_pid_file(),
            upgrade_sock: default_upgrade_sock(),
            grace_period: default_grace(),
            graceful_shutdown_timeout: default_shutdown(),
            error_log: None,
            user: None,
            group: None,
            upstream_keepalive_pool_size: default_keepalive_pool(),
        }
    }
}

fn default_grace() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}
fn default_shutdown() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_threads() -> usize {
    1
}
fn default_true() -> bool {
    true
}
fn default_pid_file() -> String {
    "/tmp/gatehouse.pid".into()
}
fn default_upgrade_sock() -> String {
    "/tmp/gatehouse_upgrade.sock".into()
}
fn default_keepalive_pool() -> usize {
    128
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// `host:port`, e.g. `0.0.0.0:8080`.
    pub address: String,
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    /// Most connections open at once on this listener; a connection beyond gets 503 and is
    /// closed (10000).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Accept HTTP/2: offered by ALPN on a TLS listener, h2c with prior knowledge on a plain
    /// one (HTTP/1.1 keeps working on both). Off by default.
    #[serde(default)]
    pub http2: bool,
}

fn default_max_connections() -> usize {
    10_000
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate (then its chain) and key: the default certificate.
    pub cert: String,
    pub key: String,
    /// More certificates, chosen by the name the client asks for (SNI): each serves the DNS
    /// names of its certificate (subject alternative names, else the common name;
    /// `*.example.com` covers one label), or the `names` given.
    #[serde(default)]
    pub certificates: Vec<ListenerCertificate>,
    /// Ask clients for a certificate: `none` (default), `request` (a client may send none) or
    /// `require` (the handshake fails without one).
    #[serde(default)]
    pub client_cert: ClientCertMode,
    /// PEM CA certificates: named to clients as acceptable issuers, and a client certificate
    /// must chain to one of them (without it any certificate is taken and policies decide:
    /// validate-client-certificate, `context.Request.Certificate`).
    #[serde(default)]
    pub client_ca: Option<String>,
}

impl ListenerTls {
    /// Every file the listener reads.
    pub fn files(&self) -> impl Iterator<Item = &String> {
        [&self.cert, &self.key]
            .into_iter()
            .chain(self.certificates.iter().flat_map(|c| [&c.cert, &c.key]))
            .chain(&self.client_ca)
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ListenerCertificate {
    pub cert: String,
    pub key: String,
    #[serde(default)]
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertMode {
    #[default]
    None,
    Request,
    Require,
}

/// What validate-client-certificate trusts besides the system's CAs (APIM's CA certificates),
/// and the revocation lists it checks.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TrustSpec {
    #[serde(default)]
    pub ca_files: Vec<String>,
    #[serde(default)]
    pub crl_files: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// `host:port`; loopback by default. Empty string disables the admin listener.
    #[serde(default = "default_admin_address")]
    pub address: String,
    /// Serve the demo echo endpoint at `/echo/...` (reflects the request as JSON).
    #[serde(default)]
    pub echo: bool,
    /// The named value whose value is the bearer token `/metrics`, `/config` and `/echo`
    /// require (`Authorization: Bearer ...`); required when `address` is not loopback.
    #[serde(default)]
    pub token: Option<String>,
    /// The URL clients reach the admin listener at: request traces are offered there
    /// (`Ocp-Apim-Trace-Location`). Default `http://<address>`.
    #[serde(default)]
    pub public_url: Option<String>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            address: default_admin_address(),
            echo: false,
            token: None,
            public_url: None,
        }
    }
}

fn default_admin_address() -> String {
    "127.0.0.1:9180".into()
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogTarget {
    #[default]
    Stdout,
    Stderr,
    Off,
}

/// Where rate-limit, quota and cache state lives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `memory` (default): state local to this instance.
    #[serde(default)]
    pub r#type: StoreType,
    /// Most keys the in-memory store keeps (oldest evicted first).
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// `redis://host:port/db` (type redis).
    #[serde(default)]
    pub url: Option<String>,
    /// Longest wait for one Redis call before the failure mode applies.
    #[serde(default = "default_store_timeout")]
    pub timeout: HumanDuration,
    /// While Redis is unreachable: `local` (count in memory), `fail-open`, `fail-closed`.
    #[serde(default)]
    pub failure_mode: StoreFailureMode,
    /// Redis ACL user (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// The named value whose value is the Redis password (make it a secret).
    #[serde(default)]
    pub password: Option<String>,
    /// TLS options for a `rediss://` URL.
    #[serde(default)]
    pub tls: Option<StoreTls>,
    /// Redis Sentinel: the sentinels name the master (instead of `url`).
    #[serde(default)]
    pub sentinel: Option<SentinelSpec>,
    /// Redis Cluster: some of its nodes (instead of `url`).
    #[serde(default)]
    pub cluster: Option<ClusterSpec>,
    /// `exact` (default): every rate-limit hit is counted in Redis; `lease`: hits are reserved
    /// `lease.size` at a time and admitted locally (fewer round trips, a bounded overshoot).
    #[serde(default)]
    pub sync: StoreSync,
    #[serde(default)]
    pub lease: LeaseSpec,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreSync {
    #[default]
    Exact,
    Lease,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct LeaseSpec {
    /// Hits reserved per lease (10).
    #[serde(default = "default_lease_size")]
    pub size: u64,
    /// Longest a lease is used (1s); hits left unused then are given up.
    #[serde(default = "default_lease_interval")]
    pub interval: HumanDuration,
}

impl Default for LeaseSpec {
    fn default() -> Self {
        LeaseSpec {
            size: default_lease_size(),
            interval: default_lease_interval(),
        }
    }
}

fn default_lease_size() -> u64 {
    10
}

fn default_lease_interval() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(1))
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Nodes as `host:port`; the others are discovered from them.
    pub nodes: Vec<String>,
    /// Reach the nodes over TLS (`store.tls` applies).
    #[serde(default)]
    pub tls: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SentinelSpec {
    /// The monitored master's name (`sentinel monitor <name> ...`).
    pub master_name: String,
    /// Sentinels as `host:port`.
    pub nodes: Vec<String>,
    /// Reach the sentinels and the master they name over TLS (`store.tls` applies to both).
    #[serde(default)]
    pub tls: bool,
    /// The sentinels' own ACL user and password (the named value's name), when they ask for
    /// one; `store.username` / `store.password` are the master's.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// TLS to Redis (`rediss://`): the CAs to trust instead of the system's, and a client
/// certificate when Redis asks for one.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct StoreTls {
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub cert_file: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            r#type: StoreType::Memory,
            max_keys: default_max_keys(),
            url: None,
            timeout: default_store_timeout(),
            failure_mode: StoreFailureMode::Local,
            username: None,
            password: None,
            tls: None,
            sentinel: None,
            cluster: None,
            sync: StoreSync::Exact,
            lease: LeaseSpec::default(),
        }
    }
}

fn default_store_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(100))
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StoreFailureMode {
    #[default]
    Local,
    FailOpen,
    FailClosed,
}

fn default_max_keys() -> usize {
    100_000
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreType {
    #[default]
    Memory,
    Redis,
}

/// Where the policy documents live, relative to the configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPaths {
    #[serde(default = "default_policy_dir")]
    pub dir: String,
}

impl Default for PolicyPaths {
    fn default() -> Self {
        PolicyPaths {
            dir: default_policy_dir(),
        }
    }
}

fn default_policy_dir() -> String {
    "../policies".into()
}

/// A named value: plain text, or a secret read from the environment or a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSpec {
    /// A JSON Schema document (JSON or YAML), relative to the configuration.
    pub file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedValueSpec {
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    pub id: String,
    /// Base URL (single backends; a pool's is ignored).
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub title: Option<String>,
    /// Informational (ARM's `description`).
    #[serde(default)]
    pub description: Option<String>,
    /// ARM's `protocol`: `http` (default) or `soap` (SOAP pass-through, forwarded as HTTP).
    #[serde(default)]
    pub protocol: Option<String>,
    /// ARM's `resourceId` (the Function or Logic App behind it): informational.
    #[serde(default, alias = "resourceId")]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub credentials: Credentials,
    #[serde(default)]
    pub tls: BackendTls,
    /// Time allowed to establish the TCP (and TLS) connection.
    #[serde(default)]
    pub connect_timeout: Option<HumanDuration>,
    /// Default time to wait for response headers, when forward-request gives none.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// How long an idle upstream connection to this backend is kept for reuse (default 60s;
    /// `0s` closes it after each request).
    #[serde(default)]
    pub keepalive_timeout: Option<HumanDuration>,
    /// `single` (default) or `pool`.
    #[serde(default, rename = "type")]
    pub kind: BackendKind,
    /// Pool members (`type: pool` only).
    #[serde(default)]
    pub pool: Option<PoolSpec>,
    /// APIM circuit breaker: exactly one rule.
    #[serde(default, alias = "circuitBreaker")]
    pub circuit_breaker: Option<CircuitBreakerSpec>,
    /// Active health check, run in the background.
    #[serde(default)]
    pub health_check: Option<HealthCheckSpec>,
    /// HTTP forward proxy for this backend (plain-HTTP backends).
    #[serde(default)]
    pub proxy: Option<ProxySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// `http://host:port`
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    #[serde(alias = "Single")]
    Single,
    #[serde(alias = "Pool")]
    Pool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub services: Vec<PoolMemberSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolMemberSpec {
    /// A backend id, or its ARM resource id (`/subscriptions/.../backends/<id>`).
    pub id: String,
    /// Lower numbers are tried first.
    #[serde(default)]
    pub priority: Option<u32>,
    #[serde(default)]
    pub weight: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerSpec {
    pub rules: Vec<BreakerRuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerRuleSpec {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(alias = "failureCondition")]
    pub failure_condition: FailureConditionSpec,
    #[serde(alias = "tripDuration")]
    pub trip_duration: HumanDuration,
    #[serde(default, alias = "acceptRetryAfter")]
    pub accept_retry_after: bool,
    /// Let one probe request through after the trip duration and close only if it succeeds
    /// (gatehouse's addition; APIM documents none). Default true.
    #[serde(default = "default_true")]
    pub half_open: bool,
    /// Share trips with every instance on the same Redis store (gatehouse's addition; APIM
    /// keeps a breaker per instance). Default false.
    #[serde(default)]
    pub shared: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureConditionSpec {
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub percentage: Option<u32>,
    pub interval: HumanDuration,
    #[serde(default, alias = "statusCodeRanges")]
    pub status_code_ranges: Vec<StatusRangeSpec>,
    #[serde(default, alias = "errorReasons")]
    pub error_reasons: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRangeSpec {
    pub min: u16,
    pub max: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// `http` (default) or `tcp`.
    #[serde(default)]
    pub kind: HealthCheckKind,
    /// Request path for `http` checks.
    #[serde(default = "default_health_path")]
    pub path: String,
    /// Statuses that count as healthy (default 200).
    #[serde(default)]
    pub expected_statuses: Vec<u16>,
    #[serde(default)]
    pub interval: Option<HumanDuration>,
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Consecutive passes to turn healthy again (default 1).
    #[serde(default)]
    pub healthy_threshold: Option<u32>,
    /// Consecutive failures to turn unhealthy (default 1).
    #[serde(default)]
    pub unhealthy_threshold: Option<u32>,
}

fn default_health_path() -> String {
    "/".to_string()
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckKind {
    #[default]
    Http,
    Tcp,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(default, alias = "header")]
    pub headers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub query: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub authorization: Option<AuthorizationCredential>,
    /// ARM's `certificate`: client certificates for the backend by SHA-1 thumbprint, resolved
    /// against `certificates`.
    #[serde(default, alias = "certificate")]
    pub certificates: Vec<String>,
    /// ARM's `certificateIds`: the same by id (a `certificates` id, or its ARM resource id);
    /// these win over thumbprints.
    #[serde(default, alias = "certificateIds")]
    pub certificate_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationCredential {
    pub scheme: String,
    pub parameter: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTls {
    #[serde(
        default = "default_true",
        alias = "validateCertificateChain",
        alias = "validate_certificate_chain"
    )]
    pub verify_chain: bool,
    #[serde(
        default = "default_true",
        alias = "validateCertificateName",
        alias = "validate_certificate_name"
    )]
    pub verify_name: bool,
    /// Server name to send (SNI); defaults to the URL's host.
    #[serde(default)]
    pub sni: Option<String>,
    /// PEM file of CA certificates trusted for this backend (instead of the system's).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM client certificate and key presented to the backend (mTLS).
    #[serde(default)]
    pub client_cert_file: Option<String>,
    #[serde(default)]
    pub client_key_file: Option<String>,
}

impl Default for BackendTls {
    fn default() -> Self {
        BackendTls {
            verify_chain: true,
            verify_name: true,
            sni: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// URL suffix, e.g. `orders` serves `/orders/...`. Empty serves the root.
    pub path: String,
    /// Host names this API answers on; empty = any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub service_url: Option<String>,
    /// A backend id used as the API's service.
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default = "default_true")]
    pub subscription_required: bool,
    #[serde(default)]
    pub subscription_key: SubscriptionKeyNames,
    /// Remove the subscription key header and query parameter before forwarding.
    #[serde(default)]
    pub strip_subscription_key: bool,
    #[serde(default)]
    pub operations: Vec<OperationSpec>,
    /// An OpenAPI 3.0 / 3.1 or Swagger 2.0 definition (YAML or JSON, relative to this file)
    /// whose paths become operations (`config::openapi`).
    #[serde(default)]
    pub openapi: Option<String>,
    /// Response compression for this API (replaces the top-level `compression`).
    #[serde(default)]
    pub compression: Option<CompressionSpec>,
    /// APIM's query or header versioning: this API serves the requests that name `version` in
    /// the query parameter or header given (other APIs may share its path).
    #[serde(default)]
    pub version: Option<ApiVersionSpec>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ApiVersionSpec {
    /// The version this API is (`v1`).
    pub value: String,
    /// The query parameter that names it (`api-version`), or
    #[serde(default)]
    pub query: Option<String>,
    /// the header that names it (`Api-Version`).
    #[serde(default)]
    pub header: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSpec {
    /// OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `service.name` of the spans (default: the top-level `name`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// Headers sent with each export (a collector's credentials).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Longest a span waits before its batch is sent (1s).
    #[serde(default = "default_batch_delay")]
    pub batch_delay: HumanDuration,
    /// Longest one export waits for the collector (5s).
    #[serde(default = "default_otlp_timeout")]
    pub timeout: HumanDuration,
}

impl Default for OtlpSpec {
    fn default() -> Self {
        OtlpSpec {
            endpoint: None,
            service_name: None,
            headers: BTreeMap::new(),
            batch_delay: default_batch_delay(),
            timeout: default_otlp_timeout(),
        }
    }
}

fn default_batch_delay() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(1))
}

fn default_otlp_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}

/// Compression of responses the client accepts compressed (off by default).
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CompressionSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Offered in this order of preference when the client weighs them alike.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<CompressionAlgorithm>,
    /// One level for every algorithm (its own scale); else gzip 6, br 5, zstd 3.
    #[serde(default)]
    pub level: Option<u32>,
    /// Responses whose `Content-Length` is below this are sent as they are (1024).
    #[serde(default = "default_min_size")]
    pub min_size: u64,
    /// Media types compressed (`type/*` allowed); others are sent as they are.
    #[serde(default = "default_compressible")]
    pub content_types: Vec<String>,
}

impl Default for CompressionSpec {
    fn default() -> Self {
        CompressionSpec {
            enabled: false,
            algorithms: default_algorithms(),
            level: None,
            min_size: default_min_size(),
            content_types: default_compressible(),
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CompressionAlgorithm {
    Gzip,
    Br,
    Zstd,
}

fn default_algorithms() -> Vec<CompressionAlgorithm> {
    vec![
        CompressionAlgorithm::Br,
        CompressionAlgorithm::Zstd,
        CompressionAlgorithm::Gzip,
    ]
}

fn default_min_size() -> u64 {
    1024
}

fn default_compressible() -> Vec<String> {
    [
        "text/*",
        "application/json",
        "application/*+json",
        "application/xml",
        "application/*+xml",
        "application/javascript",
        "application/x-javascript",
        "image/svg+xml",
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeyNames {
    #[serde(default = "default_key_header")]
    pub header: String,
    #[serde(default = "default_key_query")]
    pub query: String,
}

impl Default for SubscriptionKeyNames {
    fn default() -> Self {
        SubscriptionKeyNames {
            header: default_key_header(),
            query: default_key_query(),
        }
    }
}

fn default_key_header() -> String {
    "Ocp-Apim-Subscription-Key".into()
}
fn default_key_query() -> String {
    "subscription-key".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSpec {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// HTTP method, or `*` for any.
    pub method: String,
    pub url_template: String,
    /// Example responses, used by `mock-response`.
    #[serde(default)]
    pub examples: Vec<ExampleSpec>,
    /// From the API's OpenAPI definition: what the operation takes and answers.
    #[serde(skip)]
    pub contract: Option<std::sync::Arc<super::contract::Contract>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleSpec {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default = "default_content_type")]
    pub content_type: String,
    pub body: String,
}

fn default_status() -> u16 {
    200
}
fn default_content_type() -> String {
    "application/json".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSpec {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub apis: Vec<String>,
    #[serde(default = "default_true")]
    pub subscription_required: bool,
    #[serde(default)]
    pub state: ProductState,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ProductState {
    #[default]
    Published,
    NotPublished,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSpec {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `product:<id>`, `api:<id>`, `all-apis`, or `all-access` (may be left out when an APIOps
    /// extract holds the subscription).
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub primary_key: Option<String>,
    #[serde(default)]
    pub secondary_key: Option<String>,
    #[serde(default)]
    pub state: SubscriptionState,
    #[serde(default)]
    pub allow_tracing: bool,
    /// When the subscription started (`yyyy-MM-ddTHH:mm:ssZ`); per-subscription quota windows
    /// are aligned to it. Default 0001-01-01T00:00:00Z.
    #[serde(default)]
    pub start_date: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionState {
    #[default]
    Active,
    Suspended,
    Submitted,
    Rejected,
    Cancelled,
    Expired,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSpec {
    pub id: String,
    /// PEM certificate (chain) and private key. Without a key the certificate can only be
    /// used to verify (validate-jwt `certificate-id`).
    pub cert_file: String,
    #[serde(default)]
    pub key_file: Option<String>,
}

impl SubscriptionState {
    pub fn name(self) -> &'static str {
        match self {
            SubscriptionState::Active => "active",
            SubscriptionState::Suspended => "suspended",
            SubscriptionState::Submitted => "submitted",
            SubscriptionState::Rejected => "rejected",
            SubscriptionState::Cancelled => "cancelled",
            SubscriptionState::Expired => "expired",
        }
    }
}
