//! `<set-variable>`: store a value in `context.Variables` (a literal as a string, an
//! expression's value as it is).

use super::*;
use crate::exec::eval;
use crate::expr::Value;

/// `value`: a literal is stored as a string; an expression's value is stored as it is.
#[derive(Clone, Debug)]
pub struct SetVariable {
    pub name: String,
    pub value: Val<String>,
}

impl Policy for SetVariable {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let name = r.required_literal("name").unwrap_or_default();
        let value = r
            .required_value("value", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        Some(SetVariable { name, value })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.value, f);
    }
}

impl RunsNow for SetVariable {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let value = match &self.value {
            Val::Lit(s) => Value::str(s),
            Val::Expr(e) => eval(e, cx)?,
        };
        cx.req.set_variable(&self.name, value);
        Ok(Step::Next)
    }
}
