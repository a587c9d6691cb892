//! `PUT /v1/apps/{app_id}/providers/{provider_id}`: configure an OAuth provider for an app —
//! a catalogue provider by its ID, or a custom one with `custom`. The client secret is
//! write-only. Requiring a scope that existing grants lack flags them `scope_mismatch`.

use super::common::{app_in_path, app_of, record};
use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::model::{GrantKind, ProviderConfig, ProviderDef};
use portcullis::pipeline::{ADMINS, Access, Call, Operation, Outcome, Surface};
use portcullis::service::{grants, providers, validate};
use portcullis::store::{Item, ItemKey, Write, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx, views};
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::PIPELINE.with(&[
    portcullis::iam::Action::Query,
    portcullis::iam::Action::GenerateDataKey,
]);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    client_id: String,
    client_secret: Option<String>,
    scopes: Option<Vec<String>>,
    allowed_scopes: Option<Vec<String>>,
    redirect_uri: Option<String>,
    #[serde(default)]
    url_params: BTreeMap<String, String>,
    custom: Option<ProviderDef>,
}

/// Grant flags written in the configuration's own transaction; any more are written just
/// before it, one by one (idempotent: flagging a grant that lacks a scope is always right).
const FLAGS_IN_TRANSACTION: usize = 90;

pub struct Op;

impl Operation for Op {
    const NAME: &'static str = "op_provider_put";
    const SURFACE: Surface = Surface::Operator;
    const ACCESS: Access = Access::Roles(ADMINS);
    type Body = Body;

    fn target_app(req: &ApiRequest) -> Option<Result<Uuid, ApiError>> {
        app_in_path(req)
    }

    fn prefetch(_: &Ctx, req: &ApiRequest, _: &Body, app: Option<Uuid>) -> Vec<ItemKey> {
        match (app, req.param("provider_id")) {
            (Some(app), Ok(id)) => vec![keys::provider(app, id)],
            _ => Vec::new(),
        }
    }

    async fn run(
        ctx: &Ctx,
        call: &mut Call<'_>,
        body: Body,
        mut items: Vec<Option<Item>>,
    ) -> Result<Outcome, ApiError> {
        let app = app_of(call);
        let provider_id = validate::provider_id(call.req.param("provider_id")?)?;
        let existing: Option<ProviderConfig> = record(items.first_mut().and_then(Option::take))?;
        let custom = body
            .custom
            .map(|d| portcullis::providers::validate_custom(d, &provider_id))
            .transpose()?;
        let catalogue = portcullis::providers::find(&provider_id);
        let def = match (&custom, catalogue) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => {
                return Err(ApiError::validation(format!(
                    "`{provider_id}` is not in the provider catalogue: define it with `custom`"
                ))
                .hint("GET /sdk/oauth/provider-catalog lists the catalogue"));
            }
        };
        let client_id = validate::name("client_id", &body.client_id, 512)?;
        let client_secret = match (body.client_secret, &existing) {
            (Some(s), _) if !s.is_empty() && s.len() <= 4096 => {
                providers::seal_secret(ctx, app, &provider_id, &s).await?
            }
            (Some(_), _) => {
                return Err(ApiError::validation(
                    "`client_secret` must be 1–4096 characters",
                ));
            }
            (None, Some(e)) => e.client_secret.clone(),
            (None, None) => {
                return Err(ApiError::validation(
                    "`client_secret` is required when a provider is first configured",
                ));
            }
        };
        let scopes = validate::scopes(
            "scopes",
            body.scopes.as_deref().unwrap_or(&def.default_scopes),
        )?;
        let mut allowed_scopes = validate::scopes(
            "allowed_scopes",
            body.allowed_scopes.as_deref().unwrap_or(&scopes),
        )?;
        for s in &scopes {
            if !allowed_scopes.contains(s) {
                allowed_scopes.push(s.clone());
            }
        }
        let redirect_uri = body
            .redirect_uri
            .as_deref()
            .map(|u| validate::endpoint_url("redirect_uri", u))
            .transpose()?;
        for name in &def.url_params {
            let v = body.url_params.get(name).ok_or_else(|| {
                ApiError::validation(format!("`url_params.{name}` is required for {}", def.name))
            })?;
            let ok = (1..=100).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(ApiError::validation(format!(
                    "`url_params.{name}` must be 1–100 letters, digits, `-` or `.`"
                )));
            }
        }
        if let Some(extra) = body.url_params.keys().find(|k| !def.url_params.contains(k)) {
            return Err(ApiError::validation(format!(
                "`url_params.{extra}` is not a URL parameter of {}",
                def.name
            )));
        }
        let config = ProviderConfig {
            app_id: app,
            provider_id: provider_id.clone(),
            client_id,
            client_secret,
            scopes,
            allowed_scopes,
            redirect_uri,
            url_params: body.url_params,
            custom,
            created_at: existing.as_ref().map_or(call.now, |e| e.created_at),
            updated_at: call.now,
        };
        portcullis::providers::effective(&config)?;

        // Grants now missing a required scope (none when nothing new is required).
        let newly_required = existing
            .as_ref()
            .is_none_or(|e| config.scopes.iter().any(|s| !e.scopes.contains(s)));
        let mut flags = Vec::new();
        if newly_required {
            let (all, _) = grants::list(&ctx.store, app, None, 100_000).await?;
            for g in all {
                if let GrantKind::OAuth {
                    provider_id: p,
                    scopes,
                    ..
                } = &g.kind
                {
                    let missing = config.scopes.iter().any(|s| !scopes.contains(s));
                    if *p == provider_id && missing && !g.scope_mismatch {
                        flags.push(flag_write(app, g.grant_id));
                    }
                }
            }
        }
        let later = flags.split_off(flags.len().min(FLAGS_IN_TRANSACTION));
        call.audit.resource_type = Some("provider".into());
        call.audit.resource_id = Some(provider_id.clone());
        call.audit.detail = Some(serde_json::json!({
            "grants_flagged_scope_mismatch": flags.len() + later.len(),
        }));
        let status = if existing.is_some() {
            http::StatusCode::OK
        } else {
            http::StatusCode::CREATED
        };
        let mut writes = vec![Write::Put {
            item: providers::item(&config),
            condition: None,
        }];
        writes.extend(flags);
        for w in later {
            if ctx.store.transact(vec![w]).await.is_err() {
                tracing::warn!("a scope_mismatch flag was not written; PUT the provider again");
            }
        }
        let view = views::provider_config(
            &config,
            &providers::redirect_uri(ctx, call.req, &config).unwrap_or_default(),
        );
        Ok(Outcome::with_writes(
            ApiResponse::json(status, &view),
            writes,
            ApiError::conflict(
                "write_conflict",
                "the configuration changed at the same moment; retry",
            ),
        ))
    }
}

fn flag_write(app: Uuid, grant_id: Uuid) -> Write {
    Write::Update {
        key: keys::grant(app, grant_id),
        update: "SET scope_mismatch = :t".into(),
        condition: Some("attribute_exists(pk)".into()),
        names: Vec::new(),
        values: vec![(":t".into(), AttributeValue::Bool(true))],
    }
}

super::handler!(Op);
