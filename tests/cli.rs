//! The command line: `check` diagnostics (golden files), standalone policy checks, JSON
//! output, `explain`, `version`, `run -t`, and reload on SIGHUP.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn check_output(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = run_cli(dir, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_policies_report_every_problem_with_positions() {
    let (code, _, stderr) =
        check_output(&fixture("bad-policies"), &["check", "-c", "gatehouse.yaml"]);
    assert_eq!(code, 1);
    assert_golden("bad-policies.txt", &stderr);
}

#[test]
fn malformed_config_reports_the_yaml_position() {
    let (code, _, stderr) =
        check_output(&fixture("bad-config"), &["check", "-c", "gatehouse.yaml"]);
    assert_eq!(code, 1);
    assert_golden("bad-config.txt", &stderr);
}

#[test]
fn broken_references_are_all_reported() {
    let (code, _, stderr) = check_output(&fixture("bad-refs"), &["check", "-c", "gatehouse.yaml"]);
    assert_eq!(code, 1);
    assert_golden("bad-refs.txt", &stderr);
}

#[test]
fn run_refuses_a_bad_configuration() {
    let (code, _, stderr) =
        check_output(&fixture("bad-policies"), &["run", "-c", "gatehouse.yaml"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "policies/apis/orders.xml:7:10: error[P010]: unknown policy element <frobnicate>"
        ),
        "{stderr}"
    );
}

