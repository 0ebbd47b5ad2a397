//! The consultation cycle's operations (issue 4A): topic proposals, the annual plan,
//! meetings and contributions, recommendations and their tracking, re-consultation rounds,
//! quality evaluation and publication of results.
//!
//! As in [`super::ops`]: each operation checks the request against what this node holds, so
//! that a person gets a clear answer now, then authors its event(s); the fold re-checks
//! everything. An operation that authors several events (adopting a proposal into a topic and
//! the plan, concluding a meeting with its recommendations, a re-consultation round) authors
//! them one by one, the record others refer to first; if the node stops in between, what was
//! written stands and the rest can be added by the single-step commands.
use uuid::Uuid;

use super::ops::{parse_form, parse_source, parse_tier};
use super::Node;
use crate::domain::record::evaluation::parse_stage;
use crate::domain::record::{
    Contribution, Folded, Meeting, MeetingStatus, Plan, ProposalStatus, QualityEvaluation,
    ReConsultation, Recommendation, RecommendationStatus, RecordKey, RecordState, Topic,
    TopicProposal, TopicStatus,
};
use crate::domain::CommitteeCode;
use crate::pb::{self, audience::Kind, event::Body};
use crate::{Error, Result};

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

fn committees(codes: &[&str]) -> Kind {
    let mut v: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    v.sort();
    v.dedup();
    Kind::Committees(pb::CommitteeList { codes: v })
}

/// A calendar date, YYYY-MM-DD.
pub(crate) fn check_day(d: &str, what: &str) -> Result<()> {
    let ok = d.len() == 10
        && d.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
        && (1..=12).contains(&d[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&d[8..10].parse::<u32>().unwrap_or(0));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} '{d}' is not a date: write it as YYYY-MM-DD, e.g. 2026-12-31"
        )))
    }
}

pub fn parse_result(s: &str) -> Result<pb::RecommendationResult> {
    Ok(match s {
        "adopted" | "A" | "a" | "采纳" | "已解决" => pb::RecommendationResult::Adopted,
        "planned" | "B" | "b" | "列入计划" => pb::RecommendationResult::Planned,
        "reference" | "C" | "c" | "留作参考" => pb::RecommendationResult::Reference,
        _ => {
            return Err(invalid(format!(
                "handling result '{s}': use adopted (A, 采纳), planned (B, 列入计划) or reference (C, 留作参考)"
            )))
        }
    })
}

pub fn parse_verdict(s: &str) -> Result<pb::RecommendationVerdict> {
    Ok(match s {
        "satisfied" | "满意" => pb::RecommendationVerdict::Satisfied,
        "basically-satisfied" | "基本满意" => pb::RecommendationVerdict::BasicallySatisfied,
        "not-satisfied" | "不满意" => pb::RecommendationVerdict::NotSatisfied,
        _ => {
            return Err(invalid(format!(
                "evaluation '{s}': use satisfied (满意), basically-satisfied (基本满意) or not-satisfied (不满意)"
            )))
        }
    })
}

pub fn parse_outcome(s: &str) -> Result<pb::RecommendationOutcome> {
    Ok(match s {
        "implemented" | "已落实" => pb::RecommendationOutcome::Implemented,
        "not-implemented" | "未落实" | "" => pb::RecommendationOutcome::NotImplemented,
        "superseded" | "已替代" => pb::RecommendationOutcome::Superseded,
        _ => {
            return Err(invalid(format!(
                "outcome '{s}': use implemented (已落实), not-implemented (未落实) or superseded"
            )))
        }
    })
}

fn check_draft(d: &pb::RecommendationDraft) -> Result<()> {
    if d.text.trim().is_empty() {
        return Err(invalid("a recommendation needs its text"));
    }
    if !d.due_date.is_empty() {
        check_day(&d.due_date, "due date")?;
    }
    Ok(())
}

impl Node {
    fn held<M>(
        &self,
        key: RecordKey,
        pick: impl Fn(RecordState) -> Option<Folded<M>>,
    ) -> Result<Option<Folded<M>>> {
        Ok(self.store().state(&key)?.and_then(pick))
    }

    pub(crate) fn topic_folded(&self, id: Uuid) -> Result<Folded<Topic>> {
        match self.held(RecordKey::Topic(id), |s| match s {
            RecordState::Topic(t) => Some(t),
            _ => None,
        })? {
            Some(t) if t.record.owner.is_some() => Ok(t),
            _ => Err(Error::NotFound(format!("topic {id} is not held here"))),
        }
    }

