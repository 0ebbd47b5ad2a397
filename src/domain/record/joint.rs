//! 联席会议: a joint meeting of a lateral group, with its joint report and the members'
//! roll-ups of their shares.
//!
//! The host of the year (named by the charter in force; checked at ingest in `authz`)
//! convenes the meeting and owns it: the theme, every draft of the joint report, the final
//! report and the record of where it was sent. Each member owns what it adds: its
//! contributions (research and comments, revisable only by itself), its comments on drafts,
//! and its roll-ups — the progress of its share of the joint topic, computed from its own
//! tree, which stays in its tree. Every event repeats the meeting's audience.
//!
//! convened → (contributions, roll-ups) → drafted v1 → (comments) → drafted v2 … →
//! finalized → sent to one or more destinations. Contributions, drafts and comments close at
//! finalization; roll-ups continue (implementation and re-consultation go on for years).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Machine;
use crate::domain::{Fact, Roster};
use crate::pb::{self, audience::Kind, event::Body};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JointStatus {
    /// Events arrived before the convening.
    #[default]
    Pending,
    Convened,
    Drafting,
    Finalized,
}

impl JointStatus {
    pub fn name(self) -> &'static str {
        match self {
            JointStatus::Pending => "pending",
            JointStatus::Convened => "convened",
            JointStatus::Drafting => "drafting",
            JointStatus::Finalized => "finalized",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Convening {
    pub group_id: String,
    pub host: String,
    pub year: u32,
    pub theme: String,
    pub description: String,
    pub date: String,
    pub place: String,
    pub include_subtrees: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// Contribution id, hex.
    pub id: String,
    pub member: String,
    pub version: u32,
    /// "research" or "comment".
    pub kind: String,
    pub title: String,
    pub text: String,
    pub recommendations: Vec<String>,
    pub attachment_digests: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub version: u32,
    pub title: String,
    pub text: String,
    pub recommendations: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftComment {
    pub member: String,
    pub version: u32,
    pub agree: bool,
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// "national-committee", "joint-proposal" or "governments".
    pub destination: String,
    pub recipient: String,
    pub reference: String,
    pub date: String,
}

/// A member's latest roll-up of its share.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollup {
    pub member: String,
    /// The member's own topic (UUID text).
    pub topic_id: String,
    pub topic_title: String,
    pub progress_permille: u32,
    pub assignments: u32,
    pub acknowledged: u32,
    pub submitted: u32,
    pub approved: u32,
    pub overdue: u32,
    pub committees: u32,
    pub recommendations: u32,
    pub recommendations_closed: u32,
    pub reconsultation_rounds: u32,
    pub note: String,
    /// The hybrid clock of the roll-up (when the member computed it).
    pub hlc: u64,
    /// How many roll-ups the member has published.
    pub count: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JointMeeting {
    pub convening: Option<Convening>,
    pub status: JointStatus,
    /// By contribution id (hex).
    pub contributions: BTreeMap<String, Contribution>,
    pub drafts: Vec<Draft>,
    pub comments: Vec<DraftComment>,
    pub final_version: Option<u32>,
    pub dispatches: Vec<Dispatch>,
    /// The latest roll-up of each member, by member code.
    pub rollups: BTreeMap<String, Rollup>,
}

pub fn destination_name(v: i32) -> &'static str {
    match pb::JointReportDestination::try_from(v) {
        Ok(pb::JointReportDestination::NationalCommittee) => "national-committee",
        Ok(pb::JointReportDestination::JointProposal) => "joint-proposal",
        Ok(pb::JointReportDestination::Governments) => "governments",
        _ => "",
    }
}

fn same_audience(a: &Kind, c: &Convening) -> bool {
    matches!(a, Kind::Group(g) if g.group_id == c.group_id && g.include_subtrees == c.include_subtrees && !g.charter)
}

impl Machine for JointMeeting {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        let who = fact.origin.as_str();
        if let Body::JointMeetingConvened(m) = &fact.body {
            if self.convening.is_some() {
                return Err("the meeting was convened already".into());
            }
            let include_subtrees = matches!(&fact.audience, Kind::Group(g) if g.include_subtrees);
            self.convening = Some(Convening {
                group_id: m.group_id.clone(),
                host: who.to_string(),
                year: m.year,
                theme: m.theme.clone(),
                description: m.description.clone(),
                date: m.date.clone(),
                place: m.place.clone(),
                include_subtrees,
            });
            self.status = JointStatus::Convened;
            return Ok(());
        }
        let Some(c) = &self.convening else {
            return Err("the meeting itself has not arrived here (yet)".into());
        };
        if !same_audience(&fact.audience, c) {
            return Err(format!(
                "the event's audience differs from the meeting's (group {}{}); it would not reach everyone who follows the meeting",
                c.group_id,
                if c.include_subtrees { " with subtrees" } else { "" }
            ));
        }
        let host = c.host.clone();
        let host_only = |what: &str| -> Result<(), String> {
            if who == host {
                Ok(())
            } else {
                Err(format!("only the host {host} may {what}, not {who}"))
            }
        };
        let open = |what: &str, status: JointStatus| -> Result<(), String> {
            if status == JointStatus::Finalized {
                Err(format!("the joint report is final: no more {what}"))
            } else {
                Ok(())
            }
        };
        match &fact.body {
            Body::JointContributionMade(k) => {
                open("contributions", self.status)?;
                let id = hex::encode(&k.contribution_id);
                let expected = match self.contributions.get(&id) {
                    Some(prev) if prev.member != who => {
                        return Err(format!(
                            "contribution {} belongs to {}; only its author revises it",
                            &id[..8.min(id.len())],
                            prev.member
                        ))
                    }
                    Some(prev) => prev.version + 1,
                    None => 1,
                };
                if k.version != expected {
                    return Err(format!(
                        "contribution version {} is out of sequence; expected {expected}",
                        k.version
                    ));
                }
                let kind = match pb::JointContributionKind::try_from(k.kind) {
                    Ok(pb::JointContributionKind::Comment) => "comment",
                    _ => "research",
                };
                self.contributions.insert(
                    id.clone(),
                    Contribution {
                        id,
                        member: who.to_string(),
                        version: k.version,
                        kind: kind.into(),
                        title: k.title.clone(),
                        text: k.text.clone(),
                        recommendations: k.recommendations.clone(),
                        attachment_digests: k.attachment_digests.clone(),
                    },
                );
            }
            Body::JointReportDrafted(d) => {
                host_only("draft the joint report")?;
                open("drafts", self.status)?;
                let expected = self.drafts.len() as u32 + 1;
                if d.version != expected {
                    return Err(format!(
                        "draft version {} is out of sequence; expected {expected}",
                        d.version
                    ));
                }
                self.drafts.push(Draft {
                    version: d.version,
                    title: d.title.clone(),
                    text: d.text.clone(),
                    recommendations: d.recommendations.clone(),
                });
                self.status = JointStatus::Drafting;
            }
            Body::JointReportCommented(m) => {
                open("comments", self.status)?;
                if who == host {
                    return Err("the host drafts the report; the members comment on it".into());
                }
                if m.version == 0 || m.version as usize > self.drafts.len() {
                    return Err(format!(
                        "there is no draft version {} (latest: {})",
                        m.version,
                        self.drafts.len()
                    ));
                }
                self.comments.push(DraftComment {
                    member: who.to_string(),
                    version: m.version,
                    agree: m.agree,
                    text: m.text.clone(),
                });
            }
            Body::JointReportFinalized(f) => {
                host_only("finalize the joint report")?;
                open("finalizing", self.status)?;
                if self.drafts.is_empty() || f.version as usize != self.drafts.len() {
                    return Err(format!(
                        "only the latest draft (version {}) can become final, not version {}",
                        self.drafts.len(),
                        f.version
                    ));
                }
                self.final_version = Some(f.version);
                self.status = JointStatus::Finalized;
            }
            Body::JointReportSent(s) => {
                host_only("record where the joint report was sent")?;
                if self.status != JointStatus::Finalized {
                    return Err("finalize the joint report before sending it".into());
                }
                let destination = destination_name(s.destination);
                if destination.is_empty() {
                    return Err("say where the report went: national-committee, joint-proposal or governments".into());
                }
                self.dispatches.push(Dispatch {
                    destination: destination.into(),
                    recipient: s.recipient.clone(),
                    reference: s.reference.clone(),
                    date: s.date.clone(),
                });
            }
            Body::JointRollupPublished(r) => {
                let count = self.rollups.get(who).map_or(0, |p| p.count) + 1;
                self.rollups.insert(
                    who.to_string(),
                    Rollup {
                        member: who.to_string(),
                        topic_id: uuid::Uuid::from_slice(&r.topic_id)
                            .map(|u| u.to_string())
                            .unwrap_or_default(),
                        topic_title: r.topic_title.clone(),
                        progress_permille: r.progress_permille.min(1000),
                        assignments: r.assignments,
                        acknowledged: r.acknowledged,
                        submitted: r.submitted,
                        approved: r.approved,
                        overdue: r.overdue,
                        committees: r.committees,
                        recommendations: r.recommendations,
                        recommendations_closed: r.recommendations_closed,
                        reconsultation_rounds: r.reconsultation_rounds,
                        note: r.note.clone(),
                        hlc: fact.hlc,
                        count,
                    },
                );
            }
            other => {
                return Err(format!(
                    "{} is not a joint meeting event",
                    crate::event::kind_name(other)
                ))
            }
        }
        Ok(())
    }
}

impl JointMeeting {
    /// The group-wide progress: the mean of the members' latest roll-ups (per mille), and
    /// how many members have reported.
    pub fn progress_permille(&self) -> u32 {
        if self.rollups.is_empty() {
            return 0;
        }
        let sum: u64 = self
            .rollups
            .values()
            .map(|r| u64::from(r.progress_permille))
            .sum();
        (sum / self.rollups.len() as u64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::testkit::fact;
    use crate::domain::record::{fold, Folded};
    use crate::domain::roster::tests::gansu;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn aud() -> Kind {
        Kind::Group(pb::GroupAudience {
            group_id: "yellow-river-9".into(),
            include_subtrees: false,
            charter: false,
        })
    }

    /// A whole meeting hosted by Ningxia 640000 with Gansu and Qinghai, plus noise: a draft
    /// by a member, a revision of another's contribution, a comment by the host, a late
    /// contribution after finalization.
    fn meeting() -> Vec<Fact> {
        let m = Uuid::now_v7().as_bytes().to_vec();
        let c_gs = Uuid::now_v7().as_bytes().to_vec();
        let topic = Uuid::now_v7().as_bytes().to_vec();
        let contribute = |id: &[u8], v: u32, text: &str| {
            Body::JointContributionMade(pb::JointContributionMade {
                meeting_id: m.clone(),
                contribution_id: id.to_vec(),
                version: v,
                kind: pb::JointContributionKind::Research as i32,
                title: "甘肃段调研".into(),
                text: text.into(),
                ..Default::default()
            })
        };
        let draft = |v: u32| {
            Body::JointReportDrafted(pb::JointReportDrafted {
                meeting_id: m.clone(),
                version: v,
                title: "联合调研报告".into(),
                text: format!("第{v}稿"),
                recommendations: vec!["建立流域生态补偿机制".into()],
            })
        };
        let rollup = |p: u32| {
            Body::JointRollupPublished(pb::JointRollupPublished {
                meeting_id: m.clone(),
                topic_id: topic.clone(),
                topic_title: "黄河甘肃段".into(),
                progress_permille: p,
                assignments: 2,
                ..Default::default()
            })
        };
        let a = aud();
        vec![
            fact(
                "640000",
                1,
                10,
                a.clone(),
                Body::JointMeetingConvened(pb::JointMeetingConvened {
                    meeting_id: m.clone(),
                    group_id: "yellow-river-9".into(),
                    year: 2026,
                    theme: "黄河流域生态保护".into(),
                    ..Default::default()
                }),
            ),
            fact("620000", 1, 20, a.clone(), rollup(100)),
            fact("620000", 2, 30, a.clone(), contribute(&c_gs, 1, "v1")),
            fact("630000", 1, 35, a.clone(), contribute(&c_gs, 2, "冒名修改")),
            fact("620000", 3, 40, a.clone(), contribute(&c_gs, 2, "v2")),
            fact("620000", 4, 45, a.clone(), draft(1)),
            fact("640000", 2, 50, a.clone(), draft(1)),
            fact(
                "630000",
                2,
                60,
                a.clone(),
                Body::JointReportCommented(pb::JointReportCommented {
                    meeting_id: m.clone(),
                    version: 1,
                    agree: false,
                    text: "补充青海段数据".into(),
                }),
            ),
            fact(
                "640000",
                3,
                65,
                a.clone(),
                Body::JointReportCommented(pb::JointReportCommented {
                    meeting_id: m.clone(),
                    version: 1,
                    agree: true,
                    text: String::new(),
                }),
            ),
            fact("640000", 4, 70, a.clone(), draft(2)),
            fact(
                "640000",
                5,
                80,
                a.clone(),
                Body::JointReportFinalized(pb::JointReportFinalized {
                    meeting_id: m.clone(),
                    version: 2,
                }),
            ),
            fact(
                "640000",
                6,
                90,
                a.clone(),
                Body::JointReportSent(pb::JointReportSent {
                    meeting_id: m.clone(),
                    destination: pb::JointReportDestination::NationalCommittee as i32,
                    recipient: "全国政协".into(),
                    ..Default::default()
                }),
            ),
            fact("620000", 5, 95, a.clone(), contribute(&c_gs, 3, "迟到")),
            fact("620000", 6, 100, a, rollup(900)),
        ]
    }

    #[test]
    fn the_host_owns_the_report_and_each_member_its_contributions() {
        let folded: Folded<JointMeeting> = fold(&meeting(), &gansu());
        let m = &folded.record;
        assert_eq!(m.status, JointStatus::Finalized);
        assert_eq!(m.final_version, Some(2));
        assert_eq!(m.drafts.len(), 2);
        assert_eq!(m.comments.len(), 1);
        assert_eq!(m.dispatches.len(), 1);
        let c = m.contributions.values().next().expect("one contribution");
        assert_eq!(
            (c.member.as_str(), c.version, c.text.as_str()),
            ("620000", 2, "v2")
        );
        let r = &m.rollups["620000"];
        assert_eq!((r.progress_permille, r.count), (900, 2));
        assert_eq!(m.progress_permille(), 900);
        let refused: Vec<String> = folded
            .history
            .iter()
            .filter_map(|h| h.refused.clone())
            .collect();
        assert_eq!(refused.len(), 4, "{refused:?}");
        assert!(refused[0].contains("belongs to 620000"), "{}", refused[0]);
        assert!(
            refused[1].contains("only the host 640000"),
            "{}",
            refused[1]
        );
        assert!(refused[2].contains("the members comment"), "{}", refused[2]);
        assert!(refused[3].contains("final"), "{}", refused[3]);
    }

    #[test]
    fn follow_ups_repeat_the_meetings_audience() {
        let mut facts = meeting();
        facts[1].audience = Kind::Group(pb::GroupAudience {
            group_id: "yellow-river-9".into(),
            include_subtrees: true,
            charter: false,
        });
        let folded: Folded<JointMeeting> = fold(&facts, &gansu());
        assert!(folded.record.rollups["620000"].count == 1);
        assert!(folded.history[1]
            .refused
            .as_deref()
            .is_some_and(|r| r.contains("audience differs")));
    }

    proptest! {
        #[test]
        fn any_arrival_order_and_duplication_gives_the_meeting_of_the_set(
            perm in Just(meeting()).prop_shuffle(),
            dups in proptest::collection::vec(0usize..14, 0..5),
        ) {
            let r = gansu();
            let mut sorted = perm.clone();
            sorted.sort_by_key(|f| f.order_key());
            let expected: Folded<JointMeeting> = fold(&sorted, &r);
            prop_assert_eq!(expected.record.status, JointStatus::Finalized);
            let mut arrivals = perm.clone();
            for d in dups { arrivals.insert(d % arrivals.len(), perm[d % perm.len()].clone()); }
            let mut seen: Vec<Fact> = Vec::new();
            let mut state = Folded::<JointMeeting>::default();
            for f in &arrivals {
                if seen.iter().any(|s| s.id == f.id) { continue; }
                seen.push(f.clone());
                if state.can_append(f) { state.apply(f, &r) } else { state = fold(&seen, &r) }
            }
            prop_assert_eq!(&state, &expected);
        }
    }
}
