//! `<set-status>`: set the response status code and reason phrase.

use crate::exec::{value, ExecCtx, RespState, StepError};
use crate::policy::SetStatus;

pub fn run(s: &SetStatus, cx: &mut ExecCtx) -> Result<(), StepError> {
    apply(s, cx.resp)
}

pub fn apply(s: &SetStatus, resp: &mut RespState) -> Result<(), StepError> {
    resp.status = *value(&s.code)?;
    resp.reason = match &s.reason {
        Some(r) => Some(value(r)?.clone()),
        None => None,
    };
    Ok(())
}
