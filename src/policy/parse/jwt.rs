//! `<validate-jwt>` and `<validate-azure-ad-token>`.

use super::*;

/// Where validate-jwt reads the token.
#[derive(Clone, Debug)]
pub enum TokenSource {
    Header(Val<String>),
    Query(Val<String>),
    Value(Val<String>),
}

/// A configured signing key (`<issuer-signing-keys><key>`).
#[derive(Clone, Debug)]
pub enum JwtKeyMaterial {
    /// Symmetric (HS*), decoded from base64.
    Secret(Vec<u8>),
    /// RSA modulus and exponent, base64url.
    Rsa { n: String, e: String },
    /// The public key of a configured certificate.
    Certificate(String),
}

#[derive(Clone, Debug)]
pub struct JwtKey {
    pub id: Option<String>,
    pub material: JwtKeyMaterial,
}

#[derive(Clone, Debug)]
pub struct RequiredClaim {
    pub name: String,
    /// `match="all"` (default) or `any`.
    pub all: bool,
    pub separator: Option<String>,
    pub values: Vec<Val<String>>,
}

#[derive(Clone, Debug)]
pub struct ValidateJwt {
    pub source: TokenSource,
    /// The token came from `Authorization` (require-scheme applies only then).
    pub from_authorization: bool,
    pub code: Val<u16>,
    pub message: Option<Val<String>>,
    pub require_expiration: Val<bool>,
    pub require_scheme: Option<Val<String>>,
    pub require_signed: Val<bool>,
    pub clock_skew: Val<u64>,
    pub output_variable: Option<String>,
    /// Discovery documents (`openid-config url`).
    pub openid: Vec<String>,
    pub keys: Vec<JwtKey>,
    pub audiences: Vec<Val<String>>,
    pub issuers: Vec<Val<String>>,
    pub claims: Vec<RequiredClaim>,
    /// validate-azure-ad-token: `azp` / `appid` must be one of these.
    pub client_application_ids: Vec<Val<String>>,
    /// `keys` decoded once, on first use (certificate keys need the gateway's certificates).
    pub decoded_keys: std::sync::OnceLock<Vec<crate::codec::jwk::Key>>,
}

impl ValidateJwt {
    /// Every expression of this policy (and of its nested statements).
    pub fn exprs(&self, f: &mut dyn FnMut(&crate::expr::Expr)) {
        match &self.source {
            TokenSource::Header(x) | TokenSource::Query(x) | TokenSource::Value(x) => {
                visit_val(x, f)
            }
        }
        visit_val(&self.code, f);
        if let Some(m) = &self.message {
            visit_val(m, f);
        }
        visit_val(&self.require_expiration, f);
        if let Some(s) = &self.require_scheme {
            visit_val(s, f);
        }
        visit_val(&self.require_signed, f);
        visit_val(&self.clock_skew, f);
        self.audiences.iter().for_each(|x| visit_val(x, f));
        self.issuers.iter().for_each(|x| visit_val(x, f));
        self.client_application_ids
            .iter()
            .for_each(|x| visit_val(x, f));
        for c in &self.claims {
            c.values.iter().for_each(|x| visit_val(x, f));
        }
    }
}

pub(super) fn validate_jwt_statement(r: &mut Reader, element: &str) -> Option<StmtKind> {
    Some(StmtKind::ValidateJwt(Box::new(parse_validate_jwt(
        r,
        element == "validate-azure-ad-token",
    ))))
}

