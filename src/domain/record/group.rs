//! 协作组章程: the charter of a lateral group of committees (provinces) from different
//! federations, and which version of it is in force.
//!
//! A charter version is a proposal by a member; every listed member endorses it with its own
//! key. Version 1 founds the group and is in force once **every** member it lists has endorsed
//! it (the proposer's proposal counts as its endorsement): each member's endorsement, signed
//! with its federation's trust-anchor key, is its operator's act of trust in the keys the
//! charter lists for the others. Version n+1 amends the version in force (it names its
//! digest): it may add members and host years and rename the group, never drop a member,
//! change a key or change the host of a year already named; it is in force once a
//! **majority** of the members in force and **every member it adds** have endorsed it. So
//! membership and hosts only grow, which keeps visibility monotone (a node never has to
//! forget what it was entitled to), and no key enters without its holder's signature.
//!
//! Competing proposals of one version may stand side by side; the first (in the canonical
//! order) to gather its endorsements takes effect and the others are superseded. The record
//! has no single owner: each proposal and each endorsement is its author's own statement,
//! and nothing in it is ever overwritten.
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Machine;
use crate::domain::roster::{Charter, GroupRoster};
use crate::domain::{Fact, Roster};
use crate::pb::{self, event::Body};

/// Largest group id, in bytes: it is part of the record key (16 bytes, zero-padded).
pub const MAX_GROUP_ID: usize = 16;

/// Checks a group id: 1–16 characters of a-z, 0-9 and '-'.
pub fn check_group_id(id: &str) -> Result<(), String> {
    if !id.is_empty()
        && id.len() <= MAX_GROUP_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(())
    } else {
        Err(format!(
            "'{id}' is not a group id: use 1 to {MAX_GROUP_ID} characters of a-z, 0-9 and '-', e.g. yellow-river-9"
        ))
    }
}

/// The digest that names a charter version: SHA-256 over its content in a fixed,
/// length-prefixed encoding (members sorted by code, hosts by year) — never over protobuf
/// bytes, which are not canonical. Endorsements and amendments refer to versions by it.
pub fn charter_digest(p: &pb::GroupCharterProposed) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(b"liandong group charter v1");
    field(p.group_id.as_bytes());
    field(p.name.as_bytes());
    field(&p.version.to_be_bytes());
    field(&p.amends);
    let mut members: Vec<&pb::GroupMember> = p.members.iter().collect();
    members.sort_by(|a, b| a.code.cmp(&b.code));
    field(&(members.len() as u64).to_be_bytes());
    for m in members {
        field(m.code.as_bytes());
        field(m.name.as_bytes());
        field(&m.public_key);
    }
    let mut hosts: Vec<&pb::GroupHostTerm> = p.hosts.iter().collect();
    hosts.sort_by_key(|t| t.year);
    field(&(hosts.len() as u64).to_be_bytes());
    for t in hosts {
        field(&t.year.to_be_bytes());
        field(t.code.as_bytes());
    }
    h.finalize().into()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalStatus {
    /// Waiting for endorsements.
    #[default]
    Pending,
    /// The charter in force.
    InForce,
    /// Was in force; a later version replaced it.
    Replaced,
    /// Another proposal of the same version took effect first.
    Superseded,
}

impl ProposalStatus {
    pub fn name(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::InForce => "in force",
            ProposalStatus::Replaced => "replaced",
            ProposalStatus::Superseded => "superseded",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub name: String,
    /// The member's key, hex.
    pub key: String,
}

/// One charter version as proposed, with who has endorsed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// [`charter_digest`], hex.
    pub digest: String,
    pub version: u32,
    /// The digest (hex) of the version it amends; empty for version 1.
    pub amends: String,
    pub name: String,
    pub proposer: String,
    pub members: BTreeMap<String, MemberEntry>,
    pub hosts: BTreeMap<u32, String>,
    pub endorsed_by: BTreeSet<String>,
    pub status: ProposalStatus,
}

