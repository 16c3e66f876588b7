//! The attribute reader: named values substituted, literals prepared and expressions compiled,
//! unknown attributes reported; and the value parsers attributes share.

use ahash::AHashMap;
use http::{HeaderName, HeaderValue, Method};

use super::ast::{ExistsAction, Scope, TemplatePart, UriTemplate, Val};
use super::xml::Element;
use crate::config::NamedValue;
use crate::diag::{Diagnostics, Invalid, Span};
use crate::expr;

/// What the parser needs from its surroundings.
pub struct Env<'a> {
    /// Named values; an unknown `{{name}}` is error P030.
    pub named: &'a AHashMap<String, NamedValue>,
    pub scope: Scope,
}

/// Substitute `{{name}}` references (textually, before interpretation; apim-reference.md §4.1).
pub fn substitute(text: &str, span: &Span, env: &Env, diags: &mut Diagnostics) -> String {
    replace_named(text, env, &mut |name| {
        diags.error(
            "P030",
            span.clone(),
            format!("unknown named value `{{{{{name}}}}}`"),
        );
        false
    })
}

/// Substitute only the `{{name}}` references that name a named value, leaving the rest as
/// written: in a Liquid template `{{body.x}}` is the template's own output tag.
pub fn substitute_known(text: &str, env: &Env) -> String {
    replace_named(text, env, &mut |_| true)
}

/// `{{name}}` replaced by the named value; for an unknown name `unknown` says whether the
/// reference stays as written (true) or is dropped (false).
fn replace_named(text: &str, env: &Env, unknown: &mut dyn FnMut(&str) -> bool) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = after[..close].trim();
        match env.named.get(name) {
            Some(nv) => {
                out.push_str(&nv.value);
                rest = &after[close + 2..];
            }
            None if unknown(name) => {
                out.push_str("{{");
                rest = after;
            }
            None => rest = &after[close + 2..],
        }
    }
    out.push_str(rest);
    out
}

pub fn parse_u64(s: &str) -> Result<u64, Invalid> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| crate::invalid!("expected a whole number, found {s:?}"))
}

/// A renewal period in seconds, 1..=max.
pub fn parse_period(max: u64) -> impl Fn(&str) -> Result<u64, Invalid> {
    move |s: &str| match s.trim().parse::<u64>() {
        Ok(p) if (1..=max).contains(&p) => Ok(p),
        _ => Err(crate::invalid!(
            "renewal-period must be 1 to {max} seconds, found {s:?}"
        )),
    }
}

/// `first-period-start`: `yyyy-MM-ddTHH:mm:ssZ` to unix seconds.
pub fn parse_start(s: &str) -> Result<i64, Invalid> {
    crate::expr::datetime::DateTime::parse(s)
        .map(|d| d.unix_seconds())
        .ok_or_else(|| {
            crate::invalid!("first-period-start must be yyyy-MM-ddTHH:mm:ssZ, found {s:?}")
        })
}

pub fn parse_bool(s: &str) -> Result<bool, Invalid> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(crate::invalid!("expected true or false, found {s:?}")),
    }
}

pub fn parse_status(s: &str) -> Result<u16, Invalid> {
    match s.trim().parse::<u16>() {
        Ok(c) if (100..=999).contains(&c) => Ok(c),
        _ => Err(crate::invalid!(
            "expected an HTTP status code (100-999), found {s:?}"
        )),
    }
}

pub fn parse_method(s: &str) -> Result<Method, Invalid> {
    let t = s.trim();
    if t.is_empty() {
        return Err("expected an HTTP method".into());
    }
    Method::from_bytes(t.to_ascii_uppercase().as_bytes())
        .map_err(|_| crate::invalid!("invalid HTTP method {t:?}"))
}

pub fn parse_action(s: &str) -> Result<ExistsAction, Invalid> {
    ExistsAction::parse(s.trim()).ok_or_else(|| {
        crate::invalid!("exists-action must be override, skip, append or delete, found {s:?}")
    })
}

pub fn parse_header_name(s: &str) -> Result<HeaderName, Invalid> {
    HeaderName::from_bytes(s.trim().as_bytes())
        .map_err(|_| crate::invalid!("invalid header name {s:?}"))
}

