//! `GET /sdk/oauth/provider-catalog`: the OAuth providers an app can connect — the catalogue,
//! plus the app's custom providers; `required_scopes` are the app's configured scopes.

use portcullis::pipeline::{Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::providers::{catalogue, catalogue_item};
use portcullis::service::providers;
use portcullis::store::Item;
use portcullis::{ApiError, ApiResponse, Ctx};
use serde_json::{Map, json};

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::Query]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "sdk_provider_catalog";
    const SURFACE: Surface = Surface::Sdk;
    const ACCESS: Access = Access::Scope("providers:read");
    type Body = Empty;

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let configured = providers::list(ctx, call.caller.app()).await?;
        let required = |id: &str| {
            configured
                .iter()
                .find(|c| c.provider_id == id)
                .map(|c| c.scopes.clone())
                .unwrap_or_default()
        };
        let mut out = Map::new();
        for def in &catalogue().oauth {
            out.insert(def.id.clone(), catalogue_item(def, &required(&def.id)));
        }
        for c in &configured {
            if let Some(def) = &c.custom {
                out.insert(def.id.clone(), catalogue_item(def, &c.scopes));
            }
        }
        Ok(Outcome::respond(
            ApiResponse::ok(&json!({ "providers": out }))
                .header("cache-control", "private, max-age=300"),
        ))
    }
}

super::handler!(Op);
