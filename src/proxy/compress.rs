//! Response compression (docs/configuration.md `compression`) through Pingora's compression
//! module: off for every request until routing finds an API that compresses, then offered
//! only the algorithms that API allows and the client accepts (in the client's order of
//! preference, q-values honoured, which Pingora's own parser ignores), and withdrawn in
//! `response_filter` for a media type or a length the API does not compress.

use pingora::modules::http::compression::{ResponseCompression, ResponseCompressionBuilder};
use pingora::modules::http::HttpModules;
use pingora::protocols::http::compression::{Algorithm, ResponseCompressionCtx};
use pingora::proxy::Session;

use crate::config::CompressionAlgorithm;
use crate::exec::model::Compression;

/// Register the module, disabled (level 0): each request turns it on for itself.
pub fn register(modules: &mut HttpModules) {
    modules.add_module(ResponseCompressionBuilder::enable(0));
}

fn algorithm(a: CompressionAlgorithm) -> (Algorithm, &'static str) {
    match a {
        CompressionAlgorithm::Gzip => (Algorithm::Gzip, "gzip"),
        CompressionAlgorithm::Br => (Algorithm::Brotli, "br"),
        CompressionAlgorithm::Zstd => (Algorithm::Zstd, "zstd"),
    }
}

/// After routing: compress this request's response as `c` says, for what the client accepts.
pub fn on_request(session: &mut Session, c: &Compression) {
    let accepted = c.negotiate(
        session
            .req_header()
            .headers
            .get(http::header::ACCEPT_ENCODING)
            .map_or(&[][..], |v| v.as_bytes()),
    );
    if accepted.is_empty() {
        return;
    }
    let Some(module) = session
        .downstream_modules_ctx
        .get_mut::<ResponseCompression>()
    else {
        return;
    };
    let mut ctx = ResponseCompressionCtx::new(0, false, false);
    for (a, level) in &c.algorithms {
        ctx.adjust_algorithm_level(algorithm(*a).0, *level);
    }
    // The module reads the client's preference from Accept-Encoding, first one wins: give it
    // the negotiated list.
    let list = accepted
        .iter()
        .map(|a| algorithm(*a).1)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(mut req) = pingora::http::RequestHeader::build("GET", b"/", Some(1)) {
        if req
            .insert_header(http::header::ACCEPT_ENCODING, list)
            .is_ok()
        {
            ctx.request_filter(&req);
            **module = ctx;
        }
    }
}

/// Before the response header goes out: withdraw compression for a media type or a length
/// this API does not compress.
pub fn on_response(session: &mut Session, c: &Compression, resp: &pingora::http::ResponseHeader) {
    let header = |n| resp.headers.get(n).and_then(|v| v.to_str().ok());
    let length = header(http::header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok());
    if !c.applies(header(http::header::CONTENT_TYPE), length) {
        if let Some(m) = session
            .downstream_modules_ctx
            .get_mut::<ResponseCompression>()
        {
            if m.is_header_phase() {
                m.adjust_level(0);
            }
        }
    }
}
