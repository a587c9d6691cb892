//! What each operation may do to AWS. Every operation module declares its `IAM` policy; the
//! deployment template gives each Lambda function exactly those actions (on this table, key
//! and secret only), and every run here enforces the same policy in process, so a test that
//! reaches for an undeclared action fails the way the function would fail on AWS.
//!
//! Checks sit at the logical access points (the store's calls, `seal`, `open`, the root
//! secret), not behind caches: a warm instance that skips KMS still needs the permission on
//! its next cold start.

use crate::error::ApiError;
use std::collections::HashSet;
use std::io::Write as _;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    GetItem,
    BatchGetItem,
    Query,
    PutItem,
    UpdateItem,
    DeleteItem,
    ConditionCheckItem,
    /// `kms:GenerateDataKey`: sealing a new value.
    GenerateDataKey,
    /// `kms:Decrypt`: opening a sealed value.
    Decrypt,
    /// `secretsmanager:GetSecretValue` on the root secret.
    GetRootSecret,
}

pub const ALL: [Action; 10] = [
    Action::GetItem,
    Action::BatchGetItem,
    Action::Query,
    Action::PutItem,
    Action::UpdateItem,
    Action::DeleteItem,
    Action::ConditionCheckItem,
    Action::GenerateDataKey,
    Action::Decrypt,
    Action::GetRootSecret,
];

/// Where an action applies in the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Table,
    Key,
    RootSecret,
}

impl Action {
    /// The IAM action name.
    pub const fn iam(self) -> &'static str {
        match self {
            Action::GetItem => "dynamodb:GetItem",
            Action::BatchGetItem => "dynamodb:BatchGetItem",
            Action::Query => "dynamodb:Query",
            Action::PutItem => "dynamodb:PutItem",
            Action::UpdateItem => "dynamodb:UpdateItem",
            Action::DeleteItem => "dynamodb:DeleteItem",
            Action::ConditionCheckItem => "dynamodb:ConditionCheckItem",
            Action::GenerateDataKey => "kms:GenerateDataKey",
            Action::Decrypt => "kms:Decrypt",
            Action::GetRootSecret => "secretsmanager:GetSecretValue",
        }
    }

    pub const fn resource(self) -> Resource {
        match self {
            Action::GenerateDataKey | Action::Decrypt => Resource::Key,
            Action::GetRootSecret => Resource::RootSecret,
            _ => Resource::Table,
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of actions, built in `const` context: `Policy::of(&[GetItem, Query])`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy(u16);

impl Policy {
    pub const NONE: Policy = Policy(0);

    pub const fn of(actions: &[Action]) -> Policy {
        Policy::NONE.with(actions)
    }

    pub const fn with(self, actions: &[Action]) -> Policy {
        let mut bits = self.0;
        let mut i = 0;
        while i < actions.len() {
            bits |= actions[i].bit();
            i += 1;
        }
        Policy(bits)
    }

    pub const fn allows(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    pub fn actions(self) -> impl Iterator<Item = Action> {
        ALL.into_iter().filter(move |a| self.allows(*a))
    }
}

/// What the signed request pipeline itself does for every SDK and operator request: read the
/// key (and its parent, owner and counters), write the audit row and nonce, raise rate-limit
/// counters and `last_used_at`.
pub const PIPELINE: Policy = Policy::of(&[
    Action::GetItem,
    Action::BatchGetItem,
    Action::PutItem,
    Action::UpdateItem,
]);

#[derive(Clone, Copy)]
struct Scope {
    operation: &'static str,
    policy: Policy,
}

tokio::task_local! {
    static CURRENT: Scope;
}

/// Runs `fut` as `operation`, holding it to `policy`.
pub async fn scope<F: Future>(operation: &'static str, policy: Policy, fut: F) -> F::Output {
    CURRENT.scope(Scope { operation, policy }, fut).await
}

/// Refuses an action the current operation's policy does not name, as IAM would. Outside
/// any operation (set-up, tests preparing data) everything is allowed.
pub fn require(action: Action) -> Result<(), ApiError> {
    let Ok(scope) = CURRENT.try_with(|s| *s) else {
        return Ok(());
    };
    record(scope.operation, action);
    if scope.policy.allows(action) {
        return Ok(());
    }
    tracing::error!(
        operation = scope.operation,
        action = action.iam(),
        "the operation's IAM policy does not allow this action: add it to the operation's `IAM`"
    );
    Err(ApiError::internal())
}

static SEEN: Mutex<Option<HashSet<(&'static str, Action)>>> = Mutex::new(None);

/// With `PORTCULLIS_IAM_LOG` set, appends each (operation, action) pair the first time this
/// process sees it: the test command compares the union with the declared policies.
fn record(operation: &'static str, action: Action) {
    let Some(path) = std::env::var_os("PORTCULLIS_IAM_LOG") else {
        return;
    };
    let mut seen = SEEN.lock().expect("iam log");
    if !seen
        .get_or_insert_with(HashSet::new)
        .insert((operation, action))
    {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{operation} {}", action.iam());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_operation_is_held_to_its_policy() {
        let p = Policy::of(&[Action::GetItem]);
        scope("op", p, async {
            assert!(require(Action::GetItem).is_ok());
            assert_eq!(require(Action::Query).unwrap_err().status, 500);
        })
        .await;
        assert!(require(Action::Query).is_ok(), "outside an operation");
    }

    #[test]
    fn policies_compose() {
        let p = PIPELINE.with(&[Action::Decrypt]);
        assert!(p.allows(Action::Decrypt) && p.allows(Action::GetItem));
        assert!(!p.allows(Action::DeleteItem));
        assert_eq!(p.actions().count(), 5);
    }
}
