//! Runtime values of policy expressions, with .NET semantics where policies can observe them:
//! invariant number formatting, `ToString()`, equality, numeric promotion, and JSON
//! (Newtonsoft-style, property order preserved).

use std::fmt::Write as _;
use std::sync::Arc;

use indexmap::IndexMap;
use parking_lot::Mutex;

use super::datetime::{self, DateTime};
use super::types::RType;

pub type Shared<T> = Arc<Mutex<T>>;

/// A JObject's properties, in order; hashed with aHash (keyed per map, like std's SipHash, and
/// several times cheaper on short keys: a parsed body hashes every property name once).
pub type JMap = IndexMap<String, Value, ahash::RandomState>;

pub fn shared<T>(v: T) -> Shared<T> {
    Arc::new(Mutex::new(v))
}

/// A dictionary / set key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Str(Arc<str>),
    Int(i64),
    Bool(bool),
    Char(char),
    Other(String),
}

impl Key {
    pub fn from_value(v: &Value) -> Key {
        match v {
            Value::Str(s) => Key::Str(s.clone()),
            Value::Int(i) => Key::Int(*i as i64),
            Value::Long(i) => Key::Int(*i),
            Value::Bool(b) => Key::Bool(*b),
            Value::Char(c) => Key::Char(*c),
            other => Key::Other(other.to_display()),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Key::Str(s) => Value::Str(s.clone()),
            Key::Int(i) => i32::try_from(*i).map_or(Value::Long(*i), Value::Int),
            Key::Bool(b) => Value::Bool(*b),
            Key::Char(c) => Value::Char(*c),
            Key::Other(s) => Value::str(s),
        }
    }
}

/// Named constants of enums (`StringComparison.OrdinalIgnoreCase`, `Formatting.None`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumVal {
    pub ty: &'static str,
    pub name: &'static str,
    pub value: i64,
}

/// Handles on parts of `context`; members are read from the running request when used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    Context,
    Api,
    Operation,
    Product,
    Subscription,
    User,
    Deployment,
    Request,
    Response,
    RequestHeaders,
    ResponseHeaders,
    RequestBody,
    ResponseBody,
    MatchedParameters,
    Variables,
    LastError,
    Backend,
    SubscriptionKeyNames,
}

/// A URL snapshot (`IUrl`).
#[derive(Clone, Debug, PartialEq)]
pub struct UrlData {
    pub scheme: String,
    pub host: String,
    pub port: i32,
    pub path: String,
    pub query: Vec<(String, String)>,
}

impl UrlData {
    pub fn query_string(&self) -> String {
        if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", crate::codec::query::encode_pairs(&self.query))
        }
    }

    pub fn to_url_string(&self) -> String {
        let default = (self.scheme == "http" && self.port == 80)
            || (self.scheme == "https" && self.port == 443);
        let port = if default {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        format!(
            "{}://{}{}{}{}",
            self.scheme,
            self.host,
            port,
            self.path,
            self.query_string()
        )
    }
}

/// A message (`IResponse` / `IRequest`) held in a variable, e.g. a send-request result.
#[derive(Clone, Debug, Default)]
pub struct Message {
    pub status: i32,
    pub reason: String,
    pub method: String,
    pub url: Option<UrlData>,
    pub headers: Vec<(String, Vec<String>)>,
    pub body: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct Jwt {
    pub header: serde_json::Map<String, serde_json::Value>,
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub raw: String,
}

pub struct Lambda {
    pub params: Vec<u32>,
    pub body: super::compile::LambdaCode,
}

impl std::fmt::Debug for Lambda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lambda/{}", self.params.len())
    }
}

