//! LINQ-to-XML basics: `XElement.Parse`, `XDocument.Parse(..).Root`, `Element`, `Elements`,
//! `Descendants`, `Attribute(..).Value`, `Value`, `Name` (an `XName`: `LocalName`, `Namespace`,
//! `NamespaceName`), `XNamespace` (`ns + "local"`, `NamespaceName`, `GetName`), `ToString()`,
//! and `Body.As<XElement>()`. Elements are immutable snapshots. A plain name matches by local
//! name (lenient); an `XName` with a namespace (`ns + "Body"`) matches namespace and local name.

use std::sync::Arc;

use quick_xml::events::Event;

use super::super::eval::{exception, EResult};
use super::super::value::{Obj, Value};
use super::names::Names;

/// The names this family implements, registered beside their code: the binder accepts a
/// member, method or static name only when a family registers it (`names.rs` chains them).
pub(super) const NAMES: Names = Names {
    members: &[
        "Value",
        "Name",
        "Root",
        "Elements",
        "LocalName",
        "Namespace",
        "NamespaceName",
    ],
    methods: &[
        "ToString",
        "Value",
        "Descendants",
        "Attribute",
        "Element",
        "Elements",
        "HasElements",
        "GetName",
    ],
    static_members: &["None"],
    static_methods: &["ToString", "Get"],
};

#[derive(Debug, Clone)]
pub struct XNode {
    /// The name as written (`s:Body`).
    pub name: String,
    /// The element's namespace URI (from the `xmlns` declarations in scope; empty: none).
    pub ns: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<XChild>,
}

#[derive(Debug, Clone)]
pub enum XChild {
    Element(Arc<XNode>),
    Text(String),
}

/// Whether element `e` has the name `want`: `{uri}local` matches namespace and local name,
/// a plain name the local name only.
fn matches(e: &XNode, want: &str) -> bool {
    match want.strip_prefix('{').and_then(|w| w.split_once('}')) {
        Some((ns, l)) => e.ns == ns && local(&e.name) == l,
        None => local(&e.name) == local(want),
    }
}

fn local(n: &str) -> &str {
    let n = n.rsplit('}').next().unwrap_or(n);
    n.rsplit(':').next().unwrap_or(n)
}

pub fn parse(text: &str) -> EResult<Arc<XNode>> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<XNode> = Vec::new();
    // The namespace declarations in scope: (prefix, uri), innermost last; one count per element.
    let mut scopes: Vec<(String, String)> = Vec::new();
    let mut declared: Vec<usize> = Vec::new();
    let mut root: Option<XNode> = None;
    let err = |m: String| exception::<Arc<XNode>>("XmlException", m);
    loop {
        match reader.read_event() {
            Ok(ev @ (Event::Start(_) | Event::Empty(_))) => {
                let (s, empty) = match &ev {
                    Event::Start(s) => (s, false),
                    Event::Empty(s) => (s, true),
                    _ => continue,
                };
                let name = String::from_utf8_lossy(s.name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                for a in s.attributes().flatten() {
                    let v = a
                        .unescape_value()
                        .map(|c| c.into_owned())
                        .unwrap_or_default();
                    attrs.push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), v));
                }
                let mut count = 0;
                for (k, v) in &attrs {
                    let prefix = match k.as_str() {
                        "xmlns" => Some(""),
                        k => k.strip_prefix("xmlns:"),
                    };
                    if let Some(p) = prefix {
                        scopes.push((p.to_string(), v.clone()));
                        count += 1;
                    }
                }
                let prefix = name.split_once(':').map_or("", |(p, _)| p);
                let ns = scopes
                    .iter()
                    .rev()
                    .find(|(p, _)| p == prefix)
                    .map(|(_, u)| u.clone())
                    .unwrap_or_default();
                let node = XNode {
                    name,
                    ns,
                    attrs,
                    children: Vec::new(),
                };
                if empty {
                    scopes.truncate(scopes.len() - count);
                } else {
                    declared.push(count);
                }
                if empty {
                    match stack.last_mut() {
                        Some(p) => p.children.push(XChild::Element(Arc::new(node))),
                        None => root = Some(node),
                    }
                } else {
                    stack.push(node);
                }
            }
            Ok(Event::End(_)) => {
                let Some(node) = stack.pop() else {
                    return err("unbalanced end tag".into());
                };
                let count = declared.pop().unwrap_or(0);
                scopes.truncate(scopes.len().saturating_sub(count));
                match stack.last_mut() {
                    Some(p) => p.children.push(XChild::Element(Arc::new(node))),
                    None => root = Some(node),
                }
            }
            Ok(Event::Text(t)) => {
                let s = t.unescape().map(|c| c.into_owned()).unwrap_or_default();
                if let Some(p) = stack.last_mut() {
                    if !s.trim().is_empty() {
                        p.children.push(XChild::Text(s));
                    }
                }
            }
            Ok(Event::CData(c)) => {
                if let Some(p) = stack.last_mut() {
                    p.children
                        .push(XChild::Text(String::from_utf8_lossy(&c).into_owned()));
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return err(format!("Data at the root level is invalid: {e}")),
        }
    }
    if !stack.is_empty() {
        return err("unexpected end of file".into());
    }
    root.map(Arc::new)
        .map_or_else(|| err("Root element is missing.".into()), Ok)
}

