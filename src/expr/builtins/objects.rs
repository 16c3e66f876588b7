//! Members and methods of object values (URLs, regex matches, JWTs, bodies, builders,
//! hashers, ...), and constructors.

use std::sync::Arc;

use parking_lot::Mutex;

use super::super::eval::{exception, EResult, Machine};
use super::super::types::{RType, Ty};
use super::super::value::{self, Obj, Value};
use super::names::Names;
use super::{body::*, crypto::*, jwt::*, regexp::*, uri::*};
use super::{enum_val, Initializer};

/// The names this family implements, registered beside their code: the binder accepts a
/// member, method or static name only when a family registers it (`names.rs` chains them).
pub(super) const NAMES: Names = Names {
    members: &[
        "Length",
        "Count",
        "Keys",
        "Values",
        "Value",
        "Success",
        "Groups",
        "Index",
        "Captures",
        "Name",
        "UserId",
        "Username",
        "Password",
        "StatusCode",
        "StatusReason",
        "Body",
        "Headers",
        "Url",
        "Method",
        "Scheme",
        "Host",
        "Port",
        "Path",
        "Query",
        "QueryString",
        "AbsoluteUri",
        "AbsolutePath",
        "PathAndQuery",
        "Authority",
        "Segments",
        "OriginalString",
        "Fragment",
        "Message",
        "AddressFamily",
        "IsIPv4MappedToIPv6",
        "Next",
        "InnerException",
        "StackTrace",
    ],
    methods: &[
        "ToString",
        "Replace",
        "Split",
        "Insert",
        "Remove",
        "Append",
        "AppendLine",
        "AppendFormat",
        "Clear",
        "ContainsKey",
        "TryGetValue",
        "GetValueOrDefault",
        "Value",
        "Values",
        "As",
        "AsFormUrlEncodedContent",
        "IsMatch",
        "Match",
        "Matches",
        "NextMatch",
        "Result",
        "ComputeHash",
        "GetBytes",
        "GetString",
        "GetAddressBytes",
        "Next",
        "NextDouble",
        "ToUri",
        "GetLeftPart",
        "Dispose",
        "MapToIPv4",
        "MapToIPv6",
    ],
    static_members: &[],
    static_methods: &[
        "ToString",
        "IsMatch",
        "Match",
        "Matches",
        "Replace",
        "Split",
        "GetBytes",
        "GetString",
        "ComputeHash",
    ],
};

pub fn member(m: &mut Machine, v: &Value, name: &str) -> EResult<Value> {
    let Value::Obj(o) = v else {
        return exception("MissingMemberException", name.to_string());
    };
    if let Obj::X509(c) = &**o {
        return super::x509::member(c, name);
    }
    if let Obj::XName { .. } | Obj::XNamespace(_) = &**o {
        return super::xml::name_member(o, name);
    }
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
    if let Obj::X509(c) = &**o {
        return super::x509::call(c, name);
    }
    if let Obj::XName { .. } | Obj::XNamespace(_) = &**o {
        return super::xml::name_call(o, name, args);
    }
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
            matches_value(r, text)
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
            let data = super::crypto::bytes_arg(m, super::arg(args, 0, name)?)?;
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
            let mut b = super::crypto::bytes_arg(m, super::arg(args, 0, name)?)?;
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
        // `new X509Certificate2(byte[])`: DER or PEM. (The string constructor takes a file
        // name in .NET; policies have no files.)
        Ty::X509 => match args.first() {
            Some(Value::Bytes(b)) => Value::obj(Obj::X509(super::x509::parse(b)?)),
            _ => {
                return exception(
                    "ArgumentException",
                    "new X509Certificate2(byte[]) takes the certificate's bytes",
                )
            }
        },
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
