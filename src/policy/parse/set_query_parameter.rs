//! `<set-query-parameter>`.

use super::*;

#[derive(Clone, Debug)]
pub struct SetQueryParameter {
    pub name: Val<String>,
    pub action: Val<ExistsAction>,
    pub values: Vec<Val<String>>,
}

impl SetQueryParameter {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        visit_val(&self.name, f);
        visit_val(&self.action, f);
        self.values.iter().for_each(|x| visit_val(x, f));
    }
}

pub(super) fn set_query_parameter_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    Some(StmtKind::SetQueryParameter(parse_set_query(r)))
}

pub(super) fn parse_set_query(r: &mut Reader) -> SetQueryParameter {
    let name = r
        .required_value("name", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let action = r
        .value("exists-action", parse_action)
        .unwrap_or(Val::Lit(ExistsAction::Override));
    let mut values = Vec::new();
    for child in r.items("value") {
        let mut cr = r.child(child);
        cr.no_children();
        values.push(
            cr.text_value(false, |s| Ok(s.to_string()))
                .unwrap_or(Val::Lit(String::new())),
        );
        cr.finish();
    }
    let deleting = matches!(action, Val::Lit(ExistsAction::Delete));
    if values.is_empty() && !deleting {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "set-query-parameter needs at least one <value> unless exists-action=\"delete\"",
        );
    }
    SetQueryParameter {
        name,
        action,
        values,
    }
}
