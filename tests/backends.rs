//! Backend entities through the real binary: weighted pools, priority failover and fail-back,
//! circuit breakers (count, trip duration, Retry-After, half-open), active health checks, and
//! the 503 when nothing is available.

mod common;
use common::*;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An origin that answers with its name, or with the status in `fail` when that is non-zero.
/// `/health` answers 503 while `sick` is set.
struct Named {
    origin: Origin,
    fail: Arc<AtomicU16>,
    sick: Arc<AtomicBool>,
}

fn named(name: &'static str) -> Named {
    let fail = Arc::new(AtomicU16::new(0));
    let sick = Arc::new(AtomicBool::new(false));
    let (f, s) = (fail.clone(), sick.clone());
    let origin = Origin::start(move |r| {
        if r.path() == "/health" {
            let st = if s.load(Ordering::SeqCst) { 503 } else { 200 };
            return Reply::Full(Response::new(st, "health"));
        }
        match f.load(Ordering::SeqCst) {
            0 => Reply::Full(
                Response::new(200, format!("{name}:{}", String::from_utf8_lossy(&r.body)))
                    .with_header("X-Member", name),
            ),
            429 => Reply::Full(Response::new(429, "slow down").with_header("Retry-After", "1")),
            st => Reply::Full(Response::new(st, format!("{name} failing"))),
        }
    });
    Named { origin, fail, sick }
}

fn backend(id: &str, o: &Named, extra: &str) -> String {
    format!(
        "  - id: {id}\n    url: http://127.0.0.1:{}\n{extra}",
        o.origin.port
    )
}

/// One API `/p` whose backend is `target`, with the given backend section.
fn gateway(backends: &str, target: &str, backend_section: &str) -> Gatehouse {
    let yaml = format!(
        "backends:\n{backends}apis:\n  - id: p\n    path: p\n    backend: {target}\n    subscription_required: false\n    operations:\n      - id: any\n        method: \"*\"\n        url_template: \"/{{*rest}}\"\n"
    );
    let doc = format!(
        "<policies><inbound><base /></inbound><backend>{backend_section}</backend><outbound><base /><set-header name=\"X-Backend\" exists-action=\"override\"><value>@(context.Backend.Type + \":\" + context.Backend.Id)</value></set-header></outbound><on-error><base /></on-error></policies>"
    );
    Gatehouse::start(&yaml, &[("apis/p/any.xml", &doc)])
}

fn member(r: &Response) -> String {
    r.header("x-member").unwrap_or("-").to_string()
}

#[test]
fn weights_hold_over_ten_thousand_requests() {
    let (a, b, c) = (named("a"), named("b"), named("c"));
    let backends = format!(
        "{}{}{}  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: a, weight: 5 }}\n        - {{ id: b, weight: 3 }}\n        - {{ id: c, weight: 2 }}\n",
        backend("a", &a, ""),
        backend("b", &b, ""),
        backend("c", &c, "")
    );
    let gw = gateway(&backends, "pool", "<forward-request />");
    let mut client = KeepAlive::new(gw.port);
    let mut counts = std::collections::HashMap::new();
    for _ in 0..10_000 {
        let r = client.get("/p/x");
        assert_eq!(r.status, 200, "{}", r.text());
        *counts.entry(member(&r)).or_insert(0u32) += 1;
    }
    let r = client.get("/p/x");
    assert_eq!(r.header("x-backend"), Some("Pool:pool"));
    // Smooth weighted round-robin is exact over every cycle of 10 picks; the stated
    // tolerance is 1% of the requests.
    for (m, want) in [("a", 5000), ("b", 3000), ("c", 2000)] {
        let got = counts.get(m).copied().unwrap_or(0);
        assert!(
            (got as i64 - want).abs() <= 100,
            "member {m}: {got} of 10000, want {want} ± 100 ({counts:?})"
        );
    }
    // Weights hold on every pick, not only the first: any 10 consecutive picks hold 5/3/2.
    let mut window = std::collections::HashMap::new();
    for _ in 0..10 {
        *window.entry(member(&client.get("/p/x"))).or_insert(0) += 1;
    }
    assert_eq!(
        (window.get("a"), window.get("b"), window.get("c")),
        (Some(&5), Some(&3), Some(&2)),
        "{window:?}"
    );
}

