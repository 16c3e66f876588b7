//! What an API's OpenAPI / Swagger definition says an operation takes and answers: parameters
//! with their schemas, request bodies and responses by media type, response headers. The
//! validate-* policies check requests and responses against it.
//!
//! Schemas are JSON Schema, compiled with the `jsonschema` crate (drafts 4 to 2020-12): OpenAPI
//! 3.0 and Swagger 2.0 schemas as draft 4 (their `exclusiveMaximum: true` form), with 3.0's
//! `nullable: true` read as a `null` type; OpenAPI 3.1 schemas as draft 2020-12. Each compiled
//! schema carries the definition's `components` (or Swagger's `definitions`), so
//! `$ref: '#/components/schemas/X'` resolves; no reference leaves the file.

use std::sync::{Arc, Mutex};

use ahash::AHashMap;
use serde_json::{Map, Value as J};

/// Deepest schema nesting normalised (a definition is at most 8 MiB; this bounds recursion).
const MAX_DEPTH: usize = 64;
/// Most `$ref` hops followed to reach a parameter, body or response.
const MAX_REF_HOPS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
}

#[derive(Debug)]
pub struct Param {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub schema: Option<Arc<Schema>>,
}

#[derive(Debug)]
pub struct Media {
    /// Lower-case media type as written (`application/json`, `application/*`, `*/*`).
    pub media_type: String,
    pub schema: Option<Arc<Schema>>,
}

#[derive(Debug)]
pub struct Response {
    /// `200`, `2XX` or `default`.
    pub status: String,
    pub content: Vec<Media>,
    pub headers: Vec<Param>,
}

#[derive(Debug, Default)]
pub struct Contract {
    pub parameters: Vec<Param>,
    pub request: Vec<Media>,
    pub responses: Vec<Response>,
}

/// How a schema is applied: as written, or with `additionalProperties` forced
/// (validate-content's `allow-additional-properties`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Additional {
    AsWritten,
    Allow,
    Forbid,
}

