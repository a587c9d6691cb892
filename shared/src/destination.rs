//! Where a credential is about to be sent. The host must be read from a URL exactly as every
//! HTTP client reads it, or an allowlist check can pass for one host while the client connects
//! to another (`http://allowed.example\@evil.example/`). So only URLs whose authority is plain
//! and unambiguous are accepted: printable ASCII, no userinfo, no backslash, and a host that a
//! strict parser reads back unchanged.

use crate::error::ApiError;

fn refuse(why: &str) -> ApiError {
    ApiError::validation(format!(
        "`request.url` is not a plain absolute http(s) URL: {why}"
    ))
}

/// The destination host of `raw` (lower case, IPv6 without brackets).
pub fn host_of(raw: &str) -> Result<String, ApiError> {
    if raw.len() > 65_536 {
        return Err(refuse("longer than 65536 characters"));
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) || raw.contains('\\') {
        return Err(refuse(
            "only printable ASCII without spaces or backslashes is accepted",
        ));
    }
    let (scheme, rest) = raw.split_once("://").ok_or_else(|| refuse("no scheme"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(refuse("the scheme must be http or https"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(refuse("user information (`user@`) is not accepted"));
    }
    let url = url::Url::parse(raw).map_err(|_| refuse("it does not parse"))?;
    let host = url.host_str().ok_or_else(|| refuse("no host"))?.to_string();
    // The raw authority must say exactly what the parser understood (no `127.1`, `%2e`, …).
    let (raw_host, raw_port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    if raw_host.to_ascii_lowercase() != host {
        return Err(refuse(
            "the host is written in a form clients may read differently",
        ));
    }
    if let Some(p) = raw_port {
        let port: u16 = p
            .parse()
            .map_err(|_| refuse("the port is not a number from 0 to 65535"))?;
        if url.port_or_known_default() != Some(port) {
            return Err(refuse("the port is ambiguous"));
        }
    }
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn plain_urls_give_their_host() {
        for (url, host) in [
            ("https://api.example.com/v1/x?q=1#f", "api.example.com"),
            ("http://127.0.0.1:8080/x", "127.0.0.1"),
            ("HTTPS://API.Example.com", "api.example.com"),
            ("http://localhost:80/", "localhost"),
            ("http://[::1]:8080/x", "::1"),
        ] {
            assert_eq!(host_of(url).unwrap(), host, "{url}");
        }
    }

    #[test]
    fn ambiguous_urls_are_refused() {
        for url in [
            "http://api.example.com\\@127.0.0.1/steal",
            "https://api.example.com\\@evil.com/",
            "http://user@api.example.com/",
            "http://api.example.com:443@evil.com/",
            "http://api.example.com%40evil.com/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://2130706433/",
            "http://api.example.com%2eevil.com/",
            "http://exa mple.com/",
            "http://exa\tmple.com/",
            "https://m\u{fc}nchen.de/",
            "http://host:99999/",
            "http://host:8o/",
            "ftp://host/",
            "//host/path",
            "api.example.com/path",
            "http:///path",
        ] {
            assert!(host_of(url).is_err(), "{url} accepted");
        }
    }
}
