//! `set-body template="liquid"`: APIM's DotLiquid dialect on the `liquid` crate.
//!
//! The engine (tags, blocks, filters, rendering) is liquid-rust's. What this module adds is what
//! DotLiquid in APIM's "C# naming" mode does differently (docs/policies.md, "Liquid templates"):
//!
//! - filter names are PascalCase (`Upcase`, `AtLeast`, `TruncateWords`); the snake_case names of
//!   standard Liquid are accepted too;
//! - `Date` takes a .NET format string (`Date: "yyyy-MM-dd"`); a format with `%` is read as
//!   strftime, as standard Liquid does;
//! - `Currency` (and `H`, an alias of `Escape`) exist;
//! - no `include` / `render`: a policy has no template files;
//! - the model is `context` (APIM's names: `context.Request.Url.Path`, `context.Request.Headers`)
//!   and `body` (the message body parsed as JSON or XML), built by [`model`].
//!
//! An unknown filter or tag is a load-time diagnostic (DotLiquid fails at run time).

use std::fmt;
use std::sync::{Arc, OnceLock};

use liquid_core::model::{KString, Object, Value as L};
use liquid_core::parser::FilterArguments;
use liquid_core::{
    Error as LError, Expression, Filter, FilterReflection, ParseFilter, Result as LResult, Runtime,
    ValueView,
};
use liquid_lib::stdlib;
use serde_json::Value as J;

use crate::expr::context::ContextEnv;
use crate::expr::datetime::DateTime;
use crate::expr::value::{Ctx, Obj, UrlData, Value};

/// A compiled template (shared: a document compiles once per load).
#[derive(Clone)]
pub struct Template {
    inner: Arc<liquid::Template>,
    /// Whether the source names `context` / `body` (the model skips what is not used).
    pub uses_context: bool,
    pub uses_body: bool,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("liquid::Template")
    }
}

/// How `set-body` reads XML `xsi:nil` elements and date-like strings (its attributes).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// `xsi-nil="null"`: a nil element is nil; `blank` (the default): an empty string.
    pub nil_is_null: bool,
    /// `parse-date="true"` (the default): date-like strings read as dates and render as
    /// `MM/dd/yyyy HH:mm:ss` (.NET's invariant DateTime), as JSON.NET's date handling does.
    pub parse_date: bool,
}

/// Deepest nesting of the model built from a body (JSON bodies are already bounded by the
/// parser; this bounds the conversion of variables and XML too).
const MAX_DEPTH: usize = 128;

/// Most values of a body turned into the template's model.
const MAX_NODES: usize = 200_000;

