//! `<limit-concurrency>`.

use super::*;

pub(super) fn limit_concurrency_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
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
    Some(StmtKind::LimitConcurrency { key, max, body })
}
