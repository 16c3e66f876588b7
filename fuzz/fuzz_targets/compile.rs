//! Fuzz the whole compile: configuration YAML and a global policy document (the input split at
//! its first NUL byte), loaded and compiled as `gatehouse check` does. Nothing may panic, and
//! compile time and memory stay bounded (libFuzzer's -timeout and -rss_limit_mb).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("gatehouse-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(d.join("policies"));
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (yaml, policy) = s.split_once('\0').unwrap_or((s, ""));
    let d = dir();
    if std::fs::write(d.join("policies/global.xml"), policy).is_err() {
        return;
    }
    let Ok(cfg) = gatehouse::config::load_text(&d.join("gatehouse.yaml"), yaml.to_string()) else {
        return;
    };
    let _ = gatehouse::gateway::compile(&cfg, &gatehouse::gateway::load::Sources::read(&cfg));
});