impl Proposal {
    /// Who still has to endorse it for it to take effect, given the charter in force it
    /// amends (None for version 1): every member for version 1; for an amendment, every
    /// added member, and enough of the members in force for a majority.
    pub fn missing(&self, in_force: Option<&Proposal>) -> (BTreeSet<String>, usize) {
        match in_force {
            None => (
                self.members
                    .keys()
                    .filter(|m| !self.endorsed_by.contains(*m))
                    .cloned()
                    .collect(),
                0,
            ),
            Some(prev) => {
                let added: BTreeSet<String> = self
                    .members
                    .keys()
                    .filter(|m| !prev.members.contains_key(*m) && !self.endorsed_by.contains(*m))
                    .cloned()
                    .collect();
                let have = prev
                    .members
                    .keys()
                    .filter(|m| self.endorsed_by.contains(*m))
                    .count();
                let need = prev.members.len() / 2 + 1;
                (added, need.saturating_sub(have))
            }
        }
    }
}

/// The charter record of one group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    /// Every proposal the fold accepted, in canonical order.
    pub proposals: Vec<Proposal>,
    /// Index of the proposal in force.
    pub in_force: Option<usize>,
    /// Every committee any proposal of the set names, accepted or not (one that could not be
    /// placed yet, e.g. an amendment whose base has not arrived, still tells where the
    /// charter's events go).
    #[serde(default)]
    pub named: BTreeSet<String>,
}

impl Group {
    pub fn in_force(&self) -> Option<&Proposal> {
        self.in_force.and_then(|i| self.proposals.get(i))
    }

    /// The host the charter in force names for `year`.
    pub fn host(&self, year: u32) -> Option<&str> {
        self.in_force()?.hosts.get(&year).map(String::as_str)
    }

    /// What the roster needs of this record.
    pub fn roster_entry(&self) -> GroupRoster {
        let key = |hex_key: &str| crate::event::parse_public_key(hex_key).ok();
        let mut out = GroupRoster {
            id: self.id.clone(),
            named: self.named.clone(),
            ..GroupRoster::default()
        };
        for p in &self.proposals {
            out.named.extend(p.members.keys().cloned());
            out.proposals.insert(
                p.digest.clone(),
                p.members
                    .iter()
                    .filter_map(|(c, m)| Some((c.clone(), key(&m.key)?)))
                    .collect(),
            );
        }
        out.in_force = self.in_force().map(|p| Charter {
            version: p.version,
            name: p.name.clone(),
            members: p
                .members
                .iter()
                .filter_map(|(c, m)| Some((c.clone(), (m.name.clone(), key(&m.key)?))))
                .collect(),
            hosts: p.hosts.clone(),
        });
        out
    }

    /// Puts proposal `i` in force if it has its endorsements now.
    fn settle(&mut self, i: usize) {
        let prev = self.in_force().cloned();
        let p = &self.proposals[i];
        let (missing, short) = p.missing(prev.as_ref());
        if !missing.is_empty() || short > 0 {
            return;
        }
        let version = p.version;
        if let Some(j) = self.in_force {
            self.proposals[j].status = ProposalStatus::Replaced;
        }
        for (k, q) in self.proposals.iter_mut().enumerate() {
            if k != i && q.version == version && q.status == ProposalStatus::Pending {
                q.status = ProposalStatus::Superseded;
            }
        }
        self.proposals[i].status = ProposalStatus::InForce;
        self.in_force = Some(i);
    }