fn parser() -> &'static Result<liquid::Parser, String> {
    static PARSER: OnceLock<Result<liquid::Parser, String>> = OnceLock::new();
    PARSER.get_or_init(|| {
        let mut b = liquid::ParserBuilder::new()
            .tag(stdlib::AssignTag)
            .tag(stdlib::BreakTag)
            .tag(stdlib::ContinueTag)
            .tag(stdlib::CycleTag)
            .tag(stdlib::IncrementTag)
            .tag(stdlib::DecrementTag)
            .block(stdlib::RawBlock)
            .block(stdlib::IfBlock)
            .block(stdlib::UnlessBlock)
            .block(stdlib::IfChangedBlock)
            .block(stdlib::ForBlock)
            .block(stdlib::TableRowBlock)
            .block(stdlib::CommentBlock)
            .block(stdlib::CaptureBlock)
            .block(stdlib::CaseBlock);
        let standard: Vec<Box<dyn ParseFilter>> = vec![
            Box::new(stdlib::Abs),
            Box::new(stdlib::Append),
            Box::new(stdlib::AtLeast),
            Box::new(stdlib::AtMost),
            Box::new(stdlib::Capitalize),
            Box::new(stdlib::Ceil),
            Box::new(stdlib::Compact),
            Box::new(stdlib::Concat),
            Box::new(stdlib::Default),
            Box::new(stdlib::DividedBy),
            Box::new(stdlib::Downcase),
            Box::new(stdlib::Escape),
            Box::new(stdlib::EscapeOnce),
            Box::new(stdlib::First),
            Box::new(stdlib::Floor),
            Box::new(stdlib::Join),
            Box::new(stdlib::Last),
            Box::new(stdlib::Lstrip),
            Box::new(stdlib::Map),
            Box::new(stdlib::Minus),
            Box::new(stdlib::Modulo),
            Box::new(stdlib::NewlineToBr),
            Box::new(stdlib::Plus),
            Box::new(stdlib::Prepend),
            Box::new(stdlib::Remove),
            Box::new(stdlib::RemoveFirst),
            Box::new(stdlib::Replace),
            Box::new(stdlib::ReplaceFirst),
            Box::new(stdlib::Reverse),
            Box::new(stdlib::Round),
            Box::new(stdlib::Rstrip),
            Box::new(stdlib::Size),
            Box::new(stdlib::Slice),
            Box::new(stdlib::Sort),
            Box::new(stdlib::SortNatural),
            Box::new(stdlib::Split),
            Box::new(stdlib::Strip),
            Box::new(stdlib::StripHtml),
            Box::new(stdlib::StripNewlines),
            Box::new(stdlib::Times),
            Box::new(stdlib::Truncate),
            Box::new(stdlib::TruncateWords),
            Box::new(stdlib::Uniq),
            Box::new(stdlib::Upcase),
            Box::new(stdlib::UrlDecode),
            Box::new(stdlib::Where),
        ];
        for f in standard {
            let pascal = pascal_name(f.reflection().name());
            b = b.filter(Renamed {
                name: pascal,
                inner: f.clone(),
            });
            b = b.filter(f);
        }
        b = b.filter(Renamed {
            name: "H".into(),
            inner: Box::new(stdlib::Escape),
        });
        b = b.filter(Renamed {
            name: "h".into(),
            inner: Box::new(stdlib::Escape),
        });
        for (name, kind) in [
            ("Date", Kind::Date),
            ("date", Kind::Date),
            ("Currency", Kind::Currency),
            ("currency", Kind::Currency),
            ("UrlEncode", Kind::UrlEncode),
            ("url_encode", Kind::UrlEncode),
        ] {
            b = b.filter(Custom { name, kind });
        }
        b.build().map_err(|e| e.to_string())
    })
}

/// DotLiquid's C#-convention name of a standard filter: `at_least` -> `AtLeast`.
fn pascal_name(snake: &str) -> String {
    if snake == "truncatewords" {
        return "TruncateWords".into();
    }
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// A template that does not compile: liquid's message, and where in the template the problem
/// is when the message says (byte offset).
#[derive(Debug)]
pub struct CompileError {
    pub message: String,
    pub at: Option<usize>,
}

/// Compile a template.
pub fn compile(source: &str) -> Result<Template, CompileError> {
    let parser = parser().as_ref().map_err(|e| CompileError {
        message: format!("the Liquid engine did not start: {e}"),
        at: None,
    })?;
    let inner = parser.parse(source).map_err(|e| {
        let text = e.to_string();
        // liquid's message lists every filter it knows; the request and the place suffice.
        let message = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("available ") && *l != "with:")
            .collect::<Vec<_>>()
            .join("; ");
        CompileError {
            at: error_offset(&text, source),
            message,
        }
    })?;
    Ok(Template {
        inner: Arc::new(inner),
        uses_context: source.contains("context"),
        uses_body: source.contains("body"),
    })
}

/// Where a compile error is: pest's ` --> line:col`, or the first use of the unknown name.
fn error_offset(message: &str, source: &str) -> Option<usize> {
    if let Some(rest) = message.split(" --> ").nth(1) {
        let pos: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ':')
            .collect();
        let (line, col) = pos.split_once(':')?;
        let (line, col): (usize, usize) = (line.parse().ok()?, col.parse().ok()?);
        let start: usize = source
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum();
        return Some(start + col.saturating_sub(1)).filter(|o| *o <= source.len());
    }
    for l in message.lines() {
        let l = l.trim();
        for prefix in ["requested filter=", "requested tag=", "requested block="] {
            if let Some(name) = l.strip_prefix(prefix) {
                return source.find(name);
            }
        }
    }
    None
}

