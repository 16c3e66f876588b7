//! Everything else on the allowed list: regular expressions, URIs and `IUrl`, JWT and Basic
//! credentials, messages and bodies, encodings, hashing and HMAC (OpenSSL, already linked for
//! Pingora), `Math`, `WebUtility`, `BitConverter`, `IPAddress`, `StringBuilder`, `Random`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::super::datetime::DateTime;
use super::super::eval::{exception, EResult, Machine};
use super::super::types::{RType, Ty};
use super::super::value::{self, shared, Key, Obj, Value};
use super::{arg, enum_val, iterate, Initializer};

// ---- regex ----------------------------------------------------------------------------------

fn regex_flags(opts: Option<&Value>) -> String {
    let v = opts.and_then(Value::as_i64).unwrap_or(0);
    let mut f = String::new();
    if v & 1 != 0 {
        f.push('i');
    }
    if v & 2 != 0 {
        f.push('m');
    }
    if v & 16 != 0 {
        f.push('s');
    }
    if v & 32 != 0 {
        f.push('x');
    }
    f
}

/// Compiled regexes are cached (bounded) by pattern and options.
fn regex(pattern: &str, opts: Option<&Value>) -> EResult<regex::Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, regex::Regex>>> = OnceLock::new();
    let flags = regex_flags(opts);
    let key = format!("{flags}\u{0}{pattern}");
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(r) = cache.lock().get(&key) {
        return Ok(r.clone());
    }
    let full = if flags.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{flags}){pattern}")
    };
    let r = regex::RegexBuilder::new(&full)
        .size_limit(1 << 20)
        .build()
        .or_else(|e| {
            exception(
                "ArgumentException",
                format!("Invalid pattern '{pattern}': {e}"),
            )
        })?;
    let mut c = cache.lock();
    if c.len() >= 512 {
        c.clear();
    }
    c.insert(key, r.clone());
    Ok(r)
}

fn match_value(r: &regex::Regex, text: &Arc<str>, from: usize) -> Value {
    let names: Vec<Option<String>> = r.capture_names().map(|n| n.map(str::to_string)).collect();
    match r.captures_at(text, from) {
        Some(c) => Value::obj(Obj::Match {
            text: text.clone(),
            groups: (0..c.len())
                .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                .collect(),
            names,
        }),
        None => Value::obj(Obj::Match {
            text: text.clone(),
            groups: vec![None],
            names,
        }),
    }
}

