//! What an operator reads off a running gateway (docs/operations.md, "Metrics"): per-backend
//! and per-pool-member series, the build, the process, a store gauge that means "the configured
//! store answers", and the admin listener's bearer token.

mod common;
use common::*;

/// The value of the series `name{labels}` (labels as rendered, in order), if present.
fn series(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

#[test]
fn per_backend_series_build_process_and_store_up() {
    let ok = Origin::start(|r| Reply::Full(echo_response(r)));
    let failing = Origin::start(|_| Reply::Full(Response::new(503, "down")));
    let dead = free_port();
    let yaml = format!(
        "backends:\n  - id: m1\n    url: http://127.0.0.1:{}\n  - id: m2\n    url: http://127.0.0.1:{}\n  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: m1 }}\n        - {{ id: m2 }}\n  - id: gone\n    url: http://127.0.0.1:{dead}\napis:\n  - id: p\n    path: p\n    backend: pool\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n  - id: g\n    path: g\n    backend: gone\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n",
        ok.port, failing.port
    );
    let gw = Gatehouse::start(&yaml, &[]);
    let mut statuses = (0, 0);
    for i in 0..20 {
        match gw.get(&format!("/p/{i}"), &[]).status {
            200 => statuses.0 += 1,
            503 => statuses.1 += 1,
            s => panic!("status {s}"),
        }
    }
    for i in 0..3 {
        assert_eq!(gw.get(&format!("/g/{i}"), &[]).status, 500);
    }
    let m = get(gw.admin, "/metrics", &[]).text();
    let m1 = series(
        &m,
        "gatehouse_backend_requests_total{backend=\"m1\",outcome=\"2xx\"}",
    );
    let m2 = series(
        &m,
        "gatehouse_backend_requests_total{backend=\"m2\",outcome=\"5xx\"}",
    );
    assert_eq!(m1.unwrap_or(0.0) + m2.unwrap_or(0.0), 20.0, "{m}");
    assert_eq!(m1.unwrap_or(0.0), f64::from(statuses.0), "{m}");
    assert_eq!(m2.unwrap_or(0.0), f64::from(statuses.1), "{m}");
    assert!(statuses.0 > 0 && statuses.1 > 0, "both members took calls");
    assert_eq!(
        series(
            &m,
            "gatehouse_backend_requests_total{backend=\"gone\",outcome=\"BackendConnectionFailure\"}"
        ),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        series(
            &m,
            "gatehouse_backend_request_duration_seconds_count{backend=\"m1\"}"
        ),
        m1,
        "{m}"
    );
    assert!(m.contains("gatehouse_build_info{"), "{m}");
    assert!(
        m.lines()
            .any(|l| l.starts_with("gatehouse_build_info{") && l.ends_with(" 1")),
        "{m}"
    );
    assert!(
        series(&m, "process_resident_memory_bytes").is_some_and(|v| v > 1e6),
        "{m}"
    );
    assert!(
        series(&m, "process_open_fds").is_some_and(|v| v > 3.0),
        "{m}"
    );
    assert!(series(&m, "process_cpu_seconds_total").is_some(), "{m}");
    // The embedded store always answers.
    assert_eq!(series(&m, "gatehouse_store_up"), Some(1.0), "{m}");
}

const TOKEN: &str = "s3cret-admin-token-0123456789";

fn token_config(admin_address: &str) -> String {
    format!(
        "server:\n  threads: 1\n  pid_file: {{dir}}/p.pid\n  upgrade_sock: {{dir}}/u.sock\nlisteners:\n  - address: 127.0.0.1:{{port}}\nadmin:\n  address: {admin_address}\n  echo: true\n  token: admin-token\nnamed_values:\n  admin-token:\n    env: GH_ADMIN_TOKEN\napis: []\n"
    )
}

#[test]
fn the_admin_token_guards_everything_but_the_health_probes() {
    let gw = Gatehouse::start_raw(
        &token_config("127.0.0.1:{admin}"),
        &[("GH_ADMIN_TOKEN", TOKEN)],
    );
    let bearer = format!("Bearer {TOKEN}");
    for path in ["/metrics", "/config", "/echo/x"] {
        let r = get(gw.admin, path, &[]);
        assert_eq!(r.status, 401, "{path} without a token");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"gatehouse-admin\"")
        );
        assert!(!r.text().contains(TOKEN));
        let wrong = format!("Bearer {TOKEN}x");
        assert_eq!(
            get(gw.admin, path, &[("Authorization", &wrong)]).status,
            401
        );
        assert_eq!(
            get(gw.admin, path, &[("Authorization", TOKEN)]).status,
            401,
            "{path}: the scheme is required"
        );
        assert_eq!(
            get(gw.admin, path, &[("Authorization", &bearer)]).status,
            200,
            "{path} with the token"
        );
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(get(gw.admin, path, &[]).status, 200, "{path} stays open");
    }
    assert!(!gw.log().contains(TOKEN), "the token is never logged");
}

