//! `<set-header>`: override, skip, append or delete a header of the request (inbound, backend)
//! or the response (outbound, on-error).

use http::{HeaderName, HeaderValue};

use crate::exec::{join_values, separate_lines, value, ExecCtx, HeaderStore, StepError};
use crate::policy::{ExistsAction, SetHeader};

/// Headers policies cannot change (load warns; the statement is ignored at run time).
fn restricted(name: &HeaderName) -> bool {
    matches!(name.as_str(), "connection" | "content-length" | "keep-alive" | "transfer-encoding")
}

pub fn run(sh: &SetHeader, cx: &mut ExecCtx) -> Result<(), StepError> {
    apply(sh, cx.section_headers())
}

/// Apply a set-header to a header store (also used by return-response).
pub fn apply(sh: &SetHeader, h: &mut dyn HeaderStore) -> Result<(), StepError> {
    let name = value(&sh.name)?;
    let action = *value(&sh.action)?;
    if restricted(name) {
        return Ok(());
    }
    let mut values = Vec::with_capacity(sh.values.len());
    for v in &sh.values {
        values.push(value(v)?.clone());
    }
    match action {
        ExistsAction::Delete => {
            if name != http::header::SERVER {
                h.remove(name);
            }
        }
        ExistsAction::Skip => {
            if !h.contains(name) {
                put(h, name, &values);
            }
        }
        ExistsAction::Override => put(h, name, &values),
        ExistsAction::Append => {
            let mut all = h.get_all(name);
            all.extend(values);
            put(h, name, &all);
        }
    }
    Ok(())
}

/// Set all values: one comma-joined line, or separate lines for headers that may hold commas.
fn put(h: &mut dyn HeaderStore, name: &HeaderName, values: &[HeaderValue]) {
    match values.len() {
        0 => h.set(name, &[HeaderValue::from_static("")]),
        1 => h.set(name, values),
        _ if separate_lines(name) => h.set(name, values),
        _ => h.set(name, &[join_values(values)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Val;
    use http::HeaderMap;

    fn sh(name: &'static str, action: ExistsAction, values: &[&'static str]) -> SetHeader {
        SetHeader {
            name: Val::Lit(HeaderName::from_static(name)),
            action: Val::Lit(action),
            values: values.iter().map(|v| Val::Lit(HeaderValue::from_static(v))).collect(),
        }
    }

    fn vals(h: &HeaderMap, n: &str) -> Vec<String> {
        h.get_all(n).iter().map(|v| v.to_str().unwrap_or("?").to_string()).collect()
    }

    #[test]
    fn actions() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("1"));
        assert!(apply(&sh("x-a", ExistsAction::Skip, &["2"]), &mut h).is_ok());
        assert_eq!(vals(&h, "x-a"), ["1"]);
        assert!(apply(&sh("x-b", ExistsAction::Skip, &["2"]), &mut h).is_ok());
        assert_eq!(vals(&h, "x-b"), ["2"]);
        assert!(apply(&sh("x-a", ExistsAction::Append, &["3"]), &mut h).is_ok());
        assert_eq!(vals(&h, "x-a"), ["1, 3"]);
        assert!(apply(&sh("set-cookie", ExistsAction::Override, &["a=1", "b=2"]), &mut h).is_ok());
        assert_eq!(vals(&h, "set-cookie"), ["a=1", "b=2"]);
        assert!(apply(&sh("x-a", ExistsAction::Override, &[]), &mut h).is_ok());
        assert_eq!(vals(&h, "x-a"), [""]);
        assert!(apply(&sh("x-a", ExistsAction::Delete, &[]), &mut h).is_ok());
        assert!(vals(&h, "x-a").is_empty());
        h.insert("server", HeaderValue::from_static("s"));
        assert!(apply(&sh("server", ExistsAction::Delete, &[]), &mut h).is_ok());
        assert_eq!(vals(&h, "server"), ["s"]);
    }
}
