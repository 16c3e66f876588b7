//! `<set-body>`.

use super::*;

pub(super) fn set_body_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    if let Some((t, span)) = r.literal("template") {
        if t == "liquid" {
            r.diags.error(
                "P021",
                span,
                "set-body template=\"liquid\" is not supported by this gatehouse build yet",
            );
        } else {
            r.diags.error(
                "P012",
                span,
                format!("set-body template must be \"liquid\", found {t:?}"),
            );
        }
    }
    r.no_children();
    r.literal("xsi-nil");
    r.literal("parse-date");
    let v = r
        .text_value(false, |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    Some(StmtKind::SetBody(v))
}
