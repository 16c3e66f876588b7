//! `<choose>`: run the first `<when>` whose condition is true, else `<otherwise>`.

use super::document::parse_statements;
use super::*;
use crate::exec::{run_nested, value};

#[derive(Clone, Debug)]
pub struct Choose {
    pub whens: Vec<(Val<bool>, Vec<Stmt>)>,
    pub otherwise: Option<Vec<Stmt>>,
}

impl Policy for Choose {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        Some(parse_choose(r))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        for (cond, body) in &self.whens {
            visit_val(cond, f);
            body.iter().for_each(|s| s.visit_exprs(f));
        }
        self.otherwise
            .iter()
            .flatten()
            .for_each(|s| s.visit_exprs(f));
    }

    fn children(&self) -> Vec<&Stmt> {
        self.whens
            .iter()
            .flat_map(|(_, b)| b.iter())
            .chain(self.otherwise.iter().flatten())
            .collect()
    }
}

impl Waits for Choose {
    async fn run(&self, cx: &mut ExecCtx<'_>, at: &At<'_>) -> Outcome {
        match select(self, cx, &at.path())? {
            Some((body, inner)) => Ok(Step::after(run_nested(body, cx, inner).await)),
            None => Ok(Step::Next),
        }
    }
}

fn parse_choose(r: &mut Reader) -> Choose {
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
            _ => {
                not_allowed(cr.diags, child, "choose", "<when> or <otherwise>");
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

/// The branch to run (with its path prefix for `LastError.Path`), or none.
pub fn select<'c>(
    c: &'c Choose,
    cx: &mut ExecCtx,
    path: &str,
) -> Result<Option<(&'c [Stmt], String)>, StepError> {
    for (i, (cond, body)) in c.whens.iter().enumerate() {
        if *value(cond, cx)? {
            return Ok(Some((body, format!("{path}/when[{}]/", i + 1))));
        }
    }
    Ok(c.otherwise
        .as_ref()
        .map(|o| (o.as_slice(), format!("{path}/otherwise/"))))
}
