//! Shared state for traffic control: sliding-window rate counters and fixed-window quotas.
//! `memory` is the embedded default; a Redis implementation behind the same trait makes
//! several instances act as one.

pub mod memory;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;

/// The result of a sliding-window check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sliding {
    pub admitted: bool,
    /// Calls counted in the window after this request (admitted or not).
    pub count: u64,
    /// When rejected: how long until the request would fit.
    pub retry_after: Duration,
}

impl Sliding {
    /// The answer of a store whose failure mode admits everything.
    pub const OPEN: Sliding = Sliding {
        admitted: true,
        count: 0,
        retry_after: Duration::ZERO,
    };
}

/// The result of a fixed-window quota check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub admitted: bool,
    pub calls: u64,
    pub bytes: u64,
}

impl Quota {
    /// The answer of a store whose failure mode admits everything.
    pub const OPEN: Quota = Quota {
        admitted: true,
        calls: 0,
        bytes: 0,
    };
}

/// One counter of a batch (`Store::count`): a sliding-window hit or a fixed-window quota hit,
/// with the arguments of `Store::sliding_hit` / `Store::quota_hit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Counter {
    Sliding {
        key: String,
        limit: u64,
        window: Duration,
        count: u64,
        record: bool,
    },
    Quota {
        key: String,
        window_id: i64,
        ttl: Option<Duration>,
        max_calls: u64,
        max_bytes: u64,
        calls: u64,
        bytes: u64,
        record: bool,
    },
}

/// What one counter of a batch answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    Sliding(Sliding),
    Quota(Quota),
}

impl Counter {
    /// The store key it counts under.
    pub fn key(&self) -> &str {
        match self {
            Counter::Sliding { key, .. } | Counter::Quota { key, .. } => key,
        }
    }
}

impl Counted {
    pub fn admitted(&self) -> bool {
        match self {
            Counted::Sliding(s) => s.admitted,
            Counted::Quota(q) => q.admitted,
        }
    }

    /// The answer of a store whose failure mode admits everything.
    pub fn open(c: &Counter) -> Counted {
        match c {
            Counter::Sliding { .. } => Counted::Sliding(Sliding::OPEN),
            Counter::Quota { .. } => Counted::Quota(Quota::OPEN),
        }
    }
}

/// One counter through the store's single calls (`sliding_hit` / `quota_hit`).
pub async fn count_one<S: Store + ?Sized>(store: &S, c: &Counter) -> Result<Counted, StoreError> {
    Ok(match c {
        Counter::Sliding {
            key,
            limit,
            window,
            count,
            record,
        } => Counted::Sliding(
            store
                .sliding_hit(key, *limit, *window, *count, *record)
                .await?,
        ),
        Counter::Quota {
            key,
            window_id,
            ttl,
            max_calls,
            max_bytes,
            calls,
            bytes,
            record,
        } => Counted::Quota(
            store
                .quota_hit(
                    key, *window_id, *ttl, *max_calls, *max_bytes, *calls, *bytes, *record,
                )
                .await?,
        ),
    })
}

/// `Store::count` one counter at a time: what a store without batches does.
pub async fn count_each<S: Store + ?Sized>(
    store: &S,
    counters: &[Counter],
) -> Result<Vec<Counted>, StoreError> {
    let mut out = Vec::with_capacity(counters.len());
    for c in counters {
        let r = store.count_one(c).await?;
        let refused = !r.admitted();
        out.push(r);
        if refused {
            break;
        }
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Everything policies keep between requests: rate and quota counters, the response and value
/// cache, concurrency slots. `memory` keeps it in the process, `redis` shares it between
/// instances.
#[async_trait]
pub trait Store: Send + Sync {
    /// Sliding window over `window`: if the calls counted in the last `window` plus `count`
    /// stay within `limit`, record `count` and admit. With `record` false, only check (the
    /// increment comes later through `sliding_add`).
    async fn sliding_hit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
        count: u64,
        record: bool,
    ) -> Result<Sliding, StoreError>;

    /// Several counters in order, as one unit where the store can (Redis: one script call,
    /// one round trip): each admitted counter is recorded (when its `record` says so) and the
    /// first refused one ends the batch, the rest neither checked nor recorded, exactly as
    /// calling them one by one would. One answer per counter run; the last is the refusal,
    /// if any.
    async fn count(&self, counters: &[Counter]) -> Result<Vec<Counted>, StoreError> {
        count_each(self, counters).await
    }

    /// One counter (`count` with one, without a vector of answers).
    async fn count_one(&self, c: &Counter) -> Result<Counted, StoreError> {
        count_one(self, c).await
    }

    /// Record `count` calls now without checking (deferred increments).
    async fn sliding_add(&self, key: &str, window: Duration, count: u64) -> Result<(), StoreError>;

    /// Fixed window `window_id` (kept for `ttl`): admit when `calls` more stay within
    /// `max_calls` and the bytes counted so far are below `max_bytes` (`0` = no limit); with
    /// `record`, add `calls` and `bytes`.
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<Quota, StoreError>;

    /// Whether a shared store is unreachable and its failure mode is in force.
    fn degraded(&self) -> bool {
        false
    }

    /// Connect ahead of the first request (called once the server has started).
    async fn warm_up(&self) {}

    /// Take one of `max` slots of a semaphore (limit-concurrency); false when all are taken.
    /// `ttl` bounds how long a slot can outlive a crashed holder.
    async fn acquire(&self, key: &str, max: u64, ttl: Duration) -> Result<bool, StoreError>;
    async fn release(&self, key: &str);

    /// The value cache (cache-lookup-value and friends). `external`: use the shared store when
    /// there is one (`caching-type` external / prefer-external), else this instance's memory.
    /// Failures are soft: a miss, or a skipped write.
    async fn cache_get(&self, key: &str, external: bool) -> Option<Vec<u8>>;
    async fn cache_set(&self, key: &str, value: Vec<u8>, ttl: Duration, external: bool);
    async fn cache_remove(&self, key: &str, external: bool);

    /// Take the lock to fill a shared cache entry (only one instance fetches a missing key):
    /// `Some(token)` when taken, `None` when another holds it. A store shared by nobody, or one
    /// that cannot answer, gives every caller the lock (`Some`): the fill goes ahead.
    async fn fill_lock(&self, _key: &str, _ttl: Duration) -> Option<String> {
        Some(String::new())
    }

    /// Release a fill lock taken with `token` (a lock that expired and was taken by another is
    /// left alone).
    async fn fill_unlock(&self, _key: &str, _token: &str) {}
}