    /// A topic of this committee's, by id or prefix.
    fn own_topic(&self, text: &str) -> Result<(Uuid, Folded<Topic>)> {
        let id = self.resolve(b't', text, "topic")?;
        let t = self.topic_folded(id)?;
        if t.record.owner.as_deref() != Some(self.code()) {
            return Err(invalid(format!(
                "topic {id} belongs to {}; only its owner does this",
                t.record.owner.unwrap_or_default()
            )));
        }
        Ok((id, t))
    }

    pub(crate) fn proposal_folded(&self, id: Uuid) -> Result<Folded<TopicProposal>> {
        self.held(RecordKey::TopicProposal(id), |s| match s {
            RecordState::TopicProposal(p) => Some(p),
            _ => None,
        })?
        .filter(|p| p.record.proposer.is_some())
        .ok_or_else(|| Error::NotFound(format!("proposal {id} is not held here")))
    }

    pub(crate) fn plan_folded(&self, code: &str, year: u32) -> Result<Option<Folded<Plan>>> {
        let c: [u8; 6] = code
            .as_bytes()
            .try_into()
            .map_err(|_| invalid(format!("'{code}' is not a committee code")))?;
        self.held(RecordKey::Plan(c, year), |s| match s {
            RecordState::Plan(p) => Some(p),
            _ => None,
        })
    }

    pub(crate) fn meeting_folded(&self, id: Uuid) -> Result<Folded<Meeting>> {
        self.held(RecordKey::Meeting(id), |s| match s {
            RecordState::Meeting(m) => Some(m),
            _ => None,
        })?
        .filter(|m| m.record.owner.is_some())
        .ok_or_else(|| Error::NotFound(format!("meeting {id} is not held here")))
    }

    pub(crate) fn recommendation_folded(&self, id: Uuid) -> Result<Folded<Recommendation>> {
        self.held(RecordKey::Recommendation(id), |s| match s {
            RecordState::Recommendation(r) => Some(r),
            _ => None,
        })?
        .filter(|r| r.record.owner.is_some())
        .ok_or_else(|| Error::NotFound(format!("recommendation {id} is not held here")))
    }

    /// Every record of one family held here, with its id.
    pub(crate) fn all_of<M>(
        &self,
        tag: u8,
        pick: impl Fn(RecordKey, RecordState) -> Option<(Uuid, Folded<M>)>,
    ) -> Result<Vec<(Uuid, Folded<M>)>> {
        Ok(self
            .store()
            .states_with_tag(tag)?
            .into_iter()
            .filter_map(|(k, s)| pick(k, s))
            .collect())
    }

    pub(crate) fn recommendations_held(&self) -> Result<Vec<(Uuid, Folded<Recommendation>)>> {
        self.all_of(b'd', |k, s| match (k, s) {
            (RecordKey::Recommendation(id), RecordState::Recommendation(r))
                if r.record.owner.is_some() =>
            {
                Some((id, r))
            }
            _ => None,
        })
    }

    pub(crate) fn contributions_held(&self) -> Result<Vec<(Uuid, Folded<Contribution>)>> {
        self.all_of(b'u', |k, s| match (k, s) {
            (RecordKey::Contribution(id), RecordState::Contribution(c))
                if c.record.author.is_some() =>
            {
                Some((id, c))
            }
            _ => None,
        })
    }

    pub(crate) fn rounds_held(&self) -> Result<Vec<(Uuid, Folded<ReConsultation>)>> {
        self.all_of(b'x', |k, s| match (k, s) {
            (RecordKey::ReConsultation(id), RecordState::ReConsultation(r))
                if r.record.owner.is_some() =>
            {
                Some((id, r))
            }
            _ => None,
        })
    }

    pub(crate) fn evaluations_held(&self) -> Result<Vec<(Uuid, Folded<QualityEvaluation>)>> {
        self.all_of(b'v', |k, s| match (k, s) {
            (RecordKey::Evaluation(id), RecordState::Evaluation(e))
                if e.record.evaluator.is_some() =>
            {
                Some((id, e))
            }
            _ => None,
        })
    }

    /// The calendar year in China Standard Time, from the node's clock.
    pub(crate) fn this_year(&self) -> u32 {
        self.today()[..4].parse().unwrap_or(1970)
    }

    fn plan_audience(&self) -> Kind {
        Kind::Ancestors(self.roster().root.clone())
    }

    // ---- 议题建议 ----

