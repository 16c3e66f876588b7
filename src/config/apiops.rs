//! `apiops: DIR` (or `--apiops DIR`): an Azure APIOps extract as a configuration source, read as
//! the extractor writes it, and merged into the configuration before anything else looks at it.
//!
//! Read: the service `policy.xml`; `apis/<name>/` (`apiInformation.json`, a
//! `specification.(yaml|yml|json)` whose operations become the API's, `policy.xml`,
//! `operations/<op>/policy.xml`; a `<name>;rev=N` folder is used when it is the current revision);
//! `products/<name>/` (`productInformation.json`, `policy.xml`, the API links as `apis.json` or as
//! one folder per API under `apis/`); `named values/<name>/namedValueInformation.json`;
//! `backends/<name>/backendInformation.json` (ARM's names, see docs/backends.md); `policy
//! fragments/<name>/policy.xml`; `version sets/<name>/versionSetInformation.json` (the segment
//! scheme). Everything Azure keeps that gatehouse does not need (loggers, diagnostics, gateways,
//! groups, tags, …) is ignored.
//!
//! The YAML beside it holds what Azure does not: listeners, the store, and the overrides: a
//! named value or backend the YAML defines wins over the extract's (that is how secrets, which
//! an extract holds without their value, get one). What cannot be served (SOAP, GraphQL and
//! WebSocket APIs, query and header versioning, a secret without a value) is a diagnostic
//! naming the file and the JSON path (C070-C073); `skip_unsupported` leaves such APIs out and
//! lists them as warnings instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::model::{
    ApiSpec, ApiVersionSpec, BackendSpec, NamedValueSpec, ProductSpec, RawConfig,
    SubscriptionKeyNames, SubscriptionState,
};
use crate::diag::{Diagnostics, Span};

/// Largest JSON file read from an extract.
const MAX_JSON_BYTES: u64 = 1024 * 1024;

/// The policy documents of an extract, by what they apply to (paths of the extract's files, so
/// that diagnostics name them).
#[derive(Debug, Default, Clone)]
pub struct PolicyFiles {
    pub global: Option<PathBuf>,
    pub products: Vec<(String, PathBuf)>,
    pub apis: Vec<(String, PathBuf)>,
    pub operations: Vec<(String, String, PathBuf)>,
    pub fragments: Vec<(String, PathBuf)>,
}

/// A version set: how the versions of its APIs are told apart.
struct VersionSet {
    scheme: String,
    query: Option<String>,
    header: Option<String>,
    file: PathBuf,
}

/// Read the extract at `dir` and merge it into `raw`; the policy files it holds.
pub fn merge(
    raw: &mut RawConfig,
    dir: &Path,
    skip_unsupported: bool,
    d: &mut Diagnostics,
) -> PolicyFiles {
    read_into(raw, dir, skip_unsupported, false, d).0
}

/// `merge`, for serving (`export` false) or for `import apiops` (true: a secret without a value
/// becomes an `env:` named value to fill in, reported as a warning); also each backend's
/// properties as the extract wrote them.
fn read_into(
    raw: &mut RawConfig,
    dir: &Path,
    skip_unsupported: bool,
    export: bool,
    d: &mut Diagnostics,
) -> (PolicyFiles, Vec<(String, Value)>) {
    let mut files = PolicyFiles::default();
    if !dir.is_dir() {
        d.error(
            "C070",
            Span::file(&dir.display().to_string()),
            "the APIOps folder does not exist or is not a directory",
        );
        return (files, Vec::new());
    }
    let global = dir.join("policy.xml");
    if global.is_file() {
        files.global = Some(global);
    }
    for (name, folder) in subfolders(&dir.join("policy fragments")) {
        let p = folder.join("policy.xml");
        if p.is_file() {
            files.fragments.push((name, p));
        }
    }
    named_values(raw, dir, export, d);
    let backend_json = backends(raw, dir, d);
    let version_sets = version_sets(dir, d);
    apis(raw, dir, &version_sets, skip_unsupported, &mut files, d);
    products(raw, dir, &mut files, d);
    subscriptions(raw, dir, d);
    (files, backend_json)
}

/// The folders directly under `dir`, by name, sorted.
fn subfolders(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|p| Some((p.file_name()?.to_str()?.to_string(), p.clone())))
        .collect();
    v.sort();
    v
}

