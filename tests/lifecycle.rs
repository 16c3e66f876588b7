//! Restarts under traffic through the real binary (docs/operations.md): SIGTERM drains
//! (readyz 503 at once, accepting through `grace_period`, `Connection: close`, in-flight
//! requests finish) and SIGQUIT hands the sockets to a new process started with `run -u`.
//! Each is measured under load from keep-alive clients: 0 failed requests.

mod common;
use common::*;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Proc {
    child: Child,
    port: u16,
    admin: u16,
    dir: TempDir,
}

impl Proc {
    fn start(origin: u16, grace: &str, shutdown: &str) -> Proc {
        let dir = TempDir::new();
        let (port, admin) = (free_port(), free_port());
        dir.write(
            "gatehouse.yaml",
            &format!(
                "server:\n  threads: 2\n  pid_file: {d}/p.pid\n  upgrade_sock: {d}/u.sock\n  grace_period: {grace}\n  graceful_shutdown_timeout: {shutdown}\nlisteners:\n  - address: 127.0.0.1:{port}\nadmin:\n  address: 127.0.0.1:{admin}\naccess_log: off\napis:\n  - id: l\n    path: l\n    service_url: http://127.0.0.1:{origin}\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n",
                d = dir.0.display()
            ),
        );
        let child = spawn(&dir, &[], "out.log");
        let p = Proc {
            child,
            port,
            admin,
            dir,
        };
        p.wait_ready();
        p
    }

    fn wait_ready(&self) {
        for _ in 0..400 {
            if std::net::TcpStream::connect(("127.0.0.1", self.admin)).is_ok()
                && get(self.admin, "/readyz", &[]).status == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("not ready:\n{}", self.log("out.log"));
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.0.join(name)).unwrap_or_default()
    }

    /// Wait (bounded) for the process to exit; how long that took.
    fn exited_within(&mut self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &TempDir, args: &[&str], log: &str) -> Child {
    let out = std::fs::File::create(dir.0.join(log)).unwrap_or_else(|e| panic!("{e}"));
    let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
    Command::new(bin())
        .arg("run")
        .args(args)
        .arg("-c")
        .arg(dir.0.join("gatehouse.yaml"))
        .env("RUST_LOG", "warn,gatehouse=info")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"))
}

/// Keep-alive clients sending GETs until stopped: (ok, closes seen, failures).
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<(u64, Vec<String>)>>,
}

impl Load {
    fn start(port: u16, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok) = (stop.clone(), ok.clone());
                std::thread::spawn(move || {
                    let mut c = LoadClient::new(port);
                    let mut closes = 0;
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        match c.get("/l/x") {
                            Ok((200, close)) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                closes += u64::from(close);
                            }
                            Ok((status, _)) => failures.push(format!("status {status}")),
                            Err(e) => failures.push(e),
                        }
                    }
                    (closes, failures)
                })
            })
            .collect();
        Load { stop, ok, threads }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut closes = 0;
        let mut failures = Vec::new();
        for t in self.threads {
            if let Ok((c, f)) = t.join() {
                closes += c;
                failures.extend(f);
            }
        }
        (self.ok.load(Ordering::Relaxed), closes, failures)
    }
}

/// No failed request: else the first few failures and the logs.
fn assert_none_failed(ok: u64, failures: &[String], logs: &str) {
    assert!(
        failures.is_empty(),
        "{} failed of {ok}: {:?}\n{logs}",
        failures.len(),
        &failures[..failures.len().min(5)],
    );
}

fn wait_for(what: &str, limit: Duration, f: impl Fn() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what}: not within {limit:?}");
}

