//! Access restriction in inbound: `<check-header>`, `<ip-filter>`, and authentication to the
//! backend: `<authentication-basic>`, `<authentication-certificate>` (apim-reference.md §2.2,
//! §2.3).

use super::*;
use crate::exec::error::LimitDetail;
use crate::exec::{value, ErrorKind};
use http::{header, HeaderName, HeaderValue};
use std::net::IpAddr;

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

impl Policy for CheckHeader {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read_check_header(r)
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.name, f);
        visit_val(&self.code, f);
        visit_val(&self.message, f);
        visit_val(&self.ignore_case, f);
        self.values.iter().for_each(|x| visit_val(x, f));
    }
}

impl RunsNow for CheckHeader {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        check_header(self, cx).map(|_| Step::Next)
    }
}

impl Policy for IpFilter {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read_ip_filter(r)
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.allow, f);
        self.addresses.iter().for_each(|x| visit_val(x, f));
        for (a, b) in &self.ranges {
            visit_val(a, f);
            visit_val(b, f);
        }
    }
}

impl RunsNow for IpFilter {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        ip_filter(self, cx).map(|_| Step::Next)
    }
}

/// `<authentication-basic username password>`.
#[derive(Clone, Debug)]
pub struct AuthenticationBasic {
    pub username: Val<String>,
    pub password: Val<String>,
}

impl Policy for AuthenticationBasic {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let username = r
            .required_value("username", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        let password = r
            .required_value("password", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        Some(AuthenticationBasic { username, password })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.username, f);
        visit_val(&self.password, f);
    }
}

impl RunsNow for AuthenticationBasic {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        basic(&self.username, &self.password, cx).map(|_| Step::Next)
    }
}

/// `<authentication-certificate>`: the client certificate for the backend call.
impl Policy for CertificateRef {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        Some(parse_certificate_ref(r).unwrap_or(CertificateRef::Id(String::new())))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }
}

impl RunsNow for CertificateRef {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        certificate(self, cx).map(|_| Step::Next)
    }
}

fn read_check_header(r: &mut Reader) -> Option<CheckHeader> {
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
    Some(CheckHeader {
        name,
        code,
        message,
        ignore_case,
        values,
    })
}

