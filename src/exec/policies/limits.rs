//! What the rate-limit and quota policies share: the response headers and variables they set,
//! their nested `<api>` / `<operation>` limits, how a store failure surfaces, and how several
//! of them in a row count in one store call.

use super::*;
use crate::store::{Counted, Counter};

/// Response headers and variables the rate-limit and quota policies set.
#[derive(Clone, Debug, Default)]
pub struct LimitOutputs {
    pub retry_after_header: Option<HeaderName>,
    pub retry_after_variable: Option<String>,
    pub remaining_header: Option<HeaderName>,
    pub remaining_variable: Option<String>,
    pub total_header: Option<HeaderName>,
}

impl LimitOutputs {
    pub fn sets_variables(&self) -> bool {
        self.retry_after_variable.is_some() || self.remaining_variable.is_some()
    }
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

/// A limit policy that counts in the store, in three steps: plan (evaluate its keys, list its
/// counters), count (one store call, shared with the limit statements next to it), finish
/// (read the answers: headers, variables, deferred increments, or the refusal).
pub trait Counts: Sync {
    /// Append this statement's counters to `counters`, which holds those of the statements
    /// before it in the same store call.
    fn plan(&self, cx: &mut ExecCtx<'_>, counters: &mut Vec<Counter>) -> Result<(), StepError>;

    /// Read the answers: `counted[i]` answers `counters[i]`, and is shorter when a counter was
    /// refused (the last answer is that refusal). Empty `counters`: nothing to count.
    fn finish(
        &self,
        cx: &mut ExecCtx<'_>,
        counters: &[Counter],
        counted: &[Counted],
    ) -> Result<(), StepError>;

    /// It sets variables, which the expressions of a later statement may read: nothing after
    /// it is planned before it finished.
    fn sets_variables(&self) -> bool {
        false
    }
}

/// A policy whose first store read can be made early, beside the counters of the limit
/// statements just before it (one round trip's wait instead of two). The read is harmless when
/// a limit then refuses: its answer is dropped.
pub trait ReadsAhead: Sync {
    /// The key it will read first and whether from the shared store (`Store::cache_get`);
    /// `None` when it will not read.
    fn read_ahead(&self, cx: &mut ExecCtx<'_>) -> Result<Option<(String, bool)>, StepError>;
}

/// Run one limit statement by itself.
pub(super) async fn run_alone(p: &dyn Counts, cx: &mut ExecCtx<'_>) -> Outcome {
    let mut counters = Vec::with_capacity(1);
    p.plan(cx, &mut counters)?;
    // One counter (the usual case): its own store call, no vector of answers.
    if let [c] = counters.as_slice() {
        let one = cx.store.count_one(c).await.map_err(store_failure)?;
        return p.finish(cx, &counters, &[one]).map(|_| Step::Next);
    }
    let counted = if counters.is_empty() {
        Vec::new()
    } else {
        cx.store.count(&counters).await.map_err(store_failure)?
    };
    p.finish(cx, &counters, &counted).map(|_| Step::Next)
}

/// Whether the statements from `i` on start with a limit statement that can run with the next
/// one: another limit (one store call) or a read ahead (both at once).
pub(crate) fn batchable(stmts: &[Stmt], i: usize) -> bool {
    stmts
        .get(i)
        .and_then(|s| s.kind.counts())
        .is_some_and(|c| !c.sets_variables())
        && stmts
            .get(i + 1)
            .is_some_and(|s| s.kind.counts().is_some() || s.kind.reads_ahead().is_some())
}

/// Run the limit statements in a row from `i` on with one store call (one Redis round trip),
/// with the result running them one by one would give: in order, each admitted one counted,
/// the first refusal ending the run (later ones neither checked nor counted). Their
/// expressions are evaluated before the store call, which is why a statement that sets
/// variables ends the batch, and a statement whose plan fails is left out (it runs next, by
/// itself, and reports its error after the ones before it counted). One outcome per statement
/// run.
pub(crate) async fn run_together(stmts: &[Stmt], i: usize, cx: &mut ExecCtx<'_>) -> Vec<Outcome> {
    let mut counters = Vec::new();
    // Each statement's policy and the end of its counters.
    let mut parts: Vec<(&dyn Counts, usize)> = Vec::new();
    let mut next = None;
    for st in &stmts[i..] {
        let Some(p) = st.kind.counts() else {
            next = Some(st);
            break;
        };
        let before = counters.len();
        if let Err(e) = p.plan(cx, &mut counters) {
            if parts.is_empty() {
                return vec![Err(e)];
            }
            counters.truncate(before);
            break;
        }
        parts.push((p, counters.len()));
        if p.sets_variables() {
            break;
        }
    }
    // The statement after the limits reads the store first: that read goes with the counters.
    // (An expression error here is left for the statement to report when it runs.)
    let ahead = next
        .and_then(|st| st.kind.reads_ahead())
        .and_then(|r| r.read_ahead(cx).ok().flatten());
    let store = cx.store;
    let counting = async {
        if counters.is_empty() {
            Ok(Vec::new())
        } else {
            store.count(&counters).await
        }
    };
    let counted = match ahead {
        Some((key, external)) => {
            let (counted, read) = tokio::join!(counting, store.cache_get(&key, external));
            if counted
                .as_ref()
                .is_ok_and(|c| c.iter().all(Counted::admitted))
            {
                cx.req.read_ahead = Some((key, read));
            }
            counted
        }
        None => counting.await,
    };
    let counted = if counters.is_empty() {
        Vec::new()
    } else {
        match counted {
            Ok(c) => c,
            Err(e) => {
                // A store that fails closed: the error is the first counting statement's.
                let failed = parts.iter().position(|(_, end)| *end > 0).unwrap_or(0);
                let mut out: Vec<Outcome> = (0..failed).map(|_| Ok(Step::Next)).collect();
                out.push(Err(store_failure(e)));
                return out;
            }
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    let mut start = 0;
    for (p, end) in parts {
        let answered = &counted[start.min(counted.len())..end.min(counted.len())];
        let r = p.finish(cx, &counters[start..end], answered);
        let stop = r.is_err() || counted.len() < end;
        out.push(r.map(|_| Step::Next));
        if stop {
            break;
        }
        start = end;
    }
    out
}