/// Objects without value semantics of their own.
#[derive(Debug)]
pub enum Obj {
    Url(UrlData),
    Uri(url::Url),
    Regex(regex::Regex),
    Match {
        text: Arc<str>,
        groups: Vec<Option<(usize, usize)>>,
        names: Vec<Option<String>>,
    },
    Group {
        value: Option<(Arc<str>, usize, usize)>,
    },
    Jwt(Jwt),
    Basic {
        user: String,
        password: String,
    },
    Message(Message),
    Body {
        which: Ctx,
    },
    /// A message body held in a variable (send-request results).
    BodyData(Vec<u8>),
    /// `IReadOnlyDictionary<string, string[]>`: headers, URL query, JWT claims.
    MultiMap {
        map: Vec<(String, Vec<String>)>,
        ignore_case: bool,
    },
    StringBuilder(Mutex<String>),
    IpAddress(std::net::IpAddr),
    /// An `X509Certificate2`.
    X509(openssl::x509::X509),
    /// An `XNamespace`: its URI. `ns + "local"` is the expanded name `{uri}local`.
    XNamespace(String),
    /// An `XName`: namespace URI (empty: none) and local name.
    XName {
        ns: String,
        local: String,
    },
    Exception {
        ty: String,
        message: String,
    },
    Random(Mutex<u64>),
    Hasher {
        alg: &'static str,
        key: Option<Vec<u8>>,
    },
    Encoding(&'static str),
    Comparer {
        ignore_case: bool,
    },
    LastError,
    /// An `XElement` (or an `XDocument`, which reads as its root).
    Xml(Arc<super::builtins::xml::XNode>),
    /// An `XAttribute`: name and value.
    XAttr(String, String),
}

#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Char(char),
    Byte(u8),
    Str(Arc<str>),
    Guid(u128),
    DateTime(DateTime),
    TimeSpan(i64),
    Bytes(Arc<Vec<u8>>),
    /// Arrays, `List<T>`, and LINQ results.
    List(Shared<Vec<Value>>),
    Dict(Shared<IndexMap<Key, Value>>),
    Set(Shared<IndexMap<Key, Value>>),
    Pair(Arc<(Value, Value)>),
    JObject(Shared<JMap>),
    JArray(Shared<Vec<Value>>),
    JProperty(Arc<(Arc<str>, Value)>),
    Lambda(Arc<Lambda>),
    Obj(Arc<Obj>),
    Ctx(Ctx),
    Enum(EnumVal),
    Type(Arc<RType>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    pub fn string(s: String) -> Value {
        Value::Str(Arc::from(s))
    }

    pub fn list(v: Vec<Value>) -> Value {
        Value::List(shared(v))
    }

    pub fn obj(o: Obj) -> Value {
        Value::Obj(Arc::new(o))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// .NET type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Long(_) => "long",
            Value::Double(_) => "double",
            Value::Char(_) => "char",
            Value::Byte(_) => "byte",
            Value::Str(_) => "string",
            Value::Guid(_) => "Guid",
            Value::DateTime(_) => "DateTime",
            Value::TimeSpan(_) => "TimeSpan",
            Value::Bytes(_) => "byte[]",
            Value::List(_) => "IEnumerable",
            Value::Dict(_) => "Dictionary",
            Value::Set(_) => "HashSet",
            Value::Pair(_) => "KeyValuePair",
            Value::JObject(_) => "JObject",
            Value::JArray(_) => "JArray",
            Value::JProperty(_) => "JProperty",
            Value::Lambda(_) => "lambda",
            Value::Obj(o) => match &**o {
                Obj::Url(_) => "IUrl",
                Obj::Uri(_) => "Uri",
                Obj::Regex(_) => "Regex",
                Obj::Match { .. } => "Match",
                Obj::Group { .. } => "Group",
                Obj::Jwt(_) => "Jwt",
                Obj::Basic { .. } => "BasicAuthCredentials",
                Obj::Message(_) => "IResponse",
                Obj::Body { .. } | Obj::BodyData(_) => "IMessageBody",
                Obj::MultiMap { .. } => "IReadOnlyDictionary",
                Obj::StringBuilder(_) => "StringBuilder",
                Obj::IpAddress(_) => "IPAddress",
                Obj::X509(_) => "X509Certificate2",
                Obj::XNamespace(_) => "XNamespace",
                Obj::XName { .. } => "XName",
                Obj::Exception { .. } => "Exception",
                Obj::Random(_) => "Random",
                Obj::Hasher { .. } => "HashAlgorithm",
                Obj::Encoding(_) => "Encoding",
                Obj::Comparer { .. } => "StringComparer",
                Obj::LastError => "ProxyError",
                Obj::Xml(_) => "XElement",
                Obj::XAttr(..) => "XAttribute",
            },
            Value::Ctx(_) => "context",
            Value::Enum(e) => e.ty,
            Value::Type(_) => "Type",
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Long(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            Value::Byte(b) => Some(*b as f64),
            Value::Char(c) => Some(*c as u32 as f64),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i as i64),
            Value::Long(i) => Some(*i),
            Value::Byte(b) => Some(*b as i64),
            Value::Char(c) => Some(*c as i64),
            Value::Double(d) if d.fract() == 0.0 && d.abs() < 9.2e18 => Some(*d as i64),
            Value::Enum(e) => Some(e.value),
            _ => None,
        }
    }

