//! 建议 and 再协商: the recommendations of a topic, tracked after the meeting (the "after"
//! phase, 会后跟踪落实), and the re-consultation rounds that review them.
//!
//! Recommendation (owned by the topic's owner, who records the government side too; audience
//! subtree(owner)):
//!
//! ```text
//! issued ──handled (A/B/C)──▶ handled ──evaluated satisfied / basically satisfied──▶ closed
//!    │                          │  ▲ └──evaluated not satisfied──▶ reopened ──handled──┘
//!    └──── reviewed in a re-consultation round: implemented / superseded ──▶ closed,
//!                                                not implemented ──▶ reopened
//! ```
//!
//! Implementation updates and the government's feedback are recorded at any time while the
//! recommendation is open (feedback also after). A round reviews each open recommendation
//! at most once, in increasing round numbers.
//!
//! ReConsultation: one event, the round itself (number, date, summary, the two-way
//! evaluation, which recommendations it reviewed and added).
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Machine;
use crate::domain::{uuid_field, Fact, Roster};
use crate::pb::{self, event::Body};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecommendationStatus {
    /// Events arrived before the recommendation itself.
    #[default]
    Pending,
    /// Issued, awaiting the departments' handling.
    Issued,
    /// A handling result (A/B/C) is recorded; awaiting the committee's evaluation.
    Handled,
    /// Evaluated "not satisfied", or not implemented at a re-consultation: to be handled
    /// again.
    Reopened,
    Closed,
}

impl RecommendationStatus {
    pub fn name(self) -> &'static str {
        match self {
            RecommendationStatus::Pending => "pending",
            RecommendationStatus::Issued => "issued",
            RecommendationStatus::Handled => "handled",
            RecommendationStatus::Reopened => "reopened",
            RecommendationStatus::Closed => "closed",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(
            self,
            RecommendationStatus::Issued
                | RecommendationStatus::Handled
                | RecommendationStatus::Reopened
        )
    }
}

/// The handling result's code: A 采纳/已解决, B 列入计划, C 留作参考.
pub fn result_code(result: i32) -> &'static str {
    match pb::RecommendationResult::try_from(result) {
        Ok(pb::RecommendationResult::Adopted) => "A",
        Ok(pb::RecommendationResult::Planned) => "B",
        Ok(pb::RecommendationResult::Reference) => "C",
        _ => "",
    }
}

pub fn result_name(result: i32) -> &'static str {
    match pb::RecommendationResult::try_from(result) {
        Ok(pb::RecommendationResult::Adopted) => "adopted",
        Ok(pb::RecommendationResult::Planned) => "planned",
        Ok(pb::RecommendationResult::Reference) => "reference",
        _ => "",
    }
}

pub fn verdict_name(v: i32) -> &'static str {
    match pb::RecommendationVerdict::try_from(v) {
        Ok(pb::RecommendationVerdict::Satisfied) => "satisfied",
        Ok(pb::RecommendationVerdict::BasicallySatisfied) => "basically-satisfied",
        Ok(pb::RecommendationVerdict::NotSatisfied) => "not-satisfied",
        _ => "",
    }
}