/// .NET replacement syntax (`$1`, `${name}`, `$$`) is the same as the regex crate's, except
/// that `$1a` means group 1 then `a` in .NET: bracket numeric references.
fn replacement(s: &str) -> String {
    let mut out = String::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '$' && b.get(i + 1).is_some_and(char::is_ascii_digit) {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            out.push_str(&format!("${{{}}}", b[i + 1..j].iter().collect::<String>()));
            i = j;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

pub fn group_index(v: &Value, k: &Value) -> EResult<Value> {
    let Value::Obj(o) = v else {
        return exception("InvalidOperationException", "not a match");
    };
    match &**o {
        Obj::Match {
            text,
            groups,
            names,
        } => {
            let idx = match k {
                Value::Str(n) => names.iter().position(|x| x.as_deref() == Some(&**n)),
                other => other.as_i64().map(|i| i as usize),
            };
            let g = idx.and_then(|i| groups.get(i).copied()).flatten();
            Ok(Value::obj(Obj::Group {
                value: g.map(|(s, e)| (text.clone(), s, e)),
            }))
        }
        _ => exception("InvalidOperationException", "not a match"),
    }
}

// ---- hashing ------------------------------------------------------------------------------------

fn digest(alg: &str) -> Option<openssl::hash::MessageDigest> {
    use openssl::hash::MessageDigest as D;
    Some(match alg {
        "MD5" => D::md5(),
        "SHA1" => D::sha1(),
        "SHA256" => D::sha256(),
        "SHA384" => D::sha384(),
        "SHA512" => D::sha512(),
        _ => return None,
    })
}

fn hash(alg: &str, key: Option<&[u8]>, data: &[u8]) -> EResult<Vec<u8>> {
    let d = digest(alg).map_or_else(
        || exception("CryptographicException", format!("unknown hash {alg}")),
        Ok,
    )?;
    let r = match key {
        None => openssl::hash::hash(d, data).map(|x| x.to_vec()),
        Some(k) => openssl::pkey::PKey::hmac(k).and_then(|pk| {
            let mut s = openssl::sign::Signer::new(d, &pk)?;
            s.update(data)?;
            s.sign_to_vec()
        }),
    };
    r.or_else(|e| exception("CryptographicException", e.to_string()))
}

fn bytes_arg(m: &mut Machine, v: &Value) -> EResult<Vec<u8>> {
    Ok(match v {
        Value::Bytes(b) => b.to_vec(),
        Value::Str(s) => s.as_bytes().to_vec(),
        Value::List(_) => iterate(m, v)?
            .iter()
            .map(|x| x.as_i64().unwrap_or(0) as u8)
            .collect(),
        _ => {
            return exception(
                "ArgumentException",
                format!("expected byte[], found {}", v.type_name()),
            )
        }
    })
}

fn hash_alg_of(type_name: &str) -> Option<(&'static str, bool)> {
    Some(match type_name {
        "MD5" => ("MD5", false),
        "SHA1" | "SHA1Managed" => ("SHA1", false),
        "SHA256" | "SHA256Managed" => ("SHA256", false),
        "SHA384" => ("SHA384", false),
        "SHA512" | "SHA512Managed" => ("SHA512", false),
        "HMACMD5" => ("MD5", true),
        "HMACSHA1" => ("SHA1", true),
        "HMACSHA256" => ("SHA256", true),
        "HMACSHA384" => ("SHA384", true),
        "HMACSHA512" => ("SHA512", true),
        _ => return None,
    })
}

// ---- URLs -----------------------------------------------------------------------------------------

fn multimap(pairs: &[(String, String)]) -> Value {
    let mut map: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in pairs {
        match map.iter_mut().find(|(n, _)| n == k) {
            Some((_, vs)) => vs.push(v.clone()),
            None => map.push((k.clone(), vec![v.clone()])),
        }
    }
    Value::obj(Obj::MultiMap {
        map,
        ignore_case: false,
    })
}

const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*');

pub fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, FORM)
        .to_string()
        .replace("%20", "+")
}