    /// Proposes a topic to this committee itself (`to` empty: 党政点题, 委员征题, 政协选题
    /// recorded where received) or up to an ancestor.
    pub async fn submit_proposal(&self, req: pb::TopicProposalRequest) -> Result<pb::Receipt> {
        let me = self.code().to_string();
        if req.title.trim().is_empty() {
            return Err(invalid("a topic proposal needs a title"));
        }
        let to = if req.to.trim().is_empty() {
            me.clone()
        } else {
            CommitteeCode::parse(req.to.trim())
                .map_err(invalid)?
                .to_string()
        };
        let audience = if to == me {
            committees(&[&me])
        } else {
            let roster = self.roster();
            if !roster.is_proper_ancestor(&to, &me) {
                return Err(invalid(format!(
                    "{to} ({}) is not above {me}: propose to this committee itself or to one above it",
                    roster.name_of(&to)
                )));
            }
            Kind::Ancestors(to.clone())
        };
        self.author(
            audience,
            Body::TopicProposalSubmitted(pb::TopicProposalSubmitted {
                proposal_id: self.new_id().as_bytes().to_vec(),
                to,
                title: req.title.trim().into(),
                description: req.description,
                source: parse_source(&req.source)? as i32,
                form: parse_form(&req.form)? as i32,
                tier: parse_tier(&req.tier)? as i32,
                plan_year: if req.plan_year == 0 {
                    self.this_year()
                } else {
                    req.plan_year
                },
            }),
        )
        .await
    }

    /// Classifies and adopts or declines a proposal made to this committee; adopting can
    /// publish a topic made from it and put that topic in the plan.
    pub async fn decide_proposal(
        &self,
        req: pb::TopicProposalDecisionRequest,
    ) -> Result<pb::TopicProposalDecisionReply> {
        let id = self.resolve(b'p', &req.proposal_id, "proposal")?;
        let p = self.proposal_folded(id)?.record;
        let proposer = p.proposer.clone().unwrap_or_default();
        if p.to != self.code() {
            return Err(invalid(format!(
                "the proposal was made to {}, which decides it",
                p.to
            )));
        }
        if p.status != ProposalStatus::Submitted {
            return Err(invalid(format!(
                "the proposal was already {}",
                p.status.name()
            )));
        }
        let tier = if req.tier.is_empty() {
            p.tier
        } else {
            parse_tier(&req.tier)? as i32
        };
        let form = if req.form.is_empty() {
            p.form
        } else {
            parse_form(&req.form)? as i32
        };
        if !req.adopt && (req.create_topic || req.add_to_plan) {
            return Err(invalid("a declined proposal becomes no topic"));
        }
        if !req.adopt && req.reason.trim().is_empty() {
            return Err(invalid("say why the proposal is declined (--reason)"));
        }
        let mut reply = pb::TopicProposalDecisionReply::default();
        let mut topic_id = Vec::new();
        if req.adopt && (req.create_topic || req.add_to_plan) {
            let content = pb::TopicContent {
                title: p.title.clone(),
                description: p.description.clone(),
                source: p.source,
                form,
                tier,
                plan_year: p.plan_year,
            };
            let t = self.new_id();
            topic_id = t.as_bytes().to_vec();
            reply.topic = Some(
                self.author(
                    Kind::Subtree(self.code().to_string()),
                    Body::TopicPublished(pb::TopicPublished {
                        topic_id: topic_id.clone(),
                        content: Some(content),
                    }),
                )
                .await?,
            );
        }
        reply.decision = Some(
            self.author(
                committees(&[&proposer]),
                Body::TopicProposalDecided(pb::TopicProposalDecided {
                    proposal_id: id.as_bytes().to_vec(),
                    proposer: proposer.clone(),
                    decision: if req.adopt {
                        pb::TopicProposalDecision::Adopt
                    } else {
                        pb::TopicProposalDecision::Decline
                    } as i32,
                    tier,
                    form,
                    reason: req.reason,
                    topic_id: topic_id.clone(),
                }),
            )
            .await?,
        );
        if req.add_to_plan {
            let topic = Uuid::from_slice(&topic_id).map_err(|_| invalid("no topic was made"))?;
            reply.plan = Some(
                self.change_plan(pb::PlanChangeRequest {
                    year: p.plan_year,
                    topic_id: topic.to_string(),
                    form: String::new(),
                    reason: format!("采纳议题建议 {}", p.title),
                    remove: false,
                    weight: 0,
                })
                .await?,
            );
        }
        Ok(reply)
    }

    // ---- 年度协商计划 ----

