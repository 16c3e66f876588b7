//! `<proxy url="http://host:port" username password/>` (inbound): the backend call of this
//! request goes through that HTTP forward proxy (over a backend's own `proxy:` setting). As in
//! APIM, only `http://` between the gateway and the proxy; a plain-HTTP backend is requested in
//! absolute form, an HTTPS one through a CONNECT tunnel; `username` / `password` give
//! `Proxy-Authorization: Basic` (APIM also offers NTLM: not supported). send-request has its
//! own `<proxy>` child.

use super::*;
use crate::exec::{value, ErrorKind};
use crate::net::proxy::ForwardProxy;

#[derive(Clone, Debug)]
pub struct Proxy {
    pub url: Val<String>,
    pub username: Option<Val<String>>,
    pub password: Option<Val<String>>,
}

impl Policy for Proxy {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let url = r
            .required_value("url", |s| {
                ForwardProxy::parse(s.trim(), None, None).map(|_| s.trim().to_string())
            })
            .unwrap_or(Val::Lit(String::new()));
        let text = |s: &str| Ok(s.to_string());
        Some(Proxy {
            url,
            username: r.value("username", text),
            password: r.value("password", text),
        })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.url, f);
        for v in [&self.username, &self.password].into_iter().flatten() {
            visit_val(v, f);
        }
    }
}

impl RunsNow for Proxy {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let url = value(&self.url, cx)?.into_owned();
        let user = match &self.username {
            Some(u) => Some(value(u, cx)?.into_owned()),
            None => None,
        };
        let pass = match &self.password {
            Some(p) => Some(value(p, cx)?.into_owned()),
            None => None,
        };
        let proxy = ForwardProxy::parse(url.trim(), user.as_deref(), pass.as_deref())
            .map_err(|e| StepError::new(ErrorKind::Internal, format!("proxy: {e}")))?;
        cx.req.proxy = Some(std::sync::Arc::new(proxy));
        Ok(Step::Next)
    }
}
