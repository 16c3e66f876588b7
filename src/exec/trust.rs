//! What validate-client-certificate trusts (`trust` in the configuration): the system's CAs and
//! `trust.ca_files` (APIM's CA certificates), and the revocation lists of `trust.crl_files`.
//!
//! Revocation: the leaf's issuer must have a list (signed by that issuer), and no certificate
//! of the chain may be on its issuer's list; an intermediate whose issuer has no list is not
//! checked (OpenSSL's `CRL_CHECK`, not `CRL_CHECK_ALL`).

use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Crl, X509StoreContext, X509};

/// Built once per configuration.
pub struct ClientTrust {
    cas: Vec<X509>,
    crls: Vec<X509Crl>,
    /// Chains to the system's CAs or `cas`; validity periods are the policy's own rules.
    store: Option<X509Store>,
}

impl std::fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientTrust({} CAs, {} CRLs)",
            self.cas.len(),
            self.crls.len()
        )
    }
}

impl Default for ClientTrust {
    fn default() -> Self {
        ClientTrust::new(Vec::new(), Vec::new())
    }
}

fn store(cas: &[X509]) -> Result<X509Store, openssl::error::ErrorStack> {
    let mut b = X509StoreBuilder::new()?;
    b.set_default_paths()?;
    for c in cas {
        // A CA listed twice is no error.
        let _ = b.add_cert(c.clone());
    }
    b.set_flags(X509VerifyFlags::NO_CHECK_TIME)?;
    Ok(b.build())
}

/// Whether `crl` is `issuer`'s list: its issuer name and its signature.
fn list_of(crl: &X509Crl, issuer: &X509) -> bool {
    crl.issuer_name().to_der().ok() == issuer.subject_name().to_der().ok()
        && issuer
            .public_key()
            .and_then(|k| crl.verify(&k))
            .unwrap_or(false)
}

impl ClientTrust {
    pub fn new(cas: Vec<X509>, crls: Vec<X509Crl>) -> ClientTrust {
        ClientTrust {
            store: store(&cas).ok(),
            cas,
            crls,
        }
    }

    pub fn cas(&self) -> impl Iterator<Item = &X509> {
        self.cas.iter()
    }

    pub fn has_crls(&self) -> bool {
        !self.crls.is_empty()
    }

    /// Whether `leaf` chains (through `chain`, the intermediates the client sent) to a trusted
    /// CA; with `revocation`, also that no certificate of the chain is on a configured list.
    pub fn verify(&self, leaf: &X509, chain: &[X509], revocation: bool) -> bool {
        let Some(store) = self.store.as_ref() else {
            return false;
        };
        let check = || -> Result<bool, openssl::error::ErrorStack> {
            let mut stack = openssl::stack::Stack::new()?;
            for c in chain {
                stack.push(c.clone())?;
            }
            let mut ctx = X509StoreContext::new()?;
            ctx.init(store, leaf, &stack, |c| {
                if !c.verify_cert()? {
                    return Ok(false);
                }
                if !revocation {
                    return Ok(true);
                }
                // The verified chain, leaf first, each certificate followed by its issuer.
                let Some(path) = c.chain() else {
                    return Ok(false);
                };
                let path: Vec<X509> = path.iter().map(|x| x.to_owned()).collect();
                for (i, cert) in path.iter().enumerate() {
                    let Some(issuer) = path.get(i + 1).or_else(|| path.last()) else {
                        break;
                    };
                    let lists: Vec<&X509Crl> =
                        self.crls.iter().filter(|l| list_of(l, issuer)).collect();
                    if lists.is_empty() {
                        if i == 0 {
                            return Ok(false);
                        }
                        continue;
                    }
                    let revoked = lists.iter().any(|l| {
                        !matches!(
                            l.get_by_serial(cert.serial_number()),
                            openssl::x509::CrlStatus::NotRevoked
                        )
                    });
                    if revoked {
                        return Ok(false);
                    }
                }
                Ok(true)
            })
        };
        check().unwrap_or(false)
    }
}
