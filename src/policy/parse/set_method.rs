//! `<set-method>`.

use super::*;

pub(super) fn set_method_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let v = r
        .text_value(true, parse_method)
        .unwrap_or(Val::Lit(Method::GET));
    Some(StmtKind::SetMethod(v))
}