fn name_of(file: &Path) -> Arc<str> {
    Arc::from(file.display().to_string())
}

/// A JSON file's `properties` (ARM's envelope; a file without one is taken as the properties).
fn read_json(file: &Path, d: &mut Diagnostics) -> Option<Value> {
    let text = match super::read_bounded(file, MAX_JSON_BYTES) {
        Ok(t) => t,
        Err(e) => {
            d.error(
                "C070",
                Span::new(&name_of(file), 1, 1),
                format!("cannot read: {e}"),
            );
            return None;
        }
    };
    match serde_json::from_str::<Value>(text.trim_start_matches('\u{feff}')) {
        Ok(mut v) => match v.get_mut("properties").map(Value::take) {
            Some(p) if p.is_object() => Some(p),
            _ if v.is_object() => Some(v),
            _ => {
                d.error(
                    "C070",
                    Span::new(&name_of(file), 1, 1),
                    "expected a JSON object",
                );
                None
            }
        },
        Err(e) => {
            d.error(
                "C070",
                Span::new(&name_of(file), e.line() as u32, e.column() as u32),
                format!("not JSON: {e}"),
            );
            None
        }
    }
}

fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Where a JSON property is, for a diagnostic: the line of `"key"` in the file.
fn at(file: &Path, key: &str) -> Span {
    let name = name_of(file);
    let text = super::read_bounded(file, MAX_JSON_BYTES).unwrap_or_default();
    let needle = format!("\"{key}\"");
    // The last mention: a key named like ARM's `properties` envelope is inside it.
    match text.rfind(&needle) {
        Some(off) => {
            let line = text[..off].matches('\n').count() as u32 + 1;
            let col = (off - text[..off].rfind('\n').map_or(0, |n| n + 1)) as u32 + 1;
            Span::new(&name, line, col)
        }
        None => Span::new(&name, 1, 1),
    }
}

/// The last segment of an ARM id (`/subscriptions/.../apiVersionSets/v` -> `v`), or the text.
fn arm_last(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

fn named_values(raw: &mut RawConfig, dir: &Path, export: bool, d: &mut Diagnostics) {
    for (folder, path) in subfolders(&dir.join("named values")) {
        let file = path.join("namedValueInformation.json");
        let Some(p) = read_json(&file, d) else {
            continue;
        };
        // Policies name a named value by its display name.
        let name = string(&p, "displayName").unwrap_or(folder);
        if raw.named_values.contains_key(&name) {
            continue; // the YAML's wins (an override)
        }
        let secret = p.get("secret").and_then(Value::as_bool).unwrap_or(false);
        match string(&p, "value") {
            Some(value) => {
                raw.named_values.insert(
                    name,
                    NamedValueSpec {
                        value: Some(value),
                        secret,
                        env: None,
                        file: None,
                    },
                );
            }
            None if export => {
                let var = format!(
                    "APIM_NV_{}",
                    name.chars()
                        .map(|c| if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        })
                        .collect::<String>()
                );
                d.warning(
                    "C072",
                    at(&file, "displayName"),
                    format!(
                        "named value `{name}` has no value in the extract: written as `env: {var}`"
                    ),
                );
                raw.named_values.insert(
                    name,
                    NamedValueSpec {
                        value: None,
                        secret: true,
                        env: Some(var),
                        file: None,
                    },
                );
            }
            None => {
                let why = if p.get("keyVault").is_some_and(|k| !k.is_null()) {
                    "is a Key Vault reference"
                } else {
                    "is a secret the extract holds without its value"
                };
                d.error(
                    "C072",
                    at(&file, "displayName"),
                    format!("named value `{name}` {why}: give it a value in the YAML (`named_values: {name}: {{ env: VAR }}` or `file:`)"),
                );
            }
        }
    }
}

fn backends(raw: &mut RawConfig, dir: &Path, d: &mut Diagnostics) -> Vec<(String, Value)> {
    let mut json = Vec::new();
    for (name, path) in subfolders(&dir.join("backends")) {
        let file = path.join("backendInformation.json");
        let Some(mut p) = read_json(&file, d) else {
            continue;
        };
        if raw.backends.iter().any(|b| b.id == name) {
            continue; // the YAML's wins
        }
        if let Some(o) = p.as_object_mut() {
            o.insert("id".into(), Value::String(name.clone()));
            // Empty ARM sections (`"credentials": null`, `"tls": {}`) mean the defaults.
            o.retain(|_, v| !v.is_null());
        }
        match serde_json::from_value::<BackendSpec>(p.clone()) {
            Ok(b) => {
                raw.backends.push(b);
                json.push((name, p));
            }
            Err(e) => {
                let msg = e.to_string();
                let key = msg.split('`').nth(1).unwrap_or("properties").to_string();
                d.error("C073", at(&file, &key), format!("backend `{name}`: {msg}"));
            }
        }
    }
    json
}

