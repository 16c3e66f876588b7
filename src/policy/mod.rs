//! What policy documents are made of, below the policies themselves: the lenient XML reader,
//! the attribute reader with named values, values (`Val`), sections and scopes, and the
//! catalogue of APIM elements gatehouse does not run. The policies (one module each) and the
//! statements they make are in `exec::policies`.

pub mod ast;
pub mod catalog;
pub mod liquid;
pub mod mask;
pub mod reader;
pub mod xml;

pub use ast::*;

/// Largest policy document (apim-reference.md §1.1).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Largest fragment (apim-reference.md §4.2).
pub const MAX_FRAGMENT_BYTES: usize = 32 * 1024;
