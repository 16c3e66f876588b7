//! `<return-response>` and `<mock-response>`.

use super::*;

#[derive(Clone, Debug)]
pub struct ReturnResponse {
    /// A variable holding an `IResponse` (from send-request) to start from.
    pub response_variable: Option<String>,
    pub status: Option<SetStatus>,
    pub headers: Vec<SetHeader>,
    pub body: Option<Val<String>>,
}

#[derive(Clone, Debug)]
pub struct MockResponse {
    pub status: u16,
    pub content_type: Option<String>,
}

impl ReturnResponse {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        if let Some(s) = &self.status {
            s.exprs(f);
        }
        for h in &self.headers {
            h.exprs(f);
        }
        if let Some(b) = &self.body {
            visit_val(b, f);
        }
    }
}

pub(super) fn return_response_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    Some(StmtKind::ReturnResponse(parse_return_response(r)))
}

pub(super) fn mock_response_statement(r: &mut Reader, _element: &str) -> Option<StmtKind> {
    r.no_children();
    let status = r.parsed_literal("status-code", parse_status).unwrap_or(200);
    let content_type = r.literal("content-type").map(|(v, _)| v);
    r.literal("index");
    Some(StmtKind::MockResponse(MockResponse {
        status,
        content_type,
    }))
}

pub(super) fn parse_return_response(r: &mut Reader) -> ReturnResponse {
    let response_variable = r.literal("response-variable-name").map(|(v, _)| v);
    let mut out = ReturnResponse {
        response_variable,
        status: None,
        headers: Vec::new(),
        body: None,
    };
    for child in r.children() {
        let mut cr = r.child(child);
        match child.name.as_str() {
            "set-status" if out.status.is_none() => {
                cr.no_children();
                out.status = Some(parse_set_status(&mut cr));
            }
            "set-header" => out.headers.push(parse_set_header(&mut cr)),
            "set-body" if out.body.is_none() => {
                out.body = cr.text_value(false, |s| Ok(s.to_string()));
            }
            "set-status" | "set-body" => {
                cr.diags.error(
                    "P017",
                    child.span.clone(),
                    format!("<{}> may appear only once in <return-response>", child.name),
                );
            }
            other => {
                cr.diags.error("P014", child.span.clone(), format!("<{other}> is not allowed in <return-response>; expected set-status, set-header or set-body"));
                continue;
            }
        }
        cr.literal("id");
        cr.finish();
    }
    out
}
