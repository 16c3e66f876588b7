//! `<cors>` (apim-reference.md §2.6): a preflight (OPTIONS with Origin and
//! Access-Control-Request-Method) that matches is answered here, 200 with the CORS headers,
//! nothing forwarded; an actual request from an allowed origin gets
//! Access-Control-Allow-Origin (+ Credentials, Expose-Headers) on its final response. With
//! `terminate-unmatched-request` (default true) an unmatched request gets an empty 200.

use super::*;
use crate::exec::value;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};

/// `<cors>` (apim-reference.md §2.6). Origins are normalised `scheme://host[:port]` (default
/// ports dropped) or `*`; methods upper-case (`*` = any); headers lower-case (`*` = any).
#[derive(Clone, Debug)]
pub struct Cors {
    pub allow_credentials: Val<bool>,
    pub terminate_unmatched: Val<bool>,
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub max_age: Val<u64>,
    pub headers: Vec<String>,
    pub expose: Vec<String>,
}

impl Policy for Cors {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read(r)
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.allow_credentials, f);
        visit_val(&self.terminate_unmatched, f);
        visit_val(&self.max_age, f);
    }
}

impl RunsNow for Cors {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run(self, cx)
    }
}

fn read(r: &mut Reader) -> Option<Cors> {
    let allow_credentials = r
        .value("allow-credentials", parse_bool)
        .unwrap_or(Val::Lit(false));
    let terminate_unmatched = r
        .value("terminate-unmatched-request", parse_bool)
        .unwrap_or(Val::Lit(true));
    let (mut origins, mut methods, mut headers, mut expose) =
        (Vec::new(), None, Vec::new(), Vec::new());
    let mut max_age = Val::Lit(0);
    let mut saw_origins = false;
    let mut saw_headers = false;
    for child in r.children() {
        let mut cr = r.child(child);
        let (item, list): (&str, u8) = match child.name.as_str() {
            "allowed-origins" => ("origin", 0),
            "allowed-methods" => {
                max_age = cr
                    .value("preflight-result-max-age", parse_u64)
                    .unwrap_or(Val::Lit(0));
                ("method", 1)
            }
            "allowed-headers" => ("header", 2),
            "expose-headers" => ("header", 3),
            _ => {
                not_allowed(cr.diags, child, "cors", "");
                continue;
            }
        };
        let mut values = Vec::new();
        for g in cr.items(item) {
            let mut gr = cr.child(g);
            gr.no_children();
            if let Some((text, span)) = g.text().map(|t| {
                (
                    substitute(&t.value, &t.span, gr.env, gr.diags),
                    t.span.clone(),
                )
            }) {
                let text = text.trim().to_string();
                let normalised = match list {
                    0 => normalise_origin(&text),
                    1 => Ok(text.to_ascii_uppercase()),
                    _ => Ok(text.to_ascii_lowercase()),
                };
                match normalised {
                    Ok(v) => values.push(v),
                    Err(e) => gr.diags.error("P012", span, format!("<{item}>: {e}")),
                }
            }
            gr.finish();
        }
        cr.finish();
        match list {
            0 => {
                saw_origins = true;
                origins = values;
            }
            1 => methods = Some(values),
            2 => {
                saw_headers = true;
                headers = values;
            }
            _ => expose = values,
        }
    }
    if !saw_origins || origins.is_empty() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<cors> needs <allowed-origins> with at least one <origin>",
        );
    }
    if origins.len() > 1 && origins.iter().any(|o| o == "*") {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<allowed-origins> holds either a single `*` or full origins",
        );
    }
    if !saw_headers {
        // APIM accepts a cors without it: only CORS-safelisted request headers are allowed.
        r.diags.warning(
            "P023",
            r.el.span.clone(),
            "<cors> has no <allowed-headers>: a preflight that asks for any header is not matched",
        );
    }
    Some(Cors {
        allow_credentials,
        terminate_unmatched,
        origins,
        methods: methods.unwrap_or_else(|| vec!["GET".into(), "POST".into()]),
        max_age,
        headers,
        expose,
    })
}

/// `scheme://host[:port]` lower-cased, default port dropped; `*` stays.
pub fn normalise_origin(o: &str) -> Result<String, Invalid> {
    if o == "*" {
        return Ok(o.to_string());
    }
    let (scheme, rest) = o
        .split_once("://")
        .ok_or_else(|| crate::invalid!("{o:?} is not an origin (scheme://host[:port])"))?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.trim_end_matches('/').to_ascii_lowercase();
    if rest.is_empty() || rest.contains('/') {
        return Err(crate::invalid!(
            "{o:?} is not an origin (scheme://host[:port])"
        ));
    }
    let default = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    let host = rest.strip_suffix(default).unwrap_or(&rest);
    Ok(format!("{scheme}://{host}"))
}

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

fn run(c: &Cors, cx: &mut ExecCtx) -> Outcome {
    let Some(origin) = first(cx, "origin") else {
        return Ok(Step::Next);
    };
    let credentials = *value(&c.allow_credentials, cx)?;
    let terminate = *value(&c.terminate_unmatched, cx)?;
    let any_origin = c.origins.iter().any(|o| o == "*");
    let origin_ok = any_origin || normalise_origin(&origin).is_ok_and(|n| c.origins.contains(&n));
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
