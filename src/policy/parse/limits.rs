//! Rate limits and quotas: `<rate-limit-by-key>`, `<rate-limit>`, `<quota-by-key>`, `<quota>`.

use super::*;

/// Response headers and variables the rate-limit and quota policies set.
#[derive(Clone, Debug, Default)]
pub struct LimitOutputs {
    pub retry_after_header: Option<HeaderName>,
    pub retry_after_variable: Option<String>,
    pub remaining_header: Option<HeaderName>,
    pub remaining_variable: Option<String>,
    pub total_header: Option<HeaderName>,
}

#[derive(Clone, Debug)]
pub struct RateLimitByKey {
    pub calls: Val<u64>,
    pub period: Val<u64>,
    pub key: Val<String>,
    pub increment_condition: Option<Val<bool>>,
    pub increment_count: Option<Val<u64>>,
    pub outputs: LimitOutputs,
}

/// A nested `<api>` / `<operation>` limit of rate-limit or quota: matched by id (or name).
#[derive(Clone, Debug)]
pub struct ScopedLimit {
    pub api: String,
    pub operation: Option<String>,
    pub calls: u64,
    pub bandwidth_kb: u64,
    pub period: u64,
}

#[derive(Clone, Debug)]
pub struct RateLimit {
    pub calls: u64,
    pub period: u64,
    pub nested: Vec<ScopedLimit>,
    pub outputs: LimitOutputs,
}

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

#[derive(Clone, Debug)]
pub struct QuotaPolicy {
    pub calls: u64,
    pub bandwidth_kb: u64,
    pub period: u64,
    pub nested: Vec<ScopedLimit>,
}

impl RateLimitByKey {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
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

impl QuotaByKey {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        visit_val(&self.key, f);
        if let Some(c) = &self.increment_condition {
            visit_val(c, f);
        }
        if let Some(c) = &self.increment_count {
            visit_val(c, f);
        }
    }
}

pub(super) fn rate_limit_by_key_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
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
    Some(StmtKind::RateLimitByKey(RateLimitByKey {
        calls,
        period,
        key,
        increment_condition,
        increment_count,
        outputs,
    }))
}

pub(super) fn rate_limit_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
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
    Some(StmtKind::RateLimit(RateLimit {
        calls,
        period,
        nested,
        outputs,
    }))
}

pub(super) fn quota_by_key_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
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
    Some(StmtKind::QuotaByKey(QuotaByKey {
        key,
        calls,
        bandwidth_kb,
        period,
        increment_condition,
        increment_count,
        first_period_start,
    }))
}

pub(super) fn quota_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
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
    Some(StmtKind::Quota(QuotaPolicy {
        calls,
        bandwidth_kb,
        period,
        nested,
    }))
}

pub(super) fn parse_limit_outputs(r: &mut Reader) -> LimitOutputs {
    let header = |r: &mut Reader, n: &str| {
        r.parsed_literal(n, |s| {
            HeaderName::from_bytes(s.trim().as_bytes())
                .map_err(|_| crate::invalid!("invalid header name {s:?}"))
        })
    };
    LimitOutputs {
        retry_after_header: header(r, "retry-after-header-name"),
        retry_after_variable: r.literal("retry-after-variable-name").map(|(v, _)| v),
        remaining_header: header(r, "remaining-calls-header-name"),
        remaining_variable: r.literal("remaining-calls-variable-name").map(|(v, _)| v),
        total_header: header(r, "total-calls-header-name"),
    }
}

/// `<api name|id calls renewal-period><operation .../></api>` children of rate-limit / quota.
pub(super) fn parse_nested_limits(r: &mut Reader, quota: bool) -> Vec<ScopedLimit> {
    let mut out = Vec::new();
    for api in r.children() {
        let mut ar = r.child(api);
        if api.name != "api" {
            ar.diags.error(
                "P014",
                api.span.clone(),
                format!("<{}> is not allowed here; expected <api>", api.name),
            );
            continue;
        }
        let limit = |rr: &mut Reader| -> (String, u64, u64, u64) {
            let id = rr
                .literal("id")
                .or_else(|| rr.literal("name"))
                .map(|(v, _)| v)
                .unwrap_or_default();
            let _ = rr.literal("name");
            let calls = rr.parsed_literal("calls", parse_u64).unwrap_or(0);
            let bw = if quota {
                rr.parsed_literal("bandwidth", parse_u64).unwrap_or(0)
            } else {
                0
            };
            let period = rr.parsed_literal("renewal-period", parse_u64).unwrap_or(0);
            (id, calls, bw, period)
        };
        let (api_id, calls, bw, period) = limit(&mut ar);
        if calls > 0 || bw > 0 {
            out.push(ScopedLimit {
                api: api_id.clone(),
                operation: None,
                calls,
                bandwidth_kb: bw,
                period,
            });
        }
        for op in ar.children() {
            let mut or = ar.child(op);
            if op.name != "operation" {
                or.diags.error(
                    "P014",
                    op.span.clone(),
                    format!(
                        "<{}> is not allowed in <api>; expected <operation>",
                        op.name
                    ),
                );
                continue;
            }
            let (op_id, calls, bw, period) = limit(&mut or);
            out.push(ScopedLimit {
                api: api_id.clone(),
                operation: Some(op_id),
                calls,
                bandwidth_kb: bw,
                period,
            });
            or.no_children();
            or.finish();
        }
        ar.finish();
    }
    out
}
