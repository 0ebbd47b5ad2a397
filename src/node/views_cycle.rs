//! Read views of the consultation cycle (issue 4A): proposals, plans with their roll-up,
//! meetings with their contributions, recommendations with their history, re-consultation
//! rounds, evaluations, publications, a topic's whole cycle, and the overdue list.
//!
//! Roll-up: sub-assignments → assignments → topic as in [`super::views`]; a plan's progress
//! is the mean of the progress of its topics that this node holds, weighted by each entry's
//! weight (`plan add --weight`, default 1) (a plan travels up to the
//! root, its topics only through their owner's subtree, so a committee above sees the plans
//! below but not always their topics: those count as "not held", never as 0 %).
use uuid::Uuid;

use super::Node;
use crate::domain::record::evaluation::stage_name;
use crate::domain::record::proposal::consultation_kind;
use crate::domain::record::recommendation::{outcome_name, result_code, result_name, verdict_name};
use crate::domain::record::{
    Folded, HistoryEntry, Meeting, MeetingStatus, Plan, QualityEvaluation, ReConsultation,
    Recommendation, RecordKey, RecordState, TopicProposal,
};
use crate::domain::Roster;
use crate::event::hlc;
use crate::node::views::{form_name, source_name, tier_name};
use crate::pb;
use crate::Result;

fn history_lines(h: &[HistoryEntry]) -> Vec<String> {
    h.iter()
        .map(|h| match &h.refused {
            None => format!("{} by {}", h.kind, h.key.origin),
            Some(why) => format!("{} by {} refused: {why}", h.kind, h.key.origin),
        })
        .collect()
}

fn refused_lines(h: &[HistoryEntry]) -> Vec<String> {
    h.iter()
        .filter_map(|h| {
            h.refused
                .as_ref()
                .map(|why| format!("{} by {}: {why}", h.kind, h.key.origin))
        })
        .collect()
}

fn opt_id(u: Option<Uuid>) -> String {
    u.map(|u| u.to_string()).unwrap_or_default()
}