const BREAKER: &str = "    circuit_breaker:\n      rules:\n        - name: five-hundreds\n          failure_condition:\n            count: 2\n            interval: 10s\n            status_code_ranges: [{ min: 500, max: 599 }]\n            error_reasons: [BackendConnectionFailure, Timeout]\n          trip_duration: 1s\n";

#[test]
fn priority_failover_and_fail_back() {
    let (primary, secondary) = (named("primary"), named("secondary"));
    let backends = format!(
        "{}{}  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: primary, priority: 1 }}\n        - {{ id: secondary, priority: 2 }}\n",
        backend("primary", &primary, BREAKER),
        backend("secondary", &secondary, BREAKER)
    );
    let gw = gateway(&backends, "pool", "<forward-request />");
    let mut client = KeepAlive::new(gw.port);
    // The lower priority group gets nothing while the primary is available.
    for _ in 0..20 {
        assert_eq!(member(&client.get("/p/x")), "primary");
    }
    assert_eq!(secondary.origin.count(), 0);
    // The primary fails: two 5xx trip its breaker, then the secondary serves.
    primary.fail.store(500, Ordering::SeqCst);
    assert_eq!(client.get("/p/x").status, 500);
    assert_eq!(client.get("/p/x").status, 500);
    let seen = primary.origin.count();
    for _ in 0..10 {
        let r = client.get("/p/x");
        assert_eq!((r.status, member(&r)), (200, "secondary".to_string()));
    }
    assert_eq!(
        primary.origin.count(),
        seen,
        "nothing reaches a tripped member"
    );
    // The primary recovers; after the trip duration one probe closes its breaker and traffic
    // fails back.
    primary.fail.store(0, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1100));
    for _ in 0..5 {
        assert_eq!(member(&client.get("/p/x")), "primary");
    }
    let m = get(gw.admin, "/metrics", &[]).text();
    assert!(
        m.contains(
            "gatehouse_backend_circuit_transitions_total{backend=\"primary\",state=\"open\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "gatehouse_backend_circuit_transitions_total{backend=\"primary\",state=\"closed\"} 1"
        ),
        "{m}"
    );
    assert!(gw
        .log()
        .contains("backend `primary`: circuit breaker tripped"));
}

