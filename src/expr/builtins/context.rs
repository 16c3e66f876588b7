//! Members of the `context` object model that are collections or bodies: headers, matched
//! parameters, variables, message bodies, and `context.Trace`.

use std::sync::Arc;

use super::super::eval::{exception, EResult, Machine};
use super::super::types::RType;
use super::super::value::{Ctx, Obj, Value};
use super::names::Names;
use super::{arg, cast};

/// The names this family implements, registered beside their code: the binder accepts a
/// member, method or static name only when a family registers it (`names.rs` chains them).
pub(super) const NAMES: Names = Names {
    members: &[
        "Count",
        "Keys",
        "Key",
        "PrimaryKey",
        "SecondaryKey",
        "Groups",
        "Name",
        "Type",
        "Id",
        "StatusCode",
        "StatusReason",
        "Body",
        "Headers",
        "Url",
        "Method",
        "Path",
        "Query",
        "Message",
        "Source",
        "Reason",
        "Scope",
        "Section",
        "PolicyId",
    ],
    methods: &["ContainsKey", "TryGetValue", "GetValueOrDefault"],
    static_members: &[],
    static_methods: &[],
};

/// `context.User`'s members (APIM's IUserInfo), accepted by the binder on `context.User` only.
/// gatehouse has no user model, so `context.User` is always null: `context.User?.Email` reads
/// null and `context.User.Email` throws NullReferenceException, as in APIM for a call without a
/// user.
pub const USER_MEMBERS: &[&str] = &[
    "Email",
    "FirstName",
    "LastName",
    "Groups",
    "Id",
    "Identities",
    "Note",
    "RegistrationDate",
];

fn header_values(m: &Machine, c: Ctx, name: &str) -> Option<Vec<String>> {
    m.env.header(c, name)
}

pub fn member(m: &mut Machine, c: Ctx, name: &str) -> EResult<Value> {
    match (c, name) {
        (Ctx::RequestHeaders | Ctx::ResponseHeaders, "Count") => {
            Ok(Value::Int(m.env.header_names(c).len() as i32))
        }
        (Ctx::RequestHeaders | Ctx::ResponseHeaders, "Keys") => Ok(Value::list(
            m.env
                .header_names(c)
                .into_iter()
                .map(Value::string)
                .collect(),
        )),
        (Ctx::MatchedParameters, "Count") => {
            Ok(Value::Int(m.env.matched_parameters().len() as i32))
        }
        (Ctx::MatchedParameters, "Keys") => Ok(Value::list(
            m.env
                .matched_parameters()
                .into_iter()
                .map(|(k, _)| Value::string(k))
                .collect(),
        )),
        (Ctx::Variables, "Count") => Ok(Value::Int(m.env.variable_names().len() as i32)),
        (Ctx::Variables, "Keys") => Ok(Value::list(
            m.env
                .variable_names()
                .into_iter()
                .map(Value::string)
                .collect(),
        )),
        // Nullable context objects (Product, Subscription, User, LastError, Backend) read their
        // scalar members from the request.
        (
            Ctx::Product
            | Ctx::Subscription
            | Ctx::User
            | Ctx::LastError
            | Ctx::Backend
            | Ctx::Request
            | Ctx::Response
            | Ctx::Api
            | Ctx::Operation
            | Ctx::Deployment,
            _,
        ) => m
            .env
            .prop(c, name)
            .map_err(|e| super::super::eval::EvalError::Exception {
                ty: "MissingMemberException".into(),
                message: e.0,
            }),
        _ => exception(
            "MissingMemberException",
            format!("context object has no member '{name}'"),
        ),
    }
}

pub fn index(m: &mut Machine, c: Ctx, k: &Value) -> EResult<Value> {
    let key = k.to_display();
    match c {
        Ctx::RequestHeaders | Ctx::ResponseHeaders => match header_values(m, c, &key) {
            Some(vs) => Ok(Value::list(vs.into_iter().map(Value::string).collect())),
            None => exception(
                "KeyNotFoundException",
                format!("The given key '{key}' was not present in the dictionary."),
            ),
        },
        Ctx::MatchedParameters => match m
            .env
            .matched_parameters()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&key))
        {
            Some((_, v)) => Ok(Value::string(v)),
            None => exception(
                "KeyNotFoundException",
                format!("The given key '{key}' was not present in the dictionary."),
            ),
        },
        Ctx::Variables => m.env.variable(&key).map_or_else(
            || {
                exception(
                    "KeyNotFoundException",
                    format!("The given key '{key}' was not present in the dictionary."),
                )
            },
            Ok,
        ),
        _ => exception(
            "InvalidOperationException",
            "this context object cannot be indexed",
        ),
    }
}

