//! Fuzz the request-path normaliser (docs/security.md): it never panics, and what it accepts is
//! canonical: ASCII, rooted, a fixed point, without empty, `.` or `..` segments or encoded
//! separators.
#![no_main]

use gatehouse::codec::path::normalize;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = normalize(data) else { return };
    assert!(p.is_ascii() && p.starts_with('/'), "{p:?}");
    assert_eq!(normalize(p.as_bytes()).as_deref(), Ok(&*p), "not a fixed point");
    let inner = p.strip_suffix('/').unwrap_or(&p);
    for seg in inner.split('/').skip(1) {
        assert!(!seg.is_empty() || inner.is_empty(), "empty segment in {p:?}");
        assert!(seg != "." && seg != "..", "dot segment in {p:?}");
        let upper = seg.to_ascii_uppercase();
        assert!(!upper.contains("%2F") && !upper.contains("%5C") && !seg.contains('\\'), "{p:?}");
    }
});
