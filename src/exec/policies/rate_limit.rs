//! `<rate-limit-by-key>` and `<rate-limit>`: sliding windows in the store, exact in memory and
//! (with Redis) across instances. Exceeding a limit raises `RateLimitExceeded`: 429 with
//! `Retry-After` and `Rate limit is exceeded. Try again in N seconds.`

use super::*;
use std::time::Duration;

use super::limits::{
    parse_limit_outputs, parse_nested_limits, store_failure, LimitOutputs, ScopedLimit,
};
use crate::exec::error::LimitDetail;
use crate::exec::state::Deferred;
use crate::exec::{value, ErrorKind};
use crate::expr::Value;
use crate::store::Sliding;

#[derive(Clone, Debug)]
pub struct RateLimitByKey {
    pub calls: Val<u64>,
    pub period: Val<u64>,
    pub key: Val<String>,
    pub increment_condition: Option<Val<bool>>,
    pub increment_count: Option<Val<u64>>,
    pub outputs: LimitOutputs,
}

impl Policy for RateLimitByKey {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let calls = r.required_value("calls", parse_u64).unwrap_or(Val::Lit(1));
        let period = r
            .required_value("renewal-period", parse_period(300))
            .unwrap_or(Val::Lit(1));
        let key = r
            .required_value("counter-key", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        let increment_condition = r.value("increment-condition", parse_bool);
        let increment_count = r.value("increment-count", parse_u64);
        r.literal("increment-after-response");
        r.literal("flexible-retry-window");
        let outputs = parse_limit_outputs(r);
        Some(RateLimitByKey {
            calls,
            period,
            key,
            increment_condition,
            increment_count,
            outputs,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.calls, f);
        visit_val(&self.period, f);
        visit_val(&self.key, f);
        if let Some(c) = &self.increment_condition {
            visit_val(c, f);
        }
        if let Some(c) = &self.increment_count {
            visit_val(c, f);
        }
    }
}

impl Waits for RateLimitByKey {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        by_key(self, cx).await.map(|_| Step::Next)
    }
}

#[derive(Clone, Debug)]
pub struct RateLimit {
    pub calls: u64,
    pub period: u64,
    pub nested: Vec<ScopedLimit>,
    pub outputs: LimitOutputs,
}

impl Policy for RateLimit {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let calls = r.parsed_literal("calls", parse_u64).unwrap_or(1);
        if r.el.attr("calls").is_none() {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "<rate-limit> needs attribute `calls`",
            );
        }
        let period = r
            .parsed_literal("renewal-period", parse_period(300))
            .unwrap_or(1);
        let outputs = parse_limit_outputs(r);
        let nested = parse_nested_limits(r, false);
        Some(RateLimit {
            calls,
            period,
            nested,
            outputs,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }
}

impl Waits for RateLimit {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        per_subscription(self, cx).await.map(|_| Step::Next)
    }
}

const SEP: char = '\u{1f}';

fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

pub fn rejected(outputs: &LimitOutputs, retry: Duration, cx: &mut ExecCtx) -> StepError {
    let n = secs(retry).max(1);
    if let Some(v) = &outputs.retry_after_variable {
        cx.req.set_variable(v, Value::Int(n as i32));
    }
    StepError {
        kind: ErrorKind::RateLimitExceeded,
        message: "Rate limit is exceeded".into(),
        detail: Some(LimitDetail {
            message: format!("Rate limit is exceeded. Try again in {n} seconds."),
            retry_after_secs: n,
            retry_after_header: Some(
                outputs
                    .retry_after_header
                    .clone()
                    .unwrap_or(http::header::RETRY_AFTER),
            ),
            status: None,
        }),
    }
}

fn report(outputs: &LimitOutputs, calls: u64, count: u64, cx: &mut ExecCtx) {
    let remaining = calls.saturating_sub(count);
    if let Some(v) = &outputs.remaining_variable {
        cx.req.set_variable(v, Value::Int(remaining as i32));
    }
    let mut add = |h: &Option<HeaderName>, n: u64| {
        if let Some(h) = h {
            cx.req.extra_headers.retain(|(k, _)| k != h);
            cx.req.extra_headers.push((h.clone(), HeaderValue::from(n)));
        }
    };
    add(&outputs.remaining_header, remaining);
    add(&outputs.total_header, calls);
}

