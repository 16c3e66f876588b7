//! Policy documents: the lenient XML reader, the typed AST, parsing with named values,
//! fragments, scope composition and legality checks.

pub mod ast;
pub mod catalog;
pub mod compose;
pub mod mask;
pub mod parse;
pub mod xml;

use std::path::Path;
use std::sync::Arc;

use crate::diag::{Diagnostics, Span};
pub use ast::*;

/// Largest policy document (apim-reference.md §1.1).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Largest fragment (apim-reference.md §4.2).
pub const MAX_FRAGMENT_BYTES: usize = 32 * 1024;

/// Parse a `<policies>` document from its text as the loader read it (at most one byte past
/// the limit, or the read error).
pub fn document_from_text(
    path: &Path,
    text: Result<&str, String>,
    env: &parse::Env,
    diags: &mut Diagnostics,
) -> Option<PolicyDoc> {
    let (file, text) = checked(path, text, MAX_DOCUMENT_BYTES, diags)?;
    match xml::parse(&file, text) {
        Ok(root) => Some(parse::parse_document(&root, env, diags)),
        Err(d) => {
            diags.extend(d);
            None
        }
    }
}

/// Parse a `<fragment>` document from its text as the loader read it.
pub fn fragment_from_text(
    path: &Path,
    text: Result<&str, String>,
    env: &parse::Env,
    diags: &mut Diagnostics,
) -> Option<Vec<Stmt>> {
    let (file, text) = checked(path, text, MAX_FRAGMENT_BYTES, diags)?;
    match xml::parse(&file, text) {
        Ok(root) => Some(parse::parse_fragment(&root, env, diags)),
        Err(d) => {
            diags.extend(d);
            None
        }
    }
}

fn checked<'t>(
    path: &Path,
    text: Result<&'t str, String>,
    max: usize,
    diags: &mut Diagnostics,
) -> Option<(Arc<str>, &'t str)> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    match text {
        Ok(t) if t.len() > max => {
            diags.error(
                "P008",
                Span::new(&file, 1, 1),
                format!("document is over {max} bytes, the limit"),
            );
            None
        }
        Ok(t) => Some((file, t)),
        Err(e) => {
            diags.error(
                "P009",
                Span::new(&file, 1, 1),
                format!("cannot read policy document: {e}"),
            );
            None
        }
    }
}
