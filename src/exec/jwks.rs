//! Signing keys from OpenID Connect discovery for validate-jwt: the discovery document and its
//! `jwks_uri` are fetched through the gateway's transport client and kept for `keys_refresh`
//! (1 h). A refetch happens when the keys are older than that, or when a token names a `kid`
//! the set lacks, at most once per `min_refetch` (5 min) per key set; a failed fetch keeps the
//! previous keys (stale-if-error) and also waits `min_refetch`. Concurrent requests that need
//! a fetch wait for one (single flight), so the identity provider sees one request per key set.

use crate::diag::Invalid;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::DecodingKey;

use super::transport::{CallRequest, Transport};

pub use crate::codec::jwk::{Family, Key};

#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
    pub issuer: Option<String>,
}

impl KeySet {
    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

#[derive(Default)]
struct Entry {
    set: Mutex<Option<(Arc<KeySet>, Instant)>>,
    last_attempt: Mutex<Option<Instant>>,
    fill: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
}

fn entry(url: &str) -> Arc<Entry> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Entry>>>> = OnceLock::new();
    let m = CACHE.get_or_init(Default::default);
    let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
    g.entry(url.to_string()).or_default().clone()
}

fn current(e: &Entry) -> Option<(Arc<KeySet>, Instant)> {
    e.set.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The keys of a discovery document, fetching when needed (see the module comment).
pub async fn keys(
    url: &str,
    transport: &dyn Transport,
    refresh: Duration,
    min_refetch: Duration,
    kid: Option<&str>,
) -> Result<Arc<KeySet>, Invalid> {
    let e = entry(url);
    let needs = |cur: &Option<(Arc<KeySet>, Instant)>| match cur {
        None => true,
        Some((set, at)) => at.elapsed() >= refresh || kid.is_some_and(|k| !set.has_kid(k)),
    };
    let may_fetch = |e: &Entry| {
        e.last_attempt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|t| t.elapsed() >= min_refetch)
    };
    let cur = current(&e);
    if !needs(&cur) || !may_fetch(&e) {
        return cur.map(|(s, _)| s).ok_or_else(|| {
            crate::invalid!(
                "the keys of {url} could not be fetched; next attempt after {min_refetch:?}"
            )
        });
    }
    let _one = e.fill.lock().await;
    // Another request may have fetched while this one waited.
    let cur = current(&e);
    if !needs(&cur) || !may_fetch(&e) {
        return cur
            .map(|(s, _)| s)
            .ok_or_else(|| crate::invalid!("the keys of {url} could not be fetched"));
    }
    *e.last_attempt.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    e.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match fetch(url, transport).await {
        Ok(set) => {
            let set = Arc::new(set);
            *e.set.lock().unwrap_or_else(|p| p.into_inner()) = Some((set.clone(), Instant::now()));
            log::info!("validate-jwt: loaded {} key(s) from {url}", set.keys.len());
            Ok(set)
        }
        Err(err) => {
            log::warn!("validate-jwt: fetching keys from {url} failed: {err}");
            cur.map(|(s, _)| s).ok_or(err)
        }
    }
}

async fn get_json(url: &str, transport: &dyn Transport) -> Result<serde_json::Value, Invalid> {
    let req = CallRequest {
        method: http::Method::GET,
        url: url.to_string(),
        headers: vec![(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        )],
        body: bytes::Bytes::new(),
        client_cert: None,
        proxy: None,
    };
    let resp = transport
        .send(req, Duration::from_secs(10))
        .await
        .map_err(|(_, m)| m)?;
    if resp.status != 200 {
        return Err(crate::invalid!("{url} answered {}", resp.status));
    }
    serde_json::from_slice(resp.body.as_deref().unwrap_or_default())
        .map_err(|e| crate::invalid!("{url}: not JSON: {e}"))
}

async fn fetch(url: &str, transport: &dyn Transport) -> Result<KeySet, Invalid> {
    let doc = get_json(url, transport).await?;
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .ok_or_else(|| crate::invalid!("{url}: no jwks_uri"))?;
    let issuer = doc
        .get("issuer")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let jwks: JwkSet = serde_json::from_value(get_json(jwks_uri, transport).await?)
        .map_err(|e| crate::invalid!("{jwks_uri}: not a JWK set: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &jwks.keys {
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Encryption)
        {
            continue;
        }
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Family::Rsa,
            AlgorithmParameters::EllipticCurve(_) => Family::Ec,
            AlgorithmParameters::OctetKey(_) => Family::Hmac,
            AlgorithmParameters::OctetKeyPair(_) => Family::Ed,
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => keys.push(Key {
                kid: jwk.common.key_id.clone(),
                family,
                key,
            }),
            Err(e) => log::warn!("validate-jwt: skipping a key of {jwks_uri}: {e}"),
        }
    }
    Ok(KeySet { keys, issuer })
}

/// Fetches made for a discovery URL so far (for tests and diagnostics).
pub fn fetch_count(url: &str) -> u64 {
    entry(url)
        .fetches
        .load(std::sync::atomic::Ordering::Relaxed)
}
