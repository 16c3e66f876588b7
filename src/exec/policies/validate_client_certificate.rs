//! `<validate-client-certificate>` (apim-reference.md §2.2): the certificate the client presented
//! on the TLS connection (`context.Request.Certificate`) must pass every enabled rule and
//! match every attribute of at least one `<identity>` (no identities: the rules alone).
//!
//! - `validate-trust`: the certificate chains, through the intermediates the client sent, to
//!   a CA of the system's store or of `trust.ca_files` (APIM's CA certificates).
//! - `validate-revocation`: checked against `trust.crl_files`; there is no online fetch (CRL
//!   distribution points and OCSP are not contacted from the request path). Without CRL files
//!   nothing can be checked and the rule passes; `gatehouse check` warns (W011) about it.
//! - `validate-not-before` / `validate-not-after`: the validity period, at the request's time.
//!
//! Failure (and `ignore-error="false"`): 403 `Invalid client certificate.`, Reason
//! `ClientCertificateNotValid` (APIM documents neither; docs/policies.md names the choice).

use super::*;
use crate::exec::ErrorKind;
use crate::expr::builtins::x509::{name_parts, thumbprint};
use openssl::x509::{X509NameRef, X509};

#[derive(Clone, Debug)]
pub struct ValidateClientCertificate {
    pub revocation: bool,
    pub trust: bool,
    pub not_before: bool,
    pub not_after: bool,
    pub ignore_error: bool,
    pub identities: Vec<Identity>,
}

/// One `<identity>`: every attribute given must match.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub thumbprint: Option<String>,
    pub serial_number: Option<String>,
    pub common_name: Option<String>,
    pub subject: Option<Vec<(String, String)>>,
    pub dns_name: Option<String>,
    pub issuer_subject: Option<Vec<(String, String)>>,
    pub issuer_thumbprint: Option<String>,
    pub issuer_certificate_id: Option<String>,
}

fn flag(r: &mut Reader, name: &str, default: bool) -> bool {
    r.parsed_literal(name, parse_bool).unwrap_or(default)
}

impl Policy for ValidateClientCertificate {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let revocation = flag(r, "validate-revocation", true);
        let trust = flag(r, "validate-trust", true);
        let not_before = flag(r, "validate-not-before", true);
        let not_after = flag(r, "validate-not-after", true);
        let ignore_error = flag(r, "ignore-error", false);
        let mut identities = Vec::new();
        for list in r.items("identities") {
            let mut lr = r.child(list);
            for el in lr.items("identity") {
                let mut ir = lr.child(el);
                let mut text = |n: &str| ir.literal(n).map(|(v, _)| v.trim().to_string());
                let id = Identity {
                    thumbprint: text("thumbprint"),
                    serial_number: text("serial-number"),
                    common_name: text("common-name"),
                    subject: text("subject").map(|s| parse_dn(&s)),
                    dns_name: text("dns-name"),
                    issuer_subject: text("issuer-subject").map(|s| parse_dn(&s)),
                    issuer_thumbprint: text("issuer-thumbprint"),
                    issuer_certificate_id: text("issuer-certificate-id"),
                };
                ir.finish();
                identities.push(id);
            }
            lr.finish();
        }
        Some(ValidateClientCertificate {
            revocation,
            trust,
            not_before,
            not_after,
            ignore_error,
            identities,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, _f: &mut dyn FnMut(&Expr)) {}
}

impl RunsNow for ValidateClientCertificate {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        match self.check(cx) {
            Ok(()) => Ok(Step::Next),
            Err(_) if self.ignore_error => Ok(Step::Next),
            Err(why) => Err(StepError::new(ErrorKind::ClientCertificateNotValid, why)),
        }
    }
}

impl ValidateClientCertificate {
    /// `Err` says which rule failed (LastError.Message).
    fn check(&self, cx: &ExecCtx<'_>) -> Result<(), String> {
        let Some(cert) = cx.req.info.client_certificate.as_deref() else {
            return Err("The request carries no client certificate.".into());
        };
        let leaf = &cert.leaf;
        let now = openssl::asn1::Asn1Time::days_from_now(0).map_err(|e| e.to_string())?;
        if self.not_before && leaf.not_before() > now {
            return Err("The client certificate is not valid yet.".into());
        }
        if self.not_after && leaf.not_after() < now {
            return Err("The client certificate has expired.".into());
        }
        let trust = &cx.gw.client_trust;
        if self.trust && !trust.verify(leaf, &cert.chain, false) {
            return Err("The client certificate does not chain to a trusted CA.".into());
        }
        if self.revocation && trust.has_crls() && !trust.verify(leaf, &cert.chain, true) {
            return Err("The client certificate is revoked, or its revocation cannot be checked against the configured lists.".into());
        }
        if self.identities.is_empty()
            || self
                .identities
                .iter()
                .any(|i| matches(i, leaf, &cert.chain, cx))
        {
            Ok(())
        } else {
            Err("The client certificate matches none of the identities.".into())
        }
    }
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Serial numbers compare as hex, case and leading zeros aside.
fn same_serial(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim()
            .trim_start_matches('0')
            .replace([':', ' '], "")
            .to_ascii_uppercase()
    };
    norm(a) == norm(b)
}

