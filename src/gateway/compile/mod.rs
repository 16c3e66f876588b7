//! `compile`: configuration + policy documents -> an immutable `Gateway`, with every problem
//! collected (never only the first). One room per thing built: certificates, listeners,
//! backends, products and subscriptions, policy documents, APIs, pipelines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ahash::AHashMap;
use http::{HeaderName, HeaderValue, Method};

use super::*;
use crate::config::{LoadedConfig, NamedValue};
use crate::diag::{Diagnostics, Invalid, Span};
use crate::exec::policies::compose::{self, Fragments};
use crate::exec::policies::set_backend_service::BackendTarget;
use crate::exec::policies::{self, PolicyDoc, Stmt, StmtKind};
use crate::policy::reader::{self as parse, Env};
use crate::policy::{self, Scope, Section, Val};
use crate::upstream;

mod apis;
mod backends;
mod certificates;
mod documents;
mod identity;
mod listeners;
pub use listeners::redis_target;
mod pipelines;
mod schemas;
mod subscriptions;

pub(crate) use apis::clean_path;
use apis::*;
use backends::*;
use certificates::*;
use documents::*;
use listeners::*;
pub use pipelines::build_pipeline;
use pipelines::Pipelines;
use subscriptions::*;

use super::load::Sources;

/// Policy documents found on disk, keyed by what they apply to.
struct PolicySet {
    global: PolicyDoc,
    products: AHashMap<String, PolicyDoc>,
    apis: AHashMap<String, PolicyDoc>,
    operations: AHashMap<(String, String), PolicyDoc>,
    /// Stands for every scope without a document of its own.
    empty: PolicyDoc,
}

/// Compile a loaded configuration and the files the loader read for it (`load::Sources`); no
/// I/O happens here. On success, warnings come back with the gateway. No diagnostic shows a
/// secret named value's value: each is masked as `***`.
pub fn compile(cfg: &LoadedConfig, src: &Sources) -> Result<(Gateway, Diagnostics), Diagnostics> {
    let mut secrets = Vec::new();
    let result = compile_unmasked(cfg, src, &mut secrets);
    match result {
        Ok((gw, mut w)) => {
            w.mask_secrets(&secrets);
            Ok((gw, w))
        }
        Err(mut d) => {
            d.mask_secrets(&secrets);
            Err(d)
        }
    }
}

/// `compile`, leaving the values of the secret named values in `secrets` (read once, here).
fn compile_unmasked(
    cfg: &LoadedConfig,
    src: &Sources,
    secrets: &mut Vec<String>,
) -> Result<(Gateway, Diagnostics), Diagnostics> {
    let mut d = Diagnostics::new();
    d.extend(cfg.load_diagnostics.clone());
    check_listeners(cfg, src, &mut d);
    d.extend(src.named_diagnostics.clone());
    let named = src.named.clone();
    secrets.extend(named.values().filter(|v| v.secret).map(|v| v.value.clone()));
    let admin_token = listeners::admin_token(cfg, &named, &mut d);
    let request_id_header = listeners::request_id_header(cfg, &mut d);
    let policy_dir = clean_path(&cfg.dir.join(&cfg.raw.policies.dir));
    let (mut backends, backend_ids) = compile_backends(cfg, src, &named, &mut d);
    let mut api_index: AHashMap<&str, usize> = AHashMap::new();
    let mut seen: AHashMap<&str, usize> = AHashMap::new();
    for (i, a) in cfg.raw.apis.iter().enumerate() {
        let n = seen.entry(&a.id).or_insert(0);
        if *n > 0 {
            d.error(
                "C020",
                cfg.locate_nth("id", &a.id, *n),
                format!("duplicate API id `{}`", a.id),
            );
        } else {
            api_index.insert(&a.id, i);
        }
        *n += 1;
    }
    let products = compile_products(cfg, &api_index, &mut d);
    let set = load_policies(cfg, src, &policy_dir, &named, &products, &mut d);

    let global_on_error: Arc<[Stmt]> = compose::compose(&[&set.global], Section::OnError).into();
    let mut apis = Vec::new();
    let mut pipelines = Pipelines::default();
    for (ai, spec) in cfg.raw.apis.iter().enumerate() {
        if let Some(api) = compile_api(
            cfg,
            ai,
            spec,
            &set,
            &products,
            &backends,
            &backend_ids,
            &mut pipelines,
            &mut d,
        ) {
            apis.push(api);
        }
    }
    let subscriptions = compile_subscriptions(cfg, &api_index, &products, &mut d);
    let (certificates, thumbprints, certificate_x509) = compile_certificates(cfg, src, &mut d);
    attach_credential_certificates(cfg, &mut backends, &certificates, &thumbprints, &mut d);
    let mut trusted_proxies = Vec::new();
    for t in &cfg.raw.client_identity.trusted_proxies {
        match crate::net::cidr::parse(t) {
            Ok(c) => trusted_proxies.push(c),
            Err(e) => d.error(
                "C039",
                cfg.locate(None, "trusted_proxies", t),
                format!("client_identity.trusted_proxies: {e}"),
            ),
        }
    }
    check_certificate_refs(
        &apis,
        &certificates,
        &thumbprints,
        &certificate_x509,
        &mut d,
    );
    let managed_identity = identity::token_provider(cfg, src, &mut d);
    identity::check_identity_refs(cfg, &apis, managed_identity.as_deref(), &mut d);
    let client_trust = certificates::compile_trust(cfg, src, &apis, &mut d);
    let all_schemas = schemas::compile_schemas(cfg, &mut d);
    schemas::check_schema_refs(&apis, &all_schemas, &mut d);
    let (schemas, xml_schemas) = all_schemas;
    if d.has_errors() {
        return Err(d.sorted());
    }
    let (api_index, root_apis) = super::index_apis(&apis);
    let cross_domain = set
        .global
        .section(Section::Inbound)
        .into_iter()
        .flatten()
        .find_map(|s| match &s.kind {
            crate::exec::policies::StmtKind::CrossDomain(c) => Some(c.0.clone()),
            _ => None,
        });
    let admin = &cfg.raw.admin;
    let trace_location = (!admin.address.is_empty()).then(|| {
        let base = admin
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", admin.address));
        format!("{}/traces/", base.trim_end_matches('/'))
    });
    let gw = Gateway {
        trace_location,
        client_trust,
        admin_token,
        trace_context: cfg.raw.correlation.trace_context,
        request_id_header,
        schemas,
        xml_schemas,
        cross_domain,
        name: cfg.raw.name.clone(),
        api_index,
        root_apis,
        apis,
        backends,
        backend_ids,
        products,
        subscriptions,
        global_on_error,
        certificates,
        thumbprints,
        trusted_proxies,
        forwarded_headers: cfg.raw.client_identity.forwarded_headers,
        certificate_x509,
        limits: super::Limits {
            max_url_length: cfg.raw.limits.max_url_length,
            max_headers: cfg.raw.limits.max_headers,
            max_header_bytes: cfg.raw.limits.max_header_bytes,
            max_body_bytes: cfg.raw.limits.max_body_bytes,
            header_read_timeout: cfg.raw.limits.header_read_timeout.0,
            keepalive_timeout: cfg.raw.limits.keepalive_timeout.0,
            body_read_timeout: cfg.raw.limits.body_read_timeout.0,
        },
        secrets: secrets.clone(),
        managed_identity,
        jwt: super::JwtSettings {
            keys_refresh: cfg.raw.jwt.keys_refresh.0,
            min_refetch: cfg.raw.jwt.min_refetch.0,
            azure_ad_authority: cfg
                .raw
                .jwt
                .azure_ad_authority
                .trim_end_matches('/')
                .to_string(),
        },
    };
    Ok((gw, d.sorted()))
}

