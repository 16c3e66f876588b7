//! `<cors>` (apim-reference.md §2.6): a preflight (OPTIONS with Origin and
//! Access-Control-Request-Method) that matches is answered here, 200 with the CORS headers,
//! nothing forwarded; an actual request from an allowed origin gets
//! Access-Control-Allow-Origin (+ Credentials, Expose-Headers) on its final response. With
//! `terminate-unmatched-request` (default true) an unmatched request gets an empty 200.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::exec::{value, ExecCtx, Step, StepError};
use crate::policy::ast::Cors;

fn first(cx: &ExecCtx, name: &'static str) -> Option<String> {
    let mut out = None;
    cx.req_headers.each_value(name, &mut |v| {
        if out.is_none() {
            out = Some(String::from_utf8_lossy(v).trim().to_string());
        }
    });
    out
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn empty_200(cx: &mut ExecCtx) -> Step {
    cx.resp_headers.clear();
    cx.resp.status = 200;
    cx.resp.reason = None;
    cx.resp.body = Some(Bytes::new());
    Step::Respond {
        run_outbound: false,
    }
}

pub fn run(c: &Cors, cx: &mut ExecCtx) -> Result<Step, StepError> {
    let Some(origin) = first(cx, "origin") else {
        return Ok(Step::Next);
    };
    let credentials = *value(&c.allow_credentials, cx)?;
    let terminate = *value(&c.terminate_unmatched, cx)?;
    let any_origin = c.origins.iter().any(|o| o == "*");
    let origin_ok = any_origin
        || crate::policy::parse::normalise_origin(&origin).is_ok_and(|n| c.origins.contains(&n));
    // `*` cannot go with credentials: the origin is echoed then.
    let echo = !any_origin || credentials;
    let allow_origin = if echo { origin.as_str() } else { "*" };
    let mut cors_headers: Vec<(HeaderName, HeaderValue)> =
        vec![(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, hv(allow_origin))];
    if credentials {
        cors_headers.push((
            http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        ));
    }
    if echo {
        cors_headers.push((http::header::VARY, HeaderValue::from_static("Origin")));
    }
    if cx.req.preflight {
        let method = first(cx, "access-control-request-method")
            .unwrap_or_default()
            .to_ascii_uppercase();
        let asked: Vec<String> = first(cx, "access-control-request-headers")
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let any_method = c.methods.iter().any(|m| m == "*");
        let any_header = c.headers.iter().any(|h| h == "*");
        let method_ok = any_method || c.methods.contains(&method);
        let headers_ok = any_header || asked.iter().all(|h| c.headers.contains(h));
        if !(origin_ok && method_ok && headers_ok) {
            return Ok(if terminate { empty_200(cx) } else { Step::Next });
        }
        let step = empty_200(cx);
        for (k, v) in cors_headers {
            cx.resp_headers.append(&k, v);
        }
        let methods = if any_method {
            method
        } else {
            c.methods.join(", ")
        };
        cx.resp_headers
            .append(&http::header::ACCESS_CONTROL_ALLOW_METHODS, hv(&methods));
        let headers = if any_header {
            asked.join(", ")
        } else {
            c.headers.join(", ")
        };
        if !headers.is_empty() {
            cx.resp_headers
                .append(&http::header::ACCESS_CONTROL_ALLOW_HEADERS, hv(&headers));
        }
        let max_age = *value(&c.max_age, cx)?;
        if max_age > 0 {
            cx.resp_headers.append(
                &http::header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(max_age),
            );
        }
        return Ok(step);
    }
    if !origin_ok {
        return Ok(if terminate { empty_200(cx) } else { Step::Next });
    }
    if !c.expose.is_empty() {
        cors_headers.push((
            http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            hv(&c.expose.join(", ")),
        ));
    }
    for (k, v) in cors_headers {
        cx.req.extra_headers.retain(|(n, _)| *n != k);
        cx.req.extra_headers.push((k, v));
    }
    Ok(Step::Next)
}