/// An admin listener off loopback needs a token; a token naming no named value, or a short
/// one, is refused: `gatehouse check` says so with the place.
#[test]
fn an_open_admin_listener_without_a_token_is_refused() {
    let dir = TempDir::new();
    let port = free_port();
    dir.write(
        "gatehouse.yaml",
        &format!(
            "listeners:\n  - address: 127.0.0.1:{port}\nadmin:\n  address: 0.0.0.0:{}\napis: []\n",
            free_port()
        ),
    );
    let err = check_fails(&dir.0);
    assert!(err.contains("error[C062]"), "{err}");
    assert!(err.contains("gatehouse.yaml:4:"), "{err}");
    dir.write(
        "gatehouse.yaml",
        &format!(
            "listeners:\n  - address: 127.0.0.1:{port}\nadmin:\n  address: 0.0.0.0:{}\n  token: nope\nnamed_values:\n  short:\n    value: abc\napis: []\n",
            free_port()
        ),
    );
    let err = check_fails(&dir.0);
    assert!(
        err.contains("error[C060]") && err.contains("no named value `nope`"),
        "{err}"
    );
    dir.write(
        "gatehouse.yaml",
        &format!(
            "listeners:\n  - address: 127.0.0.1:{port}\nadmin:\n  address: 0.0.0.0:{}\n  token: short\nnamed_values:\n  short:\n    value: abc\napis: []\n",
            free_port()
        ),
    );
    let err = check_fails(&dir.0);
    assert!(err.contains("error[C061]"), "{err}");
    assert!(!err.contains("abc"), "the value is not shown: {err}");
}

/// The access log is written by its own thread in batches: a request never waits for stdout.
/// With the pipe behind stdout full (nobody reads it; a pipe holds 64 KiB, ~150 lines here), a
/// gateway that wrote each line in place would hang in `write` and stop answering. Once the
/// pipe is read, every line arrives, whole and in order.
#[test]
fn an_access_log_nobody_reads_never_stalls_a_request_and_loses_no_line() {
    let origin = Origin::echo();
    let yaml = format!(
        "apis:\n{}",
        api_yaml(
            "a",
            "a",
            &format!("http://127.0.0.1:{}", origin.port),
            OPEN,
            &[("any", "GET", "/{*rest}")]
        )
    );
    let mut gw = Gatehouse::start_piped(&yaml, &[]);
    const N: usize = 600;
    let started = std::time::Instant::now();
    for i in 0..N {
        let r = gw.get(&format!("/a/{i}"), &[]);
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    // Bounded: the harness's client times out a request after 20 s.
    eprintln!("{N} requests in {:?} with stdout unread", started.elapsed());
    let Some(out) = gw.stdout.take() else {
        panic!("started without a stdout pipe")
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut paths = Vec::new();
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            paths.push(v["path"].as_str().unwrap_or_default().to_string());
            if paths.len() == N {
                break;
            }
        }
        let _ = tx.send(paths);
    });
    // All N lines are read with no further request; a missing line shows when the process
    // ends (its stdout closes), so end it after a while.
    let paths = match rx.recv_timeout(std::time::Duration::from_secs(5)) {
        Ok(p) => p,
        Err(_) => {
            gw.signal("TERM");
            rx.recv_timeout(std::time::Duration::from_secs(15))
                .unwrap_or_default()
        }
    };
    let want: Vec<String> = (0..N).map(|i| format!("/a/{i}")).collect();
    assert_eq!(paths, want, "{}", gw.log());
}

/// Lines still queued for the writer thread when the server stops are written before the
/// process exits (`access_log::flush` after Pingora's `run` returns). With the pipe behind stdout
/// full, the writer is stuck in its first batch while the rest of the lines wait in the queue;
/// the pipe is read only after the shutdown has begun, so those lines reach it only through the
/// flush at exit (without it, the process ends with them queued: 115 of 400 arrived).
#[test]
fn lines_queued_when_the_server_stops_are_written_before_the_process_exits() {
    let origin = Origin::echo();
    let yaml = format!(
        "apis:\n{}",
        api_yaml(
            "a",
            "a",
            &format!("http://127.0.0.1:{}", origin.port),
            OPEN,
            &[("any", "GET", "/{*rest}")]
        )
    );
    let mut gw = Gatehouse::start_piped(&yaml, &[]);
    const N: usize = 400;
    for i in 0..N {
        let r = gw.get(&format!("/a/{i}"), &[]);
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    gw.signal("TERM");
    // The harness's grace period and shutdown timeout are 1 s each: by now the server has
    // stopped and the process waits for the writer, stuck on the full pipe.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let Some(out) = gw.stdout.take() else {
        panic!("started without a stdout pipe")
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let paths: Vec<String> = std::io::BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .map(|v| v["path"].as_str().unwrap_or_default().to_string())
            .collect();
        let _ = tx.send(paths);
    });
    // Read to the end: the process closes stdout when it exits.
    let paths = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("the process did not exit:\n{}", gw.log()));
    let want: Vec<String> = (0..N).map(|i| format!("/a/{i}")).collect();
    assert_eq!(paths.len(), N, "{}", gw.log());
    assert_eq!(paths, want);
}
