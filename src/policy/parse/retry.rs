//! `<retry>` and `<wait>`.

use super::*;

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

impl Retry {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
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
}

pub(super) fn retry_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
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
    Some(StmtKind::Retry(crate::policy::ast::Retry {
        condition,
        count,
        interval,
        delta,
        max_interval,
        first_fast_retry,
        body,
    }))
}

pub(super) fn wait_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let any = r
        .value("for", |s| match s.trim() {
            "all" => Ok(false),
            "any" => Ok(true),
            other => Err(crate::invalid!("`for` must be all or any, found {other:?}")),
        })
        .unwrap_or(Val::Lit(false));
    r.children_checked = true;
    let body = parse_statements(r.el, r.env, r.diags);
    for st in &body {
        if !matches!(
            st.kind,
            StmtKind::SendRequest(_) | StmtKind::CacheLookupValue { .. } | StmtKind::Choose(_)
        ) {
            r.diags.error(
                "P046",
                st.span.clone(),
                format!(
                    "<{}> cannot be a child of <wait>; its children are send-request, cache-lookup-value and choose",
                    st.element
                ),
            );
        }
    }
    Some(StmtKind::Wait { any, body })
}
