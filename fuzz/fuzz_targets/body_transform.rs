//! Fuzz the body transformations (xml-to-json, json-to-xml): any bytes give a result or an
//! error, never a panic, and bounded work (iterative, depth-limited).
#![no_main]

use gatehouse::exec::policies::{json_to_xml, xml_to_json};
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
});
