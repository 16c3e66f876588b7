//! The `certificates` section: PEM files read at load, and the policies that name them.

use super::*;

pub(super) type Certificates = (
    upstream::Certificates,
    AHashMap<String, String>,
    AHashMap<String, openssl::x509::X509>,
);

/// The `certificates` section: PEM certificate (and key) files, read at load.
pub(super) fn compile_certificates(
    cfg: &LoadedConfig,
    src: &Sources,
    d: &mut Diagnostics,
) -> Certificates {
    let (mut by_id, mut thumbs, mut x509) = (AHashMap::new(), AHashMap::new(), AHashMap::new());
    for c in &cfg.raw.certificates {
        let span = cfg.locate(None, "id", &c.id);
        if x509.contains_key(&c.id) {
            d.error("C037", span, format!("duplicate certificate id `{}`", c.id));
            continue;
        }
        let read = |f: &str, d: &mut Diagnostics| {
            let path = cfg.dir.join(f);
            src.file(&path)
                .map(<[u8]>::to_vec)
                .map_err(|e| {
                    d.error(
                        "C037",
                        span.clone(),
                        format!(
                            "certificate `{}`: cannot read {}: {e}",
                            c.id,
                            path.display()
                        ),
                    )
                })
                .ok()
        };
        let Some(cert) = read(&c.cert_file, d) else {
            continue;
        };
        let certs = openssl::x509::X509::stack_from_pem(&cert).unwrap_or_default();
        let Some(first) = certs.first().cloned() else {
            d.error(
                "C037",
                span.clone(),
                format!(
                    "certificate `{}`: {} holds no PEM certificate",
                    c.id, c.cert_file
                ),
            );
            continue;
        };
        if let Ok(digest) = first.digest(openssl::hash::MessageDigest::sha1()) {
            let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
            thumbs.insert(hex, c.id.clone());
        }
        x509.insert(c.id.clone(), first);
        let Some(key_file) = &c.key_file else {
            continue;
        };
        let Some(key) = read(key_file, d) else {
            continue;
        };
        match openssl::pkey::PKey::private_key_from_pem(&key) {
            Ok(key) => {
                by_id.insert(c.id.clone(), upstream::backend::client_cert(certs, key));
            }
            Err(_) => d.error(
                "C037",
                span.clone(),
                format!(
                    "certificate `{}`: {key_file} is not a PEM private key",
                    c.id
                ),
            ),
        }
    }
    (by_id, thumbs, x509)
}

/// Every `authentication-certificate` must name a configured certificate.
pub(super) fn check_certificate_refs(
    apis: &[Api],
    certificates: &upstream::Certificates,
    thumbprints: &AHashMap<String, String>,
    x509: &AHashMap<String, openssl::x509::X509>,
    d: &mut Diagnostics,
) {
    use crate::exec::policies::access::CertificateRef;
    let mut reported = std::collections::HashSet::new();
    super::each_statement(apis, &mut |s| {
        if let StmtKind::ValidateClientCertificate(v) = &s.kind {
            for id in v
                .identities
                .iter()
                .filter_map(|i| i.issuer_certificate_id.as_deref())
            {
                if !x509.contains_key(id) && reported.insert(format!("{}#{id}", s.span)) {
                    d.error(
                        "P048",
                        s.span.clone(),
                        format!("<validate-client-certificate> names issuer-certificate-id `{id}`, which is not configured under `certificates`"),
                    );
                }
            }
            return;
        }
        let cert = match &s.kind {
            StmtKind::SendRequest(r) => r.certificate.as_ref(),
            StmtKind::AuthenticationCertificate(c) => Some(c),
            _ => return,
        };
        let known = match cert {
            None => true,
            Some(CertificateRef::Id(id)) => certificates.contains_key(id),
            Some(CertificateRef::Thumbprint(t)) => thumbprints
                .get(t)
                .is_some_and(|id| certificates.contains_key(id)),
        };
        if !known && reported.insert(s.span.to_string()) {
            d.error(
                "P048",
                s.span.clone(),
                format!(
                    "<{}> names a certificate that is not configured under `certificates`",
                    s.element
                ),
            );
        }
    });
}

/// `trust`: the CA certificates and revocation lists validate-client-certificate checks
/// against. A policy that checks revocation without lists is warned about: nothing is fetched
/// online, so there is nothing to check.
pub(super) fn compile_trust(
    cfg: &LoadedConfig,
    src: &Sources,
    apis: &[Api],
    d: &mut Diagnostics,
) -> crate::exec::trust::ClientTrust {
    let mut cas = Vec::new();
    let mut crls = Vec::new();
    for f in &cfg.raw.trust.ca_files {
        let path = cfg.dir.join(f);
        match src.file(&path).map(openssl::x509::X509::stack_from_pem) {
            Ok(Ok(certs)) if !certs.is_empty() => cas.extend(certs),
            Ok(_) => d.error(
                "C065",
                cfg.locate(None, "ca_files", f),
                format!("trust.ca_files: {f} holds no PEM certificate"),
            ),
            Err(e) => d.error(
                "C065",
                cfg.locate(None, "ca_files", f),
                format!("trust.ca_files: cannot read {}: {e}", path.display()),
            ),
        }
    }
    for f in &cfg.raw.trust.crl_files {
        let path = cfg.dir.join(f);
        match src.file(&path) {
            Ok(bytes) => {
                let list = pem_crls(bytes);
                if list.is_empty() {
                    d.error(
                        "C065",
                        cfg.locate(None, "crl_files", f),
                        format!("trust.crl_files: {f} holds no PEM certificate revocation list"),
                    );
                }
                crls.extend(list);
            }
            Err(e) => d.error(
                "C065",
                cfg.locate(None, "crl_files", f),
                format!("trust.crl_files: cannot read {}: {e}", path.display()),
            ),
        }
    }
    if crls.is_empty() {
        let mut warned = false;
        super::each_statement(apis, &mut |s| {
            if let StmtKind::ValidateClientCertificate(v) = &s.kind {
                if v.revocation && !warned {
                    warned = true;
                    d.warning(
                        "W011",
                        s.span.clone(),
                        "validate-client-certificate checks revocation, but `trust.crl_files` lists none: nothing is fetched online, so revocation is not checked (set validate-revocation=\"false\" or configure revocation lists)",
                    );
                }
            }
        });
    }
    crate::exec::trust::ClientTrust::new(cas, crls)
}

/// Every CRL in a PEM file.
fn pem_crls(bytes: &[u8]) -> Vec<openssl::x509::X509Crl> {
    const BEGIN: &[u8] = b"-----BEGIN X509 CRL-----";
    const END: &[u8] = b"-----END X509 CRL-----";
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(start) = rest.windows(BEGIN.len()).position(|w| w == BEGIN) {
        let Some(len) = rest[start..].windows(END.len()).position(|w| w == END) else {
            break;
        };
        let end = start + len + END.len();
        if let Ok(c) = openssl::x509::X509Crl::from_pem(&rest[start..end]) {
            out.push(c);
        }
        rest = &rest[end..];
    }
    out
}
