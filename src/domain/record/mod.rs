//! The records and their fold.
//!
//! A record's state is a pure function of the set of its events: [`fold`] sorts them by
//! [`OrderKey`] and applies each transition that is valid at its place; an invalid one is
//! kept in the history as refused, with its reason. [`Folded::apply`] is the incremental form
//! used at ingest: an event that sorts after everything applied so far is applied directly,
//! otherwise the caller refolds the whole set. Both give the same state (property-tested).
pub mod assignment;
pub mod evaluation;
pub mod group;
pub mod joint;
pub mod meeting;
pub mod notice;
pub mod plan;
pub mod proposal;
pub mod recommendation;
pub mod topic;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{uuid_field, Fact, OrderKey, Roster};
use crate::pb::{self, event::Body};

pub use assignment::{Assignment, AssignmentStatus};
pub use evaluation::{Publication, QualityEvaluation};
pub use group::Group;
pub use joint::{JointMeeting, JointStatus};
pub use meeting::{Contribution, Meeting, MeetingStatus};
pub use notice::{Guidance, Report};
pub use plan::Plan;
pub use proposal::{ProposalStatus, TopicProposal};
pub use recommendation::{ReConsultation, Recommendation, RecommendationStatus};
pub use topic::{Topic, TopicStatus};

/// Which record an event is about.
///
/// Tag bytes in storage keys: `c` committee, `t` topic, `a` assignment, `g` guidance,
/// `r` report; the consultation cycle: `p` topic proposal, `n` plan (code + year), `h`
/// meeting, `u` meeting contribution, `d` recommendation, `x` re-consultation round,
/// `v` quality evaluation, `b` publication; lateral groups: `L` group charter (the id's
/// bytes, zero-padded), `J` joint meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordKey {
    Committee([u8; 6]),
    Topic(Uuid),
    Assignment(Uuid),
    Guidance(Uuid),
    Report(Uuid),
    TopicProposal(Uuid),
    /// A committee's plan for a year.
    Plan([u8; 6], u32),
    Meeting(Uuid),
    Contribution(Uuid),
    Recommendation(Uuid),
    ReConsultation(Uuid),
    Evaluation(Uuid),
    Publication(Uuid),
    /// A lateral group's charter, by group id (≤ 16 bytes, zero-padded).
    Group([u8; 16]),
    JointMeeting(Uuid),
}

