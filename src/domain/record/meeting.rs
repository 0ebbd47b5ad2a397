//! 协商会议: the consultation meeting of a topic (the "during" phase), and the contributions
//! (发言, 书面材料) the participating committees submit to it.
//!
//! Meeting: scheduled (again: moved) → concluded | cancelled; owned by the topic's owner,
//! audience subtree(owner) — every committee of the subtree may hold a branch venue.
//! Contribution: a separate record owned by its author (a participant), audience
//! ancestors(meeting owner); submitting again revises it (versions 1, 2, …). Whether its
//! author is a participant is a join of two records, made by the view (a contribution from a
//! committee the meeting does not list is shown as such, never counted).
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Machine;
use crate::domain::{uuid_field, Fact, Roster};
use crate::pb::event::Body;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeetingStatus {
    /// Events arrived before the meeting's schedule.
    #[default]
    Pending,
    Scheduled,
    Concluded,
    Cancelled,
}

impl MeetingStatus {
    pub fn name(self) -> &'static str {
        match self {
            MeetingStatus::Pending => "pending",
            MeetingStatus::Scheduled => "scheduled",
            MeetingStatus::Concluded => "concluded",
            MeetingStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Venue {
    pub committee: String,
    pub place: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meeting {
    pub owner: Option<String>,
    pub topic_id: Option<Uuid>,
    pub topic_title: String,
    pub date: String,
    pub place: String,
    pub main_venue: String,
    pub branch_venues: Vec<Venue>,
    pub participants: Vec<String>,
    pub status: MeetingStatus,
    /// How many times it was moved after its first schedule.
    pub moved: u32,
    /// The conclusion's summary or the cancellation's reason.
    pub closing_text: String,
}

impl Machine for Meeting {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        if let Some(owner) = &self.owner {
            if *owner != fact.origin {
                return Err(format!(
                    "only the meeting's organiser {owner} may change it, not {}",
                    fact.origin
                ));
            }
        }
        use MeetingStatus::*;
        match (&fact.body, self.status) {
            (Body::MeetingScheduled(m), Pending | Scheduled) => {
                let topic = uuid_field(&m.topic_id, "topic_id")?;
                if self.topic_id.is_some_and(|t| t != topic) {
                    return Err("a meeting cannot move to another topic".into());
                }
                if self.status == Scheduled {
                    self.moved += 1;
                }
                self.owner = Some(fact.origin.clone());
                self.topic_id = Some(topic);
                self.topic_title = m.topic_title.clone();
                self.date = m.date.clone();
                self.place = m.place.clone();
                self.main_venue = m.main_venue.clone();
                self.branch_venues = m
                    .branch_venues
                    .iter()
                    .map(|v| Venue {
                        committee: v.committee.clone(),
                        place: v.place.clone(),
                    })
                    .collect();
                let mut participants = m.participants.clone();
                participants.sort();
                participants.dedup();
                self.participants = participants;
                self.status = Scheduled;
            }
            (Body::MeetingConcluded(c), Scheduled) => {
                self.status = Concluded;
                self.closing_text = c.summary.clone();
            }
            (Body::MeetingCancelled(c), Scheduled) => {
                self.status = Cancelled;
                self.closing_text = c.reason.clone();
            }
            (Body::MeetingScheduled(_), s) => {
                return Err(format!("a {} meeting cannot be rescheduled", s.name()))
            }
            (Body::MeetingConcluded(_) | Body::MeetingCancelled(_), Pending) => {
                return Err("the meeting itself has not arrived here (yet)".into())
            }
            (Body::MeetingConcluded(_), s) => {
                return Err(format!("a {} meeting cannot be concluded", s.name()))
            }
            (Body::MeetingCancelled(_), s) => {
                return Err(format!("a {} meeting cannot be cancelled", s.name()))
            }
            (other, _) => {
                return Err(format!(
                    "{} is not a meeting event",
                    crate::event::kind_name(other)
                ))
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContributionVersion {
    pub version: u32,
    pub title: String,
    pub text: String,
    pub speaker: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub author: Option<String>,
    pub meeting_id: Option<Uuid>,
    pub meeting_owner: String,
    pub versions: Vec<ContributionVersion>,
}

impl Contribution {
    pub fn latest(&self) -> Option<&ContributionVersion> {
        self.versions.last()
    }
}

impl Machine for Contribution {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        let Body::MeetingContributionSubmitted(c) = &fact.body else {
            return Err(format!(
                "{} is not a contribution event",
                crate::event::kind_name(&fact.body)
            ));
        };
        if let Some(author) = &self.author {
            if *author != fact.origin {
                return Err(format!(
                    "only its author {author} revises a contribution, not {}",
                    fact.origin
                ));
            }
        }
        let meeting = uuid_field(&c.meeting_id, "meeting_id")?;
        if self.meeting_id.is_some_and(|m| m != meeting) {
            return Err("a contribution cannot move to another meeting".into());
        }
        let expected = self.versions.len() as u32 + 1;
        if c.version != expected {
            return Err(format!(
                "contribution version {} is out of sequence; expected {expected}",
                c.version
            ));
        }
        self.author = Some(fact.origin.clone());
        self.meeting_id = Some(meeting);
        self.meeting_owner = c.meeting_owner.clone();
        self.versions.push(ContributionVersion {
            version: c.version,
            title: c.title.clone(),
            text: c.text.clone(),
            speaker: c.speaker.clone(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::testkit::*;
    use crate::domain::record::{fold, Folded};
    use crate::domain::roster::tests::gansu;
    use crate::pb::{self, audience::Kind};
    use proptest::prelude::*;

    fn sub() -> Kind {
        Kind::Subtree("620000".into())
    }

    fn schedule(seq: u64, hlc: u64, id: &[u8], topic: &[u8], date: &str) -> Fact {
        fact(
            "620000",
            seq,
            hlc,
            sub(),
            Body::MeetingScheduled(pb::MeetingScheduled {
                meeting_id: id.to_vec(),
                topic_id: topic.to_vec(),
                topic_title: "黄河流域生态保护".into(),
                date: date.into(),
                place: "兰州".into(),
                main_venue: "省政协机关".into(),
                branch_venues: vec![pb::MeetingVenue {
                    committee: "620400".into(),
                    place: "白银市政协".into(),
                }],
                participants: vec!["620400".into(), "620100".into()],
            }),
        )
    }

    /// Scheduled, moved, a city tries to conclude it, concluded, then a late cancellation
    /// and a late move are refused.
    fn history() -> Vec<Fact> {
        let id = Uuid::now_v7().as_bytes().to_vec();
        let topic = Uuid::now_v7().as_bytes().to_vec();
        vec![
            schedule(1, 10, &id, &topic, "2026-09-10"),
            schedule(2, 20, &id, &topic, "2026-09-17"),
            fact(
                "620100",
                1,
                25,
                Kind::Subtree("620100".into()),
                Body::MeetingConcluded(pb::MeetingConcluded {
                    meeting_id: id.clone(),
                    summary: "越权".into(),
                }),
            ),
            fact(
                "620000",
                3,
                30,
                sub(),
                Body::MeetingConcluded(pb::MeetingConcluded {
                    meeting_id: id.clone(),
                    summary: "形成建议 3 条".into(),
                }),
            ),
            fact(
                "620000",
                4,
                40,
                sub(),
                Body::MeetingCancelled(pb::MeetingCancelled {
                    meeting_id: id.clone(),
                    reason: "晚了".into(),
                }),
            ),
            schedule(5, 50, &id, &topic, "2026-10-01"),
        ]
    }

    #[test]
    fn a_meeting_moves_then_concludes_and_only_its_organiser_changes_it() {
        let f: Folded<Meeting> = fold(&history(), &gansu());
        let m = &f.record;
        assert_eq!(m.status, MeetingStatus::Concluded);
        assert_eq!(m.date, "2026-09-17");
        assert_eq!(m.moved, 1);
        assert_eq!(m.participants, ["620100", "620400"]);
        assert_eq!(m.closing_text, "形成建议 3 条");
        let refused: Vec<String> = f.history.iter().filter_map(|h| h.refused.clone()).collect();
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused[0].contains("organiser 620000"));
        assert!(refused[1].contains("concluded meeting cannot be cancelled"));
        assert!(refused[2].contains("rescheduled"));
    }

    fn contributions() -> Vec<Fact> {
        let id = Uuid::now_v7().as_bytes().to_vec();
        let meeting = Uuid::now_v7().as_bytes().to_vec();
        let c = |by: &str, seq: u64, hlc: u64, version: u32, text: &str| {
            fact(
                by,
                seq,
                hlc,
                Kind::Ancestors("620000".into()),
                Body::MeetingContributionSubmitted(pb::MeetingContributionSubmitted {
                    contribution_id: id.clone(),
                    meeting_id: meeting.clone(),
                    meeting_owner: "620000".into(),
                    version,
                    title: "兰州市政协发言".into(),
                    text: text.into(),
                    speaker: "张主席".into(),
                }),
            )
        };
        vec![
            c("620100", 1, 10, 1, "初稿"),
            c("620100", 2, 20, 3, "跳号"),
            c("620400", 1, 25, 2, "冒名"),
            c("620100", 3, 30, 2, "定稿"),
        ]
    }

    #[test]
    fn a_contribution_is_revised_only_by_its_author_in_sequence() {
        let f: Folded<Contribution> = fold(&contributions(), &gansu());
        assert_eq!(f.record.author.as_deref(), Some("620100"));
        assert_eq!(f.record.versions.len(), 2);
        assert_eq!(f.record.latest().map(|v| v.text.as_str()), Some("定稿"));
        let refused: Vec<String> = f.history.iter().filter_map(|h| h.refused.clone()).collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[0].contains("out of sequence"));
        assert!(refused[1].contains("only its author 620100"));
    }

    proptest! {
        #[test]
        fn meetings_fold_the_same_in_any_order(
            perm in Just(history()).prop_shuffle(),
            dups in proptest::collection::vec(0usize..6, 0..4),
        ) {
            let r = gansu();
            let expected: Folded<Meeting> = fold(&sorted(&perm), &r);
            prop_assert_eq!(expected.record.status, MeetingStatus::Concluded);
            let arrivals = with_duplicates(&perm, &dups);
            prop_assert_eq!(&arrive::<Meeting>(&arrivals, &r), &expected);
            prop_assert_eq!(&fold::<Meeting>(&arrivals, &r), &expected);
        }

        #[test]
        fn contributions_fold_the_same_in_any_order(
            perm in Just(contributions()).prop_shuffle(),
            dups in proptest::collection::vec(0usize..4, 0..4),
        ) {
            let r = gansu();
            let expected: Folded<Contribution> = fold(&sorted(&perm), &r);
            prop_assert_eq!(expected.record.versions.len(), 2);
            let arrivals = with_duplicates(&perm, &dups);
            prop_assert_eq!(&arrive::<Contribution>(&arrivals, &r), &expected);
            prop_assert_eq!(&fold::<Contribution>(&arrivals, &r), &expected);
        }
    }
}
