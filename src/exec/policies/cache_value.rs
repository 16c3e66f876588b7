//! `<cache-lookup-value>`, `<cache-store-value>`, `<cache-remove-value>`: a key/value cache with
//! TTL, in memory or (with `caching-type` external / prefer-external and a Redis store) shared.
//! Values keep their type (string, number, bool, JSON). Failures are soft: a miss, or no write.
//! `external` without a Redis store uses this instance's memory (APIM would refuse the request).

use super::*;
use std::time::Duration;

use super::cache::{parse_caching, CachingType};
use crate::exec::{eval, value};
use crate::expr::value::{from_json, json_text};
use crate::expr::Value;

#[derive(Clone, Debug)]
pub struct CacheLookupValue {
    pub key: Val<String>,
    pub variable: String,
    pub default: Option<Val<String>>,
    pub caching: CachingType,
}

impl Policy for CacheLookupValue {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let key = r
            .required_value("key", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        let variable = r.required_literal("variable-name").unwrap_or_default();
        let default = r.value("default-value", |s| Ok(s.to_string()));
        let caching = parse_caching(r);
        Some(CacheLookupValue {
            key,
            variable,
            default,
            caching,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.key, f);
        if let Some(d) = &self.default {
            visit_val(d, f);
        }
    }
}

impl Waits for CacheLookupValue {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let key = value(&self.key, cx)?.into_owned();
        let found = get(cx.store, &key, self.caching).await;
        assign(found, &self.variable, self.default.as_ref(), cx).map(|_| Step::Next)
    }
}

#[derive(Clone, Debug)]
pub struct CacheStoreValue {
    pub key: Val<String>,
    pub value: Val<String>,
    pub duration: Val<u64>,
    pub caching: CachingType,
}

impl Policy for CacheStoreValue {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let key = r
            .required_value("key", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        let value = r
            .required_value("value", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        let duration = r
            .required_value("duration", parse_u64)
            .unwrap_or(Val::Lit(0));
        let caching = parse_caching(r);
        Some(CacheStoreValue {
            key,
            value,
            duration,
            caching,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.key, f);
        visit_val(&self.value, f);
        visit_val(&self.duration, f);
    }
}

impl Waits for CacheStoreValue {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let key = value(&self.key, cx)?.into_owned();
        let secs = *value(&self.duration, cx)?;
        let val = match &self.value {
            Val::Lit(s) => Value::str(s),
            Val::Expr(e) => eval(e, cx)?,
        };
        if secs > 0 {
            cx.store
                .cache_set(
                    &format!("v:{key}"),
                    encode(&val),
                    Duration::from_secs(secs),
                    external(self.caching),
                )
                .await;
        }
        Ok(Step::Next)
    }
}

#[derive(Clone, Debug)]
pub struct CacheRemoveValue {
    pub key: Val<String>,
    pub caching: CachingType,
}

impl Policy for CacheRemoveValue {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let key = r
            .required_value("key", |s| Ok(s.to_string()))
            .unwrap_or(Val::Lit(String::new()));
        let caching = parse_caching(r);
        Some(CacheRemoveValue { key, caching })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.key, f);
    }
}

impl Waits for CacheRemoveValue {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let key = value(&self.key, cx)?.into_owned();
        cx.store
            .cache_remove(&format!("v:{key}"), external(self.caching))
            .await;
        Ok(Step::Next)
    }
}

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
