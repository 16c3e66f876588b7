//! The cryptography behind `jsonwebtoken`: its RustCrypto provider for everything, except RSA
//! signature checks (RS256/384/512, PS256/384/512), which go to OpenSSL. The pure-Rust RSA
//! check took ~256 µs per token (RSA-2048, `cargo bench --bench gateway -- validate-jwt`);
//! OpenSSL, which the gateway links already, does it several times faster. Installed once per
//! process (`install`), before the first token is checked.

use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwkUtils, JwtVerifier};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Verifier};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: rust_crypto::DEFAULT_PROVIDER.signer_factory,
    verifier_factory: new_verifier,
    jwk_utils: JwkUtils {
        extract_rsa_public_key_components: rust_crypto::DEFAULT_PROVIDER
            .jwk_utils
            .extract_rsa_public_key_components,
        extract_ec_public_key_coordinates: rust_crypto::DEFAULT_PROVIDER
            .jwk_utils
            .extract_ec_public_key_coordinates,
        compute_digest: rust_crypto::DEFAULT_PROVIDER.jwk_utils.compute_digest,
    },
};

/// Make this the process's provider (once; later calls do nothing). Call it before anything
/// signs or checks a token: the library's first use otherwise fixes its RustCrypto default,
/// which then stays (`cli::main` calls it first thing; `verify` again, for library users).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is installed already, which then stays.
        let _ = PROVIDER.install_default();
    });
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let (md, pss) = match alg {
        Algorithm::RS256 => (MessageDigest::sha256(), false),
        Algorithm::RS384 => (MessageDigest::sha384(), false),
        Algorithm::RS512 => (MessageDigest::sha512(), false),
        Algorithm::PS256 => (MessageDigest::sha256(), true),
        Algorithm::PS384 => (MessageDigest::sha384(), true),
        Algorithm::PS512 => (MessageDigest::sha512(), true),
        _ => return (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(alg, key),
    };
    if key.family() != AlgorithmFamily::Rsa {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let key = prepared(key)?;
    Ok(Box::new(RsaVerifier {
        alg: *alg,
        key,
        md,
        pss,
    }))
}

/// OpenSSL keys prepared from the `DecodingKey`s seen, by their bytes: preparing a key (its
/// Montgomery set-up, which OpenSSL then keeps with it) is most of a check's cost. At most
/// `MAX_PREPARED`, emptied when full (keys come from configuration and the issuers' key sets,
/// which are few).
fn prepared(key: &DecodingKey) -> Result<PKey<Public>, Error> {
    const MAX_PREPARED: usize = 256;
    static KEYS: std::sync::OnceLock<parking_lot::Mutex<ahash::AHashMap<Vec<u8>, PKey<Public>>>> =
        std::sync::OnceLock::new();
    let id: Vec<u8> = match key.kind() {
        DecodingKeyKind::SecretOrDer(der) => [b"d:".as_slice(), der].concat(),
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            [b"n:".as_slice(), &(n.len() as u64).to_be_bytes(), n, e].concat()
        }
    };
    let keys = KEYS.get_or_init(Default::default);
    if let Some(k) = keys.lock().get(&id) {
        return Ok(k.clone());
    }
    let rsa = match key.kind() {
        // PKCS#1 RSAPublicKey, as `DecodingKey::from_rsa_der` / `from_rsa_pem` keep it.
        DecodingKeyKind::SecretOrDer(der) => Rsa::public_key_from_der_pkcs1(der),
        DecodingKeyKind::RsaModulusExponent { n, e } => openssl::bn::BigNum::from_slice(n)
            .and_then(|n| {
                openssl::bn::BigNum::from_slice(e).and_then(|e| Rsa::from_public_components(n, e))
            }),
    }
    .map_err(|_| Error::from(ErrorKind::InvalidKeyFormat))?;
    let k = PKey::from_rsa(rsa).map_err(|_| Error::from(ErrorKind::InvalidKeyFormat))?;
    let mut m = keys.lock();
    if m.len() >= MAX_PREPARED {
        m.clear();
    }
    m.insert(id, k.clone());
    Ok(k)
}

struct RsaVerifier {
    alg: Algorithm,
    key: PKey<Public>,
    md: MessageDigest,
    pss: bool,
}

impl signature::Verifier<Vec<u8>> for RsaVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let check = || -> Result<bool, openssl::error::ErrorStack> {
            let mut v = Verifier::new(self.md, &self.key)?;
            if self.pss {
                v.set_rsa_padding(Padding::PKCS1_PSS)?;
                v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                v.set_rsa_mgf1_md(self.md)?;
            } else {
                v.set_rsa_padding(Padding::PKCS1)?;
            }
            v.verify_oneshot(sig, msg)
        };
        match check() {
            Ok(true) => Ok(()),
            _ => Err(signature::Error::new()),
        }
    }
}

impl JwtVerifier for RsaVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, Validation};

    /// Tokens signed by jsonwebtoken (RustCrypto) verify through OpenSSL, for every RSA
    /// algorithm and both key forms; a changed payload, another key, and an HS token made with
    /// the RSA key's bytes as the secret do not.
    #[test]
    fn rsa_tokens_verify_through_openssl() {
        install();
        let rsa = Rsa::generate(2048).unwrap_or_else(|e| panic!("{e}"));
        let other = Rsa::generate(2048).unwrap_or_else(|e| panic!("{e}"));
        let der = rsa.private_key_to_der().unwrap_or_else(|e| panic!("{e}"));
        let enc = EncodingKey::from_rsa_der(&der);
        let public = rsa
            .public_key_to_der_pkcs1()
            .unwrap_or_else(|e| panic!("{e}"));
        let by_der = DecodingKey::from_rsa_der(&public);
        let by_parts = DecodingKey::from_rsa_raw_components(&rsa.n().to_vec(), &rsa.e().to_vec());
        let wrong = DecodingKey::from_rsa_raw_components(&other.n().to_vec(), &other.e().to_vec());
        let claims =
            serde_json::json!({"sub": "alice", "exp": jsonwebtoken::get_current_timestamp() + 600});
        for alg in [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ] {
            let t = jsonwebtoken::encode(&Header::new(alg), &claims, &enc)
                .unwrap_or_else(|e| panic!("{e}"));
            let v = Validation::new(alg);
            let ok = |k: &DecodingKey, t: &str| {
                jsonwebtoken::decode::<serde_json::Value>(t, k, &v).is_ok()
            };
            // This module's verifier itself (whichever provider the process installed).
            use base64::Engine;
            let (input, sig) = t.rsplit_once('.').unwrap_or_default();
            let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(sig)
                .unwrap_or_default();
            let ours = new_verifier(&alg, &by_parts).unwrap_or_else(|e| panic!("{e}"));
            assert!(ours.verify(input.as_bytes(), &sig).is_ok(), "{alg:?}");
            assert!(ours.verify(b"x.y", &sig).is_err(), "{alg:?} other input");
            assert!(ok(&by_der, &t), "{alg:?} with the DER key");
            assert!(ok(&by_parts, &t), "{alg:?} with n / e");
            assert!(!ok(&wrong, &t), "{alg:?} with another key");
            let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
            parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(br#"{"sub":"mallory","exp":4102444800}"#);
            assert!(!ok(&by_der, &parts.join(".")), "{alg:?} changed payload");
        }
        // An HS256 token whose secret is the RSA public key's bytes is not an RSA token.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&public),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(jsonwebtoken::decode::<serde_json::Value>(
            &hs,
            &by_der,
            &Validation::new(Algorithm::RS256)
        )
        .is_err());
    }
}