/// A writer that refuses to grow past a bound (a template looping over a large body).
struct Bounded {
    out: Vec<u8>,
    max: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.max {
            return Err(std::io::Error::other("output too large"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The message body as the template's `body`: parsed JSON, or XML read into the same shape.
pub struct Body<'a> {
    pub json: &'a J,
    /// Read from XML: every element name is also reachable with its first letter in lower
    /// case (APIM's generated SOAP-to-REST templates write `body.envelope.body.X` for
    /// `<soap:Envelope><soap:Body><X>`).
    pub from_xml: bool,
}

/// Render over `context` (read through `env`) and `body`; at most `max` bytes of output.
pub fn render(
    t: &Template,
    env: &mut dyn ContextEnv,
    body: Option<Body<'_>>,
    opts: Options,
    max: usize,
) -> Result<Vec<u8>, String> {
    let mut globals = Object::new();
    if t.uses_body {
        if let Some(b) = body {
            let cx = Convert {
                opts,
                aliases: b.from_xml,
                budget: std::cell::Cell::new(MAX_NODES),
            };
            let model = cx.json(b.json, 0);
            if cx.budget.get() == 0 {
                return Err(format!(
                    "the body has more than {MAX_NODES} values, more than a template reads"
                ));
            }
            globals.insert("body".into(), model);
        }
    }
    if t.uses_context {
        globals.insert("context".into(), context(env));
    }
    let mut w = Bounded {
        out: Vec::new(),
        max,
    };
    match t.inner.render_to(&mut w, &globals) {
        Ok(()) => Ok(w.out),
        Err(_) if w.out.len() + 1 > max && max > 0 => {
            Err(format!("the rendered body is larger than {max} bytes"))
        }
        Err(e) => Err(e.to_string()),
    }
}

// ---- the model ----

fn key(s: &str) -> KString {
    KString::from_ref(s)
}

struct Convert {
    opts: Options,
    aliases: bool,
    /// Values left to convert (a body of many small values grows tenfold as a model).
    budget: std::cell::Cell<usize>,
}

impl Convert {
    fn json(&self, v: &J, depth: usize) -> L {
        let left = self.budget.get();
        if depth > MAX_DEPTH || left == 0 {
            return L::Nil;
        }
        self.budget.set(left - 1);
        match v {
            J::Null => L::Nil,
            J::Bool(b) => L::scalar(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => L::scalar(i),
                None => L::scalar(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => L::scalar(if self.opts.parse_date {
                as_date(s).unwrap_or_else(|| s.clone())
            } else {
                s.clone()
            }),
            J::Array(a) => L::array(a.iter().map(|x| self.json(x, depth + 1))),
            J::Object(m) => {
                if is_xsi_nil(m) {
                    return if self.opts.nil_is_null {
                        L::Nil
                    } else {
                        L::scalar("")
                    };
                }
                let mut o = Object::new();
                for (k, x) in m {
                    let x = self.json(x, depth + 1);
                    if self.aliases {
                        let mut c = k.chars();
                        if let Some(f) = c.next().filter(char::is_ascii_uppercase) {
                            let lower = format!("{}{}", f.to_ascii_lowercase(), c.as_str());
                            if !m.contains_key(&lower) {
                                o.insert(key(&lower), x.clone());
                            }
                        }
                    }
                    o.insert(key(k), x);
                }
                L::Object(o)
            }
        }
    }
}

/// An XML element read as `{"@xsi$nil": "true"}` (or its javascript-friendly `{"nil": "true"}`
/// with nothing else).
fn is_xsi_nil(m: &serde_json::Map<String, J>) -> bool {
    m.len() == 1
        && m.iter().all(|(k, v)| {
            (k.ends_with("$nil") || k.ends_with(":nil") || k == "nil")
                && v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"))
        })
}

/// A date-like string as JSON.NET reads it (ISO 8601 date-time or `/Date(ms)/`), rendered as
/// .NET's invariant `DateTime.ToString()`.
fn as_date(s: &str) -> Option<String> {
    let d = if let Some(ms) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let ms: i64 = ms.split(['+', '-']).next()?.parse().ok()?;
        DateTime::from_unix_seconds(ms.div_euclid(1000))
    } else {
        // Only date-times (JSON.NET leaves a bare date or a number alone).
        let b = s.as_bytes();
        if b.len() < 16 || b.get(4) != Some(&b'-') || b.get(10) != Some(&b'T') {
            return None;
        }
        DateTime::parse(s)?
    };
    Some(d.format("MM/dd/yyyy HH:mm:ss"))
}

/// `context` as APIM's Liquid sees it: the members its page lists, and the other `context`
/// objects a policy expression reads.
fn context(env: &mut dyn ContextEnv) -> L {
    let mut o = Object::new();
    for (name, c) in [
        ("Request", Ctx::Request),
        ("Response", Ctx::Response),
        ("Api", Ctx::Api),
        ("Operation", Ctx::Operation),
        ("Deployment", Ctx::Deployment),
        ("Variables", Ctx::Variables),
    ] {
        o.insert(key(name), ctx(env, c, 0));
    }
    for name in [
        "Product",
        "Subscription",
        "User",
        "LastError",
        "RequestId",
        "Timestamp",
        "Elapsed",
        "Tracing",
    ] {
        if let Ok(v) = env.prop(Ctx::Context, name) {
            o.insert(key(name), from_value(env, &v, 1));
        }
    }
    L::Object(o)
}

fn members(c: Ctx) -> &'static [&'static str] {
    match c {
        Ctx::Request => &[
            "Method",
            "OriginalMethod",
            "Url",
            "OriginalUrl",
            "IpAddress",
        ],
        Ctx::Response => &["StatusCode", "StatusReason"],
        Ctx::Api => &[
            "Id",
            "Name",
            "Path",
            "ServiceUrl",
            "Version",
            "Revision",
            "IsCurrentRevision",
            "Protocols",
        ],
        Ctx::Operation => &["Id", "Name", "Method", "UrlTemplate"],
        Ctx::Product => &[
            "Id",
            "Name",
            "State",
            "SubscriptionRequired",
            "ApprovalRequired",
            "SubscriptionsLimit",
        ],
        Ctx::Subscription => &[
            "Id",
            "Name",
            "Key",
            "PrimaryKey",
            "SecondaryKey",
            "CreatedDate",
            "StartDate",
            "EndDate",
        ],
        Ctx::User => &["Id", "Email", "FirstName", "LastName", "Note"],
        Ctx::Deployment => &["Region", "ServiceName", "ServiceId", "GatewayId"],
        Ctx::LastError => &[
            "Source", "Reason", "Message", "Scope", "Section", "Path", "PolicyId",
        ],
        _ => &[],
    }
}

fn headers(env: &mut dyn ContextEnv, which: Ctx) -> L {
    let mut o = Object::new();
    for name in env.header_names(which) {
        let Some(v) = env.header_joined(which, &name) else {
            continue;
        };
        let v = L::scalar(v.to_string());
        // http keeps names lower-case; templates write them as sent (`Content-Type`).
        let title = title_case(&name);
        if title != name {
            o.insert(key(&title), v.clone());
        }
        o.insert(key(&name), v);
    }
    L::Object(o)
}

fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut up = true;
    for c in name.chars() {
        out.push(if up { c.to_ascii_uppercase() } else { c });
        up = c == '-';
    }
    out
}

fn ctx(env: &mut dyn ContextEnv, c: Ctx, depth: usize) -> L {
    match c {
        Ctx::RequestHeaders | Ctx::ResponseHeaders => return headers(env, c),
        Ctx::MatchedParameters => {
            let mut o = Object::new();
            for (k, v) in env.matched_parameters() {
                o.insert(key(&k), L::scalar(v));
            }
            return L::Object(o);
        }
        Ctx::Variables => {
            let mut o = Object::new();
            for k in env.variable_names() {
                if let Some(v) = env.variable(&k) {
                    let v = from_value(env, &v, depth + 1);
                    o.insert(key(&k), v);
                }
            }
            return L::Object(o);
        }
        _ => {}
    }
    let mut o = Object::new();
    for name in members(c) {
        if let Ok(v) = env.prop(c, name) {
            o.insert(key(name), from_value(env, &v, depth + 1));
        }
    }
    match c {
        Ctx::Request => {
            o.insert(key("Headers"), headers(env, Ctx::RequestHeaders));
            o.insert(
                key("MatchedParameters"),
                ctx(env, Ctx::MatchedParameters, depth),
            );
            let has_body = env.body(Ctx::RequestBody).is_some_and(|b| !b.is_empty());
            o.insert(key("HasBody"), L::scalar(has_body));
            o.insert(key("ClientCertificates"), L::array(Vec::new()));
        }
        Ctx::Response => {
            o.insert(key("Headers"), headers(env, Ctx::ResponseHeaders));
        }
        _ => {}
    }
    L::Object(o)
}

fn url(u: &UrlData) -> L {
    let mut q = Object::new();
    for (k, v) in &u.query {
        // Repeated names join as a header's values do.
        let joined = match q.get(k.as_str()) {
            Some(prev) => format!("{},{v}", prev.to_kstr()),
            None => v.clone(),
        };
        q.insert(key(k), L::scalar(joined));
    }
    let full = u.to_url_string();
    let mut o = Object::new();
    o.insert(key("Scheme"), L::scalar(u.scheme.clone()));
    o.insert(key("Host"), L::scalar(u.host.clone()));
    o.insert(key("Port"), L::scalar(i64::from(u.port)));
    o.insert(key("Path"), L::scalar(u.path.clone()));
    o.insert(key("Query"), L::Object(q));
    o.insert(key("QueryString"), L::scalar(u.query_string()));
    o.insert(key("ToUri"), L::scalar(full.clone()));
    o.insert(key("ToString"), L::scalar(full));
    L::Object(o)
}

/// An expression value (a variable, a `context` member) as a Liquid value.
fn from_value(env: &mut dyn ContextEnv, v: &Value, depth: usize) -> L {
    if depth > MAX_DEPTH {
        return L::Nil;
    }
    match v {
        Value::Null => L::Nil,
        Value::Bool(b) => L::scalar(*b),
        Value::Int(i) => L::scalar(i64::from(*i)),
        Value::Long(i) => L::scalar(*i),
        Value::Byte(b) => L::scalar(i64::from(*b)),
        Value::Double(d) => L::scalar(*d),
        Value::Str(s) => L::scalar(s.to_string()),
        Value::Ctx(c) => ctx(env, *c, depth),
        Value::Obj(o) => match &**o {
            Obj::Url(u) => url(u),
            _ => L::scalar(v.to_display()),
        },
        Value::List(l) => {
            let items: Vec<Value> = l.lock().iter().cloned().collect();
            L::array(items.iter().map(|x| from_value(env, x, depth + 1)))
        }
        Value::JArray(l) => {
            let items: Vec<Value> = l.lock().iter().cloned().collect();
            L::array(items.iter().map(|x| from_value(env, x, depth + 1)))
        }
        Value::JObject(m) => {
            let items: Vec<(String, Value)> = m
                .lock()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut o = Object::new();
            for (k, x) in items {
                let x = from_value(env, &x, depth + 1);
                o.insert(key(&k), x);
            }
            L::Object(o)
        }
        Value::Dict(m) => {
            let items: Vec<(String, Value)> = m
                .lock()
                .iter()
                .map(|(k, v)| (k.to_value().to_display(), v.clone()))
                .collect();
            let mut o = Object::new();
            for (k, x) in items {
                let x = from_value(env, &x, depth + 1);
                o.insert(key(&k), x);
            }
            L::Object(o)
        }
        other => L::scalar(other.to_display()),
    }
}

// ---- filters ----

/// A standard filter under DotLiquid's name.
#[derive(Clone)]
struct Renamed {
    name: String,
    inner: Box<dyn ParseFilter>,
}

impl FilterReflection for Renamed {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        self.inner.reflection().description()
    }
    fn positional_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        self.inner.reflection().positional_parameters()
    }
    fn keyword_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        self.inner.reflection().keyword_parameters()
    }
}

