//! `<send-request>` and `<send-one-way-request>`.

use super::*;

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
    pub body: Option<Val<String>>,
    /// `<authentication-certificate>`: a configured certificate by id or thumbprint.
    pub certificate: Option<CertificateRef>,
    /// `<proxy url username password>`: an HTTP forward proxy (http:// URLs).
    pub proxy: Option<crate::net::proxy::ForwardProxy>,
}

impl SendRequest {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
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
            visit_val(b, f);
        }
    }
}

pub(super) fn send_request_statement(r: &mut Reader, element: &str) -> Option<StmtKind> {
    Some(StmtKind::SendRequest(parse_send_request(
        r,
        element == "send-request",
    )))
}

pub(super) fn parse_send_request(r: &mut Reader, two_way: bool) -> SendRequest {
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
            "set-body" => {
                cr.no_children();
                out.body = cr.text_value(false, |s| Ok(s.to_string()));
            }
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
                cr.diags.error(
                    "P021",
                    child.span.clone(),
                    format!(
                        "<{}> inside <{}> is not supported by this gatehouse build yet",
                        child.name, r.el.name
                    ),
                );
                continue;
            }
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!("<{other}> is not allowed in <{}>", r.el.name),
                );
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
