//! Input rules shared by several operations; each failure is a 422 naming the field.

use crate::error::ApiError;

/// Invisible formatting characters (bidirectional overrides, zero-width marks) that make a
/// name display as something other than what it is.
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

pub fn name(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty()
        || v.chars().count() > max
        || v.chars().any(|c| c.is_control() || is_format_char(c))
    {
        return Err(ApiError::validation(format!(
            "`{field}` must be 1 to {max} printable characters"
        )));
    }
    Ok(v.to_string())
}

/// A credential value that will travel in an HTTP header.
pub fn header_safe(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > 8192 || value.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(ApiError::validation(format!(
            "`{field}` must be 1 to 8192 characters with no control characters"
        )));
    }
    Ok(())
}

/// The SDK refuses to inject into these (alter_sdk `_FORBIDDEN_INJECTION_HEADERS`).
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "cookie",
    "set-cookie",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-http-method-override",
    "x-method-override",
    "www-authenticate",
    "strict-transport-security",
    "content-security-policy",
];

/// An injection header name the SDK accepts (`^[A-Za-z][A-Za-z0-9-]*$`, ≤ 60, not hop-by-hop).
pub fn header_name(value: &str) -> Result<String, ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 60
        && value.as_bytes()[0].is_ascii_alphabetic()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !FORBIDDEN_HEADERS.contains(&value.to_ascii_lowercase().as_str());
    if !ok {
        return Err(ApiError::validation(
            "`header_name` must match ^[A-Za-z][A-Za-z0-9-]*$, be at most 60 characters and not a hop-by-hop, host or cookie header",
        ));
    }
    Ok(value.to_string())
}

/// Allowed hosts: `api.example.com`, `*.example.com`, `127.0.0.1`; no scheme, port or path.
pub fn allowed_hosts(hosts: &[String]) -> Result<Vec<String>, ApiError> {
    if hosts.is_empty() || hosts.len() > 50 {
        return Err(ApiError::validation(
            "`allowed_hosts` must list 1 to 50 hosts the secret may be sent to",
        ));
    }
    hosts
        .iter()
        .map(|h| {
            let h = h.trim().to_ascii_lowercase();
            let bare = h.strip_prefix("*.").unwrap_or(&h);
            let ok = !bare.is_empty()
                && h.len() <= 253
                && bare
                    .split('.')
                    .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            if ok {
                Ok(h)
            } else {
                Err(ApiError::validation(format!(
                    "`allowed_hosts` entry `{h}` is not a host name (use api.example.com or *.example.com, without scheme, port or path)"
                )))
            }
        })
        .collect()
}

pub fn label(value: Option<&str>) -> Result<Option<String>, ApiError> {
    value.map(|l| name("label", l, 255)).transpose()
}

pub fn email(value: &str) -> Result<String, ApiError> {
    let v = value.trim().to_ascii_lowercase();
    let ok = v.len() <= 254
        && matches!(v.split_once('@'), Some((user, domain)) if !user.is_empty() && domain.contains('.') && !domain.starts_with('.'))
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(ApiError::validation("`email` must be an email address"));
    }
    Ok(v)
}

/// A URL the server calls or sends a browser to: https, or http on a loopback host (local
/// development and tests), without user information.
/// Local runs and tests (`PORTCULLIS_ALLOW_LOOPBACK=1`, set by the scripts) may configure
/// providers on this machine; deployments may not.
pub fn loopback_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var("PORTCULLIS_ALLOW_LOOPBACK").is_ok_and(|v| v == "1"))
}

/// A URL this server itself will call (a provider's endpoints, an identity provider's issuer
/// and keys): as `endpoint_url`, and never this machine on a deployment, where loopback is the
/// function's own host (the Lambda runtime API).
pub fn fetch_url(field: &str, value: &str) -> Result<String, ApiError> {
    fetch_url_where(field, value, loopback_allowed())
}

fn fetch_url_where(field: &str, value: &str, loopback_ok: bool) -> Result<String, ApiError> {
    let url = endpoint_url(field, value)?;
    let host = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string));
    if matches!(host.as_deref(), Some("127.0.0.1" | "localhost" | "[::1]")) && !loopback_ok {
        return Err(ApiError::validation(format!(
            "`{field}` may not point at this machine (loopback); only local runs allow it"
        )));
    }
    Ok(url)
}

pub fn endpoint_url(field: &str, value: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::validation(format!(
            "`{field}` must be an https URL (http only for 127.0.0.1 or localhost)"
        ))
    };
    if value.len() > 2048 {
        return Err(bad());
    }
    let url = url::Url::parse(value).map_err(|_| bad())?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok
        || !url.username().is_empty()
        || url.password().is_some()
        || url.host_str().is_none()
    {
        return Err(bad());
    }
    Ok(value.to_string())
}

/// A web origin (`https://app.example.com[:port]`) for `postMessage`.
pub fn origin(field: &str, value: &str) -> Result<String, ApiError> {
    let url = endpoint_url(field, value)?;
    let parsed = url::Url::parse(&url).expect("checked above");
    let origin = parsed.origin().ascii_serialization();
    if origin != url.trim_end_matches('/') {
        return Err(ApiError::validation(format!(
            "`{field}` must be an origin: scheme, host and port only (e.g. https://app.example.com)"
        )));
    }
    Ok(origin)
}

/// A provider ID: lower case letters, digits and dashes.
pub fn provider_id(value: &str) -> Result<String, ApiError> {
    let ok = (1..=50).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-');
    if !ok {
        return Err(ApiError::validation(
            "a provider ID is 1–50 characters of a-z, 0-9 and `-`",
        ));
    }
    Ok(value.to_string())
}

/// OAuth scopes (RFC 6749 scope tokens: printable ASCII without space, `"` or `\`).
pub fn scopes(field: &str, values: &[String]) -> Result<Vec<String>, ApiError> {
    if values.len() > 100 {
        return Err(ApiError::validation(format!(
            "`{field}` holds at most 100 scopes"
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for s in values {
        let ok = (1..=512).contains(&s.len())
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !ok {
            return Err(ApiError::validation(format!(
                "`{field}` entries must be OAuth scope tokens (printable ASCII, no spaces, quotes or backslashes)"
            )));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn deployments_never_call_this_machine() {
        for url in [
            "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "https://localhost/jwks",
            "http://[::1]:80/",
        ] {
            assert!(
                super::fetch_url_where("jwks_url", url, false).is_err(),
                "{url}"
            );
            assert!(
                super::fetch_url_where("jwks_url", url, true).is_ok(),
                "{url}"
            );
        }
        assert!(super::fetch_url_where("jwks_url", "https://idp.example.com/jwks", false).is_ok());
    }
}
