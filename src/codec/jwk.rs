//! JSON Web Keys as the JWT checks hold them: a decoding key and the algorithm family it may
//! verify.

use jsonwebtoken::DecodingKey;

/// Key families: a token's algorithm is only ever checked with a key of its own family, so an
/// HS token can never be verified with RSA key material used as an HMAC secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl Family {
    pub fn of(alg: jsonwebtoken::Algorithm) -> Family {
        use jsonwebtoken::Algorithm::*;
        match alg {
            HS256 | HS384 | HS512 => Family::Hmac,
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Family::Rsa,
            ES256 | ES384 => Family::Ec,
            EdDSA => Family::Ed,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Key {
    pub kid: Option<String>,
    pub family: Family,
    pub key: DecodingKey,
}
