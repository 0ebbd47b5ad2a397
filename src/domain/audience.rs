//! Who may see an event, as a function of its audience, its author and the tree.
//!
//! Every audience includes the tree path from the author to the committees it names: those
//! are the relays, and a city sees the assignments that pass through it. Concretely:
//! - `subtree(c)`: `path(author, c)` ∪ every committee below c;
//! - `committees([t..])`: ⋃ `path(author, t)`;
//! - `ancestors(u)`: `path(author, u)` (u must be above the author);
//! - `lineage(c)`: c, every committee above it and every committee below it — who can ever
//!   receive an event c signs, so who needs c's key: c's registration and key changes go
//!   there (the roster is scoped, not federation-wide: docs/architecture.md "Roster scope");
//! - `group(g)`: the members of lateral group g (the charter in force; for the charter's own
//!   events, every member a held version names) and the tree path from the author to each,
//!   plus, with `include_subtrees`, everything below each member. Members are the roots of
//!   their own federations: only this federation's root can be placed in this roster's tree;
//!   the others are *foreign* — known by code and key from the charter, never in the tree.
//!
//! A node stores what is [`visible_within`] its own subtree, sends to a child what is visible
//! within the child's subtree, and to its parent what is [`visible_outside`] its subtree.
//! Unknown committees make an audience fail closed: nothing is shown to a node the roster
//! cannot place, and a group that is unknown (or not in force) here is shown to nobody. A
//! foreign member sees group events only ([`lateral`]): no tree audience ever reaches
//! another federation.
use super::Roster;
use crate::pb::audience::Kind;
use crate::pb::GroupAudience;

/// The members an audience `group(..)` reaches, or None (unknown group: fail closed).
fn group_members<'r>(roster: &'r Roster, g: &GroupAudience) -> Option<Vec<&'r str>> {
    roster
        .group_members(&g.group_id, g.charter)
        .map(|m| m.into_iter().collect())
}

/// The committees on the tree path between `a` and `b`, both included. Empty if either is
/// unknown or they are in different trees.
pub fn path<'r>(roster: &'r Roster, a: &'r str, b: &'r str) -> Vec<&'r str> {
    let up_a = roster.path_to_root(a);
    let up_b = roster.path_to_root(b);
    let Some(meet) = up_a.iter().position(|x| up_b.contains(x)) else {
        return Vec::new();
    };
    let lca = up_a[meet];
    let mut out: Vec<&str> = up_a[..=meet].to_vec();
    let down = up_b.iter().position(|x| *x == lca).unwrap_or(0);
    out.extend(up_b[..down].iter().rev());
    out
}

/// Whether committee `node` itself is in the audience.
pub fn visible_to(roster: &Roster, audience: &Kind, author: &str, node: &str) -> bool {
    if node == author {
        return true;
    }
    match audience {
        Kind::Subtree(c) => {
            roster.is_ancestor_or_self(c, node) || path(roster, author, c).contains(&node)
        }
        Kind::Committees(list) => list
            .codes
            .iter()
            .any(|t| path(roster, author, t).contains(&node)),
        Kind::Ancestors(up_to) => {
            roster.is_ancestor_or_self(up_to, author) && path(roster, author, up_to).contains(&node)
        }
        Kind::Lineage(c) => roster.in_lineage(node, c),
        Kind::Group(g) => group_members(roster, g).is_some_and(|members| {
            members.iter().any(|m| {
                *m == node
                    || path(roster, author, m).contains(&node)
                    || (g.include_subtrees && roster.is_ancestor_or_self(m, node))
            })
        }),
    }
}

