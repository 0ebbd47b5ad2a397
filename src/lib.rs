//! liandong (联动): multi-level federation sync for CPPCC linked consultation (联动协商).
//!
//! Every committee runs a node. Nodes exchange signed, append-only events over gRPC along
//! the committee tree (child dials parent); each node stores exactly what is visible to
//! itself or its subtree, and derives the state of every record as a pure function of the
//! set of that record's events.
//!
//! The map of the crate, from the pure core outwards:
//! - [`domain`]: pure. Committees and the tree ([`domain::roster`]), who may see an event
//!   ([`domain::audience`]), who may author it ([`domain::authz`]), and the records' state
//!   machines (the fold: [`domain::record`]). Knows nothing of sled, tonic or the clock.
//! - [`event`]: the envelope: encode once, sign, verify, hash chain, hybrid logical clock.
//! - [`store`]: the [`store::Storage`] trait, its sled and in-memory engines, and the node's
//!   keyspaces (events, log, indexes, derived state, cursors, quarantine) on top.
//! - [`node`]: a running node: the ingest pipeline (verify → authorize → persist → fold)
//!   with group commit, and the local operations of a committee.
//! - [`sync`]: one link: the stream protocol, batching, cursors, backfill, reconnects;
//!   links follow the tree, plus lateral links between the roots of federations that
//!   share a lateral group (协作组: [`domain::record::group`], [`node::lateral`]).
//! - [`api`]: the gRPC services (`Federation` for nodes, `Committee` for local clients).
//! - [`tls`]: mutual TLS between nodes: the federation's private CA, node certificates
//!   that name their committee, and reading the committee from a peer's certificate.
//! - [`console`]: a read-only web page for people on the local API's port.
//! - [`telemetry`]: gRPC health and reflection, Prometheus metrics.
//! - [`backup`]: export, import and verification of a node's store.
//! - [`invariants`]: the checks of a settled federation's stores (nothing acknowledged lost,
//!   nothing out of scope, nothing twice, the same state everywhere, nothing forged, no gaps),
//!   shared by the simulation ([`sim`]) and the crash test of real processes.
//! - [`cli`] and [`demo`]: the `liandong` command; [`bench`]: `liandong bench`, the
//!   performance suite.
pub mod api;
pub mod backup;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod demo;
pub mod demo_lateral;
pub mod domain;
pub mod error;
pub mod event;
pub mod fixture;
pub mod fixture_groups;
pub mod fuzzing;
pub mod invariants;
pub mod memory;
pub mod node;
pub mod server;
pub mod sim;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tls;

pub use error::{Error, Result};

/// Generated protobuf types of `proto/liandong/v1/`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("liandong.v1");

    /// The encoded descriptors of `proto/liandong/v1/*.proto` (written by build.rs), served
    /// by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("liandong_descriptor");
}
