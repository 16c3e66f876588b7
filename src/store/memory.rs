//! The in-memory store: exact sliding windows (a log of recent hits per key) and fixed-window
//! quota counters, sharded behind mutexes and bounded in size (the oldest keys are evicted and
//! counted in `gatehouse_store_evictions_total`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ahash::AHashMap;
use async_trait::async_trait;
use parking_lot::Mutex;

use super::{Quota, Sliding, Store, StoreError};

const SHARDS: usize = 16;

/// A cached value and when it expires.
type CacheEntry = (Vec<u8>, Instant);

struct Log {
    hits: VecDeque<(Instant, u64)>,
    sum: u64,
    window: Duration,
}

struct QuotaEntry {
    window_id: i64,
    calls: u64,
    bytes: u64,
    expires: Option<Instant>,
}

pub struct MemoryStore {
    logs: Vec<Mutex<AHashMap<String, Log>>>,
    slots: Mutex<AHashMap<String, u64>>,
    cache: Vec<Mutex<AHashMap<String, CacheEntry>>>,
    quotas: Vec<Mutex<AHashMap<String, QuotaEntry>>>,
    max_keys_per_shard: usize,
    hasher: ahash::RandomState,
}

impl MemoryStore {
    /// `max_keys`: the most keys kept (rate and quota counters each).
    pub fn new(max_keys: usize) -> MemoryStore {
        MemoryStore {
            logs: (0..SHARDS).map(|_| Mutex::new(AHashMap::new())).collect(),
            slots: Mutex::new(AHashMap::new()),
            cache: (0..SHARDS).map(|_| Mutex::new(AHashMap::new())).collect(),
            quotas: (0..SHARDS).map(|_| Mutex::new(AHashMap::new())).collect(),
            max_keys_per_shard: (max_keys / SHARDS).max(16),
            hasher: ahash::RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    /// Before `key` is added to a full shard: drop the entries `live` rejects, then, if the
    /// shard is still full, any one entry; evictions are counted.
    fn make_room<V>(
        &self,
        shard: &mut AHashMap<String, V>,
        key: &str,
        mut live: impl FnMut(&mut V) -> bool,
    ) {
        if shard.contains_key(key) || shard.len() < self.max_keys_per_shard {
            return;
        }
        let before = shard.len();
        shard.retain(|_, v| live(v));
        if shard.len() >= self.max_keys_per_shard {
            if let Some(k) = shard.keys().next().cloned() {
                shard.remove(&k);
            }
        }
        Self::evicted(before - shard.len());
    }

    fn evicted(n: usize) {
        if n > 0 {
            if let Some(m) = crate::observe::metrics::get() {
                m.store_evictions.inc_by(n as u64);
            }
        }
    }
}

impl Log {
    fn expire(&mut self, now: Instant) {
        while let Some(&(t, c)) = self.hits.front() {
            if now.duration_since(t) >= self.window {
                self.hits.pop_front();
                self.sum -= c;
            } else {
                break;
            }
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn sliding_hit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
        count: u64,
        record: bool,
    ) -> Result<Sliding, StoreError> {
        let now = Instant::now();
        let mut shard = self.logs[self.shard(key)].lock();
        // Drop keys whose windows are empty first, then any key.
        self.make_room(&mut shard, key, |l| {
            l.expire(now);
            l.sum > 0
        });
        let log = shard.entry(key.to_string()).or_insert_with(|| Log {
            hits: VecDeque::new(),
            sum: 0,
            window,
        });
        log.window = window;
        log.expire(now);
        if log.sum + count <= limit {
            if record && count > 0 {
                log.hits.push_back((now, count));
                log.sum += count;
            }
            let count_now = if record { log.sum } else { log.sum + count };
            return Ok(Sliding {
                admitted: true,
                count: count_now,
                retry_after: Duration::ZERO,
            });
        }
        // How long until enough of the oldest hits leave the window.
        let mut need = (log.sum + count).saturating_sub(limit);
        let mut retry = window;
        for &(t, c) in &log.hits {
            retry = window.saturating_sub(now.duration_since(t));
            if c >= need {
                break;
            }
            need -= c;
        }
        Ok(Sliding {
            admitted: false,
            count: log.sum,
            retry_after: retry,
        })
    }

    async fn sliding_add(&self, key: &str, window: Duration, count: u64) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut shard = self.logs[self.shard(key)].lock();
        let log = shard.entry(key.to_string()).or_insert_with(|| Log {
            hits: VecDeque::new(),
            sum: 0,
            window,
        });
        log.window = window;
        log.expire(now);
        if count > 0 {
            log.hits.push_back((now, count));
            log.sum += count;
        }
        Ok(())
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
        let now = Instant::now();
        let mut shard = self.quotas[self.shard(key)].lock();
        self.make_room(&mut shard, key, |q| q.expires.is_none_or(|e| e > now));
        let e = shard.entry(key.to_string()).or_insert(QuotaEntry {
            window_id,
            calls: 0,
            bytes: 0,
            expires: None,
        });
        if e.window_id != window_id || e.expires.is_some_and(|x| x <= now) {
            *e = QuotaEntry {
                window_id,
                calls: 0,
                bytes: 0,
                expires: None,
            };
        }
        e.expires = ttl.map(|t| now + t);
        let over_calls = max_calls > 0 && e.calls + calls.max(1) > max_calls;
        let over_bytes = max_bytes > 0 && e.bytes >= max_bytes;
        if over_calls || over_bytes {
            return Ok(Quota {
                admitted: false,
                calls: e.calls,
                bytes: e.bytes,
            });
        }
        if record {
            e.calls += calls;
            e.bytes += bytes;
        }
        Ok(Quota {
            admitted: true,
            calls: e.calls,
            bytes: e.bytes,
        })
    }

    async fn acquire(&self, key: &str, max: u64, _ttl: Duration) -> Result<bool, StoreError> {
        let mut slots = self.slots.lock();
        let n = slots.entry(key.to_string()).or_insert(0);
        if *n >= max {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }

    async fn release(&self, key: &str) {
        let mut slots = self.slots.lock();
        if let Some(n) = slots.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                slots.remove(key);
            }
        }
    }

    async fn cache_get(&self, key: &str, _external: bool) -> Option<Vec<u8>> {
        let now = Instant::now();
        let mut shard = self.cache[self.shard(key)].lock();
        match shard.get(key) {
            Some((v, exp)) if *exp > now => Some(v.clone()),
            Some(_) => {
                shard.remove(key);
                None
            }
            None => None,
        }
    }

    async fn cache_set(&self, key: &str, value: Vec<u8>, ttl: Duration, _external: bool) {
        let now = Instant::now();
        let mut shard = self.cache[self.shard(key)].lock();
        self.make_room(&mut shard, key, |(_, exp)| *exp > now);
        shard.insert(key.to_string(), (value, now + ttl));
    }

    async fn cache_remove(&self, key: &str, _external: bool) {
        self.cache[self.shard(key)].lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sliding_window_is_exact() {
        let s = MemoryStore::new(1000);
        let w = Duration::from_millis(200);
        for i in 0..3 {
            let r = s
                .sliding_hit("k", 3, w, 1, true)
                .await
                .unwrap_or_else(|_| panic!("store"));
            assert!(r.admitted, "hit {i}");
        }
        let r = s
            .sliding_hit("k", 3, w, 1, true)
            .await
            .unwrap_or_else(|_| panic!("store"));
        assert!(!r.admitted);
        assert!(r.retry_after <= w && r.retry_after > Duration::ZERO);
        tokio::time::sleep(w).await;
        assert!(s
            .sliding_hit("k", 3, w, 1, true)
            .await
            .map(|r| r.admitted)
            .unwrap_or(false));
    }

    fn count<V>(m: &[Mutex<AHashMap<String, V>>]) -> usize {
        m.iter().map(|x| x.lock().len()).sum()
    }

    #[tokio::test]
    async fn every_map_stays_within_max_keys() {
        // 16 shards x 16 keys (the per-shard floor) = 256 keys at most per kind.
        let s = MemoryStore::new(256);
        let hour = Duration::from_secs(3600);
        for i in 0..2000 {
            let k = format!("k{i}");
            let _ = s.sliding_hit(&k, 10, hour, 1, true).await;
            let _ = s.quota_hit(&k, 1, Some(hour), 10, 0, 1, 0, true).await;
            s.cache_set(&k, vec![1], hour, false).await;
        }
        assert!(count(&s.logs) <= 256, "{}", count(&s.logs));
        assert!(count(&s.quotas) <= 256);
        assert!(count(&s.cache) <= 256);
        // The newest key is always kept.
        assert!(s.cache_get("k1999", false).await.is_some());
    }

    #[tokio::test]
    async fn quota_windows_reset() {
        let s = MemoryStore::new(1000);
        assert!(s
            .quota_hit("q", 1, None, 2, 0, 1, 0, true)
            .await
            .map(|q| q.admitted)
            .unwrap_or(false));
        assert!(s
            .quota_hit("q", 1, None, 2, 0, 1, 0, true)
            .await
            .map(|q| q.admitted)
            .unwrap_or(false));
        assert!(!s
            .quota_hit("q", 1, None, 2, 0, 1, 0, true)
            .await
            .map(|q| q.admitted)
            .unwrap_or(true));
        assert!(s
            .quota_hit("q", 2, None, 2, 0, 1, 0, true)
            .await
            .map(|q| q.admitted)
            .unwrap_or(false));
    }
}
