//! `authentication-managed-identity` off Azure, against a token server the test starts: the
//! client-credentials grant with a secret from a named value or a federated token file, the
//! token as the backend's `Authorization` or in a variable, inside send-request, one fetch per
//! identity and resource however many requests wait (single flight), failures to on-error with
//! `TokenAcquisitionFailure` or ignored, and load-time checks.

mod common;
use common::*;
use std::time::Duration;

const SECRET: &str = "s3cret-never-logged-7f3a";
const ASSERTION: &str = "federated.jwt.assertion";

/// A token endpoint: a token per (client, resource) with the number of tokens issued so far,
/// after 300 ms (so that concurrent requests overlap); 401 `invalid_client` for a wrong
/// credential, 400 `invalid_scope` for a resource of `denied`.
fn token_server() -> Origin {
    let issued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Origin::start(move |r| {
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&r.body).into_owned().collect();
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        let json = |code: u16, v: serde_json::Value| {
            Reply::Delay(
                Duration::from_millis(300),
                Response::new(code, v.to_string()).with_header("Content-Type", "application/json"),
            )
        };
        let credential_ok = match get("client_id").as_str() {
            "gw-client" => get("client_secret") == SECRET,
            "uai-1" => {
                get("client_assertion") == ASSERTION
                    && get("client_assertion_type")
                        == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            }
            _ => false,
        };
        if r.method != "POST" || get("grant_type") != "client_credentials" || !credential_ok {
            return json(401, serde_json::json!({"error": "invalid_client"}));
        }
        let resource = form
            .get("scope")
            .or_else(|| form.get("resource"))
            .cloned()
            .unwrap_or_default();
        if resource.contains("denied") {
            return json(400, serde_json::json!({"error": "invalid_scope"}));
        }
        let n = issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        json(
            200,
            serde_json::json!({
                "token_type": "Bearer",
                "expires_in": 3600,
                "access_token": format!("tok-{}-{}-{n}", get("client_id"), resource.replace(['/', ':'], "_")),
            }),
        )
    })
}

fn config(token_port: u16, origin_port: u16) -> String {
    format!(
        "named_values:\n  mi-secret:\n    value: {SECRET}\n    secret: true\n  origin:\n    value: http://127.0.0.1:{origin_port}\nmanaged_identity:\n  token_url: http://127.0.0.1:{token_port}/tenant/oauth2/v2.0/token\n  client_id: gw-client\n  client_secret: mi-secret\n  identities:\n    uai-1:\n      token_file: federated-token\napis:\n{}",
        api_yaml(
            "mi",
            "mi",
            &format!("http://127.0.0.1:{origin_port}"),
            OPEN,
            &[
                ("hdr", "GET", "/hdr"),
                ("burst", "GET", "/burst"),
                ("var", "GET", "/var"),
                ("uai", "GET", "/uai"),
                ("call", "GET", "/call"),
                ("waited", "GET", "/waited"),
                ("denied", "GET", "/denied"),
                ("ignored", "GET", "/ignored"),
            ]
        )
    )
}

fn on_error_reason() -> &'static str {
    r#"<return-response><set-status code="500" reason="Token" /><set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason)</value></set-header><set-header name="X-Source" exists-action="override"><value>@(context.LastError.Source)</value></set-header><set-body>@(context.LastError.Message)</set-body></return-response>"#
}

