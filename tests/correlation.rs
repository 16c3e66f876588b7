//! Request correlation through the real binary (docs/operations.md, "Correlation"): the W3C
//! trace context continued or started and passed to the backend and to send-request, a request
//! id header both ways, and the access log's correlation and traffic fields.

mod common;
use common::*;

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn parts(tp: &str) -> (String, String, String) {
    let p: Vec<&str> = tp.split('-').collect();
    assert_eq!((p.len(), tp.len()), (4, 55), "{tp}");
    (p[1].to_string(), p[2].to_string(), p[3].to_string())
}

fn seen(origin: &Origin, path: &str) -> Request {
    origin
        .requests
        .lock()
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .rfind(|r| r.path() == path)
        .cloned()
        .unwrap_or_else(|| panic!("the origin saw no {path}"))
}

fn config(origin: u16, correlation: &str) -> String {
    format!(
        "{correlation}apis:\n  - id: c\n    path: c\n    service_url: http://127.0.0.1:{origin}\n    subscription_required: false\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n"
    )
}

#[test]
fn traceparent_is_continued_or_started_and_reaches_backend_and_send_request() {
    let origin = Origin::start(|r| Reply::Full(echo_response(r)));
    let doc = format!(
        r#"<policies><inbound><base /><send-request mode="new" response-variable-name="side" timeout="5"><set-url>http://127.0.0.1:{}/side</set-url><set-method>GET</set-method></send-request></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
        origin.port
    );
    let gw = Gatehouse::start(&config(origin.port, ""), &[("apis/c.xml", &doc)]);

    // Continued: the caller's trace id and flags, the gateway's own span as the parent.
    let r = gw.get(
        "/c/continued",
        &[("traceparent", CALLER), ("tracestate", "v=1")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let up = seen(&origin, "/continued");
    let (trace, parent, flags) = parts(up.header("traceparent").unwrap_or_default());
    assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(
        parent, "00f067aa0ba902b7",
        "the gateway's span, not the caller's"
    );
    assert_eq!(flags, "01");
    assert_eq!(up.header_all("traceparent").len(), 1);
    assert_eq!(up.header("tracestate"), Some("v=1"), "tracestate passes");
    // The send-request call is a child of the gateway's span: same trace, another span.
    let side = seen(&origin, "/side");
    let (side_trace, side_parent, _) = parts(side.header("traceparent").unwrap_or_default());
    assert_eq!(side_trace, trace);
    assert_ne!(side_parent, parent);
    let log = gw.log_for("/c/continued");
    assert_eq!(log["trace_id"], trace.as_str(), "{log}");

    // Started: no header, or an invalid one (upper-case hex), gives a new sampled trace.
    let mut traces = Vec::new();
    for (path, headers) in [
        ("/c/new1", vec![]),
        ("/c/new2", vec![]),
        (
            "/c/bad",
            vec![(
                "traceparent",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
            )],
        ),
    ] {
        assert_eq!(gw.get(path, &headers).status, 200);
        let up = seen(&origin, path.trim_start_matches("/c"));
        let (t, _, f) = parts(up.header("traceparent").unwrap_or_default());
        assert_eq!(f, "01");
        assert_ne!(t, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(t.to_lowercase(), "4bf92f3577b34da6a3ce929d0e0e4736");
        traces.push(t);
    }
    assert!(
        traces[0] != traces[1] && traces[1] != traces[2],
        "{traces:?}"
    );
}

#[test]
fn request_id_header_goes_both_ways_and_matches_the_log_and_context() {
    let origin = Origin::start(|r| Reply::Full(echo_response(r)));
    let doc = r#"<policies><inbound><base /></inbound><backend><base /></backend><outbound><base /><set-header name="X-Context-Id" exists-action="override"><value>@(context.RequestId.ToString())</value></set-header></outbound><on-error><base /></on-error></policies>"#;
    let gw = Gatehouse::start(
        &config(
            origin.port,
            "correlation:\n  request_id_header: X-Request-Id\n  trace_context: false\n",
        ),
        &[("apis/c.xml", doc)],
    );
    let r = gw.get(
        "/c/id",
        &[("X-Request-Id", "client-chosen"), ("traceparent", CALLER)],
    );
    assert_eq!(r.status, 200);
    let id = r.header("x-request-id").unwrap_or_default().to_string();
    assert_eq!(id.len(), 36, "a GUID: {id}");
    assert_eq!(r.header("x-context-id"), Some(id.as_str()));
    let up = seen(&origin, "/id");
    assert_eq!(
        up.header_all("x-request-id"),
        vec![id.as_str()],
        "the client's value is replaced"
    );
    // Trace context off: the caller's header passes untouched, nothing is added.
    assert_eq!(up.header("traceparent"), Some(CALLER));
    let log = gw.log_for("/c/id");
    assert_eq!(log["request_id"], id.as_str());
    assert!(log.get("trace_id").is_none(), "{log}");
    // A response the gateway makes itself carries it too.
    let r = gw.get("/nowhere", &[]);
    assert_eq!(r.status, 404);
    let id = r.header("x-request-id").unwrap_or_default().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(gw.log_for("/nowhere")["request_id"], id.as_str());
}

#[test]
fn the_access_log_says_where_the_call_went_and_how_much_moved() {
    let origin = Origin::start(|r| Reply::Full(echo_response(r)));
    let yaml = format!(
        "backends:\n  - id: b1\n    url: http://127.0.0.1:{}\napis:\n  - id: c\n    path: c\n    backend: b1\n    subscription_required: false\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n",
        origin.port
    );
    let gw = Gatehouse::start(&yaml, &[]);
    let r = gw.send(
        "POST",
        "/c/traffic",
        &[("User-Agent", "probe/1.0"), ("Host", "api.example")],
        b"0123456789",
    );
    assert_eq!(r.status, 200);
    let log = gw.log_for("/c/traffic");
    assert_eq!(log["host"], "api.example", "{log}");
    assert_eq!(log["user_agent"], "probe/1.0", "{log}");
    assert_eq!(log["bytes_in"], 10, "{log}");
    assert_eq!(log["bytes_out"], r.body.len(), "{log}");
    assert_eq!(
        log["upstream"],
        format!("127.0.0.1:{}", origin.port).as_str(),
        "{log}"
    );
    assert_eq!(log["backend"], "b1", "{log}");
    assert_eq!(log["upstream_attempts"], 1, "{log}");
    assert_eq!(log["trace_id"].as_str().map(str::len), Some(32), "{log}");
    // A request the gateway answers itself went nowhere.
    assert_eq!(gw.get("/elsewhere", &[]).status, 404);
    let log = gw.log_for("/elsewhere");
    assert_eq!(log["upstream_attempts"], 0, "{log}");
    assert!(log["upstream"].is_null(), "{log}");
}