    fn propose(&mut self, who: &str, p: &pb::GroupCharterProposed) -> Result<(), String> {
        if !self.id.is_empty() && self.id != p.group_id {
            return Err(format!(
                "this record is group {}, not {}",
                self.id, p.group_id
            ));
        }
        self.named.extend(p.members.iter().map(|m| m.code.clone()));
        let digest = hex::encode(charter_digest(p));
        if self.proposals.iter().any(|q| q.digest == digest) {
            return Err("this charter version was proposed already; endorse it instead".into());
        }
        let members: BTreeMap<String, MemberEntry> = p
            .members
            .iter()
            .map(|m| {
                (
                    m.code.clone(),
                    MemberEntry {
                        name: m.name.clone(),
                        key: hex::encode(&m.public_key),
                    },
                )
            })
            .collect();
        if !members.contains_key(who) {
            return Err(format!("{who} proposes a charter that does not list it"));
        }
        let hosts: BTreeMap<u32, String> =
            p.hosts.iter().map(|t| (t.year, t.code.clone())).collect();
        let in_force = self.in_force().cloned();
        match (p.version, &in_force) {
            (1, None) => {}
            (1, Some(f)) => {
                return Err(format!(
                    "the group was founded already (version {} is in force); propose version {} to amend it",
                    f.version,
                    f.version + 1
                ))
            }
            (_, None) => {
                return Err(format!(
                    "version {} amends a charter, but none is in force here (yet)",
                    p.version
                ))
            }
            (v, Some(f)) => {
                if v != f.version + 1 || hex::encode(&p.amends) != f.digest {
                    return Err(format!(
                        "version {v} does not amend the charter in force here (version {}, {})",
                        f.version,
                        &f.digest[..12]
                    ));
                }
                if !f.members.contains_key(who) {
                    return Err(format!(
                        "only a member in force may propose an amendment; {who} is not one"
                    ));
                }
                for (code, m) in &f.members {
                    match members.get(code) {
                        None => {
                            return Err(format!(
                                "an amendment cannot drop member {code} (removal is not supported)"
                            ))
                        }
                        Some(n) if n.key != m.key => {
                            return Err(format!("an amendment cannot change the key of {code}"))
                        }
                        _ => {}
                    }
                }
                for (year, host) in &f.hosts {
                    if hosts.get(year) != Some(host) {
                        return Err(format!(
                            "an amendment cannot change or drop the host of {year} ({host})"
                        ));
                    }
                }
            }
        }
        self.id = p.group_id.clone();
        self.proposals.push(Proposal {
            digest,
            version: p.version,
            amends: hex::encode(&p.amends),
            name: p.name.clone(),
            proposer: who.to_string(),
            members,
            hosts,
            endorsed_by: BTreeSet::from([who.to_string()]),
            status: ProposalStatus::Pending,
        });
        let i = self.proposals.len() - 1;
        self.settle(i);
        Ok(())
    }

    fn endorse(&mut self, who: &str, e: &pb::GroupCharterEndorsed) -> Result<(), String> {
        let digest = hex::encode(&e.digest);
        let Some(i) = self.proposals.iter().position(|q| q.digest == digest) else {
            return Err(format!(
                "the endorsed proposal ({}) has not arrived here (yet)",
                &digest[..digest.len().min(12)]
            ));
        };
        let p = &mut self.proposals[i];
        if p.version != e.version {
            return Err(format!(
                "the endorsement names version {}, but that proposal is version {}",
                e.version, p.version
            ));
        }
        if !p.members.contains_key(who) {
            return Err(format!("{who} is not a member this proposal lists"));
        }
        if p.status != ProposalStatus::Pending {
            return Err(format!("the proposal is {} already", p.status.name()));
        }
        if !p.endorsed_by.insert(who.to_string()) {
            return Err(format!("{who} endorsed it already"));
        }
        self.settle(i);
        Ok(())
    }
}