/// Days since 1970-01-01 of a YYYY-MM-DD date (Howard Hinnant's days-from-civil).
fn days_of(date: &str) -> Option<i64> {
    if date.len() != 10 {
        return None;
    }
    let y: i64 = date.get(0..4)?.parse().ok()?;
    let m: i64 = date.get(5..7)?.parse().ok()?;
    let d: i64 = date.get(8..10)?.parse().ok()?;
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn days_between(from: &str, to: &str) -> u32 {
    match (days_of(from), days_of(to)) {
        (Some(a), Some(b)) if b > a => (b - a) as u32,
        _ => 0,
    }
}

pub fn proposal_view(
    id: Uuid,
    f: &Folded<TopicProposal>,
    roster: &Roster,
) -> pb::TopicProposalView {
    let p = &f.record;
    let proposer = p.proposer.clone().unwrap_or_default();
    let decided = matches!(
        p.status,
        crate::domain::record::ProposalStatus::Adopted
            | crate::domain::record::ProposalStatus::Declined
    );
    pb::TopicProposalView {
        id: id.to_string(),
        proposer_name: roster.name_of(&proposer),
        proposer,
        to_name: roster.name_of(&p.to),
        to: p.to.clone(),
        title: p.title.clone(),
        description: p.description.clone(),
        source: source_name(p.source),
        form: form_name(p.form),
        tier: tier_name(p.tier),
        plan_year: p.plan_year,
        state: p.status.name().into(),
        decided_tier: if decided {
            tier_name(p.decided_tier)
        } else {
            String::new()
        },
        consultation: if decided {
            consultation_kind(p.decided_tier).into()
        } else {
            String::new()
        },
        decided_form: if decided {
            form_name(p.decided_form)
        } else {
            String::new()
        },
        reason: p.reason.clone(),
        topic_id: Uuid::from_slice(&p.topic_id)
            .map(|u| u.to_string())
            .unwrap_or_default(),
        history: history_lines(&f.history),
    }
}

fn recommendation_view(
    id: Uuid,
    f: &Folded<Recommendation>,
    today: &str,
) -> pb::RecommendationView {
    let r = &f.record;
    let at = |h: u64| hlc::physical_ms(h);
    // (hlc, step): sorted by the hybrid clock, which orders the owner's own events exactly.
    let mut steps: Vec<(u64, pb::RecommendationStepView)> = Vec::new();
    for h in &r.handlings {
        steps.push((
            h.hlc,
            pb::RecommendationStepView {
                kind: "handled".into(),
                text: format!(
                    "{} {}{}{}",
                    result_code(h.result),
                    result_name(h.result),
                    if h.lead_department.is_empty() {
                        String::new()
                    } else {
                        format!(" 牵头 {}", h.lead_department)
                    },
                    if h.note.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", h.note)
                    }
                ),
                at_ms: at(h.hlc),
            },
        ));
    }
    for u in &r.updates {
        steps.push((
            u.hlc,
            pb::RecommendationStepView {
                kind: "update".into(),
                text: format!("{}% {}", u.percent, u.note),
                at_ms: at(u.hlc),
            },
        ));
    }
    for x in &r.feedback {
        steps.push((
            x.hlc,
            pb::RecommendationStepView {
                kind: "feedback".into(),
                text: format!("{}: {}", x.from, x.text),
                at_ms: at(x.hlc),
            },
        ));
    }
    for e in &r.evaluations {
        steps.push((
            e.hlc,
            pb::RecommendationStepView {
                kind: "evaluated".into(),
                text: format!("{} {}", verdict_name(e.verdict), e.comment)
                    .trim_end()
                    .into(),
                at_ms: at(e.hlc),
            },
        ));
    }
    for v in &r.reviews {
        steps.push((
            v.hlc,
            pb::RecommendationStepView {
                kind: "reviewed".into(),
                text: format!("round {}: {} {}", v.round, outcome_name(v.outcome), v.note)
                    .trim_end()
                    .into(),
                at_ms: at(v.hlc),
            },
        ));
    }
    steps.sort_by_key(|(h, _)| *h);
    let steps = steps.into_iter().map(|(_, s)| s).collect();
    pb::RecommendationView {
        id: id.to_string(),
        topic_id: opt_id(r.topic_id),
        topic_title: r.topic_title.clone(),
        meeting_id: opt_id(r.meeting_id),
        owner: r.owner.clone().unwrap_or_default(),
        round: r.round,
        text: r.text.clone(),
        lead_department: r.lead_department.clone(),
        co_departments: r.co_departments.clone(),
        due_date: r.due_date.clone(),
        state: r.status.name().into(),
        open: r.status.is_open(),
        result_code: result_code(r.result).into(),
        result: result_name(r.result).into(),
        percent: r.percent,
        closed_as: r.closed_as.clone(),
        reopened: r.reopened,
        overdue: r.status.is_open() && !r.due_date.is_empty() && r.due_date.as_str() < today,
        steps,
        refused: refused_lines(&f.history),
    }
}

fn round_view(
    id: Uuid,
    r: &ReConsultation,
    recs: &[(Uuid, Folded<Recommendation>)],
) -> pb::ReConsultationView {
    let reviews = r
        .reviewed
        .iter()
        .map(|rid| {
            let review = recs
                .iter()
                .find(|(x, _)| x == rid)
                .and_then(|(_, f)| f.record.reviews.iter().find(|v| v.round_id == Some(id)));
            pb::ReConsultationNote {
                recommendation_id: rid.to_string(),
                outcome: review
                    .map(|v| outcome_name(v.outcome).to_string())
                    .unwrap_or_else(|| "not-arrived".into()),
                note: review.map(|v| v.note.clone()).unwrap_or_default(),
            }
        })
        .collect();
    pb::ReConsultationView {
        id: id.to_string(),
        topic_id: opt_id(r.topic_id),
        round: r.round,
        date: r.date.clone(),
        summary: r.summary.clone(),
        committee_evaluation: r.committee_evaluation.clone(),
        government_evaluation: r.government_evaluation.clone(),
        reviews,
        added: r.added.iter().map(Uuid::to_string).collect(),
    }
}

fn evaluation_view(id: Uuid, e: &QualityEvaluation, roster: &Roster) -> pb::EvaluationView {
    let evaluator = e.evaluator.clone().unwrap_or_default();
    pb::EvaluationView {
        id: id.to_string(),
        evaluator_name: roster.name_of(&evaluator),
        evaluator,
        topic_id: opt_id(e.topic_id),
        topic_title: e.topic_title.clone(),
        topic_owner: e.topic_owner.clone(),
        version: e.version,
        scores: e
            .scores
            .iter()
            .map(|s| pb::EvaluationScoreView {
                stage: stage_name(s.stage).into(),
                score: s.score,
                comment: s.comment.clone(),
            })
            .collect(),
        overall: e.overall(),
        comment: e.comment.clone(),
    }
}