    /// Adds a topic of this committee's to its plan, changes its form, or removes it. Once
    /// the plan is adopted, each change is an amendment and needs its reason.
    pub async fn change_plan(&self, req: pb::PlanChangeRequest) -> Result<pb::Receipt> {
        let me = self.code().to_string();
        let (topic_id, title, form, tier, source, plan_year) = if req.remove {
            let id = self.resolve(b't', &req.topic_id, "topic")?;
            (id, String::new(), 0, 0, 0, 0)
        } else {
            let (id, t) = self.own_topic(&req.topic_id)?;
            if t.record.status == TopicStatus::Withdrawn {
                return Err(invalid("the topic was withdrawn; it cannot be planned"));
            }
            let c = &t.record.content;
            // 0: the entry's form if it is in the plan already, else the topic's (below).
            let form = if req.form.is_empty() {
                0
            } else {
                parse_form(&req.form)? as i32
            };
            (id, c.title.clone(), form, c.tier, c.source, c.plan_year)
        };
        let year = match (req.year, plan_year) {
            (0, 0) => self.this_year(),
            (0, y) => y,
            (y, _) => y,
        };
        let plan = self.plan_folded(&me, year)?.map(|p| p.record);
        let adopted = plan.as_ref().is_some_and(|p| p.adopted);
        if adopted && req.reason.trim().is_empty() {
            return Err(invalid(format!(
                "the {year} plan is adopted: a change now is an amendment (调整); give its reason (--reason)"
            )));
        }
        let existing = plan
            .as_ref()
            .and_then(|p| p.entries.iter().find(|e| e.topic_id == topic_id).cloned());
        let body = if req.remove {
            if existing.is_none() {
                return Err(invalid(format!(
                    "topic {topic_id} is not in the {year} plan of {me}"
                )));
            }
            Body::PlanEntryRemoved(pb::PlanEntryRemoved {
                committee: me,
                year,
                topic_id: topic_id.as_bytes().to_vec(),
                reason: req.reason,
            })
        } else {
            let form = match (form, &existing) {
                (0, Some(e)) => e.form,
                (0, None) => self.topic_folded(topic_id)?.record.content.form,
                (f, _) => f,
            };
            let weight = match (req.weight, &existing) {
                (0, Some(e)) => e.weight,
                (0, None) => 1,
                (w, _) => w,
            };
            if existing
                .as_ref()
                .is_some_and(|e| e.form == form && e.title == title && e.weight == weight)
            {
                return Err(invalid(format!(
                    "topic {topic_id} is already in the {year} plan with that form and weight"
                )));
            }
            Body::PlanEntrySet(pb::PlanEntrySet {
                committee: me,
                year,
                topic_id: topic_id.as_bytes().to_vec(),
                title,
                form,
                tier,
                source,
                reason: req.reason,
                weight,
            })
        };
        self.author(self.plan_audience(), body).await
    }

    pub async fn adopt_plan(&self, req: pb::PlanAdoptRequest) -> Result<pb::Receipt> {
        let me = self.code().to_string();
        let year = if req.year == 0 {
            self.this_year()
        } else {
            req.year
        };
        match self.plan_folded(&me, year)?.map(|p| p.record) {
            None => {
                return Err(invalid(format!(
                    "{me} has no plan for {year} yet: add its topics first (`liandong plan add`)"
                )))
            }
            Some(p) if p.adopted => {
                return Err(invalid(format!(
                    "the {year} plan is already adopted; change it by amendments"
                )))
            }
            Some(p) if p.entries.is_empty() => {
                return Err(invalid("an empty plan cannot be adopted"))
            }
            Some(_) => {}
        }
        self.author(
            self.plan_audience(),
            Body::PlanAdopted(pb::PlanAdopted {
                committee: me,
                year,
                note: req.note,
            }),
        )
        .await
    }

    // ---- 协商会议 ----

    /// Schedules a consultation meeting of one of this committee's topics, or moves one.
    pub async fn schedule_meeting(&self, req: pb::MeetingScheduleRequest) -> Result<pb::Receipt> {
        let me = self.code().to_string();
        let (meeting_id, topic_id, title) = if req.meeting_id.is_empty() {
            let (id, t) = self.own_topic(&req.topic_id)?;
            if t.record.status != TopicStatus::Published {
                return Err(invalid(format!(
                    "the topic is {}: only a published topic has its meeting scheduled",
                    t.record.status.name()
                )));
            }
            (self.new_id(), id, t.record.content.title)
        } else {
            let mid = self.resolve(b'h', &req.meeting_id, "meeting")?;
            let m = self.meeting_folded(mid)?.record;
            if m.owner.as_deref() != Some(me.as_str()) {
                return Err(invalid("only the meeting's organiser moves it"));
            }
            if m.status != MeetingStatus::Scheduled {
                return Err(invalid(format!(
                    "a {} meeting cannot be moved",
                    m.status.name()
                )));
            }
            let topic = m
                .topic_id
                .ok_or_else(|| invalid("the meeting names no topic"))?;
            (mid, topic, m.topic_title)
        };
        check_day(&req.date, "meeting date")?;
        if req.place.trim().is_empty() {
            return Err(invalid("say where the meeting is held (--place)"));
        }
        {
            let roster = self.roster();
            for c in req
                .participants
                .iter()
                .chain(req.branch_venues.iter().map(|v| &v.committee))
            {
                if !roster.knows(c) {
                    return Err(invalid(format!("{c} is not in the roster")));
                }
                if !roster.is_ancestor_or_self(&me, c) {
                    return Err(invalid(format!(
                        "{c} ({}) is not in the subtree of {me}: participants and branch venues are",
                        roster.name_of(c)
                    )));
                }
            }
        }
        self.author(
            Kind::Subtree(me),
            Body::MeetingScheduled(pb::MeetingScheduled {
                meeting_id: meeting_id.as_bytes().to_vec(),
                topic_id: topic_id.as_bytes().to_vec(),
                topic_title: title,
                date: req.date,
                place: req.place.trim().into(),
                main_venue: req.main_venue,
                branch_venues: req
                    .branch_venues
                    .into_iter()
                    .map(|v| pb::MeetingVenue {
                        committee: v.committee,
                        place: v.place,
                    })
                    .collect(),
                participants: req.participants,
            }),
        )
        .await
    }

