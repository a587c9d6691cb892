//! First-run setup for local and emulated environments: the table and the KMS key alias.
//! In AWS the template creates both; this is for moto and LocalStack runs.

use crate::context::Ctx;
use crate::error::ApiError;

pub async fn ensure(ctx: &Ctx) -> Result<(), ApiError> {
    crate::store::table::ensure_table(ctx.store.client(), &ctx.config.table).await?;
    ensure_kms_alias(ctx).await
}

async fn ensure_kms_alias(ctx: &Ctx) -> Result<(), ApiError> {
    let alias = &ctx.config.kms_key_id;
    let Some(alias) = alias.strip_prefix("alias/").map(|a| format!("alias/{a}")) else {
        return Ok(()); // a key ID or ARN: nothing to create
    };
    let kms = ctx.sealer.kms();
    let unavailable = |e: &dyn std::fmt::Debug| {
        tracing::error!(error = ?e, "kms setup failed");
        ApiError::unavailable("could not set up the KMS key")
    };
    if kms.describe_key().key_id(&alias).send().await.is_ok() {
        return Ok(());
    }
    let key = kms
        .create_key()
        .description("Portcullis data-key wrapping key")
        .send()
        .await
        .map_err(|e| unavailable(&e))?;
    let key_id = key
        .key_metadata
        .map(|m| m.key_id)
        .ok_or_else(|| unavailable(&"no key id"))?;
    kms.create_alias()
        .alias_name(&alias)
        .target_key_id(key_id)
        .send()
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(())
}
