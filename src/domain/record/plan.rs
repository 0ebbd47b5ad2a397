//! 年度协商计划: one committee's consultation plan for one year — the topics it adopted, with
//! the form of each (专题 / 对口 / 界别 / 提案办理协商).
//!
//! Drafting → adopted. Before adoption entries are added, changed and removed freely; after
//! it, every change is an amendment (调整) and must carry its reason. Every change, before and
//! after, stays in [`Plan::changes`] (the plan's visible history). The plan is keyed by
//! (committee, year) and only that committee writes it (checked at ingest and in the fold);
//! its events go to `ancestors(root)`, so every committee above sees it.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Machine;
use crate::domain::{uuid_field, Fact, Roster};
use crate::pb::event::Body;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    pub topic_id: Uuid,
    pub title: String,
    pub form: i32,
    pub tier: i32,
    pub source: i32,
    /// Added by an amendment after the plan's adoption.
    pub by_amendment: bool,
    /// Its weight in the plan's roll-up (at least 1).
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// One change of the plan, in the order applied.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanChange {
    /// add | change | remove | adopt
    pub action: String,
    pub topic_id: Option<Uuid>,
    pub title: String,
    pub form: i32,
    pub reason: String,
    /// Made after the adoption: an amendment (调整).
    pub amendment: bool,
    pub hlc: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub committee: Option<String>,
    pub year: u32,
    pub adopted: bool,
    pub adopted_note: String,
    /// In the order they were added.
    pub entries: Vec<PlanEntry>,
    pub changes: Vec<PlanChange>,
}

impl Plan {
    pub fn amendments(&self) -> usize {
        self.changes.iter().filter(|c| c.amendment).count()
    }
}

impl Machine for Plan {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        let (committee, year) = match &fact.body {
            Body::PlanEntrySet(e) => (&e.committee, e.year),
            Body::PlanEntryRemoved(e) => (&e.committee, e.year),
            Body::PlanAdopted(a) => (&a.committee, a.year),
            other => {
                return Err(format!(
                    "{} is not a plan event",
                    crate::event::kind_name(other)
                ))
            }
        };
        if *committee != fact.origin {
            return Err(format!(
                "the plan of {committee} is written by {committee} only, not {}",
                fact.origin
            ));
        }
        if self.committee.is_none() {
            self.committee = Some(committee.clone());
            self.year = year;
        }
        let amendment = self.adopted;
        let needs_reason = |reason: &str| {
            if amendment && reason.trim().is_empty() {
                Err(
                    "the plan is adopted: a change now is an amendment (调整) and needs its reason"
                        .to_string(),
                )
            } else {
                Ok(())
            }
        };
        match &fact.body {
            Body::PlanEntrySet(e) => {
                let topic_id = uuid_field(&e.topic_id, "topic_id")?;
                needs_reason(&e.reason)?;
                let action = match self.entries.iter_mut().find(|x| x.topic_id == topic_id) {
                    Some(x) => {
                        x.title = e.title.clone();
                        x.form = e.form;
                        x.tier = e.tier;
                        x.source = e.source;
                        x.weight = e.weight.max(1);
                        "change"
                    }
                    None => {
                        self.entries.push(PlanEntry {
                            topic_id,
                            title: e.title.clone(),
                            form: e.form,
                            tier: e.tier,
                            source: e.source,
                            by_amendment: amendment,
                            weight: e.weight.max(1),
                        });
                        "add"
                    }
                };
                self.changes.push(PlanChange {
                    action: action.into(),
                    topic_id: Some(topic_id),
                    title: e.title.clone(),
                    form: e.form,
                    reason: e.reason.clone(),
                    amendment,
                    hlc: fact.hlc,
                });
            }
            Body::PlanEntryRemoved(e) => {
                let topic_id = uuid_field(&e.topic_id, "topic_id")?;
                needs_reason(&e.reason)?;
                let Some(at) = self.entries.iter().position(|x| x.topic_id == topic_id) else {
                    return Err(format!("topic {topic_id} is not in the plan"));
                };
                let gone = self.entries.remove(at);
                self.changes.push(PlanChange {
                    action: "remove".into(),
                    topic_id: Some(topic_id),
                    title: gone.title,
                    form: gone.form,
                    reason: e.reason.clone(),
                    amendment,
                    hlc: fact.hlc,
                });
            }
            Body::PlanAdopted(a) => {
                if self.adopted {
                    return Err("the plan was already adopted; change it by amendments".into());
                }
                if self.entries.is_empty() {
                    return Err("an empty plan cannot be adopted: add its topics first".into());
                }
                self.adopted = true;
                self.adopted_note = a.note.clone();
                self.changes.push(PlanChange {
                    action: "adopt".into(),
                    reason: a.note.clone(),
                    hlc: fact.hlc,
                    ..Default::default()
                });
            }
            other => {
                return Err(format!(
                    "{} is not a plan event",
                    crate::event::kind_name(other)
                ))
            }
        }
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

    fn up() -> Kind {
        Kind::Ancestors("620000".into())
    }

