//! Writing a gateway-built response (return-response, mock-response, errors) downstream.

use http::header;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use super::Ctx;
use crate::exec::policies::set_status::valid_reason;

pub async fn write_gateway_response(session: &mut Session, ctx: &mut Ctx) -> Result<()> {
    let status = ctx.resp.status;
    let mut h = ResponseHeader::build(status, Some(ctx.resp_headers.len() + 1))?;
    for (name, value) in ctx.resp_headers.iter() {
        h.append_header(name.clone(), value.clone())?;
    }
    for (name, value) in ctx.extra_headers() {
        h.insert_header(name, value)?;
    }
    ctx.add_request_id(&mut h);
    // Checked where a policy sets it; checked again here so no path puts CR/LF on the wire.
    if let Some(r) = ctx.resp.reason.as_deref().filter(|r| valid_reason(r)) {
        h.set_reason_phrase(Some(r))?;
    }
    let body = ctx
        .resp
        .body
        .take()
        .or_else(|| ctx.resp.original_body.take())
        .unwrap_or_default();
    h.insert_header(header::CONTENT_LENGTH, body.len().to_string())?;
    if let Some(c) = ctx.compression.clone() {
        super::compress::on_response(session, &c, &h);
    }
    let head = session.req_header().method == http::Method::HEAD;
    ctx.final_status = status;
    ctx.response_started = true;
    let end = body.is_empty() || head;
    session.write_response_header(Box::new(h), end).await?;
    if !end {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}
