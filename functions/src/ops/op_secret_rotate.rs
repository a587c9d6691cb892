//! `POST /v1/apps/{app_id}/secrets/{secret_id}/rotate`: replace the value; grants keep their
//! IDs and get the new value on their next call (`token_generation` changes).

use super::common::{app_in_path, app_of, record};
use portcullis::model::ManagedSecret;
use portcullis::pipeline::{ADMINS, Access, Call, Operation, Outcome, Surface};
use portcullis::service::secrets::{self, ValueInput, prefetch_secret, secret_not_found};
use portcullis::store::{Condition, Item, ItemKey, Write};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::GenerateDataKey]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    value: ValueInput,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_secret_rotate";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Body;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        prefetch_secret(req, app)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        call.req.uuid_param("secret_id", secret_not_found())?;
        let mut secret: ManagedSecret =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(secret_not_found)?;
        call.audit.resource_type = Some("managed_secret".into());
        call.audit.resource_id = Some(secret.secret_id.to_string());
        let value = secrets::value_for(&secret.template, body.value)?;
        secret.value = secrets::seal(ctx, app_of(call), secret.secret_id, &value).await?;
        secret.version = Uuid::new_v4();
        secret.rotated_at = Some(call.now);
        Ok(Outcome::with_writes(
            ApiResponse::ok(&views::secret(&secret)),
            vec![Write::Put {
                item: secrets::item(&secret),
                condition: Some(Condition::present()),
            }],
            secret_not_found(),
        ))
    }
}

super::handler!(Op);
