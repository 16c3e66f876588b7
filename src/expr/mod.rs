//! Policy expressions (`@(...)`, `@{...}`): the C#-subset language. This build recognises
//! expressions and reports them at load time as not yet supported (issue "policy expressions"
//! fills in the compiler and evaluator behind this same interface).

use crate::diag::{Diagnostic, Severity, Span};

/// A compiled expression, ready to evaluate on the request path.
#[derive(Clone, Debug)]
pub struct Expr {
    pub source: String,
    pub span: Span,
}

/// Whether a (trimmed) value is an expression: it starts with `@(` or `@{` and the
/// expression is the whole value.
pub fn is_expression(value: &str) -> bool {
    let t = value.trim();
    (t.starts_with("@(") && t.ends_with(')')) || (t.starts_with("@{") && t.ends_with('}'))
}

/// Compile an expression at load time.
pub fn compile(source: &str, span: &Span) -> Result<Expr, Diagnostic> {
    let _ = source;
    Err(Diagnostic {
        severity: Severity::Error,
        code: "E001",
        span: span.clone(),
        message: "policy expressions are not supported by this gatehouse build yet; use a literal value".into(),
    })
}
