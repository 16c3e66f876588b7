//! `<validate-jwt>` / `<validate-azure-ad-token>` (apim-reference.md §2.2): read the token,
//! verify its signature with a key of the token algorithm's own family (configured keys and
//! OpenID Connect discovery keys; `alg: none` only when `require-signed-tokens="false"`),
//! check `exp` / `nbf` with the clock skew, audiences, issuers, required claims and (Azure AD)
//! client application ids. Each failure has its Reason; the client gets
//! `failed-validation-httpcode` (401) and `failed-validation-error-message` (default per
//! failure).

use crate::diag::Invalid;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind as JwtError;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value as J};

use crate::exec::error::LimitDetail;
use crate::exec::jwks::{self, Family, Key};
use crate::exec::{value, ErrorKind, ExecCtx, StepError};
use crate::expr::value::{Jwt, Obj};
use crate::expr::Value;
use crate::policy::ast::{JwtKeyMaterial, TokenSource, ValidateJwt};

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

pub async fn run(j: &ValidateJwt, cx: &mut ExecCtx<'_>) -> Result<(), StepError> {
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
            Ok(data) => return Ok(data.claims),
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
