//! 议题: draft → published → concluded, or withdrawn. Owned by the committee that drafted or
//! first published it; nobody else may change it.
use serde::{Deserialize, Serialize};

use super::Machine;
use crate::domain::{Fact, Roster};
use crate::pb::{self, event::Body};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicStatus {
    /// Events about the topic arrived, but not its draft or publication yet.
    #[default]
    Pending,
    Draft,
    Published,
    Concluded,
    Withdrawn,
}

impl TopicStatus {
    pub fn name(self) -> &'static str {
        match self {
            TopicStatus::Pending => "pending",
            TopicStatus::Draft => "draft",
            TopicStatus::Published => "published",
            TopicStatus::Concluded => "concluded",
            TopicStatus::Withdrawn => "withdrawn",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicContent {
    pub title: String,
    pub description: String,
    pub source: i32,
    pub form: i32,
    pub tier: i32,
    pub plan_year: u32,
}

impl From<&pb::TopicContent> for TopicContent {
    fn from(c: &pb::TopicContent) -> Self {
        TopicContent {
            title: c.title.clone(),
            description: c.description.clone(),
            source: c.source,
            form: c.form,
            tier: c.tier,
            plan_year: c.plan_year,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    pub owner: Option<String>,
    pub content: TopicContent,
    pub status: TopicStatus,
    /// The conclusion's summary or the withdrawal's reason.
    pub closing_text: String,
}

impl Machine for Topic {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        if let Some(owner) = &self.owner {
            if *owner != fact.origin {
                return Err(format!(
                    "only the topic's owner {owner} may change it, not {}",
                    fact.origin
                ));
            }
        }
        use TopicStatus::*;
        match (&fact.body, self.status) {
            (Body::TopicDrafted(t), Pending | Draft) => {
                self.owner = Some(fact.origin.clone());
                self.content = t.content.as_ref().map(Into::into).unwrap_or_default();
                self.status = Draft;
            }
            (Body::TopicPublished(t), Pending | Draft | Published) => {
                self.owner = Some(fact.origin.clone());
                self.content = t.content.as_ref().map(Into::into).unwrap_or_default();
                self.status = Published;
            }
            (Body::TopicConcluded(t), Published) => {
                self.status = Concluded;
                self.closing_text = t.summary.clone();
            }
            (Body::TopicWithdrawn(t), Draft | Published) => {
                self.status = Withdrawn;
                self.closing_text = t.reason.clone();
            }
            (Body::TopicDrafted(_), s) => {
                return Err(format!("a {} topic cannot go back to draft", s.name()))
            }
            (Body::TopicPublished(_), s) => {
                return Err(format!("a {} topic cannot be published again", s.name()))
            }
            (Body::TopicConcluded(_), s) => {
                return Err(format!(
                    "only a published topic can be concluded; this one is {}",
                    s.name()
                ))
            }
            (Body::TopicWithdrawn(_), s) => {
                return Err(format!("a {} topic cannot be withdrawn", s.name()))
            }
            (other, _) => {
                return Err(format!(
                    "{} is not a topic event",
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
    use crate::domain::record::fold;
    use crate::domain::record::testkit::*;
    use crate::domain::record::Folded;
    use crate::domain::roster::tests::gansu;
    use crate::domain::Fact;
    use crate::pb::audience::Kind;
    use proptest::prelude::*;

    fn content(title: &str) -> Option<pb::TopicContent> {
        Some(pb::TopicContent {
            title: title.into(),
            plan_year: 2026,
            ..Default::default()
        })
    }

    /// Drafted, published, concluded by the owner; a city concludes first, and the owner
    /// withdraws after concluding (both refused).
    fn history() -> Vec<Fact> {
        let id = uuid::Uuid::now_v7().as_bytes().to_vec();
        let sub = Kind::Subtree("620000".into());
        vec![
            fact(
                "620000",
                1,
                1,
                to(&["620000"]),
                Body::TopicDrafted(pb::TopicDrafted {
                    topic_id: id.clone(),
                    content: content("草稿"),
                }),
            ),
            fact(
                "620000",
                2,
                2,
                sub.clone(),
                Body::TopicPublished(pb::TopicPublished {
                    topic_id: id.clone(),
                    content: content("黄河流域生态保护"),
                }),
            ),
            fact(
                "620100",
                1,
                3,
                Kind::Subtree("620100".into()),
                Body::TopicConcluded(pb::TopicConcluded {
                    topic_id: id.clone(),
                    summary: "抢先".into(),
                }),
            ),
            fact(
                "620000",
                3,
                4,
                sub.clone(),
                Body::TopicConcluded(pb::TopicConcluded {
                    topic_id: id.clone(),
                    summary: "形成建议".into(),
                }),
            ),
            fact(
                "620000",
                4,
                5,
                sub,
                Body::TopicWithdrawn(pb::TopicWithdrawn {
                    topic_id: id,
                    reason: "晚了".into(),
                }),
            ),
        ]
    }

    #[test]
    fn lifecycle_and_ownership() {
        let r = gansu();
        let facts = history();
        let f: super::super::Folded<Topic> = fold(&facts, &r);
        assert_eq!(f.record.status, TopicStatus::Concluded);
        assert_eq!(f.record.content.title, "黄河流域生态保护");
        assert_eq!(f.record.closing_text, "形成建议");
        let refused: Vec<_> = f.history.iter().filter(|h| h.refused.is_some()).collect();
        assert_eq!(refused.len(), 2);
        assert!(refused[0]
            .refused
            .as_deref()
            .unwrap_or("")
            .contains("owner 620000"));
        assert!(refused[1]
            .refused
            .as_deref()
            .unwrap_or("")
            .contains("concluded"));
    }

    proptest! {
        #[test]
        fn any_arrival_order_gives_the_state_of_the_set(
            perm in Just(history()).prop_shuffle(),
            dups in proptest::collection::vec(0usize..5, 0..4),
        ) {
            let r = gansu();
            let expected: Folded<Topic> = fold(&sorted(&perm), &r);
            prop_assert_eq!(expected.record.status, TopicStatus::Concluded);
            let arrivals = with_duplicates(&perm, &dups);
            prop_assert_eq!(&arrive::<Topic>(&arrivals, &r), &expected);
            prop_assert_eq!(&fold::<Topic>(&arrivals, &r), &expected);
        }
    }
}
