//! `<set-backend-service>`: send the request to another base URL or backend entity; the path
//! remainder and query stay as they are.

use crate::exec::{value, ErrorKind, ExecCtx, StepError, Target};
use crate::net::url::BaseUrl;
use crate::policy::BackendTarget;

pub fn run(t: &BackendTarget, cx: &mut ExecCtx) -> Result<(), StepError> {
    cx.req.target = match t {
        BackendTarget::BaseUrl(u) => {
            let base = BaseUrl::parse(&value(u, cx)?)
                .map_err(|m| StepError::new(ErrorKind::Internal, m.0))?;
            Target {
                base: std::sync::Arc::new(base),
                backend: None,
            }
        }
        BackendTarget::BackendId(id) => {
            let id = value(id, cx)?.into_owned();
            let (i, b) = cx.gw.backend(&id).ok_or_else(|| {
                StepError::new(ErrorKind::Internal, format!("unknown backend `{id}`"))
            })?;
            Target {
                base: b.url.clone(),
                backend: Some(i),
            }
        }
    };
    Ok(())
}
