//! `PUT /v1/apps/{app_id}/idp`: configure the app's identity provider (one per app): a preset
//! (Auth0, Clerk, Okta) from its domain, or custom OIDC by issuer and JWKS URL or discovery.
//! Claim mappings lock at the first verified sign-in.

use super::common::{app_in_path, app_of, record};
use super::op_idp_get::prefetch_idp;
use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::idp::config::{self, IdpInput};
use portcullis::model::IdpConfig;
use portcullis::pipeline::{ADMINS, Access, Call, Operation, Outcome, Surface};
use portcullis::store::{Condition, Item, ItemKey, Write, keys, to_item};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::GenerateDataKey]);

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_idp_put";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = IdpInput;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    fn prefetch(_: &Ctx, _: &ApiRequest, _: &IdpInput, app: Option<Uuid>) -> Vec<ItemKey> {
        prefetch_idp(app)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        input: IdpInput,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let app = app_of(call);
        let existing: Option<IdpConfig> = record(items.first_mut().and_then(Option::take))?;
        let config = config::build(ctx, input, app, existing.as_ref(), call.now).await?;
        call.audit.resource_type = Some("idp".into());
        call.audit.resource_id = Some(config.idp_id.to_string());
        call.audit.detail = Some(serde_json::json!({
            "preset": config.preset, "issuer": config.issuer,
        }));
        // Written only over the configuration read here, and never over a first sign-in
        // this request did not see (it would unlock the claim mappings).
        let condition = match &existing {
            None => Condition::absent(),
            Some(old) => {
                let mut c = Condition::new(if old.first_sign_in_at.is_some() {
                    "updated_at = :seen"
                } else {
                    "updated_at = :seen AND (attribute_not_exists(first_sign_in_at) OR attribute_type(first_sign_in_at, :null))"
                })
                .value(":seen", AttributeValue::S(portcullis::model::rfc3339(old.updated_at)));
                if old.first_sign_in_at.is_none() {
                    c = c.value(":null", AttributeValue::S("NULL".into()));
                }
                c
            }
        };
        ctx.jwks.forget(&config.jwks_url);
        let status = if existing.is_some() {
            http::StatusCode::OK
        } else {
            http::StatusCode::CREATED
        };
        Ok(Outcome::with_writes(
            ApiResponse::json(status, &views::idp(&config)),
            vec![Write::Put {
                item: to_item(&config, &keys::idp(app), &[]),
                condition: Some(condition),
            }],
            ApiError::conflict(
                "write_conflict",
                "the identity provider changed at the same moment (or its first user signed in); read it and retry",
            ),
        ))
    }
}

super::handler!(Op);
