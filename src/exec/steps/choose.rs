//! `<choose>`: run the first `<when>` whose condition is true, else `<otherwise>`.

use crate::exec::{value, ExecCtx, StepError};
use crate::policy::{Choose, Stmt};

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