    /// This committee's contribution (发言, 书面材料) to a meeting it participates in; a
    /// second one revises it.
    pub async fn contribute(&self, req: pb::MeetingContributionRequest) -> Result<pb::Receipt> {
        let me = self.code().to_string();
        let mid = self.resolve(b'h', &req.meeting_id, "meeting")?;
        let m = self.meeting_folded(mid)?.record;
        let organiser = m.owner.clone().unwrap_or_default();
        if organiser != me && !m.participants.contains(&me) {
            return Err(invalid(format!(
                "{me} is not a participant of this meeting (participants: {})",
                m.participants.join(", ")
            )));
        }
        if m.status != MeetingStatus::Scheduled {
            return Err(invalid(format!(
                "the meeting is {}: contributions are submitted before it concludes",
                m.status.name()
            )));
        }
        if req.text.trim().is_empty() {
            return Err(invalid("a contribution needs its text"));
        }
        let mine = self.contributions_held()?.into_iter().find(|(_, c)| {
            c.record.author.as_deref() == Some(me.as_str()) && c.record.meeting_id == Some(mid)
        });
        let (id, version) = match mine {
            Some((id, c)) => (id, c.record.versions.len() as u32 + 1),
            None => (self.new_id(), 1),
        };
        self.author(
            Kind::Ancestors(organiser.clone()),
            Body::MeetingContributionSubmitted(pb::MeetingContributionSubmitted {
                contribution_id: id.as_bytes().to_vec(),
                meeting_id: mid.as_bytes().to_vec(),
                meeting_owner: organiser,
                version,
                title: req.title,
                text: req.text,
                speaker: req.speaker,
            }),
        )
        .await
    }

    /// Concludes a meeting and issues the recommendations it concluded.
    pub async fn conclude_meeting(
        &self,
        req: pb::MeetingConcludeRequest,
    ) -> Result<pb::MeetingConcludeReply> {
        let me = self.code().to_string();
        let mid = self.resolve(b'h', &req.meeting_id, "meeting")?;
        let m = self.meeting_folded(mid)?.record;
        if m.owner.as_deref() != Some(me.as_str()) {
            return Err(invalid("only the meeting's organiser concludes it"));
        }
        if m.status != MeetingStatus::Scheduled {
            return Err(invalid(format!(
                "a {} meeting cannot be concluded",
                m.status.name()
            )));
        }
        if req.summary.trim().is_empty() {
            return Err(invalid("a conclusion needs its summary (--summary)"));
        }
        for d in &req.recommendations {
            check_draft(d)?;
        }
        let topic = m
            .topic_id
            .ok_or_else(|| invalid("the meeting names no topic"))?;
        let meeting = self
            .author(
                Kind::Subtree(me.clone()),
                Body::MeetingConcluded(pb::MeetingConcluded {
                    meeting_id: mid.as_bytes().to_vec(),
                    summary: req.summary,
                }),
            )
            .await?;
        let mut recommendations = Vec::new();
        for d in req.recommendations {
            recommendations.push(
                self.issue_recommendation(topic, &m.topic_title, Some(mid), 0, d, self.new_id())
                    .await?,
            );
        }
        Ok(pb::MeetingConcludeReply {
            meeting: Some(meeting),
            recommendations,
        })
    }

    pub async fn cancel_meeting(&self, meeting: &str, reason: &str) -> Result<pb::Receipt> {
        let mid = self.resolve(b'h', meeting, "meeting")?;
        let m = self.meeting_folded(mid)?.record;
        if m.owner.as_deref() != Some(self.code()) {
            return Err(invalid("only the meeting's organiser cancels it"));
        }
        if m.status != MeetingStatus::Scheduled {
            return Err(invalid(format!(
                "a {} meeting cannot be cancelled",
                m.status.name()
            )));
        }
        self.author(
            Kind::Subtree(self.code().to_string()),
            Body::MeetingCancelled(pb::MeetingCancelled {
                meeting_id: mid.as_bytes().to_vec(),
                reason: reason.into(),
            }),
        )
        .await
    }

