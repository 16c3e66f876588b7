//! OpenTelemetry export through the real binary (docs/operations.md, "OpenTelemetry"): an OTLP
//! receiver the test starts decodes what the gateway sends (protobuf over HTTP) and finds one
//! SERVER span per request, in the caller's trace, with the inbound / backend / outbound phases
//! as its children, and the ids the backend saw in `traceparent`.

mod common;
use common::*;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An OTLP/HTTP receiver: every span it was sent, and the requests' paths and content types.
struct Receiver {
    port: u16,
    spans: Arc<Mutex<Vec<Span>>>,
    service_names: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

fn receiver() -> Receiver {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let spans = Arc::new(Mutex::new(Vec::new()));
    let service_names = Arc::new(Mutex::new(Vec::new()));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (s, n, q) = (spans.clone(), service_names.clone(), requests.clone());
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let (s, n, q) = (s.clone(), n.clone(), q.clone());
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let mut w = match conn.try_clone() {
                    Ok(w) => w,
                    Err(_) => return,
                };
                let mut r = BufReader::new(conn);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).map_or(true, |n| n == 0) {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (mut len, mut ct) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).map_or(true, |n| n == 0) {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            match k.trim().to_ascii_lowercase().as_str() {
                                "content-length" => len = v.trim().parse().unwrap_or(0),
                                "content-type" => ct = v.trim().to_string(),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    if let Ok(mut g) = q.lock() {
                        g.push((path, ct));
                    }
                    if let Ok(req) = ExportTraceServiceRequest::decode(&body[..]) {
                        for rs in req.resource_spans {
                            let name = rs
                                .resource
                                .iter()
                                .flat_map(|r| r.attributes.iter())
                                .find(|a| a.key == "service.name")
                                .and_then(|a| a.value.as_ref())
                                .map(|v| format!("{:?}", v.value))
                                .unwrap_or_default();
                            if let Ok(mut g) = n.lock() {
                                g.push(name);
                            }
                            for ss in rs.scope_spans {
                                if let Ok(mut g) = s.lock() {
                                    g.extend(ss.spans);
                                }
                            }
                        }
                    }
                    let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    Receiver {
        port,
        spans,
        service_names,
        requests,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(s: &Span, key: &str) -> String {
    s.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .map(|v| format!("{:?}", v.value))
        .unwrap_or_default()
}

#[test]
fn request_spans_go_to_the_collector_in_the_callers_trace() {
    let rx = receiver();
    let origin = Origin::start(|r| Reply::Delay(Duration::from_millis(20), echo_response(r)));
    let yaml = format!(
        "otlp:\n  endpoint: http://127.0.0.1:{}/v1/traces\n  service_name: edge-test\n  batch_delay: 100ms\napis:\n  - id: o\n    path: o\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    operations:\n      - id: item\n        method: GET\n        url_template: \"/items/{{id}}\"\n",
        rx.port, origin.port
    );
    let gw = Gatehouse::start(&yaml, &[]);
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_eq!(gw.get("/o/items/7", &[("traceparent", caller)]).status, 200);
    // Not sampled by the caller: not exported.
    let unsampled = "00-11111111111111111111111111111111-2222222222222222-00";
    assert_eq!(
        gw.get("/o/items/8", &[("traceparent", unsampled)]).status,
        200
    );
    // A request the gateway answers (404): its own trace, one span without a backend phase.
    assert_eq!(gw.get("/nowhere", &[]).status, 404);

    let start = Instant::now();
    while rx.spans.lock().map(|s| s.len()).unwrap_or(0) < 4
        && start.elapsed() < Duration::from_secs(15)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let spans = rx.spans.lock().map(|s| s.clone()).unwrap_or_default();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let root = spans
        .iter()
        .find(|s| hex(&s.trace_id) == trace && s.kind == 2)
        .unwrap_or_else(|| {
            panic!(
                "no server span in the caller's trace: {spans:#?}\n{}",
                gw.log()
            )
        });
    assert_eq!(root.name, "GET /o/items/{id}");
    assert_eq!(
        hex(&root.parent_span_id),
        "00f067aa0ba902b7",
        "the caller's span is the parent"
    );
    assert!(
        attr(root, "http.response.status_code").contains("200"),
        "{root:?}"
    );
    assert!(attr(root, "gatehouse.api").contains("\"o\""), "{root:?}");
    assert!(attr(root, "http.route").contains("/items/{id}"), "{root:?}");
    // The backend was told the same span as its parent.
    let seen = origin
        .requests
        .lock()
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .find(|r| r.path() == "/items/7")
        .and_then(|r| r.header("traceparent").map(str::to_string))
        .unwrap_or_default();
    assert_eq!(seen, format!("00-{trace}-{}-01", hex(&root.span_id)));
    // Phases: children of the request's span, in order, within it.
    let mut phases: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == root.span_id)
        .collect();
    phases.sort_by_key(|s| s.start_time_unix_nano);
    let names: Vec<&str> = phases.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["inbound", "backend", "outbound"], "{spans:#?}");
    for p in &phases {
        assert!(p.start_time_unix_nano >= root.start_time_unix_nano);
        assert!(p.end_time_unix_nano <= root.end_time_unix_nano);
    }
    let backend = phases[1];
    assert!(
        backend.end_time_unix_nano - backend.start_time_unix_nano >= 20_000_000,
        "the backend phase holds the origin's 20 ms"
    );
    assert!(
        !spans
            .iter()
            .any(|s| hex(&s.trace_id) == "11111111111111111111111111111111"),
        "an unsampled trace is not exported"
    );
    let not_found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == 2 && s.name == "GET")
        .collect();
    assert_eq!(
        not_found.len(),
        0,
        "an unrouted request has no trace of its own yet"
    );
    let names = rx
        .service_names
        .lock()
        .map(|n| n.clone())
        .unwrap_or_default();
    assert!(names.iter().all(|n| n.contains("edge-test")), "{names:?}");
    let reqs = rx.requests.lock().map(|r| r.clone()).unwrap_or_default();
    assert!(
        reqs.iter()
            .all(|(p, ct)| p == "/v1/traces" && ct == "application/x-protobuf"),
        "{reqs:?}"
    );
}

/// Off by default: nothing is sent anywhere, and the gateway does not even try.
#[test]
fn no_endpoint_no_export() {
    let origin = Origin::start(|r| Reply::Full(echo_response(r)));
    let gw = Gatehouse::start(
        &format!("apis:\n  - id: o\n    path: o\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n", origin.port),
        &[],
    );
    assert_eq!(gw.get("/o/x", &[]).status, 200);
    assert!(
        !gw.log().contains("exporting request spans"),
        "{}",
        gw.log()
    );
}