impl ParseFilter for Renamed {
    fn parse(&self, arguments: FilterArguments<'_>) -> LResult<Box<dyn Filter>> {
        self.inner.parse(arguments)
    }
    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Date,
    Currency,
    UrlEncode,
}

/// DotLiquid's own filters: `Date` with .NET formats, `Currency`.
#[derive(Clone)]
struct Custom {
    name: &'static str,
    kind: Kind,
}

impl FilterReflection for Custom {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        match self.kind {
            Kind::Date => "Formats a date with a .NET (or strftime) format string.",
            Kind::Currency => "Formats a number as currency (en-US unless a culture is given).",
            Kind::UrlEncode => "Encodes as .NET's WebUtility.UrlEncode (space as `+`).",
        }
    }
    fn positional_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        &[]
    }
    fn keyword_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        &[]
    }
}

impl ParseFilter for Custom {
    fn parse(&self, mut arguments: FilterArguments<'_>) -> LResult<Box<dyn Filter>> {
        if arguments.keyword.next().is_some() {
            return Err(LError::with_msg(format!(
                "{} takes no named arguments",
                self.name
            )));
        }
        let args: Vec<Expression> = arguments.positional.collect();
        if args.len() > 1 {
            return Err(LError::with_msg(format!(
                "{} takes at most one argument",
                self.name
            )));
        }
        Ok(Box::new(CustomFilter {
            kind: self.kind,
            arg: args.into_iter().next(),
        }))
    }
    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct CustomFilter {
    kind: Kind,
    arg: Option<Expression>,
}

impl fmt::Display for CustomFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.kind)
    }
}

