//! Built-in errors and policy failures: Reason strings, client status and message, and the
//! `context.LastError` record (apim-reference.md §1.5, §1.6).

use crate::exec::Stmt;
use crate::policy::{Scope, Section};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    OperationNotFound,
    SubscriptionKeyNotFound,
    SubscriptionKeyInvalid,
    BackendConnectionFailure,
    Timeout,
    ExpressionValueEvaluationFailure,
    /// `fail-on-error-status-code="true"` and the backend answered 400-599. The Reason is not
    /// documented by APIM; gatehouse uses `BackendErrorStatusCode`.
    BackendErrorStatusCode,
    /// A body policies must read is larger than the gateway buffers (413).
    PayloadTooLarge,
    RateLimitExceeded,
    QuotaExceeded,
    /// limit-concurrency full (Reason undocumented in APIM; this is gatehouse's).
    ConcurrencyLimitExceeded,
    /// No backend can take the request: its circuit is open or it is unhealthy, or so is every
    /// member of the pool (Reason undocumented in APIM; this is gatehouse's). 503.
    BackendUnavailable,
    /// The request target is longer than `limits.max_url_length` (414).
    UriTooLong,
    /// More header lines or bytes than `limits` allow (431).
    RequestHeadersTooLarge,
    /// check-header: the header is missing / has a value not allowed.
    HeaderNotFound,
    HeaderValueNotAllowed,
    /// ip-filter.
    CallerIpNotAllowed,
    CallerIpBlocked,
    FailedToParseCallerIP,
    /// validate-jwt.
    TokenNotPresent,
    TokenSignatureInvalid,
    TokenAudienceNotAllowed,
    TokenIssuerNotAllowed,
    TokenExpired,
    TokenSignatureKeyNotFound,
    TokenClaimNotFound,
    TokenClaimValueNotAllowed,
    JwtInvalid,
    /// The request cannot be read as it stands: an ambiguous or invalid path, conflicting
    /// `Content-Length` values (400). gatehouse's Reason; APIM documents none.
    BadRequest,
    /// A validate-* policy with `prevent` found the request not as its definition says (400;
    /// APIM's Reason text `Bad request`).
    RequestNotValid,
    /// ... or the response (502; `Response not allowed`).
    ResponseNotValid,
    /// validate-client-certificate: no certificate, or one that fails a rule or matches no
    /// identity (403; Reason and status undocumented by APIM, gatehouse's).
    ClientCertificateNotValid,
    /// authentication-managed-identity: the token provider gave no token (500; APIM documents
    /// no Reason, this is gatehouse's).
    TokenAcquisitionFailure,
    /// Anything else inside the gateway.
    Internal,
}

pub const MISSING_KEY_MESSAGE: &str =
    "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.";
pub const INVALID_KEY_MESSAGE: &str =
    "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";