fn text_of(n: &XNode, out: &mut String) {
    for c in &n.children {
        match c {
            XChild::Text(t) => out.push_str(t),
            XChild::Element(e) => text_of(e, out),
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn serialize(n: &XNode, out: &mut String) {
    out.push('<');
    out.push_str(&n.name);
    for (k, v) in &n.attrs {
        out.push_str(&format!(" {k}=\"{}\"", escape(v).replace('"', "&quot;")));
    }
    if n.children.is_empty() {
        out.push_str(" />");
        return;
    }
    out.push('>');
    for c in &n.children {
        match c {
            XChild::Text(t) => out.push_str(&escape(t)),
            XChild::Element(e) => serialize(e, out),
        }
    }
    out.push_str(&format!("</{}>", n.name));
}

fn elements(n: &XNode) -> impl Iterator<Item = &Arc<XNode>> {
    n.children.iter().filter_map(|c| {
        if let XChild::Element(e) = c {
            Some(e)
        } else {
            None
        }
    })
}

fn descendants(n: &Arc<XNode>, name: Option<&str>, out: &mut Vec<Value>) {
    for e in elements(n) {
        if name.is_none_or(|x| matches(e, x)) {
            out.push(Value::obj(Obj::Xml(e.clone())));
        }
        descendants(e, name, out);
    }
}

pub fn member(n: &Arc<XNode>, name: &str) -> EResult<Value> {
    Ok(match name {
        "Name" => Value::obj(Obj::XName {
            ns: n.ns.clone(),
            local: local(&n.name).to_string(),
        }),
        "Value" => {
            let mut s = String::new();
            text_of(n, &mut s);
            Value::string(s)
        }
        "HasElements" => Value::Bool(elements(n).next().is_some()),
        "Root" => Value::obj(Obj::Xml(n.clone())),
        _ => {
            return exception(
                "MissingMemberException",
                format!("'XElement' does not contain a definition for '{name}'"),
            )
        }
    })
}

pub fn call(n: &Arc<XNode>, name: &str, args: &[Value]) -> EResult<Value> {
    let arg = args.first().map(Value::to_display);
    Ok(match name {
        "Element" => {
            let want = arg.unwrap_or_default();
            elements(n)
                .find(|e| matches(e, &want))
                .map_or(Value::Null, |e| Value::obj(Obj::Xml(e.clone())))
        }
        "Elements" => Value::list(
            elements(n)
                .filter(|e| arg.as_ref().is_none_or(|w| matches(e, w)))
                .map(|e| Value::obj(Obj::Xml(e.clone())))
                .collect(),
        ),
        "Descendants" => {
            let mut out = Vec::new();
            descendants(n, arg.as_deref(), &mut out);
            Value::list(out)
        }
        "Attribute" => {
            let want = arg.unwrap_or_default();
            n.attrs
                .iter()
                .find(|(k, _)| local(k) == local(&want))
                .map_or(Value::Null, |(k, v)| {
                    Value::obj(Obj::XAttr(k.clone(), v.clone()))
                })
        }
        "ToString" => {
            let mut s = String::new();
            serialize(n, &mut s);
            Value::string(s)
        }
        _ => {
            return exception(
                "MissingMethodException",
                format!("'XElement' does not contain a method '{name}'"),
            )
        }
    })
}

/// Members of an `XName` or an `XNamespace`.
pub fn name_member(o: &Obj, name: &str) -> EResult<Value> {
    Ok(match (o, name) {
        (Obj::XName { local, .. }, "LocalName") => Value::string(local.clone()),
        (Obj::XName { ns, .. }, "Namespace") => Value::obj(Obj::XNamespace(ns.clone())),
        (Obj::XName { ns, .. } | Obj::XNamespace(ns), "NamespaceName") => Value::string(ns.clone()),
        _ => {
            return exception(
                "MissingMemberException",
                format!(
                    "'{}' does not contain a definition for '{name}'",
                    type_of(o)
                ),
            )
        }
    })
}

/// Methods of an `XNamespace`: `GetName(local)`.
pub fn name_call(o: &Obj, name: &str, args: &[Value]) -> EResult<Value> {
    match (o, name) {
        (Obj::XNamespace(ns), "GetName") => Ok(Value::obj(Obj::XName {
            ns: ns.clone(),
            local: args.first().map(Value::to_display).unwrap_or_default(),
        })),
        _ => exception(
            "MissingMethodException",
            format!("'{}' does not contain a method '{name}'", type_of(o)),
        ),
    }
}

fn type_of(o: &Obj) -> &'static str {
    if matches!(o, Obj::XNamespace(_)) {
        "XNamespace"
    } else {
        "XName"
    }
}

/// A name from text: `{uri}local` or `local`.
pub fn xname(text: &str) -> Obj {
    match text.strip_prefix('{').and_then(|w| w.split_once('}')) {
        Some((ns, l)) => Obj::XName {
            ns: ns.to_string(),
            local: l.to_string(),
        },
        None => Obj::XName {
            ns: String::new(),
            local: text.to_string(),
        },
    }
}

/// `XNamespace.Get(uri)`, `XName.Get(local, uri)` / `XName.Get("{uri}local")`.
pub fn name_static(is_xname: bool, name: &str, args: &[Value]) -> EResult<Value> {
    let s = |i: usize| args.get(i).map(Value::to_display).unwrap_or_default();
    match (is_xname, name) {
        (false, "Get") => Ok(Value::obj(Obj::XNamespace(s(0)))),
        (true, "Get") if args.len() >= 2 => Ok(Value::obj(Obj::XName {
            ns: s(1),
            local: s(0),
        })),
        (true, "Get") => Ok(Value::obj(xname(&s(0)))),
        _ => exception(
            "MissingMethodException",
            format!("no static method '{name}'"),
        ),
    }
}

/// `XNamespace.None`: the empty namespace.
pub fn namespace_static_get(name: &str) -> EResult<Value> {
    match name {
        "None" => Ok(Value::obj(Obj::XNamespace(String::new()))),
        _ => exception(
            "MissingMemberException",
            format!("'XNamespace' does not contain a definition for '{name}'"),
        ),
    }
}