impl Filter for CustomFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> LResult<L> {
        let arg = match &self.arg {
            Some(e) => Some(e.evaluate(runtime)?.to_kstr().to_string()),
            None => None,
        };
        match self.kind {
            Kind::Date => {
                let Some(format) = arg.filter(|f| !f.is_empty()) else {
                    return Ok(input.to_value());
                };
                let format = if format.contains('%') {
                    dotnet_format(&format)
                } else {
                    format
                };
                Ok(match date_of(input) {
                    Some(d) => L::scalar(d.format(&format)),
                    // DotLiquid gives back what it cannot read as a date.
                    None => input.to_value(),
                })
            }
            Kind::UrlEncode => Ok(L::scalar(url_encode(&input.to_kstr()))),
            Kind::Currency => {
                let n = input
                    .as_scalar()
                    .and_then(|s| s.to_float())
                    .or_else(|| input.to_kstr().trim().parse::<f64>().ok());
                match n {
                    Some(n) => currency(n, arg.as_deref().unwrap_or("en-US"))
                        .map(L::scalar)
                        .ok_or_else(|| {
                            LError::with_msg(format!(
                                "Currency: unsupported culture {:?}",
                                arg.unwrap_or_default()
                            ))
                        }),
                    None => Ok(input.to_value()),
                }
            }
        }
    }
}

