//! Static members and methods of the allowed types: `Math`, `Regex`, `Array`, `Uri`,
//! `WebUtility`, `IPAddress`, `BitConverter`, `Encoding`, `RandomNumberGenerator`, the
//! hashing types.

use std::sync::Arc;

use parking_lot::Mutex;

use super::super::datetime::DateTime;
use super::super::eval::{exception, EResult, Machine};
use super::super::types::{RType, Ty};
use super::super::value::{self, Obj, Value};
use super::names::Names;
use super::{arg, iterate};
use super::{crypto::*, regexp::*, uri::*};

/// The names this family implements, registered beside their code: the binder accepts a
/// member, method or static name only when a family registers it (`names.rs` chains them).
pub(super) const NAMES: Names = Names {
    members: &[],
    methods: &[
        "ToString", "Equals", "IndexOf", "Replace", "Split", "Reverse", "Sort", "Exists", "Find",
        "IsMatch", "Match", "Matches", "GetBytes",
    ],
    static_members: &[
        "Empty",
        "MinValue",
        "MaxValue",
        "UTF8",
        "ASCII",
        "Unicode",
        "UTF32",
        "Default",
        "Latin1",
        "PI",
        "E",
        "NewLine",
        "TickCount",
        "Loopback",
        "Any",
        "None",
        "IPv6Loopback",
        "IPv6Any",
        "Broadcast",
        "NaN",
        "PositiveInfinity",
        "NegativeInfinity",
        "Epsilon",
        "Shared",
        "SchemeDelimiter",
        "UriSchemeHttp",
        "UriSchemeHttps",
        "MachineName",
    ],
    static_methods: &[
        "Equals",
        "Parse",
        "TryParse",
        "ToInt32",
        "ToInt64",
        "ToString",
        "Abs",
        "Max",
        "Min",
        "Round",
        "Floor",
        "Ceiling",
        "Pow",
        "Sqrt",
        "Log",
        "Log10",
        "Exp",
        "Sign",
        "Truncate",
        "Clamp",
        "IsMatch",
        "Match",
        "Matches",
        "Replace",
        "Split",
        "Escape",
        "Unescape",
        "UrlEncode",
        "UrlDecode",
        "HtmlEncode",
        "HtmlDecode",
        "UrlPathEncode",
        "EscapeDataString",
        "EscapeUriString",
        "UnescapeDataString",
        "IsWellFormedUriString",
        "TryCreate",
        "GetBytes",
        "Create",
        "HashData",
        "IsLoopback",
        "Empty",
        "IndexOf",
        "Exists",
        "Find",
        "Reverse",
        "Sort",
        "ReferenceEquals",
        "GetEnvironmentVariable",
        "GetInt32",
        "GetRandomBytes",
        "CheckHostName",
        "Tuple",
        "Cbrt",
        "Atan",
        "Atan2",
        "Sin",
        "Cos",
        "Tan",
        "Log2",
    ],
};

pub fn static_get(m: &mut Machine, ty: &RType, name: &str) -> EResult<Value> {
    let _ = m;
    Ok(match (ty.ty, ty.name.as_str(), name) {
        (Ty::String, _, "Empty") => Value::str(""),
        (Ty::Guid, _, "Empty") => Value::Guid(0),
        (Ty::DateTime | Ty::DateTimeOffset | Ty::TimeSpan, _, _) => {
            return super::time::static_get(name, ty)
        }
        (Ty::Int, _, "MaxValue") => Value::Int(i32::MAX),
        (Ty::Int, _, "MinValue") => Value::Int(i32::MIN),
        (Ty::Long, _, "MaxValue") => Value::Long(i64::MAX),
        (Ty::Long, _, "MinValue") => Value::Long(i64::MIN),
        (Ty::Double, _, "MaxValue") => Value::Double(f64::MAX),
        (Ty::Double, _, "MinValue") => Value::Double(f64::MIN),
        (Ty::Double, _, "NaN") => Value::Double(f64::NAN),
        (Ty::Double, _, "Epsilon") => Value::Double(f64::from_bits(1)),
        (Ty::Double, _, "PositiveInfinity") => Value::Double(f64::INFINITY),
        (Ty::Double, _, "NegativeInfinity") => Value::Double(f64::NEG_INFINITY),
        (Ty::Char, _, "MaxValue") => Value::Char('\u{ffff}'),
        (Ty::Char, _, "MinValue") => Value::Char('\0'),
        (Ty::Byte, _, "MaxValue") => Value::Byte(255),
        (Ty::Byte, _, "MinValue") => Value::Byte(0),
        (_, "Math", "PI") => Value::Double(std::f64::consts::PI),
        (_, "Math", "E") => Value::Double(std::f64::consts::E),
        (_, "Encoding", n @ ("UTF8" | "ASCII" | "Unicode" | "UTF32" | "Default" | "Latin1")) => {
            Value::obj(Obj::Encoding(match n {
                "ASCII" => "ascii",
                "Unicode" => "utf-16",
                "Latin1" => "latin1",
                "UTF32" => "utf-32",
                _ => "utf-8",
            }))
        }
        (_, "StringComparer", n) => Value::obj(Obj::Comparer {
            ignore_case: n.ends_with("IgnoreCase"),
        }),
        (_, "Environment", "NewLine") => Value::str("\n"),
        (_, "Environment", "MachineName") => Value::str("gatehouse"),
        (_, "Environment", "TickCount") => Value::Int((DateTime::now_utc().ticks / 10_000) as i32),
        (_, "Random", "Shared") => Value::obj(Obj::Random(Mutex::new(rand::random()))),
        (
            Ty::IpAddress,
            _,
            n @ ("Loopback" | "Any" | "IPv6Loopback" | "IPv6Any" | "Broadcast" | "None"),
        ) => Value::obj(Obj::IpAddress(match n {
            "Loopback" => std::net::IpAddr::from([127, 0, 0, 1]),
            "Any" => std::net::IpAddr::from([0, 0, 0, 0]),
            "Broadcast" | "None" => std::net::IpAddr::from([255, 255, 255, 255]),
            "IPv6Loopback" => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            _ => std::net::IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
        })),
        (Ty::Uri, _, "SchemeDelimiter") => Value::str("://"),
        (Ty::Uri, _, "UriSchemeHttp") => Value::str("http"),
        (Ty::Uri, _, "UriSchemeHttps") => Value::str("https"),
        _ => {
            return exception(
                "MissingMemberException",
                format!("{}.{name} is not supported", ty.name),
            )
        }
    })
}

