//! `string` members and statics, and the APIM helpers on strings (`AsJwt`, `AsBasic`).

use std::sync::Arc;

use base64::Engine as _;

use super::super::eval::{exception, EResult, Machine};
use super::super::value::{Jwt, Obj, Value};
use super::names::Names;
use super::{arg, format_value, iterate, named};

/// The names this family implements, registered beside their code: the binder accepts a
/// member, method or static name only when a family registers it (`names.rs` chains them).
pub(super) const NAMES: Names = Names {
    members: &[],
    methods: &[
        "ToString",
        "Equals",
        "CompareTo",
        "Contains",
        "StartsWith",
        "EndsWith",
        "IndexOf",
        "LastIndexOf",
        "IndexOfAny",
        "Substring",
        "Replace",
        "Split",
        "Trim",
        "TrimStart",
        "TrimEnd",
        "ToLower",
        "ToUpper",
        "ToLowerInvariant",
        "ToUpperInvariant",
        "PadLeft",
        "PadRight",
        "Insert",
        "Remove",
        "ToCharArray",
        "Normalize",
        "Clone",
        "AsJwt",
        "TryParseJwt",
        "AsBasic",
        "TryParseBasic",
    ],
    static_members: &[],
    static_methods: &[
        "IsNullOrEmpty",
        "IsNullOrWhiteSpace",
        "Format",
        "Join",
        "Concat",
        "Compare",
        "CompareOrdinal",
        "Equals",
        "Copy",
        "ToString",
        "Replace",
        "Split",
        "IndexOf",
    ],
};

/// Comparison mode from a `StringComparison` argument (true = ignore case).
fn ignore_case(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Enum(e)) => e.name.ends_with("IgnoreCase"),
        Some(Value::Bool(b)) => *b,
        Some(Value::Obj(o)) => matches!(&**o, Obj::Comparer { ignore_case: true }),
        _ => false,
    }
}

fn eq(a: &str, b: &str, ic: bool) -> bool {
    if ic {
        a.to_lowercase() == b.to_lowercase()
    } else {
        a == b
    }
}

/// UTF-16 index of a byte offset (C# indexes strings in UTF-16 units).
fn utf16_index(s: &str, byte: usize) -> i32 {
    s[..byte].encode_utf16().count() as i32
}

/// Byte offset of a UTF-16 index.
fn byte_of(s: &str, idx: usize) -> Option<usize> {
    let mut units = 0;
    for (b, c) in s.char_indices() {
        if units == idx {
            return Some(b);
        }
        units += c.len_utf16();
    }
    (units == idx).then_some(s.len())
}

fn find(hay: &str, needle: &str, ic: bool) -> Option<usize> {
    if ic {
        hay.to_lowercase().find(&needle.to_lowercase())
    } else {
        hay.find(needle)
    }
}

fn split_seps(args: &[Value]) -> (Vec<String>, Option<usize>, bool, bool) {
    let mut seps = Vec::new();
    let mut count = None;
    let mut remove_empty = false;
    let mut trim = false;
    for a in args {
        match a {
            Value::Char(c) => seps.push(c.to_string()),
            Value::Str(s) => seps.push(s.to_string()),
            Value::List(l) => seps.extend(l.lock().iter().map(Value::to_display)),
            Value::Enum(e) if e.ty == "StringSplitOptions" => {
                remove_empty |= e.value & 1 == 1;
                trim |= e.value & 2 == 2;
            }
            Value::Int(n) => count = Some(*n as usize),
            _ => {}
        }
    }
    (seps, count, remove_empty, trim)
}

pub fn split(s: &str, args: &[Value]) -> Value {
    let (seps, count, remove_empty, trim) = split_seps(args);
    let mut parts: Vec<String> = Vec::new();
    if seps.is_empty() || seps.iter().all(|x| x.is_empty()) {
        parts = s.split(char::is_whitespace).map(str::to_string).collect();
    } else {
        let mut rest = s;
        loop {
            if count.is_some_and(|c| parts.len() + 1 >= c) {
                parts.push(rest.to_string());
                break;
            }
            let next = seps
                .iter()
                .filter(|x| !x.is_empty())
                .filter_map(|x| rest.find(x.as_str()).map(|i| (i, x.len())))
                .min();
            match next {
                Some((i, len)) => {
                    parts.push(rest[..i].to_string());
                    rest = &rest[i + len..];
                }
                None => {
                    parts.push(rest.to_string());
                    break;
                }
            }
        }
    }
    let parts = parts
        .into_iter()
        .map(|p| if trim { p.trim().to_string() } else { p })
        .filter(|p| !(remove_empty && p.is_empty()));
    Value::list(parts.map(Value::string).collect())
}