fn version_sets(dir: &Path, d: &mut Diagnostics) -> BTreeMap<String, VersionSet> {
    let mut out = BTreeMap::new();
    for (name, path) in subfolders(&dir.join("version sets")) {
        let file = path.join("versionSetInformation.json");
        let Some(p) = read_json(&file, d) else {
            continue;
        };
        let scheme = string(&p, "versioningScheme").unwrap_or_else(|| "Segment".into());
        out.insert(
            name,
            VersionSet {
                scheme,
                query: string(&p, "versionQueryName"),
                header: string(&p, "versionHeaderName"),
                file,
            },
        );
    }
    out
}

fn apis(
    raw: &mut RawConfig,
    dir: &Path,
    version_sets: &BTreeMap<String, VersionSet>,
    skip_unsupported: bool,
    files: &mut PolicyFiles,
    d: &mut Diagnostics,
) {
    let unsupported = |d: &mut Diagnostics, span: Span, msg: String| {
        if skip_unsupported {
            d.warning(
                "C071",
                span,
                format!("{msg}; left out (--skip-unsupported)"),
            );
        } else {
            d.error(
                "C071",
                span,
                format!("{msg} (--skip-unsupported serves the rest)"),
            );
        }
    };
    for (name, revision, path, default_current) in api_folders(dir) {
        let file = path.join("apiInformation.json");
        let Some(p) = read_json(&file, d) else {
            continue;
        };
        // The current revision serves at the API's path; another one, as in APIM, at
        // `<path>;rev=N` (its id is `<name>;rev=N`).
        let current = p
            .get("isCurrent")
            .and_then(Value::as_bool)
            .unwrap_or(default_current);
        let rev_suffix = if current {
            None
        } else {
            let n = revision
                .clone()
                .or_else(|| string(&p, "apiRevision"))
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric()));
            match n {
                Some(n) => Some(format!(";rev={n}")),
                None => {
                    d.warning(
                        "C071",
                        at(&file, "isCurrent"),
                        format!("API `{name}`: a revision that is not current and has no usable `apiRevision`; left out"),
                    );
                    continue;
                }
            }
        };
        let name = match &rev_suffix {
            Some(r) => format!("{name}{r}"),
            None => name,
        };
        let kind = string(&p, "type")
            .or_else(|| string(&p, "apiType"))
            .unwrap_or_else(|| "http".into())
            .to_ascii_lowercase();
        if !matches!(kind.as_str(), "http" | "") {
            unsupported(
                d,
                at(&file, "type"),
                format!("API `{name}` is a {kind} API, which gatehouse does not serve"),
            );
            continue;
        }
        let spec_file = [
            "specification.yaml",
            "specification.yml",
            "specification.json",
        ]
        .iter()
        .map(|f| path.join(f))
        .find(|f| f.is_file());
        if spec_file.is_none() {
            if let Some(other) = ["specification.wsdl", "specification.graphql"]
                .iter()
                .map(|f| path.join(f))
                .find(|f| f.is_file())
            {
                unsupported(
                    d,
                    Span::file(&other.display().to_string()),
                    format!(
                        "API `{name}` is defined by {}, which gatehouse does not serve",
                        other.file_name().and_then(|f| f.to_str()).unwrap_or("")
                    ),
                );
                continue;
            }
        }
        let mut api_path = string(&p, "path").unwrap_or_default();
        let mut version = None;
        if let Some(vs) = string(&p, "apiVersionSetId") {
            let vs_name = arm_last(&vs).to_string();
            let value = string(&p, "apiVersion").unwrap_or_default();
            match version_sets.get(&vs_name) {
                // The original (unversioned) API of a set serves the requests naming no version.
                Some(_) if value.is_empty() => {}
                Some(set) => match set.scheme.to_ascii_lowercase().as_str() {
                    "segment" => api_path = format!("{}/{value}", api_path.trim_end_matches('/')),
                    "query" => {
                        version = Some(ApiVersionSpec {
                            value,
                            query: Some(set.query.clone().unwrap_or_else(|| "api-version".into())),
                            header: None,
                        })
                    }
                    "header" => {
                        version = Some(ApiVersionSpec {
                            value,
                            query: None,
                            header: Some(
                                set.header.clone().unwrap_or_else(|| "Api-Version".into()),
                            ),
                        })
                    }
                    other => {
                        unsupported(
                            d,
                            at(&set.file, "versioningScheme"),
                            format!("API `{name}`: version set `{vs_name}` has versioning scheme {other:?} (Segment, Query or Header)"),
                        );
                        continue;
                    }
                },
                None => {
                    d.error(
                        "C070",
                        at(&file, "apiVersionSetId"),
                        format!("API `{name}` names version set `{vs_name}`, which the extract does not hold"),
                    );
                    continue;
                }
            }
        }
        if let Some(r) = &rev_suffix {
            api_path = format!("{}{r}", api_path.trim_end_matches('/'));
        }
        if raw.apis.iter().any(|a| a.id == name) {
            d.error(
                "C070",
                at(&file, "path"),
                format!("API `{name}` is in the extract and in the YAML"),
            );
            continue;
        }
        let keys = p.get("subscriptionKeyParameterNames");
        let mut subscription_key = SubscriptionKeyNames::default();
        if let Some(h) = keys.and_then(|k| string(k, "header")) {
            subscription_key.header = h;
        }
        if let Some(q) = keys.and_then(|k| string(k, "query")) {
            subscription_key.query = q;
        }
        let mut docs: Vec<(Option<String>, PathBuf)> = Vec::new();
        let policy = path.join("policy.xml");
        if policy.is_file() {
            docs.push((None, policy));
        }
        for (op, op_path) in subfolders(&path.join("operations")) {
            let policy = op_path.join("policy.xml");
            if policy.is_file() {
                docs.push((Some(op), policy));
            }
        }
        // Leaving out what cannot be served covers APIs whose own policies use a policy
        // gatehouse does not run (without skipping, compile reports each where it stands).
        if skip_unsupported {
            if let Some((at, element)) = docs.iter().find_map(|(_, p)| unsupported_policy(p)) {
                d.warning(
                    "C071",
                    at,
                    format!("API `{name}` uses <{element}>, which gatehouse does not run; left out (--skip-unsupported)"),
                );
                continue;
            }
        }
        raw.apis.push(ApiSpec {
            id: name.clone(),
            name: string(&p, "displayName"),
            path: api_path.trim_matches('/').to_string(),
            hosts: Vec::new(),
            service_url: string(&p, "serviceUrl").filter(|s| !s.is_empty()),
            backend: None,
            subscription_required: p
                .get("subscriptionRequired")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            subscription_key,
            strip_subscription_key: false,
            operations: Vec::new(),
            openapi: spec_file.map(|f| f.display().to_string()),
            compression: None,
            version,
        });
        for (op, p) in docs {
            match op {
                None => files.apis.push((name.clone(), p)),
                Some(op) => files.operations.push((name.clone(), op, p)),
            }
        }
    }
}

