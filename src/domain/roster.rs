//! 名册: the committees a node knows, their parents and keys, built from registration events.
//! The tree only grows: a committee's parent never changes once registered, which is what
//! makes visibility a stable function of an event.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use ed25519_dalek::VerifyingKey;

use super::Level;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub code: String,
    pub name: String,
    pub level: Level,
    /// None for the root.
    pub parent: Option<String>,
    /// The current key (the last epoch's).
    pub key: VerifyingKey,
    /// Every key the committee has had, oldest first: which key signs which sequence numbers.
    pub epochs: Vec<KeyEpoch>,
}

/// One key of a committee and the range of its sequence numbers that key may sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEpoch {
    pub key: VerifyingKey,
    /// The first sequence number this key signs.
    pub from_seq: u64,
    /// Set by a revocation: numbers after this, signed with this key, are void.
    pub revoked_after: Option<u64>,
    pub revocation_reason: String,
}

impl Member {
    pub fn new(
        code: &str,
        name: &str,
        level: Level,
        parent: Option<&str>,
        key: VerifyingKey,
    ) -> Member {
        Member {
            code: code.into(),
            name: name.into(),
            level,
            parent: parent.map(Into::into),
            key,
            epochs: vec![KeyEpoch {
                key,
                from_seq: 1,
                revoked_after: None,
                revocation_reason: String::new(),
            }],
        }
    }

    /// The epoch that covers sequence number `seq`.
    pub fn epoch_for(&self, seq: u64) -> Option<&KeyEpoch> {
        self.epochs.iter().rev().find(|e| e.from_seq <= seq)
    }

    /// Whether an event numbered `seq` of this committee is void (signed in a revoked range).
    pub fn is_void(&self, seq: u64) -> bool {
        self.epoch_for(seq)
            .is_some_and(|e| e.revoked_after.is_some_and(|n| seq > n))
    }

    pub fn is_revoked(&self) -> bool {
        self.epochs
            .last()
            .is_some_and(|e| e.revoked_after.is_some())
    }
}

/// What the roster knows of one lateral group (协作组), mirrored from the group's charter
/// record (`record::group`) whenever one of its events is stored. The members of other
/// federations enter here only — never as members of this tree — so their keys verify
/// events of this group and nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRoster {
    pub id: String,
    /// Every committee a charter version held here names, in force or only proposed: where
    /// the charter's own events go (`GroupAudience.charter`).
    pub named: BTreeSet<String>,
    /// The keys each held proposal lists, by the proposal's digest (hex): what verifies a
    /// member's endorsement of that proposal.
    pub proposals: BTreeMap<String, BTreeMap<String, VerifyingKey>>,
    /// The charter in force, if any.
    pub in_force: Option<Charter>,
}

/// A charter in force: who the members are, with their keys, and who hosts which year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charter {
    pub version: u32,
    pub name: String,
    /// Member code → (name, key: the member federation's trust anchor).
    pub members: BTreeMap<String, (String, VerifyingKey)>,
    /// Year → host.
    pub hosts: BTreeMap<u32, String>,
}

#[derive(Clone, Debug)]
pub struct Roster {
    /// The trust anchor: the root committee of this federation, configured on every node.
    pub root: String,
    pub root_key: VerifyingKey,
    members: HashMap<String, Member>,
    children: HashMap<String, Vec<String>>,
    /// Lateral groups this federation's root belongs to or was invited to, by id.
    groups: BTreeMap<String, GroupRoster>,
}

impl Roster {
    pub fn new(root: &str, root_key: VerifyingKey) -> Roster {
        Roster {
            root: root.to_string(),
            root_key,
            members: HashMap::new(),
            children: HashMap::new(),
            groups: BTreeMap::new(),
        }
    }

    /// Replaces what the roster knows of one lateral group.
    pub fn set_group(&mut self, group: GroupRoster) {
        self.groups.insert(group.id.clone(), group);
    }

