//! Backend base URLs, parsed once at load (or per request when set from a policy).

use crate::diag::Invalid;

/// `scheme://host[:port][/path]` split into what the proxy needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaseUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing `/` (may be empty).
    pub path: String,
    /// Value for the `Host` header: host, plus `:port` when not the default.
    pub authority: String,
    /// The URL's query, as written (percent-encoded, no `?`): appended to every request sent
    /// to this base URL (`set-backend-service base-url="https://fn.example/api?code=..."`, as
    /// APIM does); empty when none.
    pub query: String,
}

impl BaseUrl {
    pub fn parse(s: &str) -> Result<BaseUrl, Invalid> {
        let u = url::Url::parse(s.trim()).map_err(|e| crate::invalid!("invalid URL {s:?}: {e}"))?;
        let tls = match u.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(crate::invalid!(
                    "invalid URL {s:?}: scheme must be http or https, found {other}"
                ))
            }
        };
        let host = match u.host() {
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            Some(h) => h.to_string(),
            None => return Err(crate::invalid!("invalid URL {s:?}: no host")),
        };
        if u.fragment().is_some() {
            return Err(crate::invalid!(
                "invalid URL {s:?}: a base URL cannot carry a fragment"
            ));
        }
        let query = u.query().unwrap_or_default().to_string();
        let port = u
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let authority = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let path = u.path().trim_end_matches('/').to_string();
        Ok(BaseUrl {
            tls,
            host,
            port,
            path,
            authority,
            query,
        })
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// Host name without IPv6 brackets (for connecting and SNI).
    pub fn host_bare(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme(), self.authority, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let b = BaseUrl::parse("http://contoso.com/api/10.4/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                b.tls,
                b.host.as_str(),
                b.port,
                b.path.as_str(),
                b.authority.as_str()
            ),
            (false, "contoso.com", 80, "/api/10.4", "contoso.com")
        );
        let b = BaseUrl::parse("https://127.0.0.1:8443").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (b.port, b.path.as_str(), b.authority.as_str()),
            (8443, "", "127.0.0.1:8443")
        );
        assert!(BaseUrl::parse("ftp://x").is_err());
        // A query is kept and sent with every request (APIM accepts it, e.g. a function key).
        let q = BaseUrl::parse("https://fn.example/api?code=k%2B1&x").unwrap_or_default();
        assert_eq!(
            (q.path.as_str(), q.query.as_str()),
            ("/api", "code=k%2B1&x")
        );
        assert!(BaseUrl::parse("http://x/#frag").is_err());
    }
}
