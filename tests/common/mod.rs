//! Test harness: runs the real `gatehouse` binary with a generated configuration in a fresh
//! temporary directory, on ephemeral loopback ports.

#![allow(dead_code)]

pub mod http;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[allow(unused_imports)]
pub use self::http::{
    echo_response, get, raw, send, KeepAlive, LoadClient, Origin, RawReply, Reply, Request,
    Response,
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("gatehouse-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        TempDir(p)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port, never handed out twice in this test process: the kernel may give a
/// just-closed port again to the next probe, and tests run in parallel threads.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    for _ in 0..1000 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.insert(port) {
            return port;
        }
    }
    panic!("no free port not handed out before");
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gatehouse")
}

pub fn openssl(dir: &std::path::Path, args: &[&str]) {
    let st = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(st.success(), "openssl {args:?} failed");
}

/// An h2c (HTTP/2 with prior knowledge) origin on a free loopback port: each request stream
/// goes to `serve` on a task of its own. Returns the port.
pub fn h2_origin<F, Fut>(serve: F) -> u16
where
    F: Fn(::http::Request<h2::RecvStream>, h2::server::SendResponse<bytes::Bytes>) -> Fut
        + Send
        + Sync
        + Copy
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .unwrap_or_else(|e| panic!("listener: {e}"));
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(sock).await else {
                        return;
                    };
                    while let Some(Ok((req, respond))) = conn.accept().await {
                        tokio::spawn(serve(req, respond));
                    }
                });
            }
        });
    });
    port
}

/// A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, both signed
/// by the CA.
pub fn certificates(dir: &std::path::Path) {
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

/// A self-signed certificate for `localhost`: `cert.pem` and `key.pem` in `dir`.
pub fn self_signed(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ],
    );
}

/// A configuration directory with `files`, free ports for the listener and the admin listener,
/// and with `tls` a self-signed certificate and a port for an HTTPS listener.
fn prepare(files: &[(&str, &str)], tls: bool) -> (TempDir, u16, u16, Option<u16>) {
    let dir = TempDir::new();
    for (p, c) in files {
        dir.write(p, c);
    }
    let (port, admin) = (free_port(), free_port());
    let tls_port = tls.then(|| {
        self_signed(&dir.0);
        free_port()
    });
    (dir, port, admin, tls_port)
}

fn fill(yaml: &str, dir: &TempDir, port: u16, admin: u16, tls: Option<u16>) -> String {
    yaml.replace("{port}", &port.to_string())
        .replace("{admin}", &admin.to_string())
        .replace("{tls}", &tls.map(|p| p.to_string()).unwrap_or_default())
        .replace("{dir}", &dir.0.display().to_string())
}

/// The configuration a test gives, completed with listeners, admin and server settings.
fn full_config(dir: &Path, port: u16, admin: u16, tls_port: Option<u16>, body: &str) -> String {
    let tls = tls_port.map_or(String::new(), |p| {
        format!("  - address: 127.0.0.1:{p}\n    tls:\n      cert: cert.pem\n      key: key.pem\n")
    });
    format!(
        "server:\n  threads: 1\n  pid_file: {d}/gatehouse.pid\n  upgrade_sock: {d}/upgrade.sock\n  grace_period: 1s\n  graceful_shutdown_timeout: 1s\nlisteners:\n  - address: 127.0.0.1:{port}\n{tls}admin:\n  address: 127.0.0.1:{admin}\n  echo: true\naccess_log: stdout\npolicies:\n  dir: policies\n{body}",
        d = dir.display()
    )
}

pub struct Gatehouse {
    pub port: u16,
    /// The HTTPS listener, when started with `start_tls`.
    pub tls_port: Option<u16>,
    pub admin: u16,
    pub dir: TempDir,
    child: Child,
    /// Requests sent through `get` / `send`, to wait for their access-log lines.
    sent: AtomicUsize,
    /// The process's stdout (the access log), when started with `start_piped`.
    pub stdout: Option<std::process::ChildStdout>,
}

impl Gatehouse {
    /// Start with `yaml` (apis, backends, …) and policy files (paths relative to `policies/`).
    pub fn start(yaml: &str, policies: &[(&str, &str)]) -> Gatehouse {
        Gatehouse::start_with(yaml, policies, &[])
    }

    /// Like `start`, with extra files relative to the configuration directory.
    pub fn start_with(yaml: &str, policies: &[(&str, &str)], files: &[(&str, &str)]) -> Gatehouse {
        Gatehouse::start_full(yaml, policies, files, false, &[], false, &[])
    }

