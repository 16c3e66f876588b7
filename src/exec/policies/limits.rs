//! What the rate-limit and quota policies share: the response headers and variables they set,
//! their nested `<api>` / `<operation>` limits, and how a store failure surfaces.

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

/// A nested `<api>` / `<operation>` limit of rate-limit or quota: matched by id (or name).
#[derive(Clone, Debug)]
pub struct ScopedLimit {
    pub api: String,
    pub operation: Option<String>,
    pub calls: u64,
    pub bandwidth_kb: u64,
    pub period: u64,
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
    let parent = r.el.name.clone();
    for api in r.children() {
        let mut ar = r.child(api);
        if api.name != "api" {
            not_allowed(ar.diags, api, &parent, "<api>");
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
                not_allowed(or.diags, op, "api", "<operation>");
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

/// A store failure in a limit policy (the configured failure mode applies in the store;
/// reaching here means closed).
pub(super) fn store_failure(e: crate::store::StoreError) -> StepError {
    StepError::new(crate::exec::ErrorKind::Internal, e.to_string())
}
