//! The policy corpus (`tests/corpus/*.xml`): realistic operation policies covering the idioms
//! of apim-reference.md §3.5. Each document states, in its leading comment, a sample request and
//! what must happen. Every document must `gatehouse check` clean and behave as stated.

mod common;
use common::*;
use std::path::Path;

struct Case {
    name: String,
    xml: String,
    method: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
    expects: Vec<(String, String)>,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let xml = std::fs::read_to_string(&p).unwrap_or_default();
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            let spec = xml
                .split("-->")
                .next()
                .unwrap_or("")
                .trim_start_matches("<!--");
            let mut c = Case {
                name,
                xml: xml.clone(),
                method: "GET".into(),
                query: String::new(),
                headers: vec![],
                body: String::new(),
                expects: vec![],
            };
            for line in spec.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let (k, v) = line.split_once(": ").unwrap_or((line, ""));
                match k {
                    "request" => {
                        let (m, q) = v.split_once(' ').unwrap_or((v, ""));
                        c.method = m.to_string();
                        c.query = q.to_string();
                    }
                    "header" => {
                        let (hk, hv) = v.split_once(": ").unwrap_or((v, ""));
                        c.headers.push((hk.to_string(), hv.to_string()));
                    }
                    "body" => c.body = v.to_string(),
                    other => c.expects.push((other.to_string(), v.to_string())),
                }
            }
            c
        })
        .collect()
}

fn config(origin_port: u16, cases: &[Case]) -> String {
    let mut ops = String::new();
    for c in cases {
        // One operation uses a template parameter; the rest are literal paths (which win).
        let template = if c.name.contains("matched-parameters") {
            "/{name}".to_string()
        } else {
            format!("/{}", c.name)
        };
        ops.push_str(&format!(
            "      - id: {}\n        method: \"*\"\n        url_template: \"{template}\"\n",
            c.name
        ));
    }
    format!(
        "named_values:\n  origin-port:\n    value: \"{origin_port}\"\napis:\n  - id: corpus\n    path: corpus\n    service_url: http://127.0.0.1:{origin_port}/base\n    subscription_required: false\n    operations:\n{ops}"
    )
}

#[test]
fn corpus_has_at_least_forty_documents_and_checks_clean() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} corpus documents", cases.len());
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        &format!(
            "listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: policies\n{}",
            config(1, &cases)
        ),
    );
    for c in &cases {
        dir.write(&format!("policies/apis/corpus/{}.xml", c.name), &c.xml);
    }
    let out = run_cli(&dir.0, &["check", "-c", "gatehouse.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn corpus_documents_behave_as_stated() {
    let origin = Origin::start(|r| Reply::Full(echo_response(r)));
    let cases = cases();
    let files: Vec<(String, String)> = cases
        .iter()
        .map(|c| (format!("apis/corpus/{}.xml", c.name), c.xml.clone()))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let gw = Gatehouse::start(&config(origin.port, &cases), &refs);
    let mut failures = Vec::new();
    for c in &cases {
        let before = origin.count();
        let headers: Vec<(&str, &str)> = c
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = gw.send(
            &c.method,
            &format!("/corpus/{}{}", c.name, c.query),
            &headers,
            c.body.as_bytes(),
        );
        let reached = origin.count() > before;
        let last = if reached { Some(origin.last()) } else { None };
        let mut fail = |what: String| {
            failures.push(format!(
                "{}: {what} (status {}, body {:?})",
                c.name,
                r.status,
                r.text()
            ))
        };
        if !c.expects.iter().any(|(k, _)| k == "expect-status") && r.status != 200 {
            fail("expected status 200".into());
        }
        for (k, v) in &c.expects {
            let origin_header = |name: &str| {
                last.as_ref()
                    .and_then(|q| q.header(name).map(str::to_string))
            };
            match k.as_str() {
                "expect-status" => {
                    if r.status.to_string() != *v {
                        fail(format!("status {} != {v}", r.status));
                    }
                }
                "expect-header" => {
                    let (hn, hv) = v.split_once(": ").unwrap_or((v, ""));
                    if r.header(hn) != Some(hv) {
                        fail(format!(
                            "response header {hn} = {:?}, want {hv:?}",
                            r.header(hn)
                        ));
                    }
                }
                "expect-body-contains" => {
                    if !r.text().contains(v.as_str()) {
                        fail(format!("response body lacks {v:?}"));
                    }
                }
                "expect-origin-header" => {
                    let (hn, hv) = v.split_once(": ").unwrap_or((v, ""));
                    if origin_header(hn).as_deref() != Some(hv) {
                        fail(format!(
                            "origin header {hn} = {:?}, want {hv:?}",
                            origin_header(hn)
                        ));
                    }
                }
                "expect-origin-header-len" => {
                    let (hn, n) = v.split_once(": ").unwrap_or((v, "0"));
                    if origin_header(hn).map(|x| x.len().to_string()).as_deref() != Some(n) {
                        fail(format!(
                            "origin header {hn} = {:?}, want length {n}",
                            origin_header(hn)
                        ));
                    }
                }
                "expect-origin-header-prefix" => {
                    let (hn, p) = v.split_once(": ").unwrap_or((v, ""));
                    if !origin_header(hn).is_some_and(|x| x.starts_with(p)) {
                        fail(format!(
                            "origin header {hn} = {:?}, want prefix {p:?}",
                            origin_header(hn)
                        ));
                    }
                }
                "expect-origin-body-contains" => {
                    let b = last
                        .as_ref()
                        .map(|q| String::from_utf8_lossy(&q.body).into_owned())
                        .unwrap_or_default();
                    if !b.contains(v.as_str()) {
                        fail(format!("origin body {b:?} lacks {v:?}"));
                    }
                }
                "expect-origin-path" => {
                    let p = last.as_ref().map(|q| q.path().to_string());
                    if p.as_deref() != Some(v.as_str()) {
                        fail(format!("origin path {p:?}, want {v:?}"));
                    }
                }
                "expect-log-trace" => {
                    let log = gw.log_for(&format!("/corpus/{}", c.name));
                    if log["traces"][0]["source"] != v.as_str() {
                        fail(format!("no trace {v:?} in {log}"));
                    }
                }
                other => fail(format!("unknown expectation {other}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
