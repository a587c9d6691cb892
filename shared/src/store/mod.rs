//! The single-table store: a thin layer over DynamoDB that every operation goes through,
//! so that each call is counted and timed (the benchmark's round-trip figures come from here).

pub mod keys;
pub mod table;

use crate::error::ApiError;
use crate::iam::{self, Action};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, KeysAndAttributes, Put,
    TransactWriteItem, Update,
};
pub use keys::ItemKey;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub type Item = HashMap<String, AttributeValue>;

/// One DynamoDB call as the store saw it: which API, when it started and ended.
#[derive(Debug, Clone)]
pub struct CallSpan {
    pub api: &'static str,
    pub start: Instant,
    pub end: Instant,
}

/// Per-instance record of DynamoDB calls. Lambda runs one request at a time per instance,
/// so draining it after a request gives that request's calls.
#[derive(Default)]
pub struct CallLog(Mutex<Vec<CallSpan>>);

impl CallLog {
    fn record(&self, api: &'static str, start: Instant) {
        let mut log = self.0.lock().expect("call log");
        if log.len() < 10_000 {
            log.push(CallSpan {
                api,
                start,
                end: Instant::now(),
            });
        }
    }

    pub fn drain(&self) -> Vec<CallSpan> {
        std::mem::take(&mut *self.0.lock().expect("call log"))
    }
}

/// Longest chain of calls where each starts after the previous one ended: the number of
/// round trips a request waits for in sequence.
pub fn sequential_depth(calls: &[CallSpan]) -> usize {
    let mut sorted: Vec<&CallSpan> = calls.iter().collect();
    sorted.sort_by_key(|c| c.end);
    let mut depth = 0;
    let mut chain_end: Option<Instant> = None;
    for c in sorted {
        if chain_end.is_none_or(|end| c.start >= end) {
            depth += 1;
            chain_end = Some(c.end);
        }
    }
    depth
}

/// A write inside a transaction.
pub enum Write {
    Put {
        item: Item,
        condition: Option<Condition>,
    },
    Update {
        key: ItemKey,
        update: String,
        condition: Option<String>,
        names: Vec<(String, String)>,
        values: Vec<(String, AttributeValue)>,
    },
    Delete {
        key: ItemKey,
        condition: Option<Condition>,
    },
    Check {
        key: ItemKey,
        condition: Condition,
    },
}

impl Write {
    /// The IAM action this write needs, alone or inside a transaction.
    fn action(&self) -> Action {
        match self {
            Write::Put { .. } => Action::PutItem,
            Write::Update { .. } => Action::UpdateItem,
            Write::Delete { .. } => Action::DeleteItem,
            Write::Check { .. } => Action::ConditionCheckItem,
        }
    }
}

/// A condition expression with its placeholders.
#[derive(Clone, Default)]
pub struct Condition {
    pub expression: String,
    pub names: Vec<(String, String)>,
    pub values: Vec<(String, AttributeValue)>,
}

impl Condition {
    pub fn new(expression: &str) -> Self {
        Self {
            expression: expression.to_string(),
            ..Default::default()
        }
    }
    pub fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .push((placeholder.to_string(), attribute.to_string()));
        self
    }
    pub fn value(mut self, name: &str, v: AttributeValue) -> Self {
        self.values.push((name.to_string(), v));
        self
    }
    /// The item must not exist yet.
    pub fn absent() -> Self {
        Self::new("attribute_not_exists(pk)")
    }
    /// The item must exist.
    pub fn present() -> Self {
        Self::new("attribute_exists(pk)")
    }
}

/// Why a transaction did not commit.
#[derive(Debug)]
pub enum TxError {
    /// A condition failed: the index of each write whose condition failed.
    ConditionFailed(Vec<usize>),
    Unavailable(ApiError),
}

impl From<TxError> for ApiError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::ConditionFailed(_) => ApiError::conflict(
                "write_conflict",
                "the write conflicted with another change; retry",
            ),
            TxError::Unavailable(e) => e,
        }
    }
}

