//! A failed request (apim-reference.md §1.6): the default error response for its Reason, then
//! the on-error section with `context.LastError` filled; an error inside on-error ends in a
//! generic 500 and on-error is not re-entered.

use http::{header, HeaderValue};

use super::error::{default_body, default_body_for};
use super::{ErrorKind, ExecCtx, Flow, HeaderStore, Origin, PolicyError};
use crate::exec::Stmt;
use crate::policy::Scope;

/// Who produced a failure's response, for the log: the failing policy (with its section and
/// scope) or the built-in step.
pub fn origin_of(e: &PolicyError) -> Origin {
    match e.section {
        Some(section) => Origin::Policy {
            element: e.source,
            id: e.policy_id.clone(),
            section,
            scope: e.scope.unwrap_or(Scope::Global),
        },
        None => Origin::Builtin(e.source),
    }
}

/// The default response of a Reason: its status and JSON body; a missing key names the
/// header to send (`www_authenticate`).
pub fn default_error(cx: &mut ExecCtx<'_>, kind: ErrorKind, www_authenticate: Option<&str>) {
    let h: &mut (dyn HeaderStore + Send) = &mut *cx.resp_headers;
    h.clear();
    h.set(
        &header::CONTENT_TYPE,
        &[HeaderValue::from_static("application/json")],
    );
    if let (ErrorKind::SubscriptionKeyNotFound, Some(name)) = (kind, www_authenticate) {
        let v = format!(
            "AzureApiManagementKey realm=\"{}\",name=\"{}\",type=\"header\"",
            cx.gw.name, name
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.set(&header::WWW_AUTHENTICATE, &[v]);
        }
    }
    cx.resp.status = kind.status();
    cx.resp.reason = None;
    cx.resp.body = Some(default_body(kind, &cx.req.request_id).into());
}

/// Answer a failure: the default response (with a limit's status, message and Retry-After),
/// then `on_error` with `LastError`. Returns who produced the final response.
pub async fn handle(
    cx: &mut ExecCtx<'_>,
    e: &PolicyError,
    on_error: &[Stmt],
    www_authenticate: Option<&str>,
) -> Origin {
    default_error(cx, e.kind, www_authenticate);
    if let Some(d) = &e.detail {
        if let Some(h) = &d.retry_after_header {
            cx.resp_headers
                .set(h, &[HeaderValue::from(d.retry_after_secs)]);
        }
        if let Some(s) = d.status {
            cx.resp.status = s;
        }
        cx.resp.body = Some(default_body_for(e.kind, Some(d), &cx.req.request_id).into());
    }
    run_on_error(cx, e, on_error, origin_of(e)).await
}

/// Run `on_error` for `e` over the response as it stands (the default error response, or the
/// backend's for fail-on-error-status-code). `origin`: who produced that response. Returns who
/// produced the final one.
pub async fn run_on_error(
    cx: &mut ExecCtx<'_>,
    e: &PolicyError,
    on_error: &[Stmt],
    mut origin: Origin,
) -> Origin {
    cx.req.last_error = Some(e.clone());
    let flow = if on_error.is_empty() {
        Flow::Continue
    } else {
        super::run_section(on_error, cx).await
    };
    match flow {
        Flow::Continue => {}
        Flow::Respond { origin: o, .. } => origin = o,
        Flow::Fail(inner) => {
            log::warn!(
                "request {}: error inside on-error: {} ({})",
                cx.req.request_id,
                inner.message,
                inner.reason()
            );
            default_error(cx, ErrorKind::Internal, None);
            origin = Origin::Builtin("on-error");
        }
    }
    origin
}
