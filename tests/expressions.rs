//! Policies with C# expressions, through the real binary: choose, set-variable, expression
//! attributes, bodies read from expressions, trace, find-and-replace and context.LastError.

mod common;
use common::*;

fn gateway(origin_port: u16, ops: &[(&str, &str, &str, &str)], extra_yaml: &str) -> Gatehouse {
    let service = format!("http://127.0.0.1:{origin_port}");
    start_operations(extra_yaml, "x", &service, OPEN, ops)
}

fn doc(inbound: &str, outbound: &str, on_error: &str) -> String {
    sections(inbound, "", outbound, on_error)
}

#[test]
fn choose_with_raw_quotes_and_variables() {
    let origin = Origin::echo();
    let inbound = r#"
        <set-variable name="isPost" value="@(context.Request.Method == "POST")" />
        <set-variable name="tier" value="@(context.Request.Headers.GetValueOrDefault("X-Tier", "free").ToLower())" />
        <choose>
            <when condition="@((bool)context.Variables["isPost"] && context.Variables.GetValueOrDefault<string>("tier") == "gold")">
                <set-header name="X-Route" exists-action="override"><value>gold-post</value></set-header>
            </when>
            <when condition="@((bool)context.Variables["isPost"])">
                <set-header name="X-Route" exists-action="override"><value>post</value></set-header>
            </when>
            <otherwise>
                <return-response>
                    <set-status code="405" reason="Method Not Allowed" />
                    <set-body>@($"{context.Request.Method} is not allowed for tier {context.Variables["tier"]}")</set-body>
                </return-response>
            </otherwise>
        </choose>"#;
    let gw = gateway(origin.port, &[("c", "*", "/c", &doc(inbound, "", ""))], "");
    let r = gw.send("POST", "/x/c", &[("X-Tier", "GOLD")], b"x");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(origin.last().header("x-route"), Some("gold-post"));
    gw.send("POST", "/x/c", &[], b"x");
    assert_eq!(origin.last().header("x-route"), Some("post"));
    let r = gw.get("/x/c", &[]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (405, "GET is not allowed for tier free")
    );
}