    // ---- 建议 ----

    async fn issue_recommendation(
        &self,
        topic: Uuid,
        topic_title: &str,
        meeting: Option<Uuid>,
        round: u32,
        d: pb::RecommendationDraft,
        id: Uuid,
    ) -> Result<pb::Receipt> {
        self.author(
            Kind::Subtree(self.code().to_string()),
            Body::RecommendationIssued(pb::RecommendationIssued {
                recommendation_id: id.as_bytes().to_vec(),
                topic_id: topic.as_bytes().to_vec(),
                topic_title: topic_title.into(),
                meeting_id: meeting.map(|m| m.as_bytes().to_vec()).unwrap_or_default(),
                round,
                text: d.text.trim().into(),
                lead_department: d.lead_department,
                co_departments: d.co_departments,
                due_date: d.due_date,
            }),
        )
        .await
    }

    /// A recommendation of one of this committee's topics, outside a meeting's conclusion.
    pub async fn add_recommendation(
        &self,
        req: pb::RecommendationAddRequest,
    ) -> Result<pb::Receipt> {
        let (topic, t) = self.own_topic(&req.topic_id)?;
        if t.record.status == TopicStatus::Withdrawn {
            return Err(invalid("the topic was withdrawn"));
        }
        let meeting = if req.meeting_id.is_empty() {
            None
        } else {
            let mid = self.resolve(b'h', &req.meeting_id, "meeting")?;
            if self.meeting_folded(mid)?.record.topic_id != Some(topic) {
                return Err(invalid(format!("meeting {mid} is not of topic {topic}")));
            }
            Some(mid)
        };
        let d = req
            .draft
            .ok_or_else(|| invalid("give the recommendation's text"))?;
        check_draft(&d)?;
        self.issue_recommendation(topic, &t.record.content.title, meeting, 0, d, self.new_id())
            .await
    }

    /// A recommendation of this committee's, by id or prefix, for a follow-up.
    fn own_recommendation(&self, text: &str) -> Result<(Uuid, Recommendation)> {
        let id = self.resolve(b'd', text, "recommendation")?;
        let r = self.recommendation_folded(id)?.record;
        if r.owner.as_deref() != Some(self.code()) {
            return Err(invalid(format!(
                "recommendation {id} is tracked by {}, whose topic it is",
                r.owner.unwrap_or_default()
            )));
        }
        Ok((id, r))
    }

    fn rec_audience(&self) -> Kind {
        Kind::Subtree(self.code().to_string())
    }

    /// 办理结果: A (adopted), B (planned) or C (reference only), with the departments.
    pub async fn handle_recommendation(
        &self,
        req: pb::RecommendationHandleRequest,
    ) -> Result<pb::Receipt> {
        let (id, r) = self.own_recommendation(&req.recommendation_id)?;
        if !r.status.is_open() {
            return Err(invalid(format!(
                "the recommendation is closed ({})",
                r.closed_as
            )));
        }
        let result = parse_result(&req.result)?;
        self.author(
            self.rec_audience(),
            Body::RecommendationHandled(pb::RecommendationHandled {
                recommendation_id: id.as_bytes().to_vec(),
                result: result as i32,
                lead_department: req.lead_department,
                co_departments: req.co_departments,
                note: req.note,
            }),
        )
        .await
    }

    /// 落实情况: an implementation update.
    pub async fn update_recommendation(
        &self,
        req: pb::RecommendationUpdateRequest,
    ) -> Result<pb::Receipt> {
        let (id, r) = self.own_recommendation(&req.recommendation_id)?;
        if !r.status.is_open() {
            return Err(invalid(format!(
                "the recommendation is closed ({})",
                r.closed_as
            )));
        }
        if req.note.trim().is_empty() {
            return Err(invalid("say what was done (--note)"));
        }
        if req.percent > 100 {
            return Err(invalid(format!(
                "{} % is not a share of the work: 0–100",
                req.percent
            )));
        }
        self.author(
            self.rec_audience(),
            Body::RecommendationProgressed(pb::RecommendationProgressed {
                recommendation_id: id.as_bytes().to_vec(),
                note: req.note,
                percent: req.percent,
            }),
        )
        .await
    }

