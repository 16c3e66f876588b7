//! The cache policies: `<cache-lookup>`, `<cache-store>`, `<cache-lookup-value>`,
//! `<cache-store-value>`, `<cache-remove-value>`.

use super::*;

#[derive(Clone, Debug)]
pub struct CacheLookup {
    pub vary_by_developer: Val<bool>,
    pub vary_by_developer_groups: Val<bool>,
    pub caching: CachingType,
    /// `none`, `private` or `public`.
    pub downstream: Val<String>,
    pub must_revalidate: Val<bool>,
    pub allow_private: Val<bool>,
    pub vary_headers: Vec<String>,
    pub vary_query: Vec<String>,
}

/// `caching-type`: which cache a cache policy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachingType {
    Internal,
    External,
    PreferExternal,
}

impl CacheLookup {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        visit_val(&self.vary_by_developer, f);
        visit_val(&self.vary_by_developer_groups, f);
        visit_val(&self.downstream, f);
        visit_val(&self.must_revalidate, f);
        visit_val(&self.allow_private, f);
    }
}

pub(super) fn cache_lookup_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    let vary_by_developer = r
        .required_value("vary-by-developer", parse_bool)
        .unwrap_or(Val::Lit(false));
    let vary_by_developer_groups = r
        .required_value("vary-by-developer-groups", parse_bool)
        .unwrap_or(Val::Lit(false));
    let caching = parse_caching(r);
    let downstream = r.value("downstream-caching-type", |s| match s.trim() {
        "none" | "private" | "public" => Ok(s.trim().to_string()),
        other => Err(crate::invalid!(
            "downstream-caching-type must be none, private or public, found {other:?}"
        )),
    });
    let must_revalidate = r
        .value("must-revalidate", parse_bool)
        .unwrap_or(Val::Lit(true));
    let allow_private = r
        .value("allow-private-response-caching", parse_bool)
        .unwrap_or(Val::Lit(false));
    let (mut vary_headers, mut vary_query) = (Vec::new(), Vec::new());
    for child in r.children() {
        let mut cr = r.child(child);
        cr.no_children();
        match child.name.as_str() {
            "vary-by-header" => {
                vary_headers.extend(child.text().map(|t| t.value.trim().to_ascii_lowercase()))
            }
            "vary-by-query-parameter" => {
                vary_query.extend(child.text().into_iter().flat_map(|t| {
                    t.value
                        .split(';')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect::<Vec<_>>()
                }))
            }
            other => {
                cr.diags.error("P014", child.span.clone(), format!("<{other}> is not allowed in <cache-lookup>; expected vary-by-header or vary-by-query-parameter"));
                continue;
            }
        }
        cr.finish();
    }
    vary_headers.sort();
    vary_query.sort();
    Some(StmtKind::CacheLookup(CacheLookup {
        vary_by_developer,
        vary_by_developer_groups,
        caching,
        downstream: downstream.unwrap_or(Val::Lit("none".into())),
        must_revalidate,
        allow_private,
        vary_headers,
        vary_query,
    }))
}

pub(super) fn cache_store_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let duration = r
        .required_value("duration", parse_u64)
        .unwrap_or(Val::Lit(0));
    let cache_response = r.value("cache-response", parse_bool);
    Some(StmtKind::CacheStore {
        duration,
        cache_response,
    })
}

pub(super) fn cache_lookup_value_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let key = r
        .required_value("key", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let variable = r.required_literal("variable-name").unwrap_or_default();
    let default = r.value("default-value", |s| Ok(s.to_string()));
    let caching = parse_caching(r);
    Some(StmtKind::CacheLookupValue {
        key,
        variable,
        default,
        caching,
    })
}

pub(super) fn cache_store_value_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let key = r
        .required_value("key", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let value = r
        .required_value("value", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let duration = r
        .required_value("duration", parse_u64)
        .unwrap_or(Val::Lit(0));
    let caching = parse_caching(r);
    Some(StmtKind::CacheStoreValue {
        key,
        value,
        duration,
        caching,
    })
}

pub(super) fn cache_remove_value_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let key = r
        .required_value("key", |s| Ok(s.to_string()))
        .unwrap_or(Val::Lit(String::new()));
    let caching = parse_caching(r);
    Some(StmtKind::CacheRemoveValue { key, caching })
}

pub(super) fn parse_caching(r: &mut Reader) -> CachingType {
    r.parsed_literal("caching-type", |s| match s.trim() {
        "internal" => Ok(CachingType::Internal),
        "external" => Ok(CachingType::External),
        "prefer-external" => Ok(CachingType::PreferExternal),
        other => Err(crate::invalid!(
            "caching-type must be internal, external or prefer-external, found {other:?}"
        )),
    })
    .unwrap_or(CachingType::PreferExternal)
}
