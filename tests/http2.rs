//! HTTP/2 to the backend: `http-version="2"` speaks h2 (here h2c with prior knowledge on
//! loopback) on the streaming path and on the engine's path (inside retry).

mod common;
use common::*;

/// An origin that speaks only HTTP/2 (h2c) and answers with the method and path it saw.
fn method_and_path_origin() -> u16 {
    h2_origin(|req, mut respond| async move {
        let body = format!("h2 {} {}", req.method(), req.uri().path());
        let Ok(resp) = ::http::Response::builder()
            .status(200)
            .header("content-length", body.len())
            .body(())
        else {
            return;
        };
        if let Ok(mut send) = respond.send_response(resp, false) {
            let _ = send.send_data(bytes::Bytes::from(body), true);
        }
    })
}

#[test]
fn http2_to_the_backend_on_both_paths() {
    let port = method_and_path_origin();
    let yaml = format!(
        "backends:\n  - id: h2\n    url: http://127.0.0.1:{port}\napis:\n{}{}{}",
        api("stream"),
        api("engine"),
        api("h1")
    );
    let doc = |backend: &str| {
        format!("<policies><inbound><base /></inbound><backend>{backend}</backend><outbound><base /></outbound><on-error><base /></on-error></policies>")
    };
    let gw = Gatehouse::start(
        &yaml,
        &[
            (
                "apis/stream/any.xml",
                &doc(r#"<forward-request http-version="2" />"#),
            ),
            (
                "apis/engine/any.xml",
                &doc(
                    r#"<retry condition="@(false)" count="1" interval="0"><forward-request http-version="2" /></retry>"#,
                ),
            ),
            (
                "apis/h1/any.xml",
                &doc(r#"<forward-request http-version="1" />"#),
            ),
        ],
    );
    let r = gw.get("/stream/orders", &[]);
    assert_eq!((r.status, r.text()), (200, "h2 GET /orders".to_string()));
    let r = gw.get("/engine/orders", &[]);
    assert_eq!((r.status, r.text()), (200, "h2 GET /orders".to_string()));
    // The same origin over HTTP/1.1 fails: the setting is what made it work.
    assert_eq!(gw.get("/h1/orders", &[]).status, 500);
}

fn api(id: &str) -> String {
    format!("  - id: {id}\n    path: {id}\n    backend: h2\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n")
}