fn products(raw: &mut RawConfig, dir: &Path, files: &mut PolicyFiles, d: &mut Diagnostics) {
    for (name, path) in subfolders(&dir.join("products")) {
        let file = path.join("productInformation.json");
        let Some(p) = read_json(&file, d) else {
            continue;
        };
        if raw.products.iter().any(|x| x.id == name) {
            continue; // the YAML's wins
        }
        // The API links: `apis.json` (names, or objects with a name), or a folder per API.
        let mut apis: Vec<String> = Vec::new();
        let list = path.join("apis.json");
        if list.is_file() {
            match super::read_bounded(&list, MAX_JSON_BYTES)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
            {
                Ok(Value::Array(items)) => {
                    for i in items {
                        let n = match &i {
                            Value::String(s) => Some(s.clone()),
                            Value::Object(_) => string(&i, "name")
                                .or_else(|| i.get("properties").and_then(|p| string(p, "name"))),
                            _ => None,
                        };
                        if let Some(n) = n {
                            apis.push(arm_last(&n).to_string());
                        }
                    }
                }
                Ok(_) => d.error(
                    "C070",
                    Span::new(&name_of(&list), 1, 1),
                    "expected a JSON array of API names",
                ),
                Err(e) => d.error(
                    "C070",
                    Span::new(&name_of(&list), 1, 1),
                    format!("cannot read: {e}"),
                ),
            }
        }
        for (api, _) in subfolders(&path.join("apis")) {
            if !apis.contains(&api) {
                apis.push(api);
            }
        }
        // Links to APIs the extract does not serve (left out, or not there) are dropped.
        apis.retain(|a| raw.apis.iter().any(|x| &x.id == a));
        // A product holds an API's revisions with it.
        let revisions: Vec<String> = raw
            .apis
            .iter()
            .filter(|x| {
                x.id.split_once(";rev=")
                    .is_some_and(|(base, _)| apis.iter().any(|a| a == base))
            })
            .map(|x| x.id.clone())
            .collect();
        apis.extend(revisions);
        let state = match string(&p, "state")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("notpublished") => super::model::ProductState::NotPublished,
            _ => super::model::ProductState::Published,
        };
        raw.products.push(ProductSpec {
            id: name.clone(),
            name: string(&p, "displayName"),
            apis,
            subscription_required: p
                .get("subscriptionRequired")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            state,
        });
        let policy = path.join("policy.xml");
        if policy.is_file() {
            files.products.push((name, policy));
        }
    }
}

