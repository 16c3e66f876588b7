//! `<validate-headers>`: the response's headers against the headers the definition gives for
//! its status: a listed header that is missing (when required) or whose value does not match
//! its schema is a problem for `specified-header-action`; a header the definition does not
//! list is one for `unspecified-header-action` (standard HTTP headers excepted); `<header name
//! action/>` overrides either for one header.

use super::validation::{
    action_for, check_value, finish, parse_action, Action, Problem, STANDARD_HEADERS,
};
use super::*;
use crate::exec::value;

#[derive(Clone, Debug)]
pub struct ValidateHeaders {
    pub specified: Val<Action>,
    pub unspecified: Val<Action>,
    pub errors_variable: Option<String>,
    pub headers: Vec<(String, Action)>,
}

impl Policy for ValidateHeaders {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let specified = r.required_value("specified-header-action", parse_action);
        let unspecified = r.required_value("unspecified-header-action", parse_action);
        let errors_variable = r.literal("errors-variable-name").map(|(v, _)| v);
        let items = r.items("header");
        let headers = super::validation::read_overrides(r, &items, "name");
        Some(ValidateHeaders {
            specified: specified?,
            unspecified: unspecified?,
            errors_variable,
            headers,
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

impl RunsNow for ValidateHeaders {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let specified = *value(&self.specified, cx)?;
        let unspecified = *value(&self.unspecified, cx)?;
        let Some(contract) = super::validation::contract(cx) else {
            return Ok(Step::Next);
        };
        let Some(response) = contract.response(cx.resp.status) else {
            return Ok(Step::Next);
        };
        let mut problems = Vec::new();
        for h in &response.headers {
            let action = action_for(&self.headers, &h.name, specified);
            let values = super::validation::header_values(&*cx.resp_headers, &h.name);
            if values.is_empty() {
                if h.required {
                    problems.push(Problem {
                        name: h.name.clone(),
                        kind: "ResponseHeader",
                        rule: "Required",
                        details: format!("Required header {} is missing.", h.name),
                        action,
                    });
                }
                continue;
            }
            if let Some(schema) = &h.schema {
                if let Some(e) = check_value(schema, &values.join(",")) {
                    problems.push(Problem {
                        name: h.name.clone(),
                        kind: "ResponseHeader",
                        rule: "Schema",
                        details: format!("Header {} does not match its definition: {e}", h.name),
                        action,
                    });
                }
            }
        }
        for name in cx.resp_headers.names() {
            let listed = response
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(&name));
            if listed || STANDARD_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            problems.push(Problem {
                details: format!("Unspecified header {name} is not allowed."),
                action: action_for(&self.headers, &name, unspecified),
                name,
                kind: "ResponseHeader",
                rule: "Unspecified",
            });
        }
        finish(
            cx,
            "validate-headers",
            self.errors_variable.as_deref(),
            problems,
        )
    }
}
