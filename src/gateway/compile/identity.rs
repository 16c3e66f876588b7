//! `managed_identity`: the token provider `authentication-managed-identity` uses, and the
//! load-time check that every such policy has one and names a configured identity. Problems
//! are C067.

use std::collections::HashMap;

use super::*;
use crate::exec::identity::{Credential, Identity, ResourceParam, TokenProvider};

/// The configured token provider, with its secrets read from named values.
pub(super) fn token_provider(
    cfg: &LoadedConfig,
    src: &Sources,
    d: &mut Diagnostics,
) -> Option<Arc<TokenProvider>> {
    let spec = cfg.raw.managed_identity.as_ref()?;
    let mut ok = true;
    if !(spec.token_url.starts_with("https://") || spec.token_url.starts_with("http://"))
        || url::Url::parse(&spec.token_url).is_err()
    {
        ok = false;
        d.error(
            "C067",
            cfg.locate(None, "token_url", &spec.token_url),
            format!(
                "managed_identity.token_url: expected an http(s) URL, found {:?}",
                spec.token_url
            ),
        );
    }
    let mut credential = |what: &str,
                          secret: &Option<String>,
                          file: &Option<String>,
                          anchor: &str|
     -> Option<Credential> {
        match (secret, file) {
            (Some(name), None) => match src.named.get(name) {
                Some(v) => Some(Credential::Secret(v.value.clone())),
                None => {
                    d.error(
                        "C067",
                        cfg.locate(None, "client_secret", name),
                        format!("{what}.client_secret: no named value `{name}`"),
                    );
                    None
                }
            },
            (None, Some(f)) => Some(Credential::TokenFile(cfg.dir.join(f))),
            _ => {
                d.error(
                    "C067",
                    cfg.locate(None, anchor, ""),
                    format!("{what}: give exactly one of `client_secret` (a named value) or `token_file`"),
                );
                None
            }
        }
    };
    let default = credential(
        "managed_identity",
        &spec.client_secret,
        &spec.token_file,
        "managed_identity",
    )
    .map(|c| Identity {
        client_id: spec.client_id.clone(),
        credential: c,
    });
    let mut identities = HashMap::new();
    for (id, c) in &spec.identities {
        match credential(
            &format!("managed_identity.identities.{id}"),
            &c.client_secret,
            &c.token_file,
            id,
        ) {
            Some(credential) => {
                identities.insert(
                    id.clone(),
                    Identity {
                        client_id: id.clone(),
                        credential,
                    },
                );
            }
            None => ok = false,
        }
    }
    let default = default?;
    ok.then(|| {
        Arc::new(TokenProvider::new(
            spec.token_url.clone(),
            default,
            identities,
            match spec.resource_as {
                crate::config::ResourceParam::Scope => ResourceParam::Scope,
                crate::config::ResourceParam::Resource => ResourceParam::Resource,
            },
            spec.refresh_before.0,
            spec.timeout.0,
        ))
    })
}

/// Every `authentication-managed-identity` (also inside send-request) needs the provider, and
/// its `client-id` must be a configured identity.
pub(super) fn check_identity_refs(
    cfg: &LoadedConfig,
    apis: &[Api],
    provider: Option<&TokenProvider>,
    d: &mut Diagnostics,
) {
    let mut reported = std::collections::HashSet::new();
    each_statement(apis, &mut |s| {
        let uses = match &s.kind {
            StmtKind::AuthenticationManagedIdentity(m) => Some(m.client_id.as_deref()),
            StmtKind::SendRequest(r) => r.managed_identity.as_ref().map(|m| m.client_id.as_deref()),
            _ => None,
        };
        let Some(client_id) = uses else { return };
        let problem = match provider {
            None if cfg.raw.managed_identity.is_some() => return, // reported with the section
            None => Some("needs a token provider: configure `managed_identity` (token_url, client_id, client_secret or token_file)".to_string()),
            Some(p) if p.identity(client_id).is_none() => Some(format!(
                "names client-id `{}`, which is not under `managed_identity.identities`",
                client_id.unwrap_or_default()
            )),
            Some(_) => None,
        };
        if let Some(p) = problem {
            if reported.insert(s.span.to_string()) {
                d.error("C067", s.span.clone(), format!("<{}> {p}", s.element));
            }
        }
    });
}
