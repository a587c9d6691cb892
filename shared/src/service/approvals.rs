//! Approvals: their gate links (`apv_…` tokens, stored as hashes), their records and what the
//! SDK reads of them (`PendingApproval`, `ApprovalStatus`).

use crate::error::ApiError;
use crate::model::approval::{Approval, GateState};
use crate::model::{micros, rfc3339};
use crate::oauth::bearer;
use crate::store::{Condition, Item, Write, keys, to_item};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

const PREFIX: &str = "apv_";

/// A gate's link token (`apv_<app>_<approval>_<gate>_<secret>`) and its stored hash.
pub fn new_token(app_id: Uuid, approval_id: Uuid, gate: usize) -> (String, String) {
    let token = format!(
        "{PREFIX}{}_{}_{gate}_{}",
        app_id.simple(),
        approval_id.simple(),
        bearer::random(32)
    );
    let hash = bearer::sha256_hex(&token);
    (token, hash)
}

/// The app, approval and gate a token names (checked against the stored hash later).
pub fn parse_token(token: &str) -> Option<(Uuid, Uuid, usize)> {
    if token.len() > 200 {
        return None;
    }
    let mut parts = token.strip_prefix(PREFIX)?.splitn(4, '_');
    let app = Uuid::try_parse(parts.next()?).ok()?;
    let approval = Uuid::try_parse(parts.next()?).ok()?;
    let gate = parts.next()?.parse().ok().filter(|g| *g < 5)?;
    let secret = parts.next()?;
    (secret.len() >= 40).then_some((app, approval, gate))
}

/// Whether `token` is the gate's own (constant time).
pub fn token_matches(a: &Approval, gate: usize, token: &str) -> bool {
    a.gates
        .get(gate)
        .is_some_and(|g| bearer::hash_matches(&g.token_hash, token))
}

pub fn not_found() -> ApiError {
    ApiError::not_found("approval_not_found", "approval")
}

pub fn item(a: &Approval) -> Item {
    to_item(
        a,
        &keys::approval(a.app_id, a.approval_id),
        &[
            ("gsi1pk", keys::app_approvals_index(a.app_id)),
            (
                "gsi1sk",
                keys::created_sort(micros(a.created_at), a.approval_id),
            ),
        ],
    )
}

/// The record as changed, written only over the version that was read.
pub fn put_over(a: &Approval, read_version: u64) -> Write {
    Write::Put {
        item: item(a),
        condition: Some(
            Condition::new("version = :v").value(":v", AttributeValue::N(read_version.to_string())),
        ),
    }
}

/// A gate's approver decision as the SDK reads it.
fn gate_status(
    a: &Approval,
    g: &crate::model::approval::Gate,
    now: OffsetDateTime,
) -> &'static str {
    match g.status {
        GateState::Approved => "approved",
        GateState::Denied => "denied",
        GateState::Pending if a.status_at(now) == "expired" => "expired",
        GateState::Pending => "pending",
    }
}

/// `ApprovalStatus` (spec §7.5).
pub fn status_view(a: &Approval, now: OffsetDateTime) -> Value {
    json!({
        "approval_id": a.approval_id,
        "status": a.status_at(now),
        "approval_group_id": a.group_id,
        "gates": a.gates.iter().map(|g| json!({
            "approval_id": g.approval_id,
            "status": gate_status(a, g, now),
            "expires_at": rfc3339(a.expires_at),
            "decided_at": g.decided_at.map(rfc3339),
        })).collect::<Vec<_>>(),
        "expires_at": rfc3339(a.expires_at),
        "decided_at": a.decided_at.map(rfc3339),
        "decision_reason": a.decision_reason,
        "executed_at": a.executed_at.map(rfc3339),
        "execution_error": a.execution_error,
        "has_result": a.result.is_some() && !a.result_taken,
    })
}

/// `PendingApproval` (spec §7.4's 202). Its links show the request's state: the approvers'
/// own links (which decide) go to operators only.
pub fn pending_view(a: &Approval, public: &str, now: OffsetDateTime) -> Value {
    let links: Vec<String> = a
        .gates
        .iter()
        .map(|g| format!("{public}/sdk/approvals/decide#approval={}", g.approval_id))
        .collect();
    let expires_in = (a.expires_at - now).whole_seconds().max(0);
    let gates: Vec<Value> = a
        .gates
        .iter()
        .zip(&links)
        .map(|(g, link)| {
            json!({
                "approval_id": g.approval_id,
                "expires_at": rfc3339(a.expires_at),
                "expires_in": expires_in,
                "approval_url": link,
            })
        })
        .collect();
    json!({
        "approval_id": a.approval_id,
        "approval_group_id": a.group_id,
        "status": "pending",
        "expires_at": rfc3339(a.expires_at),
        "expires_in": expires_in,
        "approval_url": links.first(),
        "gates": gates,
    })
}

/// Why a decision cannot be taken now.
pub fn not_decidable(a: &Approval, gate: usize, now: OffsetDateTime) -> Option<ApiError> {
    match a.status_at(now) {
        "expired" => Some(ApiError::new(
            http::StatusCode::GONE,
            "approval_expired",
            "this request waited too long and expired",
        )),
        "pending" => match a.gates.get(gate).map(|g| g.status) {
            Some(GateState::Pending) => None,
            Some(_) => Some(ApiError::conflict(
                "approval_already_decided",
                "this approval link was already used",
            )),
            None => Some(not_found()),
        },
        _ => Some(ApiError::conflict(
            "approval_already_decided",
            "this request was already decided",
        )),
    }
}
