//! HTTPS listeners and TLS to backends (with and without certificate verification).

mod common;
use common::*;

#[test]
fn https_listener_and_tls_backend() {
    let origin = Origin::echo();
    // The gateway's own HTTPS listener is the TLS backend of the `outer` API.
    let tls_port_placeholder = "TLS_PORT";
    let yaml = format!(
        "backends:\n  - id: self-tls-insecure\n    url: https://127.0.0.1:{tls_port_placeholder}/inner\n    tls:\n      verify_chain: false\n      verify_name: false\n  - id: self-tls-verified\n    url: https://127.0.0.1:{tls_port_placeholder}/inner\napis:\n{}{}{}",
        api_yaml("plain", "plain", &format!("http://127.0.0.1:{}", origin.port), "    subscription_required: false\n", &[("get", "GET", "/")]),
        api_yaml("inner", "inner", &format!("http://127.0.0.1:{}", origin.port), "    subscription_required: false\n", &[("hello", "GET", "/hello")]),
        "  - id: outer\n    path: outer\n    backend: self-tls-insecure\n    subscription_required: false\n    operations:\n      - id: hello\n        method: GET\n        url_template: /hello\n  - id: strict\n    path: strict\n    backend: self-tls-verified\n    subscription_required: false\n    operations:\n      - id: hello\n        method: GET\n        url_template: /hello\n",
    );
    let inner = "<policies><inbound><base /><return-response><set-body>inner over tls</set-body></return-response></inbound></policies>";
    // The TLS port is known only after start: start, point the backends at it, reload.
    let gw = Gatehouse::start_tls(
        &yaml.replace(tls_port_placeholder, "1"),
        &[("apis/inner/hello.xml", inner)],
    );
    let tls_port = gw.tls_port.unwrap_or_else(|| panic!("no tls port"));
    // Point the backends at this instance's TLS port and reload.
    let cfg_path = gw.dir.0.join("gatehouse.yaml");
    let cfg = std::fs::read_to_string(&cfg_path)
        .unwrap_or_default()
        .replace(
            "https://127.0.0.1:1/",
            &format!("https://127.0.0.1:{tls_port}/"),
        );
    std::fs::write(&cfg_path, cfg).unwrap_or_else(|e| panic!("{e}"));
    gw.signal("HUP");
    let mut status = 0;
    for _ in 0..100 {
        status = gw.get("/outer/hello", &[]).status;
        if status == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status, 200, "{}", gw.log());

    let r = gw.send_tls("GET", "/plain/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/");
    let r = gw.get("/outer/hello", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "inner over tls"));
    // Verification on (the default): a self-signed certificate is a connection failure.
    let r = gw.get("/strict/hello", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(
        gw.log_for("/strict/hello")["error"],
        "BackendConnectionFailure"
    );
}