    /// `ToString()` with the invariant culture.
    pub fn to_display(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Long(i) => i.to_string(),
            Value::Double(d) => format_double(*d),
            Value::Char(c) => c.to_string(),
            Value::Byte(b) => b.to_string(),
            Value::Str(s) => s.to_string(),
            Value::Guid(g) => format_guid(*g),
            Value::DateTime(d) => d.format(""),
            Value::TimeSpan(t) => datetime::format_timespan(*t),
            Value::Bytes(_) => "System.Byte[]".into(),
            Value::List(_) => "System.Collections.Generic.List`1[System.Object]".into(),
            Value::Dict(_) => {
                "System.Collections.Generic.Dictionary`2[System.String,System.Object]".into()
            }
            Value::Set(_) => "System.Collections.Generic.HashSet`1[System.Object]".into(),
            Value::Pair(p) => format!("[{}, {}]", p.0.to_display(), p.1.to_display()),
            Value::JObject(_) | Value::JArray(_) | Value::JProperty(_) => json_text(self, true),
            Value::Lambda(_) => "System.Func".into(),
            Value::Obj(o) => match &**o {
                Obj::Url(u) => u.to_url_string(),
                Obj::Uri(u) => u.to_string(),
                Obj::Regex(r) => r.as_str().to_string(),
                Obj::Match { text, groups, .. } => groups
                    .first()
                    .copied()
                    .flatten()
                    .map_or(String::new(), |(s, e)| text[s..e].to_string()),
                Obj::Group { value } => value
                    .as_ref()
                    .map_or(String::new(), |(t, s, e)| t[*s..*e].to_string()),
                Obj::Jwt(j) => j.raw.clone(),
                Obj::StringBuilder(s) => s.lock().clone(),
                Obj::IpAddress(a) => a.to_string(),
                Obj::X509(c) => super::builtins::x509_subject(c),
                Obj::XNamespace(uri) => uri.clone(),
                Obj::XName { ns, local } if ns.is_empty() => local.clone(),
                Obj::XName { ns, local } => format!("{{{ns}}}{local}"),
                Obj::Exception { ty, message } => format!("{ty}: {message}"),
                Obj::Xml(n) => {
                    let mut s = String::new();
                    super::builtins::xml::serialize(n, &mut s);
                    s
                }
                Obj::XAttr(k, v) => format!("{k}=\"{v}\""),
                other => format!("{other:?}"),
            },
            Value::Ctx(c) => format!("{c:?}"),
            Value::Enum(e) => e.name.to_string(),
            Value::Type(t) => t.display(),
        }
    }

    /// Truthiness for conditions: only `bool` is allowed.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// C# `double.ToString()` (shortest round-trip, invariant): `0.1`, `1E+21`, `1E-05`.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "∞".into() } else { "-∞".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let a = d.abs();
    if (1e-5..1e15).contains(&a) {
        let s = format!("{d}");
        return s;
    }
    // Exponent form: mantissa shortest, exponent with sign and at least two digits.
    let s = format!("{d:e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    format!("{m}E{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

pub fn format_guid(g: u128) -> String {
    let h = format!("{g:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub fn parse_guid(s: &str) -> Option<u128> {
    let t: String = s
        .trim()
        .trim_matches(|c| c == '{' || c == '}' || c == '(' || c == ')')
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if t.len() != 32 {
        return None;
    }
    u128::from_str_radix(&t, 16).ok()
}

// ---- JSON -----------------------------------------------------------------------------------

/// Convert parsed JSON into values (objects and arrays become JObject / JArray).
pub fn from_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Long(i),
            None => Value::Double(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::string(s),
        serde_json::Value::Array(a) => {
            Value::JArray(shared(a.into_iter().map(from_json).collect()))
        }
        serde_json::Value::Object(o) => Value::JObject(shared(
            o.into_iter().map(|(k, v)| (k, from_json(v))).collect(),
        )),
    }
}

/// JSON text read straight into values (objects and arrays become JObject / JArray), as
/// `from_json(serde_json::from_str(text)?)` would give, without building a `serde_json::Value`
/// first (its map, hashed once more, and the copy into values cost more than the parse).
/// serde_json's own nesting limit (128) applies.
pub fn parse_json(text: &str) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    let v = JsonSeed.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

struct JsonSeed;

impl<'de> serde::de::DeserializeSeed<'de> for JsonSeed {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(JsonSeed)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonSeed {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(JsonSeed)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Long(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        // As `Number::as_i64` then `as_f64`: past i64, a double.
        Ok(i64::try_from(u).map_or(Value::Double(u as f64), Value::Long))
    }

    fn visit_f64<E>(self, d: f64) -> Result<Value, E> {
        Ok(Value::Double(d))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::str(s))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::string(s))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = seq.next_element_seed(JsonSeed)? {
            v.push(x);
        }
        Ok(Value::JArray(shared(v)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // A repeated name keeps its first position and its last value, as serde_json's map.
        let mut m = JMap::default();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(JsonSeed)?;
            m.insert(k, v);
        }
        Ok(Value::JObject(shared(m)))
    }
}

/// Convert a value to JSON (as JsonConvert.SerializeObject would).
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Long(i) => J::from(*i),
        Value::Byte(b) => J::from(*b),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Value::Char(c) => J::String(c.to_string()),
        Value::Str(s) => J::String(s.to_string()),
        Value::Guid(g) => J::String(format_guid(*g)),
        Value::DateTime(d) => J::String(d.format("yyyy-MM-ddTHH:mm:ss.FFFFFFFK")),
        Value::TimeSpan(t) => J::String(datetime::format_timespan(*t)),
        Value::Bytes(b) => J::String(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            &b[..],
        )),
        Value::List(l) | Value::JArray(l) => J::Array(l.lock().iter().map(to_json).collect()),
        Value::Set(s) => J::Array(s.lock().values().map(to_json).collect()),
        Value::Dict(d) => J::Object(
            d.lock()
                .iter()
                .map(|(k, v)| (k.to_value().to_display(), to_json(v)))
                .collect(),
        ),
        Value::JObject(o) => J::Object(
            o.lock()
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        Value::JProperty(p) => {
            let mut m = serde_json::Map::new();
            m.insert(p.0.to_string(), to_json(&p.1));
            J::Object(m)
        }
        Value::Pair(p) => serde_json::json!({ "Key": to_json(&p.0), "Value": to_json(&p.1) }),
        Value::Enum(e) => J::from(e.value),
        Value::Obj(o) => match &**o {
            Obj::Jwt(j) => J::String(j.raw.clone()),
            _ => J::String(v.to_display()),
        },
        _ => J::String(v.to_display()),
    }
}

