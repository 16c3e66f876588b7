//! `<cache-lookup>` / `<cache-store>`: the response cache. GET only; the key is the API,
//! operation, frontend path and each vary-by value (plus the subscription as the "developer").
//! A hit answers from the cache and outbound resumes after `cache-store`; a miss lets
//! `cache-store` save status, headers and body (up to 2 MiB) for `duration` seconds. Concurrent
//! misses for one key in one instance wait for the first to fill (single flight, at most 5 s).
//! Requests with `Authorization` bypass the cache unless allow-private-response-caching;
//! responses that carry `Set-Cookie` are never stored.

use super::limits::ReadsAhead;
use super::*;
use crate::exec::value;
use ahash::AHashMap;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub struct CacheLookup {
    pub vary_by_developer: Val<bool>,
    pub vary_by_developer_groups: Val<bool>,
    pub caching: CachingType,
    /// `none`, `private` or `public`.
    pub downstream: Val<String>,
    pub must_revalidate: Val<bool>,
    pub allow_private: Val<bool>,
    pub vary_headers: Vec<String>,
    pub vary_query: Vec<String>,
}

/// `caching-type`: which cache a cache policy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachingType {
    Internal,
    External,
    PreferExternal,
}

impl Policy for CacheLookup {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read_lookup(r)
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn reads_ahead(&self) -> Option<&dyn ReadsAhead> {
        Some(self)
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.vary_by_developer, f);
        visit_val(&self.vary_by_developer_groups, f);
        visit_val(&self.downstream, f);
        visit_val(&self.must_revalidate, f);
        visit_val(&self.allow_private, f);
    }
}

impl Waits for CacheLookup {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        lookup(self, cx).await
    }
}

/// `duration` seconds; `cache_response`: None = only 200s are stored.
#[derive(Clone, Debug)]
pub struct CacheStore {
    pub duration: Val<u64>,
    pub cache_response: Option<Val<bool>>,
}

impl Policy for CacheStore {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let duration = r
            .required_value("duration", parse_u64)
            .unwrap_or(Val::Lit(0));
        let cache_response = r.value("cache-response", parse_bool);
        Some(CacheStore {
            duration,
            cache_response,
        })
    }

    /// It saves the response body.
    fn needs(&self) -> Needs {
        Needs {
            response_body: true,
            ..Needs::NONE
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.duration, f);
        if let Some(c) = &self.cache_response {
            visit_val(c, f);
        }
    }
}

impl Waits for CacheStore {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        store(&self.duration, self.cache_response.as_ref(), cx)
            .await
            .map(|_| Step::Next)
    }
}

fn read_lookup(r: &mut Reader) -> Option<CacheLookup> {
    let vary_by_developer = r
        .required_value("vary-by-developer", parse_bool)
        .unwrap_or(Val::Lit(false));
    let vary_by_developer_groups = r
        .required_value("vary-by-developer-groups", parse_bool)
        .unwrap_or(Val::Lit(false));
    let caching = parse_caching(r);
    let downstream = r.value("downstream-caching-type", |s| match s.trim() {
        "none" | "private" | "public" => Ok(s.trim().to_string()),
        other => Err(crate::invalid!(
            "downstream-caching-type must be none, private or public, found {other:?}"
        )),
    });
    let must_revalidate = r
        .value("must-revalidate", parse_bool)
        .unwrap_or(Val::Lit(true));
    let allow_private = r
        .value("allow-private-response-caching", parse_bool)
        .unwrap_or(Val::Lit(false));
    let (mut vary_headers, mut vary_query) = (Vec::new(), Vec::new());
    for child in r.children() {
        let mut cr = r.child(child);
        cr.no_children();
        match child.name.as_str() {
            "vary-by-header" => {
                vary_headers.extend(child.text().map(|t| t.value.trim().to_ascii_lowercase()))
            }
            "vary-by-query-parameter" => {
                vary_query.extend(child.text().into_iter().flat_map(|t| {
                    t.value
                        .split(';')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect::<Vec<_>>()
                }))
            }
            _ => {
                not_allowed(
                    cr.diags,
                    child,
                    "cache-lookup",
                    "vary-by-header or vary-by-query-parameter",
                );
                continue;
            }
        }
        cr.finish();
    }
    vary_headers.sort();
    vary_query.sort();
    Some(CacheLookup {
        vary_by_developer,
        vary_by_developer_groups,
        caching,
        downstream: downstream.unwrap_or(Val::Lit("none".into())),
        must_revalidate,
        allow_private,
        vary_headers,
        vary_query,
    })
}

pub(super) fn parse_caching(r: &mut Reader) -> CachingType {
    r.parsed_literal("caching-type", |s| match s.trim() {
        "internal" => Ok(CachingType::Internal),
        "external" => Ok(CachingType::External),
        "prefer-external" => Ok(CachingType::PreferExternal),
        other => Err(crate::invalid!(
            "caching-type must be internal, external or prefer-external, found {other:?}"
        )),
    })
    .unwrap_or(CachingType::PreferExternal)
}

