//! Hashing and HMAC over OpenSSL (already linked for Pingora).

use super::super::eval::{exception, EResult, Machine};
use super::super::value::Value;
use super::iterate;

pub(super) fn digest(alg: &str) -> Option<openssl::hash::MessageDigest> {
    use openssl::hash::MessageDigest as D;
    Some(match alg {
        "MD5" => D::md5(),
        "SHA1" => D::sha1(),
        "SHA256" => D::sha256(),
        "SHA384" => D::sha384(),
        "SHA512" => D::sha512(),
        _ => return None,
    })
}

pub(super) fn hash(alg: &str, key: Option<&[u8]>, data: &[u8]) -> EResult<Vec<u8>> {
    let d = digest(alg).map_or_else(
        || exception("CryptographicException", format!("unknown hash {alg}")),
        Ok,
    )?;
    let r = match key {
        None => openssl::hash::hash(d, data).map(|x| x.to_vec()),
        Some(k) => openssl::pkey::PKey::hmac(k).and_then(|pk| {
            let mut s = openssl::sign::Signer::new(d, &pk)?;
            s.update(data)?;
            s.sign_to_vec()
        }),
    };
    r.or_else(|e| exception("CryptographicException", e.to_string()))
}

pub(super) fn bytes_arg(m: &mut Machine, v: &Value) -> EResult<Vec<u8>> {
    Ok(match v {
        Value::Bytes(b) => b.to_vec(),
        Value::Str(s) => s.as_bytes().to_vec(),
        Value::List(_) => iterate(m, v)?
            .iter()
            .map(|x| x.as_i64().unwrap_or(0) as u8)
            .collect(),
        _ => {
            return exception(
                "ArgumentException",
                format!("expected byte[], found {}", v.type_name()),
            )
        }
    })
}

pub(super) fn hash_alg_of(type_name: &str) -> Option<(&'static str, bool)> {
    Some(match type_name {
        "MD5" => ("MD5", false),
        "SHA1" | "SHA1Managed" => ("SHA1", false),
        "SHA256" | "SHA256Managed" => ("SHA256", false),
        "SHA384" => ("SHA384", false),
        "SHA512" | "SHA512Managed" => ("SHA512", false),
        "HMACMD5" => ("MD5", true),
        "HMACSHA1" => ("SHA1", true),
        "HMACSHA256" => ("SHA256", true),
        "HMACSHA384" => ("SHA384", true),
        "HMACSHA512" => ("SHA512", true),
        _ => return None,
    })
}
