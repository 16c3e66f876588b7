//! `<choose>`.

use super::*;

#[derive(Clone, Debug)]
pub struct Choose {
    pub whens: Vec<(Val<bool>, Vec<Stmt>)>,
    pub otherwise: Option<Vec<Stmt>>,
}

impl Choose {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        for (cond, body) in &self.whens {
            visit_val(cond, f);
            body.iter().for_each(|s| s.visit_exprs(f));
        }
        self.otherwise
            .iter()
            .flatten()
            .for_each(|s| s.visit_exprs(f));
    }
}

pub(super) fn choose_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    Some(StmtKind::Choose(parse_choose(r)))
}

pub(super) fn parse_choose(r: &mut Reader) -> Choose {
    let mut out = Choose {
        whens: Vec::new(),
        otherwise: None,
    };
    for child in r.children() {
        let mut cr = r.child(child);
        match child.name.as_str() {
            "when" if out.otherwise.is_none() => {
                let cond = cr
                    .required_value("condition", parse_bool)
                    .unwrap_or(Val::Lit(false));
                let body = parse_statements(child, cr.env, cr.diags);
                out.whens.push((cond, body));
            }
            "otherwise" if out.otherwise.is_none() => {
                out.otherwise = Some(parse_statements(child, cr.env, cr.diags));
            }
            "when" | "otherwise" => {
                cr.diags.error(
                    "P017",
                    child.span.clone(),
                    format!("<{}> cannot follow <otherwise> in <choose>", child.name),
                );
            }
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!("<{other}> is not allowed in <choose>; expected <when> or <otherwise>"),
                );
                continue;
            }
        }
        cr.literal("id");
        cr.finish();
    }
    if out.whens.is_empty() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<choose> needs at least one <when>",
        );
    }
    out
}
