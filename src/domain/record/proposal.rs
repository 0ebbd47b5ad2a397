//! 议题建议: a topic proposed to a committee, by the committee itself (党政点题, 委员征题,
//! 政协选题, recorded where they are received) or from a level below (a county proposes
//! upwards), classified by the receiving committee by the level that must solve it
//! (县级及以上 → a CPPCC consultation, 基层 → a grassroots consultation) and adopted or
//! declined by it.
//!
//! submitted → adopted | declined. The proposer owns the proposal; the decision is an event
//! of the receiving committee (`to`), which the fold checks: only `to` decides, once, naming
//! the proposer, with a classification.
use serde::{Deserialize, Serialize};

use super::Machine;
use crate::domain::{Fact, Roster};
use crate::pb::{self, event::Body};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalStatus {
    /// The decision arrived before the proposal itself.
    #[default]
    Pending,
    Submitted,
    Adopted,
    Declined,
}

impl ProposalStatus {
    pub fn name(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::Submitted => "submitted",
            ProposalStatus::Adopted => "adopted",
            ProposalStatus::Declined => "declined",
        }
    }
}

/// What a tier means for the consultation that follows.
pub fn consultation_kind(tier: i32) -> &'static str {
    match pb::TopicTier::try_from(tier) {
        Ok(pb::TopicTier::CountyAndAbove) => "cppcc-consultation",
        Ok(pb::TopicTier::Grassroots) => "grassroots-consultation",
        _ => "",
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicProposal {
    pub proposer: Option<String>,
    pub to: String,
    pub title: String,
    pub description: String,
    pub source: i32,
    /// The form and tier the proposer suggested.
    pub form: i32,
    pub tier: i32,
    pub plan_year: u32,
    pub status: ProposalStatus,
    /// The receiving committee's classification and form, once decided.
    pub decided_tier: i32,
    pub decided_form: i32,
    pub reason: String,
    /// The topic created from it (16 bytes), if any.
    pub topic_id: Vec<u8>,
}

impl Machine for TopicProposal {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        match &fact.body {
            Body::TopicProposalSubmitted(p) => {
                if self.proposer.is_some() {
                    return Err("the proposal was already submitted".into());
                }
                self.proposer = Some(fact.origin.clone());
                self.to = p.to.clone();
                self.title = p.title.clone();
                self.description = p.description.clone();
                self.source = p.source;
                self.form = p.form;
                self.tier = p.tier;
                self.plan_year = p.plan_year;
                self.status = ProposalStatus::Submitted;
                Ok(())
            }
            Body::TopicProposalDecided(d) => {
                let Some(proposer) = &self.proposer else {
                    return Err("the proposal itself has not arrived here (yet)".into());
                };
                if fact.origin != self.to {
                    return Err(format!(
                        "only {}, to which it was proposed, decides it, not {}",
                        self.to, fact.origin
                    ));
                }
                if d.proposer != *proposer {
                    return Err(format!(
                        "the decision names {} as proposer, but {proposer} proposed it",
                        d.proposer
                    ));
                }
                if self.status != ProposalStatus::Submitted {
                    return Err(format!("the proposal was already {}", self.status.name()));
                }
                if consultation_kind(d.tier).is_empty() {
                    return Err(
                        "classify the proposal by the level that must solve it: county-and-above (县级及以上) or grassroots (基层)"
                            .into(),
                    );
                }
                let status = match pb::TopicProposalDecision::try_from(d.decision) {
                    Ok(pb::TopicProposalDecision::Adopt) => ProposalStatus::Adopted,
                    Ok(pb::TopicProposalDecision::Decline) => ProposalStatus::Declined,
                    _ => return Err("a decision adopts (采纳) or declines (不予采纳)".into()),
                };
                if status == ProposalStatus::Declined && !d.topic_id.is_empty() {
                    return Err("a declined proposal does not become a topic".into());
                }
                self.status = status;
                self.decided_tier = d.tier;
                self.decided_form = d.form;
                self.reason = d.reason.clone();
                self.topic_id = d.topic_id.clone();
                Ok(())
            }
            other => Err(format!(
                "{} is not a topic proposal event",
                crate::event::kind_name(other)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::testkit::*;
    use crate::domain::record::{fold, Folded};
    use crate::domain::roster::tests::gansu;
    use crate::pb::audience::Kind;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn decided(id: &[u8], by: &str, seq: u64, hlc: u64, adopt: bool, tier: pb::TopicTier) -> Fact {
        fact(
            by,
            seq,
            hlc,
            to(&["620123"]),
            Body::TopicProposalDecided(pb::TopicProposalDecided {
                proposal_id: id.to_vec(),
                proposer: "620123".into(),
                decision: if adopt {
                    pb::TopicProposalDecision::Adopt
                } else {
                    pb::TopicProposalDecision::Decline
                } as i32,
                tier: tier as i32,
                form: pb::TopicForm::Thematic as i32,
                reason: "关系全省".into(),
                topic_id: if adopt {
                    Uuid::now_v7().as_bytes().to_vec()
                } else {
                    vec![]
                },
            }),
        )
    }

    /// A county proposes to the province; the city (a relay) tries to decide, the province
    /// first forgets to classify, then adopts; a late decline is refused.
    fn history() -> Vec<Fact> {
        let id = Uuid::now_v7().as_bytes().to_vec();
        vec![
            fact(
                "620123",
                1,
                10,
                Kind::Ancestors("620000".into()),
                Body::TopicProposalSubmitted(pb::TopicProposalSubmitted {
                    proposal_id: id.clone(),
                    to: "620000".into(),
                    title: "黄河沿岸乡镇饮水安全".into(),
                    source: pb::TopicSource::Members as i32,
                    tier: pb::TopicTier::CountyAndAbove as i32,
                    plan_year: 2026,
                    ..Default::default()
                }),
            ),
            decided(&id, "620100", 1, 20, true, pb::TopicTier::CountyAndAbove),
            decided(&id, "620000", 1, 30, true, pb::TopicTier::Unspecified),
            decided(&id, "620000", 2, 40, true, pb::TopicTier::CountyAndAbove),
            decided(&id, "620000", 3, 50, false, pb::TopicTier::Grassroots),
        ]
    }

    #[test]
    fn only_the_receiver_decides_once_and_classifies() {
        let f: Folded<TopicProposal> = fold(&history(), &gansu());
        assert_eq!(f.record.status, ProposalStatus::Adopted);
        assert_eq!(f.record.proposer.as_deref(), Some("620123"));
        assert_eq!(
            consultation_kind(f.record.decided_tier),
            "cppcc-consultation"
        );
        assert_eq!(f.record.topic_id.len(), 16);
        let refused: Vec<String> = f.history.iter().filter_map(|h| h.refused.clone()).collect();
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused[0].contains("only 620000"), "{}", refused[0]);
        assert!(refused[1].contains("classify"), "{}", refused[1]);
        assert!(refused[2].contains("already adopted"), "{}", refused[2]);
    }

    #[test]
    fn a_decision_before_its_proposal_waits_for_it() {
        let h = history();
        let mut f: Folded<TopicProposal> = Folded::default();
        f.apply(&h[3], &gansu());
        assert_eq!(f.record.status, ProposalStatus::Pending);
        let f: Folded<TopicProposal> = fold(&[h[3].clone(), h[0].clone()], &gansu());
        assert_eq!(f.record.status, ProposalStatus::Adopted);
    }

    proptest! {
        #[test]
        fn any_arrival_order_gives_the_state_of_the_set(
            perm in Just(history()).prop_shuffle(),
            dups in proptest::collection::vec(0usize..5, 0..4),
        ) {
            let r = gansu();
            let expected: Folded<TopicProposal> = fold(&sorted(&perm), &r);
            prop_assert_eq!(expected.record.status, ProposalStatus::Adopted);
            let arrivals = with_duplicates(&perm, &dups);
            prop_assert_eq!(&arrive::<TopicProposal>(&arrivals, &r), &expected);
            prop_assert_eq!(&fold::<TopicProposal>(&arrivals, &r), &expected);
        }
    }
}
