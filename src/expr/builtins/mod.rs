//! The .NET surface policy expressions may use: members, methods, statics, constructors, casts,
//! formatting and enumeration. One file per family; this one dispatches.

mod body;
mod context;
mod convert;
mod crypto;
mod json;
mod jwt;
mod linq;
mod names;
mod objects;
mod regexp;
mod statics;
mod string;
mod time;
mod uri;
pub mod x509;
pub mod xml;

use std::sync::Arc;

use super::eval::{exception, null_ref, EResult, Machine};
use super::types::{RType, Ty};
use super::value::{self, shared, EnumVal, Key, Obj, Value};

pub use context::USER_MEMBERS;
pub use convert::{format_value, to_bool, to_f64, to_i64, to_string_arg};
use names::Names;
pub use names::{constructible, member_name, method_name, static_member, static_method};
pub use x509::subject as x509_subject;

/// The names every value has (dispatched here before its family's): registered beside their
/// code like each family's (`names.rs` chains them).
const NAMES: Names = Names {
    members: &[
        "Length",
        "LongLength",
        "Count",
        "Keys",
        "Values",
        "Key",
        "Value",
        "Type",
        "First",
        "Last",
        "HasValues",
        "Item1",
        "Item2",
        "HasValue",
    ],
    methods: &[
        "ToString",
        "Equals",
        "GetHashCode",
        "GetType",
        "Value",
        "Values",
        "ToObject",
        "Invoke",
        "Deconstruct",
    ],
    static_members: &[],
    static_methods: &["Equals", "Parse", "ToString", "Load"],
};

/// Collection initialiser values after `new T(...)`.
pub enum Initializer {
    Items(Vec<Value>),
    Keyed(Vec<(Value, Value)>),
    Members(Vec<(String, Value)>),
}

fn arg<'a>(args: &'a [Value], i: usize, what: &str) -> EResult<&'a Value> {
    args.get(i).map_or_else(
        || {
            exception(
                "ArgumentException",
                format!("{what}: missing argument {}", i + 1),
            )
        },
        Ok,
    )
}

fn named<'a>(named: &'a [(String, Value)], n: &str) -> Option<&'a Value> {
    named.iter().find(|(k, _)| k == n).map(|(_, v)| v)
}

/// Items of anything enumerable.
pub fn iterate(m: &mut Machine, v: &Value) -> EResult<Vec<Value>> {
    Ok(match v {
        Value::List(l) | Value::JArray(l) => l.lock().clone(),
        Value::Set(s) => s.lock().values().cloned().collect(),
        Value::Dict(d) => d
            .lock()
            .iter()
            .map(|(k, v)| Value::Pair(Arc::new((k.to_value(), v.clone()))))
            .collect(),
        Value::JObject(o) => o
            .lock()
            .iter()
            .map(|(k, v)| Value::JProperty(Arc::new((Arc::from(k.as_str()), v.clone()))))
            .collect(),
        Value::Str(s) => s.chars().map(Value::Char).collect(),
        Value::Bytes(b) => b.iter().map(|x| Value::Byte(*x)).collect(),
        Value::Ctx(c) => context::iterate(m, *c)?,
        Value::Obj(o) => match &**o {
            Obj::Match { .. } => vec![v.clone()],
            _ => {
                return exception(
                    "InvalidOperationException",
                    format!("{} is not enumerable", v.type_name()),
                )
            }
        },
        Value::Null => return null_ref("foreach"),
        _ => {
            return exception(
                "InvalidOperationException",
                format!("{} is not enumerable", v.type_name()),
            )
        }
    })
}

/// `new[] { ... }`: a byte[] when every item is a byte, else an array.
pub fn typed_array(items: Vec<Value>) -> Value {
    if !items.is_empty() && items.iter().all(|v| matches!(v, Value::Byte(_))) {
        return Value::Bytes(Arc::new(
            items
                .iter()
                .map(|v| if let Value::Byte(b) = v { *b } else { 0 })
                .collect(),
        ));
    }
    Value::list(items)
}

