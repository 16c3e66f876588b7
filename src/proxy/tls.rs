//! TLS listeners (docs/configuration.md, `listeners[].tls`): the certificate chosen per
//! connection by the name the client asks for (SNI), certificates read again on reload (a
//! set that does not load keeps the one in service), and client certificates, which reach
//! the request as a [`PeerCertificate`] through Pingora's TLS digest extension.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use pingora::tls::ssl::{NameType, SslVerifyMode};
use pingora::tls::x509::X509;

use crate::config::{ClientCertMode, ListenerTls};

/// Largest PEM file read for a listener.
const MAX_PEM: u64 = 1024 * 1024;

/// One certificate with its chain and key.
struct Pair {
    leaf: X509,
    chain: Vec<X509>,
    key: openssl::pkey::PKey<openssl::pkey::Private>,
}

/// The certificates of one listener: the default and those chosen by name.
pub struct CertSet {
    default: Pair,
    /// (lower-case name or `*.suffix`, index into `named`).
    names: Vec<(String, usize)>,
    named: Vec<Pair>,
}

impl CertSet {
    /// Read every certificate of a listener; all problems at once.
    pub fn load(dir: &Path, tls: &ListenerTls) -> Result<CertSet, Vec<String>> {
        let mut errors = Vec::new();
        let default = pair(dir, &tls.cert, &tls.key)
            .map_err(|e| errors.push(e))
            .ok();
        let mut names = Vec::new();
        let mut named = Vec::new();
        for c in &tls.certificates {
            match pair(dir, &c.cert, &c.key) {
                Ok(p) => {
                    let list = if c.names.is_empty() {
                        dns_names(&p.leaf)
                    } else {
                        c.names.iter().map(|n| n.to_ascii_lowercase()).collect()
                    };
                    if list.is_empty() {
                        errors.push(format!(
                            "{}: the certificate names no DNS name; give `names`",
                            c.cert
                        ));
                    }
                    for n in list {
                        names.push((n, named.len()));
                    }
                    named.push(p);
                }
                Err(e) => errors.push(e),
            }
        }
        match default {
            Some(default) if errors.is_empty() => Ok(CertSet {
                default,
                names,
                named,
            }),
            _ => Err(errors),
        }
    }

    /// The certificate for a server name: an exact name first, then a wildcard, else the default.
    fn pick(&self, server_name: Option<&str>) -> &Pair {
        let Some(sni) = server_name.map(str::to_ascii_lowercase) else {
            return &self.default;
        };
        let exact = self.names.iter().find(|(n, _)| *n == sni);
        let wildcard = || {
            let (_, parent) = sni.split_once('.')?;
            self.names
                .iter()
                .find(|(n, _)| n.strip_prefix("*.") == Some(parent))
        };
        exact
            .or_else(wildcard)
            .map_or(&self.default, |(_, i)| &self.named[*i])
    }
}