/// A compiled schema, and its variants for `allow-additional-properties` built on first use.
pub struct Schema {
    root: J,
    /// None: as the document's `$schema` says (2020-12 without one).
    draft: Option<jsonschema::Draft>,
    pub validator: jsonschema::Validator,
    variants: Mutex<AHashMap<(Additional, bool), Arc<jsonschema::Validator>>>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

fn build(root: &J, draft: Option<jsonschema::Draft>) -> Result<jsonschema::Validator, String> {
    let mut o = jsonschema::options();
    if let Some(d) = draft {
        o = o.with_draft(d);
    }
    o.should_validate_formats(true)
        .build(root)
        .map_err(|e| e.to_string())
}

impl Schema {
    /// A standalone JSON Schema document (`schemas:`), whole or at a local reference
    /// (`schema-ref="#/components/schemas/address"`: the document's other members stay, so
    /// references inside it resolve).
    pub fn from_document(doc: &J, reference: Option<&str>) -> Result<Schema, String> {
        let root = match reference {
            None => doc.clone(),
            Some(r) => {
                if !r.starts_with('#') || doc.pointer(&r[1..]).is_none() {
                    return Err(format!("{r} names nothing in the schema"));
                }
                let mut m = Map::new();
                if let Some(o) = doc.as_object() {
                    for (k, v) in o {
                        if matches!(
                            k.as_str(),
                            "$schema" | "$id" | "$defs" | "definitions" | "components"
                        ) {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                }
                let mut all = Map::new();
                all.insert("$ref".into(), J::String(r.to_string()));
                m.insert("allOf".into(), J::Array(vec![J::Object(all)]));
                // Members that are neither keywords nor the containers above are kept too,
                // under their names, as a pointer may name them (`#/address`).
                if let Some(o) = doc.as_object() {
                    let first = r[1..].split('/').nth(1).unwrap_or("");
                    if let Some(v) = o.get(first) {
                        m.entry(first.to_string()).or_insert_with(|| v.clone());
                    }
                }
                J::Object(m)
            }
        };
        Schema::new(root, None)
    }

    fn new(root: J, draft: Option<jsonschema::Draft>) -> Result<Schema, String> {
        let validator = build(&root, draft)?;
        Ok(Schema {
            root,
            draft,
            validator,
            variants: Mutex::new(AHashMap::new()),
        })
    }

    /// Problems of `instance` (at most `max`), as `path: message`.
    pub fn errors(&self, instance: &J, additional: Additional, max: usize) -> Vec<String> {
        self.check(instance, additional, false, max)
    }

    /// As [`Schema::errors`]; `ignore_case`: property names match whatever their case
    /// (validate-content's `case-insensitive-property-names`), by comparing the instance and
    /// the schema with every property name in lower case.
    pub fn check(
        &self,
        instance: &J,
        additional: Additional,
        ignore_case: bool,
        max: usize,
    ) -> Vec<String> {
        let v = match (additional, ignore_case) {
            (Additional::AsWritten, false) => None,
            key => self.variant(key),
        };
        let lowered;
        let instance = if ignore_case {
            lowered = lower_keys(instance, 0);
            &lowered
        } else {
            instance
        };
        let validator = v.as_deref().unwrap_or(&self.validator);
        validator
            .iter_errors(instance)
            .take(max)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect()
    }

    /// The `type` the schema as written declares (`allOf[0].type`), if one.
    pub fn declared_type(&self) -> Option<&str> {
        let s = self.root.get("allOf")?.get(0)?;
        match s.get("type")? {
            J::String(t) => Some(t),
            J::Array(a) => a.iter().filter_map(J::as_str).find(|t| *t != "null"),
            _ => None,
        }
    }

    fn variant(&self, key: (Additional, bool)) -> Option<Arc<jsonschema::Validator>> {
        let mut m = self.variants.lock().ok()?;
        if let Some(v) = m.get(&key) {
            return Some(v.clone());
        }
        let mut root = self.root.clone();
        if key.0 != Additional::AsWritten {
            force_additional(&mut root, key.0 == Additional::Allow, 0);
        }
        if key.1 {
            lower_schema_names(&mut root, 0);
        }
        let v = Arc::new(build(&root, self.draft).ok()?);
        m.insert(key, v.clone());
        Some(v)
    }
}

/// A JSON value with every object key in lower case.
fn lower_keys(v: &J, depth: usize) -> J {
    match v {
        _ if depth > MAX_DEPTH => v.clone(),
        J::Object(m) => J::Object(
            m.iter()
                .map(|(k, x)| (k.to_lowercase(), lower_keys(x, depth + 1)))
                .collect(),
        ),
        J::Array(a) => J::Array(a.iter().map(|x| lower_keys(x, depth + 1)).collect()),
        other => other.clone(),
    }
}

/// The property names a schema declares (`properties` keys, `required` items) in lower case.
fn lower_schema_names(v: &mut J, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        J::Object(m) => {
            if let Some(J::Object(props)) = m.get_mut("properties") {
                let old = std::mem::take(props);
                *props = old
                    .into_iter()
                    .map(|(k, x)| (k.to_lowercase(), x))
                    .collect();
            }
            if let Some(J::Array(req)) = m.get_mut("required") {
                for r in req.iter_mut() {
                    if let J::String(s) = r {
                        *s = s.to_lowercase();
                    }
                }
            }
            for x in m.values_mut() {
                lower_schema_names(x, depth + 1);
            }
        }
        J::Array(a) => {
            for x in a {
                lower_schema_names(x, depth + 1);
            }
        }
        _ => {}
    }
}

/// Every object schema (one with `properties`) gets `additionalProperties` set to `allow`.
fn force_additional(v: &mut J, allow: bool, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        J::Object(m) => {
            if m.contains_key("properties") {
                m.insert("additionalProperties".into(), J::Bool(allow));
            }
            for x in m.values_mut() {
                force_additional(x, allow, depth + 1);
            }
        }
        J::Array(a) => {
            for x in a {
                force_additional(x, allow, depth + 1);
            }
        }
        _ => {}
    }
}

/// A schema of `schemas:` and what policies take from it (whole, or at a `schema-ref`).
#[derive(Debug)]
pub struct NamedSchema {
    doc: J,
    compiled: Mutex<AHashMap<Option<String>, Arc<Schema>>>,
}

impl NamedSchema {
    pub fn new(doc: J) -> NamedSchema {
        NamedSchema {
            doc,
            compiled: Mutex::new(AHashMap::new()),
        }
    }

