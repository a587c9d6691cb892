//! `GET /sdk/oauth/callback`: the provider sends the person back here. The `state` must be
//! the session's current one (single use); the code is exchanged with the PKCE verifier; the
//! grant, its tokens and the session's outcome are written in one transaction, so a denied
//! consent, a wrong or replayed `state` or a provider error leave nothing stored.

use aws_sdk_dynamodb::types::AttributeValue;
use portcullis::model::connect::{ConnectSession, ConnectStatus};
use portcullis::model::{App, Grant, GrantKind, GrantStatus, Principal, rfc3339};
use portcullis::oauth::{client, connect, tokens};
use portcullis::service::delegations;
use portcullis::service::{grants, providers};
use portcullis::store::{Condition, TxError, Write, from_item, keys};
use portcullis::{ApiError, ApiRequest, ApiResponse, Ctx};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use time::OffsetDateTime;
use uuid::Uuid;

/// What this operation may do to AWS: its Lambda function's IAM policy.
pub const IAM: portcullis::iam::Policy = portcullis::iam::Policy::of(&[
    portcullis::iam::Action::GetItem,
    portcullis::iam::Action::BatchGetItem,
    portcullis::iam::Action::Query,
    portcullis::iam::Action::PutItem,
    portcullis::iam::Action::UpdateItem,
    portcullis::iam::Action::GenerateDataKey,
    portcullis::iam::Action::Decrypt,
]);

const ACTION: &str = "web_oauth_callback";

/// What the result page delivers (to the opener, the return URL, or the person).
struct Delivery {
    app_name: Option<String>,
    allowed_origin: Option<String>,
    return_url: Option<String>,
    outcome: Result<Vec<Value>, (String, String)>,
}

impl Delivery {
    fn failed(session: Option<(&ConnectSession, &App)>, code: &str, message: &str) -> Self {
        Delivery {
            app_name: session.map(|(_, a)| a.name.clone()),
            allowed_origin: session.and_then(|(s, _)| s.allowed_origin.clone()),
            return_url: session.and_then(|(s, _)| s.return_url.clone()),
            outcome: Err((code.into(), message.into())),
        }
    }

    fn page(self) -> ApiResponse {
        let (ok, grants, error) = match self.outcome {
            Ok(g) => (true, g, Value::Null),
            Err((code, message)) => (
                false,
                Vec::new(),
                json!({ "error": code, "error_description": message }),
            ),
        };
        let data = json!({
            "ok": ok,
            "app_name": self.app_name,
            "allowed_origin": self.allowed_origin,
            "return_url": self.return_url,
            "grants": grants,
            "error": error,
        });
        crate::web::page(
            crate::web::RESULT_PAGE,
            &[("__RESULT_JSON__", &crate::web::script_json(&data))],
        )
    }
}

/// Ends the pending session in error: the person reads `message`, the app's poll `for_app`.
async fn end(
    ctx: &Ctx,
    req: &ApiRequest,
    (session, app): (&mut ConnectSession, &App),
    code: &str,
    message: &str,
    for_app: &str,
) -> Result<Delivery, ApiError> {
    let d = Delivery::failed(Some((session, app)), code, message);
    crate::web::end_in_error(ctx, req, ACTION, session, connect::error(code, for_app)).await?;
    Ok(d)
}

