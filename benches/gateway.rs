//! Gateway benchmarks: routing with 1 and with 1,000 APIs x 10 operations (the cost must stay
//! flat), compiling that configuration, and running a typical inbound section (three set-header,
//! a choose, a rate-limit-by-key on the memory store) through the engine.
//! Run with `cargo bench --bench gateway`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::exec::route;
use gatehouse::gateway::Gateway;

/// A configuration with `apis` APIs of 10 operations each, written to a fresh directory.
fn config_dir(apis: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-bench-{}-{apis}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("policies/apis")).unwrap_or_else(|e| panic!("{e}"));
    let mut y =
        String::from("listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: policies\napis:\n");
    for a in 0..apis {
        y.push_str(&format!(
            "  - id: api{a}\n    path: svc{a}/v1\n    service_url: http://127.0.0.1:9\n    subscription_required: false\n    operations:\n"
        ));
        for o in 0..10 {
            y.push_str(&format!(
                "      - id: op{o}\n        method: GET\n        url_template: /res{o}/{{id}}/items\n"
            ));
        }
    }
    std::fs::write(dir.join("gatehouse.yaml"), y).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("policies/global.xml"),
        r#"<policies><inbound>
            <rate-limit-by-key calls="1000000000" renewal-period="60" counter-key="@(context.Request.IpAddress)" />
            <set-header name="X-A" exists-action="override"><value>a</value></set-header>
            <set-header name="X-B" exists-action="override"><value>@(context.Request.Method)</value></set-header>
            <set-header name="X-C" exists-action="override"><value>@(context.Operation.Id)</value></set-header>
            <choose><when condition="@(context.Request.Headers.GetValueOrDefault("X-Tier", "") == "gold")"><set-header name="X-Gold" exists-action="override"><value>1</value></set-header></when></choose>
        </inbound><backend><forward-request /></backend><outbound /><on-error /></policies>"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn load(dir: &std::path::Path) -> Gateway {
    let cfg = gatehouse::config::load(&dir.join("gatehouse.yaml"))
        .unwrap_or_else(|d| panic!("{}", d.render_text()));
    gatehouse::gateway::compile(&cfg, &gatehouse::gateway::load::Sources::read(&cfg))
        .unwrap_or_else(|d| panic!("{}", d.render_text()))
        .0
}

/// API and operation match as the proxy does it.
fn route(gw: &Gateway, path: &str) -> Option<(usize, usize)> {
    let headers = http::HeaderMap::new();
    let (ai, prefix) = gw.match_api(Some("api.example.com"), path, &headers, "")?;
    let api = &gw.apis[ai];
    let rest = &path[prefix..];
    let m = http::Method::GET;
    api.operations
        .iter()
        .enumerate()
        .filter(|(_, o)| route::method_matches(&o.method, &m))
        .find_map(|(i, o)| o.template.matches(rest, &[]).map(|_| (ai, i)))
}

/// Run an inbound section through the engine for a GET of `path` on the first API and
/// operation, with these request headers.
fn run_inbound(
    rt: &tokio::runtime::Runtime,
    gw: &Gateway,
    section: &[gatehouse::exec::Stmt],
    path: &str,
    mut req_h: http::HeaderMap,
    store: &gatehouse::store::memory::MemoryStore,
    transport: &gatehouse::exec::transport::NoTransport,
) -> gatehouse::exec::Flow {
    let mut req = gatehouse::exec::ReqState::new(
        "id".into(),
        http::Method::GET,
        gatehouse::exec::Target {
            base: gw.apis[0].service.clone(),
            backend: None,
        },
        path.into(),
        gatehouse::exec::QueryState::raw(""),
        gatehouse::exec::RequestInfo {
            api: Some(0),
            operation: Some(0),
            ip: "10.0.0.1".into(),
            ..Default::default()
        },
    );
    let mut resp_h = http::HeaderMap::new();
    let mut resp = gatehouse::exec::RespState::default();
    let mut cx = gatehouse::exec::ExecCtx {
        gw,
        section: gatehouse::policy::Section::Inbound,
        req: &mut req,
        req_headers: &mut req_h,
        resp: &mut resp,
        resp_headers: &mut resp_h,
        examples: &[],
        store,
        transport,
    };
    rt.block_on(gatehouse::exec::run_section(section, &mut cx))
}