/// Largest response stored.
pub const MAX_CACHED_BODY: usize = 2 * 1024 * 1024;
const FILL_WAIT: Duration = Duration::from_secs(5);

/// Per-request cache state between cache-lookup and cache-store.
#[derive(Clone, Debug)]
pub struct CacheState {
    pub key: String,
    pub external: bool,
    pub hit: bool,
    /// This request fills the entry others wait for.
    pub filler: bool,
    /// The shared store's fill lock this request holds (its token).
    pub lock: Option<String>,
    pub downstream: String,
    pub must_revalidate: bool,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    status: u16,
    headers: Vec<(String, String)>,
    expires_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn inflight() -> &'static Mutex<AHashMap<String, Arc<tokio::sync::Notify>>> {
    static M: OnceLock<Mutex<AHashMap<String, Arc<tokio::sync::Notify>>>> = OnceLock::new();
    M.get_or_init(|| Mutex::new(AHashMap::new()))
}

/// End this request's fill (stored or not): wake whoever waits for the key.
pub fn release_fill(key: &str) {
    if let Some(n) = inflight().lock().remove(key) {
        n.notify_waiters();
    }
}

fn downstream_header(state: &CacheState, remaining_s: u64) -> Option<HeaderValue> {
    let mut v = match state.downstream.as_str() {
        "private" => format!("private, max-age={remaining_s}"),
        "public" => format!("public, max-age={remaining_s}"),
        _ => return None,
    };
    if state.must_revalidate {
        v.push_str(", must-revalidate");
    }
    HeaderValue::from_str(&v).ok()
}

fn encode(e: &Entry, body: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(e).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

fn decode(b: &[u8]) -> Option<(Entry, Bytes)> {
    let nl = b.iter().position(|c| *c == b'\n')?;
    let e: Entry = serde_json::from_slice(&b[..nl]).ok()?;
    Some((e, Bytes::copy_from_slice(&b[nl + 1..])))
}

async fn answer_from(cx: &mut ExecCtx<'_>, state: &mut CacheState, raw: &[u8]) -> bool {
    let Some((e, body)) = decode(raw) else {
        return false;
    };
    cx.resp_headers.clear();
    for (k, v) in &e.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            cx.resp_headers.append(&n, v);
        }
    }
    cx.resp.status = e.status;
    cx.resp.reason = None;
    cx.resp.body = Some(body);
    state.hit = true;
    let remaining = e.expires_ms.saturating_sub(now_ms()) / 1000;
    if let Some(h) = downstream_header(state, remaining) {
        cx.req.extra_headers.push((http::header::CACHE_CONTROL, h));
    }
    true
}

