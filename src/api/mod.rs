//! The gRPC services of a node: `Federation` (node ↔ node sync) and `Committee` (the local
//! API). Both are thin: they translate between protobuf and the node's operations and views.
pub mod auth;
pub mod committee;
pub mod federation;

pub use committee::CommitteeService;
pub use federation::FederationService;
