//! Limits shared through a real redis-server (started by the test on a free port): several
//! gatehouse instances act as one, and a Redis outage costs nothing beyond the failure mode.

mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn yaml(origin_port: u16, redis: &RedisServer, extra_store: &str) -> String {
    format!(
        "name: shared\nstore:\n  type: redis\n  url: {}\n  timeout: 100ms\n{extra_store}apis:\n{}",
        redis.url(),
        api_yaml(
            "a",
            "a",
            &format!("http://127.0.0.1:{origin_port}"),
            "    subscription_required: false\n",
            &[("rl", "GET", "/rl"), ("probe", "GET", "/probe")]
        )
    )
}

const RL: &str = r#"<policies><inbound><base /><rate-limit-by-key calls="20" renewal-period="30" counter-key="shared-key" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;

#[test]
fn three_instances_admit_exactly_n_per_window() {
    let redis = RedisServer::start();
    let origin = Origin::echo();
    let gws: Vec<Gatehouse> = (0..3)
        .map(|_| Gatehouse::start(&yaml(origin.port, &redis, ""), &[("apis/a/rl.xml", RL)]))
        .collect();
    let ports: Vec<u16> = gws.iter().map(|g| g.port).collect();
    let admitted = Arc::new(AtomicUsize::new(0));
    let rejected = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let (ports, admitted, rejected) = (ports.clone(), admitted.clone(), rejected.clone());
            std::thread::spawn(move || {
                for i in 0..15 {
                    let port = ports[(t + i) % ports.len()];
                    match get(port, "/a/rl", &[]).status {
                        200 => admitted.fetch_add(1, Ordering::SeqCst),
                        429 => rejected.fetch_add(1, Ordering::SeqCst),
                        other => panic!("unexpected status {other}"),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let (a, r) = (
        admitted.load(Ordering::SeqCst),
        rejected.load(Ordering::SeqCst),
    );
    println!(
        "admitted {a}, rejected {r}, over-admission {}",
        a as i64 - 20
    );
    assert_eq!(
        a, 20,
        "exactly N admitted across 3 instances (admitted {a}, rejected {r})"
    );
    assert_eq!(r, 70);
    assert_eq!(origin.count(), 20);
}

#[test]
fn redis_outage_falls_back_to_local_counters_and_recovers() {
    let mut redis = RedisServer::start();
    let origin = Origin::echo();
    let probe = RL
        .replace("calls=\"20\"", "calls=\"1000\"")
        .replace("shared-key", "probe-key");
    let files = [("apis/a/rl.xml", RL), ("apis/a/probe.xml", probe.as_str())];
    let gw = Gatehouse::start(&yaml(origin.port, &redis, ""), &files);
    let other = Gatehouse::start(&yaml(origin.port, &redis, ""), &files);
    for _ in 0..5 {
        assert_eq!(gw.get("/a/rl", &[]).status, 200);
    }
    redis.kill();
    // During the outage: requests keep flowing on local counters, none waits long.
    for i in 0..10 {
        let start = Instant::now();
        let r = gw.get("/a/rl", &[]);
        assert_eq!(r.status, 200, "request {i} during the outage");
        // The store timeout is 100 ms; allow for a debug build's own request time on top.
        assert!(
            start.elapsed() < Duration::from_millis(600),
            "request {i} took {:?}",
            start.elapsed()
        );
    }
    let log = gw.last_log();
    assert_eq!(log["store_degraded"], true, "{log}");
    let m = get(gw.admin, "/metrics", &[]).text();
    assert!(m.contains("gatehouse_store_up 0"), "{m}");
    redis.restart();
    // Each instance notices on its next call (which still uses its local counters) and
    // reconnects by itself; probe on another counter until both answer from Redis again.
    for g in [&gw, &other] {
        let mut back = false;
        for _ in 0..100 {
            let r = g.get("/a/probe", &[]);
            if r.status == 200 && !g.last_log()["store_degraded"].as_bool().unwrap_or(false) {
                back = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(back, "store did not recover:\n{}", g.log());
    }
    // The restarted Redis kept nothing: a fresh shared window of 20 across both instances.
    let mut admitted = 0;
    for i in 0..30 {
        let g = if i % 2 == 0 { &other } else { &gw };
        if g.get("/a/rl", &[]).status == 200 {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 20, "shared again after the restart");
}

#[test]
fn fail_closed_and_fail_open_modes() {
    let mut redis = RedisServer::start();
    let origin = Origin::echo();
    let closed = Gatehouse::start(
        &yaml(origin.port, &redis, "  failure_mode: fail-closed\n"),
        &[("apis/a/rl.xml", RL)],
    );
    let open = Gatehouse::start(
        &yaml(origin.port, &redis, "  failure_mode: fail-open\n"),
        &[("apis/a/rl.xml", RL)],
    );
    assert_eq!(closed.get("/a/rl", &[]).status, 200);
    redis.kill();
    assert_eq!(closed.get("/a/rl", &[]).status, 500);
    for _ in 0..25 {
        assert_eq!(open.get("/a/rl", &[]).status, 200);
    }
}

#[test]
fn quota_windows_roll_over_at_boundaries() {
    let redis = RedisServer::start();
    let origin = Origin::echo();
    let yaml = format!(
        "name: q\nstore:\n  type: redis\n  url: {}\napis:\n{}products:\n  - id: p\n    apis: [k]\nsubscriptions:\n  - id: s\n    scope: product:p\n    primary_key: quota-key-123\n",
        redis.url(),
        api_yaml("k", "k", &format!("http://127.0.0.1:{}", origin.port), "", &[("g", "GET", "/")])
    );
    let gw = Gatehouse::start(&yaml, &[("products/p.xml", "<policies><inbound><base /><quota calls=\"2\" renewal-period=\"2\" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>")]);
    let key = [("Ocp-Apim-Subscription-Key", "quota-key-123")];
    // Start right after a 2-second boundary (windows are aligned to 0001-01-01, i.e. even seconds).
    let wait = |pred: &dyn Fn(u64) -> bool| wait_for_phase(2000, pred);
    wait(&|ms| ms < 200);
    assert_eq!(gw.get("/k/", &key).status, 200);
    assert_eq!(gw.get("/k/", &key).status, 200);
    let r = gw.get("/k/", &key);
    assert_eq!(r.status, 403);
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(99);
    assert!(
        retry <= 2,
        "Retry-After {retry} is the rest of the 2 s window"
    );
    wait(&|ms| ms >= 1800);
    wait(&|ms| ms < 200);
    assert_eq!(gw.get("/k/", &key).status, 200, "a new window");
}

/// `gatehouse_store_up` is 1 (the series line, not its help text).
fn store_up(g: &Gatehouse) -> bool {
    get(g.admin, "/metrics", &[])
        .text()
        .lines()
        .any(|l| l == "gatehouse_store_up 1")
}

/// Requests while Redis is away: (statuses, how many waited longer than `slow`).
fn during_outage(g: &Gatehouse, n: usize, slow: Duration) -> (Vec<u16>, usize) {
    let mut statuses = Vec::new();
    let mut waited = 0;
    for _ in 0..n {
        let start = Instant::now();
        statuses.push(g.get("/a/probe", &[]).status);
        if start.elapsed() > slow {
            waited += 1;
        }
    }
    (statuses, waited)
}

/// Fail fast (issue 16): with a store timeout of 1 s, Redis killed or frozen costs at most the
/// first request the timeout; every later one applies the failure mode at once, in each mode;
/// after Redis is back, the probe finds it and two instances share exact counts again.
#[test]
fn an_outage_costs_no_request_the_timeout_and_recovery_is_quick() {
    let mut redis = RedisServer::start();
    let origin = Origin::echo();
    let slow_yaml = |mode: &str| {
        yaml(origin.port, &redis, &format!("  failure_mode: {mode}\n"))
            .replace("timeout: 100ms", "timeout: 1s")
    };
    let probe = RL
        .replace("calls=\"20\"", "calls=\"1000\"")
        .replace("shared-key", "probe-key");
    let files = [("apis/a/rl.xml", RL), ("apis/a/probe.xml", probe.as_str())];
    let local = Gatehouse::start(&slow_yaml("local"), &files);
    let open = Gatehouse::start(&slow_yaml("fail-open"), &files);
    let closed = Gatehouse::start(&slow_yaml("fail-closed"), &files);
    for g in [&local, &open, &closed] {
        assert_eq!(g.get("/a/probe", &[]).status, 200);
    }
    let slow = Duration::from_millis(500);
    for (how, outage) in [("killed", true), ("frozen (SIGSTOP)", false)] {
        if outage {
            redis.kill();
        } else {
            redis.pause();
        }
        for (g, want) in [(&local, 200), (&open, 200), (&closed, 500)] {
            let (statuses, waited) = during_outage(g, 30, slow);
            assert!(
                statuses.iter().all(|s| *s == want),
                "{how}: {statuses:?}\n{}",
                g.log()
            );
            assert!(
                waited <= 1,
                "{how}: {waited} of 30 requests waited for the store (failure mode {want})"
            );
            assert!(!store_up(g), "{how}: gatehouse_store_up says up");
        }
        if outage {
            redis.restart();
        } else {
            redis.resume();
        }
        // The probe finds Redis within a bound, without any request having to wait for it.
        for g in [&local, &open, &closed] {
            let start = Instant::now();
            while !store_up(g) && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{how}: not back:\n{}",
                g.log()
            );
            assert!(g.log().contains("Redis answers again"), "{}", g.log());
        }
        // Shared and exact again: a fresh window across two instances.
        let key = format!("after-{}", if outage { "kill" } else { "stop" });
        let doc = RL.replace("shared-key", &key);
        local.write_policy("apis/a/rl.xml", &doc);
        open.write_policy("apis/a/rl.xml", &doc);
        local.signal("HUP");
        open.signal("HUP");
        std::thread::sleep(Duration::from_millis(700));
        let mut admitted = 0;
        for i in 0..30 {
            let g = if i % 2 == 0 { &local } else { &open };
            if g.get("/a/rl", &[]).status == 200 {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 20, "{how}: exact across instances after recovery");
        local.write_policy("apis/a/rl.xml", RL);
        open.write_policy("apis/a/rl.xml", RL);
    }
}

/// `rediss://` to a TLS-only redis-server with a CA of the test's, an ACL user whose password
/// comes from a secret named value, the default user off: two instances share exact counts;
/// a wrong password is the failure mode and the password is in no log line.
/// API `a` with the one operation `/rl` (no subscription), served by `origin`.
fn rl_api(origin: &Origin) -> String {
    api_yaml(
        "a",
        "a",
        &format!("http://127.0.0.1:{}", origin.port),
        "    subscription_required: false\n",
        &[("rl", "GET", "/rl")],
    )
}

/// `n` requests for `path`, to each gateway in turn: how many were admitted (200); a status
/// other than 200 or 429 fails the test.
fn admitted_in_turn(gws: &[&Gatehouse], path: &str, n: usize) -> usize {
    let mut admitted = 0;
    for i in 0..n {
        let g = gws[i % gws.len()];
        match g.get(path, &[]).status {
            200 => admitted += 1,
            429 => {}
            s => panic!("status {s}:\n{}", g.log()),
        }
    }
    admitted
}

#[test]
fn tls_and_an_acl_user() {
    let certs = TempDir::new();
    // A CA and a server certificate it signed, for localhost / 127.0.0.1 (rustls refuses a
    // self-signed CA certificate as a server's).
    certificates(&certs.0);
    let (cert, key, ca) = (
        certs.0.join("server.pem").display().to_string(),
        certs.0.join("server.key").display().to_string(),
        certs.0.join("ca.pem").display().to_string(),
    );
    certs.write(
        "users.acl",
        "user default off\nuser gatehouse on >redis-s3cret-pw ~* &* +@all\n",
    );
    let acl = certs.0.join("users.acl").display().to_string();
    let redis = RedisServer::start_with(
        vec![
            "--tls-cert-file".into(),
            cert.clone(),
            "--tls-key-file".into(),
            key.clone(),
            "--tls-ca-cert-file".into(),
            ca.clone(),
            "--tls-auth-clients".into(),
            "no".into(),
            "--aclfile".into(),
            acl,
        ],
        vec![
            "--tls".into(),
            "--cacert".into(),
            ca.clone(),
            "--user".into(),
            "gatehouse".into(),
            "--pass".into(),
            "redis-s3cret-pw".into(),
        ],
        true,
    );
    let origin = Origin::echo();
    let cfg = |env_var: &str| {
        format!(
            "name: tls\nnamed_values:\n  redis-pw:\n    env: {env_var}\nstore:\n  type: redis\n  url: rediss://127.0.0.1:{}/0\n  username: gatehouse\n  password: redis-pw\n  timeout: 1s\n  failure_mode: fail-closed\n  tls:\n    ca_file: {ca}\napis:\n{}",
            redis.port,
            rl_api(&origin)
        )
    };
    let env = [
        ("GH_REDIS_PW", "redis-s3cret-pw"),
        ("GH_WRONG_PW", "not-the-password"),
    ];
    exact_across_two_then_refused(
        cfg,
        "GH_REDIS_PW",
        &env,
        &["redis-s3cret-pw", "not-the-password"],
        "over TLS",
    );
    // A plain client cannot talk to the TLS port: the URL's scheme is what made it work.
    assert!(!RedisServer::plain_ping(redis.port));
}

/// Two gateways on `cfg(good_env)` share the limit of 20 exactly (20 of 30 admitted, `how`
/// they reach Redis); one on `cfg("GH_WRONG_PW")` is refused by the store (fail-closed: 500);
/// no log of the three holds any of `secrets` (each read after its last line is out).
fn exact_across_two_then_refused(
    cfg: impl Fn(&str) -> String,
    good_env: &str,
    env: &[(&str, &str)],
    secrets: &[&str],
    how: &str,
) {
    let a = Gatehouse::start_with_env(&cfg(good_env), &[("apis/a/rl.xml", RL)], &[], env);
    let b = Gatehouse::start_with_env(&cfg(good_env), &[("apis/a/rl.xml", RL)], &[], env);
    let admitted = admitted_in_turn(&[&a, &b], "/a/rl", 30);
    assert_eq!(admitted, 20, "exact across two instances, {how}");
    let wrong = Gatehouse::start_with_env(&cfg("GH_WRONG_PW"), &[("apis/a/rl.xml", RL)], &[], env);
    assert_eq!(
        wrong.get("/a/rl", &[]).status,
        500,
        "fail-closed: the store refused us ({how})"
    );
    for g in [&a, &b, &wrong] {
        let _ = g.last_log();
        let log = g.log();
        assert!(!secrets.iter().any(|s| log.contains(s)), "{log}");
    }
}

/// A sentinel process monitoring `master_port` as `mymaster`.
struct SentinelProc {
    port: u16,
    child: std::process::Child,
    _dir: TempDir,
}

impl SentinelProc {
    fn start(master_port: u16) -> SentinelProc {
        SentinelProc::start_with(master_port, 2, "")
    }

    /// A sentinel with a quorum of `quorum` and `extra` configuration lines (with
    /// `tls-port PORT`, it listens with TLS only on its port and is not waited for here).
    fn start_with(master_port: u16, quorum: u8, extra: &str) -> SentinelProc {
        let dir = TempDir::new();
        let port = free_port();
        let tls = extra.contains("tls-port");
        let listen = if tls {
            "port 0".to_string()
        } else {
            format!("port {port}")
        };
        let extra = extra.replace("tls-port PORT", &format!("tls-port {port}"));
        dir.write(
            "sentinel.conf",
            &format!(
                "{listen}\nbind 127.0.0.1\ndir {d}\n{extra}\nsentinel monitor mymaster 127.0.0.1 {master_port} {quorum}\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 3000\nsentinel parallel-syncs mymaster 1\n",
                d = dir.0.display()
            ),
        );
        let child = std::process::Command::new("redis-server")
            .arg(dir.0.join("sentinel.conf"))
            .arg("--sentinel")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server --sentinel: {e}"));
        let s = SentinelProc {
            port,
            child,
            _dir: dir,
        };
        let start = Instant::now();
        while !tls && !RedisServer::plain_ping(port) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(25));
        }
        s
    }
}

impl Drop for SentinelProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("redis-cli: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_until(what: &str, limit: Duration, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Redis Sentinel: a master, a replica and three sentinels started by the test. Two gateway
/// instances find the master through the sentinels and share exact counts; the master is
/// killed; during the failover the failure mode applies; after it both instances follow the
/// new master without a restart and are exact again.
#[test]
fn sentinel_failover_is_followed_without_a_restart() {
    let mut master = RedisServer::start();
    let replica = RedisServer::start_with(
        vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            master.port.to_string(),
        ],
        Vec::new(),
        false,
    );
    wait_until("replica in sync", Duration::from_secs(20), || {
        cli(replica.port, &["info", "replication"]).contains("master_link_status:up")
    });
    let sentinels: Vec<SentinelProc> = (0..3).map(|_| SentinelProc::start(master.port)).collect();
    wait_until("sentinels see the replica", Duration::from_secs(30), || {
        sentinels.iter().all(|s| {
            cli(s.port, &["sentinel", "replicas", "mymaster"]).contains(&replica.port.to_string())
        })
    });
    let origin = Origin::echo();
    let nodes: Vec<String> = sentinels
        .iter()
        .map(|s| format!("\"127.0.0.1:{}\"", s.port))
        .collect();
    let yaml = format!(
        "name: sentinel\nstore:\n  type: redis\n  timeout: 200ms\n  sentinel:\n    master_name: mymaster\n    nodes: [{}]\napis:\n{}",
        nodes.join(", "),
        api_yaml(
            "a",
            "a",
            &format!("http://127.0.0.1:{}", origin.port),
            "    subscription_required: false\n",
            &[("rl", "GET", "/rl"), ("probe", "GET", "/probe")]
        )
    );
    let probe = RL
        .replace("calls=\"20\"", "calls=\"100000\"")
        .replace("shared-key", "probe-key");
    let files = [("apis/a/rl.xml", RL), ("apis/a/probe.xml", probe.as_str())];
    let a = Gatehouse::start(&yaml, &files);
    let b = Gatehouse::start(&yaml, &files);
    let exact = |key: &str| {
        let doc = RL.replace("shared-key", key);
        for g in [&a, &b] {
            g.write_policy("apis/a/rl.xml", &doc);
            g.signal("HUP");
        }
        std::thread::sleep(Duration::from_millis(700));
        let mut admitted = 0;
        for i in 0..30 {
            let g = if i % 2 == 0 { &a } else { &b };
            if g.get("/a/rl", &[]).status == 200 {
                admitted += 1;
            }
        }
        admitted
    };
    assert_eq!(
        exact("before-failover"),
        20,
        "shared through the master the sentinels name"
    );

    master.kill();
    // During the failover: served on local counters, no request waits long.
    let start = Instant::now();
    let mut served = 0;
    while start.elapsed() < Duration::from_secs(30) {
        for g in [&a, &b] {
            assert_eq!(g.get("/a/probe", &[]).status, 200, "{}", g.log());
            served += 1;
        }
        let promoted = cli(replica.port, &["info", "replication"]).contains("role:master");
        if promoted && store_up(&a) && store_up(&b) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        store_up(&a) && store_up(&b),
        "the instances did not follow the failover within 30 s:\n{}",
        a.log()
    );
    eprintln!(
        "sentinel failover followed after {:?}; {served} requests served meanwhile",
        start.elapsed()
    );
    assert_eq!(
        exact("after-failover"),
        20,
        "shared again through the new master"
    );
    assert!(a.log().contains("Redis answers again"), "{}", a.log());
}

/// Redis Cluster: three masters started and joined by the test. Two gateway instances given
/// one node each share exact rate limits (counters on different slots), an exact quota and the
/// response cache (one origin call for both).
/// A Redis Cluster of `masters` masters, each with `replicas` replicas, started and joined by
/// the test (`redis-cli --cluster create`); returns once every node says `cluster_state:ok`.
fn start_cluster(masters: usize, replicas: usize) -> (Vec<RedisServer>, Vec<String>) {
    let nodes: Vec<RedisServer> = (0..masters * (1 + replicas))
        .map(|_| {
            RedisServer::start_with(
                vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    "nodes.conf".into(),
                    "--cluster-node-timeout".into(),
                    "1000".into(),
                    // A replica takes over however long ago it last heard from its master
                    // (else a test cluster without writes may find its replicas too stale).
                    "--cluster-replica-validity-factor".into(),
                    "0".into(),
                ],
                Vec::new(),
                false,
            )
        })
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let replicas = replicas.to_string();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.extend(["--cluster-replicas", replicas.as_str(), "--cluster-yes"]);
    let out = std::process::Command::new("redis-cli")
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("redis-cli --cluster create: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    wait_until("cluster_state:ok", Duration::from_secs(20), || {
        nodes
            .iter()
            .all(|n| cli(n.port, &["cluster", "info"]).contains("cluster_state:ok"))
    });
    (nodes, addrs)
}

/// The port of the master that serves `slot`, as node `port` sees the cluster.
fn slot_owner(port: u16, slot: u16) -> Option<u16> {
    cli(port, &["cluster", "nodes"]).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let is_master = f.get(2)?.split(',').any(|x| x == "master");
        let serves = f.iter().skip(8).any(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
        });
        if !is_master || !serves || f.get(2)?.contains("fail") {
            return None;
        }
        f.get(1)?.split(['@', ':']).nth(1)?.parse().ok()
    })
}