    /// Like `start`, with the access log (stdout) going to a pipe the test reads, or leaves
    /// unread: `stdout`. The process log still goes to `log()`.
    pub fn start_piped(yaml: &str, policies: &[(&str, &str)]) -> Gatehouse {
        Gatehouse::start_full(yaml, policies, &[], false, &[], true, &[])
    }

    /// Like `start_with_env`, with extra arguments after `run -c FILE` (`--apiops DIR`, say).
    pub fn start_with_args(
        yaml: &str,
        files: &[(&str, &str)],
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Gatehouse {
        Gatehouse::start_full(yaml, &[], files, false, env, false, args)
    }

    /// Like `start_with`, with extra environment variables for the process.
    pub fn start_with_env(
        yaml: &str,
        policies: &[(&str, &str)],
        files: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Gatehouse {
        Gatehouse::start_full(yaml, policies, files, false, env, false, &[])
    }

    /// With an extra HTTPS listener using a fresh self-signed certificate for `localhost`.
    pub fn start_tls(yaml: &str, policies: &[(&str, &str)]) -> Gatehouse {
        Gatehouse::start_full(yaml, policies, &[], true, &[], false, &[])
    }

    /// Start from a whole configuration of the test's own: `{port}`, `{admin}` and `{dir}` in
    /// `yaml` are filled in.
    pub fn start_raw(yaml: &str, env: &[(&str, &str)]) -> Gatehouse {
        Gatehouse::on_free_ports(|| {
            let dir = TempDir::new();
            let (port, admin) = (free_port(), free_port());
            dir.write("gatehouse.yaml", &fill(yaml, &dir, port, admin, None));
            Gatehouse::try_spawn(dir, port, admin, None, env, false, &[])
        })
    }

    /// `start_raw` with files (relative to the configuration directory) and, with `tls`, a
    /// self-signed `cert.pem` / `key.pem` for `localhost` and `{tls}` filled with a free port.
    pub fn start_raw_with(yaml: &str, files: &[(&str, &str)], tls: bool) -> Gatehouse {
        Gatehouse::on_free_ports(|| {
            let (dir, port, admin, tls_port) = prepare(files, tls);
            dir.write("gatehouse.yaml", &fill(yaml, &dir, port, admin, tls_port));
            Gatehouse::try_spawn(dir, port, admin, tls_port, &[], false, &[])
        })
    }

    fn start_full(
        yaml: &str,
        policies: &[(&str, &str)],
        files: &[(&str, &str)],
        tls: bool,
        env: &[(&str, &str)],
        piped: bool,
        args: &[&str],
    ) -> Gatehouse {
        Gatehouse::on_free_ports(|| {
            let (dir, port, admin, tls_port) = prepare(files, tls);
            dir.write(
                "gatehouse.yaml",
                &full_config(&dir.0, port, admin, tls_port, yaml),
            );
            for (p, c) in policies {
                dir.write(&format!("policies/{p}"), c);
            }
            Gatehouse::try_spawn(dir, port, admin, tls_port, env, piped, args)
        })
    }

    /// Start a gateway with `start` (which picks its ports with `free_port`), again with other
    /// ports when it could not bind one: a port is free when `free_port` picks it, and another
    /// process (an outgoing connection's ephemeral port, say) may take it before the gateway
    /// binds it. At most three tries.
    fn on_free_ports(start: impl Fn() -> Result<Gatehouse, String>) -> Gatehouse {
        let mut last = String::new();
        for _ in 0..3 {
            match start() {
                Ok(g) => return g,
                Err(log) => last = log,
            }
        }
        panic!("gatehouse could not bind its ports in three tries:\n{last}")
    }

    /// Spawn and wait until ready; `Err(log)` when it exited because a port was taken.
    fn try_spawn(
        dir: TempDir,
        port: u16,
        admin: u16,
        tls_port: Option<u16>,
        env: &[(&str, &str)],
        piped: bool,
        args: &[&str],
    ) -> Result<Gatehouse, String> {
        let log =
            std::fs::File::create(dir.0.join("out.log")).unwrap_or_else(|e| panic!("log: {e}"));
        let err = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
        let mut child = Command::new(bin())
            .args(["run", "-c"])
            .arg(dir.0.join("gatehouse.yaml"))
            .args(args)
            .env("RUST_LOG", "warn,gatehouse=info")
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdout(if piped {
                Stdio::piped()
            } else {
                Stdio::from(log)
            })
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn gatehouse: {e}"));
        let stdout = child.stdout.take();
        let mut g = Gatehouse {
            port,
            tls_port,
            admin,
            dir,
            child,
            sent: AtomicUsize::new(0),
            stdout,
        };
        match g.wait_ready() {
            Ok(()) => Ok(g),
            Err(log) if log.contains("Address already in use") => Err(log),
            Err(log) => panic!("{log}"),
        }
    }

    /// Wait until the gateway answers `/readyz`; `Err` with its log when it exited.
    fn wait_ready(&mut self) -> Result<(), String> {
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("gatehouse exited with {status}:\n{}", self.log()));
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", self.admin)).is_ok()
            {
                let r = get(self.admin, "/readyz", &[]);
                if r.status == 200 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gatehouse not ready after 10 s:\n{}", self.log());
    }

    pub fn get(&self, target: &str, headers: &[(&str, &str)]) -> Response {
        self.sent.fetch_add(1, Ordering::SeqCst);
        get(self.port, target, headers)
    }

    pub fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.sent.fetch_add(1, Ordering::SeqCst);
        send(self.port, method, target, headers, body)
    }

    pub fn send_tls(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self::http::send_tls(
            self.tls_port
                .unwrap_or_else(|| panic!("started without TLS")),
            method,
            target,
            headers,
            body,
        )
    }

    /// Everything the process printed (access log on stdout, logs on stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("out.log")).unwrap_or_default()
    }

