//! `POST /v1/apps/{app_id}/keys`: mint an app key (`alter_rk_…`), shown once.

use super::common::{app_in_path, app_of, future_time};
use portcullis::apikey::KeyType;
use portcullis::model::KeyOwner;
use portcullis::pipeline::{ADMINS, Access, Call, Operation, Outcome, Surface};
use portcullis::service::{keys as key_service, validate};
use portcullis::store::Item;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    name: String,
    scopes: Option<Vec<String>>,
    expires_at: Option<String>,
    cidr_allowlist: Option<Vec<String>>,
    rate_limit_rpm: Option<u32>,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_app_key_create";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Body;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    async fn run(
        _: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let key = key_service::mint(
            KeyOwner::App {
                app_id: app_of(call),
            },
            KeyType::Rk,
            validate::name("name", &body.name, 100)?,
            key_service::scopes_or_all(body.scopes)?,
            future_time("expires_at", body.expires_at.as_deref(), call.now)?,
            call.now,
        );
        let mut key = key;
        if body
            .rate_limit_rpm
            .is_some_and(|r| !(1..=100_000).contains(&r))
        {
            return Err(ApiError::validation(
                "`rate_limit_rpm` must be between 1 and 100000",
            ));
        }
        key.record.rate_limit_rpm = body.rate_limit_rpm;
        key.record.cidr_allowlist =
            portcullis::cidr::parse_list(&body.cidr_allowlist.unwrap_or_default())?;
        call.audit.resource_type = Some("key".into());
        call.audit.resource_id = Some(key.record.key_id.to_string());
        Ok(Outcome::with_writes(
            ApiResponse::json(
                http::StatusCode::CREATED,
                &views::minted_key(&key.record, &key.plaintext),
            ),
            key_service::create_writes(&key.record),
            ApiError::conflict("write_conflict", "retry"),
        ))
    }
}

super::handler!(Op);
