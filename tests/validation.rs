//! The validate-* policies against an API defined by its OpenAPI file (issue 14): requests and
//! responses checked against the definition's parameters, bodies, headers and status codes,
//! with APIM's actions (prevent / detect / ignore), its 400 and 502 answers and the errors
//! variable. The real binary, a real origin.

mod common;

use common::*;

const SPEC: &str = r#"openapi: 3.0.1
info: {title: Orders, version: '1'}
components:
  schemas:
    Order:
      type: object
      required: [sku, qty]
      properties:
        sku: {type: string, pattern: '^[A-Z]{3}-[0-9]+$'}
        qty: {type: integer, minimum: 1}
        note: {type: string, nullable: true}
paths:
  /orders:
    post:
      operationId: createOrder
      parameters:
        - {name: dryRun, in: query, schema: {type: boolean}}
        - {name: X-Tenant, in: header, required: true, schema: {type: string, enum: [a, b]}}
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Order'}
      responses:
        '201':
          description: created
          headers:
            X-Order-Id: {required: true, schema: {type: integer}}
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Order'}
  /orders/{id}:
    get:
      operationId: getOrder
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
      responses:
        '200': {description: ok}
"#;

fn start() -> (Origin, Gatehouse) {
    // The origin answers what the request asks of it: status, the order id header, a body.
    let o = Origin::start(|r| {
        let status = r
            .header("X-Status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(201);
        let body = r
            .header("X-Resp-Body")
            .map(|b| b.as_bytes().to_vec())
            .unwrap_or_else(|| r.body.clone());
        let mut resp = Response::new(status, body).with_header("Content-Type", "application/json");
        if let Some(id) = r.header("X-Order-Id") {
            resp = resp.with_header("X-Order-Id", id);
        }
        Reply::Full(resp)
    });
    let yaml = format!(
        "apis:\n  - id: orders\n    path: shop\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    openapi: orders.yaml\n",
        o.port
    );
    let create = sections(
        r#"<validate-parameters specified-parameter-action="prevent" unspecified-parameter-action="prevent" errors-variable-name="perr"><headers unspecified-parameter-action="ignore" /></validate-parameters>
           <validate-content unspecified-content-type-action="prevent" max-size="1024" size-exceeded-action="prevent" errors-variable-name="cerr">
             <content type="application/json" validate-as="json" action="prevent" allow-additional-properties="false" />
           </validate-content>"#,
        "",
        r#"<validate-status-code unspecified-status-code-action="prevent" />
           <validate-headers specified-header-action="prevent" unspecified-header-action="ignore" />
           <validate-content unspecified-content-type-action="detect" max-size="102400" size-exceeded-action="detect" errors-variable-name="rerr">
             <content type="application/json" validate-as="json" action="detect" />
           </validate-content>
           <set-header name="X-Response-Valid" exists-action="override"><value>@(context.Variables.ContainsKey("rerr") ? "no" : "yes")</value></set-header>"#,
        "",
    );
    let get = inbound_doc(
        r#"<validate-parameters specified-parameter-action="prevent" unspecified-parameter-action="detect" errors-variable-name="perr" />"#,
    );
    let gw = Gatehouse::start_with(
        &yaml,
        &[
            ("apis/orders/createOrder.xml", &create),
            ("apis/orders/getOrder.xml", &get),
        ],
        &[("orders.yaml", SPEC)],
    );
    (o, gw)
}

fn post(gw: &Gatehouse, target: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    gw.send("POST", target, &h, body.as_bytes())
}

fn message(r: &Response) -> String {
    r.json()["message"].as_str().unwrap_or_default().to_string()
}

/// target, headers, body, what the 400's message says.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);

const GOOD: &str = r#"{"sku":"ABC-1","qty":2,"note":null}"#;
const TENANT: (&str, &str) = ("X-Tenant", "a");
const ID: (&str, &str) = ("X-Order-Id", "5");

#[test]
fn a_request_as_the_definition_says_passes_and_the_response_is_checked() {
    let (o, gw) = start();
    let r = post(&gw, "/shop/orders?dryRun=true", &[TENANT, ID], GOOD);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("X-Response-Valid"), Some("yes"));
    assert_eq!(o.count(), 1);

    // detect: the response body breaks the schema, the client still gets it, the errors
    // variable holds the problem.
    let r = post(
        &gw,
        "/shop/orders",
        &[TENANT, ID, ("X-Resp-Body", r#"{"sku":"x"}"#)],
        GOOD,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("X-Response-Valid"), Some("no"));
}

#[test]
fn prevent_answers_400_with_the_problem_for_the_request() {
    let (o, gw) = start();
    let cases: &[Case] = &[
        ("/shop/orders", vec![ID], GOOD, "Required header X-Tenant is missing."),
        (
            "/shop/orders",
            vec![("X-Tenant", "c"), ID],
            GOOD,
            "Header X-Tenant does not match its definition",
        ),
        (
            "/shop/orders?dryRun=maybe",
            vec![TENANT],
            GOOD,
            "Query parameter dryRun does not match its definition",
        ),
        (
            "/shop/orders?bogus=1",
            vec![TENANT],
            GOOD,
            "Unspecified query parameter bogus is not allowed.",
        ),
        (
            "/shop/orders",
            vec![TENANT],
            r#"{"sku":"abc","qty":0}"#,
            "Body of the request does not conform to the definition which is associated with the content type application/json.",
        ),
        (
            // allow-additional-properties="false" over a schema that does not say.
            "/shop/orders",
            vec![TENANT],
            r#"{"sku":"ABC-1","qty":1,"extra":true}"#,
            "does not conform",
        ),
        ("/shop/orders", vec![TENANT], "{nope", "Body of the request is not valid JSON"),
    ];
    for (target, headers, body, want) in cases {
        let r = post(&gw, target, headers, body);
        assert_eq!(r.status, 400, "{target} {body}: {}", r.text());
        assert!(message(&r).contains(want), "{target} {body}: {}", r.text());
    }
    let r = gw.send(
        "POST",
        "/shop/orders",
        &[("Content-Type", "text/plain"), TENANT],
        b"hello",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        message(&r),
        "Unspecified content type text/plain is not allowed."
    );
    let big = format!(r#"{{"sku":"ABC-1","qty":1,"note":"{}"}}"#, "x".repeat(2000));
    let r = post(&gw, "/shop/orders", &[TENANT], &big);
    assert_eq!(r.status, 400);
    assert_eq!(
        message(&r),
        format!(
            "Request's body is {} bytes long and it exceeds the limit of 1024 bytes.",
            big.len()
        )
    );
    // A path parameter that is not an integer.
    let r = gw.get("/shop/orders/abc", &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        message(&r).contains("Path parameter id does not match"),
        "{}",
        r.text()
    );
    assert_eq!(gw.get("/shop/orders/7?extra=1", &[]).status, 201);
    // None of the refused requests reached the origin.
    assert_eq!(o.count(), 1);
}

#[test]
fn prevent_on_the_response_side_answers_502_without_the_detail() {
    let (_o, gw) = start();
    // A status the definition does not list.
    let r = post(
        &gw,
        "/shop/orders",
        &[TENANT, ID, ("X-Status", "299")],
        GOOD,
    );
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        message(&r),
        "The request could not be processed due to an internal error. Contact the API owner."
    );
    // A required response header missing.
    let r = post(&gw, "/shop/orders", &[TENANT], GOOD);
    assert_eq!(r.status, 502, "{}", r.text());
    // ... or not an integer.
    let r = post(&gw, "/shop/orders", &[TENANT, ("X-Order-Id", "x")], GOOD);
    assert_eq!(r.status, 502, "{}", r.text());
}

#[test]
fn validate_policies_that_need_what_gatehouse_lacks_say_so_at_load() {
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: policies\napis:\n  - id: x\n    path: x\n    service_url: http://127.0.0.1:1\n",
    );
    dir.write(
        "policies/apis/x.xml",
        &inbound_doc(
            r#"<validate-content unspecified-content-type-action="prevent" max-size="200000" size-exceeded-action="prevent"><content type="text/xml" validate-as="xml" action="prevent" /></validate-content>"#,
        ),
    );
    let t = check_fails(&dir.0);
    assert!(t.contains("validate-as=\"xml\" needs `schema-id`"), "{t}");
    assert!(t.contains("at most 102400"), "{t}");
}

#[test]
fn schema_id_validates_against_a_schema_of_the_configuration() {
    let o = Origin::echo();
    let yaml = format!(
        "schemas:\n  shapes:\n    file: shapes.json\napis:\n  - id: s\n    path: s\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    operations:\n      - id: put\n        method: PUT\n        url_template: /\n      - id: post\n        method: POST\n        url_template: /\n",
        o.port
    );
    let shapes = r##"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["kind"],
        "definitions": {"address": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string", "minLength": 2}}}}}"##;
    let rule = |extra: &str| {
        inbound_doc(&format!(
            r#"<validate-content unspecified-content-type-action="prevent" max-size="10240" size-exceeded-action="prevent"><content type="application/json" validate-as="json" action="prevent" schema-id="shapes" {extra} /></validate-content>"#
        ))
    };
    let whole = rule("");
    let at = rule(r##"schema-ref="#/definitions/address""##);
    let gw = Gatehouse::start_with(
        &yaml,
        &[("apis/s/put.xml", &whole), ("apis/s/post.xml", &at)],
        &[("shapes.json", shapes)],
    );
    let send = |m: &str, body: &str| {
        gw.send(
            m,
            "/s/",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .status
    };
    assert_eq!(send("PUT", r#"{"kind": "circle"}"#), 200);
    assert_eq!(send("PUT", r#"{"city": "Oslo"}"#), 400);
    assert_eq!(send("POST", r#"{"city": "Oslo"}"#), 200);
    assert_eq!(send("POST", r#"{"city": "O"}"#), 400);

    // A schema-ref that names nothing is a load error.
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: policies\nschemas:\n  shapes:\n    file: shapes.json\napis:\n  - id: x\n    path: x\n    service_url: http://127.0.0.1:1\n    operations:\n      - id: a\n        method: POST\n        url_template: /a\n      - id: b\n        method: POST\n        url_template: /b\n",
    );
    dir.write("shapes.json", shapes);
    dir.write(
        "policies/apis/x/a.xml",
        &rule(r##"schema-ref="#/definitions/nope""##),
    );
    dir.write(
        "policies/apis/x/b.xml",
        &rule("").replace("schema-id=\"shapes\"", "schema-id=\"other\""),
    );
    let t = check_fails(&dir.0);
    assert!(
        t.contains("C059") && t.contains("#/definitions/nope names nothing"),
        "{t}"
    );
    assert!(t.contains("no schema `other` under `schemas`"), "{t}");
}

#[test]
fn mock_response_answers_with_the_example_the_definition_gives() {
    let spec = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n  /status:\n    get:\n      operationId: status\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              example: {up: true, version: 3}\n  /pick:\n    get:\n      operationId: pick\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              examples:\n                first: {value: {n: 0}}\n                second: {value: {n: 1}}\n";
    let yaml = "apis:\n  - id: m\n    path: m\n    service_url: http://127.0.0.1:1\n    subscription_required: false\n    openapi: m.yaml\n";
    let doc = inbound_doc(r#"<mock-response status-code="200" content-type="application/json" />"#);
    // `index` picks among the examples, in the definition's order.
    let second = inbound_doc(
        r#"<mock-response status-code="200" content-type="application/json" index="1" />"#,
    );
    let gw = Gatehouse::start_with(
        yaml,
        &[("apis/m/status.xml", &doc), ("apis/m/pick.xml", &second)],
        &[("m.yaml", spec)],
    );
    let r = gw.get("/m/status", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"up": true, "version": 3}));
    assert_eq!(gw.get("/m/pick", &[]).json(), serde_json::json!({"n": 1}));
}

#[test]
fn validate_as_xml_checks_the_body_against_an_xml_schema() {
    let o = Origin::echo();
    let yaml = format!(
        "schemas:\n  order:\n    file: order.xsd\napis:\n  - id: x\n    path: x\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    operations:\n      - id: post\n        method: POST\n        url_template: /\n",
        o.port
    );
    let xsd = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="order"><xs:complexType><xs:sequence><xs:element name="qty" type="xs:positiveInteger"/></xs:sequence></xs:complexType></xs:element></xs:schema>"#;
    let doc = inbound_doc(
        r#"<validate-content unspecified-content-type-action="prevent" max-size="10240" size-exceeded-action="prevent" errors-variable-name="e"><content type="application/xml" validate-as="xml" schema-id="order" action="prevent" /></validate-content>"#,
    );
    let gw = Gatehouse::start_with(&yaml, &[("apis/x/post.xml", &doc)], &[("order.xsd", xsd)]);
    let send = |body: &str| {
        gw.send(
            "POST",
            "/x/",
            &[("Content-Type", "application/xml")],
            body.as_bytes(),
        )
    };
    assert_eq!(send("<order><qty>2</qty></order>").status, 200);
    let r = send("<order><qty>0</qty></order>");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        message(&r).contains("'0' is not a valid value"),
        "{}",
        r.text()
    );
    let r = send("<order><qty>2</qty>");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(message(&r).contains("is not valid XML"), "{}", r.text());
    // A DTD is never processed.
    let r = send("<!DOCTYPE order [<!ENTITY e \"2\">]><order><qty>&e;</qty></order>");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(message(&r).contains("DTD"), "{}", r.text());

    // A schema that does not compile is a load error.
    let dir = TempDir::new();
    dir.write(
        "gatehouse.yaml",
        "listeners:\n  - address: 127.0.0.1:1\nschemas:\n  bad:\n    file: bad.xsd\napis: []\n",
    );
    dir.write("bad.xsd", "<notaschema/>");
    let t = check_fails(&dir.0);
    assert!(t.contains("C059") && t.contains("XML schema `bad`"), "{t}");
}

#[test]
fn a_prevented_request_reaches_on_error_with_apims_reason() {
    let o = Origin::echo();
    let yaml = format!(
        "apis:\n  - id: orders\n    path: shop\n    service_url: http://127.0.0.1:{}\n    subscription_required: false\n    openapi: orders.yaml\n",
        o.port
    );
    let doc = sections(
        r#"<validate-parameters specified-parameter-action="prevent" unspecified-parameter-action="prevent" />"#,
        "",
        "",
        r#"<set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason)</value></set-header><set-header name="X-Source" exists-action="override"><value>@(context.LastError.Source)</value></set-header>"#,
    );
    let gw = Gatehouse::start_with(
        &yaml,
        &[("apis/orders/getOrder.xml", &doc)],
        &[("orders.yaml", SPEC)],
    );
    let r = gw.get("/shop/orders/abc", &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("X-Reason"), Some("Bad request"));
    assert_eq!(r.header("X-Source"), Some("validate-parameters"));
    assert_eq!(o.count(), 0);
}
