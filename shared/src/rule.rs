//! `X-Alter-Request-Rule`: a deny-only rule a client attaches to narrow what its own request
//! may do (alter-sdk `with_constraints(rule=…)`). The `json_match` type is enforced here:
//! `{"rule_type":"json_match","rule_body":{"when":{…},"effect":"deny"}}`, where every condition
//! of `when` must hold for the request to be denied. Conditions: `method`, `provider_id`,
//! `grant_id` (a string or a list of strings). A rule this server cannot evaluate is refused,
//! never ignored: ignoring a deny rule would fail open.

use crate::error::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct RequestRule {
    when: Map<String, Value>,
}

/// What a rule is matched against. In retrieve mode the method the token will be used with is
/// unknown, so a `method` condition counts as met (the rule denies the retrieval).
pub struct Facts<'a> {
    pub method: Option<&'a str>,
    pub provider_id: &'a str,
    pub grant_id: &'a str,
}

fn invalid(why: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_request_rule",
        format!("X-Alter-Request-Rule: {why}"),
    )
}

const CONDITIONS: &[&str] = &["method", "provider_id", "grant_id"];

impl RequestRule {
    pub fn parse(header: &str) -> Result<Self, ApiError> {
        if header.len() > 4096 {
            return Err(invalid("longer than 4096 characters"));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(header.trim_end_matches('='))
            .map_err(|_| invalid("not base64url"))?;
        let v: Value = serde_json::from_slice(&raw).map_err(|_| invalid("not JSON"))?;
        match v["rule_type"].as_str() {
            Some("json_match") => {}
            Some("content_match") => {
                return Err(ApiError::new(
                    http::StatusCode::UNPROCESSABLE_ENTITY,
                    "request_rule_unsupported",
                    "content_match rules are not supported: use json_match deny rules",
                ));
            }
            _ => return Err(invalid("`rule_type` must be json_match")),
        }
        let body = v["rule_body"]
            .as_object()
            .ok_or_else(|| invalid("`rule_body` must be an object"))?;
        if body.get("effect").and_then(Value::as_str) != Some("deny") {
            return Err(invalid("`effect` must be deny (rules can only narrow)"));
        }
        let when = body
            .get("when")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("`when` must be an object"))?;
        for (name, value) in when {
            let strings = match value {
                Value::String(_) => true,
                Value::Array(a) => !a.is_empty() && a.iter().all(Value::is_string),
                _ => false,
            };
            if !CONDITIONS.contains(&name.as_str()) || !strings {
                return Err(invalid(&format!(
                    "condition `{name}` is not one of {} with a string or list of strings",
                    CONDITIONS.join(", ")
                )));
            }
        }
        Ok(Self { when: when.clone() })
    }

    /// Whether the rule denies a request with these facts.
    pub fn denies(&self, facts: &Facts<'_>) -> bool {
        self.when.iter().all(|(name, want)| {
            let have = match name.as_str() {
                "method" => match facts.method {
                    None => return true,
                    Some(m) => m,
                },
                "provider_id" => facts.provider_id,
                _ => facts.grant_id,
            };
            let eq = |w: &Value| {
                w.as_str()
                    .is_some_and(|w| w.eq_ignore_ascii_case(have.trim()))
            };
            match want {
                Value::Array(list) => list.iter().any(eq),
                single => eq(single),
            }
        })
    }
}

pub fn denied() -> ApiError {
    ApiError::forbidden(
        "request_rule_denied",
        "the request's own X-Alter-Request-Rule denies it",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> Result<RequestRule, ApiError> {
        RequestRule::parse(&URL_SAFE_NO_PAD.encode(json))
    }

    #[test]
    fn parsing_and_matching() {
        let r = rule(
            r#"{"rule_type":"json_match","rule_body":{"when":{"method":"POST"},"effect":"deny"}}"#,
        )
        .unwrap();
        let facts = |method| Facts {
            method,
            provider_id: "stripe",
            grant_id: "g",
        };
        assert!(
            r.denies(&facts(None)),
            "retrieve mode: method counts as met"
        );
        assert!(r.denies(&facts(Some("post"))));
        assert!(!r.denies(&facts(Some("GET"))));
        let r = rule(r#"{"rule_type":"json_match","rule_body":{"when":{"provider_id":["github","gitlab"]},"effect":"deny"}}"#).unwrap();
        assert!(!r.denies(&facts(None)));
        for bad in [
            r#"{"rule_type":"json_match","rule_body":{"when":{"method":"POST"},"effect":"allow"}}"#,
            r#"{"rule_type":"json_match","rule_body":{"when":{"url":"x"},"effect":"deny"}}"#,
            r#"{"rule_type":"json_match","rule_body":{"when":{"method":5},"effect":"deny"}}"#,
            r#"{"rule_type":"other","rule_body":{}}"#,
            "not json",
        ] {
            assert!(rule(bad).is_err(), "{bad}");
        }
        assert!(RequestRule::parse("!!!").is_err());
    }
}