/// `gatehouse import apiops DIR -o OUT`: the extract written out as a gatehouse configuration
/// (`OUT/gatehouse.yaml`, the policies under `OUT/policies/`, the specifications under
/// `OUT/specs/`), which serves the same. Returns the diagnostics (warnings name what to fill
/// in); nothing is written when there are errors.
pub fn import(dir: &Path, out: &Path, skip_unsupported: bool) -> Diagnostics {
    use serde_yaml::{Mapping, Value as Y};
    let mut d = Diagnostics::new();
    let target = out.join("gatehouse.yaml");
    if target.exists() {
        d.error(
            "C070",
            Span::file(&target.display().to_string()),
            "already exists: import writes a new folder",
        );
        return d;
    }
    let mut raw = match serde_yaml::from_str::<RawConfig>("listeners: []") {
        Ok(r) => r,
        Err(e) => {
            d.error("C070", Span::file("import"), e.to_string());
            return d;
        }
    };
    let (files, backend_json) = read_into(&mut raw, dir, skip_unsupported, true, &mut d);
    if d.has_errors() {
        return d;
    }
    let mut copies: Vec<(PathBuf, PathBuf)> = Vec::new();
    let policies = out.join("policies");
    if let Some(g) = &files.global {
        copies.push((g.clone(), policies.join("global.xml")));
    }
    let mut place = |p: &Path, dst: PathBuf| copies.push((p.to_path_buf(), dst));
    for (id, p) in &files.fragments {
        place(p, policies.join("fragments").join(format!("{id}.xml")));
    }
    for (id, p) in &files.products {
        place(p, policies.join("products").join(format!("{id}.xml")));
    }
    for (id, p) in &files.apis {
        place(p, policies.join("apis").join(format!("{id}.xml")));
    }
    for (api, op, p) in &files.operations {
        place(p, policies.join("apis").join(api).join(format!("{op}.xml")));
    }
    let y = |s: &str| Y::String(s.to_string());
    let mut named = Mapping::new();
    for (name, spec) in &raw.named_values {
        let mut m = Mapping::new();
        if let Some(v) = &spec.value {
            m.insert(y("value"), y(v));
        }
        if let Some(v) = &spec.env {
            m.insert(y("env"), y(v));
        }
        if spec.secret {
            m.insert(y("secret"), Y::Bool(true));
        }
        named.insert(y(name), Y::Mapping(m));
    }
    // Backends as the extract wrote them: the configuration reads ARM's names.
    let backends: Vec<Y> = backend_json
        .iter()
        .filter_map(|(_, v)| serde_yaml::to_value(v).ok())
        .collect();
    let mut apis = Vec::new();
    // An entity's mapping, starting with its id and name.
    let entity = |id: &str, name: &Option<String>| {
        let mut m = Mapping::new();
        m.insert(y("id"), y(id));
        if let Some(n) = name {
            m.insert(y("name"), y(n));
        }
        m
    };
    for a in &raw.apis {
        let mut m = entity(&a.id, &a.name);
        m.insert(y("path"), y(&a.path));
        if let Some(u) = &a.service_url {
            m.insert(y("service_url"), y(u));
        }
        m.insert(y("subscription_required"), Y::Bool(a.subscription_required));
        let k = &a.subscription_key;
        let default = SubscriptionKeyNames::default();
        if k.header != default.header || k.query != default.query {
            let mut km = Mapping::new();
            km.insert(y("header"), y(&k.header));
            km.insert(y("query"), y(&k.query));
            m.insert(y("subscription_key"), Y::Mapping(km));
        }
        if let Some(v) = &a.version {
            let mut vm = Mapping::new();
            vm.insert(y("value"), y(&v.value));
            if let Some(q) = &v.query {
                vm.insert(y("query"), y(q));
            }
            if let Some(h) = &v.header {
                vm.insert(y("header"), y(h));
            }
            m.insert(y("version"), Y::Mapping(vm));
        }
        if let Some(spec) = &a.openapi {
            let src = PathBuf::from(spec);
            let ext = src
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("yaml")
                .to_string();
            let rel = format!("specs/{}.{ext}", a.id);
            copies.push((src, out.join(&rel)));
            m.insert(y("openapi"), y(&rel));
        }
        apis.push(Y::Mapping(m));
    }
    let mut products = Vec::new();
    for p in &raw.products {
        let mut m = entity(&p.id, &p.name);
        m.insert(
            y("apis"),
            Y::Sequence(p.apis.iter().map(|a| y(a)).collect()),
        );
        m.insert(y("subscription_required"), Y::Bool(p.subscription_required));
        if p.state == super::model::ProductState::NotPublished {
            m.insert(y("state"), y("notPublished"));
        }
        products.push(Y::Mapping(m));
    }
    let mut listener = Mapping::new();
    listener.insert(y("address"), y("127.0.0.1:8080"));
    let mut pol = Mapping::new();
    pol.insert(y("dir"), y("policies"));
    let mut root = Mapping::new();
    root.insert(y("listeners"), Y::Sequence(vec![Y::Mapping(listener)]));
    root.insert(y("policies"), Y::Mapping(pol));
    root.insert(y("named_values"), Y::Mapping(named));
    root.insert(y("backends"), Y::Sequence(backends));
    root.insert(y("apis"), Y::Sequence(apis));
    root.insert(y("products"), Y::Sequence(products));
    let text = match serde_yaml::to_string(&Y::Mapping(root)) {
        Ok(t) => format!(
            "# Written by `gatehouse import apiops {}`.\n# Fill in: the listener, the named values read from the environment, and\n# `subscriptions:` (an extract holds no keys).\n{t}",
            dir.display()
        ),
        Err(e) => {
            d.error("C070", Span::file(&target.display().to_string()), e.to_string());
            return d;
        }
    };
    let write = |path: &Path, bytes: &[u8], d: &mut Diagnostics| {
        let r = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(path, bytes));
        if let Err(e) = r {
            d.error(
                "C070",
                Span::file(&path.display().to_string()),
                format!("cannot write: {e}"),
            );
        }
    };
    write(&target, text.as_bytes(), &mut d);
    for (src, dst) in copies {
        match std::fs::read(&src) {
            Ok(b) => write(&dst, &b, &mut d),
            Err(e) => d.error(
                "C070",
                Span::file(&src.display().to_string()),
                format!("cannot read: {e}"),
            ),
        }
    }
    d
}