#[test]
fn breaker_trips_after_failures_and_closes_after_the_trip_duration() {
    let o = named("solo");
    let gw = gateway(&backend("solo", &o, BREAKER), "solo", "<forward-request />");
    o.fail.store(503, Ordering::SeqCst);
    assert_eq!(gw.get("/p/a", &[]).status, 503);
    assert_eq!(gw.get("/p/a", &[]).status, 503);
    assert_eq!(o.origin.count(), 2);
    // Open: 503 from the gateway at once, nothing sent upstream.
    let r = gw.get("/p/a", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["message"],
        "Service unavailable: no backend is available to serve the request. Try again later."
    );
    assert_eq!(r.json()["statusCode"], 503);
    assert_eq!(o.origin.count(), 2);
    assert_eq!(gw.last_log()["error"], "BackendUnavailable");
    // Still open just before the trip duration ends.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(gw.get("/p/a", &[]).status, 503);
    assert_eq!(o.origin.count(), 2);
    o.fail.store(0, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    let r = gw.get("/p/a", &[]);
    assert_eq!((r.status, member(&r)), (200, "solo".to_string()));
    assert_eq!(r.header("x-backend"), Some("Single:solo"));
    assert_eq!(gw.get("/p/a", &[]).status, 200);
}

/// Backends written with ARM's names and value forms (as Bicep, ARM templates and APIOps write
/// them): `type: Pool`, members by ARM resource id with weight 0 (APIM's default weighting),
/// `circuitBreaker` / `failureCondition` / `statusCodeRanges` / `errorReasons` / `tripDuration`
/// with ISO 8601 durations, `credentials.header`, `protocol`, `description`, `resourceId`.
#[test]
fn arm_names_for_a_pool_its_members_and_their_breakers() {
    let (primary, secondary) = (named("primary"), named("secondary"));
    let arm = |id: &str| {
        format!("/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim/backends/{id}")
    };
    let breaker = "    circuitBreaker:\n      rules:\n        - name: five-hundreds\n          failureCondition:\n            count: 2\n            interval: PT10S\n            statusCodeRanges: [{ min: 500, max: 599 }]\n            errorReasons: [Server errors]\n          tripDuration: PT0.5S\n          acceptRetryAfter: false\n";
    let extra = |name: &str| {
        format!("    protocol: http\n    description: {name} member\n    resourceId: https://management.azure.com/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Web/sites/{name}\n    credentials:\n      header:\n        x-member-key: [\"key-{name}\"]\n{breaker}")
    };
    let backends = format!(
        "{}{}  - id: pool\n    type: Pool\n    pool:\n      services:\n        - {{ id: \"{}\", priority: 1, weight: 0 }}\n        - {{ id: \"{}\", priority: 2, weight: 0 }}\n",
        backend("primary", &primary, &extra("primary")),
        backend("secondary", &secondary, &extra("secondary")),
        arm("primary"),
        arm("secondary"),
    );
    let gw = gateway(&backends, "pool", "<forward-request />");
    let r = gw.get("/p/x", &[]);
    assert_eq!(member(&r), "primary");
    assert_eq!(
        primary.origin.last().header("x-member-key"),
        Some("key-primary")
    );
    // Two 5xx trip the primary's breaker (count 2 in PT10S); the secondary serves.
    primary.fail.store(500, Ordering::SeqCst);
    assert_eq!(gw.get("/p/x", &[]).status, 500);
    assert_eq!(gw.get("/p/x", &[]).status, 500);
    primary.fail.store(0, Ordering::SeqCst);
    assert_eq!(member(&gw.get("/p/x", &[])), "secondary");
    assert_eq!(
        secondary.origin.last().header("x-member-key"),
        Some("key-secondary")
    );
    // After tripDuration PT0.5S the primary is back.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(member(&gw.get("/p/x", &[])), "primary");
}

#[test]
fn connection_failures_trip_the_breaker() {
    // Nothing listens on this port: BackendConnectionFailure counts as a failure.
    let dead = free_port();
    let backends = format!("  - id: dead\n    url: http://127.0.0.1:{dead}\n{BREAKER}");
    let gw = gateway(&backends, "dead", "<forward-request />");
    assert_eq!(gw.get("/p/a", &[]).status, 500);
    assert_eq!(gw.last_log()["error"], "BackendConnectionFailure");
    assert_eq!(gw.get("/p/a", &[]).status, 500);
    let r = gw.get("/p/a", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(gw.last_log()["error"], "BackendUnavailable");
}

#[test]
fn retry_after_is_honoured_as_the_trip_duration() {
    let o = named("limited");
    let rule = "    circuit_breaker:\n      rules:\n        - name: throttled\n          failure_condition:\n            count: 1\n            interval: 10s\n            status_code_ranges: [{ min: 429, max: 429 }]\n          trip_duration: 60s\n          accept_retry_after: true\n";
    let gw = gateway(
        &backend("limited", &o, rule),
        "limited",
        "<forward-request />",
    );
    o.fail.store(429, Ordering::SeqCst);
    assert_eq!(gw.get("/p/a", &[]).status, 429);
    o.fail.store(0, Ordering::SeqCst);
    assert_eq!(gw.get("/p/a", &[]).status, 503, "open after the 429");
    // Retry-After: 1 replaced the 60 s trip duration.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(gw.get("/p/a", &[]).status, 200);
}

#[test]
fn health_checks_take_a_member_out_and_bring_it_back() {
    let (a, b) = (named("a"), named("b"));
    let check = "    health_check:\n      path: /health\n      interval: 200ms\n      timeout: 1s\n      unhealthy_threshold: 2\n";
    let backends = format!(
        "{}{}  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: a }}\n        - {{ id: b }}\n{check}",
        backend("a", &a, ""),
        backend("b", &b, "")
    );
    let gw = gateway(&backends, "pool", "<forward-request />");
    let mut client = KeepAlive::new(gw.port);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        seen.insert(member(&client.get("/p/x")));
    }
    assert_eq!(seen.len(), 2, "both members serve: {seen:?}");
    a.sick.store(true, Ordering::SeqCst);
    // Two failed checks 200 ms apart take `a` out; wait (bounded) for it.
    let start = Instant::now();
    let mut only_b = 0;
    while start.elapsed() < Duration::from_secs(5) && only_b < 10 {
        if member(&client.get("/p/x")) == "b" {
            only_b += 1;
        } else {
            only_b = 0;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(only_b, 10, "a is out of service");
    let m = get(gw.admin, "/metrics", &[]).text();
    assert!(
        m.contains("gatehouse_backend_healthy{backend=\"a\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("gatehouse_backend_healthy{backend=\"b\"} 1"),
        "{m}"
    );
    assert!(gw.log().contains("backend `a`: health check failing"));
    a.sick.store(false, Ordering::SeqCst);
    let start = Instant::now();
    let mut back = false;
    while start.elapsed() < Duration::from_secs(5) && !back {
        back = member(&client.get("/p/x")) == "a";
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(back, "a is back in service");
}

#[test]
fn every_member_unavailable_is_a_503() {
    let (a, b) = (named("a"), named("b"));
    let backends = format!(
        "{}{}  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: a }}\n        - {{ id: b, priority: 2 }}\n",
        backend("a", &a, BREAKER),
        backend("b", &b, BREAKER)
    );
    let gw = gateway(&backends, "pool", "<forward-request />");
    a.fail.store(500, Ordering::SeqCst);
    b.fail.store(500, Ordering::SeqCst);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(gw.get("/p/x", &[]).status);
    }
    assert_eq!(statuses, vec![500, 500, 500, 500, 503]);
    let r = gw.get("/p/x", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let m = get(gw.admin, "/metrics", &[]).text();
    assert!(
        m.contains("gatehouse_backend_unavailable_total{backend=\"pool\"} 2"),
        "{m}"
    );
}

#[test]
fn bad_backend_configuration_is_reported_with_positions() {
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:0\nbackends:\n  - id: a\n    url: http://127.0.0.1:1\n    protocol: ftp\n    circuit_breaker:\n      rules:\n        - failure_condition:\n            interval: 10s\n          trip_duration: 5s\n  - id: p\n    type: pool\n    pool:\n      services:\n        - { id: a, weight: 2000 }\n        - { id: nope }\n  - id: q\n    type: pool\n    pool:\n      services:\n        - { id: p }\napis: []\n",
    );
    let out = run_cli(&dir.0, &["check", "-c", "gatehouse.yaml"]);
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{err}");
    for want in [
        "C034",
        "exactly one of `count` or `percentage`",
        "weight 2000",
        "protocol must be http or soap, found \"ftp\"",
        "unknown backend `nope`",
        "member `p` is a pool",
        "gatehouse.yaml:4:",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn a_refused_connection_moves_to_the_next_pool_member() {
    // No retry policy and no breaker: a member that refuses connections costs nothing visible,
    // because nothing was sent and the pool's next member is tried.
    let dead = free_port();
    let live = named("live");
    let backends = format!(
        "  - id: dead\n    url: http://127.0.0.1:{dead}\n{}  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: dead }}\n        - {{ id: live }}\n",
        backend("live", &live, "")
    );
    let gw = gateway(&backends, "pool", "<forward-request />");
    for _ in 0..6 {
        let r = gw.send("POST", "/p/x", &[], b"payload");
        assert_eq!((r.status, r.text()), (200, "live:payload".to_string()));
    }
    // A single backend is not retried.
    let gw = gateway(
        &format!("  - id: dead\n    url: http://127.0.0.1:{dead}\n"),
        "dead",
        "<forward-request />",
    );
    assert_eq!(gw.get("/p/x", &[]).status, 500);
}

#[test]
fn a_connect_retry_never_picks_a_member_the_request_already_tried() {
    // Issue 12, item 9: weights 2:1 give the pick order dead, live, dead. The second request
    // picks dead at the end of a cycle; its connect retry must not take the next pick (dead
    // again, at the start of the next cycle) but a member it has not tried.
    let dead = free_port();
    let live = named("live");
    let backends = format!(
        "  - id: dead\n    url: http://127.0.0.1:{dead}\n{}  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: dead, weight: 2 }}\n        - {{ id: live, weight: 1 }}\n",
        backend("live", &live, "")
    );
    let gw = gateway(&backends, "pool", "<forward-request />");
    for i in 0..9 {
        let r = gw.get("/p/x", &[]);
        assert_eq!((i, r.status), (i, 200), "{}", r.text());
    }
}

#[test]
fn a_backend_and_send_request_through_an_http_forward_proxy() {
    // The "proxy" is a loopback origin that records the absolute-form request it receives.
    let proxy = Origin::start(|r| {
        Reply::Full(Response::new(
            200,
            format!(
                "proxied {} host={} auth={}",
                r.target,
                r.header("host").unwrap_or("-"),
                r.header("proxy-authorization").unwrap_or("-")
            ),
        ))
    });
    // The backend host does not resolve here: only the proxy is connected to.
    let backends = format!(
        "  - id: far\n    url: http://orders.invalid:9999/api\n    proxy:\n      url: http://127.0.0.1:{}\n      username: gw\n      password: secret\n    health_check:\n      path: /health\n      interval: 200ms\n",
        proxy.port
    );
    let gw = gateway(&backends, "far", "<forward-request />");
    let r = gw.get("/p/list?x=1", &[]);
    assert_eq!(
        (r.status, r.text()),
        (
            200,
            "proxied http://orders.invalid:9999/api/list?x=1 host=orders.invalid:9999 auth=Basic Z3c6c2VjcmV0".to_string()
        )
    );
    // The health check goes to the proxy too, in absolute form with the credentials.
    let start = Instant::now();
    let checked = || {
        proxy
            .requests
            .lock()
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .any(|r| {
                r.target == "http://orders.invalid:9999/api/health"
                    && r.header("user-agent") == Some("gatehouse-health-check")
                    && r.header("proxy-authorization") == Some("Basic Z3c6c2VjcmV0")
            })
    };
    while !checked() && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(checked(), "no health check reached the proxy");
    // send-request's <proxy> child.
    let yaml = "apis:\n  - id: s\n    path: s\n    service_url: http://127.0.0.1:1\n    subscription_required: false\n    operations:\n      - id: t\n        method: GET\n        url_template: /t\n";
    let policy = format!(
        r#"<policies><inbound><base /><send-request mode="new" response-variable-name="r" timeout="5"><set-url>http://token.invalid/oauth?a=b</set-url><set-method>GET</set-method><proxy url="http://127.0.0.1:{}" /></send-request><return-response><set-status code="200" /><set-body>@(((IResponse)context.Variables["r"]).Body.As<string>())</set-body></return-response></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
        proxy.port
    );
    let gw = Gatehouse::start(yaml, &[("apis/s/t.xml", &policy)]);
    assert_eq!(
        gw.get("/s/t", &[]).text(),
        "proxied http://token.invalid/oauth?a=b host=token.invalid auth=-"
    );
}

#[test]
fn keepalive_timeout_controls_upstream_connection_reuse() {
    let (reused, fresh) = (named("reused"), named("fresh"));
    let backends = format!(
        "{}{}",
        backend("reused", &reused, ""),
        backend("fresh", &fresh, "    keepalive_timeout: 0s\n")
    );
    for (o, id) in [(&reused, "reused"), (&fresh, "fresh")] {
        let gw = gateway(&backends, id, "<forward-request />");
        let mut c = KeepAlive::new(gw.port);
        for _ in 0..5 {
            assert_eq!(c.get("/p/x").status, 200);
            std::thread::sleep(Duration::from_millis(20));
        }
        let conns = o.origin.conns.load(Ordering::SeqCst);
        if id == "reused" {
            assert_eq!(conns, 1, "one pooled connection for five requests");
        } else {
            assert_eq!(conns, 5, "keepalive_timeout 0s: a connection per request");
        }
    }
}

#[test]
fn an_unresolvable_health_checked_backend_is_reported_once_and_retried_per_interval() {
    let live = named("live");
    let backends = format!(
        "  - id: ghost\n    url: http://ghost.invalid:8080\n    health_check:\n      interval: 200ms\n{}",
        backend("live", &live, "")
    );
    let gw = gateway(&backends, "live", "<forward-request />");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(gw.get("/p/x", &[]).status, 200);
    let log = gw.log();
    assert_eq!(
        log.matches("backend `ghost`: health check not started")
            .count(),
        1,
        "{log}"
    );
}

#[test]
fn tcp_checks_and_expected_statuses() {
    let dead = free_port();
    let odd = named("odd");
    // `odd` answers /health with 503, which its check expects; `dead` refuses connections.
    odd.sick.store(true, Ordering::SeqCst);
    let backends = format!(
        "  - id: dead\n    url: http://127.0.0.1:{dead}\n    health_check:\n      kind: tcp\n      interval: 200ms\n{}",
        backend(
            "odd",
            &odd,
            "    health_check:\n      path: /health\n      expected_statuses: [503]\n      interval: 200ms\n"
        )
    );
    let gw = gateway(&backends, "odd", "<forward-request />");
    let start = Instant::now();
    let mut m = String::new();
    while start.elapsed() < Duration::from_secs(5) {
        m = get(gw.admin, "/metrics", &[]).text();
        if m.contains("gatehouse_backend_healthy{backend=\"dead\"} 0")
            && m.contains("gatehouse_backend_healthy{backend=\"odd\"} 1")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        m.contains("gatehouse_backend_healthy{backend=\"dead\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("gatehouse_backend_healthy{backend=\"odd\"} 1"),
        "{m}"
    );
    assert!(gw.log().contains("backend `dead`: health check failing"));
    assert_eq!(gw.get("/p/x", &[]).status, 200);
}

#[test]
fn while_a_half_open_probe_is_out_the_pool_serves_from_the_next_member() {
    // Issue 12 item 9: requests that met a member whose half-open probe another request held
    // got 503 BackendUnavailable although the next member was healthy.
    let slow = Arc::new(AtomicBool::new(false));
    let s = slow.clone();
    let primary = Origin::start(move |_| {
        if s.load(Ordering::SeqCst) {
            Reply::Delay(Duration::from_millis(1500), Response::new(200, "primary"))
        } else {
            Reply::Full(Response::new(500, "primary failing"))
        }
    });
    let secondary = named("secondary");
    let rule = "    circuit_breaker:\n      rules:\n        - name: five-hundreds\n          failure_condition:\n            count: 1\n            interval: 10s\n            status_code_ranges: [{ min: 500, max: 599 }]\n          trip_duration: 1s\n";
    let backends = format!(
        "  - id: primary\n    url: http://127.0.0.1:{}\n{rule}{}  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: primary, priority: 1 }}\n        - {{ id: secondary, priority: 2 }}\n",
        primary.port,
        backend("secondary", &secondary, "")
    );
    let gw = gateway(&backends, "pool", "<forward-request />");
    assert_eq!(gw.get("/p/x", &[]).status, 500, "the breaker opens");
    slow.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1100));
    // One request takes the probe (held 1.5 s by the primary); the others meanwhile.
    let port = gw.port;
    let probe = std::thread::spawn(move || get(port, "/p/probe", &[]).status);
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..10 {
        let r = gw.get("/p/x", &[]);
        assert_eq!(
            (r.status, member(&r)),
            (200, "secondary".to_string()),
            "{}",
            r.text()
        );
    }
    assert_eq!(probe.join().ok(), Some(200));
}

#[test]
fn a_member_killed_under_load_costs_no_request() {
    // Issue 12 item 9: after one member of a two-member pool was killed under load, a few
    // requests got 503 BackendUnavailable although the other member was healthy.
    let a = Origin::start(|r| Reply::Full(echo_response(r)));
    let b = Origin::start(|r| Reply::Full(echo_response(r)));
    let rule = "    circuit_breaker:\n      rules:\n        - name: conn\n          failure_condition:\n            count: 2\n            interval: 10s\n            error_reasons: [BackendConnectionFailure, Timeout]\n          trip_duration: 300ms\n";
    let backends = format!(
        "  - id: a\n    url: http://127.0.0.1:{}\n{rule}  - id: b\n    url: http://127.0.0.1:{}\n{rule}  - id: pool\n    type: pool\n    pool:\n      services:\n        - {{ id: a }}\n        - {{ id: b }}\n",
        a.port, b.port
    );
    let gw = gateway(&backends, "pool", "<forward-request />");
    let stop = Arc::new(AtomicBool::new(false));
    let port = gw.port;
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = LoadClient::new(port);
                let (mut ok, mut failed) = (0u64, Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    match c.get("/p/x") {
                        Ok((200, _)) => ok += 1,
                        Ok((s, _)) => failed.push(format!("status {s}")),
                        Err(e) => failed.push(e),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(a);
    // Several trip / half-open / probe cycles of the dead member's breaker.
    std::thread::sleep(Duration::from_millis(3000));
    stop.store(true, Ordering::SeqCst);
    let (mut ok, mut failed) = (0, Vec::new());
    for c in clients {
        if let Ok((o, f)) = c.join() {
            ok += o;
            failed.extend(f);
        }
    }
    eprintln!(
        "pool member killed under load: {ok} ok, {} failed",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        ok + failed.len() as u64,
        &failed[..failed.len().min(5)]
    );
}