/// What a standalone document is checked with (`gatehouse check --policy`): named values, and
/// fragment texts as the loader read them (id, path, text).
#[derive(Default)]
pub struct Standalone {
    pub named: AHashMap<String, NamedValue>,
    pub fragments: Vec<(String, PathBuf, Result<String, Invalid>)>,
}

/// Check one standalone policy or fragment document (`gatehouse check --policy`) from its text
/// as read (at most one byte past the limit), with the same checks as a full load. Named values
/// and fragments not in `with` are reported (P030, P031).
pub fn check_policy_text(
    path: &Path,
    text: Result<&str, Invalid>,
    scope: Scope,
    with: &Standalone,
) -> Diagnostics {
    let mut d = Diagnostics::new();
    let named = &with.named;
    let mut fragments: Fragments = AHashMap::new();
    for (id, fpath, ftext) in &with.fragments {
        let env = Env {
            named,
            scope: Scope::Global,
        };
        let ftext = ftext.as_deref().map_err(Invalid::clone);
        if let Some(stmts) = policies::fragment_from_text(fpath, ftext, &env, &mut d) {
            fragments.insert(id.clone(), stmts);
        }
    }
    let env = Env { named, scope };
    let file: Arc<str> = Arc::from(path.display().to_string());
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            d.error(
                "P009",
                Span::new(&file, 1, 1),
                format!("cannot read policy document: {e}"),
            );
            return d;
        }
    };
    let root = match policy::xml::parse(&file, text) {
        Ok(r) => r,
        Err(e) => return e.sorted(),
    };
    if root.name == "fragment" {
        if text.len() > policy::MAX_FRAGMENT_BYTES {
            d.error(
                "P008",
                Span::new(&file, 1, 1),
                format!(
                    "fragment is over {} bytes, the limit",
                    policy::MAX_FRAGMENT_BYTES
                ),
            );
        }
        policies::parse_fragment(&root, &env, &mut d);
    } else {
        if text.len() > policy::MAX_DOCUMENT_BYTES {
            d.error(
                "P008",
                Span::new(&file, 1, 1),
                format!(
                    "document is over {} bytes, the limit",
                    policy::MAX_DOCUMENT_BYTES
                ),
            );
        }
        let doc = policies::parse_document(&root, &env, &mut d);
        let doc = compose::expand_document(&doc, &fragments, &mut d);
        compose::check_legality(&doc, &mut d);
        build_pipeline(&[&doc], &AHashMap::new(), &mut d);
    }
    d.sorted()
}

/// Call `f` on every statement of every operation's pipelines, nested ones included (load-time
/// checks of what statements name: certificates, schemas).
pub(super) fn each_statement(apis: &[Api], f: &mut dyn FnMut(&Stmt)) {
    fn walk(stmts: &[Stmt], f: &mut dyn FnMut(&Stmt)) {
        for s in stmts {
            f(s);
            for c in s.children() {
                walk(std::slice::from_ref(c), f);
            }
        }
    }
    for p in apis
        .iter()
        .flat_map(|a| a.operations.iter())
        .flat_map(|o| o.pipelines.iter())
    {
        for stmts in [
            &p.inbound,
            &p.backend_pre,
            &p.backend_post,
            &p.outbound,
            &p.on_error,
        ] {
            walk(stmts, f);
        }
    }
}
