//! A proxy call waiting for people to approve it (a policy's `approval`): the call as asked
//! (no credential in it), one gate per approver (N of N), and once executed its result, sealed.

use crate::crypto::Sealed;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    Pending,
    /// Claimed by the decision that completed the group; the call is being made.
    Executing,
    Executed,
    Failed,
    Denied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateState {
    Pending,
    Approved,
    Denied,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gate {
    pub approval_id: Uuid,
    /// sha256 of the gate's link token (the token itself is never stored).
    pub token_hash: String,
    pub status: GateState,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// `link` or `operator:<member id>`.
    #[serde(default)]
    pub decided_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    pub app_id: Uuid,
    /// The group's first gate, the ID callers poll.
    pub approval_id: Uuid,
    pub group_id: Uuid,
    pub status: ApprovalState,
    pub gates: Vec<Gate>,
    pub grant_id: Uuid,
    /// The call (`proxy::Outgoing`), as JSON text.
    #[serde(with = "super::json_text")]
    pub request: Option<Value>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub context: Map<String, Value>,
    /// Who asked: the key's prefix, the acting agent, the caller label.
    #[serde(default, with = "super::json_text")]
    pub requested_by: Option<Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub decision_reason: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub executed_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub execution_error: Option<String>,
    /// The gates' link tokens, sealed: only operators get them (never the caller, who must
    /// not be able to approve its own call).
    #[serde(default)]
    pub links: Option<Sealed>,
    /// When the call was claimed for execution (an execution that never finished reads as
    /// failed after a while).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub claimed_at: Option<OffsetDateTime>,
    /// The executed call's `ApprovalResult`, sealed; handed out once.
    #[serde(default)]
    pub result: Option<Sealed>,
    #[serde(default)]
    pub result_taken: bool,
    /// Every write raises it; every write is conditional on the value it read.
    pub version: u64,
    pub ttl: i64,
}

/// Longer than any execution can take (the upstream call is bounded at 25 s).
pub const EXECUTION_LIMIT: i64 = 120;

impl Approval {
    /// `pending` past its expiry reads as `expired`.
    pub fn status_at(&self, now: OffsetDateTime) -> &'static str {
        match self.status {
            ApprovalState::Pending if now >= self.expires_at => "expired",
            ApprovalState::Pending => "pending",
            // Claimed but never finished (the function died mid-call): it did not complete.
            ApprovalState::Executing
                if self
                    .claimed_at
                    .is_some_and(|t| now - t > time::Duration::seconds(EXECUTION_LIMIT)) =>
            {
                "failed"
            }
            ApprovalState::Executing => "executing",
            ApprovalState::Executed => "executed",
            ApprovalState::Failed => "failed",
            ApprovalState::Denied => "denied",
        }
    }

    pub fn aad(&self) -> String {
        format!("approval-result:{}", self.approval_id)
    }

    pub fn links_aad(&self) -> String {
        format!("approval-links:{}", self.approval_id)
    }
}
