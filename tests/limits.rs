//! Rate limits and quotas with the in-memory store, through the real binary.

mod common;
use common::*;
use std::time::Duration;

fn yaml(origin_port: u16) -> String {
    format!(
        "apis:\n{}{}{}products:\n  - id: gold\n    apis: [keyed, keyed2]\nsubscriptions:\n  - id: s1\n    scope: product:gold\n    primary_key: key-one-12345\n  - id: s2\n    scope: product:gold\n    primary_key: key-two-12345\n",
        api_yaml(
            "open",
            "open",
            &format!("http://127.0.0.1:{origin_port}"),
            "    subscription_required: false\n",
            &[("rl", "GET", "/rl"), ("cond", "GET", "/cond/{code}"), ("quota", "GET", "/quota"), ("bw", "POST", "/bw")]
        ),
        api_yaml("keyed", "keyed", &format!("http://127.0.0.1:{origin_port}"), "", &[("a", "GET", "/a"), ("b", "GET", "/b")]),
        api_yaml("keyed2", "keyed2", &format!("http://127.0.0.1:{origin_port}"), "", &[("c", "GET", "/c")]),
    )
}

fn doc(inbound: &str, outbound: &str) -> String {
    sections(inbound, "", outbound, "")
}

fn origin() -> Origin {
    Origin::start(|r| {
        let code: u16 = r
            .path()
            .rsplit('/')
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or(200);
        Reply::Full(Response::new(code, "x".repeat(100)))
    })
}

#[test]
fn rate_limit_by_key_sliding_window() {
    let o = origin();
    let rl = r#"<rate-limit-by-key calls="3" renewal-period="2" counter-key="@(context.Request.Headers.GetValueOrDefault("X-Client", "anon"))"
        remaining-calls-header-name="X-Remaining" total-calls-header-name="X-Total" remaining-calls-variable-name="left" retry-after-variable-name="wait" />
        <set-header name="X-Left-Var" exists-action="override"><value>@(context.Variables.GetValueOrDefault<int>("left", -1).ToString())</value></set-header>"#;
    let gw = Gatehouse::start(&yaml(o.port), &[("apis/open/rl.xml", &doc(rl, ""))]);
    for i in 0..3 {
        let r = gw.get("/open/rl", &[("X-Client", "a")]);
        assert_eq!(r.status, 200, "call {i}");
        assert_eq!(r.header("x-remaining"), Some((2 - i).to_string().as_str()));
        assert_eq!(r.header("x-total"), Some("3"));
    }
    assert_eq!(o.last().header("x-left-var"), Some("0"));
    let r = gw.get("/open/rl", &[("X-Client", "a")]);
    assert_eq!(r.status, 429);
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        r.text(),
        format!(
            r#"{{"statusCode":429,"message":"Rate limit is exceeded. Try again in {retry} seconds."}}"#
        )
    );
    assert_eq!(gw.last_log()["error"], "RateLimitExceeded");
    assert_eq!(o.count(), 3);
    // Another key has its own counter.
    assert_eq!(gw.get("/open/rl", &[("X-Client", "b")]).status, 200);
    // After the window, calls are admitted again.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(gw.get("/open/rl", &[("X-Client", "a")]).status, 200);
}

#[test]
fn deferred_increment_counts_only_successful_responses() {
    let o = origin();
    let rl = r#"<rate-limit-by-key calls="2" renewal-period="60" counter-key="cond" increment-condition="@(context.Response.StatusCode < 400)" retry-after-header-name="X-Retry-In" />"#;
    let gw = Gatehouse::start(&yaml(o.port), &[("apis/open/cond.xml", &doc(rl, ""))]);
    // Failures are not counted.
    for _ in 0..4 {
        assert_eq!(gw.get("/open/cond/500", &[]).status, 500);
    }
    assert_eq!(gw.get("/open/cond/200", &[]).status, 200);
    gw.last_log();
    assert_eq!(gw.get("/open/cond/200", &[]).status, 200);
    gw.last_log();
    let r = gw.get("/open/cond/200", &[]);
    assert_eq!(r.status, 429);
    assert!(r.header("x-retry-in").is_some());
    assert_eq!(r.header("retry-after"), None);
}

