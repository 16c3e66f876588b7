//! `<json-to-xml>`: convert the request body (inbound) or the response body (outbound, on-error)
//! from JSON to XML and set `Content-Type: application/xml`.
//!
//! The output follows what APIM's gateway was observed to write (Microsoft's page gives no
//! example): the document is wrapped in a `<Document>` element; each property is an element;
//! an array is its elements repeated under the property's name (an empty array is one empty
//! element); `null` is an element with `xsi:nil="true"`; booleans are `True` / `False` (.NET's
//! text); numbers and strings as written. Names that are not XML names are encoded as .NET's
//! `XmlConvert.EncodeName` does (`first name` -> `first_x0020_name`).
//! `attribute-block-name`: the members of a property with that name become the enclosing
//! element's attributes. `namespace-prefix` (default `xmlns`): a property named `xmlns` or
//! `xmlns<sep>p` declares a namespace; `namespace-separator` (default `_`): a property named
//! `p<sep>local` whose prefix `p` is declared becomes the element `p:local`. `parse-date` is
//! accepted; date strings are written as they are in the JSON text.
//!
//! `apply="content-type-json"` converts only a body whose Content-Type contains `json`;
//! `consider-accept-header="true"` (the default) converts only when the request's `Accept`
//! names an XML media type. A body that is not JSON is an error (`Internal`, on-error).

use super::*;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use serde_json::Value as J;

use crate::exec::{value, ErrorKind};

/// Deepest JSON nesting converted.
const MAX_DEPTH: usize = 256;

#[derive(Clone, Debug)]
pub struct JsonToXml {
    /// `always` or `content-type-json`.
    pub apply: Val<String>,
    pub consider_accept: Val<bool>,
    pub parse_date: Val<bool>,
    pub namespace_separator: Val<String>,
    pub namespace_prefix: Val<String>,
    pub attribute_block_name: Option<Val<String>>,
}

const APPLY: &[&str] = &["always", "content-type-json"];

impl Policy for JsonToXml {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let apply = r
            .required_value("apply", |s| {
                let s = s.trim();
                if APPLY.contains(&s) {
                    Ok(s.to_string())
                } else {
                    Err(crate::invalid!(
                        "must be always or content-type-json, found {s:?}"
                    ))
                }
            })
            .unwrap_or(Val::Lit("always".into()));
        let text = |s: &str| Ok(s.to_string());
        Some(JsonToXml {
            apply,
            consider_accept: r
                .value("consider-accept-header", parse_bool)
                .unwrap_or(Val::Lit(true)),
            parse_date: r.value("parse-date", parse_bool).unwrap_or(Val::Lit(true)),
            namespace_separator: r
                .value("namespace-separator", text)
                .unwrap_or(Val::Lit("_".into())),
            namespace_prefix: r
                .value("namespace-prefix", text)
                .unwrap_or(Val::Lit("xmlns".into())),
            attribute_block_name: r.value("attribute-block-name", text),
        })
    }

    /// It reads and replaces the body of the side it runs on.
    fn needs(&self) -> Needs {
        Needs {
            request_body: true,
            response_body: true,
            replaces_request_body: true,
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.apply, f);
        visit_val(&self.consider_accept, f);
        visit_val(&self.parse_date, f);
        visit_val(&self.namespace_separator, f);
        visit_val(&self.namespace_prefix, f);
        if let Some(a) = &self.attribute_block_name {
            visit_val(a, f);
        }
    }
}

impl RunsNow for JsonToXml {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let apply = value(&self.apply, cx)?.into_owned();
        let consider_accept = *value(&self.consider_accept, cx)?;
        let _ = *value(&self.parse_date, cx)?;
        let names = Names {
            separator: value(&self.namespace_separator, cx)?.into_owned(),
            prefix: value(&self.namespace_prefix, cx)?.into_owned(),
            attributes: match &self.attribute_block_name {
                Some(a) => Some(value(a, cx)?.into_owned()),
                None => None,
            },
        };
        if !APPLY.contains(&apply.as_str()) {
            return Err(StepError::expression(format!(
                "json-to-xml: apply {apply:?} is not always or content-type-json"
            )));
        }
        if consider_accept && !cx.accepts("xml") {
            return Ok(Step::Next);
        }
        if apply == "content-type-json" && !cx.section_content_type_has("json") {
            return Ok(Step::Next);
        }
        let body = cx.section_body().unwrap_or_default();
        let xml = convert(&body, &names)
            .map_err(|e| StepError::new(ErrorKind::Internal, format!("json-to-xml: {e}")))?;
        let out = Bytes::from(xml);
        cx.set_section_body(out);
        cx.section_headers().set(
            &CONTENT_TYPE,
            &[HeaderValue::from_static("application/xml")],
        );
        Ok(Step::Next)
    }
}