pub fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn html_encode(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

// ---- statics ---------------------------------------------------------------------------------------

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

fn round_half_even(x: f64) -> f64 {
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
            let names: Vec<Option<String>> =
                r.capture_names().map(|n| n.map(str::to_string)).collect();
            Value::list(
                r.captures_iter(&text)
                    .map(|c| {
                        Value::obj(Obj::Match {
                            text: text.clone(),
                            groups: (0..c.len())
                                .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                                .collect(),
                            names: names.clone(),
                        })
                    })
                    .collect(),
            )
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

// ---- members and methods of objects -----------------------------------------------------------------

pub fn member(m: &mut Machine, v: &Value, name: &str) -> EResult<Value> {
    let Value::Obj(o) = v else {
        return exception("MissingMemberException", name.to_string());
    };
    let missing = || {
        exception(
            "MissingMemberException",
            format!(
                "'{}' does not contain a definition for '{name}'",
                v.type_name()
            ),
        )
    };
    Ok(match (&**o, name) {
        (Obj::Url(u), "Scheme") => Value::str(&u.scheme),
        (Obj::Url(u), "Host") => Value::str(&u.host),
        (Obj::Url(u), "Port") => Value::Int(u.port),
        (Obj::Url(u), "Path") => Value::str(&u.path),
        (Obj::Url(u), "Query") => multimap(&u.query),
        (Obj::Url(u), "QueryString") => Value::string(u.query_string()),
        (Obj::Uri(u), "Scheme") => Value::str(u.scheme()),
        (Obj::Uri(u), "Host") => Value::str(u.host_str().unwrap_or("")),
        (Obj::Uri(u), "Port") => Value::Int(u.port_or_known_default().map_or(-1, i32::from)),
        (Obj::Uri(u), "AbsolutePath") => Value::str(u.path()),
        (Obj::Uri(u), "PathAndQuery") => Value::string(format!(
            "{}{}",
            u.path(),
            u.query().map(|q| format!("?{q}")).unwrap_or_default()
        )),
        (Obj::Uri(u), "Query") => {
            Value::string(u.query().map(|q| format!("?{q}")).unwrap_or_default())
        }
        (Obj::Uri(u), "Fragment") => {
            Value::string(u.fragment().map(|q| format!("#{q}")).unwrap_or_default())
        }
        (Obj::Uri(u), "AbsoluteUri" | "OriginalString") => Value::str(u.as_str()),
        (Obj::Uri(u), "Authority") => Value::string(format!(
            "{}{}",
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        )),
        (Obj::Uri(u), "Segments") => {
            let mut segs = vec![Value::str("/")];
            let parts: Vec<&str> = u.path().trim_start_matches('/').split('/').collect();
            for (i, p) in parts.iter().enumerate() {
                if p.is_empty() {
                    continue;
                }
                segs.push(Value::string(if i + 1 < parts.len() {
                    format!("{p}/")
                } else {
                    p.to_string()
                }));
            }
            Value::list(segs)
        }
        (Obj::Match { text, groups, .. }, "Value") => Value::string(
            groups
                .first()
                .copied()
                .flatten()
                .map_or(String::new(), |(s, e)| text[s..e].to_string()),
        ),
        (Obj::Match { groups, .. }, "Success") => {
            Value::Bool(groups.first().copied().flatten().is_some())
        }
        (Obj::Match { text, groups, .. }, "Index") => Value::Int(
            groups
                .first()
                .copied()
                .flatten()
                .map_or(0, |(s, _)| text[..s].encode_utf16().count() as i32),
        ),
        (Obj::Match { text, groups, .. }, "Length") => Value::Int(
            groups
                .first()
                .copied()
                .flatten()
                .map_or(0, |(s, e)| text[s..e].encode_utf16().count() as i32),
        ),
        (Obj::Match { .. }, "Groups") => v.clone(),
        (Obj::Match { groups, .. }, "Count") => Value::Int(groups.len() as i32),
        (Obj::Group { value }, "Value") => Value::string(
            value
                .as_ref()
                .map_or(String::new(), |(t, s, e)| t[*s..*e].to_string()),
        ),
        (Obj::Group { value }, "Success") => Value::Bool(value.is_some()),
        (Obj::Group { value }, "Index") => Value::Int(
            value
                .as_ref()
                .map_or(0, |(t, s, _)| t[..*s].encode_utf16().count() as i32),
        ),
        (Obj::Group { value }, "Length") => Value::Int(
            value
                .as_ref()
                .map_or(0, |(t, s, e)| t[*s..*e].encode_utf16().count() as i32),
        ),
        (Obj::Group { .. }, "Captures") => Value::list(vec![v.clone()]),
        (Obj::Jwt(j), _) => jwt_member(j, name)?,
        (Obj::Basic { user, .. }, "UserId" | "Username") => Value::str(user),
        (Obj::Basic { password, .. }, "Password") => Value::str(password),
        (Obj::Message(msg), "StatusCode") => Value::Int(msg.status),
        (Obj::Message(msg), "StatusReason") => Value::str(&msg.reason),
        (Obj::Message(msg), "Method") => Value::str(&msg.method),
        (Obj::Message(msg), "Url") => msg
            .url
            .clone()
            .map_or(Value::Null, |u| Value::obj(Obj::Url(u))),
        (Obj::Message(msg), "Headers") => Value::obj(Obj::MultiMap {
            map: msg.headers.clone(),
            ignore_case: true,
        }),
        (Obj::Message(msg), "Body") => msg
            .body
            .clone()
            .map_or(Value::Null, |b| Value::obj(Obj::BodyData(b))),
        (Obj::MultiMap { map, .. }, "Count") => Value::Int(map.len() as i32),
        (Obj::MultiMap { map, .. }, "Keys") => {
            Value::list(map.iter().map(|(k, _)| Value::str(k)).collect())
        }
        (Obj::MultiMap { map, .. }, "Values") => Value::list(
            map.iter()
                .map(|(_, v)| Value::list(v.iter().map(|x| Value::str(x)).collect()))
                .collect(),
        ),
        (Obj::StringBuilder(s), "Length") => Value::Int(s.lock().encode_utf16().count() as i32),
        (Obj::IpAddress(a), "AddressFamily") => match a {
            std::net::IpAddr::V4(_) => enum_val("AddressFamily", "InterNetwork", 2),
            std::net::IpAddr::V6(_) => enum_val("AddressFamily", "InterNetworkV6", 23),
        },
        (Obj::IpAddress(a), "IsIPv4MappedToIPv6") => {
            Value::Bool(matches!(a, std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()))
        }
        (Obj::Exception { message, .. }, "Message") => Value::str(message),
        (Obj::Xml(n), _) => return super::xml::member(n, name),
        (Obj::XAttr(_, v), "Value") => Value::str(v),
        (Obj::XAttr(k, _), "Name") => Value::str(k),
        (Obj::Exception { .. }, "InnerException") => Value::Null,
        (Obj::Exception { .. }, "StackTrace") => Value::str(""),
        (Obj::Body { .. } | Obj::BodyData(_), _) => return missing(),
        _ => {
            let _ = m;
            return missing();
        }
    })
}

fn claim_strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect(),
        serde_json::Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    }
}

