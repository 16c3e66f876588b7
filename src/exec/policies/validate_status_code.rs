//! `<validate-status-code>`: a response whose status the operation's definition does not list
//! (exactly, as its class `2XX`, or through `default`) is a problem for
//! `unspecified-status-code-action`, or for the `<status-code code action/>` naming it.

use super::validation::{action_for, finish, parse_action, Action, Problem};
use super::*;
use crate::exec::value;

#[derive(Clone, Debug)]
pub struct ValidateStatusCode {
    pub unspecified: Val<Action>,
    pub errors_variable: Option<String>,
    pub codes: Vec<(String, Action)>,
}

impl Policy for ValidateStatusCode {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let unspecified = r.required_value("unspecified-status-code-action", parse_action)?;
        let errors_variable = r.literal("errors-variable-name").map(|(v, _)| v);
        let items = r.items("status-code");
        let codes = super::validation::read_overrides(r, &items, "code");
        Some(ValidateStatusCode {
            unspecified,
            errors_variable,
            codes,
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.unspecified, f);
    }
}

impl RunsNow for ValidateStatusCode {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let unspecified = *value(&self.unspecified, cx)?;
        let Some(contract) = super::validation::contract(cx) else {
            return Ok(Step::Next);
        };
        let status = cx.resp.status;
        let mut problems = Vec::new();
        if contract.response(status).is_none() {
            problems.push(Problem {
                name: status.to_string(),
                kind: "StatusCode",
                rule: "Unspecified",
                details: format!("Unspecified status code {status} is not allowed."),
                action: action_for(&self.codes, &status.to_string(), unspecified),
            });
        }
        finish(
            cx,
            "validate-status-code",
            self.errors_variable.as_deref(),
            problems,
        )
    }
}