#[test]
fn expression_attributes_and_json_bodies() {
    let origin = Origin::echo();
    let inbound = r#"
        <set-header name="@("X-" + "Computed")" exists-action="@("override")">
            <value>@(context.Request.MatchedParameters["id"] + "-" + context.Operation.Id)</value>
        </set-header>
        <set-query-parameter name="page" exists-action="override"><value>@((int.Parse(context.Request.Url.Query.GetValueOrDefault("page", "1")) + 1).ToString())</value></set-query-parameter>
        <set-body>@{
            var body = context.Request.Body.As<JObject>(preserveContent: true);
            var user = body["user"]?.ToString() ?? "anonymous";
            return new JObject(new JProperty("user", user.ToUpper()), new JProperty("items", ((JArray)body["items"]).Count)).ToString(Newtonsoft.Json.Formatting.None);
        }</set-body>"#;
    let outbound = r#"
        <set-status code="@(context.Response.StatusCode == 200 ? 201 : context.Response.StatusCode)" reason="Created" />
        <set-header name="X-Elapsed-Known" exists-action="override"><value>@((context.Elapsed.TotalMilliseconds >= 0).ToString())</value></set-header>"#;
    let gw = gateway(
        origin.port,
        &[("j", "POST", "/items/{id}", &doc(inbound, outbound, ""))],
        "",
    );
    let r = gw.send(
        "POST",
        "/x/items/7?page=2",
        &[("Content-Type", "application/json")],
        br#"{"user":"ann","items":[1,2,3]}"#,
    );
    assert_eq!(
        (r.status, r.reason.as_str()),
        (201, "Created"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("x-elapsed-known"), Some("True"));
    let req = origin.last();
    assert_eq!(req.header("x-computed"), Some("7-j"));
    assert_eq!(req.query(), "page=3");
    assert_eq!(
        String::from_utf8_lossy(&req.body),
        r#"{"user":"ANN","items":3}"#
    );
}

#[test]
fn request_body_read_by_an_expression_is_still_forwarded() {
    let origin = Origin::echo();
    let inbound = r#"<set-header name="X-Body-Length" exists-action="override"><value>@(context.Request.Body.As<string>(preserveContent: true).Length.ToString())</value></set-header>"#;
    let gw = gateway(
        origin.port,
        &[("b", "POST", "/b", &doc(inbound, "", ""))],
        "",
    );
    let body: Vec<u8> = (0..60_000).map(|i| b'a' + (i % 26) as u8).collect();
    let r = gw.send("POST", "/x/b", &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let req = origin.last();
    assert_eq!(req.header("x-body-length"), Some("60000"));
    assert!(req.body == body, "body changed: {} bytes", req.body.len());
    // Beyond what policies can buffer (Pingora's 64 KiB retry buffer): 413, nothing forwarded.
    let big = vec![b'x'; 100_000];
    let r = gw.send("POST", "/x/b", &[], &big);
    assert_eq!(r.status, 413);
    assert_eq!(
        r.json()["message"],
        "Request body is larger than the 65536 bytes policies can read."
    );
    assert_eq!(origin.count(), 1);
}

#[test]
fn failing_expression_goes_to_on_error_with_last_error() {
    let origin = Origin::echo();
    let inbound = r#"<set-header name="X-Bad" exists-action="override" id="bad-header"><value>@(context.Request.Headers["X-Missing"][0])</value></set-header>"#;
    let on_error = r#"
        <set-header name="X-Error" exists-action="override">
            <value>@($"{context.LastError.Source}|{context.LastError.Reason}|{context.LastError.Section}|{context.LastError.Scope}|{context.LastError.Path}|{context.LastError.PolicyId}")</value>
        </set-header>
        <set-body>@(context.LastError.Message.Contains("KeyNotFound") ? "missing header" : context.LastError.Message)</set-body>"#;
    let gw = gateway(
        origin.port,
        &[("e", "GET", "/e", &doc(inbound, "", on_error))],
        "",
    );
    let r = gw.get("/x/e", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(r.header("x-error"), Some("set-header|ExpressionValueEvaluationFailure|inbound|operation|set-header[1]|bad-header"));
    assert_eq!(r.text(), "missing header");
    assert_eq!(gw.last_log()["error"], "ExpressionValueEvaluationFailure");
    assert_eq!(origin.count(), 0);
}

#[test]
fn trace_find_and_replace_and_named_values_in_code() {
    let origin = Origin::echo();
    let inbound = r#"
        <trace source="orders" severity="information">
            <message>@("seen " + context.Request.Method)</message>
            <metadata name="tier" value="{{tier}}" />
        </trace>
        <find-and-replace from="secret" to="[redacted]" />
        <set-header name="X-Limit" exists-action="override"><value>@((int.Parse("{{limit}}") * 2).ToString())</value></set-header>
        <set-backend-service base-url="@("http://127.0.0.1:" + "{{port}}" + "/moved")" />"#;
    let yaml = format!("named_values:\n  tier:\n    value: gold\n  limit:\n    value: \"21\"\n  port:\n    value: \"{}\"\n", origin.port);
    let gw = gateway(
        origin.port,
        &[("t", "POST", "/t", &doc(inbound, "", ""))],
        &yaml,
    );
    let r = gw.send("POST", "/x/t", &[], b"my secret and another secret");
    assert_eq!(r.status, 200, "{}", r.text());
    let req = origin.last();
    assert_eq!(
        String::from_utf8_lossy(&req.body),
        "my [redacted] and another [redacted]"
    );
    assert_eq!(req.header("x-limit"), Some("42"));
    assert_eq!(req.path(), "/moved/t");
    let log = gw.last_log();
    assert_eq!(log["traces"][0]["source"], "orders");
    assert_eq!(log["traces"][0]["message"], "seen POST");
}

#[test]
fn expression_errors_are_load_errors_with_positions() {
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: policies\napis:\n  - id: x\n    path: x\n    service_url: http://127.0.0.1:1\n    operations:\n      - id: o\n        method: GET\n        url_template: /\n",
    );
    dir.write(
        "policies/apis/x.xml",
        "<policies>\n  <inbound>\n    <set-header name=\"a\"><value>@(context.Request.Nope)</value></set-header>\n    <choose>\n      <when condition=\"@(1 +)\" />\n    </choose>\n    <set-variable name=\"v\" value=\"@(System.IO.File.ReadAllText(&quot;x&quot;))\" />\n    <set-body>@{ var x = 1; }</set-body>\n  </inbound>\n</policies>\n",
    );
    let out = run_cli(&dir.0, &["check", "-c", "gatehouse.yaml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains(
            "policies/apis/x.xml:3:51: error[E003]: `context.Request` has no member `Nope`"
        ),
        "{err}"
    );
    assert!(err.contains("policies/apis/x.xml:5:"), "{err}");
    assert!(err.contains("error[E002]"), "{err}");
    assert!(
        err.contains("not allowed in policy expressions") || err.contains("unknown name `System`"),
        "{err}"
    );
    assert!(err.contains("not all code paths return a value"), "{err}");
}

#[test]
fn outbound_reads_and_rewrites_the_backend_response() {
    let origin = Origin::start(|r| match r.path() {
        "/slow" => Reply::Delay(
            std::time::Duration::from_millis(2000),
            Response::new(200, "{}"),
        ),
        "/json" => Reply::Full(
            Response::new(
                200,
                format!(
                    r#"{{"id":7,"secret":"s3","echo":{}}}"#,
                    serde_json::json!(String::from_utf8_lossy(&r.body))
                ),
            )
            .with_header("Content-Type", "application/json")
            .with_header("X-Origin", "yes"),
        ),
        _ => Reply::Full(Response::new(404, "nope")),
    });
    let outbound = r#"
        <set-variable name="resp" value="@(context.Response.Body.As<JObject>(preserveContent: true))" />
        <set-header name="X-Id" exists-action="override"><value>@(((JObject)context.Variables["resp"])["id"].ToString())</value></set-header>
        <set-body>@{
            var o = (JObject)context.Variables["resp"];
            o.Remove("secret");
            o["status"] = context.Response.StatusCode;
            return o.ToString(Formatting.None);
        }</set-body>"#;
    let replace = r#"<find-and-replace from="s3" to="***" />"#;
    let timeout_doc = "<policies><inbound><base /></inbound><backend><forward-request timeout-ms=\"300\" /></backend><outbound><base /><set-header name=\"X-Len\" exists-action=\"override\"><value>@(context.Response.Body.As<string>().Length.ToString())</value></set-header></outbound><on-error><base /></on-error></policies>";
    let gw = gateway(
        origin.port,
        &[
            ("json", "POST", "/json", &doc("", outbound, "")),
            (
                "replace",
                "POST",
                "/json2",
                &doc("<rewrite-uri template=\"/json\" />", replace, ""),
            ),
            ("slow", "GET", "/slow", timeout_doc),
        ],
        "",
    );
    let r = gw.send("POST", "/x/json", &[], b"payload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"id":7,"echo":"payload","status":200}"#);
    assert_eq!(r.header("x-id"), Some("7"));
    assert_eq!(r.header("x-origin"), Some("yes"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(gw.last_log()["produced_by"]["kind"], "backend");
    let r = gw.send("POST", "/x/json2", &[], b"");
    assert_eq!(r.text(), r#"{"id":7,"secret":"***","echo":""}"#);
    let r = gw.get("/x/slow", &[]);
    assert_eq!(r.status, 500);
    assert_eq!(gw.last_log()["error"], "Timeout");
}
