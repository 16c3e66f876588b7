//! `<set-method>`: change the method of the backend request.

use http::Method;

use crate::exec::{value, ExecCtx, StepError};
use crate::policy::Val;

pub fn run(m: &Val<Method>, cx: &mut ExecCtx) -> Result<(), StepError> {
    cx.req.method = value(m, cx)?.into_owned();
    Ok(())
}