#[test]
fn rate_limit_per_subscription_with_nested_operation_limit() {
    let o = origin();
    let product = r#"<rate-limit calls="10" renewal-period="60">
            <api name="keyed" calls="5" renewal-period="60">
                <operation name="b" calls="1" renewal-period="60" />
            </api>
        </rate-limit>"#;
    let gw = Gatehouse::start(&yaml(o.port), &[("products/gold.xml", &doc(product, ""))]);
    let k1 = [("Ocp-Apim-Subscription-Key", "key-one-12345")];
    let k2 = [("Ocp-Apim-Subscription-Key", "key-two-12345")];
    assert_eq!(gw.get("/keyed/b", &k1).status, 200);
    assert_eq!(gw.get("/keyed/b", &k1).status, 429, "operation limit of 1");
    assert_eq!(
        gw.get("/keyed/b", &k2).status,
        200,
        "separate counter per subscription"
    );
    for i in 0..4 {
        assert_eq!(gw.get("/keyed/a", &k1).status, 200, "call {i}");
    }
    assert_eq!(
        gw.get("/keyed/a", &k1).status,
        429,
        "api limit of 5 (b's calls count too)"
    );
}

#[test]
fn quota_by_key_calls_and_bandwidth() {
    let o = origin();
    let calls = r#"<quota-by-key calls="2" renewal-period="300" counter-key="@(context.Request.IpAddress)" />"#;
    let bw = r#"<quota-by-key bandwidth="1" renewal-period="0" counter-key="bw" />
        <quota-by-key bandwidth="1" renewal-period="0" counter-key="bw" />"#;
    let gw = Gatehouse::start(
        &yaml(o.port),
        &[
            ("apis/open/quota.xml", &doc(calls, "")),
            ("apis/open/bw.xml", &doc(bw, "")),
        ],
    );
    assert_eq!(gw.get("/open/quota", &[]).status, 200);
    assert_eq!(gw.get("/open/quota", &[]).status, 200);
    let r = gw.get("/open/quota", &[]);
    assert_eq!(r.status, 403);
    let msg = r.json()["message"].as_str().unwrap_or("").to_string();
    assert!(
        msg.starts_with("Out of call volume quota. Quota will be replenished in 00:0"),
        "{msg}"
    );
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=300).contains(&retry), "{retry}");
    assert_eq!(gw.last_log()["error"], "QuotaExceeded");
    // Bandwidth counts request + response bytes after the response; two policies on the same
    // key count once.
    let body = vec![b'x'; 2000];
    assert_eq!(gw.send("POST", "/open/bw", &[], &body).status, 200);
    gw.last_log();
    let r = gw.send("POST", "/open/bw", &[], b"y");
    assert_eq!(r.status, 403);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Out of bandwidth quota."),
        "{}",
        r.text()
    );
}

/// How a `rate-limit` counter is scoped (Microsoft's pages say only "per subscription"; the
/// choice is docs/policies.md's): one counter per subscription for the statement's calls and
/// period, across every API the statement covers. A product-scope statement counts the calls to
/// all the product's APIs together; another subscription has its own counter.
#[test]
fn rate_limit_at_product_scope_counts_every_api_of_the_product_per_subscription() {
    let o = origin();
    let product = r#"<rate-limit calls="3" renewal-period="60" />"#;
    let gw = Gatehouse::start(&yaml(o.port), &[("products/gold.xml", &doc(product, ""))]);
    let k1 = [("Ocp-Apim-Subscription-Key", "key-one-12345")];
    let k2 = [("Ocp-Apim-Subscription-Key", "key-two-12345")];
    assert_eq!(gw.get("/keyed/a", &k1).status, 200);
    assert_eq!(gw.get("/keyed2/c", &k1).status, 200);
    assert_eq!(gw.get("/keyed/b", &k1).status, 200);
    assert_eq!(
        gw.get("/keyed2/c", &k1).status,
        429,
        "the fourth call to any API of the product"
    );
    assert_eq!(gw.get("/keyed/a", &k1).status, 429);
    assert_eq!(
        gw.get("/keyed2/c", &k2).status,
        200,
        "another subscription's own counter"
    );
}

