use crate::crypto::Sealed;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// How a managed secret is injected into the third-party request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Template {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `<header>: <api key>`.
    ApiKey { header: String },
    /// `Authorization: Basic base64(username:password)`.
    Basic,
    /// `?<param>=<api key>` on the URL (proxy mode only: the SDK's retrieval answer names a
    /// header).
    QueryParam { param: String },
    /// AWS Signature Version 4, computed for each request (proxy mode only: a signature
    /// covers one request, so there is nothing to hand out).
    AwsSigv4 { region: String, service: String },
}

impl Template {
    /// Whether the credential is attached per request by Portcullis (proxy mode only).
    pub fn proxy_only(&self) -> bool {
        matches!(
            self,
            Template::QueryParam { .. } | Template::AwsSigv4 { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Template::Bearer => "bearer",
            Template::ApiKey { .. } => "api_key",
            Template::Basic => "basic",
            Template::QueryParam { .. } => "query_param",
            Template::AwsSigv4 { .. } => "aws_sigv4",
        }
    }

    /// The template's ID in kebab case, as managed-secret Connect's `template_slug` names it.
    pub fn slug(&self) -> &'static str {
        match self {
            Template::Bearer => "bearer",
            Template::ApiKey { .. } => "api-key",
            Template::Basic => "basic",
            Template::QueryParam { .. } => "query-param",
            Template::AwsSigv4 { .. } => "aws-sigv4",
        }
    }
}

/// The plaintext of a managed secret, only ever held in memory (sealed at rest).
#[derive(Clone, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(untagged)]
pub enum SecretValue {
    Aws {
        access_key_id: String,
        secret_access_key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_token: Option<String>,
    },
    Basic {
        username: String,
        password: String,
    },
    Token {
        token: String,
    },
    ApiKey {
        api_key: String,
    },
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(…)")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManagedSecret {
    pub secret_id: Uuid,
    pub app_id: Uuid,
    pub name: String,
    pub slug: String,
    pub template: Template,
    pub allowed_hosts: Vec<String>,
    pub value: Sealed,
    /// Changes on every rotation; answered as `token_generation`.
    pub version: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Unset until the first rotation.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub rotated_at: Option<OffsetDateTime>,
}

impl ManagedSecret {
    /// Associated data binding a sealed value to this item.
    pub fn aad_item(secret_id: Uuid) -> String {
        format!("secret:{secret_id}")
    }
}

/// An end user's own key for a managed secret (managed-secret Connect): sealed in its grant's
/// credential item, in place of the secret's own value; the secret still gives the template
/// and the hosts it may be sent to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndUserKey {
    pub app_id: Uuid,
    pub grant_id: Uuid,
    pub value: Sealed,
    /// Changes when the user replaces the key; answered as `token_generation`.
    pub version: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl EndUserKey {
    pub fn aad_item(grant_id: Uuid) -> String {
        format!("end-user-key:{grant_id}")
    }
}

/// `Stripe Production` → `stripe-production`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(50).collect();
    slug.trim_end_matches('-').to_string()
}

/// Whether `host` is allowed by a pattern list (`api.example.com`, `*.example.com`).
pub fn host_allowed(patterns: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    patterns.iter().any(|p| {
        let p = p.to_ascii_lowercase();
        match p.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => host == p,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Stripe Production"), "stripe-production");
        assert_eq!(slugify("  --Hello, World!! "), "hello-world");
        assert_eq!(slugify("Ünïcode"), "n-code");
        assert_eq!(slugify("!!!"), "");
    }

    #[test]
    fn hosts() {
        let p = vec!["api.example.com".to_string(), "*.svc.io".to_string()];
        assert!(host_allowed(&p, "api.example.com"));
        assert!(host_allowed(&p, "API.example.com."));
        assert!(host_allowed(&p, "a.svc.io"));
        assert!(!host_allowed(&p, "svc.io"));
        assert!(!host_allowed(&p, "evilsvc.io"));
        assert!(!host_allowed(&p, "api.example.com.evil.io"));
    }
}
