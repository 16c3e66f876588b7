//! Newtonsoft-style JSON: `JObject`, `JArray`, `JProperty`, `JToken`, `JsonConvert`, with
//! property order preserved. JSON scalars are plain values (string, long, double, bool, null).

use std::sync::Arc;

use super::super::eval::{exception, EResult, Machine};
use super::super::types::{RType, Ty};
use super::super::value::{self, from_json, json_text, shared, EnumVal, Value};
use super::names::Names;
use super::{arg, cast, iterate, Initializer};

/// The names this family implements, registered beside their code: the binder accepts a
/// member, method or static name only when a family registers it (`names.rs` chains them).
pub(super) const NAMES: Names = Names {
    members: &[
        "Count",
        "Keys",
        "Values",
        "Value",
        "Name",
        "Type",
        "First",
        "Last",
        "HasValues",
        "Date",
        "Children",
        "Properties",
    ],
    methods: &[
        "ToString",
        "IndexOf",
        "Insert",
        "Remove",
        "Clear",
        "Add",
        "RemoveAt",
        "ContainsKey",
        "TryGetValue",
        "Property",
        "Properties",
        "SelectToken",
        "SelectTokens",
        "Value",
        "Values",
        "ToObject",
        "Children",
        "AddFirst",
        "DeepClone",
        "Merge",
        "GetValue",
    ],
    static_members: &["None"],
    static_methods: &[
        "Parse",
        "ToString",
        "SerializeObject",
        "DeserializeObject",
        "FromObject",
        "Load",
        "IndexOf",
    ],
};

pub fn token_type(v: &Value) -> EnumVal {
    let name = match v {
        Value::JObject(_) => "Object",
        Value::JArray(_) | Value::List(_) => "Array",
        Value::JProperty(_) => "Property",
        Value::Int(_) | Value::Long(_) => "Integer",
        Value::Double(_) => "Float",
        Value::Str(_) => "String",
        Value::Bool(_) => "Boolean",
        Value::Null => "Null",
        Value::DateTime(_) => "Date",
        Value::Guid(_) => "Guid",
        Value::TimeSpan(_) => "TimeSpan",
        Value::Bytes(_) => "Bytes",
        _ => "Raw",
    };
    super::convert::enum_value("JTokenType", name).unwrap_or(EnumVal {
        ty: "JTokenType",
        name: "None",
        value: 0,
    })
}

/// A value as a JSON token: collections become JArray, dictionaries JObject, ints long.
pub fn to_token(v: Value) -> Value {
    match v {
        Value::Int(i) => Value::Long(i as i64),
        Value::List(_)
        | Value::Set(_)
        | Value::Dict(_)
        | Value::Bytes(_)
        | Value::Guid(_)
        | Value::DateTime(_)
        | Value::TimeSpan(_)
        | Value::Char(_)
        | Value::Byte(_)
        | Value::Pair(_) => from_json(value::to_json(&v)),
        other => other,
    }
}

pub fn parse(text: &str) -> EResult<Value> {
    match value::parse_json(text) {
        Ok(v) => Ok(v),
        Err(e) => exception(
            "JsonReaderException",
            format!("Error reading JToken from JsonReader: {e}"),
        ),
    }
}

pub fn member(v: &Value, name: &str) -> EResult<Value> {
    match (v, name) {
        (Value::JObject(o), "Count") => Ok(Value::Int(o.lock().len() as i32)),
        (Value::JObject(o), "HasValues") => Ok(Value::Bool(!o.lock().is_empty())),
        (Value::JObject(o), "First") => Ok(o.lock().first().map_or(Value::Null, |(k, v)| {
            Value::JProperty(Arc::new((Arc::from(k.as_str()), v.clone())))
        })),
        (Value::JObject(o), "Last") => Ok(o.lock().last().map_or(Value::Null, |(k, v)| {
            Value::JProperty(Arc::new((Arc::from(k.as_str()), v.clone())))
        })),
        (Value::JObject(o), "Keys") => Ok(Value::list(
            o.lock().keys().map(|k| Value::str(k)).collect(),
        )),
        (Value::JObject(o), "Values") => Ok(Value::list(o.lock().values().cloned().collect())),
        (Value::JProperty(p), "Name") => Ok(Value::Str(p.0.clone())),
        (Value::JProperty(p), "Value") => Ok(p.1.clone()),
        (_, "Type") => Ok(Value::Enum(token_type(v))),
        _ => exception(
            "MissingMemberException",
            format!(
                "'{}' does not contain a definition for '{name}'",
                v.type_name()
            ),
        ),
    }
}