#[test]
fn quota_per_subscription_at_product_scope() {
    let o = origin();
    let product = r#"<quota calls="2" renewal-period="3600" />"#;
    let gw = Gatehouse::start(&yaml(o.port), &[("products/gold.xml", &doc(product, ""))]);
    let k1 = [("Ocp-Apim-Subscription-Key", "key-one-12345")];
    assert_eq!(gw.get("/keyed/a", &k1).status, 200);
    assert_eq!(gw.get("/keyed/b", &k1).status, 200);
    assert_eq!(gw.get("/keyed/a", &k1).status, 403);
    assert_eq!(
        gw.get(
            "/keyed/a",
            &[("Ocp-Apim-Subscription-Key", "key-two-12345")]
        )
        .status,
        200
    );
}

#[test]
fn limit_policies_are_checked_at_load() {
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        &format!(
            "listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: policies\n{}",
            yaml(1)
        ),
    );
    dir.write("policies/global.xml", "<policies><inbound><rate-limit calls=\"1\" renewal-period=\"10\" /></inbound><backend><forward-request /></backend></policies>");
    dir.write("policies/apis/open.xml", "<policies><inbound><base /><quota calls=\"1\" renewal-period=\"10\" /><rate-limit-by-key calls=\"1\" renewal-period=\"301\" counter-key=\"k\" /><quota-by-key calls=\"1\" renewal-period=\"10\" counter-key=\"k\" /></inbound></policies>");
    let out = run_cli(&dir.0, &["check", "-c", "gatehouse.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains(
            "error[P047]: <rate-limit> is allowed only at product, API and operation scope"
        ),
        "{err}"
    );
    assert!(
        err.contains("error[P047]: <quota> is allowed only at product scope"),
        "{err}"
    );
    assert!(
        err.contains("renewal-period must be 1 to 300 seconds"),
        "{err}"
    );
    assert!(
        err.contains(
            "quota-by-key `renewal-period` must be 0 (never renews) or at least 300 seconds"
        ),
        "{err}"
    );
}

#[test]
fn quota_windows_align_to_the_subscription_start_date() {
    let o = origin();
    // s1 started at an odd second: its 2-second windows begin at odd seconds, not even ones.
    let cfg = yaml(o.port).replace(
        "    primary_key: key-one-12345\n",
        "    primary_key: key-one-12345\n    start_date: 2020-01-01T00:00:01Z\n",
    );
    let product = r#"<quota calls="1" renewal-period="2" />"#;
    let gw = Gatehouse::start(&cfg, &[("products/gold.xml", &doc(product, ""))]);
    let k1 = [("Ocp-Apim-Subscription-Key", "key-one-12345")];
    let wait = |pred: &dyn Fn(u64) -> bool| wait_for_phase(2000, pred);
    wait(&|ms| (1000..1200).contains(&ms)); // just after an odd second: s1's window opens
    assert_eq!(gw.get("/keyed/a", &k1).status, 200);
    assert_eq!(gw.get("/keyed/a", &k1).status, 403);
    wait(&|ms| ms < 200); // an even second: a new window only if aligned to 0001-01-01
    assert_eq!(
        gw.get("/keyed/a", &k1).status,
        403,
        "still s1's window (aligned to its start date)"
    );
    wait(&|ms| (1000..1200).contains(&ms));
    assert_eq!(gw.get("/keyed/a", &k1).status, 200, "s1's next window");
}

#[test]
fn a_bad_subscription_start_date_is_a_load_error() {
    let dir = TempDir::new();
    let cfg = yaml(1).replace(
        "    primary_key: key-one-12345\n",
        "    primary_key: key-one-12345\n    start_date: yesterday\n",
    );
    dir.write(
        "gatehouse.yaml",
        &format!("listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: policies\n{cfg}"),
    );
    dir.write(
        "policies/global.xml",
        "<policies><inbound /><backend><forward-request /></backend></policies>",
    );
    let out = run_cli(&dir.0, &["check", "-c", "gatehouse.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("error[C055]") && err.contains("start_date must be yyyy-MM-ddTHH:mm:ssZ"),
        "{err}"
    );
    assert!(
        err.contains("gatehouse.yaml:"),
        "the error names the file and position: {err}"
    );
}