fn trim_chars(args: &[Value]) -> Vec<char> {
    let mut out = Vec::new();
    for a in args {
        match a {
            Value::Char(c) => out.push(*c),
            Value::Str(s) => out.extend(s.chars()),
            Value::List(l) => out.extend(l.lock().iter().filter_map(|v| {
                if let Value::Char(c) = v {
                    Some(*c)
                } else {
                    None
                }
            })),
            _ => {}
        }
    }
    out
}

pub fn call(
    m: &mut Machine,
    s: &Arc<str>,
    name: &str,
    args: &[Value],
    named_args: &[(String, Value)],
    outs: &mut Vec<Value>,
) -> EResult<Value> {
    let a0 = || arg(args, 0, name);
    let sv = |x: String| Value::string(x);
    Ok(match name {
        "Contains" => {
            let n = a0()?.to_display();
            Value::Bool(find(s, &n, ignore_case(args.get(1))).is_some())
        }
        "StartsWith" => {
            let n = a0()?.to_display();
            Value::Bool(if ignore_case(args.get(1)) {
                s.to_lowercase().starts_with(&n.to_lowercase())
            } else {
                s.starts_with(&*n)
            })
        }
        "EndsWith" => {
            let n = a0()?.to_display();
            Value::Bool(if ignore_case(args.get(1)) {
                s.to_lowercase().ends_with(&n.to_lowercase())
            } else {
                s.ends_with(&*n)
            })
        }
        "Equals" => {
            let o = a0()?;
            Value::Bool(match o {
                Value::Str(o) => eq(s, o, ignore_case(args.get(1))),
                _ => false,
            })
        }
        "CompareTo" => Value::Int(s.as_ref().cmp(&*a0()?.to_display()) as i32),
        "IndexOf" | "LastIndexOf" => {
            let n = a0()?.to_display();
            let start = args.get(1).and_then(Value::as_i64).map(|x| x as usize);
            let ic = ignore_case(args.iter().skip(1).find(|a| matches!(a, Value::Enum(_))));
            let r = if name == "IndexOf" {
                let from = start.and_then(|i| byte_of(s, i)).unwrap_or(0);
                find(&s[from..], &n, ic).map(|i| i + from)
            } else if ic {
                s.to_lowercase().rfind(&n.to_lowercase())
            } else {
                s.rfind(&*n)
            };
            Value::Int(r.map_or(-1, |b| utf16_index(s, b)))
        }
        "IndexOfAny" => {
            let cs = trim_chars(&args[..1.min(args.len())]);
            Value::Int(
                s.find(|c| cs.contains(&c))
                    .map_or(-1, |b| utf16_index(s, b)),
            )
        }
        "Substring" => {
            let start = a0()?.as_i64().unwrap_or(0);
            let len16 = s.encode_utf16().count() as i64;
            let len = args.get(1).and_then(Value::as_i64).unwrap_or(len16 - start);
            if start < 0 || len < 0 || start + len > len16 {
                return exception(
                    "ArgumentOutOfRangeException",
                    "startIndex or length is outside the string.",
                );
            }
            let (b0, b1) = (
                byte_of(s, start as usize).unwrap_or(0),
                byte_of(s, (start + len) as usize).unwrap_or(s.len()),
            );
            sv(s[b0..b1].to_string())
        }
        "Replace" => {
            let from = a0()?.to_display();
            let to = args.get(1).map(Value::to_display).unwrap_or_default();
            if from.is_empty() {
                return exception("ArgumentException", "String cannot be of zero length.");
            }
            let r = s.replace(&*from, &to);
            m.check_size(r.len())?;
            sv(r)
        }
        "Split" => split(s, args),
        "Trim" | "TrimStart" | "TrimEnd" => {
            let cs = trim_chars(args);
            let f = |c: char| {
                if cs.is_empty() {
                    c.is_whitespace()
                } else {
                    cs.contains(&c)
                }
            };
            sv(match name {
                "Trim" => s.trim_matches(f),
                "TrimStart" => s.trim_start_matches(f),
                _ => s.trim_end_matches(f),
            }
            .to_string())
        }
        "ToLower" | "ToLowerInvariant" => sv(s.to_lowercase()),
        "ToUpper" | "ToUpperInvariant" => sv(s.to_uppercase()),
        "PadLeft" | "PadRight" => {
            let w = a0()?.as_i64().unwrap_or(0).max(0) as usize;
            m.check_size(w)?;
            let c = match args.get(1) {
                Some(Value::Char(c)) => *c,
                _ => ' ',
            };
            let len = s.encode_utf16().count();
            let pad: String = std::iter::repeat_n(c, w.saturating_sub(len)).collect();
            sv(if name == "PadLeft" {
                format!("{pad}{s}")
            } else {
                format!("{s}{pad}")
            })
        }
        "Insert" => {
            let i = byte_of(s, a0()?.as_i64().unwrap_or(0) as usize).map_or_else(
                || exception("ArgumentOutOfRangeException", "startIndex"),
                Ok,
            )?;
            let ins = args.get(1).map(Value::to_display).unwrap_or_default();
            sv(format!("{}{ins}{}", &s[..i], &s[i..]))
        }
        "Remove" => {
            let start = byte_of(s, a0()?.as_i64().unwrap_or(0) as usize).map_or_else(
                || exception("ArgumentOutOfRangeException", "startIndex"),
                Ok,
            )?;
            let end = match args.get(1).and_then(Value::as_i64) {
                Some(n) => byte_of(s, utf16_index(s, start) as usize + n as usize)
                    .map_or_else(|| exception("ArgumentOutOfRangeException", "count"), Ok)?,
                None => s.len(),
            };
            sv(format!("{}{}", &s[..start], &s[end..]))
        }
        "ToCharArray" => Value::list(s.chars().map(Value::Char).collect()),
        "Normalize" | "Clone" | "ToString" => Value::Str(s.clone()),
        "AsJwt" => parse_jwt(s).map_or(Value::Null, |j| Value::obj(Obj::Jwt(j))),
        "TryParseJwt" => match parse_jwt(s) {
            Some(j) => {
                outs.push(Value::obj(Obj::Jwt(j)));
                Value::Bool(true)
            }
            None => {
                outs.push(Value::Null);
                Value::Bool(false)
            }
        },
        "AsBasic" => parse_basic(s).unwrap_or(Value::Null),
        "TryParseBasic" => match parse_basic(s) {
            Some(b) => {
                outs.push(b);
                Value::Bool(true)
            }
            None => {
                outs.push(Value::Null);
                Value::Bool(false)
            }
        },
        _ if super::linq::is_linq(name) => {
            let v = Value::list(s.chars().map(Value::Char).collect());
            return super::linq::call(m, &v, name, &[], args);
        }
        _ => {
            let _ = named_args;
            return exception(
                "MissingMethodException",
                format!("'string' does not contain a method '{name}'"),
            );
        }
    })
}