/// Whether anything in the subtree of `s` (s included) is in the audience.
pub fn visible_within(roster: &Roster, audience: &Kind, author: &str, s: &str) -> bool {
    let inside = |c: &str| roster.is_ancestor_or_self(s, c);
    // A foreign member's subtree is unknown here: for a group, it is just itself.
    let foreign = roster.is_foreign(s);
    if author == s || inside(author) {
        return true;
    }
    match audience {
        // Every node of the federation is under its root, even before the node's own
        // registration has reached it (the roster arrives as events, root first) — but a
        // member of another federation is not.
        Kind::Subtree(c) if *c == roster.root && !foreign => true,
        // The subtree of c meets the subtree of s, or s relays between author and c.
        Kind::Subtree(c) => {
            inside(c) || roster.is_ancestor_or_self(c, s) || path(roster, author, c).contains(&s)
        }
        Kind::Committees(list) => list
            .codes
            .iter()
            // Every committee on the path from the author to a target sees it.
            .any(|t| path(roster, author, t).iter().any(|n| inside(n))),
        // The path runs from the author upwards; with the author outside s's subtree, none of
        // the author's ancestors can be inside it.
        Kind::Ancestors(_) => false,
        // c is in s's subtree, or s is c or below it (so c is above everything of s's). A
        // node that cannot place itself yet takes the lineages its parent sends (its
        // ancestors' and its own, which place it): every one is checked by `authz` as any
        // registration is, and a public key more than needed is harmless.
        Kind::Lineage(c) => {
            *c == s
                || inside(c)
                || roster.is_ancestor_or_self(c, s)
                || (!roster.knows(s) && !foreign)
        }
        Kind::Group(g) => group_members(roster, g).is_some_and(|members| {
            members.iter().any(|m| {
                inside(m)
                    || *m == s
                    || path(roster, author, m).contains(&s)
                    || (g.include_subtrees && roster.is_ancestor_or_self(m, s))
            })
        }),
    }
}

/// Whether anything outside the subtree of `s` is in the audience.
pub fn visible_outside(roster: &Roster, audience: &Kind, author: &str, s: &str) -> bool {
    let inside = |c: &str| roster.is_ancestor_or_self(s, c);
    if !roster.knows(s) && !roster.is_foreign(s) {
        return false;
    }
    if author != s && !inside(author) {
        return true;
    }
    match audience {
        Kind::Subtree(c) => roster.knows(c) && !inside(c),
        // Every committee on the path from the author to a target sees it.
        Kind::Committees(list) => list
            .codes
            .iter()
            .any(|t| path(roster, author, t).iter().any(|n| !inside(n))),
        Kind::Ancestors(up_to) => roster.is_ancestor_or_self(up_to, author) && !inside(up_to),
        // c outside s sees it itself; c inside s has s's ancestors above it.
        Kind::Lineage(c) => {
            let c_inside = *c == s || inside(c);
            (roster.knows(c) || roster.is_foreign(c))
                && (!c_inside || roster.parent_of(s).is_some())
        }
        // With the author inside s, the path to a member inside s stays inside, and a member
        // outside s sees the event itself.
        Kind::Group(g) => group_members(roster, g)
            .is_some_and(|members| members.iter().any(|m| *m != s && !inside(m))),
    }
}

/// Whether a lateral peer (a member of another federation, linked directly) gets the event:
/// group events it may see, never anything of a tree audience.
pub fn lateral(roster: &Roster, audience: &Kind, author: &str, peer: &str) -> bool {
    matches!(audience, Kind::Group(_)) && visible_within(roster, audience, author, peer)
}

