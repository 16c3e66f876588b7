//! One operation's effective policy, split for the proxy phases.

use super::*;
use crate::exec::policies::limit_concurrency::{AcquireSlot, LimitConcurrency};

/// Compiled pipelines by the documents they compose. Operations whose chains are the same
/// documents (most operations have no policy of their own) share one pipeline instead of each
/// holding a copy of the same statements: with 1,000 APIs x 10 operations under one global
/// policy, one pipeline instead of 10,000. Diagnostics of a shared chain are reported once.
#[derive(Default)]
pub(super) struct Pipelines(AHashMap<Vec<usize>, Arc<Pipeline>>);

impl Pipelines {
    /// The pipeline composing `chain`, compiled on first use. Documents are told apart by
    /// address: they live in the `PolicySet` (or are the one shared empty document) for the
    /// whole compilation, so equal addresses mean the same document.
    pub(super) fn get(
        &mut self,
        chain: &[&PolicyDoc],
        backend_ids: &AHashMap<String, usize>,
        d: &mut Diagnostics,
    ) -> Arc<Pipeline> {
        let key: Vec<usize> = chain
            .iter()
            .map(|doc| std::ptr::from_ref::<PolicyDoc>(doc) as usize)
            .collect();
        self.0
            .entry(key)
            .or_insert_with(|| Arc::new(build_pipeline(chain, backend_ids, d)))
            .clone()
    }
}

/// Compose the four sections over a scope chain and split the backend section at
/// `forward-request`.
pub fn build_pipeline(
    chain: &[&PolicyDoc],
    backend_ids: &AHashMap<String, usize>,
    d: &mut Diagnostics,
) -> Pipeline {
    let mut sections: Vec<Vec<Stmt>> = Vec::new();
    for s in Section::ALL {
        let stmts = compose::compose(chain, s);
        compose::check_composed(s, &stmts, d);
        for st in &stmts {
            if let StmtKind::SetBackendService(BackendTarget::BackendId(Val::Lit(id))) = &st.kind {
                if !backend_ids.is_empty() && !backend_ids.contains_key(id) {
                    d.error(
                        "P043",
                        st.span.clone(),
                        format!("set-backend-service names unknown backend `{id}`"),
                    );
                }
            }
        }
        sections.push(stmts);
    }
    let on_error = sections.pop().unwrap_or_default();
    let outbound = sections.pop().unwrap_or_default();
    let backend = sections.pop().unwrap_or_default();
    let inbound = sections.pop().unwrap_or_default();
    // forward-request inside retry: the engine runs the whole backend section and forwards
    // itself (buffered), so the retry can resend the request and read each response.
    fn forwards_inside_retry<'s>(
        stmts: impl IntoIterator<Item = &'s Stmt>,
        in_retry: bool,
    ) -> bool {
        stmts.into_iter().any(|s| match &s.kind {
            StmtKind::ForwardRequest(_) => in_retry,
            StmtKind::Retry(_) => forwards_inside_retry(s.children(), true),
            _ => forwards_inside_retry(s.children(), in_retry),
        })
    }
    let engine_backend = forwards_inside_retry(&backend, false);
    let (mut pre, mut forward, mut post) = (Vec::new(), None, Vec::new());
    // A limit-concurrency around forward-request: take the slot before forwarding and hold it
    // until the request ends; the statements around forward-request run before / after it.
    let mut flat = Vec::new();
    if engine_backend {
        pre = backend.clone();
    }
    for st in backend.into_iter().filter(|_| !engine_backend) {
        match &st.kind {
            StmtKind::LimitConcurrency(LimitConcurrency { key, max, body })
                if body
                    .iter()
                    .any(|b| matches!(b.kind, StmtKind::ForwardRequest(_))) =>
            {
                let mut acquire = st.clone();
                acquire.kind = StmtKind::AcquireSlot(AcquireSlot {
                    key: key.clone(),
                    max: *max,
                });
                flat.push(acquire);
                flat.extend(body.iter().cloned());
            }
            _ => flat.push(st),
        }
    }
    for st in flat {
        match (&st.kind, &forward) {
            (StmtKind::ForwardRequest(f), None) => {
                forward = Some(Forward {
                    options: f.clone(),
                    stmt: st.clone(),
                })
            }
            (_, None) => pre.push(st),
            (_, Some(_)) => post.push(st),
        }
    }
    let replaces_request_body = inbound
        .iter()
        .chain(pre.iter())
        .any(|s| s.kind.needs().replaces_request_body);
    // Which bodies the statements read: decided here, once, not per request.
    let mut needs_request_body = false;
    let mut needs_response_body = false;
    fn walk(stmts: &[Stmt], f: &mut dyn FnMut(&Stmt)) {
        for s in stmts {
            f(s);
            for c in s.children() {
                walk(std::slice::from_ref(c), f);
            }
        }
    }
    let request_side: Vec<&Vec<Stmt>> = vec![&inbound, &pre];
    for stmts in request_side {
        walk(stmts, &mut |s| {
            needs_request_body |= s.kind.needs().request_body
        });
    }
    for (i, stmts) in [&inbound, &pre, &on_error, &post, &outbound]
        .into_iter()
        .enumerate()
    {
        walk(stmts, &mut |s| {
            s.visit_exprs(&mut |e| {
                needs_request_body |= e.reads_request_body();
                if i >= 3 && forward.is_some() && e.reads_response_body() {
                    needs_response_body = true;
                }
            });
        });
    }
    for stmts in [&post, &outbound] {
        walk(stmts, &mut |s| {
            needs_response_body |= s.kind.needs().response_body && forward.is_some();
        });
    }
    if engine_backend {
        needs_response_body = true;
    }
    let mut has_cors = false;
    walk(&inbound, &mut |s| {
        has_cors |= matches!(s.kind, StmtKind::Cors(_))
    });
    // The buffered forward sends the request body itself, so it reads it first.
    if needs_response_body {
        needs_request_body = true;
    }
    Pipeline {
        inbound,
        backend_pre: pre,
        forward,
        backend_post: post,
        outbound,
        on_error,
        replaces_request_body,
        needs_request_body,
        needs_response_body,
        engine_backend,
        has_cors,
    }
}
