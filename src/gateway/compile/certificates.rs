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
    d: &mut Diagnostics,
) {
    use crate::exec::policies::access::CertificateRef;
    let mut reported = std::collections::HashSet::new();
    super::each_statement(apis, &mut |s| {
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
