//! `<authentication-managed-identity resource client-id output-token-variable-name
//! ignore-error>`: an access token for `resource` from the configured token provider
//! (`managed_identity`, see `exec::identity`), set as `Authorization: Bearer <token>` on the
//! backend request, or, with `output-token-variable-name`, stored in that variable instead
//! (APIM's "set the header yourself" form). Also a child of send-request (the call's
//! `Authorization`). Without a token: `TokenAcquisitionFailure` (on-error), or with
//! `ignore-error="true"` the pipeline goes on without it.

use super::*;
use crate::exec::value;
use crate::expr::value::Value;
use http::header;

#[derive(Clone, Debug)]
pub struct ManagedIdentity {
    pub resource: Val<String>,
    /// The user-assigned identity (`None`: the default one).
    pub client_id: Option<String>,
    pub output_variable: Option<String>,
    pub ignore_error: bool,
}

impl Policy for ManagedIdentity {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        Some(read(r, true))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.resource, f);
    }
}

/// Its attributes (as a policy, or as send-request's child without `output-token-variable-name`).
pub fn read(r: &mut Reader, policy: bool) -> ManagedIdentity {
    let resource = r
        .required_value("resource", |s| Ok(s.trim().to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let client_id = r
        .parsed_literal("client-id", |s| Ok(s.trim().to_string()))
        .filter(|s| !s.is_empty());
    let output_variable = if policy {
        r.parsed_literal("output-token-variable-name", |s| Ok(s.trim().to_string()))
    } else {
        None
    };
    let ignore_error = r
        .parsed_literal("ignore-error", parse_bool)
        .unwrap_or(false);
    ManagedIdentity {
        resource,
        client_id,
        output_variable,
        ignore_error,
    }
}

impl Waits for ManagedIdentity {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let token = match token(self, cx).await {
            Ok(t) => t,
            Err(_) if self.ignore_error => return Ok(Step::Next),
            Err(e) => return Err(e),
        };
        match &self.output_variable {
            Some(var) => cx.req.set_variable(var, Value::string(token.to_string())),
            None => {
                let v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    StepError::new(
                        crate::exec::ErrorKind::TokenAcquisitionFailure,
                        "the token is not a header value",
                    )
                })?;
                cx.req_headers.set(&header::AUTHORIZATION, &[v]);
            }
        }
        Ok(Step::Next)
    }
}

/// The token for this statement's resource and identity.
pub async fn token(
    m: &ManagedIdentity,
    cx: &mut ExecCtx<'_>,
) -> Result<std::sync::Arc<str>, StepError> {
    let resource = value(&m.resource, cx)?.into_owned();
    let Some(provider) = cx.gw.managed_identity.clone() else {
        // Load refuses such a document; a gateway built without the check still fails cleanly.
        return Err(StepError::new(
            crate::exec::ErrorKind::TokenAcquisitionFailure,
            "no token provider is configured (managed_identity)",
        ));
    };
    provider
        .token(m.client_id.as_deref(), &resource, cx.transport)
        .await
        .map_err(|(kind, message)| StepError::new(kind, message))
}
