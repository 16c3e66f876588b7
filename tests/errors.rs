//! Routing, subscription and backend failures: exact statuses and bodies, on-error shaping,
//! and large / streamed bodies passing through intact.

mod common;
use common::*;

fn yaml(origin_port: u16) -> String {
    format!(
        "apis:\n{}{}{}products:\n  - id: gold\n    apis: [keyed]\n  - id: other\n    apis: [open]\n  - id: free\n    subscription_required: false\n    apis: [freebie]\nsubscriptions:\n  - id: gold-sub\n    scope: product:gold\n    primary_key: gold-primary-1\n    secondary_key: gold-secondary-1\n  - id: other-sub\n    scope: product:other\n    primary_key: other-primary-1\n  - id: suspended-sub\n    scope: all-apis\n    primary_key: suspended-key-1\n    state: suspended\n  - id: all-sub\n    scope: all-apis\n    primary_key: all-apis-key-1\n",
        api_yaml("keyed", "keyed", &format!("http://127.0.0.1:{origin_port}"), "", &[("get", "GET", "/items/{id}"), ("post", "POST", "/items")]),
        api_yaml("open", "open", &format!("http://127.0.0.1:{origin_port}"), "    subscription_required: false\n", &[("get", "GET", "/{*rest}")]),
        api_yaml("freebie", "freebie", &format!("http://127.0.0.1:{origin_port}"), "", &[("get", "GET", "/")]),
    )
}

const MISSING: &str = r#"{"statusCode":401,"message":"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}"#;
const INVALID: &str = r#"{"statusCode":401,"message":"Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."}"#;

#[test]
fn not_found_and_wrong_method_give_404() {
    let origin = Origin::echo();
    let gw = Gatehouse::start(&yaml(origin.port), &[]);
    for (m, p) in [
        ("GET", "/nowhere"),
        ("GET", "/keyed/unknown/path"),
        ("DELETE", "/keyed/items/1"),
        ("GET", "/keyedx/items/1"),
    ] {
        let r = gw.send(
            m,
            p,
            &[("Ocp-Apim-Subscription-Key", "gold-primary-1")],
            b"",
        );
        assert_eq!(r.status, 404, "{m} {p}");
        assert_eq!(
            r.text(),
            r#"{"statusCode":404,"message":"Resource not found"}"#
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_eq!(gw.last_log()["error"], "OperationNotFound");
    assert_eq!(origin.count(), 0);
}

#[test]
fn subscription_keys_decide_access() {
    let origin = Origin::echo();
    let gw = Gatehouse::start(&yaml(origin.port), &[]);
    let r = gw.get("/keyed/items/1", &[]);
    assert_eq!((r.status, r.text().as_str()), (401, MISSING));
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"AzureApiManagementKey realm="gatehouse",name="ocp-apim-subscription-key",type="header""#
        )
    );
    assert_eq!(gw.last_log()["error"], "SubscriptionKeyNotFound");
    for key in ["nope-nope-nope", "suspended-key-1", "other-primary-1"] {
        let r = gw.get("/keyed/items/1", &[("Ocp-Apim-Subscription-Key", key)]);
        assert_eq!((r.status, r.text().as_str()), (401, INVALID), "key {key}");
    }
    // Primary, secondary, query parameter, and an all-APIs key.
    for (h, q) in [
        (Some("gold-primary-1"), ""),
        (Some("gold-secondary-1"), ""),
        (None, "?subscription-key=gold-primary-1"),
        (Some("all-apis-key-1"), ""),
    ] {
        let headers: Vec<(&str, &str)> = h
            .map(|k| ("Ocp-Apim-Subscription-Key", k))
            .into_iter()
            .collect();
        let r = gw.get(&format!("/keyed/items/1{q}"), &headers);
        assert_eq!(r.status, 200, "{h:?} {q}: {}", r.text());
    }
    assert_eq!(gw.last_log()["subscription"], "all-sub");
    // The key is passed on to the backend by default, and never logged.
    assert_eq!(
        origin.last().header("ocp-apim-subscription-key"),
        Some("all-apis-key-1")
    );
    assert!(!gw.log().contains("gold-primary-1") && !gw.log().contains("all-apis-key-1"));
    // Open API: no key needed; an invalid key is still rejected.
    assert_eq!(gw.get("/open/x", &[]).status, 200);
    assert_eq!(
        gw.get("/open/x", &[("Ocp-Apim-Subscription-Key", "bad-key-123")])
            .status,
        401
    );
    // Open product: requests without a key run in its product context.
    assert_eq!(gw.get("/freebie/", &[]).status, 200);
    assert_eq!(gw.last_log()["product"], "free");
}

