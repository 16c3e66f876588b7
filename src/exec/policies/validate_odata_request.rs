//! `<validate-odata-request>` (inbound): the request's OData conformance as far as the
//! protocol fixes it without the service's model: the `OData-Version` header (else
//! `default-odata-version`) must be 4.0 or 4.01 and within `min-odata-version` /
//! `max-odata-version`; an `OData-MaxVersion` below the minimum is refused; system query
//! options must be ones OData defines (case-insensitive and `$`-optional from 4.01 on),
//! at most once each, with `$top` / `$skip` non-negative integers and `$count` a boolean; the
//! body at most `max-size` bytes. A problem answers 400 with its text (the policy has no
//! action attribute: APIM rejects), and the problems are stored in `error-variable-name`.
//! Checking names against the entity model (CSDL) is not done: gatehouse has no OData import.

use super::validation::{finish, Action, Problem};
use super::*;
use crate::exec::value;

const OPTIONS: &[&str] = &[
    "filter",
    "select",
    "expand",
    "orderby",
    "top",
    "skip",
    "count",
    "search",
    "format",
    "compute",
    "index",
    "skiptoken",
    "deltatoken",
    "apply",
    "schemaversion",
    "levels",
    "id",
];

#[derive(Clone, Debug)]
pub struct ValidateODataRequest {
    pub errors_variable: Option<String>,
    pub default_version: Val<String>,
    pub min_version: Option<Val<String>>,
    pub max_version: Option<Val<String>>,
    pub max_size: Option<Val<u64>>,
}

/// `4.0` / `4.01` as a comparable number (hundredths).
fn version(s: &str) -> Option<u32> {
    match s.trim() {
        "4.0" | "4" => Some(400),
        "4.01" => Some(401),
        _ => None,
    }
}

fn check_version(s: &str) -> Result<String, Invalid> {
    version(s)
        .map(|_| s.trim().to_string())
        .ok_or_else(|| crate::invalid!("must be an OData version: 4.0 or 4.01"))
}

impl Policy for ValidateODataRequest {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let errors_variable = r.literal("error-variable-name").map(|(v, _)| v);
        let default_version = r
            .value("default-odata-version", check_version)
            .unwrap_or(Val::Lit("4.0".into()));
        let min_version = r.value("min-odata-version", check_version);
        let max_version = r.value("max-odata-version", check_version);
        let max_size = r.value("max-size", parse_u64);
        Some(ValidateODataRequest {
            errors_variable,
            default_version,
            min_version,
            max_version,
            max_size,
        })
    }

    fn needs(&self) -> Needs {
        Needs {
            request_body: self.max_size.is_some(),
            ..Needs::NONE
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.default_version, f);
        for v in [&self.min_version, &self.max_version].into_iter().flatten() {
            visit_val(v, f);
        }
        if let Some(m) = &self.max_size {
            visit_val(m, f);
        }
    }
}

impl RunsNow for ValidateODataRequest {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let mut problems = Vec::new();
        let mut problem = |name: &str, rule: &'static str, details: String| {
            problems.push(Problem {
                name: name.to_string(),
                kind: "ODataRequest",
                rule,
                details,
                action: Action::Prevent,
            })
        };
        let header = |cx: &ExecCtx, n: &str| {
            super::validation::header_values(&*cx.req_headers, n)
                .into_iter()
                .next()
        };
        let default = value(&self.default_version, cx)?.into_owned();
        let min = match &self.min_version {
            Some(v) => version(&value(v, cx)?),
            None => None,
        };
        let max = match &self.max_version {
            Some(v) => version(&value(v, cx)?),
            None => None,
        };
        let given = header(cx, "odata-version");
        let text = given.clone().unwrap_or(default);
        let v = match version(&text) {
            Some(v) => v,
            None => {
                problem(
                    "OData-Version",
                    "Version",
                    format!("OData version {} is not supported.", text.trim()),
                );
                400
            }
        };
        if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
            problem(
                "OData-Version",
                "Version",
                format!("OData version {} is not allowed.", text.trim()),
            );
        }
        if let Some(mv) = header(cx, "odata-maxversion") {
            if version(&mv).is_none_or(|m| min.is_some_and(|min| m < min)) {
                problem(
                    "OData-MaxVersion",
                    "Version",
                    format!("OData-MaxVersion {} is not allowed.", mv.trim()),
                );
            }
        }
        let mut seen: Vec<String> = Vec::new();
        for (k, val) in crate::codec::query::parse(&cx.req.info.original_query) {
            // 4.01: system options are case-insensitive and their `$` is optional.
            let (name, dollar) = match k.strip_prefix('$') {
                Some(n) => (n.to_string(), true),
                None => (k.clone(), false),
            };
            let known = |n: &str| OPTIONS.contains(&n);
            let option = if v >= 401 {
                let lower = name.to_ascii_lowercase();
                (dollar || known(&lower)).then_some(lower)
            } else {
                dollar.then_some(name)
            };
            let Some(option) = option else {
                continue;
            };
            if !known(&option) {
                problem(
                    &k,
                    "QueryOption",
                    format!("Unknown system query option {k}."),
                );
                continue;
            }
            if seen.contains(&option) {
                problem(
                    &k,
                    "QueryOption",
                    format!("Query option {k} is given more than once."),
                );
                continue;
            }
            let bad = match option.as_str() {
                "top" | "skip" => val.trim().parse::<u64>().is_err(),
                "count" => !matches!(val.trim(), "true" | "false"),
                _ => false,
            };
            if bad {
                problem(
                    &k,
                    "QueryOption",
                    format!("The value {val:?} of query option {k} is not valid."),
                );
            }
            seen.push(option);
        }
        if let Some(m) = &self.max_size {
            let max_size = *value(m, cx)?;
            let len = cx.section_body().map_or(0, |b| b.len());
            if len as u64 > max_size {
                problem(
                    "body",
                    "MaxSize",
                    format!(
                        "Request's body is {len} bytes long and it exceeds the limit of {max_size} bytes."
                    ),
                );
            }
        }
        finish(
            cx,
            "validate-odata-request",
            self.errors_variable.as_deref(),
            problems,
        )
    }
}
