//! cache-lookup-value / cache-store-value / cache-remove-value, in memory and shared through a
//! real redis-server between two instances.

mod common;
use common::*;
use std::time::Duration;

fn yaml(origin_port: u16, redis: Option<&RedisServer>) -> String {
    let store = redis.map_or(String::new(), |r| {
        format!("store:\n  type: redis\n  url: {}\n", r.url())
    });
    format!(
        "name: cv\n{store}apis:\n{}",
        api_yaml(
            "c",
            "c",
            &format!("http://127.0.0.1:{origin_port}"),
            "    subscription_required: false\n",
            &[
                ("get", "GET", "/get/{k}"),
                ("put", "PUT", "/put/{k}"),
                ("del", "DELETE", "/del/{k}")
            ]
        )
    )
}

fn files(caching: &str) -> Vec<(String, String)> {
    let get = format!(
        r#"<policies><inbound><base />
            <cache-lookup-value key="@("item-" + context.Request.MatchedParameters["k"])" variable-name="item" default-value="none" caching-type="{caching}" />
            <return-response><set-body>@(context.Variables["item"] is JObject ? "json:" + ((JObject)context.Variables["item"])["n"] : context.Variables["item"].GetType() + ":" + context.Variables["item"].ToString())</set-body></return-response>
        </inbound></policies>"#
    );
    let put = format!(
        r#"<policies><inbound><base />
            <cache-store-value key="@("item-" + context.Request.MatchedParameters["k"])" value="@(context.Request.MatchedParameters["k"] == "json" ? (object)new JObject(new JProperty("n", 5)) : (object)42)" duration="@(context.Request.Headers.GetValueOrDefault("X-Ttl", "60"))" caching-type="{caching}" />
            <return-response><set-status code="204" reason="No Content" /></return-response>
        </inbound></policies>"#
    );
    let del = format!(
        r#"<policies><inbound><base />
            <cache-remove-value key="@("item-" + context.Request.MatchedParameters["k"])" caching-type="{caching}" />
            <return-response><set-status code="204" reason="No Content" /></return-response>
        </inbound></policies>"#
    );
    vec![
        ("apis/c/get.xml".into(), get),
        ("apis/c/put.xml".into(), put),
        ("apis/c/del.xml".into(), del),
    ]
}

fn refs(f: &[(String, String)]) -> Vec<(&str, &str)> {
    f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

#[test]
fn store_lookup_remove_and_expire_in_memory() {
    let origin = Origin::echo();
    let f = files("internal");
    let gw = Gatehouse::start(&yaml(origin.port, None), &refs(&f));
    assert_eq!(
        gw.get("/c/get/a", &[]).text(),
        "string:none",
        "a miss sets the default"
    );
    assert_eq!(gw.send("PUT", "/c/put/a", &[], b"").status, 204);
    assert_eq!(
        gw.get("/c/get/a", &[]).text(),
        "int:42",
        "the value keeps its type"
    );
    assert_eq!(gw.send("PUT", "/c/put/json", &[], b"").status, 204);
    assert_eq!(gw.get("/c/get/json", &[]).text(), "json:5");
    assert_eq!(gw.send("DELETE", "/c/del/a", &[], b"").status, 204);
    assert_eq!(gw.get("/c/get/a", &[]).text(), "string:none");
    assert_eq!(
        gw.send("PUT", "/c/put/short", &[("X-Ttl", "1")], b"")
            .status,
        204
    );
    assert_eq!(gw.get("/c/get/short", &[]).text(), "int:42");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(gw.get("/c/get/short", &[]).text(), "string:none", "expired");
}

#[test]
fn external_cache_is_shared_between_instances_and_internal_is_not() {
    let redis = RedisServer::start();
    let origin = Origin::echo();
    let ext = files("external");
    let a = Gatehouse::start(&yaml(origin.port, Some(&redis)), &refs(&ext));
    let b = Gatehouse::start(&yaml(origin.port, Some(&redis)), &refs(&ext));
    assert_eq!(a.send("PUT", "/c/put/x", &[], b"").status, 204);
    assert_eq!(b.get("/c/get/x", &[]).text(), "int:42");
    assert_eq!(b.send("DELETE", "/c/del/x", &[], b"").status, 204);
    assert_eq!(a.get("/c/get/x", &[]).text(), "string:none");
    let int = files("internal");
    let c = Gatehouse::start(&yaml(origin.port, Some(&redis)), &refs(&int));
    let d = Gatehouse::start(&yaml(origin.port, Some(&redis)), &refs(&int));
    assert_eq!(c.send("PUT", "/c/put/y", &[], b"").status, 204);
    assert_eq!(c.get("/c/get/y", &[]).text(), "int:42");
    assert_eq!(d.get("/c/get/y", &[]).text(), "string:none");
}
