//! `POST /v1/bootstrap`: creates an organisation, its first owner and the owner's operator
//! key, authorised by the root secret (`Authorization: Bearer <root secret>`). This is the
//! only operation without an API key: it is how the first key comes to exist.

use portcullis::audit::AuditEvent;
use portcullis::model::{Org, Role, rfc3339};
use portcullis::service::{orgs, validate};
use portcullis::store::{Condition, Write, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::Pin;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::Policy::of(&[
    portcullis::iam::Action::PutItem,
    portcullis::iam::Action::GetRootSecret,
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    org_name: String,
    owner_email: String,
}

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        let r = match run(ctx, &req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(
                    operation = "op_bootstrap",
                    status = e.status.as_u16(),
                    error = e.code,
                    "bootstrap refused"
                );
                ApiResponse::error(&e)
            }
        };
        r.header("x-request-id", &req.request_id)
    })
}

async fn run(ctx: &Ctx, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let root = ctx.root_secret().await?.ok_or_else(|| {
        ApiError::forbidden(
            "bootstrap_disabled",
            "no root secret is configured, so bootstrap is disabled",
        )
    })?;
    let presented = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare digests: constant time, and no length leak.
    let ok: bool = Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(root.as_bytes()))
        .into();
    if presented.is_empty() || !ok {
        return Err(ApiError::unauthorized(
            "invalid_root_secret",
            "the root secret is missing or wrong",
        ));
    }
    let body: Body = req.json()?;
    let now = req.received_at;
    let org = Org {
        org_id: Uuid::new_v4(),
        name: validate::name("org_name", &body.org_name, 100)?,
        created_at: now,
        max_derived_key_ttl_hours: None,
    };
    let (member, key, mut writes) = orgs::new_member(
        org.org_id,
        validate::email(&body.owner_email)?,
        Role::Owner,
        now,
    );
    writes.push(Write::Put {
        item: orgs::org_item(&org),
        condition: Some(Condition::absent()),
    });
    let event = AuditEvent {
        request_id: req.request_id.clone(),
        time: rfc3339(now),
        org_id: Some(org.org_id.to_string()),
        action: "op_bootstrap".into(),
        outcome: "success".into(),
        status: 201,
        principal_type: Some("root".into()),
        resource_type: Some("org".into()),
        resource_id: Some(org.org_id.to_string()),
        latency_ms: req.received.elapsed().as_millis() as u64,
        client_ip: req.source_ip.map(|ip| ip.to_string()),
        user_agent: req.user_agent(),
        ..Default::default()
    };
    writes.push(Write::Put {
        item: event.to_item(&keys::org_partition(org.org_id), now),
        condition: None,
    });
    ctx.store.transact(writes).await?;
    Ok(ApiResponse::json(
        http::StatusCode::CREATED,
        &json!({
            "org": org.view(),
            "member": views::member(&member),
            "operator_key": views::minted_key(&key.record, &key.plaintext),
        }),
    ))
}
