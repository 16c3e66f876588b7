//! APIs and their operations.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn compile_api(
    cfg: &LoadedConfig,
    ai: usize,
    spec: &crate::config::ApiSpec,
    set: &PolicySet,
    products: &[Product],
    backends: &[Backend],
    backend_ids: &AHashMap<String, usize>,
    pipelines_by_chain: &mut Pipelines,
    d: &mut Diagnostics,
) -> Option<Api> {
    let span = cfg.locate(None, "id", &spec.id);
    // Problems with the service are reported, and the operations are still checked.
    let mut ok = true;
    let (service, service_backend) = match (&spec.service_url, &spec.backend) {
        (Some(u), None) => match BaseUrl::parse(u) {
            Ok(b) => (std::sync::Arc::new(b), None),
            Err(e) => {
                d.error(
                    "C021",
                    cfg.locate(Some(&spec.id), "service_url", u),
                    format!("API `{}`: {e}", spec.id),
                );
                ok = false;
                (Default::default(), None)
            }
        },
        (None, Some(b)) => match backend_ids.get(b) {
            Some(&i) => (backends[i].url.clone(), Some(i)),
            None => {
                d.error(
                    "C022",
                    cfg.locate(Some(&spec.id), "backend", b),
                    format!("API `{}` uses unknown backend `{b}`", spec.id),
                );
                ok = false;
                (Default::default(), None)
            }
        },
        _ => {
            d.error(
                "C023",
                span.clone(),
                format!(
                    "API `{}` needs exactly one of `service_url` or `backend`",
                    spec.id
                ),
            );
            ok = false;
            (Default::default(), None)
        }
    };
    let path = normalize_path(&spec.path);
    let key_header = match HeaderName::from_bytes(spec.subscription_key.header.as_bytes()) {
        Ok(h) => h,
        Err(_) => {
            d.error(
                "C024",
                span.clone(),
                format!("API `{}`: invalid subscription key header name", spec.id),
            );
            return None;
        }
    };
    let version = match &spec.version {
        None => None,
        Some(v) => {
            use crate::exec::model::{VersionBy, VersionRule};
            let by = match (&v.query, &v.header) {
                (Some(q), None) if !q.is_empty() => Some(VersionBy::Query(q.clone())),
                (None, Some(h)) => HeaderName::from_bytes(h.as_bytes())
                    .ok()
                    .map(VersionBy::Header),
                _ => None,
            };
            match by {
                Some(by) if !v.value.is_empty() => Some(VersionRule {
                    by,
                    value: v.value.clone(),
                }),
                _ => {
                    d.error(
                        "C024",
                        span.clone(),
                        format!("API `{}`: `version` takes a `value` and exactly one of `query` or `header` (a valid header name)", spec.id),
                    );
                    return None;
                }
            }
        }
    };
    let api_products: Vec<usize> = products
        .iter()
        .enumerate()
        .filter(|(_, p)| p.apis.contains(&ai))
        .map(|(i, _)| i)
        .collect();
    let open: Vec<usize> = api_products
        .iter()
        .copied()
        .filter(|&p| !products[p].subscription_required)
        .collect();
    if open.len() > 1 {
        d.error(
            "C042",
            span.clone(),
            format!(
                "API `{}` is in more than one open product ({}); at most one is allowed",
                spec.id,
                open.iter()
                    .map(|&p| products[p].id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let empty = &set.empty;
    let api_doc = set.apis.get(&spec.id).unwrap_or(empty);
    let on_error: Arc<[Stmt]> = compose::compose(&[&set.global, api_doc], Section::OnError).into();

    let mut operations = Vec::new();
    for op in &spec.operations {
        let op_span = cfg.locate(Some(&spec.id), "id", &op.id);
        if operations.iter().any(|o: &Operation| o.id == op.id) {
            d.error(
                "C025",
                op_span.clone(),
                format!("API `{}`: duplicate operation id `{}`", spec.id, op.id),
            );
            continue;
        }
        let method = if op.method == "*" {
            None
        } else {
            match Method::from_bytes(op.method.to_ascii_uppercase().as_bytes()) {
                Ok(m) => Some(m),
                Err(_) => {
                    d.error(
                        "C026",
                        cfg.locate(Some(&op.id), "method", &op.method),
                        format!("operation `{}`: invalid method {:?}", op.id, op.method),
                    );
                    continue;
                }
            }
        };
        let template = match UrlTemplate::parse(&op.url_template) {
            Ok(t) => t,
            Err(e) => {
                d.error(
                    "C027",
                    cfg.locate(Some(&op.id), "url_template", &op.url_template),
                    format!("operation `{}`: {e}", op.id),
                );
                continue;
            }
        };
        let op_doc = set
            .operations
            .get(&(spec.id.clone(), op.id.clone()))
            .unwrap_or(empty);
        let mut pipelines =
            vec![pipelines_by_chain.get(&[&set.global, api_doc, op_doc], backend_ids, d)];
        for &p in &api_products {
            let prod_doc = set.products.get(&products[p].id).unwrap_or(empty);
            pipelines.push(pipelines_by_chain.get(
                &[&set.global, prod_doc, api_doc, op_doc],
                backend_ids,
                d,
            ));
        }
        let examples: Arc<[Example]> = op
            .examples
            .iter()
            .map(|e| Example {
                status: e.status,
                content_type: e.content_type.clone(),
                body: e.body.clone(),
            })
            .collect();
        operations.push(Operation {
            metrics: Default::default(),
            id: op.id.clone(),
            name: op.name.clone().unwrap_or_else(|| op.id.clone()),
            method,
            url_template: op.url_template.clone(),
            template,
            examples,
            pipelines,
            contract: op.contract.clone(),
        });
    }
    // Most specific template first, so `/users/me` wins over `/users/{id}`.
    operations.sort_by_key(|o| std::cmp::Reverse(o.template.specificity));
    if !ok {
        return None;
    }
    Some(Api {
        id: spec.id.clone(),
        name: spec.name.clone().unwrap_or_else(|| spec.id.clone()),
        path,
        hosts: spec.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        service,
        service_backend,
        subscription_required: spec.subscription_required,
        key_header,
        key_query: spec.subscription_key.query.clone(),
        strip_key: spec.strip_subscription_key,
        operations,
        products: api_products,
        open_product: open.first().copied(),
        on_error,
        compression: crate::exec::model::Compression::from_spec(
            spec.compression.as_ref().unwrap_or(&cfg.raw.compression),
        ),
        version,
    })
}

/// Lexically remove `.` and `..` components, so positions print as `policies/x.xml`.
pub(crate) fn clean_path(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

pub(super) fn normalize_path(p: &str) -> String {
    let t = p.trim().trim_matches('/');
    if t.is_empty() {
        String::new()
    } else {
        format!("/{t}")
    }
}
