//! `POST /sdk/identity/assert`: a short-lived ES256 JWS stating the identity a call acts as,
//! for a downstream `audience` to verify against the app's JWKS
//! (`GET /sdk/identity/apps/{app_id}/jwks.json`). Claims: `iss` (this deployment's public
//! URL), `aud`, `sub` (`alter:user:<id>` or `alter:app:<app_id>`), `iat`, `exp` (10–300 s
//! later, default 60), `jti`, `azp` (the app), `alter` {app_id, agent_auth}, and `act`
//! {sub: `alter:agent:<id>`} when an agent acts.

use super::sdk_identity_resolve::{Subject, prefetch_subject, resolve};
use portcullis::idp::assertion;
use portcullis::model::rfc3339;
use portcullis::pipeline::{Access, Call, Operation, Outcome, Surface};
use portcullis::store::{Item, ItemKey, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE.with(&[
    portcullis::iam::Action::Query,
    portcullis::iam::Action::GenerateDataKey,
    portcullis::iam::Action::Decrypt,
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    #[serde(default)]
    include_profile: bool,
    user_token: Option<String>,
    app_user_id: Option<String>,
    audience: String,
    ttl_seconds: Option<i64>,
}

impl Body {
    fn subject(&self) -> Subject {
        Subject {
            include_profile: self.include_profile,
            user_token: self.user_token.clone(),
            app_user_id: self.app_user_id.clone(),
        }
    }
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_identity_assert";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::AnyKey;
    type Body = Body;

    fn prefetch(ctx: &Ctx, _: &ApiRequest, body: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        let mut keys: Vec<ItemKey> = app.map(keys::assertion_key).into_iter().collect();
        keys.extend(prefetch_subject(ctx, &body.subject(), app));
        keys
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let audience_ok = body.audience.len() <= 512
            && url::Url::parse(&body.audience).is_ok_and(|u| !u.scheme().is_empty());
        if !audience_ok {
            return Err(ApiError::validation(
                "`audience` is a URI with a scheme, at most 512 characters",
            ));
        }
        let ttl = body.ttl_seconds.unwrap_or(60);
        if !(assertion::MIN_TTL..=assertion::MAX_TTL).contains(&ttl) {
            return Err(ApiError::validation("`ttl_seconds` is between 10 and 300"));
        }
        let app = call.caller.app();
        let stored_key = items.first_mut().and_then(Option::take);
        let mut writes = Vec::new();
        let identity_items = items.get_mut(1..).unwrap_or_default();
        let (identity, user) =
            resolve(ctx, call, &body.subject(), identity_items, &mut writes).await?;
        let issuer = ctx.public_url(call.req)?.to_string();
        let key = assertion::key(ctx, app, stored_key, call.now).await?;
        let (iat, exp) = (call.now.unix_timestamp(), call.now.unix_timestamp() + ttl);
        let sub = match user {
            Some(u) => format!("alter:user:{u}"),
            None => format!("alter:app:{app}"),
        };
        let agent = call.caller.agent.as_ref();
        let mut claims = json!({
            "iss": issuer,
            "aud": body.audience,
            "sub": sub,
            "iat": iat,
            "exp": exp,
            "jti": Uuid::new_v4(),
            "azp": app,
            "alter": {
                "app_id": app,
                // How the acting agent was authenticated: its own key, or named by the app's.
                "agent_auth": agent.map(|_| if call.caller.agent_key_owner().is_some() { "agent_key" } else { "app_key_impersonation" }),
            },
        });
        if let Some(a) = agent {
            claims["act"] = json!({ "sub": format!("alter:agent:{}", a.agent_id) });
        }
        let token = assertion::sign(ctx, &key, &claims).await?;
        call.audit.detail =
            Some(json!({ "audience": body.audience, "ttl_seconds": ttl, "kid": key.kid }));
        let expires_at = call.now + time::Duration::seconds(ttl);
        let mut outcome = Outcome::respond(
            ApiResponse::ok(&json!({
                "token": token,
                "expires_at": rfc3339(expires_at),
                "identity": identity,
            }))
            .header("cache-control", "no-store"),
        );
        outcome.writes = writes;
        Ok(outcome)
    }
}

super::handler!(Op);
