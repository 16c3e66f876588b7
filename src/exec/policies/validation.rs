//! What the validate-* policies share (APIM's "Validation" model): actions, error records,
//! the errors variable, and how `prevent` fails the request (400 on the request side, 502 on
//! the response side, with APIM's public messages).

use super::*;
use crate::config::contract::Contract;
use crate::exec::error::LimitDetail;
use crate::exec::ErrorKind;
use crate::expr::value::{shared, Value};

/// `ignore`, `detect` or `prevent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Ignore,
    Detect,
    Prevent,
}

pub fn parse_action(s: &str) -> Result<Action, Invalid> {
    match s.trim().to_ascii_lowercase().as_str() {
        "ignore" => Ok(Action::Ignore),
        "detect" => Ok(Action::Detect),
        "prevent" => Ok(Action::Prevent),
        _ => Err(crate::invalid!("must be ignore, detect or prevent")),
    }
}

/// One validation problem, as APIM records it.
#[derive(Clone, Debug)]
pub struct Problem {
    pub name: String,
    /// `Body`, `QueryParameter`, `Header`, `PathParameter`, `ResponseHeader`, `StatusCode`,
    /// `ContentType`.
    pub kind: &'static str,
    pub rule: &'static str,
    pub details: String,
    pub action: Action,
}

/// The operation's contract, when the API has a definition.
pub fn contract(cx: &ExecCtx) -> Option<std::sync::Arc<Contract>> {
    let info = &cx.req.info;
    let api = &cx.gw.apis[info.api?];
    api.operations.get(info.operation?)?.contract.clone()
}

/// Record the problems (`detect` and `prevent` ones) in the errors variable and the log; fail
/// with the first `prevent` one.
pub fn finish(
    cx: &mut ExecCtx,
    policy: &str,
    errors_variable: Option<&str>,
    problems: Vec<Problem>,
) -> Outcome {
    let kept: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.action != Action::Ignore)
        .collect();
    if kept.is_empty() {
        return Ok(Step::Next);
    }
    for p in &kept {
        log::info!(
            "{policy}: {} {} ({}): {} [{:?}]",
            p.kind,
            p.name,
            p.rule,
            p.details,
            p.action
        );
    }
    if let Some(var) = errors_variable {
        let list: Vec<Value> = kept
            .iter()
            .map(|p| {
                let mut m = crate::expr::value::JMap::default();
                m.insert("Name".to_string(), Value::str(&p.name));
                m.insert("Type".to_string(), Value::str(p.kind));
                m.insert("ValidationRule".to_string(), Value::str(p.rule));
                m.insert("Details".to_string(), Value::str(&p.details));
                let action = match p.action {
                    Action::Ignore => "ignore",
                    Action::Detect => "detect",
                    Action::Prevent => "prevent",
                };
                m.insert("Action".to_string(), Value::str(action));
                Value::JObject(shared(m))
            })
            .collect();
        cx.req.set_variable(var, Value::list(list));
    }
    match kept.iter().find(|p| p.action == Action::Prevent) {
        None => Ok(Step::Next),
        Some(p) if cx.on_request_side() => Err(StepError {
            kind: ErrorKind::RequestNotValid,
            message: p.details.clone(),
            detail: Some(LimitDetail::response(400, p.details.clone())),
        }),
        Some(p) => Err(StepError {
            kind: ErrorKind::ResponseNotValid,
            message: p.details.clone(),
            detail: Some(LimitDetail::response(
                502,
                "The request could not be processed due to an internal error. Contact the API owner.",
            )),
        }),
    }
}

/// A parameter or header value as the JSON its schema expects: numbers, booleans and arrays
/// (comma-separated, OpenAPI's `simple` / `form` style) read from the text.
pub fn typed(text: &str, schema_type: Option<&str>) -> serde_json::Value {
    use serde_json::Value as J;
    match schema_type {
        Some("integer") => text
            .trim()
            .parse::<i64>()
            .map(J::from)
            .unwrap_or_else(|_| J::String(text.into())),
        Some("number") => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(J::Number))
            .unwrap_or_else(|| J::String(text.into())),
        Some("boolean") => match text.trim() {
            "true" => J::Bool(true),
            "false" => J::Bool(false),
            _ => J::String(text.into()),
        },
        Some("array") => J::Array(
            text.split(',')
                .map(|s| J::String(s.trim().into()))
                .collect(),
        ),
        _ => J::String(text.into()),
    }
}

/// Validate a parameter's text against its schema; the first problem found.
pub fn check_value(schema: &crate::config::contract::Schema, text: &str) -> Option<String> {
    use crate::config::contract::Additional;
    // The declared type decides how the text is read; `allOf[0]` is the schema as written.
    let v = typed(text, schema.declared_type());
    schema
        .errors(&v, Additional::AsWritten, 1)
        .into_iter()
        .next()
}

/// Headers every HTTP message may carry that a definition does not list: never
/// "unspecified".
pub const STANDARD_HEADERS: &[&str] = &[
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "date",
    "etag",
    "expect",
    "expires",
    "forwarded",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-unmodified-since",
    "keep-alive",
    "last-modified",
    "origin",
    "pragma",
    "referer",
    "server",
    "set-cookie",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-request-id",
];

/// `<child name="" action=""/>` overrides under a validate-* element.
pub fn read_overrides(
    r: &mut Reader,
    items: &[&crate::policy::xml::Element],
    name_attr: &str,
) -> Vec<(String, Action)> {
    let mut out = Vec::new();
    for el in items {
        let mut c = r.child(el);
        let name = c.required_literal(name_attr);
        let action = c.parsed_literal("action", parse_action);
        c.finish();
        if let (Some(n), Some(a)) = (name, action) {
            out.push((n, a));
        }
    }
    out
}

/// An override for `name` (case-insensitive), else `default`.
pub fn action_for(overrides: &[(String, Action)], name: &str, default: Action) -> Action {
    overrides
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or(default, |(_, a)| *a)
}

/// A header's values as text (case-insensitive name).
pub fn header_values(store: &(dyn crate::exec::HeaderStore + Send), name: &str) -> Vec<String> {
    let mut out = Vec::new();
    store.each_value(&name.to_ascii_lowercase(), &mut |v| {
        out.push(String::from_utf8_lossy(v).into_owned())
    });
    out
}

impl crate::exec::FromValue for Action {
    fn from_value(v: Value) -> Result<Self, Invalid> {
        parse_action(&v.to_display())
    }
}