/// Newtonsoft-style JSON text: indented with two spaces and `": "`, or compact.
pub fn json_text(v: &Value, indented: bool) -> String {
    let mut out = String::new();
    match v {
        // A JProperty prints as `"name": value`.
        Value::JProperty(p) => {
            write_json_string(&mut out, &p.0);
            out.push_str(": ");
            write_value(&mut out, &p.1, indented, 0);
        }
        _ => write_value(&mut out, v, indented, 0),
    }
    out
}

/// `write_json(to_json(v))` without building the `serde_json::Value`: JSON tokens, lists and
/// scalars are written as they are; what `to_json` turns into something else (dictionaries,
/// pairs, dates, objects) goes through it.
fn write_value(out: &mut String, v: &Value, indented: bool, level: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Long(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Byte(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Double(d) if d.is_finite() => write_double(out, *d),
        Value::Double(_) => out.push_str("null"),
        Value::Str(s) => write_json_string(out, s),
        Value::List(l) | Value::JArray(l) => {
            let l = l.lock();
            write_seq(out, l.iter(), l.is_empty(), indented, level);
        }
        Value::Set(m) => {
            let m = m.lock();
            write_seq(out, m.values(), m.is_empty(), indented, level);
        }
        Value::JObject(o) => {
            let o = o.lock();
            if o.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indented, level + 1);
                write_json_string(out, k);
                out.push_str(if indented { ": " } else { ":" });
                write_value(out, x, indented, level + 1);
            }
            newline(out, indented, level);
            out.push('}');
        }
        other => write_json(out, &to_json(other), indented, level),
    }
}