pub(super) fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

pub fn call_static(
    m: &mut Machine,
    ty: &RType,
    name: &str,
    targs: &[RType],
    args: &[Value],
    named: &[(String, Value)],
    outs: &mut Vec<Value>,
) -> EResult<Value> {
    let _ = (targs, named);
    let s = |i: usize| args.get(i).map(Value::to_display).unwrap_or_default();
    let f = |i: usize| args.get(i).and_then(Value::as_f64).unwrap_or(0.0);
    let tn = ty.name.as_str();
    if let Some((alg, keyed)) = hash_alg_of(tn) {
        return Ok(match name {
            "Create" => Value::obj(Obj::Hasher { alg, key: None }),
            "HashData" => {
                let data = bytes_arg(m, arg(args, 0, name)?)?;
                let key = if keyed {
                    Some(bytes_arg(m, arg(args, 0, name)?)?)
                } else {
                    None
                };
                let data = if keyed {
                    bytes_arg(m, arg(args, 1, name)?)?
                } else {
                    data
                };
                Value::Bytes(Arc::new(hash(alg, key.as_deref(), &data)?))
            }
            _ => {
                return exception(
                    "MissingMethodException",
                    format!("{tn}.{name} is not supported"),
                )
            }
        });
    }
    Ok(match (tn, name) {
        ("Math", "Abs") => match args.first() {
            Some(Value::Int(i)) => Value::Int(i.wrapping_abs()),
            Some(Value::Long(i)) => Value::Long(i.wrapping_abs()),
            _ => Value::Double(f(0).abs()),
        },
        ("Math", "Max" | "Min") => {
            let (a, b) = (arg(args, 0, name)?, arg(args, 1, name)?);
            let want = if name == "Max" {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Less
            };
            let pick_a = value::compare(a, b) == Some(want)
                || value::compare(a, b) == Some(std::cmp::Ordering::Equal);
            let r = if pick_a { a.clone() } else { b.clone() };
            match (a, b) {
                (Value::Double(_), _) | (_, Value::Double(_)) => {
                    Value::Double(r.as_f64().unwrap_or(0.0))
                }
                (Value::Long(_), _) | (_, Value::Long(_)) => Value::Long(r.as_i64().unwrap_or(0)),
                _ => r,
            }
        }
        ("Math", "Round") => {
            let away = args
                .iter()
                .any(|a| matches!(a, Value::Enum(e) if e.name == "AwayFromZero"));
            let digits = args
                .get(1)
                .filter(|a| !matches!(a, Value::Enum(_)))
                .and_then(Value::as_i64)
                .unwrap_or(0) as i32;
            let p = 10f64.powi(digits);
            let x = f(0) * p;
            Value::Double(if away { x.round() } else { round_half_even(x) } / p)
        }
        ("Math", "Floor") => Value::Double(f(0).floor()),
        ("Math", "Ceiling") => Value::Double(f(0).ceil()),
        ("Math", "Truncate") => Value::Double(f(0).trunc()),
        ("Math", "Pow") => Value::Double(f(0).powf(f(1))),
        ("Math", "Sqrt") => Value::Double(f(0).sqrt()),
        ("Math", "Cbrt") => Value::Double(f(0).cbrt()),
        ("Math", "Log") => Value::Double(if args.len() > 1 {
            f(0).log(f(1))
        } else {
            f(0).ln()
        }),
        ("Math", "Log10") => Value::Double(f(0).log10()),
        ("Math", "Log2") => Value::Double(f(0).log2()),
        ("Math", "Exp") => Value::Double(f(0).exp()),
        ("Math", "Sin") => Value::Double(f(0).sin()),
        ("Math", "Cos") => Value::Double(f(0).cos()),
        ("Math", "Tan") => Value::Double(f(0).tan()),
        ("Math", "Atan") => Value::Double(f(0).atan()),
        ("Math", "Atan2") => Value::Double(f(0).atan2(f(1))),
        ("Math", "Sign") => Value::Int(if f(0) > 0.0 {
            1
        } else if f(0) < 0.0 {
            -1
        } else {
            0
        }),
        ("Math", "Clamp") => {
            let (x, lo, hi) = (
                arg(args, 0, name)?,
                arg(args, 1, name)?,
                arg(args, 2, name)?,
            );
            if value::compare(x, lo) == Some(std::cmp::Ordering::Less) {
                lo.clone()
            } else if value::compare(x, hi) == Some(std::cmp::Ordering::Greater) {
                hi.clone()
            } else {
                x.clone()
            }
        }
        ("Regex", "IsMatch") => Value::Bool(regex(&s(1), args.get(2))?.is_match(&s(0))),
        ("Regex", "Match") => {
            let text: Arc<str> = Arc::from(s(0).as_str());
            match_value(&regex(&s(1), args.get(2))?, &text, 0)
        }
        ("Regex", "Matches") => {
            let text: Arc<str> = Arc::from(s(0).as_str());
            let r = regex(&s(1), args.get(2))?;
            matches_value(&r, text)
        }
        ("Regex", "Replace") => {
            let r = regex(&s(1), args.get(3))?;
            let out = match args.get(2) {
                Some(f @ Value::Lambda(_)) => {
                    let text: Arc<str> = Arc::from(s(0).as_str());
                    let mut out = String::new();
                    let mut last = 0;
                    for c in r.captures_iter(&text) {
                        let Some(whole) = c.get(0) else { continue };
                        out.push_str(&text[last..whole.start()]);
                        let mv = match_value(&r, &text, whole.start());
                        out.push_str(&m.call_lambda(f, &[mv])?.to_display());
                        last = whole.end();
                    }
                    out.push_str(&text[last..]);
                    out
                }
                _ => r
                    .replace_all(&s(0), replacement(&s(2)).as_str())
                    .into_owned(),
            };
            m.check_size(out.len())?;
            Value::string(out)
        }
        ("Regex", "Split") => Value::list(
            regex(&s(1), args.get(2))?
                .split(&s(0))
                .map(Value::str)
                .collect(),
        ),
        ("Regex", "Escape") => Value::string(regex::escape(&s(0))),
        ("Regex", "Unescape") => Value::string(s(0).replace('\\', "")),
        ("WebUtility" | "HttpUtility", "UrlEncode") => Value::string(url_encode(&s(0))),
        ("WebUtility" | "HttpUtility", "UrlDecode") => Value::string(url_decode(&s(0))),
        ("WebUtility" | "HttpUtility", "HtmlEncode") => Value::string(html_encode(&s(0))),
        ("WebUtility" | "HttpUtility", "HtmlDecode") => {
            Value::string(crate::codec::entities::decode_entities(&s(0)))
        }
        ("HttpUtility", "UrlPathEncode") | ("Uri", "EscapeUriString") => Value::string(
            percent_encoding::utf8_percent_encode(&s(0), percent_encoding::CONTROLS)
                .to_string()
                .replace(' ', "%20"),
        ),
        ("Uri", "EscapeDataString") => Value::string(crate::codec::query::encode_component(&s(0))),
        ("Uri", "UnescapeDataString") => Value::string(
            percent_encoding::percent_decode_str(&s(0))
                .decode_utf8_lossy()
                .into_owned(),
        ),
        ("Uri", "IsWellFormedUriString") => {
            Value::Bool(url::Url::parse(&s(0)).is_ok() && !s(0).contains(' '))
        }
        ("Uri", "TryCreate") => match url::Url::parse(&s(0)) {
            Ok(u) => {
                outs.push(Value::obj(Obj::Uri(u)));
                Value::Bool(true)
            }
            Err(_) => {
                outs.push(Value::Null);
                Value::Bool(false)
            }
        },
        ("Uri", "CheckHostName") => Value::Int(if s(0).is_empty() { 0 } else { 1 }),
        ("BitConverter", "ToString") => match args.first() {
            Some(Value::Bytes(b)) => Value::string(
                b.iter()
                    .map(|x| format!("{x:02X}"))
                    .collect::<Vec<_>>()
                    .join("-"),
            ),
            _ => return exception("ArgumentException", "BitConverter.ToString needs a byte[]"),
        },
        ("BitConverter", "GetBytes") => Value::Bytes(Arc::new(match args.first() {
            Some(Value::Int(i)) => i.to_le_bytes().to_vec(),
            Some(Value::Long(i)) => i.to_le_bytes().to_vec(),
            Some(Value::Double(d)) => d.to_le_bytes().to_vec(),
            Some(Value::Bool(b)) => vec![*b as u8],
            _ => return exception("ArgumentException", "BitConverter.GetBytes"),
        })),
        ("BitConverter", "ToInt32" | "ToInt64") => {
            let b = bytes_arg(m, arg(args, 0, name)?)?;
            let i = args.get(1).and_then(Value::as_i64).unwrap_or(0) as usize;
            let n = if name == "ToInt32" { 4 } else { 8 };
            let Some(slice) = b.get(i..i + n) else {
                return exception("ArgumentOutOfRangeException", "startIndex");
            };
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(slice);
            let v = i64::from_le_bytes(buf);
            if n == 4 {
                Value::Int(v as u32 as i32)
            } else {
                Value::Long(v)
            }
        }
        ("IPAddress", "Parse") => {
            Value::obj(Obj::IpAddress(s(0).trim().parse().or_else(|_| {
                exception("FormatException", "An invalid IP address was specified.")
            })?))
        }
        ("IPAddress", "TryParse") => match s(0).trim().parse::<std::net::IpAddr>() {
            Ok(a) => {
                outs.push(Value::obj(Obj::IpAddress(a)));
                Value::Bool(true)
            }
            Err(_) => {
                outs.push(Value::Null);
                Value::Bool(false)
            }
        },
        ("IPAddress", "IsLoopback") => Value::Bool(
            matches!(args.first(), Some(Value::Obj(o)) if matches!(&**o, Obj::IpAddress(a) if a.is_loopback())),
        ),
        ("Encoding", "GetEncoding") => Value::obj(Obj::Encoding("utf-8")),
        ("Tuple", "Create") => Value::Pair(Arc::new((
            args.first().cloned().unwrap_or(Value::Null),
            args.get(1).cloned().unwrap_or(Value::Null),
        ))),
        ("RandomNumberGenerator", "GetBytes" | "GetRandomBytes") => {
            let n = args.first().and_then(Value::as_i64).unwrap_or(0).max(0) as usize;
            m.check_size(n)?;
            Value::Bytes(Arc::new((0..n).map(|_| rand::random::<u8>()).collect()))
        }
        ("RandomNumberGenerator", "GetInt32") => {
            let (lo, hi) = if args.len() >= 2 {
                (f(0) as i64, f(1) as i64)
            } else {
                (0, f(0) as i64)
            };
            if hi <= lo {
                return exception("ArgumentOutOfRangeException", "toExclusive");
            }
            Value::Int((lo + (rand::random::<u64>() % (hi - lo) as u64) as i64) as i32)
        }
        ("object" | "Object", "ReferenceEquals" | "Equals") => {
            Value::Bool(args.len() == 2 && value::equals(&args[0], &args[1]))
        }
        ("Environment", "GetEnvironmentVariable") => Value::Null,
        ("Array", "IndexOf") => {
            let items = iterate(m, arg(args, 0, name)?)?;
            let x = arg(args, 1, name)?;
            Value::Int(
                items
                    .iter()
                    .position(|y| value::equals(x, y))
                    .map_or(-1, |i| i as i32),
            )
        }
        ("Array", "Reverse") => {
            if let Some(Value::List(l)) = args.first() {
                l.lock().reverse();
            }
            Value::Null
        }
        ("Array", "Sort") => {
            if let Some(Value::List(l)) = args.first() {
                l.lock()
                    .sort_by(|a, b| value::compare(a, b).unwrap_or(std::cmp::Ordering::Equal));
            }
            Value::Null
        }
        ("Array", "Exists") => {
            return super::linq::call(m, arg(args, 0, name)?, "Any", &[], &args[1..])
        }
        ("Array", "Find") => {
            return super::linq::call(m, arg(args, 0, name)?, "FirstOrDefault", &[], &args[1..])
        }
        ("Array", "Empty") => Value::list(vec![]),
        _ => {
            return exception(
                "MissingMethodException",
                format!("{tn}.{name} is not supported"),
            )
        }
    })
}