/// A small JSONPath: `$.a.b`, `a.b[0]`, `$['a b'].c`, `$.items[*].id`, `..name` (one level).
pub fn select_tokens(root: &Value, path: &str) -> EResult<Vec<Value>> {
    let mut cur = vec![root.clone()];
    let p = path.trim();
    let p = p.strip_prefix('$').unwrap_or(p);
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' if b.get(i + 1) == Some(&b'.') => {
                // Recursive descent for one name.
                let s = i + 2;
                let mut e = s;
                while e < b.len() && b[e] != b'.' && b[e] != b'[' {
                    e += 1;
                }
                let name = &p[s..e];
                let mut out = Vec::new();
                for c in &cur {
                    descend(c, name, &mut out);
                }
                cur = out;
                i = e;
            }
            b'.' => i += 1,
            b'[' => {
                let end = p[i..].find(']').map(|x| x + i).map_or_else(
                    || exception("JsonException", format!("Path '{path}' is not valid")),
                    Ok,
                )?;
                let inner = p[i + 1..end].trim();
                let mut out = Vec::new();
                for c in &cur {
                    if inner == "*" {
                        out.extend(children(c));
                    } else if let Ok(n) = inner.parse::<usize>() {
                        if let Value::JArray(a) | Value::List(a) = c {
                            if let Some(x) = a.lock().get(n) {
                                out.push(x.clone());
                            }
                        }
                    } else {
                        let key = inner.trim_matches(|ch| ch == '\'' || ch == '"');
                        if let Value::JObject(o) = c {
                            if let Some(x) = o.lock().get(key) {
                                out.push(x.clone());
                            }
                        }
                    }
                }
                cur = out;
                i = end + 1;
            }
            _ => {
                let s = i;
                let mut e = s;
                while e < b.len() && b[e] != b'.' && b[e] != b'[' {
                    e += 1;
                }
                let name = &p[s..e];
                let mut out = Vec::new();
                for c in &cur {
                    if name == "*" {
                        out.extend(children(c));
                    } else if let Value::JObject(o) = c {
                        if let Some(x) = o.lock().get(name) {
                            out.push(x.clone());
                        }
                    }
                }
                cur = out;
                i = e;
            }
        }
    }
    Ok(cur)
}

fn children(v: &Value) -> Vec<Value> {
    match v {
        Value::JObject(o) => o.lock().values().cloned().collect(),
        Value::JArray(a) | Value::List(a) => a.lock().clone(),
        _ => Vec::new(),
    }
}

fn descend(v: &Value, name: &str, out: &mut Vec<Value>) {
    if let Value::JObject(o) = v {
        if let Some(x) = o.lock().get(name) {
            out.push(x.clone());
        }
    }
    for c in children(v) {
        descend(&c, name, out);
    }
}

fn deep_clone(v: &Value) -> Value {
    from_json(value::to_json(v))
}