#[test]
fn sigterm_drains_without_losing_a_request() {
    // /l/slow takes 1.5 s: started just before the listeners close, it still completes.
    let origin = Origin::start(|r| {
        if r.path() == "/slow" {
            Reply::Delay(Duration::from_millis(1500), echo_response(r))
        } else {
            Reply::Delay(Duration::from_millis(2), echo_response(r))
        }
    });
    let mut p = Proc::start(origin.port, "2s", "3s");
    let load = Load::start(p.port, 16);
    wait_for("load", Duration::from_secs(10), || load.ok() > 500);
    let before = load.ok();
    let signalled = Instant::now();
    p.signal("TERM");
    // readyz says draining at once.
    wait_for("readyz 503", Duration::from_millis(1000), || {
        get(p.admin, "/readyz", &[]).status == 503
    });
    // Through the grace period the listener accepts: new connections and requests succeed.
    std::thread::sleep(Duration::from_millis(1000));
    let r = get(p.port, "/l/new-connection", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    let port = p.port;
    let slow = std::thread::spawn(move || {
        std::panic::catch_unwind(|| get(port, "/l/slow", &[]).status).unwrap_or(0)
    });
    std::thread::sleep(Duration::from_millis(500));
    // The load balancer has long seen readyz 503: clients stop before the listeners close.
    let (ok, closes, failures) = load.finish();
    assert_none_failed(ok, &failures, &p.log("out.log"));
    eprintln!("SIGTERM drain: {ok} requests ok ({before} before the signal), {closes} told to close, 0 failed");
    assert!(ok > before, "requests were served while draining");
    assert!(
        closes >= 16,
        "each kept-alive client was told to close ({closes})"
    );
    assert_eq!(slow.join().ok(), Some(200), "an in-flight request finished");
    let exited = p
        .exited_within(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after the drain"));
    let total = signalled.elapsed();
    assert!(
        total >= Duration::from_millis(2000),
        "left before the grace period: {total:?} ({exited:?})"
    );
}

#[test]
fn sigquit_hands_over_to_the_new_process_without_losing_a_request() {
    let origin = Origin::start(|r| Reply::Delay(Duration::from_millis(2), echo_response(r)));
    let mut old = Proc::start(origin.port, "1s", "2s");
    let load = Load::start(old.port, 16);
    wait_for("load", Duration::from_secs(10), || load.ok() > 500);
    let mut new = spawn(&old.dir, &["-u"], "new.log");
    // The new process waits for the sockets; a SIGHUP meanwhile must not end it (issue 12
    // item 10); then the old one hands the sockets over.
    std::thread::sleep(Duration::from_millis(400));
    let _ = Command::new("kill")
        .args(["-HUP", &new.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        matches!(new.try_wait(), Ok(None)),
        "SIGHUP ended the waiting process"
    );
    let handed = load.ok();
    old.signal("QUIT");
    let exited = old.exited_within(Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let after_exit = load.ok();
    std::thread::sleep(Duration::from_millis(500));
    let (ok, _closes, failures) = load.finish();
    let new_log = std::fs::read_to_string(old.dir.0.join("new.log")).unwrap_or_default();
    let _ = new.kill();
    let _ = new.wait();
    assert!(
        exited.is_some(),
        "the old process did not exit:\n{}",
        old.log("out.log")
    );
    eprintln!("SIGQUIT upgrade: {ok} requests ok ({handed} before the signal, {after_exit} when the old process had exited), {} failed", failures.len());
    assert_none_failed(
        ok,
        &failures,
        &format!("old:\n{}\nnew:\n{new_log}", old.log("out.log")),
    );
    assert!(
        ok > after_exit && after_exit > handed,
        "the new process served after the old one left"
    );
    assert!(!new_log.contains(" ERROR "), "{new_log}");
}

/// A listening address another process holds stops the start with an error naming it; before,
/// Pingora retried the bind for 30 s while `/readyz` said `ready` and the other process took
/// the traffic.
#[test]
fn a_busy_listening_address_stops_the_start() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let busy = held.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let dir = TempDir::new();
    let admin = free_port();
    dir.write(
        "gatehouse.yaml",
        &format!(
            "server:\n  pid_file: {d}/p.pid\n  upgrade_sock: {d}/u.sock\nlisteners:\n  - address: 127.0.0.1:{busy}\nadmin:\n  address: 127.0.0.1:{admin}\n",
            d = dir.0.display()
        ),
    );
    let mut child = spawn(&dir, &[], "busy.log");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break s;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "gatehouse still running 10 s after start on a busy address:\n{}",
                std::fs::read_to_string(dir.0.join("busy.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{status}");
    let log = std::fs::read_to_string(dir.0.join("busy.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("cannot listen on 127.0.0.1:{busy}")),
        "{log}"
    );
    // The admin address was free, and nothing was left listening on it.
    assert!(std::net::TcpListener::bind(("127.0.0.1", admin)).is_ok());
    drop(held);
}

/// The service manager's socket, as systemd gives one to a `Type=notify` unit: a datagram
/// socket the test owns, read message by message.
struct Notify {
    sock: std::os::unix::net::UnixDatagram,
    path: std::path::PathBuf,
    seen: Vec<String>,
}

impl Notify {
    fn new(dir: &TempDir) -> Notify {
        let path = dir.0.join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap_or_else(|e| panic!("{e}"));
        Notify {
            sock,
            path,
            seen: Vec::new(),
        }
    }

    /// The next message that satisfies `f`, within `limit` (messages before it are kept in
    /// `seen`).
    fn until(&mut self, what: &str, limit: Duration, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < limit {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(m.clone());
                if f(&m) {
                    return m;
                }
            }
        }
        panic!(
            "{what}: no such message within {limit:?}; seen {:?}",
            self.seen
        );
    }
}

fn field<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
}

fn spawn_notified(dir: &TempDir, notify: &Notify, log: &str) -> Child {
    let out = std::fs::File::create(dir.0.join(log)).unwrap_or_else(|e| panic!("{e}"));
    let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
    Command::new(bin())
        .arg("run")
        .arg("-c")
        .arg(dir.0.join("gatehouse.yaml"))
        .env("RUST_LOG", "warn,gatehouse=info")
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"))
}

/// sd_notify under a `Type=notify` unit's protocol, read from a socket the test owns: READY=1
/// only once the listener accepts, with MAINPID and STATUS; WATCHDOG=1 at half WatchdogSec;
/// RELOADING=1 with MONOTONIC_USEC around a reload; then SIGUSR2 upgrades to the installed
/// binary under load without a failed request, the new process announcing itself as MAINPID,
/// the old one leaving without STOPPING=1; SIGTERM sends STOPPING=1.
#[test]
fn systemd_notify_and_the_sigusr2_upgrade() {
    let origin = Origin::start(|r| Reply::Delay(Duration::from_millis(2), echo_response(r)));
    let dir = TempDir::new();
    let (port, admin) = (free_port(), free_port());
    let yaml = format!(
        "server:\n  threads: 2\n  pid_file: {d}/p.pid\n  upgrade_sock: {d}/u.sock\n  grace_period: 1s\n  graceful_shutdown_timeout: 2s\nlisteners:\n  - address: 127.0.0.1:{port}\nadmin:\n  address: 127.0.0.1:{admin}\naccess_log: off\napis:\n  - id: l\n    path: l\n    service_url: http://127.0.0.1:{o}\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n",
        d = dir.0.display(),
        o = origin.port
    );
    dir.write("gatehouse.yaml", &yaml);
    let mut notify = Notify::new(&dir);
    let mut old = spawn_notified(&dir, &notify, "out.log");
    let old_pid = old.id();
    let ready = notify.until("READY=1", Duration::from_secs(20), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    // Ready means bound: the listener and the admin listener accept now.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok());
    assert_eq!(field(&ready, "MAINPID"), Some(old_pid.to_string().as_str()));
    assert_eq!(
        field(&ready, "STATUS"),
        Some("serving configuration generation 1")
    );
    // Watchdog at 200 ms: several pings within a second and a half.
    let start = Instant::now();
    for _ in 0..3 {
        notify.until("WATCHDOG=1", Duration::from_secs(2), |m| {
            m.trim_end() == "WATCHDOG=1"
        });
    }
    assert!(start.elapsed() < Duration::from_millis(1500));

    // Reload: RELOADING=1 with MONOTONIC_USEC, then READY=1 with the new generation.
    let _ = Command::new("kill")
        .args(["-HUP", &old_pid.to_string()])
        .status();
    let reloading = notify.until("RELOADING=1", Duration::from_secs(10), |m| {
        m.lines().any(|l| l == "RELOADING=1")
    });
    assert!(
        field(&reloading, "MONOTONIC_USEC").is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n > 0)),
        "{reloading}"
    );
    let reloaded = notify.until("READY=1 after reload", Duration::from_secs(10), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    assert_eq!(
        field(&reloaded, "STATUS"),
        Some("serving configuration generation 2")
    );

    // Upgrade under load.
    let load = Load::start(port, 8);
    wait_for("load", Duration::from_secs(10), || load.ok() > 300);
    let handed = load.ok();
    let _ = Command::new("kill")
        .args(["-USR2", &old_pid.to_string()])
        .status();
    let announced = notify.until("the new process's READY=1", Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "READY=1") && field(m, "MAINPID") != Some(&old_pid.to_string())
    });
    let new_pid: u32 = field(&announced, "MAINPID")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{announced}"));
    let exited = {
        let start = Instant::now();
        loop {
            if let Ok(Some(_)) = old.try_wait() {
                break true;
            }
            if start.elapsed() > Duration::from_secs(20) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    let after_exit = load.ok();
    std::thread::sleep(Duration::from_millis(500));
    let (ok, _closes, failures) = load.finish();
    let log = std::fs::read_to_string(dir.0.join("out.log")).unwrap_or_default();
    assert!(exited, "the old process did not exit:\n{log}");
    assert_none_failed(ok, &failures, &log);
    eprintln!("SIGUSR2 upgrade: {ok} requests ok ({handed} before the signal, {after_exit} when the old process had exited), 0 failed");
    assert!(
        ok > after_exit && after_exit > handed,
        "the new process served after the old one left"
    );
    assert!(
        !notify.seen.iter().any(|m| m.contains("STOPPING=1")),
        "an upgrade is not a stop: {:?}",
        notify.seen
    );
    assert!(log.contains("SIGUSR2: process"), "{log}");

    // The new process serves and stops with STOPPING=1.
    assert_eq!(get(port, "/l/after", &[]).status, 200);
    let _ = Command::new("kill")
        .args(["-TERM", &new_pid.to_string()])
        .status();
    notify.until("STOPPING=1", Duration::from_secs(10), |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20)
        && std::path::Path::new(&format!("/proc/{new_pid}")).exists()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-KILL", &new_pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// SIGUSR2 with a configuration the installed binary refuses: no new process; the running one
/// keeps serving and says why.
#[test]
fn a_refused_upgrade_keeps_the_running_process() {
    let origin = Origin::start(|r| Reply::Full(echo_response(r)));
    let p = Proc::start(origin.port, "1s", "1s");
    p.dir.write(
        "gatehouse.yaml",
        "listeners: [ {address: nowhere} ]\nbogus: 1\n",
    );
    p.signal("USR2");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20)
        && !p.log("out.log").contains("upgrade abandoned")
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = p.log("out.log");
    assert!(log.contains("upgrade abandoned"), "{log}");
    assert!(log.contains("gatehouse.yaml"), "names the file: {log}");
    assert_eq!(get(p.port, "/l/still", &[]).status, 200);
    assert_eq!(get(p.admin, "/readyz", &[]).status, 200);
}

/// Both shipped units pass `systemd-analyze verify` (when it is installed) with the binary
/// path pointed at the one under test: no unknown key, no bad value, the binary executable.
#[test]
fn the_shipped_units_verify() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed; skipped");
        return;
    };
    assert!(out.status.success());
    let dir = TempDir::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (unit, name) in [
        ("gatehouse.service", "gatehouse.service"),
        ("gatehouse@.service", "gatehouse@a.service"),
    ] {
        let text = std::fs::read_to_string(root.join("systemd").join(unit))
            .unwrap_or_else(|e| panic!("{unit}: {e}"));
        assert!(text.contains("\nType=notify\n"), "{unit}");
        assert!(text.contains("\nNotifyAccess=all\n"), "{unit}");
        let text = text.replace("/usr/local/bin/gatehouse", bin());
        let path = dir.0.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{unit}: {}\n{stderr}",
            out.status
        );
    }
}
