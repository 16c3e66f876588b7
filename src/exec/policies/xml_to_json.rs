//! `<xml-to-json>`: convert the request body (inbound) or the response body (outbound, on-error)
//! from XML to JSON and set `Content-Type: application/json`.
//!
//! `kind="direct"` keeps the document's structure as APIM's gateway writes it (an observed APIM
//! output; Microsoft's page gives none): the XML declaration's attributes become top-level
//! members (`"version": "1.0"`), `:` in names becomes `$` (`soap$Envelope`, `@xmlns$soap`),
//! attributes are `@name` members, an element with only text is its string, an empty one is
//! `null`, text beside attributes or elements is `#text`, CDATA is `#cdata-section`, repeated
//! child elements become an array; values stay strings.
//! `kind="javascript-friendly"` (not documented by Microsoft; gatehouse's reading, named in the
//! tests and docs): the same, without the declaration and namespace declarations, with local
//! names (prefixes dropped) and attributes as plain members.
//!
//! `apply="content-type-xml"` converts only a body whose Content-Type is XML (`xml` in it);
//! `consider-accept-header="true"` (the default) converts only when the request's `Accept`
//! names a JSON media type (`*/*` does not). A body that is not well-formed XML is an error
//! (`Internal`, on-error).

use super::*;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use quick_xml::events::Event;
use serde_json::{Map, Value as J};

use crate::exec::{value, ErrorKind};

/// Deepest element nesting converted (the work is iterative; this bounds the output's depth).
const MAX_DEPTH: usize = 256;

#[derive(Clone, Debug)]
pub struct XmlToJson {
    /// `javascript-friendly` or `direct`.
    pub kind: Val<String>,
    /// `always` or `content-type-xml`.
    pub apply: Val<String>,
    pub consider_accept: Val<bool>,
    pub always_array: Val<bool>,
}

fn one_of(allowed: &'static [&'static str]) -> impl Fn(&str) -> Result<String, Invalid> {
    move |s: &str| {
        let s = s.trim();
        if allowed.contains(&s) {
            Ok(s.to_string())
        } else {
            Err(crate::invalid!(
                "must be {}, found {s:?}",
                allowed.join(" or ")
            ))
        }
    }
}

const KINDS: &[&str] = &["javascript-friendly", "direct"];
const APPLY: &[&str] = &["always", "content-type-xml"];

impl Policy for XmlToJson {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let kind = r
            .required_value("kind", one_of(KINDS))
            .unwrap_or(Val::Lit("direct".into()));
        let apply = r
            .required_value("apply", one_of(APPLY))
            .unwrap_or(Val::Lit("always".into()));
        let consider_accept = r
            .value("consider-accept-header", parse_bool)
            .unwrap_or(Val::Lit(true));
        // The page spells it both ways.
        let always_array = r
            .value("always-array-child-elements", parse_bool)
            .or_else(|| r.value("always-array-children", parse_bool))
            .unwrap_or(Val::Lit(false));
        Some(XmlToJson {
            kind,
            apply,
            consider_accept,
            always_array,
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
        visit_val(&self.kind, f);
        visit_val(&self.apply, f);
        visit_val(&self.consider_accept, f);
        visit_val(&self.always_array, f);
    }
}

impl RunsNow for XmlToJson {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let kind = value(&self.kind, cx)?.into_owned();
        let apply = value(&self.apply, cx)?.into_owned();
        let consider_accept = *value(&self.consider_accept, cx)?;
        let always_array = *value(&self.always_array, cx)?;
        if !KINDS.contains(&kind.as_str()) || !APPLY.contains(&apply.as_str()) {
            return Err(StepError::expression(format!(
                "xml-to-json: kind {kind:?} / apply {apply:?} is not a value the policy takes"
            )));
        }
        if consider_accept && !cx.accepts("json") {
            return Ok(Step::Next);
        }
        if apply == "content-type-xml" && !cx.section_content_type_has("xml") {
            return Ok(Step::Next);
        }
        let body = cx.section_body().unwrap_or_default();
        let style = Style {
            friendly: kind == "javascript-friendly",
            always_array,
        };
        let json = convert(&body, style)
            .map_err(|e| StepError::new(ErrorKind::Internal, format!("xml-to-json: {e}")))?;
        let out = Bytes::from(serde_json::to_string(&json).unwrap_or_default());
        cx.set_section_body(out);
        cx.section_headers().set(
            &CONTENT_TYPE,
            &[HeaderValue::from_static("application/json")],
        );
        Ok(Step::Next)
    }
}

