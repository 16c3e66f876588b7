//! cache-lookup / cache-store: hits skip the backend, outbound resumes after cache-store,
//! vary-by keys, GET only, private requests bypass, single flight, and sharing through Redis.

mod common;
use common::*;
use std::time::Duration;

fn yaml(origin_port: u16, redis: Option<&RedisServer>) -> String {
    let store = redis.map_or(String::new(), |r| {
        format!("store:\n  type: redis\n  url: {}\n", r.url())
    });
    format!(
        "name: rc\n{store}apis:\n{}",
        api_yaml(
            "c",
            "c",
            &format!("http://127.0.0.1:{origin_port}"),
            "    subscription_required: false\n",
            &[("item", "*", "/items/{id}")]
        )
    )
}

const DOC: &str = r#"<policies>
    <inbound><base />
        <cache-lookup vary-by-developer="false" vary-by-developer-groups="false" downstream-caching-type="public" must-revalidate="true" caching-type="prefer-external">
            <vary-by-query-parameter>lang</vary-by-query-parameter>
            <vary-by-header>Accept</vary-by-header>
        </cache-lookup>
    </inbound>
    <backend><base /></backend>
    <outbound><base />
        <set-header name="X-Before" exists-action="override"><value>@(context.RequestId.ToString())</value></set-header>
        <cache-store duration="30" />
        <set-header name="X-After" exists-action="override"><value>ran</value></set-header>
    </outbound>
    <on-error><base /></on-error>
</policies>"#;

fn origin() -> Origin {
    Origin::start(|r| {
        std::thread::sleep(Duration::from_millis(if r.path().contains("slow") {
            500
        } else {
            0
        }));
        let status = if r.path().contains("missing") {
            404
        } else {
            200
        };
        let resp = Response::new(status, format!("body for {}?{}", r.path(), r.query()))
            .with_header("X-Origin", "yes")
            .with_header("Content-Type", "text/plain");
        Reply::Full(if r.path().contains("session") {
            resp.with_header("Set-Cookie", "sid=secret")
        } else {
            resp
        })
    })
}

#[test]
fn hits_skip_the_backend_and_resume_after_cache_store() {
    let o = origin();
    let gw = Gatehouse::start(&yaml(o.port, None), &[("apis/c/item.xml", DOC)]);
    let r1 = gw.get("/c/items/1?lang=en&other=x", &[]);
    assert_eq!((r1.status, r1.header("x-after")), (200, Some("ran")));
    let first_id = gw.last_log()["request_id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(r1.header("x-before"), Some(first_id.as_str()));
    assert_eq!(
        r1.header("cache-control"),
        Some("public, max-age=30, must-revalidate")
    );
    let r2 = gw.get("/c/items/1?lang=en&other=y", &[]);
    assert_eq!(
        o.count(),
        1,
        "the second call is a hit (other is not a vary-by parameter)"
    );
    assert_eq!(r2.text(), r1.text());
    assert_eq!(r2.header("x-origin"), Some("yes"));
    // Statements before cache-store do not run on a hit: their effect is the cached one.
    assert_eq!(
        r2.header("x-before"),
        Some(first_id.as_str()),
        "outbound before cache-store does not run on a hit"
    );
    assert_eq!(
        r2.header("x-after"),
        Some("ran"),
        "outbound after cache-store runs on a hit"
    );
    assert!(r2
        .header("cache-control")
        .is_some_and(|v| v.starts_with("public, max-age=")));
    assert_eq!(gw.last_log()["produced_by"]["policy"], "cache-lookup");
    // vary-by-query-parameter: another lang is another entry.
    gw.get("/c/items/1?lang=fr", &[]);
    assert_eq!(o.count(), 2);
    // vary-by-header: another Accept is another entry, and it is then a hit too.
    gw.get("/c/items/1?lang=en", &[("Accept", "application/xml")]);
    gw.get("/c/items/1?lang=en", &[("Accept", "application/xml")]);
    assert_eq!(o.count(), 3);
    // GET only; Authorization bypasses; non-200 is not stored.
    gw.send("POST", "/c/items/1?lang=en", &[], b"x");
    assert_eq!(o.count(), 4);
    gw.get("/c/items/1?lang=en", &[("Authorization", "Bearer t")]);
    assert_eq!(o.count(), 5);
    gw.get("/c/items/missing", &[]);
    gw.get("/c/items/missing", &[]);
    assert_eq!(o.count(), 7);
    // A response that sets a cookie is never stored (it belongs to one client).
    let s1 = gw.get("/c/items/session", &[]);
    assert_eq!(s1.header("set-cookie"), Some("sid=secret"));
    gw.get("/c/items/session", &[]);
    assert_eq!(o.count(), 9);
}

#[test]
fn concurrent_misses_wait_for_one_fill() {
    let o = origin();
    let gw = Gatehouse::start(&yaml(o.port, None), &[("apis/c/item.xml", DOC)]);
    let port = gw.port;
    let threads: Vec<_> = (0..5)
        .map(|_| std::thread::spawn(move || get(port, "/c/items/slow", &[]).status))
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap_or(0)).collect();
    assert_eq!(statuses, vec![200; 5]);
    assert_eq!(o.count(), 1, "one fill for five concurrent misses");
}

