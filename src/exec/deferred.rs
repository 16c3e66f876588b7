//! Work that waits for the end of the request: a cache fill that never reached cache-store
//! wakes its waiters (and gives up the shared store's fill lock), limit-concurrency slots held across forward-request are released, and
//! counter increments that depend on the response (rate-limit `increment-condition`, quota
//! `increment-count`, quota bandwidth) are evaluated against the final response and applied.

use super::state::Deferred;
use super::ExecCtx;

/// Finish the request. `bytes`: the response body bytes sent (quota bandwidth).
pub async fn finish(cx: &mut ExecCtx<'_>, bytes: u64) {
    if let Some(c) = cx.req.cache.as_ref().filter(|c| c.filler) {
        super::policies::cache::release_fill(&c.key);
    }
    if let Some((key, token)) = cx
        .req
        .cache
        .as_mut()
        .and_then(|c| c.lock.take().map(|t| (c.key.clone(), t)))
    {
        cx.store.fill_unlock(&key, &token).await;
    }
    for k in std::mem::take(&mut cx.req.held_slots) {
        cx.store.release(&k).await;
    }
    let deferred = std::mem::take(&mut cx.req.deferred);
    for d in deferred {
        let (cond, count) = match &d {
            Deferred::Sliding {
                condition, count, ..
            }
            | Deferred::QuotaCalls {
                condition, count, ..
            } => {
                let c = condition
                    .as_ref()
                    .map_or(Ok(true), |v| super::value(v, cx).map(|b| *b));
                let n = count
                    .as_ref()
                    .map_or(Ok(1), |v| super::value(v, cx).map(|n| *n));
                (c, n)
            }
            Deferred::QuotaBytes { .. } => (Ok(true), Ok(0)),
        };
        let (Ok(cond), Ok(count)) = (cond, count) else {
            log::warn!(
                "request {}: a deferred increment's expression failed; not counted",
                cx.req.request_id
            );
            continue;
        };
        if !cond {
            continue;
        }
        let r = match d {
            Deferred::Sliding { key, window, .. } => {
                cx.store.sliding_add(&key, window, count).await
            }
            Deferred::QuotaCalls {
                key,
                window_id,
                ttl,
                ..
            } => cx
                .store
                .quota_hit(&key, window_id, ttl, 0, 0, count, 0, true)
                .await
                .map(|_| ()),
            Deferred::QuotaBytes {
                key,
                window_id,
                ttl,
            } => cx
                .store
                .quota_hit(&key, window_id, ttl, 0, 0, 0, bytes, true)
                .await
                .map(|_| ()),
        };
        if let Err(e) = r {
            log::warn!(
                "request {}: deferred increment failed: {e}",
                cx.req.request_id
            );
        }
    }
}
