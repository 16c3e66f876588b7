//! `apis[].openapi: FILE`: an API's operations from its OpenAPI 3.0 / 3.1 or Swagger 2.0
//! definition (YAML or JSON), as APIM imports them: each path and method is an operation, with
//! the `operationId` as its id (else `<method>-<path words>`, as APIM names one), the `summary`
//! as its name and the path as its URL template. Operations written under `operations` keep
//! their own definition when an id is in both.
//!
//! Each operation also gets its contract (`config::contract`: parameters, request bodies,
//! responses and their schemas, for the validate-* policies) and, for mock-response, the
//! examples its responses give. The definition is read as a JSON value: the parts read are
//! the same shape in the three versions where they agree, and `contract` handles where they
//! differ (Swagger's body parameter, `consumes` / `produces`, inline parameter types).

use std::path::Path;
use std::sync::Arc;

use super::contract;
use super::model::{ApiSpec, ExampleSpec, OperationSpec};
use crate::diag::{Diagnostics, Span};

/// Largest definition read.
const MAX_DEFINITION_BYTES: u64 = 8 * 1024 * 1024;

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Add the operations of each API's definition to it.
pub fn import(apis: &mut [ApiSpec], dir: &Path, diags: &mut Diagnostics) {
    for api in apis.iter_mut() {
        let Some(file) = api.openapi.clone() else {
            continue;
        };
        let path = dir.join(&file);
        let name: Arc<str> = Arc::from(path.display().to_string());
        let text = match super::read_bounded(&path, MAX_DEFINITION_BYTES) {
            Ok(t) => t,
            Err(e) => {
                diags.error(
                    "C058",
                    Span::new(&name, 1, 1),
                    format!("API `{}`: cannot read the OpenAPI definition: {e}", api.id),
                );
                continue;
            }
        };
        match operations(&text) {
            Ok((ops, problems)) => {
                for p in problems {
                    let (line, col) = locate(&text, p.split(": ").next().unwrap_or(""));
                    diags.error(
                        "C058",
                        Span::new(&name, line, col),
                        format!("API `{}`: {p}", api.id),
                    );
                }
                for op in ops {
                    if !api.operations.iter().any(|o| o.id == op.id) {
                        api.operations.push(op);
                    }
                }
            }
            Err((line, col, message)) => {
                diags.error("C058", Span::new(&name, line, col), message);
            }
        }
    }
}

/// What a definition gives: its operations, and the problems of its schemas (each naming the
/// place as a path into the definition).
pub type Operations = (Vec<OperationSpec>, Vec<String>);

/// The operations of a definition's text, or where and why it cannot be read.
pub fn operations(text: &str) -> Result<Operations, (u32, u32, String)> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let (line, col) = e
            .location()
            .map_or((1, 1), |l| (l.line() as u32, l.column() as u32));
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        (
            line,
            col,
            format!("the OpenAPI definition is not YAML or JSON: {msg}"),
        )
    })?;
    let version = doc
        .get("openapi")
        .or_else(|| doc.get("swagger"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_f64().map(|f| f.to_string()))
        });
    match version.as_deref() {
        Some(v) if v.starts_with("3.") || v.starts_with('2') => {}
        Some(v) => {
            return Err((
                1,
                1,
                format!("OpenAPI version {v:?} is not 2.0, 3.0 or 3.1"),
            ));
        }
        None => {
            return Err((
                1,
                1,
                "not an OpenAPI definition: no `openapi` or `swagger` field".into(),
            ))
        }
    }
    let version = version.unwrap_or_default();
    let doc: serde_json::Value = serde_json::to_value(&doc).map_err(|e| {
        (
            1,
            1,
            format!("the OpenAPI definition cannot be read as JSON: {e}"),
        )
    })?;
    let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
        return Err((1, 1, "the OpenAPI definition has no `paths`".into()));
    };
    let reader = contract::Reader::new(&doc, &version);
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (path, item) in paths {
        let Some(ops) = item.as_object() else {
            continue;
        };
        for (method, op) in ops {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let text = |k: &str| op.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let id = text("operationId").unwrap_or_else(|| generated_id(method, path));
            let at = format!("paths.{path}.{method}");
            let c = reader.contract(item, op, &at, &mut problems);
            out.push(OperationSpec {
                id,
                name: text("summary"),
                method: method.to_ascii_uppercase(),
                url_template: path.to_string(),
                examples: examples(op),
                contract: Some(Arc::new(c)),
            });
        }
    }
    Ok((out, problems))
}