impl RecordKey {
    /// The record an event body is about.
    pub fn of(body: &Body) -> Result<RecordKey, String> {
        Ok(match body {
            Body::CommitteeRegistered(pb::CommitteeRegistered { code, .. })
            | Body::CommitteeKeyRotated(pb::CommitteeKeyRotated { code, .. })
            | Body::CommitteeKeyRevoked(pb::CommitteeKeyRevoked { code, .. }) => {
                let code: [u8; 6] = code
                    .as_bytes()
                    .try_into()
                    .map_err(|_| format!("committee code '{code}' is not 6 digits"))?;
                RecordKey::Committee(code)
            }
            Body::TopicDrafted(t) => RecordKey::Topic(uuid_field(&t.topic_id, "topic_id")?),
            Body::TopicPublished(t) => RecordKey::Topic(uuid_field(&t.topic_id, "topic_id")?),
            Body::TopicConcluded(t) => RecordKey::Topic(uuid_field(&t.topic_id, "topic_id")?),
            Body::TopicWithdrawn(t) => RecordKey::Topic(uuid_field(&t.topic_id, "topic_id")?),
            Body::AssignmentIssued(a) => {
                RecordKey::Assignment(uuid_field(&a.assignment_id, "assignment_id")?)
            }
            Body::AssignmentAcknowledged(a) => {
                RecordKey::Assignment(uuid_field(&a.assignment_id, "assignment_id")?)
            }
            Body::SubmissionMade(a) => {
                RecordKey::Assignment(uuid_field(&a.assignment_id, "assignment_id")?)
            }
            Body::ReviewRecorded(a) => {
                RecordKey::Assignment(uuid_field(&a.assignment_id, "assignment_id")?)
            }
            Body::AssignmentCancelled(a) => {
                RecordKey::Assignment(uuid_field(&a.assignment_id, "assignment_id")?)
            }
            Body::GuidanceIssued(g) => {
                RecordKey::Guidance(uuid_field(&g.guidance_id, "guidance_id")?)
            }
            Body::GuidanceAcknowledged(g) => {
                RecordKey::Guidance(uuid_field(&g.guidance_id, "guidance_id")?)
            }
            Body::ReportSent(r) => RecordKey::Report(uuid_field(&r.report_id, "report_id")?),
            Body::ReportAcknowledged(r) => {
                RecordKey::Report(uuid_field(&r.report_id, "report_id")?)
            }
            Body::TopicProposalSubmitted(p) => {
                RecordKey::TopicProposal(uuid_field(&p.proposal_id, "proposal_id")?)
            }
            Body::TopicProposalDecided(p) => {
                RecordKey::TopicProposal(uuid_field(&p.proposal_id, "proposal_id")?)
            }
            Body::PlanEntrySet(pb::PlanEntrySet {
                committee, year, ..
            })
            | Body::PlanEntryRemoved(pb::PlanEntryRemoved {
                committee, year, ..
            })
            | Body::PlanAdopted(pb::PlanAdopted {
                committee, year, ..
            }) => {
                let code: [u8; 6] = committee
                    .as_bytes()
                    .try_into()
                    .map_err(|_| format!("committee code '{committee}' is not 6 digits"))?;
                RecordKey::Plan(code, *year)
            }
            Body::MeetingScheduled(m) => {
                RecordKey::Meeting(uuid_field(&m.meeting_id, "meeting_id")?)
            }
            Body::MeetingConcluded(m) => {
                RecordKey::Meeting(uuid_field(&m.meeting_id, "meeting_id")?)
            }
            Body::MeetingCancelled(m) => {
                RecordKey::Meeting(uuid_field(&m.meeting_id, "meeting_id")?)
            }
            Body::MeetingContributionSubmitted(c) => {
                RecordKey::Contribution(uuid_field(&c.contribution_id, "contribution_id")?)
            }
            Body::RecommendationIssued(pb::RecommendationIssued {
                recommendation_id, ..
            })
            | Body::RecommendationHandled(pb::RecommendationHandled {
                recommendation_id, ..
            })
            | Body::RecommendationProgressed(pb::RecommendationProgressed {
                recommendation_id,
                ..
            })
            | Body::RecommendationFeedbackRecorded(pb::RecommendationFeedbackRecorded {
                recommendation_id,
                ..
            })
            | Body::RecommendationEvaluated(pb::RecommendationEvaluated {
                recommendation_id,
                ..
            })
            | Body::RecommendationReviewed(pb::RecommendationReviewed {
                recommendation_id, ..
            }) => RecordKey::Recommendation(uuid_field(recommendation_id, "recommendation_id")?),
            Body::ReConsultationHeld(r) => {
                RecordKey::ReConsultation(uuid_field(&r.round_id, "round_id")?)
            }
            Body::EvaluationRecorded(e) => {
                RecordKey::Evaluation(uuid_field(&e.evaluation_id, "evaluation_id")?)
            }
            Body::PublicationIssued(p) => {
                RecordKey::Publication(uuid_field(&p.publication_id, "publication_id")?)
            }
            Body::GroupCharterProposed(pb::GroupCharterProposed { group_id, .. })
            | Body::GroupCharterEndorsed(pb::GroupCharterEndorsed { group_id, .. }) => {
                group::check_group_id(group_id)?;
                let mut key = [0u8; 16];
                key[..group_id.len()].copy_from_slice(group_id.as_bytes());
                RecordKey::Group(key)
            }
            Body::JointMeetingConvened(pb::JointMeetingConvened { meeting_id, .. })
            | Body::JointContributionMade(pb::JointContributionMade { meeting_id, .. })
            | Body::JointReportDrafted(pb::JointReportDrafted { meeting_id, .. })
            | Body::JointReportCommented(pb::JointReportCommented { meeting_id, .. })
            | Body::JointReportFinalized(pb::JointReportFinalized { meeting_id, .. })
            | Body::JointReportSent(pb::JointReportSent { meeting_id, .. })
            | Body::JointRollupPublished(pb::JointRollupPublished { meeting_id, .. }) => {
                RecordKey::JointMeeting(uuid_field(meeting_id, "meeting_id")?)
            }
        })
    }

