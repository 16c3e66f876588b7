//! TLS to backends: a custom CA, and mTLS to a backend that requires a client certificate.
//! Certificates come from the `openssl` command; the origin is an openssl-based HTTPS server on
//! a loopback port that rejects handshakes without a certificate signed by the test CA.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// Start a gateway whose directory holds the test CA and client certificate under `certs/`.
fn start_with_certs(certs: &std::path::Path, yaml: &str, policies: &[(&str, &str)]) -> Gatehouse {
    let read = |f: &str| std::fs::read_to_string(certs.join(f)).unwrap_or_else(|e| panic!("{e}"));
    let (ca, cert, key) = (read("ca.pem"), read("client.pem"), read("client.key"));
    let files = [
        ("certs/ca.pem", ca.as_str()),
        ("certs/client.pem", cert.as_str()),
        ("certs/client.key", key.as_str()),
    ];
    Gatehouse::start_with(yaml, policies, &files)
}

/// An HTTPS origin that requires a client certificate from the test CA and answers with the
/// client certificate's common name.
fn mtls_origin(dir: &std::path::Path) -> u16 {
    mtls_origin_on(dir, "127.0.0.1:0")
}

/// The same on the first address `localhost` resolves to (what the gateway will connect to).
fn mtls_origin_localhost(dir: &std::path::Path) -> u16 {
    use std::net::ToSocketAddrs;
    let addr = ("localhost", 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("localhost does not resolve"));
    mtls_origin_on(dir, &addr.to_string())
}

