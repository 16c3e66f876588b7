//! `<set-status>`: set the response status code and reason phrase.

use crate::exec::{value, ExecCtx, StepError};
use crate::policy::SetStatus;

pub fn run(s: &SetStatus, cx: &mut ExecCtx) -> Result<(), StepError> {
    let code = *value(&s.code, cx)?;
    let reason = match &s.reason {
        Some(r) => Some(value(r, cx)?.into_owned()),
        None => None,
    };
    cx.resp.status = code;
    cx.resp.reason = reason;
    Ok(())
}
