//! What expressions read from the running request. The policy engine implements this over
//! its request state; tests implement it over fixed data.

use crate::diag::Invalid;
use bytes::Bytes;

use super::value::{Ctx, Value};

pub trait ContextEnv {
    /// A scalar member of a context object: `(Request, "Method")`, `(Context, "Product")`
    /// (null or `Value::Ctx(Product)`), `(Product, "Id")`, `(LastError, "Reason")`, ...
    fn prop(&mut self, obj: Ctx, name: &str) -> Result<Value, Invalid>;
    /// Values of a header (`RequestHeaders` / `ResponseHeaders`), case-insensitive; None if absent.
    fn header(&self, which: Ctx, name: &str) -> Option<Vec<String>>;
    fn header_names(&self, which: Ctx) -> Vec<String>;
    /// All values of a header joined with `,` (APIM's `GetValueOrDefault`), built directly as
    /// the produced string.
    fn header_joined(&self, which: Ctx, name: &str) -> Option<std::sync::Arc<str>> {
        self.header(which, name)
            .map(|v| std::sync::Arc::from(v.join(",")))
    }
    fn matched_parameters(&self) -> Vec<(String, String)>;
    fn variable(&self, name: &str) -> Option<Value>;
    fn variable_names(&self) -> Vec<String>;
    /// The buffered body of the request (`RequestBody`) or response (`ResponseBody`).
    fn body(&mut self, which: Ctx) -> Option<Bytes>;
    /// `context.Trace(message)`.
    fn trace(&mut self, message: &str);
}

/// A context with nothing in it (for constant folding and tests).
#[derive(Default)]
pub struct EmptyEnv;

impl ContextEnv for EmptyEnv {
    fn prop(&mut self, _obj: Ctx, name: &str) -> Result<Value, Invalid> {
        Err(crate::invalid!(
            "context member `{name}` is not available here"
        ))
    }
    fn header(&self, _which: Ctx, _name: &str) -> Option<Vec<String>> {
        None
    }
    fn header_names(&self, _which: Ctx) -> Vec<String> {
        Vec::new()
    }
    fn matched_parameters(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn variable(&self, _name: &str) -> Option<Value> {
        None
    }
    fn variable_names(&self) -> Vec<String> {
        Vec::new()
    }
    fn body(&mut self, _which: Ctx) -> Option<Bytes> {
        None
    }
    fn trace(&mut self, _message: &str) {}
}
