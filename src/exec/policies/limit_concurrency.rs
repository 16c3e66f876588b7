//! `<limit-concurrency>`: at most `max-count` requests inside the block at once per key; a
//! request finding it full fails at once with 429 (it does not queue). Around forward-request
//! the slot is held until the request ends (the response has been sent); otherwise it is
//! released when the nested statements finish, error or not.

use super::document::parse_statements;
use super::*;
use crate::exec::{run_nested, value, ErrorKind};
use std::time::Duration;

/// `<limit-concurrency key max-count>` around nested statements.
#[derive(Clone, Debug)]
pub struct LimitConcurrency {
    pub key: Val<String>,
    pub max: u64,
    pub body: Vec<Stmt>,
}

impl Policy for LimitConcurrency {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read(r)
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.key, f);
        self.body.iter().for_each(|s| s.visit_exprs(f));
    }

    fn children(&self) -> Vec<&Stmt> {
        self.body.iter().collect()
    }
}

impl Waits for LimitConcurrency {
    async fn run(&self, cx: &mut ExecCtx<'_>, at: &At<'_>) -> Outcome {
        let k = acquire(&self.key, self.max, cx).await?;
        let flow = run_nested(&self.body, cx, at.inner()).await;
        // The slot is released however the block ends.
        cx.store.release(&k).await;
        Ok(Step::after(flow))
    }
}

/// Takes a slot held until the request ends: what compile makes of a limit-concurrency around
/// forward-request (the proxy forwards after the section, so the block cannot wrap it).
#[derive(Clone, Debug)]
pub struct AcquireSlot {
    pub key: Val<String>,
    pub max: u64,
}

impl Policy for AcquireSlot {
    /// Never read from a document (it has no element).
    fn read(_r: &mut Reader, _element: &str) -> Option<Self> {
        None
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.key, f);
    }
}

impl Waits for AcquireSlot {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let k = acquire(&self.key, self.max, cx).await?;
        cx.req.held_slots.push(k);
        Ok(Step::Next)
    }
}

fn read(r: &mut Reader) -> Option<LimitConcurrency> {
    let key = r
        .required_value("key", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let max = r.parsed_literal("max-count", parse_u64).unwrap_or(1);
    if r.el.attr("max-count").is_none() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<limit-concurrency> needs attribute `max-count`",
        );
    }
    r.children_checked = true;
    let body = parse_statements(r.el, r.env, r.diags);
    Some(LimitConcurrency { key, max, body })
}

/// Slots outlive a crashed holder by at most this long (Redis TTL).
const SLOT_TTL: Duration = Duration::from_secs(600);

/// Take a slot; returns the store key to release.
async fn acquire(key: &Val<String>, max: u64, cx: &mut ExecCtx<'_>) -> Result<String, StepError> {
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