fn write_seq<'v>(
    out: &mut String,
    items: impl Iterator<Item = &'v Value>,
    empty: bool,
    indented: bool,
    level: usize,
) {
    if empty {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, x) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, indented, level + 1);
        write_value(out, x, indented, level + 1);
    }
    newline(out, indented, level);
    out.push(']');
}

fn newline(out: &mut String, indented: bool, level: usize) {
    if indented {
        out.push('\n');
        for _ in 0..level {
            out.push_str("  ");
        }
    }
}

/// A finite double as Newtonsoft writes it: shortest round trip, always with a fraction or an
/// exponent (1.0, 1.5, 1E+21).
fn write_double(out: &mut String, d: f64) {
    let start = out.len();
    if d != 0.0 && (1e-5..1e15).contains(&d.abs()) {
        let _ = write!(out, "{d}");
    } else {
        out.push_str(&format_double(d));
    }
    if !out[start..].contains(['.', 'E']) {
        out.push_str(".0");
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Runs that need no escape are copied whole.
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            b if b < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(esc);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

fn write_json(out: &mut String, v: &serde_json::Value, indented: bool, level: usize) {
    use serde_json::Value as J;
    let nl = |out: &mut String, level: usize| newline(out, indented, level);
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                // Newtonsoft writes doubles with a fraction: 1.0, 1.5, 1E+21 (a Number is
                // finite).
                write_double(out, f);
            } else {
                let _ = write!(out, "{n}");
            }
        }
        J::String(s) => write_json_string(out, s),
        J::Array(a) => {
            if a.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, level + 1);
                write_json(out, x, indented, level + 1);
            }
            nl(out, level);
            out.push(']');
        }
        J::Object(o) => {
            if o.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, level + 1);
                write_json_string(out, k);
                out.push_str(if indented { ": " } else { ":" });
                write_json(out, x, indented, level + 1);
            }
            nl(out, level);
            out.push('}');
        }
    }
}

// ---- equality and comparison ------------------------------------------------------------------

/// `==` as policies expect it: numbers by value across types, strings by content, objects by
/// reference, JSON scalars by value.
pub fn equals(a: &Value, b: &Value) -> bool {
    use Value::*;
    match (a, b) {
        (Null, Null) => true,
        (Null, _) | (_, Null) => false,
        (Bool(x), Bool(y)) => x == y,
        (Str(x), Str(y)) => x == y,
        (Char(x), Char(y)) => x == y,
        (Guid(x), Guid(y)) => x == y,
        (DateTime(x), DateTime(y)) => x.ticks == y.ticks,
        (TimeSpan(x), TimeSpan(y)) => x == y,
        (Enum(x), Enum(y)) => x.ty == y.ty && x.value == y.value,
        (Int(_) | Long(_) | Byte(_) | Char(_), Int(_) | Long(_) | Byte(_) | Char(_)) => {
            a.as_i64() == b.as_i64()
        }
        (Int(_) | Long(_) | Double(_) | Byte(_), Int(_) | Long(_) | Double(_) | Byte(_)) => {
            a.as_f64() == b.as_f64()
        }
        (List(x), List(y)) | (JArray(x), JArray(y)) => Arc::ptr_eq(x, y),
        (JObject(x), JObject(y)) => Arc::ptr_eq(x, y),
        (Dict(x), Dict(y)) => Arc::ptr_eq(x, y),
        (Bytes(x), Bytes(y)) => Arc::ptr_eq(x, y),
        (Obj(x), Obj(y)) => match (&**x, &**y) {
            (crate::expr::value::Obj::IpAddress(p), crate::expr::value::Obj::IpAddress(q)) => {
                p == q
            }
            (crate::expr::value::Obj::Uri(p), crate::expr::value::Obj::Uri(q)) => p == q,
            (
                crate::expr::value::Obj::XName { .. } | crate::expr::value::Obj::XNamespace(_),
                crate::expr::value::Obj::XName { .. } | crate::expr::value::Obj::XNamespace(_),
            ) => {
                a.to_display() == b.to_display()
                    && std::mem::discriminant(&**x) == std::mem::discriminant(&**y)
            }
            _ => Arc::ptr_eq(x, y),
        },
        // XName == "{uri}local" / "local", XNamespace == "uri": the implicit conversions.
        (Obj(x), Str(s)) | (Str(s), Obj(x))
            if matches!(
                &**x,
                crate::expr::value::Obj::XName { .. } | crate::expr::value::Obj::XNamespace(_)
            ) =>
        {
            let o = if matches!(a, Obj(_)) { a } else { b };
            o.to_display() == **s
        }
        (Ctx(x), Ctx(y)) => x == y,
        (Pair(x), Pair(y)) => equals(&x.0, &y.0) && equals(&x.1, &y.1),
        _ => false,
    }
}

