//! `apis[].openapi: FILE`: an API's operations from its OpenAPI 3.0 / 3.1 or Swagger 2.0
//! definition (YAML or JSON), as APIM imports them: each path and method is an operation, with
//! the `operationId` as its id (else `<method>-<path words>`, as APIM names one), the `summary`
//! as its name and the path as its URL template. Operations written under `operations` keep
//! their own definition when an id is in both.
//!
//! Only `paths` is read here, a part that is the same in the three versions, so no OpenAPI
//! library is needed for it; request and response schemas (for validate-content) are not
//! read yet.

use std::path::Path;
use std::sync::Arc;

use super::model::{ApiSpec, OperationSpec};
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
            Ok(ops) => {
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

/// The operations of a definition's text, or where and why it cannot be read.
pub fn operations(text: &str) -> Result<Vec<OperationSpec>, (u32, u32, String)> {
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
    let Some(paths) = doc.get("paths").and_then(|p| p.as_mapping()) else {
        return Err((1, 1, "the OpenAPI definition has no `paths`".into()));
    };
    let mut out = Vec::new();
    for (p, item) in paths {
        let Some(path) = p.as_str() else { continue };
        let Some(item) = item.as_mapping() else {
            continue;
        };
        for (m, op) in item {
            let Some(method) = m.as_str().filter(|m| METHODS.contains(m)) else {
                continue;
            };
            let text = |k: &str| op.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let id = text("operationId").unwrap_or_else(|| generated_id(method, path));
            out.push(OperationSpec {
                id,
                name: text("summary"),
                method: method.to_ascii_uppercase(),
                url_template: path.to_string(),
                examples: Vec::new(),
            });
        }
    }
    Ok(out)
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
        let ops = operations(v3).unwrap_or_default();
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
        assert_eq!(operations(v2).map(|o| o.len()).ok(), Some(1));
        let v31 = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    put:\n      operationId: putA\n";
        assert_eq!(
            operations(v31).map(|o| o[0].id.clone()).ok(),
            Some("putA".into())
        );
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
