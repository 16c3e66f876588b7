//! `<choose>`: run the first `<when>` whose condition is true, else `<otherwise>`.

use crate::exec::{value, ExecCtx, Flow, Step, StepError};
use crate::policy::{Choose, Stmt};

type Runner = fn(&[Stmt], &mut ExecCtx, &str) -> Flow;

pub fn run(c: &Choose, cx: &mut ExecCtx, path: &str, run_nested: Runner) -> Result<Step, StepError> {
    let mut branch: Option<(&[Stmt], String)> = None;
    for (i, (cond, body)) in c.whens.iter().enumerate() {
        if *value(cond, cx)? {
            branch = Some((body, format!("{path}/when[{}]/", i + 1)));
            break;
        }
    }
    if branch.is_none() {
        if let Some(o) = &c.otherwise {
            branch = Some((o, format!("{path}/otherwise/")));
        }
    }
    let Some((body, prefix)) = branch else { return Ok(Step::Next) };
    Ok(match run_nested(body, cx, &prefix) {
        Flow::Continue => Step::Next,
        Flow::Respond { run_outbound, .. } => Step::Respond { run_outbound },
        Flow::Fail(e) => Step::Failed(e),
    })
}