/// Every known committee in the audience (for listing the recipients of a notice).
pub fn members(roster: &Roster, audience: &Kind, author: &str) -> Vec<String> {
    let mut out: Vec<String> = match audience {
        Kind::Subtree(c) => {
            let mut v = roster.subtree(c);
            v.extend(path(roster, author, c).into_iter().map(String::from));
            v
        }
        Kind::Committees(list) => list
            .codes
            .iter()
            .flat_map(|t| path(roster, author, t).into_iter().map(String::from))
            .collect(),
        Kind::Ancestors(u) => path(roster, author, u)
            .into_iter()
            .map(String::from)
            .collect(),
        Kind::Lineage(c) => {
            let mut v = roster.subtree(c);
            v.extend(roster.path_to_root(c).into_iter().map(String::from));
            v
        }
        Kind::Group(g) => {
            let mut v = Vec::new();
            for m in group_members(roster, g).unwrap_or_default() {
                if g.include_subtrees && roster.knows(m) {
                    v.extend(roster.subtree(m));
                }
                v.extend(path(roster, author, m).into_iter().map(String::from));
                v.push(m.to_string());
            }
            v
        }
    };
    out.push(author.to_string());
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roster::tests::{gansu, gansu_with_groups};
    use crate::pb::CommitteeList;

    const ALL: [&str; 7] = [
        "620000", "620100", "620400", "620123", "620121", "620421", "620422",
    ];
    /// Qinghai and Ningxia (yellow-river-9, in force), Shaanxi (proposed for it), Xinjiang
    /// (northwest-5, proposed only). A code named nowhere cannot be told from a committee of
    /// this tree whose registration has not arrived yet (in scope of `subtree(root)`, by
    /// design), so it is not part of the universe; see the group test for what it gets.
    const FOREIGN: [&str; 4] = ["630000", "640000", "610000", "650000"];

    fn group(g: &str, include_subtrees: bool, charter: bool) -> Kind {
        Kind::Group(crate::pb::GroupAudience {
            group_id: g.into(),
            include_subtrees,
            charter,
        })
    }

    fn to(codes: &[&str]) -> Kind {
        Kind::Committees(CommitteeList {
            codes: codes.iter().map(|c| c.to_string()).collect(),
        })
    }

    fn who_sees(aud: &Kind, author: &str) -> Vec<&'static str> {
        let r = gansu();
        ALL.iter()
            .copied()
            .filter(|n| visible_to(&r, aud, author, n))
            .collect()
    }

    #[test]
    fn path_goes_up_to_the_common_ancestor_and_down() {
        let r = gansu();
        assert_eq!(
            path(&r, "620123", "620421"),
            vec!["620123", "620100", "620000", "620400", "620421"]
        );
        assert_eq!(
            path(&r, "620000", "620123"),
            vec!["620000", "620100", "620123"]
        );
        assert_eq!(path(&r, "620123", "620123"), vec!["620123"]);
        assert!(path(&r, "620123", "999999").is_empty());
    }

    #[test]
    fn a_roster_event_reaches_the_lineage_only() {
        // Lanzhou's registration (signed by the province): the province above, Lanzhou and
        // its counties below; not Baiyin nor Baiyin's counties, who never hear from Lanzhou.
        let lanzhou = Kind::Lineage("620100".into());
        assert_eq!(
            who_sees(&lanzhou, "620000"),
            vec!["620000", "620100", "620123", "620121"]
        );
        // A county's: the county and the path up.
        assert_eq!(
            who_sees(&Kind::Lineage("620421".into()), "620400"),
            vec!["620000", "620400", "620421"]
        );
        // The root's is everyone's.
        assert_eq!(who_sees(&Kind::Lineage("620000".into()), "620000"), ALL);
        // A node that cannot place itself yet (its own registration is on the way) takes
        // what its parent sends; once placed, only its lineage.
        let mut r = gansu();
        assert!(visible_within(&r, &lanzhou, "620000", "620401"));
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
        r.insert(crate::domain::roster::Member::new(
            "620401",
            "白银区",
            crate::domain::Level::County,
            Some("620400"),
            key,
        ));
        assert!(!visible_within(&r, &lanzhou, "620000", "620401"));
        // Up the tree: Lanzhou sends its counties' registrations to the province, not the
        // root's own back up (it has no parent).
        assert!(visible_outside(
            &r,
            &Kind::Lineage("620123".into()),
            "620100",
            "620100"
        ));
        assert!(!visible_outside(
            &r,
            &Kind::Lineage("620000".into()),
            "620000",
            "620000"
        ));
    }

    #[test]
    fn an_assignment_is_seen_by_its_assignee_and_the_relays_only() {
        // province -> county assignment travels through the city
        let seen = who_sees(&to(&["620123"]), "620000");
        assert_eq!(seen, vec!["620000", "620100", "620123"]);
        // the sibling county and the other city never see it
        assert!(!seen.contains(&"620121"));
        assert!(!seen.contains(&"620400"));
    }

    #[test]
    fn a_subtree_notice_reaches_the_subtree_and_the_path_to_it() {
        assert_eq!(
            who_sees(&Kind::Subtree("620400".into()), "620000"),
            vec!["620000", "620400", "620421", "620422"]
        );
        assert_eq!(who_sees(&Kind::Subtree("620000".into()), "620000").len(), 7);
    }

    #[test]
    fn a_report_goes_up_the_path_only() {
        assert_eq!(
            who_sees(&Kind::Ancestors("620000".into()), "620421"),
            vec!["620000", "620400", "620421"]
        );
        assert_eq!(
            who_sees(&Kind::Ancestors("620400".into()), "620421"),
            vec!["620400", "620421"]
        );
        // "ancestors" of something that is not above the author reaches nobody else
        assert_eq!(
            who_sees(&Kind::Ancestors("620100".into()), "620421"),
            vec!["620421"]
        );
    }

    #[test]
    fn unknown_committees_fail_closed() {
        assert_eq!(who_sees(&to(&["999999"]), "620000"), vec!["620000"]);
    }

    #[test]
    fn a_group_event_reaches_the_members_in_force_and_their_subtrees_when_asked() {
        let r = gansu_with_groups();
        let sees = |aud: &Kind, author: &str| -> Vec<&str> {
            ALL.iter()
                .chain(FOREIGN.iter())
                .copied()
                .filter(|n| visible_to(&r, aud, author, n))
                .collect()
        };
        // Ningxia's meeting event: the three members in force, not the proposed Shaanxi.
        assert_eq!(
            sees(&group("yellow-river-9", false, false), "640000"),
            vec!["620000", "630000", "640000"]
        );
        // With subtrees: Gansu's whole tree too (the foreign subtrees are not known here).
        let with = sees(&group("yellow-river-9", true, false), "640000");
        assert_eq!(with.len(), 7 + 2, "{with:?}");
        // The charter's own events also reach the proposed member.
        assert!(sees(&group("yellow-river-9", true, true), "620000").contains(&"610000"));
        // A group not in force here, or unknown: only the author (fail closed).
        assert_eq!(
            sees(&group("northwest-5", true, false), "620000"),
            vec!["620000"]
        );
        assert_eq!(
            sees(&group("unknown-group", true, true), "640000"),
            vec!["640000"]
        );
        // Lateral peers get group events only: never a tree audience, even subtree(root).
        assert!(lateral(
            &r,
            &group("yellow-river-9", false, false),
            "620000",
            "640000"
        ));
        assert!(!lateral(
            &r,
            &group("yellow-river-9", false, false),
            "620000",
            "610000"
        ));
        assert!(!lateral(
            &r,
            &Kind::Subtree("620000".into()),
            "620000",
            "640000"
        ));
        assert!(!visible_within(
            &r,
            &Kind::Subtree("620000".into()),
            "620000",
            "640000"
        ));
        assert!(!lateral(&r, &to(&["640000"]), "620000", "640000"));
        // A stranger named by no charter gets nothing over a lateral link.
        assert!(!lateral(
            &r,
            &group("yellow-river-9", true, true),
            "620000",
            "510000"
        ));
        assert!(!lateral(
            &r,
            &Kind::Subtree("620000".into()),
            "620000",
            "510000"
        ));
        // Gansu sends its children Ningxia's event only with subtrees.
        assert!(!visible_within(
            &r,
            &group("yellow-river-9", false, false),
            "640000",
            "620100"
        ));
        assert!(visible_within(
            &r,
            &group("yellow-river-9", true, false),
            "640000",
            "620100"
        ));
    }

    #[test]
    fn within_and_outside_agree_with_visible_to() {
        // For every audience, author and subtree root: `within` is true exactly when some
        // member of the subtree sees the event, and `outside` when some non-member does.
        // The universe: Gansu's tree and the members of Gansu's lateral groups in other
        // federations (whose subtrees are unknown here: just themselves).
        let r = gansu_with_groups();
        let universe: Vec<&str> = ALL.iter().copied().chain(FOREIGN).collect();
        let mut audiences = vec![];
        for c in &universe {
            audiences.push(Kind::Subtree(c.to_string()));
            audiences.push(Kind::Ancestors(c.to_string()));
            audiences.push(Kind::Lineage(c.to_string()));
            audiences.push(to(&[*c]));
            for d in &universe {
                audiences.push(to(&[*c, *d]));
            }
        }
        for g in ["yellow-river-9", "northwest-5", "unknown-group"] {
            for include_subtrees in [false, true] {
                for charter in [false, true] {
                    audiences.push(group(g, include_subtrees, charter));
                }
            }
        }
        for aud in &audiences {
            for author in &universe {
                for s in &universe {
                    let (author, s) = (*author, *s);
                    let sub = r.subtree(s);
                    let within = universe
                        .iter()
                        .any(|n| sub.contains(&n.to_string()) && visible_to(&r, aud, author, n));
                    let outside = universe
                        .iter()
                        .any(|n| !sub.contains(&n.to_string()) && visible_to(&r, aud, author, n));
                    assert_eq!(
                        visible_within(&r, aud, author, s),
                        within,
                        "within {aud:?} by {author} at {s}"
                    );
                    assert_eq!(
                        visible_outside(&r, aud, author, s),
                        outside,
                        "outside {aud:?} by {author} at {s}"
                    );
                }
            }
        }
    }
}
