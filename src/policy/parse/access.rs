//! Access control: `<check-header>`, `<ip-filter>`, `<authentication-basic>`,
//! `<authentication-certificate>`.

use super::*;

#[derive(Clone, Debug)]
pub struct CheckHeader {
    pub name: Val<String>,
    pub code: Val<u16>,
    pub message: Val<String>,
    pub ignore_case: Val<bool>,
    pub values: Vec<Val<String>>,
}

#[derive(Clone, Debug)]
pub struct IpFilter {
    /// `action="allow"` (true) or `forbid`.
    pub allow: Val<bool>,
    pub addresses: Vec<Val<String>>,
    pub ranges: Vec<(Val<String>, Val<String>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateRef {
    Id(String),
    /// SHA-1 of the DER certificate, upper-case hex.
    Thumbprint(String),
}

impl CheckHeader {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        visit_val(&self.name, f);
        visit_val(&self.code, f);
        visit_val(&self.message, f);
        visit_val(&self.ignore_case, f);
        self.values.iter().for_each(|x| visit_val(x, f));
    }
}

impl IpFilter {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        visit_val(&self.allow, f);
        self.addresses.iter().for_each(|x| visit_val(x, f));
        for (a, b) in &self.ranges {
            visit_val(a, f);
            visit_val(b, f);
        }
    }
}

pub(super) fn check_header_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let name = r
        .required_value("name", |s| Ok(s.trim().to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let code = r
        .required_value("failed-check-httpcode", parse_status)
        .unwrap_or(Val::Lit(401));
    let message = r
        .required_value("failed-check-error-message", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let ignore_case = r
        .required_value("ignore-case", parse_bool)
        .unwrap_or(Val::Lit(false));
    let mut values = Vec::new();
    for child in r.items("value") {
        let mut cr = r.child(child);
        cr.no_children();
        values.push(
            cr.text_value(false, |s| Ok(s.to_string()))
                .unwrap_or(Val::Lit(String::new())),
        );
        cr.finish();
    }
    r.children_checked = true;
    Some(StmtKind::CheckHeader(crate::policy::ast::CheckHeader {
        name,
        code,
        message,
        ignore_case,
        values,
    }))
}

pub(super) fn ip_filter_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let allow = r
        .required_value("action", |s| match s.trim() {
            "allow" => Ok(true),
            "forbid" => Ok(false),
            other => Err(crate::invalid!(
                "action must be allow or forbid, found {other:?}"
            )),
        })
        .unwrap_or(Val::Lit(true));
    let ip = |s: &str| {
        s.trim()
            .parse::<std::net::IpAddr>()
            .map(|_| s.trim().to_string())
            .map_err(|_| crate::invalid!("{:?} is not an IPv4 or IPv6 address", s.trim()))
    };
    let (mut addresses, mut ranges) = (Vec::new(), Vec::new());
    for child in r.children() {
        let mut cr = r.child(child);
        cr.no_children();
        match child.name.as_str() {
            "address" => {
                if let Some(v) = cr.text_value(true, ip) {
                    addresses.push(v);
                }
            }
            "address-range" => {
                let from = cr.required_value("from", ip);
                let to = cr.required_value("to", ip);
                if let (Some(f), Some(t)) = (from, to) {
                    ranges.push((f, t));
                }
            }
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!("<{other}> is not allowed in <ip-filter>; expected <address> or <address-range>"),
                );
                continue;
            }
        }
        cr.finish();
    }
    if r.el.elements().next().is_none() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<ip-filter> needs at least one <address> or <address-range>",
        );
    }
    r.children_checked = true;
    Some(StmtKind::IpFilter(crate::policy::ast::IpFilter {
        allow,
        addresses,
        ranges,
    }))
}

pub(super) fn authentication_basic_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let username = r
        .required_value("username", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let password = r
        .required_value("password", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    Some(StmtKind::AuthenticationBasic { username, password })
}

pub(super) fn authentication_certificate_statement(
    r: &mut Reader,
    _element: &str,
) -> Option<StmtKind> {
    r.no_children();
    let c =
        parse_certificate_ref(r).unwrap_or(crate::policy::ast::CertificateRef::Id(String::new()));
    Some(StmtKind::AuthenticationCertificate(c))
}

/// `certificate-id` or `thumbprint` of an `<authentication-certificate>` (literal values).
pub(super) fn parse_certificate_ref(r: &mut Reader) -> Option<crate::policy::ast::CertificateRef> {
    let id = r.literal("certificate-id").map(|(v, _)| v);
    let thumb = r.literal("thumbprint").map(|(v, _)| v);
    for unsupported in ["body", "password"] {
        if let Some((_, span)) = r.literal(unsupported) {
            r.diags.error(
                "P021",
                span,
                format!("`{unsupported}` of <authentication-certificate> is not supported yet; configure the certificate under `certificates` and use certificate-id"),
            );
        }
    }
    match (id, thumb) {
        (Some(id), None) => Some(crate::policy::ast::CertificateRef::Id(id)),
        (None, Some(t)) => Some(crate::policy::ast::CertificateRef::Thumbprint(
            t.trim().to_ascii_uppercase(),
        )),
        _ => {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "<authentication-certificate> needs exactly one of `certificate-id` or `thumbprint`",
            );
            None
        }
    }
}