    /// Access-log entries (JSON lines) printed so far.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The access-log entry of the last request sent through this harness; waits (bounded)
    /// until it is written, since the line is written after the response.
    pub fn last_log(&self) -> serde_json::Value {
        let want = self.sent.load(Ordering::SeqCst);
        for _ in 0..200 {
            let mut lines = self.access_log();
            if lines.len() >= want {
                if let Some(v) = lines.pop() {
                    return v;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no access log line:\n{}", self.log())
    }

    /// The most recent access-log entry for `path` (waits, bounded, for it to appear).
    pub fn log_for(&self, path: &str) -> serde_json::Value {
        self.log_where(|v| v["path"] == path)
    }

    /// The most recent access-log entry that `pred` accepts (waits, bounded, for it: lines are
    /// written in batches, a few milliseconds after their responses).
    pub fn log_where(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        for _ in 0..200 {
            if let Some(v) = self.access_log().into_iter().rfind(|v| pred(v)) {
                return v;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no such access log line:\n{}", self.log())
    }

    pub fn write_policy(&self, rel: &str, content: &str) {
        self.dir.write(&format!("policies/{rel}"), content);
    }

    /// Start a second process with `run -u` on the same configuration (it takes over the
    /// listening sockets when this one gets SIGQUIT).
    pub fn spawn_upgrade(&self) -> Child {
        let log = std::fs::File::create(self.dir.0.join("upgrade.log"))
            .unwrap_or_else(|e| panic!("log: {e}"));
        let err = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
        Command::new(bin())
            .args(["run", "-u", "-c"])
            .arg(self.dir.0.join("gatehouse.yaml"))
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn gatehouse -u: {e}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `gatehouse` with arguments in `dir` and collect its output.
pub fn run_cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run gatehouse: {e}"))
}

/// `gatehouse check -c gatehouse.yaml` in `dir`, which must fail: its stderr and stdout.
pub fn check_fails(dir: &Path) -> String {
    let out = run_cli(dir, &["check", "-c", "gatehouse.yaml"]);
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "check passed:\n{text}");
    text
}

/// Compare `actual` with the golden file `tests/golden/<name>`; `UPDATE_GOLDEN=1` rewrites it.
pub fn assert_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).ok();
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("write golden: {e}"));
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read golden {}: {e}\nactual:\n{actual}", path.display()));
    assert_eq!(
        actual, expected,
        "golden file {name} differs (UPDATE_GOLDEN=1 to accept)"
    );
}

/// A YAML API entry whose service is `origin`, with one catch-all operation per method list.
pub fn api_yaml(
    id: &str,
    path: &str,
    service: &str,
    extra: &str,
    ops: &[(&str, &str, &str)],
) -> String {
    let mut s = format!(
        "  - id: {id}\n    path: {path}\n    service_url: {service}\n{extra}    operations:\n"
    );
    for (oid, m, t) in ops {
        s.push_str(&format!(
            "      - id: {oid}\n        method: \"{m}\"\n        url_template: \"{t}\"\n"
        ));
    }
    s
}

/// `api_yaml`'s `extra` for an API callable without a subscription key.
pub const OPEN: &str = "    subscription_required: false\n";

/// A `<policies>` document: `inbound`, `outbound` and `on_error` follow their section's
/// `<base />`; `backend` is the whole backend section (`<base />` when empty).
pub fn sections(inbound: &str, backend: &str, outbound: &str, on_error: &str) -> String {
    let backend = if backend.is_empty() {
        "<base />"
    } else {
        backend
    };
    format!("<policies><inbound><base />{inbound}</inbound><backend>{backend}</backend><outbound><base />{outbound}</outbound><on-error><base />{on_error}</on-error></policies>")
}

/// A `<policies>` document with only `inbound` statements (after `<base />`).
pub fn inbound_doc(inbound: &str) -> String {
    sections(inbound, "", "", "")
}

/// A gateway with one API `api` (at path `api`, service `service`) whose operations are
/// `(id, method, url template, policy document)`; `before` is YAML ahead of `apis:`.
pub fn start_operations(
    before: &str,
    api: &str,
    service: &str,
    api_extra: &str,
    ops: &[(&str, &str, &str, &str)],
) -> Gatehouse {
    let ops_yaml: Vec<(&str, &str, &str)> = ops.iter().map(|(id, m, t, _)| (*id, *m, *t)).collect();
    let yaml = format!(
        "{before}apis:\n{}",
        api_yaml(api, api, service, api_extra, &ops_yaml)
    );
    let files: Vec<(String, String)> = ops
        .iter()
        .map(|(id, _, _, xml)| (format!("apis/{api}/{id}.xml"), xml.to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Gatehouse::start(&yaml, &refs)
}

/// A real `redis-server` on a free loopback port, owned by the test (never the shared 6379).
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
    /// Extra arguments (TLS, ACL users).
    extra: Vec<String>,
    /// `redis-cli` arguments that reach it (for a TLS server).
    cli: Vec<String>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(Vec::new(), Vec::new(), false)
    }

    /// A server with extra arguments; with `tls`, it listens with TLS only (its port is the
    /// TLS port) and `cli` holds what `redis-cli` needs to reach it.
    /// A port from `free_port` can be taken by another process before the server binds it:
    /// then again on another port (at most three tries).
    pub fn start_with(extra: Vec<String>, cli: Vec<String>, tls: bool) -> RedisServer {
        for _ in 0..3 {
            let port = free_port();
            let mut args = extra.clone();
            if tls {
                args.extend([
                    "--port".into(),
                    "0".into(),
                    "--tls-port".into(),
                    port.to_string(),
                ]);
            }
            let mut r = RedisServer {
                port,
                child: None,
                dir: TempDir::new(),
                extra: args,
                cli: cli.clone(),
            };
            if r.try_spawn() {
                return r;
            }
            r.kill();
        }
        panic!("redis-server did not start in three tries");
    }

    fn spawn(&mut self) {
        if !self.try_spawn() {
            panic!("redis-server did not start on port {}", self.port);
        }
    }

    /// Start the server on `port`; false when it does not answer within 5 s.
    fn try_spawn(&mut self) -> bool {
        let tls = self.extra.iter().any(|a| a == "--tls-port");
        let mut cmd = Command::new("redis-server");
        if !tls {
            cmd.args(["--port", &self.port.to_string()]);
        }
        let child = cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .arg("--dir")
            .arg(&self.dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server: {e} (install redis-server)"));
        self.child = Some(child);
        for _ in 0..200 {
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    pub fn ping(&self) -> bool {
        if !self.cli.is_empty() {
            return Command::new("redis-cli")
                .args(&self.cli)
                .args(["-p", &self.port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"));
        }
        RedisServer::plain_ping(self.port)
    }

    /// A plain-text PING to a port (false for a TLS-only server).
    pub fn plain_ping(port: u16) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_millis(500))).ok();
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .map(|n| buf[..n].starts_with(b"+PONG"))
                .unwrap_or(false)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kill the server (SIGKILL), as an outage would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freeze the server (SIGSTOP): connections are accepted by the kernel, nothing answers.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaw a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
    }

    /// Start again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wait (bounded: at most 3 s) until the wall clock's position inside a `period_ms` cycle
/// satisfies `pred`; used to start a test right after a fixed-window boundary.
pub fn wait_for_phase(period_ms: u64, pred: impl Fn(u64) -> bool) {
    for _ in 0..600 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if pred(now.as_millis() as u64 % period_ms) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