fn matches(i: &Identity, leaf: &X509, chain: &[X509], cx: &ExecCtx<'_>) -> bool {
    let thumb = || thumbprint(leaf).unwrap_or_default();
    let serial = || {
        leaf.serial_number()
            .to_bn()
            .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
            .unwrap_or_default()
    };
    let cn = || common_name(leaf.subject_name());
    let issuer = || issuer_of(leaf, chain, cx);
    i.thumbprint.as_deref().is_none_or(|t| eq(t, &thumb()))
        && i.serial_number
            .as_deref()
            .is_none_or(|s| same_serial(s, &serial()))
        && i.common_name
            .as_deref()
            .is_none_or(|c| cn().is_some_and(|n| eq(c, &n)))
        && i.subject
            .as_ref()
            .is_none_or(|s| same_dn(s, leaf.subject_name()))
        && i.dns_name
            .as_deref()
            .is_none_or(|d| dns_names(leaf).iter().any(|n| eq(d, n)))
        && i.issuer_subject
            .as_ref()
            .is_none_or(|s| same_dn(s, leaf.issuer_name()))
        && i.issuer_thumbprint
            .as_deref()
            .is_none_or(|t| issuer().is_some_and(|c| thumbprint(&c).is_ok_and(|h| eq(t, &h))))
        && i.issuer_certificate_id.as_deref().is_none_or(|id| {
            cx.gw
                .certificate_x509
                .get(id)
                .is_some_and(|c| signed_by(leaf, c))
        })
}

fn common_name(n: &X509NameRef) -> Option<String> {
    name_parts(n)
        .into_iter()
        .find(|(k, _)| k == "CN")
        .map(|(_, v)| v)
}

/// DNS names: the subject alternative names, else the common name (.NET's `DnsName`).
fn dns_names(c: &X509) -> Vec<String> {
    let sans: Vec<String> = c
        .subject_alt_names()
        .map(|s| {
            s.iter()
                .filter_map(|n| n.dnsname().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if sans.is_empty() {
        common_name(c.subject_name()).into_iter().collect()
    } else {
        sans
    }
}

fn signed_by(leaf: &X509, issuer: &X509) -> bool {
    issuer
        .public_key()
        .and_then(|k| leaf.verify(&k))
        .unwrap_or(false)
}

/// The certificate that issued `leaf`: among the intermediates the client sent, the configured
/// CAs and the gateway's `certificates`, one whose key signed it.
fn issuer_of(leaf: &X509, chain: &[X509], cx: &ExecCtx<'_>) -> Option<X509> {
    chain
        .iter()
        .chain(cx.gw.client_trust.cas())
        .chain(cx.gw.certificate_x509.values())
        .find(|c| signed_by(leaf, c))
        .cloned()
}

/// A distinguished name as a policy writes it (`CN=x, O="Contoso, Inc.", C=US`): its parts,
/// keys upper-cased, values unquoted, in the order written.
pub fn parse_dn(s: &str) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut push = |cur: &mut String| {
        if let Some((k, v)) = cur.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            parts.push((k.trim().to_ascii_uppercase(), v.to_string()));
        }
        cur.clear();
    };
    for ch in s.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            ',' | ';' if !quoted => push(&mut cur),
            _ => cur.push(ch),
        }
    }
    push(&mut cur);
    parts
}

/// Whether a certificate's name has exactly the parts written, in .NET's order (most specific
/// first), values compared without regard to case.
fn same_dn(want: &[(String, String)], n: &X509NameRef) -> bool {
    let have = name_parts(n);
    have.len() == want.len()
        && have
            .iter()
            .zip(want)
            .all(|((hk, hv), (wk, wv))| hk.eq_ignore_ascii_case(wk) && eq(hv, wv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguished_names_are_read_with_quotes() {
        assert_eq!(
            parse_dn(r#"CN=client.example, O="Contoso, Inc.", c=US"#),
            vec![
                ("CN".to_string(), "client.example".to_string()),
                ("O".to_string(), "Contoso, Inc.".to_string()),
                ("C".to_string(), "US".to_string()),
            ]
        );
        assert!(same_serial("00ab:CD", "ABCD"));
        assert!(!same_serial("ABCE", "ABCD"));
    }
}