pub fn default_of(t: &RType) -> Value {
    if t.arrays > 0 || t.nullable {
        return Value::Null;
    }
    match t.ty {
        Ty::Bool => Value::Bool(false),
        Ty::Int => Value::Int(0),
        Ty::Long => Value::Long(0),
        Ty::Double => Value::Double(0.0),
        Ty::Char => Value::Char('\0'),
        Ty::Byte => Value::Byte(0),
        Ty::Guid => Value::Guid(0),
        Ty::DateTime | Ty::DateTimeOffset => Value::DateTime(super::datetime::DateTime {
            ticks: 0,
            kind: super::datetime::Kind::Unspecified,
        }),
        Ty::TimeSpan => Value::TimeSpan(0),
        _ => Value::Null,
    }
}

pub fn is_type(v: &Value, t: &RType) -> bool {
    if v.is_null() {
        return false;
    }
    if t.arrays > 0 {
        return matches!(v, Value::List(_) | Value::Bytes(_));
    }
    match (t.ty, v) {
        (Ty::Object, _) => true,
        (Ty::Bool, Value::Bool(_)) => true,
        (Ty::Int, Value::Int(_)) => true,
        (Ty::Long, Value::Long(_)) => true,
        (Ty::Double, Value::Double(_)) => true,
        (Ty::Char, Value::Char(_)) => true,
        (Ty::Byte, Value::Byte(_)) => true,
        (Ty::String, Value::Str(_)) => true,
        (Ty::Guid, Value::Guid(_)) => true,
        (Ty::DateTime | Ty::DateTimeOffset, Value::DateTime(_)) => true,
        (Ty::TimeSpan, Value::TimeSpan(_)) => true,
        (Ty::Bytes, Value::Bytes(_)) => true,
        (Ty::List, Value::List(_) | Value::JArray(_) | Value::Set(_) | Value::Bytes(_)) => true,
        (Ty::Dictionary, Value::Dict(_) | Value::JObject(_)) => true,
        (Ty::HashSet, Value::Set(_)) => true,
        (Ty::KeyValuePair, Value::Pair(_)) => true,
        (Ty::JObject, Value::JObject(_)) => true,
        (Ty::JArray, Value::JArray(_)) => true,
        (Ty::JProperty, Value::JProperty(_)) => true,
        (
            Ty::JToken,
            Value::JObject(_)
            | Value::JArray(_)
            | Value::JProperty(_)
            | Value::Str(_)
            | Value::Long(_)
            | Value::Int(_)
            | Value::Double(_)
            | Value::Bool(_),
        ) => true,
        (
            Ty::JValue,
            Value::Str(_) | Value::Long(_) | Value::Int(_) | Value::Double(_) | Value::Bool(_),
        ) => true,
        (Ty::Enum, Value::Enum(e)) => e.ty == t.name,
        (_, Value::Obj(o)) => matches!(
            (t.ty, &**o),
            (Ty::Uri, Obj::Uri(_))
                | (Ty::IUrl, Obj::Url(_))
                | (Ty::Regex, Obj::Regex(_))
                | (Ty::Match, Obj::Match { .. })
                | (Ty::Group, Obj::Group { .. })
                | (Ty::Jwt, Obj::Jwt(_))
                | (Ty::BasicAuth, Obj::Basic { .. })
                | (Ty::IResponse | Ty::IRequest, Obj::Message(_))
                | (Ty::IMessageBody, Obj::Body { .. })
                | (Ty::StringBuilder, Obj::StringBuilder(_))
                | (Ty::IpAddress, Obj::IpAddress(_))
                | (Ty::Exception, Obj::Exception { .. })
                | (Ty::XElement | Ty::XDocument, Obj::Xml(_))
                | (Ty::X509, Obj::X509(_))
                | (Ty::XNamespace, Obj::XNamespace(_))
                | (Ty::XName, Obj::XName { .. })
        ),
        (Ty::IResponse | Ty::IRequest, Value::Ctx(value::Ctx::Response | value::Ctx::Request)) => {
            true
        }
        _ => false,
    }
}

