//! Message bodies read as JSON, XML, text or form content.

use std::sync::Arc;

use super::super::eval::{exception, EResult, Machine};
use super::super::types::{RType, Ty};
use super::super::value::{shared, Key, Obj, Value};

/// `As<T>()` over body bytes.
pub fn body_as(m: &mut Machine, bytes: &[u8], targs: &[RType]) -> EResult<Value> {
    let t = targs.first().map_or(Ty::String, |t| t.ty);
    // Valid UTF-8 (the usual case) is read in place; otherwise with U+FFFD for bad bytes.
    let text = || match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    Ok(match t {
        Ty::String => Value::str(&text()),
        Ty::Bytes => Value::Bytes(Arc::new(bytes.to_vec())),
        Ty::XElement | Ty::XDocument => Value::obj(Obj::Xml(super::xml::parse(&text())?)),
        Ty::JObject | Ty::JToken | Ty::JArray => {
            let v = super::json::parse(&text())?;
            match (t, &v) {
                (Ty::JObject, Value::JObject(_))
                | (Ty::JArray, Value::JArray(_))
                | (Ty::JToken, _) => v,
                _ => {
                    return exception(
                        "JsonReaderException",
                        format!(
                            "The body is not a JSON {}",
                            if t == Ty::JObject { "object" } else { "array" }
                        ),
                    )
                }
            }
        }
        _ => {
            let _ = m;
            return exception(
                "NotSupportedException",
                format!(
                    "Body.As<{}>() is not supported",
                    targs.first().map(RType::display).unwrap_or_default()
                ),
            );
        }
    })
}

pub fn form_content(bytes: &[u8]) -> Value {
    let pairs = crate::codec::query::parse(&String::from_utf8_lossy(bytes));
    let mut map: indexmap::IndexMap<Key, Value> = indexmap::IndexMap::new();
    for (k, v) in pairs {
        let entry = map
            .entry(Key::Str(Arc::from(k.as_str())))
            .or_insert_with(|| Value::list(vec![]));
        if let Value::List(l) = entry {
            l.lock().push(Value::string(v));
        }
    }
    Value::Dict(shared(map))
}

pub(super) fn multimap_get(
    map: &[(String, Vec<String>)],
    ci: bool,
    k: &str,
) -> Option<Vec<String>> {
    map.iter()
        .find(|(n, _)| {
            if ci {
                n.eq_ignore_ascii_case(k)
            } else {
                n == k
            }
        })
        .map(|(_, v)| v.clone())
}