    /// Byte encoding for storage keys: a tag byte, then 16 bytes (codes are zero-padded).
    pub fn to_bytes(&self) -> [u8; 17] {
        let mut out = [0u8; 17];
        let (tag, body): (u8, &[u8]) = match self {
            RecordKey::Committee(c) => (b'c', c),
            RecordKey::Topic(u) => (b't', u.as_bytes()),
            RecordKey::Assignment(u) => (b'a', u.as_bytes()),
            RecordKey::Guidance(u) => (b'g', u.as_bytes()),
            RecordKey::Report(u) => (b'r', u.as_bytes()),
            RecordKey::TopicProposal(u) => (b'p', u.as_bytes()),
            RecordKey::Plan(c, year) => {
                out[0] = b'n';
                out[1..7].copy_from_slice(c);
                out[7..11].copy_from_slice(&year.to_be_bytes());
                return out;
            }
            RecordKey::Meeting(u) => (b'h', u.as_bytes()),
            RecordKey::Contribution(u) => (b'u', u.as_bytes()),
            RecordKey::Recommendation(u) => (b'd', u.as_bytes()),
            RecordKey::ReConsultation(u) => (b'x', u.as_bytes()),
            RecordKey::Evaluation(u) => (b'v', u.as_bytes()),
            RecordKey::Publication(u) => (b'b', u.as_bytes()),
            RecordKey::Group(g) => (b'L', g),
            RecordKey::JointMeeting(u) => (b'J', u.as_bytes()),
        };
        out[0] = tag;
        out[1..1 + body.len()].copy_from_slice(body);
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<RecordKey> {
        if b.len() != 17 {
            return None;
        }
        let uuid = || Uuid::from_slice(&b[1..17]).ok();
        Some(match b[0] {
            b'c' => RecordKey::Committee(b[1..7].try_into().ok()?),
            b't' => RecordKey::Topic(uuid()?),
            b'a' => RecordKey::Assignment(uuid()?),
            b'g' => RecordKey::Guidance(uuid()?),
            b'r' => RecordKey::Report(uuid()?),
            b'p' => RecordKey::TopicProposal(uuid()?),
            b'n' => RecordKey::Plan(
                b[1..7].try_into().ok()?,
                u32::from_be_bytes(b[7..11].try_into().ok()?),
            ),
            b'h' => RecordKey::Meeting(uuid()?),
            b'u' => RecordKey::Contribution(uuid()?),
            b'd' => RecordKey::Recommendation(uuid()?),
            b'x' => RecordKey::ReConsultation(uuid()?),
            b'v' => RecordKey::Evaluation(uuid()?),
            b'b' => RecordKey::Publication(uuid()?),
            b'L' => RecordKey::Group(b[1..17].try_into().ok()?),
            b'J' => RecordKey::JointMeeting(uuid()?),
            _ => return None,
        })
    }

    pub fn id_text(&self) -> String {
        match self {
            RecordKey::Committee(c) => String::from_utf8_lossy(c).into_owned(),
            RecordKey::Plan(c, year) => format!("{}/{year}", String::from_utf8_lossy(c)),
            RecordKey::Group(g) => String::from_utf8_lossy(g)
                .trim_end_matches('\0')
                .to_string(),
            RecordKey::Topic(u)
            | RecordKey::Assignment(u)
            | RecordKey::Guidance(u)
            | RecordKey::Report(u)
            | RecordKey::TopicProposal(u)
            | RecordKey::Meeting(u)
            | RecordKey::Contribution(u)
            | RecordKey::Recommendation(u)
            | RecordKey::ReConsultation(u)
            | RecordKey::Evaluation(u)
            | RecordKey::Publication(u)
            | RecordKey::JointMeeting(u) => u.to_string(),
        }
    }
}

/// One line of a record's history: what happened, by whom, and whether it took effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub key: OrderKey,
    pub event_id: Uuid,
    pub kind: String,
    /// None when applied; the reason when refused.
    pub refused: Option<String>,
}

