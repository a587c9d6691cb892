//! The provider catalogue: well-known OAuth providers and managed-secret services, as data
//! (`shared/providers/catalogue.json`), plus the custom providers an app defines.

use crate::error::ApiError;
use crate::model::{ProviderConfig, ProviderDef};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

#[derive(Debug, Deserialize)]
pub struct Catalogue {
    pub catalogue_version: i64,
    pub updated_at: String,
    pub oauth: Vec<ProviderDef>,
    /// Managed-secret services: shown by `/sdk/provider-specs?kind=managed`.
    pub managed: Vec<Value>,
}

static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();

pub fn catalogue() -> &'static Catalogue {
    CATALOGUE.get_or_init(|| {
        serde_json::from_str(include_str!("../providers/catalogue.json"))
            .expect("shared/providers/catalogue.json is valid (checked by a unit test)")
    })
}

pub fn find(id: &str) -> Option<&'static ProviderDef> {
    catalogue().oauth.iter().find(|p| p.id == id)
}

pub fn provider_not_configured(provider_id: &str) -> ApiError {
    ApiError::bad_request(
        "provider_not_configured",
        format!("this app has no configuration for the provider `{provider_id}`"),
    )
    .hint("an operator adds it with PUT /v1/apps/{app_id}/providers/{provider_id}")
}

/// The provider an app's configuration speaks to, with its URL placeholders filled.
pub fn effective(config: &ProviderConfig) -> Result<ProviderDef, ApiError> {
    let base = match &config.custom {
        Some(def) => def.clone(),
        None => find(&config.provider_id)
            .cloned()
            .ok_or_else(|| provider_not_configured(&config.provider_id))?,
    };
    fill(base, config)
}

fn fill(mut def: ProviderDef, config: &ProviderConfig) -> Result<ProviderDef, ApiError> {
    let sub = |s: &str| -> Result<String, ApiError> {
        let mut out = s.to_string();
        for name in &def.url_params {
            let value = config.url_params.get(name).ok_or_else(|| {
                ApiError::bad_request(
                    "provider_not_configured",
                    format!("the provider `{}` needs the URL parameter `{name}`", def.id),
                )
            })?;
            out = out.replace(&format!("{{{name}}}"), value);
        }
        Ok(out)
    };
    def.authorize_url = sub(&def.authorize_url)?;
    def.token_url = sub(&def.token_url)?;
    def.revocation_url = def.revocation_url.as_deref().map(sub).transpose()?;
    def.userinfo_url = def.userinfo_url.as_deref().map(sub).transpose()?;
    def.api_base_url = def.api_base_url.as_deref().map(sub).transpose()?;
    def.hosts = def.hosts.iter().map(|h| sub(h)).collect::<Result<_, _>>()?;
    Ok(def)
}

/// Checks a custom provider an operator defines (its ID comes from the path).
pub fn validate_custom(mut def: ProviderDef, id: &str) -> Result<ProviderDef, ApiError> {
    use crate::service::validate;
    if find(id).is_some() {
        return Err(ApiError::validation(format!(
            "`{id}` is a catalogue provider: configure it without `custom`"
        )));
    }
    def.id = id.to_string();
    def.name = validate::name("custom.name", &def.name, 100)?;
    // Placeholders are filled before use, so check the URLs with sample values.
    let probe = |u: &str| {
        def.url_params
            .iter()
            .fold(u.to_string(), |u, p| u.replace(&format!("{{{p}}}"), "x"))
    };
    validate::fetch_url("custom.authorize_url", &probe(&def.authorize_url))?;
    validate::fetch_url("custom.token_url", &probe(&def.token_url))?;
    for (field, url) in [
        ("custom.revocation_url", &def.revocation_url),
        ("custom.userinfo_url", &def.userinfo_url),
        ("custom.api_base_url", &def.api_base_url),
    ] {
        if let Some(u) = url {
            validate::fetch_url(field, &probe(u))?;
        }
    }
    def.hosts = validate::allowed_hosts(&def.hosts.iter().map(|h| probe(h)).collect::<Vec<_>>())
        .map(|_| def.hosts.clone())?;
    if ![" ", ",", "+"].contains(&def.scope_separator.as_str()) {
        return Err(ApiError::validation(
            "`custom.scope_separator` must be \" \", \",\" or \"+\"",
        ));
    }
    def.default_scopes = validate::scopes("custom.default_scopes", &def.default_scopes)?;
    if def.authorize_params.len() > 20 {
        return Err(ApiError::validation(
            "`custom.authorize_params` holds at most 20 entries",
        ));
    }
    Ok(def)
}