/// `(T)x`: explicit conversions. JSON scalars convert like Newtonsoft's explicit operators.
pub fn cast(m: &mut Machine, v: Value, t: &RType) -> EResult<Value> {
    if v.is_null() {
        return match t.ty {
            _ if t.nullable || t.arrays > 0 => Ok(Value::Null),
            Ty::Int
            | Ty::Long
            | Ty::Double
            | Ty::Bool
            | Ty::Char
            | Ty::Byte
            | Ty::Guid
            | Ty::DateTime
            | Ty::TimeSpan => exception(
                "InvalidCastException",
                format!("null cannot be cast to {}", t.display()),
            ),
            _ => Ok(Value::Null),
        };
    }
    if t.arrays > 0 || is_type(&v, t) {
        return Ok(v);
    }
    let fail = |v: &Value| {
        exception(
            "InvalidCastException",
            format!(
                "Unable to cast object of type '{}' to type '{}'.",
                v.type_name(),
                t.display()
            ),
        )
    };
    Ok(match t.ty {
        // The implicit conversions from a string: `XNamespace ns = "urn:x"`, `XName n = "{urn:x}a"`.
        Ty::XNamespace => match &v {
            Value::Str(s) => Value::obj(Obj::XNamespace(s.to_string())),
            _ => return fail(&v),
        },
        Ty::XName => match &v {
            Value::Str(s) => Value::obj(xml::xname(s)),
            _ => return fail(&v),
        },
        Ty::String => match &v {
            Value::Char(c) => Value::string(c.to_string()),
            Value::Long(_) | Value::Int(_) | Value::Double(_) | Value::Bool(_) => {
                Value::string(v.to_display())
            }
            Value::JProperty(_) | Value::JObject(_) | Value::JArray(_) => return fail(&v),
            Value::Obj(o) if matches!(&**o, Obj::Jwt(_)) => Value::string(v.to_display()),
            _ => return fail(&v),
        },
        Ty::Int => match &v {
            Value::Long(i) => Value::Int(*i as i32),
            Value::Double(d) => Value::Int(*d as i32),
            Value::Char(c) => Value::Int(*c as i32),
            Value::Byte(b) => Value::Int(*b as i32),
            Value::Enum(e) => Value::Int(e.value as i32),
            Value::Str(s) => Value::Int(s.trim().parse().or_else(|_| {
                exception(
                    "FormatException",
                    "Input string was not in a correct format.",
                )
            })?),
            _ => return fail(&v),
        },
        Ty::Long => match &v {
            Value::Int(i) => Value::Long(*i as i64),
            Value::Double(d) => Value::Long(*d as i64),
            Value::Char(c) => Value::Long(*c as i64),
            Value::Byte(b) => Value::Long(*b as i64),
            Value::Enum(e) => Value::Long(e.value),
            Value::Str(s) => Value::Long(s.trim().parse().or_else(|_| {
                exception(
                    "FormatException",
                    "Input string was not in a correct format.",
                )
            })?),
            _ => return fail(&v),
        },
        Ty::Double => match v.as_f64() {
            Some(d) => Value::Double(d),
            None => match &v {
                Value::Str(s) => Value::Double(s.trim().parse().or_else(|_| {
                    exception(
                        "FormatException",
                        "Input string was not in a correct format.",
                    )
                })?),
                _ => return fail(&v),
            },
        },
        Ty::Char => match &v {
            Value::Int(i) => Value::Char(char::from_u32(*i as u32).unwrap_or('\0')),
            Value::Long(i) => Value::Char(char::from_u32(*i as u32).unwrap_or('\0')),
            _ => return fail(&v),
        },
        Ty::Byte => match v.as_i64() {
            Some(i) => Value::Byte(i as u8),
            None => return fail(&v),
        },
        Ty::Bool => match &v {
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return fail(&v),
        },
        Ty::DateTime | Ty::DateTimeOffset => match &v {
            Value::Str(s) => Value::DateTime(super::datetime::DateTime::parse(s).map_or_else(
                || {
                    exception(
                        "FormatException",
                        "String was not recognized as a valid DateTime.",
                    )
                },
                Ok,
            )?),
            _ => return fail(&v),
        },
        Ty::Guid => match &v {
            Value::Str(s) => Value::Guid(value::parse_guid(s).map_or_else(
                || exception("FormatException", "Unrecognized Guid format."),
                Ok,
            )?),
            _ => return fail(&v),
        },
        Ty::TimeSpan => match &v {
            Value::Str(s) => Value::TimeSpan(
                super::datetime::parse_timespan(s)
                    .map_or_else(|| exception("FormatException", "Invalid TimeSpan"), Ok)?,
            ),
            _ => return fail(&v),
        },
        // A context message used as IResponse / a body as IMessageBody.
        Ty::JToken | Ty::JValue => v,
        Ty::Enum => match v.as_i64() {
            Some(i) => Value::Long(i),
            None => return fail(&v),
        },
        Ty::IResponse | Ty::IRequest => match &v {
            Value::Ctx(_) => v,
            _ => return fail(&v),
        },
        _ => {
            let _ = m;
            return fail(&v);
        }
    })
}

