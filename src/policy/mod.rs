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

/// Read and parse a `<policies>` document at `scope`.
pub fn load_document(path: &Path, env: &parse::Env, diags: &mut Diagnostics) -> Option<PolicyDoc> {
    let (file, text) = read(path, MAX_DOCUMENT_BYTES, diags)?;
    match xml::parse(&file, &text) {
        Ok(root) => Some(parse::parse_document(&root, env, diags)),
        Err(d) => {
            diags.extend(d);
            None
        }
    }
}

/// Read and parse a `<fragment>` document.
pub fn load_fragment(path: &Path, env: &parse::Env, diags: &mut Diagnostics) -> Option<Vec<Stmt>> {
    let (file, text) = read(path, MAX_FRAGMENT_BYTES, diags)?;
    match xml::parse(&file, &text) {
        Ok(root) => Some(parse::parse_fragment(&root, env, diags)),
        Err(d) => {
            diags.extend(d);
            None
        }
    }
}

fn read(path: &Path, max: usize, diags: &mut Diagnostics) -> Option<(Arc<str>, String)> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    // At most one byte past the limit is read: a huge file (or a device) is never read whole.
    match crate::config::read_bounded(path, max as u64 + 1) {
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
