//! `<limit-concurrency>`: at most `max-count` requests inside the block at once per key; a
//! request finding it full fails at once with 429 (it does not queue). Around forward-request
//! the slot is held until the request ends (the response has been sent); otherwise it is
//! released when the nested statements finish, error or not.

use std::time::Duration;

use crate::exec::{value, ErrorKind, ExecCtx, StepError};
use crate::policy::Val;

/// Slots outlive a crashed holder by at most this long (Redis TTL).
const SLOT_TTL: Duration = Duration::from_secs(600);

/// Take a slot; returns the store key to release.
pub async fn acquire(
    key: &Val<String>,
    max: u64,
    cx: &mut ExecCtx<'_>,
) -> Result<String, StepError> {
    let key = value(key, cx)?.into_owned();
    let store_key = format!("{max}\u{1f}{key}");
    match cx.store.acquire(&store_key, max, SLOT_TTL).await {
        Ok(true) => Ok(store_key),
        Ok(false) => Err(StepError::new(
            ErrorKind::ConcurrencyLimitExceeded,
            format!("more than {max} concurrent requests for key {key:?}"),
        )),
        Err(e) => Err(StepError::new(ErrorKind::Internal, e.to_string())),
    }
}