pub fn static_get(m: &mut Machine, ty: &RType, name: &str) -> EResult<Value> {
    if ty.ty == Ty::XNamespace {
        return xml::namespace_static_get(name);
    }
    if ty.ty == Ty::Enum {
        return convert::enum_value(&ty.name, name)
            .map(Value::Enum)
            .map_or_else(
                || exception("MissingMemberException", format!("{}.{name}", ty.name)),
                Ok,
            );
    }
    statics::static_get(m, ty, name)
}

pub fn get_member(m: &mut Machine, v: &Value, name: &str) -> EResult<Value> {
    // Nullable<T> members on a present value.
    match (name, v) {
        ("HasValue", _) => return Ok(Value::Bool(true)),
        (
            "Value",
            Value::DateTime(_)
            | Value::TimeSpan(_)
            | Value::Int(_)
            | Value::Long(_)
            | Value::Double(_)
            | Value::Bool(_)
            | Value::Guid(_)
            | Value::Char(_),
        ) => return Ok(v.clone()),
        _ => {}
    }
    match v {
        Value::Ctx(c) => context::member(m, *c, name),
        Value::Str(s) => match name {
            "Length" => Ok(Value::Int(s.encode_utf16().count() as i32)),
            _ => no_member(v, name),
        },
        Value::List(l) | Value::JArray(l) => match name {
            "Length" | "Count" => Ok(Value::Int(l.lock().len() as i32)),
            "LongLength" if matches!(v, Value::List(_)) => Ok(Value::Long(l.lock().len() as i64)),
            "First" if matches!(v, Value::JArray(_)) => {
                Ok(l.lock().first().cloned().unwrap_or(Value::Null))
            }
            "Last" if matches!(v, Value::JArray(_)) => {
                Ok(l.lock().last().cloned().unwrap_or(Value::Null))
            }
            "HasValues" => Ok(Value::Bool(!l.lock().is_empty())),
            "Type" => Ok(Value::Enum(json::token_type(v))),
            _ => no_member(v, name),
        },
        Value::Bytes(b) => match name {
            "Length" | "Count" => Ok(Value::Int(b.len() as i32)),
            "LongLength" => Ok(Value::Long(b.len() as i64)),
            _ => no_member(v, name),
        },
        Value::Dict(d) | Value::Set(d) => match name {
            "Count" => Ok(Value::Int(d.lock().len() as i32)),
            "Keys" => Ok(Value::list(d.lock().keys().map(Key::to_value).collect())),
            "Values" => Ok(Value::list(d.lock().values().cloned().collect())),
            _ => no_member(v, name),
        },
        Value::Pair(p) => match name {
            "Key" | "Item1" => Ok(p.0.clone()),
            "Value" | "Item2" => Ok(p.1.clone()),
            _ => no_member(v, name),
        },
        Value::JObject(_) | Value::JProperty(_) => json::member(v, name),
        Value::Long(_) | Value::Int(_) | Value::Double(_) | Value::Bool(_) if name == "Type" => {
            Ok(Value::Enum(json::token_type(v)))
        }
        Value::DateTime(_) | Value::TimeSpan(_) => time::member(v, name),
        Value::Obj(_) => objects::member(m, v, name),
        _ => no_member(v, name),
    }
}

fn no_member<T>(v: &Value, name: &str) -> EResult<T> {
    exception(
        "MissingMemberException",
        format!(
            "'{}' does not contain a definition for '{name}'",
            v.type_name()
        ),
    )
}

