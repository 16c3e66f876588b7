//! `<find-and-replace>`: replace every occurrence of a string in the current body (the request
//! body in inbound and backend, the response body in outbound and on-error). The pipeline
//! buffers that body (decided at load).

use super::*;
use crate::exec::value;
use bytes::Bytes;

#[derive(Clone, Debug)]
pub struct FindAndReplace {
    pub from: Val<String>,
    pub to: Val<String>,
}

impl Policy for FindAndReplace {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let from = r
            .required_value("from", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        let to = r
            .required_value("to", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        if let Val::Lit(f) = &from {
            if f.is_empty() {
                r.diags.error(
                    "P012",
                    r.el.span.clone(),
                    "find-and-replace `from` cannot be empty",
                );
            }
        }
        Some(FindAndReplace { from, to })
    }

    /// It edits the body of the side it runs on.
    fn needs(&self) -> Needs {
        Needs {
            request_body: true,
            response_body: true,
            ..Needs::NONE
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.from, f);
        visit_val(&self.to, f);
    }
}

impl RunsNow for FindAndReplace {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run(&self.from, &self.to, cx).map(|_| Step::Next)
    }
}

fn run(from: &Val<String>, to: &Val<String>, cx: &mut ExecCtx) -> Result<(), StepError> {
    let from = value(from, cx)?.into_owned();
    let to = value(to, cx)?.into_owned();
    if from.is_empty() {
        return Err(StepError::expression(
            "find-and-replace `from` evaluated to an empty string",
        ));
    }
    let Some(body) = cx.section_body() else {
        return Ok(());
    };
    // Byte-level: a body that is not UTF-8 keeps its other bytes.
    if let Some(out) = crate::codec::bytes::replace_all(&body, from.as_bytes(), to.as_bytes()) {
        cx.set_section_body(Bytes::from(out));
    }
    Ok(())
}
