//! Each policy of the gateway core, attribute by attribute, through the real binary.

mod common;
use common::*;

/// One open API `t` at `/t` over `origin`, with operation policies given as inbound /
/// backend / outbound XML per operation.
fn gateway(origin_port: u16, ops: &[(&str, &str, &str, &str)], extra_yaml: &str) -> Gatehouse {
    let service = format!("http://127.0.0.1:{origin_port}/base");
    start_operations(extra_yaml, "t", &service, OPEN, ops)
}

fn doc(inbound: &str, outbound: &str) -> String {
    sections(inbound, "", outbound, "")
}

#[test]
fn set_header_actions_on_request_and_response() {
    let origin = Origin::echo();
    let inbound = r#"
        <set-header name="X-Override" exists-action="override"><value>new</value></set-header>
        <set-header name="X-Skip-Present" exists-action="skip"><value>ignored</value></set-header>
        <set-header name="X-Skip-Absent" exists-action="skip"><value>added</value></set-header>
        <set-header name="X-Append" exists-action="append"><value>two</value></set-header>
        <set-header name="X-Delete" exists-action="delete" />
        <set-header name="X-Multi"><value>a</value><value>b</value></set-header>
        <set-header name="X-Empty" exists-action="override" />"#;
    let outbound = r#"
        <set-header name="X-Origin" exists-action="delete" />
        <set-header name="X-Added" exists-action="override"><value>out</value></set-header>
        <set-header name="Set-Cookie" exists-action="append"><value>a=1</value><value>b=2</value></set-header>"#;
    let gw = gateway(
        origin.port,
        &[("h", "GET", "/h", &doc(inbound, outbound))],
        "",
    );
    let r = gw.get(
        "/t/h",
        &[
            ("X-Override", "old"),
            ("X-Skip-Present", "kept"),
            ("X-Append", "one"),
            ("X-Delete", "gone"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let req = origin.last();
    assert_eq!(req.header("x-override"), Some("new"));
    assert_eq!(req.header("x-skip-present"), Some("kept"));
    assert_eq!(req.header("x-skip-absent"), Some("added"));
    assert_eq!(req.header("x-append"), Some("one, two"));
    assert_eq!(req.header("x-delete"), None);
    assert_eq!(req.header("x-multi"), Some("a, b"));
    assert_eq!(req.header("x-empty"), Some(""));
    assert_eq!(r.header("x-origin"), None);
    assert_eq!(r.header("x-added"), Some("out"));
    assert_eq!(r.header_all("set-cookie"), vec!["a=1", "b=2"]);
}

#[test]
fn set_query_parameter_actions() {
    let origin = Origin::echo();
    let inbound = r#"
        <set-query-parameter name="a" exists-action="override"><value>2</value></set-query-parameter>
        <set-query-parameter name="b" exists-action="skip"><value>ignored</value></set-query-parameter>
        <set-query-parameter name="n" exists-action="skip"><value>new value</value></set-query-parameter>
        <set-query-parameter name="c" exists-action="append"><value>y</value></set-query-parameter>
        <set-query-parameter name="d" exists-action="delete" />
        <set-query-parameter name="m"><value>1</value><value>2</value></set-query-parameter>"#;
    let gw = gateway(origin.port, &[("q", "GET", "/q", &doc(inbound, ""))], "");
    let r = gw.get("/t/q?a=1&b=keep&c=x&d=gone", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        origin.last().query(),
        "a=2&b=keep&c=x&n=new%20value&c=y&m=1&m=2"
    );
}

#[test]
fn untouched_query_is_forwarded_byte_for_byte() {
    let origin = Origin::echo();
    let gw = gateway(origin.port, &[("q", "GET", "/q", &doc("", ""))], "");
    gw.get("/t/q?x=a+b&y=%2F&z", &[]);
    let req = origin.last();
    assert_eq!(req.target, "/base/q?x=a+b&y=%2F&z");
}

#[test]
fn set_method_and_set_status() {
    let origin = Origin::echo();
    let gw = gateway(
        origin.port,
        &[(
            "m",
            "GET",
            "/m",
            &doc(
                "<set-method>PUT</set-method>",
                r#"<set-status code="299" reason="Custom Reason" />"#,
            ),
        )],
        "",
    );
    let r = gw.get("/t/m", &[]);
    assert_eq!((r.status, r.reason.as_str()), (299, "Custom Reason"));
    assert_eq!(origin.last().method, "PUT");
}

#[test]
fn set_body_replaces_request_and_response_bodies() {
    let origin = Origin::echo();
    let gw = gateway(
        origin.port,
        &[
            (
                "req",
                "*",
                "/req",
                &doc("<set-body>replaced request body</set-body>", ""),
            ),
            (
                "resp",
                "GET",
                "/resp",
                &doc("", r#"<set-body>{"replaced": true}</set-body>"#),
            ),
        ],
        "",
    );
    let r = gw.send(
        "POST",
        "/t/req",
        &[],
        b"original body that is longer than the replacement!!",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let req = origin.last();
    assert_eq!(String::from_utf8_lossy(&req.body), "replaced request body");
    assert_eq!(req.header("content-length"), Some("21"));
    // A GET without a body gets one too.
    let r = gw.get("/t/req", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&origin.last().body),
        "replaced request body"
    );

    let r = gw.get("/t/resp", &[]);
    assert_eq!(r.text(), r#"{"replaced": true}"#);
    assert_eq!(r.header("content-length"), Some("18"));
    assert_eq!(
        r.header("x-origin"),
        Some("yes"),
        "other backend headers stay"
    );
}

#[test]
fn return_response_ends_the_pipeline() {
    let origin = Origin::echo();
    let rr = r#"<return-response>
            <set-status code="403" reason="Nope" />
            <set-header name="X-Reason" exists-action="override"><value>policy</value></set-header>
            <set-body>{"denied": true}</set-body>
        </return-response>"#;
    let gw = gateway(
        origin.port,
        &[
            (
                "rr",
                "GET",
                "/rr",
                &doc(
                    rr,
                    r#"<set-header name="X-Outbound" exists-action="override"><value>ran</value></set-header>"#,
                ),
            ),
            ("empty", "GET", "/empty", &doc("<return-response />", "")),
        ],
        "",
    );
    let r = gw.get("/t/rr", &[]);
    assert_eq!((r.status, r.reason.as_str()), (403, "Nope"));
    assert_eq!(r.header("x-reason"), Some("policy"));
    assert_eq!(r.text(), r#"{"denied": true}"#);
    assert_eq!(
        r.header("x-outbound"),
        None,
        "outbound must not run after return-response"
    );
    let r = gw.get("/t/empty", &[]);
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(origin.count(), 0, "the backend must not be called");
    let log = gw.last_log();
    assert_eq!(log["produced_by"]["kind"], "gateway");
    assert_eq!(log["produced_by"]["policy"], "return-response");
    assert_eq!(log["produced_by"]["section"], "inbound");
    assert_eq!(log["produced_by"]["scope"], "operation");
}

#[test]
fn mock_response_uses_examples_and_runs_outbound() {
    let origin = Origin::echo();
    let yaml = format!(
        "apis:\n  - id: t\n    path: t\n    service_url: http://127.0.0.1:{}\n{OPEN}    operations:\n      - id: ex\n        method: GET\n        url_template: /ex\n        examples:\n          - status: 200\n            content_type: application/json\n            body: '{{\"id\": 7}}'\n          - status: 201\n            content_type: text/plain\n            body: created\n      - id: none\n        method: GET\n        url_template: /none\n",
        origin.port
    );
    let out =
        r#"<set-header name="X-Outbound" exists-action="override"><value>ran</value></set-header>"#;
    let gw = Gatehouse::start(
        &yaml,
        &[
            (
                "apis/t/ex.xml",
                &doc(r#"<mock-response status-code="201" />"#, out),
            ),
            (
                "apis/t/none.xml",
                &doc(
                    r#"<mock-response status-code="404" content-type="application/json" />"#,
                    out,
                ),
            ),
        ],
    );
    let r = gw.get("/t/ex", &[]);
    assert_eq!((r.status, r.text().as_str()), (201, "created"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(
        r.header("x-outbound"),
        Some("ran"),
        "outbound runs after mock-response (documented choice)"
    );
    let r = gw.get("/t/none", &[]);
    assert_eq!((r.status, r.body.len()), (404, 0));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(origin.count(), 0);
}

#[test]
fn rewrite_uri_with_parameters_and_unmatched_query() {
    let origin = Origin::echo();
    let gw = gateway(
        origin.port,
        &[
            (
                "copy",
                "GET",
                "/items/{id}?q={qq}",
                &doc(
                    r#"<rewrite-uri template="/v2/things/{id}?search={qq}" />"#,
                    "",
                ),
            ),
            (
                "nocopy",
                "GET",
                "/other/{id}",
                &doc(
                    r#"<rewrite-uri template="/v3/{id}" copy-unmatched-params="false" />"#,
                    "",
                ),
            ),
            (
                "put",
                "GET",
                "/get?a={b}",
                &doc(r#"<rewrite-uri template="/put" />"#, ""),
            ),
        ],
        "",
    );
    gw.get("/t/items/a%20b?q=abc&extra=1", &[]);
    let req = origin.last();
    assert_eq!(req.path(), "/base/v2/things/a%20b");
    assert_eq!(req.query(), "search=abc&extra=1");
    gw.get("/t/other/9?extra=1", &[]);
    assert_eq!(origin.last().target, "/base/v3/9");
    // The reference example: operation /get?a={b}, request /get?a=b&c=d, template /put -> /put?c=d
    gw.get("/t/get?a=b&c=d", &[]);
    assert_eq!(origin.last().target, "/base/put?c=d");
}

#[test]
fn set_backend_service_base_url_and_backend_entity() {
    let first = Origin::echo();
    let second = Origin::echo();
    let third = Origin::echo();
    let backends = format!(
        "named_values:\n  api-token:\n    value: tok-123\nbackends:\n  - id: third\n    url: http://127.0.0.1:{}/entity\n    credentials:\n      headers:\n        X-Api-Key: [\"{{{{api-token}}}}\"]\n      query:\n        code: [\"c1\"]\n      authorization:\n        scheme: Bearer\n        parameter: \"{{{{api-token}}}}\"\n",
        third.port
    );
    let gw = gateway(
        first.port,
        &[
            (
                "url",
                "GET",
                "/url/{x}",
                &doc(
                    &format!(
                        r#"<set-backend-service base-url="http://127.0.0.1:{}/moved" />"#,
                        second.port
                    ),
                    "",
                ),
            ),
            (
                "id",
                "GET",
                "/id/{x}",
                &doc(r#"<set-backend-service backend-id="third" />"#, ""),
            ),
        ],
        &backends,
    );
    let r = gw.get("/t/url/1?v=1", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(second.last().target, "/moved/url/1?v=1");
    assert_eq!(
        second.last().header("host"),
        Some(format!("127.0.0.1:{}", second.port).as_str())
    );
    let r = gw.get("/t/id/2?v=1", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let req = third.last();
    assert_eq!(req.target, "/entity/id/2?v=1&code=c1");
    assert_eq!(req.header("x-api-key"), Some("tok-123"));
    assert_eq!(req.header("authorization"), Some("Bearer tok-123"));
    assert_eq!(first.count(), 0);
}

#[test]
fn forward_request_timeout_and_fail_on_error_status_code() {
    let origin = Origin::start(|r| match r.path() {
        "/base/slow" => Reply::Delay(
            std::time::Duration::from_millis(3000),
            Response::new(200, "late"),
        ),
        "/base/fail" | "/base/fail-plain" => {
            Reply::Full(Response::new(500, "backend broke").with_header("X-Backend", "1"))
        }
        _ => Reply::Full(Response::new(200, "ok")),
    });
    let backend = |attrs: &str| {
        format!(
            "<policies><inbound><base /></inbound><backend><forward-request {attrs} /></backend><outbound><base /></outbound>\
             <on-error><set-header name=\"X-On-Error\" exists-action=\"override\"><value>ran</value></set-header></on-error></policies>"
        )
    };
    let gw = gateway(
        origin.port,
        &[
            ("slow", "GET", "/slow", &backend(r#"timeout-ms="300""#)),
            (
                "fail",
                "GET",
                "/fail",
                &backend(r#"fail-on-error-status-code="true""#),
            ),
            (
                "fail-plain",
                "GET",
                "/fail-plain",
                &backend(r#"buffer-request-body="true" http-version="1""#),
            ),
        ],
        "",
    );
    let r = gw.get("/t/slow", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["message"], "Internal server error");
    assert_eq!(r.header("x-on-error"), Some("ran"));
    let log = gw.last_log();
    assert_eq!(log["error"], "Timeout");
    assert_eq!(log["produced_by"]["policy"], "forward-request");

    // fail-on-error-status-code: on-error runs with the backend response in context.Response.
    let r = gw.get("/t/fail", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(r.header("x-on-error"), Some("ran"));
    assert_eq!(r.header("x-backend"), Some("1"));
    assert_eq!(gw.last_log()["error"], "BackendErrorStatusCode");
    // Without it, a 500 from the backend is a plain response.
    let r = gw.get("/t/fail-plain", &[]);
    assert_eq!((r.status, r.text().as_str()), (500, "backend broke"));
    assert_eq!(r.header("x-on-error"), None);
}

#[test]
fn forward_request_follows_redirects_when_asked() {
    let origin = Origin::start(|r| match r.path() {
        "/base/r1" | "/base/r1-plain" => {
            Reply::Full(Response::new(302, "").with_header("Location", "/base/r2?from=r1"))
        }
        "/base/see-other" => {
            Reply::Full(Response::new(303, "").with_header("Location", "/base/r2"))
        }
        _ => Reply::Full(echo_response(r)),
    });
    let fwd = |attrs: &str| {
        format!("<policies><inbound><base /></inbound><backend><forward-request {attrs} /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>")
    };
    let gw = gateway(
        origin.port,
        &[
            ("r1", "GET", "/r1", &fwd(r#"follow-redirects="true""#)),
            ("r1-plain", "GET", "/r1-plain", &fwd("")),
            (
                "see-other",
                "POST",
                "/see-other",
                &fwd(r#"follow-redirects="true""#),
            ),
        ],
        "",
    );
    let r = gw.get("/t/r1", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/base/r2");
    assert_eq!(r.json()["query"], "from=r1");
    let r = gw.get("/t/r1-plain", &[]);
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("/base/r2?from=r1"))
    );
    let r = gw.send("POST", "/t/see-other", &[], b"payload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["method"].as_str(), r.json()["body_len"].as_u64()),
        (Some("GET"), Some(0))
    );
}
