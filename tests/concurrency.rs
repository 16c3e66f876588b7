//! limit-concurrency: slots around forward-request are held until the request ends; a full
//! limit answers 429 at once; nested blocks release their slot however they end.

mod common;
use common::*;
use std::time::Duration;

fn yaml(origin_port: u16) -> String {
    format!(
        "apis:\n{}",
        api_yaml(
            "l",
            "l",
            &format!("http://127.0.0.1:{origin_port}"),
            "    subscription_required: false\n",
            &[("slow", "GET", "/slow"), ("inner", "GET", "/inner")]
        )
    )
}

/// /slow answers after `ms`; anything else echoes.
fn slow_origin(ms: u64) -> Origin {
    Origin::start(move |r| match r.path() {
        "/slow" => Reply::Delay(Duration::from_millis(ms), Response::new(200, "slow")),
        _ => Reply::Full(echo_response(r)),
    })
}

/// forward-request inside a limit-concurrency of two slots.
const SLOW: &str = r#"<policies><inbound><base /></inbound><backend><limit-concurrency key="backend" max-count="2"><forward-request timeout="10" /></limit-concurrency></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;

#[test]
fn concurrent_requests_beyond_max_count_get_429() {
    let origin = slow_origin(800);
    let inner = r#"<policies><inbound><base /><limit-concurrency key="@("inner-" + context.Request.Method)" max-count="1"><set-header name="X-In-Block" exists-action="override"><value>yes</value></set-header></limit-concurrency></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;
    let gw = Gatehouse::start(
        &yaml(origin.port),
        &[("apis/l/slow.xml", SLOW), ("apis/l/inner.xml", inner)],
    );
    let port = gw.port;
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || get(port, "/l/slow", &[]).status))
        .collect();
    let mut statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap_or(0)).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 429, 429]);
    assert_eq!(origin.count(), 2);
    // Slots are released when the requests end.
    assert_eq!(gw.get("/l/slow", &[]).status, 200);
    // A block without forward-request releases its slot as it ends: sequential calls all pass.
    for _ in 0..3 {
        let r = gw.get("/l/inner", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(origin.last().header("x-in-block"), Some("yes"));
    }
    let log = gw.access_log();
    let rejected: Vec<_> = log.iter().filter(|l| l["status"] == 429).collect();
    assert!(
        rejected
            .iter()
            .all(|l| l["error"] == "ConcurrencyLimitExceeded"),
        "{rejected:?}"
    );
}

#[test]
fn a_client_that_disconnects_gives_its_slot_back() {
    let origin = slow_origin(500);
    let gw = Gatehouse::start(&yaml(origin.port), &[("apis/l/slow.xml", SLOW)]);
    // Two clients take both slots and hang up before the backend answers.
    for _ in 0..2 {
        use std::io::Write;
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", gw.port)) else {
            panic!("cannot connect to gatehouse")
        };
        assert!(s
            .write_all(b"GET /l/slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .is_ok());
        std::thread::sleep(Duration::from_millis(50));
        drop(s);
    }
    // Wait until both abandoned requests have ended (bounded), then both slots are free again.
    for _ in 0..40 {
        if gw.access_log().len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        origin.count(),
        2,
        "both abandoned requests reached the backend while holding a slot"
    );
    let port = gw.port;
    let threads: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(port, "/l/slow", &[]).status))
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap_or(0)).collect();
    assert_eq!(
        statuses,
        vec![200, 200],
        "slots of disconnected clients were released"
    );
}