pub fn parse_header_value(s: &str) -> Result<HeaderValue, Invalid> {
    HeaderValue::from_str(s).map_err(|_| {
        crate::invalid!("invalid header value {s:?}: control characters are not allowed")
    })
}

/// Parse a rewrite-uri template: `/path/{param}?name=value&other={p}`. A path without its
/// leading `/` is read as if it had one (APIM accepts `template="orders/{id}"`).
pub fn parse_uri_template(s: &str) -> Result<UriTemplate, Invalid> {
    let s = s.trim();
    let (path, query) = match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    };
    let mut path = template_parts(path)?;
    match path.first_mut() {
        Some(TemplatePart::Text(t)) if !t.starts_with('/') => t.insert(0, '/'),
        Some(TemplatePart::Param(_)) => path.insert(0, TemplatePart::Text("/".into())),
        _ => {}
    }
    let mut q = Vec::new();
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            if n.contains('{') {
                return Err(crate::invalid!(
                    "query parameter names in {s:?} cannot be placeholders"
                ));
            }
            q.push((n.to_string(), template_parts(v)?));
        }
    }
    Ok(UriTemplate { path, query: q })
}

pub fn template_parts(s: &str) -> Result<Vec<TemplatePart>, Invalid> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| crate::invalid!("unclosed '{{' in template {s:?}"))?
            + open;
        let name = rest[open + 1..close].trim().trim_start_matches('*');
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return Err(crate::invalid!("invalid placeholder in template {s:?}"));
        }
        parts.push(TemplatePart::Param(name.to_string()));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    Ok(parts)
}

/// P014: `child` is not allowed in `<parent>`; `expected` names what is (empty: nothing said).
pub fn not_allowed(diags: &mut Diagnostics, child: &Element, parent: &str, expected: &str) {
    let message = if expected.is_empty() {
        format!("<{}> is not allowed in <{parent}>", child.name)
    } else {
        format!(
            "<{}> is not allowed in <{parent}>; expected {expected}",
            child.name
        )
    };
    diags.error("P014", child.span.clone(), message);
}

/// Reads the attributes and text of one element, substituting named values, and reports
/// any attribute it was not asked for as unknown.
pub struct Reader<'e, 'a, 'd> {
    pub el: &'e Element,
    pub env: &'e Env<'a>,
    pub diags: &'d mut Diagnostics,
    pub used: Vec<String>,
    pub children_checked: bool,
}

impl<'e, 'a, 'd> Reader<'e, 'a, 'd> {
    pub fn new(el: &'e Element, env: &'e Env<'a>, diags: &'d mut Diagnostics) -> Self {
        Reader {
            el,
            env,
            diags,
            used: Vec::new(),
            children_checked: false,
        }
    }

    /// A reader for a child element (from `children` or `items`), reporting into the same
    /// diagnostics with the same named values.
    pub fn child<'c>(&'c mut self, el: &'c Element) -> Reader<'c, 'a, 'c> {
        Reader::new(el, self.env, self.diags)
    }

    pub fn literal(&mut self, name: &str) -> Option<(String, Span)> {
        self.used.push(name.to_string());
        let a = self.el.attr(name)?;
        Some((
            substitute(&a.value, &a.span, self.env, self.diags),
            a.span.clone(),
        ))
    }

    pub fn required_literal(&mut self, name: &str) -> Option<String> {
        let v = self.literal(name);
        if v.is_none() {
            self.diags.error(
                "P012",
                self.el.span.clone(),
                format!("<{}> needs attribute `{name}`", self.el.name),
            );
        }
        v.map(|(v, _)| v)
    }