    /// 反馈: the government side's feedback, recorded by the committee.
    pub async fn record_feedback(
        &self,
        req: pb::RecommendationFeedbackRequest,
    ) -> Result<pb::Receipt> {
        let (id, r) = self.own_recommendation(&req.recommendation_id)?;
        if req.text.trim().is_empty() {
            return Err(invalid("give the feedback's text"));
        }
        let from = if req.from.trim().is_empty() {
            r.lead_department.clone()
        } else {
            req.from
        };
        self.author(
            self.rec_audience(),
            Body::RecommendationFeedbackRecorded(pb::RecommendationFeedbackRecorded {
                recommendation_id: id.as_bytes().to_vec(),
                from,
                text: req.text,
            }),
        )
        .await
    }

    /// The committee's evaluation of the handling; "not satisfied" reopens it.
    pub async fn evaluate_recommendation(
        &self,
        req: pb::RecommendationEvaluateRequest,
    ) -> Result<pb::Receipt> {
        let (id, r) = self.own_recommendation(&req.recommendation_id)?;
        let verdict = parse_verdict(&req.verdict)?;
        if r.status != RecommendationStatus::Handled {
            return Err(invalid(format!(
                "only a handled recommendation is evaluated; this one is {}{}",
                r.status.name(),
                if r.status.is_open() {
                    ": record the departments' handling first (`liandong rec handle`)"
                } else {
                    ""
                }
            )));
        }
        if verdict == pb::RecommendationVerdict::NotSatisfied && req.comment.trim().is_empty() {
            return Err(invalid(
                "say why the committee is not satisfied (--comment)",
            ));
        }
        self.author(
            self.rec_audience(),
            Body::RecommendationEvaluated(pb::RecommendationEvaluated {
                recommendation_id: id.as_bytes().to_vec(),
                verdict: verdict as i32,
                comment: req.comment,
            }),
        )
        .await
    }

    // ---- 再协商 ----

    /// A re-consultation round of one of this committee's topics: reviews every open
    /// recommendation (those not named in `reviews` are not implemented and stay open) and
    /// adds new ones.
    pub async fn hold_reconsultation(
        &self,
        req: pb::ReConsultationRequest,
    ) -> Result<pb::ReConsultationReply> {
        let (topic, t) = self.own_topic(&req.topic_id)?;
        check_day(&req.date, "date")?;
        if req.summary.trim().is_empty() {
            return Err(invalid("a round needs its summary (--summary)"));
        }
        let recs: Vec<(Uuid, Recommendation)> = self
            .recommendations_held()?
            .into_iter()
            .filter(|(_, r)| r.record.topic_id == Some(topic))
            .map(|(id, r)| (id, r.record))
            .collect();
        let open: Vec<Uuid> = recs
            .iter()
            .filter(|(_, r)| r.status.is_open())
            .map(|(id, _)| *id)
            .collect();
        if open.is_empty() {
            return Err(invalid(
                "every recommendation of this topic is closed: there is nothing to re-consult",
            ));
        }
        let last_round = self
            .rounds_held()?
            .into_iter()
            .filter(|(_, r)| r.record.topic_id == Some(topic))
            .map(|(_, r)| r.record.round)
            .chain(
                recs.iter()
                    .flat_map(|(_, r)| r.reviews.iter().map(|v| v.round)),
            )
            .max()
            .unwrap_or(0);
        let round = last_round + 1;
        let mut outcomes: Vec<(Uuid, pb::RecommendationOutcome, String)> = open
            .iter()
            .map(|id| {
                (
                    *id,
                    pb::RecommendationOutcome::NotImplemented,
                    String::new(),
                )
            })
            .collect();
        for n in &req.reviews {
            let id = self.resolve(b'd', &n.recommendation_id, "recommendation")?;
            let Some(slot) = outcomes.iter_mut().find(|(o, _, _)| *o == id) else {
                return Err(invalid(format!(
                    "recommendation {id} is not an open recommendation of this topic"
                )));
            };
            slot.1 = parse_outcome(&n.outcome)?;
            slot.2 = n.note.clone();
        }
        for d in &req.new_recommendations {
            check_draft(d)?;
        }
        let round_id = self.new_id();
        let added: Vec<Uuid> = req
            .new_recommendations
            .iter()
            .map(|_| self.new_id())
            .collect();
        let title = t.record.content.title.clone();
        let held = self
            .author(
                self.rec_audience(),
                Body::ReConsultationHeld(pb::ReConsultationHeld {
                    round_id: round_id.as_bytes().to_vec(),
                    topic_id: topic.as_bytes().to_vec(),
                    topic_title: title.clone(),
                    round,
                    date: req.date,
                    summary: req.summary,
                    committee_evaluation: req.committee_evaluation,
                    government_evaluation: req.government_evaluation,
                    reviewed: open.iter().map(|u| u.as_bytes().to_vec()).collect(),
                    added: added.iter().map(|u| u.as_bytes().to_vec()).collect(),
                }),
            )
            .await?;
        let mut reviews = Vec::new();
        for (id, outcome, note) in outcomes {
            reviews.push(
                self.author(
                    self.rec_audience(),
                    Body::RecommendationReviewed(pb::RecommendationReviewed {
                        recommendation_id: id.as_bytes().to_vec(),
                        round_id: round_id.as_bytes().to_vec(),
                        round,
                        outcome: outcome as i32,
                        note,
                    }),
                )
                .await?,
            );
        }
        let mut recommendations = Vec::new();
        for (d, id) in req.new_recommendations.into_iter().zip(added) {
            recommendations.push(
                self.issue_recommendation(topic, &title, None, round, d, id)
                    .await?,
            );
        }
        Ok(pb::ReConsultationReply {
            round: Some(held),
            reviews,
            recommendations,
        })
    }