#[test]
fn a_response_cached_through_one_instance_is_served_by_the_others() {
    let redis = RedisServer::start();
    let o = origin();
    let gws: Vec<Gatehouse> = (0..3)
        .map(|_| Gatehouse::start(&yaml(o.port, Some(&redis)), &[("apis/c/item.xml", DOC)]))
        .collect();
    let first = gws[0].get("/c/items/7", &[]);
    assert_eq!(first.status, 200);
    for g in &gws[1..] {
        let r = g.get("/c/items/7", &[]);
        assert_eq!(r.text(), first.text());
        assert_eq!(r.header("x-after"), Some("ran"));
    }
    assert_eq!(
        o.count(),
        1,
        "the backend was called once for three instances"
    );
}

#[test]
fn vary_by_developer_keeps_one_entry_per_subscription() {
    let o = origin();
    let cfg = |by_dev: &str| {
        let doc = format!(
            r#"<policies><inbound><base /><cache-lookup vary-by-developer="{by_dev}" vary-by-developer-groups="false" /></inbound><backend><base /></backend><outbound><base /><cache-store duration="30" /></outbound><on-error><base /></on-error></policies>"#
        );
        let yaml = format!(
            "name: rcd\napis:\n{}products:\n  - id: p\n    apis: [c]\nsubscriptions:\n  - id: s1\n    scope: product:p\n    primary_key: dev-one-12345\n  - id: s2\n    scope: product:p\n    primary_key: dev-two-12345\n",
            api_yaml("c", "c", &format!("http://127.0.0.1:{}", o.port), "", &[("item", "*", "/items/{id}")])
        );
        (yaml, doc)
    };
    let (k1, k2) = (
        [("Ocp-Apim-Subscription-Key", "dev-one-12345")],
        [("Ocp-Apim-Subscription-Key", "dev-two-12345")],
    );
    let (yaml, doc) = cfg("true");
    let gw = Gatehouse::start(&yaml, &[("apis/c/item.xml", &doc)]);
    gw.get("/c/items/1", &k1);
    gw.get("/c/items/1", &k1);
    assert_eq!(o.count(), 1, "a hit for the same subscription");
    gw.get("/c/items/1", &k2);
    assert_eq!(o.count(), 2, "another subscription is another entry");
    drop(gw);
    let (yaml, doc) = cfg("false");
    let gw = Gatehouse::start(&yaml, &[("apis/c/item.xml", &doc)]);
    gw.get("/c/items/2", &k1);
    gw.get("/c/items/2", &k2);
    assert_eq!(
        o.count(),
        3,
        "without vary-by-developer the subscriptions share the entry"
    );
}

/// The fill lock is cluster-wide with a Redis store: the same missing key asked of three
/// instances at once (a 500 ms origin) is fetched once; the other instances wait for it.
#[test]
fn concurrent_misses_on_several_instances_fetch_once() {
    let redis = RedisServer::start();
    let o = origin();
    let gws: Vec<Gatehouse> = (0..3)
        .map(|_| Gatehouse::start(&yaml(o.port, Some(&redis)), &[("apis/c/item.xml", DOC)]))
        .collect();
    let ports: Vec<u16> = gws.iter().map(|g| g.port).collect();
    let threads: Vec<_> = ports
        .iter()
        .flat_map(|p| [*p, *p])
        .map(|port| std::thread::spawn(move || get(port, "/c/items/slow-1", &[])))
        .collect();
    let bodies: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().map(|r| r.text()).unwrap_or_default())
        .collect();
    assert!(
        bodies.iter().all(|b| b == "body for /items/slow-1?"),
        "{bodies:?}"
    );
    assert_eq!(
        o.count(),
        1,
        "one backend call for six requests on three instances"
    );
}