fn bench(c: &mut Criterion) {
    let small = config_dir(1);
    let big = config_dir(1000);
    let gw1 = load(&small);
    let gw1000 = load(&big);
    assert_eq!(route(&gw1000, "/svc999/v1/res9/42/items"), Some((999, 9)));
    c.bench_function("route: 1 API x 10 operations", |b| {
        b.iter(|| route(black_box(&gw1), black_box("/svc0/v1/res9/42/items")))
    });
    c.bench_function("route: 1,000 APIs x 10 operations", |b| {
        b.iter(|| route(black_box(&gw1000), black_box("/svc999/v1/res9/42/items")))
    });
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    g.bench_function("load + compile 1,000 APIs x 10 operations", |b| {
        b.iter(|| load(black_box(&big)))
    });
    g.finish();

    // The inbound section of the global policy, through the engine.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let store = gatehouse::store::memory::MemoryStore::new(100_000);
    let transport = gatehouse::exec::transport::NoTransport;
    let pipeline = gw1.apis[0].operations[0].pipelines[0].clone();
    c.bench_function("inbound section: rate limit + 3 set-header + choose", |b| {
        b.iter(|| {
            let flow = run_inbound(
                &rt,
                &gw1,
                &pipeline.inbound,
                "/res0/1/items",
                http::HeaderMap::new(),
                &store,
                &transport,
            );
            black_box(flow);
        })
    });
    let _ = std::fs::remove_dir_all(&small);
    let _ = std::fs::remove_dir_all(&big);
    bench_jwt(c, &rt, &store, &transport);
}

/// validate-jwt with a configured RSA key: a token the statement verified before (its
/// signature check remembered) against a token it has not seen (signed anew for each
/// iteration, outside the measurement).
fn bench_jwt(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    store: &gatehouse::store::memory::MemoryStore,
    transport: &gatehouse::exec::transport::NoTransport,
) {
    use base64::Engine;
    // As the gateway does at start: before the first token is signed or checked.
    gatehouse::codec::jwt_crypto::install();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap_or_else(|e| panic!("{e}"));
    let der = rsa.private_key_to_der().unwrap_or_else(|e| panic!("{e}"));
    let enc = jsonwebtoken::EncodingKey::from_rsa_der(&der);
    let (n, e) = (b64(&rsa.n().to_vec()), b64(&rsa.e().to_vec()));
    let dir = std::env::temp_dir().join(format!("gatehouse-bench-jwt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("policies")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("gatehouse.yaml"),
        "listeners:\n  - address: 127.0.0.1:1\npolicies:\n  dir: policies\napis:\n  - id: j\n    path: j\n    service_url: http://127.0.0.1:9\n    subscription_required: false\n    operations:\n      - id: any\n        method: GET\n        url_template: /x\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("policies/global.xml"),
        format!(r#"<policies><inbound><validate-jwt header-name="Authorization"><issuer-signing-keys><key id="rk" n="{n}" e="{e}" /></issuer-signing-keys><audiences><audience>bench</audience></audiences></validate-jwt></inbound><backend><forward-request /></backend><outbound /><on-error /></policies>"#),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let gw = load(&dir);
    let pipeline = gw.apis[0].operations[0].pipelines[0].clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let token = |i: u64| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some("rk".into());
        let claims =
            serde_json::json!({"aud": "bench", "sub": format!("user-{i}"), "exp": now + 3600});
        jsonwebtoken::encode(&h, &claims, &enc).unwrap_or_else(|e| panic!("{e}"))
    };
    let run = |t: &str| {
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(t) {
            headers.insert(http::header::AUTHORIZATION, v);
        }
        let flow = run_inbound(rt, &gw, &pipeline.inbound, "/x", headers, store, transport);
        assert!(
            matches!(flow, gatehouse::exec::Flow::Continue),
            "the token was refused"
        );
    };
    let seen = token(0);
    run(&seen);
    c.bench_function("validate-jwt RS256: a token verified before", |b| {
        b.iter(|| run(black_box(&seen)))
    });
    let mut i = 1;
    c.bench_function("validate-jwt RS256: a new token", |b| {
        b.iter_batched(
            || {
                i += 1;
                token(i)
            },
            |t| run(black_box(&t)),
            criterion::BatchSize::SmallInput,
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
