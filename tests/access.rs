//! Access control through the real binary: check-header, ip-filter (IPv4, IPv6, ranges,
//! trusted proxies), cors (preflight and actual requests), authentication-basic, and the
//! X-Forwarded-* headers sent to backends.

mod common;
use common::*;

fn gateway(extra_yaml: &str, o: &Origin, inbound: &str) -> Gatehouse {
    let yaml = format!(
        "{extra_yaml}apis:\n  - id: a\n    path: a\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    operations:\n      - id: get\n        method: GET\n        url_template: \"/{{*rest}}\"\n      - id: post\n        method: POST\n        url_template: \"/{{*rest}}\"\n",
        o.port
    );
    let doc = inbound_doc(inbound);
    Gatehouse::start(&yaml, &[("apis/a.xml", &doc)])
}

#[test]
fn check_header_presence_values_and_case() {
    let o = Origin::echo();
    let gw = gateway(
        "",
        &o,
        r#"<check-header name="X-Tenant" failed-check-httpcode="403" failed-check-error-message="Tenant not allowed" ignore-case="true"><value>Contoso</value><value>Fabrikam</value></check-header>"#,
    );
    assert_eq!(gw.get("/a/x", &[("X-Tenant", "contoso")]).status, 200);
    assert_eq!(
        gw.get("/a/x", &[("X-Tenant", "other, FABRIKAM")]).status,
        200
    );
    let r = gw.get("/a/x", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["message"], "Tenant not allowed");
    assert_eq!(r.json()["statusCode"], 403);
    assert_eq!(gw.last_log()["error"], "HeaderNotFound");
    let r = gw.get("/a/x", &[("X-Tenant", "evil")]);
    assert_eq!(r.status, 403);
    assert_eq!(gw.last_log()["error"], "HeaderValueNotAllowed");
    // Case-sensitive, presence only.
    let gw = gateway(
        "",
        &o,
        r#"<check-header name="X-Key" failed-check-httpcode="401" failed-check-error-message="no" ignore-case="false" /><check-header name="X-Env" failed-check-httpcode="400" failed-check-error-message="env" ignore-case="false"><value>Prod</value></check-header>"#,
    );
    assert_eq!(
        gw.get("/a/x", &[("X-Key", ""), ("X-Env", "Prod")]).status,
        200
    );
    assert_eq!(
        gw.get("/a/x", &[("X-Key", "1"), ("X-Env", "prod")]).status,
        400
    );
}

#[test]
fn ip_filter_allow_forbid_ranges_and_ipv6() {
    let o = Origin::echo();
    let allow = gateway(
        "",
        &o,
        r#"<ip-filter action="allow"><address-range from="127.0.0.1" to="127.0.0.5" /></ip-filter>"#,
    );
    assert_eq!(allow.get("/a/x", &[]).status, 200);
    let deny = gateway(
        "",
        &o,
        r#"<ip-filter action="allow"><address>10.0.0.1</address><address-range from="2001:db8::" to="2001:db8::ffff" /></ip-filter>"#,
    );
    let r = deny.get("/a/x", &[]);
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (403, "Forbidden".into())
    );
    assert_eq!(deny.last_log()["error"], "CallerIpNotAllowed");
    let forbid = gateway(
        "",
        &o,
        r#"<ip-filter action="forbid"><address>127.0.0.1</address></ip-filter>"#,
    );
    assert_eq!(forbid.get("/a/x", &[]).status, 403);
    assert_eq!(forbid.last_log()["error"], "CallerIpBlocked");
    // Behind a trusted proxy (loopback), the caller is the right-most untrusted X-Forwarded-For
    // entry; IPv6 ranges apply to it.
    let trusted = gateway(
        "client_identity:\n  trusted_proxies: [127.0.0.1, \"10.0.0.0/8\"]\n",
        &o,
        r#"<ip-filter action="allow"><address-range from="2001:db8::" to="2001:db8::ffff" /></ip-filter>"#,
    );
    let ok = trusted.get(
        "/a/x",
        &[("X-Forwarded-For", "198.51.100.7, 2001:db8::42, 10.1.2.3")],
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let r = trusted.get("/a/x", &[("X-Forwarded-For", "2001:db8::42, 198.51.100.7")]);
    assert_eq!(
        r.status, 403,
        "the right-most untrusted hop is 198.51.100.7"
    );
    // An untrusted peer's X-Forwarded-For is ignored.
    let untrusted = gateway(
        "",
        &o,
        r#"<ip-filter action="allow"><address>2001:db8::42</address></ip-filter>"#,
    );
    assert_eq!(
        untrusted
            .get("/a/x", &[("X-Forwarded-For", "2001:db8::42")])
            .status,
        403
    );
}