/// Finds the first policy element a document uses that gatehouse does not run, with its
/// position. Reading policies is the policy layer's work, above this one: the layer above gives
/// the function at start (`set_policy_scan`; the command line does). Without it,
/// `skip_unsupported` leaves out only what the extract's JSON shows, and compile reports the
/// policies where they stand.
pub type PolicyScan = fn(&Path) -> Option<(Span, String)>;

static POLICY_SCAN: std::sync::OnceLock<PolicyScan> = std::sync::OnceLock::new();

pub fn set_policy_scan(scan: PolicyScan) {
    let _ = POLICY_SCAN.set(scan);
}

fn unsupported_policy(file: &Path) -> Option<(Span, String)> {
    POLICY_SCAN.get().and_then(|scan| scan(file))
}

/// `subscriptions/<name>/subscriptionInformation.json`: the scope (ARM's `/products/<id>`,
/// `/apis/<id>`, `/apis`, or a full resource id ending so), the name, state and tracing. An
/// extract holds no keys: the YAML's subscription of the same id gives them (and may leave out
/// the scope); one the YAML does not key is left out with a warning (C072).
fn subscriptions(raw: &mut RawConfig, dir: &Path, d: &mut Diagnostics) {
    for (name, path) in subfolders(&dir.join("subscriptions")) {
        let file = path.join("subscriptionInformation.json");
        let Some(p) = read_json(&file, d) else {
            continue;
        };
        let arm_scope = string(&p, "scope").unwrap_or_default();
        let trimmed = arm_scope.trim_end_matches('/');
        let scope = if let Some(at) = trimmed.rfind("/products/") {
            format!("product:{}", &trimmed[at + "/products/".len()..])
        } else if let Some(at) = trimmed.rfind("/apis/") {
            format!("api:{}", &trimmed[at + "/apis/".len()..])
        } else if trimmed.ends_with("/apis") {
            "all-apis".to_string()
        } else {
            d.error(
                "C070",
                at(&file, "scope"),
                format!(
                    "subscription `{name}`: scope {arm_scope:?} names no product, API or all APIs"
                ),
            );
            continue;
        };
        let state = match string(&p, "state")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("suspended") => SubscriptionState::Suspended,
            Some("submitted") => SubscriptionState::Submitted,
            Some("rejected") => SubscriptionState::Rejected,
            Some("cancelled") => SubscriptionState::Cancelled,
            Some("expired") => SubscriptionState::Expired,
            _ => SubscriptionState::Active,
        };
        let tracing = p
            .get("allowTracing")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match raw.subscriptions.iter_mut().find(|s| s.id == name) {
            Some(s) => {
                if s.scope.is_empty() {
                    s.scope = scope;
                }
                if s.name.is_none() {
                    s.name = string(&p, "displayName");
                }
                s.allow_tracing |= tracing;
                // The extract's state, unless the YAML says otherwise than the default.
                if s.state == SubscriptionState::Active {
                    s.state = state;
                }
            }
            None => {
                d.warning(
                    "C072",
                    at(&file, "scope"),
                    format!("subscription `{name}` is left out: an extract holds no keys; give them in the YAML (`subscriptions: - {{ id: {name}, primary_key: ... }}`)"),
                );
            }
        }
    }
}

