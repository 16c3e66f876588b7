//! The Redis store: every check-and-increment is one atomic Lua script (loaded once, called by
//! hash), timed by Redis's own clock, under keys namespaced by the gateway name, so N instances
//! act as one. Redis never takes the gateway down: each call has a short timeout, the client
//! connects lazily and reconnects by itself, and while Redis is unreachable the configured
//! failure mode applies (`local` counters by default, `fail-open`, or `fail-closed`).
//!
//! Fail fast, recover fast: the first failed call (refused, reset, timed out) marks Redis down
//! for the whole instance. From then on every call fails at once, without touching the network,
//! so the failure mode costs no request a timeout; a background probe (a fresh connection and a
//! `PING`, every `PROBE_INTERVAL`) marks Redis up again as soon as it answers. Counters kept
//! locally during an outage stay local: they are not added to Redis afterwards, since the
//! windows they counted in have mostly passed and adding them late would refuse callers for
//! requests made while Redis was away.

use crate::diag::Invalid;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::ConnectionManager;

/// A connection to one Redis (reconnecting by itself) or to a Redis Cluster (routing each
/// command by its key's slot, following MOVED / ASK).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

use super::memory::MemoryStore;
use super::{count_each, Counted, Counter, Quota, Sliding, Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureMode {
    /// Count in this instance's memory until Redis is back.
    Local,
    /// Admit every request.
    FailOpen,
    /// Fail requests that need the store.
    FailClosed,
}

/// Unconditional add of `count` hits. KEYS[1]; ARGV = window_us, count, id.
const SLIDING_ADD: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
for i = 1, tonumber(ARGV[2]) do redis.call('ZADD', KEYS[1], now, ARGV[3] .. ':' .. i) end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return {1}
"#;

/// Every rate-limit and quota check-and-count, one counter or several (`Store::count`), in
/// order, stopping after the first refused. KEYS = the counters' keys; ARGV = 7 per counter:
/// - a sliding window (a sorted set of unit hits scored by Redis time in microseconds):
///   's', window_us, limit, count, record (0/1), call id, counter index (a hit's member is
///   `id.index:n`, unique per hit);
/// - a fixed-window quota (a hash, the window id in the key): 'q', ttl_s (0 = none),
///   max_calls, max_bytes, calls, bytes, record.
///
/// Returns 3 numbers per counter run: {admitted, count, retry_after_us} for a window,
/// {admitted, calls, bytes} for a quota.
const COUNT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, #KEYS do
  local k = KEYS[i]
  local a = (i - 1) * 7
  if ARGV[a + 1] == 's' then
    local window = tonumber(ARGV[a + 2])
    local limit = tonumber(ARGV[a + 3])
    local count = tonumber(ARGV[a + 4])
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
    local n = redis.call('ZCARD', k)
    if n + count > limit then
      local need = n + count - limit
      local e = redis.call('ZRANGE', k, need - 1, need - 1, 'WITHSCORES')
      local retry = window
      if e[2] then retry = tonumber(e[2]) + window - now end
      out[#out + 1] = 0; out[#out + 1] = n; out[#out + 1] = retry
      return out
    end
    if ARGV[a + 5] == '1' and count > 0 then
      local id = ARGV[a + 6] .. '.' .. ARGV[a + 7] .. ':'
      for j = 1, count do redis.call('ZADD', k, now, id .. j) end
      redis.call('PEXPIRE', k, math.ceil(window / 1000) + 1000)
    end
    out[#out + 1] = 1; out[#out + 1] = n + count; out[#out + 1] = 0
  else
    local c = tonumber(redis.call('HGET', k, 'c') or '0')
    local b = tonumber(redis.call('HGET', k, 'b') or '0')
    local maxc = tonumber(ARGV[a + 3])
    local maxb = tonumber(ARGV[a + 4])
    local addc = tonumber(ARGV[a + 5])
    local addb = tonumber(ARGV[a + 6])
    local probe = addc
    if probe < 1 then probe = 1 end
    if (maxc > 0 and c + probe > maxc) or (maxb > 0 and b >= maxb) then
      out[#out + 1] = 0; out[#out + 1] = c; out[#out + 1] = b
      return out
    end
    if ARGV[a + 7] == '1' then
      c = redis.call('HINCRBY', k, 'c', addc)
      b = redis.call('HINCRBY', k, 'b', addb)
      if tonumber(ARGV[a + 2]) > 0 then redis.call('EXPIRE', k, tonumber(ARGV[a + 2])) end
    end
    out[#out + 1] = 1; out[#out + 1] = c; out[#out + 1] = b
  end
end
return out
"#;

/// Semaphore: KEYS[1]; ARGV = max, ttl_s. Returns 1 when a slot was taken.
const ACQUIRE: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return {0} end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {1}
"#;

/// Release a fill lock only while it is still this holder's: KEYS[1]; ARGV = token.
const UNLOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return {1}
"#;

const RELEASE: &str = r#"
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return {1}
"#;

/// Where Redis is and how to reach it: the URL, an ACL user and password, and for `rediss://`
/// the CAs to trust and a client certificate (PEM bytes). The password never reaches a log.
#[derive(Default)]
pub struct Target {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca: Option<Vec<u8>>,
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
    /// Redis Sentinel (the master is asked of the sentinels at start and after every outage,
    /// and `url` is not used).
    pub sentinel: Option<SentinelTarget>,
    /// Redis Cluster: some of its nodes (`host:port`); the rest are discovered.
    pub cluster: Option<Vec<String>>,
}

/// Redis Sentinel: the monitored master's name, the sentinels (`host:port`), whether TLS
/// reaches them and the master, and the sentinels' own ACL user and password.
#[derive(Default)]
pub struct SentinelTarget {
    pub master: String,
    pub nodes: Vec<String>,
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Target {
    /// A client for the sentinels, which name the current master.
    pub fn sentinel_client(&self) -> Result<Option<redis::sentinel::SentinelClient>, Invalid> {
        use redis::TlsMode;
        let Some(s) = &self.sentinel else {
            return Ok(None);
        };
        let mut addrs = Vec::new();
        for n in &s.nodes {
            let (host, port) = n
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                .ok_or_else(|| crate::invalid!("sentinel {n:?} is not host:port"))?;
            addrs.push(if s.tls {
                redis::ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: false,
                    tls_params: None,
                }
            } else {
                redis::ConnectionAddr::Tcp(host, port)
            });
        }
        if s.tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut b = redis::sentinel::SentinelClientBuilder::new(
            addrs,
            s.master.clone(),
            redis::sentinel::SentinelServerType::Master,
        )
        .map_err(|e| crate::invalid!("sentinel: {e}"))?;
        if let Some(u) = &self.username {
            b = b.set_client_to_redis_username(u.clone());
        }
        if let Some(p) = &self.password {
            b = b.set_client_to_redis_password(p.clone());
        }
        if let Some(u) = &s.username {
            b = b.set_client_to_sentinel_username(u.clone());
        }
        if let Some(p) = &s.password {
            b = b.set_client_to_sentinel_password(p.clone());
        }
        if s.tls {
            b = b
                .set_client_to_sentinel_tls_mode(TlsMode::Secure)
                .set_client_to_redis_tls_mode(TlsMode::Secure);
            if let Some(certs) = self.certificates() {
                b = b
                    .set_client_to_sentinel_certificates(certs.clone())
                    .set_client_to_redis_certificates(certs);
            }
        }
        b.build()
            .map(Some)
            .map_err(|e| crate::invalid!("sentinel: {e}"))
    }

    /// The CA and client certificate for TLS, when the configuration gives either.
    fn certificates(&self) -> Option<redis::TlsCertificates> {
        (self.ca.is_some() || self.client_cert.is_some()).then(|| redis::TlsCertificates {
            client_tls: self
                .client_cert
                .as_ref()
                .map(|(c, k)| redis::ClientTlsConfig {
                    client_cert: c.clone(),
                    client_key: k.clone(),
                }),
            root_cert: self.ca.clone(),
        })
    }

    /// A client for a Redis Cluster, with the same user, password and TLS settings.
    pub fn cluster_client(
        &self,
        timeout: Duration,
    ) -> Result<Option<redis::cluster::ClusterClient>, Invalid> {
        let Some(nodes) = &self.cluster else {
            return Ok(None);
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let scheme = if self.url.starts_with("rediss://") {
            "rediss"
        } else {
            "redis"
        };
        let urls: Vec<String> = nodes.iter().map(|n| format!("{scheme}://{n}/")).collect();
        let mut b = redis::cluster::ClusterClientBuilder::new(urls)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2);
        if let Some(u) = &self.username {
            b = b.username(u.clone());
        }
        if let Some(p) = &self.password {
            b = b.password(p.clone());
        }
        if let Some(certs) = self.certificates() {
            b = b.certs(certs);
        }
        b.build()
            .map(Some)
            .map_err(|e| crate::invalid!("cluster: {e}"))
    }

    /// The client of a single Redis (`url`); `None` for a cluster or Sentinel, whose clients
    /// come from `cluster_client` / `sentinel_client` (validated here too).
    pub fn client(&self) -> Result<Option<redis::Client>, Invalid> {
        if self.cluster.is_some() || self.sentinel.is_some() {
            self.cluster_client(Duration::from_secs(1))?;
            self.sentinel_client()?;
            return Ok(None);
        }
        use redis::IntoConnectionInfo;
        // rustls needs its crypto provider chosen once per process (ring here).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut info = self
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| crate::invalid!("invalid Redis URL: {e}"))?;
        if self.username.is_some() {
            info.redis.username = self.username.clone();
        }
        if self.password.is_some() {
            info.redis.password = self.password.clone();
        }
        let tls = matches!(info.addr, redis::ConnectionAddr::TcpTls { .. });
        if let Some(certs) = self.certificates().filter(|_| tls) {
            redis::Client::build_with_tls(info, certs)
                .map(Some)
                .map_err(|e| crate::invalid!("Redis TLS settings: {e}"))
        } else {
            redis::Client::open(info)
                .map(Some)
                .map_err(|e| crate::invalid!("invalid Redis URL: {e}"))
        }
    }
}

/// How often a store marked down checks whether Redis answers again.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Whether Redis is marked down, shared with the background probe.
#[derive(Default)]
struct Health {
    down: AtomicBool,
    probing: AtomicBool,
    /// Counts recoveries: connections made before the last one are made afresh.
    epoch: AtomicU64,
}

/// Each store gets an id so a thread's cached connection is never reused by a later store
/// (after a reload) that happens to live at the same address.
static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Connections owned by this thread, per store id. A connection's driver task runs on the
    /// runtime that created it, so a worker thread that uses its own connection keeps every
    /// Redis call on its runtime (no cross-thread wake-ups per request).
    static THREAD_CONNS: RefCell<Vec<(u64, u64, Conn)>> = const { RefCell::new(Vec::new()) };
}

pub struct RedisStore {
    id: u64,
    /// The master's client (replaced when the sentinels name another).
    client: std::sync::Arc<arc_swap::ArcSwapOption<redis::Client>>,
    sentinel: Option<std::sync::Arc<tokio::sync::Mutex<redis::sentinel::SentinelClient>>>,
    conn: tokio::sync::Mutex<Option<Conn>>,
    /// Redis Cluster (instead of `client`).
    cluster: Option<redis::cluster::ClusterClient>,
    next_attempt: parking_lot::Mutex<Instant>,
    timeout: Duration,
    mode: FailureMode,
    local: MemoryStore,
    prefix: String,
    sliding_add: redis::Script,
    count: redis::Script,
    acquire: redis::Script,
    release: redis::Script,
    unlock: redis::Script,
    /// `store.sync: lease`.
    lease: Option<Lease>,
    health: std::sync::Arc<Health>,
}

impl RedisStore {
    pub fn new(
        target: &Target,
        prefix: &str,
        timeout: Duration,
        mode: FailureMode,
        max_keys: usize,
    ) -> Result<RedisStore, Invalid> {
        let client = target.client()?;
        let sentinel = target
            .sentinel_client()?
            .map(|c| std::sync::Arc::new(tokio::sync::Mutex::new(c)));
        let cluster = target.cluster_client(timeout)?;
        Ok(RedisStore {
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            client: std::sync::Arc::new(arc_swap::ArcSwapOption::from(
                client.map(std::sync::Arc::new),
            )),
            sentinel,
            cluster,
            conn: tokio::sync::Mutex::new(None),
            next_attempt: parking_lot::Mutex::new(Instant::now()),
            timeout,
            mode,
            local: MemoryStore::new(max_keys),
            prefix: format!("gh:{prefix}:"),
            sliding_add: redis::Script::new(SLIDING_ADD),
            count: redis::Script::new(COUNT),
            acquire: redis::Script::new(ACQUIRE),
            release: redis::Script::new(RELEASE),
            unlock: redis::Script::new(UNLOCK),
            lease: None,
            health: Default::default(),
        })
    }

    /// Admit rate-limit hits from leases of `size` reserved hits (`store.sync: lease`).
    pub fn with_lease(mut self, size: u64, interval: Duration) -> RedisStore {
        self.lease = Some(Lease::new(size, interval));
        self
    }

    /// Whether Redis is marked down (the failure mode is in force).
    pub fn is_degraded(&self) -> bool {
        self.health.down.load(Ordering::Relaxed)
    }

    /// This thread's connection, made on first use (one multiplexed connection per worker
    /// thread; each reconnects by itself). While Redis is marked down: an error at once.
    async fn connection(&self) -> Result<Conn, StoreError> {
        if self.is_degraded() {
            return Err(StoreError::Unavailable("marked down; probing".into()));
        }
        let epoch = self.health.epoch.load(Ordering::Relaxed);
        if let Some(c) = THREAD_CONNS.with(|m| {
            m.borrow()
                .iter()
                .find(|(id, e, _)| *id == self.id && *e == epoch)
                .map(|(_, _, c)| c.clone())
        }) {
            return Ok(c);
        }
        if Instant::now() < *self.next_attempt.lock() {
            return Err(StoreError::Unavailable(
                "waiting before reconnecting".into(),
            ));
        }
        let c = self.connect().await?;
        THREAD_CONNS.with(|m| {
            let mut m = m.borrow_mut();
            // A connection from before Redis last came back is replaced.
            m.retain(|(id, _, _)| *id != self.id);
            // Stores replaced by a reload leave their connections behind: keep the newest few.
            if m.len() >= 4 {
                m.sort_by_key(|(id, _, _)| *id);
                m.remove(0);
            }
            m.push((self.id, epoch, c.clone()));
        });
        Ok(c)
    }

    /// The shared connection of the background service (readiness and the first check).
    async fn shared_connection(&self) -> Result<Conn, StoreError> {
        let mut g = self.conn.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        if Instant::now() < *self.next_attempt.lock() {
            return Err(StoreError::Unavailable(
                "waiting before reconnecting".into(),
            ));
        }
        let c = self.connect().await?;
        *g = Some(c.clone());
        Ok(c)
    }

    async fn connect(&self) -> Result<Conn, StoreError> {
        let made = async {
            match &self.cluster {
                Some(c) => c.get_async_connection().await.map(Conn::Cluster),
                None => {
                    let Some(client) = self.client.load_full() else {
                        return Err(redis::RedisError::from((
                            redis::ErrorKind::ClientError,
                            "the sentinels have named no master yet",
                        )));
                    };
                    let cfg = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(self.timeout)
                        .set_response_timeout(self.timeout)
                        .set_number_of_retries(1);
                    ConnectionManager::new_with_config((*client).clone(), cfg)
                        .await
                        .map(Conn::Single)
                }
            }
        };
        match tokio::time::timeout(self.timeout, made).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => {
                *self.next_attempt.lock() = Instant::now() + Duration::from_millis(500);
                Err(StoreError::Unavailable(e.to_string()))
            }
            Err(_) => {
                *self.next_attempt.lock() = Instant::now() + Duration::from_millis(500);
                Err(StoreError::Unavailable("connect timed out".into()))
            }
        }
    }

    /// The Redis key of a store key: namespaced, and in a cluster with the store key as its
    /// hash tag, so every key of one counter (a quota's windows) lives in one slot.
    fn key(&self, key: &str) -> String {
        let mut out = String::with_capacity(self.prefix.len() + key.len() + 2);
        self.push_key(key, &mut out);
        out
    }

    /// `key` namespaced (and hash-tagged in a cluster), appended to `out`.
    fn push_key(&self, key: &str, out: &mut String) {
        out.push_str(&self.prefix);
        if self.cluster.is_some() {
            out.push('{');
            out.push_str(key);
            out.push('}');
        } else {
            out.push_str(key);
        }
    }

    /// A counter's Redis key, appended to `out`; a quota's has its window id after the key
    /// (after the hash tag in a cluster, so all its windows share a slot).
    fn counter_key(&self, c: &Counter, out: &mut String) {
        match c {
            Counter::Sliding { key, .. } => self.push_key(key, out),
            Counter::Quota { key, window_id, .. } => {
                use std::fmt::Write;
                self.push_key(key, out);
                let _ = write!(out, "\u{1f}{window_id}");
            }
        }
    }

    /// A Redis call within the store's timeout; a failure of any kind is `Unavailable`.
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// What a failed call gives: the failure marks Redis down (the first one logs and starts
    /// the probe), then the failure mode answers: `local` (this instance's memory), `open`
    /// (admit) or the error.
    async fn fallback<T>(
        &self,
        e: StoreError,
        local: impl std::future::Future<Output = Result<T, StoreError>>,
        open: impl FnOnce() -> T,
    ) -> Result<T, StoreError> {
        self.failed(&e);
        match self.mode {
            FailureMode::Local => local.await,
            FailureMode::FailOpen => Ok(open()),
            FailureMode::FailClosed => Err(e),
        }
    }

    /// Run a script on one Redis key (already namespaced: `key` / `tagged`).
    async fn run(
        &self,
        script: &redis::Script,
        key: String,
        args: &[String],
    ) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.connection().await?;
        let mut inv = script.key(key);
        for a in args {
            inv.arg(a);
        }
        self.timed(inv.invoke_async::<Vec<i64>>(&mut conn)).await
    }

    /// Counters in one COUNT script call (one round trip), without the failure mode.
    async fn count_once(&self, counters: &[Counter]) -> Result<Vec<Counted>, StoreError> {
        let mut conn = self.connection().await?;
        // The command is written straight into one `Cmd`: numbers formatted in place, the keys
        // through one buffer (no String per argument, no second copy as a script invocation
        // makes); NOSCRIPT (a Redis that restarted or flushed its scripts) loads it once.
        // Sized up front: growing the argument buffers cost more than the rest of this.
        let keys: usize = counters.iter().map(|c| c.key().len()).sum();
        let mut cmd = redis::Cmd::with_capacity(
            3 + 8 * counters.len(),
            64 + keys + counters.len() * (self.prefix.len() + 160),
        );
        cmd.arg("EVALSHA")
            .arg(self.count.get_hash())
            .arg(counters.len());
        let mut key = String::with_capacity(self.prefix.len() + 64);
        for c in counters {
            key.clear();
            self.counter_key(c, &mut key);
            cmd.arg(key.as_str());
        }
        let id = rand::random::<u64>();
        let flag = |record: bool| if record { "1" } else { "0" };
        for (i, c) in counters.iter().enumerate() {
            match c {
                Counter::Sliding {
                    limit,
                    window,
                    count,
                    record,
                    ..
                } => {
                    cmd.arg("s")
                        .arg(u64::try_from(window.as_micros()).unwrap_or(u64::MAX))
                        .arg(limit)
                        .arg(count)
                        .arg(flag(*record))
                        .arg(id)
                        .arg(i);
                }
                Counter::Quota {
                    ttl,
                    max_calls,
                    max_bytes,
                    calls,
                    bytes,
                    record,
                    ..
                } => {
                    cmd.arg("q")
                        .arg(ttl.map_or(0, |t| t.as_secs()))
                        .arg(max_calls)
                        .arg(max_bytes)
                        .arg(calls)
                        .arg(bytes)
                        .arg(flag(*record));
                }
            }
        }
        let call = async {
            match cmd.query_async::<Vec<i64>>(&mut conn).await {
                Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                    self.count.load_async(&mut conn).await?;
                    cmd.query_async::<Vec<i64>>(&mut conn).await
                }
                r => r,
            }
        };
        let v = self.timed(call).await?;
        if v.is_empty() || v.len() % 3 != 0 || v.len() / 3 > counters.len() {
            return Err(StoreError::Unavailable("unexpected script result".into()));
        }
        Ok(v.chunks(3)
            .zip(counters)
            .map(|(r, c)| match c {
                Counter::Sliding { .. } => Counted::Sliding(Sliding {
                    admitted: r[0] == 1,
                    count: r[1].max(0) as u64,
                    retry_after: Duration::from_micros(r[2].max(0) as u64),
                }),
                Counter::Quota { .. } => Counted::Quota(Quota {
                    admitted: r[0] == 1,
                    calls: r[1].max(0) as u64,
                    bytes: r[2].max(0) as u64,
                }),
            })
            .collect())
    }

    /// A call failed: the first failure marks Redis down and starts the probe; calls refused
    /// while it is down are not counted again as errors.
    fn failed(&self, e: &StoreError) {
        if self.health.down.swap(true, Ordering::Relaxed) {
            return;
        }
        log::warn!(
            "store: Redis unavailable ({e}); failure mode {:?} applies, without waiting, until a probe finds it back",
            self.mode
        );
        metric_up(false);
        if let Some(m) = crate::observe::metrics::get() {
            m.store_errors.inc();
        }
        self.start_probe();
    }

    /// Probe Redis in the background until it answers, then mark it up.
    fn start_probe(&self) {
        if self.health.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (client, health, timeout) = (self.client.clone(), self.health.clone(), self.timeout);
        let sentinel = self.sentinel.clone();
        let cluster = self.cluster.clone();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            health.probing.store(false, Ordering::Release);
            return;
        };
        rt.spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                // `Some(master)`: it answers (a master the sentinels newly named to use).
                let ping = async {
                    if let Some(c) = &cluster {
                        let mut conn = c.get_async_connection().await.ok()?;
                        redis::cmd("PING")
                            .query_async::<String>(&mut conn)
                            .await
                            .ok()?;
                        return Some(None);
                    }
                    // With Sentinel, ask which node is master now.
                    let candidate = match &sentinel {
                        Some(s) => {
                            std::sync::Arc::new(s.lock().await.async_get_client().await.ok()?)
                        }
                        None => client.load_full()?,
                    };
                    let mut c = candidate.get_multiplexed_async_connection().await.ok()?;
                    redis::cmd("PING")
                        .query_async::<String>(&mut c)
                        .await
                        .ok()?;
                    Some(sentinel.is_some().then_some(candidate))
                };
                if let Ok(Some(master)) =
                    tokio::time::timeout(timeout.max(PROBE_INTERVAL), ping).await
                {
                    if master.is_some() {
                        client.store(master);
                    }
                    health.epoch.fetch_add(1, Ordering::Relaxed);
                    health.down.store(false, Ordering::Relaxed);
                    health.probing.store(false, Ordering::Release);
                    log::info!("store: Redis answers again; counters are shared");
                    metric_up(true);
                    return;
                }
            }
        });
    }
}