    /// The schema whole (`None`) or at a local reference, compiled once.
    pub fn get(&self, reference: Option<&str>) -> Result<Arc<Schema>, String> {
        let key = reference.map(str::to_string);
        if let Some(s) = self.compiled.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(s);
        }
        let s = Arc::new(Schema::from_document(&self.doc, reference)?);
        if let Ok(mut m) = self.compiled.lock() {
            m.insert(key, s.clone());
        }
        Ok(s)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    Swagger2,
    Oas30,
    Oas31,
}

/// Reads one definition's operations' contracts.
pub struct Reader<'d> {
    doc: &'d J,
    version: Version,
    /// `components` / `definitions`, attached to every schema's root.
    shared: Option<(&'static str, J)>,
}

impl<'d> Reader<'d> {
    pub fn new(doc: &'d J, version: &str) -> Reader<'d> {
        let version = if version.starts_with('2') {
            Version::Swagger2
        } else if version.starts_with("3.0") {
            Version::Oas30
        } else {
            Version::Oas31
        };
        let shared = match version {
            Version::Swagger2 => doc.get("definitions").map(|d| ("definitions", d.clone())),
            _ => doc.get("components").map(|c| ("components", c.clone())),
        };
        Reader {
            doc,
            version,
            shared,
        }
    }

    /// Follow local `$ref`s to the object they name.
    fn deref<'v>(&'v self, mut v: &'v J) -> Option<&'v J> {
        for _ in 0..MAX_REF_HOPS {
            let Some(r) = v.get("$ref").and_then(J::as_str) else {
                return Some(v);
            };
            v = self.doc.pointer(r.strip_prefix('#')?)?;
        }
        None
    }

    fn schema(&self, s: &J, at: &str, errors: &mut Vec<String>) -> Option<Arc<Schema>> {
        let mut s = s.clone();
        if self.version == Version::Oas30 {
            nullable(&mut s, 0);
        }
        let draft = match self.version {
            Version::Oas31 => jsonschema::Draft::Draft202012,
            _ => jsonschema::Draft::Draft4,
        };
        let mut root = Map::new();
        root.insert("allOf".into(), J::Array(vec![s]));
        if let Some((k, v)) = &self.shared {
            let mut v = v.clone();
            if self.version == Version::Oas30 {
                nullable(&mut v, 0);
            }
            root.insert((*k).into(), v);
        }
        match Schema::new(J::Object(root), Some(draft)) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                errors.push(format!("{at}: the schema does not compile: {e}"));
                None
            }
        }
    }

    /// A Swagger 2.0 parameter's inline type as a schema.
    fn swagger_param_schema(p: &J) -> J {
        let mut m = Map::new();
        if let Some(o) = p.as_object() {
            for k in [
                "type",
                "format",
                "items",
                "enum",
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum",
                "minLength",
                "maxLength",
                "pattern",
                "minItems",
                "maxItems",
                "uniqueItems",
                "multipleOf",
            ] {
                if let Some(v) = o.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
        }
        J::Object(m)
    }

    fn params(&self, list: Option<&J>, at: &str, out: &mut Vec<Param>, errors: &mut Vec<String>) {
        let Some(list) = list.and_then(J::as_array) else {
            return;
        };
        for (i, p) in list.iter().enumerate() {
            let Some(p) = self.deref(p) else { continue };
            let at = format!("{at}.parameters[{i}]");
            let Some(name) = p.get("name").and_then(J::as_str) else {
                continue;
            };
            let location = match p.get("in").and_then(J::as_str) {
                Some("path") => Location::Path,
                Some("query") => Location::Query,
                Some("header") => Location::Header,
                _ => continue,
            };
            let required = location == Location::Path
                || p.get("required").and_then(J::as_bool).unwrap_or(false);
            let schema = match (self.version, p.get("schema")) {
                (_, Some(s)) => self.schema(s, &at, errors),
                (Version::Swagger2, None) => {
                    self.schema(&Self::swagger_param_schema(p), &at, errors)
                }
                _ => None,
            };
            // An operation's parameter overrides the path item's of the same name and place.
            out.retain(|q| !(q.location == location && q.name.eq_ignore_ascii_case(name)));
            out.push(Param {
                name: name.to_string(),
                location,
                required,
                schema,
            });
        }
    }

    fn content(&self, c: Option<&J>, at: &str, errors: &mut Vec<String>) -> Vec<Media> {
        let mut out = Vec::new();
        if let Some(c) = c.and_then(J::as_object) {
            for (media, m) in c {
                let schema = m
                    .get("schema")
                    .and_then(|s| self.schema(s, &format!("{at}.{media}"), errors));
                out.push(Media {
                    media_type: media.to_ascii_lowercase(),
                    schema,
                });
            }
        }
        out
    }

    /// Swagger 2.0's `consumes` / `produces` (operation first, then the document's).
    fn media_types(&self, op: &J, key: &str) -> Vec<String> {
        op.get(key)
            .or_else(|| self.doc.get(key))
            .and_then(J::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(J::as_str)
                    .map(str::to_ascii_lowercase)
                    .collect()
            })
            .unwrap_or_else(|| vec!["application/json".into()])
    }

