//! Policy documents found under the policies directory, by what they apply to.

use super::*;

pub(super) fn default_global() -> PolicyDoc {
    let mut doc = PolicyDoc::default();
    let fwd = policies::forward_request::ForwardRequest {
        timeout_ms: None,
        follow_redirects: Val::Lit(false),
        buffer_request_body: false,
        buffer_response: true,
        fail_on_error_status_code: false,
        http_version: policies::forward_request::HttpVersion::Http1,
    };
    doc.sections[Section::Backend.index()] = Some(vec![Stmt {
        kind: StmtKind::ForwardRequest(fwd),
        element: "forward-request",
        id: None,
        span: Span::file("<default global policy>"),
        scope: Scope::Global,
        display: "<forward-request />".into(),
    }]);
    doc
}

pub(super) fn load_policies(
    cfg: &LoadedConfig,
    src: &Sources,
    dir: &Path,
    named: &AHashMap<String, NamedValue>,
    products: &[Product],
    d: &mut Diagnostics,
) -> PolicySet {
    // Fragments first: documents include them.
    let mut fragments: Fragments = AHashMap::new();
    for (id, path) in src.xml_files(&dir.join("fragments")) {
        let env = Env {
            named,
            scope: Scope::Global,
        };
        if let Some(stmts) = policies::fragment_from_text(path, src.text(path), &env, d) {
            fragments.insert(id.clone(), stmts);
        }
    }
    let load = |path: &Path, scope: Scope, d: &mut Diagnostics| -> Option<PolicyDoc> {
        let env = Env { named, scope };
        let doc = policies::document_from_text(path, src.text(path), &env, d)?;
        let doc = compose::expand_document(&doc, &fragments, d);
        compose::check_legality(&doc, d);
        Some(doc)
    };
    let global_path = src.global_path(dir);
    let global = if src.has_text(&global_path) {
        load(&global_path, Scope::Global, d).unwrap_or_default()
    } else {
        default_global()
    };
    let mut set = PolicySet {
        global,
        products: AHashMap::new(),
        apis: AHashMap::new(),
        operations: AHashMap::new(),
        empty: PolicyDoc::default(),
    };
    for (id, path) in src.xml_files(&dir.join("products")) {
        if !products.iter().any(|p| &p.id == id) {
            d.error(
                "P050",
                Span::file(&path.display().to_string()),
                format!("policy file for unknown product `{id}`"),
            );
            continue;
        }
        if let Some(doc) = load(path, Scope::Product, d) {
            set.products.insert(id.clone(), doc);
        }
    }
    let apis_dir = dir.join("apis");
    for (id, path) in src.xml_files(&apis_dir) {
        if !cfg.raw.apis.iter().any(|a| &a.id == id) {
            d.error(
                "P050",
                Span::file(&path.display().to_string()),
                format!("policy file for unknown API `{id}`"),
            );
            continue;
        }
        if let Some(doc) = load(path, Scope::Api, d) {
            set.apis.insert(id.clone(), doc);
        }
    }
    for api in &cfg.raw.apis {
        for (op, path) in src.xml_files(&apis_dir.join(&api.id)) {
            if !api.operations.iter().any(|o| &o.id == op) {
                d.error(
                    "P050",
                    Span::file(&path.display().to_string()),
                    format!(
                        "policy file for unknown operation `{op}` of API `{}`",
                        api.id
                    ),
                );
                continue;
            }
            if let Some(doc) = load(path, Scope::Operation, d) {
                set.operations.insert((api.id.clone(), op.clone()), doc);
            }
        }
    }
    set
}
