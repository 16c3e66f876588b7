//! Numbers, booleans, GUIDs and enums: parsing, `Convert.*`, and .NET format strings.

use std::sync::Arc;

use base64::Engine as _;

use super::super::eval::{exception, EResult, Machine};
use super::super::types::{RType, Ty};
use super::super::value::{self, format_double, EnumVal, Value};
use super::names::Names;

/// The names this family implements, registered beside their code: the binder accepts a
/// member, method or static name only when a family registers it (`names.rs` chains them).
pub(super) const NAMES: Names = Names {
    members: &[
        "Scheme",
        "Path",
        "Query",
        "Authority",
        "DayOfWeek",
        "Date",
        "AddressFamily",
    ],
    methods: &[
        "ToByteArray",
        "ToString",
        "Equals",
        "CompareTo",
        "Property",
        "HasFlag",
    ],
    static_members: &[
        "Empty",
        "OrdinalIgnoreCase",
        "Ordinal",
        "InvariantCulture",
        "InvariantCultureIgnoreCase",
        "CurrentCulture",
        "CurrentCultureIgnoreCase",
        "Any",
        "None",
    ],
    static_methods: &[
        "Equals",
        "Parse",
        "TryParse",
        "ParseExact",
        "TryParseExact",
        "FromBase64String",
        "ToBase64String",
        "ToInt32",
        "ToInt64",
        "ToInt16",
        "ToBoolean",
        "ToDouble",
        "ToDecimal",
        "ToString",
        "ToChar",
        "ToByte",
        "ToSingle",
        "ToDateTime",
        "ToHexString",
        "FromHexString",
        "ChangeType",
        "NewGuid",
        "Empty",
        "ToUInt32",
        "ToUInt64",
        "ToSByte",
        "ToUInt16",
        "IsNaN",
        "IsInfinity",
    ],
};

pub fn to_string_arg(v: &Value) -> String {
    v.to_display()
}

pub fn to_i64(v: &Value) -> EResult<i64> {
    match v {
        Value::Str(s) => s.trim().parse().or_else(|_| {
            exception(
                "FormatException",
                format!("Input string '{s}' was not in a correct format."),
            )
        }),
        Value::Double(d) => Ok(d.round() as i64),
        Value::Bool(b) => Ok(*b as i64),
        Value::Null => Ok(0),
        _ => v.as_i64().map_or_else(
            || {
                exception(
                    "InvalidCastException",
                    format!("cannot convert {} to a number", v.type_name()),
                )
            },
            Ok,
        ),
    }
}

pub fn to_f64(v: &Value) -> EResult<f64> {
    match v {
        Value::Str(s) => s.trim().parse().or_else(|_| {
            exception(
                "FormatException",
                format!("Input string '{s}' was not in a correct format."),
            )
        }),
        Value::Bool(b) => Ok(*b as i64 as f64),
        Value::Null => Ok(0.0),
        _ => v.as_f64().map_or_else(
            || {
                exception(
                    "InvalidCastException",
                    format!("cannot convert {} to a number", v.type_name()),
                )
            },
            Ok,
        ),
    }
}

pub fn to_bool(v: &Value) -> EResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => exception(
                "FormatException",
                format!("String '{s}' was not recognized as a valid Boolean."),
            ),
        },
        Value::Null => Ok(false),
        _ => v.as_f64().map(|d| d != 0.0).map_or_else(
            || {
                exception(
                    "InvalidCastException",
                    format!("cannot convert {} to bool", v.type_name()),
                )
            },
            Ok,
        ),
    }
}

pub fn index_of(v: &Value) -> EResult<usize> {
    match v.as_i64() {
        Some(i) if i >= 0 => Ok(i as usize),
        Some(_) => exception("ArgumentOutOfRangeException", "Index was out of range."),
        None => exception(
            "InvalidCastException",
            format!("an index must be an integer, found {}", v.type_name()),
        ),
    }
}

