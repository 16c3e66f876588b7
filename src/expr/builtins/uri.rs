//! URL and HTML encodings, query multimaps.

use super::super::value::{Obj, Value};

pub(super) fn multimap(pairs: &[(String, String)]) -> Value {
    let mut map: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in pairs {
        match map.iter_mut().find(|(n, _)| n == k) {
            Some((_, vs)) => vs.push(v.clone()),
            None => map.push((k.clone(), vec![v.clone()])),
        }
    }
    Value::obj(Obj::MultiMap {
        map,
        ignore_case: false,
    })
}

pub(super) const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*');

pub fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, FORM)
        .to_string()
        .replace("%20", "+")
}

pub fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

pub(super) fn html_encode(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
