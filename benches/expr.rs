//! Engine benchmarks: expression evaluation for the idioms policies use most, and compiling a
//! 200-expression policy document. Run with `cargo bench --bench expr`.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::diag::Span;
use gatehouse::expr::context::ContextEnv;
use gatehouse::expr::value::{Ctx, Obj, UrlData, Value};
use gatehouse::expr::{self, Expr};

struct BenchEnv {
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl ContextEnv for BenchEnv {
    fn prop(&mut self, obj: Ctx, name: &str) -> Result<Value, gatehouse::diag::Invalid> {
        Ok(match (obj, name) {
            (Ctx::Request, "Method") => Value::str("POST"),
            (Ctx::Request, "Url") => Value::obj(Obj::Url(UrlData {
                scheme: "https".into(),
                host: "api.example.com".into(),
                port: 443,
                path: "/orders/42".into(),
                query: vec![],
            })),
            (Ctx::Request, "Body") => Value::obj(Obj::Body {
                which: Ctx::RequestBody,
            }),
            _ => Value::Null,
        })
    }
    fn header(&self, _which: Ctx, name: &str) -> Option<Vec<String>> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| vec![v.clone()])
    }
    fn header_joined(&self, _which: Ctx, name: &str) -> Option<Arc<str>> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| Arc::from(v.as_str()))
    }
    fn header_names(&self, _which: Ctx) -> Vec<String> {
        self.headers.iter().map(|(k, _)| k.clone()).collect()
    }
    fn matched_parameters(&self) -> Vec<(String, String)> {
        vec![]
    }
    fn variable(&self, _name: &str) -> Option<Value> {
        None
    }
    fn variable_names(&self) -> Vec<String> {
        vec![]
    }
    fn body(&mut self, _which: Ctx) -> Option<Bytes> {
        Some(self.body.clone())
    }
    fn trace(&mut self, _message: &str) {}
}

fn compile(src: &str) -> Expr {
    expr::compile(src, &Span::file("bench")).unwrap_or_else(|d| panic!("{}", d.message))
}

const TOKEN: &str = "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF1ZCI6WyJhMSIsImEyIl0sImV4cCI6MTcwMDAwMDAwMH0.c2ln";

fn env() -> BenchEnv {
    BenchEnv {
        headers: vec![("x-tenant".into(), "contoso".into()), ("authorization".into(), TOKEN.into()), ("accept".into(), "application/json".into())],
        body: Bytes::from_static(br#"{"order":{"id":42,"items":[{"sku":"a","qty":2},{"sku":"b","qty":0}]},"customer":"c-9"}"#),
    }
}

fn bench(c: &mut Criterion) {
    let cases: Vec<(&str, Arc<Expr>)> = vec![
        (
            "header_lookup",
            Arc::new(compile(
                r#"@(context.Request.Headers.GetValueOrDefault("x-tenant", ""))"#,
            )),
        ),
        (
            "choose_condition",
            Arc::new(compile(
                r#"@(context.Request.Method == "POST" && context.Request.Url.Path.StartsWith("/orders"))"#,
            )),
        ),
        (
            "jwt_subject",
            Arc::new(compile(
                r#"@(context.Request.Headers.GetValueOrDefault("Authorization", "").AsJwt()?.Subject)"#,
            )),
        ),
        (
            "jobject_read_rebuild",
            Arc::new(compile(
                r#"@{ var b = context.Request.Body.As<JObject>(preserveContent: true); return new JObject(new JProperty("id", b["order"]["id"]), new JProperty("customer", b["customer"])).ToString(Formatting.None); }"#,
            )),
        ),
        (
            "block_20_lines_linq",
            Arc::new(compile(
                r#"@{
                    var body = context.Request.Body.As<JObject>(preserveContent: true);
                    var items = (JArray)body["order"]["items"];
                    var active = items.Where(i => (int)i["qty"] > 0).ToList();
                    var skus = active.Select(i => (string)i["sku"]).ToArray();
                    var total = items.Sum(i => (int)i["qty"]);
                    var tenant = context.Request.Headers.GetValueOrDefault("x-tenant", "none");
                    var accept = context.Request.Headers.GetValueOrDefault("accept", "*/*");
                    var isJson = accept.Contains("json");
                    var tags = new List<string>();
                    foreach (var s in skus) { tags.Add(s.ToUpper()); }
                    if (total > 10) { tags.Add("bulk"); }
                    else { tags.Add("small"); }
                    var summary = string.Join(",", tags);
                    var key = tenant + ":" + summary;
                    var count = active.Count;
                    var first = skus.FirstOrDefault() ?? "none";
                    var ok = isJson && count > 0;
                    return ok ? key + "|" + first : "empty";
                }"#,
            )),
        ),
    ];
    for (name, e) in cases {
        let mut en = env();
        // Sanity: each case evaluates without error.
        if let Err(err) = e.eval(&mut en) {
            panic!("{name}: {}", err.message());
        }
        c.bench_function(name, |b| b.iter(|| black_box(e.eval(&mut en).ok())));
    }

    let mut doc = String::from("<policies><inbound>");
    for i in 0..200 {
        doc.push_str(&format!(
            "<set-header name=\"X-H{i}\" exists-action=\"override\"><value>@(context.Request.Headers.GetValueOrDefault(\"x-{i}\", \"d\") + \"-\" + {i}.ToString())</value></set-header>"
        ));
    }
    doc.push_str("</inbound></policies>");
    let file: Arc<str> = Arc::from("bench.xml");
    c.bench_function("compile_200_expression_document", |b| {
        b.iter(|| {
            let root = gatehouse::policy::xml::parse(&file, black_box(&doc))
                .unwrap_or_else(|_| panic!("xml"));
            let named = ahash::AHashMap::new();
            let env = gatehouse::policy::reader::Env {
                named: &named,
                scope: gatehouse::policy::Scope::Api,
            };
            let mut d = gatehouse::diag::Diagnostics::new();
            let parsed = gatehouse::exec::policies::parse_document(&root, &env, &mut d);
            assert!(!d.has_errors());
            black_box(parsed)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
