//! `<set-backend-service>`: send the request to another base URL or backend entity; the path
//! remainder and query stay as they are.

use super::*;
use crate::exec::{value, ErrorKind, Target};
use crate::net::url::BaseUrl;

#[derive(Clone, Debug)]
pub enum BackendTarget {
    BaseUrl(Val<String>),
    BackendId(Val<String>),
}

impl Policy for BackendTarget {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read(r)
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        match self {
            BackendTarget::BaseUrl(x) | BackendTarget::BackendId(x) => visit_val(x, f),
        }
    }
}

impl RunsNow for BackendTarget {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run(self, cx).map(|_| Step::Next)
    }
}

fn read(r: &mut Reader) -> Option<BackendTarget> {
    let el = r.el;
    r.no_children();
    for a in &el.attrs {
        if a.name.starts_with("sf-") || a.name.starts_with("dapr-") {
            r.used.push(a.name.clone());
            r.diags.error("P020", a.span.clone(), format!("set-backend-service `{}` (Service Fabric / Dapr) is not supported by gatehouse", a.name));
        }
    }
    let base = r.value("base-url", |s| {
        crate::net::url::BaseUrl::parse(s).map(|_| s.trim().to_string())
    });
    let id = r.value("backend-id", |s| Ok(s.to_string()));
    Some(match (base, id) {
        (Some(b), None) => BackendTarget::BaseUrl(b),
        (None, Some(i)) => BackendTarget::BackendId(i),
        (Some(_), Some(_)) => {
            r.diags.error(
                "P013",
                el.span.clone(),
                "set-backend-service takes exactly one of `base-url` or `backend-id`, not both",
            );
            return None;
        }
        (None, None) => {
            r.diags.error(
                "P013",
                el.span.clone(),
                "set-backend-service needs `base-url` or `backend-id`",
            );
            return None;
        }
    })
}

fn run(t: &BackendTarget, cx: &mut ExecCtx) -> Result<(), StepError> {
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