#[test]
fn a_redis_cluster_shares_limits_quotas_and_the_cache() {
    let (nodes, addrs) = start_cluster(3, 0);
    let origin = Origin::echo();
    let ops: Vec<(&str, &str, &str)> = vec![
        ("rl0", "GET", "/rl0"),
        ("rl1", "GET", "/rl1"),
        ("rl2", "GET", "/rl2"),
        ("quota", "GET", "/quota"),
        ("cached", "GET", "/cached"),
    ];
    let yaml = |node: &str| {
        format!(
            "name: cluster\nstore:\n  type: redis\n  timeout: 500ms\n  failure_mode: fail-closed\n  cluster:\n    nodes: [\"{node}\"]\napis:\n{}",
            api_yaml(
                "a",
                "a",
                &format!("http://127.0.0.1:{}", origin.port),
                "    subscription_required: false\n",
                &ops
            )
        )
    };
    let rl = |key: &str| {
        format!(
            r#"<policies><inbound><base /><rate-limit-by-key calls="10" renewal-period="60" counter-key="{key}" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#
        )
    };
    let quota = r#"<policies><inbound><base /><quota-by-key calls="15" renewal-period="3600" counter-key="the-quota" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;
    let cached = r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" caching-type="external" /></inbound><backend><base /></backend><outbound><base /><cache-store duration="60" /></outbound><on-error><base /></on-error></policies>"#;
    let (r0, r1, r2) = (rl("counter-zero"), rl("counter-one"), rl("counter-two"));
    let files = [
        ("apis/a/rl0.xml", r0.as_str()),
        ("apis/a/rl1.xml", r1.as_str()),
        ("apis/a/rl2.xml", r2.as_str()),
        ("apis/a/quota.xml", quota),
        ("apis/a/cached.xml", cached),
    ];
    let a = Gatehouse::start(&yaml(&addrs[0]), &files);
    let b = Gatehouse::start(&yaml(&addrs[1]), &files);
    let count = |path: &str, n: usize| {
        let mut ok = 0;
        for i in 0..n {
            let g = if i % 2 == 0 { &a } else { &b };
            match g.get(path, &[]).status {
                200 => ok += 1,
                429 | 403 => {}
                s => panic!("{path}: status {s}:\n{}", g.log()),
            }
        }
        ok
    };
    for path in ["/a/rl0", "/a/rl1", "/a/rl2"] {
        assert_eq!(count(path, 20), 10, "{path}: exact across two instances");
    }
    assert_eq!(
        count("/a/quota", 25),
        15,
        "quota exact across two instances"
    );
    let before = origin.count();
    assert_eq!(count("/a/cached", 6), 6);
    assert_eq!(
        origin.count() - before,
        1,
        "one origin call for both instances"
    );
    // The keys are spread over the masters (hash tags keep each counter's keys together).
    let holding = nodes
        .iter()
        .filter(|n| cli(n.port, &["dbsize"]).trim() != "0")
        .count();
    assert!(holding >= 2, "keys on {holding} of 3 masters");
}

