//! `<jsonp callback-parameter-name="cb"/>` (outbound): when the request carries `?cb=name`, the
//! response body becomes `name(body);` with `Content-Type: application/javascript`; without
//! the parameter the body is left as it is.
//!
//! The callback name is reflected into a script, so only a JavaScript dotted identifier is
//! used (`[A-Za-z_$][A-Za-z0-9_$]*`, dot-separated, at most 128 bytes): any other value leaves
//! the body unwrapped rather than writing attacker-chosen script. The response also gets
//! `X-Content-Type-Options: nosniff`.

use super::*;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};

use crate::exec::value;

#[derive(Clone, Debug)]
pub struct Jsonp {
    pub callback_parameter: Val<String>,
}

impl Policy for Jsonp {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let callback_parameter = r
            .required_value("callback-parameter-name", |s| Ok(s.trim().to_string()))
            .unwrap_or(Val::Lit("callback".into()));
        Some(Jsonp { callback_parameter })
    }

    /// It wraps the response body.
    fn needs(&self) -> Needs {
        Needs {
            response_body: true,
            ..Needs::NONE
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.callback_parameter, f);
    }
}

impl RunsNow for Jsonp {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let param = value(&self.callback_parameter, cx)?.into_owned();
        let Some(name) = cx
            .req
            .query
            .pairs()
            .into_iter()
            .find(|(k, _)| *k == param)
            .map(|(_, v)| v)
            .filter(|v| callback_name(v))
        else {
            return Ok(Step::Next);
        };
        let body = cx
            .resp
            .body
            .clone()
            .or_else(|| cx.resp.original_body.clone())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(name.len() + body.len() + 3);
        out.extend_from_slice(name.as_bytes());
        out.push(b'(');
        out.extend_from_slice(&body);
        out.extend_from_slice(b");");
        cx.resp.body = Some(Bytes::from(out));
        cx.resp_headers.set(
            &CONTENT_TYPE,
            &[HeaderValue::from_static("application/javascript")],
        );
        cx.resp_headers.set(
            &X_CONTENT_TYPE_OPTIONS,
            &[HeaderValue::from_static("nosniff")],
        );
        Ok(Step::Next)
    }
}

/// A dotted JavaScript identifier of at most 128 bytes.
fn callback_name(s: &str) -> bool {
    s.len() <= 128
        && !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

#[cfg(test)]
mod tests {
    use super::callback_name;

    #[test]
    fn only_identifiers_are_callbacks() {
        for ok in ["cb", "jQuery123_456", "a.b.$c", "_x"] {
            assert!(callback_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "a..b",
            "alert(1)//",
            "a-b",
            "x;y",
            &"a".repeat(129),
        ] {
            assert!(!callback_name(bad), "{bad}");
        }
    }
}
