//! `<forward-request>`.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    Http1,
    Http2Or1,
    Http2,
}

#[derive(Clone, Debug)]
pub struct ForwardRequest {
    /// Time to wait for the backend's response headers, in milliseconds. `None`: the
    /// backend entity's `timeout`, else 300 s.
    pub timeout_ms: Option<Val<u64>>,
    pub follow_redirects: Val<bool>,
    pub buffer_request_body: bool,
    pub buffer_response: bool,
    pub fail_on_error_status_code: bool,
    pub http_version: HttpVersion,
}

impl ForwardRequest {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        if let Some(t) = &self.timeout_ms {
            visit_val(t, f);
        }
        visit_val(&self.follow_redirects, f);
    }
}

pub(super) fn forward_request_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    Some(StmtKind::ForwardRequest(parse_forward_request(r)))
}

pub(super) fn parse_forward_request(r: &mut Reader) -> ForwardRequest {
    let timeout_s = r.value("timeout", |s| {
        s.trim()
            .parse::<u64>()
            .map(|v| v * 1000)
            .map_err(|_| Invalid::from("expected whole seconds"))
    });
    let timeout_ms = r.value("timeout-ms", |s| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| Invalid::from("expected whole milliseconds"))
    });
    let timeout = match (timeout_s, timeout_ms) {
        (Some(_), Some(ms)) => {
            r.diags.error(
                "P013",
                r.el.span.clone(),
                "forward-request takes `timeout` or `timeout-ms`, not both",
            );
            Some(ms)
        }
        (Some(t), None) => Some(t),
        (None, Some(ms)) => Some(ms),
        (None, None) => None,
    };
    if let Some((_, span)) = r.literal("continue-timeout") {
        r.diags.warning(
            "P018",
            span,
            "continue-timeout is accepted and ignored: gatehouse does not wait for 100 Continue",
        );
    }
    let http_version = match r.literal("http-version") {
        None => HttpVersion::Http1,
        Some((v, span)) => match v.as_str() {
            "1" => HttpVersion::Http1,
            "2or1" => HttpVersion::Http2Or1,
            "2" => HttpVersion::Http2,
            _ => {
                r.diags.error(
                    "P012",
                    span,
                    format!("http-version must be 1, 2or1 or 2, found {v:?}"),
                );
                HttpVersion::Http1
            }
        },
    };
    let follow_redirects = r
        .value("follow-redirects", parse_bool)
        .unwrap_or(Val::Lit(false));
    let buffer_request_body = r
        .parsed_literal("buffer-request-body", parse_bool)
        .unwrap_or(false);
    let buffer_response = r
        .parsed_literal("buffer-response", parse_bool)
        .unwrap_or(true);
    let fail_on_error_status_code = r
        .parsed_literal("fail-on-error-status-code", parse_bool)
        .unwrap_or(false);
    ForwardRequest {
        timeout_ms: timeout,
        follow_redirects,
        buffer_request_body,
        buffer_response,
        fail_on_error_status_code,
        http_version,
    }
}
