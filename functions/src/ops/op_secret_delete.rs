//! `DELETE /v1/apps/{app_id}/secrets/{secret_id}`: delete the secret and its slug, and revoke
//! its grants. Grants the index has not shown yet still fail closed: a token call on a grant
//! whose secret is gone answers `credential_revoked`.

use super::common::{app_in_path, app_of, record};
use portcullis::model::ManagedSecret;
use portcullis::pipeline::{ADMINS, Access, Call, Empty, Operation, Outcome, Surface};
use portcullis::service::grants;
use portcullis::service::secrets::{prefetch_secret, secret_not_found};
use portcullis::store::{Condition, Item, ItemKey, Write, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde_json::json;
use uuid::Uuid;

/// Grants revoked in the deleting transaction (DynamoDB takes 100 writes per transaction).
/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE.with(&[
    portcullis::iam::Action::Query,
    portcullis::iam::Action::DeleteItem,
]);

const REVOKE_IN_TX: usize = 90;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_secret_delete";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Empty;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Empty, app: Option<Uuid>) -> Vec<ItemKey> {
        prefetch_secret(req, app)
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        _: Empty,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        call.req.uuid_param("secret_id", secret_not_found())?;
        let secret: ManagedSecret =
            record(items.first_mut().and_then(Option::take))?.ok_or_else(secret_not_found)?;
        let app = app_of(call);
        call.audit.resource_type = Some("managed_secret".into());
        call.audit.resource_id = Some(secret.secret_id.to_string());
        let active: Vec<_> = grants::of_secret(&ctx.store, app, secret.secret_id)
            .await?
            .into_iter()
            .filter(|g| g.revoked_at.is_none())
            .collect();
        let mut writes = vec![
            Write::Delete {
                key: keys::secret(app, secret.secret_id),
                condition: Some(Condition::present()),
            },
            Write::Delete {
                key: keys::secret_slug(app, &secret.slug),
                condition: None,
            },
        ];
        // Each grant is revoked; an end user's own key is erased with it.
        let mut revoked = 0;
        for g in &active {
            let erase = g.kind.credential_in_grant() && g.delegation.is_none();
            if writes.len() + 1 + usize::from(erase) > 2 + REVOKE_IN_TX {
                break;
            }
            writes.push(grants::revoke_write(g, call.now));
            if erase {
                writes.push(Write::Delete {
                    key: keys::grant_tokens(app, g.grant_id),
                    condition: None,
                });
            }
            revoked += 1;
        }
        Ok(Outcome::with_writes(
            ApiResponse::ok(&json!({
                "id": secret.secret_id,
                "deleted": true,
                "grants_revoked": revoked,
            })),
            writes,
            secret_not_found(),
        ))
    }
}

super::handler!(Op);
