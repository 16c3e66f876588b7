//! `<set-status>`.

use super::*;

#[derive(Clone, Debug)]
pub struct SetStatus {
    pub code: Val<u16>,
    pub reason: Option<Val<String>>,
}

impl SetStatus {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        visit_val(&self.code, f);
        if let Some(r) = &self.reason {
            visit_val(r, f);
        }
    }
}

pub(super) fn set_status_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    Some(StmtKind::SetStatus(parse_set_status(r)))
}

pub(super) fn parse_set_status(r: &mut Reader) -> SetStatus {
    let code = r
        .required_value("code", parse_status)
        .unwrap_or(Val::Lit(200));
    let reason = r.value("reason", |s| Ok(s.to_string()));
    SetStatus { code, reason }
}
