//! Portcullis Lambda functions: one operation per module in `ops/`, the route table that names
//! them, and the two adapters that feed them requests (API Gateway via Lambda, and the local
//! HTTP server), and the deployment template generated from the route table.

pub mod approvals;
pub mod lambda;
pub mod local;
pub mod metrics;
pub mod ops;
pub mod proxy;
pub mod routes;
pub mod runtime;
pub mod template;
pub mod web;