pub struct Store {
    client: Client,
    table: String,
    pub calls: CallLog,
}

/// A page of query results and the key to continue from.
pub struct Page {
    pub items: Vec<Item>,
    pub last_key: Option<Item>,
}

#[derive(Clone)]
pub struct Query<'a> {
    pub index: Option<&'a str>,
    pub partition: String,
    pub sort_prefix: Option<String>,
    /// Only sort keys strictly before (or after, when ascending) this one.
    pub sort_before: Option<String>,
    pub forward: bool,
    pub limit: Option<i32>,
    pub start: Option<Item>,
    pub consistent: bool,
}

impl<'a> Query<'a> {
    pub fn partition(partition: String) -> Self {
        Self {
            index: None,
            partition,
            sort_prefix: None,
            sort_before: None,
            forward: true,
            limit: None,
            start: None,
            consistent: false,
        }
    }
    pub fn index(partition: String, index: &'a str) -> Self {
        Self {
            index: Some(index),
            ..Self::partition(partition)
        }
    }
}

fn key_item(key: &ItemKey) -> Item {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(key.pk.clone())),
        ("sk".to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

/// Maps a DynamoDB failure: throttling and service faults are retryable (503 with
/// `Retry-After`); a request DynamoDB refuses as invalid is our bug, not a reason to retry.
fn unavailable<E, R>(api: &str, e: SdkError<E, R>) -> ApiError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
{
    // Never log the request: it may carry sealed secrets. The error code is enough.
    let code = e
        .as_service_error()
        .and_then(|se| se.code())
        .unwrap_or("transport")
        .to_string();
    if code == "ValidationException" {
        tracing::error!(api, code, "dynamodb refused a request as invalid");
        return ApiError::internal();
    }
    tracing::warn!(api, code, "dynamodb call failed");
    ApiError::unavailable("storage is temporarily unavailable; retry")
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            calls: CallLog::default(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn get(&self, key: &ItemKey, consistent: bool) -> Result<Option<Item>, ApiError> {
        iam::require(Action::GetItem)?;
        let start = Instant::now();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .consistent_read(consistent)
            .send()
            .await;
        self.calls.record("GetItem", start);
        Ok(out.map_err(|e| unavailable("GetItem", e))?.item)
    }

    /// Strongly consistent reads of several items in one round trip, answered in request order.
    pub async fn get_many(&self, keys: &[ItemKey]) -> Result<Vec<Option<Item>>, ApiError> {
        iam::require(Action::BatchGetItem)?;
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        // BatchGetItem takes at most 100 keys.
        for chunk in dedup(keys).chunks(100) {
            self.get_chunk(chunk, &mut found).await?;
        }
        Ok(keys
            .iter()
            .map(|k| found.get(&(k.pk.clone(), k.sk.clone())).cloned())
            .collect())
    }

    async fn get_chunk(
        &self,
        keys: &[ItemKey],
        found: &mut HashMap<(String, String), Item>,
    ) -> Result<(), ApiError> {
        let mut pending: Vec<Item> = keys.iter().map(key_item).collect();
        for _ in 0..5 {
            if pending.is_empty() {
                break;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|_| ApiError::internal())?;
            let start = Instant::now();
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await;
            self.calls.record("BatchGetItem", start);
            let out = out.map_err(|e| unavailable("BatchGetItem", e))?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(&self.table)
                .unwrap_or_default()
            {
                let pk = s(&item, "pk").unwrap_or_default().to_string();
                let sk = s(&item, "sk").unwrap_or_default().to_string();
                found.insert((pk, sk), item);
            }
            if let Some(mut rest) = out.unprocessed_keys
                && let Some(again) = rest.remove(&self.table)
            {
                pending = again.keys;
            }
        }
        if !pending.is_empty() {
            return Err(ApiError::unavailable("storage is throttling reads; retry"));
        }
        Ok(())
    }

    pub async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TxError> {
        self.transact(vec![Write::Put { item, condition }]).await
    }

    /// All-or-nothing writes. A single write goes out as a plain conditional request.
    pub async fn transact(&self, writes: Vec<Write>) -> Result<(), TxError> {
        for w in &writes {
            iam::require(w.action()).map_err(TxError::Unavailable)?;
        }
        if writes.len() == 1 && !matches!(writes[0], Write::Check { .. }) {
            return self
                .single(writes.into_iter().next().expect("one write"))
                .await;
        }
        let items: Vec<TransactWriteItem> = writes.into_iter().map(|w| self.tx_item(w)).collect();
        let start = Instant::now();
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        self.calls.record("TransactWriteItems", start);
        match out {
            Ok(_) => Ok(()),
            Err(e) => {
                let reasons: Option<Vec<CancellationReason>> = e
                    .as_service_error()
                    .and_then(|se| match se {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(tc) => {
                            Some(tc.cancellation_reasons().to_vec())
                        }
                        _ => None,
                    });
                match reasons {
                    Some(reasons)
                        if reasons
                            .iter()
                            .any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                    {
                        Err(TxError::ConditionFailed(
                            reasons
                                .iter()
                                .enumerate()
                                .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                                .map(|(i, _)| i)
                                .collect(),
                        ))
                    }
                    _ => Err(TxError::Unavailable(unavailable("TransactWriteItems", e))),
                }
            }
        }
    }

    async fn single(&self, write: Write) -> Result<(), TxError> {
        let start = Instant::now();
        let (api, result) = match write {
            Write::Put { item, condition } => {
                let c = condition.unwrap_or_default();
                let r = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .set_condition_expression(non_empty(c.expression))
                    .set_expression_attribute_names(map(c.names))
                    .set_expression_attribute_values(map(c.values))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        let cond = e
                            .as_service_error()
                            .is_some_and(|se| se.is_conditional_check_failed_exception());
                        (cond, unavailable("PutItem", e))
                    });
                ("PutItem", r)
            }
            Write::Update {
                key,
                update,
                condition,
                names,
                values,
            } => {
                let r = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_item(&key)))
                    .update_expression(update)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(map(names))
                    .set_expression_attribute_values(map(values))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        let cond = e
                            .as_service_error()
                            .is_some_and(|se| se.is_conditional_check_failed_exception());
                        (cond, unavailable("UpdateItem", e))
                    });
                ("UpdateItem", r)
            }
            Write::Delete { key, condition } => {
                let c = condition.unwrap_or_default();
                let r = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key_item(&key)))
                    .set_condition_expression(non_empty(c.expression))
                    .set_expression_attribute_names(map(c.names))
                    .set_expression_attribute_values(map(c.values))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        let cond = e
                            .as_service_error()
                            .is_some_and(|se| se.is_conditional_check_failed_exception());
                        (cond, unavailable("DeleteItem", e))
                    });
                ("DeleteItem", r)
            }
            Write::Check { .. } => unreachable!("checks go through transact_write_items"),
        };
        self.calls.record(api, start);
        result.map_err(|(cond, e)| {
            if cond {
                TxError::ConditionFailed(vec![0])
            } else {
                TxError::Unavailable(e)
            }
        })
    }

    fn tx_item(&self, w: Write) -> TransactWriteItem {
        let t = &self.table;
        match w {
            Write::Put { item, condition } => {
                let c = condition.unwrap_or_default();
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(t)
                            .set_item(Some(item))
                            .set_condition_expression(non_empty(c.expression))
                            .set_expression_attribute_names(map(c.names))
                            .set_expression_attribute_values(map(c.values))
                            .build()
                            .expect("put has table and item"),
                    )
                    .build()
            }
            Write::Update {
                key,
                update,
                condition,
                names,
                values,
            } => TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(t)
                        .set_key(Some(key_item(&key)))
                        .update_expression(update)
                        .set_condition_expression(condition)
                        .set_expression_attribute_names(map(names))
                        .set_expression_attribute_values(map(values))
                        .build()
                        .expect("update has table, key and expression"),
                )
                .build(),
            Write::Delete { key, condition } => {
                let c = condition.unwrap_or_default();
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(t)
                            .set_key(Some(key_item(&key)))
                            .set_condition_expression(non_empty(c.expression))
                            .set_expression_attribute_names(map(c.names))
                            .set_expression_attribute_values(map(c.values))
                            .build()
                            .expect("delete has table and key"),
                    )
                    .build()
            }
            Write::Check { key, condition } => TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(t)
                        .set_key(Some(key_item(&key)))
                        .condition_expression(condition.expression)
                        .set_expression_attribute_names(map(condition.names))
                        .set_expression_attribute_values(map(condition.values))
                        .build()
                        .expect("check has table, key and condition"),
                )
                .build(),
        }
    }

    pub async fn query(&self, q: Query<'_>) -> Result<Page, ApiError> {
        iam::require(Action::Query)?;
        let pk_name = match q.index {
            Some(index) => format!("{index}pk"),
            None => "pk".to_string(),
        };
        let sk_name = match q.index {
            Some(index) => format!("{index}sk"),
            None => "sk".to_string(),
        };
        let mut expr = "#pk = :pk".to_string();
        let mut values = HashMap::from([(":pk".to_string(), AttributeValue::S(q.partition))]);
        let mut names = HashMap::from([("#pk".to_string(), pk_name)]);
        if let Some(prefix) = q.sort_prefix {
            expr.push_str(" AND begins_with(#sk, :prefix)");
            values.insert(":prefix".into(), AttributeValue::S(prefix));
            names.insert("#sk".into(), sk_name.clone());
        } else if let Some(bound) = q.sort_before {
            expr.push_str(if q.forward {
                " AND #sk > :bound"
            } else {
                " AND #sk < :bound"
            });
            values.insert(":bound".into(), AttributeValue::S(bound));
            names.insert("#sk".into(), sk_name.clone());
        }
        let start = Instant::now();
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.map(str::to_string))
            .key_condition_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(q.forward)
            .set_limit(q.limit)
            .set_exclusive_start_key(q.start)
            .consistent_read(q.consistent && q.index.is_none())
            .send()
            .await;
        self.calls.record("Query", start);
        let out = out.map_err(|e| unavailable("Query", e))?;
        Ok(Page {
            items: out.items.unwrap_or_default(),
            last_key: out.last_evaluated_key,
        })
    }
}

