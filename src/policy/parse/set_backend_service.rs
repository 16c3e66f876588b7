//! `<set-backend-service>`.

use super::*;

#[derive(Clone, Debug)]
pub enum BackendTarget {
    BaseUrl(Val<String>),
    BackendId(Val<String>),
}

pub(super) fn set_backend_service_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
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
        (Some(b), None) => StmtKind::SetBackendService(BackendTarget::BaseUrl(b)),
        (None, Some(i)) => StmtKind::SetBackendService(BackendTarget::BackendId(i)),
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
