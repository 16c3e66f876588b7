//! Choosing the backend that takes the request: a single backend or a pool member, or the
//! 503 `BackendUnavailable` the engine answers when none is available.

use super::error::{ErrorKind, LimitDetail, PolicyError};
use super::model::Gateway;
use super::state::ReqState;
use crate::upstream::{self, Pick};

/// `fail-on-error-status-code="true"`: a 400-599 answer from the backend fails the request
/// with `BackendErrorStatusCode` (on-error runs; the backend's response is kept for it).
pub fn error_status(fail_on_error_status_code: bool, status: u16) -> Option<PolicyError> {
    (fail_on_error_status_code && status >= 400).then(|| {
        PolicyError::builtin(
            ErrorKind::BackendErrorStatusCode,
            "forward-request",
            format!("backend responded with status {status}"),
        )
    })
}

/// Resolve the request's backend entity before it is sent: the member that takes this call
/// (a pool member's URL becomes the request's base), or 503 `BackendUnavailable`.
#[allow(clippy::result_large_err)]
pub fn select(
    gw: &Gateway,
    req: &mut ReqState,
    except: &[usize],
) -> Result<Option<Pick>, PolicyError> {
    let Some(b) = req.target.backend else {
        return Ok(None);
    };
    match upstream::choose_except(&gw.backends, b, except) {
        Some(p) => {
            if gw.backends[b].is_pool() {
                req.target.base = gw.backends[p.backend].url.clone();
            }
            Ok(Some(p))
        }
        None => {
            upstream::note_unavailable(&gw.backends, b);

            let what = if gw.backends[b].is_pool() {
                "every member of pool"
            } else {
                "backend"
            };
            let mut e = PolicyError::builtin(
                ErrorKind::BackendUnavailable,
                "forward-request",
                format!(
                    "{what} `{}` is unavailable (circuit open or unhealthy)",
                    gw.backends[b].id
                ),
            );
            // When open circuits are why, say when the first of them lets a call through.
            if let Some(d) = upstream::reopens_in(&gw.backends, b) {
                e.detail = Some(LimitDetail {
                    message: ErrorKind::BackendUnavailable
                        .client_message()
                        .unwrap_or_default()
                        .to_string(),
                    retry_after_secs: d.as_millis().div_ceil(1000).max(1) as u64,
                    retry_after_header: Some(http::header::RETRY_AFTER),
                    status: None,
                });
            }
            Err(e)
        }
    }
}
