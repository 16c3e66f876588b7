//! retry, forward-request deadlines and wait through the real binary.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn doc(inbound: &str, backend: &str, outbound: &str) -> String {
    sections(inbound, backend, outbound, "")
}

fn gateway(backends: &str, target: &str, policy: &str) -> Gatehouse {
    let yaml = format!(
        "backends:\n{backends}apis:\n  - id: r\n    path: r\n    backend: {target}\n    subscription_required: false\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n"
    );
    Gatehouse::start(&yaml, &[("apis/r/any.xml", policy)])
}

/// Answers 503 to everything.
fn failing() -> Origin {
    Origin::start(|_| Reply::Full(Response::new(503, "down")))
}

/// Answers 200 with its name and the request body.
fn healthy(name: &'static str) -> Origin {
    Origin::start(move |r| {
        Reply::Full(
            Response::new(200, format!("{name}:{}", String::from_utf8_lossy(&r.body)))
                .with_header("X-Member", name),
        )
    })
}

#[test]
fn retry_on_503_succeeds_on_the_second_member_with_the_body_intact() {
    let (a, b) = (failing(), healthy("b"));
    let backends = format!(
        "  - id: a\n    url: http://127.0.0.1:{}\n  - id: b\n    url: http://127.0.0.1:{}\n  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: a }}\n        - {{ id: b }}\n",
        a.port, b.port
    );
    let policy = doc(
        "",
        r#"<retry condition="@(context.Response.StatusCode == 503)" count="3" interval="0"><forward-request buffer-request-body="true" /></retry>"#,
        "",
    );
    let gw = gateway(&backends, "pool", &policy);
    let body = "x".repeat(100_000) + "-end";
    let r = gw.send(
        "POST",
        "/r/orders",
        &[("Content-Type", "text/plain")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-member"), Some("b"));
    assert_eq!(r.text(), format!("b:{body}"), "the body reached b intact");
    assert_eq!(a.count(), 1, "the first attempt went to a");
    assert_eq!(a.last().body.len(), body.len(), "a got the whole body too");
    assert_eq!(b.last().path(), "/orders");
}

#[test]
fn retry_on_connection_failure_uses_last_error_and_the_next_member() {
    let dead = free_port();
    let b = healthy("b");
    let backends = format!(
        "  - id: dead\n    url: http://127.0.0.1:{dead}\n  - id: b\n    url: http://127.0.0.1:{}\n  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: dead }}\n        - {{ id: b }}\n",
        b.port
    );
    let policy = doc(
        "",
        r#"<retry condition="@(context.LastError != null && context.LastError.Reason == "BackendConnectionFailure")" count="2" interval="0"><forward-request /></retry>"#,
        "",
    );
    let gw = gateway(&backends, "pool", &policy);
    for _ in 0..4 {
        let r = gw.get("/r/x", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-member"), Some("b"));
    }
    // Without a retry left, the failure goes to on-error.
    let gw2 = gateway(
        &format!("  - id: dead\n    url: http://127.0.0.1:{dead}\n"),
        "dead",
        &policy,
    );
    let r = gw2.get("/r/x", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(gw2.last_log()["error"], "BackendConnectionFailure");
}

#[test]
fn retry_counts_waits_and_keeps_the_last_response() {
    let o = failing();
    let backends = format!("  - id: a\n    url: http://127.0.0.1:{}\n", o.port);
    let policy = doc(
        "",
        r#"<retry condition="@(context.Response.StatusCode >= 500)" count="2" interval="1" first-fast-retry="true"><forward-request /></retry>"#,
        "",
    );
    let gw = gateway(&backends, "a", &policy);
    let start = Instant::now();
    let r = gw.get("/r/x", &[]);
    let took = start.elapsed();
    assert_eq!(r.status, 503, "the last backend response is returned");
    assert_eq!(r.text(), "down");
    assert_eq!(o.count(), 3, "one run and two retries");
    // First retry immediate, second after 1 s.
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1900),
        "{took:?}"
    );
}

#[test]
fn retry_as_a_loop_with_a_decrementing_variable() {
    let o = healthy("a");
    let backends = format!("  - id: a\n    url: http://127.0.0.1:{}\n", o.port);
    let inbound = r#"<set-variable name="n" value="@(3)" /><set-variable name="trail" value="" />
        <retry condition="@((int)context.Variables["n"] > 0)" count="50" interval="0">
            <set-variable name="trail" value="@((string)context.Variables["trail"] + context.Variables["n"])" />
            <set-variable name="n" value="@((int)context.Variables["n"] - 1)" />
        </retry>
        <return-response><set-status code="200" /><set-body>@((string)context.Variables["trail"])</set-body></return-response>"#;
    let gw = gateway(&backends, "a", &doc(inbound, "<forward-request />", ""));
    let r = gw.get("/r/x", &[]);
    assert_eq!((r.status, r.text()), (200, "321".to_string()));
}

#[test]
fn a_slow_backend_times_out_at_the_deadline() {
    let slow = Origin::start(|_| Reply::Delay(Duration::from_secs(3), Response::new(200, "late")));
    let backends = format!("  - id: slow\n    url: http://127.0.0.1:{}\n", slow.port);
    // Streaming path (forward-request directly in backend) and the engine path (inside retry).
    for backend in [
        r#"<forward-request timeout="1" />"#,
        r#"<retry condition="@(false)" count="1" interval="0"><forward-request timeout-ms="1000" /></retry>"#,
    ] {
        let gw = gateway(&backends, "slow", &doc("", backend, ""));
        let start = Instant::now();
        let r = gw.get("/r/x", &[]);
        let took = start.elapsed();
        assert_eq!(r.status, 500, "{backend}: {}", r.text());
        assert_eq!(r.json()["message"], "Internal server error");
        assert_eq!(gw.last_log()["error"], "Timeout", "{backend}");
        assert!(
            took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
            "{backend}: {took:?}"
        );
    }
}

#[test]
fn wait_all_runs_calls_concurrently_and_any_takes_the_first() {
    let o = Origin::start(|r| {
        let ms: u64 = r.path().trim_start_matches("/d/").parse().unwrap_or(0);
        Reply::Delay(
            Duration::from_millis(ms),
            Response::new(200, format!("after-{ms}")),
        )
    });
    let backends = format!("  - id: a\n    url: http://127.0.0.1:{}\n", o.port);
    let call = |var: &str, ms: u64| {
        format!(
            r#"<send-request mode="new" response-variable-name="{var}" timeout="10"><set-url>http://127.0.0.1:{}/d/{ms}</set-url><set-method>GET</set-method></send-request>"#,
            o.port
        )
    };
    let body = r#"@{
        var parts = new [] { "r1", "r2", "r3" }.Select(n => context.Variables.ContainsKey(n) && context.Variables[n] != null ? ((IResponse)context.Variables[n]).Body.As<string>() : "-");
        return string.Join(",", parts);
    }"#;
    for (mode, want, lo, hi) in [
        ("all", "after-300,after-600,after-900", 850, 1500),
        ("any", "after-300,-,-", 250, 800),
    ] {
        let inbound = format!(
            r#"<wait for="{mode}">{}{}<choose><when condition="@(true)">{}</when></choose></wait><return-response><set-status code="200" /><set-body>{body}</set-body></return-response>"#,
            call("r1", 300),
            call("r2", 600),
            call("r3", 900)
        );
        let gw = gateway(&backends, "a", &doc(&inbound, "<forward-request />", ""));
        let start = Instant::now();
        let r = gw.get("/r/x", &[]);
        let took = start.elapsed().as_millis();
        assert_eq!((r.status, r.text()), (200, want.to_string()), "{mode}");
        assert!(took >= lo && took < hi, "wait for={mode} took {took} ms");
    }
}

#[test]
fn retry_and_wait_errors_are_load_errors() {
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:0\npolicies:\n  dir: policies\napis:\n  - id: r\n    path: r\n    service_url: http://127.0.0.1:1\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: /\n",
    );
    dir.write(
        "policies/apis/r/any.xml",
        "<policies><inbound><base />\n<retry condition=\"@(true)\" count=\"51\" interval=\"0\"><set-status code=\"200\" /></retry>\n<wait for=\"some\"><set-header name=\"a\" exists-action=\"override\"><value>b</value></set-header></wait>\n</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>",
    );
    let out = run_cli(&dir.0, &["check", "-c", "gatehouse.yaml"]);
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{err}");
    for want in [
        "count must be 1 to 50",
        "`for` must be all or any",
        "cannot be a child of <wait>",
        "any.xml:2:",
        "any.xml:3:",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn a_body_beyond_the_retry_buffer_is_413() {
    let o = Origin::start(|r| Reply::Full(Response::new(200, r.body.len().to_string())));
    let backends = format!("  - id: a\n    url: http://127.0.0.1:{}\n", o.port);
    let policy = doc(
        "",
        r#"<retry condition="@(false)" count="1" interval="0"><forward-request buffer-request-body="true" /></retry>"#,
        "",
    );
    let gw = gateway(&backends, "a", &policy);
    let big = vec![b'z'; 8 * 1024 * 1024 + 1];
    let r = gw.send("POST", "/r/x", &[], &big);
    assert_eq!(r.status, 413);
    assert_eq!(
        r.json()["message"],
        "Request body is larger than the 8388608 bytes policies can read."
    );
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(o.count(), 0);
    // Exactly at the limit it goes through.
    let ok = vec![b'z'; 8 * 1024 * 1024];
    let r = gw.send("POST", "/r/x", &[], &ok);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.log());
    assert_eq!(r.text(), ok.len().to_string());
}

#[test]
fn wait_runs_cache_lookup_value_beside_send_request() {
    let o = Origin::start(|_| Reply::Delay(Duration::from_millis(300), Response::new(200, "slow")));
    let backends = format!("  - id: a\n    url: http://127.0.0.1:{}\n", o.port);
    let inbound = format!(
        r#"<cache-store-value key="greeting" value="hello" duration="60" />
        <wait for="all">
            <cache-lookup-value key="greeting" variable-name="g" />
            <send-request mode="new" response-variable-name="r" timeout="10"><set-url>http://127.0.0.1:{}/x</set-url><set-method>GET</set-method></send-request>
        </wait>
        <return-response><set-status code="200" /><set-body>@((string)context.Variables["g"] + "+" + ((IResponse)context.Variables["r"]).Body.As<string>())</set-body></return-response>"#,
        o.port
    );
    let gw = gateway(&backends, "a", &doc(&inbound, "<forward-request />", ""));
    let r = gw.get("/r/x", &[]);
    assert_eq!((r.status, r.text()), (200, "hello+slow".to_string()));
}

/// A backend that answers its status line at once, then trickles one header line every 200 ms
/// for `lines` lines: every read returns within Pingora's per-IO timeout.
fn trickling_origin(lines: usize) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(8) {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n");
                for i in 0..lines {
                    std::thread::sleep(Duration::from_millis(200));
                    if conn
                        .write_all(format!("x-line-{i}: y\r\n").as_bytes())
                        .is_err()
                    {
                        return;
                    }
                }
                let _ = conn.write_all(b"content-length: 4\r\n\r\nlate");
            });
        }
    });
    port
}

