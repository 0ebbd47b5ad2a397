//! The pure core: committees and their tree, who may see an event, who may author it, and the
//! state machines of the records. Nothing here touches storage, the network or the clock.
//!
//! Laws this module keeps (tested in each file and by property tests):
//! 1. A record's state is a function of the *set* of its events: [`record::fold`] sorts by
//!    [`OrderKey`] (hlc, origin, seq) and ignores duplicates.
//! 2. Every record has one owner; a transition by anyone else is refused and the refusal is
//!    recorded in the record's history with its reason, never silently dropped.
//! 3. Visibility ([`audience`]) depends only on the event's audience, its author and the
//!    committee tree, which only grows.
pub mod audience;
pub mod authz;
pub mod ids;
pub mod record;
pub mod roster;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::pb;

pub use roster::{KeyEpoch, Member, Roster};

/// Why an event was refused at ingest. Each refused event goes to the quarantine with this.
#[derive(Debug, Clone, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("unknown author: {0}")]
    UnknownAuthor(String),
    #[error("revoked key: {0}")]
    Revoked(String),
    #[error("broken hash chain: {0}")]
    BrokenChain(String),
    #[error("equivocation: {0}")]
    Equivocation(String),
    #[error("not allowed: {0}")]
    Unauthorized(String),
    #[error("out of scope: {0}")]
    OutOfScope(String),
    #[error("timestamp too far in the future: {0}")]
    FutureTimestamp(String),
    /// A lateral group's event that this node cannot place yet: the charter (or the
    /// proposal, or the member's admission) it depends on has not arrived or taken effect.
    #[error("waiting for a lateral group's charter: {0}")]
    AwaitingCharter(String),
}

impl Refusal {
    /// A refusal that may clear once more of the roster has arrived. Out of scope is one:
    /// a node's own registration (or a descendant's) can come later in the sender's log than
    /// the events it makes visible here — a county registered after its city's notices gets
    /// them first (found by the simulation; `tests/sim.rs`).
    pub fn may_clear_later(&self) -> bool {
        matches!(
            self,
            Refusal::UnknownAuthor(_) | Refusal::AwaitingCharter(_) | Refusal::OutOfScope(_)
        )
    }
}

/// A 6-digit GB/T 2260 region code; "000000" is the national committee.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CommitteeCode(String);

impl CommitteeCode {
    pub fn parse(text: &str) -> Result<CommitteeCode, String> {
        if text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(CommitteeCode(text.to_string()))
        } else {
            Err(format!(
                "'{text}' is not a committee code: use the 6-digit region code (GB/T 2260), e.g. 620000 for Gansu, or 000000 for the national committee"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CommitteeCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 层级.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    National,
    Province,
    City,
    County,
}

impl Level {
    pub fn from_pb(v: i32) -> Option<Level> {
        match pb::Level::try_from(v).ok()? {
            pb::Level::National => Some(Level::National),
            pb::Level::Province => Some(Level::Province),
            pb::Level::City => Some(Level::City),
            pb::Level::County => Some(Level::County),
            pb::Level::Unspecified => None,
        }
    }
    pub fn to_pb(self) -> pb::Level {
        match self {
            Level::National => pb::Level::National,
            Level::Province => pb::Level::Province,
            Level::City => pb::Level::City,
            Level::County => pb::Level::County,
        }
    }
    /// The level a region code implies: "000000" national, "xx0000" province, "xxxx00" city,
    /// anything else a county. (Some county-level cities end in 00 too; the registration's
    /// explicit level wins, this is only a default for the CLI.)
    pub fn implied_by(code: &str) -> Level {
        if code == "000000" {
            Level::National
        } else if code.ends_with("0000") {
            Level::Province
        } else if code.ends_with("00") {
            Level::City
        } else {
            Level::County
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Level::National => "national",
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
        }
    }
    pub fn parse(text: &str) -> Result<Level, String> {
        match text {
            "national" => Ok(Level::National),
            "province" => Ok(Level::Province),
            "city" => Ok(Level::City),
            "county" => Ok(Level::County),
            _ => Err(format!(
                "'{text}' is not a level: use national, province, city or county"
            )),
        }
    }
}

/// The canonical order of a record's events: hybrid clock, then origin, then seq.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderKey {
    pub hlc: u64,
    pub origin: String,
    pub seq: u64,
}

/// The part of an event that the fold reads: no bytes, no signature.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    pub id: Uuid,
    pub origin: String,
    pub seq: u64,
    pub hlc: u64,
    pub audience: pb::audience::Kind,
    pub body: pb::event::Body,
}

impl Fact {
    pub fn order_key(&self) -> OrderKey {
        OrderKey {
            hlc: self.hlc,
            origin: self.origin.clone(),
            seq: self.seq,
        }
    }
}

impl Fact {
    /// The fold's view of an event; None for a kind this version does not know.
    pub fn of(env: &crate::event::Envelope) -> Option<Fact> {
        Some(Fact {
            id: env.id,
            origin: env.event.origin.clone(),
            seq: env.event.seq,
            hlc: env.event.hlc,
            audience: env.audience().clone(),
            body: env.body()?.clone(),
        })
    }
}

/// Reads a 16-byte UUID field of an event body.
pub fn uuid_field(bytes: &[u8], field: &str) -> Result<Uuid, String> {
    Uuid::from_slice(bytes)
        .map_err(|_| format!("{field} is {} bytes, not a 16-byte UUID", bytes.len()))
}
