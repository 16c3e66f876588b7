//! Access restriction in inbound: `<check-header>`, `<ip-filter>`, and authentication to the
//! backend: `<authentication-basic>`, `<authentication-certificate>` (apim-reference.md §2.2,
//! §2.3).

use std::net::IpAddr;

use http::{header, HeaderName, HeaderValue};

use crate::exec::error::LimitDetail;
use crate::exec::{value, ErrorKind, ExecCtx, StepError};
use crate::policy::ast::{CertificateRef, CheckHeader, IpFilter};
use crate::policy::Val;

fn rejected(kind: ErrorKind, message: String, status: u16, client: String) -> StepError {
    StepError {
        kind,
        message,
        detail: Some(LimitDetail::response(status, client)),
    }
}

/// The header must be present and, when values are listed, one of its values (each
/// comma-separated item, trimmed) must equal one of them.
pub fn check_header(c: &CheckHeader, cx: &mut ExecCtx) -> Result<(), StepError> {
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

pub fn ip_filter(f: &IpFilter, cx: &mut ExecCtx) -> Result<(), StepError> {
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
pub fn basic(user: &Val<String>, pass: &Val<String>, cx: &mut ExecCtx) -> Result<(), StepError> {
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
pub fn certificate(c: &CertificateRef, cx: &mut ExecCtx) -> Result<(), StepError> {
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