impl RedisStore {
    /// One counter through the COUNT script, without the failure mode.
    async fn count_single(&self, c: &Counter) -> Result<Counted, StoreError> {
        self.count_once(std::slice::from_ref(c))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Unavailable("unexpected script result".into()))
    }

    /// One sliding-window hit in Redis, without the failure mode.
    async fn sliding_once(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
        count: u64,
        record: bool,
    ) -> Result<Sliding, StoreError> {
        let c = Counter::Sliding {
            key: key.to_owned(),
            limit,
            window,
            count,
            record,
        };
        match self.count_single(&c).await? {
            Counted::Sliding(s) => Ok(s),
            Counted::Quota(_) => Err(StoreError::Unavailable("unexpected script result".into())),
        }
    }

    /// A sliding-window hit counted in Redis, the failure mode applying when it cannot be.
    async fn sliding_exact(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
        count: u64,
        record: bool,
    ) -> Result<Sliding, StoreError> {
        match self.sliding_once(key, limit, window, count, record).await {
            Ok(s) => Ok(s),
            Err(e) => {
                let local = self.local.sliding_hit(key, limit, window, count, record);
                self.fallback(e, local, || Sliding::OPEN).await
            }
        }
    }
}

/// Lease mode (`store.sync: lease`): hits reserved in Redis `size` at a time and admitted
/// locally for up to `interval`. See docs/stores.md for the bound it trades for round trips.
pub struct Lease {
    pub size: u64,
    pub interval: Duration,
    held: parking_lot::Mutex<ahash::AHashMap<String, (u64, Instant, u64)>>,
    /// Keys refused, until when, with the count Redis gave.
    refused: parking_lot::Mutex<ahash::AHashMap<String, (Instant, u64)>>,
}

