//! An Azure APIOps extract served as it is (`apiops:` / `--apiops`): the fixture in
//! `tests/fixtures/apiops/` is in the extractor's shape (folders with spaces, CRLF policies, a
//! non-current revision, a version set, APIs defined by OpenAPI 3 and Swagger 2, operation
//! policies, products linked both ways, named values with a secret and a Key Vault reference
//! the YAML maps, a pool of ARM-id members with breakers, a fragment, a SOAP API to report).
//! The origins' ports are filled into the copy the test serves.

mod common;
use common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Every file under `dir` (recursively), as (path relative to `base`, text).
fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
    {
        let p = e.path();
        if p.is_dir() {
            walk(&p, base, out);
        } else {
            let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{e}"));
            out.push((rel, text));
        }
    }
}

/// The fixture's files (relative to its folder) with the origins' ports filled in.
fn fixture(ports: &[(&str, u16)]) -> Vec<(String, String)> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apiops");
    let mut out = Vec::new();
    walk(&base, &base, &mut out);
    for (_, text) in out.iter_mut() {
        for (name, port) in ports {
            *text = text.replace(&format!("{{{name}}}"), &port.to_string());
        }
    }
    out.sort();
    out
}

fn yaml(files: &[(String, String)]) -> String {
    files
        .iter()
        .find(|(p, _)| p == "gatehouse.yaml")
        .map(|(_, t)| t.clone())
        .unwrap_or_default()
}

/// The extract's files without the YAML (the harness writes its own, with the fixture's body).
fn extract(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .filter(|(p, _)| p != "gatehouse.yaml")
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect()
}

/// The three origins (east, west, echo; east can be made to fail) and the fixture with their
/// ports.
#[allow(clippy::type_complexity)]
fn origins_and_fixture() -> (
    Origin,
    Arc<AtomicBool>,
    Origin,
    Origin,
    Vec<(String, String)>,
) {
    let ((east, east_fails), (west, _), (echo, _)) = (named("east"), named("west"), named("echo"));
    let files = fixture(&[
        ("orders_east", east.port),
        ("orders_west", west.port),
        ("echo", echo.port),
    ]);
    (east, east_fails, west, echo, files)
}

fn named(name: &'static str) -> (Origin, Arc<AtomicBool>) {
    let fail = Arc::new(AtomicBool::new(false));
    let f = fail.clone();
    let o = Origin::start(move |r| {
        if f.load(Ordering::SeqCst) {
            return Reply::Full(Response::new(500, "failing"));
        }
        Reply::Full(echo_response(r).with_header("X-Member", name))
    });
    (o, fail)
}