fn policies() -> Vec<(&'static str, String)> {
    let op = |inbound: &str| sections(inbound, "", "", on_error_reason());
    vec![
        (
            "apis/mi/hdr.xml",
            op(r#"<authentication-managed-identity resource="https://graph.example.com" />"#),
        ),
        (
            "apis/mi/burst.xml",
            op(r#"<authentication-managed-identity resource="@(&quot;api://burst&quot;)" />"#),
        ),
        (
            "apis/mi/var.xml",
            op(
                r#"<authentication-managed-identity resource="https://vault.example.com" output-token-variable-name="msi-token" />
                <set-header name="X-Token" exists-action="override"><value>@("Bearer " + (string)context.Variables["msi-token"])</value></set-header>"#,
            ),
        ),
        (
            "apis/mi/uai.xml",
            op(
                r#"<authentication-managed-identity resource="https://storage.example.com" client-id="uai-1" />"#,
            ),
        ),
        (
            "apis/mi/call.xml",
            op(
                r#"<send-request mode="new" response-variable-name="r" timeout="10">
                    <set-url>{{origin}}/inside</set-url>
                    <set-method>GET</set-method>
                    <authentication-managed-identity resource="api://backend" />
                </send-request>
                <return-response><set-body>@(((IResponse)context.Variables["r"]).Body.As<string>())</set-body></return-response>"#,
            ),
        ),
        (
            "apis/mi/waited.xml",
            op(
                r#"<wait for="all"><send-request mode="new" response-variable-name="r" timeout="10">
                    <set-url>{{origin}}/inside</set-url>
                    <set-method>GET</set-method>
                    <authentication-managed-identity resource="api://backend" />
                </send-request></wait>
                <return-response><set-body>@(((IResponse)context.Variables["r"]).Body.As<string>())</set-body></return-response>"#,
            ),
        ),
        (
            "apis/mi/denied.xml",
            op(r#"<authentication-managed-identity resource="https://denied.example.com" />"#),
        ),
        (
            "apis/mi/ignored.xml",
            op(
                r#"<authentication-managed-identity resource="https://denied.example.com" ignore-error="true" />"#,
            ),
        ),
    ]
}

fn start(tokens: &Origin, origin: &Origin) -> Gatehouse {
    start_with_token_port(tokens.port, origin)
}

fn start_with_token_port(token_port: u16, origin: &Origin) -> Gatehouse {
    let files = policies();
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    Gatehouse::start_with(
        &config(token_port, origin.port),
        &refs,
        &[("federated-token", &format!("{ASSERTION}\n"))],
    )
}

fn authorization(r: &Response) -> String {
    r.json()["headers"]["authorization"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn tokens_reach_the_backend_once_fetched_and_kept_per_identity_and_resource() {
    let (tokens, origin) = (token_server(), Origin::echo());
    let gw = start(&tokens, &origin);

    // The default identity, its secret from a named value; the resource sent as a v2 scope.
    for _ in 0..3 {
        let r = gw.get("/mi/hdr", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            authorization(&r),
            "Bearer tok-gw-client-https___graph.example.com_.default-1"
        );
    }
    assert_eq!(tokens.count(), 1, "one token request for three calls");
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&tokens.last().body)
            .into_owned()
            .collect();
    assert_eq!(form["scope"], "https://graph.example.com/.default");
    assert_eq!(form["client_secret"], SECRET);

    // A user-assigned identity proving itself with a federated token file.
    let r = gw.get("/mi/uai", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(authorization(&r).starts_with("Bearer tok-uai-1-https___storage.example.com"));

    // output-token-variable-name: the token in the variable, the header left to the policy.
    let r = gw.get("/mi/var", &[("Authorization", "Basic caller")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let h = &r.json()["headers"];
    assert!(h["x-token"]
        .as_str()
        .unwrap_or_default()
        .starts_with("Bearer tok-gw-client-https___vault"));
    assert_eq!(h["authorization"], "Basic caller");

    // Inside send-request: the call carries the token.
    let r = gw.get("/mi/call", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        authorization(&r).starts_with("Bearer tok-gw-client-api___backend"),
        "{}",
        r.text()
    );

    // Inside wait (the calls run side by side): the same token, kept.
    let r = gw.get("/mi/waited", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        authorization(&r).starts_with("Bearer tok-gw-client-api___backend"),
        "{}",
        r.text()
    );

    assert_eq!(tokens.count(), 4, "one fetch per identity and resource");
    let log = gw.log();
    assert!(!log.contains(SECRET), "the secret reached the log");
    assert!(!log.contains("tok-gw-client"), "a token reached the log");
}

#[test]
fn concurrent_requests_wait_for_one_token_fetch() {
    let (tokens, origin) = (token_server(), Origin::echo());
    let gw = start(&tokens, &origin);
    let port = gw.port;
    let handles: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || get(port, "/mi/burst", &[])))
        .collect();
    for h in handles {
        let r = h.join().unwrap_or_else(|_| panic!("client thread"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(authorization(&r).starts_with("Bearer tok-gw-client-api___burst"));
    }
    assert_eq!(
        tokens.count(),
        1,
        "20 concurrent requests, one token request"
    );
}

#[test]
fn a_refused_token_goes_to_on_error_or_is_ignored() {
    let (tokens, origin) = (token_server(), Origin::echo());
    let gw = start(&tokens, &origin);
    let r = gw.get("/mi/denied", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(r.header("X-Reason"), Some("TokenAcquisitionFailure"));
    assert_eq!(
        r.header("X-Source"),
        Some("authentication-managed-identity")
    );
    assert!(r.text().contains("400 (invalid_scope)"), "{}", r.text());
    assert!(!r.text().contains(SECRET));
    assert_eq!(origin.count(), 0, "the backend was not called");

    // ignore-error: the call goes on without a token.
    let r = gw.get("/mi/ignored", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(authorization(&r), "");

    // A token endpoint that cannot be reached is the same failure.
    let gw = start_with_token_port(free_port(), &origin);
    let r = gw.get("/mi/uai", &[]);
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.header("X-Reason"), Some("TokenAcquisitionFailure"));
    assert!(r.text().contains("could not be reached"), "{}", r.text());
    assert!(!gw.log().contains(SECRET));
}

#[test]
fn the_policy_needs_a_configured_provider_and_identity() {
    let dir = TempDir::new();
    let doc = inbound_doc(
        r#"<authentication-managed-identity resource="https://x.example.com" client-id="nobody" />"#,
    );
    let yaml = |mi: &str| {
        format!(
            "listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: policies\n{mi}apis:\n{}",
            api_yaml(
                "a",
                "a",
                "http://127.0.0.1:1",
                OPEN,
                &[("op", "GET", "/op")]
            )
        )
    };
    dir.write("policies/apis/a/op.xml", &doc);
    dir.write("gatehouse.yaml", &yaml(""));
    let out = check_fails(&dir.0);
    assert!(
        out.contains("C067") && out.contains("needs a token provider"),
        "{out}"
    );

    dir.write(
        "gatehouse.yaml",
        &yaml("managed_identity:\n  token_url: https://login.example.com/t/oauth2/v2.0/token\n  client_id: gw\n  client_secret: missing-value\n"),
    );
    let out = check_fails(&dir.0);
    assert!(out.contains("no named value `missing-value`"), "{out}");

    dir.write(
        "gatehouse.yaml",
        &yaml("named_values:\n  s:\n    value: x\n    secret: true\nmanaged_identity:\n  token_url: https://login.example.com/t/oauth2/v2.0/token\n  client_id: gw\n  client_secret: s\n"),
    );
    let out = check_fails(&dir.0);
    assert!(
        out.contains("client-id `nobody`") && out.contains(":1:"),
        "{out}"
    );

    // With the identity configured, the document checks clean.
    dir.write(
        "gatehouse.yaml",
        &yaml("named_values:\n  s:\n    value: x\n    secret: true\nmanaged_identity:\n  token_url: https://login.example.com/t/oauth2/v2.0/token\n  client_id: gw\n  client_secret: s\n  resource_as: resource\n  identities:\n    nobody:\n      client_secret: s\n"),
    );
    let out = run_cli(&dir.0, &["check", "-c", "gatehouse.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
