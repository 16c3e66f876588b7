//! Circuit breakers shared by the instances of one store (`circuit_breaker.rules[].shared`,
//! beyond APIM, which keeps a breaker per instance): a trip is published to the store as
//! `breaker:<backend>` holding the wall-clock time it ends, and every instance reads the shared
//! breakers' keys on each tick and opens its own circuit until then. One tick costs one store
//! read per shared breaker and instance, off the request path; a trip reaches the others
//! within a tick (`TICK`). The instances' clocks must agree (NTP) to within the trip times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Backend;
use crate::store::Store;

/// How often trips are published and read.
pub const TICK: Duration = Duration::from_millis(250);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn key(backend: &str) -> String {
    format!("breaker:{backend}")
}

/// Whether any backend has a shared breaker (the tick has nothing to do otherwise).
pub fn any(backends: &[Backend]) -> bool {
    backends
        .iter()
        .any(|b| b.state.breaker.as_ref().is_some_and(|br| br.rule.shared))
}

/// One tick: publish this instance's new trips, then follow the others'.
pub async fn sync(backends: &[Backend], store: &dyn Store) {
    for b in backends {
        let Some(br) = b.state.breaker.as_ref().filter(|br| br.rule.shared) else {
            continue;
        };
        if let Some(d) = br.unpublished_trip() {
            let until = unix_ms() + d.as_millis() as u64;
            store
                .cache_set(&key(&b.id), until.to_string().into_bytes(), d, true)
                .await;
            continue;
        }
        let Some(raw) = store.cache_get(&key(&b.id), true).await else {
            continue;
        };
        let until = String::from_utf8_lossy(&raw).parse::<u64>().unwrap_or(0);
        let now = unix_ms();
        if until > now && br.trip_remote(Duration::from_millis(until - now)) {
            log::warn!(
                "backend `{}`: circuit opened by another instance's trip, for {:.1}s",
                b.id,
                (until - now) as f64 / 1000.0
            );
        }
    }
}