impl Machine for Group {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        if self.id.is_empty() {
            // Every event of the record names the group (its record key is made of it).
            match &fact.body {
                Body::GroupCharterProposed(p) => self.id = p.group_id.clone(),
                Body::GroupCharterEndorsed(e) => self.id = e.group_id.clone(),
                _ => {}
            }
        }
        match &fact.body {
            Body::GroupCharterProposed(p) => self.propose(&fact.origin, p),
            Body::GroupCharterEndorsed(e) => self.endorse(&fact.origin, e),
            other => Err(format!(
                "{} is not a group charter event",
                crate::event::kind_name(other)
            )),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::record::testkit::fact;
    use crate::domain::record::{fold, Folded};
    use crate::domain::roster::tests::gansu;
    use crate::pb::audience::Kind;
    use proptest::prelude::*;

    pub fn key(seed: u8) -> Vec<u8> {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .as_bytes()
            .to_vec()
    }

    pub fn charter_aud(g: &str) -> Kind {
        Kind::Group(pb::GroupAudience {
            group_id: g.into(),
            include_subtrees: true,
            charter: true,
        })
    }

    /// Gansu (seed 1, as in the roster fixture), Qinghai (seed 63), Ningxia (seed 64).
    pub fn proposal(version: u32, amends: &[u8], codes: &[&str]) -> pb::GroupCharterProposed {
        let seed = |c: &str| match c {
            "620000" => 1,
            "630000" => 63,
            "640000" => 64,
            "610000" => 61,
            _ => 99,
        };
        pb::GroupCharterProposed {
            group_id: "yellow-river-9".into(),
            name: "沿黄九省区政协协商研讨会".into(),
            version,
            amends: amends.to_vec(),
            members: codes
                .iter()
                .map(|c| pb::GroupMember {
                    code: c.to_string(),
                    name: format!("{c}政协"),
                    public_key: key(seed(c)),
                })
                .collect(),
            hosts: vec![pb::GroupHostTerm {
                year: 2026,
                code: "640000".into(),
            }],
        }
    }

    fn endorse(p: &pb::GroupCharterProposed) -> Body {
        Body::GroupCharterEndorsed(pb::GroupCharterEndorsed {
            group_id: p.group_id.clone(),
            version: p.version,
            digest: charter_digest(p).to_vec(),
        })
    }

    /// Founding by three, an amendment adding Shaanxi, and noise: a second founding, an
    /// endorsement by a stranger, a repeated endorsement.
    pub fn history() -> Vec<Fact> {
        let v1 = proposal(1, &[], &["620000", "630000", "640000"]);
        let mut v2 = proposal(
            2,
            &charter_digest(&v1),
            &["620000", "630000", "640000", "610000"],
        );
        v2.hosts.push(pb::GroupHostTerm {
            year: 2027,
            code: "610000".into(),
        });
        let other_v1 = proposal(1, &[], &["620000", "640000"]);
        let aud = charter_aud("yellow-river-9");
        vec![
            fact(
                "620000",
                1,
                10,
                aud.clone(),
                Body::GroupCharterProposed(v1.clone()),
            ),
            fact("640000", 1, 20, aud.clone(), endorse(&v1)),
            fact("650000", 1, 25, aud.clone(), endorse(&v1)),
            fact("640000", 2, 26, aud.clone(), endorse(&v1)),
            fact("630000", 1, 30, aud.clone(), endorse(&v1)),
            fact(
                "640000",
                3,
                35,
                aud.clone(),
                Body::GroupCharterProposed(other_v1),
            ),
            fact(
                "630000",
                2,
                40,
                aud.clone(),
                Body::GroupCharterProposed(v2.clone()),
            ),
            fact("610000", 1, 50, aud.clone(), endorse(&v2)),
            fact("620000", 2, 60, aud.clone(), endorse(&v2)),
            fact("640000", 4, 70, aud, endorse(&v2)),
        ]
    }

    #[test]
    fn founding_needs_everyone_and_an_amendment_a_majority_and_the_newcomer() {
        let r = gansu();
        let facts = history();
        // After the founder and one endorsement of three: not yet.
        let g: Folded<Group> = fold(&facts[..2], &r);
        assert!(g.record.in_force.is_none());
        assert_eq!(
            g.record.proposals[0].missing(None).0,
            BTreeSet::from(["630000".to_string()])
        );
        // Everyone: in force.
        let g: Folded<Group> = fold(&facts[..5], &r);
        let f = g.record.in_force().expect("in force");
        assert_eq!(f.version, 1);
        assert_eq!(g.record.host(2026), Some("640000"));
        // A stranger's and a repeated endorsement are refused with reasons.
        let refused: Vec<String> = g.history.iter().filter_map(|h| h.refused.clone()).collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[0].contains("650000"), "{}", refused[0]);
        assert!(refused[1].contains("already"), "{}", refused[1]);
        // The amendment with the newcomer and the proposer only (2 of 3 in force, but not
        // the newcomer): not yet; the newcomer endorses first, then a majority: in force.
        let g: Folded<Group> = fold(&facts[..8], &r);
        assert_eq!(g.record.in_force().map(|p| p.version), Some(1));
        let g: Folded<Group> = fold(&facts, &r);
        let f = g.record.in_force().expect("in force");
        assert_eq!(f.version, 2);
        assert_eq!(f.members.len(), 4);
        assert_eq!(g.record.host(2027), Some("610000"));
        assert_eq!(g.record.proposals[0].status, ProposalStatus::Replaced);
        // A second founding after the first took effect is refused.
        assert!(g.history.iter().any(|h| h
            .refused
            .as_deref()
            .is_some_and(|r| r.contains("founded already"))));
        // The last endorsement came after the amendment was in force: refused, recorded.
        assert!(g.history.last().and_then(|h| h.refused.clone()).is_some());
        let entry = g.record.roster_entry();
        assert!(entry.named.contains("610000"));
        assert_eq!(entry.in_force.map(|c| c.members.len()), Some(4));
    }

