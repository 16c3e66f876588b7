//! `<retry>`: run the children; while `condition` is true and retries remain, wait and run them
//! again (apim-reference.md §2.4). Waits: `interval` alone is fixed; with `delta` linear
//! (`interval + k*delta`); with `delta` and `max-interval` exponential
//! (`interval + (2^k - 1) * random(0.8, 1.2) * delta`, capped), k being the retries made so far;
//! `first-fast-retry` makes the first retry immediate.
//!
//! A failure of forward-request inside the children (BackendConnectionFailure, Timeout,
//! BackendUnavailable) is retryable: `context.LastError` holds it while `condition` is
//! evaluated, and when no retry follows it goes to on-error. Every other failure goes to
//! on-error at once (APIM: errors in the children are not retried `[unverified]`).

use super::document::parse_statements;
use super::*;
use crate::exec::{run_nested, value, ErrorKind, PolicyError};
use rand::Rng;
use std::time::Duration;

/// `<retry>`: times in seconds.
#[derive(Clone, Debug)]
pub struct Retry {
    pub condition: Val<bool>,
    pub count: Val<u64>,
    pub interval: Val<u64>,
    pub delta: Option<Val<u64>>,
    pub max_interval: Option<Val<u64>>,
    pub first_fast_retry: Val<bool>,
    pub body: Vec<Stmt>,
}

impl Policy for Retry {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read(r)
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.condition, f);
        visit_val(&self.count, f);
        visit_val(&self.interval, f);
        if let Some(d) = &self.delta {
            visit_val(d, f);
        }
        if let Some(m) = &self.max_interval {
            visit_val(m, f);
        }
        visit_val(&self.first_fast_retry, f);
        self.body.iter().for_each(|s| s.visit_exprs(f));
    }

    fn children(&self) -> Vec<&Stmt> {
        self.body.iter().collect()
    }
}

impl Waits for Retry {
    /// Boxed, as validate-jwt's: a large future that would otherwise size every section's.
    fn run(&self, cx: &mut ExecCtx<'_>, at: &At<'_>) -> impl Future<Output = Outcome> + Send {
        Box::pin(async move {
            match run(self, cx, at.inner()).await? {
                None => Ok(Step::Next),
                Some(flow) => Ok(Step::End(flow)),
            }
        })
    }
}

fn read(r: &mut Reader) -> Option<Retry> {
    let condition = r
        .required_value("condition", parse_bool)
        .unwrap_or(Val::Lit(false));
    let count = r
        .required_value("count", |s| {
            parse_u64(s).and_then(|n| {
                if (1..=50).contains(&n) {
                    Ok(n)
                } else {
                    Err(crate::invalid!("count must be 1 to 50, found {n}"))
                }
            })
        })
        .unwrap_or(Val::Lit(1));
    let interval = r.value("interval", parse_u64).unwrap_or(Val::Lit(0));
    let delta = r.value("delta", parse_u64);
    let max_interval = r.value("max-interval", parse_u64);
    let first_fast_retry = r
        .value("first-fast-retry", parse_bool)
        .unwrap_or(Val::Lit(false));
    r.children_checked = true;
    let body = parse_statements(r.el, r.env, r.diags);
    Some(Retry {
        condition,
        count,
        interval,
        delta,
        max_interval,
        first_fast_retry,
        body,
    })
}

/// Longest single wait (bounds a runaway expression).
const MAX_WAIT: Duration = Duration::from_secs(300);

/// Ok(None): continue after the retry; Ok(Some(flow)): the section ends with `flow`.
async fn run(r: &Retry, cx: &mut ExecCtx<'_>, inner: String) -> Result<Option<Flow>, StepError> {
    let count = *value(&r.count, cx)?;
    if !(1..=50).contains(&count) {
        return Err(StepError::expression(format!(
            "retry count must be 1 to 50, the expression returned {count}"
        )));
    }
    let interval = *value(&r.interval, cx)?;
    let delta = match &r.delta {
        Some(d) => Some(*value(d, cx)?),
        None => None,
    };
    let max_interval = match &r.max_interval {
        Some(m) => Some(*value(m, cx)?),
        None => None,
    };
    let first_fast = *value(&r.first_fast_retry, cx)?;
    let saved_error = cx.req.last_error.clone();
    let mut retries = 0u64;
    loop {
        cx.req.last_error = saved_error.clone();
        let failed = match run_nested(&r.body, cx, inner.clone()).await {
            Flow::Continue => None,
            Flow::Fail(e) if retryable(&e) => Some(e),
            other => {
                cx.req.last_error = saved_error;
                return Ok(Some(other));
            }
        };
        if let Some(e) = &failed {
            cx.req.last_error = Some(e.clone());
        }
        let again = retries < count && *value(&r.condition, cx)?;
        if !again {
            cx.req.last_error = saved_error;
            return Ok(failed.map(Flow::Fail));
        }
        let wait = if retries == 0 && first_fast {
            Duration::ZERO
        } else {
            delay(retries, interval, delta, max_interval)
        };
        retries += 1;
        if !wait.is_zero() {
            tokio::time::sleep(wait.min(MAX_WAIT)).await;
        }
    }
}

fn retryable(e: &PolicyError) -> bool {
    e.source == "forward-request"
        && matches!(
            e.kind,
            ErrorKind::BackendConnectionFailure
                | ErrorKind::Timeout
                | ErrorKind::BackendUnavailable
        )
}

/// The wait before retry number `k + 1` (k retries made so far), in seconds.
fn delay(k: u64, interval: u64, delta: Option<u64>, max: Option<u64>) -> Duration {
    let secs = match (delta, max) {
        (None, _) => interval as f64,
        (Some(d), None) => interval as f64 + (k * d) as f64,
        (Some(d), Some(m)) => {
            let factor = (1u64 << k.min(30)) - 1;
            let jitter = rand::thread_rng().gen_range(0.8..=1.2);
            (interval as f64 + factor as f64 * d as f64 * jitter).min(m as f64)
        }
    };
    Duration::from_secs_f64(secs.clamp(0.0, MAX_WAIT.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_fixed_linear_or_exponential() {
        let s = |d: Duration| d.as_secs_f64();
        assert_eq!(s(delay(0, 2, None, None)), 2.0);
        assert_eq!(s(delay(3, 2, None, None)), 2.0);
        assert_eq!(s(delay(0, 1, Some(2), None)), 1.0);
        assert_eq!(s(delay(2, 1, Some(2), None)), 5.0);
        // interval 10, delta 10, max 100: about 10, 20, 40, 80, then 100.
        assert_eq!(s(delay(0, 10, Some(10), Some(100))), 10.0);
        let second = s(delay(1, 10, Some(10), Some(100)));
        assert!((18.0..=22.0).contains(&second), "{second}");
        let third = s(delay(2, 10, Some(10), Some(100)));
        assert!((34.0..=46.0).contains(&third), "{third}");
        assert_eq!(s(delay(6, 10, Some(10), Some(100))), 100.0);
    }
}