fn mtls_origin_on(dir: &std::path::Path, bind: &str) -> u16 {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())
        .unwrap_or_else(|e| panic!("acceptor: {e}"));
    b.set_private_key_file(dir.join("server.key"), SslFiletype::PEM)
        .unwrap_or_else(|e| panic!("{e}"));
    b.set_certificate_chain_file(dir.join("server.pem"))
        .unwrap_or_else(|e| panic!("{e}"));
    b.set_ca_file(dir.join("ca.pem"))
        .unwrap_or_else(|e| panic!("{e}"));
    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    let acceptor = std::sync::Arc::new(b.build());
    let listener = TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let acceptor = acceptor.clone();
            std::thread::spawn(move || {
                let Ok(tls) = acceptor.accept(conn) else {
                    return;
                };
                let cn = tls
                    .ssl()
                    .peer_certificate()
                    .and_then(|c| {
                        c.subject_name()
                            .entries()
                            .next()
                            .map(|e| String::from_utf8_lossy(e.data().as_slice()).to_string())
                    })
                    .unwrap_or_default();
                let mut r = BufReader::new(tls);
                loop {
                    let mut line = String::new();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let body = format!("client={cn}");
                let _ = r.get_mut().write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    port
}

#[test]
fn mtls_to_a_backend_that_requires_a_client_certificate() {
    let certs = TempDir::new();
    certificates(&certs.0);
    let port = mtls_origin(&certs.0);
    let tls = |extra: &str| format!("    tls:\n      sni: localhost\n{extra}");
    let yaml = format!(
        "backends:\n  - id: mtls\n    url: https://127.0.0.1:{port}\n{}  - id: no-client-cert\n    url: https://127.0.0.1:{port}\n{}  - id: system-ca\n    url: https://127.0.0.1:{port}\n{}apis:\n{}{}{}",
        tls("      ca_file: certs/ca.pem\n      client_cert_file: certs/client.pem\n      client_key_file: certs/client.key\n"),
        tls("      ca_file: certs/ca.pem\n"),
        tls("      client_cert_file: certs/client.pem\n      client_key_file: certs/client.key\n"),
        api("a", "mtls"),
        api("b", "no-client-cert"),
        api("c", "system-ca"),
    );
    let gw = start_with_certs(&certs.0, &yaml, &[]);
    let r = gw.get("/a/x", &[]);
    assert_eq!(
        (r.status, r.text()),
        (200, "client=gatehouse-client".to_string())
    );
    // The backend refuses a handshake without a client certificate.
    let r = gw.get("/b/x", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(gw.last_log()["error"], "BackendConnectionFailure");
    // The backend's certificate does not verify against the system's CAs.
    let r = gw.get("/c/x", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(gw.last_log()["error"], "BackendConnectionFailure");
}

fn api(id: &str, backend: &str) -> String {
    format!("  - id: {id}\n    path: {id}\n    backend: {backend}\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n")
}

#[test]
fn unreadable_tls_files_are_configuration_errors() {
    let dir = TempDir::new();
    dir.write("bad.pem", "not a certificate");
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:0\nbackends:\n  - id: x\n    url: https://127.0.0.1:1\n    tls:\n      ca_file: bad.pem\n      client_cert_file: missing.pem\n      client_key_file: missing.key\napis: []\n",
    );
    let out = run_cli(&dir.0, &["check", "-c", "gatehouse.yaml"]);
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(err.contains("bad.pem holds no PEM certificate"), "{err}");
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn send_request_presents_a_configured_client_certificate() {
    let certs = TempDir::new();
    certificates(&certs.0);
    let port = mtls_origin_localhost(&certs.0);
    let read = |f: &str| std::fs::read_to_string(certs.0.join(f)).unwrap_or_else(|e| panic!("{e}"));
    let thumb = {
        let pem = read("client.pem");
        let cert = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let d = cert
            .digest(openssl::hash::MessageDigest::sha1())
            .unwrap_or_else(|e| panic!("{e}"));
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let yaml = "certificates:\n  - id: gw-client\n    cert_file: certs/client.pem\n    key_file: certs/client.key\napis:\n  - id: s\n    path: s\n    service_url: http://127.0.0.1:1\n    subscription_required: false\n    operations:\n      - id: by-id\n        method: GET\n        url_template: /by-id\n      - id: by-thumb\n        method: GET\n        url_template: /by-thumb\n      - id: none\n        method: GET\n        url_template: /none\n";
    let call = |cert: &str| {
        format!(
            r#"<policies><inbound><base /><send-request mode="new" response-variable-name="r" timeout="5" ignore-error="true"><set-url>https://localhost:{port}/x</set-url><set-method>GET</set-method>{cert}</send-request><return-response><set-status code="200" /><set-body>@(context.Variables["r"] == null ? "failed" : ((IResponse)context.Variables["r"]).Body.As<string>())</set-body></return-response></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#
        )
    };
    let files = [
        ("certs/client.pem", read("client.pem")),
        ("certs/client.key", read("client.key")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let ca = certs.0.join("ca.pem").to_string_lossy().to_string();
    let gw = Gatehouse::start_with_env(
        yaml,
        &[
            (
                "apis/s/by-id.xml",
                &call(r#"<authentication-certificate certificate-id="gw-client" />"#),
            ),
            (
                "apis/s/by-thumb.xml",
                &call(&format!(
                    r#"<authentication-certificate thumbprint="{thumb}" />"#
                )),
            ),
            ("apis/s/none.xml", &call("")),
        ],
        &files,
        // The origin's certificate is from the test CA: trust it as the system CA file.
        &[("SSL_CERT_FILE", &ca)],
    );
    assert_eq!(
        gw.get("/s/by-id", &[]).text(),
        "client=gatehouse-client",
        "{}",
        gw.log()
    );
    assert_eq!(gw.get("/s/by-thumb", &[]).text(), "client=gatehouse-client");
    assert_eq!(gw.get("/s/none", &[]).text(), "failed");
}

#[test]
fn authentication_certificate_policy_presents_the_certificate_to_the_backend() {
    let certs = TempDir::new();
    certificates(&certs.0);
    let port = mtls_origin(&certs.0);
    // The backend trusts the test CA but has no client certificate of its own: the policy
    // supplies it.
    let yaml = format!(
        "certificates:\n  - id: gw-client\n    cert_file: certs/client.pem\n    key_file: certs/client.key\nbackends:\n  - id: b\n    url: https://127.0.0.1:{port}\n    tls:\n      sni: localhost\n      ca_file: certs/ca.pem\napis:\n{}{}",
        api("with", "b"),
        api("without", "b")
    );
    let doc = inbound_doc;
    let gw = start_with_certs(
        &certs.0,
        &yaml,
        &[
            (
                "apis/with.xml",
                &doc(r#"<authentication-certificate certificate-id="gw-client" />"#),
            ),
            ("apis/without.xml", &doc("")),
        ],
    );
    let r = gw.get("/with/x", &[]);
    assert_eq!(
        (r.status, r.text()),
        (200, "client=gatehouse-client".to_string())
    );
    assert_eq!(gw.get("/without/x", &[]).status, 500);
}

/// A CONNECT proxy on loopback that wants `Proxy-Authorization: Basic gw:secret`: it records
/// each CONNECT target and sends every tunnel to 127.0.0.1 at the requested port (the target's
/// host name does not resolve here).
fn connect_proxy() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn);
                let (mut target, mut auth) = (String::new(), String::new());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    return;
                }
                if let Some(t) = line.strip_prefix("CONNECT ") {
                    target = t.split(' ').next().unwrap_or("").to_string();
                }
                loop {
                    let mut h = String::new();
                    match r.read_line(&mut h) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if h == "\r\n" => break,
                        Ok(_) => {
                            if let Some(v) = h.strip_prefix("Proxy-Authorization: ") {
                                auth = v.trim().to_string();
                            }
                        }
                    }
                }
                log.lock()
                    .unwrap_or_else(|e| panic!("{e}"))
                    .push(format!("{target} auth={auth}"));
                let mut client = r.into_inner();
                if auth != "Basic Z3c6c2VjcmV0" {
                    let _ = client.write_all(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
                    );
                    return;
                }
                let port = target.rsplit(':').next().unwrap_or("0");
                let Ok(upstream) = std::net::TcpStream::connect(format!("127.0.0.1:{port}")) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let (mut c2, mut u2) = (
                    client.try_clone().unwrap_or_else(|e| panic!("{e}")),
                    upstream.try_clone().unwrap_or_else(|e| panic!("{e}")),
                );
                let (mut c1, mut u1) = (client, upstream);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut u2);
                    let _ = u2.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut u1, &mut c1);
                let _ = c1.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, seen)
}

#[test]
fn https_backends_and_send_request_through_a_connect_proxy() {
    let certs = TempDir::new();
    certificates(&certs.0);
    let port = mtls_origin(&certs.0);
    let (proxy, seen) = connect_proxy();
    let backend = |id: &str, creds: &str| {
        format!(
            "  - id: {id}\n    url: https://secure.invalid:{port}\n    tls:\n      sni: localhost\n      ca_file: certs/ca.pem\n      client_cert_file: certs/client.pem\n      client_key_file: certs/client.key\n    proxy:\n      url: http://127.0.0.1:{proxy}\n{creds}"
        )
    };
    let check = "    health_check:\n      path: /health\n      interval: 200ms\n      unhealthy_threshold: 1\n";
    let yaml = format!(
        "backends:\n{}{}{}apis:\n{}{}  - id: s\n    path: s\n    service_url: http://127.0.0.1:1\n    subscription_required: false\n    operations:\n      - id: t\n        method: GET\n        url_template: /t\n",
        backend(
            "tunnel",
            &format!("      username: gw\n      password: secret\n{check}")
        ),
        backend("no-creds", ""),
        // Health checks go through the tunnel too (this one is refused: no credentials).
        backend("checked-no-creds", check),
        api("a", "tunnel"),
        api("b", "no-creds"),
    );
    // send-request over a tunnel: the proxy is reached and the TLS handshake runs through it
    // (it fails: the origin's CA is not among the system's, and send-request has no CA option).
    let policy = format!(
        r#"<policies><inbound><base /><send-request mode="new" response-variable-name="r" timeout="5"><set-url>https://token.invalid:{port}/oauth</set-url><set-method>GET</set-method><proxy url="http://127.0.0.1:{proxy}" username="gw" password="secret" /></send-request></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#
    );
    let gw = start_with_certs(&certs.0, &yaml, &[("apis/s/t.xml", &policy)]);
    // TLS with the backend's CA, SNI and client certificate, end to end through the tunnel.
    let r = gw.get("/a/x", &[]);
    assert_eq!(
        (r.status, r.text()),
        (200, "client=gatehouse-client".to_string())
    );
    // A proxy that refuses the tunnel (407 without credentials) is a connection failure.
    let r = gw.get("/b/x", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(gw.last_log()["error"], "BackendConnectionFailure");
    let r = gw.get("/s/t", &[]);
    assert_eq!(r.status, 500);
    let log = gw.last_log();
    assert_eq!(log["error"], "BackendConnectionFailure", "{log}");
    assert_eq!(log["produced_by"]["policy"], "send-request", "{log}");
    // Bounded wait for the checks: through the tunnel with credentials healthy, without
    // credentials (407) unhealthy.
    let start = std::time::Instant::now();
    let mut m = String::new();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        m = get(gw.admin, "/metrics", &[]).text();
        if m.contains("gatehouse_backend_healthy{backend=\"checked-no-creds\"} 0")
            && m.contains("gatehouse_backend_healthy{backend=\"tunnel\"} 1")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        m.contains("gatehouse_backend_healthy{backend=\"checked-no-creds\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("gatehouse_backend_healthy{backend=\"tunnel\"} 1"),
        "{m}"
    );
    let seen = seen.lock().unwrap_or_else(|e| panic!("{e}")).clone();
    let count = |want: String| seen.iter().filter(|s| **s == want).count();
    // The routed request plus at least one check on `tunnel`; one request on `no-creds`.
    assert!(
        count(format!("secure.invalid:{port} auth=Basic Z3c6c2VjcmV0")) >= 2,
        "{seen:?}"
    );
    assert!(
        count(format!("token.invalid:{port} auth=Basic Z3c6c2VjcmV0")) == 1,
        "{seen:?}"
    );
    assert!(
        count(format!("secure.invalid:{port} auth=")) >= 2,
        "{seen:?}"
    );
}

#[test]
fn the_streaming_deadline_holds_over_tls() {
    // An HTTPS origin that answers its status line at once, then trickles a header line every
    // 200 ms for 4 s: the 1 s deadline shuts the TLS connection down at 1 s.
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    let certs = TempDir::new();
    certificates(&certs.0);
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())
        .unwrap_or_else(|e| panic!("acceptor: {e}"));
    b.set_private_key_file(certs.0.join("server.key"), SslFiletype::PEM)
        .unwrap_or_else(|e| panic!("{e}"));
    b.set_certificate_chain_file(certs.0.join("server.pem"))
        .unwrap_or_else(|e| panic!("{e}"));
    let acceptor = std::sync::Arc::new(b.build());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::spawn(move || {
        for conn in listener.incoming().take(4).flatten() {
            let acceptor = acceptor.clone();
            std::thread::spawn(move || {
                let Ok(tls) = acceptor.accept(conn) else {
                    return;
                };
                let mut r = BufReader::new(tls);
                loop {
                    let mut line = String::new();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let tls = r.get_mut();
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\n");
                for i in 0..20 {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    if tls
                        .write_all(format!("x-line-{i}: y\r\n").as_bytes())
                        .is_err()
                    {
                        return;
                    }
                }
                let _ = tls.write_all(b"content-length: 4\r\n\r\nlate");
            });
        }
    });
    let yaml = format!(
        "backends:\n  - id: slow\n    url: https://127.0.0.1:{port}\n    timeout: 1s\n    tls:\n      sni: localhost\n      ca_file: certs/ca.pem\napis:\n{}",
        api("a", "slow")
    );
    let gw = start_with_certs(&certs.0, &yaml, &[]);
    let start = std::time::Instant::now();
    let r = gw.get("/a/x", &[]);
    let took = start.elapsed();
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(gw.last_log()["error"], "Timeout");
    assert!(
        took >= std::time::Duration::from_millis(950)
            && took < std::time::Duration::from_millis(2000),
        "{took:?}"
    );
}

/// ARM's backend credentials (`credentials.certificate` thumbprints, `credentials.certificateIds`
/// ids or ARM resource ids) present a configured certificate; ARM's `tls.validateCertificateChain`
/// / `validateCertificateName` turn the checks off; a certificate that is not configured is C068.
#[test]
fn arm_credentials_present_a_configured_certificate_by_thumbprint_or_id() {
    let certs = TempDir::new();
    certificates(&certs.0);
    let port = mtls_origin(&certs.0);
    let thumb = {
        let pem = std::fs::read(certs.0.join("client.pem")).unwrap_or_else(|e| panic!("{e}"));
        let cert = openssl::x509::X509::from_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
        let d = cert
            .digest(openssl::hash::MessageDigest::sha1())
            .unwrap_or_else(|e| panic!("{e}"));
        // As the portal shows it: lower case, colon-separated.
        d.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let arm_id = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim/certificates/gw-client";
    let backend = |id: &str, extra: &str| {
        format!("  - id: {id}\n    url: https://127.0.0.1:{port}\n    protocol: http\n    description: \"{id} from ARM\"\n{extra}")
    };
    let yaml = format!(
        "certificates:\n  - id: gw-client\n    cert_file: certs/client.pem\n    key_file: certs/client.key\nbackends:\n{}{}{}apis:\n{}{}{}",
        backend("by-thumb", &format!("    tls:\n      sni: localhost\n      ca_file: certs/ca.pem\n    credentials:\n      certificate: [\"{thumb}\"]\n")),
        backend("by-id", &format!("    tls:\n      sni: localhost\n      ca_file: certs/ca.pem\n    credentials:\n      certificateIds: [\"{arm_id}\"]\n")),
        backend("unchecked", "    tls:\n      validateCertificateChain: false\n      validateCertificateName: false\n    credentials:\n      certificateIds: [gw-client]\n"),
        api("a", "by-thumb"),
        api("b", "by-id"),
        api("c", "unchecked"),
    );
    let gw = start_with_certs(&certs.0, &yaml, &[]);
    for path in ["/a/x", "/b/x", "/c/x"] {
        let r = gw.get(path, &[]);
        assert_eq!(
            (r.status, r.text()),
            (200, "client=gatehouse-client".to_string()),
            "{path}: {}",
            gw.log()
        );
    }

    // A certificate the configuration does not hold.
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:1\nbackends:\n  - id: x\n    url: https://127.0.0.1:1\n    credentials:\n      certificate: [\"AD36D13743694E49BD05E05CA1316331670A9605\"]\n      certificateIds: [\"/subscriptions/s/providers/Microsoft.ApiManagement/service/a/certificates/nope\"]\napis: []\n",
    );
    let out = check_fails(&dir.0);
    assert!(
        out.contains("C068")
            && out.contains("AD36D13743694E49BD05E05CA1316331670A9605")
            && out.contains("certificates/nope"),
        "{out}"
    );
    assert!(out.contains("gatehouse.yaml:"), "{out}");
}