    pub fn group(&self, id: &str) -> Option<&GroupRoster> {
        self.groups.get(id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &GroupRoster> {
        self.groups.values()
    }

    /// The members of group `id` an audience `group(id)` reaches: those of the charter in
    /// force, or with `charter`, every member a held charter version names. None: the group
    /// is unknown here (or not in force), so nobody sees it.
    pub fn group_members(&self, id: &str, charter: bool) -> Option<BTreeSet<&str>> {
        let g = self.groups.get(id)?;
        if charter {
            Some(g.named.iter().map(String::as_str).collect())
        } else {
            g.in_force
                .as_ref()
                .map(|c| c.members.keys().map(String::as_str).collect())
        }
    }

    /// A committee of another federation that a lateral group known here names: not in
    /// this tree, never placed in it.
    pub fn is_foreign(&self, code: &str) -> bool {
        !self.knows(code) && self.groups.values().any(|g| g.named.contains(code))
    }

    /// The key of `code` as a member of group `id`'s charter in force.
    pub fn group_key(&self, id: &str, code: &str) -> Option<&VerifyingKey> {
        self.groups
            .get(id)?
            .in_force
            .as_ref()?
            .members
            .get(code)
            .map(|(_, k)| k)
    }

    /// The key that proposal `digest` (hex) of group `id` lists for `code`.
    pub fn proposal_key(&self, id: &str, digest: &str, code: &str) -> Option<&VerifyingKey> {
        self.groups.get(id)?.proposals.get(digest)?.get(code)
    }

    /// Whether the roster may later verify events of `code` (a quarantined event of it is
    /// worth retrying): a committee of this tree, or one a lateral group names.
    pub fn may_verify(&self, code: &str) -> bool {
        self.knows(code) || self.groups.values().any(|g| g.named.contains(code))
    }

    /// A copy that also routes the charter events of group `id` to `codes` (to decide whether
    /// a proposal that names this federation's root is in scope before it is stored).
    pub fn with_named<'a>(&self, id: &str, codes: impl IntoIterator<Item = &'a str>) -> Roster {
        let mut r = self.clone();
        let g = r
            .groups
            .entry(id.to_string())
            .or_insert_with(|| GroupRoster {
                id: id.to_string(),
                ..GroupRoster::default()
            });
        g.named.extend(codes.into_iter().map(String::from));
        r
    }

    pub fn get(&self, code: &str) -> Option<&Member> {
        self.members.get(code)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn children(&self, code: &str) -> &[String] {
        self.children.get(code).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The key that verifies `code`'s event number `seq`: the anchor's for the root, else the
    /// roster epoch covering `seq`. Says why not when there is none.
    pub fn key_for(&self, code: &str, seq: u64) -> Result<&VerifyingKey, crate::domain::Refusal> {
        use crate::domain::Refusal;
        if code == self.root {
            return Ok(&self.root_key);
        }
        let member = self
            .members
            .get(code)
            .ok_or_else(|| Refusal::UnknownAuthor(format!("{code} is not in the roster")))?;
        let epoch = member
            .epoch_for(seq)
            .ok_or_else(|| Refusal::UnknownAuthor(format!("{code} has no key for seq {seq}")))?;
        if let Some(n) = epoch.revoked_after {
            if seq > n {
                return Err(Refusal::Revoked(format!(
                    "the key of {code} was revoked after seq {n} ({}); seq {seq} is void",
                    epoch.revocation_reason
                )));
            }
        }
        Ok(&epoch.key)
    }

    /// Whether event `seq` of `code` is void under a revocation.
    pub fn is_void(&self, code: &str, seq: u64) -> bool {
        self.members.get(code).is_some_and(|m| m.is_void(seq))
    }

    /// Gives `code` a new key from `from_seq` on.
    pub fn rotate(&mut self, code: &str, key: VerifyingKey, from_seq: u64) {
        if let Some(m) = self.members.get_mut(code) {
            m.epochs.retain(|e| e.from_seq < from_seq);
            m.epochs.push(KeyEpoch {
                key,
                from_seq,
                revoked_after: None,
                revocation_reason: String::new(),
            });
            m.key = key;
        }
    }

    /// Voids `code`'s events signed with `key` and numbered after `valid_through`.
    pub fn revoke(&mut self, code: &str, key: &VerifyingKey, valid_through: u64, reason: &str) {
        if let Some(m) = self.members.get_mut(code) {
            for e in m.epochs.iter_mut().filter(|e| e.key == *key) {
                e.revoked_after = Some(
                    e.revoked_after
                        .map_or(valid_through, |n| n.min(valid_through)),
                );
                e.revocation_reason = reason.to_string();
            }
        }
    }

    pub fn knows(&self, code: &str) -> bool {
        code == self.root || self.members.contains_key(code)
    }

    pub fn insert(&mut self, member: Member) {
        if let Some(parent) = &member.parent {
            let siblings = self.children.entry(parent.clone()).or_default();
            if !siblings.contains(&member.code) {
                siblings.push(member.code.clone());
                siblings.sort();
            }
        }
        self.members.insert(member.code.clone(), member);
    }

    pub fn parent_of(&self, code: &str) -> Option<&str> {
        self.members.get(code).and_then(|m| m.parent.as_deref())
    }

    /// `code` and its ancestors, from itself up to the root. Empty if `code` is unknown.
    pub fn path_to_root<'a>(&'a self, code: &'a str) -> Vec<&'a str> {
        let mut out = Vec::new();
        if !self.knows(code) {
            return out;
        }
        let mut cur = Some(code);
        while let Some(c) = cur {
            if out.contains(&c) || out.len() > 16 {
                break; // a cycle cannot be registered, but never loop on bad data
            }
            out.push(c);
            cur = self.members.get(c).and_then(|m| m.parent.as_deref());
        }
        out
    }

    /// Whether `ancestor` is `code` or above it.
    pub fn is_ancestor_or_self(&self, ancestor: &str, code: &str) -> bool {
        self.path_to_root(code).contains(&ancestor)
    }

    /// Whether `code` is in the lineage of `of`: above it, `of` itself, or below it (who
    /// can hear from `of`; `audience::Kind::Lineage`).
    pub fn in_lineage(&self, code: &str, of: &str) -> bool {
        code == of || self.is_ancestor_or_self(code, of) || self.is_ancestor_or_self(of, code)
    }

    pub fn is_proper_ancestor(&self, ancestor: &str, code: &str) -> bool {
        ancestor != code && self.is_ancestor_or_self(ancestor, code)
    }

    /// Every known committee in the subtree of `code`, including itself, sorted.
    pub fn subtree(&self, code: &str) -> Vec<String> {
        let mut out = vec![code.to_string()];
        let mut i = 0;
        while i < out.len() {
            let kids = self.children(&out[i]).to_vec();
            out.extend(kids);
            i += 1;
        }
        out.sort();
        out
    }

    pub fn name_of(&self, code: &str) -> String {
        self.members
            .get(code)
            .map(|m| m.name.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Gansu: province, two cities, two counties each. Keys are throwaway.
    pub fn gansu() -> Roster {
        let key = |seed: u8| ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
        let mut r = Roster::new("620000", key(1));
        let add = |r: &mut Roster, code: &str, name: &str, level, parent: Option<&str>, seed| {
            r.insert(Member::new(code, name, level, parent, key(seed)))
        };
        add(&mut r, "620000", "甘肃省", Level::Province, None, 1);
        add(&mut r, "620100", "兰州市", Level::City, Some("620000"), 2);
        add(&mut r, "620400", "白银市", Level::City, Some("620000"), 3);
        add(&mut r, "620123", "榆中县", Level::County, Some("620100"), 4);
        add(&mut r, "620121", "永登县", Level::County, Some("620100"), 5);
        add(&mut r, "620421", "靖远县", Level::County, Some("620400"), 6);
        add(&mut r, "620422", "会宁县", Level::County, Some("620400"), 7);
        r
    }

    /// Gansu, member of yellow-river-9 (in force with Qinghai and Ningxia; an amendment adding
    /// Shaanxi proposed) and invited to northwest-5 (proposed with Xinjiang, not in force).
    pub fn gansu_with_groups() -> Roster {
        let key = |seed: u8| ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
        let mut r = gansu();
        let members = |codes: &[(&str, u8)]| -> BTreeMap<String, (String, VerifyingKey)> {
            codes
                .iter()
                .map(|(c, seed)| (c.to_string(), (format!("{c}政协"), key(*seed))))
                .collect()
        };
        let in_force = members(&[("620000", 1), ("630000", 63), ("640000", 64)]);
        r.set_group(GroupRoster {
            id: "yellow-river-9".into(),
            named: ["620000", "630000", "640000", "610000"]
                .map(String::from)
                .into(),
            proposals: BTreeMap::new(),
            in_force: Some(Charter {
                version: 1,
                name: "沿黄九省区".into(),
                members: in_force,
                hosts: BTreeMap::from([(2026, "640000".to_string())]),
            }),
        });
        r.set_group(GroupRoster {
            id: "northwest-5".into(),
            named: ["620000", "650000"].map(String::from).into(),
            proposals: BTreeMap::new(),
            in_force: None,
        });
        r
    }

    #[test]
    fn rotation_and_revocation_decide_which_key_signs_which_seq() {
        use crate::domain::Refusal;
        let mut r = gansu();
        let old = *r.key_for("620123", 1).expect("key");
        let new = ed25519_dalek::SigningKey::from_bytes(&[42; 32]).verifying_key();
        r.rotate("620123", new, 10);
        assert_eq!(r.key_for("620123", 9).expect("old range"), &old);
        assert_eq!(r.key_for("620123", 10).expect("new range"), &new);
        // the old key is compromised after seq 5: 6..=9 are void, 10.. stay with the new key
        r.revoke("620123", &old, 5, "办公电脑被盗");
        assert!(r.key_for("620123", 5).is_ok());
        assert!(
            matches!(r.key_for("620123", 7), Err(Refusal::Revoked(m)) if m.contains("办公电脑被盗"))
        );
        assert!(r.is_void("620123", 7) && !r.is_void("620123", 5) && !r.is_void("620123", 12));
        assert_eq!(r.key_for("620123", 12).expect("new range"), &new);
        assert!(matches!(
            r.key_for("999999", 1),
            Err(Refusal::UnknownAuthor(_))
        ));
    }

    #[test]
    fn ancestry_follows_registrations() {
        let r = gansu();
        assert_eq!(r.path_to_root("620123"), vec!["620123", "620100", "620000"]);
        assert!(r.is_ancestor_or_self("620000", "620421"));
        assert!(r.is_proper_ancestor("620100", "620123"));
        assert!(!r.is_ancestor_or_self("620100", "620421"));
        assert!(!r.is_ancestor_or_self("620123", "620100"));
        assert!(r.path_to_root("999999").is_empty());
        assert_eq!(r.subtree("620400"), vec!["620400", "620421", "620422"]);
    }
}