/// Enum constants by type and name.
pub fn enum_value(ty: &str, name: &str) -> Option<EnumVal> {
    const ENUMS: &[(&str, &[&str])] = &[
        (
            "StringComparison",
            &[
                "CurrentCulture",
                "CurrentCultureIgnoreCase",
                "InvariantCulture",
                "InvariantCultureIgnoreCase",
                "Ordinal",
                "OrdinalIgnoreCase",
            ],
        ),
        (
            "StringSplitOptions",
            &["None", "RemoveEmptyEntries", "TrimEntries"],
        ),
        ("Formatting", &["None", "Indented"]),
        ("DateTimeKind", &["Unspecified", "Utc", "Local"]),
        (
            "DayOfWeek",
            &[
                "Sunday",
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
            ],
        ),
        (
            "RegexOptions",
            &[
                "None",
                "IgnoreCase",
                "Multiline",
                "ExplicitCapture",
                "Compiled",
                "Singleline",
                "IgnorePatternWhitespace",
                "RightToLeft",
                "ECMAScript",
                "CultureInvariant",
            ],
        ),
        (
            "MidpointRounding",
            &[
                "ToEven",
                "AwayFromZero",
                "ToZero",
                "ToNegativeInfinity",
                "ToPositiveInfinity",
            ],
        ),
        ("UriPartial", &["Scheme", "Authority", "Path", "Query"]),
        (
            "JTokenType",
            &[
                "None",
                "Object",
                "Array",
                "Constructor",
                "Property",
                "Comment",
                "Integer",
                "Float",
                "String",
                "Boolean",
                "Null",
                "Undefined",
                "Date",
                "Raw",
                "Bytes",
                "Guid",
                "Uri",
                "TimeSpan",
            ],
        ),
        (
            "AddressFamily",
            &["Unspecified", "InterNetwork", "InterNetworkV6"],
        ),
        (
            "DateTimeStyles",
            &[
                "None",
                "AdjustToUniversal",
                "AssumeUniversal",
                "AssumeLocal",
                "RoundtripKind",
            ],
        ),
        (
            "NumberStyles",
            &[
                "None",
                "Integer",
                "Number",
                "Float",
                "Any",
                "HexNumber",
                "AllowHexSpecifier",
            ],
        ),
    ];
    let (tyname, names) = ENUMS.iter().find(|(t, _)| *t == ty)?;
    let idx = names.iter().position(|n| *n == name)?;
    let value = match (ty, name) {
        // RegexOptions are flags.
        ("RegexOptions", _) => {
            if idx == 0 {
                0
            } else {
                1 << (idx - 1)
            }
        }
        ("AddressFamily", "InterNetwork") => 2,
        ("AddressFamily", "InterNetworkV6") => 23,
        _ => idx as i64,
    };
    Some(EnumVal {
        ty: tyname,
        name: names[idx],
        value,
    })
}

/// Apply a .NET format string (`D3`, `N2`, `F1`, `X`, `0.00`, date formats) to a value.
pub fn format_value(v: &Value, fmt: &str) -> EResult<String> {
    if fmt.is_empty() {
        return Ok(v.to_display());
    }
    // Alignment ",n" is accepted in interpolation holes and string.Format.
    let (align, fmt) = match fmt.split_once(':') {
        Some((a, f)) if a.starts_with(',') => (a[1..].trim().parse::<i32>().ok(), f),
        _ if fmt.starts_with(',') => (fmt[1..].trim().parse::<i32>().ok(), ""),
        _ => (None, fmt),
    };
    let align = align.map(|a| a.clamp(-MAX_ALIGN, MAX_ALIGN));
    let s = match v {
        Value::DateTime(d) => d.format(fmt),
        Value::TimeSpan(t) => super::super::datetime::format_timespan(*t),
        Value::Int(_) | Value::Long(_) | Value::Byte(_) => format_int(v.as_i64().unwrap_or(0), fmt),
        Value::Double(d) => format_float(*d, fmt),
        Value::Guid(g) => {
            let d = value::format_guid(*g);
            match fmt {
                "N" | "n" => d.replace('-', ""),
                "B" | "b" => format!("{{{d}}}"),
                "P" | "p" => format!("({d})"),
                _ => d,
            }
        }
        _ => v.to_display(),
    };
    Ok(match align {
        Some(a) if a > 0 => format!("{s:>w$}", w = a as usize),
        Some(a) if a < 0 => format!("{s:<w$}", w = (-a) as usize),
        _ => s,
    })
}