impl ErrorKind {
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::OperationNotFound => "OperationNotFound",
            ErrorKind::SubscriptionKeyNotFound => "SubscriptionKeyNotFound",
            ErrorKind::SubscriptionKeyInvalid => "SubscriptionKeyInvalid",
            ErrorKind::BackendConnectionFailure => "BackendConnectionFailure",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::ExpressionValueEvaluationFailure => "ExpressionValueEvaluationFailure",
            ErrorKind::BackendErrorStatusCode => "BackendErrorStatusCode",
            ErrorKind::PayloadTooLarge => "PayloadTooLarge",
            ErrorKind::RateLimitExceeded => "RateLimitExceeded",
            ErrorKind::QuotaExceeded => "QuotaExceeded",
            ErrorKind::ConcurrencyLimitExceeded => "ConcurrencyLimitExceeded",
            ErrorKind::BackendUnavailable => "BackendUnavailable",
            ErrorKind::UriTooLong => "UriTooLong",
            ErrorKind::RequestHeadersTooLarge => "RequestHeadersTooLarge",
            ErrorKind::HeaderNotFound => "HeaderNotFound",
            ErrorKind::HeaderValueNotAllowed => "HeaderValueNotAllowed",
            ErrorKind::CallerIpNotAllowed => "CallerIpNotAllowed",
            ErrorKind::CallerIpBlocked => "CallerIpBlocked",
            ErrorKind::FailedToParseCallerIP => "FailedToParseCallerIP",
            ErrorKind::TokenNotPresent => "TokenNotPresent",
            ErrorKind::TokenSignatureInvalid => "TokenSignatureInvalid",
            ErrorKind::TokenAudienceNotAllowed => "TokenAudienceNotAllowed",
            ErrorKind::TokenIssuerNotAllowed => "TokenIssuerNotAllowed",
            ErrorKind::TokenExpired => "TokenExpired",
            ErrorKind::TokenSignatureKeyNotFound => "TokenSignatureKeyNotFound",
            ErrorKind::TokenClaimNotFound => "TokenClaimNotFound",
            ErrorKind::TokenClaimValueNotAllowed => "TokenClaimValueNotAllowed",
            ErrorKind::JwtInvalid => "JwtInvalid",
            ErrorKind::BadRequest => "BadRequest",
            ErrorKind::RequestNotValid => "Bad request",
            ErrorKind::ResponseNotValid => "Response not allowed",
            ErrorKind::ClientCertificateNotValid => "ClientCertificateNotValid",
            ErrorKind::TokenAcquisitionFailure => "TokenAcquisitionFailure",
            ErrorKind::Internal => "InternalError",
        }
    }

    /// Status of the default error response.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::OperationNotFound => 404,
            ErrorKind::BadRequest | ErrorKind::RequestNotValid => 400,
            ErrorKind::ResponseNotValid => 502,
            ErrorKind::SubscriptionKeyNotFound | ErrorKind::SubscriptionKeyInvalid => 401,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RateLimitExceeded => 429,
            ErrorKind::QuotaExceeded => 403,
            ErrorKind::ConcurrencyLimitExceeded => 429,
            ErrorKind::BackendUnavailable => 503,
            ErrorKind::UriTooLong => 414,
            ErrorKind::RequestHeadersTooLarge => 431,
            ErrorKind::CallerIpNotAllowed
            | ErrorKind::CallerIpBlocked
            | ErrorKind::FailedToParseCallerIP
            | ErrorKind::ClientCertificateNotValid => 403,
            ErrorKind::HeaderNotFound
            | ErrorKind::HeaderValueNotAllowed
            | ErrorKind::TokenNotPresent
            | ErrorKind::TokenSignatureInvalid
            | ErrorKind::TokenAudienceNotAllowed
            | ErrorKind::TokenIssuerNotAllowed
            | ErrorKind::TokenExpired
            | ErrorKind::TokenSignatureKeyNotFound
            | ErrorKind::TokenClaimNotFound
            | ErrorKind::TokenClaimValueNotAllowed
            | ErrorKind::JwtInvalid => 401,
            _ => 500,
        }
    }

    /// `message` of the default error body; `None` means the generic 500 with `activityId`.
    pub fn client_message(self) -> Option<&'static str> {
        match self {
            ErrorKind::OperationNotFound => Some("Resource not found"),
            ErrorKind::BadRequest => Some("Bad request"),
            ErrorKind::SubscriptionKeyNotFound => Some(MISSING_KEY_MESSAGE),
            ErrorKind::SubscriptionKeyInvalid => Some(INVALID_KEY_MESSAGE),
            ErrorKind::PayloadTooLarge => {
                Some("Request body is larger than the 65536 bytes policies can read.")
            }
            ErrorKind::ConcurrencyLimitExceeded => {
                Some("Too many concurrent requests. Try again later.")
            }
            ErrorKind::BackendUnavailable => {
                Some("Service unavailable: no backend is available to serve the request. Try again later.")
            }
            ErrorKind::CallerIpNotAllowed
            | ErrorKind::CallerIpBlocked
            | ErrorKind::FailedToParseCallerIP => Some("Forbidden"),
            ErrorKind::UriTooLong => Some("The request URL is too long."),
            ErrorKind::RequestHeadersTooLarge => Some("The request headers are too large."),
            ErrorKind::HeaderNotFound | ErrorKind::HeaderValueNotAllowed => Some("Access denied"),
            ErrorKind::ClientCertificateNotValid => Some("Invalid client certificate."),
            ErrorKind::TokenNotPresent => Some("JWT not present."),
            ErrorKind::TokenSignatureInvalid
            | ErrorKind::TokenAudienceNotAllowed
            | ErrorKind::TokenIssuerNotAllowed
            | ErrorKind::TokenExpired
            | ErrorKind::TokenSignatureKeyNotFound
            | ErrorKind::TokenClaimNotFound
            | ErrorKind::TokenClaimValueNotAllowed
            | ErrorKind::JwtInvalid => Some("Invalid JWT."),
            _ => None,
        }
    }
}

