//! Body transformation benchmarks: xml-to-json (direct and javascript-friendly) on a 2 KiB and
//! a 64 KiB SOAP-like document, json-to-xml on a 2 KiB and a 64 KiB order list, set-body
//! Liquid rendering a SOAP envelope from a 2 KiB and a 64 KiB order list, xsl-transform (one
//! `xsltproc` child per run) over the 2 KiB and 64 KiB SOAP document. Run with
//! `cargo bench --bench transform`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gatehouse::exec::policies::json_to_xml;
use gatehouse::exec::policies::xml_to_json::{convert, Style};

/// A SOAP envelope with `items` order lines, about 110 bytes each.
fn document(items: usize) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Orders customer="1234567">"#,
    );
    for i in 0..items {
        s.push_str(&format!(
            r#"<Order id="{i}"><Sku>SKU-{i:06}</Sku><Qty>{}</Qty><Note><![CDATA[fragile & <urgent>]]></Note></Order>"#,
            i % 7 + 1
        ));
    }
    s.push_str("</Orders></soap:Body></soap:Envelope>");
    s
}

fn xml_to_json(c: &mut Criterion) {
    let mut g = c.benchmark_group("xml-to-json");
    for (label, items) in [("2KiB", 18), ("64KiB", 580)] {
        let doc = document(items);
        g.throughput(Throughput::Bytes(doc.len() as u64));
        for (kind, friendly) in [("direct", false), ("javascript-friendly", true)] {
            let style = Style {
                friendly,
                always_array: false,
            };
            g.bench_function(format!("{kind}/{label}"), |b| {
                b.iter(|| convert(black_box(doc.as_bytes()), style).map(|j| j.to_string()))
            });
        }
    }
    g.finish();
}

/// A JSON order list with `items` lines, about 110 bytes each.
fn json_document(items: usize) -> String {
    let lines: Vec<String> = (0..items)
        .map(|i| {
            format!(
                r#"{{"id":{i},"sku":"SKU-{i:06}","qty":{},"gift":{},"note":"fragile & <urgent>"}}"#,
                i % 7 + 1,
                i % 2 == 0
            )
        })
        .collect();
    format!(r#"{{"customer":"1234567","orders":[{}]}}"#, lines.join(","))
}

fn json_to_xml(c: &mut Criterion) {
    let mut g = c.benchmark_group("json-to-xml");
    let names = json_to_xml::Names {
        separator: "_".into(),
        prefix: "xmlns".into(),
        attributes: None,
    };
    for (label, items) in [("2KiB", 22), ("64KiB", 700)] {
        let doc = json_document(items);
        g.throughput(Throughput::Bytes(doc.len() as u64));
        g.bench_function(label, |b| {
            b.iter(|| json_to_xml::convert(black_box(doc.as_bytes()), &names))
        });
    }
    g.finish();
}

/// A Liquid template in the shape of Microsoft's JSON-to-SOAP example, looping over the lines.
const LIQUID: &str = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Orders customer="{{body.customer}}">{% for o in body.orders %}<Order id="{{o.id}}"><Sku>{{o.sku | Upcase}}</Sku><Qty>{{o.qty | Times: 2}}</Qty><Note>{{o.note | Escape}}</Note></Order>{% endfor %}</Orders></soap:Body></soap:Envelope>"#;

fn liquid(c: &mut Criterion) {
    use gatehouse::expr::context::EmptyEnv;
    use gatehouse::policy::liquid::{compile, render, Body, Options};
    let mut g = c.benchmark_group("set-body-liquid");
    let Ok(t) = compile(LIQUID) else {
        panic!("the benchmark's template compiles")
    };
    let opts = Options {
        nil_is_null: false,
        parse_date: true,
    };
    for (label, items) in [("2KiB", 22), ("64KiB", 700)] {
        let doc = json_document(items);
        g.throughput(Throughput::Bytes(doc.len() as u64));
        g.bench_function(label, |b| {
            b.iter(|| {
                // What the policy does per request: parse the body, build the model, render.
                let json: serde_json::Value =
                    serde_json::from_slice(black_box(doc.as_bytes())).unwrap_or_default();
                let body = Body {
                    json: &json,
                    from_xml: false,
                };
                render(&t, &mut EmptyEnv, Some(body), opts, 1 << 24)
            })
        });
    }
    g.finish();
}

/// Microsoft's example stylesheet: copy everything, add an attribute to the root.
const XSL: &str = r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:param name="User-Agent" /><xsl:template match="* | @* | node()"><xsl:copy><xsl:if test="self::* and not(parent::*)"><xsl:attribute name="User-Agent"><xsl:value-of select="$User-Agent" /></xsl:attribute></xsl:if><xsl:apply-templates select="* | @* | node()" /></xsl:copy></xsl:template></xsl:stylesheet>"#;

fn xsl_transform(c: &mut Criterion) {
    use gatehouse::exec::policies::xsl_transform::Stylesheet;
    let Ok(s) = Stylesheet::compile(XSL) else {
        eprintln!("xsl-transform bench skipped: xsltproc is not installed");
        return;
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let mut g = c.benchmark_group("xsl-transform");
    let params = [("User-Agent".to_string(), "bench".to_string())];
    for (label, items) in [("2KiB", 18), ("64KiB", 580)] {
        let doc = bytes::Bytes::from(document(items));
        g.throughput(Throughput::Bytes(doc.len() as u64));
        g.bench_function(label, |b| {
            b.iter(|| rt.block_on(s.apply(doc.clone(), &params, 1 << 24)))
        });
    }
    g.finish();
}

criterion_group!(benches, xml_to_json, json_to_xml, liquid, xsl_transform);
criterion_main!(benches);