#[test]
fn standalone_policy_check_and_json_format() {
    let dir = fixture("standalone");
    let (code, _, stderr) = check_output(
        &dir,
        &["check", "--policy", "doc.xml", "--scope", "operation"],
    );
    assert_eq!(code, 1);
    assert_golden("standalone.txt", &stderr);
    let (code, stdout, _) =
        check_output(&dir, &["check", "--policy", "doc.xml", "--format", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let codes: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert_eq!(codes, ["P030", "P031"]);
    assert_eq!(v[0]["file"], "doc.xml");
    assert_eq!(v[0]["line"], 4);
    let (code, stdout, _) =
        check_output(&dir, &["check", "--policy", "good.xml", "--format", "json"]);
    assert_eq!((code, stdout.trim()), (0, "[]"));
}

#[test]
fn shipped_configuration_checks_clean_and_explains() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, _, stderr) = check_output(root, &["check", "-c", "conf/gatehouse.yaml"]);
    assert_eq!((code, stderr.as_str()), (0, "ok\n"));
    let (code, stdout, stderr) = check_output(
        root,
        &[
            "explain",
            "-c",
            "conf/gatehouse.yaml",
            "--api",
            "echo",
            "--operation",
            "get-order",
            "--product",
            "starter",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_golden("explain-echo-get-order.txt", &stdout);
    let (code, _, stderr) = check_output(
        root,
        &[
            "explain",
            "-c",
            "conf/gatehouse.yaml",
            "--api",
            "echo",
            "--operation",
            "nope",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("API `echo` has no operation `nope`"),
        "{stderr}"
    );
}

#[test]
fn version_and_test_mode() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, stdout, _) = check_output(root, &["version"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("gatehouse "), "{stdout}");
    let (code, _, stderr) = check_output(root, &["run", "-t", "-c", "conf/gatehouse.yaml"]);
    assert_eq!(code, 0, "{stderr}");
}

fn header_doc(v: &str) -> String {
    format!("<policies><inbound><base /></inbound><backend><base /></backend><outbound><base /><set-header name=\"X-Version\" exists-action=\"override\"><value>{v}</value></set-header></outbound><on-error><base /></on-error></policies>")
}

#[test]
fn sighup_reloads_and_a_bad_reload_keeps_the_running_config() {
    let origin = Origin::echo();
    let yaml = format!(
        "apis:\n{}",
        api_yaml(
            "r",
            "r",
            &format!("http://127.0.0.1:{}", origin.port),
            "    subscription_required: false\n",
            &[("get", "GET", "/")]
        )
    );
    let gw = Gatehouse::start(&yaml, &[("apis/r.xml", &header_doc("one"))]);
    assert_eq!(gw.get("/r/", &[]).header("x-version"), Some("one"));

    gw.write_policy("apis/r.xml", &header_doc("two"));
    gw.signal("HUP");
    let mut v = String::new();
    for _ in 0..100 {
        v = gw
            .get("/r/", &[])
            .header("x-version")
            .unwrap_or("")
            .to_string();
        if v == "two" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(v, "two");
    let cfg = get(gw.admin, "/config", &[]).json();
    assert_eq!(cfg["generation"], 2);

    gw.write_policy(
        "apis/r.xml",
        "<policies><inbound><frobnicate /></inbound></policies>",
    );
    gw.signal("HUP");
    let mut failed = false;
    for _ in 0..100 {
        if gw.log().contains("configuration reload failed") {
            failed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(failed, "{}", gw.log());
    assert!(
        gw.log().contains("apis/r.xml:1:21: error[P010]"),
        "{}",
        gw.log()
    );
    assert_eq!(gw.get("/r/", &[]).header("x-version"), Some("two"));
    let metrics = get(gw.admin, "/metrics", &[]).text();
    assert!(
        metrics.contains("gatehouse_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatehouse_config_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
}

#[test]
fn admin_endpoints_and_metrics() {
    let origin = Origin::echo();
    let yaml = format!(
        "apis:\n{}",
        api_yaml(
            "m",
            "m",
            &format!("http://127.0.0.1:{}", origin.port),
            "    subscription_required: false\n",
            &[("get", "GET", "/")]
        )
    );
    let gw = Gatehouse::start(&yaml, &[]);
    assert_eq!(get(gw.admin, "/healthz", &[]).status, 200);
    assert_eq!(get(gw.admin, "/readyz", &[]).status, 200);
    gw.get("/m/", &[]);
    gw.get("/nowhere", &[]);
    gw.last_log();
    let m = get(gw.admin, "/metrics", &[]).text();
    assert!(m.contains(r#"gatehouse_requests_total{api="m",operation="get",producer="backend",status_class="2xx"} 1"#), "{m}");
    assert!(m.contains(r#"gatehouse_requests_total{api="",operation="",producer="gateway",status_class="4xx"} 1"#), "{m}");
    assert!(
        m.contains("gatehouse_request_duration_seconds_bucket{api=\"m\""),
        "{m}"
    );
    assert!(
        m.contains("gatehouse_backend_duration_seconds_count{api=\"m\"} 1"),
        "{m}"
    );
    let e = gw.send("POST", "/echo-not-routed", &[], b"x");
    assert_eq!(e.status, 404);
    let echo = send(gw.admin, "POST", "/echo/a?b=1", &[("X-T", "1")], b"hi").json();
    assert_eq!(
        (
            echo["method"].as_str(),
            echo["path"].as_str(),
            echo["query"].as_str(),
            echo["body"].as_str()
        ),
        (Some("POST"), Some("/echo/a"), Some("b=1"), Some("hi"))
    );
}

#[test]
fn zero_downtime_upgrade_with_dash_u() {
    let origin = Origin::echo();
    let yaml = format!(
        "apis:\n{}",
        api_yaml(
            "u",
            "u",
            &format!("http://127.0.0.1:{}", origin.port),
            "    subscription_required: false\n",
            &[("get", "GET", "/")]
        )
    );
    let gw = Gatehouse::start(&yaml, &[]);
    let mut new = gw.spawn_upgrade();
    // The new process waits for the sockets; the old one hands them over on SIGQUIT.
    std::thread::sleep(Duration::from_millis(500));
    gw.signal("QUIT");
    let mut failures = 0;
    let mut served = 0;
    for _ in 0..60 {
        match std::panic::catch_unwind(|| get(gw.port, "/u/", &[]).status) {
            Ok(200) => served += 1,
            _ => failures += 1,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let new_log = std::fs::read_to_string(gw.dir.0.join("upgrade.log")).unwrap_or_default();
    let _ = new.kill();
    let _ = new.wait();
    assert_eq!(
        failures, 0,
        "requests failed during the upgrade ({served} served)\nnew process:\n{new_log}"
    );
    assert!(new_log.contains("serving 1 API(s)"), "{new_log}");
    assert!(
        new_log.contains(r#""path":"/u/""#),
        "the new process served no request:\n{new_log}"
    );
}

#[test]
fn daemon_mode_writes_the_pid_file_and_serves() {
    let dir = TempDir::new();
    let (port, admin) = (free_port(), free_port());
    let pid_file = dir.0.join("d.pid");
    dir.write(
        "gatehouse.yaml",
        &format!(
            "server:\n  pid_file: {}\n  upgrade_sock: {}/u.sock\nlisteners:\n  - address: 127.0.0.1:{port}\nadmin:\n  address: 127.0.0.1:{admin}\naccess_log: off\npolicies:\n  dir: policies\napis:\n  - id: d\n    path: d\n    service_url: http://127.0.0.1:1\n    subscription_required: false\n    operations:\n      - id: get\n        method: GET\n        url_template: /\n",
            pid_file.display(),
            dir.0.display()
        ),
    );
    dir.write("policies/apis/d/get.xml", "<policies><inbound><return-response><set-body>daemon</set-body></return-response></inbound></policies>");
    // The daemon keeps inherited stdio open, so do not capture it.
    let status = std::process::Command::new(bin())
        .current_dir(&dir.0)
        .args(["run", "-d", "-c", "gatehouse.yaml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    let mut pid = String::new();
    for _ in 0..100 {
        pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .to_string();
        if !pid.is_empty() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pid.is_empty(), "no pid file");
    let r = get(port, "/d/", &[]);
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(&pid)
        .status();
    assert_eq!((r.status, r.text().as_str()), (200, "daemon"));
}
