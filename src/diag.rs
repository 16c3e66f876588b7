//! Source positions and user-facing diagnostics: every error a user can cause carries
//! `file:line:col`, a stable code and a message, and all of them are collected together.

use std::fmt;
use std::sync::Arc;

/// A value that does not parse or convert, with the reason in words: attribute and
/// configuration values at load, expression results converted to an attribute's type at run
/// time. Callers turn it into a diagnostic (with the value's span) or a policy error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(s: String) -> Invalid {
        Invalid(s)
    }
}

impl From<&str> for Invalid {
    fn from(s: &str) -> Invalid {
        Invalid(s.to_string())
    }
}

/// `Invalid(format!(...))`.
#[macro_export]
macro_rules! invalid {
    ($($t:tt)*) => {
        $crate::diag::Invalid(format!($($t)*))
    };
}

/// A position in a source file (1-based line and column, column counted in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub fn new(file: &Arc<str>, line: u32, col: u32) -> Span {
        Span {
            file: file.clone(),
            line,
            col,
        }
    }

    /// The position after `text` written from here (a place inside a text node).
    pub fn advanced(&self, text: &str) -> Span {
        let mut s = self.clone();
        match text.rfind('\n') {
            Some(nl) => {
                s.line += text.matches('\n').count() as u32;
                s.col = text[nl + 1..].chars().count() as u32 + 1;
            }
            None => s.col += text.chars().count() as u32,
        }
        s
    }

    /// A span for a whole file, when no finer position is known.
    pub fn file(file: &str) -> Span {
        Span {
            file: Arc::from(file),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// Maps byte offsets of a text to line/column positions.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: std::borrow::Cow<'a, [usize]>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        LineIndex {
            text,
            starts: Self::line_starts(text).into(),
        }
    }

    /// Offsets where lines start (kept by callers that index the same text many times).
    pub fn line_starts(text: &str) -> Vec<usize> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        starts
    }

    pub fn with_starts(text: &'a str, starts: &'a [usize]) -> Self {
        LineIndex {
            text,
            starts: starts.into(),
        }
    }

    /// (line, col), both 1-based; the column counts characters, not bytes.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line as u32 + 1, col as u32 + 1)
    }

    pub fn span(&self, file: &Arc<str>, offset: usize) -> Span {
        let (line, col) = self.position(offset);
        Span::new(file, line, col)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found while loading or compiling configuration or policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code: `C…` configuration, `P…` policy, `E…` expressions.
    pub code: &'static str,
    pub span: Span,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {}[{}]: {}", self.span, sev, self.code, self.message)
    }
}

/// A collection of diagnostics; loading never stops at the first error.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, code: &'static str, span: Span, message: impl Into<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Error,
            code,
            span,
            message: message.into(),
        });
    }

    pub fn warning(&mut self, code: &'static str, span: Span, message: impl Into<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Warning,
            code,
            span,
            message: message.into(),
        });
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// Sorted by file, line and column, so output is stable.
    pub fn sorted(mut self) -> Self {
        self.items.sort_by(|a, b| {
            (&*a.span.file, a.span.line, a.span.col, a.code).cmp(&(
                &*b.span.file,
                b.span.line,
                b.span.col,
                b.code,
            ))
        });
        self.items.dedup();
        self
    }

    /// Human-readable rendering, one diagnostic per line.
    /// Replace every occurrence of a secret in the messages with `***` (longest first, so a
    /// secret that contains another is masked whole). Empty secrets are skipped.
    pub fn mask_secrets(&mut self, secrets: &[String]) {
        let mut secrets: Vec<&str> = secrets
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for d in &mut self.items {
            for s in &secrets {
                if d.message.contains(s) {
                    d.message = d.message.replace(s, "***");
                }
            }
        }
    }

    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for d in &self.items {
            out.push_str(&d.to_string());
            out.push('\n');
        }
        out
    }

    /// Machine-readable rendering: a JSON array of objects.
    pub fn render_json(&self) -> String {
        let arr: Vec<serde_json::Value> = self
            .items
            .iter()
            .map(|d| {
                serde_json::json!({
                    "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                    "code": d.code,
                    "file": &*d.span.file,
                    "line": d.span.line,
                    "column": d.span.col,
                    "message": d.message,
                })
            })
            .collect();
        serde_json::Value::Array(arr).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_characters() {
        let idx = LineIndex::new("ab\ncdé\nx");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(3), (2, 1));
        assert_eq!(idx.position(7), (2, 4));
        assert_eq!(idx.position(8), (3, 1));
    }
}