pub fn call(
    m: &mut Machine,
    v: &Value,
    name: &str,
    targs: &[RType],
    args: &[Value],
    named_args: &[(String, Value)],
    outs: &mut Vec<Value>,
) -> EResult<Value> {
    let _ = named_args;
    match name {
        "ToString" => {
            let indented = !matches!(args.first(), Some(Value::Enum(e)) if e.name == "None");
            return Ok(Value::string(json_text(v, indented)));
        }
        "DeepClone" => return Ok(deep_clone(v)),
        "SelectToken" => {
            let path = arg(args, 0, name)?.to_display();
            let r = select_tokens(v, &path)?;
            if r.len() > 1 {
                return exception("JsonException", "Path returned multiple tokens.");
            }
            return Ok(r.into_iter().next().unwrap_or(Value::Null));
        }
        "SelectTokens" => {
            let path = arg(args, 0, name)?.to_display();
            return Ok(Value::list(select_tokens(v, &path)?));
        }
        "Value" => {
            // token.Value<T>() or obj.Value<T>("key")
            let x = match args.first() {
                Some(k) => super::index_get(m, v, std::slice::from_ref(k))?,
                None => v.clone(),
            };
            return match targs.first() {
                Some(t) => convert_to(m, x, t),
                None => Ok(x),
            };
        }
        "ToObject" => {
            return match targs.first() {
                Some(t) => convert_to(m, v.clone(), t),
                None => Ok(v.clone()),
            }
        }
        "Children" => return Ok(Value::list(iterate(m, v)?)),
        "Values" => {
            let items = children(v);
            return match targs.first() {
                Some(t) => Ok(Value::list(
                    items
                        .into_iter()
                        .map(|x| convert_to(m, x, t))
                        .collect::<EResult<Vec<_>>>()?,
                )),
                None => Ok(Value::list(items)),
            };
        }
        _ => {}
    }
    match v {
        Value::JObject(o) => Ok(match name {
            "Property" => {
                let k = arg(args, 0, name)?.to_display();
                o.lock().get(&*k).map_or(Value::Null, |x| {
                    Value::JProperty(Arc::new((Arc::from(k.as_str()), x.clone())))
                })
            }
            "Properties" => Value::list(
                o.lock()
                    .iter()
                    .map(|(k, x)| Value::JProperty(Arc::new((Arc::from(k.as_str()), x.clone()))))
                    .collect(),
            ),
            "Add" => {
                match args {
                    [Value::JProperty(p)] => {
                        if o.lock().contains_key(&*p.0) {
                            return exception("ArgumentException", format!("Can not add property {} to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object.", p.0));
                        }
                        o.lock().insert(p.0.to_string(), p.1.clone());
                    }
                    [k, x] => {
                        let k = k.to_display();
                        if o.lock().contains_key(&k) {
                            return exception("ArgumentException", format!("Can not add property {k} to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object."));
                        }
                        o.lock().insert(k, to_token(x.clone()));
                    }
                    _ => {
                        return exception(
                            "ArgumentException",
                            "JObject.Add needs a JProperty or a name and a value",
                        )
                    }
                }
                Value::Null
            }
            "AddFirst" => {
                if let [Value::JProperty(p)] = args {
                    o.lock().shift_insert(0, p.0.to_string(), p.1.clone());
                }
                Value::Null
            }
            "Remove" => Value::Bool(
                o.lock()
                    .shift_remove(&*arg(args, 0, name)?.to_display())
                    .is_some(),
            ),
            "ContainsKey" => Value::Bool(o.lock().contains_key(&*arg(args, 0, name)?.to_display())),
            "TryGetValue" => match o.lock().get(&*arg(args, 0, name)?.to_display()) {
                Some(x) => {
                    outs.push(x.clone());
                    Value::Bool(true)
                }
                None => {
                    outs.push(Value::Null);
                    Value::Bool(false)
                }
            },
            "GetValue" => o
                .lock()
                .get(&*arg(args, 0, name)?.to_display())
                .cloned()
                .unwrap_or(Value::Null),
            "Merge" => {
                if let Some(Value::JObject(other)) = args.first() {
                    let other = other.lock().clone();
                    let mut g = o.lock();
                    for (k, x) in other {
                        g.insert(k, x);
                    }
                }
                Value::Null
            }
            "Count" => Value::Int(o.lock().len() as i32),
            _ if super::linq::is_linq(name) => {
                let props = Value::list(iterate(m, v)?);
                return super::linq::call(m, &props, name, targs, args);
            }
            _ => {
                return exception(
                    "MissingMethodException",
                    format!("'JObject' does not contain a method '{name}'"),
                )
            }
        }),
        Value::JArray(a) => Ok(match name {
            "Add" => {
                a.lock().push(to_token(arg(args, 0, name)?.clone()));
                Value::Null
            }
            "AddFirst" => {
                a.lock().insert(0, to_token(arg(args, 0, name)?.clone()));
                Value::Null
            }
            "Insert" => {
                let i = arg(args, 0, name)?.as_i64().unwrap_or(0) as usize;
                let mut g = a.lock();
                if i > g.len() {
                    return exception("ArgumentOutOfRangeException", "Index is out of range.");
                }
                g.insert(i, to_token(arg(args, 1, name)?.clone()));
                Value::Null
            }
            "Remove" => {
                let x = arg(args, 0, name)?;
                let mut g = a.lock();
                match g.iter().position(|y| value::equals(x, y)) {
                    Some(i) => {
                        g.remove(i);
                        Value::Bool(true)
                    }
                    None => Value::Bool(false),
                }
            }
            "RemoveAt" => {
                let i = arg(args, 0, name)?.as_i64().unwrap_or(-1);
                let mut g = a.lock();
                match usize::try_from(i).ok().filter(|i| *i < g.len()) {
                    Some(i) => {
                        g.remove(i);
                        Value::Null
                    }
                    None => {
                        return exception("ArgumentOutOfRangeException", "Index is out of range.")
                    }
                }
            }
            "Clear" => {
                a.lock().clear();
                Value::Null
            }
            "IndexOf" => Value::Int(
                a.lock()
                    .iter()
                    .position(|y| value::equals(arg(args, 0, name).unwrap_or(&Value::Null), y))
                    .map_or(-1, |i| i as i32),
            ),
            _ => return super::linq::call(m, v, name, targs, args),
        }),
        Value::JProperty(p) => match name {
            "Remove" => exception(
                "InvalidOperationException",
                format!("Use obj.Remove(\"{}\") to remove a property", p.0),
            ),
            _ => exception(
                "MissingMethodException",
                format!("'JProperty' does not contain a method '{name}'"),
            ),
        },
        _ => exception(
            "MissingMethodException",
            format!("'{}' does not contain a method '{name}'", v.type_name()),
        ),
    }
}