#[derive(Clone, Copy)]
pub struct Style {
    pub friendly: bool,
    pub always_array: bool,
}

/// One element being read: its name, its members so far (attributes, children), its text.
struct Frame {
    name: String,
    members: Map<String, J>,
    /// Names of children that are arrays of repeats (or always arrays).
    repeated: Vec<String>,
    text: Vec<J>,
    cdata: Vec<J>,
    has_children: bool,
}

/// XML text to JSON (iterative: no recursion on the document's depth).
pub fn convert(xml: &[u8], style: Style) -> Result<J, Invalid> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut top = Map::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut buf = Vec::new();
    let mut root_seen = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| crate::invalid!("the body is not well-formed XML: {e}"))?;
        match event {
            Event::Decl(d) if !style.friendly && stack.is_empty() => {
                let text = |v: &[u8]| J::String(String::from_utf8_lossy(v).into_owned());
                top.insert("version".into(), text(&d.version().map_err(bad)?));
                if let Some(e) = d.encoding() {
                    top.insert("encoding".into(), text(&e.map_err(bad)?));
                }
                if let Some(s) = d.standalone() {
                    top.insert("standalone".into(), text(&s.map_err(bad)?));
                }
            }
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(crate::invalid!("elements nest deeper than {MAX_DEPTH}"));
                }
                stack.push(open(&e, style)?);
            }
            Event::Empty(e) => {
                let frame = open(&e, style)?;
                close(frame, &mut stack, &mut top, &mut root_seen, style)?;
            }
            Event::End(_) => {
                let Some(frame) = stack.pop() else {
                    return Err(crate::invalid!("an end tag without its start"));
                };
                close(frame, &mut stack, &mut top, &mut root_seen, style)?;
            }
            Event::Text(t) => {
                if let Some(f) = stack.last_mut() {
                    let s = t.unescape().map_err(bad)?;
                    if !s.trim().is_empty() {
                        f.text.push(J::String(s.into_owned()));
                    }
                }
            }
            Event::CData(c) => {
                if let Some(f) = stack.last_mut() {
                    f.cdata.push(J::String(
                        String::from_utf8_lossy(&c.into_inner()).into_owned(),
                    ));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() || !root_seen {
        return Err(crate::invalid!("the document has no complete root element"));
    }
    Ok(J::Object(top))
}

fn bad(e: impl std::fmt::Display) -> Invalid {
    crate::invalid!("the body is not well-formed XML: {e}")
}

/// A member name: `:` becomes `$` (direct), or the prefix is dropped (javascript-friendly).
fn name_of(raw: &[u8], style: Style) -> String {
    let s = String::from_utf8_lossy(raw);
    if style.friendly {
        s.rsplit(':').next().unwrap_or(&s).to_string()
    } else {
        s.replace(':', "$")
    }
}

fn open(e: &quick_xml::events::BytesStart, style: Style) -> Result<Frame, Invalid> {
    let mut members = Map::new();
    for a in e.attributes() {
        let a = a.map_err(bad)?;
        let key = a.key.as_ref();
        let namespace = key == b"xmlns" || key.starts_with(b"xmlns:");
        if style.friendly && namespace {
            continue;
        }
        let v = a.unescape_value().map_err(bad)?.into_owned();
        let name = name_of(key, style);
        let name = if style.friendly {
            name
        } else {
            format!("@{name}")
        };
        members.insert(name, J::String(v));
    }
    Ok(Frame {
        name: name_of(e.name().as_ref(), style),
        members,
        repeated: Vec::new(),
        text: Vec::new(),
        cdata: Vec::new(),
        has_children: false,
    })
}

/// A finished element: its JSON value, placed in its parent (or at the top).
fn close(
    f: Frame,
    stack: &mut [Frame],
    top: &mut Map<String, J>,
    root_seen: &mut bool,
    style: Style,
) -> Result<(), Invalid> {
    let Frame {
        name,
        mut members,
        mut text,
        mut cdata,
        has_children,
        ..
    } = f;
    let one = |mut v: Vec<J>| {
        if v.len() == 1 {
            v.pop().unwrap_or(J::Null)
        } else {
            J::Array(v)
        }
    };
    let value = if members.is_empty() && !has_children && cdata.is_empty() {
        match text.len() {
            0 => J::Null,
            _ => one(std::mem::take(&mut text)),
        }
    } else {
        if !text.is_empty() {
            members.insert("#text".into(), one(text));
        }
        if !cdata.is_empty() {
            members.insert("#cdata-section".into(), one(std::mem::take(&mut cdata)));
        }
        J::Object(members)
    };
    match stack.last_mut() {
        Some(parent) => {
            parent.has_children = true;
            let repeated = parent.repeated.contains(&name);
            match parent.members.get_mut(&name) {
                Some(J::Array(items)) if repeated => items.push(value),
                Some(existing) => {
                    let first = std::mem::take(existing);
                    *existing = J::Array(vec![first, value]);
                    parent.repeated.push(name);
                }
                None if style.always_array => {
                    parent.members.insert(name.clone(), J::Array(vec![value]));
                    parent.repeated.push(name);
                }
                None => {
                    parent.members.insert(name, value);
                }
            }
        }
        None => {
            if *root_seen {
                return Err(crate::invalid!(
                    "the document has more than one root element"
                ));
            }
            *root_seen = true;
            top.insert(name, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(x: &str) -> String {
        let style = Style {
            friendly: false,
            always_array: false,
        };
        convert(x.as_bytes(), style).map_or_else(|e| format!("error: {e}"), |j| j.to_string())
    }

    #[test]
    fn direct_follows_apim_observed_output() {
        // The SOAP example APIM's direct kind was observed converting.
        let soap = r#"<?xml version="1.0"?>
<soap:Envelope xmlns="http://fyicenter.com/" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
    <soap:Body>
        <GetOrders>
            <Customer>1234567</Customer>
        </GetOrders>
    </soap:Body>
</soap:Envelope>"#;
        assert_eq!(
            direct(soap),
            r#"{"version":"1.0","soap$Envelope":{"@xmlns":"http://fyicenter.com/","@xmlns$soap":"http://schemas.xmlsoap.org/soap/envelope/","soap$Body":{"GetOrders":{"Customer":"1234567"}}}}"#
        );
    }

    #[test]
    fn repeats_attributes_text_and_empties() {
        assert_eq!(
            direct(r#"<a><b>1</b><b>2</b><c/><d x="1">t</d><e><![CDATA[<x>]]></e></a>"#),
            r##"{"a":{"b":["1","2"],"c":null,"d":{"@x":"1","#text":"t"},"e":{"#cdata-section":"<x>"}}}"##
        );
        let arr = Style {
            friendly: false,
            always_array: true,
        };
        assert_eq!(
            convert(b"<a><b>1</b></a>", arr).map(|j| j.to_string()).ok(),
            Some(r#"{"a":{"b":["1"]}}"#.to_string())
        );
        let friendly = Style {
            friendly: true,
            always_array: false,
        };
        assert_eq!(
            convert(
                br#"<?xml version="1.0"?><s:E xmlns:s="urn:s" id="7"><s:B>x</s:B></s:E>"#,
                friendly
            )
            .map(|j| j.to_string())
            .ok(),
            Some(r#"{"E":{"id":"7","B":"x"}}"#.to_string())
        );
    }

    #[test]
    fn bad_or_hostile_xml_is_an_error_not_a_crash() {
        assert!(direct("<a><b></a>").starts_with("error"));
        assert!(direct("not xml").starts_with("error"));
        assert!(direct("<a/><b/>").starts_with("error"));
        let deep = "<a>".repeat(10_000) + &"</a>".repeat(10_000);
        assert!(direct(&deep).contains("nest deeper"));
    }
}