/// The examples an operation's responses give (OpenAPI 3 `example` / `examples.*.value`,
/// Swagger 2 `examples.<media>`), for mock-response.
fn examples(op: &serde_json::Value) -> Vec<ExampleSpec> {
    let mut out = Vec::new();
    let Some(rs) = op.get("responses").and_then(|r| r.as_object()) else {
        return out;
    };
    for (status, r) in rs {
        let Ok(status) = status.parse::<u16>() else {
            continue;
        };
        let body = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Some(content) = r.get("content").and_then(|c| c.as_object()) {
            for (media, m) in content {
                // `example`, then each of `examples` in order (mock-response `index`).
                let named = m
                    .get("examples")
                    .and_then(|e| e.as_object())
                    .into_iter()
                    .flat_map(|e| e.values().filter_map(|x| x.get("value")));
                for e in m.get("example").into_iter().chain(named) {
                    out.push(ExampleSpec {
                        status,
                        content_type: media.clone(),
                        body: body(e),
                    });
                }
            }
        }
        if let Some(ex) = r.get("examples").and_then(|e| e.as_object()) {
            for (media, e) in ex {
                if media.contains('/') {
                    out.push(ExampleSpec {
                        status,
                        content_type: media.clone(),
                        body: body(e),
                    });
                }
            }
        }
    }
    out
}

/// Where a place named as `paths./orders.post.requestBody.application/json` is written: each
/// segment searched as a key (`seg:` or `"seg"`) after the previous one (a segment that is not
/// found, such as one cut at a `.` inside a name, is skipped); 1:1 when none is found.
fn locate(text: &str, at: &str) -> (u32, u32) {
    let mut pos = 0;
    let mut found = None;
    for seg in at.split('.').filter(|s| !s.is_empty()) {
        let rest = text.get(pos..).unwrap_or("");
        let hit = [format!("{seg}:"), format!("\"{seg}\""), format!("'{seg}'")]
            .iter()
            .filter_map(|k| rest.find(k.as_str()))
            .min();
        if let Some(i) = hit {
            pos += i;
            found = Some(pos);
            pos += seg.len();
        }
    }
    let Some(at) = found else { return (1, 1) };
    let before = &text[..at];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rfind('\n').map_or(at, |n| at - n - 1) as u32 + 1;
    (line, col)
}

/// `get /orders/{id}` -> `get-orders-id`.
fn generated_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    std::iter::once(method.to_string())
        .chain(words)
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_from_the_three_versions() {
        let v3 = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n  /orders:\n    get:\n      operationId: listOrders\n      summary: List orders\n    post: {}\n  /orders/{id}:\n    parameters: []\n    delete:\n      operationId: deleteOrder\n";
        let ops = operations(v3).unwrap_or_default().0;
        let got: Vec<_> = ops
            .iter()
            .map(|o| (o.id.as_str(), o.method.as_str(), o.url_template.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("listOrders", "GET", "/orders"),
                ("post-orders", "POST", "/orders"),
                ("deleteOrder", "DELETE", "/orders/{id}")
            ]
        );
        assert_eq!(ops[0].name.as_deref(), Some("List orders"));
        let v2 = r#"{"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {"/pets/{petId}": {"get": {"operationId": "getPet"}}}}"#;
        assert_eq!(operations(v2).map(|o| o.0.len()).ok(), Some(1));
        let v31 = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    put:\n      operationId: putA\n";
        assert_eq!(
            operations(v31).map(|o| o.0[0].id.clone()).ok(),
            Some("putA".into())
        );
    }

    #[test]
    fn a_place_in_a_definition_is_found_by_its_keys() {
        let text = "openapi: 3.0.0\npaths:\n  /a:\n    get: {}\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {type: 12}\n";
        assert_eq!(
            locate(text, "paths./a.post.requestBody.application/json"),
            (8, 11)
        );
        assert_eq!(locate(text, "nowhere"), (1, 1));
    }

    #[test]
    fn bad_definitions_say_where() {
        let (line, _, m) = operations("openapi: 3.0.0\npaths: [\n")
            .err()
            .unwrap_or_default();
        assert!(line >= 2 && m.contains("not YAML"), "{line} {m}");
        let (_, _, m) = operations("info: {}\n").err().unwrap_or_default();
        assert!(m.contains("not an OpenAPI definition"), "{m}");
        let (_, _, m) = operations("openapi: 3.0.0\n").err().unwrap_or_default();
        assert!(m.contains("no `paths`"), "{m}");
    }
}
