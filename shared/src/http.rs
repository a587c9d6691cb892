//! The request and response every operation handles, whichever adapter (Lambda or the local
//! server) received it.

use crate::error::ApiError;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;
use time::OffsetDateTime;

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 256 * 1024;

pub struct ApiRequest {
    pub method: Method,
    /// Path plus `?query` exactly as received (percent-encoded): what was signed.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub source_ip: Option<IpAddr>,
    pub request_id: String,
    pub path_params: HashMap<String, String>,
    pub received: Instant,
    pub received_at: OffsetDateTime,
    /// The base URL API Gateway says it was reached at (from its request context, never
    /// from client headers); the public URL when `PORTCULLIS_PUBLIC_URL` is unset.
    pub public_base: Option<String>,
}

impl ApiRequest {
    pub fn new(method: Method, target: String, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            method,
            target,
            headers,
            body,
            source_ip: None,
            request_id: uuid::Uuid::now_v7().to_string(),
            path_params: HashMap::new(),
            received: Instant::now(),
            received_at: OffsetDateTime::now_utc(),
            public_base: None,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A cookie's value (every `Cookie` header is searched: HTTP/2 may split them).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query_pairs(&self) -> Vec<(String, String)> {
        match self.target.split_once('?') {
            Some((_, q)) => form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
            None => Vec::new(),
        }
    }

    pub fn query(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.path_params
            .get(name)
            .map(String::as_str)
            .ok_or_else(ApiError::internal)
    }

    /// A UUID path parameter; anything else reads as "not found", like a missing ID.
    pub fn uuid_param(&self, name: &str, not_found: ApiError) -> Result<uuid::Uuid, ApiError> {
        let raw = self.param(name)?;
        uuid::Uuid::parse_str(raw)
            .ok()
            .filter(|u| u.hyphenated().to_string() == raw.to_ascii_lowercase())
            .ok_or(not_found)
    }

    pub fn user_agent(&self) -> Option<String> {
        self.header("user-agent")
            .map(|s| s.chars().take(256).collect())
    }

    /// The JSON body as `T`; an empty body parses as `{}`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.body)
    }
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::payload_too_large(MAX_BODY));
    }
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!(
                "the body is not valid JSON: {}",
                elide_strings(&e.to_string())
            ),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::validation("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::validation(format!("invalid body: {}", elide_strings(&e.to_string())))
    })
}

/// serde quotes the offending value in its messages (`invalid type: string "sk_live_…"`);
/// the value may be a secret in the wrong place, so it is cut out of what we answer.
pub fn elide_strings(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("string \"") {
        out.push_str(&rest[..i + 8]);
        let tail = &rest[i + 8..];
        let mut end = tail.len();
        let mut escaped = false;
        for (j, c) in tail.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = j;
                    break;
                }
                _ => escaped = false,
            }
        }
        out.push_str("…\"");
        rest = tail.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn json(status: StatusCode, value: &Value) -> Self {
        Self {
            status,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: Bytes::from(serde_json::to_vec(value).expect("JSON values serialise")),
        }
    }

    pub fn ok(value: &Value) -> Self {
        Self::json(StatusCode::OK, value)
    }

    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn error(e: &ApiError) -> Self {
        let mut r = Self::json(e.status, &e.body());
        if let Some(secs) = e.retry_after_seconds() {
            r.headers.push((
                http::header::RETRY_AFTER,
                HeaderValue::from_str(&secs.to_string()).expect("digits"),
            ));
        }
        r
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    pub fn html(body: String) -> Self {
        Self {
            status: StatusCode::OK,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body: Bytes::from(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::elide_strings;

    #[test]
    fn quoted_values_are_cut_from_messages() {
        assert_eq!(
            elide_strings(
                r#"invalid type: string "sk_live_X", expected struct ValueInput at line 1"#
            ),
            r#"invalid type: string "…", expected struct ValueInput at line 1"#
        );
        assert_eq!(
            elide_strings(r#"a string "x\"y" and string "z""#),
            r#"a string "…" and string "…""#
        );
        assert_eq!(
            elide_strings("missing field `token`"),
            "missing field `token`"
        );
    }
}
