//! Domain operations shared by the handlers: each builds the records and the writes that the
//! pipeline commits together with the audit row.

pub mod agents;
pub mod approvals;
pub mod delegations;
pub mod grants;
pub mod keys;
pub mod orgs;
pub mod providers;
pub mod secret_connect;
pub mod secrets;
pub mod token;
pub mod validate;