/// The state machine of one record family.
pub trait Machine: Default + Clone + PartialEq + std::fmt::Debug + Serialize {
    /// Applies `fact` if it is a valid transition here; else says why not.
    fn step(&mut self, fact: &Fact, roster: &Roster) -> Result<(), String>;
}

/// A record's state with the bookkeeping the fold needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Folded<M> {
    pub record: M,
    /// The greatest order key applied so far: a later-sorting event applies incrementally.
    pub last: Option<OrderKey>,
    pub history: Vec<HistoryEntry>,
}

impl<M: Machine> Default for Folded<M> {
    fn default() -> Self {
        Folded {
            record: M::default(),
            last: None,
            history: Vec::new(),
        }
    }
}

impl<M: Machine> Folded<M> {
    /// Whether `fact` sorts after everything applied, so [`Folded::apply`] is exact.
    pub fn can_append(&self, fact: &Fact) -> bool {
        self.last
            .as_ref()
            .is_none_or(|last| fact.order_key() > *last)
    }

    /// Applies one event that sorts after everything applied so far.
    pub fn apply(&mut self, fact: &Fact, roster: &Roster) {
        let refused = if roster.is_void(&fact.origin, fact.seq) {
            Some(format!(
                "{} seq {} was signed with a key revoked before it; it is void",
                fact.origin, fact.seq
            ))
        } else {
            self.record.step(fact, roster).err()
        };
        self.history.push(HistoryEntry {
            key: fact.order_key(),
            event_id: fact.id,
            kind: crate::event::kind_name(&fact.body).to_string(),
            refused,
        });
        self.last = Some(fact.order_key());
    }
}

/// The state of a set of events: sorted canonically, duplicates ignored.
pub fn fold<M: Machine>(facts: &[Fact], roster: &Roster) -> Folded<M> {
    let mut sorted: Vec<&Fact> = facts.iter().collect();
    sorted.sort_by(|a, b| a.order_key().cmp(&b.order_key()).then(a.id.cmp(&b.id)));
    sorted.dedup_by_key(|f| f.id);
    let mut out = Folded::default();
    for f in sorted {
        if out.can_append(f) {
            out.apply(f, roster);
        } else {
            // Same (hlc, origin, seq) under another id: an equivocation that ingest keeps
            // as evidence; the first in id order stands.
            out.history.push(HistoryEntry {
                key: f.order_key(),
                event_id: f.id,
                kind: crate::event::kind_name(&f.body).to_string(),
                refused: Some(
                    "another event with the same origin and sequence number came first".into(),
                ),
            });
        }
    }
    out
}

/// Any record's state, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RecordState {
    Topic(Folded<Topic>),
    Assignment(Folded<Assignment>),
    Guidance(Folded<Guidance>),
    Report(Folded<Report>),
    TopicProposal(Folded<TopicProposal>),
    Plan(Folded<Plan>),
    Meeting(Folded<Meeting>),
    Contribution(Folded<Contribution>),
    Recommendation(Folded<Recommendation>),
    ReConsultation(Folded<ReConsultation>),
    Evaluation(Folded<QualityEvaluation>),
    Publication(Folded<Publication>),
    Group(Folded<Group>),
    JointMeeting(Folded<JointMeeting>),
}

impl RecordState {
    /// A fresh state for the family of `key`, or None for the roster (kept by ingest).
    pub fn empty(key: &RecordKey) -> Option<RecordState> {
        Some(match key {
            RecordKey::Committee(_) => return None,
            RecordKey::Topic(_) => RecordState::Topic(Folded::default()),
            RecordKey::Assignment(_) => RecordState::Assignment(Folded::default()),
            RecordKey::Guidance(_) => RecordState::Guidance(Folded::default()),
            RecordKey::Report(_) => RecordState::Report(Folded::default()),
            RecordKey::TopicProposal(_) => RecordState::TopicProposal(Folded::default()),
            RecordKey::Plan(..) => RecordState::Plan(Folded::default()),
            RecordKey::Meeting(_) => RecordState::Meeting(Folded::default()),
            RecordKey::Contribution(_) => RecordState::Contribution(Folded::default()),
            RecordKey::Recommendation(_) => RecordState::Recommendation(Folded::default()),
            RecordKey::ReConsultation(_) => RecordState::ReConsultation(Folded::default()),
            RecordKey::Evaluation(_) => RecordState::Evaluation(Folded::default()),
            RecordKey::Publication(_) => RecordState::Publication(Folded::default()),
            RecordKey::Group(_) => RecordState::Group(Folded::default()),
            RecordKey::JointMeeting(_) => RecordState::JointMeeting(Folded::default()),
        })
    }

