//! `<validate-jwt>` / `<validate-azure-ad-token>` (apim-reference.md §2.2): read the token,
//! verify its signature with a key of the token algorithm's own family (configured keys and
//! OpenID Connect discovery keys; `alg: none` only when `require-signed-tokens="false"`),
//! check `exp` / `nbf` with the clock skew, audiences, issuers, required claims and (Azure AD)
//! client application ids. Each failure has its Reason; the client gets
//! `failed-validation-httpcode` (401) and `failed-validation-error-message` (default per
//! failure).

use super::*;
use crate::diag::Invalid;
use crate::exec::error::LimitDetail;
use crate::exec::jwks::{self, Family, Key};
use crate::exec::{value, ErrorKind};
use crate::expr::value::{Jwt, Obj};
use crate::expr::Value;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind as JwtError;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value as J};

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
    /// Tokens whose signature this policy verified.
    pub verified: VerifiedTokens,
}

/// Tokens this policy verified, by SHA-256 of the whole token, with their claims: the same
/// token again skips the signature check and the decoding. (HMAC tokens too: with
/// jsonwebtoken's key set-up, base64 and claims parsing, verifying an HS256 token cost about 40k
/// instructions, finding it here about 5k; perf/callgrind.py's `gatehouse-jwt-body`.) An entry is used
/// only while the discovery key sets it was verified with are still the current ones (a
/// rotation or a refresh of the keys forgets it; configured keys live as long as the policy)
/// and never past the token's `exp` (the time checks run again on every use). Bounded: when
/// full, emptied. A copy of the policy starts empty.
#[derive(Default)]
pub struct VerifiedTokens(parking_lot::Mutex<ahash::AHashMap<[u8; 32], Verified>>);

struct Verified {
    claims: Map<String, J>,
    /// The discovery key sets that were current (kept alive, so compared by address).
    sets: Vec<std::sync::Arc<jwks::KeySet>>,
    /// Unix time after which the entry is not used (`exp` plus the clock skew then; a token
    /// without `exp`: five minutes).
    until: u64,
}

/// Tokens kept per validate-jwt statement.
const MAX_VERIFIED: usize = 10_000;

impl VerifiedTokens {
    fn get(
        &self,
        digest: &[u8; 32],
        sets: &[std::sync::Arc<jwks::KeySet>],
    ) -> Option<Map<String, J>> {
        let now = jsonwebtoken::get_current_timestamp();
        let m = self.0.lock();
        let v = m.get(digest)?;
        let current = v.sets.len() == sets.len()
            && v.sets
                .iter()
                .zip(sets)
                .all(|(a, b)| std::sync::Arc::ptr_eq(a, b));
        (current && now <= v.until).then(|| v.claims.clone())
    }

    fn put(
        &self,
        digest: [u8; 32],
        claims: &Map<String, J>,
        sets: &[std::sync::Arc<jwks::KeySet>],
        skew: u64,
    ) {
        let now = jsonwebtoken::get_current_timestamp();
        let until = claims
            .get("exp")
            .and_then(|v| v.as_u64())
            .map_or(now + 300, |exp| exp.saturating_add(skew));
        let mut m = self.0.lock();
        if m.len() >= MAX_VERIFIED {
            m.clear();
        }
        m.insert(
            digest,
            Verified {
                claims: claims.clone(),
                sets: sets.to_vec(),
                until,
            },
        );
    }
}

impl Clone for VerifiedTokens {
    fn clone(&self) -> Self {
        VerifiedTokens::default()
    }
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifiedTokens({})", self.0.lock().len())
    }
}

