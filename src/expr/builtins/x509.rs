//! `X509Certificate2` (the APIM expression allow list): built from DER or PEM bytes
//! (`new X509Certificate2(Convert.FromBase64String(...))`), with `RawData`, `Thumbprint`,
//! `SerialNumber`, `Subject`, `Issuer`, `NotBefore`, `NotAfter`, `HasPrivateKey`, `Version`,
//! and `Verify()` (the chain against the system's trusted CAs, as .NET's does against the
//! machine store). Names are written as .NET writes them: the most specific part first,
//! `CN=api.example.com, O=Contoso, C=US`.

use std::sync::Arc;

use openssl::nid::Nid;
use openssl::x509::{X509NameRef, X509};

use super::super::datetime::DateTime;
use super::super::eval::{exception, EResult};
use super::super::value::Value;
use super::names::Names;

pub(super) const NAMES: Names = Names {
    members: &[
        "RawData",
        "Thumbprint",
        "SerialNumber",
        "Subject",
        "Issuer",
        "NotBefore",
        "NotAfter",
        "HasPrivateKey",
        "Version",
    ],
    methods: &["Verify", "GetCertHashString", "GetRawCertData"],
    static_members: &[],
    static_methods: &[],
};

/// Parse a certificate from DER or PEM bytes.
pub fn parse(bytes: &[u8]) -> EResult<X509> {
    let parsed = if bytes.starts_with(b"-----BEGIN") {
        X509::from_pem(bytes)
    } else {
        X509::from_der(bytes)
    };
    parsed.or_else(|e| {
        exception(
            "CryptographicException",
            format!("the bytes are not a certificate: {e}"),
        )
    })
}

/// A distinguished name as .NET writes it: most specific part first.
fn name(n: &X509NameRef) -> String {
    name_parts(n)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parts of a distinguished name as (.NET key, value), most specific first.
pub fn name_parts(n: &X509NameRef) -> Vec<(String, String)> {
    let mut parts: Vec<(String, String)> = n
        .entries()
        .map(|e| {
            let key = match e.object().nid() {
                Nid::COMMONNAME => "CN",
                Nid::ORGANIZATIONNAME => "O",
                Nid::ORGANIZATIONALUNITNAME => "OU",
                Nid::COUNTRYNAME => "C",
                Nid::LOCALITYNAME => "L",
                Nid::STATEORPROVINCENAME => "S",
                Nid::PKCS9_EMAILADDRESS => "E",
                Nid::DOMAINCOMPONENT => "DC",
                other => other.short_name().unwrap_or("OID"),
            };
            let value = e.data().to_string().unwrap_or_default();
            (key.to_string(), value)
        })
        .collect();
    parts.reverse();
    parts
}

/// `Subject` (also the certificate's `ToString()` here).
pub fn subject(c: &X509) -> String {
    name(c.subject_name())
}

/// SHA-1 of the DER certificate in upper-case hex (.NET's `Thumbprint`).
pub fn thumbprint(c: &X509) -> EResult<String> {
    let d = c
        .digest(openssl::hash::MessageDigest::sha1())
        .or_else(|e| exception("CryptographicException", e.to_string()))?;
    Ok(d.iter().map(|b| format!("{b:02X}")).collect())
}

fn time(t: &openssl::asn1::Asn1TimeRef) -> EResult<Value> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0)
        .or_else(|e| exception("CryptographicException", e.to_string()))?;
    let d = epoch
        .diff(t)
        .or_else(|e| exception("CryptographicException", e.to_string()))?;
    Ok(Value::DateTime(DateTime::from_unix_seconds(
        i64::from(d.days) * 86_400 + i64::from(d.secs),
    )))
}

pub fn member(c: &X509, name: &str) -> EResult<Value> {
    Ok(match name {
        "RawData" => Value::Bytes(Arc::new(
            c.to_der()
                .or_else(|e| exception("CryptographicException", e.to_string()))?,
        )),
        "Thumbprint" => Value::string(thumbprint(c)?),
        "SerialNumber" => Value::string(
            c.serial_number()
                .to_bn()
                .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
                .unwrap_or_default(),
        ),
        "Subject" => Value::string(subject(c)),
        "Issuer" => Value::string(name_of_issuer(c)),
        "NotBefore" => time(c.not_before())?,
        "NotAfter" => time(c.not_after())?,
        "HasPrivateKey" => Value::Bool(false),
        "Version" => Value::Int(c.version() + 1),
        _ => {
            return exception(
                "MissingMemberException",
                format!("'X509Certificate2' does not contain a definition for '{name}'"),
            )
        }
    })
}

fn name_of_issuer(c: &X509) -> String {
    name(c.issuer_name())
}

pub fn call(c: &X509, name: &str) -> EResult<Value> {
    Ok(match name {
        "Verify" => Value::Bool(verify(c)),
        "GetCertHashString" => Value::string(thumbprint(c)?),
        "GetRawCertData" => member(c, "RawData")?,
        _ => {
            return exception(
                "MissingMethodException",
                format!("'X509Certificate2' does not contain a method '{name}'"),
            )
        }
    })
}

/// Whether the certificate chains to a CA the system trusts (`SSL_CERT_FILE` /
/// `SSL_CERT_DIR` or OpenSSL's default paths) and is within its validity period.
fn verify(c: &X509) -> bool {
    let check = || -> Result<bool, openssl::error::ErrorStack> {
        let mut b = openssl::x509::store::X509StoreBuilder::new()?;
        b.set_default_paths()?;
        let store = b.build();
        let chain = openssl::stack::Stack::new()?;
        let mut ctx = openssl::x509::X509StoreContext::new()?;
        ctx.init(&store, c, &chain, |ctx| ctx.verify_cert())
    };
    check().unwrap_or(false)
}
