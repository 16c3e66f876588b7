//! Policy expressions (`@(...)`, `@{...}`): the C# subset real APIM policies use. Compiled once
//! at load (lexer -> parser -> binder), evaluated per request by a bounded interpreter over the
//! `context` view the engine provides.

pub mod ast;
pub mod builtins;
pub mod compile;
pub mod context;
pub mod datetime;
pub mod eval;
pub mod lexer;
pub mod operators;
pub mod parser;
pub mod types;
pub mod value;

use std::sync::Arc;

use crate::diag::{Diagnostic, Severity, Span};
pub use context::ContextEnv;
pub use eval::{EvalError, Limits};
pub use value::Value;

/// A compiled expression, ready to evaluate on the request path.
#[derive(Clone, Debug)]
pub struct Expr {
    pub source: String,
    pub span: Span,
    pub program: Arc<compile::Program>,
}

impl Expr {
    /// A stand-in for an expression that failed to compile (its document is already in error).
    pub fn placeholder(source: &str, span: &Span) -> Expr {
        let program = compile::Program {
            body: compile::LambdaCode::Expr(compile::Node::Const(Value::Null)),
            slots: 0,
            funcs: Vec::new(),
            reads_request_body: false,
            reads_response_body: false,
        };
        Expr {
            source: source.to_string(),
            span: span.clone(),
            program: Arc::new(program),
        }
    }

    pub fn eval(&self, env: &mut dyn ContextEnv) -> Result<Value, EvalError> {
        eval::run(&self.program, env, Limits::default())
    }

    pub fn reads_request_body(&self) -> bool {
        self.program.reads_request_body
    }

    pub fn reads_response_body(&self) -> bool {
        self.program.reads_response_body
    }
}

/// Whether a (trimmed) value is an expression: it starts with `@(` or `@{` and the
/// expression is the whole value.
pub fn is_expression(value: &str) -> bool {
    let t = value.trim();
    (t.starts_with("@(") && t.ends_with(')')) || (t.starts_with("@{") && t.ends_with('}'))
}

/// The span of a byte offset inside an expression whose text starts at `span`.
fn span_at(source: &str, span: &Span, offset: usize) -> Span {
    let before = &source[..offset.min(source.len())];
    let newlines = before.matches('\n').count() as u32;
    let col = match before.rfind('\n') {
        Some(p) => before[p + 1..].chars().count() as u32 + 1,
        None => span.col + before.chars().count() as u32,
    };
    Span {
        file: span.file.clone(),
        line: span.line + newlines,
        col,
    }
}

/// Stack that must be left before a nested parse, bind or evaluation step; with less, the
/// step runs on a fresh heap segment (`stacker`). Nesting is bounded by the parser, so the
/// segments are too. Generous for debug builds, whose frames are ten times release ones.
pub(crate) const STACK_RED_ZONE: usize = 1024 * 1024;
pub(crate) const STACK_SEGMENT: usize = 4 * 1024 * 1024;

/// Run `f` with at least `STACK_RED_ZONE` of stack.
#[inline]
pub(crate) fn with_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, f)
}

/// Compile an expression at load time. Errors point inside the expression.
pub fn compile(source: &str, span: &Span) -> Result<Expr, Diagnostic> {
    let src = source.trim();
    let lead = source.len() - source.trim_start().len();
    let error = |code: &'static str, at: usize, message: String| Diagnostic {
        severity: Severity::Error,
        code,
        span: span_at(source, span, lead + at),
        message,
    };
    let inner = src.get(2..src.len().saturating_sub(1)).unwrap_or("");
    let program = if src.starts_with("@(") {
        let e = parser::parse_expression(inner, 2)
            .map_err(|e| error("E002", e.at, format!("expression syntax: {}", e.message)))?;
        compile::compile_expression(&e)
    } else {
        let b = parser::parse_block(inner, 2)
            .map_err(|e| error("E002", e.at, format!("expression syntax: {}", e.message)))?;
        compile::compile_block(&b)
    };
    let program = program.map_err(|e| error("E003", e.at, e.message))?;
    Ok(Expr {
        source: src.to_string(),
        span: span.clone(),
        program: Arc::new(program),
    })
}
#[cfg(test)]
mod tests;