pub fn set_member(v: &Value, name: &str, new: Value) -> EResult<()> {
    match v {
        Value::JObject(o) => {
            o.lock().insert(name.to_string(), new);
            Ok(())
        }
        _ => exception(
            "InvalidOperationException",
            format!("cannot set '{name}' on {}", v.type_name()),
        ),
    }
}

pub fn index_get(m: &mut Machine, v: &Value, args: &[Value]) -> EResult<Value> {
    let k = arg(args, 0, "indexer")?;
    match v {
        Value::Str(s) => {
            let i = convert::index_of(k)?;
            s.encode_utf16()
                .nth(i)
                .and_then(|u| char::from_u32(u as u32))
                .map(Value::Char)
                .map_or_else(
                    || {
                        exception(
                            "IndexOutOfRangeException",
                            "Index was outside the bounds of the array.",
                        )
                    },
                    Ok,
                )
        }
        Value::List(l) => {
            let i = convert::index_of(k)?;
            l.lock().get(i).cloned().map_or_else(
                || exception("ArgumentOutOfRangeException", "Index was out of range."),
                Ok,
            )
        }
        Value::JArray(l) => {
            let i = convert::index_of(k)?;
            l.lock().get(i).cloned().map_or_else(|| exception("ArgumentOutOfRangeException", "Index was out of range. Must be non-negative and less than the size of the collection."), Ok)
        }
        Value::Bytes(b) => {
            let i = convert::index_of(k)?;
            b.get(i).map(|x| Value::Byte(*x)).map_or_else(
                || {
                    exception(
                        "IndexOutOfRangeException",
                        "Index was outside the bounds of the array.",
                    )
                },
                Ok,
            )
        }
        Value::Dict(d) => d.lock().get(&Key::from_value(k)).cloned().map_or_else(
            || {
                exception(
                    "KeyNotFoundException",
                    format!(
                        "The given key '{}' was not present in the dictionary.",
                        k.to_display()
                    ),
                )
            },
            Ok,
        ),
        // JObject["missing"] is null (Newtonsoft).
        Value::JObject(o) => Ok(o
            .lock()
            .get(&*k.to_display())
            .cloned()
            .unwrap_or(Value::Null)),
        Value::JProperty(p) if k.to_display() == "Value" => Ok(p.1.clone()),
        Value::Ctx(c) => context::index(m, *c, k),
        Value::Obj(o) => match &**o {
            Obj::Match { .. } | Obj::Group { .. } => regexp::group_index(v, k),
            Obj::Url(u) => Ok(Value::string(
                u.query
                    .iter()
                    .find(|(n, _)| *n == k.to_display())
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            )),
            Obj::MultiMap { map, ignore_case } => {
                let key = k.to_display();
                map.iter()
                    .find(|(n, _)| {
                        if *ignore_case {
                            n.eq_ignore_ascii_case(&key)
                        } else {
                            *n == key
                        }
                    })
                    .map(|(_, vs)| Value::list(vs.iter().map(|x| Value::str(x)).collect()))
                    .map_or_else(
                        || {
                            exception(
                                "KeyNotFoundException",
                                format!("The given key '{key}' was not present in the dictionary."),
                            )
                        },
                        Ok,
                    )
            }
            _ => exception(
                "InvalidOperationException",
                format!("{} cannot be indexed", v.type_name()),
            ),
        },
        _ => exception(
            "InvalidOperationException",
            format!("{} cannot be indexed", v.type_name()),
        ),
    }
}

pub fn index_set(v: &Value, args: &[Value], new: Value) -> EResult<()> {
    let k = arg(args, 0, "indexer")?;
    match v {
        Value::List(l) | Value::JArray(l) => {
            let i = convert::index_of(k)?;
            let mut g = l.lock();
            match g.get_mut(i) {
                Some(slot) => {
                    *slot = new;
                    Ok(())
                }
                None => exception("ArgumentOutOfRangeException", "Index was out of range."),
            }
        }
        Value::Dict(d) => {
            d.lock().insert(Key::from_value(k), new);
            Ok(())
        }
        Value::JObject(o) => {
            o.lock().insert(k.to_display(), json::to_token(new));
            Ok(())
        }
        _ => exception(
            "InvalidOperationException",
            format!("{} cannot be assigned by index", v.type_name()),
        ),
    }
}