pub fn iterate(m: &mut Machine, c: Ctx) -> EResult<Vec<Value>> {
    let pair = |k: String, v: Value| Value::Pair(Arc::new((Value::string(k), v)));
    Ok(match c {
        Ctx::RequestHeaders | Ctx::ResponseHeaders => m
            .env
            .header_names(c)
            .into_iter()
            .map(|n| {
                let vs = m.env.header(c, &n).unwrap_or_default();
                pair(n, Value::list(vs.into_iter().map(Value::string).collect()))
            })
            .collect(),
        Ctx::MatchedParameters => m
            .env
            .matched_parameters()
            .into_iter()
            .map(|(k, v)| pair(k, Value::string(v)))
            .collect(),
        Ctx::Variables => m
            .env
            .variable_names()
            .into_iter()
            .map(|k| {
                let v = m.env.variable(&k).unwrap_or(Value::Null);
                pair(k, v)
            })
            .collect(),
        _ => {
            return exception(
                "InvalidOperationException",
                "this context object is not enumerable",
            )
        }
    })
}

pub fn call(
    m: &mut Machine,
    c: Ctx,
    name: &str,
    targs: &[RType],
    args: &[Value],
    named: &[(String, Value)],
    outs: &mut Vec<Value>,
) -> EResult<Value> {
    let _ = named;
    let key = || arg(args, 0, name).map(Value::to_display);
    match (c, name) {
        (Ctx::Context, "Trace") => {
            let msg = key()?;
            m.env.trace(&msg);
            Ok(Value::Null)
        }
        (Ctx::RequestHeaders | Ctx::ResponseHeaders, "GetValueOrDefault") => {
            let joined = match arg(args, 0, name)? {
                Value::Str(k) => m.env.header_joined(c, k),
                other => m.env.header_joined(c, &other.to_display()),
            };
            Ok(match joined {
                Some(v) => Value::Str(v),
                None => args.get(1).cloned().unwrap_or(Value::Null),
            })
        }
        (Ctx::RequestHeaders | Ctx::ResponseHeaders, "ContainsKey") => {
            Ok(Value::Bool(header_values(m, c, &key()?).is_some()))
        }
        (Ctx::RequestHeaders | Ctx::ResponseHeaders, "TryGetValue") => {
            Ok(match header_values(m, c, &key()?) {
                Some(vs) => {
                    outs.push(Value::list(vs.into_iter().map(Value::string).collect()));
                    Value::Bool(true)
                }
                None => {
                    outs.push(Value::Null);
                    Value::Bool(false)
                }
            })
        }
        (Ctx::MatchedParameters, "GetValueOrDefault") => {
            let k = key()?;
            Ok(m.env
                .matched_parameters()
                .into_iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&k))
                .map_or_else(
                    || args.get(1).cloned().unwrap_or(Value::Null),
                    |(_, v)| Value::string(v),
                ))
        }
        (Ctx::MatchedParameters, "ContainsKey") => {
            let k = key()?;
            Ok(Value::Bool(
                m.env
                    .matched_parameters()
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(&k)),
            ))
        }
        (Ctx::MatchedParameters, "TryGetValue") => {
            let k = key()?;
            Ok(
                match m
                    .env
                    .matched_parameters()
                    .into_iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&k))
                {
                    Some((_, v)) => {
                        outs.push(Value::string(v));
                        Value::Bool(true)
                    }
                    None => {
                        outs.push(Value::Null);
                        Value::Bool(false)
                    }
                },
            )
        }
        (Ctx::Variables, "GetValueOrDefault") => {
            let k = key()?;
            match m.env.variable(&k) {
                // A type mismatch throws, as the APIM docs say (apim-reference.md §3.3).
                Some(v) => match targs.first() {
                    Some(t) => cast(m, v, t),
                    None => Ok(v),
                },
                None => Ok(match (args.get(1), targs.first()) {
                    (Some(d), _) => d.clone(),
                    (None, Some(t)) => super::default_of(t),
                    (None, None) => Value::Null,
                }),
            }
        }
        (Ctx::Variables, "ContainsKey") => Ok(Value::Bool(m.env.variable(&key()?).is_some())),
        (Ctx::Variables, "TryGetValue") => Ok(match m.env.variable(&key()?) {
            Some(v) => {
                outs.push(v);
                Value::Bool(true)
            }
            None => {
                outs.push(Value::Null);
                Value::Bool(false)
            }
        }),
        (
            Ctx::RequestHeaders | Ctx::ResponseHeaders | Ctx::MatchedParameters | Ctx::Variables,
            _,
        ) if super::linq::is_linq(name) => {
            let items = Value::list(iterate(m, c)?);
            super::linq::call(m, &items, name, targs, args)
        }
        (Ctx::Request | Ctx::Response, "Body") => {
            let which = if c == Ctx::Request {
                Ctx::RequestBody
            } else {
                Ctx::ResponseBody
            };
            Ok(Value::obj(Obj::Body { which }))
        }
        _ => exception(
            "MissingMethodException",
            format!("context object has no method '{name}'"),
        ),
    }
}
