//! End-user identity: an app's identity provider (IDP) vouches for its users with JWTs, which
//! callers pass as `user_token`. Verifying one answers the app user it names, created on
//! first sight.
//!
//! Round trips: the IDP configuration is read with the caller's key (`prefetch`), and on a
//! warm instance so is the user's record (its ID derives from the IDP and the subject, both
//! known before verification); signing keys are cached per instance (`jwks`). A warm call
//! therefore adds no sequential round trip; a first sight adds one write to the call's own
//! transaction.

pub mod assertion;
pub mod config;
pub mod jwks;
pub mod jwt;
pub mod signin;

use crate::Ctx;
use crate::error::ApiError;
use crate::model::{AppUser, IdpConfig};
use crate::store::{Item, ItemKey, Write, from_item, keys, to_item};
use jwt::Reason;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// Who a verified user token names.
#[derive(Debug, Clone)]
pub struct EndUser {
    pub app_user_id: Uuid,
    pub idp_id: Uuid,
    pub subject: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
}

/// The app user ID of a subject: stable for the IDP, unguessable across IDPs, and computable
/// before any read.
pub fn app_user_id(idp_id: Uuid, subject: &str) -> Uuid {
    Uuid::new_v5(&idp_id, subject.as_bytes())
}

/// A user's record is rewritten at most this often (last seen, changed email or groups).
const SEEN_INTERVAL: time::Duration = time::Duration::hours(1);

/// How many keys `prefetch` answers: always two, so operations can place theirs around them.
pub const PREFETCHED: usize = 2;

/// Items to read in the caller's first round trip: the IDP configuration, then the record of
/// the user the token names when this instance knows the app's IDP (else the configuration
/// again, which `resolve` tells apart). Nothing here is trusted before `resolve` verifies the
/// token.
pub fn prefetch(ctx: &Ctx, app_id: Uuid, token: &str) -> [ItemKey; PREFETCHED] {
    let user = match (ctx.cached_idp(app_id), jwt::parse(token)) {
        (Some((idp_id, claim)), Ok(unverified)) => subject_of(&unverified.claims, &claim)
            .map(|subject| keys::app_user(app_id, app_user_id(idp_id, &subject))),
        _ => None,
    };
    [keys::idp(app_id), user.unwrap_or_else(|| keys::idp(app_id))]
}

/// `prefetch` for an operation whose body may carry a user token: nothing without one.
pub fn prefetch_if(ctx: &Ctx, app_id: Option<Uuid>, token: Option<&str>) -> Vec<ItemKey> {
    match (app_id, token) {
        (Some(app), Some(token)) => prefetch(ctx, app, token).to_vec(),
        _ => Vec::new(),
    }
}

fn subject_of(claims: &serde_json::Map<String, serde_json::Value>, path: &str) -> Option<String> {
    let s = match jwt::claim(claims, path)? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control)).then_some(s)
}

pub fn invalid(reason: &Reason) -> ApiError {
    ApiError::unauthorized("jwt_validation_error", reason.message())
        .details(json!({ "reason": reason.code() }))
        .hint("get a fresh token from the app's identity provider and try again")
}

pub fn no_identity_provider() -> ApiError {
    ApiError::unauthorized(
        "jwt_validation_error",
        "this app has no identity provider configured, so user tokens cannot be verified",
    )
    .details(json!({ "reason": "no_identity_provider" }))
    .hint("configure the app's identity provider (PUT /v1/apps/{app_id}/idp), or call without user_token")
}

/// A verified user and the writes that must commit with the call (the user's record on first
/// sight or when stale, the IDP's first sign-in).
pub struct Resolved {
    pub user: EndUser,
    pub writes: Vec<Write>,
}