#[test]
fn forwarded_headers_reach_the_backend() {
    let o = Origin::echo();
    let gw = gateway("", &o, "");
    let r = gw.get(
        "/a/x",
        &[
            ("Host", "api.example.com"),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
    );
    let h = &r.json()["headers"];
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    // Without one, the peer alone; with two header lines, both in order, then the peer.
    let r = gw.get("/a/x", &[]);
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "127.0.0.1");
    let r = gw.get(
        "/a/x",
        &[
            ("X-Forwarded-For", "203.0.113.9, 198.51.100.1"),
            ("X-Forwarded-For", "192.0.2.7"),
        ],
    );
    assert_eq!(
        r.json()["headers"]["x-forwarded-for"],
        "203.0.113.9, 198.51.100.1, 192.0.2.7, 127.0.0.1"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "api.example.com");
    // Switched off.
    let gw = gateway("client_identity:\n  forwarded_headers: false\n", &o, "");
    let r = gw.get("/a/x", &[]);
    assert!(r.json()["headers"].get("x-forwarded-for").is_none());
    // context.Request.IpAddress behind a trusted proxy.
    let gw = gateway(
        "client_identity:\n  trusted_proxies: [127.0.0.1]\n",
        &o,
        r#"<set-header name="X-Caller" exists-action="override"><value>@(context.Request.IpAddress)</value></set-header>"#,
    );
    let r = gw.get("/a/x", &[("X-Forwarded-For", "198.51.100.7")]);
    assert_eq!(r.json()["headers"]["x-caller"], "198.51.100.7");
}

const CORS: &str = r#"<cors allow-credentials="true"><allowed-origins><origin>https://app.example.com</origin><origin>http://localhost:3000</origin></allowed-origins><allowed-methods preflight-result-max-age="600"><method>GET</method><method>POST</method></allowed-methods><allowed-headers><header>Content-Type</header><header>X-Api-Version</header></allowed-headers><expose-headers><header>X-Request-Id</header></expose-headers></cors>"#;

#[test]
fn cors_preflight_and_actual_requests() {
    let o = Origin::echo();
    let gw = gateway("", &o, CORS);
    let pre = |origin: &str, method: &str, headers: &str| {
        gw.send(
            "OPTIONS",
            "/a/orders",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", method),
                ("Access-Control-Request-Headers", headers),
            ],
            b"",
        )
    };
    let r = pre(
        "https://app.example.com:443",
        "POST",
        "content-type, x-api-version",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com:443")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, x-api-version")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(o.count(), 0, "a preflight is answered by the gateway");
    // A disallowed origin, method or header: empty 200 without CORS headers (terminate).
    for r in [
        pre("https://evil.example.com", "POST", "content-type"),
        pre("http://localhost:3000", "DELETE", ""),
        pre("http://localhost:3000", "GET", "x-secret"),
    ] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert!(r.body.is_empty());
    }
    assert_eq!(o.count(), 0);
    // Actual request from an allowed origin: forwarded, CORS headers on the response.
    let r = gw.get("/a/orders", &[("Origin", "http://localhost:3000")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-origin"), Some("yes"));
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    // From a disallowed origin: empty 200 (terminate-unmatched-request defaults to true).
    let before = o.count();
    let r = gw.get("/a/orders", &[("Origin", "https://evil.example.com")]);
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(o.count(), before);
    // Without Origin: not a CORS request.
    assert_eq!(
        gw.get("/a/orders", &[])
            .header("access-control-allow-origin"),
        None
    );
}

#[test]
fn cors_wildcard_and_unterminated() {
    let o = Origin::echo();
    let gw = gateway(
        "",
        &o,
        r#"<cors terminate-unmatched-request="false"><allowed-origins><origin>*</origin></allowed-origins><allowed-methods><method>*</method></allowed-methods><allowed-headers><header>*</header></allowed-headers></cors>"#,
    );
    let r = gw.send(
        "OPTIONS",
        "/a/x",
        &[
            ("Origin", "https://any.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "x-one"),
        ],
        b"",
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-one"));
    // No cors on an API: an OPTIONS without an operation stays a 404.
    let plain = gateway("", &o, "");
    let r = plain.send(
        "OPTIONS",
        "/a/x",
        &[
            ("Origin", "https://any.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        b"",
    );
    assert_eq!(r.status, 404);
}

#[test]
fn authentication_basic_sets_the_backend_authorization() {
    let o = Origin::echo();
    let gw = gateway(
        "named_values:\n  pw:\n    value: s3cret\n    secret: true\n",
        &o,
        r#"<authentication-basic username="svc" password="{{pw}}" />"#,
    );
    let r = gw.get("/a/x", &[("Authorization", "Bearer client-token")]);
    assert_eq!(
        r.json()["headers"]["authorization"],
        "Basic c3ZjOnMzY3JldA=="
    );
}

#[test]
fn cors_after_other_inbound_policies_is_a_warning() {
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:0\npolicies:\n  dir: policies\napis:\n  - id: a\n    path: a\n    service_url: http://127.0.0.1:1\n    subscription_required: false\n    operations:\n      - id: get\n        method: GET\n        url_template: /\n",
    );
    dir.write(
        "policies/apis/a.xml",
        "<policies><inbound><base />\n<set-header name=\"X\" exists-action=\"override\"><value>1</value></set-header>\n<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-headers><header>*</header></allowed-headers></cors>\n</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>",
    );
    let out = run_cli(&dir.0, &["check", "-c", "gatehouse.yaml"]);
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "a warning does not stop the load: {text}"
    );
    assert!(
        text.contains("a.xml:3:") && text.contains("P049") && text.contains("<set-header>"),
        "{text}"
    );
    assert_eq!(text.matches("P049").count(), 1, "reported once: {text}");
}