/// Parse a JWT without validating it (`AsJwt`): `Bearer ` is tolerated; null if malformed.
pub fn parse_jwt(s: &str) -> Option<Jwt> {
    let t = s.trim();
    let t = t
        .strip_prefix("Bearer ")
        .or_else(|| t.strip_prefix("bearer "))
        .unwrap_or(t)
        .trim();
    let mut it = t.split('.');
    let (h, p) = (it.next()?, it.next()?);
    let _sig = it.next()?;
    if it.next().is_some() {
        return None;
    }
    let dec = |x: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(x.trim_end_matches('='))
            .ok()
    };
    let header: serde_json::Value = serde_json::from_slice(&dec(h)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&dec(p)?).ok()?;
    Some(Jwt {
        header: header.as_object()?.clone(),
        claims: claims.as_object()?.clone(),
        raw: t.to_string(),
    })
}

fn parse_basic(s: &str) -> Option<Value> {
    let t = s.trim();
    let b64 = t
        .strip_prefix("Basic ")
        .or_else(|| t.strip_prefix("basic "))
        .unwrap_or(t)
        .trim();
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Value::obj(Obj::Basic {
        user: user.to_string(),
        password: password.to_string(),
    }))
}

/// `string.Format("{0} {1:D3}", a, b)`
pub fn format(fmt: &str, args: &[Value]) -> EResult<String> {
    let mut out = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' if chars.get(i + 1) == Some(&'{') => {
                out.push('{');
                i += 2;
            }
            '}' if chars.get(i + 1) == Some(&'}') => {
                out.push('}');
                i += 2;
            }
            '{' => {
                let end = chars[i..]
                    .iter()
                    .position(|c| *c == '}')
                    .map(|p| p + i)
                    .map_or_else(
                        || {
                            exception(
                                "FormatException",
                                "Input string was not in a correct format.",
                            )
                        },
                        Ok,
                    )?;
                let spec: String = chars[i + 1..end].iter().collect();
                let (idx, f) = match spec.find([':', ',']) {
                    Some(p) => (&spec[..p], &spec[p..]),
                    None => (spec.as_str(), ""),
                };
                let n: usize = idx.trim().parse().or_else(|_| {
                    exception(
                        "FormatException",
                        "Input string was not in a correct format.",
                    )
                })?;
                let v = args.get(n).map_or_else(|| exception("FormatException", "Index (zero based) must be greater than or equal to zero and less than the size of the argument list."), Ok)?;
                let f = f.strip_prefix(':').unwrap_or(f);
                out.push_str(&format_value(v, f)?);
                i = end + 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

pub fn call_static(
    m: &mut Machine,
    name: &str,
    args: &[Value],
    named_args: &[(String, Value)],
) -> EResult<Value> {
    let _ = named(named_args, "");
    Ok(match name {
        "IsNullOrEmpty" => Value::Bool(match args.first() {
            None | Some(Value::Null) => true,
            Some(v) => v.to_display().is_empty(),
        }),
        "IsNullOrWhiteSpace" => Value::Bool(match args.first() {
            None | Some(Value::Null) => true,
            Some(v) => v.to_display().trim().is_empty(),
        }),
        "Format" => {
            let fmt = arg(args, 0, "string.Format")?.to_display();
            let rest: Vec<Value> = match args.get(1) {
                Some(Value::List(l)) if args.len() == 2 => l.lock().clone(),
                _ => args[1..].to_vec(),
            };
            let s = format(&fmt, &rest)?;
            m.check_size(s.len())?;
            Value::string(s)
        }
        "Join" => {
            let sep = arg(args, 0, "string.Join")?.to_display();
            let items: Vec<Value> = if args.len() == 2 && !matches!(args[1], Value::Str(_)) {
                iterate(m, &args[1])?
            } else {
                args[1..].to_vec()
            };
            let s = items
                .iter()
                .map(Value::to_display)
                .collect::<Vec<_>>()
                .join(&sep);
            m.check_size(s.len())?;
            Value::string(s)
        }
        "Concat" => {
            let items: Vec<Value> = if args.len() == 1 && matches!(args[0], Value::List(_)) {
                iterate(m, &args[0])?
            } else {
                args.to_vec()
            };
            Value::string(items.iter().map(Value::to_display).collect())
        }
        "Compare" | "CompareOrdinal" => {
            let (a, b) = (
                arg(args, 0, "string.Compare")?,
                arg(args, 1, "string.Compare")?,
            );
            let ic = ignore_case(args.get(2));
            let (a, b) = if ic {
                (a.to_display().to_lowercase(), b.to_display().to_lowercase())
            } else {
                (a.to_display(), b.to_display())
            };
            Value::Int(a.cmp(&b) as i32)
        }
        "Equals" => {
            let (a, b) = (
                arg(args, 0, "string.Equals")?,
                arg(args, 1, "string.Equals")?,
            );
            Value::Bool(match (a, b) {
                (Value::Null, Value::Null) => true,
                (Value::Null, _) | (_, Value::Null) => false,
                _ => eq(&a.to_display(), &b.to_display(), ignore_case(args.get(2))),
            })
        }
        "Copy" => Value::string(arg(args, 0, "string.Copy")?.to_display()),
        _ => {
            return exception(
                "MissingMethodException",
                format!("string.{name} is not supported"),
            )
        }
    })
}