/// The number after a standard format letter (`D5`, `F2`), bounded so a hostile format string
/// cannot ask for huge output (found by fuzzing: `{x:F99999999}`).
fn precision(fmt: &str, default: usize) -> usize {
    fmt[1..]
        .parse::<usize>()
        .unwrap_or(default)
        .min(MAX_PRECISION)
}

const MAX_PRECISION: usize = 100;
const MAX_ALIGN: i32 = 1000;

fn group_thousands(int_part: &str) -> String {
    let (sign, digits) = int_part
        .strip_prefix('-')
        .map_or(("", int_part), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn format_int(i: i64, fmt: &str) -> String {
    let Some(first) = fmt.chars().next() else {
        return i.to_string();
    };
    match first {
        'D' | 'd' => {
            let w = precision(fmt, 0);
            if i < 0 {
                format!("-{:0w$}", i.unsigned_abs())
            } else {
                format!("{i:0w$}")
            }
        }
        'X' => format!("{:0w$X}", i, w = precision(fmt, 0)),
        'x' => format!("{:0w$x}", i, w = precision(fmt, 0)),
        'N' | 'n' | 'F' | 'f' | 'E' | 'e' | 'P' | 'p' | 'G' | 'g' | 'C' | 'c' | 'R' | 'r' | '0'
        | '#' => format_float(i as f64, fmt),
        _ => i.to_string(),
    }
}

fn format_float(d: f64, fmt: &str) -> String {
    let Some(first) = fmt.chars().next() else {
        return format_double(d);
    };
    match first {
        'F' | 'f' => format!("{:.p$}", d, p = precision(fmt, 2)),
        'N' | 'n' => {
            let s = format!("{:.p$}", d, p = precision(fmt, 2));
            let (ip, fp) = s
                .split_once('.')
                .map_or((s.as_str(), None), |(a, b)| (a, Some(b)));
            match fp {
                Some(f) => format!("{}.{f}", group_thousands(ip)),
                None => group_thousands(ip),
            }
        }
        'P' | 'p' => format!("{:.p$} %", d * 100.0, p = precision(fmt, 2)),
        'E' | 'e' => {
            let s = format!("{:.p$e}", d, p = precision(fmt, 6));
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = e.parse().unwrap_or(0);
            format!(
                "{m}{}{}{:03}",
                if first == 'E' { 'E' } else { 'e' },
                if exp < 0 { '-' } else { '+' },
                exp.abs()
            )
        }
        'C' | 'c' => format!("¤{}", format_float(d, &format!("N{}", precision(fmt, 2)))),
        'G' | 'g' | 'R' | 'r' => format_double(d),
        '0' | '#' => {
            // Custom numeric: digits after '.' give the precision; a ',' groups thousands.
            let decimals = fmt
                .split_once('.')
                .map_or(0, |(_, f)| {
                    f.chars().filter(|c| *c == '0' || *c == '#').count()
                })
                .min(MAX_PRECISION);
            let min_dec = fmt
                .split_once('.')
                .map_or(0, |(_, f)| f.chars().filter(|c| *c == '0').count());
            let mut s = format!("{:.p$}", d, p = decimals);
            if decimals > min_dec && s.contains('.') {
                while s.ends_with('0') && s.split_once('.').is_some_and(|(_, f)| f.len() > min_dec)
                {
                    s.pop();
                }
                if s.ends_with('.') {
                    s.pop();
                }
            }
            let int_zeros = fmt
                .split('.')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| *c == '0')
                .count()
                .min(MAX_PRECISION);
            let (ip, fp) = s.split_once('.').map_or((s.clone(), None), |(a, b)| {
                (a.to_string(), Some(b.to_string()))
            });
            let (neg, digits) = ip
                .strip_prefix('-')
                .map_or((false, ip.as_str()), |x| (true, x));
            let mut ip = format!("{:0>w$}", digits, w = int_zeros.max(1));
            if int_zeros == 0 && ip == "0" && fp.is_some() {
                ip.clear();
            }
            if fmt.contains(',') {
                ip = group_thousands(&ip);
            }
            let sign = if neg { "-" } else { "" };
            match fp {
                Some(f) => format!("{sign}{ip}.{f}"),
                None => format!("{sign}{ip}"),
            }
        }
        _ => format_double(d),
    }
}

/// Methods on numbers, bools, chars, GUIDs and enums.
pub fn call_scalar(
    m: &mut Machine,
    v: &Value,
    name: &str,
    _targs: &[RType],
    args: &[Value],
) -> EResult<Value> {
    let _ = m;
    match name {
        "ToString" => Ok(Value::string(format_value(
            v,
            &args.first().map(Value::to_display).unwrap_or_default(),
        )?)),
        "CompareTo" => {
            let o = args.first().cloned().unwrap_or(Value::Null);
            Ok(Value::Int(value::compare(v, &o).map_or(0, |c| c as i32)))
        }
        "Equals" => Ok(Value::Bool(
            args.first().is_some_and(|o| value::equals(v, o)),
        )),
        "HasFlag" => {
            let f = args.first().and_then(Value::as_i64).unwrap_or(0);
            Ok(Value::Bool(v.as_i64().unwrap_or(0) & f == f))
        }
        // .NET's layout: the first three fields little-endian, the last eight bytes as written.
        "ToByteArray" => match v {
            Value::Guid(g) => {
                let b = g.to_be_bytes();
                let mut out = vec![b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]];
                out.extend_from_slice(&b[8..]);
                Ok(Value::Bytes(std::sync::Arc::new(out)))
            }
            _ => exception(
                "MissingMethodException",
                format!(
                    "'{}' does not contain a method 'ToByteArray'",
                    v.type_name()
                ),
            ),
        },
        _ => exception(
            "MissingMethodException",
            format!("'{}' does not contain a method '{name}'", v.type_name()),
        ),
    }
}