#[test]
fn backend_down_gives_generic_500() {
    let dead = free_port();
    let gw = Gatehouse::start(&yaml(dead), &[]);
    let r = gw.get("/open/x", &[]);
    assert_eq!(r.status, 500);
    let v = r.json();
    assert_eq!(v["statusCode"], 500);
    assert_eq!(v["message"], "Internal server error");
    let log = gw.last_log();
    assert_eq!(v["activityId"], log["request_id"]);
    assert_eq!(log["error"], "BackendConnectionFailure");
    assert_eq!(log["produced_by"]["kind"], "gateway");
    assert!(
        !r.text().contains("127.0.0.1"),
        "no internal detail in the body"
    );
}

#[test]
fn on_error_shapes_failures_at_each_stage() {
    let dead = free_port();
    let global = r#"<policies><inbound /><backend><forward-request /></backend><outbound />
        <on-error>
            <set-header name="X-Global-Error" exists-action="override"><value>yes</value></set-header>
        </on-error></policies>"#;
    let api = r#"<policies><inbound><base /></inbound><backend><base /></backend><outbound><base /></outbound>
        <on-error>
            <base />
            <set-status code="503" reason="Try Later" />
            <set-body>{"error": "backend unavailable"}</set-body>
        </on-error></policies>"#;
    let keyed = r#"<policies><inbound><base /></inbound><backend><base /></backend><outbound><base /></outbound>
        <on-error>
            <return-response><set-status code="403" reason="Forbidden" /><set-body>custom auth error</set-body></return-response>
        </on-error></policies>"#;
    let gw = Gatehouse::start(
        &yaml(dead),
        &[
            ("global.xml", global),
            ("apis/open.xml", api),
            ("apis/keyed.xml", keyed),
        ],
    );
    let r = gw.get("/open/x", &[]);
    assert_eq!((r.status, r.reason.as_str()), (503, "Try Later"));
    assert_eq!(r.text(), r#"{"error": "backend unavailable"}"#);
    assert_eq!(r.header("x-global-error"), Some("yes"));
    // Errors before inbound (subscription) run global + API on-error.
    let r = gw.get("/keyed/items/1", &[]);
    assert_eq!((r.status, r.text().as_str()), (403, "custom auth error"));
    // Errors before an API matched run only the global on-error.
    let r = gw.get("/nowhere", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-global-error"), Some("yes"));
}

#[test]
fn one_mib_request_body_and_streamed_response_pass_intact() {
    let origin = Origin::start(|r| {
        if r.path() == "/stream" {
            let chunks: Vec<Vec<u8>> = (0..20)
                .map(|i| format!("chunk-{i:02};").into_bytes())
                .collect();
            Reply::Stream(200, chunks, std::time::Duration::from_millis(10))
        } else {
            Reply::Full(
                Response::new(200, r.body.clone()).with_header("X-Len", &r.body.len().to_string()),
            )
        }
    });
    let gw = Gatehouse::start(&yaml(origin.port), &[]);
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let r = gw.send(
        "POST",
        "/keyed/items",
        &[("Ocp-Apim-Subscription-Key", "gold-primary-1")],
        &body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-len"), Some("1048576"));
    assert!(
        r.body == body,
        "1 MiB body changed on the way (got {} bytes)",
        r.body.len()
    );
    let r = gw.get("/open/stream", &[]);
    assert_eq!(r.status, 200);
    let expected: String = (0..20).map(|i| format!("chunk-{i:02};")).collect();
    assert_eq!(r.text(), expected);
}

#[test]
fn a_failed_upstream_answer_says_connection_close() {
    // Nothing listens on this port: the 500 closes the client connection, and says so.
    let dead = free_port();
    let yaml = format!(
        "apis:\n  - id: d\n    path: d\n    service_url: http://127.0.0.1:{dead}\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: /\n"
    );
    let gw = Gatehouse::start(&yaml, &[]);
    let mut c = KeepAlive::new(gw.port);
    let r = c.get("/d/");
    assert_eq!(r.status, 500);
    assert_eq!(r.header("connection"), Some("close"));
}