/// Shared circuit breakers (beyond APIM): a trip in one instance opens the circuit in the
/// others through the store within a tick; a breaker that is not shared stays per instance.
#[test]
fn a_shared_breaker_trips_in_every_instance() {
    let redis = RedisServer::start();
    let failing = Origin::start(|_| Reply::Full(Response::new(500, "down")));
    let other = Origin::start(|_| Reply::Full(Response::new(500, "down")));
    let breaker = |shared: bool| {
        format!("    circuit_breaker:\n      rules:\n        - failure_condition:\n            count: 3\n            interval: 10s\n            status_code_ranges: [{{ min: 500, max: 599 }}]\n          trip_duration: 10s\n          shared: {shared}\n")
    };
    let yaml = format!(
        "name: breakers\nstore:\n  type: redis\n  url: {}\nbackends:\n  - id: shared-b\n    url: http://127.0.0.1:{}\n{}  - id: own-b\n    url: http://127.0.0.1:{}\n{}apis:\n  - id: s\n    path: s\n    backend: shared-b\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n  - id: o\n    path: o\n    backend: own-b\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: \"/{{*rest}}\"\n",
        redis.url(),
        failing.port,
        breaker(true),
        other.port,
        breaker(false)
    );
    let a = Gatehouse::start(&yaml, &[]);
    let b = Gatehouse::start(&yaml, &[]);
    // Instance a trips both breakers: three failures each.
    for _ in 0..3 {
        assert_eq!(a.get("/s/x", &[]).status, 500);
        assert_eq!(a.get("/o/x", &[]).status, 500);
    }
    assert_eq!(a.get("/s/x", &[]).status, 503, "tripped in a");
    let (calls_shared, calls_own) = (failing.count(), other.count());
    // Instance b never called either backend; within a tick (250 ms) its shared circuit is
    // open too: its very first request is refused without a backend call.
    std::thread::sleep(Duration::from_millis(1000));
    for _ in 0..5 {
        assert_eq!(b.get("/s/x", &[]).status, 503);
    }
    assert_eq!(
        failing.count(),
        calls_shared,
        "b sent nothing to the backend a found failing"
    );
    // The per-instance breaker: b still calls its backend.
    assert_eq!(b.get("/o/x", &[]).status, 500);
    assert_eq!(other.count(), calls_own + 1);
    assert!(
        b.log()
            .contains("circuit opened by another instance's trip"),
        "{}",
        b.log()
    );
}

