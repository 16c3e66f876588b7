//! `<rate-limit-by-key>` and `<rate-limit>`: sliding windows in the store, exact in memory and
//! (with Redis) across instances. Exceeding a limit raises `RateLimitExceeded`: 429 with
//! `Retry-After` and `Rate limit is exceeded. Try again in N seconds.`

use super::*;
use std::time::Duration;

use super::limits::{
    parse_limit_outputs, parse_nested_limits, run_alone, Counts, LimitOutputs, ScopedLimit,
};
use crate::exec::error::LimitDetail;
use crate::exec::state::Deferred;
use crate::exec::{value, ErrorKind};
use crate::expr::Value;
use crate::store::{Counted, Counter};

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

    fn counts(&self) -> Option<&dyn Counts> {
        Some(self)
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
        run_alone(self, cx).await
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

    fn counts(&self) -> Option<&dyn Counts> {
        Some(self)
    }
}

impl Waits for RateLimit {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run_alone(self, cx).await
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

impl RateLimitByKey {
    fn deferred(&self) -> bool {
        matches!(self.increment_condition, Some(Val::Expr(_)))
            || matches!(self.increment_count, Some(Val::Expr(_)))
    }
}

impl Counts for RateLimitByKey {
    fn plan(&self, cx: &mut ExecCtx<'_>, counters: &mut Vec<Counter>) -> Result<(), StepError> {
        let calls = *value(&self.calls, cx)?;
        let period = *value(&self.period, cx)?;
        if !(1..=300).contains(&period) {
            return Err(StepError::expression(format!(
                "renewal-period must be 1 to 300 seconds, the expression returned {period}"
            )));
        }
        let key = value(&self.key, cx)?;
        // One counter per (key, calls, period): reusing a key with other limits never mixes them.
        let key = format!("rlk{SEP}{calls}{SEP}{period}{SEP}{key}");
        // Deferred: check now against the current count; the increment waits for the response.
        let (count, record) = if self.deferred() {
            (1, false)
        } else {
            let counts = !matches!(self.increment_condition, Some(Val::Lit(false)));
            match &self.increment_count {
                Some(Val::Lit(n)) if counts => (*n, true),
                _ => (1, counts),
            }
        };
        counters.push(Counter::Sliding {
            key,
            limit: calls,
            window: Duration::from_secs(period),
            count,
            record,
        });
        Ok(())
    }

    fn finish(
        &self,
        cx: &mut ExecCtx<'_>,
        counters: &[Counter],
        counted: &[Counted],
    ) -> Result<(), StepError> {
        let (
            Some(Counter::Sliding {
                key, limit, window, ..
            }),
            Some(Counted::Sliding(s)),
        ) = (counters.first(), counted.first())
        else {
            return Ok(());
        };
        if !s.admitted {
            report(&self.outputs, *limit, *limit, cx);
            return Err(rejected(&self.outputs, s.retry_after, cx));
        }
        if self.deferred() {
            cx.req.deferred.push(Deferred::Sliding {
                key: key.clone(),
                window: *window,
                condition: self.increment_condition.clone(),
                count: self.increment_count.clone(),
            });
        }
        report(&self.outputs, *limit, s.count, cx);
        Ok(())
    }

    fn sets_variables(&self) -> bool {
        self.outputs.sets_variables()
    }
}

impl Counts for RateLimit {
    /// The subscription's counter and the nested ones that apply. With several, every counter
    /// is checked before any is recorded: a rejected call counts nowhere.
    fn plan(&self, cx: &mut ExecCtx<'_>, counters: &mut Vec<Counter>) -> Result<(), StepError> {
        // Without a subscription key the policy does nothing (apim-reference.md §2.1).
        let Some(sub) = cx.req.info.subscription else {
            return Ok(());
        };
        let gw = cx.gw;
        let sub_id = &gw.subscriptions.list[sub].id;
        let api = cx.req.info.api.map(|a| &gw.apis[a]);
        let op = api.and_then(|a| cx.req.info.operation.map(|o| &a.operations[o]));
        let check = |key: String, limit: u64, period: u64| Counter::Sliding {
            key,
            limit,
            window: Duration::from_secs(period.max(1)),
            count: 1,
            record: false,
        };
        let first = counters.len();
        counters.push(check(
            format!("rl{SEP}{sub_id}{SEP}{}{SEP}{}", self.calls, self.period),
            self.calls,
            self.period,
        ));
        for n in &self.nested {
            let api_match = api.is_some_and(|a| a.id == n.api || a.name == n.api);
            if !api_match || n.calls == 0 {
                continue;
            }
            let key = match &n.operation {
                None => format!(
                    "rl{SEP}{sub_id}{SEP}api{SEP}{}{SEP}{}{SEP}{}",
                    n.api, n.calls, n.period
                ),
                Some(o) if op.is_some_and(|x| x.id == *o || x.name == *o) => format!(
                    "rl{SEP}{sub_id}{SEP}op{SEP}{}{SEP}{o}{SEP}{}{SEP}{}",
                    n.api, n.calls, n.period
                ),
                Some(_) => continue,
            };
            counters.push(check(key, n.calls, n.period));
        }
        if counters.len() - first == 1 {
            // One counter: one check-and-record.
            if let Some(Counter::Sliding { record, .. }) = counters.last_mut() {
                *record = true;
            }
        } else {
            let records: Vec<Counter> = counters[first..]
                .iter()
                .cloned()
                .map(|mut c| {
                    if let Counter::Sliding { record, .. } = &mut c {
                        *record = true;
                    }
                    c
                })
                .collect();
            counters.extend(records);
        }
        Ok(())
    }

    fn finish(
        &self,
        cx: &mut ExecCtx<'_>,
        counters: &[Counter],
        counted: &[Counted],
    ) -> Result<(), StepError> {
        let limit = |i: usize| match counters.get(i) {
            Some(Counter::Sliding { limit, .. }) => *limit,
            _ => 0,
        };
        if counted.len() < counters.len() || counted.last().is_some_and(|c| !c.admitted()) {
            let i = counted.len().saturating_sub(1);
            if let Some(Counted::Sliding(s)) = counted.last() {
                report(&self.outputs, limit(i), limit(i), cx);
                return Err(rejected(&self.outputs, s.retry_after, cx));
            }
            return Ok(());
        }
        // The recorded counters (all, or the second half after the checks): report the one
        // with the fewest calls left.
        let recorded = if counters.len() == 1 {
            0
        } else {
            counters.len() / 2
        };
        let mut lowest: Option<(u64, u64)> = None;
        for (i, c) in counted.iter().enumerate().skip(recorded) {
            if let Counted::Sliding(s) = c {
                let remaining = limit(i).saturating_sub(s.count);
                if lowest.is_none_or(|(_, rem)| remaining < rem) {
                    lowest = Some((limit(i), remaining));
                }
            }
        }
        if let Some((calls, remaining)) = lowest {
            report(&self.outputs, calls, calls - remaining, cx);
        }
        Ok(())
    }

    fn sets_variables(&self) -> bool {
        self.outputs.sets_variables()
    }
}