/// `int.Parse`, `int.TryParse(s, out var x)`, `bool.Parse`, `Guid.NewGuid`, `Enum.Parse`, ...
pub fn call_static_parse(
    ty: &RType,
    name: &str,
    args: &[Value],
    outs: &mut Vec<Value>,
) -> EResult<Value> {
    let s = args.first().map(Value::to_display).unwrap_or_default();
    let parse = |s: &str| -> Option<Value> {
        let t = s.trim();
        match ty.ty {
            Ty::Int => t.parse::<i32>().ok().map(Value::Int),
            Ty::Long => t.parse::<i64>().ok().map(Value::Long),
            Ty::Double => t
                .parse::<f64>()
                .ok()
                .filter(|_| !t.is_empty())
                .map(Value::Double),
            Ty::Bool => match t.to_ascii_lowercase().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            Ty::Char => {
                let mut c = s.chars();
                match (c.next(), c.next()) {
                    (Some(x), None) => Some(Value::Char(x)),
                    _ => None,
                }
            }
            Ty::Byte => t.parse::<u8>().ok().map(Value::Byte),
            Ty::Guid => value::parse_guid(t).map(Value::Guid),
            _ => None,
        }
    };
    match name {
        "Parse" | "ParseExact" => match parse(&s) {
            Some(v) => Ok(v),
            None if ty.ty == Ty::Enum => exception(
                "ArgumentException",
                format!("Requested value '{s}' was not found."),
            ),
            None => exception(
                "FormatException",
                format!("The input string '{s}' was not in a correct format."),
            ),
        },
        "TryParse" | "TryParseExact" => match parse(&s) {
            Some(v) => {
                outs.push(v);
                Ok(Value::Bool(true))
            }
            None => {
                outs.push(super::default_of(ty));
                Ok(Value::Bool(false))
            }
        },
        "NewGuid" => Ok(Value::Guid(
            rand::random::<u128>() & !(0xf << 76) | (0x4 << 76),
        )),
        "Empty" => Ok(Value::Guid(0)),
        "IsNaN" => Ok(Value::Bool(
            args.first()
                .and_then(Value::as_f64)
                .is_some_and(f64::is_nan),
        )),
        "IsInfinity" => Ok(Value::Bool(
            args.first()
                .and_then(Value::as_f64)
                .is_some_and(f64::is_infinite),
        )),
        "Equals" => Ok(Value::Bool(
            args.len() == 2 && value::equals(&args[0], &args[1]),
        )),
        _ => exception(
            "MissingMethodException",
            format!("{}.{name} is not supported", ty.name),
        ),
    }
}