async fn callback(ctx: &Ctx, req: &ApiRequest) -> Result<Delivery, ApiError> {
    let state = req.query("state").unwrap_or_default();
    let Some((app_id, r)) = connect::parse_state(&state) else {
        return Ok(Delivery::failed(
            None,
            "invalid_state",
            "This sign-in link is not valid. Go back to the app and start again.",
        ));
    };
    let mut items = ctx
        .store
        .get_many(&[keys::connect_session(app_id, &r), keys::app(app_id)])
        .await?;
    let app: Option<App> = items[1].take().map(from_item).transpose()?;
    let session: Option<ConnectSession> = items[0].take().map(from_item).transpose()?;
    let (Some(mut session), Some(app)) = (session, app) else {
        return Ok(Delivery::failed(
            None,
            "connect_session_expired",
            "This connection request has expired. Go back to the app and start again.",
        ));
    };
    match connect::status_at(&session, req.received_at) {
        "pending" => {}
        "expired" => {
            return Ok(Delivery::failed(
                Some((&session, &app)),
                "connect_session_expired",
                "This connection request has expired. Go back to the app and start again.",
            ));
        }
        _ => {
            // A replayed callback: the session already ended; its outcome stands.
            return Ok(Delivery::failed(
                Some((&session, &app)),
                "connect_session_used",
                "This connection request was already used. Go back to the app and start again.",
            ));
        }
    }
    if !connect::state_matches(&session, &state) {
        return end(
            ctx,
            req,
            (&mut session, &app),
            "invalid_state",
            "The sign-in response did not match this connection request. Start again from the app.",
            "the provider's response carried a state this session did not issue",
        )
        .await;
    }
    let attempt = session.attempt.clone().expect("state matched an attempt");
    if let Some(err) = req.query("error") {
        let (code, message) = match err.as_str() {
            "access_denied" => (
                "connect_denied",
                "You declined the connection, so nothing was shared.",
            ),
            "invalid_client"
            | "unauthorized_client"
            | "invalid_scope"
            | "unsupported_response_type" => (
                "connect_config_error",
                "The app's connection to this provider is misconfigured. Contact the app's developers.",
            ),
            _ => (
                "provider_error",
                "The provider could not complete the sign-in. Try again later.",
            ),
        };
        return end(ctx, req, (&mut session, &app), code, message, message).await;
    }
    let Some(code) = req
        .query("code")
        .filter(|c| !c.is_empty() && c.len() <= 4096)
    else {
        return end(
            ctx,
            req,
            (&mut session, &app),
            "provider_error",
            "The provider sent no authorization code.",
            "the provider sent no authorization code",
        )
        .await;
    };
    let provider = match providers::configured(ctx, app_id, &attempt.provider_id).await {
        Ok(p) => p,
        Err(_) => {
            return end(
                ctx,
                req,
                (&mut session, &app),
                "provider_configuration_unavailable",
                "This provider is no longer configured for the app.",
                "the provider is no longer configured",
            )
            .await;
        }
    };
    let answer = match client::exchange_code(
        &provider.def,
        &provider.credentials(),
        &code,
        &attempt.redirect_uri,
        attempt.code_verifier.as_deref(),
    )
    .await
    {
        Ok(a) => a,
        Err(failure) => {
            tracing::warn!(failure = ?failure, "authorization code exchange failed");
            let (code, message) = match failure {
                client::Failure::Other {
                    error_type: "http_4xx",
                    ..
                }
                | client::Failure::InvalidGrant => (
                    "token_exchange_failed",
                    "The provider refused to complete the sign-in. Start again from the app.",
                ),
                _ => (
                    "provider_unavailable",
                    "The provider could not be reached. Try again in a moment.",
                ),
            };
            return end(ctx, req, (&mut session, &app), code, message, message).await;
        }
    };
    let now = OffsetDateTime::now_utc();
    let granted = answer
        .scope
        .as_deref()
        .map(|s| portcullis::providers::split_scopes(&provider.def, s))
        .unwrap_or_else(|| attempt.scopes.clone());
    let account = client::account_of(&provider.def, &answer).await;
    let mut required = provider.config.scopes.clone();
    required.extend(
        session
            .required_scopes
            .get(&attempt.provider_id)
            .cloned()
            .unwrap_or_default(),
    );
    let scope_mismatch = required.iter().any(|s| !granted.contains(s));

    let principal = session.principal.clone().unwrap_or(Principal::System);
    let existing = reauth_target(
        ctx,
        &session,
        &principal,
        &attempt.provider_id,
        account.as_deref(),
    )
    .await?;
    let operation = if existing.is_some() {
        "reauth"
    } else {
        "creation"
    };
    let grant_expires_at = grant_expiry(session.grant_policy.as_ref(), now);
    let mut grant = Grant {
        grant_id: existing.as_ref().map_or_else(Uuid::new_v4, |g| g.grant_id),
        app_id,
        kind: GrantKind::OAuth {
            provider_id: attempt.provider_id.clone(),
            scopes: granted.clone(),
            account_identifier: account.clone(),
            account_display_name: None,
            api_base_url: provider.def.api_base_url.clone(),
            hosts: provider.def.hosts.clone(),
        },
        principal,
        label: existing
            .as_ref()
            .map_or(session.label.clone(), |g| g.label.clone()),
        status: GrantStatus::Active,
        grant_policy: session.grant_policy.clone(),
        created_at: existing.as_ref().map_or(now, |g| g.created_at),
        expires_at: grant_expires_at,
        revoked_at: None,
        last_used_at: existing.as_ref().and_then(|g| g.last_used_at),
        created_by: session.created_by.clone(),
        scope_mismatch,
        needs_reconnect: false,
        delegation: None,
        delegable: false,
        delegated_agent_ids: existing
            .as_ref()
            .map(|g| g.delegated_agent_ids.clone())
            .unwrap_or_default(),
        policy: session
            .restrictions
            .clone()
            .or_else(|| existing.as_ref().and_then(|g| g.policy.clone())),
    };
    // `agent=`: the user's consent, given on this page, becomes the agent's delegation —
    // unless its scope constraint is not within what the provider granted.
    let delegation = session.agent_id.map(|agent| {
        let within = session
            .scope_constraint
            .as_ref()
            .is_none_or(|c| c.iter().all(|s| granted.contains(s)));
        let child = within.then(|| {
            delegations::child(
                &grant,
                agent,
                &grant.principal.key(),
                delegations::Terms {
                    delegable: session.delegable,
                    scope_constraint: session.scope_constraint.clone(),
                    expires_at: None,
                },
                session.created_by.clone(),
                now,
            )
        });
        (agent, child)
    });
    if let Some((agent, Some(_))) = &delegation
        && !grant.delegated_agent_ids.contains(agent)
    {
        grant.delegated_agent_ids.push(*agent);
    }
    let (token_set, _) = tokens::from_answer(
        ctx,
        app_id,
        grant.grant_id,
        &provider.def,
        &answer,
        None,
        now,
    )
    .await?;
    let provider_name = provider.def.name.clone();
    let mut entry = json!({
        "grant_id": grant.grant_id,
        "provider_id": attempt.provider_id,
        "account_identifier": account,
        "scopes": granted,
        "api_base_url": provider.def.api_base_url,
        "operation": operation,
    });
    if let Some((agent, child)) = &delegation {
        entry["delegation"] = json!({
            "agent_id": agent,
            "delegable": session.delegable,
            "policy_refused": child.is_none(),
        });
    }
    if session.grant_policy.is_some() {
        entry["grant_policy"] = json!({
            "expires_at": grant_expires_at.map(rfc3339),
            "created_by": session.created_by,
            "created_at": rfc3339(now),
        });
    }
    session.status = ConnectStatus::Completed;
    session.result = Some(json!([entry]));
    session.attempt = None;
    let audit = crate::web::audit_row(
        req,
        app_id,
        ACTION,
        200,
        None,
        &session.ref_id,
        Some(
            json!({ "grant_id": grant.grant_id, "provider_id": attempt.provider_id, "operation": operation, "scope_mismatch": scope_mismatch }),
        ),
    );
    let mut writes = vec![
        Write::Put {
            item: grants::item(&grant),
            condition: Some(if existing.is_some() {
                Condition::present()
            } else {
                Condition::absent()
            }),
        },
        Write::Put {
            item: tokens::item(&token_set),
            condition: None,
        },
        Write::Put {
            item: connect::item(&session),
            condition: Some(
                Condition::new("#s = :pending AND attempt.state_hash = :h")
                    .name("#s", "status")
                    .value(":pending", AttributeValue::S("pending".into()))
                    .value(":h", AttributeValue::S(attempt.state_hash.clone())),
            ),
        },
        Write::Put {
            item: audit,
            condition: None,
        },
    ];
    if let Some((_, Some(child))) = &delegation {
        writes.push(Write::Put {
            item: grants::item(child),
            condition: None,
        });
        // Renewing a delegation of a reconnected grant ends what it passed on.
        if existing.is_some() {
            let previous: Option<Grant> = ctx
                .store
                .get(&keys::grant(app_id, child.grant_id), true)
                .await?
                .map(from_item)
                .transpose()?;
            writes.extend(delegations::renewal_writes(previous.as_ref(), now));
        }
    }
    match ctx.store.transact(writes).await {
        Ok(()) => {}
        Err(TxError::ConditionFailed(_)) => {
            return Ok(Delivery::failed(
                Some((&session, &app)),
                "connect_session_used",
                "This connection request was already used. Go back to the app and start again.",
            ));
        }
        Err(TxError::Unavailable(e)) => return Err(e),
    }
    let widget_grant = json!({
        "grant_id": grant.grant_id,
        "provider": attempt.provider_id,
        "provider_name": provider_name,
        "account_identifier": entry["account_identifier"],
        "timestamp": rfc3339(now),
        "operation": operation,
        "scopes": entry["scopes"],
        "status": "active",
        "metadata": session.metadata.clone().unwrap_or(json!({})),
    });
    Ok(Delivery {
        app_name: Some(app.name.clone()),
        allowed_origin: session.allowed_origin.clone(),
        return_url: session.return_url.clone(),
        outcome: Ok(vec![widget_grant]),
    })
}