/// A strftime format (`%Y-%m-%d`) as the .NET custom format that prints the same.
fn dotnet_format(f: &str) -> String {
    let mut out = String::with_capacity(f.len() * 2);
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            // Every literal character escaped: .NET reads letters as specifiers.
            out.push('\\');
            out.push(c);
            continue;
        }
        let spec = match chars.next() {
            Some('Y') => "yyyy",
            Some('y') => "yy",
            Some('m') => "MM",
            Some('d') => "dd",
            Some('e') => "%d",
            Some('H') => "HH",
            Some('I') => "hh",
            Some('M') => "mm",
            Some('S') => "ss",
            Some('L') => "fff",
            Some('p') => "tt",
            Some('b' | 'h') => "MMM",
            Some('B') => "MMMM",
            Some('a') => "ddd",
            Some('A') => "dddd",
            Some('z') => "zzz",
            Some('F') => "yyyy-MM-dd",
            Some('T') => "HH:mm:ss",
            Some('%') => "\\%",
            Some(other) => {
                out.push_str("\\%\\");
                out.push(other);
                continue;
            }
            None => "\\%",
        };
        out.push_str(spec);
    }
    out
}

/// .NET's `WebUtility.UrlEncode`: letters, digits and `-_.!*()` kept, space as `+`, the rest
/// `%XX` (upper-case) of its UTF-8 bytes.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'*'
            | b'('
            | b')' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn date_of(input: &dyn ValueView) -> Option<DateTime> {
    let s = input.as_scalar()?;
    if let Some(i) = s.to_integer() {
        return Some(DateTime::from_unix_seconds(i));
    }
    let text = s.to_kstr();
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") || t.eq_ignore_ascii_case("today") {
        return Some(DateTime::now_utc());
    }
    if let Some(ms) = t.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let ms: i64 = ms.split(['+', '-']).next()?.parse().ok()?;
        return Some(DateTime::from_unix_seconds(ms.div_euclid(1000)));
    }
    DateTime::parse(t)
}

