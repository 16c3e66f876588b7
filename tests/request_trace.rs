//! APIM's request tracing through the real binary (docs/operations.md, "Request tracing"):
//! `Ocp-Apim-Trace: true` with the key of a subscription that allows tracing gets an
//! `Ocp-Apim-Trace-Location` whose document lists every statement by section, the backend
//! call and the `trace` messages, secrets masked; nobody else gets one.

mod common;
use common::*;

const TRACER: &str = "tracer-key-0123456789";
const PLAIN: &str = "plain-key-0123456789";
const SECRET: &str = "very-secret-value-42";

fn gateway(origin: u16) -> Gatehouse {
    let yaml = format!(
        "named_values:\n  backend-secret:\n    env: GH_TRACE_SECRET\napis:\n  - id: t\n    path: t\n    service_url: http://127.0.0.1:{origin}\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\nsubscriptions:\n  - id: tracer\n    scope: api:t\n    primary_key: {TRACER}\n    allow_tracing: true\n  - id: plain\n    scope: api:t\n    primary_key: {PLAIN}\n"
    );
    let doc = r#"<policies>
  <inbound>
    <base />
    <set-header name="X-Backend-Secret" exists-action="override"><value>{{backend-secret}}</value></set-header>
    <trace source="checkpoint" severity="information"><message>@("key " + context.Subscription.Key + " secret " + context.Request.Headers.GetValueOrDefault("X-Backend-Secret", "-"))</message></trace>
    <choose>
      <when condition="@(context.Request.Url.Path.Contains("fail"))">
        <set-variable name="x" value="@(1 / int.Parse("0"))" />
      </when>
    </choose>
  </inbound>
  <backend><base /></backend>
  <outbound><base /><set-header name="X-Out" exists-action="override"><value>done</value></set-header></outbound>
  <on-error><base /><set-header name="X-Failed" exists-action="override"><value>@(context.LastError.Reason)</value></set-header></on-error>
</policies>"#;
    Gatehouse::start_with_env(
        &yaml,
        &[("apis/t.xml", doc)],
        &[],
        &[("GH_TRACE_SECRET", SECRET)],
    )
}

fn fetch_trace(gw: &Gatehouse, location: &str) -> serde_json::Value {
    let prefix = format!("http://127.0.0.1:{}", gw.admin);
    let path = location
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("location {location} is not on the admin listener {prefix}"));
    let r = get(gw.admin, path, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn sources(v: &serde_json::Value, section: &str) -> Vec<String> {
    v["traceEntries"][section]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["source"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_subscription_that_allows_tracing_gets_the_trace_with_secrets_masked() {
    let origin = Origin::start(|r| Reply::Full(echo_response(r)));
    let gw = gateway(origin.port);
    let r = gw.get(
        "/t/items?q=1",
        &[
            ("Ocp-Apim-Subscription-Key", TRACER),
            ("Ocp-Apim-Trace", "true"),
            ("Authorization", "Bearer token-abcdef-123"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-out"), Some("done"));
    let location = r
        .header("ocp-apim-trace-location")
        .unwrap_or_else(|| panic!("no trace location: {:?}", r.headers))
        .to_string();
    let t = fetch_trace(&gw, &location);
    let text = t.to_string();
    assert_eq!(
        sources(&t, "inbound"),
        vec!["api-inspector", "set-header", "trace", "choose"],
        "{text}"
    );
    assert_eq!(sources(&t, "backend"), vec!["forward-request"], "{text}");
    assert_eq!(
        sources(&t, "outbound"),
        vec!["set-header", "response"],
        "{text}"
    );
    let inspector = &t["traceEntries"]["inbound"][0]["data"];
    assert_eq!(inspector["request"]["method"], "GET");
    assert_eq!(inspector["configuration"]["api"], "t");
    assert_eq!(inspector["configuration"]["subscription"], "tracer");
    let trace = &t["traceEntries"]["inbound"][2]["data"];
    assert_eq!(trace["scope"], "api");
    assert_eq!(trace["messages"][0]["source"], "checkpoint");
    assert_eq!(
        trace["messages"][0]["message"], "key *** secret ***",
        "{text}"
    );
    let fwd = &t["traceEntries"]["backend"][0]["data"];
    assert_eq!(fwd["status"], 200);
    assert!(
        fwd["url"].as_str().unwrap_or("").ends_with("/items?q=1"),
        "{fwd}"
    );
    assert_eq!(t["responseStatus"], 200);
    for secret in [SECRET, TRACER, "token-abcdef-123"] {
        assert!(!text.contains(secret), "{secret} in the trace: {text}");
    }
    // The origin still got the secret header: masking is the trace's, not the request's.
    let seen = origin
        .requests
        .lock()
        .unwrap_or_else(|e| panic!("{e}"))
        .last()
        .and_then(|r| r.header("x-backend-secret").map(str::to_string));
    assert_eq!(seen.as_deref(), Some(SECRET));
}

#[test]
fn a_failing_request_traces_its_error_and_on_error() {
    let origin = Origin::start(|r| Reply::Full(echo_response(r)));
    let gw = gateway(origin.port);
    let r = gw.get(
        "/t/fail",
        &[
            ("Ocp-Apim-Subscription-Key", TRACER),
            ("Ocp-Apim-Trace", "true"),
        ],
    );
    assert_eq!(r.status, 500);
    let t = fetch_trace(&gw, r.header("ocp-apim-trace-location").unwrap_or_default());
    let inbound = t["traceEntries"]["inbound"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let failed: Vec<&serde_json::Value> = inbound
        .iter()
        .filter(|e| e["data"]["result"] == "error")
        .collect();
    assert!(!failed.is_empty(), "{t}");
    assert_eq!(
        failed[0]["data"]["error"]["reason"], "ExpressionValueEvaluationFailure",
        "{t}"
    );
    assert_eq!(sources(&t, "on-error")[0], "set-header", "{t}");
    assert!(
        t["traceEntries"]["backend"].is_null(),
        "no backend call: {t}"
    );
    assert_eq!(t["responseStatus"], 500);
}

#[test]
fn nobody_else_gets_a_trace() {
    let origin = Origin::start(|r| Reply::Full(echo_response(r)));
    let gw = gateway(origin.port);
    for headers in [
        vec![
            ("Ocp-Apim-Subscription-Key", PLAIN),
            ("Ocp-Apim-Trace", "true"),
        ],
        vec![("Ocp-Apim-Subscription-Key", TRACER)],
        vec![
            ("Ocp-Apim-Subscription-Key", TRACER),
            ("Ocp-Apim-Trace", "false"),
        ],
    ] {
        let r = gw.get("/t/x", &headers);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ocp-apim-trace-location"), None, "{headers:?}");
    }
    let r = get(gw.admin, "/traces/00000000000000000000000000000000", &[]);
    assert_eq!(r.status, 404);
}
