//! `<quota-by-key>` and `<quota>`: fixed windows aligned to a start time (`first-period-start`
//! for quota-by-key; the subscription's `start_date` for `quota`, default 0001-01-01), counting calls and bandwidth (request + response bytes, added after the
//! response). Exceeding raises `QuotaExceeded`: 403 with `Retry-After`.

use super::*;
use std::time::Duration;

use super::limits::{parse_nested_limits, run_alone, Counts, ScopedLimit};
use crate::exec::error::LimitDetail;
use crate::exec::state::Deferred;
use crate::exec::{value, ErrorKind};
use crate::expr::datetime::{format_timespan, DateTime, TICKS_PER_SECOND};
use crate::store::{Counted, Counter};

#[derive(Clone, Debug)]
pub struct QuotaByKey {
    pub key: Val<String>,
    pub calls: u64,
    pub bandwidth_kb: u64,
    /// Seconds; 0 = the quota never renews.
    pub period: u64,
    pub increment_condition: Option<Val<bool>>,
    pub increment_count: Option<Val<u64>>,
    /// Unix seconds the windows are aligned to.
    pub first_period_start: i64,
}

impl Policy for QuotaByKey {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let key = r
            .required_value("counter-key", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        let calls = r.parsed_literal("calls", parse_u64).unwrap_or(0);
        let bandwidth_kb = r.parsed_literal("bandwidth", parse_u64).unwrap_or(0);
        if calls == 0 && bandwidth_kb == 0 {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "<quota-by-key> needs `calls` and/or `bandwidth`",
            );
        }
        let period = r.parsed_literal("renewal-period", parse_u64).unwrap_or(0);
        if period != 0 && period < 300 {
            r.diags.error(
                "P012",
                r.el.attr("renewal-period")
                    .map_or(r.el.span.clone(), |a| a.span.clone()),
                "quota-by-key `renewal-period` must be 0 (never renews) or at least 300 seconds",
            );
        }
        let increment_condition = r.value("increment-condition", parse_bool);
        let increment_count = r.value("increment-count", parse_u64);
        let first_period_start = r
            .parsed_literal("first-period-start", parse_start)
            .unwrap_or(crate::expr::datetime::EPOCH_0001);
        Some(QuotaByKey {
            key,
            calls,
            bandwidth_kb,
            period,
            increment_condition,
            increment_count,
            first_period_start,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn counts(&self) -> Option<&dyn Counts> {
        Some(self)
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.key, f);
        if let Some(c) = &self.increment_condition {
            visit_val(c, f);
        }
        if let Some(c) = &self.increment_count {
            visit_val(c, f);
        }
    }
}

impl Waits for QuotaByKey {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run_alone(self, cx).await
    }
}

#[derive(Clone, Debug)]
pub struct QuotaPolicy {
    pub calls: u64,
    pub bandwidth_kb: u64,
    pub period: u64,
    pub nested: Vec<ScopedLimit>,
}

impl Policy for QuotaPolicy {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let calls = r.parsed_literal("calls", parse_u64).unwrap_or(0);
        let bandwidth_kb = r.parsed_literal("bandwidth", parse_u64).unwrap_or(0);
        let period = r.parsed_literal("renewal-period", parse_u64).unwrap_or(0);
        if r.el.attr("renewal-period").is_none() {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "<quota> needs attribute `renewal-period`",
            );
        }
        let nested = parse_nested_limits(r, true);
        if calls == 0 && bandwidth_kb == 0 && nested.is_empty() {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "<quota> needs `calls` and/or `bandwidth`",
            );
        }
        Some(QuotaPolicy {
            calls,
            bandwidth_kb,
            period,
            nested,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn counts(&self) -> Option<&dyn Counts> {
        Some(self)
    }
}

impl Waits for QuotaPolicy {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run_alone(self, cx).await
    }
}

const SEP: char = '\u{1f}';

/// The current window (id, seconds left, time to keep it) for a period aligned to `start`.
pub fn window(start: i64, period: u64, now: i64) -> (i64, u64, Option<Duration>) {
    if period == 0 {
        return (0, 0, None);
    }
    let p = period as i64;
    let id = (now - start).div_euclid(p);
    let left = (start + (id + 1) * p - now).max(1) as u64;
    (id, left, Some(Duration::from_secs(left + 60)))
}

fn rejected(bandwidth: bool, left: u64) -> StepError {
    let when = format_timespan(left as i64 * TICKS_PER_SECOND);
    let message = if bandwidth {
        format!("Out of bandwidth quota. Quota will be replenished in {when}.")
    } else {
        format!("Out of call volume quota. Quota will be replenished in {when}.")
    };
    StepError {
        kind: ErrorKind::QuotaExceeded,
        message: message.clone(),
        detail: Some(LimitDetail {
            message,
            retry_after_secs: left,
            retry_after_header: Some(http::header::RETRY_AFTER),
            status: None,
        }),
    }
}

/// Seconds left in the window a quota counter names (its `ttl` is that plus a minute).
fn left(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |t| t.as_secs().saturating_sub(60))
}