/// The API folders of an extract: (name, revision from the folder name, folder, whether it is
/// the current revision when its `apiInformation.json` does not say). The current
/// layout is `apis/<name>/` and `apis/<name>;rev=N/`; the older one
/// `apis/<display name>/<version or Original>/<revision>/`, whose API name is the
/// `apiInformation.json`'s own `name` when it has one, else the display name in lower case with
/// dashes for spaces (and `-<version>` for a version other than `Original`).
fn api_folders(dir: &Path) -> Vec<(String, Option<String>, PathBuf, bool)> {
    let mut out = Vec::new();
    for (folder, path) in subfolders(&dir.join("apis")) {
        if path.join("apiInformation.json").is_file() {
            let (name, revision) = match folder.split_once(";rev=") {
                Some((n, r)) => (n.to_string(), Some(r.to_string())),
                None => (folder.clone(), None),
            };
            let default_current = revision.is_none();
            out.push((name, revision, path, default_current));
            continue;
        }
        for (version, vpath) in subfolders(&path) {
            for (revision, rpath) in subfolders(&vpath) {
                let info = rpath.join("apiInformation.json");
                if !info.is_file() {
                    continue;
                }
                let own = super::read_bounded(&info, MAX_JSON_BYTES)
                    .ok()
                    .and_then(|t| {
                        serde_json::from_str::<Value>(t.trim_start_matches('\u{feff}')).ok()
                    })
                    .and_then(|v| string(&v, "name"))
                    .map(|n| {
                        arm_last(&n)
                            .split(";rev=")
                            .next()
                            .unwrap_or_default()
                            .to_string()
                    })
                    .filter(|n| !n.is_empty());
                let name = own.unwrap_or_else(|| {
                    let base: String = folder
                        .trim()
                        .to_ascii_lowercase()
                        .chars()
                        .map(|c| if c.is_whitespace() { '-' } else { c })
                        .collect();
                    if version.eq_ignore_ascii_case("original") {
                        base
                    } else {
                        format!("{base}-{}", version.to_ascii_lowercase())
                    }
                });
                out.push((name, Some(revision), rpath, true));
            }
        }
    }
    out
}
