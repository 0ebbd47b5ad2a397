//! 分课题 / 子课题 with its 签收, 成果 and 审核.
//!
//! issued → acknowledged → submitted → approved, or → returned → submitted again; the
//! assigner may cancel until approval. The assigner (author of the issue) owns the
//! assignment, its reviews and its cancellation; the assignee owns its acknowledgement and
//! its submissions. Each follow-up event must carry the assignment's audience, so that every
//! committee that sees the assignment sees its whole history.
use serde::{Deserialize, Serialize};

use super::Machine;
use crate::domain::{Fact, Roster};
use crate::pb::{self, audience::Kind, event::Body};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AssignmentStatus {
    /// Events arrived before the assignment itself.
    #[default]
    Pending,
    Issued,
    Acknowledged,
    Submitted,
    Returned,
    Approved,
    Cancelled,
}

impl AssignmentStatus {
    pub fn name(self) -> &'static str {
        match self {
            AssignmentStatus::Pending => "pending",
            AssignmentStatus::Issued => "issued",
            AssignmentStatus::Acknowledged => "acknowledged",
            AssignmentStatus::Submitted => "submitted",
            AssignmentStatus::Returned => "returned",
            AssignmentStatus::Approved => "approved",
            AssignmentStatus::Cancelled => "cancelled",
        }
    }

    /// The share of the work this status stands for, in the progress roll-up.
    pub fn progress(self) -> f64 {
        match self {
            AssignmentStatus::Pending | AssignmentStatus::Issued | AssignmentStatus::Cancelled => {
                0.0
            }
            AssignmentStatus::Acknowledged => 0.1,
            AssignmentStatus::Returned => 0.5,
            AssignmentStatus::Submitted => 0.8,
            AssignmentStatus::Approved => 1.0,
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(
            self,
            AssignmentStatus::Approved | AssignmentStatus::Cancelled
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    pub topic_id: Vec<u8>,
    pub parent_assignment_id: Vec<u8>,
    pub assigner: String,
    pub assignee: String,
    pub title: String,
    pub description: String,
    pub due_date: String,
    pub weight: u32,
    pub topic_owner: String,
    pub topic_title: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub id: Vec<u8>,
    pub version: u32,
    pub text: String,
    pub recommendations: Vec<String>,
    pub attachment_digests: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub version: u32,
    pub approved: bool,
    pub comment: String,
    pub reviewer: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub issue: Option<Issue>,
    pub status: AssignmentStatus,
    pub acknowledged: bool,
    pub submissions: Vec<Submission>,
    pub reviews: Vec<Review>,
    pub cancel_reason: String,
    /// The audience of the issue, which every follow-up must repeat.
    pub audience: Option<Vec<String>>,
}

fn sorted_codes(aud: &Kind) -> Option<Vec<String>> {
    match aud {
        Kind::Committees(list) => {
            let mut v = list.codes.clone();
            v.sort();
            v.dedup();
            Some(v)
        }
        _ => None,
    }
}

impl Machine for Assignment {
    fn step(&mut self, fact: &Fact, _roster: &Roster) -> Result<(), String> {
        use AssignmentStatus::*;
        let who = fact.origin.as_str();
        if let Body::AssignmentIssued(a) = &fact.body {
            if self.issue.is_some() {
                return Err("the assignment was already issued".into());
            }
            self.issue = Some(Issue {
                topic_id: a.topic_id.clone(),
                parent_assignment_id: a.parent_assignment_id.clone(),
                assigner: who.to_string(),
                assignee: a.assignee.clone(),
                title: a.title.clone(),
                description: a.description.clone(),
                due_date: a.due_date.clone(),
                weight: a.weight.max(1),
                topic_owner: a.topic_owner.clone(),
                topic_title: a.topic_title.clone(),
            });
            self.audience = sorted_codes(&fact.audience);
            self.status = Issued;
            return Ok(());
        }
        let Some(issue) = &self.issue else {
            return Err("the assignment itself has not arrived here (yet)".into());
        };
        if sorted_codes(&fact.audience) != self.audience {
            return Err(format!(
                "the event's audience differs from the assignment's ({:?}); it would not reach everyone who follows the assignment",
                self.audience.as_deref().unwrap_or_default()
            ));
        }
        let assignee_only = |what: &str| -> Result<(), String> {
            if who == issue.assignee {
                Ok(())
            } else {
                Err(format!(
                    "only the assignee {} may {what}, not {who}",
                    issue.assignee
                ))
            }
        };
        let assigner_only = |what: &str| -> Result<(), String> {
            if who == issue.assigner {
                Ok(())
            } else {
                Err(format!(
                    "only the assigner {} may {what}, not {who}",
                    issue.assigner
                ))
            }
        };
        match &fact.body {
            Body::AssignmentAcknowledged(_) => {
                assignee_only("acknowledge (签收) it")?;
                if self.acknowledged {
                    return Err("already acknowledged".into());
                }
                if self.status == Cancelled {
                    return Err("the assignment was cancelled".into());
                }
                self.acknowledged = true;
                if self.status == Issued {
                    self.status = Acknowledged;
                }
            }
            Body::SubmissionMade(s) => {
                assignee_only("submit results for it")?;
                match self.status {
                    Acknowledged | Returned => {}
                    Issued => return Err("acknowledge (签收) the assignment before submitting".into()),
                    Submitted => {
                        return Err(format!(
                            "version {} is still awaiting review; wait for the review before submitting again",
                            self.submissions.len()
                        ))
                    }
                    s => return Err(format!("cannot submit to a {} assignment", s.name())),
                }
                let expected = self.submissions.len() as u32 + 1;
                if s.version != expected {
                    return Err(format!(
                        "submission version {} is out of sequence; expected {expected}",
                        s.version
                    ));
                }
                self.submissions.push(Submission {
                    id: s.submission_id.clone(),
                    version: s.version,
                    text: s.text.clone(),
                    recommendations: s.recommendations.clone(),
                    attachment_digests: s.attachment_digests.clone(),
                });
                self.status = Submitted;
            }
            Body::ReviewRecorded(r) => {
                assigner_only("review it")?;
                if self.status != Submitted {
                    return Err(format!(
                        "nothing awaits review: the assignment is {}",
                        self.status.name()
                    ));
                }
                let latest = self.submissions.last().map(|s| (s.version, s.id.clone()));
                if latest != Some((r.version, r.submission_id.clone())) {
                    return Err(format!(
                        "the review is of version {}, but the latest submission is another",
                        r.version
                    ));
                }
                let approved = match pb::Verdict::try_from(r.verdict) {
                    Ok(pb::Verdict::Approve) => true,
                    Ok(pb::Verdict::Return) => false,
                    _ => return Err("a review must approve (通过) or return (退回)".into()),
                };
                self.reviews.push(Review {
                    version: r.version,
                    approved,
                    comment: r.comment.clone(),
                    reviewer: who.to_string(),
                });
                self.status = if approved { Approved } else { Returned };
            }
            Body::AssignmentCancelled(c) => {
                assigner_only("cancel it")?;
                if !self.status.is_open() {
                    return Err(format!(
                        "a {} assignment cannot be cancelled",
                        self.status.name()
                    ));
                }
                self.status = Cancelled;
                self.cancel_reason = c.reason.clone();
            }
            other => {
                return Err(format!(
                    "{} is not an assignment event",
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
    use uuid::Uuid;

    /// docs/security.md, table "Authorization": the stateful rows of an assignment.
    #[test]
    fn owner_rules_row_by_row() {
        let r = gansu();
        let a = Uuid::now_v7().as_bytes().to_vec();
        let aud = to(&["620123", "620000"]);
        let issued = fact(
            "620100",
            1,
            10,
            aud.clone(),
            Body::AssignmentIssued(pb::AssignmentIssued {
                assignment_id: a.clone(),
                topic_id: Uuid::now_v7().as_bytes().to_vec(),
                parent_assignment_id: Uuid::now_v7().as_bytes().to_vec(),
                assignee: "620123".into(),
                topic_owner: "620000".into(),
                due_date: "2026-12-31".into(),
                ..Default::default()
            }),
        );
        let ack = |who: &str, hlc| {
            fact(
                who,
                9,
                hlc,
                aud.clone(),
                Body::AssignmentAcknowledged(pb::AssignmentAcknowledged {
                    assignment_id: a.clone(),
                }),
            )
        };
        let submit = |who: &str, hlc, v| {
            fact(
                who,
                9,
                hlc,
                aud.clone(),
                Body::SubmissionMade(pb::SubmissionMade {
                    assignment_id: a.clone(),
                    submission_id: vec![v as u8; 16],
                    version: v,
                    text: "报告".into(),
                    ..Default::default()
                }),
            )
        };
        let review = |who: &str, hlc, v| {
            fact(
                who,
                9,
                hlc,
                aud.clone(),
                Body::ReviewRecorded(pb::ReviewRecorded {
                    assignment_id: a.clone(),
                    submission_id: vec![v as u8; 16],
                    version: v,
                    verdict: pb::Verdict::Approve as i32,
                    comment: String::new(),
                }),
            )
        };
        let cancel = |who: &str, hlc| {
            fact(
                who,
                9,
                hlc,
                aud.clone(),
                Body::AssignmentCancelled(pb::AssignmentCancelled {
                    assignment_id: a.clone(),
                    reason: String::new(),
                }),
            )
        };
        // (row, the event after the issue, allowed)
        let rows: Vec<(&str, Vec<Fact>, bool)> = vec![
            ("ack by the assignee", vec![ack("620123", 20)], true),
            ("ack by a sibling county", vec![ack("620121", 20)], false),
            ("ack by the assigner", vec![ack("620100", 20)], false),
            (
                "submission by the assignee",
                vec![ack("620123", 20), submit("620123", 30, 1)],
                true,
            ),
            (
                "submission before 签收",
                vec![submit("620123", 30, 1)],
                false,
            ),
            (
                "submission by the assigner",
                vec![ack("620123", 20), submit("620100", 30, 1)],
                false,
            ),
            (
                "review by the assigner",
                vec![
                    ack("620123", 20),
                    submit("620123", 30, 1),
                    review("620100", 40, 1),
                ],
                true,
            ),
            (
                "review of one's own submission",
                vec![
                    ack("620123", 20),
                    submit("620123", 30, 1),
                    review("620123", 40, 1),
                ],
                false,
            ),
            (
                "review by the topic owner (not the assigner)",
                vec![
                    ack("620123", 20),
                    submit("620123", 30, 1),
                    review("620000", 40, 1),
                ],
                false,
            ),
            ("cancel by the assigner", vec![cancel("620100", 20)], true),
            ("cancel by the assignee", vec![cancel("620123", 20)], false),
            (
                "a follow-up to another audience",
                vec![fact(
                    "620123",
                    9,
                    20,
                    to(&["620123"]),
                    Body::AssignmentAcknowledged(pb::AssignmentAcknowledged {
                        assignment_id: a.clone(),
                    }),
                )],
                false,
            ),
        ];
        for (row, events, allowed) in rows {
            let mut facts = vec![issued.clone()];
            facts.extend(events);
            let f: Folded<Assignment> = fold(&facts, &r);
            let last = f.history.last().map(|h| h.refused.clone());
            assert_eq!(
                last.as_ref().is_some_and(|x| x.is_none()),
                allowed,
                "{row}: {last:?}"
            );
        }
    }
}
