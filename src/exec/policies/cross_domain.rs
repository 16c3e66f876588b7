//! `<cross-domain>` (global scope, inbound): the Adobe cross-domain policy file Flash and
//! Silverlight clients fetch. Its content, kept as written, is what the gateway answers to
//! `GET /crossdomain.xml` (200, `application/xml`) when no API serves that path; the statement
//! does nothing in the pipeline itself. Anywhere but the global scope it is load error P012,
//! as APIM allows it only there.

use super::*;

#[derive(Clone, Debug)]
pub struct CrossDomain(pub bytes::Bytes);

impl Policy for CrossDomain {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        // The content is not policy XML: the reader keeps it as written.
        r.children_checked = true;
        if r.env.scope != Scope::Global {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "<cross-domain> is allowed only in the global policy",
            );
            return None;
        }
        let text = r.el.text().map(|t| t.value).unwrap_or_default();
        let body = text.trim();
        let body = if body.starts_with("<?xml") {
            body.to_string()
        } else {
            format!("<?xml version=\"1.0\"?>\n{body}")
        };
        Some(CrossDomain(bytes::Bytes::from(body)))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, _f: &mut dyn FnMut(&Expr)) {}
}

impl RunsNow for CrossDomain {
    fn run(&self, _cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        Ok(Step::Next)
    }
}
