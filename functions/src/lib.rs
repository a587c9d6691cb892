//! Portcullis Lambda functions: one operation per module in `ops/`, the route table that names
//! them, and the two adapters that feed them requests (API Gateway via Lambda, and the local
//! HTTP server).

pub mod lambda;
pub mod local;
pub mod ops;
pub mod routes;
pub mod web;
