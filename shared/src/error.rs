//! The one error type of the API: every failure leaves as `{error, message, hint?, details?}`.
//! Codes are a public contract (they are the SDK's codes); messages never carry secrets.

use http::StatusCode;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The optional parts, boxed: errors travel in every `Result` and should stay small.
    more: Option<Box<More>>,
}

#[derive(Debug, Clone, Default)]
struct More {
    hint: Option<String>,
    details: Option<Value>,
    /// Extra top-level fields some SDK errors read (e.g. `insufficient_scope`).
    extra: Map<String, Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            more: None,
        }
    }

    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Default::default)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.more().hint = Some(hint.into());
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.more().details = Some(details);
        self
    }

    pub fn field(mut self, name: &str, value: Value) -> Self {
        self.more().extra.insert(name.to_string(), value);
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.more().retry_after = Some(seconds);
        self
    }

    /// Seconds for a `Retry-After` header, when the error is worth retrying.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.more.as_ref().and_then(|m| m.retry_after)
    }

    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("error".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        if let Some(more) = &self.more {
            if let Some(hint) = &more.hint {
                body.insert("hint".into(), json!(hint));
            }
            if let Some(details) = &more.details {
                body.insert("details".into(), details.clone());
            }
            for (k, v) in &more.extra {
                body.insert(k.clone(), v.clone());
            }
        }
        Value::Object(body)
    }

    // 400 / 413 / 422: the request itself is wrong.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            message,
        )
    }
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    }

    // 401: who is calling could not be established.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn invalid_key() -> Self {
        Self::unauthorized("invalid_key", "the API key is not valid")
            .hint("check the key; keys are shown once when minted")
    }

    // 403: known caller, not allowed.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    // 404: missing, or belonging to another app: the two must be indistinguishable.
    pub fn not_found(code: &'static str, what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, format!("{what} not found"))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A dependency (DynamoDB, KMS) failed or throttled: retryable, nothing was written.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
        .retry_after(1)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;