    // ---- 质量评价 and 成果公开 ----

    /// A quality evaluation of a topic held here along the seven stages; recording again
    /// revises this committee's evaluation of that topic.
    pub async fn record_evaluation(&self, req: pb::EvaluationRequest) -> Result<pb::Receipt> {
        let me = self.code().to_string();
        let topic = self.resolve(b't', &req.topic_id, "topic")?;
        let t = self.topic_folded(topic)?.record;
        let owner = t.owner.clone().unwrap_or_default();
        if req.scores.is_empty() {
            return Err(invalid(
                "score at least one stage, e.g. --score selection=90 (stages: selection, organisation, handling, use-of-results, follow-up, assessment, publication)",
            ));
        }
        let mut scores = Vec::new();
        for s in &req.scores {
            let stage = parse_stage(&s.stage).ok_or_else(|| {
                invalid(format!(
                    "'{}' is not a stage: use selection, organisation, handling, use-of-results, follow-up, assessment or publication",
                    s.stage
                ))
            })?;
            if s.score > 100 {
                return Err(invalid(format!(
                    "{} scored {}: scores are 0–100",
                    s.stage, s.score
                )));
            }
            if scores
                .iter()
                .any(|x: &pb::EvaluationScore| x.stage == stage as i32)
            {
                return Err(invalid(format!("{} is scored twice", s.stage)));
            }
            scores.push(pb::EvaluationScore {
                stage: stage as i32,
                score: s.score,
                comment: s.comment.clone(),
            });
        }
        let mine = self.evaluations_held()?.into_iter().find(|(_, e)| {
            e.record.evaluator.as_deref() == Some(me.as_str()) && e.record.topic_id == Some(topic)
        });
        let (id, version) = match mine {
            Some((id, e)) => (id, e.record.version + 1),
            None => (self.new_id(), 1),
        };
        self.author(
            committees(&[&owner]),
            Body::EvaluationRecorded(pb::EvaluationRecorded {
                evaluation_id: id.as_bytes().to_vec(),
                topic_id: topic.as_bytes().to_vec(),
                topic_owner: owner,
                topic_title: t.content.title,
                version,
                scores,
                comment: req.comment,
            }),
        )
        .await
    }

    /// 成果公开: the results of a topic held here, to this committee's subtree (default),
    /// to named committees, or up to an ancestor.
    pub async fn publish_results(&self, req: pb::PublicationRequest) -> Result<pb::Receipt> {
        let me = self.code().to_string();
        let topic = self.resolve(b't', &req.topic_id, "topic")?;
        let t = self.topic_folded(topic)?.record;
        if req.title.trim().is_empty() || req.text.trim().is_empty() {
            return Err(invalid("a publication needs a title and its text"));
        }
        let audience =
            match (req.to.is_empty(), req.up_to.trim()) {
                (true, "") => Kind::Subtree(me),
                (false, "") => {
                    let roster = self.roster();
                    for c in &req.to {
                        if !roster.knows(c) {
                            return Err(invalid(format!("{c} is not in the roster")));
                        }
                    }
                    let refs: Vec<&str> = req.to.iter().map(String::as_str).collect();
                    committees(&refs)
                }
                (true, up) => {
                    if !self.roster().is_proper_ancestor(up, &me) {
                        return Err(invalid(format!("{up} is not above {me}")));
                    }
                    Kind::Ancestors(up.to_string())
                }
                (false, _) => return Err(invalid(
                    "publish to named committees (--to) or up to an ancestor (--up-to), not both",
                )),
            };
        self.author(
            audience,
            Body::PublicationIssued(pb::PublicationIssued {
                publication_id: self.new_id().as_bytes().to_vec(),
                topic_id: topic.as_bytes().to_vec(),
                topic_title: t.content.title,
                title: req.title.trim().into(),
                text: req.text,
            }),
        )
        .await
    }
}