/// Splits a scope string as the provider joins it (and tolerates the other usual joiners).
pub fn split_scopes(def: &ProviderDef, raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(|c: char| c.is_whitespace() || c == ',' || def.scope_separator.contains(c)) {
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// An entry of `GET /sdk/oauth/provider-catalog`.
pub fn catalogue_item(def: &ProviderDef, required: &[String]) -> Value {
    json!({
        "id": def.id,
        "name": def.name,
        "display_name": def.name,
        "category": def.category,
        "description": def.description,
        "logo_url": def.logo_url,
        "supports_refresh": def.refresh.refresh_tokens,
        "supports_pkce": def.pkce,
        "available_scopes": def.available_scopes,
        "default_scopes": def.default_scopes,
        "required_scopes": required,
        "status": "active",
    })
}

/// A provider's API operations (the spec store of `/sdk/provider-specs`).
pub struct Spec {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    pub docs_url: Option<String>,
    pub operations: Vec<Value>,
}

pub fn specs(kind: Option<&str>) -> Vec<Spec> {
    let mut out = Vec::new();
    if kind.is_none_or(|k| k == "oauth") {
        out.extend(catalogue().oauth.iter().map(|p| Spec {
            kind: "oauth",
            id: p.id.clone(),
            name: p.name.clone(),
            docs_url: p.docs_url.clone(),
            operations: p.operations.clone(),
        }));
    }
    if kind.is_none_or(|k| k == "managed") {
        out.extend(catalogue().managed.iter().map(|m| Spec {
            kind: "managed",
            id: m["id"].as_str().unwrap_or_default().to_string(),
            name: m["name"].as_str().unwrap_or_default().to_string(),
            docs_url: m["docs_url"].as_str().map(String::from),
            operations: m["operations"].as_array().cloned().unwrap_or_default(),
        }));
    }
    out
}

impl Spec {
    /// `ProviderSpec` (spec metadata): versioned with the catalogue, hashed over its operations.
    pub fn meta(&self) -> Value {
        let c = catalogue();
        let hash = Sha256::digest(serde_json::to_vec(&self.operations).expect("JSON"));
        json!({
            "provider_kind": self.kind,
            "provider_id": self.id,
            "version": c.catalogue_version,
            "provenance": "portcullis-catalogue",
            "source_url": self.docs_url,
            "content_hash": format!("sha256:{}", hex::encode(hash)),
            "operation_count": self.operations.len(),
            "fetched_at": c.updated_at,
            "changed_at": c.updated_at,
            "title": format!("{} API", self.name),
            "spec_version": Value::Null,
        })
    }

    pub fn summary(op: &Value) -> Value {
        json!({
            "operation_id": op["operation_id"],
            "method": op["method"],
            "path_template": op["path_template"],
            "summary": op["summary"],
        })
    }

    pub fn detail(&self, op: &Value) -> Value {
        let mut v = Self::summary(op);
        v["params_schema"] = op.get("params").cloned().unwrap_or(Value::Null);
        v["request_schema"] = op.get("request_schema").cloned().unwrap_or(Value::Null);
        v["response_schema"] = op.get("response_schema").cloned().unwrap_or(Value::Null);
        v["spec"] = self.meta();
        v
    }
}

pub fn spec(kind: &str, id: &str) -> Option<Spec> {
    specs(Some(kind)).into_iter().find(|s| s.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_parses_and_is_complete() {
        let c = catalogue();
        assert!(c.oauth.len() >= 25, "{} providers", c.oauth.len());
        let mut ids: Vec<&str> = c.oauth.iter().map(|p| p.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), c.oauth.len(), "provider IDs are unique");
        for p in &c.oauth {
            for url in [&p.authorize_url, &p.token_url] {
                assert!(url.starts_with("https://"), "{}: {url}", p.id);
            }
            assert!(
                [" ", ",", "+"].contains(&p.scope_separator.as_str()),
                "{}",
                p.id
            );
            assert!(!p.hosts.is_empty(), "{} has API hosts", p.id);
            for name in &p.url_params {
                assert!(
                    p.authorize_url.contains(&format!("{{{name}}}"))
                        || p.token_url.contains(&format!("{{{name}}}")),
                    "{}: {name} is used",
                    p.id
                );
            }
        }
        for id in [
            "google",
            "microsoft",
            "github",
            "slack",
            "shopify",
            "zendesk",
            "twitter",
        ] {
            assert!(find(id).is_some(), "{id} is in the catalogue");
        }
    }

    #[test]
    fn scopes_split_on_the_providers_separator() {
        let slack = find("slack").unwrap();
        assert_eq!(split_scopes(slack, "read,write"), ["read", "write"]);
        let google = find("google").unwrap();
        assert_eq!(split_scopes(google, "a b  a"), ["a", "b"]);
    }
}
