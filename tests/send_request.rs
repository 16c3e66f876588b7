//! send-request / send-one-way-request through the real binary: the token idiom with the value
//! cache, IResponse in expressions and return-response, ignore-error, copy mode, fire-and-forget.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn origin() -> Origin {
    Origin::start(|r| match r.path() {
        "/token" => Reply::Full(
            Response::new(200, r#"{"access_token":"abc123","expires_in":60}"#)
                .with_header("Content-Type", "application/json"),
        ),
        "/data" => Reply::Full(Response::new(201, "created-data").with_header("X-Data", "yes")),
        "/audit" => Reply::Delay(Duration::from_millis(2000), Response::new(204, "")),
        _ => Reply::Full(echo_response(r)),
    })
}

fn gateway(o: &Origin, ops: &[(&str, &str, &str, &str)]) -> Gatehouse {
    let service = format!("http://127.0.0.1:{}", o.port);
    let named = format!("named_values:\n  origin:\n    value: \"{service}\"\n");
    start_operations(&named, "s", &service, OPEN, ops)
}

fn doc(inbound: &str, on_error: &str) -> String {
    sections(inbound, "", "", on_error)
}

#[test]
fn token_from_send_request_kept_in_the_value_cache() {
    let o = origin();
    let inbound = r#"
        <cache-lookup-value key="backend-token" variable-name="token" />
        <choose>
            <when condition="@(!context.Variables.ContainsKey("token"))">
                <send-request mode="new" response-variable-name="tokenResponse" timeout="5" ignore-error="false">
                    <set-url>{{origin}}/token</set-url>
                    <set-method>POST</set-method>
                    <set-header name="Content-Type" exists-action="override"><value>application/x-www-form-urlencoded</value></set-header>
                    <set-body>grant_type=client_credentials</set-body>
                </send-request>
                <set-variable name="token" value="@(((IResponse)context.Variables["tokenResponse"]).Body.As<JObject>()["access_token"].ToString())" />
                <cache-store-value key="backend-token" value="@((string)context.Variables["token"])" duration="60" />
            </when>
        </choose>
        <set-header name="Authorization" exists-action="override"><value>@("Bearer " + (string)context.Variables["token"])</value></set-header>"#;
    let gw = gateway(&o, &[("api", "GET", "/api", &doc(inbound, ""))]);
    for _ in 0..3 {
        let r = gw.get("/s/api", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(o.last().header("authorization"), Some("Bearer abc123"));
    }
    let reqs = o.requests.lock().map(|v| v.clone()).unwrap_or_default();
    let token_calls: Vec<_> = reqs.iter().filter(|r| r.path() == "/token").collect();
    assert_eq!(
        token_calls.len(),
        1,
        "the token is fetched once and then cached"
    );
    assert_eq!(token_calls[0].method, "POST");
    assert_eq!(
        String::from_utf8_lossy(&token_calls[0].body),
        "grant_type=client_credentials"
    );
}

#[test]
fn response_variable_feeds_return_response_and_expressions() {
    let o = origin();
    let inbound = r#"
        <send-request mode="new" response-variable-name="r">
            <set-url>@("{{origin}}" + "/data")</set-url>
        </send-request>
        <return-response response-variable-name="r">
            <set-header name="X-Status-Seen" exists-action="override"><value>@(((IResponse)context.Variables["r"]).StatusCode.ToString())</value></set-header>
        </return-response>"#;
    let ignore = r#"
        <send-request mode="new" response-variable-name="r" timeout="2" ignore-error="true"><set-url>http://127.0.0.1:1/none</set-url></send-request>
        <return-response><set-body>@(context.Variables["r"] == null ? "null" : "set")</set-body></return-response>"#;
    let fail = r#"<send-request mode="new" response-variable-name="r" timeout="2"><set-url>http://127.0.0.1:1/none</set-url></send-request>"#;
    let on_error =
        r#"<set-body>@(context.LastError.Source + "|" + context.LastError.Reason)</set-body>"#;
    let gw = gateway(
        &o,
        &[
            ("rv", "GET", "/rv", &doc(inbound, "")),
            ("ig", "GET", "/ig", &doc(ignore, "")),
            ("fail", "GET", "/fail", &doc(fail, on_error)),
        ],
    );
    let r = gw.get("/s/rv", &[]);
    assert_eq!((r.status, r.text().as_str()), (201, "created-data"));
    assert_eq!(r.header("x-data"), Some("yes"));
    assert_eq!(r.header("x-status-seen"), Some("201"));
    assert_eq!(gw.get("/s/ig", &[]).text(), "null");
    let r = gw.get("/s/fail", &[]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "send-request|BackendConnectionFailure")
    );
}

#[test]
fn copy_mode_and_one_way_requests() {
    let o = origin();
    let copy = r#"
        <send-request mode="copy" response-variable-name="c"><set-url>{{origin}}/copy-target</set-url></send-request>
        <return-response><set-body>@(((IResponse)context.Variables["c"]).Body.As<string>())</set-body></return-response>"#;
    let one_way = r#"
        <send-one-way-request mode="new"><set-url>{{origin}}/audit</set-url><set-method>POST</set-method><set-body>audit</set-body></send-one-way-request>
        <return-response><set-body>done</set-body></return-response>"#;
    let gw = gateway(
        &o,
        &[
            ("copy", "POST", "/copy", &doc(copy, "")),
            ("ow", "GET", "/ow", &doc(one_way, "")),
        ],
    );
    let r = gw.send("POST", "/s/copy", &[("X-Original", "1")], b"the body");
    assert_eq!(r.status, 200, "{}", r.text());
    let echoed: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_default();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/copy-target");
    assert_eq!(echoed["headers"]["x-original"], "1");
    assert_eq!(echoed["body"], "the body");
    let start = Instant::now();
    let r = gw.get("/s/ow", &[]);
    assert_eq!(r.text(), "done");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "the one-way call (2 s at the origin) must not delay the client"
    );
    let mut seen = false;
    for _ in 0..100 {
        if o.requests
            .lock()
            .map(|v| v.iter().any(|r| r.path() == "/audit"))
            .unwrap_or(false)
        {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(seen, "the one-way request reached the origin");
}