fn jwt_member(j: &value::Jwt, name: &str) -> EResult<Value> {
    let claim = |k: &str| {
        j.claims.get(k).map_or(Value::Null, |v| {
            Value::string(v.as_str().map_or_else(|| v.to_string(), str::to_string))
        })
    };
    let time = |k: &str| {
        j.claims
            .get(k)
            .and_then(serde_json::Value::as_i64)
            .map_or(Value::Null, |s| {
                Value::DateTime(DateTime::from_unix_seconds(s))
            })
    };
    Ok(match name {
        "Id" => claim("jti"),
        "Issuer" => claim("iss"),
        "Subject" => claim("sub"),
        "Algorithm" => j
            .header
            .get("alg")
            .and_then(|v| v.as_str())
            .map_or(Value::Null, Value::str),
        "Type" => j
            .header
            .get("typ")
            .and_then(|v| v.as_str())
            .map_or(Value::Null, Value::str),
        "Audiences" => Value::list(
            j.claims
                .get("aud")
                .map(claim_strings)
                .unwrap_or_default()
                .into_iter()
                .map(Value::string)
                .collect(),
        ),
        "Claims" => Value::obj(Obj::MultiMap {
            map: j
                .claims
                .iter()
                .map(|(k, v)| (k.clone(), claim_strings(v)))
                .collect(),
            ignore_case: false,
        }),
        "ExpirationTime" => time("exp"),
        "NotBefore" => time("nbf"),
        "IssuedAt" => time("iat"),
        _ => {
            return exception(
                "MissingMemberException",
                format!("'Jwt' does not contain a definition for '{name}'"),
            )
        }
    })
}

/// `As<T>()` over body bytes.
pub fn body_as(m: &mut Machine, bytes: &[u8], targs: &[RType]) -> EResult<Value> {
    let t = targs.first().map_or(Ty::String, |t| t.ty);
    let text = || String::from_utf8_lossy(bytes).into_owned();
    Ok(match t {
        Ty::String => Value::string(text()),
        Ty::Bytes => Value::Bytes(Arc::new(bytes.to_vec())),
        Ty::XElement | Ty::XDocument => Value::obj(Obj::Xml(super::xml::parse(&text())?)),
        Ty::JObject | Ty::JToken | Ty::JArray => {
            let v = super::json::parse(&text())?;
            match (t, &v) {
                (Ty::JObject, Value::JObject(_))
                | (Ty::JArray, Value::JArray(_))
                | (Ty::JToken, _) => v,
                _ => {
                    return exception(
                        "JsonReaderException",
                        format!(
                            "The body is not a JSON {}",
                            if t == Ty::JObject { "object" } else { "array" }
                        ),
                    )
                }
            }
        }
        _ => {
            let _ = m;
            return exception(
                "NotSupportedException",
                format!(
                    "Body.As<{}>() is not supported",
                    targs.first().map(RType::display).unwrap_or_default()
                ),
            );
        }
    })
}