    pub fn fold(key: &RecordKey, facts: &[Fact], roster: &Roster) -> Option<RecordState> {
        Some(match key {
            RecordKey::Committee(_) => return None,
            RecordKey::Topic(_) => RecordState::Topic(fold(facts, roster)),
            RecordKey::Assignment(_) => RecordState::Assignment(fold(facts, roster)),
            RecordKey::Guidance(_) => RecordState::Guidance(fold(facts, roster)),
            RecordKey::Report(_) => RecordState::Report(fold(facts, roster)),
            RecordKey::TopicProposal(_) => RecordState::TopicProposal(fold(facts, roster)),
            RecordKey::Plan(..) => RecordState::Plan(fold(facts, roster)),
            RecordKey::Meeting(_) => RecordState::Meeting(fold(facts, roster)),
            RecordKey::Contribution(_) => RecordState::Contribution(fold(facts, roster)),
            RecordKey::Recommendation(_) => RecordState::Recommendation(fold(facts, roster)),
            RecordKey::ReConsultation(_) => RecordState::ReConsultation(fold(facts, roster)),
            RecordKey::Evaluation(_) => RecordState::Evaluation(fold(facts, roster)),
            RecordKey::Publication(_) => RecordState::Publication(fold(facts, roster)),
            RecordKey::Group(_) => RecordState::Group(fold(facts, roster)),
            RecordKey::JointMeeting(_) => RecordState::JointMeeting(fold(facts, roster)),
        })
    }

    pub fn can_append(&self, fact: &Fact) -> bool {
        match self {
            RecordState::Topic(f) => f.can_append(fact),
            RecordState::Assignment(f) => f.can_append(fact),
            RecordState::Guidance(f) => f.can_append(fact),
            RecordState::Report(f) => f.can_append(fact),
            RecordState::TopicProposal(f) => f.can_append(fact),
            RecordState::Plan(f) => f.can_append(fact),
            RecordState::Meeting(f) => f.can_append(fact),
            RecordState::Contribution(f) => f.can_append(fact),
            RecordState::Recommendation(f) => f.can_append(fact),
            RecordState::ReConsultation(f) => f.can_append(fact),
            RecordState::Evaluation(f) => f.can_append(fact),
            RecordState::Publication(f) => f.can_append(fact),
            RecordState::Group(f) => f.can_append(fact),
            RecordState::JointMeeting(f) => f.can_append(fact),
        }
    }

    pub fn apply(&mut self, fact: &Fact, roster: &Roster) {
        match self {
            RecordState::Topic(f) => f.apply(fact, roster),
            RecordState::Assignment(f) => f.apply(fact, roster),
            RecordState::Guidance(f) => f.apply(fact, roster),
            RecordState::Report(f) => f.apply(fact, roster),
            RecordState::TopicProposal(f) => f.apply(fact, roster),
            RecordState::Plan(f) => f.apply(fact, roster),
            RecordState::Meeting(f) => f.apply(fact, roster),
            RecordState::Contribution(f) => f.apply(fact, roster),
            RecordState::Recommendation(f) => f.apply(fact, roster),
            RecordState::ReConsultation(f) => f.apply(fact, roster),
            RecordState::Evaluation(f) => f.apply(fact, roster),
            RecordState::Publication(f) => f.apply(fact, roster),
            RecordState::Group(f) => f.apply(fact, roster),
            RecordState::JointMeeting(f) => f.apply(fact, roster),
        }
    }