    /// The contract of `op` under path item `item`; problems found go to `errors`.
    pub fn contract(&self, item: &J, op: &J, at: &str, errors: &mut Vec<String>) -> Contract {
        let mut c = Contract::default();
        self.params(item.get("parameters"), at, &mut c.parameters, errors);
        self.params(op.get("parameters"), at, &mut c.parameters, errors);
        match self.version {
            Version::Swagger2 => {
                let body = op
                    .get("parameters")
                    .and_then(J::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| self.deref(p))
                    .find(|p| p.get("in").and_then(J::as_str) == Some("body"));
                if let Some(b) = body {
                    for media in self.media_types(op, "consumes") {
                        let schema = b
                            .get("schema")
                            .and_then(|s| self.schema(s, &format!("{at}.body"), errors));
                        c.request.push(Media {
                            media_type: media,
                            schema,
                        });
                    }
                }
            }
            _ => {
                if let Some(b) = op.get("requestBody").and_then(|b| self.deref(b)) {
                    c.request =
                        self.content(b.get("content"), &format!("{at}.requestBody"), errors);
                }
            }
        }
        if let Some(rs) = op.get("responses").and_then(J::as_object) {
            for (status, r) in rs {
                let Some(r) = self.deref(r) else { continue };
                let rat = format!("{at}.responses.{status}");
                let content = match self.version {
                    Version::Swagger2 => self
                        .media_types(op, "produces")
                        .into_iter()
                        .map(|media| Media {
                            media_type: media,
                            schema: r.get("schema").and_then(|s| self.schema(s, &rat, errors)),
                        })
                        .collect(),
                    _ => self.content(r.get("content"), &rat, errors),
                };
                let mut headers = Vec::new();
                if let Some(hs) = r.get("headers").and_then(J::as_object) {
                    for (name, h) in hs {
                        let Some(h) = self.deref(h) else { continue };
                        let hat = format!("{rat}.headers.{name}");
                        let schema = match h.get("schema") {
                            Some(s) => self.schema(s, &hat, errors),
                            None if self.version == Version::Swagger2 => {
                                self.schema(&Self::swagger_param_schema(h), &hat, errors)
                            }
                            None => None,
                        };
                        headers.push(Param {
                            name: name.clone(),
                            location: Location::Header,
                            required: h.get("required").and_then(J::as_bool).unwrap_or(false),
                            schema,
                        });
                    }
                }
                c.responses.push(Response {
                    status: status.clone(),
                    content,
                    headers,
                });
            }
        }
        c
    }
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema: `null` joins the type.
fn nullable(v: &mut J, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        J::Object(m) => {
            if m.get("nullable").and_then(J::as_bool) == Some(true) {
                if let Some(t) = m.get("type").cloned() {
                    let types = match t {
                        J::String(s) => vec![J::String(s), J::String("null".into())],
                        J::Array(mut a) => {
                            a.push(J::String("null".into()));
                            a
                        }
                        other => vec![other],
                    };
                    m.insert("type".into(), J::Array(types));
                }
                if let Some(J::Array(e)) = m.get_mut("enum") {
                    e.push(J::Null);
                }
            }
            for x in m.values_mut() {
                nullable(x, depth + 1);
            }
        }
        J::Array(a) => {
            for x in a {
                nullable(x, depth + 1);
            }
        }
        _ => {}
    }
}

impl Contract {
    /// The responses entry for a status: exact, then `2XX`, then `default`.
    pub fn response(&self, status: u16) -> Option<&Response> {
        let exact = status.to_string();
        let class = format!("{}XX", status / 100);
        self.responses
            .iter()
            .find(|r| r.status == exact)
            .or_else(|| {
                self.responses
                    .iter()
                    .find(|r| r.status.eq_ignore_ascii_case(&class))
            })
            .or_else(|| self.responses.iter().find(|r| r.status == "default"))
    }
}