/// `token.Value<T>()` / `ToObject<T>()`: convert a token to a .NET type.
pub fn convert_to(m: &mut Machine, v: Value, t: &RType) -> EResult<Value> {
    if v.is_null() {
        return Ok(super::default_of(&RType {
            nullable: true,
            ..t.clone()
        }));
    }
    match t.ty {
        Ty::String => Ok(match v {
            Value::JObject(_) | Value::JArray(_) => Value::string(json_text(&v, true)),
            Value::Str(_) => v,
            other => Value::string(other.to_display()),
        }),
        Ty::Int => Ok(Value::Int(super::to_i64(&v)? as i32)),
        Ty::Long => Ok(Value::Long(super::to_i64(&v)?)),
        Ty::Double => Ok(Value::Double(super::to_f64(&v)?)),
        Ty::Bool => Ok(Value::Bool(super::to_bool(&v)?)),
        Ty::Dictionary => match v {
            Value::JObject(o) => Ok(Value::Dict(shared(
                o.lock()
                    .iter()
                    .map(|(k, x)| (value::Key::Str(Arc::from(k.as_str())), x.clone()))
                    .collect(),
            ))),
            _ => cast(m, v, t),
        },
        Ty::List if t.arrays == 0 => Ok(Value::list(iterate(m, &v)?)),
        _ if t.arrays > 0 => Ok(Value::list(iterate(m, &v)?)),
        _ => cast(m, v, t),
    }
}