pub fn call_method(
    m: &mut Machine,
    v: &Value,
    name: &str,
    targs: &[RType],
    args: &[Value],
    named_args: &[(String, Value)],
    outs: &mut Vec<Value>,
) -> EResult<Value> {
    // Members every object has.
    match name {
        "ToString"
            if args.is_empty()
                || !matches!(
                    v,
                    Value::Int(_)
                        | Value::Long(_)
                        | Value::Double(_)
                        | Value::DateTime(_)
                        | Value::JObject(_)
                        | Value::JArray(_)
                        | Value::Guid(_)
                        | Value::TimeSpan(_)
                        | Value::Byte(_)
                ) =>
        {
            return Ok(Value::string(v.to_display()));
        }
        "Equals" if args.len() == 1 && !matches!(v, Value::Str(_)) => {
            return Ok(Value::Bool(value::equals(v, &args[0])))
        }
        "GetType" => return Ok(Value::str(v.type_name())),
        // JSON scalars are plain values; JToken conversions apply to them too.
        "Value" | "ToObject"
            if matches!(
                v,
                Value::Str(_) | Value::Long(_) | Value::Int(_) | Value::Double(_) | Value::Bool(_)
            ) =>
        {
            return match targs.first() {
                Some(t) => json::convert_to(m, v.clone(), t),
                None => Ok(v.clone()),
            };
        }
        "GetHashCode" => return Ok(Value::Int(v.to_display().len() as i32)),
        _ => {}
    }
    match v {
        Value::Ctx(c) => context::call(m, *c, name, targs, args, named_args, outs),
        Value::Str(s) => string::call(m, s, name, args, named_args, outs),
        Value::Bytes(_) | Value::List(_) if matches!(name, "Encrypt" | "Decrypt") => {
            crypto::cipher(m, v, name, args)
        }
        Value::List(_) | Value::Set(_) | Value::Dict(_) | Value::Bytes(_) => {
            linq::collection_call(m, v, name, targs, args, outs)
        }
        Value::JObject(_) | Value::JArray(_) | Value::JProperty(_) => {
            json::call(m, v, name, targs, args, named_args, outs)
        }
        Value::Long(_)
        | Value::Int(_)
        | Value::Double(_)
        | Value::Bool(_)
        | Value::Byte(_)
        | Value::Char(_)
        | Value::Guid(_)
        | Value::Enum(_) => convert::call_scalar(m, v, name, targs, args),
        Value::DateTime(_) | Value::TimeSpan(_) => time::call(v, name, args),
        Value::Obj(_) => objects::call(m, v, name, targs, args, named_args, outs),
        Value::Lambda(_) if name == "Invoke" => m.call_lambda(v, args),
        Value::Pair(p) if name == "Deconstruct" => {
            outs.push(p.0.clone());
            outs.push(p.1.clone());
            Ok(Value::Null)
        }
        _ => exception(
            "MissingMethodException",
            format!("'{}' does not contain a method '{name}'", v.type_name()),
        ),
    }
}

pub fn call_static(
    m: &mut Machine,
    ty: &RType,
    name: &str,
    targs: &[RType],
    args: &[Value],
    named_args: &[(String, Value)],
    outs: &mut Vec<Value>,
) -> EResult<Value> {
    match ty.ty {
        Ty::XNamespace | Ty::XName => xml::name_static(ty.ty == Ty::XName, name, args),
        Ty::String => string::call_static(m, name, args, named_args),
        Ty::JObject | Ty::JArray | Ty::JToken | Ty::JValue => {
            json::call_static(m, ty, name, targs, args)
        }
        Ty::Static if ty.name == "JsonConvert" => json::call_static(m, ty, name, targs, args),
        Ty::Static if ty.name == "Enumerable" => linq::call_static(m, name, args),
        Ty::DateTime | Ty::DateTimeOffset | Ty::TimeSpan => time::call_static(ty, name, args, outs),
        Ty::Int | Ty::Long | Ty::Double | Ty::Bool | Ty::Char | Ty::Byte | Ty::Guid | Ty::Enum => {
            convert::call_static_parse(ty, name, args, outs)
        }
        Ty::Static if ty.name == "Convert" => convert::call_convert(name, args),
        Ty::XElement | Ty::XDocument if name == "Parse" || name == "Load" => {
            Ok(Value::obj(Obj::Xml(xml::parse(
                &args.first().map(Value::to_display).unwrap_or_default(),
            )?)))
        }
        _ => statics::call_static(m, ty, name, targs, args, named_args, outs),
    }
}

