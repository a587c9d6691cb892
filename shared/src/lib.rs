//! Portcullis domain crate: everything the Lambda functions share.

pub mod apikey;
pub mod audit;
pub mod cidr;
pub mod context;
pub mod crypto;
pub mod destination;
pub mod error;
pub mod http;
pub mod iam;
pub mod idp;
pub mod model;
pub mod oauth;
pub mod outbound;
pub mod pipeline;
pub mod policy;
pub mod providers;
pub mod ratelimit;
pub mod rule;
pub mod scopes;
pub mod service;
pub mod setup;
pub mod signing;
pub mod store;
pub mod views;
pub mod wire;

pub use context::Ctx;
pub use error::{ApiError, ApiResult};
pub use http::{ApiRequest, ApiResponse};
