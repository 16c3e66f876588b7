//! `<validate-content>`: the body of the request (inbound) or response (outbound, on-error)
//! against the operation's definition: its size (`max-size`, `size-exceeded-action`), its
//! content type (a `<content type>` must name it, else `unspecified-content-type-action`;
//! `<content-type-map>` rewrites the type first), and for `validate-as="json"` its JSON against
//! the schema the definition gives for that media type (`allow-additional-properties`
//! overrides the schemas' own `additionalProperties`).
//!
//! `schema-id` takes the schema from the configuration's `schemas:` instead (APIM's schema
//! entities), `schema-ref` a place in it. `validate-as="xml"` validates against an XML Schema
//! (`.xsd`) of `schemas:` with libxml2 (`xmllint` in a child process, as xsl-transform runs
//! libxslt; a body with a DTD is refused). Not run: `validate-as="soap"` (no WSDL import):
//! load error P021. `case-insensitive-property-names="true"` matches property
//! names whatever their case.

use super::validation::{contract, finish, parse_action, Action, Problem};
use super::*;
use crate::config::contract::{find_media, Additional};
use crate::exec::value;
use bytes::Bytes;

/// Largest `max-size` APIM accepts.
const MAX_SIZE: u64 = 102_400;

/// `validate-as`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum As {
    Json,
    Xml,
}

#[derive(Clone, Debug)]
pub struct ContentRule {
    pub media_type: String,
    pub validate_as: As,
    pub action: Action,
    pub additional: Additional,
    pub ignore_case: bool,
    /// A schema of `schemas:` instead of the definition's, and a place in it.
    pub schema_id: Option<String>,
    pub schema_ref: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TypeMap {
    pub any: Option<String>,
    pub missing: Option<String>,
    /// `(from, when, to)`: `from` a media type, or `when` a condition.
    pub types: Vec<(Option<String>, Option<Val<bool>>, String)>,
}

#[derive(Clone, Debug)]
pub struct ValidateContent {
    pub unspecified: Val<Action>,
    pub max_size: Val<u64>,
    pub size_exceeded: Val<Action>,
    pub errors_variable: Option<String>,
    pub map: Option<TypeMap>,
    pub content: Vec<ContentRule>,
}

fn read_map(r: &mut Reader, el: &crate::policy::xml::Element) -> TypeMap {
    let mut c = r.child(el);
    let any = c.literal("any-content-type-value").map(|(v, _)| v);
    let missing = c.literal("missing-content-type-value").map(|(v, _)| v);
    let mut types = Vec::new();
    for t in c.items("type") {
        let mut tc = c.child(t);
        let from = tc.literal("from").map(|(v, _)| v);
        let when = tc.value("when", parse_bool);
        let to = tc.required_literal("to");
        if from.is_none() && when.is_none() {
            tc.diags
                .error("P012", t.span.clone(), "<type> needs `from` or `when`");
        }
        tc.finish();
        if let Some(to) = to {
            types.push((from, when, to));
        }
    }
    c.finish();
    TypeMap {
        any,
        missing,
        types,
    }
}

fn read_content(r: &mut Reader, el: &crate::policy::xml::Element) -> Option<ContentRule> {
    let mut c = r.child(el);
    let media_type = c
        .literal("type")
        .map(|(v, _)| v.trim().to_ascii_lowercase());
    let action = c.parsed_literal("action", parse_action);
    let schema_id = c.literal("schema-id").map(|(v, _)| v.trim().to_string());
    let mut validate_as = As::Json;
    if let Some((v, span)) = c.literal("validate-as") {
        match v.trim() {
            "json" => {}
            "xml" if schema_id.is_some() => validate_as = As::Xml,
            "xml" => c.diags.error(
                "P012",
                span,
                "validate-as=\"xml\" needs `schema-id`: an XML schema (.xsd) under `schemas` (an OpenAPI definition gives none)",
            ),
            "soap" => c.diags.error(
                "P021",
                span,
                "validate-content validate-as=\"soap\" (SOAP against the API's WSDL) is not supported by this gatehouse build yet",
            ),
            _ => c.diags.error("P012", span, "`validate-as` must be json, xml or soap"),
        }
    }
    let schema_ref = c.literal("schema-ref").map(|(v, _)| v.trim().to_string());
    if schema_ref.is_some() && schema_id.is_none() {
        c.diags.error(
            "P012",
            el.span.clone(),
            "`schema-ref` names a place in the schema `schema-id` names: it needs `schema-id`",
        );
    }
    let additional = match c.parsed_literal("allow-additional-properties", parse_bool) {
        Some(true) => Additional::Allow,
        Some(false) => Additional::Forbid,
        None => Additional::AsWritten,
    };
    let ignore_case = c
        .parsed_literal("case-insensitive-property-names", parse_bool)
        .unwrap_or(false);
    c.finish();
    let Some(media_type) = media_type else {
        r.diags
            .error("P012", el.span.clone(), "<content> needs attribute `type`");
        return None;
    };
    Some(ContentRule {
        media_type,
        validate_as,
        action: action?,
        additional,
        ignore_case,
        schema_id,
        schema_ref,
    })
}

impl Policy for ValidateContent {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let unspecified = r.required_value("unspecified-content-type-action", parse_action);
        let max_size = r.required_value("max-size", |s| {
            let n = parse_u64(s)?;
            if n > MAX_SIZE {
                return Err(crate::invalid!("at most {MAX_SIZE} bytes"));
            }
            Ok(n)
        });
        let size_exceeded = r.required_value("size-exceeded-action", parse_action);
        let errors_variable = r.literal("errors-variable-name").map(|(v, _)| v);
        let mut map = None;
        let mut content = Vec::new();
        for el in r.children() {
            match el.name.as_str() {
                "content-type-map" => map = Some(read_map(r, el)),
                "content" => content.extend(read_content(r, el)),
                _ => not_allowed(
                    r.diags,
                    el,
                    "validate-content",
                    "<content-type-map> or <content>",
                ),
            }
        }
        Some(ValidateContent {
            unspecified: unspecified?,
            max_size: max_size?,
            size_exceeded: size_exceeded?,
            errors_variable,
            map,
            content,
        })
    }

