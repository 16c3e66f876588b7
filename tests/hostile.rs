//! Hostile input through the real binary, from raw sockets: path spellings that would route
//! around a policy, bytes that would split a status line, framing a client gets wrong. Each
//! probe asserts the answer, that the gateway stays up and what the origin received
//! (docs/security.md).

mod common;
use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// A child process that is killed when the test ends, even by a failed assertion.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `gatehouse run` on `dir/gatehouse.yaml`, output discarded (tests that write their own
/// `server` and `listeners` sections).
fn run_quietly(dir: &TempDir) -> KillOnDrop {
    KillOnDrop(
        std::process::Command::new(bin())
            .args(["run", "-c"])
            .arg(dir.0.join("gatehouse.yaml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn connect(port: u16) -> std::net::TcpStream {
    std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"))
}

/// Slowloris on `s`: a header line every `every` until the server cuts the connection (a write
/// fails or it closed its side) or 20 lines went out; how long the cut took.
fn slowloris(s: &mut std::net::TcpStream, every: Duration) -> Option<Duration> {
    use std::io::Write;
    let start = std::time::Instant::now();
    let _ = s.write_all(b"GET /open/x HTTP/1.1\r\n");
    for i in 0..20 {
        std::thread::sleep(every);
        let line = format!("X-Slow-{i}: y\r\n");
        if s.write_all(line.as_bytes()).is_err()
            || closed_within(s, Duration::from_millis(1)).is_some()
        {
            return Some(start.elapsed());
        }
    }
    None
}

/// `adm` has an `admin` operation denied to 127.0.0.1 (ip-filter) beside a catch-all; `open`
/// needs no key; `private` does. All three forward to the same echo origin.
fn gateway(o: &Origin, extra: &str) -> Gatehouse {
    let yaml = format!(
        "{extra}apis:\n  - id: adm\n    path: adm\n    service_url: http://127.0.0.1:{p}\n    subscription_required: false\n    operations:\n      - id: admin\n        method: \"*\"\n        url_template: /admin\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n  - id: open\n    path: open\n    service_url: http://127.0.0.1:{p}\n    subscription_required: false\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n  - id: private\n    path: private\n    service_url: http://127.0.0.1:{p}\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n",
        p = o.port
    );
    let deny = r#"<policies><inbound><base /><ip-filter action="forbid"><address>127.0.0.1</address></ip-filter></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;
    let open = r#"<policies><inbound><base />
        <choose><when condition="@(context.Request.Url.Query.GetValueOrDefault("status", "") != "")"><return-response><set-status code="200" reason="@(context.Request.Url.Query.GetValueOrDefault("status", ""))" /></return-response></when></choose>
        <choose><when condition="@(context.Request.Url.Query.GetValueOrDefault("to", "") != "")"><rewrite-uri template="@("/x" + context.Request.Url.Query.GetValueOrDefault("to", ""))" /></when></choose>
        <set-header name="X-Seen-Path" exists-action="override"><value>@(context.Request.Url.Path)</value></set-header>
        <set-header name="X-Original-Path" exists-action="override"><value>@(context.Request.OriginalUrl.Path)</value></set-header>
        </inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;
    Gatehouse::start(
        &yaml,
        &[("apis/adm/admin.xml", deny), ("apis/open.xml", open)],
    )
}

fn get(port: u16, target: &str) -> RawReply {
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    raw(port, req.as_bytes(), WAIT)
}

#[test]
fn no_spelling_of_a_path_routes_around_a_policy() {
    let o = Origin::echo();
    let gw = gateway(&o, "");
    assert_eq!(get(gw.port, "/adm/admin").status, Some(403));
    for spelling in [
        "/adm/%61dmin",
        "/adm/%61%64%6D%69%6E",
        "/adm//admin",
        "/adm/./admin",
        "/adm/x/../admin",
        "/adm/x/%2e%2e/admin",
        "/adm/x/%2E./admin",
        "//adm/admin",
        "/adm/ADMIN",
        "/adm/admin/.",
        "/x/../adm/admin",
    ] {
        let r = get(gw.port, spelling);
        assert_eq!(r.status, Some(403), "{spelling}: {}", r.head);
    }
    assert_eq!(o.count(), 0, "the origin saw an admin request");
    // Another API's path, spelled through an open one, needs that API's key.
    for spelling in ["/open/../private/x", "/open/%2e%2e/private/x"] {
        let r = get(gw.port, spelling);
        assert_eq!(r.status, Some(401), "{spelling}: {}", r.head);
    }
    assert_eq!(o.count(), 0);
    // What is forwarded is the canonical path, and policies see the same one.
    let r = gw.get("/open/a//b/./c/../%7Eme%2d%41?q=1", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/a/b/~me-A");
    assert_eq!(r.json()["query"], "q=1");
    assert_eq!(r.json()["headers"]["x-seen-path"], "/a/b/~me-A");
    assert_eq!(r.json()["headers"]["x-original-path"], "/open/a/b/~me-A");
    // Other escapes are kept (upper-case hex) and raw UTF-8 is encoded.
    let r = gw.get("/open/a%3ab%20c/caf\u{e9}", &[]);
    assert_eq!(r.json()["path"], "/a%3Ab%20c/caf%C3%A9");
}

#[test]
fn ambiguous_or_invalid_paths_get_400_and_reach_nothing() {
    let o = Origin::echo();
    let gw = gateway(&o, "");
    for (target, why) in [
        ("/open/a%2Fb", "encoded '/'"),
        ("/open/a%2fb", "encoded '/'"),
        ("/open/a%5Cb", "encoded '/' or a"),
        ("/open/a\\b", "encoded '/' or a"),
        ("/open/a%00b", "control character"),
        ("/open/a%0d%0ab", "control character"),
        ("/open/a%zz", "two hex digits"),
        ("/open/a%4", "two hex digits"),
        ("/open/../../x", "above the root"),
        ("/..", "above the root"),
    ] {
        let r = get(gw.port, target);
        assert_eq!(r.status, Some(400), "{target}: {}", r.head);
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains(why), "{target}: {body}");
        assert!(
            body.contains("\"statusCode\": 400") || body.contains("\"statusCode\":400"),
            "{body}"
        );
    }
    // Raw bytes that are not UTF-8: 400, not a dropped connection.
    let r = raw(
        gw.port,
        b"GET /open/a\xff\xfeb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert_eq!(r.status, Some(400), "{r:?}");
    assert_eq!(o.count(), 0, "an invalid path reached the origin");
    assert_eq!(
        get(gw.port, "/open/fine").status,
        Some(200),
        "the gateway is up"
    );
}

#[test]
fn a_multi_byte_path_is_answered_not_dropped() {
    let o = Origin::echo();
    let gw = gateway(&o, "");
    // Issue 12 item 4: this panicked in the router and the connection dropped.
    let r = raw(
        gw.port,
        b"GET /nope/admi\xc3\xa9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert_eq!(r.status, Some(404), "{r:?}");
    let r = raw(
        gw.port,
        b"GET /adm/admi\xc3\xa9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert_eq!(r.status, Some(200), "{r:?}");
    assert_eq!(o.last().path(), "/admi%C3%A9");
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
    // Read leniently by Pingora, forwarded only in a form every server reads the same way: a
    // space in the target is encoded; with both framings, Transfer-Encoding wins and
    // Content-Length is dropped (RFC 9112 §6.3), so the backend cannot frame it differently.
    let r = raw(
        gw.port,
        b"GET /open/a b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert_eq!(r.status, Some(200), "{r:?}");
    assert_eq!(o.last().path(), "/a%20b");
    let r = raw(
        gw.port,
        b"POST /open/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        WAIT,
    );
    assert_eq!(r.status, Some(200), "{r:?}");
    let seen = o.last();
    assert_eq!(seen.header("content-length"), None);
    assert_eq!(seen.body, b"ab");
}

#[test]
fn a_status_reason_from_the_request_cannot_split_the_response() {
    let o = Origin::echo();
    let gw = gateway(&o, "");
    let r = gw.get("/open/x?status=Fine%20Thanks", &[]);
    assert_eq!((r.status, r.reason.as_str()), (200, "Fine Thanks"));
    for q in [
        "OK%0d%0aSet-Cookie:%20evil=1",
        "OK%0d%0a%0d%0aHTTP/1.1%20200%20OK",
        "OK%0aX:%20y",
        "O%00K",
    ] {
        let r = gw.get(&format!("/open/x?status={q}"), &[]);
        assert_eq!(r.status, 500, "{q}: {}", r.text());
        assert_eq!(r.header("set-cookie"), None);
        assert_eq!(r.header("x"), None);
        assert!(!r.reason.contains("OK"), "{}", r.reason);
        let entry = gw.last_log();
        assert_eq!(
            entry["error"], "ExpressionValueEvaluationFailure",
            "{entry}"
        );
    }
}

#[test]
fn a_rewritten_path_with_control_characters_never_reaches_the_backend() {
    let o = Origin::echo();
    let gw = gateway(&o, "");
    let r = gw.get("/open/x?to=%20HTTP/1.1%0d%0aX-Evil:%201", &[]);
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(gw.last_log()["error"], "ExpressionValueEvaluationFailure");
    assert_eq!(o.count(), 0);
    let r = gw.get("/open/x?to=/fine", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/x/fine");
}

#[test]
fn request_framing_a_client_gets_wrong_is_its_own_400() {
    let o = Origin::echo();
    let gw = gateway(&o, "");
    // Equal duplicates are read as one length, and forwarded as one header.
    for cl in [
        "Content-Length: 4, 4\r\n",
        "Content-Length: 4\r\nContent-Length: 4\r\n",
    ] {
        let req = format!("POST /open/x HTTP/1.1\r\nHost: x\r\n{cl}Connection: close\r\n\r\nabcd");
        let r = raw(gw.port, req.as_bytes(), WAIT);
        assert_eq!(r.status, Some(200), "{cl:?}: {r:?}");
        let seen = o.last();
        assert_eq!(seen.header_all("content-length"), vec!["4"], "{cl:?}");
        assert_eq!(seen.body, b"abcd");
    }
    let before = o.count();
    for cl in [
        "Content-Length: 4, 5\r\n",
        "Content-Length: 4\r\nContent-Length: 5\r\n",
        "Content-Length: +4\r\n",
        "Content-Length: 0x4\r\n",
    ] {
        let req = format!("POST /open/x HTTP/1.1\r\nHost: x\r\n{cl}Connection: close\r\n\r\nabcd");
        let r = raw(gw.port, req.as_bytes(), WAIT);
        assert_eq!(r.status, Some(400), "{cl:?}: {r:?}");
    }
    // HTTP/1.1 without Host.
    let r = raw(
        gw.port,
        b"GET /open/x HTTP/1.1\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert_eq!(r.status, Some(400), "{r:?}");
    assert!(String::from_utf8_lossy(&r.body).contains("Host"), "{r:?}");
    // HTTP/1.0 may leave it out.
    let r = raw(gw.port, b"GET /open/x HTTP/1.0\r\n\r\n", WAIT);
    assert_eq!(r.status, Some(200), "{r:?}");
    assert_eq!(
        o.count(),
        before + 1,
        "only the HTTP/1.0 request reached the origin"
    );
}

#[test]
fn a_client_cannot_trip_a_backends_circuit_breaker() {
    let o = Origin::echo();
    let breaker = format!(
        "backends:\n  - id: b\n    url: http://127.0.0.1:{}\n    circuit_breaker:\n      rules:\n        - name: any-failure\n          failure_condition:\n            count: 1\n            interval: 60s\n            error_reasons: [BackendConnectionFailure, Timeout]\n          trip_duration: 60s\n",
        o.port
    );
    let yaml = format!(
        "{breaker}limits:\n  max_body_bytes: 10\napis:\n  - id: b\n    path: b\n    backend: b\n    subscription_required: false\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n"
    );
    let gw = Gatehouse::start(&yaml, &[]);
    let probes: [&[u8]; 4] = [
        b"POST /b/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\nConnection: close\r\n\r\nabcd",
        b"POST /b/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\nConnection: close\r\n\r\nabcd",
        // A body the client never finishes: it goes away.
        b"POST /b/x HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\nab",
        // A chunked body over limits.max_body_bytes.
        b"POST /b/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
    ];
    for p in probes {
        let _ = raw(gw.port, p, Duration::from_millis(500));
    }
    let r = raw(gw.port, probes[3], WAIT);
    assert_eq!(r.status, Some(413), "{r:?}");
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("10 bytes"), "an APIM-style body: {body}");
    // The 413's line (earlier probes' lines share the path).
    let entry = gw.log_where(|l| l["path"] == "/b/x" && l["status"] == 413);
    assert_eq!(entry["produced_by"]["kind"], "gateway", "{entry}");
    for _ in 0..3 {
        let r = gw.get("/b/ok", &[]);
        assert_eq!(
            r.status,
            200,
            "the breaker opened on a client's mistake: {}",
            r.text()
        );
    }
    let _ = gw.last_log();
    assert!(
        !gw.log().contains("BackendConnectionFailure"),
        "{}",
        gw.log()
    );
    // Backend time is observed for the four calls the backend answered (the `4, 4` probe and
    // three normal requests), not for the client's faults. Metrics are recorded just after each
    // response is written: wait (bounded) for the fourth.
    let observed = || {
        common::get(gw.admin, "/metrics", &[])
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("gatehouse_backend_duration_seconds_count{api=\"b\"} "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    for _ in 0..100 {
        if observed() >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        observed(),
        4,
        "backend time observed for the client's faults"
    );
}

fn wait_log(gw: &Gatehouse, needle: &str) -> bool {
    for _ in 0..200 {
        if gw.log().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

fn doc(inbound: &str) -> String {
    inbound_doc(inbound)
}

#[test]
fn hostile_policies_are_diagnosed_and_never_take_the_gateway_down() {
    let o = Origin::echo();
    let gw = gateway(&o, "");
    // Issue 12 item 5: 10,000 terms overflowed the reload thread's stack and killed the
    // gateway; 2,000 nested <choose> overflowed too, and 700 took 8 s and 3.5 GB.
    let terms = format!("@(1{})", "+1".repeat(10_000));
    let long = doc(&format!(
        "<set-header name=\"X-N\" exists-action=\"override\"><value>{terms}</value></set-header>"
    ));
    let nested = doc(&format!(
        "{}<set-header name=\"X\" exists-action=\"override\"><value>x</value></set-header>{}",
        "<choose><when condition=\"@(true)\">".repeat(2_000),
        "</when></choose>".repeat(2_000)
    ));
    for (i, bad) in [long, nested].iter().enumerate() {
        gw.write_policy("apis/open.xml", bad);
        gw.signal("HUP");
        let needle = "configuration reload failed";
        for _ in 0..200 {
            if gw.log().matches(needle).count() > i {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        assert_eq!(gw.log().matches(needle).count(), i + 1, "{}", gw.log());
        assert_eq!(gw.get("/open/x", &[]).status, 200, "the gateway serves on");
    }
    let log = gw.log();
    assert!(log.contains("apis/open.xml:1:"), "{log}");
    assert!(log.contains("nests too deeply"), "{log}");
    assert!(log.contains("error[P022]"), "{log}");
    // `check` says the same, at once.
    let start = std::time::Instant::now();
    let text = check_fails(&gw.dir.0);
    assert!(
        text.contains("elements nest deeper than 64 levels"),
        "{text}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn secrets_never_reach_diagnostics_or_logs() {
    let o = Origin::echo();
    let secret = "NOTANUMBER-SECRET-777";
    let yaml = format!(
        "named_values:\n  limit:\n    value: {secret}\n    secret: true\n  envlimit:\n    env: GH_TEST_SECRET\nbackends:\n  - id: dead\n    url: http://127.0.0.1:{dead}\n  - id: live\n    url: http://127.0.0.1:{}\n  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: dead, priority: 1 }}\n        - {{ id: live, priority: 2 }}\napis:\n  - id: s\n    path: s\n    backend: pool\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\nproducts:\n  - id: p\n    apis: [s]\nsubscriptions:\n  - id: sub\n    scope: product:p\n    primary_key: key-0123456789\n",
        o.port,
        dead = free_port()
    );
    let env_secret = "ENV-SECRET-VALUE-888";
    let gw = Gatehouse::start_with_env(
        &yaml,
        &[("apis/s.xml", &doc(""))],
        &[],
        &[("GH_TEST_SECRET", env_secret)],
    );
    // A subscription key in the query, on a request retried on the pool's next member:
    // Pingora's WARN line shows the request.
    let r = gw.get(
        "/s/x?subscription-key=key-0123456789&token=tok-SECRET-42&page=2",
        &[],
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.log());
    assert!(wait_log(&gw, "Fail to proxy"), "{}", gw.log());
    // A secret used where a number belongs: the diagnostic names the reference, not the value.
    let bad = doc("<rate-limit calls=\"{{limit}}\" renewal-period=\"{{envlimit}}\" />");
    gw.write_policy("apis/s.xml", &bad);
    gw.signal("HUP");
    assert!(wait_log(&gw, "configuration reload failed"), "{}", gw.log());
    let mut outputs = vec![gw.log()];
    for args in [
        &["check", "-c", "gatehouse.yaml"][..],
        &["check", "-c", "gatehouse.yaml", "--format", "json"][..],
    ] {
        let out = std::process::Command::new(bin())
            .current_dir(&gw.dir.0)
            .args(args)
            .env("GH_TEST_SECRET", env_secret)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.status.success());
        outputs.push(
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        );
    }
    for text in &outputs {
        assert!(text.contains("***"), "the error is still reported:\n{text}");
        for s in [secret, env_secret, "key-0123456789", "tok-SECRET-42"] {
            assert!(!text.contains(s), "{s} printed:\n{text}");
        }
    }
    assert!(
        outputs[0].contains("page=2"),
        "other parameters stay readable:\n{}",
        outputs[0]
    );
}

#[test]
fn sighup_is_safe_from_the_first_instant() {
    let o = Origin::echo();
    // Issue 12 item 10: SIGHUP in the first ~100 ms killed the process (rc 129).
    let dir = TempDir::new();
    let port = free_port();
    dir.write(
        "gatehouse.yaml",
        &format!(
            "server:\n  threads: 1\n  pid_file: {d}/p.pid\n  upgrade_sock: {d}/u.sock\nlisteners:\n  - address: 127.0.0.1:{port}\napis:\n  - id: a\n    path: a\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: /\n",
            o.port,
            d = dir.0.display()
        ),
    );
    // From the first instant of `main` (a signal before the process runs any code of its own
    // cannot be caught).
    for delay_ms in [15u64, 40, 100] {
        let mut child = run_quietly(&dir);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = std::process::Command::new("kill")
            .args(["-HUP", &child.0.id().to_string()])
            .status();
        let mut up = false;
        for _ in 0..200 {
            if let Ok(Some(st)) = child.0.try_wait() {
                panic!("SIGHUP {delay_ms} ms after start ended the process: {st}");
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(up, "not serving after SIGHUP at {delay_ms} ms");
        assert_eq!(get(port, "/a/").status, Some(200));
    }
}

#[test]
fn a_reload_names_the_settings_it_cannot_apply() {
    let o = Origin::echo();
    let gw = gateway(&o, "");
    let path = gw.dir.0.join("gatehouse.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap_or_default();
    let changed = yaml.replace("access_log: stdout", "access_log: stdout\nname: renamed");
    assert_ne!(yaml, changed);
    std::fs::write(&path, changed).unwrap_or_else(|e| panic!("{e}"));
    gw.signal("HUP");
    assert!(wait_log(&gw, "configuration reloaded"), "{}", gw.log());
    assert!(
        gw.log()
            .contains("reload: `name` changed; it is read only at start"),
        "{}",
        gw.log()
    );
    assert!(!gw.log().contains("`listeners` changed"), "{}", gw.log());
}

#[test]
fn interim_responses_do_not_run_outbound() {
    // An origin that answers `Expect: 100-continue` with 100, then the final 200.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let origin_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read, Write};
        for conn in listener.incoming().flatten() {
            let mut r = BufReader::new(conn);
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut c = r.get_ref().try_clone().unwrap_or_else(|e| panic!("{e}"));
            let _ = c.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    let yaml = format!(
        "apis:\n  - id: c\n    path: c\n    service_url: http://127.0.0.1:{origin_port}\n    subscription_required: false\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n"
    );
    let policy = r#"<policies><inbound><base /></inbound><backend><base /></backend><outbound><base />
        <set-variable name="runs" value="@(context.Variables.GetValueOrDefault<string>("runs", "") + context.Response.StatusCode + ";")" />
        <set-header name="X-Runs" exists-action="override"><value>@((string)context.Variables["runs"])</value></set-header>
        </outbound><on-error><base /></on-error></policies>"#;
    let gw = Gatehouse::start(&yaml, &[("apis/c.xml", policy)]);
    let mut s = connect(gw.port);
    s.set_read_timeout(Some(WAIT)).ok();
    use std::io::{Read, Write};
    let _ = s.write_all(b"POST /c/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    let last = text.rfind("HTTP/1.1 ").unwrap_or(0);
    let final_response = &text[last..];
    assert!(final_response.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        final_response.to_ascii_lowercase().contains("x-runs: 200;"),
        "outbound ran once, for the final response:\n{text}"
    );
}

#[test]
fn a_failed_connection_has_its_place_in_last_error_and_an_open_circuit_says_when() {
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f = fail.clone();
    let o = Origin::start(move |r| {
        if f.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::Full(Response::new(500, "failing"))
        } else {
            Reply::Full(echo_response(r))
        }
    });
    let dead = free_port();
    let yaml = format!(
        "backends:\n  - id: b\n    url: http://127.0.0.1:{}\n    circuit_breaker:\n      rules:\n        - name: r\n          failure_condition:\n            count: 1\n            interval: 60s\n            status_code_ranges: [{{ min: 500, max: 599 }}]\n          trip_duration: 30s\n  - id: gone\n    url: http://127.0.0.1:{dead}\napis:\n  - id: b\n    path: b\n    backend: b\n    subscription_required: false\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n  - id: g\n    path: g\n    backend: gone\n    subscription_required: false\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n",
        o.port
    );
    let shaped = r#"<policies><inbound><base /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base />
        <set-header name="X-Last-Error" exists-action="override"><value>@($"{context.LastError.Reason}|{context.LastError.Section}|{context.LastError.Scope}|{context.LastError.Path}")</value></set-header>
        </on-error></policies>"#;
    let gw = Gatehouse::start(&yaml, &[("apis/g.xml", shaped)]);
    let r = gw.get("/g/x", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(
        r.header("x-last-error"),
        Some("BackendConnectionFailure|backend|global|forward-request[1]")
    );
    // One 5xx opens b's circuit for 30 s: the 503 says when to come back.
    assert_eq!(gw.get("/b/x", &[]).status, 500);
    let r = gw.get("/b/x", &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    let after: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((25..=30).contains(&after), "Retry-After: {after}");
}

#[test]
fn a_client_that_connects_and_leaves_is_not_an_error_line() {
    let o = Origin::echo();
    let gw = gateway(&o, "");
    for bytes in [
        &b"G"[..],
        b"GET /open/x HTTP/1.1\r\nHost: x\r\n",
        b"GET /open/x HTTP/1.1\r\nHo",
    ] {
        let _ = raw(gw.port, bytes, Duration::from_millis(100));
    }
    // A complete request afterwards is logged, so the probes' lines (if any) are already out.
    assert_eq!(gw.get("/open/x", &[]).status, 200);
    let _ = gw.last_log();
    let log = gw.log();
    assert!(!log.contains(" ERROR "), "{log}");
}

/// Read until the server closes the connection (or `within` passes); how long that took.
fn closed_within(s: &mut std::net::TcpStream, within: Duration) -> Option<Duration> {
    use std::io::Read;
    let start = std::time::Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100))).ok();
    let mut buf = [0u8; 4096];
    while start.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

#[test]
fn slow_and_idle_clients_are_closed_by_their_timeouts() {
    use std::io::Write;
    let o = Origin::echo();
    let gw = gateway(
        &o,
        "limits:\n  header_read_timeout: 1s\n  keepalive_timeout: 1s\n  body_read_timeout: 1s\n",
    );
    // Slowloris: a header line every 300 ms never completes the request.
    let closed = slowloris(&mut connect(gw.port), Duration::from_millis(300))
        .unwrap_or_else(|| panic!("a slowloris client was still connected after 6 s"));
    assert!(
        closed < Duration::from_millis(2500),
        "closed after {closed:?}"
    );
    // Many silent connections: each is closed at its header deadline.
    let mut silent: Vec<_> = (0..200).map(|_| connect(gw.port)).collect();
    std::thread::sleep(Duration::from_millis(1500));
    let open = silent
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_millis(500)))
        .filter(Option::is_none)
        .count();
    assert_eq!(
        open, 0,
        "{open} of 200 silent connections still open after 2 s"
    );
    // An idle kept-alive connection is closed after keepalive_timeout.
    let mut idle = connect(gw.port);
    let _ = idle.write_all(b"GET /open/x HTTP/1.1\r\nHost: x\r\n\r\n");
    let waited = closed_within(&mut idle, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("idle connection kept open"));
    assert!(
        waited >= Duration::from_millis(900),
        "closed too soon: {waited:?}"
    );
    // Slowloris on a kept-alive connection: the next request's headers are bounded too.
    let mut kept = connect(gw.port);
    let _ = kept.write_all(b"GET /open/x HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let cut = slowloris(&mut kept, Duration::from_millis(200))
        .unwrap_or_else(|| panic!("a slow second request was never cut"));
    assert!(cut < Duration::from_millis(2500), "cut after {cut:?}");
    // A body that stops arriving: 408.
    let r = raw(
        gw.port,
        b"POST /open/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab",
        Duration::from_secs(5),
    );
    assert_eq!(r.status, Some(408), "{r:?}");
    assert_eq!(
        o.count(),
        2,
        "only the complete requests reached the origin"
    );
    assert_eq!(gw.get("/open/x", &[]).status, 200);
}

#[test]
fn a_listener_takes_at_most_max_connections() {
    let o = Origin::echo();
    let dir = TempDir::new();
    let (port, admin) = (free_port(), free_port());
    dir.write(
        "gatehouse.yaml",
        &format!(
            "server:\n  threads: 1\n  pid_file: {d}/p.pid\n  upgrade_sock: {d}/u.sock\nlisteners:\n  - address: 127.0.0.1:{port}\n    max_connections: 3\nadmin:\n  address: 127.0.0.1:{admin}\napis:\n  - id: a\n    path: a\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: /\n",
            o.port,
            d = dir.0.display()
        ),
    );
    let _child = run_quietly(&dir);
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok()
            && get(admin, "/readyz").status == Some(200)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let held: Vec<_> = (0..3).map(|_| connect(port)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let r = get(port, "/a/");
    assert_eq!(r.status, Some(503), "{r:?}");
    assert!(
        String::from_utf8_lossy(&r.body).contains("too many connections"),
        "{r:?}"
    );
    drop(held);
    let mut ok = false;
    for _ in 0..40 {
        if get(port, "/a/").status == Some(200) {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(ok, "a freed slot takes a new connection");
    let metrics = common::get(admin, "/metrics", &[]).text();
    assert!(
        metrics.contains("gatehouse_connections_refused_total{listener=\"127.0.0.1:"),
        "{metrics}"
    );
}

#[test]
fn limits_that_would_disable_a_listener_are_configuration_errors() {
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:1\n    max_connections: 0\nlimits:\n  keepalive_timeout: 0s\nnamed_values:\n  endless:\n    file: /dev/zero\napis: []\n",
    );
    let text = check_fails(&dir.0);
    // A named value from a device is refused after 1 MiB, not read forever.
    assert!(
        text.contains("named value \"endless\": cannot read"),
        "{text}"
    );
    assert!(text.contains("larger than 1048576 bytes"), "{text}");
    assert!(
        text.contains("gatehouse.yaml:3:22: error[C056]: `max_connections` must be at least 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "gatehouse.yaml:5:3: error[C056]: `limits.keepalive_timeout` must be more than 0"
        ),
        "{text}"
    );
}

#[test]
fn raw_socket_probes_get_their_status_and_reach_nothing() {
    let o = Origin::echo();
    let gw = gateway(
        &o,
        "limits:\n  max_url_length: 2048\n  max_headers: 50\n  max_header_bytes: 8192\n",
    );
    let many_headers: String = (0..60).map(|i| format!("X-H{i}: v\r\n")).collect();
    let huge_header = format!("X-Big: {}\r\n", "a".repeat(9000));
    let long_url = format!("/open/{}", "a".repeat(3000));
    // (what, bytes, the status, or None for a closed connection)
    let probes: Vec<(&str, Vec<u8>, Option<u16>)> = vec![
        ("no version", b"GET /open/x\r\nHost: x\r\n\r\n".to_vec(), Some(400)),
        ("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), Some(400)),
        ("unknown version", b"GET /open/x HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(), Some(400)),
        ("NUL in header value", b"GET /open/x HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n".to_vec(), Some(400)),
        ("space before colon", b"GET /open/x HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n".to_vec(), Some(400)),
        ("obs-fold", b"GET /open/x HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n".to_vec(), Some(400)),
        ("TE not chunked last", b"POST /open/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n".to_vec(), Some(400)),
        ("TE on HTTP/1.0", b"POST /open/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), Some(400)),
        ("negative CL", b"POST /open/x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(), Some(400)),
        ("differing CLs", b"POST /open/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(), Some(400)),
        ("two Hosts", b"GET /open/x HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n".to_vec(), Some(400)),
        ("too many headers", format!("GET /open/x HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(), Some(431)),
        ("huge header", format!("GET /open/x HTTP/1.1\r\nHost: x\r\n{huge_header}\r\n").into_bytes(), Some(431)),
        ("long URL", format!("GET {long_url} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(), Some(414)),
        ("invalid UTF-8 path", b"GET /open/\xc3\x28 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Some(400)),
        ("encoded slash", b"GET /open/..%2F..%2Fetc HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Some(400)),
    ];
    let mut wrong = Vec::new();
    for (what, bytes, want) in &probes {
        let mut b = bytes.clone();
        // Close after the answer so the probe does not wait for a keep-alive timeout.
        if let Some(i) = b.windows(4).position(|w| w == b"\r\n\r\n") {
            if b.starts_with(b"GET") || b.starts_with(b"POST") {
                b.splice(i + 2..i + 2, b"Connection: close\r\n".iter().copied());
            }
        }
        let r = raw(gw.port, &b, WAIT);
        if r.status != *want {
            wrong.push(format!(
                "{what}: want {want:?}, got {:?} ({})",
                r.status, r.head
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        o.count(),
        0,
        "a malformed request reached the origin: {}",
        o.last().path()
    );
    assert_eq!(gw.get("/open/x", &[]).status, 200, "the gateway is up");
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}