/// The grant a completed consent renews in place (same ID, `operation: "reauth"`): the one
/// `repair_grant_id` names, else the principal's active grant of the same provider, account
/// and label.
async fn reauth_target(
    ctx: &Ctx,
    session: &ConnectSession,
    principal: &Principal,
    provider_id: &str,
    account: Option<&str>,
) -> Result<Option<Grant>, ApiError> {
    if let Some(id) = session.repair_grant_id {
        let g: Option<Grant> = ctx
            .store
            .get(&keys::grant(session.app_id, id), true)
            .await?
            .map(from_item)
            .transpose()?;
        return Ok(
            g.filter(|g| g.status == GrantStatus::Active && g.kind.provider_id() == provider_id)
        );
    }
    if account.is_none() || session.switch_account {
        return Ok(None);
    }
    let (all, _) = grants::list(&ctx.store, session.app_id, Some(principal), 10_000).await?;
    Ok(all.into_iter().find(|g| {
        g.status == GrantStatus::Active
            && g.label == session.label
            && matches!(&g.kind, GrantKind::OAuth { provider_id: p, account_identifier: a, .. }
                if p == provider_id && a.as_deref() == account)
    }))
}

fn grant_expiry(policy: Option<&Value>, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let policy = policy?;
    if let Some(t) = policy["expires_at"].as_str() {
        return OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok();
    }
    policy["default_ttl_seconds"]
        .as_i64()
        .map(|s| now + time::Duration::seconds(s))
}

pub fn handle(
    ctx: &Ctx,
    req: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
    Box::pin(async move {
        match callback(ctx, &req).await {
            Ok(d) => d.page(),
            Err(e) => {
                tracing::error!(code = e.code, "Connect callback failed");
                Delivery::failed(
                    None,
                    "server_error",
                    "Something went wrong on our side. Try again in a moment.",
                )
                .page()
            }
        }
    })
}
