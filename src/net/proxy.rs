//! HTTP forward proxies for backends.

use crate::diag::Invalid;

/// An HTTP forward proxy: requests go to it in absolute form (`GET http://host/path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardProxy {
    pub host: String,
    pub port: u16,
    /// `Proxy-Authorization: Basic ...` when a user name is given.
    pub authorization: Option<http::HeaderValue>,
}

impl ForwardProxy {
    /// Parse `http://host:port` with optional credentials. Plain HTTP goes to the proxy in
    /// absolute form; HTTPS goes through a CONNECT tunnel (`tunnel.rs`).
    pub fn parse(
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<ForwardProxy, Invalid> {
        let u =
            url::Url::parse(url).map_err(|e| crate::invalid!("invalid proxy URL {url:?}: {e}"))?;
        if u.scheme() != "http" {
            return Err(crate::invalid!(
                "proxy URL {url:?} must be http://host:port"
            ));
        }
        let host = u
            .host_str()
            .ok_or_else(|| crate::invalid!("proxy URL {url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let authorization = match username {
            Some(user) => {
                use base64::Engine;
                let raw = format!("{user}:{}", password.unwrap_or(""));
                let v = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                );
                Some(
                    http::HeaderValue::from_str(&v)
                        .map_err(|_| Invalid::from("invalid proxy credentials"))?,
                )
            }
            None => None,
        };
        Ok(ForwardProxy {
            host,
            port: u.port_or_known_default().unwrap_or(80),
            authorization,
        })
    }

    pub async fn resolve(&self) -> Option<std::net::SocketAddr> {
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .ok()
            .and_then(|mut a| a.next())
    }
}