impl Lease {
    pub fn new(size: u64, interval: Duration) -> Lease {
        Lease {
            size: size.max(1),
            interval,
            held: Default::default(),
            refused: Default::default(),
        }
    }

    /// This key was refused: refuse it here until a hit could fit again, at most `interval`.
    fn refuse(&self, key: &str, s: &Sliding) {
        let until = Instant::now() + s.retry_after.min(self.interval);
        let mut m = self.refused.lock();
        if m.len() >= 100_000 {
            m.retain(|_, (u, _)| *u > Instant::now());
        }
        m.insert(key.to_string(), (until, s.count));
    }

    /// Admit `count` hits from this key's lease, if it has them and has not expired; or the
    /// refusal that still stands for it.
    fn take(&self, key: &str, count: u64) -> Option<Sliding> {
        let now = Instant::now();
        {
            let mut m = self.held.lock();
            if let Some((left, until, seen)) = m.get_mut(key) {
                if *until > now && *left >= count {
                    *left -= count;
                    return Some(Sliding {
                        admitted: true,
                        count: seen.saturating_sub(*left),
                        retry_after: Duration::ZERO,
                    });
                }
                m.remove(key);
            }
        }
        let mut r = self.refused.lock();
        let (until, n) = r.get(key).copied()?;
        if until <= now {
            r.remove(key);
            return None;
        }
        Some(Sliding {
            admitted: false,
            count: n,
            retry_after: until - now,
        })
    }

