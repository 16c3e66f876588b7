//! One contract, two stores: the same assertions run against the in-memory store and the Redis
//! store (a redis-server started on a free port), which must behave the same, minus sharing.

mod common;
use common::RedisServer;
use gatehouse::store::memory::MemoryStore;
use gatehouse::store::redis::{FailureMode, RedisStore};
use gatehouse::store::{Counted, Counter, Store};
use std::time::Duration;

async fn contract(s: &dyn Store, ns: &str) {
    let k = |x: &str| format!("{ns}-{x}");
    // Sliding window: exactly `limit` admitted, then a positive Retry-After, then admitted again.
    let w = Duration::from_millis(400);
    for i in 0..3 {
        let r = s
            .sliding_hit(&k("s"), 3, w, 1, true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.admitted, "hit {i}");
        assert_eq!(r.count, i + 1);
    }
    let r = s
        .sliding_hit(&k("s"), 3, w, 1, true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.admitted);
    assert!(
        r.retry_after > Duration::ZERO && r.retry_after <= w,
        "{:?}",
        r.retry_after
    );
    // Check-only does not record.
    let r = s
        .sliding_hit(&k("c"), 1, w, 1, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.admitted);
    assert!(s
        .sliding_hit(&k("c"), 1, w, 1, true)
        .await
        .map(|r| r.admitted)
        .unwrap_or(false));
    // Deferred adds count.
    s.sliding_add(&k("d"), w, 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!s
        .sliding_hit(&k("d"), 2, w, 1, true)
        .await
        .map(|r| r.admitted)
        .unwrap_or(true));
    tokio::time::sleep(w + Duration::from_millis(50)).await;
    assert!(
        s.sliding_hit(&k("s"), 3, w, 1, true)
            .await
            .map(|r| r.admitted)
            .unwrap_or(false),
        "the window moved on"
    );

    // Quotas: calls per window id, bytes, check-only.
    assert!(s
        .quota_hit(&k("q"), 1, Some(Duration::from_secs(60)), 2, 0, 1, 0, true)
        .await
        .map(|q| q.admitted)
        .unwrap_or(false));
    assert!(s
        .quota_hit(&k("q"), 1, Some(Duration::from_secs(60)), 2, 0, 1, 0, true)
        .await
        .map(|q| q.admitted)
        .unwrap_or(false));
    assert!(!s
        .quota_hit(&k("q"), 1, Some(Duration::from_secs(60)), 2, 0, 1, 0, true)
        .await
        .map(|q| q.admitted)
        .unwrap_or(true));
    assert!(
        s.quota_hit(&k("q"), 2, Some(Duration::from_secs(60)), 2, 0, 1, 0, true)
            .await
            .map(|q| q.admitted)
            .unwrap_or(false),
        "next window"
    );
    s.quota_hit(&k("b"), 1, None, 0, 1024, 0, 2000, true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let q = s
        .quota_hit(&k("b"), 1, None, 0, 1024, 1, 0, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!q.admitted);
    assert_eq!(q.bytes, 2000);

    // Several counters as one unit: in order, each admitted one recorded, the first refusal
    // ends the batch (the counters after it neither checked nor recorded).
    let sliding = |key: String, limit: u64, record: bool| Counter::Sliding {
        key,
        limit,
        window: Duration::from_secs(60),
        count: 1,
        record,
    };
    let batch = [
        sliding(k("n1"), 5, true),
        Counter::Quota {
            key: k("nq"),
            window_id: 1,
            ttl: Some(Duration::from_secs(60)),
            max_calls: 5,
            max_bytes: 0,
            calls: 1,
            bytes: 0,
            record: true,
        },
        sliding(k("n2"), 1, true),
        sliding(k("n3"), 5, true),
    ];
    let first = s.count(&batch).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(Counted::admitted), "{first:?}");
    let second = s.count(&batch).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.len(), 3, "stops at the refusal: {second:?}");
    assert!(matches!(second[0], Counted::Sliding(x) if x.admitted && x.count == 2));
    assert!(matches!(second[1], Counted::Quota(x) if x.admitted && x.calls == 2));
    assert!(
        matches!(second[2], Counted::Sliding(x) if !x.admitted && x.retry_after > Duration::ZERO)
    );
    // n3 was counted once (by the first batch), not by the second.
    let n3 = s
        .sliding_hit(&k("n3"), 5, Duration::from_secs(60), 1, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n3.count, 2, "one recorded call plus this check");
    // A check (record false) does not count: the same counter checked then recorded.
    let pair = [sliding(k("n4"), 1, false), sliding(k("n4"), 1, true)];
    let r = s.count(&pair).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(r.iter().all(Counted::admitted), "{r:?}");
    let r = s.count(&pair).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.len(), 1, "{r:?}");

    // Semaphores.
    assert!(s
        .acquire(&k("l"), 2, Duration::from_secs(60))
        .await
        .unwrap_or(false));
    assert!(s
        .acquire(&k("l"), 2, Duration::from_secs(60))
        .await
        .unwrap_or(false));
    assert!(!s
        .acquire(&k("l"), 2, Duration::from_secs(60))
        .await
        .unwrap_or(true));
    s.release(&k("l")).await;
    assert!(s
        .acquire(&k("l"), 2, Duration::from_secs(60))
        .await
        .unwrap_or(false));

    // Cache with TTL.
    assert_eq!(s.cache_get(&k("v"), true).await, None);
    s.cache_set(&k("v"), b"value".to_vec(), Duration::from_millis(300), true)
        .await;
    assert_eq!(
        s.cache_get(&k("v"), true).await.as_deref(),
        Some(&b"value"[..])
    );
    s.cache_remove(&k("v"), true).await;
    assert_eq!(s.cache_get(&k("v"), true).await, None);
    s.cache_set(&k("t"), b"x".to_vec(), Duration::from_millis(200), true)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.cache_get(&k("t"), true).await, None, "expired");
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    let s = MemoryStore::new(10_000);
    contract(&s, "m").await;
}

#[tokio::test]
async fn redis_store_keeps_the_contract() {
    let redis = RedisServer::start();
    let s = RedisStore::new(
        &gatehouse::store::redis::Target {
            url: redis.url(),
            ..Default::default()
        },
        "contract",
        Duration::from_millis(500),
        FailureMode::FailClosed,
        10_000,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    s.warm_up().await;
    contract(&s, "r").await;
    assert!(!s.is_degraded());
}