/// `Convert.*`
pub fn call_convert(name: &str, args: &[Value]) -> EResult<Value> {
    let a = args.first().cloned().unwrap_or(Value::Null);
    Ok(match name {
        "ToInt32" | "ToInt16" | "ToSByte" | "ToUInt16" => {
            if let (Value::Str(s), Some(base)) = (&a, args.get(1).and_then(Value::as_i64)) {
                return i64::from_str_radix(s.trim().trim_start_matches("0x"), base as u32)
                    .map(|v| Value::Int(v as i32))
                    .or_else(|_| {
                        exception("FormatException", "Could not find any recognizable digits.")
                    });
            }
            Value::Int(to_i64(&a)? as i32)
        }
        "ToInt64" | "ToUInt32" | "ToUInt64" => Value::Long(to_i64(&a)?),
        "ToDouble" | "ToDecimal" | "ToSingle" => Value::Double(to_f64(&a)?),
        "ToBoolean" => Value::Bool(to_bool(&a)?),
        "ToString" => match args.get(1).and_then(Value::as_i64) {
            Some(16) => Value::string(format!("{:x}", a.as_i64().unwrap_or(0))),
            Some(2) => Value::string(format!("{:b}", a.as_i64().unwrap_or(0))),
            _ => Value::string(a.to_display()),
        },
        "ToChar" => Value::Char(char::from_u32(to_i64(&a)? as u32).unwrap_or('\0')),
        "ToByte" => Value::Byte(to_i64(&a)? as u8),
        "ToDateTime" => match &a {
            Value::DateTime(_) => a,
            _ => Value::DateTime(
                super::super::datetime::DateTime::parse(&a.to_display()).map_or_else(
                    || {
                        exception(
                            "FormatException",
                            "String was not recognized as a valid DateTime.",
                        )
                    },
                    Ok,
                )?,
            ),
        },
        "ToBase64String" => match &a {
            Value::Bytes(b) => {
                Value::string(base64::engine::general_purpose::STANDARD.encode(&b[..]))
            }
            _ => return exception("ArgumentException", "Convert.ToBase64String needs a byte[]"),
        },
        "FromBase64String" => {
            let s: String = a
                .to_display()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            match base64::engine::general_purpose::STANDARD.decode(s.as_bytes()) {
                Ok(b) => Value::Bytes(Arc::new(b)),
                Err(_) => {
                    return exception(
                        "FormatException",
                        "The input is not a valid Base-64 string.",
                    )
                }
            }
        }
        "ToHexString" => match &a {
            Value::Bytes(b) => Value::string(b.iter().map(|x| format!("{x:02X}")).collect()),
            _ => return exception("ArgumentException", "Convert.ToHexString needs a byte[]"),
        },
        "FromHexString" => {
            let s = a.to_display();
            let bytes: Option<Vec<u8>> = (0..s.len())
                .step_by(2)
                .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect();
            match bytes {
                Some(b) if s.len() % 2 == 0 => Value::Bytes(Arc::new(b)),
                _ => return exception("FormatException", "The input is not a valid hex string."),
            }
        }
        "ChangeType" => a,
        _ => {
            return exception(
                "MissingMethodException",
                format!("Convert.{name} is not supported"),
            )
        }
    })
}