/// What a lookup reads first: the entry's key, and whether the shared store holds it; `None`
/// when the request is not looked up (not a GET, or private without allow-private).
fn lookup_key(c: &CacheLookup, cx: &mut ExecCtx<'_>) -> Result<Option<(String, bool)>, StepError> {
    if cx.req.method != http::Method::GET {
        return Ok(None);
    }
    let allow_private = *value(&c.allow_private, cx)?;
    if !allow_private && cx.req_headers.contains(&http::header::AUTHORIZATION) {
        return Ok(None);
    }
    // No developer or group model here: the subscription stands for both.
    let by_dev = *value(&c.vary_by_developer, cx)? || *value(&c.vary_by_developer_groups, cx)?;
    let info = &cx.req.info;
    // Ids, not indices: entries in Redis outlive a reload that reorders the APIs.
    let api = info.api.map(|a| &cx.gw.apis[a]);
    let (api_id, op_id) = (
        api.map_or("", |a| a.id.as_str()),
        api.and_then(|a| info.operation.map(|o| a.operations[o].id.as_str()))
            .unwrap_or(""),
    );
    let mut key = format!("rc\u{1f}{api_id}\u{1f}{op_id}\u{1f}{}", info.original_path);
    let query = crate::codec::query::parse(&info.original_query);
    for q in &c.vary_query {
        let vals: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == q)
            .map(|(_, v)| v.as_str())
            .collect();
        key.push_str(&format!("\u{1f}q:{q}={}", vals.join(",")));
    }
    for h in &c.vary_headers {
        let vals: Vec<String> = HeaderName::from_bytes(h.as_bytes())
            .map(|n| {
                cx.req_headers
                    .get_all(&n)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        key.push_str(&format!("\u{1f}h:{h}={}", vals.join(",")));
    }
    if by_dev {
        let sub = cx
            .req
            .info
            .subscription
            .map(|s| cx.gw.subscriptions.list[s].id.clone())
            .unwrap_or_default();
        key.push_str(&format!("\u{1f}d:{sub}"));
    }
    Ok(Some((key, c.caching != CachingType::Internal)))
}

impl ReadsAhead for CacheLookup {
    fn read_ahead(&self, cx: &mut ExecCtx<'_>) -> Result<Option<(String, bool)>, StepError> {
        lookup_key(self, cx)
    }
}

async fn lookup(c: &CacheLookup, cx: &mut ExecCtx<'_>) -> Outcome {
    let Some((key, external)) = lookup_key(c, cx)? else {
        return Ok(Step::Next);
    };
    let downstream = value(&c.downstream, cx)?.into_owned();
    let must_revalidate = *value(&c.must_revalidate, cx)?;
    let mut state = CacheState {
        key: key.clone(),
        external,
        hit: false,
        filler: false,
        lock: None,
        downstream,
        must_revalidate,
    };
    // Read already, beside the limit statements before this one (`limits::run_together`).
    let first = match cx.req.read_ahead.take() {
        Some((k, v)) if k == key => v,
        _ => cx.store.cache_get(&key, external).await,
    };
    if let Some(raw) = first {
        if answer_from(cx, &mut state, &raw).await {
            cx.req.cache = Some(state);
            return Ok(Step::Respond { run_outbound: true });
        }
    }
    // Single flight: the first miss fills; the others wait for it, then look again.
    let waiter = {
        let mut m = inflight().lock();
        match m.get(&key) {
            Some(n) => {
                let n = n.clone();
                Some(n)
            }
            None => {
                m.insert(key.clone(), Arc::new(tokio::sync::Notify::new()));
                state.filler = true;
                None
            }
        }
    };
    if let Some(n) = waiter {
        let notified = n.notified();
        let _ = tokio::time::timeout(FILL_WAIT, notified).await;
        if let Some(raw) = cx.store.cache_get(&key, external).await {
            if answer_from(cx, &mut state, &raw).await {
                cx.req.cache = Some(state);
                return Ok(Step::Respond { run_outbound: true });
            }
        }
    } else if external {
        // This instance's filler: across instances too, only one fetches. The others look
        // again every 50 ms for up to FILL_WAIT, then fetch themselves.
        let started = tokio::time::Instant::now();
        loop {
            if let Some(token) = cx.store.fill_lock(&key, FILL_WAIT).await {
                state.lock = Some(token);
                break;
            }
            if started.elapsed() >= FILL_WAIT {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(raw) = cx.store.cache_get(&key, external).await {
                if answer_from(cx, &mut state, &raw).await {
                    release_fill(&key);
                    state.filler = false;
                    cx.req.cache = Some(state);
                    return Ok(Step::Respond { run_outbound: true });
                }
            }
        }
    }
    cx.req.cache = Some(state);
    Ok(Step::Next)
}

async fn store(
    duration: &Val<u64>,
    cache_response: Option<&Val<bool>>,
    cx: &mut ExecCtx<'_>,
) -> Result<(), StepError> {
    let Some(state) = cx.req.cache.clone() else {
        return Ok(());
    };
    if state.hit {
        return Ok(());
    }
    let secs = *value(duration, cx)?;
    let any_status = match cache_response {
        Some(v) => *value(v, cx)?,
        None => false,
    };
    let body = cx
        .resp
        .body
        .clone()
        .or_else(|| cx.resp.original_body.clone())
        .unwrap_or_default();
    // A response that sets a cookie belongs to one client: never store it in a shared cache.
    let sets_cookie = cx.resp_headers.contains(&http::header::SET_COOKIE);
    let storable = secs > 0
        && (any_status || cx.resp.status == 200)
        && body.len() <= MAX_CACHED_BODY
        && !sets_cookie;
    if storable {
        let mut headers = Vec::new();
        for n in cx.resp_headers.names() {
            if matches!(
                n.as_str(),
                "connection" | "transfer-encoding" | "content-length" | "keep-alive" | "date"
            ) {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(n.as_bytes()) {
                for v in cx.resp_headers.get_all(&name) {
                    headers.push((
                        n.clone(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    ));
                }
            }
        }
        let e = Entry {
            status: cx.resp.status,
            headers,
            expires_ms: now_ms() + secs * 1000,
        };
        cx.store
            .cache_set(
                &state.key,
                encode(&e, &body),
                Duration::from_secs(secs),
                state.external,
            )
            .await;
        if let Some(h) = downstream_header(&state, secs) {
            cx.req.extra_headers.push((http::header::CACHE_CONTROL, h));
        }
    }
    if state.filler {
        release_fill(&state.key);
        if let Some(s) = cx.req.cache.as_mut() {
            s.filler = false;
        }
    }
    if let Some(token) = &state.lock {
        cx.store.fill_unlock(&state.key, token).await;
        if let Some(s) = cx.req.cache.as_mut() {
            s.lock = None;
        }
    }
    Ok(())
}