fn audience_text(a: &pb::audience::Kind) -> String {
    match a {
        pb::audience::Kind::Subtree(c) => format!("subtree({c})"),
        pb::audience::Kind::Committees(l) => format!("committees[{}]", l.codes.join(",")),
        pb::audience::Kind::Ancestors(c) => format!("ancestors({c})"),
        pb::audience::Kind::Lineage(c) => format!("lineage({c})"),
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

impl Node {
    pub fn proposal_list(&self) -> Result<pb::TopicProposalList> {
        let roster = self.roster().clone();
        let mut proposals: Vec<pb::TopicProposalView> = self
            .all_of(b'p', |k, s| match (k, s) {
                (RecordKey::TopicProposal(id), RecordState::TopicProposal(p))
                    if p.record.proposer.is_some() =>
                {
                    Some((id, p))
                }
                _ => None,
            })?
            .iter()
            .map(|(id, p)| proposal_view(*id, p, &roster))
            .collect();
        proposals.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(pb::TopicProposalList { proposals })
    }

    fn plan_view(&self, p: &Folded<Plan>, roster: &Roster, today: &str) -> Result<pb::PlanView> {
        let plan = &p.record;
        let code = plan.committee.clone().unwrap_or_default();
        let recs = self.recommendations_held()?;
        let mut entries = Vec::new();
        let (mut sum, mut counted, mut weights) = (0.0, 0u32, 0u64);
        for e in &plan.entries {
            // Only the committee's own topic counts: another's topic under the same id is not
            // this entry (records are joined here, not in a fold).
            let topic = self
                .topic_folded(e.topic_id)
                .ok()
                .filter(|t| t.record.owner.as_deref() == Some(code.as_str()));
            let mut v = pb::PlanEntryView {
                topic_id: e.topic_id.to_string(),
                title: e.title.clone(),
                form: form_name(e.form),
                tier: tier_name(e.tier),
                source: source_name(e.source),
                by_amendment: e.by_amendment,
                held: topic.is_some(),
                weight: e.weight,
                ..Default::default()
            };
            if let Some(t) = topic {
                let tv = self.topic_view(&e.topic_id.to_string())?;
                v.state = t.record.status.name().into();
                v.progress = tv.progress;
                v.overdue = count_overdue(&tv.assignments);
                let of_topic = recs.iter().filter(|(_, r)| {
                    r.record.topic_id == Some(e.topic_id)
                        && r.record.owner.as_deref() == Some(code.as_str())
                });
                for (_, r) in of_topic {
                    if r.record.status.is_open() {
                        v.recommendations_open += 1;
                        if !r.record.due_date.is_empty() && r.record.due_date.as_str() < today {
                            v.overdue += 1;
                        }
                    } else {
                        v.recommendations_closed += 1;
                    }
                }
                sum += v.progress * e.weight as f64;
                weights += e.weight as u64;
                counted += 1;
            }
            entries.push(v);
        }
        Ok(pb::PlanView {
            committee_name: roster.name_of(&code),
            committee: code,
            year: plan.year,
            adopted: plan.adopted,
            adopted_note: plan.adopted_note.clone(),
            not_held: entries.len() as u32 - counted,
            entries,
            progress: if weights > 0 {
                sum / weights as f64
            } else {
                0.0
            },
            amendments: plan.amendments() as u32,
            changes: plan
                .changes
                .iter()
                .map(|c| pb::PlanChangeView {
                    action: c.action.clone(),
                    topic_id: opt_id(c.topic_id),
                    title: c.title.clone(),
                    form: form_name(c.form),
                    reason: c.reason.clone(),
                    amendment: c.amendment,
                    at_ms: hlc::physical_ms(c.hlc),
                })
                .collect(),
            refused: refused_lines(&p.history),
        })
    }

    /// A committee's plan for a year (this committee and this year by default).
    pub fn plan(&self, req: pb::PlanRef) -> Result<pb::PlanView> {
        let code = if req.committee.is_empty() {
            self.code().to_string()
        } else {
            req.committee
        };
        let year = if req.year == 0 {
            self.this_year()
        } else {
            req.year
        };
        let p = self.plan_folded(&code, year)?.ok_or_else(|| {
            crate::Error::NotFound(format!(
                "no {year} plan of {code} is held here (a plan is seen by its committee and every committee above it)"
            ))
        })?;
        let roster = self.roster().clone();
        self.plan_view(&p, &roster, &self.today())
    }

    /// Every plan held here: this committee's and those of the committees below it.
    pub fn plan_list(&self) -> Result<pb::PlanList> {
        let roster = self.roster().clone();
        let today = self.today();
        let mut plans = Vec::new();
        for (k, s) in self.store().states_with_tag(b'n')? {
            if let (RecordKey::Plan(..), RecordState::Plan(p)) = (k, s) {
                if p.record.committee.is_some() {
                    plans.push(self.plan_view(&p, &roster, &today)?);
                }
            }
        }
        plans.sort_by(|a, b| a.committee.cmp(&b.committee).then(a.year.cmp(&b.year)));
        Ok(pb::PlanList { plans })
    }

    fn meeting_view_of(
        &self,
        id: Uuid,
        f: &Folded<Meeting>,
        roster: &Roster,
    ) -> Result<pb::MeetingView> {
        let m = &f.record;
        let organiser = m.owner.clone().unwrap_or_default();
        let mut contributions: Vec<pb::MeetingContributionView> = self
            .contributions_held()?
            .into_iter()
            .filter(|(_, c)| c.record.meeting_id == Some(id))
            .filter_map(|(cid, c)| {
                let author = c.record.author.clone()?;
                let v = c.record.latest()?.clone();
                Some(pb::MeetingContributionView {
                    id: cid.to_string(),
                    author_name: roster.name_of(&author),
                    participant: author == organiser || m.participants.contains(&author),
                    author,
                    version: v.version,
                    title: v.title,
                    text: v.text,
                    speaker: v.speaker,
                })
            })
            .collect();
        contributions.sort_by(|a, b| a.author.cmp(&b.author).then(a.id.cmp(&b.id)));
        let awaiting = m
            .participants
            .iter()
            .filter(|p| !contributions.iter().any(|c| c.author == **p))
            .cloned()
            .collect();
        let mut recommendations: Vec<String> = self
            .recommendations_held()?
            .into_iter()
            .filter(|(_, r)| r.record.meeting_id == Some(id) && r.record.owner == m.owner)
            .map(|(rid, _)| rid.to_string())
            .collect();
        recommendations.sort();
        Ok(pb::MeetingView {
            id: id.to_string(),
            topic_id: opt_id(m.topic_id),
            topic_title: m.topic_title.clone(),
            organiser_name: roster.name_of(&organiser),
            organiser,
            date: m.date.clone(),
            place: m.place.clone(),
            main_venue: m.main_venue.clone(),
            branch_venues: m
                .branch_venues
                .iter()
                .map(|v| pb::MeetingVenueView {
                    committee: v.committee.clone(),
                    place: v.place.clone(),
                })
                .collect(),
            participants: m.participants.clone(),
            state: m.status.name().into(),
            moved: m.moved,
            summary: m.closing_text.clone(),
            contributions,
            awaiting,
            recommendations,
            history: history_lines(&f.history),
        })
    }

    pub fn meeting_view(&self, meeting: &str) -> Result<pb::MeetingView> {
        let id = self.resolve(b'h', meeting, "meeting")?;
        let f = self.meeting_folded(id)?;
        let roster = self.roster().clone();
        self.meeting_view_of(id, &f, &roster)
    }

    fn meetings_held(&self) -> Result<Vec<(Uuid, Folded<Meeting>)>> {
        self.all_of(b'h', |k, s| match (k, s) {
            (RecordKey::Meeting(id), RecordState::Meeting(m)) if m.record.owner.is_some() => {
                Some((id, m))
            }
            _ => None,
        })
    }

    pub fn meeting_list(&self) -> Result<pb::MeetingList> {
        let roster = self.roster().clone();
        let mut meetings = Vec::new();
        for (id, m) in self.meetings_held()? {
            let mut v = self.meeting_view_of(id, &m, &roster)?;
            v.history.clear();
            meetings.push(v);
        }
        meetings.sort_by(|a, b| a.date.cmp(&b.date).then(a.id.cmp(&b.id)));
        Ok(pb::MeetingList { meetings })
    }

    pub fn recommendation_list(&self, topic: &str) -> Result<pb::RecommendationList> {
        let filter = if topic.trim().is_empty() {
            None
        } else {
            Some(self.resolve(b't', topic, "topic")?)
        };
        let today = self.today();
        let mut recommendations: Vec<pb::RecommendationView> = self
            .recommendations_held()?
            .into_iter()
            .filter(|(_, r)| filter.is_none() || r.record.topic_id == filter)
            .map(|(id, r)| recommendation_view(id, &r, &today))
            .collect();
        recommendations.sort_by(|a, b| {
            a.topic_id
                .cmp(&b.topic_id)
                .then(a.round.cmp(&b.round))
                .then(a.id.cmp(&b.id))
        });
        Ok(pb::RecommendationList { recommendations })
    }

    pub fn evaluation_list(&self) -> Result<pb::EvaluationList> {
        let roster = self.roster().clone();
        let mut evaluations: Vec<pb::EvaluationView> = self
            .evaluations_held()?
            .iter()
            .map(|(id, e)| evaluation_view(*id, &e.record, &roster))
            .collect();
        evaluations.sort_by(|a, b| {
            a.topic_id
                .cmp(&b.topic_id)
                .then(a.evaluator.cmp(&b.evaluator))
        });
        Ok(pb::EvaluationList { evaluations })
    }

    pub fn publication_list(&self) -> Result<pb::PublicationList> {
        let roster = self.roster().clone();
        let mut publications: Vec<pb::PublicationView> = self
            .all_of(b'b', |k, s| match (k, s) {
                (RecordKey::Publication(id), RecordState::Publication(p))
                    if p.record.author.is_some() =>
                {
                    Some((id, p))
                }
                _ => None,
            })?
            .into_iter()
            .map(|(id, p)| {
                let p = p.record;
                let author = p.author.unwrap_or_default();
                pb::PublicationView {
                    id: id.to_string(),
                    author_name: roster.name_of(&author),
                    author,
                    topic_id: opt_id(p.topic_id),
                    topic_title: p.topic_title,
                    title: p.title,
                    text: p.text,
                    audience: p.audience.as_ref().map(audience_text).unwrap_or_default(),
                }
            })
            .collect();
        publications.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(pb::PublicationList { publications })
    }

    /// A topic's whole consultation cycle as held here: where it came from, the plans that
    /// list it, its phase, meetings, recommendations, re-consultation rounds, evaluations
    /// and publications.
    pub fn topic_cycle(&self, topic: &str) -> Result<pb::TopicCycleView> {
        let id = self.resolve(b't', topic, "topic")?;
        let t = self.topic_folded(id)?.record;
        let roster = self.roster().clone();
        let today = self.today();
        // The topic's records are joined by topic id *and* owner: a record another committee
        // made under this topic's id is not part of its cycle.
        let owner = t.owner.clone();
        let owned = |o: &Option<String>| *o == owner;
        let proposal = self
            .all_of(b'p', |k, s| match (k, s) {
                (RecordKey::TopicProposal(pid), RecordState::TopicProposal(p))
                    if p.record.topic_id == id.as_bytes()
                        && owner.as_deref() == Some(p.record.to.as_str()) =>
                {
                    Some((pid, p))
                }
                _ => None,
            })?
            .first()
            .map(|(pid, p)| proposal_view(*pid, p, &roster));
        let mut plans = Vec::new();
        for (k, s) in self.store().states_with_tag(b'n')? {
            if let (RecordKey::Plan(..), RecordState::Plan(p)) = (k, s) {
                if owned(&p.record.committee) && p.record.entries.iter().any(|e| e.topic_id == id) {
                    plans.push(k.id_text());
                }
            }
        }
        plans.sort();
        let mut meetings = Vec::new();
        for (mid, m) in self.meetings_held()? {
            if m.record.topic_id == Some(id) && owned(&m.record.owner) {
                meetings.push(self.meeting_view_of(mid, &m, &roster)?);
            }
        }
        meetings.sort_by(|a, b| a.date.cmp(&b.date).then(a.id.cmp(&b.id)));
        let recs: Vec<(Uuid, Folded<Recommendation>)> = self
            .recommendations_held()?
            .into_iter()
            .filter(|(_, r)| r.record.topic_id == Some(id) && owned(&r.record.owner))
            .collect();
        let mut recommendations: Vec<pb::RecommendationView> = recs
            .iter()
            .map(|(rid, r)| recommendation_view(*rid, r, &today))
            .collect();
        recommendations.sort_by(|a, b| a.round.cmp(&b.round).then(a.id.cmp(&b.id)));
        let mut rounds: Vec<pb::ReConsultationView> = self
            .rounds_held()?
            .into_iter()
            .filter(|(_, r)| r.record.topic_id == Some(id) && owned(&r.record.owner))
            .map(|(rid, r)| round_view(rid, &r.record, &recs))
            .collect();
        rounds.sort_by_key(|r| r.round);
        let evaluations = self
            .evaluation_list()?
            .evaluations
            .into_iter()
            .filter(|e| e.topic_id == id.to_string())
            .collect();
        let publications = self
            .publication_list()?
            .publications
            .into_iter()
            .filter(|p| p.topic_id == id.to_string())
            .collect();
        let open = recommendations.iter().filter(|r| r.open).count() as u32;
        let closed = recommendations.len() as u32 - open;
        let has_assignments = !self.topic_view(&id.to_string())?.assignments.is_empty();
        use crate::domain::record::TopicStatus;
        let met = |s: MeetingStatus| meetings.iter().any(|m| m.state == s.name());
        let phase = if t.status == TopicStatus::Withdrawn {
            "withdrawn"
        } else if open > 0 {
            "follow-up"
        } else if closed > 0 || t.status == TopicStatus::Concluded {
            "closed"
        } else if met(MeetingStatus::Concluded) {
            "follow-up"
        } else if met(MeetingStatus::Scheduled) {
            "meeting"
        } else if has_assignments {
            "research"
        } else {
            "planning"
        };
        Ok(pb::TopicCycleView {
            topic_id: id.to_string(),
            phase: phase.into(),
            proposal,
            plans,
            meetings,
            recommendations,
            rounds,
            evaluations,
            publications,
            recommendations_open: open,
            recommendations_closed: closed,
        })
    }

    /// Open work of this committee's subtree past its due date: assignments (by assignee)
    /// and recommendations (by the committee that tracks them), most overdue first.
    pub fn overdue(&self) -> Result<pb::OverdueList> {
        let roster = self.roster().clone();
        let me = self.code().to_string();
        let today = self.today();
        let mut items = Vec::new();
        for (k, s) in self.store().states_with_tag(b'a')? {
            let (RecordKey::Assignment(id), RecordState::Assignment(a)) = (k, s) else {
                continue;
            };
            let Some(issue) = &a.record.issue else {
                continue;
            };
            if !a.record.status.is_open()
                || issue.due_date.is_empty()
                || issue.due_date.as_str() >= today.as_str()
                || !roster.is_ancestor_or_self(&me, &issue.assignee)
            {
                continue;
            }
            items.push(pb::OverdueItem {
                kind: "assignment".into(),
                id: id.to_string(),
                title: issue.title.clone(),
                topic_id: Uuid::from_slice(&issue.topic_id)
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
                topic_title: issue.topic_title.clone(),
                committee_name: roster.name_of(&issue.assignee),
                committee: issue.assignee.clone(),
                due_date: issue.due_date.clone(),
                days_overdue: days_between(&issue.due_date, &today),
                state: a.record.status.name().into(),
            });
        }
        for (id, r) in self.recommendations_held()? {
            let r = r.record;
            let owner = r.owner.clone().unwrap_or_default();
            if !r.status.is_open()
                || r.due_date.is_empty()
                || r.due_date.as_str() >= today.as_str()
                || !roster.is_ancestor_or_self(&me, &owner)
            {
                continue;
            }
            items.push(pb::OverdueItem {
                kind: "recommendation".into(),
                id: id.to_string(),
                title: r.text.clone(),
                topic_id: opt_id(r.topic_id),
                topic_title: r.topic_title.clone(),
                committee_name: roster.name_of(&owner),
                committee: owner,
                due_date: r.due_date.clone(),
                days_overdue: days_between(&r.due_date, &today),
                state: r.status.name().into(),
            });
        }
        items.sort_by(|a, b| {
            b.days_overdue
                .cmp(&a.days_overdue)
                .then(a.committee.cmp(&b.committee))
                .then(a.id.cmp(&b.id))
        });
        Ok(pb::OverdueList { today, items })
    }
}

fn count_overdue(views: &[pb::AssignmentView]) -> u32 {
    views
        .iter()
        .map(|v| u32::from(v.overdue) + count_overdue(&v.children))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_between_dates() {
        assert_eq!(days_of("1970-01-01"), Some(0));
        assert_eq!(days_between("2026-02-27", "2026-03-02"), 3);
        assert_eq!(days_between("2024-02-27", "2024-03-02"), 4, "leap year");
        assert_eq!(days_between("2026-03-02", "2026-02-27"), 0);
        assert_eq!(days_between("bad", "2026-02-27"), 0);
    }
}