    /// A literal-only attribute parsed into a type.
    pub fn parsed_literal<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        let (v, span) = self.literal(name)?;
        if expr::is_expression(&v) {
            self.diags.error(
                "P019",
                span,
                format!(
                    "`{name}` of <{}> takes a literal value, not an expression",
                    self.el.name
                ),
            );
            return None;
        }
        match parse(&v) {
            Ok(t) => Some(t),
            Err(e) => {
                self.diags
                    .error("P012", span, format!("`{name}` of <{}>: {e}", self.el.name));
                None
            }
        }
    }

    /// An attribute that may be a literal or an expression.
    pub fn value<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Option<Val<T>> {
        let (v, span) = self.literal(name)?;
        Some(self.make_val(&v, &span, name, parse))
    }

    pub fn required_value<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Option<Val<T>> {
        let v = self.value(name, parse);
        if v.is_none() && self.el.attr(name).is_none() {
            self.diags.error(
                "P012",
                self.el.span.clone(),
                format!("<{}> needs attribute `{name}`", self.el.name),
            );
        }
        v
    }

    /// The element's text as a value; `required` reports an empty element.
    pub fn text_value<T>(
        &mut self,
        required: bool,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Option<Val<T>> {
        let Some(t) = self.el.text() else {
            if required {
                self.diags.error(
                    "P012",
                    self.el.span.clone(),
                    format!("<{}> needs a value", self.el.name),
                );
            }
            return None;
        };
        let v = substitute(&t.value, &t.span, self.env, self.diags);
        let what = format!("<{}>", self.el.name);
        Some(self.make_val(&v, &t.span, &what, parse))
    }

    pub fn make_val<T>(
        &mut self,
        v: &str,
        span: &Span,
        what: &str,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Val<T> {
        if expr::is_expression(v) {
            match expr::compile(v.trim(), span) {
                Ok(e) => return Val::Expr(e),
                Err(d) => {
                    self.diags.error(d.code, d.span, d.message);
                }
            }
        } else {
            match parse(v) {
                Ok(t) => return Val::Lit(t),
                Err(e) => self.diags.error(
                    "P012",
                    span.clone(),
                    format!("{what} of <{}>: {e}", self.el.name),
                ),
            }
        }
        Val::Expr(crate::expr::Expr::placeholder(v, span))
    }

    pub fn children(&mut self) -> Vec<&'e Element> {
        self.children_checked = true;
        self.el.elements().collect()
    }

    /// The children named `item`; any other child is error P014.
    pub fn items(&mut self, item: &str) -> Vec<&'e Element> {
        let mut out = Vec::new();
        for c in self.children() {
            if c.name == item {
                out.push(c);
            } else {
                not_allowed(self.diags, c, &self.el.name, &format!("<{item}>"));
            }
        }
        out
    }

    pub fn no_children(&mut self) {
        self.children_checked = true;
        for c in self.el.elements() {
            self.diags.error(
                "P014",
                c.span.clone(),
                format!("<{}> is not allowed inside <{}>", c.name, self.el.name),
            );
        }
    }

    pub fn finish(self) {
        for a in &self.el.attrs {
            if !self.used.iter().any(|u| u == &a.name) {
                self.diags.error(
                    "P011",
                    a.span.clone(),
                    format!("unknown attribute `{}` on <{}>", a.name, self.el.name),
                );
            }
        }
        let _ = self.children_checked;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitute_known_keeps_what_names_no_named_value() {
        let mut named = AHashMap::new();
        named.insert(
            "host".to_string(),
            NamedValue {
                value: "h1".into(),
                secret: false,
            },
        );
        let env = Env {
            named: &named,
            scope: Scope::Api,
        };
        assert_eq!(
            substitute_known("a {{host}} {{ body.x }} {{ host }} {{open", &env),
            "a h1 {{ body.x }} h1 {{open"
        );
    }

    #[test]
    fn uri_templates() {
        let t = parse_uri_template("/v2/{store}/x?City=city&o={order}")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.path,
            vec![
                TemplatePart::Text("/v2/".into()),
                TemplatePart::Param("store".into()),
                TemplatePart::Text("/x".into())
            ]
        );
        assert_eq!(t.query.len(), 2);
        assert!(parse_uri_template("/a/{").is_err());
        // No leading slash: read as if it had one (APIM accepts these).
        let t = parse_uri_template("v2/{id}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.path,
            vec![
                TemplatePart::Text("/v2/".into()),
                TemplatePart::Param("id".into())
            ]
        );
        let t = parse_uri_template("{id}/x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.path[0], TemplatePart::Text("/".into()));
    }
}
