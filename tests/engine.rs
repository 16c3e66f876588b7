//! The engine without a process: configurations compiled in memory (from files in a temporary
//! directory), sections run over an in-memory request with the memory store and no network.
//! These run in milliseconds; the real-binary tests cover the same behaviour end to end.

mod common;

use std::sync::Arc;

use gatehouse::exec::transport::NoTransport;
use gatehouse::exec::{
    self, ErrorKind, ExecCtx, Flow, QueryState, ReqState, RequestInfo, RespState, Target,
};
use gatehouse::gateway::{Gateway, Pipeline};
use gatehouse::policy::Section;
use gatehouse::store::memory::MemoryStore;
use http::{HeaderMap, Method};

/// Compile `yaml` with the policy `files` (paths relative to the configuration).
fn compile(yaml: &str, files: &[(&str, &str)]) -> Gateway {
    let dir = common::TempDir::new();
    for (path, text) in files {
        let p = dir.0.join("policies").join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
    }
    let path = dir.0.join("gatehouse.yaml");
    // Listeners are not used here; the configuration needs one.
    let yaml = format!("listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: policies\n{yaml}");
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("{e}"));
    let cfg = gatehouse::config::load(&path).unwrap_or_else(|d| panic!("{}", d.render_text()));
    let sources = gatehouse::gateway::load::Sources::read(&cfg);
    // Compile does no I/O: the files are gone before it runs.
    drop(dir);
    let (gw, _) = gatehouse::gateway::compile(&cfg, &sources)
        .unwrap_or_else(|d| panic!("{}", d.render_text()));
    gw
}

/// One API `t` (no subscription needed) with operations `(id, method, template)`.
fn api(ops: &[(&str, &str, &str)]) -> String {
    format!(
        "apis:\n{}",
        common::api_yaml("t", "t", "http://127.0.0.1:9", common::OPEN, ops)
    )
}

/// Drive the future `$f(cx)` to completion on a current-thread runtime, with an `ExecCtx` over
/// the parts of a `Run`.
macro_rules! with_cx {
    ($run:expr, $section:expr, |$cx:ident| $f:expr) => {{
        let gw = $run.gw.clone();
        let mut ctx = ExecCtx {
            gw: &gw,
            section: $section,
            req: &mut $run.req,
            req_headers: &mut $run.req_headers,
            resp: &mut $run.resp,
            resp_headers: &mut $run.resp_headers,
            examples: &[],
            store: &$run.store,
            transport: &NoTransport,
        };
        let $cx = &mut ctx;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on($f)
    }};
}

/// A request in flight through the engine: its state, both header maps and the store.
struct Run {
    gw: Arc<Gateway>,
    req: ReqState,
    req_headers: HeaderMap,
    resp: RespState,
    resp_headers: HeaderMap,
    store: MemoryStore,
}

