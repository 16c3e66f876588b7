//! Fuzz the lenient policy XML reader (expression masking, spans) and the policy parser.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let file: Arc<str> = Arc::from("fuzz.xml");
    if let Ok(root) = gatehouse::policy::xml::parse(&file, s) {
        let named = ahash::AHashMap::new();
        let env = gatehouse::policy::reader::Env { named: &named, scope: gatehouse::policy::Scope::Api };
        let mut d = gatehouse::diag::Diagnostics::new();
        let _ = gatehouse::exec::policies::parse_document(&root, &env, &mut d);
        let _ = gatehouse::exec::policies::parse_fragment(&root, &env, &mut d);
    }
});