#[test]
fn gatehouse_run_apiops_serves_an_extract() {
    let (_east, east_fails, _west, _echo, files) = origins_and_fixture();
    // `gatehouse run -c gatehouse.yaml --apiops DIR --skip-unsupported`: the extract in a folder
    // of its own, the fixture's YAML without its `apiops` (the flag replaces it).
    let folder = TempDir::new();
    for (p, t) in extract(&files) {
        folder.write(p, t);
    }
    let extract_dir = folder.0.join("apimartifacts");
    let body = yaml(&files).replace("apiops:\n  dir: apimartifacts\n", "");
    assert!(!body.contains("apiops"), "{body}");
    let gw = Gatehouse::start_with_args(
        &body,
        &[],
        &[("GATEHOUSE_TEST_KV_TOKEN", "kv-secret")],
        &[
            "--apiops",
            &extract_dir.display().to_string(),
            "--skip-unsupported",
        ],
    );

    // Orders v1 (version set, Segment scheme): the operation from the OpenAPI definition, its
    // policies at all four scopes, the product's, the API's own key header name, the pool.
    let key = [("X-Orders-Key", "starter-key-0001")];
    let r = gw.get("/orders/v1/orders/42", &key);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.log());
    assert_eq!(
        r.header("X-Member"),
        Some("east"),
        "the pool's priority-1 member"
    );
    let h = &r.json()["headers"];
    assert_eq!(h["x-global"], "global");
    assert_eq!(h["x-product"], "Starter");
    assert_eq!(h["x-fragment"], "stamped");
    assert_eq!(h["x-api"], "Orders orders/v1");
    assert_eq!(h["x-operation"], "getOrder 42");
    assert_eq!(h["x-secret-set"], "yes", "the YAML's value for the secret");
    assert_eq!(
        h["x-backend-key"], "key-from-the-extract",
        "credentials.header with a named value"
    );
    assert_eq!(r.json()["path"], "/orders/42");

    let status = |target: &str, headers: &[(&str, &str)]| gw.get(target, headers).status;
    // Without a key, or with the default header name (the API renamed it): 401.
    assert_eq!(status("/orders/v1/orders/42", &[]), 401);
    let starter = [("Ocp-Apim-Subscription-Key", "starter-key-0001")];
    assert_eq!(status("/orders/v1/orders/42", &starter), 401);
    // No unversioned path: the version set's segment is part of the API's path.
    assert_eq!(gw.get("/orders/orders/42", &key).status, 404);

    // The east member fails: its breaker (count 1, PT1M, 500-599) trips and west serves.
    east_fails.store(true, Ordering::SeqCst);
    let r = gw.get("/orders/v1/orders/7", &key);
    assert_eq!(r.status, 500);
    let r = gw.get("/orders/v1/orders/7", &key);
    assert_eq!(r.header("X-Member"), Some("west"), "{}", r.text());

    // Echo (Swagger 2, linked to its product by a folder): the current revision's service URL.
    let r = gw.get(
        "/echo/resource",
        &[("Ocp-Apim-Subscription-Key", "unlimited-key-0001")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/echo/resource");
    assert_eq!(r.json()["query"], "from-operation=echo-get");
    // A revision that is not current serves at `<path>;rev=N` (APIM's URL), with its own
    // service URL, in the same product as its API.
    let r = gw.get(
        "/echo;rev=2/resource",
        &[("Ocp-Apim-Subscription-Key", "unlimited-key-0001")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/echo-v2/resource");
    // Other spellings of it do not reach it.
    assert_eq!(
        status(
            "/echo%3Brev=2/resource",
            &[("Ocp-Apim-Subscription-Key", "unlimited-key-0001")]
        ),
        404
    );
    // The starter key does not open echo (not in that product), nor unlimited orders.
    assert_eq!(status("/echo/resource", &starter), 401);
    assert_eq!(
        status(
            "/orders/v1/orders/1",
            &[("X-Orders-Key", "unlimited-key-0001")]
        ),
        401
    );

    // An API in the extractor's older layout (`<display name>/Original/<revision>/`).
    let r = gw.get("/legacy-echo/ping", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/legacy-echo/ping");
    assert_eq!(r.json()["headers"]["x-layout"], "legacy-echo");

    // The SOAP API and the API whose policy logs to Event Hubs were left out.
    assert_eq!(gw.get("/legacy/x", &key).status, 404);
    assert_eq!(gw.get("/events/items", &[]).status, 404);

    // Query versioning: the original API without `api-version`, v2 with it (any case).
    let path_of = |target: &str, headers: &[(&str, &str)]| {
        let r = gw.get(target, headers);
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        r.json()["path"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(path_of("/billing/items", &[]), "/billing-original/items");
    assert_eq!(
        path_of("/billing/items?api-version=v2", &[]),
        "/billing-v2/items"
    );
    assert_eq!(
        path_of("/billing/items?api-version=V2", &[]),
        "/billing-v2/items"
    );
    assert_eq!(
        path_of("/billing/items?api-version=v9", &[]),
        "/billing-original/items"
    );
    // Header versioning, no original: a request naming no version (or an unknown one) is 404.
    assert_eq!(
        path_of("/reports/items", &[("X-Version", "v1")]),
        "/reports-v1/items"
    );
    assert_eq!(
        path_of("/reports/items", &[("x-version", "v2")]),
        "/reports-v2/items"
    );
    assert_eq!(gw.get("/reports/items", &[]).status, 404);
    assert_eq!(gw.get("/reports/items", &[("X-Version", "v3")]).status, 404);

    // A reload reads the extract again: an operation policy changed in place serves.
    let changed =
        std::fs::read_to_string(extract_dir.join("apis/echo-api/operations/echo-get/policy.xml"))
            .unwrap_or_default()
            .replace("<value>echo-get</value>", "<value>reloaded</value>");
    folder.write(
        "apimartifacts/apis/echo-api/operations/echo-get/policy.xml",
        &changed,
    );
    gw.signal("HUP");
    let mut query = String::new();
    for _ in 0..100 {
        let r = gw.get(
            "/echo/resource",
            &[("Ocp-Apim-Subscription-Key", "unlimited-key-0001")],
        );
        query = r.json()["query"].as_str().unwrap_or_default().to_string();
        if query == "from-operation=reloaded" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(query, "from-operation=reloaded", "{}", gw.log());
}

#[test]
fn check_says_what_cannot_be_served_naming_the_files_all_at_once() {
    let files = fixture(&[("orders_east", 1), ("orders_west", 2), ("echo", 3)]);
    let dir = TempDir::new();
    for (p, t) in &files {
        dir.write(p, t);
    }
    // A backend file that is not JSON, and one with a property gatehouse does not know.
    dir.write(
        "apimartifacts/backends/broken/backendInformation.json",
        "{\n  \"properties\": {\n    \"url\": \"http://x\",,\n  }\n}\n",
    );
    dir.write(
        "apimartifacts/backends/fabric/backendInformation.json",
        "{\n  \"properties\": {\n    \"url\": \"fabric:/app\",\n    \"properties\": { \"serviceFabricCluster\": {} }\n  }\n}\n",
    );
    // Without the YAML's mapping of the secrets, and without --skip-unsupported.
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:1\napiops:\n  dir: apimartifacts\n",
    );
    let out = check_fails(&dir.0);
    for want in [
        "legacy-soap/apiInformation.json:",
        "C071",
        "a soap API",
        "namedValueInformation.json:",
        "C072",
        "named value `orders-secret` is a secret the extract holds without its value",
        "named value `kv-token` is a Key Vault reference",
        "apis/events/policy.xml:4:",
        "P020",
        "backends/broken/backendInformation.json:3:",
        "not JSON",
        "backends/fabric/backendInformation.json:4:",
        "C073",
        "unknown field `properties`",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }

    for b in ["broken", "fabric"] {
        std::fs::remove_dir_all(dir.0.join(format!("apimartifacts/backends/{b}")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // The same folder through --apiops, with the fixture's YAML and --skip-unsupported: clean
    // but for the warnings that list what was left out.
    dir.write("gatehouse.yaml", "listeners:\n  - address: 127.0.0.1:1\nnamed_values:\n  orders-secret: { value: not-shown-1, secret: true }\n  kv-token: { value: not-shown-2, secret: true }\n");
    let out = run_cli(
        &dir.0,
        &[
            "check",
            "-c",
            "gatehouse.yaml",
            "--apiops",
            "apimartifacts",
            "--skip-unsupported",
        ],
    );
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("left out (--skip-unsupported)"), "{text}");
    assert!(
        text.contains("apis/events/policy.xml:4:") && text.contains("uses <log-to-eventhub>"),
        "{text}"
    );
    assert!(
        text.contains("subscriptionInformation.json:")
            && text.contains("subscription `starter-sub` is left out"),
        "{text}"
    );
}

/// `gatehouse import apiops DIR -o OUT` writes a configuration that checks clean and serves the
/// same (the secrets it cannot know become `env:` named values to fill in, reported).
#[test]
fn import_writes_a_configuration_that_serves_the_same() {
    let (_east, _, _west, _echo, files) = origins_and_fixture();
    let dir = TempDir::new();
    for (p, t) in &files {
        dir.write(p, t);
    }
    let out = run_cli(&dir.0, &["import", "apiops", "apimartifacts", "-o", "out"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "the SOAP API stops an import without --skip-unsupported"
    );
    assert!(
        text.contains("legacy-soap") && !dir.0.join("out/gatehouse.yaml").exists(),
        "{text}"
    );

    let out = run_cli(
        &dir.0,
        &[
            "import",
            "apiops",
            "apimartifacts",
            "-o",
            "out",
            "--skip-unsupported",
        ],
    );
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("written as `env: APIM_NV_ORDERS_SECRET`"),
        "{text}"
    );
    // Writing over an earlier import is refused.
    let again = run_cli(
        &dir.0,
        &[
            "import",
            "apiops",
            "apimartifacts",
            "-o",
            "out",
            "--skip-unsupported",
        ],
    );
    assert!(!again.status.success());

    // Serve the written configuration (the harness brings its own listeners), with keys.
    let written =
        std::fs::read_to_string(dir.0.join("out/gatehouse.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let body: String = written
        .split("\nnamed_values:")
        .nth(1)
        .map(|rest| format!("named_values:{rest}"))
        .unwrap_or_else(|| panic!("no named_values in:\n{written}"));
    let body = format!(
        "{body}subscriptions:\n  - id: s\n    scope: product:starter\n    primary_key: starter-key-0001\n"
    );
    let mut copied = Vec::new();
    let base = dir.0.join("out");
    for sub in ["policies", "specs"] {
        walk(&base.join(sub), &base, &mut copied);
    }
    let refs: Vec<(&str, &str)> = copied
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let gw = Gatehouse::start_with_env(
        &body,
        &[],
        &refs,
        &[("APIM_NV_ORDERS_SECRET", "s"), ("APIM_NV_KV_TOKEN", "k")],
    );
    let r = gw.get(
        "/orders/v1/orders/42",
        &[("X-Orders-Key", "starter-key-0001")],
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.log());
    assert_eq!(r.header("X-Member"), Some("east"));
    let h = &r.json()["headers"];
    let r = gw.get("/billing/items?api-version=v2", &[]);
    assert_eq!(r.json()["path"], "/billing-v2/items", "{}", r.text());
    let r = gw.get("/reports/items", &[("X-Version", "v1")]);
    assert_eq!(r.json()["path"], "/reports-v1/items", "{}", r.text());
    for (k, v) in [
        ("x-global", "global"),
        ("x-product", "Starter"),
        ("x-fragment", "stamped"),
        ("x-api", "Orders orders/v1"),
        ("x-operation", "getOrder 42"),
        ("x-secret-set", "yes"),
        ("x-backend-key", "key-from-the-extract"),
    ] {
        assert_eq!(h[k], v, "{k}");
    }
}