impl Run {
    /// A request for operation `op` of API `t` (routing is the adapter's tests' concern).
    fn new(gw: Gateway, op: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Run {
        let api = gw
            .apis
            .iter()
            .position(|a| a.id == "t")
            .unwrap_or_else(|| panic!("no API t"));
        let op = gw.apis[api]
            .operations
            .iter()
            .position(|o| o.id == op)
            .unwrap_or_else(|| panic!("no operation {op}"));
        let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
        let info = RequestInfo {
            api: Some(api),
            operation: Some(op),
            original_method: method.to_string(),
            original_path: path_only.to_string(),
            original_query: query.to_string(),
            ip: "127.0.0.1".to_string(),
            ..Default::default()
        };
        let target = Target {
            base: gw.apis[api].service.clone(),
            backend: None,
        };
        let req = ReqState::new(
            "req-1".to_string(),
            Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET),
            target,
            path_only.to_string(),
            QueryState::raw(query),
            info,
        );
        let mut req_headers = HeaderMap::new();
        for (n, v) in headers {
            req_headers.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                http::HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        Run {
            gw: Arc::new(gw),
            req,
            req_headers,
            resp: RespState {
                status: 200,
                ..Default::default()
            },
            resp_headers: HeaderMap::new(),
            store: MemoryStore::new(10_000),
        }
    }

    fn pipeline(&self) -> Arc<Pipeline> {
        let (api, op) = (
            self.req.info.api.unwrap_or_default(),
            self.req.info.operation.unwrap_or_default(),
        );
        self.gw.apis[api].operations[op].pipelines[0].clone()
    }

    /// Run one section of the request's pipeline.
    fn section(&mut self, section: Section) -> Flow {
        let p = self.pipeline();
        let stmts = match section {
            Section::Inbound => &p.inbound,
            Section::Backend => &p.backend_pre,
            Section::Outbound => &p.outbound,
            Section::OnError => &p.on_error,
        };
        with_cx!(self, section, |cx| exec::run_section(stmts, cx))
    }

    /// The end of the request: deferred increments against the final response.
    fn finish(&mut self, bytes: u64) {
        with_cx!(self, Section::Outbound, |cx| exec::deferred::finish(
            cx, bytes
        ))
    }

    fn header(&self, map: &HeaderMap, name: &str) -> Vec<String> {
        map.get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }
}

fn set(name: &str, value: &str) -> String {
    format!(
        "<set-header name=\"{name}\" exists-action=\"append\"><value>{value}</value></set-header>"
    )
}

#[test]
fn scopes_compose_around_base_in_document_order() {
    let global = common::sections(&set("X-Order", "global"), "", "", "");
    let api_doc = format!(
        "<policies><inbound>{}<base />{}</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>",
        set("X-Order", "api-before"),
        set("X-Order", "api-after")
    );
    // The operation's inbound has <base /> last: its own statement runs first.
    let op = format!(
        "<policies><inbound>{}<base /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>",
        set("X-Order", "operation")
    );
    let gw = compile(
        &api(&[("get", "GET", "/x")]),
        &[
            ("global.xml", &global),
            ("apis/t.xml", &api_doc),
            ("apis/t/get.xml", &op),
        ],
    );
    let mut run = Run::new(gw, "get", "GET", "/t/x", &[]);
    assert!(matches!(run.section(Section::Inbound), Flow::Continue));
    // exists-action="append" joins the values into one header, as APIM does.
    assert_eq!(
        run.header(&run.req_headers, "x-order"),
        ["operation, api-before, global, api-after"]
    );
}

/// Operations whose scope chains are the same documents share one compiled pipeline (memory
/// grows with distinct policies, not with operations); one with its own policy has its own, and
/// its statements apply to it alone.
#[test]
fn operations_with_the_same_documents_share_one_pipeline() {
    let global = common::sections(&set("X-Order", "global"), "", "", "");
    let op = format!(
        "<policies><inbound><base />{}</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>",
        set("X-Order", "operation")
    );
    let yaml = format!(
        "apis:\n{}{}",
        common::api_yaml(
            "t",
            "t",
            "http://127.0.0.1:9",
            common::OPEN,
            &[
                ("a", "GET", "/a"),
                ("b", "GET", "/b"),
                ("own", "GET", "/own")
            ]
        ),
        common::api_yaml(
            "u",
            "u",
            "http://127.0.0.1:9",
            common::OPEN,
            &[("c", "GET", "/c")]
        )
    );
    let files = [
        ("global.xml", global.as_str()),
        ("apis/t/own.xml", op.as_str()),
    ];
    let gw = compile(&yaml, &files);
    let pipeline = |api: &str, op: &str| {
        let a = gw
            .apis
            .iter()
            .find(|a| a.id == api)
            .unwrap_or_else(|| panic!("{api}"));
        let o = a
            .operations
            .iter()
            .find(|o| o.id == op)
            .unwrap_or_else(|| panic!("{op}"));
        o.pipelines[0].clone()
    };
    assert!(Arc::ptr_eq(&pipeline("t", "a"), &pipeline("t", "b")));
    assert!(
        Arc::ptr_eq(&pipeline("t", "a"), &pipeline("u", "c")),
        "same documents across APIs"
    );
    assert!(!Arc::ptr_eq(&pipeline("t", "a"), &pipeline("t", "own")));
    let mut run = Run::new(gw, "own", "GET", "/t/own", &[]);
    assert!(matches!(run.section(Section::Inbound), Flow::Continue));
    assert_eq!(
        run.header(&run.req_headers, "x-order"),
        ["global, operation"]
    );
    let mut run = Run::new(compile(&yaml, &files), "a", "GET", "/t/a", &[]);
    assert!(matches!(run.section(Section::Inbound), Flow::Continue));
    assert_eq!(run.header(&run.req_headers, "x-order"), ["global"]);
}

#[test]
fn choose_takes_the_first_true_branch_and_otherwise_when_none_is() {
    let inbound = format!(
        r#"<choose><when condition="@(context.Request.Headers.GetValueOrDefault("X-Tier", "") == "gold")">{}</when><when condition="@(true)">{}</when><otherwise>{}</otherwise></choose>"#,
        set("X-Branch", "gold"),
        set("X-Branch", "second"),
        set("X-Branch", "otherwise")
    );
    let yaml = api(&[("get", "GET", "/x")]);
    let files = [("apis/t/get.xml", common::inbound_doc(&inbound))];
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();

    let mut gold = Run::new(
        compile(&yaml, &files),
        "get",
        "GET",
        "/t/x",
        &[("X-Tier", "gold")],
    );
    assert!(matches!(gold.section(Section::Inbound), Flow::Continue));
    assert_eq!(gold.header(&gold.req_headers, "x-branch"), ["gold"]);

    let mut other = Run::new(compile(&yaml, &files), "get", "GET", "/t/x", &[]);
    assert!(matches!(other.section(Section::Inbound), Flow::Continue));
    assert_eq!(other.header(&other.req_headers, "x-branch"), ["second"]);
}

#[test]
fn a_rate_limit_admits_its_calls_then_fails_with_429_detail() {
    let inbound = r#"<rate-limit-by-key calls="2" renewal-period="60" counter-key="@("k")" />"#;
    let gw = compile(
        &api(&[("get", "GET", "/x")]),
        &[("apis/t/get.xml", &common::inbound_doc(inbound))],
    );
    let mut run = Run::new(gw, "get", "GET", "/t/x", &[]);
    let mut flows = Vec::new();
    for _ in 0..3 {
        // A fresh request each time over the same store and snapshot.
        run.req_headers.clear();
        flows.push(run.section(Section::Inbound));
    }
    assert!(matches!(flows[0], Flow::Continue), "{:?}", flows[0]);
    assert!(matches!(flows[1], Flow::Continue), "{:?}", flows[1]);
    match &flows[2] {
        Flow::Fail(e) => {
            assert_eq!(e.kind, ErrorKind::RateLimitExceeded);
            assert_eq!(e.kind.status(), 429);
            let d = e
                .detail
                .as_ref()
                .unwrap_or_else(|| panic!("no detail: {e:?}"));
            assert!(d.retry_after_secs >= 1 && d.retry_after_secs <= 60, "{d:?}");
        }
        other => panic!("third call: {other:?}"),
    }
}

#[test]
fn a_failing_statement_stops_the_section_and_on_error_reads_last_error() {
    let inbound = format!(
        r#"<set-header name="X-Boom" exists-action="override"><value>@(((string)null).Length.ToString())</value></set-header>{}"#,
        set("X-After", "ran")
    );
    let on_error = r#"<set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason)</value></set-header><set-header name="X-Source" exists-action="override"><value>@(context.LastError.Source)</value></set-header>"#;
    let gw = compile(
        &api(&[("get", "GET", "/x")]),
        &[(
            "apis/t/get.xml",
            &common::sections(&inbound, "", "", on_error),
        )],
    );
    let mut run = Run::new(gw, "get", "GET", "/t/x", &[]);
    let e = match run.section(Section::Inbound) {
        Flow::Fail(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(e.kind, ErrorKind::ExpressionValueEvaluationFailure);
    assert_eq!(e.source, "set-header");
    assert!(run.header(&run.req_headers, "x-after").is_empty());
    // The adapter fills LastError from the failure before on-error runs.
    run.req.last_error = Some(e.clone());
    assert!(matches!(run.section(Section::OnError), Flow::Continue));
    assert_eq!(
        run.header(&run.resp_headers, "x-reason"),
        ["ExpressionValueEvaluationFailure"]
    );
    assert_eq!(run.header(&run.resp_headers, "x-source"), ["set-header"]);
}

#[test]
fn return_response_ends_the_pipeline_with_the_policy_response() {
    let inbound = r#"<return-response><set-status code="418" reason="Teapot" /><set-header name="X-R" exists-action="override"><value>1</value></set-header><set-body>short</set-body></return-response>"#;
    let gw = compile(
        &api(&[("get", "GET", "/x")]),
        &[("apis/t/get.xml", &common::inbound_doc(inbound))],
    );
    let mut run = Run::new(gw, "get", "GET", "/t/x", &[]);
    match run.section(Section::Inbound) {
        Flow::Respond { run_outbound, .. } => assert!(!run_outbound),
        other => panic!("{other:?}"),
    }
    assert_eq!(run.resp.status, 418);
    assert_eq!(run.resp.reason.as_deref(), Some("Teapot"));
    assert_eq!(run.resp.body.as_deref(), Some(&b"short"[..]));
    assert_eq!(run.header(&run.resp_headers, "x-r"), ["1"]);
}

#[test]
fn compile_works_from_what_the_loader_read() {
    // A named value from a file, a fragment and a policy document: all read by the loader, then
    // deleted before compile runs (see `compile`).
    let inbound = r#"<include-fragment fragment-id="tag" /><set-header name="X-Secret-Len" exists-action="override"><value>@("{{token}}".Length.ToString())</value></set-header>"#;
    let yaml = format!(
        "named_values:\n  token:\n    file: token.txt\n{}",
        api(&[("get", "GET", "/x")])
    );
    let dir_files = [
        ("../token.txt", "s3cret-value\n".to_string()),
        (
            "fragments/tag.xml",
            format!("<fragment>{}</fragment>", set("X-Tag", "fragment")),
        ),
        ("apis/t/get.xml", common::inbound_doc(inbound)),
    ];
    let files: Vec<(&str, &str)> = dir_files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let mut run = Run::new(compile(&yaml, &files), "get", "GET", "/t/x", &[]);
    assert!(matches!(run.section(Section::Inbound), Flow::Continue));
    assert_eq!(run.header(&run.req_headers, "x-tag"), ["fragment"]);
    assert_eq!(run.header(&run.req_headers, "x-secret-len"), ["12"]);
}

#[test]
fn routing_and_admission_decide_without_a_socket() {
    use gatehouse::exec::request::{admit, RequestView};
    let yaml = format!(
        "{}products:\n  - id: p\n    apis: [k]\nsubscriptions:\n  - id: s1\n    scope: product:p\n    primary_key: key-0123456789\n",
        "apis:\n".to_string()
            + &common::api_yaml("k", "k", "http://127.0.0.1:9", "    strip_subscription_key: true\n", &[("get", "GET", "/items/{id}")])
    );
    let gw = compile(&yaml, &[]);
    let headers = HeaderMap::new();
    let view = |path: &'static str, query: &'static str| RequestView {
        method: &Method::GET,
        host: Some("gw.example:8080"),
        path: path.as_bytes(),
        path_is_utf8: true,
        query,
        headers: &headers,
        peer: Some("10.1.2.3".parse().unwrap_or_else(|e| panic!("{e}"))),
        tls: false,
        client_certificate: None,
    };
    let started = std::time::Instant::now();

    // The key in the query admits the caller; the key parameter is stripped from the backend query.
    let a = admit(
        &gw,
        &view("/k/./items/%34%32", "subscription-key=key-0123456789&x=1"),
        "r1",
        started,
    )
    .unwrap_or_else(|r| panic!("{:?}", r.error));
    assert_eq!(a.subscription, Some(0));
    assert_eq!(a.req.path, "/items/42");
    assert_eq!(a.req.matched, [("id".to_string(), "42".to_string())]);
    assert_eq!(a.req.query.encoded(), "x=1");
    assert_eq!(a.req.info.original_host, "gw.example");
    assert_eq!(a.req.info.original_port, 8080);
    assert_eq!(a.req.info.ip, "10.1.2.3");
    assert!(a.strip_header.is_some());

    // No key: 401 naming the header to send; the API is known (its on-error runs).
    let r = admit(&gw, &view("/k/items/1", ""), "r2", started)
        .err()
        .unwrap_or_else(|| panic!("admitted"));
    assert_eq!(r.error.kind, ErrorKind::SubscriptionKeyNotFound);
    assert_eq!(r.api, Some(0));
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some("ocp-apim-subscription-key")
    );

    // No operation: 404 with the API known; a path with no canonical form: 400.
    let r = admit(&gw, &view("/k/nothing", ""), "r3", started)
        .err()
        .unwrap_or_else(|| panic!("admitted"));
    assert_eq!(
        (r.error.kind, r.api, r.operation),
        (ErrorKind::OperationNotFound, Some(0), None)
    );
    let r = admit(&gw, &view("/k/items/%2F", ""), "r4", started)
        .err()
        .unwrap_or_else(|| panic!("admitted"));
    assert_eq!((r.error.kind, r.api), (ErrorKind::BadRequest, None));
}

#[test]
fn an_increment_condition_counts_only_the_responses_it_accepts() {
    let inbound = r#"<rate-limit-by-key calls="1" renewal-period="60" counter-key="k" increment-condition="@(context.Response.StatusCode == 200)" />"#;
    let gw = compile(
        &api(&[("get", "GET", "/x")]),
        &[("apis/t/get.xml", &common::inbound_doc(inbound))],
    );
    let mut run = Run::new(gw, "get", "GET", "/t/x", &[]);
    // A 500 is not counted: the next request is still admitted.
    assert!(matches!(run.section(Section::Inbound), Flow::Continue));
    run.resp.status = 500;
    run.finish(0);
    assert!(matches!(run.section(Section::Inbound), Flow::Continue));
    run.resp.status = 200;
    run.finish(0);
    // The 200 was counted: the limit of one is reached.
    match run.section(Section::Inbound) {
        Flow::Fail(e) => assert_eq!(e.kind, ErrorKind::RateLimitExceeded),
        other => panic!("{other:?}"),
    }
}

#[test]
fn framing_headers_are_not_changed_by_policies() {
    // A name known only at run time passes the load check; the run-time check ignores it.
    let inbound = r#"<set-header name="@("Content-" + "Length")" exists-action="override"><value>5</value></set-header><set-header name="@("X-" + "Ok")" exists-action="override"><value>1</value></set-header>"#;
    let gw = compile(
        &api(&[("get", "GET", "/x")]),
        &[("apis/t/get.xml", &common::inbound_doc(inbound))],
    );
    let mut run = Run::new(gw, "get", "GET", "/t/x", &[]);
    assert!(matches!(run.section(Section::Inbound), Flow::Continue));
    assert!(run.header(&run.req_headers, "content-length").is_empty());
    assert_eq!(run.header(&run.req_headers, "x-ok"), ["1"]);
}
