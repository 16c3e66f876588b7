//! `<set-header>`: override, skip, append or delete a header of the request (inbound, backend)
//! or the response (outbound, on-error).

use super::*;
use crate::exec::{join_values, separate_lines, value, HeaderStore};
use http::{HeaderName, HeaderValue};

#[derive(Clone, Debug)]
pub struct SetHeader {
    pub name: Val<HeaderName>,
    pub action: Val<ExistsAction>,
    pub values: Vec<Val<HeaderValue>>,
}

impl Policy for SetHeader {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        Some(parse_set_header(r))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.name, f);
        visit_val(&self.action, f);
        self.values.iter().for_each(|x| visit_val(x, f));
    }
}

impl RunsNow for SetHeader {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let response = matches!(cx.section, Section::Outbound | Section::OnError);
        apply(self, cx, response).map(|_| Step::Next)
    }
}

/// Headers policies cannot change: the framing and connection headers are the gateway's (a
/// literal name warns at load, P016; any name is ignored at run time).
pub fn restricted(name: &str) -> bool {
    matches!(
        name,
        "connection" | "content-length" | "keep-alive" | "transfer-encoding"
    )
}

pub(super) fn parse_set_header(r: &mut Reader) -> SetHeader {
    let name = r
        .required_value("name", parse_header_name)
        .unwrap_or(Val::Lit(HeaderName::from_static("x-invalid")));
    let action = r
        .value("exists-action", parse_action)
        .unwrap_or(Val::Lit(ExistsAction::Override));
    let mut values = Vec::new();
    for child in r.items("value") {
        let mut cr = r.child(child);
        cr.no_children();
        if let Some(v) = cr.text_value(false, parse_header_value) {
            values.push(v);
        } else {
            values.push(Val::Lit(HeaderValue::from_static("")));
        }
        cr.finish();
    }
    if let (Val::Lit(ExistsAction::Delete), false) = (&action, values.is_empty()) {
        r.diags.warning(
            "P015",
            r.el.span.clone(),
            "exists-action=\"delete\" ignores <value> children",
        );
    }
    if let Val::Lit(n) = &name {
        if restricted(n.as_str()) {
            r.diags.warning(
                "P016",
                r.el.span.clone(),
                format!("header `{n}` cannot be modified; this set-header is ignored"),
            );
        }
    }
    SetHeader {
        name,
        action,
        values,
    }
}

/// Apply a set-header to the request's or the response's headers (return-response uses the
/// response's).
pub fn apply(sh: &SetHeader, cx: &mut ExecCtx, response: bool) -> Result<(), StepError> {
    let name = value(&sh.name, cx)?.into_owned();
    let action = *value(&sh.action, cx)?;
    let mut values = Vec::with_capacity(sh.values.len());
    for v in &sh.values {
        values.push(value(v, cx)?.into_owned());
    }
    let h: &mut (dyn HeaderStore + Send) = if response {
        &mut *cx.resp_headers
    } else {
        &mut *cx.req_headers
    };
    apply_to(&name, action, values, h);
    Ok(())
}

/// The header change itself, on any header store.
pub fn apply_to(
    name: &HeaderName,
    action: ExistsAction,
    values: Vec<HeaderValue>,
    h: &mut dyn HeaderStore,
) {
    if restricted(name.as_str()) {
        return;
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
    use http::HeaderMap;

    struct Lit(&'static str, ExistsAction, Vec<HeaderValue>);

    fn sh(name: &'static str, action: ExistsAction, values: &[&'static str]) -> Lit {
        Lit(
            name,
            action,
            values.iter().map(|v| HeaderValue::from_static(v)).collect(),
        )
    }

    fn apply(l: Lit, h: &mut HeaderMap) -> Result<(), ()> {
        apply_to(&HeaderName::from_static(l.0), l.1, l.2, h);
        Ok(())
    }

    fn vals(h: &HeaderMap, n: &str) -> Vec<String> {
        h.get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap_or("?").to_string())
            .collect()
    }

    #[test]
    fn actions() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("1"));
        assert!(apply(sh("x-a", ExistsAction::Skip, &["2"]), &mut h).is_ok());
        assert_eq!(vals(&h, "x-a"), ["1"]);
        assert!(apply(sh("x-b", ExistsAction::Skip, &["2"]), &mut h).is_ok());
        assert_eq!(vals(&h, "x-b"), ["2"]);
        assert!(apply(sh("x-a", ExistsAction::Append, &["3"]), &mut h).is_ok());
        assert_eq!(vals(&h, "x-a"), ["1, 3"]);
        assert!(apply(
            sh("set-cookie", ExistsAction::Override, &["a=1", "b=2"]),
            &mut h
        )
        .is_ok());
        assert_eq!(vals(&h, "set-cookie"), ["a=1", "b=2"]);
        assert!(apply(sh("x-a", ExistsAction::Override, &[]), &mut h).is_ok());
        assert_eq!(vals(&h, "x-a"), [""]);
        assert!(apply(sh("x-a", ExistsAction::Delete, &[]), &mut h).is_ok());
        assert!(vals(&h, "x-a").is_empty());
        h.insert("server", HeaderValue::from_static("s"));
        assert!(apply(sh("server", ExistsAction::Delete, &[]), &mut h).is_ok());
        assert_eq!(vals(&h, "server"), ["s"]);
    }
}
