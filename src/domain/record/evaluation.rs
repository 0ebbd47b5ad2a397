//! 质量评价 and 成果公开: a committee's quality evaluation of a topic along the seven stages of
//! a consultation, and the publication of a topic's results to an audience the committee
//! chooses.
//!
//! QualityEvaluation: owned by the evaluator (any committee that holds the topic), audience
//! committees[topic owner]; recording it again revises it (versions 1, 2, …). Each stage is
//! scored 0–100 at most once per version; the overall score is the mean of the stages scored.
//!
//! Publication: one event, owned by its author, to the audience it chose.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Machine;
use crate::domain::{uuid_field, Fact, Roster};
use crate::pb::{self, event::Body};

/// The seven stages, in order, with their names.
pub const STAGES: [(pb::EvaluationStage, &str, &str); 7] = [
    (pb::EvaluationStage::TopicSelection, "selection", "选题"),
    (pb::EvaluationStage::Organisation, "organisation", "组织"),
    (pb::EvaluationStage::Handling, "handling", "办理"),
    (
        pb::EvaluationStage::UseOfResults,
        "use-of-results",
        "成果运用",
    ),
    (pb::EvaluationStage::FollowUp, "follow-up", "跟踪反馈"),
    (pb::EvaluationStage::Assessment, "assessment", "考核评价"),
    (pb::EvaluationStage::Publication, "publication", "成果公开"),
];

pub fn stage_name(stage: i32) -> &'static str {
    STAGES
        .iter()
        .find(|(s, _, _)| *s as i32 == stage)
        .map(|(_, n, _)| *n)
        .unwrap_or("")
}

