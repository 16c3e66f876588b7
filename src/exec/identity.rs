//! `authentication-managed-identity` off Azure: access tokens from an OAuth 2.0 token endpoint
//! by the client-credentials grant (Entra ID or any provider), with a client secret or a
//! federated token file (workload identity: the file's token is the client assertion).
//!
//! Tokens are kept per (identity, resource) until `refresh_before` ahead of their expiry; the
//! requests that find no usable token wait for one fetch (single flight), so the provider sees
//! one request per identity and resource however busy the gateway is. At most `MAX_ENTRIES`
//! (identity, resource) pairs are kept (a resource can come from an expression): past that,
//! expired entries are dropped, and a new pair is fetched without being kept. Neither the
//! secret nor a token reaches a log or an error message.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::transport::{CallRequest, Transport};
use super::ErrorKind;

const MAX_ENTRIES: usize = 1000;
/// Largest token endpoint answer and token file read.
const MAX_BODY: usize = 64 * 1024;

/// How an identity proves itself to the token endpoint.
#[derive(Clone)]
pub enum Credential {
    Secret(String),
    /// A federated token, re-read for every fetch (it rotates).
    TokenFile(PathBuf),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret(***)"),
            Credential::TokenFile(p) => write!(f, "TokenFile({})", p.display()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Identity {
    pub client_id: String,
    pub credential: Credential,
}

/// How `resource` is sent to the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceParam {
    /// `scope=<resource>/.default` (Entra v2).
    Scope,
    /// `resource=<resource>` (Entra v1).
    Resource,
}

type Token = (Arc<str>, Instant);

#[derive(Default)]
struct Entry {
    token: Mutex<Option<Token>>,
    fill: tokio::sync::Mutex<()>,
}

/// The configured token provider (`managed_identity`).
#[derive(Debug)]
pub struct TokenProvider {
    pub token_url: String,
    /// The system-assigned identity (a policy without `client-id`).
    pub default: Identity,
    /// User-assigned identities by the `client-id` policies name.
    pub identities: HashMap<String, Identity>,
    pub resource_as: ResourceParam,
    pub refresh_before: Duration,
    pub timeout: Duration,
    cache: Mutex<HashMap<(String, String), Arc<Entry>>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entry")
    }
}

/// Why no token: the error's kind and a message safe to show (no secret, no token).
pub type TokenError = (ErrorKind, String);

impl TokenProvider {
    pub fn new(
        token_url: String,
        default: Identity,
        identities: HashMap<String, Identity>,
        resource_as: ResourceParam,
        refresh_before: Duration,
        timeout: Duration,
    ) -> TokenProvider {
        TokenProvider {
            token_url,
            default,
            identities,
            resource_as,
            refresh_before,
            timeout,
            cache: Mutex::default(),
            fetches: Default::default(),
        }
    }

    /// The identity a policy's `client-id` names (`None`: the default one).
    pub fn identity(&self, client_id: Option<&str>) -> Option<&Identity> {
        match client_id {
            None => Some(&self.default),
            Some(c) if c == self.default.client_id => Some(&self.default),
            Some(c) => self.identities.get(c),
        }
    }