fn read_ip_filter(r: &mut Reader) -> Option<IpFilter> {
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
            _ => {
                not_allowed(cr.diags, child, "ip-filter", "<address> or <address-range>");
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
    Some(IpFilter {
        allow,
        addresses,
        ranges,
    })
}

/// `certificate-id` or `thumbprint` of an `<authentication-certificate>` (literal values).
pub(super) fn parse_certificate_ref(r: &mut Reader) -> Option<CertificateRef> {
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
        (Some(id), None) => Some(CertificateRef::Id(id)),
        (None, Some(t)) => Some(CertificateRef::Thumbprint(t.trim().to_ascii_uppercase())),
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

fn rejected(kind: ErrorKind, message: String, status: u16, client: String) -> StepError {
    StepError {
        kind,
        message,
        detail: Some(LimitDetail::response(status, client)),
    }
}

/// The header must be present and, when values are listed, one of its values (each
/// comma-separated item, trimmed) must equal one of them.
fn check_header(c: &CheckHeader, cx: &mut ExecCtx) -> Result<(), StepError> {
    let name = value(&c.name, cx)?.into_owned();
    let code = *value(&c.code, cx)?;
    let client = value(&c.message, cx)?.into_owned();
    let ignore_case = *value(&c.ignore_case, cx)?;
    let Ok(hn) = HeaderName::from_bytes(name.as_bytes()) else {
        return Err(StepError::expression(format!(
            "invalid header name {name:?}"
        )));
    };
    let present: Vec<String> = cx
        .req_headers
        .get_all(&hn)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(|p| p.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    if !cx.req_headers.contains(&hn) {
        return Err(rejected(
            ErrorKind::HeaderNotFound,
            format!("Header {name} was not found in the request. Access denied."),
            code,
            client,
        ));
    }
    if c.values.is_empty() {
        return Ok(());
    }
    let mut allowed = Vec::with_capacity(c.values.len());
    for v in &c.values {
        allowed.push(value(v, cx)?.into_owned());
    }
    let ok = present.iter().any(|p| {
        allowed.iter().any(|a| {
            if ignore_case {
                a.eq_ignore_ascii_case(p)
            } else {
                a == p
            }
        })
    });
    if ok {
        return Ok(());
    }
    Err(rejected(
        ErrorKind::HeaderValueNotAllowed,
        format!(
            "Header {name} value of {} is not allowed. Access denied.",
            present.join(", ")
        ),
        code,
        client,
    ))
}

fn ip_of(v: &Val<String>, cx: &mut ExecCtx) -> Result<IpAddr, StepError> {
    let s = value(v, cx)?;
    s.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| StepError::expression(format!("{:?} is not an IP address", s.trim())))
}

/// Inclusive range check within one address family.
fn in_range(ip: IpAddr, from: IpAddr, to: IpAddr) -> bool {
    match (ip, from, to) {
        (IpAddr::V4(i), IpAddr::V4(f), IpAddr::V4(t)) => {
            (u32::from(f)..=u32::from(t)).contains(&u32::from(i))
        }
        (IpAddr::V6(i), IpAddr::V6(f), IpAddr::V6(t)) => {
            (u128::from(f)..=u128::from(t)).contains(&u128::from(i))
        }
        _ => false,
    }
}

fn ip_filter(f: &IpFilter, cx: &mut ExecCtx) -> Result<(), StepError> {
    let allow = *value(&f.allow, cx)?;
    let Ok(caller) = cx.req.info.ip.parse::<IpAddr>().map(|i| i.to_canonical()) else {
        return Err(rejected(
            ErrorKind::FailedToParseCallerIP,
            "Failed to establish IP address for the caller. Access denied.".into(),
            403,
            "Forbidden".into(),
        ));
    };
    let mut listed = false;
    for a in &f.addresses {
        listed |= ip_of(a, cx)? == caller;
    }
    for (from, to) in &f.ranges {
        let (from, to) = (ip_of(from, cx)?, ip_of(to, cx)?);
        listed |= in_range(caller, from, to);
    }
    match (allow, listed) {
        (true, false) => Err(rejected(
            ErrorKind::CallerIpNotAllowed,
            format!("Caller IP address {caller} is not allowed. Access denied."),
            403,
            "Forbidden".into(),
        )),
        (false, true) => Err(rejected(
            ErrorKind::CallerIpBlocked,
            "Caller IP address is blocked. Access denied.".into(),
            403,
            "Forbidden".into(),
        )),
        _ => Ok(()),
    }
}

/// `Authorization: Basic base64(user:password)` on the backend request, replacing any value.
fn basic(user: &Val<String>, pass: &Val<String>, cx: &mut ExecCtx) -> Result<(), StepError> {
    use base64::Engine;
    let raw = format!("{}:{}", value(user, cx)?, value(pass, cx)?);
    let v = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    let v = HeaderValue::from_str(&v)
        .map_err(|_| StepError::expression("credentials contain control characters"))?;
    cx.req_headers.set(&header::AUTHORIZATION, &[v]);
    Ok(())
}

/// Present a configured client certificate on the backend connection (mTLS).
fn certificate(c: &CertificateRef, cx: &mut ExecCtx) -> Result<(), StepError> {
    let cert = cx
        .gw
        .certificate(c)
        .ok_or_else(|| StepError::new(ErrorKind::Internal, "the certificate is not configured"))?;
    cx.req.client_cert = Some(cert);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_per_family() {
        let p = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert!(in_range(p("10.0.0.5"), p("10.0.0.1"), p("10.0.0.5")));
        assert!(!in_range(p("10.0.0.6"), p("10.0.0.1"), p("10.0.0.5")));
        assert!(in_range(
            p("2001:db8::ff"),
            p("2001:db8::"),
            p("2001:db8::ffff")
        ));
        assert!(!in_range(
            p("10.0.0.1"),
            p("2001:db8::"),
            p("2001:db8::ffff")
        ));
        // An IPv4-mapped IPv6 caller is the IPv4 address.
        assert_eq!(p("::ffff:10.0.0.1").to_canonical(), p("10.0.0.1"));
    }
}
