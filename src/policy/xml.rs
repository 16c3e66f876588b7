//! The lenient policy XML reader: masks expressions, reads the XML with quick-xml, restores the
//! original text and keeps a `file:line:col` on every element, attribute and text node.

use std::sync::Arc;

use quick_xml::events::Event;
use quick_xml::Reader;

use super::mask;
use crate::diag::{Diagnostics, LineIndex, Span};

#[derive(Clone, Debug)]
pub struct Element {
    pub name: String,
    pub span: Span,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
}

#[derive(Clone, Debug)]
pub struct Attr {
    pub name: String,
    pub value: String,
    /// Position of the value's first character.
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Node {
    Element(Element),
    Text(Text),
}

#[derive(Clone, Debug)]
pub struct Text {
    pub value: String,
    pub span: Span,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Concatenated text content (direct text children), with its first position.
    pub fn text(&self) -> Option<Text> {
        let mut out: Option<Text> = None;
        for n in &self.children {
            if let Node::Text(t) = n {
                match &mut out {
                    Some(o) => o.value.push_str(&t.value),
                    None => out = Some(t.clone()),
                }
            }
        }
        out
    }
}

/// An element whose content is not policy XML but text that merely looks like it:
/// `<set-body template="liquid">` holds markup, entities and `{{...}}` to render as written,
/// `<cross-domain>` the policy file it serves.
fn keeps_raw_content(el: &Element) -> bool {
    el.name == "cross-domain"
        || el.name == "set-body"
            && el
                .attr("template")
                .is_some_and(|a| a.value.trim() == "liquid")
}

/// A template wrapped whole in one CDATA section is the section's content.
fn unwrap_cdata(s: &str) -> &str {
    let t = s.trim();
    match t
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"))
    {
        Some(inner) if !inner.contains("]]>") => inner,
        _ => s,
    }
}

/// Deepest element nesting a policy document may have. Real documents nest a few levels
/// (`choose` in `choose` rarely beyond five); the bound keeps every later pass, which walks the
/// tree recursively, far from the stack's end (docs/security.md).
pub const MAX_ELEMENT_DEPTH: usize = 64;

/// Parse a policy or fragment document. All problems are reported as diagnostics.
pub fn parse(file: &Arc<str>, text: &str) -> Result<Element, Diagnostics> {
    let idx = LineIndex::new(text);
    let mut diags = Diagnostics::new();
    let ranges = match mask::find_expressions(text) {
        Ok(r) => r,
        Err(at) => {
            diags.error(
                "P001",
                idx.span(file, at),
                "unterminated policy expression: no matching `)` or `}`",
            );
            return Err(diags);
        }
    };
    let masked = mask::mask(text, &ranges);
    let base = masked.as_ptr() as usize;
    let offset_of = |s: &[u8]| (s.as_ptr() as usize).saturating_sub(base);
    let restore = |s: &[u8]| {
        let off = offset_of(s);
        text.get(off..off + s.len())
            .map(crate::codec::entities::decode_entities)
            .unwrap_or_default()
    };

    let mut reader = Reader::from_str(&masked);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    // Elements whose content is kept as written (a Liquid template): stack depth, content start.
    let mut raw: Vec<(usize, usize)> = Vec::new();
    // Elements kept whole as written (an XSLT stylesheet): stack depth, start of the tag.
    let mut outer: Vec<(usize, usize)> = Vec::new();
    loop {
        let pos = reader.buffer_position() as usize;
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => {
                let at = reader.error_position() as usize;
                diags.error("P002", idx.span(file, at), format!("malformed XML: {e}"));
                return Err(diags);
            }
        };
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let is_empty = matches!(ev, Event::Empty(_));
                let name = String::from_utf8_lossy(s.name().as_ref()).into_owned();
                let start_off = pos
                    + masked
                        .as_bytes()
                        .get(pos..)
                        .and_then(|b| b.iter().position(|&c| c == b'<'))
                        .unwrap_or(0);
                let mut el = Element {
                    name,
                    span: idx.span(file, start_off + 1),
                    attrs: Vec::new(),
                    children: Vec::new(),
                };
                for a in s.attributes().with_checks(true) {
                    match a {
                        Ok(a) => {
                            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                            if key.starts_with("xmlns") {
                                continue;
                            }
                            let raw: &[u8] = &a.value;
                            let value_off = offset_of(raw);
                            if el.attrs.iter().any(|x| x.name == key) {
                                diags.error(
                                    "P003",
                                    idx.span(file, value_off),
                                    format!("duplicate attribute `{key}`"),
                                );
                            }
                            el.attrs.push(Attr {
                                name: key,
                                value: restore(raw),
                                span: idx.span(file, value_off),
                            });
                        }
                        Err(e) => {
                            diags.error(
                                "P002",
                                el.span.clone(),
                                format!("malformed attribute: {e}"),
                            );
                        }
                    }
                }
                if is_empty {
                    attach(&mut stack, &mut root, el);
                } else if stack.len() >= MAX_ELEMENT_DEPTH {
                    diags.error(
                        "P022",
                        el.span,
                        format!("elements nest deeper than {MAX_ELEMENT_DEPTH} levels"),
                    );
                    return Err(diags);
                } else {
                    if keeps_raw_content(&el) {
                        raw.push((stack.len(), reader.buffer_position() as usize));
                    }
                    if stack.last().is_some_and(|p| p.name == "xsl-transform")
                        && matches!(el.name.rsplit(':').next(), Some("stylesheet" | "transform"))
                    {
                        outer.push((stack.len(), start_off));
                    }
                    stack.push(el);
                }
            }
            Event::End(_) => {
                if let Some(mut el) = stack.pop() {
                    if raw.last().is_some_and(|&(depth, _)| depth == stack.len()) {
                        let (_, from) = raw.pop().unwrap_or_default();
                        let value = text.get(from..pos).unwrap_or_default();
                        el.children = vec![Node::Text(Text {
                            value: unwrap_cdata(value).to_string(),
                            span: idx.span(file, from),
                        })];
                    }
                    if outer.last().is_some_and(|&(depth, _)| depth == stack.len()) {
                        let (_, from) = outer.pop().unwrap_or_default();
                        let to = reader.buffer_position() as usize;
                        el.children = vec![Node::Text(Text {
                            value: text.get(from..to).unwrap_or_default().to_string(),
                            span: idx.span(file, from),
                        })];
                    }
                    attach(&mut stack, &mut root, el);
                }
            }
            Event::Text(t) => {
                let raw: &[u8] = &t;
                push_text(&mut stack, restore(raw), idx.span(file, offset_of(raw)));
            }
            Event::CData(c) => {
                let raw: &[u8] = &c;
                let off = offset_of(raw);
                let value = text
                    .get(off..off + raw.len())
                    .unwrap_or_default()
                    .to_string();
                push_text(&mut stack, value, idx.span(file, off));
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        diags.error(
            "P002",
            idx.span(file, text.len()),
            "malformed XML: unclosed element",
        );
    }
    match root {
        Some(r) if !diags.has_errors() => Ok(r),
        Some(_) => Err(diags),
        None => {
            diags.error(
                "P002",
                Span::new(file, 1, 1),
                "document has no root element",
            );
            Err(diags)
        }
    }
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(el)),
        None => {
            if root.is_none() {
                *root = Some(el);
            }
        }
    }
}