#[test]
fn the_streaming_timeout_is_one_deadline_for_the_response_headers() {
    // 20 header lines over 4 s: no single read waits a second, the headers take four.
    let port = trickling_origin(20);
    let cases = [
        // forward-request's own timeout, and the backend entity's.
        ("", r#"<forward-request timeout="1" />"#),
        ("    timeout: 1s\n", "<forward-request />"),
    ];
    for (backend_extra, forward) in cases {
        let backends =
            format!("  - id: trickle\n    url: http://127.0.0.1:{port}\n{backend_extra}");
        let gw = gateway(&backends, "trickle", &doc("", forward, ""));
        let start = Instant::now();
        let r = gw.get("/r/x", &[]);
        let took = start.elapsed();
        assert_eq!(r.status, 500, "{forward}: {}", r.text());
        assert_eq!(gw.last_log()["error"], "Timeout", "{forward}");
        assert!(
            took >= Duration::from_millis(950) && took < Duration::from_millis(2000),
            "{forward}: {took:?}"
        );
    }
}

#[test]
fn the_streaming_deadline_ends_when_the_headers_arrive() {
    // Headers at once, then a body streamed over ~2 s: a 1 s header deadline does not cut it,
    // and the pooled connection serves the next request.
    let o = Origin::start(|_| {
        Reply::Stream(
            200,
            (0..5).map(|i| format!("part{i};").into_bytes()).collect(),
            Duration::from_millis(400),
        )
    });
    let backends = format!("  - id: o\n    url: http://127.0.0.1:{}\n", o.port);
    let gw = gateway(
        &backends,
        "o",
        &doc("", r#"<forward-request timeout="1" />"#, ""),
    );
    let mut c = KeepAlive::new(gw.port);
    for _ in 0..2 {
        let r = c.get("/r/x");
        assert_eq!(
            (r.status, r.text()),
            (200, "part0;part1;part2;part3;part4;".to_string())
        );
    }
    std::thread::sleep(Duration::from_millis(1200));
    let r = c.get("/r/x");
    assert_eq!(
        r.status, 200,
        "a pooled connection outlives the old deadline"
    );
    assert_eq!(o.conns.load(std::sync::atomic::Ordering::SeqCst), 1);
}
