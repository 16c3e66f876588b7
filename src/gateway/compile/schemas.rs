//! `schemas:`: the JSON Schemas and XML Schemas (`.xsd`) validate-content names by
//! `schema-id`, read and compiled at load (C059 for a file that cannot be read or parsed, a schema that does not compile, an id
//! or `schema-ref` a policy names that does not exist).

use super::*;
use crate::config::contract::NamedSchema;

/// Largest schema document read.
const MAX_SCHEMA_BYTES: u64 = 8 * 1024 * 1024;

/// The schemas by id: JSON Schemas, and XML Schemas (`.xsd` files).
pub(super) type Schemas = (
    AHashMap<String, Arc<NamedSchema>>,
    AHashMap<String, Arc<crate::exec::child::XmlSchema>>,
);

pub(super) fn compile_schemas(cfg: &LoadedConfig, d: &mut Diagnostics) -> Schemas {
    let mut out = AHashMap::new();
    let mut xml = AHashMap::new();
    for (id, spec) in &cfg.raw.schemas {
        let span = cfg.locate(None, "file", &spec.file);
        let path = cfg.dir.join(&spec.file);
        if spec.file.to_ascii_lowercase().ends_with(".xsd") {
            match crate::exec::child::XmlSchema::load(&path) {
                Ok(s) => {
                    xml.insert(id.clone(), Arc::new(s));
                }
                Err(e) => d.error(
                    "C059",
                    span,
                    format!("XML schema `{id}` cannot be used: {e}"),
                ),
            }
            continue;
        }
        let text = match crate::config::read_bounded(&path, MAX_SCHEMA_BYTES) {
            Ok(t) => t,
            Err(e) => {
                d.error(
                    "C059",
                    span,
                    format!("schema `{id}`: cannot read {}: {e}", spec.file),
                );
                continue;
            }
        };
        let doc: serde_json::Value = match serde_yaml::from_str::<serde_yaml::Value>(&text)
            .map_err(|e| {
                let (line, col) = e
                    .location()
                    .map_or((1, 1), |l| (l.line() as u32, l.column() as u32));
                (line, col, e.to_string())
            })
            .and_then(|v| serde_json::to_value(v).map_err(|e| (1, 1, e.to_string())))
        {
            Ok(v) => v,
            Err((line, col, e)) => {
                let file: Arc<str> = Arc::from(path.display().to_string());
                let e = e.split(" at line ").next().unwrap_or(&e).to_string();
                d.error(
                    "C059",
                    Span::new(&file, line, col),
                    format!("schema `{id}` is not JSON or YAML: {e}"),
                );
                continue;
            }
        };
        let named = NamedSchema::new(doc);
        if let Err(e) = named.get(None) {
            d.error("C059", span, format!("schema `{id}` does not compile: {e}"));
            continue;
        }
        out.insert(id.clone(), Arc::new(named));
    }
    (out, xml)
}

/// Every `schema-id` / `schema-ref` a validate-content names exists and compiles (each is
/// compiled here once, so no request compiles one).
pub(super) fn check_schema_refs(apis: &[Api], schemas: &Schemas, d: &mut Diagnostics) {
    use crate::exec::policies::validate_content::As;
    let mut reported = std::collections::HashSet::new();
    super::each_statement(apis, &mut |s| {
        let StmtKind::ValidateContent(v) = &s.kind else {
            return;
        };
        for rule in &v.content {
            let Some(id) = &rule.schema_id else { continue };
            let problem = match (rule.validate_as, schemas.0.get(id), schemas.1.get(id)) {
                (As::Json, Some(n), _) => n
                    .get(rule.schema_ref.as_deref())
                    .err()
                    .map(|e| format!("schema `{id}`: {e}")),
                (As::Json, None, Some(_)) => Some(format!(
                    "schema `{id}` is an XML schema; validate-as=\"json\" needs a JSON Schema"
                )),
                (As::Xml, _, Some(_)) if rule.schema_ref.is_some() => Some(format!(
                    "schema `{id}`: `schema-ref` applies to JSON Schemas only"
                )),
                (As::Xml, _, Some(_)) => None,
                (As::Xml, Some(_), None) => Some(format!(
                    "schema `{id}` is a JSON Schema; validate-as=\"xml\" needs an XML schema (.xsd)"
                )),
                (_, None, None) => Some(format!("no schema `{id}` under `schemas`")),
            };
            if let Some(m) = problem {
                if reported.insert((s.span.to_string(), m.clone())) {
                    d.error("C059", s.span.clone(), format!("validate-content: {m}"));
                }
            }
        }
    });
}
