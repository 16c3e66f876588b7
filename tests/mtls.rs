//! TLS to backends: a custom CA, and mTLS to a backend that requires a client certificate.
//! Certificates come from the `openssl` command; the origin is an openssl-based HTTPS server on
//! a loopback port that rejects handshakes without a certificate signed by the test CA.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let st = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(st.success(), "openssl {args:?} failed");
}

/// A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, both signed
/// by the CA.
fn certificates(dir: &std::path::Path) {
    let days = ["-days", "1"];
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=gatehouse-test-ca",
            days[0],
            days[1],
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for (name, cn, ext) in [
        ("server", "localhost", true),
        ("client", "gatehouse-client", false),
    ] {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        );
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            days[0],
            days[1],
            "-out",
            &pem,
        ];
        if ext {
            args.extend(["-extfile", "san.ext"]);
        }
        openssl(dir, &args);
    }
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
    let read = |f: &str| std::fs::read_to_string(certs.0.join(f)).unwrap_or_else(|e| panic!("{e}"));
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
    let files = [
        ("certs/ca.pem", read("ca.pem")),
        ("certs/client.pem", read("client.pem")),
        ("certs/client.key", read("client.key")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let gw = Gatehouse::start_with(&yaml, &[], &files);
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
    let read = |f: &str| std::fs::read_to_string(certs.0.join(f)).unwrap_or_else(|e| panic!("{e}"));
    // The backend trusts the test CA but has no client certificate of its own: the policy
    // supplies it.
    let yaml = format!(
        "certificates:\n  - id: gw-client\n    cert_file: certs/client.pem\n    key_file: certs/client.key\nbackends:\n  - id: b\n    url: https://127.0.0.1:{port}\n    tls:\n      sni: localhost\n      ca_file: certs/ca.pem\napis:\n{}{}",
        api("with", "b"),
        api("without", "b")
    );
    let doc = |inbound: &str| {
        format!("<policies><inbound><base />{inbound}</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>")
    };
    let files = [
        ("certs/ca.pem", read("ca.pem")),
        ("certs/client.pem", read("client.pem")),
        ("certs/client.key", read("client.key")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let gw = Gatehouse::start_with(
        &yaml,
        &[
            (
                "apis/with.xml",
                &doc(r#"<authentication-certificate certificate-id="gw-client" />"#),
            ),
            ("apis/without.xml", &doc("")),
        ],
        &files,
    );
    let r = gw.get("/with/x", &[]);
    assert_eq!(
        (r.status, r.text()),
        (200, "client=gatehouse-client".to_string())
    );
    assert_eq!(gw.get("/without/x", &[]).status, 500);
}