    /// Token requests sent so far (for tests and diagnostics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn entry(&self, key: (String, String)) -> Option<Arc<Entry>> {
        let mut m = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = m.get(&key) {
            return Some(e.clone());
        }
        if m.len() >= MAX_ENTRIES {
            let now = Instant::now();
            m.retain(|_, e| {
                e.token
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .is_some_and(|(_, until)| *until > now)
            });
            if m.len() >= MAX_ENTRIES {
                return None;
            }
        }
        Some(m.entry(key).or_default().clone())
    }

    /// A token for `resource` as the identity `client_id` names, from the cache or fetched.
    pub async fn token(
        &self,
        client_id: Option<&str>,
        resource: &str,
        transport: &dyn Transport,
    ) -> Result<Arc<str>, TokenError> {
        let identity = self.identity(client_id).ok_or_else(|| {
            (
                ErrorKind::TokenAcquisitionFailure,
                format!(
                    "no managed identity with client-id {:?} is configured",
                    client_id.unwrap_or_default()
                ),
            )
        })?;
        let Some(e) = self.entry((identity.client_id.clone(), resource.to_string())) else {
            return Ok(self.fetch(identity, resource, transport).await?.0);
        };
        let usable = |e: &Entry| {
            e.token
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .filter(|(_, until)| Instant::now() < *until)
                .map(|(t, _)| t.clone())
        };
        if let Some(t) = usable(&e) {
            return Ok(t);
        }
        let _one = e.fill.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(t) = usable(&e) {
            return Ok(t);
        }
        let (token, until) = self.fetch(identity, resource, transport).await?;
        *e.token.lock().unwrap_or_else(|p| p.into_inner()) = Some((token.clone(), until));
        Ok(token)
    }

    /// One token request; the token and until when it may be used.
    async fn fetch(
        &self,
        identity: &Identity,
        resource: &str,
        transport: &dyn Transport,
    ) -> Result<Token, TokenError> {
        let fail = |m: String| (ErrorKind::TokenAcquisitionFailure, m);
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let assertion = match &identity.credential {
            Credential::Secret(_) => None,
            Credential::TokenFile(p) => Some(read_token_file(p.clone()).await.map_err(fail)?),
        };
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            form.append_pair("client_id", &identity.client_id);
            match (&identity.credential, &assertion) {
                (Credential::Secret(s), _) => {
                    form.append_pair("client_secret", s);
                }
                (_, Some(a)) => {
                    form.append_pair(
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    );
                    form.append_pair("client_assertion", a);
                }
                _ => {}
            }
            match self.resource_as {
                ResourceParam::Scope => form.append_pair("scope", &scope_of(resource)),
                ResourceParam::Resource => form.append_pair("resource", resource),
            };
            form.finish()
        };
        let req = CallRequest {
            method: http::Method::POST,
            url: self.token_url.clone(),
            headers: vec![
                (
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/x-www-form-urlencoded"),
                ),
                (
                    http::header::ACCEPT,
                    http::HeaderValue::from_static("application/json"),
                ),
            ],
            body: bytes::Bytes::from(form),
            client_cert: None,
            proxy: None,
        };
        let started = Instant::now();
        let resp = transport
            .send(req, self.timeout)
            .await
            .map_err(|(_, m)| fail(format!("the token endpoint could not be reached: {m}")))?;
        let body = resp.body.as_deref().unwrap_or_default();
        if !(200..300).contains(&resp.status) {
            // The provider's `error` code says why (e.g. invalid_client) without any secret.
            let code =
                serde_json::from_slice::<serde_json::Value>(&body[..body.len().min(MAX_BODY)])
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(clean))
                    .unwrap_or_default();
            return Err(fail(format!(
                "the token endpoint answered {}{}",
                resp.status,
                if code.is_empty() {
                    String::new()
                } else {
                    format!(" ({code})")
                }
            )));
        }
        if body.len() > MAX_BODY {
            return Err(fail("the token endpoint's answer is too large".into()));
        }
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|_| fail("the token endpoint's answer is not JSON".into()))?;
        let token = v
            .get("access_token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty() && t.bytes().all(|b| (0x21..0x7f).contains(&b)))
            .ok_or_else(|| fail("the token endpoint's answer has no usable access_token".into()))?;
        // `expires_in` is a number (RFC 6749) or, from Entra v1, a string.
        let lifetime = match v.get("expires_in") {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .map_or(Duration::from_secs(300), Duration::from_secs);
        // Renew `refresh_before` ahead of the expiry; a short-lived token is kept half its life.
        let keep = if lifetime > self.refresh_before * 2 {
            lifetime - self.refresh_before
        } else {
            lifetime / 2
        };
        Ok((Arc::from(token), started + keep))
    }
}

/// `<resource>/.default`, unless the resource already is a scope.
fn scope_of(resource: &str) -> String {
    if resource.ends_with("/.default") {
        resource.to_string()
    } else {
        format!("{resource}/.default")
    }
}

/// Printable ASCII only, at most 64 characters (a provider's error code, shown in messages).
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

/// The federated token (read off the async threads: it is a file).
async fn read_token_file(p: PathBuf) -> Result<String, String> {
    tokio::task::spawn_blocking(move || read_token_file_now(&p))
        .await
        .map_err(|e| format!("cannot read the token file: {e}"))?
}

fn read_token_file_now(p: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(p)
        .map_err(|e| format!("cannot read the token file {}: {e}", p.display()))?;
    let mut buf = Vec::new();
    f.take(MAX_BODY as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read the token file {}: {e}", p.display()))?;
    if buf.len() > MAX_BODY {
        return Err(format!("the token file {} is too large", p.display()));
    }
    let t = String::from_utf8(buf)
        .map_err(|_| format!("the token file {} is not text", p.display()))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(format!("the token file {} is empty", p.display()));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_become_scopes() {
        assert_eq!(
            scope_of("https://graph.microsoft.com"),
            "https://graph.microsoft.com/.default"
        );
        assert_eq!(scope_of("api://x/.default"), "api://x/.default");
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let c = Credential::Secret("s3cr3t-value".into());
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn provider_error_codes_are_cleaned() {
        assert_eq!(
            clean("invalid_client\r\nX-Injected: 1"),
            "invalid_clientX-Injected:1"
        );
        assert_eq!(clean(&"a".repeat(100)).len(), 64);
    }
}