impl Policy for ValidateJwt {
    /// `<validate-jwt>` and `<validate-azure-ad-token>` (read into the same check).
    fn read(r: &mut Reader, element: &str) -> Option<Self> {
        Some(parse_validate_jwt(r, element == "validate-azure-ad-token"))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
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

impl Waits for ValidateJwt {
    /// Boxed: its future is the largest of all policies (a key fetch inside a validation), and
    /// every section's future would otherwise carry that size on every request.
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> impl Future<Output = Outcome> + Send {
        Box::pin(async move { run(self, cx).await.map(|_| Step::Next) })
    }
}

fn parse_validate_jwt(r: &mut Reader, azure: bool) -> ValidateJwt {
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
            _ => {
                not_allowed(cr.diags, child, &r.el.name, "");
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
        // APIM accepts it: then the token's application is not checked.
        r.diags.warning(
            "P023",
            r.el.span.clone(),
            "<validate-azure-ad-token> has no <client-application-ids>: a token issued to any application of the tenant is accepted",
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
        verified: Default::default(),
    }
}

struct Failure {
    code: u16,
    message: Option<String>,
}

impl Failure {
    fn err(&self, kind: ErrorKind, detail: impl Into<String>) -> StepError {
        let client = self
            .message
            .clone()
            .or_else(|| kind.client_message().map(str::to_string))
            .unwrap_or_default();
        StepError {
            kind,
            message: detail.into(),
            detail: Some(LimitDetail::response(self.code, client)),
        }
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A configured key as a decoding key of its family.
fn configured_key(m: &JwtKeyMaterial, cx: &ExecCtx) -> Result<(Family, DecodingKey), Invalid> {
    match m {
        JwtKeyMaterial::Secret(b) => Ok((Family::Hmac, DecodingKey::from_secret(b))),
        JwtKeyMaterial::Rsa { n, e } => DecodingKey::from_rsa_components(n, e)
            .map(|k| (Family::Rsa, k))
            .map_err(|e| crate::invalid!("invalid RSA key: {e}")),
        JwtKeyMaterial::Certificate(id) => {
            let cert = cx
                .gw
                .certificate_x509
                .get(id)
                .ok_or_else(|| crate::invalid!("certificate `{id}` is not configured"))?;
            let pk = cert.public_key().map_err(|e| Invalid(e.to_string()))?;
            if let Ok(rsa) = pk.rsa() {
                return DecodingKey::from_rsa_components(
                    &b64url(&rsa.n().to_vec()),
                    &b64url(&rsa.e().to_vec()),
                )
                .map(|k| (Family::Rsa, k))
                .map_err(|e| Invalid(e.to_string()));
            }
            if let Ok(ec) = pk.ec_key() {
                let mut ctx =
                    openssl::bn::BigNumContext::new().map_err(|e| Invalid(e.to_string()))?;
                let (mut x, mut y) = (
                    openssl::bn::BigNum::new().map_err(|e| Invalid(e.to_string()))?,
                    openssl::bn::BigNum::new().map_err(|e| Invalid(e.to_string()))?,
                );
                ec.public_key()
                    .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
                    .map_err(|e| Invalid(e.to_string()))?;
                let width = ec.group().degree().div_ceil(8) as i32;
                let (x, y) = (
                    x.to_vec_padded(width).map_err(|e| Invalid(e.to_string()))?,
                    y.to_vec_padded(width).map_err(|e| Invalid(e.to_string()))?,
                );
                return DecodingKey::from_ec_components(&b64url(&x), &b64url(&y))
                    .map(|k| (Family::Ec, k))
                    .map_err(|e| Invalid(e.to_string()));
            }
            Err(crate::invalid!(
                "certificate `{id}` holds neither an RSA nor an EC key"
            ))
        }
    }
}

fn strings(v: &J) -> Vec<String> {
    match v {
        J::String(s) => vec![s.clone()],
        J::Array(a) => a
            .iter()
            .map(|x| match x {
                J::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        J::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

fn decode_part(p: &str) -> Option<Map<String, J>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(p.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

async fn run(j: &ValidateJwt, cx: &mut ExecCtx<'_>) -> Result<(), StepError> {
    let f = Failure {
        code: *value(&j.code, cx)?,
        message: match &j.message {
            Some(m) => Some(value(m, cx)?.into_owned()),
            None => None,
        },
    };
    // The token.
    let raw = match &j.source {
        TokenSource::Header(h) => {
            let name = value(h, cx)?.into_owned();
            let mut out = None;
            cx.req_headers
                .each_value(&name.to_ascii_lowercase(), &mut |v| {
                    if out.is_none() {
                        out = Some(String::from_utf8_lossy(v).trim().to_string());
                    }
                });
            out
        }
        TokenSource::Query(q) => {
            let name = value(q, cx)?.into_owned();
            crate::codec::query::parse(&cx.req.info.original_query)
                .into_iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v)
        }
        TokenSource::Value(v) => Some(value(v, cx)?.trim().to_string()),
    }
    .filter(|t| !t.is_empty())
    .ok_or_else(|| f.err(ErrorKind::TokenNotPresent, "JWT not present."))?;
    let mut token = raw.as_str();
    if let Some((scheme, rest)) = raw.split_once(' ') {
        if j.from_authorization {
            if let Some(want) = &j.require_scheme {
                let want = value(want, cx)?.into_owned();
                if !scheme.eq_ignore_ascii_case(&want) {
                    return Err(f.err(
                        ErrorKind::JwtInvalid,
                        format!("Authorization scheme {scheme} is not allowed. Access denied."),
                    ));
                }
            }
        }
        token = rest.trim();
    } else if j.from_authorization && j.require_scheme.is_some() {
        return Err(f.err(
            ErrorKind::JwtInvalid,
            "Authorization header has no scheme. Access denied.",
        ));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(f.err(
            ErrorKind::JwtInvalid,
            "JWT is not well formed. Access denied.",
        ));
    }
    let header = decode_part(parts[0]).ok_or_else(|| {
        f.err(
            ErrorKind::JwtInvalid,
            "JWT header is not valid. Access denied.",
        )
    })?;
    let alg_name = header.get("alg").and_then(|v| v.as_str()).unwrap_or("");
    let skew = *value(&j.clock_skew, cx)?;
    let require_exp = *value(&j.require_expiration, cx)?;
    let claims = if alg_name.eq_ignore_ascii_case("none") {
        if *value(&j.require_signed, cx)? {
            return Err(f.err(
                ErrorKind::TokenSignatureInvalid,
                "JWT is not signed (alg none). Access denied.",
            ));
        }
        let claims = decode_part(parts[1]).ok_or_else(|| {
            f.err(
                ErrorKind::JwtInvalid,
                "JWT payload is not valid. Access denied.",
            )
        })?;
        check_times(&claims, skew, require_exp, &f)?;
        claims
    } else {
        verify(j, cx, token, &header, alg_name, skew, require_exp, &f).await?
    };
    // Audiences, issuers, client applications, required claims.
    if !j.audiences.is_empty() {
        let mut allowed = Vec::new();
        for a in &j.audiences {
            allowed.push(value(a, cx)?.into_owned());
        }
        let aud = strings(claims.get("aud").unwrap_or(&J::Null));
        if !aud.iter().any(|a| allowed.contains(a)) {
            return Err(f.err(
                ErrorKind::TokenAudienceNotAllowed,
                format!("Audience {} is not allowed. Access denied.", aud.join(", ")),
            ));
        }
    }
    let mut issuers = Vec::new();
    for i in &j.issuers {
        issuers.push(value(i, cx)?.into_owned());
    }
    if issuers.is_empty() {
        // Without <issuers>, the discovery documents' issuers apply.
        for url in openid_urls(j, cx) {
            if let Ok(set) = jwks::keys(
                &url,
                cx.transport,
                cx.gw.jwt.keys_refresh,
                cx.gw.jwt.min_refetch,
                None,
            )
            .await
            {
                issuers.extend(set.issuer.clone());
            }
        }
    }
    if !issuers.is_empty() {
        let iss = claims.get("iss").and_then(|v| v.as_str()).unwrap_or("");
        if !issuers.iter().any(|i| i == iss) {
            return Err(f.err(
                ErrorKind::TokenIssuerNotAllowed,
                format!("Issuer {iss} is not allowed. Access denied."),
            ));
        }
    }
    if !j.client_application_ids.is_empty() {
        let mut apps = Vec::new();
        for a in &j.client_application_ids {
            apps.push(value(a, cx)?.into_owned());
        }
        let app = claims
            .get("azp")
            .or_else(|| claims.get("appid"))
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if !apps.iter().any(|a| a == app) {
            return Err(f.err(
                ErrorKind::TokenClaimValueNotAllowed,
                format!("Claim azp value of {app} is not allowed. Access denied."),
            ));
        }
    }
    let missing: Vec<&str> = j
        .claims
        .iter()
        .filter(|c| !claims.contains_key(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(f.err(
            ErrorKind::TokenClaimNotFound,
            format!(
                "JWT token is missing the following claims: {}. Access denied.",
                missing.join(", ")
            ),
        ));
    }
    for c in &j.claims {
        if c.values.is_empty() {
            continue;
        }
        let mut present = strings(claims.get(&c.name).unwrap_or(&J::Null));
        if let Some(sep) = &c.separator {
            present = present
                .iter()
                .flat_map(|p| p.split(sep.as_str()).map(|s| s.trim().to_string()))
                .collect();
        }
        let mut wanted = Vec::new();
        for v in &c.values {
            wanted.push(value(v, cx)?.into_owned());
        }
        let ok = if c.all {
            wanted.iter().all(|w| present.contains(w))
        } else {
            wanted.iter().any(|w| present.contains(w))
        };
        if !ok {
            return Err(f.err(
                ErrorKind::TokenClaimValueNotAllowed,
                format!(
                    "Claim {} value of {} is not allowed. Access denied.",
                    c.name,
                    present.join(", ")
                ),
            ));
        }
    }
    if let Some(var) = &j.output_variable {
        cx.req.set_variable(
            var,
            Value::obj(Obj::Jwt(Jwt {
                header,
                claims,
                raw: token.to_string(),
            })),
        );
    }
    Ok(())
}

fn openid_urls(j: &ValidateJwt, cx: &ExecCtx) -> Vec<String> {
    j.openid
        .iter()
        .map(|u| match u.strip_prefix("azure-ad:") {
            Some(tenant) => format!(
                "{}/{tenant}/v2.0/.well-known/openid-configuration",
                cx.gw.jwt.azure_ad_authority
            ),
            None => u.clone(),
        })
        .collect()
}

/// `exp` / `nbf` of an unsigned token (the library checks signed ones).
fn check_times(
    claims: &Map<String, J>,
    skew: u64,
    require_exp: bool,
    f: &Failure,
) -> Result<(), StepError> {
    let now = jsonwebtoken::get_current_timestamp();
    match claims.get("exp").and_then(|v| v.as_u64()) {
        Some(exp) if exp + skew < now => {
            return Err(f.err(
                ErrorKind::TokenExpired,
                "Lifetime validation failed. The token is expired.",
            ))
        }
        None if require_exp => {
            return Err(f.err(
                ErrorKind::JwtInvalid,
                "JWT has no expiration time. Access denied.",
            ))
        }
        _ => {}
    }
    if claims
        .get("nbf")
        .and_then(|v| v.as_u64())
        .is_some_and(|nbf| nbf > now + skew)
    {
        return Err(f.err(
            ErrorKind::JwtInvalid,
            "JWT is not valid yet. Access denied.",
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn verify(
    j: &ValidateJwt,
    cx: &mut ExecCtx<'_>,
    token: &str,
    header: &Map<String, J>,
    alg_name: &str,
    skew: u64,
    require_exp: bool,
    f: &Failure,
) -> Result<Map<String, J>, StepError> {
    crate::codec::jwt_crypto::install();
    let alg: Algorithm = alg_name.parse().map_err(|_| {
        f.err(
            ErrorKind::JwtInvalid,
            format!("JWT algorithm {alg_name} is not supported. Access denied."),
        )
    })?;
    let family = Family::of(alg);
    let kid = header.get("kid").and_then(|v| v.as_str());
    // Candidate keys: configured ones (decoded once), then each discovery document's.
    let configured: &Vec<Key> = j.decoded_keys.get_or_init(|| {
        j.keys
            .iter()
            .filter_map(|k| match configured_key(&k.material, cx) {
                Ok((family, key)) => Some(Key {
                    kid: k.id.clone(),
                    family,
                    key,
                }),
                Err(e) => {
                    log::warn!("validate-jwt: {e}");
                    None
                }
            })
            .collect()
    });
    let mut sets = Vec::new();
    for url in openid_urls(j, cx) {
        match jwks::keys(
            &url,
            cx.transport,
            cx.gw.jwt.keys_refresh,
            cx.gw.jwt.min_refetch,
            kid,
        )
        .await
        {
            Ok(set) => sets.push(set),
            Err(e) => log::warn!("validate-jwt: {e}"),
        }
    }
    // A token this statement verified before, with key sets that are still current.
    let digest = openssl::sha::sha256(token.as_bytes());
    if let Some(claims) = j.verified.get(&digest, &sets) {
        check_times(&claims, skew, require_exp, f)?;
        return Ok(claims);
    }
    let same_family: Vec<&Key> = configured
        .iter()
        .chain(sets.iter().flat_map(|s| s.keys.iter()))
        .filter(|k| k.family == family)
        .collect();
    // With a kid, the keys that carry it; with no match, every key (as APIM).
    let by_kid: Vec<&Key> = match kid {
        Some(k) => same_family
            .iter()
            .copied()
            .filter(|x| x.kid.as_deref() == Some(k))
            .collect(),
        None => Vec::new(),
    };
    let kid_unknown = kid.is_some() && by_kid.is_empty();
    let candidates = if by_kid.is_empty() {
        same_family
    } else {
        by_kid
    };
    if candidates.is_empty() {
        return Err(f.err(
            ErrorKind::TokenSignatureKeyNotFound,
            format!(
                "Unable to find a {alg_name} signing key{}. Access denied.",
                kid.map(|k| format!(" for kid {k}")).unwrap_or_default()
            ),
        ));
    }
    let mut validation = Validation::new(alg);
    validation.leeway = skew;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.required_spec_claims = if require_exp {
        ["exp".to_string()].into_iter().collect()
    } else {
        Default::default()
    };
    let mut last = None;
    for k in candidates {
        match jsonwebtoken::decode::<Map<String, J>>(token, &k.key, &validation) {
            Ok(data) => {
                j.verified.put(digest, &data.claims, &sets, skew);
                return Ok(data.claims);
            }
            Err(e) => match e.kind() {
                JwtError::InvalidSignature
                | JwtError::InvalidAlgorithm
                | JwtError::InvalidKeyFormat => last = Some(e),
                JwtError::ExpiredSignature => {
                    return Err(f.err(
                        ErrorKind::TokenExpired,
                        "Lifetime validation failed. The token is expired.",
                    ))
                }
                JwtError::ImmatureSignature => {
                    return Err(f.err(
                        ErrorKind::JwtInvalid,
                        "JWT is not valid yet. Access denied.",
                    ))
                }
                JwtError::MissingRequiredClaim(c) => {
                    return Err(f.err(
                        ErrorKind::JwtInvalid,
                        format!("JWT has no {c} claim. Access denied."),
                    ))
                }
                _ => return Err(f.err(ErrorKind::JwtInvalid, format!("{e}. Access denied."))),
            },
        }
    }
    if kid_unknown {
        // Every key was tried (as APIM does without a kid match); none matched.
        return Err(f.err(
            ErrorKind::TokenSignatureKeyNotFound,
            format!(
                "Unable to find the signing key for kid {}. Access denied.",
                kid.unwrap_or_default()
            ),
        ));
    }
    Err(f.err(
        ErrorKind::TokenSignatureInvalid,
        format!(
            "Signature validation failed: {}. Access denied.",
            last.map(|e| e.to_string()).unwrap_or_default()
        ),
    ))
}