fn push_text(stack: &mut [Element], value: String, span: Span) {
    if let Some(parent) = stack.last_mut() {
        if value.trim().is_empty() {
            return;
        }
        parent.children.push(Node::Text(Text { value, span }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(t: &str) -> Element {
        let f: Arc<str> = Arc::from("t.xml");
        match parse(&f, t) {
            Ok(e) => e,
            Err(d) => panic!("{}", d.render_text()),
        }
    }

    #[test]
    fn restores_raw_expressions_with_positions() {
        let e = doc("<policies>\n  <inbound>\n    <set-header name=\"x\" value=\"@(a == \"b\" && c < d)\" />\n  </inbound>\n</policies>");
        let inbound = e
            .elements()
            .next()
            .cloned()
            .unwrap_or_else(|| panic!("no inbound"));
        let sh = inbound
            .elements()
            .next()
            .unwrap_or_else(|| panic!("no set-header"));
        assert_eq!(sh.name, "set-header");
        assert_eq!((sh.span.line, sh.span.col), (3, 6));
        let v = sh.attr("value").unwrap_or_else(|| panic!("no value"));
        assert_eq!(v.value, "@(a == \"b\" && c < d)");
        assert_eq!((v.span.line, v.span.col), (3, 33));
        assert!(sh.children.is_empty());
    }

    #[test]
    fn decodes_entities_and_keeps_text() {
        let e = doc("<set-body>@(x.As&lt;JObject&gt;() &amp;&amp; \"a\")</set-body>");
        assert_eq!(
            e.text().map(|t| t.value),
            Some("@(x.As<JObject>() && \"a\")".to_string())
        );
        let e = doc("<set-body><![CDATA[a < b & c]]></set-body>");
        assert_eq!(e.text().map(|t| t.value), Some("a < b & c".to_string()));
    }

    #[test]
    fn fuzz_regressions() {
        // Found by `cargo fuzz run xml_reader`: a byte-order mark before the root element.
        let f: Arc<str> = Arc::from("t.xml");
        let _ = parse(&f, "\u{feff}z<poli  cFies>\n");
        assert!(parse(&f, "\u{feff}<policies><inbound /></policies>").is_ok());
    }

    #[test]
    fn reports_malformed_xml_with_position() {
        let f: Arc<str> = Arc::from("t.xml");
        let d = parse(&f, "<policies>\n<inbound>\n</policies>")
            .err()
            .unwrap_or_default();
        assert!(
            d.render_text().starts_with("t.xml:3:"),
            "{}",
            d.render_text()
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let f: Arc<str> = Arc::from("t.xml");
        let nest = |n: usize| "<a>\n".repeat(n) + &"</a>".repeat(n);
        assert!(parse(&f, &nest(MAX_ELEMENT_DEPTH)).is_ok());
        for n in [MAX_ELEMENT_DEPTH + 1, 100_000] {
            let d = parse(&f, &nest(n)).err().unwrap_or_default();
            let text = d.render_text();
            let want = format!("t.xml:{}:2: error[P022]", MAX_ELEMENT_DEPTH + 1);
            assert!(text.starts_with(&want), "{text}");
        }
    }
}