    fn needs(&self) -> Needs {
        Needs {
            request_body: true,
            response_body: true,
            replaces_request_body: false,
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.unspecified, f);
        visit_val(&self.max_size, f);
        visit_val(&self.size_exceeded, f);
        if let Some(m) = &self.map {
            for (_, when, _) in &m.types {
                if let Some(w) = when {
                    visit_val(w, f);
                }
            }
        }
    }
}

impl Waits for ValidateContent {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let unspecified = *value(&self.unspecified, cx)?;
        let max_size = *value(&self.max_size, cx)?;
        let size_exceeded = *value(&self.size_exceeded, cx)?;
        let body = cx.section_body().unwrap_or_default();
        let whose = if cx.on_request_side() {
            "Request"
        } else {
            "Response"
        };
        let mut problems = Vec::new();
        if body.len() as u64 > max_size {
            problems.push(Problem {
                name: "body".into(),
                kind: "Body",
                rule: "MaxSize",
                details: format!(
                    "{whose}'s body is {} bytes long and it exceeds the limit of {max_size} bytes.",
                    body.len()
                ),
                action: size_exceeded,
            });
            if size_exceeded == Action::Prevent {
                return finish(
                    cx,
                    "validate-content",
                    self.errors_variable.as_deref(),
                    problems,
                );
            }
        }
        let header = super::validation::header_values(cx.section_headers(), "content-type")
            .into_iter()
            .next();
        let media = match self.content_type(cx, header)? {
            Some(m) => m,
            None if body.is_empty() => {
                return finish(
                    cx,
                    "validate-content",
                    self.errors_variable.as_deref(),
                    problems,
                )
            }
            None => String::new(),
        };
        let Some(rule) = self.content.iter().find(|c| c.media_type == media) else {
            problems.push(Problem {
                name: media.clone(),
                kind: "ContentType",
                rule: "Unspecified",
                details: format!("Unspecified content type {media} is not allowed."),
                action: unspecified,
            });
            return finish(
                cx,
                "validate-content",
                self.errors_variable.as_deref(),
                problems,
            );
        };
        if rule.action != Action::Ignore {
            let (format, found) = match rule.validate_as {
                As::Xml => {
                    let xsd = rule
                        .schema_id
                        .as_ref()
                        .and_then(|id| cx.gw.xml_schemas.get(id))
                        .cloned();
                    ("XML", xml_errors(xsd, &body).await)
                }
                As::Json => ("JSON", json_errors(rule, cx, &media, &body)),
            };
            let what = if cx.on_request_side() {
                "request"
            } else {
                "response"
            };
            let problem = |rule_name, details| Problem {
                name: media.clone(),
                kind: "Body",
                rule: rule_name,
                details,
                action: rule.action,
            };
            match found {
                Ok(errors) => problems.extend(errors.into_iter().map(|e| {
                    problem("Schema", format!("Body of the {what} does not conform to the definition which is associated with the content type {media}. {e}"))
                })),
                Err(e) => problems.push(problem(
                    "Format",
                    format!("Body of the {what} is not valid {format}: {e}"),
                )),
            }
        }
        finish(
            cx,
            "validate-content",
            self.errors_variable.as_deref(),
            problems,
        )
    }
}

