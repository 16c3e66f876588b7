//! `<set-query-parameter>`: change the backend URL's query string.

use super::*;
use crate::exec::value;

#[derive(Clone, Debug)]
pub struct SetQueryParameter {
    pub name: Val<String>,
    pub action: Val<ExistsAction>,
    pub values: Vec<Val<String>>,
}

impl Policy for SetQueryParameter {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        Some(parse_set_query(r))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.name, f);
        visit_val(&self.action, f);
        self.values.iter().for_each(|x| visit_val(x, f));
    }
}

impl RunsNow for SetQueryParameter {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run(self, cx).map(|_| Step::Next)
    }
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

fn run(q: &SetQueryParameter, cx: &mut ExecCtx) -> Result<(), StepError> {
    let name = value(&q.name, cx)?.into_owned();
    let action = *value(&q.action, cx)?;
    let mut values = Vec::with_capacity(q.values.len());
    for v in &q.values {
        values.push(value(v, cx)?.into_owned());
    }
    let pairs = cx.req.query.pairs_mut();
    let present = pairs.iter().any(|(k, _)| *k == name);
    match action {
        ExistsAction::Delete => pairs.retain(|(k, _)| *k != name),
        ExistsAction::Skip if present => {}
        ExistsAction::Skip | ExistsAction::Append => {
            pairs.extend(values.into_iter().map(|v| (name.clone(), v)))
        }
        ExistsAction::Override => {
            // Replace in place (keeping the parameter's position), then add any extra values.
            let mut vals = values.into_iter();
            let mut out = Vec::with_capacity(pairs.len() + 1);
            let mut placed = false;
            for (k, v) in pairs.drain(..) {
                if k == name {
                    if !placed {
                        out.extend(vals.by_ref().map(|x| (name.clone(), x)));
                        placed = true;
                    }
                } else {
                    out.push((k, v));
                }
            }
            out.extend(vals.map(|x| (name.clone(), x)));
            *pairs = out;
        }
    }
    Ok(())
}
