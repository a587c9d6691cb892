//! The table definition has one source, `infra/table.json` (CreateTable's input shape). The
//! local bootstrap creates the table from it here; `infra/` and `localstack/` read the same file.

use crate::error::ApiError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use serde::Deserialize;

pub const DEFINITION: &str = include_str!("../../../infra/table.json");

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Definition {
    table_name: String,
    attribute_definitions: Vec<Attr>,
    key_schema: Vec<KeyElem>,
    global_secondary_indexes: Vec<Gsi>,
    time_to_live_specification: Ttl,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attr {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyElem {
    attribute_name: String,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Gsi {
    index_name: String,
    key_schema: Vec<KeyElem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ttl {
    attribute_name: String,
}

fn definition() -> Definition {
    serde_json::from_str(DEFINITION).expect("infra/table.json is valid")
}

/// The table name in `infra/table.json`, the default when `PORTCULLIS_TABLE` is unset.
pub fn default_table_name() -> String {
    definition().table_name
}

fn key_schema(elems: &[KeyElem]) -> Vec<KeySchemaElement> {
    elems
        .iter()
        .map(|e| {
            KeySchemaElement::builder()
                .attribute_name(&e.attribute_name)
                .key_type(KeyType::from(e.key_type.as_str()))
                .build()
                .expect("key schema element")
        })
        .collect()
}

/// Creates the table (and its TTL setting) unless it exists. Returns whether it was created.
pub async fn ensure_table(client: &Client, table_name: &str) -> Result<bool, ApiError> {
    let def = definition();
    if client
        .describe_table()
        .table_name(table_name)
        .send()
        .await
        .is_ok()
    {
        return Ok(false);
    }
    let attrs = def
        .attribute_definitions
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
                .expect("attribute definition")
        })
        .collect();
    let gsis = def
        .global_secondary_indexes
        .iter()
        .map(|g| {
            GlobalSecondaryIndex::builder()
                .index_name(&g.index_name)
                .set_key_schema(Some(key_schema(&g.key_schema)))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("gsi")
        })
        .collect();
    client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attrs))
        .set_key_schema(Some(key_schema(&def.key_schema)))
        .set_global_secondary_indexes(Some(gsis))
        .send()
        .await
        .map_err(|e| {
            tracing::error!(error = ?e, "create table failed");
            ApiError::unavailable("could not create the table")
        })?;
    client
        .update_time_to_live()
        .table_name(table_name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(&def.time_to_live_specification.attribute_name)
                .enabled(true)
                .build()
                .expect("ttl spec"),
        )
        .send()
        .await
        .map_err(|e| {
            tracing::error!(error = ?e, "update ttl failed");
            ApiError::unavailable("could not enable TTL")
        })?;
    Ok(true)
}