/// Script calls Redis has served (EVAL + EVALSHA), from INFO commandstats.
fn script_calls(redis: &RedisServer) -> u64 {
    cli(redis.port, &["info", "commandstats"])
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split(',')
                .next()
                .and_then(|c| c.split("calls=").nth(1))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

/// Lease mode (`store.sync: lease`, opt-in): three instances, limit 20, leases of 5. Hits are
/// reserved in Redis before they are admitted, so a window never admits more than the limit
/// while it does not slide; unused reserved hits may leave up to (size - 1) per instance
/// unadmitted; Redis serves far fewer script calls than requests.
#[test]
fn lease_mode_bounds_admission_and_saves_round_trips() {
    let redis = RedisServer::start();
    let origin = Origin::echo();
    let lease = "  sync: lease\n  lease:\n    size: 5\n    interval: 5s\n";
    let gws: Vec<Gatehouse> = (0..3)
        .map(|_| Gatehouse::start(&yaml(origin.port, &redis, lease), &[("apis/a/rl.xml", RL)]))
        .collect();
    let before = script_calls(&redis);
    let ports: Vec<u16> = gws.iter().map(|g| g.port).collect();
    let admitted = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let (ports, admitted) = (ports.clone(), admitted.clone());
            std::thread::spawn(move || {
                for i in 0..15 {
                    let port = ports[(t + i) % ports.len()];
                    match get(port, "/a/rl", &[]).status {
                        200 => {
                            admitted.fetch_add(1, Ordering::SeqCst);
                        }
                        429 => {}
                        other => panic!("unexpected status {other}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let a = admitted.load(Ordering::SeqCst);
    let calls = script_calls(&redis) - before;
    eprintln!("lease mode: {a} of 90 admitted (limit 20), {calls} script calls to Redis");
    assert!(a <= 20, "never above the limit within a window: {a}");
    assert!(a >= 20 - 3 * 4, "at most size - 1 unused per instance: {a}");
    assert!(calls < 60, "{calls} script calls for 90 requests");
}

/// Lease mode across a sliding window: hits are timestamped when their lease is reserved and
/// admitted up to `interval` later, so they leave the window early; in any window the
/// instances admit at most limit + instances × size (here 10 + 3 × 5 over 2 s).
#[test]
fn lease_mode_overshoot_stays_within_its_bound() {
    let redis = RedisServer::start();
    let origin = Origin::echo();
    let lease = "  sync: lease\n  lease:\n    size: 5\n    interval: 1s\n";
    let doc = RL
        .replace("calls=\"20\"", "calls=\"10\"")
        .replace("renewal-period=\"30\"", "renewal-period=\"2\"");
    let gws: Vec<Gatehouse> = (0..3)
        .map(|_| {
            Gatehouse::start(
                &yaml(origin.port, &redis, lease),
                &[("apis/a/rl.xml", doc.as_str())],
            )
        })
        .collect();
    let ports: Vec<u16> = gws.iter().map(|g| g.port).collect();
    let start = Instant::now();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let ports = ports.clone();
            std::thread::spawn(move || {
                let mut admitted_at = Vec::new();
                let mut i = 0;
                while start.elapsed() < Duration::from_secs(6) {
                    let port = ports[(t + i) % ports.len()];
                    if get(port, "/a/rl", &[]).status == 200 {
                        admitted_at.push(start.elapsed());
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                admitted_at
            })
        })
        .collect();
    let mut at: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    at.sort();
    let window = Duration::from_secs(2);
    let most = (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t - at[i] < window).count())
        .max()
        .unwrap_or(0);
    eprintln!(
        "lease mode, sliding 2 s window: at most {most} admitted in a window ({} in all over 6 s)",
        at.len()
    );
    assert!(most <= 10 + 3 * 5, "{most} in one window");
    assert!(
        at.len() >= 20,
        "admission goes on as the window slides: {}",
        at.len()
    );
}

/// `rate-limit` (per subscription) with one counter makes one round trip per request: one
/// atomic check-and-record script call (it was a check and then a record).
#[test]
fn rate_limit_per_subscription_is_one_round_trip() {
    let redis = RedisServer::start();
    let origin = Origin::echo();
    let yaml = format!(
        "name: onetrip\nstore:\n  type: redis\n  url: {}\napis:\n{}products:\n  - id: gold\n    apis: [a]\nsubscriptions:\n  - id: s1\n    scope: product:gold\n    primary_key: one-trip-key-123\n",
        redis.url(),
        api_yaml(
            "a",
            "a",
            &format!("http://127.0.0.1:{}", origin.port),
            "",
            &[("any", "GET", "/x")]
        )
    );
    let product = r#"<policies><inbound><base /><rate-limit calls="5" renewal-period="60" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;
    let gw = Gatehouse::start(&yaml, &[("products/gold.xml", product)]);
    let key = [("Ocp-Apim-Subscription-Key", "one-trip-key-123")];
    let before = script_calls(&redis);
    let statuses: Vec<u16> = (0..8).map(|_| gw.get("/a/x", &key).status).collect();
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429, 429, 429]);
    // One call per request, plus at most one EVAL when a connection first meets the script
    // (NOSCRIPT); a check and a record would be 16.
    let calls = script_calls(&redis) - before;
    assert!(
        (8..=9).contains(&calls),
        "{calls} script calls for 8 requests"
    );
}

/// Limit statements in a row (rate-limit-by-key, quota-by-key, ...) count in one script call:
/// one round trip per request where one per statement was made, with the result running them
/// one by one gives: a refusal stops the statements after it (they count nothing), the ones
/// before it have counted.
#[test]
fn limits_in_a_row_count_in_one_round_trip() {
    let redis = RedisServer::start();
    let origin = Origin::echo();
    let yaml = format!(
        "name: onetrip\nstore:\n  type: redis\n  url: {}\napis:\n{}",
        redis.url(),
        api_yaml(
            "a",
            "a",
            &format!("http://127.0.0.1:{}", origin.port),
            "    subscription_required: false\n",
            &[
                ("x", "GET", "/x"),
                ("probe", "GET", "/probe"),
                ("q", "GET", "/q")
            ]
        )
    );
    let doc = |inbound: &str| {
        format!("<policies><inbound><base />{inbound}</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>")
    };
    let a = r#"<rate-limit-by-key calls="10" renewal-period="60" counter-key="A" remaining-calls-header-name="x-a-left" />"#;
    let c = r#"<rate-limit-by-key calls="10" renewal-period="60" counter-key="C" remaining-calls-header-name="x-c-left" />"#;
    let x = doc(&format!(
        r#"{a}<rate-limit-by-key calls="3" renewal-period="60" counter-key="@(context.Request.Headers.GetValueOrDefault("who", "b"))" /><quota-by-key calls="100" renewal-period="3600" counter-key="Q" />{c}"#
    ));
    let probe = doc(&format!("{a}{c}"));
    let q = doc(r#"<quota-by-key calls="4" renewal-period="3600" counter-key="Q" />"#);
    let gw = Gatehouse::start(
        &yaml,
        &[
            ("apis/a/x.xml", x.as_str()),
            ("apis/a/probe.xml", probe.as_str()),
            ("apis/a/q.xml", q.as_str()),
        ],
    );
    let before = script_calls(&redis);
    let rs: Vec<Response> = (0..5).map(|_| gw.get("/a/x", &[])).collect();
    let statuses: Vec<u16> = rs.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 200, 429, 429], "{}", gw.log());
    let left: Vec<String> = rs[..3]
        .iter()
        .map(|r| r.header("x-a-left").unwrap_or_default().to_string())
        .collect();
    assert_eq!(left, ["9", "8", "7"]);
    assert_eq!(rs[2].header("x-c-left"), Some("7"));
    // One script call per request (plus at most one EVAL when a connection first meets the
    // script); one per statement would be 3 × 4 + 2 × 2 = 16.
    let calls = script_calls(&redis) - before;
    assert!(
        (5..=6).contains(&calls),
        "{calls} script calls for 5 requests"
    );
    // A counted all five requests, C only the three admitted.
    let p = gw.get("/a/probe", &[]);
    assert_eq!(p.status, 200);
    assert_eq!(p.header("x-a-left"), Some("4"));
    assert_eq!(p.header("x-c-left"), Some("6"));
    // The quota counted the three admitted requests only: a fourth call fits a limit of 4.
    assert_eq!(gw.get("/a/q", &[]).status, 200);
    assert_eq!(gw.get("/a/q", &[]).status, 403);
    // Another key for the middle limit: admitted again, through all four statements.
    assert_eq!(gw.get("/a/x", &[("who", "other")]).status, 200);
}

/// What a relay between the gateway and Redis saw on one connection: a chunk of commands
/// arriving from the gateway, or a reply let through to it.
#[derive(Clone, Debug)]
enum Relayed {
    Commands(Vec<u8>),
    Reply,
}

/// Events a relay saw: (connection, time, event).
type RelayLog = Arc<std::sync::Mutex<Vec<(usize, Instant, Relayed)>>>;

/// A TCP relay in front of Redis that holds every reply for `hold` before passing it on, and
/// records (connection, time, event). A command sent before the reply to an earlier one was
/// let through was sent without waiting for it.
fn slow_relay(redis_port: u16, hold: Duration) -> (u16, RelayLog) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let events = log.clone();
    std::thread::spawn(move || {
        for (id, client) in l.incoming().flatten().enumerate() {
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", redis_port)) else {
                continue;
            };
            let (mut c_in, mut s_out) = match (client.try_clone(), server.try_clone()) {
                (Ok(c), Ok(s)) => (c, s),
                _ => continue,
            };
            let (mut c_out, mut s_in) = (client, server);
            let up = events.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut e) = up.lock() {
                        e.push((id, Instant::now(), Relayed::Commands(buf[..n].to_vec())));
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let down = events.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    std::thread::sleep(hold);
                    // Logged before it is let through: the gateway cannot have it earlier.
                    if let Ok(mut e) = down.lock() {
                        e.push((id, Instant::now(), Relayed::Reply));
                    }
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, log)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A rate limit and the cache lookup after it do not wait for each other: the cache read is
/// sent with the counter's script, before Redis's answer to the script is back (a relay holds
/// every reply 300 ms, so a read sent after the answer would show up after the release).
#[test]
fn a_counter_and_the_cache_lookup_after_it_go_together() {
    let redis = RedisServer::start();
    let (relay, log) = slow_relay(redis.port, Duration::from_millis(300));
    let origin = Origin::echo();
    let yaml = format!(
        "name: ahead\nstore:\n  type: redis\n  url: redis://127.0.0.1:{relay}/0\n  timeout: 3s\napis:\n{}",
        api_yaml(
            "a",
            "a",
            &format!("http://127.0.0.1:{}", origin.port),
            "    subscription_required: false\n",
            &[("c", "GET", "/c")]
        )
    );
    let doc = r#"<policies><inbound><base /><rate-limit-by-key calls="100" renewal-period="60" counter-key="k" /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" caching-type="external" /></inbound><backend><base /></backend><outbound><base /><cache-store duration="60" /></outbound><on-error><base /></on-error></policies>"#;
    let gw = Gatehouse::start(&yaml, &[("apis/a/c.xml", doc)]);
    // The first request loads the scripts (NOSCRIPT, then EVAL) and fills the cache.
    assert_eq!(gw.get("/a/c?first", &[]).status, 200, "{}", gw.log());
    let t0 = Instant::now();
    let r = gw.get("/a/c", &[]);
    assert_eq!(r.status, 200, "{}", gw.log());
    let events: Vec<(usize, Instant, Relayed)> = log
        .lock()
        .map(|e| e.iter().filter(|(_, t, _)| *t >= t0).cloned().collect())
        .unwrap_or_default();
    let sent = |what: &dyn Fn(&[u8]) -> bool| {
        events.iter().find_map(|(c, t, e)| match e {
            Relayed::Commands(b) if what(b) => Some((*c, *t)),
            _ => None,
        })
    };
    let Some((conn, script_at)) = sent(&|b| contains(b, b"EVALSHA")) else {
        panic!("no script call relayed: {events:?}");
    };
    let Some((read_conn, read_at)) = sent(&|b| contains(b, b"GET\r\n") && contains(b, b"c:rc"))
    else {
        panic!("no cache read relayed: {events:?}");
    };
    let answered_at = events
        .iter()
        .find_map(|(c, t, e)| {
            (matches!(e, Relayed::Reply) && *c == conn && *t >= script_at).then_some(*t)
        })
        .unwrap_or_else(|| panic!("no reply to the script: {events:?}"));
    assert_eq!(read_conn, conn, "one connection for the request's calls");
    assert!(
        read_at < answered_at,
        "the cache read waited for the counter: sent {:?} after the script, its answer came at {:?}",
        read_at - script_at,
        answered_at - script_at
    );
}

/// A gateway whose API `a` has the operations `/x` and `/probe` with these inbound limits.
fn limits_gateway(
    redis: &RedisServer,
    origin: &Origin,
    mode: &str,
    x: &str,
    probe: &str,
) -> Gatehouse {
    let yaml = format!(
        "name: batch{}\nstore:\n  type: redis\n  url: {}\n  timeout: 100ms\n  failure_mode: {mode}\napis:\n{}",
        mode.replace('-', ""),
        redis.url(),
        api_yaml(
            "a",
            "a",
            &format!("http://127.0.0.1:{}", origin.port),
            "    subscription_required: false\n",
            &[("x", "GET", "/x"), ("probe", "GET", "/probe")]
        )
    );
    let doc = |inbound: &str| {
        format!("<policies><inbound><base />{inbound}</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>")
    };
    Gatehouse::start(
        &yaml,
        &[
            ("apis/a/x.xml", doc(x).as_str()),
            ("apis/a/probe.xml", doc(probe).as_str()),
        ],
    )
}

/// Limit statements in a row are one store call; when that call fails, the failure mode
/// applies to the whole batch exactly as to single calls: `local` counts every statement of
/// the batch in this instance's memory (a refusal ends it there too), `fail-open` admits,
/// `fail-closed` fails the request.
#[test]
fn limits_in_a_row_under_each_failure_mode() {
    let mut redis = RedisServer::start();
    let origin = Origin::echo();
    let two = r#"<rate-limit-by-key calls="2" renewal-period="60" counter-key="A" remaining-calls-header-name="x-a-left" /><rate-limit-by-key calls="100" renewal-period="60" counter-key="B" remaining-calls-header-name="x-b-left" />"#;
    let gws: Vec<Gatehouse> = ["local", "fail-open", "fail-closed"]
        .iter()
        .map(|m| limits_gateway(&redis, &origin, m, two, two))
        .collect();
    for g in &gws {
        let r = g.get("/a/x", &[]);
        assert_eq!(r.status, 200, "{}", g.log());
    }
    // Each gateway has its own prefix (name): A has 1 left in Redis for each.
    redis.kill();
    let statuses = |g: &Gatehouse| {
        (0..3)
            .map(|_| g.get("/a/x", &[]).status)
            .collect::<Vec<_>>()
    };
    // local: memory counters start afresh for the outage; A admits 2 there, then refuses.
    let local = &gws[0];
    let first = local.get("/a/x", &[]);
    assert_eq!(first.status, 200, "{}", local.log());
    assert_eq!(first.header("x-a-left"), Some("1"));
    assert_eq!(
        first.header("x-b-left"),
        Some("99"),
        "B counted in memory too"
    );
    assert_eq!(statuses(local), vec![200, 429, 429]);
    assert_eq!(statuses(&gws[1]), vec![200, 200, 200]);
    assert_eq!(statuses(&gws[2]), vec![500, 500, 500]);
    for g in &gws {
        assert!(g.log().contains("failure mode"), "{}", g.log());
    }
}

/// A limit that sets a variable ends its batch: the key expression of the next limit reads
/// the value the first one set (were it planned before, it would read the default and every
/// request would share one key).
#[test]
fn a_limit_that_sets_a_variable_ends_its_batch() {
    let redis = RedisServer::start();
    let origin = Origin::echo();
    let x = r#"<rate-limit-by-key calls="100" renewal-period="60" counter-key="A" remaining-calls-variable-name="left" /><rate-limit-by-key calls="1" renewal-period="60" counter-key="@("k" + context.Variables.GetValueOrDefault<int>("left", -1))" /><rate-limit-by-key calls="100" renewal-period="60" counter-key="C" />"#;
    let gw = limits_gateway(&redis, &origin, "local", x, "");
    let before = script_calls(&redis);
    let statuses: Vec<u16> = (0..4).map(|_| gw.get("/a/x", &[]).status).collect();
    // Keys k99, k98, ...: a new key each time, so the limit of 1 never refuses.
    assert_eq!(statuses, vec![200; 4], "{}", gw.log());
    // Two calls per request: A alone, then the other two together.
    let calls = script_calls(&redis) - before;
    assert!(
        (8..=9).contains(&calls),
        "{calls} script calls for 4 requests"
    );
}

/// A statement whose key expression fails inside a row of limits: the ones before it count
/// (as one by one they would have), it fails the request where it stands, the ones after it
/// are not counted.
#[test]
fn a_failing_key_expression_in_a_row_of_limits() {
    let redis = RedisServer::start();
    let origin = Origin::echo();
    let a = r#"<rate-limit-by-key calls="10" renewal-period="60" counter-key="A" remaining-calls-header-name="x-a-left" />"#;
    let c = r#"<rate-limit-by-key calls="10" renewal-period="60" counter-key="C" remaining-calls-header-name="x-c-left" />"#;
    let bad = r#"<rate-limit-by-key calls="10" renewal-period="60" counter-key="@((string)context.Variables["missing"])" />"#;
    let gw = limits_gateway(
        &redis,
        &origin,
        "local",
        &format!("{a}{bad}{c}"),
        &format!("{a}{c}"),
    );
    let r = gw.get("/a/x", &[]);
    assert_eq!(r.status, 500, "{}", gw.log());
    let p = gw.get("/a/probe", &[]);
    assert_eq!(p.status, 200, "{}", gw.log());
    assert_eq!(
        p.header("x-a-left"),
        Some("8"),
        "A counted the failed request"
    );
    assert_eq!(p.header("x-c-left"), Some("9"), "C did not");
}

/// The master that holds a counter's slot dies: its replica takes over (Redis Cluster
/// failover), and the gateways follow the new owner without a restart (the client library
/// refreshes the slot map on MOVED / connection errors; the store's probe marks Redis back).
/// While no master serves the slot, fail-closed answers 500. Counts are the replica's: Redis
/// replicates asynchronously, so hits counted just before the failover may be lost (the
/// window may admit that many more; docs/stores.md).
#[test]
fn a_cluster_follows_a_failover_of_a_slot_owner() {
    let (mut nodes, addrs) = start_cluster(3, 1);
    let origin = Origin::echo();
    let yaml = format!(
        "name: failover\nstore:\n  type: redis\n  timeout: 500ms\n  failure_mode: fail-closed\n  cluster:\n    nodes: [{}]\napis:\n{}",
        addrs
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", "),
        api_yaml(
            "a",
            "a",
            &format!("http://127.0.0.1:{}", origin.port),
            "    subscription_required: false\n",
            &[("rl", "GET", "/rl")]
        )
    );
    let rl = r#"<policies><inbound><base /><rate-limit-by-key calls="10" renewal-period="300" counter-key="the-counter" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;
    let a = Gatehouse::start(&yaml, &[("apis/a/rl.xml", rl)]);
    let b = Gatehouse::start(&yaml, &[("apis/a/rl.xml", rl)]);
    for g in [&a, &b, &a, &b] {
        assert_eq!(g.get("/a/rl", &[]).status, 200, "{}", g.log());
    }
    // The counter's key carries `the-counter` as its hash tag: that is its slot.
    let slot: u16 = cli(nodes[0].port, &["cluster", "keyslot", "the-counter"])
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("keyslot: {e}"));
    let owner = slot_owner(nodes[0].port, slot).unwrap_or_else(|| panic!("no owner of {slot}"));
    let dead = nodes
        .iter()
        .position(|n| n.port == owner)
        .unwrap_or_else(|| panic!("owner {owner} is not a node"));
    nodes[dead].kill();
    let witness = nodes[(dead + 1) % nodes.len()].port;
    wait_until(
        "a replica took over the slot",
        Duration::from_secs(30),
        || {
            slot_owner(witness, slot).is_some_and(|p| p != owner)
                && cli(witness, &["cluster", "info"]).contains("cluster_state:ok")
        },
    );
    // Both gateways find the new owner by themselves (bounded: 20 s each).
    for g in [&a, &b] {
        wait_until(
            "the gateway counts in Redis again",
            Duration::from_secs(20),
            || g.get("/a/rl", &[]).status == 200,
        );
    }
    // The limit still holds across both instances: 10 in the window, at most the few hits
    // that did not reach the replica before the failover more.
    let mut statuses = Vec::new();
    for i in 0..20 {
        let g = if i % 2 == 0 { &a } else { &b };
        statuses.push(g.get("/a/rl", &[]).status);
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}\n{}",
        a.log()
    );
    let admitted = 4 + 2 + statuses.iter().filter(|s| **s == 200).count();
    assert!(
        (10..=14).contains(&admitted),
        "{admitted} admitted in all: {statuses:?}"
    );
    assert_eq!(
        &statuses[18..],
        &[429, 429],
        "both instances refuse at the end"
    );
}

