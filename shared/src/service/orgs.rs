//! Organisations, their members and the operator keys members hold.

use super::keys::{self as key_service, NewKey};
use crate::apikey::KeyType;
use crate::error::ApiError;
use crate::model::{App, KeyOwner, Member, Org, Role};
use crate::store::{Condition, Item, Query, Store, Write, keys, to_item};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use uuid::Uuid;

pub fn org_item(o: &Org) -> Item {
    to_item(o, &keys::org(o.org_id), &[])
}

pub fn member_item(m: &Member) -> Item {
    to_item(m, &keys::org_member(m.org_id, m.member_id), &[])
}

pub fn app_items(a: &App) -> Vec<Write> {
    vec![
        Write::Put {
            item: to_item(a, &keys::app(a.app_id), &[]),
            condition: Some(Condition::absent()),
        },
        Write::Put {
            item: to_item(a, &keys::org_app(a.org_id, a.app_id), &[]),
            condition: Some(Condition::absent()),
        },
    ]
}

/// A new member with a first operator key (shown once).
pub fn new_member(
    org_id: Uuid,
    email: String,
    role: Role,
    now: OffsetDateTime,
) -> (Member, NewKey, Vec<Write>) {
    let member = Member {
        org_id,
        member_id: Uuid::new_v4(),
        email,
        role,
        created_at: now,
        removed_at: None,
    };
    let key = operator_key(&member, "default".into(), now);
    let mut writes = vec![Write::Put {
        item: member_item(&member),
        condition: Some(Condition::absent()),
    }];
    writes.extend(key_service::create_writes(&key.record));
    (member, key, writes)
}

/// Operator keys carry no scopes: what they may do follows the member's role.
pub fn operator_key(member: &Member, name: String, now: OffsetDateTime) -> NewKey {
    key_service::mint(
        KeyOwner::Member {
            org_id: member.org_id,
            member_id: member.member_id,
        },
        KeyType::Pk,
        name,
        Vec::new(),
        None,
        now,
    )
}

/// One collection of the organisation partition (`keys::ORG_MEMBERS`, `ORG_KEYS`, `ORG_APPS`).
pub async fn collection<T: DeserializeOwned>(
    store: &Store,
    org_id: Uuid,
    prefix: &str,
) -> Result<Vec<T>, ApiError> {
    let mut q = Query::partition(keys::org_partition(org_id));
    q.sort_prefix = Some(prefix.to_string());
    q.consistent = true;
    store.query_all(q).await
}
