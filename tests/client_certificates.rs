//! TLS listeners with client certificates, several certificates by SNI and certificates read
//! again on SIGHUP (docs/configuration.md `listeners[].tls`), and the validate-client-certificate
//! policy with `context.Request.Certificate` (docs/policies.md), through the real binary, curl
//! and a PKI the test makes.

mod common;
use common::*;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};
use std::path::Path;
use std::time::Duration;

struct Cert {
    cert: X509,
    key: PKey<Private>,
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap_or_else(|e| panic!("{e}"));
    PKey::from_ec_key(EcKey::generate(&group).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A certificate for `subject` (`(field, value)`), signed by `issuer` (self-signed without),
/// valid from `from` to `to` days from now.
fn make(
    subject: &[(&str, &str)],
    dns: &[&str],
    issuer: Option<&Cert>,
    ca: bool,
    serial: u32,
    (from, to): (i64, i64),
) -> Cert {
    let k = key();
    let build = || -> Result<X509, openssl::error::ErrorStack> {
        let mut name = X509Name::builder()?;
        for (f, v) in subject {
            name.append_entry_by_text(f, v)?;
        }
        let name = name.build();
        let mut b = X509::builder()?;
        b.set_version(2)?;
        let bn = BigNum::from_u32(serial)?;
        let sn = Asn1Integer::from_bn(&bn)?;
        b.set_serial_number(&sn)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))?;
        b.set_pubkey(&k)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let (nb, na) = (
            Asn1Time::from_unix(now + from * 86_400)?,
            Asn1Time::from_unix(now + to * 86_400)?,
        );
        b.set_not_before(&nb)?;
        b.set_not_after(&na)?;
        if ca {
            b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            b.append_extension(KeyUsage::new().key_cert_sign().crl_sign().build()?)?;
        }
        if !dns.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for d in dns {
                san.dns(d);
            }
            let ext = san.build(&b.x509v3_context(issuer.map(|i| &*i.cert), None))?;
            b.append_extension(ext)?;
        }
        b.sign(issuer.map_or(&k, |i| &i.key), MessageDigest::sha256())?;
        Ok(b.build())
    };
    Cert {
        cert: build().unwrap_or_else(|e| panic!("{e}")),
        key: k,
    }
}

fn write(dir: &Path, name: &str, c: &Cert) {
    let pem = c.cert.to_pem().unwrap_or_else(|e| panic!("{e}"));
    let key = c
        .key
        .private_key_to_pem_pkcs8()
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join(format!("{name}.pem")), pem).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join(format!("{name}.key")), key).unwrap_or_else(|e| panic!("{e}"));
}

fn thumbprint(c: &Cert) -> String {
    c.cert
        .digest(MessageDigest::sha1())
        .map(|d| d.iter().map(|b| format!("{b:02X}")).collect())
        .unwrap_or_default()
}

