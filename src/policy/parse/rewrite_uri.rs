//! `<rewrite-uri>`.

use super::*;

#[derive(Clone, Debug)]
pub struct RewriteUri {
    pub template: Val<UriTemplate>,
    pub copy_unmatched_params: Val<bool>,
}

impl RewriteUri {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        visit_val(&self.template, f);
        visit_val(&self.copy_unmatched_params, f);
    }
}

pub(super) fn rewrite_uri_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let template = r
        .required_value("template", parse_uri_template)
        .unwrap_or(Val::Lit(UriTemplate {
            path: vec![],
            query: vec![],
        }));
    let copy = r
        .value("copy-unmatched-params", parse_bool)
        .unwrap_or(Val::Lit(true));
    Some(StmtKind::RewriteUri(RewriteUri {
        template,
        copy_unmatched_params: copy,
    }))
}