pub fn call_static(
    m: &mut Machine,
    ty: &RType,
    name: &str,
    targs: &[RType],
    args: &[Value],
) -> EResult<Value> {
    let a0 = || arg(args, 0, name);
    match (ty.name.as_str(), name) {
        (_, "Parse" | "Load") => {
            let v = parse(&a0()?.to_display())?;
            match (ty.ty, &v) {
                (Ty::JObject, Value::JObject(_))
                | (Ty::JArray, Value::JArray(_))
                | (Ty::JToken | Ty::JValue, _) => Ok(v),
                (Ty::JObject, _) => exception(
                    "JsonReaderException",
                    "Error reading JObject from JsonReader: the JSON is not an object.",
                ),
                _ => exception(
                    "JsonReaderException",
                    "Error reading JArray from JsonReader: the JSON is not an array.",
                ),
            }
        }
        (_, "FromObject") => {
            let v = to_token(a0()?.clone());
            match v {
                Value::JObject(_) | Value::JArray(_) => Ok(deep_clone(&v)),
                other => Ok(other),
            }
        }
        ("JsonConvert", "SerializeObject") => {
            let indented = args
                .iter()
                .skip(1)
                .any(|a| matches!(a, Value::Enum(e) if e.name == "Indented"));
            Ok(Value::string(json_text(a0()?, indented)))
        }
        ("JsonConvert", "DeserializeObject") => {
            let v = parse(&a0()?.to_display())?;
            match targs.first() {
                Some(t) => convert_to(m, v, t),
                None => Ok(v),
            }
        }
        _ => exception(
            "MissingMethodException",
            format!("{}.{name} is not supported", ty.name),
        ),
    }
}

pub fn construct(
    m: &mut Machine,
    ty: &RType,
    args: Vec<Value>,
    init: Option<Initializer>,
) -> EResult<Value> {
    match ty.ty {
        Ty::JObject => {
            let mut map = value::JMap::default();
            let mut add = |x: Value, m: &mut Machine| -> EResult<()> {
                match x {
                    Value::JProperty(p) => {
                        map.insert(p.0.to_string(), p.1.clone());
                    }
                    Value::JObject(o) => {
                        for (k, v) in o.lock().iter() {
                            map.insert(k.clone(), v.clone());
                        }
                    }
                    Value::List(_) => {
                        for y in iterate(m, &x)? {
                            if let Value::JProperty(p) = y {
                                map.insert(p.0.to_string(), p.1.clone());
                            }
                        }
                    }
                    Value::Null => {}
                    other => {
                        return exception(
                            "ArgumentException",
                            format!("Can not add {} to JObject.", other.type_name()),
                        )
                    }
                }
                Ok(())
            };
            for a in args {
                add(a, m)?;
            }
            match init {
                Some(Initializer::Keyed(kv)) => {
                    for (k, v) in kv {
                        map.insert(k.to_display(), to_token(v));
                    }
                }
                Some(Initializer::Items(items)) => {
                    for x in items {
                        add(x, m)?;
                    }
                }
                Some(Initializer::Members(ms)) => {
                    for (k, v) in ms {
                        map.insert(k, to_token(v));
                    }
                }
                None => {}
            }
            Ok(Value::JObject(shared(map)))
        }
        Ty::JArray => {
            let mut items = Vec::new();
            for a in args {
                match a {
                    Value::List(_) | Value::JArray(_) | Value::Set(_) => {
                        items.extend(iterate(m, &a)?.into_iter().map(to_token))
                    }
                    other => items.push(to_token(other)),
                }
            }
            if let Some(Initializer::Items(extra)) = init {
                items.extend(extra.into_iter().map(to_token));
            }
            Ok(Value::JArray(shared(items)))
        }
        Ty::JProperty => {
            let name = args.first().map(Value::to_display).unwrap_or_default();
            let v = match &args[1.min(args.len())..] {
                [] => Value::Null,
                [one] => to_token(one.clone()),
                many => Value::JArray(shared(many.iter().cloned().map(to_token).collect())),
            };
            Ok(Value::JProperty(Arc::new((Arc::from(name.as_str()), v))))
        }
        _ => Ok(to_token(args.into_iter().next().unwrap_or(Value::Null))),
    }
}