/// A CRL from `ca` revoking `revoked`, written by `openssl ca -gencrl` (the crate builds none).
fn crl(dir: &Path, revoked: &Path) {
    let db = dir.join("ca-db");
    std::fs::create_dir_all(&db).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(db.join("index.txt"), "").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(db.join("crlnumber"), "01\n").unwrap_or_else(|e| panic!("{e}"));
    let cnf = format!(
        "[ca]\ndefault_ca = gh\n[gh]\ndatabase = {db}/index.txt\ncrlnumber = {db}/crlnumber\ncertificate = {d}/ca.pem\nprivate_key = {d}/ca.key\ndefault_md = sha256\ndefault_crl_days = 30\nnew_certs_dir = {db}\npolicy = p\n[p]\ncommonName = supplied\n",
        db = db.display(),
        d = dir.display()
    );
    std::fs::write(dir.join("ca.cnf"), cnf).unwrap_or_else(|e| panic!("{e}"));
    for args in [
        vec![
            "ca",
            "-config",
            "ca.cnf",
            "-revoke",
            &revoked.to_string_lossy(),
        ],
        vec!["ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem"],
    ] {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

struct Pki {
    ca: Cert,
    good: Cert,
}

/// ca, server (localhost), other (other.example), good / expired / future / revoked client
/// certificates from ca, and rogue (its own CA); with a CRL revoking `revoked`.
fn pki(dir: &Path) -> Pki {
    let ca = make(
        &[("CN", "Test Client CA"), ("O", "Contoso, Inc.")],
        &[],
        None,
        true,
        1,
        (-1, 30),
    );
    write(dir, "ca", &ca);
    let server = make(
        &[("CN", "localhost")],
        &["localhost"],
        Some(&ca),
        false,
        2,
        (-1, 30),
    );
    write(dir, "server", &server);
    let other = make(
        &[("CN", "other.example")],
        &["other.example"],
        Some(&ca),
        false,
        3,
        (-1, 30),
    );
    write(dir, "other", &other);
    let client = |cn: &str, serial: u32, days: (i64, i64)| {
        make(
            &[("C", "US"), ("O", "Contoso, Inc."), ("CN", cn)],
            &[cn],
            Some(&ca),
            false,
            serial,
            days,
        )
    };
    let good = client("client.example", 10, (-1, 30));
    write(dir, "good", &good);
    write(dir, "expired", &client("client.example", 11, (-30, -1)));
    write(dir, "future", &client("client.example", 12, (2, 30)));
    write(dir, "revoked", &client("client.example", 13, (-1, 30)));
    let rogue_ca = make(&[("CN", "Rogue CA")], &[], None, true, 1, (-1, 30));
    write(
        dir,
        "rogue",
        &make(
            &[
                ("C", "US"),
                ("O", "Contoso, Inc."),
                ("CN", "client.example"),
            ],
            &["client.example"],
            Some(&rogue_ca),
            false,
            10,
            (-1, 30),
        ),
    );
    crl(dir, &dir.join("revoked.pem"));
    Pki { ca, good }
}

fn curl(dir: &Path, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new("curl")
        .current_dir(dir)
        .args(["-s", "-S", "--max-time", "10", "-k"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// curl with a client certificate `name` (or none): (status, body).
fn call(dir: &Path, url: &str, name: Option<&str>) -> (String, String) {
    call_as(dir, url, name, "curl")
}

/// `call` with this User-Agent (which the access log records: a line to wait for).
fn call_as(dir: &Path, url: &str, name: Option<&str>, agent: &str) -> (String, String) {
    let mut args = vec![
        "-w".to_string(),
        "\n%{http_code}".to_string(),
        "-A".to_string(),
        agent.to_string(),
    ];
    if let Some(n) = name {
        args.extend([
            "--cert".into(),
            format!("{n}.pem"),
            "--key".into(),
            format!("{n}.key"),
        ]);
    }
    args.push(url.to_string());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, err) = curl(dir, &a);
    let (body, status) = out.rsplit_once('\n').unwrap_or(("", &out));
    (
        if status.is_empty() {
            err
        } else {
            status.to_string()
        },
        body.to_string(),
    )
}

const CHECKED: &str = r#"<policies><inbound><base /><validate-client-certificate validate-revocation="true" validate-trust="true" validate-not-before="true" validate-not-after="true" ignore-error="false"><identities><identity subject="CN=client.example, O=&quot;Contoso, Inc.&quot;, C=US" dns-name="client.example" /><identity thumbprint="0000" /></identities></validate-client-certificate><return-response><set-status code="200" /><set-body>@(context.Request.Certificate.Thumbprint + "|" + context.Request.Certificate.Subject + "|" + context.Request.Certificate.Issuer)</set-body></return-response></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /><set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason + ": " + context.LastError.Message)</value></set-header></on-error></policies>"#;

const BY_ISSUER: &str = r#"<policies><inbound><base /><validate-client-certificate validate-revocation="false"><identities><identity issuer-certificate-id="client-ca" common-name="client.example" /></identities></validate-client-certificate><return-response><set-status code="200" /><set-body>issuer ok</set-body></return-response></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;

const LENIENT: &str = r#"<policies><inbound><base /><validate-client-certificate validate-revocation="false" validate-trust="false" validate-not-after="false" ignore-error="true" /><return-response><set-status code="200" /><set-body>@(context.Request.Certificate == null ? "none" : context.Request.Certificate.Subject)</set-body></return-response></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;

fn api(id: &str) -> String {
    format!("  - id: {id}\n    path: {id}\n    service_url: http://127.0.0.1:9\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n")
}

fn config(tls_extra: &str) -> String {
    format!(
        "server:\n  threads: 1\n  pid_file: {{dir}}/p.pid\n  upgrade_sock: {{dir}}/u.sock\nlisteners:\n  - address: 127.0.0.1:{{port}}\n  - address: 127.0.0.1:{{tls}}\n    tls:\n      cert: server.pem\n      key: server.key\n{tls_extra}admin:\n  address: 127.0.0.1:{{admin}}\naccess_log: stdout\npolicies:\n  dir: policies\ntrust:\n  ca_files: [ca.pem]\n  crl_files: [crl.pem]\ncertificates:\n  - id: client-ca\n    cert_file: ca.pem\napis:\n{}{}{}{}",
        api("checked"),
        api("issuer"),
        api("lenient"),
        api("fields")
    )
}

fn start(dir: &TempDir, tls_extra: &str) -> Gatehouse {
    let files: Vec<(String, String)> = std::fs::read_dir(&dir.0)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    let mut all: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    all.push(("policies/apis/checked.xml", CHECKED));
    all.push(("policies/apis/issuer.xml", BY_ISSUER));
    all.push(("policies/apis/lenient.xml", LENIENT));
    // Serial number (hex, leading zero), issuer subject (quoted as .NET writes a DN with a
    // comma) and issuer thumbprint (the CA's, read from the PKI the test made).
    let ca = std::fs::read(dir.0.join("ca.pem")).unwrap_or_default();
    let ca_thumb = X509::from_pem(&ca)
        .map(|c| {
            thumbprint(&Cert {
                cert: c,
                key: key(),
            })
        })
        .unwrap_or_default();
    let fields = format!(
        r#"<policies><inbound><base /><validate-client-certificate validate-revocation="false"><identities><identity serial-number="0a" issuer-subject="O=&quot;Contoso, Inc.&quot;, CN=Test Client CA" issuer-thumbprint="{}" /></identities></validate-client-certificate><return-response><set-status code="200" /><set-body>fields ok</set-body></return-response></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
        ca_thumb.to_lowercase()
    );
    all.push(("policies/apis/fields.xml", fields.as_str()));
    Gatehouse::start_raw_with(&config(tls_extra), &all, true)
}

#[test]
fn validate_client_certificate_rules_identities_and_context() {
    let pki_dir = TempDir::new();
    let p = pki(&pki_dir.0);
    let gw = start(&pki_dir, "      client_cert: request\n");
    let dir = &gw.dir.0;
    let url = |api: &str| format!("https://localhost:{}/{api}/x", gw.tls_port.unwrap_or(0));

    let (status, body) = call(dir, &url("checked"), Some("good"));
    assert_eq!(status, "200", "{body}\n{}", gw.log());
    assert_eq!(
        body,
        format!(
            "{}|CN=client.example, O=\"Contoso, Inc.\", C=US|O=\"Contoso, Inc.\", CN=Test Client CA",
            thumbprint(&p.good)
        )
        .replace('"', ""),
        "context.Request.Certificate as .NET shows it"
    );
    for (cert, why) in [
        (None, "the request carries no client certificate."),
        (Some("rogue"), "does not chain to a trusted ca."),
        (Some("expired"), "the client certificate has expired."),
        (Some("future"), "the client certificate is not valid yet."),
        (Some("revoked"), "the client certificate is revoked"),
    ] {
        let agent = format!("case-{cert:?}");
        let (status, body) = call_as(dir, &url("checked"), cert, &agent);
        assert_eq!(status, "403", "{cert:?}: {body}");
        assert!(
            body.contains("Invalid client certificate."),
            "{cert:?}: {body}"
        );
        // curl is not the harness's client, so `last_log` cannot know to wait: wait here
        // (bounded) for this request's line (its own User-Agent), written after the response.
        let mut log = serde_json::Value::Null;
        for _ in 0..300 {
            if let Some(l) = gw
                .access_log()
                .into_iter()
                .rfind(|l| l["user_agent"] == agent.as_str())
            {
                log = l;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(log["error"], "ClientCertificateNotValid", "{log}");
        // The message says which rule failed, to on-error.
        let mut args = vec!["-s", "-k", "-D", "-", "-o", "/dev/null"];
        let (pem, key) = cert.map_or((String::new(), String::new()), |c| {
            (format!("{c}.pem"), format!("{c}.key"))
        });
        if cert.is_some() {
            args.extend(["--cert", pem.as_str(), "--key", key.as_str()]);
        }
        let u = url("checked");
        args.push(&u);
        let out = std::process::Command::new("curl")
            .current_dir(dir)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(
            head.contains(&format!("x-reason: clientcertificatenotvalid: {why}"))
                || head.contains(why),
            "{cert:?}: {head}"
        );
    }

    // issuer-certificate-id: signed by the configured certificate `client-ca`.
    assert_eq!(call(dir, &url("issuer"), Some("good")).0, "200");
    assert_eq!(call(dir, &url("issuer"), Some("rogue")).0, "403");

    // serial-number, issuer-subject and issuer-thumbprint together: the good certificate
    // (serial 10) matches; the rogue one (also serial 10, another issuer) does not, nor does
    // another certificate of the right CA (serial 13).
    assert_eq!(
        call(dir, &url("fields"), Some("good")),
        ("200".into(), "fields ok".into())
    );
    assert_eq!(call(dir, &url("fields"), Some("rogue")).0, "403");
    assert_eq!(
        call(dir, &url("fields"), Some("revoked")).0,
        "403",
        "serial 13 is not 0a"
    );

    // ignore-error: the request goes on; the certificate (or null) is there.
    assert_eq!(
        call(dir, &url("lenient"), None),
        ("200".into(), "none".into())
    );
    let (status, body) = call(dir, &url("lenient"), Some("rogue"));
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("200", "CN=client.example, O=Contoso, Inc., C=US")
    );
    // Plain HTTP: no certificate.
    let r = get(gw.port, "/lenient/x", &[]);
    assert_eq!(r.text(), "none");
    let _ = p.ca;
}

#[test]
fn require_with_a_client_ca_refuses_the_handshake() {
    let pki_dir = TempDir::new();
    pki(&pki_dir.0);
    let gw = start(
        &pki_dir,
        "      client_cert: require\n      client_ca: ca.pem\n",
    );
    let dir = &gw.dir.0;
    let url = format!("https://localhost:{}/lenient/x", gw.tls_port.unwrap_or(0));
    assert_eq!(
        call(dir, &url, Some("good")),
        (
            "200".into(),
            "CN=client.example, O=Contoso, Inc., C=US".into()
        )
    );
    let (status, _) = call(dir, &url, None);
    assert_ne!(status, "200", "no certificate: no request");
    let (status, _) = call(dir, &url, Some("rogue"));
    assert_ne!(status, "200", "a certificate from another CA: no request");
    // The CA is named to clients as an acceptable issuer.
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", gw.tls_port.unwrap_or(0)),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Acceptable client certificate CA names"),
        "{text}"
    );
    assert!(
        text.contains("CN = Test Client CA") || text.contains("CN=Test Client CA"),
        "{text}"
    );
}

/// The subject of the certificate a TLS listener serves for `name`.
fn served_subject(dir: &Path, port: u16, name: &str) -> String {
    let (_, err) = curl(
        dir,
        &[
            "-v",
            "-o",
            "/dev/null",
            "--resolve",
            &format!("{name}:{port}:127.0.0.1"),
            &format!("https://{name}:{port}/lenient/x"),
        ],
    );
    err.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("* ")
                .and_then(|l| l.trim().strip_prefix("subject: "))
        })
        .unwrap_or_else(|| panic!("no subject in\n{err}"))
        .to_string()
}

#[test]
fn certificates_by_sni_and_reloaded_on_sighup() {
    let pki_dir = TempDir::new();
    let p = pki(&pki_dir.0);
    let gw = start(
        &pki_dir,
        "      certificates:\n        - cert: other.pem\n          key: other.key\n",
    );
    let dir = gw.dir.0.clone();
    let port = gw.tls_port.unwrap_or(0);
    assert_eq!(served_subject(&dir, port, "localhost"), "CN=localhost");
    assert_eq!(
        served_subject(&dir, port, "other.example"),
        "CN=other.example"
    );
    assert_eq!(
        served_subject(&dir, port, "unknown.example"),
        "CN=localhost",
        "the default"
    );

    // A new certificate on disk is served after SIGHUP.
    let renewed = make(
        &[("CN", "localhost"), ("O", "Renewed")],
        &["localhost"],
        Some(&p.ca),
        false,
        20,
        (-1, 30),
    );
    write(&dir, "server", &renewed);
    gw.signal("HUP");
    let start = std::time::Instant::now();
    while served_subject(&dir, port, "localhost") != "O=Renewed, CN=localhost"
        && served_subject(&dir, port, "localhost") != "CN=localhost, O=Renewed"
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let now = served_subject(&dir, port, "localhost");
    assert!(now.contains("Renewed"), "{now}\n{}", gw.log());

    // A broken one is refused: the renewed certificate stays in service.
    std::fs::write(dir.join("server.pem"), "not a certificate").unwrap_or_else(|e| panic!("{e}"));
    gw.signal("HUP");
    let start = std::time::Instant::now();
    while !gw.log().contains("certificates not reloaded")
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        gw.log()
            .contains("certificates not reloaded; keeping those in service"),
        "{}",
        gw.log()
    );
    assert!(served_subject(&dir, port, "localhost").contains("Renewed"));
    assert_eq!(get(gw.port, "/lenient/x", &[]).status, 200);
}

#[test]
fn check_reports_listener_certificate_problems() {
    let dir = TempDir::new();
    pki(&dir.0);
    // The key of another certificate.
    std::fs::copy(dir.0.join("other.key"), dir.0.join("server.key"))
        .unwrap_or_else(|e| panic!("{e}"));
    dir.write(
        "gatehouse.yaml",
        &format!(
            "listeners:\n  - address: 127.0.0.1:{}\n    tls:\n      cert: server.pem\n      key: server.key\n      client_cert: request\ntrust:\n  crl_files: [ca.pem]\napis: []\n",
            free_port()
        ),
    );
    let err = check_fails(&dir.0);
    assert!(
        err.contains("error[C064]") && err.contains("server.key: is not the key of server.pem"),
        "{err}"
    );
    assert!(err.contains("gatehouse.yaml:4:"), "{err}");
    assert!(
        err.contains("error[C065]") && err.contains("no PEM certificate revocation list"),
        "{err}"
    );
}