pub fn form_content(bytes: &[u8]) -> Value {
    let pairs = crate::codec::query::parse(&String::from_utf8_lossy(bytes));
    let mut map: indexmap::IndexMap<Key, Value> = indexmap::IndexMap::new();
    for (k, v) in pairs {
        let entry = map
            .entry(Key::Str(Arc::from(k.as_str())))
            .or_insert_with(|| Value::list(vec![]));
        if let Value::List(l) = entry {
            l.lock().push(Value::string(v));
        }
    }
    Value::Dict(shared(map))
}

fn multimap_get(map: &[(String, Vec<String>)], ci: bool, k: &str) -> Option<Vec<String>> {
    map.iter()
        .find(|(n, _)| {
            if ci {
                n.eq_ignore_ascii_case(k)
            } else {
                n == k
            }
        })
        .map(|(_, v)| v.clone())
}

pub fn call(
    m: &mut Machine,
    v: &Value,
    name: &str,
    targs: &[RType],
    args: &[Value],
    named: &[(String, Value)],
    outs: &mut Vec<Value>,
) -> EResult<Value> {
    let Value::Obj(o) = v else {
        return exception("MissingMethodException", name.to_string());
    };
    let s = |i: usize| args.get(i).map(Value::to_display).unwrap_or_default();
    Ok(match (&**o, name) {
        (Obj::Url(u), "ToString") => Value::string(u.to_url_string()),
        (Obj::Url(u), "ToUri") => Value::obj(Obj::Uri(
            url::Url::parse(&u.to_url_string())
                .or_else(|e| exception("UriFormatException", e.to_string()))?,
        )),
        (Obj::Uri(u), "GetLeftPart") => {
            let part = args.first().and_then(Value::as_i64).unwrap_or(2);
            let auth = format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            );
            Value::string(match part {
                0 => format!("{}://", u.scheme()),
                1 => auth,
                2 => format!("{auth}{}", u.path()),
                _ => format!(
                    "{auth}{}{}",
                    u.path(),
                    u.query().map(|q| format!("?{q}")).unwrap_or_default()
                ),
            })
        }
        (Obj::Regex(r), "IsMatch") => Value::Bool(r.is_match(&s(0))),
        (Obj::Regex(r), "Match") => {
            let text: Arc<str> = Arc::from(s(0).as_str());
            match_value(r, &text, 0)
        }
        (Obj::Regex(r), "Matches") => {
            let text: Arc<str> = Arc::from(s(0).as_str());
            let names: Vec<Option<String>> =
                r.capture_names().map(|n| n.map(str::to_string)).collect();
            Value::list(
                r.captures_iter(&text)
                    .map(|c| {
                        Value::obj(Obj::Match {
                            text: text.clone(),
                            groups: (0..c.len())
                                .map(|i| c.get(i).map(|m| (m.start(), m.end())))
                                .collect(),
                            names: names.clone(),
                        })
                    })
                    .collect(),
            )
        }
        (Obj::Regex(r), "Replace") => Value::string(
            r.replace_all(&s(0), replacement(&s(1)).as_str())
                .into_owned(),
        ),
        (Obj::Regex(r), "Split") => Value::list(r.split(&s(0)).map(Value::str).collect()),
        (Obj::Match { text, groups, .. }, "NextMatch") => {
            let _ = (text, groups);
            return exception(
                "NotSupportedException",
                "Match.NextMatch is not supported; use Regex.Matches",
            );
        }
        (
            Obj::Match {
                text,
                groups,
                names,
            },
            "Result",
        ) => {
            let mut out = s(0);
            for (i, g) in groups.iter().enumerate().rev() {
                let val = g.map_or("", |(a, b)| &text[a..b]);
                out = out.replace(&format!("${i}"), val);
                if let Some(Some(n)) = names.get(i) {
                    out = out.replace(&format!("${{{n}}}"), val);
                }
            }
            Value::string(out)
        }
        (Obj::Hasher { alg, key }, "ComputeHash") => {
            let data = super::misc::bytes_arg(m, super::arg(args, 0, name)?)?;
            Value::Bytes(Arc::new(hash(alg, key.as_deref(), &data)?))
        }
        (Obj::Hasher { .. }, "Dispose") => Value::Null,
        (Obj::Encoding(e), "GetBytes") => Value::Bytes(Arc::new(match *e {
            "ascii" => s(0)
                .chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
                .collect(),
            "latin1" => s(0)
                .chars()
                .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
                .collect(),
            "utf-16" => s(0).encode_utf16().flat_map(u16::to_le_bytes).collect(),
            _ => s(0).into_bytes(),
        })),
        (Obj::Encoding(e), "GetString") => {
            let mut b = super::misc::bytes_arg(m, super::arg(args, 0, name)?)?;
            if let (Some(i), Some(n)) = (
                args.get(1).and_then(Value::as_i64),
                args.get(2).and_then(Value::as_i64),
            ) {
                b = b.get(i as usize..(i + n) as usize).map_or_else(
                    || exception("ArgumentOutOfRangeException", "index/count"),
                    |x| Ok(x.to_vec()),
                )?;
            }
            Value::string(match *e {
                "utf-16" => String::from_utf16_lossy(
                    &b.chunks(2)
                        .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                        .collect::<Vec<_>>(),
                ),
                "latin1" | "ascii" => b.iter().map(|x| *x as char).collect(),
                _ => String::from_utf8_lossy(&b).into_owned(),
            })
        }
        (Obj::MultiMap { map, ignore_case }, "GetValueOrDefault") => {
            match multimap_get(map, *ignore_case, &s(0)) {
                Some(vs) => Value::string(vs.join(",")),
                None => args.get(1).cloned().unwrap_or(Value::Null),
            }
        }
        (Obj::MultiMap { map, ignore_case }, "ContainsKey") => {
            Value::Bool(multimap_get(map, *ignore_case, &s(0)).is_some())
        }
        (Obj::MultiMap { map, ignore_case }, "TryGetValue") => {
            match multimap_get(map, *ignore_case, &s(0)) {
                Some(vs) => {
                    outs.push(Value::list(vs.into_iter().map(Value::string).collect()));
                    Value::Bool(true)
                }
                None => {
                    outs.push(Value::Null);
                    Value::Bool(false)
                }
            }
        }
        (Obj::MultiMap { map, .. }, _) if super::linq::is_linq(name) => {
            let pairs = Value::list(
                map.iter()
                    .map(|(k, v)| {
                        Value::Pair(Arc::new((
                            Value::str(k),
                            Value::list(v.iter().map(|x| Value::str(x)).collect()),
                        )))
                    })
                    .collect(),
            );
            return super::linq::call(m, &pairs, name, targs, args);
        }
        (Obj::BodyData(b), "As") => return body_as(m, b, targs),
        (Obj::BodyData(b), "AsFormUrlEncodedContent") => form_content(b),
        (Obj::Body { which }, "As") => {
            let bytes = m.env.body(*which).unwrap_or_default();
            return body_as(m, &bytes, targs);
        }
        (Obj::Body { which }, "AsFormUrlEncodedContent") => {
            let bytes = m.env.body(*which).unwrap_or_default();
            form_content(&bytes)
        }
        (
            Obj::StringBuilder(sb),
            "Append" | "AppendLine" | "AppendFormat" | "Insert" | "Clear" | "Replace" | "Remove",
        ) => {
            {
                let mut g = sb.lock();
                match name {
                    "Append" => g.push_str(&s(0)),
                    "AppendLine" => {
                        g.push_str(&s(0));
                        g.push('\n');
                    }
                    "AppendFormat" => {
                        g.push_str(&super::string::format(&s(0), &args[1.min(args.len())..])?)
                    }
                    "Clear" => g.clear(),
                    "Replace" => *g = g.replace(&s(0), &s(1)),
                    _ => {
                        return exception("NotSupportedException", format!("StringBuilder.{name}"))
                    }
                }
                m.check_size(g.len())?;
            }
            v.clone()
        }
        (Obj::Random(state), "Next" | "NextDouble") => {
            let mut g = state.lock();
            *g ^= *g << 13;
            *g ^= *g >> 7;
            *g ^= *g << 17;
            let r = *g;
            match (name, args.len()) {
                ("NextDouble", _) => Value::Double((r >> 11) as f64 / (1u64 << 53) as f64),
                (_, 0) => Value::Int((r >> 33) as i32),
                (_, 1) => Value::Int((r % args[0].as_i64().unwrap_or(1).max(1) as u64) as i32),
                _ => {
                    let (lo, hi) = (args[0].as_i64().unwrap_or(0), args[1].as_i64().unwrap_or(1));
                    Value::Int((lo + (r % (hi - lo).max(1) as u64) as i64) as i32)
                }
            }
        }
        (Obj::IpAddress(a), "GetAddressBytes") => Value::Bytes(Arc::new(match a {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        })),
        (Obj::IpAddress(a), "MapToIPv4") => Value::obj(Obj::IpAddress(match a {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(*a, std::net::IpAddr::V4),
            other => *other,
        })),
        (Obj::IpAddress(a), "MapToIPv6") => Value::obj(Obj::IpAddress(match a {
            std::net::IpAddr::V4(v4) => std::net::IpAddr::V6(v4.to_ipv6_mapped()),
            other => *other,
        })),
        (Obj::Jwt(j), _) if name == "ToString" => Value::str(&j.raw),
        (Obj::Xml(n), _) => return super::xml::call(n, name, args),
        _ => {
            let _ = named;
            return exception(
                "MissingMethodException",
                format!("'{}' does not contain a method '{name}'", v.type_name()),
            );
        }
    })
}