    /// A lease granted: `left` hits still to admit; `count`, the window's count with them.
    fn grant(&self, key: &str, left: u64, count: u64) {
        let mut m = self.held.lock();
        if m.len() >= 100_000 {
            m.retain(|_, (_, until, _)| *until > Instant::now());
        }
        // Concurrent requests may both have taken a lease: keep the hits of both.
        let until = Instant::now() + self.interval;
        let e = m.entry(key.to_string()).or_insert((0, until, count));
        e.0 += left;
        e.1 = until;
        e.2 = e.2.max(count);
    }
}

fn metric_up(up: bool) {
    if let Some(m) = crate::observe::metrics::get() {
        m.store_up.set(i64::from(up));
    }
}

fn unique() -> String {
    format!("{:x}", rand::random::<u64>())
}

#[async_trait]
impl Store for RedisStore {
    async fn sliding_hit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
        count: u64,
        record: bool,
    ) -> Result<Sliding, StoreError> {
        if let Some(l) = self.lease.as_ref().filter(|l| record && count <= l.size) {
            if let Some(s) = l.take(key, count) {
                return Ok(s);
            }
            // A new lease: `size` hits reserved in Redis at once; near the limit, when they
            // do not fit, this call alone is counted (exact).
            match self.sliding_once(key, limit, window, l.size, true).await {
                Ok(s) if s.admitted => {
                    l.grant(key, l.size - count, s.count);
                    return Ok(Sliding {
                        count: s.count.saturating_sub(l.size - count),
                        ..s
                    });
                }
                // No room for a lease: unless this call alone still fits, that answer stands,
                // and stands locally until a hit could fit again (at most `interval`).
                Ok(s) if s.count + count > limit => {
                    l.refuse(key, &s);
                    return Ok(s);
                }
                Ok(_) => {}
                // Marked down: the exact call below applies the failure mode at once.
                Err(e) => self.failed(&e),
            }
        }
        self.sliding_exact(key, limit, window, count, record).await
    }

    async fn count_one(&self, c: &Counter) -> Result<Counted, StoreError> {
        // The caller's counter as it is (no key copied into a new one); a lease is taken
        // through `sliding_hit`.
        if self.lease.is_some() {
            return super::count_one(self, c).await;
        }
        match self.count_single(c).await {
            Ok(r) => Ok(r),
            Err(e) => {
                let local = self.local.count_one(c);
                self.fallback(e, local, || Counted::open(c)).await
            }
        }
    }

    async fn count(&self, counters: &[Counter]) -> Result<Vec<Counted>, StoreError> {
        // One counter, a lease to take from, or keys in several cluster slots (a script sees
        // one slot): one call per counter.
        if counters.len() < 2 || self.lease.is_some() || self.cluster.is_some() {
            return count_each(self, counters).await;
        }
        match self.count_once(counters).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let local = count_each(&self.local, counters);
                self.fallback(e, local, || counters.iter().map(Counted::open).collect())
                    .await
            }
        }
    }

    async fn sliding_add(&self, key: &str, window: Duration, count: u64) -> Result<(), StoreError> {
        let args = [window.as_micros().to_string(), count.to_string(), unique()];
        match self.run(&self.sliding_add, self.key(key), &args).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let local = self.local.sliding_add(key, window, count);
                self.fallback(e, local, || ()).await
            }
        }
    }

    async fn quota_hit(
        &self,
        key: &str,
        window_id: i64,
        ttl: Option<Duration>,
        max_calls: u64,
        max_bytes: u64,
        calls: u64,
        bytes: u64,
        record: bool,
    ) -> Result<Quota, StoreError> {
        let c = Counter::Quota {
            key: key.to_owned(),
            window_id,
            ttl,
            max_calls,
            max_bytes,
            calls,
            bytes,
            record,
        };
        match self.count_single(&c).await {
            Ok(Counted::Quota(q)) => Ok(q),
            Ok(Counted::Sliding(_)) => {
                Err(StoreError::Unavailable("unexpected script result".into()))
            }
            Err(e) => {
                let local = self.local.quota_hit(
                    key, window_id, ttl, max_calls, max_bytes, calls, bytes, record,
                );
                self.fallback(e, local, || Quota::OPEN).await
            }
        }
    }

    fn degraded(&self) -> bool {
        self.is_degraded()
    }

    async fn acquire(&self, key: &str, max: u64, ttl: Duration) -> Result<bool, StoreError> {
        match self
            .run(
                &self.acquire,
                self.key(&format!("lc:{key}")),
                &[max.to_string(), ttl.as_secs().max(1).to_string()],
            )
            .await
        {
            Ok(v) => Ok(v.first() == Some(&1)),
            Err(e) => {
                let local = self.local.acquire(key, max, ttl);
                self.fallback(e, local, || true).await
            }
        }
    }

    async fn release(&self, key: &str) {
        if self
            .run(&self.release, self.key(&format!("lc:{key}")), &[])
            .await
            .is_err()
        {
            self.local.release(key).await;
        }
    }

    async fn cache_get(&self, key: &str, external: bool) -> Option<Vec<u8>> {
        if !external {
            return self.local.cache_get(key, false).await;
        }
        let mut conn = self.connection().await.ok()?;
        let k = self.key(&format!("c:{key}"));
        let mut cmd = redis::cmd("GET");
        cmd.arg(k);
        self.timed(cmd.query_async::<Option<Vec<u8>>>(&mut conn))
            .await
            .unwrap_or_else(|e| {
                self.failed(&e);
                None
            })
    }

    async fn cache_set(&self, key: &str, value: Vec<u8>, ttl: Duration, external: bool) {
        if !external {
            return self.local.cache_set(key, value, ttl, false).await;
        }
        let Ok(mut conn) = self.connection().await else {
            return;
        };
        let k = self.key(&format!("c:{key}"));
        let mut cmd = redis::cmd("SET");
        cmd.arg(k)
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        if let Err(e) = self.timed(cmd.query_async::<()>(&mut conn)).await {
            self.failed(&e);
        }
    }

    async fn cache_remove(&self, key: &str, external: bool) {
        if !external {
            return self.local.cache_remove(key, false).await;
        }
        let Ok(mut conn) = self.connection().await else {
            return;
        };
        let k = self.key(&format!("c:{key}"));
        let _ = self
            .timed(redis::cmd("DEL").arg(k).query_async::<i64>(&mut conn))
            .await;
    }

    async fn fill_lock(&self, key: &str, ttl: Duration) -> Option<String> {
        let token = unique();
        let Ok(mut conn) = self.connection().await else {
            return Some(token);
        };
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("fill:{key}")))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        match self
            .timed(cmd.query_async::<Option<String>>(&mut conn))
            .await
        {
            Ok(Some(_)) => Some(token),
            Ok(None) => None,
            Err(e) => {
                self.failed(&e);
                Some(token)
            }
        }
    }

    async fn fill_unlock(&self, key: &str, token: &str) {
        let _ = self
            .run(
                &self.unlock,
                self.key(&format!("fill:{key}")),
                &[token.to_string()],
            )
            .await;
    }

    async fn warm_up(&self) {
        if let Some(sentinel) = &self.sentinel {
            let asked = async { sentinel.lock().await.async_get_client().await };
            match tokio::time::timeout(self.timeout.max(Duration::from_secs(1)), asked).await {
                Ok(Ok(c)) => self.client.store(Some(std::sync::Arc::new(c))),
                Ok(Err(e)) => log::warn!("store: the sentinels name no master yet: {e}"),
                Err(_) => log::warn!("store: no sentinel answered in time"),
            }
        }
        match self.shared_connection().await {
            Ok(_) => metric_up(true),
            Err(e) => self.failed(&e),
        }
    }
}