/// The entry of `media` whose type matches `content_type` (its parameters dropped): exact, then
/// `type/*`, then `*/*`.
pub fn find_media<'m>(media: &'m [Media], content_type: &str) -> Option<&'m Media> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let family = ct.split('/').next().unwrap_or("");
    media
        .iter()
        .find(|m| m.media_type == ct)
        .or_else(|| {
            media
                .iter()
                .find(|m| m.media_type.strip_suffix("/*") == Some(family))
        })
        .or_else(|| media.iter().find(|m| m.media_type == "*/*"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::openapi::operations;

    fn contract_of(spec: &str) -> (Arc<Contract>, Vec<String>) {
        let (ops, problems) = operations(spec).unwrap_or_else(|e| panic!("{e:?}"));
        let c = ops[0].contract.clone().unwrap_or_default();
        (c, problems)
    }

    fn errors(s: &Option<Arc<Schema>>, v: &str) -> usize {
        let v: J = serde_json::from_str(v).unwrap_or_else(|e| panic!("{e}"));
        s.as_ref()
            .map_or(0, |s| s.errors(&v, Additional::AsWritten, 10).len())
    }

    #[test]
    fn swagger_2_body_parameters_inline_types_and_produces() {
        let spec = r##"{"swagger": "2.0", "info": {"title": "t", "version": "1"},
          "consumes": ["application/json"], "produces": ["application/json"],
          "definitions": {"Pet": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
          "paths": {"/pets": {"post": {"operationId": "addPet",
            "parameters": [{"in": "body", "name": "pet", "schema": {"$ref": "#/definitions/Pet"}},
                           {"in": "query", "name": "limit", "type": "integer", "maximum": 10}],
            "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Pet"}}}}}}}"##;
        let (c, problems) = contract_of(spec);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.request.len(), 1);
        assert_eq!(errors(&c.request[0].schema, r#"{"name": "rex"}"#), 0);
        assert_eq!(errors(&c.request[0].schema, r#"{"age": 1}"#), 1);
        let limit = &c.parameters[0];
        assert_eq!(
            (limit.name.as_str(), limit.location),
            ("limit", Location::Query)
        );
        assert_eq!(errors(&limit.schema, "11"), 1);
        let ok = c
            .response(200)
            .map(|r| errors(&r.content[0].schema, r#"{"name": "a"}"#));
        assert_eq!(ok, Some(0));
        assert!(c.response(404).is_none());
    }

    #[test]
    fn openapi_3_nullable_and_3_1_type_lists() {
        let v30 = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    put:\n      requestBody:\n        content:\n          application/json:\n            schema: {type: object, properties: {n: {type: string, nullable: true}}}\n      responses:\n        2XX: {description: ok}\n";
        let (c, _) = contract_of(v30);
        assert_eq!(errors(&c.request[0].schema, r#"{"n": null}"#), 0);
        assert_eq!(errors(&c.request[0].schema, r#"{"n": 1}"#), 1);
        assert!(c.response(204).is_some(), "2XX covers 204");
        let v31 = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    put:\n      requestBody:\n        content:\n          application/*:\n            schema: {type: [string, 'null'], format: email}\n      responses:\n        default: {description: any}\n";
        let (c, _) = contract_of(v31);
        let m = find_media(&c.request, "application/json; charset=utf-8");
        assert!(m.is_some(), "application/* matches");
        assert_eq!(
            errors(&m.and_then(|m| m.schema.clone()), r#""a@b.example""#),
            0
        );
        assert_eq!(
            errors(&m.and_then(|m| m.schema.clone()), r#""not an email""#),
            1
        );
        assert!(c.response(500).is_some(), "default covers any status");
    }

    #[test]
    fn property_names_may_match_whatever_their_case() {
        let spec = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\ncomponents:\n  schemas:\n    P: {type: object, required: [firstName], properties: {firstName: {type: string}}, additionalProperties: false}\npaths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {$ref: '#/components/schemas/P'}\n      responses: {}\n";
        let (c, _) = contract_of(spec);
        let Some(s) = c.request[0].schema.clone() else {
            panic!("a schema")
        };
        let v: J = serde_json::json!({"FIRSTNAME": "a"});
        assert_eq!(s.check(&v, Additional::AsWritten, false, 10).len(), 2);
        assert!(s.check(&v, Additional::AsWritten, true, 10).is_empty());
        assert_eq!(
            s.check(
                &serde_json::json!({"x": 1}),
                Additional::AsWritten,
                true,
                10
            )
            .len(),
            2
        );
    }

    #[test]
    fn a_schema_that_does_not_compile_is_a_problem_naming_its_place() {
        let spec = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {type: 12}\n      responses: {}\n";
        let (_, problems) = contract_of(spec);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("paths./a.post.requestBody.application/json:"),
            "{problems:?}"
        );
    }
}