pub fn parse_stage(text: &str) -> Option<pb::EvaluationStage> {
    STAGES
        .iter()
        .find(|(_, n, zh)| *n == text || *zh == text)
        .map(|(s, _, _)| *s)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageScore {
    pub stage: i32,
    pub score: u32,
    pub comment: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityEvaluation {
    pub evaluator: Option<String>,
    pub topic_id: Option<Uuid>,
    pub topic_owner: String,
    pub topic_title: String,
    pub version: u32,
    /// In stage order.
    pub scores: Vec<StageScore>,
    pub comment: String,
}

impl QualityEvaluation {
    /// The mean of the stages scored (0 when none is).
    pub fn overall(&self) -> f64 {
        if self.scores.is_empty() {
            return 0.0;
        }
        self.scores.iter().map(|s| s.score as f64).sum::<f64>() / self.scores.len() as f64
    }
}

impl Machine for QualityEvaluation {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        let Body::EvaluationRecorded(e) = &fact.body else {
            return Err(format!(
                "{} is not an evaluation event",
                crate::event::kind_name(&fact.body)
            ));
        };
        if let Some(evaluator) = &self.evaluator {
            if *evaluator != fact.origin {
                return Err(format!(
                    "only the evaluator {evaluator} revises its evaluation, not {}",
                    fact.origin
                ));
            }
        }
        let topic = uuid_field(&e.topic_id, "topic_id")?;
        if self.topic_id.is_some_and(|t| t != topic) {
            return Err("an evaluation cannot move to another topic".into());
        }
        if e.version != self.version + 1 {
            return Err(format!(
                "evaluation version {} is out of sequence; expected {}",
                e.version,
                self.version + 1
            ));
        }
        let mut scores: Vec<StageScore> = Vec::new();
        for s in &e.scores {
            if stage_name(s.stage).is_empty() {
                return Err(format!("stage {} is not one of the seven", s.stage));
            }
            if s.score > 100 {
                return Err(format!(
                    "{} scored {}: scores are 0–100",
                    stage_name(s.stage),
                    s.score
                ));
            }
            if scores.iter().any(|x| x.stage == s.stage) {
                return Err(format!("{} is scored twice", stage_name(s.stage)));
            }
            scores.push(StageScore {
                stage: s.stage,
                score: s.score,
                comment: s.comment.clone(),
            });
        }
        if scores.is_empty() {
            return Err("an evaluation scores at least one stage".into());
        }
        scores.sort_by_key(|s| s.stage);
        self.evaluator = Some(fact.origin.clone());
        self.topic_id = Some(topic);
        self.topic_owner = e.topic_owner.clone();
        self.topic_title = e.topic_title.clone();
        self.version = e.version;
        self.scores = scores;
        self.comment = e.comment.clone();
        Ok(())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    pub author: Option<String>,
    pub topic_id: Option<Uuid>,
    pub topic_title: String,
    pub title: String,
    pub text: String,
    /// The audience it was published to.
    pub audience: Option<pb::audience::Kind>,
}

impl Machine for Publication {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        let Body::PublicationIssued(p) = &fact.body else {
            return Err(format!(
                "{} is not a publication event",
                crate::event::kind_name(&fact.body)
            ));
        };
        if self.author.is_some() {
            return Err("this publication was already issued".into());
        }
        *self = Publication {
            author: Some(fact.origin.clone()),
            topic_id: Some(uuid_field(&p.topic_id, "topic_id")?),
            topic_title: p.topic_title.clone(),
            title: p.title.clone(),
            text: p.text.clone(),
            audience: Some(fact.audience.clone()),
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
    use proptest::prelude::*;

    fn recorded(
        by: &str,
        seq: u64,
        hlc: u64,
        id: &[u8],
        topic: &[u8],
        version: u32,
        scores: &[(pb::EvaluationStage, u32)],
    ) -> Fact {
        fact(
            by,
            seq,
            hlc,
            to(&["620000"]),
            Body::EvaluationRecorded(pb::EvaluationRecorded {
                evaluation_id: id.to_vec(),
                topic_id: topic.to_vec(),
                topic_owner: "620000".into(),
                topic_title: "黄河".into(),
                version,
                scores: scores
                    .iter()
                    .map(|(s, n)| pb::EvaluationScore {
                        stage: *s as i32,
                        score: *n,
                        comment: String::new(),
                    })
                    .collect(),
                comment: String::new(),
            }),
        )
    }

    fn history() -> Vec<Fact> {
        let id = Uuid::now_v7().as_bytes().to_vec();
        let topic = Uuid::now_v7().as_bytes().to_vec();
        use pb::EvaluationStage::*;
        let all: Vec<(pb::EvaluationStage, u32)> =
            STAGES.iter().map(|(s, _, _)| (*s, 80)).collect();
        let mut revised = all.clone();
        revised[6].1 = 94;
        vec![
            recorded("620000", 1, 10, &id, &topic, 1, &all),
            recorded("620000", 2, 20, &id, &topic, 2, &[(Handling, 101)]),
            recorded(
                "620000",
                3,
                30,
                &id,
                &topic,
                2,
                &[(Handling, 90), (Handling, 91)],
            ),
            recorded("620100", 1, 35, &id, &topic, 2, &[(Handling, 90)]),
            recorded("620000", 4, 40, &id, &topic, 2, &revised),
            recorded("620000", 5, 50, &id, &topic, 2, &all),
        ]
    }

    #[test]
    fn an_evaluation_scores_the_seven_stages_and_is_revised_in_sequence() {
        let f: Folded<QualityEvaluation> = fold(&history(), &gansu());
        let e = &f.record;
        assert_eq!(e.version, 2);
        assert_eq!(e.scores.len(), 7);
        assert!((e.overall() - (80.0 * 6.0 + 94.0) / 7.0).abs() < 1e-9);
        let refused: Vec<String> = f.history.iter().filter_map(|h| h.refused.clone()).collect();
        assert_eq!(refused.len(), 4, "{refused:?}");
        assert!(refused[0].contains("0–100"));
        assert!(refused[1].contains("twice"));
        assert!(refused[2].contains("only the evaluator 620000"));
        assert!(refused[3].contains("out of sequence"));
        assert_eq!(
            parse_stage("成果运用"),
            Some(pb::EvaluationStage::UseOfResults)
        );
        assert_eq!(
            parse_stage("follow-up"),
            Some(pb::EvaluationStage::FollowUp)
        );
    }

    #[test]
    fn a_publication_is_issued_once_and_keeps_its_audience() {
        let id = Uuid::now_v7().as_bytes().to_vec();
        let p = |seq, hlc, title: &str| {
            fact(
                "620000",
                seq,
                hlc,
                to(&["620100", "620400"]),
                Body::PublicationIssued(pb::PublicationIssued {
                    publication_id: id.clone(),
                    topic_id: Uuid::now_v7().as_bytes().to_vec(),
                    topic_title: "黄河".into(),
                    title: title.into(),
                    text: "成果".into(),
                }),
            )
        };
        let f: Folded<Publication> = fold(&[p(1, 1, "第一版"), p(2, 2, "第二版")], &gansu());
        assert_eq!(f.record.title, "第一版");
        assert_eq!(f.record.audience, Some(to(&["620100", "620400"])));
        assert!(f.history[1].refused.is_some());
    }

    proptest! {
        #[test]
        fn any_arrival_order_gives_the_state_of_the_set(
            perm in Just(history()).prop_shuffle(),
            dups in proptest::collection::vec(0usize..6, 0..4),
        ) {
            let r = gansu();
            let expected: Folded<QualityEvaluation> = fold(&sorted(&perm), &r);
            prop_assert_eq!(expected.record.version, 2);
            let arrivals = with_duplicates(&perm, &dups);
            prop_assert_eq!(&arrive::<QualityEvaluation>(&arrivals, &r), &expected);
            prop_assert_eq!(&fold::<QualityEvaluation>(&arrivals, &r), &expected);
        }
    }
}
