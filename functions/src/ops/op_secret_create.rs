//! `POST /v1/apps/{app_id}/secrets`: store a managed secret, sealed with the app's data key.
//! The value is write-only: no answer ever includes it.

use super::common::{app_in_path, app_of};
use portcullis::model::ManagedSecret;
use portcullis::pipeline::{ADMINS, Access, Call, Operation, Outcome, Surface};
use portcullis::service::secrets::{self, ValueInput};
use portcullis::service::validate;
use portcullis::store::Item;
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy =
    portcullis::iam::PIPELINE.with(&[portcullis::iam::Action::GenerateDataKey]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    name: String,
    template: String,
    header_name: Option<String>,
    /// `query_param` secrets: the query parameter the key goes in.
    param_name: Option<String>,
    /// `aws_sigv4` secrets: the region and service requests are signed for.
    aws_region: Option<String>,
    aws_service: Option<String>,
    allowed_hosts: Vec<String>,
    value: ValueInput,
}

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_secret_create";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Body;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        _: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let app = app_of(call);
        let name = validate::name("name", &body.name, 100)?;
        let aws = match (&body.aws_region, &body.aws_service) {
            (None, None) => None,
            (r, s) => Some((
                r.as_deref().unwrap_or_default(),
                s.as_deref().unwrap_or_default(),
            )),
        };
        let template = secrets::template_for(
            &body.template,
            body.header_name.as_deref(),
            body.param_name.as_deref(),
            aws,
        )?;
        let allowed_hosts = validate::allowed_hosts(&body.allowed_hosts)?;
        let value = secrets::value_for(&template, body.value)?;
        // First free slug among name, name-2, … name-10 (read together in one round trip).
        let candidates = secrets::slug_candidates(app, &name)?;
        let taken = ctx
            .store
            .get_many(
                &candidates
                    .iter()
                    .map(|(_, k)| k.clone())
                    .collect::<Vec<_>>(),
            )
            .await?;
        let slug = candidates
            .into_iter()
            .zip(taken)
            .find(|(_, t)| t.is_none())
            .map(|((slug, _), _)| slug)
            .ok_or_else(|| {
                ApiError::conflict(
                    "slug_taken",
                    "too many secrets share this name; choose another name",
                )
            })?;
        let secret_id = Uuid::new_v4();
        let sealed = secrets::seal(ctx, app, secret_id, &value).await?;
        let secret = ManagedSecret {
            secret_id,
            app_id: app,
            name,
            slug,
            template,
            allowed_hosts,
            value: sealed,
            version: Uuid::new_v4(),
            created_at: call.now,
            rotated_at: None,
        };
        call.audit.resource_type = Some("managed_secret".into());
        call.audit.resource_id = Some(secret_id.to_string());
        Ok(Outcome::with_writes(
            ApiResponse::json(http::StatusCode::CREATED, &views::secret(&secret)),
            secrets::create_writes(&secret),
            ApiError::conflict(
                "slug_taken",
                "another secret took this slug at the same moment; retry",
            ),
        ))
    }
}

super::handler!(Op);
