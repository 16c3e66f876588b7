//! `<send-request>` / `<send-one-way-request>`: a call of the policy's own. The response lands in
//! `response-variable-name` as an `IResponse`. A 4xx/5xx is not an error; a connection failure
//! or timeout is (`BackendConnectionFailure` / `Timeout` → on-error) unless `ignore-error`, which
//! sets the variable to null. send-one-way-request runs in the background and never delays the
//! request (bounded: calls beyond 256 in flight are dropped and logged).

use super::access::{parse_certificate_ref, CertificateRef};
use super::set_header::{parse_set_header, SetHeader};
use super::*;
use crate::exec::transport::CallRequest;
use crate::exec::value;
use crate::expr::value::{Obj, Value};
use bytes::Bytes;
use http::HeaderMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct SendRequest {
    /// `new` or `copy`.
    pub copy: Val<String>,
    /// None for send-one-way-request.
    pub response_variable: Option<String>,
    /// Seconds.
    pub timeout: Val<u64>,
    pub ignore_error: bool,
    pub url: Option<Val<String>>,
    pub method: Option<Val<Method>>,
    pub headers: Vec<SetHeader>,
    pub body: Option<super::set_body::Body>,
    /// `<authentication-certificate>`: a configured certificate by id or thumbprint.
    pub certificate: Option<CertificateRef>,
    /// `<proxy url username password>`: an HTTP forward proxy (http:// URLs).
    pub proxy: Option<crate::net::proxy::ForwardProxy>,
    /// `<authentication-managed-identity>`: the call's `Authorization: Bearer` token.
    pub managed_identity: Option<super::managed_identity::ManagedIdentity>,
}

impl Policy for SendRequest {
    /// `<send-request>` and `<send-one-way-request>`.
    fn read(r: &mut Reader, element: &str) -> Option<Self> {
        Some(parse_send_request(r, element == "send-request"))
    }

    /// mode="copy" (the default) sends a copy of the request body.
    fn needs(&self) -> Needs {
        let liquid = self
            .body
            .as_ref()
            .is_some_and(|b| super::set_body::needs(b).request_body);
        Needs {
            request_body: liquid || !matches!(&self.copy, Val::Lit(m) if m == "new"),
            response_body: liquid,
            ..Needs::NONE
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.copy, f);
        visit_val(&self.timeout, f);
        if let Some(u) = &self.url {
            visit_val(u, f);
        }
        if let Some(m) = &self.method {
            visit_val(m, f);
        }
        for h in &self.headers {
            h.exprs(f);
        }
        if let Some(b) = &self.body {
            super::set_body::exprs(b, f);
        }
        if let Some(m) = &self.managed_identity {
            visit_val(&m.resource, f);
        }
    }
}

impl Waits for SendRequest {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        run(self, cx).await.map(|_| Step::Next)
    }
}

