//! Real APIM documents load unchanged (issue 14): forms APIM accepts and gatehouse refused.
//! Each is checked as `gatehouse check --policy` would (in process), and where it has an effect
//! on the request, against the real binary and an echo origin.

mod common;

use std::path::Path;

use common::*;
use gatehouse::diag::{Diagnostics, Severity};
use gatehouse::policy::Scope;

fn check(doc: &str) -> Diagnostics {
    gatehouse::gateway::compile::check_policy_text(
        Path::new("t.xml"),
        Ok(doc),
        Scope::Api,
        &Default::default(),
    )
}

/// The codes of the problems found, errors first marked `E:`, warnings `W:`.
fn codes(doc: &str) -> Vec<String> {
    check(doc)
        .items()
        .iter()
        .map(|d| match d.severity {
            Severity::Error => format!("E:{}", d.code),
            _ => format!("W:{}", d.code),
        })
        .collect()
}

#[test]
fn forms_apim_accepts_load() {
    let inbound = |x: &str| inbound_doc(x);
    // (document, expected diagnostics)
    let cases: Vec<(String, Vec<&str>)> = vec![
        // cors without <allowed-headers>: accepted, with a warning saying what it means.
        (
            inbound(
                r#"<cors><allowed-origins><origin>https://a.example</origin></allowed-origins></cors>"#,
            ),
            vec!["W:P023"],
        ),
        // rewrite-uri without the leading slash.
        (inbound(r#"<rewrite-uri template="v2/{id}" />"#), vec![]),
        // The legacy trace form: the message is the element's text.
        (
            inbound(r#"<trace source="legacy">called @(context.Request.Method)</trace>"#),
            vec![],
        ),
        // set-body template="none".
        (
            inbound(r#"<set-body template="none">plain</set-body>"#),
            vec![],
        ),
        // validate-azure-ad-token without <client-application-ids>.
        (
            inbound(
                r#"<validate-azure-ad-token tenant-id="contoso.onmicrosoft.com"><audiences><audience>api://x</audience></audiences></validate-azure-ad-token>"#,
            ),
            vec!["W:P023"],
        ),
        // set-backend-service base-url with a query string (a function key).
        (
            inbound(r#"<set-backend-service base-url="https://fn.example/api?code=abc" />"#),
            vec![],
        ),
    ];
    for (doc, expected) in cases {
        assert_eq!(codes(&doc), expected, "{doc}");
    }
}

#[test]
fn validate_odata_request_checks_versions_query_options_and_size() {
    let o = Origin::echo();
    let service = format!("http://127.0.0.1:{}", o.port);
    let strict = inbound_doc(
        r#"<validate-odata-request error-variable-name="odata" default-odata-version="4.01" min-odata-version="4.0" max-odata-version="4.01" max-size="64" />"#,
    );
    let v40 = inbound_doc(r#"<validate-odata-request default-odata-version="4.0" />"#);
    let ops = [
        ("people", "*", "/People", strict.as_str()),
        ("old", "*", "/Old", v40.as_str()),
    ];
    let gw = start_operations("", "a", &service, OPEN, &ops);
    let ok = |target: &str, headers: &[(&str, &str)]| gw.get(target, headers).status;
    assert_eq!(
        ok("/a/People?$top=2&$filter=Age%20gt%2030&$count=true", &[]),
        200
    );
    // 4.01 (the default here): options are case-insensitive and their `$` is optional.
    assert_eq!(ok("/a/People?TOP=2&select=Name", &[]), 200);
    // 4.0: only `$` names are options; other parameters are the service's own.
    assert_eq!(ok("/a/Old?top=x", &[]), 200);
    type Bad<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let bad: &[Bad] = &[
        ("/a/People?$top=-1", &[], "query option $top is not valid"),
        (
            "/a/People?$count=yes",
            &[],
            "query option $count is not valid",
        ),
        (
            "/a/People?$bogus=1",
            &[],
            "Unknown system query option $bogus.",
        ),
        ("/a/People?$top=1&top=2", &[], "more than once"),
        (
            "/a/People",
            &[("OData-Version", "3.0")],
            "OData version 3.0 is not supported.",
        ),
        (
            "/a/People",
            &[("OData-MaxVersion", "3.0")],
            "OData-MaxVersion 3.0 is not allowed.",
        ),
        ("/a/Old?$Top=1", &[], "Unknown system query option $Top."),
    ];
    for (target, headers, want) in bad {
        let r = gw.get(target, headers);
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        let m = r.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(m.contains(want), "{target}: {m}");
    }
    let r = gw.send("POST", "/a/People", &[], &[b'x'; 65]);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Request's body is 65 bytes long and it exceeds the limit of 64 bytes."
    );
    // A version outside min/max is refused even when valid OData.
    let narrow = inbound_doc(r#"<validate-odata-request max-odata-version="4.0" />"#);
    let gw2 = start_operations(
        "",
        "b",
        &service,
        OPEN,
        &[("p", "GET", "/P", narrow.as_str())],
    );
    let r = gw2.get("/b/P", &[("OData-Version", "4.01")]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        codes(&inbound_doc(
            r#"<validate-odata-request min-odata-version="5" />"#
        )),
        ["E:P012"]
    );
}

#[test]
fn a_liquid_set_body_loads_wherever_set_body_stands() {
    // Was: P011 "unknown attribute" nested, P021 top level, and a P014 for the template's markup.
    // `{{body.x}}` is the template's output, not a named value (no P030).
    for doc in [
        inbound_doc(
            r#"<return-response><set-body template="liquid"><r>{{body.x}}</r></set-body></return-response>"#,
        ),
        inbound_doc(
            r#"<send-request mode="new" response-variable-name="r"><set-url>http://127.0.0.1:9/x</set-url><set-body template="liquid"><r>{{body.x}}</r></set-body></send-request>"#,
        ),
        inbound_doc(r#"<set-body template="liquid"><r>{{body.x}}</r></set-body>"#),
        inbound_doc(
            r#"<set-body template="liquid" xsi-nil="null" parse-date="false"><![CDATA[{"a": "{{ body.a | Default: 'none' }}"}]]></set-body>"#,
        ),
    ] {
        assert_eq!(codes(&doc), Vec::<String>::new(), "{doc}");
    }
    // A bad template value is still an error, with the same message everywhere.
    let doc = inbound_doc(
        r#"<return-response><set-body template="handlebars">x</set-body></return-response>"#,
    );
    assert_eq!(codes(&doc), ["E:P012"]);
    // A template that does not compile (unknown filter, unclosed block) is P012 where it stands.
    let doc = inbound_doc("<set-body template=\"liquid\">\n{{ body.x | Nope }}</set-body>");
    let d = check(&doc);
    let e = &d.items()[0];
    assert_eq!(e.code, "P012");
    assert!(e.message.contains("Nope"), "{}", e.message);
    // Line 2 of the document, at the filter's name.
    assert_eq!((e.span.line, e.span.col), (2, 13), "{}", e.message);
    let doc = inbound_doc(r#"<set-body template="liquid">{% if body.x %}open</set-body>"#);
    assert_eq!(codes(&doc), ["E:P012"]);
    let doc = inbound_doc(r#"<set-body template="liquid" xsi-nil="maybe">x</set-body>"#);
    assert_eq!(codes(&doc), ["E:P012"]);
}

#[test]
fn a_liquid_set_body_renders_body_and_context_as_apim_does() {
    let soap = r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body><GetOrdersResponse><Customer>1234567</Customer><Item>a</Item><Item>b</Item><Note xsi:nil="true"/></GetOrdersResponse></soap:Body></soap:Envelope>"#;
    let o = Origin::start(move |r| match (r.method.as_str(), r.path()) {
        ("GET", "/orders") => {
            Reply::Full(Response::new(200, soap).with_header("Content-Type", "text/xml"))
        }
        ("GET", _) => Reply::Full(
            Response::new(200, r#"{"when":"2012-03-21T05:40Z","price":1234.5}"#)
                .with_header("Content-Type", "application/json"),
        ),
        _ => Reply::Full(echo_response(r)),
    });
    let service = format!("http://127.0.0.1:{}", o.port);
    // JSON in, SOAP to the backend (the shape of Microsoft's set-body example).
    let to_soap = inbound_doc(
        r#"<set-body template="liquid">
<soap:Envelope xmlns="http://tempuri.org/" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body><GetOrders><Customer>{{body.getOrders.customer | Upcase}}</Customer>{% for i in body.getOrders.items %}<Item n="{{forloop.index}}">{{ i.sku }}</Item>{% endfor %}<Tenant>{{context.Request.Headers["X-Tenant"]}}</Tenant><Path>{{context.Request.Url.Path}}</Path><Key>{{shop-key}}</Key></GetOrders></soap:Body>
</soap:Envelope></set-body>"#,
    );
    // SOAP from the backend, JSON to the client (APIM's generated SOAP-to-REST shape).
    let from_soap = sections(
        "",
        "",
        r#"<set-body template="liquid">{"customer": "{{body.envelope.body.GetOrdersResponse.Customer}}", "items": {{ body.envelope.body.GetOrdersResponse.Item | Size }}, "note": "{{ body.envelope.body.GetOrdersResponse.Note }}"}</set-body><set-header name="Content-Type" exists-action="override"><value>application/json</value></set-header>"#,
        "",
    );
    let dates = sections(
        "",
        "",
        r#"<set-body template="liquid">{{body.when}}|{{body.when | Date: "yyyy-MM-dd"}}|{{body.price | Currency}}</set-body>"#,
        "",
    );
    let raw_dates = sections(
        "",
        "",
        r#"<set-body template="liquid" parse-date="false">{{body.when}}</set-body>"#,
        "",
    );
    let answer = inbound_doc(
        r#"<set-variable name="who" value="@(&quot;ann&quot;)" /><return-response><set-status code="201" reason="Created" /><set-body template="liquid">{"m":"{{context.Request.Method}}","q":"{{context.Request.Url.Query.a}}","who":"{{context.Variables.who}}","api":"{{context.Api.Name}}","id":"{{ body.id }}"}</set-body></return-response>"#,
    );
    let ops = [
        ("to-soap", "POST", "/soap", to_soap.as_str()),
        ("from-soap", "GET", "/orders", from_soap.as_str()),
        ("dates", "GET", "/dates", dates.as_str()),
        ("raw-dates", "GET", "/raw-dates", raw_dates.as_str()),
        ("answer", "POST", "/answer", answer.as_str()),
    ];
    let gw = start_operations(
        "named_values:\n  shop-key:\n    value: k-42\n",
        "a",
        &service,
        OPEN,
        &ops,
    );

    let r = gw.send(
        "POST",
        "/a/soap",
        &[("Content-Type", "application/json"), ("X-Tenant", "t1")],
        br#"{"getOrders":{"customer":"abc","items":[{"sku":"s1"},{"sku":"s2"}]}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_default();
    assert_eq!(
        seen["body"],
        "\n<soap:Envelope xmlns=\"http://tempuri.org/\" xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\n  <soap:Body><GetOrders><Customer>ABC</Customer><Item n=\"1\">s1</Item><Item n=\"2\">s2</Item><Tenant>t1</Tenant><Path>/soap</Path><Key>k-42</Key></GetOrders></soap:Body>\n</soap:Envelope>"
    );

    let r = gw.get("/a/orders", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        r#"{"customer": "1234567", "items": 2, "note": ""}"#
    );
    assert_eq!(r.header("content-type"), Some("application/json"));

    // parse-date (default true) reads date-times as .NET does; false copies them.
    let r = gw.get("/a/dates", &[]);
    assert_eq!(r.text(), "03/21/2012 05:40:00|2012-03-21|$1,234.50");
    let r = gw.get("/a/raw-dates", &[]);
    assert_eq!(r.text(), "2012-03-21T05:40Z");

    // Inside return-response: context and the request's body; the status stays as set.
    let r = gw.send(
        "POST",
        "/a/answer?a=1",
        &[("Content-Type", "application/json")],
        br#"{"id": 9}"#,
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        r.text(),
        r#"{"m":"POST","q":"1","who":"ann","api":"a","id":"9"}"#
    );

    // A body the template cannot read as its Content-Type says goes to on-error.
    let r = gw.send(
        "POST",
        "/a/soap",
        &[("Content-Type", "application/json")],
        b"{not json",
    );
    assert_eq!(r.status, 500, "{}", r.text());
}

#[test]
fn the_accepted_forms_behave_as_in_apim() {
    let o = Origin::echo();
    let service = format!("http://127.0.0.1:{}", o.port);
    let fn_url = format!("http://127.0.0.1:{}/func?code=k%2B1", o.port);
    let ops = [
        (
            "rewrite",
            "GET",
            "/orders/{id}",
            inbound_doc(r#"<rewrite-uri template="v2/{id}" />"#),
        ),
        (
            "fnkey",
            "GET",
            "/fn/{*rest}",
            inbound_doc(&format!(r#"<set-backend-service base-url="{fn_url}" />"#)),
        ),
        (
            "trace",
            "GET",
            "/trace",
            inbound_doc(
                r#"<trace source="legacy">@("called " + context.Request.Method)</trace><return-response><set-status code="200" /><set-body template="none">@(context.Request.Method)</set-body></return-response>"#,
            ),
        ),
    ];
    let ops: Vec<(&str, &str, &str, &str)> = ops
        .iter()
        .map(|(id, m, t, d)| (*id, *m, *t, d.as_str()))
        .collect();
    let gw = start_operations("", "a", &service, OPEN, &ops);

    let r = gw.get("/a/orders/42", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(o.last().path(), "/v2/42");

    // The base URL's query follows the request's own.
    let r = gw.get("/a/fn/run?x=1", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = o.last();
    assert_eq!(seen.path(), "/func/fn/run");
    assert_eq!(seen.query(), "x=1&code=k%2B1");
    let r = gw.get("/a/fn/run", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(o.last().query(), "code=k%2B1");

    let r = gw.get("/a/trace", &[]);
    assert_eq!((r.status, r.text()), (200, "GET".to_string()));
    let log = gw.log_for("/a/trace");
    assert!(
        log.to_string().contains("called GET"),
        "the legacy trace's text is its message: {log}"
    );
}

#[test]
fn a_backend_failure_message_is_stable_and_names_no_address() {
    // A policy that echoes context.LastError.Message must not leak an internal address.
    let dead = free_port();
    let service = format!("http://127.0.0.1:{dead}");
    let on_error = r#"<return-response><set-status code="502" /><set-body>@(context.LastError.Reason + ": " + context.LastError.Message)</set-body></return-response>"#;
    let doc = sections("", "", "", on_error);
    let ops = [("any", "GET", "/{*rest}", doc.as_str())];
    let gw = start_operations("", "a", &service, OPEN, &ops);
    let r = gw.get("/a/x", &[]);
    assert_eq!(
        (r.status, r.text()),
        (
            502,
            "BackendConnectionFailure: Unable to connect to the remote server".to_string()
        )
    );
}

#[test]
fn check_policy_takes_named_values_and_fragments() {
    let dir = TempDir::new();
    let doc = r#"<policies><inbound><base /><set-backend-service base-url="{{backend-url}}" /><include-fragment fragment-id="common" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;
    dir.write("api.xml", doc);
    dir.write(
        "frags/common.xml",
        r#"<fragment><set-header name="X-Key" exists-action="override"><value>{{api-key}}</value></set-header></fragment>"#,
    );
    let text = |args: &[&str]| {
        let out = run_cli(&dir.0, args);
        let t = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        (out.status.success(), t)
    };
    // Alone: the named value and the fragment are unknown.
    let (ok, t) = text(&["check", "--policy", "api.xml"]);
    assert!(!ok && t.contains("P030") && t.contains("P031"), "{t}");
    // With them on the command line.
    let (ok, t) = text(&[
        "check",
        "--policy",
        "api.xml",
        "--named-value",
        "backend-url=https://orders.example",
        "--named-value",
        "api-key=k1",
        "--fragments",
        "frags",
    ]);
    assert!(ok, "{t}");
    // A malformed pair is reported, not ignored.
    let (ok, t) = text(&["check", "--policy", "api.xml", "--named-value", "novalue"]);
    assert!(!ok && t.contains("NAME=VALUE"), "{t}");
    // From a configuration: its named values (a secret one is masked) and its fragments.
    dir.write(
        "conf/gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: ../policies\nnamed_values:\n  backend-url:\n    value: not-a-url-SECRET-9\n    secret: true\n  api-key:\n    value: k2\n",
    );
    dir.write(
        "policies/fragments/common.xml",
        r#"<fragment><set-header name="X-Key" exists-action="override"><value>{{api-key}}</value></set-header></fragment>"#,
    );
    let (ok, t) = text(&[
        "check",
        "--policy",
        "api.xml",
        "--use-config",
        "-c",
        "conf/gatehouse.yaml",
    ]);
    assert!(!ok, "the secret value is not a URL: {t}");
    assert!(
        t.contains("P012") && !t.contains("SECRET-9") && !t.contains("P031"),
        "{t}"
    );
}

#[test]
fn xml_to_json_converts_bodies_as_apim_does() {
    let soap = r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetOrders><Customer>1234567</Customer><Item>a</Item><Item>b</Item></GetOrders></soap:Body></soap:Envelope>"#;
    let o = Origin::start(move |r| {
        if r.method == "POST" {
            Reply::Full(echo_response(r))
        } else {
            Reply::Full(Response::new(200, soap).with_header("Content-Type", "text/xml"))
        }
    });
    let service = format!("http://127.0.0.1:{}", o.port);
    let out = |attrs: &str| sections("", "", &format!("<xml-to-json {attrs} />"), "");
    let direct = out(r#"kind="direct" apply="always" consider-accept-header="false""#);
    let by_accept = out(r#"kind="direct" apply="content-type-xml""#);
    let friendly = out(
        r#"kind="javascript-friendly" apply="always" consider-accept-header="false" always-array-child-elements="true""#,
    );
    let inbound = inbound_doc(
        r#"<xml-to-json kind="direct" apply="content-type-xml" consider-accept-header="false" />"#,
    );
    let ops = [
        ("direct", "GET", "/direct", direct.as_str()),
        ("accept", "GET", "/accept", by_accept.as_str()),
        ("friendly", "GET", "/friendly", friendly.as_str()),
        ("inbound", "POST", "/inbound", inbound.as_str()),
    ];
    let gw = start_operations("", "a", &service, OPEN, &ops);

    let r = gw.get("/a/direct", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text(),
        r#"{"version":"1.0","soap$Envelope":{"@xmlns$soap":"http://schemas.xmlsoap.org/soap/envelope/","soap$Body":{"GetOrders":{"Customer":"1234567","Item":["a","b"]}}}}"#
    );

    // consider-accept-header (default true): only a client asking for JSON gets it.
    let r = gw.get("/a/accept", &[("Accept", "text/xml")]);
    assert_eq!(
        (r.header("content-type"), r.text()),
        (Some("text/xml"), soap.to_string())
    );
    let r = gw.get("/a/accept", &[("Accept", "application/json")]);
    assert_eq!(r.header("content-type"), Some("application/json"));

    let r = gw.get("/a/friendly", &[]);
    assert_eq!(
        r.text(),
        // The root is not a child element: only children become arrays.
        r#"{"Envelope":{"Body":[{"GetOrders":[{"Customer":["1234567"],"Item":["a","b"]}]}]}}"#
    );

    // Inbound: the backend receives JSON; a body that is not XML by its Content-Type is left.
    let r = gw.send(
        "POST",
        "/a/inbound",
        &[("Content-Type", "application/xml")],
        b"<order id=\"7\"><qty>2</qty></order>",
    );
    let seen: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_default();
    assert_eq!(seen["body"], r#"{"order":{"@id":"7","qty":"2"}}"#);
    assert_eq!(seen["headers"]["content-type"], "application/json");
    let r = gw.send(
        "POST",
        "/a/inbound",
        &[("Content-Type", "text/plain")],
        b"<order/>",
    );
    let seen: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_default();
    assert_eq!(seen["body"], "<order/>");

    // A body that is not well-formed XML goes to on-error (500), not to the client as is.
    let r = gw.send(
        "POST",
        "/a/inbound",
        &[("Content-Type", "application/xml")],
        b"<order>",
    );
    assert_eq!(r.status, 500, "{}", r.text());
}

#[test]
fn json_to_xml_converts_bodies_as_apim_does() {
    let o = Origin::start(|r| {
        if r.method == "POST" {
            Reply::Full(echo_response(r))
        } else {
            Reply::Full(
                Response::new(200, r#"{"id":7,"ok":true,"tags":["a","b"],"note":null}"#)
                    .with_header("Content-Type", "application/json; charset=utf-8"),
            )
        }
    });
    let service = format!("http://127.0.0.1:{}", o.port);
    let out = sections(
        "",
        "",
        r#"<json-to-xml apply="content-type-json" consider-accept-header="true" />"#,
        "",
    );
    let inbound = inbound_doc(r#"<json-to-xml apply="always" consider-accept-header="false" />"#);
    let ops = [
        ("out", "GET", "/out", out.as_str()),
        ("in", "POST", "/in", inbound.as_str()),
    ];
    let gw = start_operations("", "a", &service, OPEN, &ops);

    let r = gw.get("/a/out", &[("Accept", "application/xml")]);
    assert_eq!(r.header("content-type"), Some("application/xml"));
    assert_eq!(
        r.text(),
        r#"<Document><id>7</id><ok>True</ok><tags>a</tags><tags>b</tags><note xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" /></Document>"#
    );
    // A client that does not ask for XML keeps the JSON.
    let r = gw.get("/a/out", &[("Accept", "application/json")]);
    assert!(r.text().starts_with("{\"id\":7"), "{}", r.text());

    let r = gw.send(
        "POST",
        "/a/in",
        &[("Content-Type", "application/json")],
        br#"{"q":2}"#,
    );
    let seen: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_default();
    assert_eq!(seen["body"], "<Document><q>2</q></Document>");
    assert_eq!(seen["headers"]["content-type"], "application/xml");
    let r = gw.send(
        "POST",
        "/a/in",
        &[("Content-Type", "application/json")],
        b"{oops",
    );
    assert_eq!(r.status, 500, "{}", r.text());
}

#[test]
fn jsonp_wraps_json_for_a_named_callback_only() {
    let o = Origin::start(|_| {
        Reply::Full(
            Response::new(200, r#"{"a":1}"#).with_header("Content-Type", "application/json"),
        )
    });
    let service = format!("http://127.0.0.1:{}", o.port);
    let doc = sections("", "", r#"<jsonp callback-parameter-name="cb" />"#, "");
    let ops = [("any", "GET", "/{*rest}", doc.as_str())];
    let gw = start_operations("", "a", &service, OPEN, &ops);
    let r = gw.get("/a/x?cb=render.items", &[]);
    assert_eq!(r.text(), r#"render.items({"a":1});"#);
    assert_eq!(r.header("content-type"), Some("application/javascript"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    // Without the parameter, or with a name that is not an identifier: plain JSON.
    for target in ["/a/x", "/a/x?cb=alert(document.cookie)//"] {
        let r = gw.get(target, &[]);
        assert_eq!(
            (r.text(), r.header("content-type")),
            (r#"{"a":1}"#.to_string(), Some("application/json")),
            "{target}"
        );
    }
}

#[test]
fn redirect_content_urls_swaps_backend_and_gateway_base_urls_in_bodies() {
    let o = Origin::start(|r| {
        if r.method == "POST" {
            Reply::Full(echo_response(r))
        } else {
            let me = format!("http://{}/base", r.header("host").unwrap_or("-"));
            Reply::Full(Response::new(
                200,
                format!(r#"{{"self":"{me}/items/1","next":"{me}/items/2"}}"#),
            ))
        }
    });
    let service = format!("http://127.0.0.1:{}/base", o.port);
    let out = sections("", "", "<redirect-content-urls />", "");
    // Inbound only: the echoed body would otherwise be swapped back on its way out.
    let inbound = inbound_doc("<redirect-content-urls />");
    let ops = [
        ("get", "GET", "/{*rest}", out.as_str()),
        ("post", "POST", "/{*rest}", inbound.as_str()),
    ];
    let gw = start_operations("", "a", &service, OPEN, &ops);
    let mine = format!("http://127.0.0.1:{}/a", gw.port);
    let r = gw.get("/a/items", &[]);
    assert_eq!(
        r.text(),
        format!(r#"{{"self":"{mine}/items/1","next":"{mine}/items/2"}}"#)
    );
    // Inbound, the gateway's URLs in the request body become the backend's.
    let body = format!(r#"{{"link":"{mine}/orders/9"}}"#);
    let r = gw.send("POST", "/a/orders", &[], body.as_bytes());
    let seen: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_default();
    assert_eq!(
        seen["body"],
        format!(r#"{{"link":"http://127.0.0.1:{}/base/orders/9"}}"#, o.port)
    );
}

#[test]
fn emit_metric_is_a_prometheus_counter_with_its_dimensions() {
    let o = Origin::echo();
    let service = format!("http://127.0.0.1:{}", o.port);
    let doc = inbound_doc(
        r#"<emit-metric name="Request" value="@(context.Request.Method == "POST" ? 2.5 : 1)" namespace="my-metrics">
            <dimension name="API ID" />
            <dimension name="Operation ID" />
            <dimension name="Tier" value="@(context.Request.Headers.GetValueOrDefault("X-Tier", "free"))" />
        </emit-metric>"#,
    );
    let ops = [("any", "*", "/{*rest}", doc.as_str())];
    let gw = start_operations("", "a", &service, OPEN, &ops);
    for (method, tier) in [
        ("GET", "gold"),
        ("GET", "gold"),
        ("POST", "gold"),
        ("GET", "free"),
    ] {
        let r = gw.send(method, "/a/x", &[("X-Tier", tier)], b"");
        assert_eq!(r.status, 200);
    }
    let m = get(gw.admin, "/metrics", &[]).text();
    let line = |tier: &str| {
        m.lines()
            .find(|l| {
                l.starts_with("gatehouse_custom_request_total{")
                    && l.contains(&format!("tier=\"{tier}\""))
            })
            .unwrap_or_default()
            .to_string()
    };
    let gold = line("gold");
    assert!(
        gold.contains(r#"api_id="a""#)
            && gold.contains(r#"operation_id="any""#)
            && gold.contains(r#"namespace="my-metrics""#)
            && gold.ends_with(" 4.5"),
        "{m}"
    );
    assert!(line("free").ends_with(" 1"), "{m}");

    // A custom dimension needs a value; a default one does not.
    let bad = inbound_doc(r#"<emit-metric name="x"><dimension name="Client IP" /></emit-metric>"#);
    assert_eq!(codes(&bad), ["E:P012"]);
}

#[test]
fn an_api_defined_by_its_openapi_file_serves() {
    let o = Origin::echo();
    let spec = "openapi: 3.0.1\ninfo: {title: Orders, version: '1'}\npaths:\n  /orders/{id}:\n    get:\n      operationId: getOrder\n      summary: One order\n    delete: {}\n";
    let yaml = format!(
        "apis:\n  - id: orders\n    path: orders\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    openapi: orders.yaml\n",
        o.port
    );
    // An operation-level policy names an operation the definition declares.
    let doc = inbound_doc(
        r#"<set-header name="X-Op" exists-action="override"><value>@(context.Operation.Id)</value></set-header>"#,
    );
    let gw = Gatehouse::start_with(
        &yaml,
        &[("apis/orders/getOrder.xml", &doc)],
        &[("orders.yaml", spec)],
    );
    let r = gw.get("/orders/orders/7", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_default();
    assert_eq!(seen["path"], "/orders/7");
    assert_eq!(seen["headers"]["x-op"], "getOrder");
    assert_eq!(gw.send("DELETE", "/orders/orders/7", &[], b"").status, 200);
    // Not in the definition: no operation.
    assert_eq!(gw.send("POST", "/orders/orders/7", &[], b"").status, 404);

    // A definition that does not load is reported with its position, and nothing starts.
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:1\napis:\n  - id: x\n    path: x\n    service_url: http://127.0.0.1:1\n    openapi: bad.yaml\n",
    );
    dir.write("bad.yaml", "openapi: 3.0.0\npaths: [\n");
    let t = check_fails(&dir.0);
    assert!(t.contains("bad.yaml:") && t.contains("C058"), "{t}");
}

#[test]
fn find_and_replace_keeps_the_bytes_of_a_body_that_is_not_utf8() {
    let o = Origin::echo();
    let service = format!("http://127.0.0.1:{}", o.port);
    let doc = inbound_doc(r#"<find-and-replace from="OLD" to="new!" />"#);
    let ops = [("any", "POST", "/{*rest}", doc.as_str())];
    let gw = start_operations("", "a", &service, OPEN, &ops);
    // 0xFF and 0x80 are not UTF-8: a text round trip would turn each into 3 bytes.
    let body = b"\xff\x80OLD\xfe";
    let r = gw.send("POST", "/a/x", &[], body);
    let seen: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_default();
    assert_eq!(seen["body_len"], 7, "{seen}");
}

#[test]
fn a_failure_in_a_choose_inside_wait_is_placed_among_same_named_siblings() {
    let o = Origin::echo();
    let service = format!("http://127.0.0.1:{}", o.port);
    let inbound = format!(
        r#"<wait for="all">
            <send-request mode="new" response-variable-name="r"><set-url>{service}/side</set-url></send-request>
            <choose><when condition="@(true)"><set-variable name="x" value="@(int.Parse("nope"))" /></when></choose>
        </wait>"#
    );
    let on_error = r#"<return-response><set-status code="500" /><set-body>@(context.LastError.Path)</set-body></return-response>"#;
    let doc = sections(&inbound, "", "", on_error);
    let ops = [("any", "GET", "/{*rest}", doc.as_str())];
    let gw = start_operations("", "a", &service, OPEN, &ops);
    let r = gw.get("/a/x", &[]);
    // The choose is the first choose of the wait (it was named choose[2]: its position among
    // all children).
    assert_eq!(r.text(), "wait[1]/choose[1]/when[1]/set-variable[1]");
}

#[test]
fn the_proxy_policy_sends_the_backend_call_through_a_forward_proxy() {
    // The "proxy" is a loopback origin that records the absolute-form request it receives.
    let proxy = Origin::start(|r| {
        Reply::Full(Response::new(
            200,
            format!(
                "proxied {} auth={}",
                r.target,
                r.header("proxy-authorization").unwrap_or("-")
            ),
        ))
    });
    // The backend host does not resolve here: only the proxy is connected to.
    let service = "http://orders.invalid:9999/api";
    let doc = inbound_doc(&format!(
        r#"<proxy url="http://127.0.0.1:{}" username="gw" password="@("se" + "cret")" />"#,
        proxy.port
    ));
    let ops = [("any", "GET", "/{*rest}", doc.as_str())];
    let gw = start_operations("", "a", service, OPEN, &ops);
    let r = gw.get("/a/list?x=1", &[]);
    assert_eq!(
        (r.status, r.text()),
        (
            200,
            "proxied http://orders.invalid:9999/api/list?x=1 auth=Basic Z3c6c2VjcmV0".to_string()
        )
    );
    // A URL that is not http:// is a load error.
    let bad = inbound_doc(r#"<proxy url="https://proxy:8443" />"#);
    assert_eq!(codes(&bad), ["E:P012"]);
}

/// Microsoft's xsl-transform example: the root element gets the caller's User-Agent as an
/// attribute; every other node is copied.
const XSL_USER_AGENT: &str = r#"<xsl-transform>
    <parameter parameter-name="User-Agent">@(context.Request.Headers.GetValueOrDefault("User-Agent","non-specified"))</parameter>
    <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
        <xsl:output method="xml" indent="yes" />
        <xsl:param name="User-Agent" />
        <xsl:template match="* | @* | node()">
            <xsl:copy>
                <xsl:if test="self::* and not(parent::*)">
                    <xsl:attribute name="User-Agent">
                        <xsl:value-of select="$User-Agent" />
                    </xsl:attribute>
                </xsl:if>
                <xsl:apply-templates select="* | @* | node()" />
            </xsl:copy>
        </xsl:template>
    </xsl:stylesheet>
</xsl-transform>"#;

#[test]
fn xsl_transform_runs_libxslt_over_the_body() {
    let o = Origin::start(|r| match r.path() {
        "/doc" => Reply::Full(
            Response::new(
                200,
                "<document><title>t</title><n a=\"1\">x &amp; y</n></document>",
            )
            .with_header("Content-Type", "text/xml"),
        ),
        "/dtd" => Reply::Full(
            Response::new(
                200,
                "<!DOCTYPE d [<!ENTITY e SYSTEM \"file:///etc/hostname\">]><d>&e;</d>",
            )
            .with_header("Content-Type", "text/xml"),
        ),
        _ => Reply::Full(echo_response(r)),
    });
    let service = format!("http://127.0.0.1:{}", o.port);
    let outbound = sections("", "", XSL_USER_AGENT, "");
    // Inbound, text output, a literal parameter.
    let inbound = inbound_doc(
        r#"<xsl-transform><parameter parameter-name="sep">|</parameter><xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:output method="text" /><xsl:param name="sep" /><xsl:template match="/order"><xsl:for-each select="line"><xsl:value-of select="@sku" /><xsl:value-of select="$sep" /></xsl:for-each></xsl:template></xsl:stylesheet></xsl-transform>"#,
    );
    // A stylesheet that never ends recursing: libxslt's depth bound stops it.
    let runaway = sections(
        "",
        "",
        r#"<xsl-transform><xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template name="r"><xsl:call-template name="r" /></xsl:template><xsl:template match="/"><xsl:call-template name="r" /></xsl:template></xsl:stylesheet></xsl-transform>"#,
        "",
    );
    let ops = [
        ("doc", "GET", "/doc", outbound.as_str()),
        ("dtd", "GET", "/dtd", outbound.as_str()),
        ("order", "POST", "/order", inbound.as_str()),
        ("runaway", "GET", "/runaway", runaway.as_str()),
    ];
    let gw = start_operations("", "a", &service, OPEN, &ops);

    let r = gw.get("/a/doc", &[("User-Agent", "ua-1")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "<?xml version=\"1.0\"?>\n<document User-Agent=\"ua-1\">\n  <title>t</title>\n  <n a=\"1\">x &amp; y</n>\n</document>\n"
    );

    let r = gw.send(
        "POST",
        "/a/order",
        &[("Content-Type", "application/xml")],
        br#"<order><line sku="a1"/><line sku="b2"/></order>"#,
    );
    let seen: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_default();
    assert_eq!(seen["body"], "a1|b2|");

    // A body with a DTD is refused before libxslt sees it: no entity is read.
    let r = gw.get("/a/dtd", &[]);
    assert_eq!(r.status, 500, "{}", r.text());
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert!(
        host.trim().is_empty() || !r.text().contains(host.trim()),
        "{}",
        r.text()
    );

    let r = gw.get("/a/runaway", &[]);
    assert_eq!(r.status, 500, "{}", r.text());
    // The gateway is still there.
    assert_eq!(gw.get("/a/doc", &[]).status, 200);
}

#[test]
fn a_stylesheet_that_does_not_compile_is_a_load_error_at_its_line() {
    let doc = sections(
        "",
        "",
        "<xsl-transform>\n<xsl:stylesheet version=\"1.0\" xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\">\n<xsl:template match=\"/\">\n<xsl:value-of select=\"((\" />\n</xsl:template></xsl:stylesheet></xsl-transform>",
        "",
    );
    let d = check(&doc);
    let e = &d.items()[0];
    assert_eq!(e.code, "P012", "{}", e.message);
    assert!(e.message.contains("line 4"), "{}", e.message);
    assert_eq!(codes(&inbound_doc("<xsl-transform />")), ["E:P012"]);
}

#[test]
fn cross_domain_serves_the_policy_file_at_the_root() {
    let o = Origin::echo();
    let yaml = format!(
        "apis:\n  - id: a\n    path: a\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    operations:\n      - id: get\n        method: GET\n        url_template: /\n",
        o.port
    );
    // Microsoft's example, in the global policy.
    let global = r#"<policies><inbound><cross-domain>
        <cross-domain-policy>
            <allow-http-request-headers-from domain="*" headers="*" />
        </cross-domain-policy>
    </cross-domain></inbound><backend><forward-request /></backend><outbound /><on-error /></policies>"#;
    let gw = Gatehouse::start(&yaml, &[("global.xml", global)]);
    let r = gw.get("/crossdomain.xml", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/xml"));
    assert_eq!(
        r.text(),
        "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n            <allow-http-request-headers-from domain=\"*\" headers=\"*\" />\n        </cross-domain-policy>"
    );
    // Other paths and methods are routed as before; the APIs run the global policy unchanged.
    assert_eq!(gw.send("POST", "/crossdomain.xml", &[], b"").status, 404);
    assert_eq!(gw.get("/a/", &[]).status, 200);
    // Only the global policy may carry it.
    assert_eq!(
        codes(&inbound_doc(
            "<cross-domain><cross-domain-policy /></cross-domain>"
        )),
        ["E:P012"]
    );
}

#[test]
fn xsl_transform_writes_stylesheets_only_into_a_private_directory() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = TempDir::new();
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    // Someone else's (here: world-writable) directory where gatehouse would write.
    let shared = tmp.0.join(format!("gatehouse-xsl-{uid}"));
    std::fs::create_dir_all(&shared).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777))
        .unwrap_or_else(|e| panic!("{e}"));
    tmp.write(
        "p.xml",
        &inbound_doc(r#"<xsl-transform><xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/"><x/></xsl:template></xsl:stylesheet></xsl-transform>"#),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["check", "--policy"])
        .arg(tmp.0.join("p.xml"))
        .env("TMPDIR", &tmp.0)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("not a private directory"), "{text}");
    assert_eq!(
        std::fs::read_dir(&shared).map(|d| d.count()).unwrap_or(0),
        0
    );
}