/// The naming attributes of the policy.
pub struct Names {
    pub separator: String,
    pub prefix: String,
    pub attributes: Option<String>,
}

/// JSON text to an XML document under `<Document>`.
pub fn convert(json: &[u8], names: &Names) -> Result<String, Invalid> {
    let v: J =
        serde_json::from_slice(json).map_err(|e| crate::invalid!("the body is not JSON: {e}"))?;
    let mut out = String::with_capacity(json.len() * 2);
    let mut declared: Vec<String> = Vec::new();
    element(&mut out, "Document", &v, names, &mut declared, 0)?;
    Ok(out)
}

/// Write `<name ...>value</name>` (arrays are handled by the caller: each item is an element).
fn element(
    out: &mut String,
    name: &str,
    v: &J,
    names: &Names,
    declared: &mut Vec<String>,
    depth: usize,
) -> Result<(), Invalid> {
    if depth > MAX_DEPTH {
        return Err(crate::invalid!("the JSON nests deeper than {MAX_DEPTH}"));
    }
    match v {
        J::Null => {
            out.push('<');
            out.push_str(name);
            out.push_str(
                r#" xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" />"#,
            );
        }
        J::Object(members) => {
            // Namespace declarations and attributes first (they go on the start tag).
            let scope = declared.len();
            out.push('<');
            out.push_str(name);
            for (k, mv) in members {
                if let Some(p) = namespace_declaration(k, names) {
                    out.push(' ');
                    match p {
                        "" => out.push_str("xmlns"),
                        p => {
                            out.push_str("xmlns:");
                            out.push_str(&xml_name(p));
                            declared.push(p.to_string());
                        }
                    }
                    attribute_value(out, mv);
                } else if names.attributes.as_deref() == Some(k.as_str()) {
                    if let J::Object(attrs) = mv {
                        for (an, av) in attrs {
                            out.push(' ');
                            out.push_str(&xml_name(an));
                            attribute_value(out, av);
                        }
                    }
                }
            }
            let children: Vec<_> = members
                .iter()
                .filter(|(k, _)| {
                    namespace_declaration(k, names).is_none()
                        && names.attributes.as_deref() != Some(k.as_str())
                })
                .collect();
            if children.is_empty() {
                out.push_str(" />");
            } else {
                out.push('>');
                for (k, mv) in children {
                    let child = element_name(k, names, declared);
                    match mv {
                        J::Array(items) if items.is_empty() => {
                            out.push('<');
                            out.push_str(&child);
                            out.push_str(" />");
                        }
                        J::Array(items) => {
                            for item in flatten(items) {
                                element(out, &child, item, names, declared, depth + 1)?;
                            }
                        }
                        other => element(out, &child, other, names, declared, depth + 1)?,
                    }
                }
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            }
            declared.truncate(scope);
        }
        J::Array(items) => {
            // A top-level array: its items under the wrapper.
            out.push('<');
            out.push_str(name);
            out.push('>');
            for item in flatten(items) {
                element(out, "Item", item, names, declared, depth + 1)?;
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        scalar => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            escape(out, &scalar_text(scalar));
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }
    Ok(())
}

/// Items of an array, nested arrays flattened (each is repeated under the same name).
fn flatten(items: &[J]) -> Vec<&J> {
    let mut out = Vec::with_capacity(items.len());
    let mut stack: Vec<std::slice::Iter<J>> = vec![items.iter()];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(J::Array(inner)) => stack.push(inner.iter()),
            Some(v) => out.push(v),
            None => {
                stack.pop();
            }
        }
    }
    out
}