    pub fn history(&self) -> &[HistoryEntry] {
        match self {
            RecordState::Topic(f) => &f.history,
            RecordState::Assignment(f) => &f.history,
            RecordState::Guidance(f) => &f.history,
            RecordState::Report(f) => &f.history,
            RecordState::TopicProposal(f) => &f.history,
            RecordState::Plan(f) => &f.history,
            RecordState::Meeting(f) => &f.history,
            RecordState::Contribution(f) => &f.history,
            RecordState::Recommendation(f) => &f.history,
            RecordState::ReConsultation(f) => &f.history,
            RecordState::Evaluation(f) => &f.history,
            RecordState::Publication(f) => &f.history,
            RecordState::Group(f) => &f.history,
            RecordState::JointMeeting(f) => &f.history,
        }
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Builders of facts for the fold's tests.
    use super::*;
    use crate::pb::{self, audience::Kind, CommitteeList};

    pub fn to(codes: &[&str]) -> Kind {
        Kind::Committees(CommitteeList {
            codes: codes.iter().map(|c| c.to_string()).collect(),
        })
    }

    pub fn fact(origin: &str, seq: u64, hlc: u64, audience: Kind, body: pb::event::Body) -> Fact {
        Fact {
            id: Uuid::now_v7(),
            origin: origin.into(),
            seq,
            hlc,
            audience,
            body,
        }
    }

    /// The facts in canonical order.
    pub fn sorted(facts: &[Fact]) -> Vec<Fact> {
        let mut v = facts.to_vec();
        v.sort_by_key(|f| f.order_key());
        v
    }

    /// `facts` with copies of the ones at `dups` (mod len) inserted at those places.
    pub fn with_duplicates(facts: &[Fact], dups: &[usize]) -> Vec<Fact> {
        let mut out = facts.to_vec();
        for d in dups {
            out.insert(d % out.len(), facts[d % facts.len()].clone());
        }
        out
    }

    /// What a node does at ingest: apply an event that sorts last, refold otherwise;
    /// a duplicate is not stored twice.
    pub fn arrive<M: Machine>(facts: &[Fact], r: &Roster) -> Folded<M> {
        let mut seen: Vec<Fact> = Vec::new();
        let mut state = Folded::<M>::default();
        for f in facts {
            if seen.iter().any(|s| s.id == f.id) {
                continue;
            }
            seen.push(f.clone());
            if state.can_append(f) {
                state.apply(f, r);
            } else {
                state = fold(&seen, r);
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::testkit::*;
    use crate::domain::roster::tests::gansu;
    use crate::pb;
    use proptest::prelude::*;

    /// A full assignment round with a return and resubmission, plus noise from the wrong
    /// committees, in causal order.
    fn round() -> Vec<Fact> {
        let a = Uuid::now_v7().as_bytes().to_vec();
        let aud = to(&["620123", "620000"]);
        let s1 = Uuid::now_v7().as_bytes().to_vec();
        let s2 = Uuid::now_v7().as_bytes().to_vec();
        use pb::event::Body::*;
        vec![
            fact(
                "620100",
                1,
                10,
                aud.clone(),
                AssignmentIssued(pb::AssignmentIssued {
                    assignment_id: a.clone(),
                    topic_id: Uuid::now_v7().as_bytes().to_vec(),
                    parent_assignment_id: Uuid::now_v7().as_bytes().to_vec(),
                    assignee: "620123".into(),
                    title: "子课题".into(),
                    due_date: "2026-12-31".into(),
                    weight: 1,
                    topic_owner: "620000".into(),
                    ..Default::default()
                }),
            ),
            fact(
                "620123",
                1,
                20,
                aud.clone(),
                AssignmentAcknowledged(pb::AssignmentAcknowledged {
                    assignment_id: a.clone(),
                }),
            ),
            fact(
                "620121",
                1,
                25,
                aud.clone(),
                AssignmentAcknowledged(pb::AssignmentAcknowledged {
                    assignment_id: a.clone(),
                }),
            ),
            fact(
                "620123",
                2,
                30,
                aud.clone(),
                SubmissionMade(pb::SubmissionMade {
                    assignment_id: a.clone(),
                    submission_id: s1.clone(),
                    version: 1,
                    text: "v1".into(),
                    ..Default::default()
                }),
            ),
            fact(
                "620123",
                3,
                35,
                aud.clone(),
                ReviewRecorded(pb::ReviewRecorded {
                    assignment_id: a.clone(),
                    submission_id: s1.clone(),
                    version: 1,
                    verdict: pb::Verdict::Approve as i32,
                    comment: "自审".into(),
                }),
            ),
            fact(
                "620100",
                2,
                40,
                aud.clone(),
                ReviewRecorded(pb::ReviewRecorded {
                    assignment_id: a.clone(),
                    submission_id: s1,
                    version: 1,
                    verdict: pb::Verdict::Return as i32,
                    comment: "补充数据".into(),
                }),
            ),
            fact(
                "620123",
                4,
                50,
                aud.clone(),
                SubmissionMade(pb::SubmissionMade {
                    assignment_id: a.clone(),
                    submission_id: s2.clone(),
                    version: 2,
                    text: "v2".into(),
                    ..Default::default()
                }),
            ),
            fact(
                "620100",
                3,
                60,
                aud,
                ReviewRecorded(pb::ReviewRecorded {
                    assignment_id: a,
                    submission_id: s2,
                    version: 2,
                    verdict: pb::Verdict::Approve as i32,
                    comment: "通过".into(),
                }),
            ),
        ]
    }

    #[test]
    fn a_round_with_a_return_ends_approved_and_refusals_are_recorded() {
        let r = gansu();
        let folded: Folded<Assignment> = fold(&round(), &r);
        assert_eq!(folded.record.status, AssignmentStatus::Approved);
        assert_eq!(folded.record.submissions.len(), 2);
        let refused: Vec<_> = folded
            .history
            .iter()
            .filter_map(|h| h.refused.clone())
            .collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(
            refused[0].contains("620123"),
            "sibling county's ack names the assignee: {}",
            refused[0]
        );
        assert!(
            refused[1].contains("assigner"),
            "self-review refused: {}",
            refused[1]
        );
    }

    /// What the node does at ingest: apply an event that sorts last, refold otherwise.
    fn arrive(facts: &[Fact], r: &Roster) -> Folded<Assignment> {
        let mut seen: Vec<Fact> = Vec::new();
        let mut state = Folded::<Assignment>::default();
        for f in facts {
            if seen.iter().any(|s| s.id == f.id) {
                continue; // a duplicate is not stored twice
            }
            seen.push(f.clone());
            if state.can_append(f) {
                state.apply(f, r);
            } else {
                state = fold(&seen, r);
            }
        }
        state
    }

    proptest! {
        #[test]
        fn any_arrival_order_and_duplication_gives_the_state_of_the_set(
            perm in Just(round()).prop_shuffle(),
            dups in proptest::collection::vec(0usize..8, 0..6),
        ) {
            let r = gansu();
            let mut in_causal_order = perm.clone();
            in_causal_order.sort_by_key(|f| f.order_key());
            let expected: Folded<Assignment> = fold(&in_causal_order, &r);
            prop_assert_eq!(expected.record.status, AssignmentStatus::Approved);
            let mut arrivals = perm.clone();
            for d in dups { arrivals.insert(d % arrivals.len(), perm[d].clone()); }
            prop_assert_eq!(&arrive(&arrivals, &r), &expected);
            prop_assert_eq!(&fold::<Assignment>(&arrivals, &r), &expected);
        }
    }

    #[test]
    fn record_keys_round_trip_through_bytes() {
        for k in [
            RecordKey::Committee(*b"620123"),
            RecordKey::Topic(Uuid::now_v7()),
            RecordKey::Report(Uuid::now_v7()),
            RecordKey::Plan(*b"620100", 2026),
            RecordKey::Recommendation(Uuid::now_v7()),
            RecordKey::Publication(Uuid::now_v7()),
            RecordKey::JointMeeting(Uuid::now_v7()),
            RecordKey::Group(*b"yellow-river-9\0\0"),
        ] {
            assert_eq!(RecordKey::from_bytes(&k.to_bytes()), Some(k));
        }
    }
}