pub fn outcome_name(o: i32) -> &'static str {
    match pb::RecommendationOutcome::try_from(o) {
        Ok(pb::RecommendationOutcome::Implemented) => "implemented",
        Ok(pb::RecommendationOutcome::NotImplemented) => "not-implemented",
        Ok(pb::RecommendationOutcome::Superseded) => "superseded",
        _ => "",
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Handling {
    pub result: i32,
    pub lead_department: String,
    pub co_departments: Vec<String>,
    pub note: String,
    pub hlc: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub note: String,
    pub percent: u32,
    pub hlc: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub from: String,
    pub text: String,
    pub hlc: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub verdict: i32,
    pub comment: String,
    pub hlc: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundReview {
    pub round: u32,
    pub round_id: Option<Uuid>,
    pub outcome: i32,
    pub note: String,
    pub hlc: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub owner: Option<String>,
    pub topic_id: Option<Uuid>,
    pub topic_title: String,
    pub meeting_id: Option<Uuid>,
    /// 0: from the meeting; n: added by re-consultation round n.
    pub round: u32,
    pub text: String,
    pub lead_department: String,
    pub co_departments: Vec<String>,
    pub due_date: String,
    pub status: RecommendationStatus,
    /// The current handling result (0 until handled).
    pub result: i32,
    pub percent: u32,
    pub handlings: Vec<Handling>,
    pub updates: Vec<Update>,
    pub feedback: Vec<Feedback>,
    pub evaluations: Vec<Verdict>,
    pub reviews: Vec<RoundReview>,
    /// How it was closed: satisfied | basically-satisfied | implemented | superseded.
    pub closed_as: String,
    pub reopened: u32,
}

fn rec_id(b: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(b).ok()
}

impl Machine for Recommendation {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        use RecommendationStatus::*;
        if let Body::RecommendationIssued(r) = &fact.body {
            if self.owner.is_some() {
                return Err("the recommendation was already issued".into());
            }
            self.owner = Some(fact.origin.clone());
            self.topic_id = Some(uuid_field(&r.topic_id, "topic_id")?);
            self.topic_title = r.topic_title.clone();
            self.meeting_id = rec_id(&r.meeting_id);
            self.round = r.round;
            self.text = r.text.clone();
            self.lead_department = r.lead_department.clone();
            self.co_departments = r.co_departments.clone();
            self.due_date = r.due_date.clone();
            self.status = Issued;
            return Ok(());
        }
        let Some(owner) = &self.owner else {
            return Err("the recommendation itself has not arrived here (yet)".into());
        };
        if *owner != fact.origin {
            return Err(format!(
                "only {owner}, whose topic it is, records its handling and evaluation, not {}",
                fact.origin
            ));
        }
        let open = |s: RecommendationStatus, what: &str| -> Result<(), String> {
            if s.is_open() {
                Ok(())
            } else {
                Err(format!("the recommendation is closed ({what} refused)"))
            }
        };
        match &fact.body {
            Body::RecommendationHandled(h) => {
                open(self.status, "handling")?;
                if result_code(h.result).is_empty() {
                    return Err(
                        "a handling result is adopted (A), planned (B) or reference only (C)"
                            .into(),
                    );
                }
                self.result = h.result;
                if !h.lead_department.is_empty() {
                    self.lead_department = h.lead_department.clone();
                }
                if !h.co_departments.is_empty() {
                    self.co_departments = h.co_departments.clone();
                }
                self.handlings.push(Handling {
                    result: h.result,
                    lead_department: h.lead_department.clone(),
                    co_departments: h.co_departments.clone(),
                    note: h.note.clone(),
                    hlc: fact.hlc,
                });
                self.status = Handled;
            }
            Body::RecommendationProgressed(p) => {
                open(self.status, "an implementation update")?;
                if p.percent > 100 {
                    return Err(format!("{} % is not a share of the work", p.percent));
                }
                self.percent = p.percent;
                self.updates.push(Update {
                    note: p.note.clone(),
                    percent: p.percent,
                    hlc: fact.hlc,
                });
            }
            Body::RecommendationFeedbackRecorded(f) => {
                self.feedback.push(Feedback {
                    from: f.from.clone(),
                    text: f.text.clone(),
                    hlc: fact.hlc,
                });
            }
            Body::RecommendationEvaluated(e) => {
                if self.status != Handled {
                    return Err(format!(
                        "only a handled recommendation is evaluated; this one is {}",
                        self.status.name()
                    ));
                }
                let name = verdict_name(e.verdict);
                if name.is_empty() {
                    return Err(
                        "an evaluation is satisfied, basically-satisfied or not-satisfied".into(),
                    );
                }
                if e.verdict == pb::RecommendationVerdict::NotSatisfied as i32 {
                    self.status = Reopened;
                    self.reopened += 1;
                } else {
                    self.status = Closed;
                    self.closed_as = name.into();
                }
                self.evaluations.push(Verdict {
                    verdict: e.verdict,
                    comment: e.comment.clone(),
                    hlc: fact.hlc,
                });
            }
            Body::RecommendationReviewed(r) => {
                open(self.status, "a re-consultation review")?;
                if r.round == 0 {
                    return Err("re-consultation rounds count from 1".into());
                }
                if let Some(last) = self.reviews.last() {
                    if r.round <= last.round {
                        return Err(format!(
                            "already reviewed in round {}; round {} comes too late",
                            last.round, r.round
                        ));
                    }
                }
                let name = outcome_name(r.outcome);
                if name.is_empty() {
                    return Err(
                        "a review finds it implemented, not-implemented or superseded".into(),
                    );
                }
                if r.outcome == pb::RecommendationOutcome::NotImplemented as i32 {
                    if self.status != Reopened {
                        self.reopened += 1;
                    }
                    self.status = Reopened;
                } else {
                    self.status = Closed;
                    self.closed_as = name.into();
                }
                self.reviews.push(RoundReview {
                    round: r.round,
                    round_id: rec_id(&r.round_id),
                    outcome: r.outcome,
                    note: r.note.clone(),
                    hlc: fact.hlc,
                });
            }
            other => {
                return Err(format!(
                    "{} is not a recommendation event",
                    crate::event::kind_name(other)
                ))
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReConsultation {
    pub owner: Option<String>,
    pub topic_id: Option<Uuid>,
    pub topic_title: String,
    pub round: u32,
    pub date: String,
    pub summary: String,
    pub committee_evaluation: String,
    pub government_evaluation: String,
    pub reviewed: Vec<Uuid>,
    pub added: Vec<Uuid>,
}

impl Machine for ReConsultation {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        let Body::ReConsultationHeld(r) = &fact.body else {
            return Err(format!(
                "{} is not a re-consultation event",
                crate::event::kind_name(&fact.body)
            ));
        };
        if self.owner.is_some() {
            return Err("this round was already recorded".into());
        }
        if r.round == 0 {
            return Err("re-consultation rounds count from 1".into());
        }
        let ids = |list: &[Vec<u8>]| -> Result<Vec<Uuid>, String> {
            list.iter()
                .map(|b| uuid_field(b, "recommendation id"))
                .collect()
        };
        *self = ReConsultation {
            owner: Some(fact.origin.clone()),
            topic_id: Some(uuid_field(&r.topic_id, "topic_id")?),
            topic_title: r.topic_title.clone(),
            round: r.round,
            date: r.date.clone(),
            summary: r.summary.clone(),
            committee_evaluation: r.committee_evaluation.clone(),
            government_evaluation: r.government_evaluation.clone(),
            reviewed: ids(&r.reviewed)?,
            added: ids(&r.added)?,
        };
        Ok(())
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

    fn sub() -> Kind {
        Kind::Subtree("620000".into())
    }

    fn ev(by: &str, seq: u64, hlc: u64, body: Body) -> Fact {
        fact(by, seq, hlc, Kind::Subtree(by.into()), body)
    }

    /// The life of one recommendation: issued; evaluated before any handling (refused);
    /// handled B; an update; the government's feedback; evaluated not satisfied (reopened); a
    /// city's evaluation (refused: not its topic); handled A; round 1 finds it not
    /// implemented, a second review in round 1 is refused; round 2 finds it implemented
    /// (closed); a later update is refused.
    fn life() -> Vec<Fact> {
        let id = Uuid::now_v7().as_bytes().to_vec();
        let round = Uuid::now_v7().as_bytes().to_vec();
        let rid = || id.clone();
        use pb::RecommendationOutcome as O;
        use pb::RecommendationResult as R;
        use pb::RecommendationVerdict as V;
        let review = |seq, hlc, n, outcome: O| {
            ev(
                "620000",
                seq,
                hlc,
                Body::RecommendationReviewed(pb::RecommendationReviewed {
                    recommendation_id: rid(),
                    round_id: round.clone(),
                    round: n,
                    outcome: outcome as i32,
                    note: format!("第{n}轮"),
                }),
            )
        };
        vec![
            fact(
                "620000",
                1,
                10,
                sub(),
                Body::RecommendationIssued(pb::RecommendationIssued {
                    recommendation_id: rid(),
                    topic_id: Uuid::now_v7().as_bytes().to_vec(),
                    topic_title: "黄河".into(),
                    text: "建立沿黄水质监测网络".into(),
                    lead_department: "省水利厅".into(),
                    due_date: "2027-06-30".into(),
                    ..Default::default()
                }),
            ),
            ev(
                "620000",
                2,
                20,
                Body::RecommendationEvaluated(pb::RecommendationEvaluated {
                    recommendation_id: rid(),
                    verdict: V::Satisfied as i32,
                    comment: "太早".into(),
                }),
            ),
            ev(
                "620000",
                3,
                30,
                Body::RecommendationHandled(pb::RecommendationHandled {
                    recommendation_id: rid(),
                    result: R::Planned as i32,
                    lead_department: "省水利厅".into(),
                    co_departments: vec!["省生态环境厅".into()],
                    note: "列入2027年计划".into(),
                }),
            ),
            ev(
                "620000",
                4,
                40,
                Body::RecommendationProgressed(pb::RecommendationProgressed {
                    recommendation_id: rid(),
                    note: "完成选址".into(),
                    percent: 30,
                }),
            ),
            ev(
                "620000",
                5,
                50,
                Body::RecommendationFeedbackRecorded(pb::RecommendationFeedbackRecorded {
                    recommendation_id: rid(),
                    from: "省水利厅".into(),
                    text: "资金已申请".into(),
                }),
            ),
            ev(
                "620000",
                6,
                60,
                Body::RecommendationEvaluated(pb::RecommendationEvaluated {
                    recommendation_id: rid(),
                    verdict: V::NotSatisfied as i32,
                    comment: "进度偏慢".into(),
                }),
            ),
            ev(
                "620100",
                1,
                65,
                Body::RecommendationEvaluated(pb::RecommendationEvaluated {
                    recommendation_id: rid(),
                    verdict: V::Satisfied as i32,
                    comment: "越权".into(),
                }),
            ),
            ev(
                "620000",
                7,
                70,
                Body::RecommendationHandled(pb::RecommendationHandled {
                    recommendation_id: rid(),
                    result: R::Adopted as i32,
                    note: "已开工".into(),
                    ..Default::default()
                }),
            ),
            review(8, 80, 1, O::NotImplemented),
            review(9, 81, 1, O::Implemented),
            review(10, 90, 2, O::Implemented),
            ev(
                "620000",
                11,
                100,
                Body::RecommendationProgressed(pb::RecommendationProgressed {
                    recommendation_id: rid(),
                    note: "晚了".into(),
                    percent: 100,
                }),
            ),
        ]
    }

    #[test]
    fn not_satisfied_reopens_and_a_later_round_closes() {
        let f: Folded<Recommendation> = fold(&life(), &gansu());
        let r = &f.record;
        assert_eq!(r.status, RecommendationStatus::Closed);
        assert_eq!(r.closed_as, "implemented");
        assert_eq!(result_code(r.result), "A");
        assert_eq!(r.handlings.len(), 2);
        assert_eq!(
            r.reopened, 2,
            "not satisfied, then not implemented in round 1"
        );
        assert_eq!(r.percent, 30);
        assert_eq!(r.feedback.len(), 1);
        assert_eq!(
            r.reviews.iter().map(|x| x.round).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(r.co_departments, ["省生态环境厅"]);
        let refused: Vec<String> = f.history.iter().filter_map(|h| h.refused.clone()).collect();
        assert_eq!(refused.len(), 4, "{refused:?}");
        assert!(refused[0].contains("only a handled"), "{}", refused[0]);
        assert!(refused[1].contains("only 620000"), "{}", refused[1]);
        assert!(
            refused[2].contains("already reviewed in round 1"),
            "{}",
            refused[2]
        );
        assert!(refused[3].contains("closed"), "{}", refused[3]);
    }

    #[test]
    fn satisfied_closes_it() {
        let l = life();
        let mut facts = l[..5].to_vec();
        facts.push(ev(
            "620000",
            6,
            60,
            Body::RecommendationEvaluated(pb::RecommendationEvaluated {
                recommendation_id: match &l[0].body {
                    Body::RecommendationIssued(r) => r.recommendation_id.clone(),
                    _ => unreachable!(),
                },
                verdict: pb::RecommendationVerdict::BasicallySatisfied as i32,
                comment: String::new(),
            }),
        ));
        let f: Folded<Recommendation> = fold(&facts, &gansu());
        assert_eq!(f.record.status, RecommendationStatus::Closed);
        assert_eq!(f.record.closed_as, "basically-satisfied");
    }

    #[test]
    fn a_round_is_recorded_once() {
        let id = Uuid::now_v7().as_bytes().to_vec();
        let held = |seq, hlc| {
            ev(
                "620000",
                seq,
                hlc,
                Body::ReConsultationHeld(pb::ReConsultationHeld {
                    round_id: id.clone(),
                    topic_id: Uuid::now_v7().as_bytes().to_vec(),
                    round: 1,
                    date: "2027-09-10".into(),
                    summary: "再协商".into(),
                    reviewed: vec![Uuid::now_v7().as_bytes().to_vec()],
                    ..Default::default()
                }),
            )
        };
        let f: Folded<ReConsultation> = fold(&[held(1, 1), held(2, 2)], &gansu());
        assert_eq!(f.record.round, 1);
        assert_eq!(f.record.reviewed.len(), 1);
        assert!(f.history[1].refused.is_some());
    }

    proptest! {
        #[test]
        fn any_arrival_order_gives_the_state_of_the_set(
            perm in Just(life()).prop_shuffle(),
            dups in proptest::collection::vec(0usize..12, 0..6),
        ) {
            let r = gansu();
            let expected: Folded<Recommendation> = fold(&sorted(&perm), &r);
            prop_assert_eq!(expected.record.status, RecommendationStatus::Closed);
            let arrivals = with_duplicates(&perm, &dups);
            prop_assert_eq!(&arrive::<Recommendation>(&arrivals, &r), &expected);
            prop_assert_eq!(&fold::<Recommendation>(&arrivals, &r), &expected);
        }
    }
}