pub(super) fn parse_validate_jwt(r: &mut Reader, azure: bool) -> crate::policy::ast::ValidateJwt {
    use crate::policy::ast::{JwtKey, JwtKeyMaterial, RequiredClaim, TokenSource, ValidateJwt};
    let text = |s: &str| Ok(s.to_string());
    let header = r.value("header-name", text);
    let query = r.value("query-parameter-name", text);
    let token = r.value("token-value", text);
    let from_authorization = matches!(&header, Some(Val::Lit(h)) if h.eq_ignore_ascii_case("authorization"))
        || (azure && header.is_none() && query.is_none() && token.is_none());
    let source = match (header, query, token) {
        (Some(h), None, None) => TokenSource::Header(h),
        (None, Some(q), None) => TokenSource::Query(q),
        (None, None, Some(t)) => TokenSource::Value(t),
        (None, None, None) if azure => TokenSource::Header(Val::Lit("Authorization".into())),
        _ => {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                format!("<{}> needs exactly one of `header-name`, `query-parameter-name` or `token-value`", r.el.name),
            );
            TokenSource::Header(Val::Lit("Authorization".into()))
        }
    };
    let code = r
        .value("failed-validation-httpcode", parse_status)
        .unwrap_or(Val::Lit(401));
    let message = r.value("failed-validation-error-message", text);
    let require_expiration = r
        .value("require-expiration-time", parse_bool)
        .unwrap_or(Val::Lit(true));
    let require_scheme = r.value("require-scheme", text);
    let require_signed = r
        .value("require-signed-tokens", parse_bool)
        .unwrap_or(Val::Lit(true));
    let clock_skew = r.value("clock-skew", parse_u64).unwrap_or(Val::Lit(0));
    let output_variable = r.literal("output-token-variable-name").map(|(v, _)| v);
    let mut openid = Vec::new();
    if azure {
        match r.literal("tenant-id") {
            Some((t, span)) if crate::expr::is_expression(&t) => r.diags.error(
                "P019",
                span,
                "`tenant-id` of <validate-azure-ad-token> takes a literal value (named values allowed)",
            ),
            Some((t, _)) => openid.push(format!("azure-ad:{}", t.trim())),
            None => r.diags.error(
                "P012",
                r.el.span.clone(),
                "<validate-azure-ad-token> needs attribute `tenant-id`",
            ),
        }
    }
    let (mut keys, mut audiences, mut issuers, mut claims, mut apps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for child in r.children() {
        // The parent's name is read below while this reader lives: borrow fields apart.
        let mut cr = Reader::new(child, r.env, r.diags);
        match child.name.as_str() {
            "openid-config" if !azure => {
                cr.no_children();
                if let Some(u) = cr.required_literal("url") {
                    openid.push(u.trim().to_string());
                }
                cr.literal("validate-connectivity");
            }
            "issuer-signing-keys" if !azure => {
                for k in cr.items("key") {
                    let mut kr = cr.child(k);
                    kr.no_children();
                    let id = kr.literal("id").map(|(v, _)| v);
                    let cert = kr.literal("certificate-id").map(|(v, _)| v);
                    let n = kr.literal("n").map(|(v, _)| v);
                    let e = kr.literal("e").map(|(v, _)| v);
                    let body = k
                        .text()
                        .map(|t| {
                            substitute(&t.value, &t.span, kr.env, kr.diags)
                                .trim()
                                .to_string()
                        })
                        .filter(|t| !t.is_empty());
                    let material = match (cert, n, e, body) {
                        (Some(c), None, None, None) => Some(JwtKeyMaterial::Certificate(c)),
                        (None, Some(n), Some(e), None) => Some(JwtKeyMaterial::Rsa { n, e }),
                        (None, None, None, Some(b)) => {
                            use base64::Engine;
                            match base64::engine::general_purpose::STANDARD.decode(b.as_bytes()) {
                                Ok(bytes) if !bytes.is_empty() => {
                                    Some(JwtKeyMaterial::Secret(bytes))
                                }
                                _ => {
                                    kr.diags.error(
                                        "P012",
                                        k.span.clone(),
                                        "a symmetric <key> is base64 text",
                                    );
                                    None
                                }
                            }
                        }
                        _ => {
                            kr.diags.error("P012", k.span.clone(), "a <key> is base64 text (symmetric), `certificate-id`, or `n` and `e` (RSA)");
                            None
                        }
                    };
                    if let Some(material) = material {
                        keys.push(JwtKey { id, material });
                    }
                    kr.finish();
                }
            }
            "audiences" | "issuers" | "client-application-ids" | "backend-application-ids" => {
                let item = match child.name.as_str() {
                    "audiences" => "audience",
                    "issuers" => "issuer",
                    _ => "application-id",
                };
                for g in cr.items(item) {
                    let mut gr = cr.child(g);
                    gr.no_children();
                    if let Some(v) = gr.text_value(true, |s| Ok(s.trim().to_string())) {
                        match child.name.as_str() {
                            "audiences" => audiences.push(v),
                            "issuers" => issuers.push(v),
                            "client-application-ids" => apps.push(v),
                            _ => {}
                        }
                    }
                    gr.finish();
                }
            }
            "required-claims" => {
                for c in cr.items("claim") {
                    let mut ccr = cr.child(c);
                    let name = ccr.required_literal("name").unwrap_or_default();
                    let all = match ccr.literal("match").map(|(v, _)| v) {
                        None => true,
                        Some(m) if m == "all" => true,
                        Some(m) if m == "any" => false,
                        Some(m) => {
                            ccr.diags.error(
                                "P012",
                                c.span.clone(),
                                format!("`match` must be all or any, found {m:?}"),
                            );
                            true
                        }
                    };
                    let separator = ccr.literal("separator").map(|(v, _)| v);
                    let mut values = Vec::new();
                    for v in ccr.items("value") {
                        let mut vr = ccr.child(v);
                        vr.no_children();
                        if let Some(x) = vr.text_value(true, |s| Ok(s.trim().to_string())) {
                            values.push(x);
                        }
                        vr.finish();
                    }
                    claims.push(RequiredClaim {
                        name,
                        all,
                        separator,
                        values,
                    });
                    ccr.finish();
                }
            }
            "decryption-keys" => {
                cr.diags.error(
                    "P021",
                    child.span.clone(),
                    "encrypted tokens (<decryption-keys>) are not supported yet",
                );
                continue;
            }
            other => {
                cr.diags.error(
                    "P014",
                    child.span.clone(),
                    format!("<{other}> is not allowed in <{}>", r.el.name),
                );
                continue;
            }
        }
        cr.finish();
    }
    if !azure && openid.is_empty() && keys.is_empty() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<validate-jwt> needs <openid-config> or <issuer-signing-keys> to verify signatures",
        );
    }
    if azure && apps.is_empty() {
        r.diags.error(
            "P012",
            r.el.span.clone(),
            "<validate-azure-ad-token> needs <client-application-ids>",
        );
    }
    ValidateJwt {
        source,
        from_authorization,
        code,
        message,
        require_expiration,
        require_scheme,
        require_signed,
        clock_skew,
        output_variable,
        openid,
        keys,
        audiences,
        issuers,
        claims,
        client_application_ids: apps,
        decoded_keys: Default::default(),
    }
}