fn read_pem(dir: &Path, file: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(file);
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_PEM {
        return Err(format!("{}: larger than {MAX_PEM} bytes", path.display()));
    }
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn pair(dir: &Path, cert: &str, key_file: &str) -> Result<Pair, String> {
    let certs = X509::stack_from_pem(&read_pem(dir, cert)?)
        .map_err(|e| format!("{cert}: not a PEM certificate: {e}"))?;
    let mut certs = certs.into_iter();
    let leaf = certs
        .next()
        .ok_or_else(|| format!("{cert}: holds no PEM certificate"))?;
    let key = openssl::pkey::PKey::private_key_from_pem(&read_pem(dir, key_file)?)
        .map_err(|_| format!("{key_file}: not a PEM private key"))?;
    let matches = leaf
        .public_key()
        .map(|p| p.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        return Err(format!("{key_file}: is not the key of {cert}"));
    }
    Ok(Pair {
        leaf,
        chain: certs.collect(),
        key,
    })
}

/// The DNS names a certificate serves: its subject alternative names, else its common name.
fn dns_names(c: &X509) -> Vec<String> {
    let sans: Vec<String> = c
        .subject_alt_names()
        .map(|s| {
            s.iter()
                .filter_map(|n| n.dnsname().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    if !sans.is_empty() {
        return sans;
    }
    c.subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .filter_map(|e| e.data().to_string().ok())
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

use crate::exec::PeerCertificate;

/// Pingora's per-handshake callbacks for one listener.
struct Callbacks {
    set: Arc<ArcSwap<CertSet>>,
}

#[async_trait]
impl TlsAccept for Callbacks {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let set = self.set.load();
        let p = set.pick(ssl.servername(NameType::HOST_NAME));
        let ok = pingora::tls::ext::ssl_use_certificate(ssl, &p.leaf).is_ok()
            && pingora::tls::ext::ssl_use_private_key(ssl, &p.key).is_ok()
            && p.chain
                .iter()
                .all(|c| pingora::tls::ext::ssl_add_chain_cert(ssl, c).is_ok());
        if !ok {
            log::warn!("TLS: cannot use the listener certificate for this handshake");
        }
    }

    async fn handshake_complete_callback(
        &self,
        ssl: &TlsRef,
    ) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        let leaf = ssl.peer_certificate()?;
        let chain = ssl
            .peer_cert_chain()
            .map(|s| s.iter().map(|c| c.to_owned()).collect())
            .unwrap_or_default();
        Some(Arc::new(PeerCertificate { leaf, chain }))
    }
}

/// A TLS listener's settings, and the certificate set a reload replaces.
pub fn settings(
    dir: &Path,
    tls: &ListenerTls,
    http2: bool,
) -> Result<(TlsSettings, Arc<ArcSwap<CertSet>>), String> {
    let set = Arc::new(ArcSwap::from_pointee(
        CertSet::load(dir, tls).map_err(|e| e.join("; "))?,
    ));
    let mut s = TlsSettings::with_callbacks(Box::new(Callbacks { set: set.clone() }))
        .map_err(|e| e.to_string())?;
    if http2 {
        s.enable_h2();
    }
    let mode = match tls.client_cert {
        ClientCertMode::None => None,
        ClientCertMode::Request => Some(SslVerifyMode::PEER),
        ClientCertMode::Require => Some(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT),
    };
    if let Some(mode) = mode {
        match &tls.client_ca {
            Some(ca) => {
                let cas = X509::stack_from_pem(&read_pem(dir, ca)?)
                    .map_err(|e| format!("{ca}: not a PEM certificate: {e}"))?;
                if cas.is_empty() {
                    return Err(format!("{ca}: holds no PEM certificate"));
                }
                for c in &cas {
                    s.add_client_ca(c).map_err(|e| e.to_string())?;
                    s.cert_store_mut()
                        .add_cert(c.clone())
                        .map_err(|e| e.to_string())?;
                }
                s.set_verify(mode);
            }
            // Any certificate: the policies judge it (APIM's "negotiate client certificate").
            None => s.set_verify_callback(mode, |_, _| true),
        }
        // Session resumption would skip the client's certificate on later connections.
        s.set_session_id_context(b"gatehouse")
            .map_err(|e| e.to_string())?;
    }
    Ok((s, set))
}

/// Read a listener's certificates again; on failure the ones in service stay.
pub fn reload(dir: &Path, address: &str, tls: &ListenerTls, set: &ArcSwap<CertSet>) -> bool {
    match CertSet::load(dir, tls) {
        Ok(new) => {
            set.store(Arc::new(new));
            true
        }
        Err(e) => {
            log::error!(
                "listener {address}: certificates not reloaded; keeping those in service: {}",
                e.join("; ")
            );
            false
        }
    }
}

/// The client's certificate on this request's connection, if it sent one.
pub fn client_certificate(session: &pingora::proxy::Session) -> Option<&PeerCertificate> {
    session
        .digest()?
        .ssl_digest
        .as_ref()?
        .extension
        .get::<PeerCertificate>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(cn: &str) -> Pair {
        let make = || -> Result<Pair, openssl::error::ErrorStack> {
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
            let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
            let mut name = openssl::x509::X509Name::builder()?;
            name.append_entry_by_text("CN", cn)?;
            let name = name.build();
            let mut b = X509::builder()?;
            b.set_subject_name(&name)?;
            b.set_issuer_name(&name)?;
            b.set_pubkey(&key)?;
            b.sign(&key, openssl::hash::MessageDigest::sha256())?;
            Ok(Pair {
                leaf: b.build(),
                chain: Vec::new(),
                key,
            })
        };
        make().unwrap_or_else(|e| panic!("{e}"))
    }

    fn cn(p: &Pair) -> String {
        dns_names(&p.leaf).join(",")
    }

    #[test]
    fn exact_names_then_one_label_wildcards_then_the_default() {
        let named = vec![pair("*.example.com"), pair("api.example.com")];
        let mut names = Vec::new();
        for (i, p) in named.iter().enumerate() {
            for n in dns_names(&p.leaf) {
                names.push((n, i));
            }
        }
        let set = CertSet {
            default: pair("default.test"),
            names,
            named,
        };
        assert_eq!(cn(set.pick(Some("API.example.com"))), "api.example.com");
        assert_eq!(cn(set.pick(Some("web.example.com"))), "*.example.com");
        assert_eq!(
            cn(set.pick(Some("a.b.example.com"))),
            "default.test",
            "one label only"
        );
        assert_eq!(cn(set.pick(Some("example.com"))), "default.test");
        assert_eq!(cn(set.pick(None)), "default.test");
    }
}
