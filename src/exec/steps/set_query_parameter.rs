//! `<set-query-parameter>`: change the backend URL's query string.

use crate::exec::{value, ExecCtx, StepError};
use crate::policy::{ExistsAction, SetQueryParameter};

pub fn run(q: &SetQueryParameter, cx: &mut ExecCtx) -> Result<(), StepError> {
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
