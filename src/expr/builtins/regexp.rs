//! Regular expressions (`Regex`, `Match`, `Group`): .NET options mapped onto the `regex`
//! crate, compiled patterns cached.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::super::eval::{exception, EResult};
use super::super::value::{Obj, Value};

pub(super) fn regex_flags(opts: Option<&Value>) -> String {
    let v = opts.and_then(Value::as_i64).unwrap_or(0);
    let mut f = String::new();
    if v & 1 != 0 {
        f.push('i');
    }
    if v & 2 != 0 {
        f.push('m');
    }
    if v & 16 != 0 {
        f.push('s');
    }
    if v & 32 != 0 {
        f.push('x');
    }
    f
}

/// Compiled regexes are cached (bounded) by pattern and options.
pub(super) fn regex(pattern: &str, opts: Option<&Value>) -> EResult<regex::Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, regex::Regex>>> = OnceLock::new();
    let flags = regex_flags(opts);
    let key = format!("{flags}\u{0}{pattern}");
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(r) = cache.lock().get(&key) {
        return Ok(r.clone());
    }
    let full = if flags.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{flags}){pattern}")
    };
    let r = regex::RegexBuilder::new(&full)
        .size_limit(1 << 20)
        .build()
        .or_else(|e| {
            exception(
                "ArgumentException",
                format!("Invalid pattern '{pattern}': {e}"),
            )
        })?;
    let mut c = cache.lock();
    if c.len() >= 512 {
        c.clear();
    }
    c.insert(key, r.clone());
    Ok(r)
}

pub(super) fn match_value(r: &regex::Regex, text: &Arc<str>, from: usize) -> Value {
    let names: Vec<Option<String>> = r.capture_names().map(|n| n.map(str::to_string)).collect();
    match r.captures_at(text, from) {
        Some(c) => Value::obj(Obj::Match {
            text: text.clone(),
            groups: (0..c.len())
                .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                .collect(),
            names,
        }),
        None => Value::obj(Obj::Match {
            text: text.clone(),
            groups: vec![None],
            names,
        }),
    }
}

/// `Regex.Matches`: every match of `r` in `text`, as a list of `Match` values.
pub(super) fn matches_value(r: &regex::Regex, text: Arc<str>) -> Value {
    let names: Vec<Option<String>> = r.capture_names().map(|n| n.map(str::to_string)).collect();
    Value::list(
        r.captures_iter(&text)
            .map(|c| {
                Value::obj(Obj::Match {
                    text: text.clone(),
                    groups: (0..c.len())
                        .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                        .collect(),
                    names: names.clone(),
                })
            })
            .collect(),
    )
}

/// .NET replacement syntax (`$1`, `${name}`, `$$`) is the same as the regex crate's, except
/// that `$1a` means group 1 then `a` in .NET: bracket numeric references.
pub(super) fn replacement(s: &str) -> String {
    let mut out = String::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '$' && b.get(i + 1).is_some_and(char::is_ascii_digit) {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            out.push_str(&format!("${{{}}}", b[i + 1..j].iter().collect::<String>()));
            i = j;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

pub fn group_index(v: &Value, k: &Value) -> EResult<Value> {
    let Value::Obj(o) = v else {
        return exception("InvalidOperationException", "not a match");
    };
    match &**o {
        Obj::Match {
            text,
            groups,
            names,
        } => {
            let idx = match k {
                Value::Str(n) => names.iter().position(|x| x.as_deref() == Some(&**n)),
                other => other.as_i64().map(|i| i as usize),
            };
            let g = idx.and_then(|i| groups.get(i).copied()).flatten();
            Ok(Value::obj(Obj::Group {
                value: g.map(|(s, e)| (text.clone(), s, e)),
            }))
        }
        _ => exception("InvalidOperationException", "not a match"),
    }
}