pub fn construct(
    m: &mut Machine,
    ty: &RType,
    args: Vec<Value>,
    init: Option<Initializer>,
) -> EResult<Value> {
    if ty.arrays > 0 {
        // new T[n] or new T[] { ... }
        if let Some(Initializer::Items(items)) = init {
            if ty.ty == Ty::Byte || ty.ty == Ty::Bytes && ty.arrays == 0 {
                return Ok(typed_array(items));
            }
            return Ok(Value::list(items));
        }
        let n = args.first().and_then(Value::as_i64).unwrap_or(0).max(0) as usize;
        m.check_size(n)?;
        return Ok(Value::list(vec![
            default_of(&RType {
                arrays: 0,
                ..ty.clone()
            });
            n
        ]));
    }
    if ty.ty == Ty::Bytes {
        if let Some(Initializer::Items(items)) = init {
            return Ok(Value::Bytes(Arc::new(
                items
                    .iter()
                    .map(|v| v.as_i64().unwrap_or(0) as u8)
                    .collect(),
            )));
        }
        let n = args.first().and_then(Value::as_i64).unwrap_or(0).max(0) as usize;
        m.check_size(n)?;
        return Ok(Value::Bytes(Arc::new(vec![0; n])));
    }
    match ty.ty {
        Ty::List => {
            let mut items = match args.first() {
                Some(src) if !matches!(src, Value::Int(_)) => iterate(m, src)?,
                _ => Vec::new(),
            };
            if let Some(Initializer::Items(i)) = init {
                items.extend(i);
            }
            Ok(Value::list(items))
        }
        Ty::Dictionary => {
            let mut map = indexmap::IndexMap::new();
            if let Some(Value::Dict(src)) = args.first() {
                map = src.lock().clone();
            }
            if let Some(Initializer::Keyed(kv)) = init {
                for (k, v) in kv {
                    map.insert(Key::from_value(&k), v);
                }
            }
            Ok(Value::Dict(shared(map)))
        }
        Ty::HashSet => {
            let mut map = indexmap::IndexMap::new();
            let items = match args.first() {
                Some(src) if !matches!(src, Value::Obj(_)) => iterate(m, src)?,
                _ => Vec::new(),
            };
            let extra = match init {
                Some(Initializer::Items(i)) => i,
                _ => Vec::new(),
            };
            for v in items.into_iter().chain(extra) {
                map.insert(Key::from_value(&v), v);
            }
            Ok(Value::Set(shared(map)))
        }
        Ty::KeyValuePair => Ok(Value::Pair(Arc::new((
            args.first().cloned().unwrap_or(Value::Null),
            args.get(1).cloned().unwrap_or(Value::Null),
        )))),
        Ty::JObject | Ty::JArray | Ty::JValue | Ty::JProperty => json::construct(m, ty, args, init),
        Ty::Object => match init {
            Some(Initializer::Members(ms)) => Ok(Value::JObject(shared(ms.into_iter().collect()))),
            _ => Ok(Value::JObject(shared(super::value::JMap::default()))),
        },
        Ty::String => match (args.first(), args.get(1)) {
            (Some(Value::Char(c)), Some(n)) => {
                let n = n.as_i64().unwrap_or(0).max(0) as usize;
                m.check_size(n)?;
                Ok(Value::string(std::iter::repeat_n(*c, n).collect()))
            }
            (Some(Value::List(l)), _) => Ok(Value::string(
                l.lock().iter().map(Value::to_display).collect(),
            )),
            _ => Ok(Value::str("")),
        },
        Ty::DateTime | Ty::DateTimeOffset | Ty::TimeSpan => time::construct(ty, &args),
        _ => objects::construct(m, ty, args, init),
    }
}

/// Helper for enum constants created at run time.
pub fn enum_val(ty: &'static str, name: &'static str, value: i64) -> Value {
    Value::Enum(EnumVal { ty, name, value })
}
