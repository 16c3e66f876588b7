//! Fuzz the body transformations (xml-to-json, json-to-xml, set-body Liquid): any bytes give a
//! result or an error, never a panic, and bounded work (iterative, depth-limited). For Liquid
//! the input is a template, a NUL, and a body read as JSON and as XML.
#![no_main]

use gatehouse::exec::policies::{json_to_xml, xml_to_json};
use gatehouse::expr::context::EmptyEnv;
use gatehouse::policy::liquid;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (friendly, always_array) in [(false, false), (true, true)] {
        let style = xml_to_json::Style { friendly, always_array };
        let _ = xml_to_json::convert(data, style);
    }
    let names = json_to_xml::Names {
        separator: "_".into(),
        prefix: "xmlns".into(),
        attributes: Some("#attrs".into()),
    };
    if let Ok(xml) = json_to_xml::convert(data, &names) {
        // What json-to-xml writes is well-formed XML that xml-to-json reads back.
        let style = xml_to_json::Style { friendly: false, always_array: false };
        assert!(xml_to_json::convert(xml.as_bytes(), style).is_ok(), "{xml}");
    }
    liquid_case(data);
});

fn liquid_case(data: &[u8]) {
    let mut parts = data.splitn(2, |b| *b == 0);
    let (Some(src), Some(body)) = (parts.next(), parts.next()) else { return };
    let Ok(src) = std::str::from_utf8(src) else { return };
    let Ok(t) = liquid::compile(src) else { return };
    let opts = liquid::Options { nil_is_null: true, parse_date: true };
    let style = xml_to_json::Style { friendly: true, always_array: false };
    let parsed = [
        serde_json::from_slice::<serde_json::Value>(body).ok().map(|j| (j, false)),
        xml_to_json::convert(body, style).ok().map(|j| (j, true)),
    ];
    for (json, from_xml) in parsed.iter().flatten() {
        let body = liquid::Body { json, from_xml: *from_xml };
        // Bounded output: a loop template cannot grow past the limit.
        if let Ok(out) = liquid::render(&t, &mut EmptyEnv, Some(body), opts, 1 << 16) {
            assert!(out.len() <= 1 << 16);
        }
    }
}
