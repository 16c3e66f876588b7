//! Scope composition with `<base/>` (first, last, absent, omitted), product scope, named values
//! and fragments, through the real binary.

mod common;
use common::*;

fn header_policy(name: &str, before: &[&str], base: bool, after: &[&str]) -> String {
    let set = |v: &str| {
        format!(
            "<set-header name=\"{name}\" exists-action=\"append\"><value>{v}</value></set-header>"
        )
    };
    let mut s = String::from("<policies><inbound>");
    for v in before {
        s.push_str(&set(v));
    }
    if base {
        s.push_str("<base />");
    }
    for v in after {
        s.push_str(&set(v));
    }
    s.push_str("</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>");
    s
}

fn setup(origin: &Origin) -> Gatehouse {
    let yaml = format!(
        "apis:\n{}products:\n  - id: gold\n    apis: [comp]\nsubscriptions:\n  - id: gold-sub\n    scope: product:gold\n    primary_key: gold-key-123456\n  - id: api-sub\n    scope: api:comp\n    primary_key: api-key-1234567\n",
        api_yaml(
            "comp",
            "comp",
            &format!("http://127.0.0.1:{}", origin.port),
            "",
            &[("first", "GET", "/first"), ("last", "GET", "/last"), ("absent", "GET", "/absent"), ("omitted", "GET", "/omitted")]
        )
    );
    let global = "<policies><inbound><set-header name=\"X-Order\" exists-action=\"append\"><value>global</value></set-header></inbound>\
        <backend><forward-request /></backend>\
        <outbound><set-header name=\"X-Out\" exists-action=\"append\"><value>global</value></set-header></outbound><on-error /></policies>";
    let product = header_policy("X-Order", &[], true, &["product"]);
    let api = "<policies><inbound><set-header name=\"X-Order\" exists-action=\"append\"><value>api-before</value></set-header><base /><set-header name=\"X-Order\" exists-action=\"append\"><value>api-after</value></set-header></inbound>\
        <backend><base /></backend><outbound><base /><set-header name=\"X-Out\" exists-action=\"append\"><value>api</value></set-header></outbound><on-error><base /></on-error></policies>";
    Gatehouse::start(
        &yaml,
        &[
            ("global.xml", global),
            ("products/gold.xml", &product),
            ("apis/comp.xml", api),
            (
                "apis/comp/first.xml",
                &header_policy("X-Order", &[], true, &["operation"]),
            ),
            (
                "apis/comp/last.xml",
                &header_policy("X-Order", &["operation"], true, &[]),
            ),
            (
                "apis/comp/absent.xml",
                &header_policy("X-Order", &["operation"], false, &[]),
            ),
        ],
    )
}

fn order(gw: &Gatehouse, origin: &Origin, path: &str, key: &str) -> String {
    let r = gw.get(path, &[("Ocp-Apim-Subscription-Key", key)]);
    assert_eq!(r.status, 200, "{}", r.text());
    origin.last().header("x-order").unwrap_or("").to_string()
}

#[test]
fn base_first_last_absent_and_omitted() {
    let origin = Origin::echo();
    let gw = setup(&origin);
    assert_eq!(
        order(&gw, &origin, "/comp/first", "api-key-1234567"),
        "api-before, global, api-after, operation"
    );
    assert_eq!(
        order(&gw, &origin, "/comp/last", "api-key-1234567"),
        "operation, api-before, global, api-after"
    );
    assert_eq!(
        order(&gw, &origin, "/comp/absent", "api-key-1234567"),
        "operation"
    );
    assert_eq!(
        order(&gw, &origin, "/comp/omitted", "api-key-1234567"),
        "api-before, global, api-after"
    );
}

#[test]
fn product_scope_applies_only_in_product_context() {
    let origin = Origin::echo();
    let gw = setup(&origin);
    // Product key: product policies join the chain between global and API.
    assert_eq!(
        order(&gw, &origin, "/comp/first", "gold-key-123456"),
        "api-before, global, product, api-after, operation"
    );
    assert_eq!(gw.last_log()["product"], "gold");
    // API-scoped key: no product policies (apim-reference.md §1.2 rule 5).
    assert_eq!(
        order(&gw, &origin, "/comp/first", "api-key-1234567"),
        "api-before, global, api-after, operation"
    );
    assert_eq!(gw.last_log()["product"], serde_json::Value::Null);
}

#[test]
fn outbound_composes_in_document_order() {
    let origin = Origin::echo();
    let gw = setup(&origin);
    let r = gw.get(
        "/comp/first",
        &[("Ocp-Apim-Subscription-Key", "api-key-1234567")],
    );
    assert_eq!(r.header("x-out"), Some("global, api"));
}

#[test]
fn named_values_and_fragments() {
    let origin = Origin::echo();
    let dir_secret = "s3cr3t-value-xyz";
    let yaml = format!(
        "named_values:\n  tenant:\n    value: contoso\n  token:\n    file: token.txt\napis:\n{}",
        api_yaml(
            "nv",
            "nv",
            &format!("http://127.0.0.1:{}", origin.port),
            "    subscription_required: false\n",
            &[("get", "GET", "/")]
        )
    );
    let api = "<policies><inbound><base />\
        <set-header name=\"X-Tenant\" exists-action=\"override\"><value>{{tenant}}</value></set-header>\
        <set-header name=\"X-Mixed\" exists-action=\"override\"><value>pre-{{tenant}}-post</value></set-header>\
        <set-header name=\"X-Token\" exists-action=\"override\"><value>{{token}}</value></set-header>\
        <include-fragment fragment-id=\"tags\" />\
        </inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>";
    let frag = "<fragment><set-header name=\"X-Frag\" exists-action=\"override\"><value>from-fragment-{{tenant}}</value></set-header></fragment>";
    let gw = Gatehouse::start_with(
        &yaml,
        &[("apis/nv.xml", api), ("fragments/tags.xml", frag)],
        &[("token.txt", &format!("{dir_secret}\n"))],
    );
    let r = gw.get("/nv/", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(origin.last().header("x-token"), Some(dir_secret));
    let req = origin.last();
    assert_eq!(req.header("x-tenant"), Some("contoso"));
    assert_eq!(req.header("x-mixed"), Some("pre-contoso-post"));
    assert_eq!(req.header("x-frag"), Some("from-fragment-contoso"));
    // explain shows references, never secret values.
    let out = run_cli(
        &gw.dir.0,
        &[
            "explain",
            "-c",
            "gatehouse.yaml",
            "--api",
            "nv",
            "--operation",
            "get",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("{{token}}"), "{text}");
    assert!(!text.contains(dir_secret), "{text}");
    let _ = gw.last_log();
    assert!(!gw.log().contains(dir_secret), "secret leaked into the log");
}
