//! `<validate-parameters>` (inbound): the request's path, query and header parameters against
//! the operation's definition. A defined parameter that is missing when required, or whose
//! value does not match its schema, is a problem for `specified-parameter-action`; a query
//! parameter or header the definition does not define is one for
//! `unspecified-parameter-action` (standard HTTP headers and the subscription key excepted).
//! `<headers>`, `<query>` (both actions) and `<path>` (specified only) override the actions per
//! place, and their `<parameter name action/>` per parameter.

use super::validation::{
    action_for, check_value, finish, parse_action, Action, Problem, STANDARD_HEADERS,
};
use super::*;
use crate::config::contract::Location;
use crate::exec::value;

#[derive(Clone, Debug, Default)]
pub struct Place {
    pub specified: Option<Action>,
    pub unspecified: Option<Action>,
    pub parameters: Vec<(String, Action)>,
}

#[derive(Clone, Debug)]
pub struct ValidateParameters {
    pub specified: Val<Action>,
    pub unspecified: Val<Action>,
    pub errors_variable: Option<String>,
    pub headers: Place,
    pub query: Place,
    pub path: Place,
}

fn read_place(r: &mut Reader, el: &crate::policy::xml::Element, path: bool) -> Place {
    let mut c = r.child(el);
    let specified = c.parsed_literal("specified-parameter-action", parse_action);
    let unspecified = if path {
        None
    } else {
        c.parsed_literal("unspecified-parameter-action", parse_action)
    };
    let items = c.items("parameter");
    let parameters = super::validation::read_overrides(&mut c, &items, "name");
    c.finish();
    Place {
        specified,
        unspecified,
        parameters,
    }
}

impl Policy for ValidateParameters {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let specified = r.required_value("specified-parameter-action", parse_action);
        let unspecified = r.required_value("unspecified-parameter-action", parse_action);
        let errors_variable = r.literal("errors-variable-name").map(|(v, _)| v);
        let (mut headers, mut query, mut path) =
            (Place::default(), Place::default(), Place::default());
        for el in r.children() {
            match el.name.as_str() {
                "headers" => headers = read_place(r, el, false),
                "query" => query = read_place(r, el, false),
                "path" => path = read_place(r, el, true),
                _ => not_allowed(
                    r.diags,
                    el,
                    "validate-parameters",
                    "<headers>, <query> or <path>",
                ),
            }
        }
        Some(ValidateParameters {
            specified: specified?,
            unspecified: unspecified?,
            errors_variable,
            headers,
            query,
            path,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.specified, f);
        visit_val(&self.unspecified, f);
    }
}

impl RunsNow for ValidateParameters {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let specified = *value(&self.specified, cx)?;
        let unspecified = *value(&self.unspecified, cx)?;
        let Some(contract) = super::validation::contract(cx) else {
            return Ok(Step::Next);
        };
        let query = crate::codec::query::parse(&cx.req.info.original_query);
        let mut problems = Vec::new();
        for p in &contract.parameters {
            let (place, kind) = match p.location {
                Location::Path => (&self.path, "PathParameter"),
                Location::Query => (&self.query, "QueryParameter"),
                Location::Header => (&self.headers, "Header"),
            };
            let action = action_for(
                &place.parameters,
                &p.name,
                place.specified.unwrap_or(specified),
            );
            let values: Vec<String> = match p.location {
                Location::Path => cx
                    .req
                    .matched
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(&p.name))
                    .map(|(_, v)| v.clone())
                    .collect(),
                Location::Query => query
                    .iter()
                    .filter(|(k, _)| *k == p.name)
                    .map(|(_, v)| v.clone())
                    .collect(),
                Location::Header => super::validation::header_values(&*cx.req_headers, &p.name),
            };
            if values.is_empty() {
                if p.required {
                    problems.push(Problem {
                        name: p.name.clone(),
                        kind,
                        rule: "Required",
                        details: format!("Required {} {} is missing.", noun(p.location), p.name),
                        action,
                    });
                }
                continue;
            }
            if let Some(schema) = &p.schema {
                if let Some(e) = check_value(schema, &values.join(",")) {
                    problems.push(Problem {
                        name: p.name.clone(),
                        kind,
                        rule: "Schema",
                        details: format!(
                            "{} {} does not match its definition: {e}",
                            capitalized(noun(p.location)),
                            p.name
                        ),
                        action,
                    });
                }
            }
        }
        let defined = |loc: Location, name: &str| {
            contract
                .parameters
                .iter()
                .any(|p| p.location == loc && p.name.eq_ignore_ascii_case(name))
        };
        let api = cx.req.info.api.map(|a| &cx.gw.apis[a]);
        let key_query = api.map(|a| a.key_query.as_str()).unwrap_or("");
        let key_header = api.map(|a| a.key_header.as_str()).unwrap_or("");
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in &query {
            if defined(Location::Query, k) || k == key_query || seen.contains(&k.as_str()) {
                continue;
            }
            seen.push(k);
            problems.push(Problem {
                name: k.clone(),
                kind: "QueryParameter",
                rule: "Unspecified",
                details: format!("Unspecified query parameter {k} is not allowed."),
                action: action_for(
                    &self.query.parameters,
                    k,
                    self.query.unspecified.unwrap_or(unspecified),
                ),
            });
        }
        for name in cx.req_headers.names() {
            let lower = name.to_ascii_lowercase();
            if defined(Location::Header, &name)
                || lower == key_header
                || STANDARD_HEADERS.contains(&lower.as_str())
            {
                continue;
            }
            problems.push(Problem {
                details: format!("Unspecified header {name} is not allowed."),
                action: action_for(
                    &self.headers.parameters,
                    &name,
                    self.headers.unspecified.unwrap_or(unspecified),
                ),
                name,
                kind: "Header",
                rule: "Unspecified",
            });
        }
        finish(
            cx,
            "validate-parameters",
            self.errors_variable.as_deref(),
            problems,
        )
    }
}

fn noun(l: Location) -> &'static str {
    match l {
        Location::Path => "path parameter",
        Location::Query => "query parameter",
        Location::Header => "header",
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}