/// TLS and ACL all the way: a TLS-only master with an ACL user, and a TLS-only sentinel with
/// its own password that reaches the master over TLS with that user. The gateway asks the
/// sentinel over TLS (its password from a named value) and counts on the master over TLS (the
/// ACL user's password from another); neither password reaches a log.
#[test]
fn sentinel_over_tls_with_passwords() {
    let certs = TempDir::new();
    certificates(&certs.0);
    let path = |f: &str| certs.0.join(f).display().to_string();
    let (cert, key, ca) = (path("server.pem"), path("server.key"), path("ca.pem"));
    certs.write(
        "users.acl",
        "user default off\nuser gatehouse on >master-s3cret ~* &* +@all\n",
    );
    let tls_args = |port_only: bool| {
        let mut v = vec![
            "--tls-cert-file".to_string(),
            cert.clone(),
            "--tls-key-file".into(),
            key.clone(),
            "--tls-ca-cert-file".into(),
            ca.clone(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        if port_only {
            v.extend(["--aclfile".into(), path("users.acl")]);
        }
        v
    };
    let master = RedisServer::start_with(
        tls_args(true),
        vec![
            "--tls".into(),
            "--cacert".into(),
            ca.clone(),
            "--user".into(),
            "gatehouse".into(),
            "--pass".into(),
            "master-s3cret".into(),
        ],
        true,
    );
    let sentinel = SentinelProc::start_with(
        master.port,
        1,
        &format!(
            "tls-port PORT\ntls-cert-file {cert}\ntls-key-file {key}\ntls-ca-cert-file {ca}\ntls-auth-clients no\ntls-replication yes\nrequirepass sentinel-s3cret\nsentinel auth-user mymaster gatehouse\nsentinel auth-pass mymaster master-s3cret"
        ),
    );
    let sentinel_cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args([
                "--tls",
                "--cacert",
                &ca,
                "-a",
                "sentinel-s3cret",
                "--no-auth-warning",
            ])
            .args(["-p", &sentinel.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("redis-cli: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The sentinel answers over TLS and sees the master up (it logged in with the ACL user).
    wait_until(
        "the sentinel monitors the master",
        Duration::from_secs(20),
        || {
            let m = sentinel_cli(&["sentinel", "master", "mymaster"]);
            m.contains("flags\nmaster\n") && !m.contains("disconnected")
        },
    );
    let origin = Origin::echo();
    let cfg = |sentinel_pw_env: &str| {
        format!(
            "name: sentinel-tls\nnamed_values:\n  master-pw:\n    env: GH_MASTER_PW\n  sentinel-pw:\n    env: {sentinel_pw_env}\nstore:\n  type: redis\n  username: gatehouse\n  password: master-pw\n  timeout: 1s\n  failure_mode: fail-closed\n  tls:\n    ca_file: {ca}\n  sentinel:\n    master_name: mymaster\n    nodes: [\"127.0.0.1:{}\"]\n    tls: true\n    password: sentinel-pw\napis:\n{}",
            sentinel.port,
            rl_api(&origin)
        )
    };
    let env = [
        ("GH_MASTER_PW", "master-s3cret"),
        ("GH_SENTINEL_PW", "sentinel-s3cret"),
        ("GH_WRONG_PW", "not-the-sentinel-pw"),
    ];
    exact_across_two_then_refused(
        cfg,
        "GH_SENTINEL_PW",
        &env,
        &["s3cret", "not-the-sentinel-pw"],
        "found through the sentinel",
    );
}
