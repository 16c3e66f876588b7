//! `<redirect-content-urls/>` (inbound, outbound): outbound, every occurrence of the backend's
//! base URL in the response body becomes the gateway's base URL for this API (the scheme, host
//! and port the client called, and the API's path); inbound, the reverse in the request body.
//! Headers (Location, ...) are not changed, as in APIM. A plain, case-sensitive text
//! replacement of the whole base URL (`http://backend:8080/base`), so `.../based` matches too,
//! as APIM's does.

use super::*;
use bytes::Bytes;

#[derive(Clone, Debug)]
pub struct RedirectContentUrls;

impl Policy for RedirectContentUrls {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        Some(RedirectContentUrls)
    }

    /// It rewrites the body of the side it runs on.
    fn needs(&self) -> Needs {
        Needs {
            request_body: true,
            response_body: true,
            replaces_request_body: true,
        }
    }
}

impl RunsNow for RedirectContentUrls {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let info = &cx.req.info;
        let Some(api) = info.api.map(|a| &cx.gw.apis[a]) else {
            return Ok(Step::Next);
        };
        let default_port = match info.original_scheme.as_str() {
            "https" => 443,
            _ => 80,
        };
        let gateway = if info.original_port <= 0 || info.original_port == default_port {
            format!(
                "{}://{}{}",
                info.original_scheme, info.original_host, api.path
            )
        } else {
            format!(
                "{}://{}:{}{}",
                info.original_scheme, info.original_host, info.original_port, api.path
            )
        };
        let backend = cx.req.target.base.to_string();
        let (from, to) = if cx.on_request_side() {
            (gateway, backend)
        } else {
            (backend, gateway)
        };
        let Some(body) = cx.section_body() else {
            return Ok(Step::Next);
        };
        if from.is_empty() || from == to {
            return Ok(Step::Next);
        }
        if let Some(out) = crate::codec::bytes::replace_all(&body, from.as_bytes(), to.as_bytes()) {
            cx.set_section_body(Bytes::from(out));
        }
        Ok(Step::Next)
    }
}