/// One quota counter: checked now, recorded now unless its increment is deferred to the
/// response or the key was already counted in this request (once per request, however many
/// policies name it).
#[allow(clippy::too_many_arguments)]
fn plan(
    cx: &ExecCtx<'_>,
    counters: &mut Vec<Counter>,
    key: String,
    start: i64,
    period: u64,
    calls: u64,
    bandwidth_kb: u64,
    condition: Option<&Val<bool>>,
    count: Option<&Val<u64>>,
) {
    let now = DateTime::now_utc().unix_seconds();
    let (id, _, ttl) = window(start, period, now);
    let deferred = matches!(condition, Some(Val::Expr(_))) || matches!(count, Some(Val::Expr(_)));
    let first = !cx.req.quota_keys.contains(&key)
        && !counters
            .iter()
            .any(|c| matches!(c, Counter::Quota { key: k, .. } if *k == key));
    let n = match count {
        Some(Val::Lit(n)) => *n,
        _ => 1,
    };
    let counts = !deferred && first && !matches!(condition, Some(Val::Lit(false)));
    counters.push(Counter::Quota {
        key,
        window_id: id,
        ttl,
        max_calls: calls,
        max_bytes: bandwidth_kb * 1024,
        calls: if counts { n } else { 1 },
        bytes: 0,
        record: counts,
    });
}

/// Read the answers of a quota policy's counters: the first refusal rejects; each admitted
/// key counted for the first time in this request is remembered, with its deferred
/// increments (calls decided by the response, and the bandwidth).
fn finish(
    cx: &mut ExecCtx<'_>,
    counters: &[Counter],
    counted: &[Counted],
    condition: Option<&Val<bool>>,
    count: Option<&Val<u64>>,
) -> Result<(), StepError> {
    let deferred = matches!(condition, Some(Val::Expr(_))) || matches!(count, Some(Val::Expr(_)));
    for (c, q) in counters.iter().zip(counted) {
        let (
            Counter::Quota {
                key,
                window_id,
                ttl,
                max_calls,
                max_bytes,
                ..
            },
            Counted::Quota(q),
        ) = (c, q)
        else {
            continue;
        };
        if !q.admitted {
            let bandwidth = *max_bytes > 0 && q.bytes >= *max_bytes;
            return Err(rejected(bandwidth, left(*ttl)));
        }
        if cx.req.quota_keys.contains(key) {
            continue;
        }
        cx.req.quota_keys.push(key.clone());
        if deferred && *max_calls > 0 {
            cx.req.deferred.push(Deferred::QuotaCalls {
                key: key.clone(),
                window_id: *window_id,
                ttl: *ttl,
                condition: condition.cloned(),
                count: count.cloned(),
            });
        }
        if *max_bytes > 0 {
            cx.req.deferred.push(Deferred::QuotaBytes {
                key: key.clone(),
                window_id: *window_id,
                ttl: *ttl,
            });
        }
    }
    Ok(())
}

impl Counts for QuotaByKey {
    fn plan(&self, cx: &mut ExecCtx<'_>, counters: &mut Vec<Counter>) -> Result<(), StepError> {
        let key = value(&self.key, cx)?;
        let key = format!(
            "qk{SEP}{}{SEP}{}{SEP}{key}",
            self.period, self.first_period_start
        );
        plan(
            cx,
            counters,
            key,
            self.first_period_start,
            self.period,
            self.calls,
            self.bandwidth_kb,
            self.increment_condition.as_ref(),
            self.increment_count.as_ref(),
        );
        Ok(())
    }

    fn finish(
        &self,
        cx: &mut ExecCtx<'_>,
        counters: &[Counter],
        counted: &[Counted],
    ) -> Result<(), StepError> {
        finish(
            cx,
            counters,
            counted,
            self.increment_condition.as_ref(),
            self.increment_count.as_ref(),
        )
    }
}

impl Counts for QuotaPolicy {
    /// The subscription's counter, then the nested ones that apply, in order.
    fn plan(&self, cx: &mut ExecCtx<'_>, counters: &mut Vec<Counter>) -> Result<(), StepError> {
        let Some(sub) = cx.req.info.subscription else {
            return Ok(());
        };
        let gw = cx.gw;
        let sub_id = &gw.subscriptions.list[sub].id;
        let start = gw.subscriptions.list[sub].start;
        if self.calls > 0 || self.bandwidth_kb > 0 {
            let key = format!("q{SEP}{sub_id}{SEP}{}", self.period);
            plan(
                cx,
                counters,
                key,
                start,
                self.period,
                self.calls,
                self.bandwidth_kb,
                None,
                None,
            );
        }
        let api = cx.req.info.api.map(|a| &gw.apis[a]);
        let op = api.and_then(|a| cx.req.info.operation.map(|o| &a.operations[o]));
        for n in &self.nested {
            if !api.is_some_and(|a| a.id == n.api || a.name == n.api) {
                continue;
            }
            let key = match &n.operation {
                None => format!("q{SEP}{sub_id}{SEP}api{SEP}{}{SEP}{}", n.api, n.period),
                Some(o) if op.is_some_and(|x| x.id == *o || x.name == *o) => format!(
                    "q{SEP}{sub_id}{SEP}op{SEP}{}{SEP}{o}{SEP}{}",
                    n.api, n.period
                ),
                Some(_) => continue,
            };
            plan(
                cx,
                counters,
                key,
                start,
                n.period,
                n.calls,
                n.bandwidth_kb,
                None,
                None,
            );
        }
        Ok(())
    }

    fn finish(
        &self,
        cx: &mut ExecCtx<'_>,
        counters: &[Counter],
        counted: &[Counted],
    ) -> Result<(), StepError> {
        finish(cx, counters, counted, None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_the_start() {
        assert_eq!(window(0, 300, 299), (0, 1, Some(Duration::from_secs(61))));
        assert_eq!(window(0, 300, 300).0, 1);
        assert_eq!(
            window(100, 300, 50),
            (-1, 50, Some(Duration::from_secs(110)))
        );
        assert_eq!(window(0, 0, 12345), (0, 0, None));
    }
}