    fn set(by: &str, seq: u64, hlc: u64, topic: Uuid, form: pb::TopicForm, reason: &str) -> Fact {
        fact(
            by,
            seq,
            hlc,
            up(),
            Body::PlanEntrySet(pb::PlanEntrySet {
                committee: by.into(),
                year: 2026,
                topic_id: topic.as_bytes().to_vec(),
                title: format!("议题 {}", &topic.to_string()[..4]),
                form: form as i32,
                reason: reason.into(),
                ..Default::default()
            }),
        )
    }

    /// The city drafts three entries, removes one, adopts, then amends: one amendment without
    /// a reason is refused, one with a reason changes a form, one adds a topic, one removes.
    /// A county's attempt to write the city's plan is refused; a second adoption too.
    fn history() -> (Vec<Fact>, [Uuid; 4]) {
        let t = [
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        ];
        use pb::TopicForm::*;
        let facts = vec![
            set("620100", 1, 10, t[0], Thematic, ""),
            set("620100", 2, 11, t[1], Counterpart, ""),
            set("620100", 3, 12, t[2], Sector, ""),
            fact(
                "620100",
                4,
                13,
                up(),
                Body::PlanEntryRemoved(pb::PlanEntryRemoved {
                    committee: "620100".into(),
                    year: 2026,
                    topic_id: t[2].as_bytes().to_vec(),
                    reason: String::new(),
                }),
            ),
            fact(
                "620100",
                5,
                20,
                up(),
                Body::PlanAdopted(pb::PlanAdopted {
                    committee: "620100".into(),
                    year: 2026,
                    note: "市政协常委会第十次会议通过".into(),
                }),
            ),
            set("620100", 6, 30, t[1], ProposalHandling, ""),
            set("620100", 7, 31, t[1], ProposalHandling, "改为提案办理协商"),
            set("620100", 8, 32, t[3], Thematic, "党委交办新增"),
            fact(
                "620100",
                9,
                33,
                up(),
                Body::PlanEntryRemoved(pb::PlanEntryRemoved {
                    committee: "620100".into(),
                    year: 2026,
                    topic_id: t[0].as_bytes().to_vec(),
                    reason: "并入省政协议题".into(),
                }),
            ),
            fact(
                "620123",
                1,
                34,
                up(),
                Body::PlanEntrySet(pb::PlanEntrySet {
                    committee: "620100".into(),
                    year: 2026,
                    topic_id: t[0].as_bytes().to_vec(),
                    reason: "越权".into(),
                    ..Default::default()
                }),
            ),
            fact(
                "620100",
                10,
                40,
                up(),
                Body::PlanAdopted(pb::PlanAdopted {
                    committee: "620100".into(),
                    year: 2026,
                    note: "again".into(),
                }),
            ),
        ];
        (facts, t)
    }

    #[test]
    fn amendments_after_adoption_need_reasons_and_stay_visible() {
        let (facts, t) = history();
        let f: Folded<Plan> = fold(&facts, &gansu());
        let p = &f.record;
        assert!(p.adopted);
        assert_eq!(
            p.entries.iter().map(|e| e.topic_id).collect::<Vec<_>>(),
            vec![t[1], t[3]]
        );
        assert_eq!(p.entries[0].form, pb::TopicForm::ProposalHandling as i32);
        assert!(p.entries[1].by_amendment);
        assert_eq!(p.amendments(), 3, "change, add, remove after adoption");
        assert_eq!(
            p.changes
                .iter()
                .map(|c| c.action.as_str())
                .collect::<Vec<_>>(),
            ["add", "add", "add", "remove", "adopt", "change", "add", "remove"]
        );
        let refused: Vec<String> = f.history.iter().filter_map(|h| h.refused.clone()).collect();
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused[0].contains("needs its reason"), "{}", refused[0]);
        assert!(refused[1].contains("620100 only"), "{}", refused[1]);
        assert!(refused[2].contains("already adopted"), "{}", refused[2]);
    }

    #[test]
    fn an_empty_plan_is_not_adopted() {
        let f: Folded<Plan> = fold(
            &[fact(
                "620100",
                1,
                1,
                up(),
                Body::PlanAdopted(pb::PlanAdopted {
                    committee: "620100".into(),
                    year: 2026,
                    note: String::new(),
                }),
            )],
            &gansu(),
        );
        assert!(!f.record.adopted);
        assert!(f.history[0].refused.is_some());
    }

    proptest! {
        #[test]
        fn any_arrival_order_gives_the_state_of_the_set(
            perm in Just(history().0).prop_shuffle(),
            dups in proptest::collection::vec(0usize..11, 0..6),
        ) {
            let r = gansu();
            let expected: Folded<Plan> = fold(&sorted(&perm), &r);
            prop_assert_eq!(expected.record.entries.len(), 2);
            let arrivals = with_duplicates(&perm, &dups);
            prop_assert_eq!(&arrive::<Plan>(&arrivals, &r), &expected);
            prop_assert_eq!(&fold::<Plan>(&arrivals, &r), &expected);
        }
    }
}