/// The body's problems against an XML Schema (`Err`: not XML that can be checked).
async fn xml_errors(
    xsd: Option<std::sync::Arc<crate::exec::child::XmlSchema>>,
    body: &Bytes,
) -> Result<Vec<String>, String> {
    match xsd {
        // Checked at load: the schema exists and compiles.
        None => Ok(Vec::new()),
        Some(_) if crate::exec::child::has_doctype(body) => {
            Err("it declares a DTD, which is not processed".to_string())
        }
        Some(x) => Box::pin(x.validate(body.clone())).await,
    }
}

/// The body's problems against the JSON Schema: the rule's `schema-id`, else the definition's
/// for the media type (none: nothing to check). `Err`: not JSON.
fn json_errors(
    rule: &ContentRule,
    cx: &ExecCtx<'_>,
    media: &str,
    body: &[u8],
) -> Result<Vec<String>, String> {
    let schema = match &rule.schema_id {
        // Checked at load: the schema exists and compiles.
        Some(id) => cx
            .gw
            .schemas
            .get(id)
            .and_then(|n| n.get(rule.schema_ref.as_deref()).ok()),
        None => contract(cx).and_then(|c| {
            let entry = if cx.on_request_side() {
                find_media(&c.request, media)
            } else {
                c.response(cx.resp.status)
                    .and_then(|r| find_media(&r.content, media))
            };
            entry.and_then(|m| m.schema.clone())
        }),
    };
    let Some(schema) = schema else {
        return Ok(Vec::new());
    };
    let json = serde_json::from_slice::<serde_json::Value>(body).map_err(|e| e.to_string())?;
    Ok(schema.check(&json, rule.additional, rule.ignore_case, 10))
}

impl ValidateContent {
    /// The body's media type after `<content-type-map>`: lower-case, parameters dropped.
    fn content_type(
        &self,
        cx: &mut ExecCtx,
        header: Option<String>,
    ) -> Result<Option<String>, StepError> {
        let bare = |s: &str| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        };
        let mut ct = header.map(|h| bare(&h)).filter(|h| !h.is_empty());
        if let Some(m) = &self.map {
            if ct.is_none() {
                ct = m.missing.as_deref().map(bare);
            }
            let mut mapped = None;
            for (from, when, to) in &m.types {
                let hit = match (from, when) {
                    (Some(f), _) => ct.as_deref() == Some(bare(f).as_str()),
                    (None, Some(w)) => *value(w, cx)?,
                    (None, None) => false,
                };
                if hit {
                    mapped = Some(bare(to));
                    break;
                }
            }
            if let Some(to) = mapped {
                ct = Some(to);
            } else if let (Some(any), Some(_)) = (&m.any, &ct) {
                ct = Some(bare(any));
            }
        }
        Ok(ct)
    }
}
