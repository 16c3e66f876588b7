//! Fuzz the expression lexer, parser and binder; what compiles is also evaluated against an
//! empty context (bounded by the evaluator's limits). Nothing may panic.
#![no_main]

use gatehouse::diag::Span;
use gatehouse::expr::context::EmptyEnv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let span = Span::file("fuzz");
    for src in [format!("@({s})"), format!("@{{{s}}}")] {
        if let Ok(e) = gatehouse::expr::compile(&src, &span) {
            let mut env = EmptyEnv;
            let _ = gatehouse::expr::eval::run(&e.program, &mut env, gatehouse::expr::Limits { max_steps: 20_000, max_depth: 64, max_bytes: 1 << 20 });
        }
    }
});
