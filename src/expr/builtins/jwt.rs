//! JWT values (`AsJwt()`): claims and header members.

use super::super::datetime::DateTime;
use super::super::eval::{exception, EResult};
use super::super::value::{self, Obj, Value};
use super::names::Names;

/// The names this family implements, registered beside their code: the binder accepts a
/// member, method or static name only when a family registers it (`names.rs` chains them).
pub(super) const NAMES: Names = Names {
    members: &[
        "Type",
        "Subject",
        "Issuer",
        "Audiences",
        "Claims",
        "Id",
        "Algorithm",
        "ExpirationTime",
        "NotBefore",
        "IssuedAt",
    ],
    methods: &[],
    static_members: &[],
    static_methods: &[],
};

pub(super) fn claim_strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect(),
        serde_json::Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    }
}

pub(super) fn jwt_member(j: &value::Jwt, name: &str) -> EResult<Value> {
    let claim = |k: &str| {
        j.claims.get(k).map_or(Value::Null, |v| {
            Value::string(v.as_str().map_or_else(|| v.to_string(), str::to_string))
        })
    };
    let time = |k: &str| {
        j.claims
            .get(k)
            .and_then(serde_json::Value::as_i64)
            .map_or(Value::Null, |s| {
                Value::DateTime(DateTime::from_unix_seconds(s))
            })
    };
    Ok(match name {
        "Id" => claim("jti"),
        "Issuer" => claim("iss"),
        "Subject" => claim("sub"),
        "Algorithm" => j
            .header
            .get("alg")
            .and_then(|v| v.as_str())
            .map_or(Value::Null, Value::str),
        "Type" => j
            .header
            .get("typ")
            .and_then(|v| v.as_str())
            .map_or(Value::Null, Value::str),
        "Audiences" => Value::list(
            j.claims
                .get("aud")
                .map(claim_strings)
                .unwrap_or_default()
                .into_iter()
                .map(Value::string)
                .collect(),
        ),
        "Claims" => Value::obj(Obj::MultiMap {
            map: j
                .claims
                .iter()
                .map(|(k, v)| (k.clone(), claim_strings(v)))
                .collect(),
            ignore_case: false,
        }),
        "ExpirationTime" => time("exp"),
        "NotBefore" => time("nbf"),
        "IssuedAt" => time("iat"),
        _ => {
            return exception(
                "MissingMemberException",
                format!("'Jwt' does not contain a definition for '{name}'"),
            )
        }
    })
}