/// Verifies `token` against the app's IDP (`items` are what `prefetch` asked for, in order).
pub async fn resolve(
    ctx: &Ctx,
    app_id: Uuid,
    token: &str,
    items: &mut [Option<Item>],
    now: OffsetDateTime,
) -> Result<Resolved, ApiError> {
    let config: IdpConfig = match items.first_mut().and_then(Option::take) {
        Some(item) => from_item(item)?,
        None => return Err(no_identity_provider()),
    };
    ctx.remember_idp(app_id, config.idp_id, &config.claims.user_id);
    let user = verify(ctx, &config, token, now.unix_timestamp())
        .await
        .map_err(|r| invalid(&r))?;

    let mut writes = Vec::new();
    let known: Option<AppUser> = match items.get_mut(1).and_then(Option::take) {
        Some(item) if item_is(&item, &keys::app_user(app_id, user.app_user_id)) => {
            Some(from_item(item)?)
        }
        _ => None,
    };
    let current = known.as_ref().is_some_and(|u| {
        now - u.last_seen_at < SEEN_INTERVAL
            && u.email == user.email
            && u.groups == user.groups
            && u.roles == user.roles
    });
    if !current {
        writes.push(upsert_user(app_id, &user, known.as_ref(), now));
    }
    if config.first_sign_in_at.is_none() {
        writes.push(Write::Update {
            key: keys::idp(app_id),
            // Only when the read configuration had none: a concurrent first sign-in writes
            // an equally good time.
            update: "SET first_sign_in_at = :now".into(),
            // Only over the configuration this call verified with: the mappings it locks are
            // the ones the user's record was made with.
            condition: Some("updated_at = :seen".into()),
            names: Vec::new(),
            values: vec![
                (
                    ":now".into(),
                    aws_sdk_dynamodb::types::AttributeValue::S(crate::model::rfc3339(now)),
                ),
                (
                    ":seen".into(),
                    aws_sdk_dynamodb::types::AttributeValue::S(crate::model::rfc3339(
                        config.updated_at,
                    )),
                ),
            ],
        });
    }
    Ok(Resolved { user, writes })
}

fn item_is(item: &Item, key: &ItemKey) -> bool {
    use aws_sdk_dynamodb::types::AttributeValue;
    matches!(item.get("pk"), Some(AttributeValue::S(pk)) if *pk == key.pk)
}

/// The user's record: created on first sight, refreshed when stale. A plain Put: every field
/// comes from the verified token except `created_at`, which the known record keeps (two
/// first calls at once write the same user with near-equal times, which is harmless).
fn upsert_user(
    app_id: Uuid,
    user: &EndUser,
    known: Option<&AppUser>,
    now: OffsetDateTime,
) -> Write {
    let record = AppUser {
        app_user_id: user.app_user_id,
        app_id,
        idp_id: user.idp_id,
        external_subject_id: user.subject.clone(),
        email: user.email.clone(),
        groups: user.groups.clone(),
        roles: user.roles.clone(),
        created_at: known.map_or(now, |k| k.created_at),
        last_seen_at: now,
    };
    Write::Put {
        item: to_item(&record, &keys::app_user(app_id, user.app_user_id), &[]),
        condition: None,
    }
}

/// Signature, algorithm, issuer, audience, authorized party and times; then the mapped claims.
pub async fn verify(
    ctx: &Ctx,
    config: &IdpConfig,
    token: &str,
    now: i64,
) -> Result<EndUser, Reason> {
    let unverified = jwt::parse(token)?;
    let alg = jwt::allowed_alg(&unverified, &config.algorithms)?;
    let key = ctx
        .jwks
        .key(&config.jwks_url, unverified.header.kid.as_deref(), alg)
        .await?;
    jwt::verify_signature(&unverified, alg, &key)?;
    let claims = &unverified.claims;
    jwt::check_claims(claims, &config.issuer, &config.accepted_audiences(), now)?;
    if !config.authorized_parties.is_empty() {
        let azp = claims.get("azp").and_then(|v| v.as_str());
        if !azp.is_some_and(|a| config.authorized_parties.iter().any(|p| p == a)) {
            return Err(Reason::WrongAudience);
        }
    }
    let subject = subject_of(claims, &config.claims.user_id)
        .ok_or_else(|| Reason::MissingClaim(config.claims.user_id.clone()))?;
    let text = |path: &Option<String>| {
        path.as_deref()
            .and_then(|p| jwt::claim(claims, p))
            .and_then(|v| v.as_str())
            .filter(|s| s.len() <= 320)
            .map(str::to_string)
    };
    let list = |path: &Option<String>| {
        path.as_deref()
            .map(|p| jwt::claim_list(claims, p))
            .unwrap_or_default()
    };
    Ok(EndUser {
        app_user_id: app_user_id(config.idp_id, &subject),
        idp_id: config.idp_id,
        subject,
        email: text(&config.claims.email),
        groups: list(&config.claims.groups),
        roles: list(&config.claims.roles),
    })
}
