//! `<cache-lookup-value>`, `<cache-store-value>`, `<cache-remove-value>`: a key/value cache with
//! TTL, in memory or (with `caching-type` external / prefer-external and a Redis store) shared.
//! Values keep their type (string, number, bool, JSON). Failures are soft: a miss, or no write.
//! `external` without a Redis store uses this instance's memory (APIM would refuse the request).

use std::time::Duration;

use crate::exec::{eval, value, ExecCtx, StepError};
use crate::expr::value::{from_json, json_text};
use crate::expr::Value;
use crate::policy::{CachingType, Val};

fn external(c: CachingType) -> bool {
    c != CachingType::Internal
}

fn encode(v: &Value) -> Vec<u8> {
    let (tag, text) = match v {
        Value::Null => ("n", String::new()),
        Value::Bool(b) => ("b", b.to_string()),
        Value::Int(i) => ("i", i.to_string()),
        Value::Long(i) => ("l", i.to_string()),
        Value::Double(d) => ("d", d.to_string()),
        Value::JObject(_) | Value::JArray(_) => ("j", json_text(v, false)),
        other => ("s", other.to_display()),
    };
    format!("{tag}:{text}").into_bytes()
}

fn decode(b: &[u8]) -> Value {
    let s = String::from_utf8_lossy(b);
    let (tag, text) = s.split_once(':').unwrap_or(("s", &s));
    match tag {
        "n" => Value::Null,
        "b" => Value::Bool(text == "true"),
        "i" => text.parse().map_or(Value::Null, Value::Int),
        "l" => text.parse().map_or(Value::Null, Value::Long),
        "d" => text.parse().map_or(Value::Null, Value::Double),
        "j" => serde_json::from_str(text).map_or_else(|_| Value::str(text), from_json),
        _ => Value::str(text),
    }
}

pub async fn lookup(
    key: &Val<String>,
    variable: &str,
    default: Option<&Val<String>>,
    caching: CachingType,
    cx: &mut ExecCtx<'_>,
) -> Result<(), StepError> {
    let key = value(key, cx)?.into_owned();
    let found = get(cx.store, &key, caching).await;
    assign(found, variable, default, cx)
}

/// The cached bytes of `key` (a miss is `None`).
pub async fn get(
    store: &dyn crate::store::Store,
    key: &str,
    caching: CachingType,
) -> Option<Vec<u8>> {
    store
        .cache_get(&format!("v:{key}"), external(caching))
        .await
}

/// Set the variable from a lookup's result (or its default on a miss).
pub fn assign(
    found: Option<Vec<u8>>,
    variable: &str,
    default: Option<&Val<String>>,
    cx: &mut ExecCtx<'_>,
) -> Result<(), StepError> {
    match found {
        Some(b) => cx.req.set_variable(variable, decode(&b)),
        None => {
            // A miss sets the default when one is given; otherwise the variable is not created.
            if let Some(d) = default {
                let v = match d {
                    Val::Lit(s) => Value::str(s),
                    Val::Expr(e) => eval(e, cx)?,
                };
                cx.req.set_variable(variable, v);
            }
        }
    }
    Ok(())
}

pub async fn store(
    key: &Val<String>,
    v: &Val<String>,
    duration: &Val<u64>,
    caching: CachingType,
    cx: &mut ExecCtx<'_>,
) -> Result<(), StepError> {
    let key = value(key, cx)?.into_owned();
    let secs = *value(duration, cx)?;
    let val = match v {
        Val::Lit(s) => Value::str(s),
        Val::Expr(e) => eval(e, cx)?,
    };
    if secs > 0 {
        cx.store
            .cache_set(
                &format!("v:{key}"),
                encode(&val),
                Duration::from_secs(secs),
                external(caching),
            )
            .await;
    }
    Ok(())
}

pub async fn remove(
    key: &Val<String>,
    caching: CachingType,
    cx: &mut ExecCtx<'_>,
) -> Result<(), StepError> {
    let key = value(key, cx)?.into_owned();
    cx.store
        .cache_remove(&format!("v:{key}"), external(caching))
        .await;
    Ok(())
}
