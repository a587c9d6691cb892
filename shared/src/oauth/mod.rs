//! OAuth grants: talking to providers, the Connect flow's tokens, and refresh.

pub mod bearer;
pub mod client;
pub mod connect;
pub mod refresh;
pub mod tokens;
