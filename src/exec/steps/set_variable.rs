//! `<set-variable>`: store a value in `context.Variables` (a literal as a string, an
//! expression's value as it is).

use crate::exec::{eval, ExecCtx, StepError};
use crate::expr::Value;
use crate::policy::Val;

pub fn run(name: &str, v: &Val<String>, cx: &mut ExecCtx) -> Result<(), StepError> {
    let value = match v {
        Val::Lit(s) => Value::str(s),
        Val::Expr(e) => eval(e, cx)?,
    };
    cx.req.set_variable(name, value);
    Ok(())
}
