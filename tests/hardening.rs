//! Hardening through the real binary: hashed subscription keys, keys / tokens / secrets kept
//! out of logs and traces, request limits with their 4xx answers, and error bodies without
//! internal details.

mod common;
use common::*;

fn sha256_hex(s: &str) -> String {
    openssl::sha::sha256(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn gateway(o: &Origin, extra: &str, inbound: &str) -> Gatehouse {
    let yaml = format!(
        "{extra}named_values:\n  backend-secret:\n    value: hunter2-very-secret\n    secret: true\napis:\n  - id: h\n    path: h\n    service_url: http://127.0.0.1:{}\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\nproducts:\n  - id: p\n    apis: [h]\nsubscriptions:\n  - id: hashed-sub\n    scope: product:p\n    primary_key: \"sha256:{}\"\n    secondary_key: plain-key-0002\n",
        o.port,
        sha256_hex("primary-key-0001")
    );
    let doc = inbound_doc(inbound);
    Gatehouse::start(&yaml, &[("apis/h.xml", &doc)])
}

const KEY: &str = "Ocp-Apim-Subscription-Key";

#[test]
fn hashed_keys_work_and_no_key_token_or_secret_reaches_the_logs() {
    let o = Origin::echo();
    let inbound = r#"<set-header name="X-Primary" exists-action="override"><value>@(context.Subscription.PrimaryKey ?? "none")</value></set-header>
        <trace source="audit" severity="error"><message>@("key=" + context.Subscription.Key + " auth=" + context.Request.Headers.GetValueOrDefault("Authorization", "") + " secret={{backend-secret}}")</message></trace>"#;
    let gw = gateway(&o, "", inbound);
    let r = gw.get(
        "/h/x",
        &[
            (KEY, "primary-key-0001"),
            ("Authorization", "Bearer eyJhbGciOi.tok.sig"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["x-primary"], "primary-key-0001");
    let r = gw.get("/h/x", &[(KEY, "plain-key-0002")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["headers"]["x-primary"],
        "none",
        "a hashed key is unknown unless presented"
    );
    assert_eq!(gw.get("/h/x", &[(KEY, "primary-key-0002")]).status, 401);
    assert_eq!(
        gw.get("/h/x?subscription-key=primary-key-0001", &[]).status,
        200
    );
    assert_eq!(gw.last_log()["subscription"], "hashed-sub");
    let log = gw.log();
    assert!(log.contains("key=***"), "traces are kept, masked:\n{log}");
    for secret in [
        "primary-key-0001",
        "plain-key-0002",
        "eyJhbGciOi.tok.sig",
        "hunter2-very-secret",
    ] {
        assert!(!log.contains(secret), "{secret} reached the log:\n{log}");
    }
}

#[test]
fn bad_hashed_keys_are_configuration_errors() {
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:0\napis:\n  - id: h\n    path: h\n    service_url: http://127.0.0.1:1\n    operations: []\nsubscriptions:\n  - id: s\n    scope: api:h\n    primary_key: \"sha256:abc\"\n  - id: t\n    scope: api:h\n    primary_key: same-key-123\n  - id: u\n    scope: api:h\n    primary_key: \"sha256:SAMEHASH\"\n"
            .replace("SAMEHASH", &sha256_hex("same-key-123"))
            .as_str(),
    );
    let out = run_cli(&dir.0, &["check", "-c", "gatehouse.yaml"]);
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(err.contains("64 hex digits"), "{err}");
    assert!(err.contains("reuses a key of subscription `t`"), "{err}");
}

#[test]
fn request_limits_answer_414_431_413() {
    let o = Origin::echo();
    let gw = gateway(
        &o,
        "limits:\n  max_url_length: 100\n  max_headers: 10\n  max_header_bytes: 600\n  max_body_bytes: 1000\n",
        "",
    );
    let key = (KEY, "plain-key-0002");
    let long = format!("/h/{}", "a".repeat(120));
    let r = gw.get(&long, &[key]);
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (414, "The request URL is too long.".into())
    );
    assert_eq!(gw.last_log()["error"], "UriTooLong");
    let many: Vec<(String, String)> = (0..12).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let mut hs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    hs.push(key);
    let r = gw.get("/h/x", &hs);
    assert_eq!(r.status, 431);
    let big = "v".repeat(700);
    assert_eq!(gw.get("/h/x", &[key, ("X-Big", &big)]).status, 431);
    let r = gw.send("POST", "/h/x", &[key], &[b'b'; 1001]);
    assert_eq!(r.status, 413);
    assert_eq!(
        r.json()["message"],
        "Request body is larger than the 1000 bytes allowed."
    );
    assert_eq!(gw.send("POST", "/h/x", &[key], &[b'b'; 1000]).status, 200);
    assert_eq!(
        o.count(),
        1,
        "only the request within the limits reached the backend"
    );
    // A chunked body is counted as it streams.
    let mut s =
        std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap_or_else(|e| panic!("{e}"));
    use std::io::{Read, Write};
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok();
    let chunk = "x".repeat(600);
    let req = format!("POST /h/x HTTP/1.1\r\nHost: t\r\n{}: plain-key-0002\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n", KEY);
    let _ = s.write_all(req.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

#[test]
fn error_bodies_leak_no_internal_detail() {
    let dead = free_port();
    let yaml = format!(
        "apis:\n  - id: d\n    path: d\n    service_url: http://127.0.0.1:{dead}/secret-internal-path\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n"
    );
    let doc = r#"<policies><inbound><base /><set-variable name="x" value="@(((string)null).Length.ToString())" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;
    let gw = Gatehouse::start(&yaml, &[("apis/d/any.xml", doc)]);
    for path in ["/d/x"] {
        let r = gw.get(path, &[]);
        assert_eq!(r.status, 500);
        let body = r.text();
        assert_eq!(r.json()["message"], "Internal server error");
        for leak in [
            dead.to_string().as_str(),
            "127.0.0.1",
            "secret-internal-path",
            "Length",
            "NullReference",
        ] {
            assert!(!body.contains(leak), "{leak} leaked: {body}");
        }
    }
    let gw2 = Gatehouse::start(&yaml, &[]);
    let r = gw2.get("/d/x", &[]);
    assert_eq!(r.status, 500);
    let body = r.text();
    assert!(
        !body.contains(&dead.to_string()) && !body.contains("127.0.0.1"),
        "{body}"
    );
}

#[test]
fn the_key_can_be_stripped_and_explain_never_prints_a_secret() {
    let o = Origin::echo();
    let yaml = format!(
        "named_values:\n  backend-secret:\n    value: hunter2-very-secret\n    secret: true\napis:\n  - id: s\n    path: s\n    service_url: http://127.0.0.1:{}\n    strip_subscription_key: true\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\nsubscriptions:\n  - id: sub\n    scope: api:s\n    primary_key: strip-me-0001\n",
        o.port
    );
    let doc = r#"<policies><inbound><base /><set-header name="X-Secret" exists-action="override"><value>{{backend-secret}}</value></set-header></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;
    let gw = Gatehouse::start(&yaml, &[("apis/s.xml", doc)]);
    let r = gw.get("/s/x?subscription-key=strip-me-0001&a=1", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["query"],
        "a=1",
        "the key query parameter is removed"
    );
    let r = gw.get("/s/x", &[(KEY, "strip-me-0001")]);
    assert_eq!(r.status, 200);
    assert!(r.json()["headers"]
        .get("ocp-apim-subscription-key")
        .is_none());
    // The policy's secret reaches the backend as configured, but explain shows the reference.
    assert_eq!(r.json()["headers"]["x-secret"], "hunter2-very-secret");
    let out = run_cli(
        &gw.dir.0,
        &[
            "explain",
            "-c",
            "gatehouse.yaml",
            "--api",
            "s",
            "--operation",
            "any",
        ],
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("{{backend-secret}}"), "{text}");
    assert!(!text.contains("hunter2-very-secret"), "{text}");
}
