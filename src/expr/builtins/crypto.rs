//! Hashing and HMAC over OpenSSL (already linked for Pingora).

use super::super::eval::{exception, EResult, Machine};
use super::super::value::Value;
use super::iterate;
use super::names::Names;

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

/// APIM's `byte[]` extension methods for symmetric encryption.
pub(super) const NAMES: Names = Names {
    members: &[],
    methods: &["Encrypt", "Decrypt"],
    static_members: &[],
    static_methods: &[],
};

/// `input.Encrypt(alg, key, iv)` / `input.Decrypt(alg, key, iv)`: `alg` names a .NET symmetric
/// algorithm (`Aes`, `Rijndael`, `TripleDES`, with or without their `Managed` /
/// `CryptoServiceProvider` / namespace spellings); .NET's defaults apply: CBC and PKCS7 padding.
/// The overloads taking a `SymmetricAlgorithm` instance are refused at run time (nothing here
/// builds one). Wrong sizes and bad padding throw what .NET throws.
pub(super) fn cipher(m: &mut Machine, input: &Value, name: &str, args: &[Value]) -> EResult<Value> {
    let [alg, key, iv] = args else {
        return exception(
            "NotSupportedException",
            format!("{name} takes (string algorithm, byte[] key, byte[] iv)"),
        );
    };
    let Value::Str(alg) = alg else {
        return exception(
            "NotSupportedException",
            format!(
                "{name} with a SymmetricAlgorithm instance: pass the algorithm's name, key and IV"
            ),
        );
    };
    let (input, key, iv) = (bytes_arg(m, input)?, bytes_arg(m, key)?, bytes_arg(m, iv)?);
    let (cipher, key, block) = symmetric(alg, key)?;
    if iv.len() != block {
        return exception(
            "CryptographicException",
            "Specified initialization vector (IV) does not match the block size for this algorithm.",
        );
    }
    let out = match name {
        "Encrypt" => openssl::symm::encrypt(cipher, &key, Some(&iv), &input)
            .or_else(|e| exception("CryptographicException", e.to_string()))?,
        "Decrypt" => openssl::symm::decrypt(cipher, &key, Some(&iv), &input).or_else(|_| {
            exception(
                "CryptographicException",
                "Padding is invalid and cannot be removed.",
            )
        })?,
        _ => return exception("MissingMethodException", name.to_string()),
    };
    Ok(Value::Bytes(std::sync::Arc::new(out)))
}

/// The OpenSSL cipher for a .NET algorithm name and key, the key as OpenSSL takes it and the
/// block size.
fn symmetric(alg: &str, key: Vec<u8>) -> EResult<(openssl::symm::Cipher, Vec<u8>, usize)> {
    use openssl::symm::Cipher;
    let base = alg.rsplit('.').next().unwrap_or(alg).to_ascii_lowercase();
    let base = ["managed", "cryptoserviceprovider", "cng"]
        .iter()
        .find_map(|s| base.strip_suffix(s))
        .unwrap_or(&base)
        .to_string();
    let bad_key = || {
        exception(
            "CryptographicException",
            "Specified key is not a valid size for this algorithm.",
        )
    };
    match base.as_str() {
        "aes" | "rijndael" => {
            let c = match key.len() {
                16 => Cipher::aes_128_cbc(),
                24 => Cipher::aes_192_cbc(),
                32 => Cipher::aes_256_cbc(),
                _ => return bad_key(),
            };
            Ok((c, key, 16))
        }
        "tripledes" | "3des" => {
            let key = match key.len() {
                // Two-key TripleDES is K1 K2 K1.
                16 => [&key[..], &key[..8]].concat(),
                24 => key,
                _ => return bad_key(),
            };
            Ok((Cipher::des_ede3_cbc(), key, 8))
        }
        _ => exception(
            "CryptographicException",
            format!(
                "unknown or unsupported symmetric algorithm {alg:?} (Aes, Rijndael, TripleDES)"
            ),
        ),
    }
}