impl Store {
    /// Every item a query matches, following pages, as records.
    pub async fn query_all<T: serde::de::DeserializeOwned>(
        &self,
        q: Query<'_>,
    ) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::new();
        let mut next = Some(q);
        while let Some(q) = next.take() {
            let again = Query {
                start: None,
                ..q.clone()
            };
            let page = self.query(q).await?;
            for item in page.items {
                out.push(from_item(item)?);
            }
            if let Some(k) = page.last_key {
                next = Some(Query {
                    start: Some(k),
                    ..again
                });
            }
        }
        Ok(out)
    }
}

fn dedup(keys: &[ItemKey]) -> Vec<ItemKey> {
    let mut seen = std::collections::HashSet::new();
    keys.iter()
        .filter(|k| seen.insert((*k).clone()))
        .cloned()
        .collect()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn map<V>(pairs: Vec<(String, V)>) -> Option<HashMap<String, V>> {
    (!pairs.is_empty()).then(|| pairs.into_iter().collect())
}

pub fn s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// Builds an item from a serialisable record plus its table keys and index keys.
pub fn to_item<T: serde::Serialize>(record: &T, key: &ItemKey, index: &[(&str, String)]) -> Item {
    let mut item: Item = serde_dynamo::to_item(record).expect("records serialise to maps");
    item.insert("pk".into(), AttributeValue::S(key.pk.clone()));
    item.insert("sk".into(), AttributeValue::S(key.sk.clone()));
    for (name, value) in index {
        item.insert((*name).to_string(), AttributeValue::S(value.clone()));
    }
    item
}

pub fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, ApiError> {
    serde_dynamo::from_item(item).map_err(|e| {
        tracing::error!(error = %e, "stored item does not match its record type");
        ApiError::internal()
    })
}
