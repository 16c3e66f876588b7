//! `<set-header>`.

use super::*;

#[derive(Clone, Debug)]
pub struct SetHeader {
    pub name: Val<HeaderName>,
    pub action: Val<ExistsAction>,
    pub values: Vec<Val<HeaderValue>>,
}

impl SetHeader {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        visit_val(&self.name, f);
        visit_val(&self.action, f);
        self.values.iter().for_each(|x| visit_val(x, f));
    }
}

/// Headers policies cannot change: the framing and connection headers are the gateway's (a
/// literal name warns at load, P016; any name is ignored at run time).
pub fn restricted(name: &str) -> bool {
    matches!(
        name,
        "connection" | "content-length" | "keep-alive" | "transfer-encoding"
    )
}

pub(super) fn set_header_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    Some(StmtKind::SetHeader(parse_set_header(r)))
}

pub(super) fn parse_set_header(r: &mut Reader) -> SetHeader {
    let name = r
        .required_value("name", parse_header_name)
        .unwrap_or(Val::Lit(HeaderName::from_static("x-invalid")));
    let action = r
        .value("exists-action", parse_action)
        .unwrap_or(Val::Lit(ExistsAction::Override));
    let mut values = Vec::new();
    for child in r.items("value") {
        let mut cr = r.child(child);
        cr.no_children();
        if let Some(v) = cr.text_value(false, parse_header_value) {
            values.push(v);
        } else {
            values.push(Val::Lit(HeaderValue::from_static("")));
        }
        cr.finish();
    }
    if let (Val::Lit(ExistsAction::Delete), false) = (&action, values.is_empty()) {
        r.diags.warning(
            "P015",
            r.el.span.clone(),
            "exists-action=\"delete\" ignores <value> children",
        );
    }
    if let Val::Lit(n) = &name {
        if restricted(n.as_str()) {
            r.diags.warning(
                "P016",
                r.el.span.clone(),
                format!("header `{n}` cannot be modified; this set-header is ignored"),
            );
        }
    }
    SetHeader {
        name,
        action,
        values,
    }
}