/// `xmlns` -> `Some("")`, `xmlns<sep>p` -> `Some("p")`, anything else `None`.
fn namespace_declaration<'k>(key: &'k str, names: &Names) -> Option<&'k str> {
    let rest = key.strip_prefix(names.prefix.as_str())?;
    if rest.is_empty() {
        return Some("");
    }
    rest.strip_prefix(names.separator.as_str())
        .filter(|p| !p.is_empty())
}

/// `p<sep>local` with `p` declared -> `p:local`; otherwise the key as an XML name.
fn element_name(key: &str, names: &Names, declared: &[String]) -> String {
    if !names.separator.is_empty() {
        if let Some((p, local)) = key.split_once(names.separator.as_str()) {
            if declared.iter().any(|d| d == p) && !local.is_empty() {
                return format!("{}:{}", xml_name(p), xml_name(local));
            }
        }
    }
    xml_name(key)
}

fn scalar_text(v: &J) -> String {
    match v {
        J::Bool(true) => "True".into(),
        J::Bool(false) => "False".into(),
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn attribute_value(out: &mut String, v: &J) {
    out.push_str("=\"");
    let text = match v {
        J::Null => String::new(),
        other => scalar_text(other),
    };
    for c in text.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            _ => out.push(c),
        }
    }
    out.push('"');
}

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("&#x{:X};", c as u32))
            }
            c => out.push(c),
        }
    }
}

/// An XML name, as .NET's `XmlConvert.EncodeName` makes one: a character that cannot stand
/// where it is becomes `_xHHHH_`.
fn xml_name(s: &str) -> String {
    if s.is_empty() {
        return "_".into();
    }
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        let ok = if i == 0 {
            c.is_alphabetic() || c == '_'
        } else {
            c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
        };
        if ok {
            out.push(c);
        } else {
            out.push_str(&format!("_x{:04X}_", c as u32));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            separator: "_".into(),
            prefix: "xmlns".into(),
            attributes: Some("#attrs".into()),
        }
    }

    fn xml(json: &str) -> String {
        convert(json.as_bytes(), &names()).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn follows_apim_observed_output() {
        // The example APIM's json-to-xml was observed converting.
        let doc = r#"{"firstName":"John","lastName":"Smith","isAlive":true,"age":25,
            "address":{"streetAddress":"21 2nd Street","city":"New York","state":"NY","postalCode":"10021-3100"},
            "phoneNumbers":[{"type":"home","number":"212 555-1234"},{"type":"mobile","number":"123 456-7890"}],
            "children":[],"spouse":null}"#;
        assert_eq!(
            xml(doc),
            concat!(
                "<Document><firstName>John</firstName><lastName>Smith</lastName>",
                "<isAlive>True</isAlive><age>25</age><address><streetAddress>21 2nd Street</streetAddress>",
                "<city>New York</city><state>NY</state><postalCode>10021-3100</postalCode></address>",
                "<phoneNumbers><type>home</type><number>212 555-1234</number></phoneNumbers>",
                "<phoneNumbers><type>mobile</type><number>123 456-7890</number></phoneNumbers>",
                "<children /><spouse xsi:nil=\"true\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" />",
                "</Document>"
            )
        );
    }

    #[test]
    fn attributes_namespaces_names_and_escapes() {
        assert_eq!(
            xml(
                r##"{"xmlns_s":"urn:s","s_Order":{"#attrs":{"id":7,"ok":false},"first name":"a<&>b"}}"##
            ),
            r#"<Document xmlns:s="urn:s"><s:Order id="7" ok="False"><first_x0020_name>a&lt;&amp;&gt;b</first_x0020_name></s:Order></Document>"#
        );
        // An undeclared prefix is not a namespace: the key stays as it is.
        assert_eq!(
            xml(r#"{"first_name":"x"}"#),
            "<Document><first_name>x</first_name></Document>"
        );
        assert_eq!(
            xml(r#"[1,[2,3]]"#),
            "<Document><Item>1</Item><Item>2</Item><Item>3</Item></Document>"
        );
    }

    #[test]
    fn bad_or_hostile_json_is_an_error_not_a_crash() {
        assert!(xml("{").starts_with("error"));
        // serde_json refuses past its own recursion limit (128) before ours.
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(xml(&deep).starts_with("error"));
    }
}
