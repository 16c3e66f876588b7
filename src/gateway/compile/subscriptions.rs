//! Products and subscriptions.

use super::*;

pub(super) fn compile_products(
    cfg: &LoadedConfig,
    api_index: &AHashMap<&str, usize>,
    d: &mut Diagnostics,
) -> Vec<Product> {
    let mut out: Vec<Product> = Vec::new();
    for p in &cfg.raw.products {
        if out.iter().any(|x| x.id == p.id) {
            d.error(
                "C040",
                cfg.locate(None, "id", &p.id),
                format!("duplicate product id `{}`", p.id),
            );
            continue;
        }
        let mut apis = Vec::new();
        for a in &p.apis {
            match api_index.get(a.as_str()) {
                Some(&i) => apis.push(i),
                None => d.error(
                    "C041",
                    cfg.locate(Some(&p.id), "", a),
                    format!("product `{}` lists unknown API `{a}`", p.id),
                ),
            }
        }
        out.push(Product {
            id: p.id.clone(),
            name: p.name.clone().unwrap_or_else(|| p.id.clone()),
            subscription_required: p.subscription_required,
            state: p.state,
            apis,
        });
    }
    out
}

pub(super) fn compile_subscriptions(
    cfg: &LoadedConfig,
    api_index: &AHashMap<&str, usize>,
    products: &[Product],
    d: &mut Diagnostics,
) -> Subscriptions {
    let mut list: Vec<Subscription> = Vec::new();
    let mut seen_digests: AHashMap<[u8; 32], String> = AHashMap::new();
    for s in &cfg.raw.subscriptions {
        let span = cfg.locate(None, "id", &s.id);
        if list.iter().any(|x| x.id == s.id) {
            d.error(
                "C050",
                span.clone(),
                format!("duplicate subscription id `{}`", s.id),
            );
            continue;
        }
        let scope = match s.scope.split_once(':') {
            Some(("product", p)) => products
                .iter()
                .position(|x| x.id == p)
                .map(SubScope::Product),
            Some(("api", a)) => api_index.get(a).map(|&i| SubScope::Api(i)),
            None if s.scope == "all-apis" => Some(SubScope::AllApis),
            None if s.scope == "all-access" => Some(SubScope::AllAccess),
            _ => None,
        };
        let Some(scope) = scope else {
            d.error(
                "C051",
                cfg.locate(Some(&s.id), "scope", &s.scope),
                format!("subscription `{}`: scope {:?} must be product:<id>, api:<id>, all-apis or all-access, naming a configured product or API", s.id, s.scope),
            );
            continue;
        };
        if s.primary_key.is_none() && s.secondary_key.is_none() {
            d.error(
                "C052",
                span.clone(),
                format!(
                    "subscription `{}` needs a primary_key or secondary_key",
                    s.id
                ),
            );
        }
        let mut hashes: [Option<[u8; 32]>; 2] = [None, None];
        for (slot, k) in [&s.primary_key, &s.secondary_key].into_iter().enumerate() {
            let Some(k) = k else { continue };
            let digest = match crate::exec::subscriptions::parse_hashed(k) {
                Some(Ok(d)) => {
                    hashes[slot] = Some(d);
                    d
                }
                Some(Err(e)) => {
                    d.error(
                        "C053",
                        span.clone(),
                        format!("subscription `{}`: {e}", s.id),
                    );
                    continue;
                }
                None => crate::exec::subscriptions::digest(k),
            };
            if let Some(other) = seen_digests.insert(digest, s.id.clone()) {
                d.error("C054", span.clone(), format!("subscription `{}` reuses a key of subscription `{other}`; keys must be unique", s.id));
            }
            if hashes[slot].is_some() {
                continue;
            }
            if k.len() < 8 {
                d.error(
                    "C053",
                    span.clone(),
                    format!(
                        "subscription `{}`: keys must be at least 8 characters",
                        s.id
                    ),
                );
            }
        }
        let start = match &s.start_date {
            None => crate::expr::datetime::EPOCH_0001,
            Some(t) => match crate::expr::datetime::DateTime::parse(t) {
                Some(dt) => dt.unix_seconds(),
                None => {
                    d.error("C055", cfg.locate(Some(&s.id), "start_date", t), format!("subscription `{}`: start_date must be yyyy-MM-ddTHH:mm:ssZ, found {t:?}", s.id));
                    crate::expr::datetime::EPOCH_0001
                }
            },
        };
        list.push(Subscription {
            start,
            id: s.id.clone(),
            name: s.name.clone().unwrap_or_else(|| s.id.clone()),
            scope,
            primary_key: s.primary_key.clone().filter(|_| hashes[0].is_none()),
            secondary_key: s.secondary_key.clone().filter(|_| hashes[1].is_none()),
            primary_hash: hashes[0],
            secondary_hash: hashes[1],
            state: s.state,
            allow_tracing: s.allow_tracing,
        });
    }
    Subscriptions::new(list)
}