/// .NET's `ToString("C", culture)` for the cultures real templates name.
fn currency(n: f64, culture: &str) -> Option<String> {
    let (decimals, group, point, pattern): (usize, &str, &str, fn(&str) -> String) =
        match culture.to_ascii_lowercase().as_str() {
            "" | "en-us" => (2, ",", ".", |a| format!("${a}")),
            "en-gb" => (2, ",", ".", |a| format!("£{a}")),
            "de-de" => (2, ".", ",", |a| format!("{a}\u{a0}€")),
            "fr-fr" => (2, "\u{202f}", ",", |a| format!("{a}\u{a0}€")),
            "ja-jp" => (0, ",", ".", |a| format!("￥{a}")),
            "invariant" | "iv" => (2, ",", ".", |a| format!("¤{a}")),
            _ => return None,
        };
    // decimal rounding is half away from zero.
    let scale = 10f64.powi(decimals as i32);
    let r = (n.abs() * scale).round() / scale;
    let text = format!("{r:.decimals$}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push_str(group);
        }
        grouped.push(c);
    }
    if !frac.is_empty() {
        grouped.push_str(point);
        grouped.push_str(frac);
    }
    let s = pattern(&grouped);
    Some(if n < 0.0 && r != 0.0 {
        format!("-{s}")
    } else {
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::expr::context::EmptyEnv as NoContext;

    fn run(src: &str, body: &str) -> String {
        let t = compile(src).unwrap_or_else(|e| panic!("{e:?}"));
        let body: J = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e:?}"));
        let opts = Options {
            nil_is_null: false,
            parse_date: true,
        };
        let b = Body {
            json: &body,
            from_xml: false,
        };
        String::from_utf8(
            render(&t, &mut NoContext, Some(b), opts, 1 << 20).unwrap_or_else(|e| panic!("{e:?}")),
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn filters_answer_to_dotliquid_names_and_standard_names() {
        assert_eq!(
            run(
                "{{ body.a | Upcase }}-{{ body.a | upcase }}",
                r#"{"a":"x"}"#
            ),
            "X-X"
        );
        assert_eq!(run("{{ body.n | AtLeast: 5 }}", r#"{"n":3}"#), "5");
        assert_eq!(
            run(
                "{{ body.s | TruncateWords: 2 }}",
                r#"{"s":"one two three"}"#
            ),
            "one two..."
        );
        assert_eq!(run("{{ body.s | H }}", r#"{"s":"<a>"}"#), "&lt;a&gt;");
        assert_eq!(
            run("{{ body.s | UrlEncode }}", r#"{"s":"a b/é"}"#),
            "a+b%2F%C3%A9"
        );
        assert_eq!(run("{{ body.s | UrlDecode }}", r#"{"s":"a+b%2F"}"#), "a b/");
    }

    #[test]
    fn date_takes_dotnet_formats_and_strftime() {
        assert_eq!(
            run(
                r#"{{ body.d | Date: "yyyyMMdd" }}"#,
                r#"{"d":"2024-03-21T05:40:00Z"}"#
            ),
            "20240321"
        );
        assert_eq!(
            run(r#"{{ body.d | date: "%Y/%m" }}"#, r#"{"d":"2024-03-21"}"#),
            "2024/03"
        );
        assert_eq!(
            run(r#"{{ body.d | Date: "yyyy" }}"#, r#"{"d":"not a date"}"#),
            "not a date"
        );
    }

    #[test]
    fn parse_date_renders_date_times_as_dotnet_does() {
        assert_eq!(
            run("{{ body.d }}", r#"{"d":"2012-03-21T05:40Z"}"#),
            "03/21/2012 05:40:00"
        );
        assert_eq!(run("{{ body.d }}", r#"{"d":"2012-03-21"}"#), "2012-03-21");
    }

    #[test]
    fn currency_follows_the_culture() {
        assert_eq!(currency(1234.565, "en-US").as_deref(), Some("$1,234.57"));
        assert_eq!(currency(-3.0, "en-US").as_deref(), Some("-$3.00"));
        assert_eq!(
            currency(1234.5, "de-DE").as_deref(),
            Some("1.234,50\u{a0}€")
        );
        assert_eq!(currency(0.4, "ja-JP").as_deref(), Some("￥0"));
        assert!(currency(1.0, "xx-XX").is_none());
        assert_eq!(
            run("{{ body.p | Currency }}", r#"{"p":1000000}"#),
            "$1,000,000.00"
        );
    }

    #[test]
    fn unknown_filters_and_tags_and_includes_are_compile_errors() {
        let e = compile("ab\n{{ x | Nope }}")
            .err()
            .unwrap_or_else(|| panic!("an error"));
        assert_eq!(e.at, Some(10), "{e:?}");
        let e = compile("{{ x }\n")
            .err()
            .unwrap_or_else(|| panic!("an error"));
        assert!(e.at.is_some(), "{e:?}");
        assert!(compile("{% include 'a' %}").is_err());
        assert!(compile("{% if x %}").is_err());
    }

    #[test]
    fn xsi_nil_is_blank_or_null() {
        let t = compile("[{{ body.a }}]{% if body.a == nil %}nil{% endif %}")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let body: J = serde_json::from_str(r#"{"a":{"@xsi$nil":"true"}}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut o = Options {
            nil_is_null: false,
            parse_date: true,
        };
        let b = || {
            Some(Body {
                json: &body,
                from_xml: true,
            })
        };
        let blank = render(&t, &mut NoContext, b(), o, 1 << 10).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            String::from_utf8(blank).unwrap_or_else(|e| panic!("{e:?}")),
            "[]"
        );
        o.nil_is_null = true;
        let null = render(&t, &mut NoContext, b(), o, 1 << 10).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            String::from_utf8(null).unwrap_or_else(|e| panic!("{e:?}")),
            "[]nil"
        );
    }

    #[test]
    fn a_body_of_too_many_values_is_refused() {
        let t = compile("{{ body | Size }}").unwrap_or_else(|e| panic!("{e:?}"));
        let big = J::Array(vec![J::Null; MAX_NODES + 1]);
        let o = Options {
            nil_is_null: false,
            parse_date: true,
        };
        let b = Body {
            json: &big,
            from_xml: false,
        };
        let e = render(&t, &mut NoContext, Some(b), o, 1 << 20).err();
        assert!(e.is_some_and(|e| e.contains("more than")));
        let small = J::Array(vec![J::Null; 10]);
        let b = Body {
            json: &small,
            from_xml: false,
        };
        assert!(render(&t, &mut NoContext, Some(b), o, 1 << 20).is_ok());
    }

    #[test]
    fn output_is_bounded() {
        let t = compile("{% for i in (1..100000) %}xxxxxxxxxx{% endfor %}")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let o = Options {
            nil_is_null: false,
            parse_date: true,
        };
        let e = render(&t, &mut NoContext, None, o, 1000)
            .err()
            .unwrap_or_else(|| panic!("an error"));
        assert!(e.contains("larger than 1000"), "{e}");
    }
}