pub fn construct(
    m: &mut Machine,
    ty: &RType,
    args: Vec<Value>,
    init: Option<Initializer>,
) -> EResult<Value> {
    let _ = init;
    let s = |i: usize| args.get(i).map(Value::to_display).unwrap_or_default();
    if let Some((alg, keyed)) = hash_alg_of(&ty.name) {
        let key = if keyed {
            Some(match args.first() {
                Some(k) => bytes_arg(m, k)?,
                None => (0..64).map(|_| rand::random::<u8>()).collect(),
            })
        } else {
            None
        };
        return Ok(Value::obj(Obj::Hasher { alg, key }));
    }
    Ok(match ty.ty {
        Ty::Uri => {
            let text = match (args.first(), args.get(1)) {
                (Some(Value::Obj(b)), Some(rel)) => match &**b {
                    Obj::Uri(base) => base
                        .join(&rel.to_display())
                        .map(|u| u.to_string())
                        .unwrap_or_default(),
                    _ => s(0),
                },
                _ => s(0),
            };
            Value::obj(Obj::Uri(url::Url::parse(&text).or_else(|e| {
                exception("UriFormatException", format!("Invalid URI: {e}"))
            })?))
        }
        Ty::Regex => Value::obj(Obj::Regex(regex(&s(0), args.get(1))?)),
        Ty::StringBuilder => Value::obj(Obj::StringBuilder(Mutex::new(s(0)))),
        Ty::Exception => Value::obj(Obj::Exception {
            ty: ty.name.clone(),
            message: s(0),
        }),
        Ty::IpAddress => Value::obj(Obj::IpAddress(match args.first() {
            Some(Value::Bytes(b)) if b.len() == 4 => {
                std::net::IpAddr::from([b[0], b[1], b[2], b[3]])
            }
            _ => return exception("ArgumentException", "new IPAddress(byte[4])"),
        })),
        Ty::Guid => Value::Guid(value::parse_guid(&s(0)).map_or_else(
            || exception("FormatException", "Unrecognized Guid format."),
            Ok,
        )?),
        Ty::Static if ty.name == "Random" => Value::obj(Obj::Random(Mutex::new(
            args.first()
                .and_then(Value::as_i64)
                .map_or_else(rand::random, |x| x as u64 | 1),
        ))),
        _ => {
            return exception(
                "NotSupportedException",
                format!("new {}() is not supported", ty.display()),
            )
        }
    })
}