    #[test]
    fn amendments_cannot_drop_members_change_keys_or_hosts() {
        let r = gansu();
        let v1 = proposal(1, &[], &["620000", "630000", "640000"]);
        let aud = charter_aud("yellow-river-9");
        let mut base = vec![
            fact(
                "620000",
                1,
                10,
                aud.clone(),
                Body::GroupCharterProposed(v1.clone()),
            ),
            fact("630000", 1, 20, aud.clone(), endorse(&v1)),
            fact("640000", 1, 30, aud.clone(), endorse(&v1)),
        ];
        let d = charter_digest(&v1);
        let dropped = proposal(2, &d, &["620000", "630000"]);
        let mut rekeyed = proposal(2, &d, &["620000", "630000", "640000"]);
        rekeyed.members[2].public_key = key(7);
        let mut rehosted = proposal(2, &d, &["620000", "630000", "640000"]);
        rehosted.hosts[0].code = "620000".into();
        let skipping = proposal(3, &d, &["620000", "630000", "640000", "610000"]);
        for (i, p) in [dropped, rekeyed, rehosted, skipping]
            .into_iter()
            .enumerate()
        {
            base.push(fact(
                "620000",
                2 + i as u64,
                40 + i as u64,
                aud.clone(),
                Body::GroupCharterProposed(p),
            ));
        }
        let g: Folded<Group> = fold(&base, &r);
        let refused: Vec<String> = g.history.iter().filter_map(|h| h.refused.clone()).collect();
        assert_eq!(refused.len(), 4, "{refused:?}");
        assert!(refused[0].contains("drop member 640000"), "{}", refused[0]);
        assert!(refused[1].contains("key of 640000"), "{}", refused[1]);
        assert!(refused[2].contains("host of 2026"), "{}", refused[2]);
        assert!(refused[3].contains("does not amend"), "{}", refused[3]);
        assert_eq!(g.record.in_force().map(|p| p.version), Some(1));
    }

    #[test]
    fn the_digest_ignores_the_order_of_members_and_hosts() {
        let a = proposal(1, &[], &["620000", "630000", "640000"]);
        let mut b = a.clone();
        b.members.reverse();
        assert_eq!(charter_digest(&a), charter_digest(&b));
        b.name.push('!');
        assert_ne!(charter_digest(&a), charter_digest(&b));
        assert!(check_group_id("yellow-river-9").is_ok());
        for bad in ["", "Yellow", "a_b", "seventeen-chars-x", "黄河"] {
            assert!(check_group_id(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_arrival_order_gives_the_charter_of_the_set(perm in Just(history()).prop_shuffle()) {
            let r = gansu();
            let mut sorted = perm.clone();
            sorted.sort_by_key(|f| f.order_key());
            let expected: Folded<Group> = fold(&sorted, &r);
            prop_assert_eq!(expected.record.in_force().map(|p| p.version), Some(2));
            // incremental application where possible, refold otherwise (as ingest does)
            let mut seen: Vec<Fact> = Vec::new();
            let mut state = Folded::<Group>::default();
            for f in &perm {
                seen.push(f.clone());
                if state.can_append(f) { state.apply(f, &r) } else { state = fold(&seen, &r) }
            }
            prop_assert_eq!(&state, &expected);
        }
    }
}