fn parse_send_request(r: &mut Reader, two_way: bool) -> SendRequest {
    let copy = r.value("mode", |s| match s.trim() {
        "new" | "copy" => Ok(s.trim().to_string()),
        other => Err(crate::invalid!("mode must be new or copy, found {other:?}")),
    });
    let response_variable = if two_way {
        r.required_literal("response-variable-name")
    } else {
        None
    };
    let timeout = r.value("timeout", parse_u64).unwrap_or(Val::Lit(60));
    let ignore_error = if two_way {
        r.parsed_literal("ignore-error", parse_bool)
            .unwrap_or(false)
    } else {
        true
    };
    let mut out = SendRequest {
        copy: copy.unwrap_or(Val::Lit("new".into())),
        response_variable,
        timeout,
        ignore_error,
        url: None,
        method: None,
        headers: Vec::new(),
        body: None,
        certificate: None,
        proxy: None,
        managed_identity: None,
    };
    for child in r.children() {
        // The parent's name is read below while this reader lives: borrow fields apart.
        let mut cr = Reader::new(child, r.env, r.diags);
        match child.name.as_str() {
            "set-url" => {
                cr.no_children();
                out.url = cr.text_value(true, |s| Ok(s.trim().to_string()));
            }
            "set-method" => {
                cr.no_children();
                out.method = cr.text_value(true, parse_method);
            }
            "set-header" => out.headers.push(parse_set_header(&mut cr)),
            "set-body" => out.body = super::set_body::read(&mut cr),
            "authentication-certificate" => {
                cr.no_children();
                out.certificate = parse_certificate_ref(&mut cr);
            }
            "proxy" => {
                cr.no_children();
                let url = cr.literal("url");
                let user = cr.literal("username").map(|(v, _)| v);
                let pass = cr.literal("password").map(|(v, _)| v);
                match url {
                    Some((u, span)) => {
                        match crate::net::proxy::ForwardProxy::parse(
                            &u,
                            user.as_deref(),
                            pass.as_deref(),
                        ) {
                            Ok(p) => out.proxy = Some(p),
                            Err(e) => cr.diags.error("P012", span, format!("<proxy>: {e}")),
                        }
                    }
                    None => {
                        cr.diags
                            .error("P012", child.span.clone(), "<proxy> needs attribute `url`")
                    }
                }
            }
            "authentication-managed-identity" => {
                cr.no_children();
                out.managed_identity = Some(super::managed_identity::read(&mut cr, false));
            }
            _ => {
                not_allowed(cr.diags, child, &r.el.name, "");
                continue;
            }
        }
        cr.literal("id");
        cr.finish();
    }
    if out.url.is_none() && matches!(&out.copy, Val::Lit(m) if m == "new") {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            format!("<{}> mode=\"new\" needs <set-url>", r.el.name),
        );
    }
    out
}

static ONE_WAY_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
const ONE_WAY_MAX: usize = 256;

/// A send-request whose request is built (attributes and children evaluated), not yet sent.
pub struct Prepared {
    pub req: CallRequest,
    pub timeout: Duration,
    /// `<authentication-managed-identity>`: the token to fetch before sending.
    pub identity: Option<TokenFor>,
}

/// A token to put in the call's `Authorization`: the provider, the identity, the resource
/// (evaluated) and whether a failure lets the call go without it.
pub struct TokenFor {
    pub provider: Option<std::sync::Arc<crate::exec::identity::TokenProvider>>,
    pub client_id: Option<String>,
    pub resource: String,
    pub ignore_error: bool,
}

/// Send a prepared call: fetch its token first when it has one.
pub async fn call(
    transport: &dyn crate::exec::transport::Transport,
    p: &Prepared,
) -> Result<crate::expr::value::Message, (crate::exec::ErrorKind, String)> {
    let mut req = p.req.clone();
    if let Some(t) = &p.identity {
        let got = match &t.provider {
            Some(provider) => {
                provider
                    .token(t.client_id.as_deref(), &t.resource, transport)
                    .await
            }
            None => Err((
                crate::exec::ErrorKind::TokenAcquisitionFailure,
                "no token provider is configured (managed_identity)".to_string(),
            )),
        };
        match got {
            Ok(token) => {
                let v = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    (
                        crate::exec::ErrorKind::TokenAcquisitionFailure,
                        "the token is not a header value".to_string(),
                    )
                })?;
                req.headers
                    .retain(|(k, _)| k != http::header::AUTHORIZATION);
                req.headers.push((http::header::AUTHORIZATION, v));
            }
            Err(_) if t.ignore_error => {}
            Err(e) => return Err(e),
        }
    }
    transport.send(req, p.timeout).await
}

async fn run(r: &SendRequest, cx: &mut ExecCtx<'_>) -> Result<(), StepError> {
    let p = prepare(r, cx)?;
    let Some(var) = &r.response_variable else {
        // One way: fire and forget, never delaying the request.
        if ONE_WAY_IN_FLIGHT.fetch_add(1, Ordering::SeqCst) >= ONE_WAY_MAX {
            ONE_WAY_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            log::warn!("send-one-way-request dropped: {ONE_WAY_MAX} already in flight");
            return Ok(());
        }
        let out = cx.transport.clone_box();
        tokio::spawn(async move {
            if let Err((_, m)) = call(&*out, &p).await {
                log::info!("send-one-way-request failed: {m}");
            }
            ONE_WAY_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        });
        return Ok(());
    };
    // Boxed: the token fetch and the call would make every waiting statement's future large.
    let result = Box::pin(call(cx.transport, &p)).await;
    finish(var, r.ignore_error, result, cx)
}

