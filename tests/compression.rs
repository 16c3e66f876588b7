//! Response compression through the real binary and curl (docs/configuration.md
//! `compression`): per API over a global default, gzip / br / zstd by what the client accepts
//! (q-values honoured), media-type and size filters, off by default.

mod common;
use common::*;

fn json_body() -> String {
    let items: Vec<String> = (0..200)
        .map(|i| format!("{{\"id\":{i},\"name\":\"item number {i}\",\"tags\":[\"a\",\"b\"]}}"))
        .collect();
    format!("[{}]", items.join(","))
}

fn origin() -> Origin {
    Origin::start(|r| {
        let (ct, body) = match r.path() {
            "/json" => ("application/json; charset=utf-8", json_body()),
            "/problem" => ("application/problem+json", json_body()),
            "/png" => ("image/png", "x".repeat(4096)),
            "/small" => ("application/json", "{\"ok\":true}".to_string()),
            _ => ("text/plain", "?".to_string()),
        };
        Reply::Full(Response::new(200, body).with_header("Content-Type", ct))
    })
}

fn api(id: &str, origin: u16, compression: &str) -> String {
    format!("  - id: {id}\n    path: {id}\n    service_url: http://127.0.0.1:{origin}\n    subscription_required: false\n{compression}    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n")
}

/// (content-encoding, bytes on the wire, decoded body, vary)
fn fetch(port: u16, path: &str, accept: Option<&str>) -> (String, usize, String, String) {
    let mut args = vec![
        "-s".to_string(),
        "--compressed".into(),
        "-D".into(),
        "-".into(),
        "-w".into(),
        "\n%{size_download}".into(),
    ];
    match accept {
        Some(a) => args.extend(["-H".into(), format!("Accept-Encoding: {a}")]),
        None => args.extend(["-H".into(), "Accept-Encoding:".into()]),
    }
    args.push(format!("http://127.0.0.1:{port}{path}"));
    let out = std::process::Command::new("curl")
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, size) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    let header = |n: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    (
        header("content-encoding"),
        size.trim().parse().unwrap_or(0),
        body.to_string(),
        header("vary"),
    )
}

#[test]
fn compression_follows_the_client_and_the_api() {
    let o = origin();
    let yaml = format!(
        "compression:\n  enabled: false\napis:\n{}{}{}",
        api(
            "z",
            o.port,
            "    compression:\n      enabled: true\n      algorithms: [br, zstd, gzip]\n"
        ),
        api(
            "gz",
            o.port,
            "    compression:\n      enabled: true\n      algorithms: [gzip]\n      level: 9\n"
        ),
        api("plain", o.port, "")
    );
    let gw = Gatehouse::start(&yaml, &[]);
    let full = json_body();
    for (accept, want) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, br", "br"), // ties: the API's order
        ("gzip;q=1, br;q=0.5", "gzip"),
        ("br;q=0, gzip;q=0.2", "gzip"),
        ("*", "br"),
        ("identity", ""),
        ("br;q=0", ""),
    ] {
        let (enc, size, body, vary) = fetch(gw.port, "/z/json", Some(accept));
        assert_eq!(enc, want, "Accept-Encoding: {accept}");
        assert_eq!(
            body, full,
            "Accept-Encoding: {accept}: decodes to the original"
        );
        if !want.is_empty() {
            assert!(
                size < full.len() / 3,
                "{accept}: {size} of {} bytes",
                full.len()
            );
            assert!(
                vary.to_lowercase().contains("accept-encoding"),
                "{accept}: Vary {vary:?}"
            );
        } else {
            assert_eq!(size, full.len());
        }
    }
    // application/*+json is in the default list.
    assert_eq!(fetch(gw.port, "/z/problem", Some("gzip")).0, "gzip");
    // Not a compressible type, or below min_size (1024): as it is.
    assert_eq!(fetch(gw.port, "/z/png", Some("gzip")).0, "");
    assert_eq!(fetch(gw.port, "/z/small", Some("gzip")).0, "");
    // No Accept-Encoding: as it is.
    assert_eq!(fetch(gw.port, "/z/json", None).0, "");
    // Only the API's algorithms; a client that accepts none of them gets the body as it is.
    assert_eq!(fetch(gw.port, "/gz/json", Some("br, gzip")).0, "gzip");
    assert_eq!(fetch(gw.port, "/gz/json", Some("br")).0, "");
    // Off by default (and here the top level says off): never.
    assert_eq!(fetch(gw.port, "/plain/json", Some("gzip, br")).0, "");
    let log = gw.log_for("/plain/json");
    assert_eq!(log["status"], 200);
}

/// The top-level `compression` applies to an API without its own; a gateway-made response
/// (return-response) is compressed under the same rules.
#[test]
fn the_global_default_and_gateway_responses() {
    let o = origin();
    let yaml = format!(
        "compression:\n  enabled: true\n  algorithms: [gzip]\n  min_size: 100\napis:\n{}{}",
        api("g", o.port, ""),
        api("off", o.port, "    compression:\n      enabled: false\n")
    );
    let doc = format!(
        r#"<policies><inbound><base /><return-response><set-status code="200" /><set-header name="Content-Type" exists-action="override"><value>text/plain</value></set-header><set-body>{}</set-body></return-response></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
        "gateway says hello. ".repeat(50)
    );
    let gw = Gatehouse::start(&yaml, &[("apis/g/any.xml", &doc)]);
    let (enc, _, body, _) = fetch(gw.port, "/g/anything", Some("gzip"));
    assert_eq!(enc, "gzip");
    assert_eq!(body, "gateway says hello. ".repeat(50));
    assert_eq!(fetch(gw.port, "/off/json", Some("gzip")).0, "");
}