/// Ordering for `<`, `OrderBy`, `Max`: numbers, strings (ordinal), chars, dates, time spans.
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    use Value::*;
    match (a, b) {
        (Null, Null) => Some(std::cmp::Ordering::Equal),
        (Null, _) => Some(std::cmp::Ordering::Less),
        (_, Null) => Some(std::cmp::Ordering::Greater),
        (Str(x), Str(y)) => Some(x.cmp(y)),
        (DateTime(x), DateTime(y)) => Some(x.ticks.cmp(&y.ticks)),
        (TimeSpan(x), TimeSpan(y)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Guid(x), Guid(y)) => Some(x.cmp(y)),
        _ => match (a, b) {
            (Double(_), _) | (_, Double(_)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
            _ => Some(a.as_i64()?.cmp(&b.as_i64()?)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_format_like_dotnet() {
        assert_eq!(format_double(0.1), "0.1");
        assert_eq!(format_double(1.0), "1");
        assert_eq!(format_double(1e21), "1E+21");
        assert_eq!(format_double(1.5e-7), "1.5E-07");
        assert_eq!(format_double(-2.5), "-2.5");
    }

    #[test]
    fn json_keeps_order_and_indents_like_newtonsoft() {
        let v = from_json(
            serde_json::from_str(r#"{"b":1,"a":[1,2.5,{}],"c":"x\"y"}"#).unwrap_or_default(),
        );
        assert_eq!(json_text(&v, false), r#"{"b":1,"a":[1,2.5,{}],"c":"x\"y"}"#);
        assert_eq!(
            json_text(&v, true),
            "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2.5,\n    {}\n  ],\n  \"c\": \"x\\\"y\"\n}"
        );
    }
    /// The direct reader and writer (`parse_json`, `json_text`) give what the round trip
    /// through `serde_json::Value` gave, for every kind of token and string.
    #[test]
    fn direct_json_reading_and_writing_match_the_serde_json_round_trip() {
        let docs = [
            r#"{"b":1,"a":[1,2.5,{}],"c":"x\"y"}"#,
            r#"[null,true,false,0,-0,-0.0,1.0,1e21,1.5e-7,123456789012345678,18446744073709551615,-9223372036854775808]"#,
            r#"{"s":"tab\t nl\n cr\r bs\\ q\" ff\f bk\b nul\u0000 us\u001f del\u007f é € 😀 \ud83d\ude00 </script>"}"#,
            r#"{"dup":1,"x":2,"dup":3}"#,
            r#"{"deep":[[[{"a":[{"b":{"c":[]}}]}]]],"empty":{},"e2":[]}"#,
            r#""just a string""#,
            r#"  42  "#,
            r#"[0.1,0.30000000000000004,1e-5,9.99e-6,1e15,999999999999999.9,-1e300,5e-324]"#,
        ];
        for doc in docs {
            let old = from_json(serde_json::from_str(doc).unwrap_or_else(|e| panic!("{doc}: {e}")));
            let new = parse_json(doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
            for indented in [false, true] {
                let mut want = String::new();
                write_json(&mut want, &to_json(&old), indented, 0);
                assert_eq!(json_text(&new, indented), want, "{doc}");
                assert_eq!(json_text(&old, indented), want, "{doc}");
            }
        }
        // A double that is not finite (computed, never parsed) is written as null, as before.
        assert_eq!(
            json_text(&Value::list(vec![Value::Double(f64::NAN)]), false),
            "[null]"
        );
        // Refused as serde_json refuses: trailing text, bad syntax, nesting past 128.
        for bad in ["{} x", "{\"a\":}", "[1,]", "", &"[".repeat(200)] {
            assert!(parse_json(bad).is_err(), "{bad}");
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