/// Put a call's result in the response variable (or fail).
pub fn finish(
    var: &str,
    ignore_error: bool,
    result: Result<crate::expr::value::Message, (crate::exec::ErrorKind, String)>,
    cx: &mut ExecCtx<'_>,
) -> Result<(), StepError> {
    match result {
        Ok(msg) => cx.req.set_variable(var, Value::obj(Obj::Message(msg))),
        Err(_) if ignore_error => cx.req.set_variable(var, Value::Null),
        Err((kind, message)) => return Err(StepError::new(kind, message)),
    }
    Ok(())
}

/// Evaluate the call's attributes and children into a request.
pub fn prepare(r: &SendRequest, cx: &mut ExecCtx<'_>) -> Result<Prepared, StepError> {
    let copy = value(&r.copy, cx)?.as_str() == "copy";
    let timeout = Duration::from_secs(*value(&r.timeout, cx)?);
    // Start from a copy of the current request, or from nothing.
    let mut headers = HeaderMap::new();
    let (mut method, mut url, mut body) = (http::Method::GET, String::new(), Bytes::new());
    if copy {
        method = cx.req.method.clone();
        let base = &cx.req.target.base;
        url = format!(
            "{base}{}",
            cx.req
                .path_and_query()
                .trim_start_matches(base.path.as_str())
        );
        for n in cx.req_headers.names() {
            if let Ok(name) = http::HeaderName::from_bytes(n.as_bytes()) {
                for v in cx.req_headers.get_all(&name) {
                    headers.append(name.clone(), v);
                }
            }
        }
        if matches!(cx.section, Section::Inbound | Section::Backend) {
            body = cx
                .req
                .body
                .clone()
                .or_else(|| cx.req.original_body.clone())
                .unwrap_or_default();
        }
    }
    if let Some(u) = &r.url {
        url = value(u, cx)?.into_owned();
    }
    if let Some(m) = &r.method {
        method = value(m, cx)?.into_owned();
    }
    let mut traceparent_set = false;
    for h in &r.headers {
        let name = value(&h.name, cx)?.into_owned();
        traceparent_set |= name.as_str() == "traceparent";
        let action = *value(&h.action, cx)?;
        let mut values = Vec::new();
        for v in &h.values {
            values.push(value(v, cx)?.into_owned());
        }
        super::set_header::apply_to(&name, action, values, &mut headers);
    }
    if let Some(b) = &r.body {
        body = super::set_body::body_of(b, cx)?;
    }
    headers.remove(http::header::HOST);
    headers.remove(http::header::CONTENT_LENGTH);
    headers.remove(http::header::TRANSFER_ENCODING);
    // The call is a child span of the request's, unless the policy sets its own traceparent
    // (a copied request's traceparent is the caller's, which this replaces).
    if cx.req.info.trace.is_set() && !traceparent_set {
        if let Ok(v) = http::HeaderValue::from_str(&cx.req.info.trace.child().header()) {
            headers.insert(http::HeaderName::from_static("traceparent"), v);
        }
    }
    let req = CallRequest {
        method,
        url,
        headers: headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        body,
        client_cert: r.certificate.as_ref().and_then(|c| cx.gw.certificate(c)),
        proxy: r.proxy.clone(),
    };
    let identity = match &r.managed_identity {
        Some(m) => Some(TokenFor {
            provider: cx.gw.managed_identity.clone(),
            client_id: m.client_id.clone(),
            resource: value(&m.resource, cx)?.into_owned(),
            ignore_error: m.ignore_error,
        }),
        None => None,
    };
    Ok(Prepared {
        req,
        timeout,
        identity,
    })
}