async fn by_key(r: &RateLimitByKey, cx: &mut ExecCtx<'_>) -> Result<(), StepError> {
    let calls = *value(&r.calls, cx)?;
    let period = *value(&r.period, cx)?;
    if !(1..=300).contains(&period) {
        return Err(StepError::expression(format!(
            "renewal-period must be 1 to 300 seconds, the expression returned {period}"
        )));
    }
    let key = value(&r.key, cx)?.into_owned();
    // One counter per (key, calls, period): reusing a key with other limits never mixes them.
    let store_key = format!("rlk{SEP}{calls}{SEP}{period}{SEP}{key}");
    let window = Duration::from_secs(period);
    let deferred = matches!(r.increment_condition, Some(Val::Expr(_)))
        || matches!(r.increment_count, Some(Val::Expr(_)));
    let result: Sliding = if deferred {
        // Check now against the current count; the increment waits for the response.
        let s = cx
            .store
            .sliding_hit(&store_key, calls, window, 1, false)
            .await
            .map_err(store_failure)?;
        if s.admitted {
            cx.req.deferred.push(Deferred::Sliding {
                key: store_key,
                window,
                condition: r.increment_condition.clone(),
                count: r.increment_count.clone(),
            });
        }
        s
    } else {
        let counts = !matches!(r.increment_condition, Some(Val::Lit(false)));
        let n = match &r.increment_count {
            Some(Val::Lit(n)) => *n,
            _ => 1,
        };
        cx.store
            .sliding_hit(
                &store_key,
                calls,
                window,
                if counts { n } else { 1 },
                counts,
            )
            .await
            .map_err(store_failure)?
    };
    if !result.admitted {
        report(&r.outputs, calls, calls, cx);
        return Err(rejected(&r.outputs, result.retry_after, cx));
    }
    report(&r.outputs, calls, result.count, cx);
    Ok(())
}

async fn per_subscription(r: &RateLimit, cx: &mut ExecCtx<'_>) -> Result<(), StepError> {
    // Without a subscription key the policy does nothing (apim-reference.md §2.1).
    let Some(sub) = cx.req.info.subscription else {
        return Ok(());
    };
    let gw = cx.gw;
    let sub_id = gw.subscriptions.list[sub].id.clone();
    let api = cx.req.info.api.map(|a| &gw.apis[a]);
    let op = api.and_then(|a| cx.req.info.operation.map(|o| &a.operations[o]));
    let mut limits = vec![(
        format!("rl{SEP}{sub_id}{SEP}{}{SEP}{}", r.calls, r.period),
        r.calls,
        r.period,
    )];
    for n in &r.nested {
        let api_match = api.is_some_and(|a| a.id == n.api || a.name == n.api);
        if !api_match || n.calls == 0 {
            continue;
        }
        match &n.operation {
            None => limits.push((
                format!(
                    "rl{SEP}{sub_id}{SEP}api{SEP}{}{SEP}{}{SEP}{}",
                    n.api, n.calls, n.period
                ),
                n.calls,
                n.period,
            )),
            Some(o) if op.is_some_and(|x| x.id == *o || x.name == *o) => limits.push((
                format!(
                    "rl{SEP}{sub_id}{SEP}op{SEP}{}{SEP}{o}{SEP}{}{SEP}{}",
                    n.api, n.calls, n.period
                ),
                n.calls,
                n.period,
            )),
            Some(_) => {}
        }
    }
    // One counter (no nested limit applies): one atomic check-and-record.
    if let [(key, calls, period)] = limits.as_slice() {
        let s = cx
            .store
            .sliding_hit(key, *calls, Duration::from_secs((*period).max(1)), 1, true)
            .await
            .map_err(store_failure)?;
        if !s.admitted {
            report(&r.outputs, *calls, *calls, cx);
            return Err(rejected(&r.outputs, s.retry_after, cx));
        }
        report(&r.outputs, *calls, s.count, cx);
        return Ok(());
    }
    // Check every counter first, then record: a rejected call counts nowhere.
    for (key, calls, period) in &limits {
        let s = cx
            .store
            .sliding_hit(key, *calls, Duration::from_secs((*period).max(1)), 1, false)
            .await
            .map_err(store_failure)?;
        if !s.admitted {
            report(&r.outputs, *calls, *calls, cx);
            return Err(rejected(&r.outputs, s.retry_after, cx));
        }
    }
    let mut lowest: Option<(u64, u64)> = None;
    for (key, calls, period) in limits {
        let s = cx
            .store
            .sliding_hit(&key, calls, Duration::from_secs(period.max(1)), 1, true)
            .await
            .map_err(store_failure)?;
        let remaining = calls.saturating_sub(s.count);
        if lowest.is_none_or(|(_, rem)| remaining < rem) {
            lowest = Some((calls, remaining));
        }
    }
    if let Some((calls, remaining)) = lowest {
        report(&r.outputs, calls, calls - remaining, cx);
    }
    Ok(())
}