/// A failure with everything `context.LastError` carries.
#[derive(Clone, Debug)]
pub struct PolicyError {
    pub kind: ErrorKind,
    /// Policy element name or built-in step (`configuration`, `authorization`).
    pub source: &'static str,
    pub message: String,
    pub scope: Option<Scope>,
    pub section: Option<Section>,
    /// Position of the failing statement, e.g. `set-header[2]`.
    pub path: String,
    pub policy_id: Option<String>,
    /// For limits: what the default response says and which headers it carries.
    pub detail: Option<LimitDetail>,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {}: {}",
            self.kind.reason(),
            self.source,
            self.message
        )
    }
}

impl std::error::Error for PolicyError {}

/// The client-facing details of a rejection whose response the policy shapes: rate limits
/// and quotas (message, Retry-After), check-header / validate-jwt (status and message).
#[derive(Clone, Debug)]
pub struct LimitDetail {
    pub message: String,
    pub retry_after_secs: u64,
    /// `None`: no Retry-After header.
    pub retry_after_header: Option<http::HeaderName>,
    /// Replaces the Reason's default status.
    pub status: Option<u16>,
}

impl LimitDetail {
    /// A policy-chosen status and message, without Retry-After.
    pub fn response(status: u16, message: impl Into<String>) -> LimitDetail {
        LimitDetail {
            message: message.into(),
            retry_after_secs: 0,
            retry_after_header: None,
            status: Some(status),
        }
    }
}

pub type LastError = PolicyError;

impl PolicyError {
    /// A built-in step's failure (no policy statement involved).
    pub fn builtin(
        kind: ErrorKind,
        source: &'static str,
        message: impl Into<String>,
    ) -> PolicyError {
        PolicyError {
            kind,
            source,
            message: message.into(),
            scope: None,
            section: None,
            path: String::new(),
            policy_id: None,
            detail: None,
        }
    }

    /// A statement's failure, placed where it happened.
    pub fn at(e: super::StepError, st: &Stmt, section: Section, path: String) -> PolicyError {
        PolicyError {
            kind: e.kind,
            source: st.element,
            message: e.message,
            scope: Some(st.scope),
            section: Some(section),
            path,
            policy_id: st.id.clone(),
            detail: e.detail,
        }
    }

    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }
}

/// The default JSON error body: `{"statusCode":N,"message":"…"}`, or the generic 500 with the
/// request id as `activityId`.
pub fn default_body(kind: ErrorKind, request_id: &str) -> String {
    default_body_for(kind, None, request_id)
}

pub fn default_body_for(kind: ErrorKind, detail: Option<&LimitDetail>, request_id: &str) -> String {
    if let Some(d) = detail {
        let status = d.status.unwrap_or(kind.status());
        return serde_json::json!({ "statusCode": status, "message": d.message }).to_string();
    }
    match kind.client_message() {
        Some(m) => serde_json::json!({ "statusCode": kind.status(), "message": m }).to_string(),
        None => serde_json::json!({ "statusCode": 500, "message": "Internal server error", "activityId": request_id }).to_string(),
    }
}
