//! The consultation cycle on the command line (issue 4A): `proposal`, `plan`, `meeting`,
//! `rec`, `reconsult`, `evaluation`, `publication`, `overdue`, and the cycle part of
//! `topic show`. Every command takes `--json`.
use std::fmt::Write;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use super::print::short;
use super::{emit, print, LocalClient};
use crate::pb;

/// The cycle's commands, flattened into the top level of `liandong`.
#[derive(Subcommand, Debug)]
pub enum CycleCmd {
    /// 议题建议: propose a topic (to this committee or up to an ancestor), adopt, decline, list.
    #[command(subcommand)]
    Proposal(ProposalCmd),
    /// 年度协商计划: add, amend, remove, adopt, show, list (this committee's and those below).
    #[command(subcommand)]
    Plan(PlanCmd),
    /// 协商会议: schedule (or move), contribute (发言), conclude with recommendations, cancel.
    #[command(subcommand)]
    Meeting(MeetingCmd),
    /// 建议: add, handle (A/B/C), update, feedback, evaluate, list.
    #[command(subcommand)]
    Rec(RecCmd),
    /// 再协商: a round reviewing every open recommendation of a topic, adding new ones.
    Reconsult(ReconsultArgs),
    /// 质量评价: record a topic's evaluation along the seven stages, list.
    #[command(subcommand)]
    Evaluation(EvaluationCmd),
    /// 成果公开: publish a topic's results to a chosen audience, list.
    #[command(subcommand)]
    Publication(PublicationCmd),
    /// Open tasks of this committee's subtree past their due date.
    Overdue,
}

#[derive(Subcommand, Debug)]
pub enum ProposalCmd {
    /// Propose a topic: to this committee itself (党政点题, 委员征题, 政协选题 as received) or,
    /// with --to, up to a committee above.
    Submit {
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        description: String,
        /// party-government (党政点题) | members (委员征题) | committee (政协选题)
        #[arg(long, default_value = "committee")]
        source: String,
        /// Suggested form: thematic | counterpart | sector | proposal-handling
        #[arg(long, default_value = "thematic")]
        form: String,
        /// Suggested tier: county-and-above | grassroots
        #[arg(long, default_value = "county-and-above")]
        tier: String,
        /// Plan year (default: this year).
        #[arg(long, default_value_t = 0)]
        year: u32,
        /// The committee above that decides (default: this committee).
        #[arg(long, default_value = "")]
        to: String,
    },
    /// Adopt a proposal made to this committee, classifying it by the level that must solve it.
    Adopt {
        proposal: String,
        /// county-and-above (→ CPPCC consultation) | grassroots (→ grassroots consultation);
        /// default: as proposed.
        #[arg(long, default_value = "")]
        tier: String,
        #[arg(long, default_value = "")]
        form: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Publish a topic made from it.
        #[arg(long)]
        topic: bool,
        /// Publish a topic and put it in this committee's plan for the proposal's year.
        #[arg(long)]
        plan: bool,
    },
    /// Decline a proposal made to this committee.
    Decline {
        proposal: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "")]
        tier: String,
    },
    /// Every proposal held here: made here, made to this committee, or relayed.
    List,
}

#[derive(Subcommand, Debug)]
pub enum PlanCmd {
    /// Put one of this committee's topics in its plan.
    Add {
        #[arg(long)]
        topic: String,
        /// Default: the topic's form.
        #[arg(long, default_value = "")]
        form: String,
        /// Default: the topic's plan year.
        #[arg(long, default_value_t = 0)]
        year: u32,
        /// Required once the plan is adopted.
        #[arg(long, default_value = "")]
        reason: String,
        /// The topic's weight in the plan's progress (default 1).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        weight: u32,
    },
    /// Change an entry's form or weight (an amendment, 调整, once the plan is adopted).
    Amend {
        #[arg(long)]
        topic: String,
        /// Default: unchanged.
        #[arg(long, default_value = "")]
        form: String,
        /// Default: unchanged.
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        weight: u32,
        #[arg(long, default_value_t = 0)]
        year: u32,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Take a topic out of the plan.
    Remove {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 0)]
        year: u32,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Adopt the plan (e.g. as the standing committee approved it); later changes are amendments.
    Adopt {
        #[arg(long, default_value_t = 0)]
        year: u32,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// A plan with its roll-up and history (this committee's by default).
    Show {
        #[arg(long, default_value = "")]
        committee: String,
        #[arg(long, default_value_t = 0)]
        year: u32,
    },
    /// Every plan held here: this committee's and those of the committees below it.
    List,
}

#[derive(Subcommand, Debug)]
pub enum MeetingCmd {
    /// Schedule the consultation meeting of one of this committee's topics (or move one).
    Schedule {
        #[arg(long, required_unless_present = "meeting")]
        topic: Option<String>,
        /// The meeting to move.
        #[arg(long)]
        meeting: Option<String>,
        /// YYYY-MM-DD
        #[arg(long)]
        date: String,
        #[arg(long)]
        place: String,
        /// 主会场
        #[arg(long, default_value = "")]
        main_venue: String,
        /// 分会场 as CODE=PLACE; repeat for several.
        #[arg(long = "branch")]
        branches: Vec<String>,
        /// A participating committee; repeat for several.
        #[arg(long = "participant")]
        participants: Vec<String>,
    },
    /// This committee's contribution (发言 / 书面材料); again: a revision.
    Contribute {
        meeting: String,
        #[arg(long, default_value = "")]
        title: String,
        #[arg(long)]
        text: String,
        #[arg(long, default_value = "")]
        speaker: String,
    },
    /// Conclude the meeting with its recommendations (--rec, repeat).
    Conclude {
        meeting: String,
        #[arg(long)]
        summary: String,
        #[arg(long = "rec")]
        recommendations: Vec<String>,
        /// Lead department (牵头单位) of every recommendation given here.
        #[arg(long, default_value = "")]
        lead: String,
        /// Due date of every recommendation given here (YYYY-MM-DD).
        #[arg(long, default_value = "")]
        due: String,
    },
    Cancel {
        meeting: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Show {
        meeting: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum RecCmd {
    /// Add a recommendation to one of this committee's topics.
    Add {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        text: String,
        #[arg(long, default_value = "")]
        lead: String,
        #[arg(long = "co")]
        co: Vec<String>,
        #[arg(long, default_value = "")]
        due: String,
        #[arg(long, default_value = "")]
        meeting: String,
    },
    /// 办理结果: adopted (A) | planned (B) | reference (C).
    Handle {
        recommendation: String,
        #[arg(long)]
        result: String,
        #[arg(long, default_value = "")]
        lead: String,
        #[arg(long = "co")]
        co: Vec<String>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// 落实情况: an implementation update.
    Update {
        recommendation: String,
        #[arg(long)]
        note: String,
        #[arg(long, default_value_t = 0)]
        percent: u32,
    },
    /// 反馈: the government side's feedback.
    Feedback {
        recommendation: String,
        #[arg(long, default_value = "")]
        from: String,
        #[arg(long)]
        text: String,
    },
    /// The committee's evaluation: satisfied | basically-satisfied | not-satisfied (reopens).
    Evaluate {
        recommendation: String,
        #[arg(long)]
        verdict: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Recommendations held here (of one topic with --topic).
    List {
        #[arg(long, default_value = "")]
        topic: String,
    },
}

#[derive(Args, Debug)]
pub struct ReconsultArgs {
    #[arg(long)]
    pub topic: String,
    /// YYYY-MM-DD
    #[arg(long)]
    pub date: String,
    #[arg(long)]
    pub summary: String,
    /// A recommendation found implemented (closes it); repeat.
    #[arg(long)]
    pub implemented: Vec<String>,
    /// A recommendation replaced by a new one of this round (closes it); repeat.
    #[arg(long)]
    pub superseded: Vec<String>,
    /// ID=NOTE: a note on a recommendation not implemented (every open one not named above
    /// stays open); repeat.
    #[arg(long = "not-implemented")]
    pub not_implemented: Vec<String>,
    /// A new recommendation of this round; repeat.
    #[arg(long = "rec")]
    pub recommendations: Vec<String>,
    #[arg(long, default_value = "")]
    pub lead: String,
    #[arg(long, default_value = "")]
    pub due: String,
    /// The committee's evaluation of the handling.
    #[arg(long, default_value = "")]
    pub committee_evaluation: String,
    /// The government's evaluation of the recommendations.
    #[arg(long, default_value = "")]
    pub government_evaluation: String,
}

#[derive(Subcommand, Debug)]
pub enum EvaluationCmd {
    /// Score a topic held here: --score STAGE=N[:comment], stages selection, organisation,
    /// handling, use-of-results, follow-up, assessment, publication (or 选题 … 成果公开).
    Record {
        #[arg(long)]
        topic: String,
        #[arg(long = "score", required = true)]
        scores: Vec<String>,
        #[arg(long, default_value = "")]
        comment: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum PublicationCmd {
    /// Publish a topic's results: to this committee's subtree, to --to committees, or
    /// --up-to an ancestor.
    Issue {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        to: Vec<String>,
        #[arg(long, default_value = "")]
        up_to: String,
    },
    List,
}

fn drafts(texts: Vec<String>, lead: &str, due: &str) -> Vec<pb::RecommendationDraft> {
    texts
        .into_iter()
        .map(|text| pb::RecommendationDraft {
            text,
            lead_department: lead.into(),
            co_departments: vec![],
            due_date: due.into(),
        })
        .collect()
}

fn split_pair<'a>(s: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    match s.split_once('=') {
        Some((a, b)) if !a.trim().is_empty() => Ok((a.trim(), b.trim())),
        _ => bail!("'{s}' is not {what}"),
    }
}

/// `topic show`: the progress tree, then the topic's consultation cycle.
pub async fn show_topic(c: &mut LocalClient, topic: String, json: bool) -> Result<()> {
    let view = c
        .get_topic(pb::TopicRef {
            topic_id: topic.clone(),
        })
        .await?
        .into_inner();
    let cycle = c
        .get_topic_cycle(pb::TopicRef { topic_id: topic })
        .await?
        .into_inner();
    #[derive(serde::Serialize)]
    struct Both {
        #[serde(flatten)]
        topic: pb::TopicView,
        cycle: pb::TopicCycleView,
    }
    emit(json, &Both { topic: view, cycle }, |b| {
        format!("{}{}", print::topic(&b.topic), topic_cycle(&b.cycle))
    })
}

pub async fn run(cmd: CycleCmd, c: &mut LocalClient, json: bool) -> Result<()> {
    match cmd {
        CycleCmd::Proposal(ProposalCmd::Submit {
            title,
            description,
            source,
            form,
            tier,
            year,
            to,
        }) => {
            let r = c
                .submit_topic_proposal(pb::TopicProposalRequest {
                    title,
                    description,
                    source,
                    form,
                    tier,
                    plan_year: year,
                    to,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("proposal submitted", r))
        }
        CycleCmd::Proposal(ProposalCmd::Adopt {
            proposal,
            tier,
            form,
            reason,
            topic,
            plan,
        }) => {
            let r = c
                .decide_topic_proposal(pb::TopicProposalDecisionRequest {
                    proposal_id: proposal,
                    adopt: true,
                    tier,
                    form,
                    reason,
                    create_topic: topic || plan,
                    add_to_plan: plan,
                })
                .await?
                .into_inner();
            emit(json, &r, decision_reply)
        }
        CycleCmd::Proposal(ProposalCmd::Decline {
            proposal,
            reason,
            tier,
        }) => {
            let r = c
                .decide_topic_proposal(pb::TopicProposalDecisionRequest {
                    proposal_id: proposal,
                    adopt: false,
                    tier,
                    reason,
                    ..Default::default()
                })
                .await?
                .into_inner();
            emit(json, &r, decision_reply)
        }
        CycleCmd::Proposal(ProposalCmd::List) => emit(
            json,
            &c.list_topic_proposals(pb::Empty {}).await?.into_inner(),
            proposals,
        ),
        CycleCmd::Plan(cmd) => plan_cmd(cmd, c, json).await,
        CycleCmd::Meeting(cmd) => meeting_cmd(cmd, c, json).await,
        CycleCmd::Rec(cmd) => rec_cmd(cmd, c, json).await,
        CycleCmd::Reconsult(a) => {
            let mut reviews = Vec::new();
            for id in a.implemented {
                reviews.push(pb::ReConsultationNote {
                    recommendation_id: id,
                    outcome: "implemented".into(),
                    note: String::new(),
                });
            }
            for id in a.superseded {
                reviews.push(pb::ReConsultationNote {
                    recommendation_id: id,
                    outcome: "superseded".into(),
                    note: String::new(),
                });
            }
            for pair in &a.not_implemented {
                let (id, note) = split_pair(pair, "ID=NOTE")?;
                reviews.push(pb::ReConsultationNote {
                    recommendation_id: id.into(),
                    outcome: "not-implemented".into(),
                    note: note.into(),
                });
            }
            let r = c
                .hold_re_consultation(pb::ReConsultationRequest {
                    topic_id: a.topic,
                    date: a.date,
                    summary: a.summary,
                    committee_evaluation: a.committee_evaluation,
                    government_evaluation: a.government_evaluation,
                    reviews,
                    new_recommendations: drafts(a.recommendations, &a.lead, &a.due),
                })
                .await?
                .into_inner();
            emit(json, &r, |r| {
                let mut out = String::new();
                if let Some(h) = &r.round {
                    out.push_str(&print::receipt("re-consultation round recorded", h));
                }
                let _ = writeln!(
                    out,
                    "  {} recommendation(s) reviewed, {} added",
                    r.reviews.len(),
                    r.recommendations.len()
                );
                for n in &r.recommendations {
                    let _ = writeln!(out, "  new recommendation {}", short(&n.record_id));
                }
                out
            })
        }
        CycleCmd::Evaluation(EvaluationCmd::Record {
            topic,
            scores,
            comment,
        }) => {
            let mut parsed = Vec::new();
            for s in &scores {
                let (stage, rest) = split_pair(s, "STAGE=SCORE[:comment]")?;
                let (n, note) = rest.split_once(':').unwrap_or((rest, ""));
                let score: u32 = n
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("'{n}' in '{s}' is not a score 0–100"))?;
                parsed.push(pb::EvaluationScoreView {
                    stage: stage.into(),
                    score,
                    comment: note.into(),
                });
            }
            let r = c
                .record_evaluation(pb::EvaluationRequest {
                    topic_id: topic,
                    scores: parsed,
                    comment,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("evaluation recorded", r))
        }
        CycleCmd::Evaluation(EvaluationCmd::List) => emit(
            json,
            &c.list_evaluations(pb::Empty {}).await?.into_inner(),
            |l| {
                if l.evaluations.is_empty() {
                    return "no evaluations\n".into();
                }
                l.evaluations.iter().map(evaluation).collect()
            },
        ),
        CycleCmd::Publication(PublicationCmd::Issue {
            topic,
            title,
            text,
            to,
            up_to,
        }) => {
            let r = c
                .publish_results(pb::PublicationRequest {
                    topic_id: topic,
                    title,
                    text,
                    to,
                    up_to,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| {
                print::receipt("results published (成果公开)", r)
            })
        }
        CycleCmd::Publication(PublicationCmd::List) => emit(
            json,
            &c.list_publications(pb::Empty {}).await?.into_inner(),
            |l| {
                if l.publications.is_empty() {
                    return "no publications\n".into();
                }
                l.publications.iter().map(publication).collect()
            },
        ),
        CycleCmd::Overdue => emit(
            json,
            &c.list_overdue(pb::Empty {}).await?.into_inner(),
            overdue,
        ),
    }
}

async fn plan_cmd(cmd: PlanCmd, c: &mut LocalClient, json: bool) -> Result<()> {
    let change = |topic, form, year, reason, remove, weight| pb::PlanChangeRequest {
        year,
        topic_id: topic,
        form,
        reason,
        remove,
        weight,
    };
    let (req, what) = match cmd {
        PlanCmd::Add {
            topic,
            form,
            year,
            reason,
            weight,
        } => (
            change(topic, form, year, reason, false, weight),
            "added to the plan",
        ),
        PlanCmd::Amend {
            topic,
            form,
            weight,
            year,
            reason,
        } => (
            change(topic, form, year, reason, false, weight),
            "plan amended",
        ),
        PlanCmd::Remove {
            topic,
            year,
            reason,
        } => (
            change(topic, String::new(), year, reason, true, 0),
            "removed from the plan",
        ),
        PlanCmd::Adopt { year, note } => {
            let r = c
                .adopt_plan(pb::PlanAdoptRequest { year, note })
                .await?
                .into_inner();
            return emit(json, &r, |r| print::receipt("plan adopted", r));
        }
        PlanCmd::Show { committee, year } => {
            let v = c
                .get_plan(pb::PlanRef { committee, year })
                .await?
                .into_inner();
            return emit(json, &v, plan);
        }
        PlanCmd::List => {
            let l = c.list_plans(pb::Empty {}).await?.into_inner();
            return emit(json, &l, |l| {
                if l.plans.is_empty() {
                    return "no plans held here\n".into();
                }
                l.plans.iter().map(plan_line).collect()
            });
        }
    };
    let r = c.change_plan(req).await?.into_inner();
    emit(json, &r, |r| print::receipt(what, r))
}

async fn meeting_cmd(cmd: MeetingCmd, c: &mut LocalClient, json: bool) -> Result<()> {
    match cmd {
        MeetingCmd::Schedule {
            topic,
            meeting,
            date,
            place,
            main_venue,
            branches,
            participants,
        } => {
            let mut branch_venues = Vec::new();
            for b in &branches {
                let (code, place) = split_pair(b, "CODE=PLACE")?;
                branch_venues.push(pb::MeetingVenueView {
                    committee: code.into(),
                    place: place.into(),
                });
            }
            let moving = meeting.is_some();
            let r = c
                .schedule_meeting(pb::MeetingScheduleRequest {
                    topic_id: topic.unwrap_or_default(),
                    meeting_id: meeting.unwrap_or_default(),
                    date,
                    place,
                    main_venue,
                    branch_venues,
                    participants,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| {
                print::receipt(
                    if moving {
                        "meeting moved"
                    } else {
                        "meeting scheduled"
                    },
                    r,
                )
            })
        }
        MeetingCmd::Contribute {
            meeting,
            title,
            text,
            speaker,
        } => {
            let r = c
                .contribute_to_meeting(pb::MeetingContributionRequest {
                    meeting_id: meeting,
                    title,
                    text,
                    speaker,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("contribution submitted", r))
        }
        MeetingCmd::Conclude {
            meeting,
            summary,
            recommendations,
            lead,
            due,
        } => {
            let r = c
                .conclude_meeting(pb::MeetingConcludeRequest {
                    meeting_id: meeting,
                    summary,
                    recommendations: drafts(recommendations, &lead, &due),
                })
                .await?
                .into_inner();
            emit(json, &r, |r| {
                let mut out = String::new();
                if let Some(m) = &r.meeting {
                    out.push_str(&print::receipt("meeting concluded", m));
                }
                for n in &r.recommendations {
                    let _ = writeln!(out, "  recommendation {}", short(&n.record_id));
                }
                out
            })
        }
        MeetingCmd::Cancel { meeting, reason } => {
            let r = c
                .cancel_meeting(pb::MeetingCancelRequest {
                    meeting_id: meeting,
                    reason,
                })
                .await?
                .into_inner();
            emit(json, &r, |r| print::receipt("meeting cancelled", r))
        }
        MeetingCmd::Show { meeting } => emit(
            json,
            &c.get_meeting(pb::MeetingRef {
                meeting_id: meeting,
            })
            .await?
            .into_inner(),
            |m| meeting_text(m, ""),
        ),
        MeetingCmd::List => emit(
            json,
            &c.list_meetings(pb::Empty {}).await?.into_inner(),
            |l| {
                if l.meetings.is_empty() {
                    return "no meetings\n".into();
                }
                l.meetings.iter().map(|m| meeting_text(m, "")).collect()
            },
        ),
    }
}

async fn rec_cmd(cmd: RecCmd, c: &mut LocalClient, json: bool) -> Result<()> {
    let (r, what) = match cmd {
        RecCmd::Add {
            topic,
            text,
            lead,
            co,
            due,
            meeting,
        } => (
            c.add_recommendation(pb::RecommendationAddRequest {
                topic_id: topic,
                draft: Some(pb::RecommendationDraft {
                    text,
                    lead_department: lead,
                    co_departments: co,
                    due_date: due,
                }),
                meeting_id: meeting,
            })
            .await?,
            "recommendation added",
        ),
        RecCmd::Handle {
            recommendation,
            result,
            lead,
            co,
            note,
        } => (
            c.handle_recommendation(pb::RecommendationHandleRequest {
                recommendation_id: recommendation,
                result,
                lead_department: lead,
                co_departments: co,
                note,
            })
            .await?,
            "handling recorded (办理结果)",
        ),
        RecCmd::Update {
            recommendation,
            note,
            percent,
        } => (
            c.update_recommendation(pb::RecommendationUpdateRequest {
                recommendation_id: recommendation,
                note,
                percent,
            })
            .await?,
            "implementation update recorded",
        ),
        RecCmd::Feedback {
            recommendation,
            from,
            text,
        } => (
            c.record_recommendation_feedback(pb::RecommendationFeedbackRequest {
                recommendation_id: recommendation,
                from,
                text,
            })
            .await?,
            "feedback recorded (反馈)",
        ),
        RecCmd::Evaluate {
            recommendation,
            verdict,
            comment,
        } => (
            c.evaluate_recommendation(pb::RecommendationEvaluateRequest {
                recommendation_id: recommendation,
                verdict,
                comment,
            })
            .await?,
            "evaluation recorded",
        ),
        RecCmd::List { topic } => {
            let l = c
                .list_recommendations(pb::RecommendationListRequest { topic_id: topic })
                .await?
                .into_inner();
            return emit(json, &l, |l| {
                if l.recommendations.is_empty() {
                    return "no recommendations\n".into();
                }
                l.recommendations.iter().map(|r| rec_text(r, "")).collect()
            });
        }
    };
    emit(json, &r.into_inner(), |r| print::receipt(what, r))
}

// ---- human output ----

fn decision_reply(r: &pb::TopicProposalDecisionReply) -> String {
    let mut out = String::new();
    if let Some(d) = &r.decision {
        out.push_str(&print::receipt("proposal decided", d));
    }
    if let Some(t) = &r.topic {
        let _ = writeln!(out, "  topic {} published", short(&t.record_id));
    }
    if let Some(p) = &r.plan {
        let _ = writeln!(out, "  added to the plan {}", p.record_id);
    }
    out
}

fn proposals(l: &pb::TopicProposalList) -> String {
    if l.proposals.is_empty() {
        return "no topic proposals\n".into();
    }
    let mut out = String::new();
    for p in &l.proposals {
        let _ = writeln!(
            out,
            "{}  {}  [{}]  {} {} → {} {}  {} · {} · {}",
            short(&p.id),
            p.title,
            p.state,
            p.proposer,
            p.proposer_name,
            p.to,
            p.to_name,
            p.source,
            p.tier,
            p.plan_year
        );
        if !p.consultation.is_empty() {
            let _ = writeln!(
                out,
                "          classified {} ({}){}{}",
                p.decided_tier,
                p.consultation,
                if p.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", p.reason)
                },
                if p.topic_id.is_empty() {
                    String::new()
                } else {
                    format!("  → topic {}", short(&p.topic_id))
                }
            );
        }
    }
    out
}

fn pct(p: f64) -> String {
    format!("{:>3.0}%", p * 100.0)
}

fn plan_line(p: &pb::PlanView) -> String {
    format!(
        "{} {}  {} 年度协商计划  [{}]  {} topics  进度 {}  amendments {}{}\n",
        p.committee,
        p.committee_name,
        p.year,
        if p.adopted { "adopted" } else { "draft" },
        p.entries.len(),
        pct(p.progress),
        p.amendments,
        if p.not_held > 0 {
            format!("  ({} topics not held here)", p.not_held)
        } else {
            String::new()
        }
    )
}

pub fn plan(p: &pb::PlanView) -> String {
    let mut out = plan_line(p);
    if !p.adopted_note.is_empty() {
        let _ = writeln!(out, "   adopted: {}", p.adopted_note);
    }
    for e in &p.entries {
        let _ = writeln!(
            out,
            "   {}  {}  {} · {}{}{}  {}",
            short(&e.topic_id),
            e.title,
            e.form,
            e.tier,
            if e.weight > 1 {
                format!(" · 权重 {}", e.weight)
            } else {
                String::new()
            },
            if e.by_amendment {
                " (调整新增)"
            } else {
                ""
            },
            if e.held {
                format!(
                    "[{}] 进度 {}  建议 {} open / {} closed{}",
                    e.state,
                    pct(e.progress),
                    e.recommendations_open,
                    e.recommendations_closed,
                    if e.overdue > 0 {
                        format!("  逾期 {}", e.overdue)
                    } else {
                        String::new()
                    }
                )
            } else {
                "(topic not held here)".into()
            }
        );
    }
    let _ = writeln!(out, "   history:");
    for c in &p.changes {
        let mut line = format!(
            "     {}{}",
            if c.amendment { "调整 " } else { "" },
            c.action
        );
        if !c.topic_id.is_empty() {
            let _ = write!(line, " {} {}", short(&c.topic_id), c.title);
        }
        if !c.reason.is_empty() {
            let _ = write!(line, " — {}", c.reason);
        }
        let _ = writeln!(out, "{line}");
    }
    for r in &p.refused {
        let _ = writeln!(out, "   ! refused: {r}");
    }
    out
}

fn meeting_text(m: &pb::MeetingView, indent: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{indent}会议 {}  {}  {} {}  [{}]{}",
        short(&m.id),
        m.topic_title,
        m.date,
        m.place,
        m.state,
        if m.moved > 0 {
            format!(" (moved {}×)", m.moved)
        } else {
            String::new()
        }
    );
    if !m.main_venue.is_empty() {
        let _ = writeln!(out, "{indent}   主会场 {}", m.main_venue);
    }
    for v in &m.branch_venues {
        let _ = writeln!(out, "{indent}   分会场 {} {}", v.committee, v.place);
    }
    if !m.participants.is_empty() {
        let _ = writeln!(out, "{indent}   participants {}", m.participants.join(" "));
    }
    for c in &m.contributions {
        let _ = writeln!(
            out,
            "{indent}   发言 {} {} v{}: {}{}",
            c.author,
            c.author_name,
            c.version,
            if c.title.is_empty() {
                &c.text
            } else {
                &c.title
            },
            if c.participant {
                ""
            } else {
                "  (not a listed participant)"
            }
        );
    }
    if !m.awaiting.is_empty() && m.state == "scheduled" {
        let _ = writeln!(
            out,
            "{indent}   awaiting contributions: {}",
            m.awaiting.join(" ")
        );
    }
    if !m.summary.is_empty() {
        let _ = writeln!(out, "{indent}   结论: {}", m.summary);
    }
    out
}

fn rec_text(r: &pb::RecommendationView, indent: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{indent}建议 {}  {}  [{}{}]{}{}{}",
        short(&r.id),
        r.text,
        r.state,
        if r.closed_as.is_empty() {
            String::new()
        } else {
            format!(" {}", r.closed_as)
        },
        if r.result_code.is_empty() {
            String::new()
        } else {
            format!("  办理 {} {}", r.result_code, r.result)
        },
        if r.round > 0 {
            format!("  (round {})", r.round)
        } else {
            String::new()
        },
        if r.overdue { "  逾期 OVERDUE" } else { "" }
    );
    if !r.lead_department.is_empty() {
        let _ = writeln!(
            out,
            "{indent}   牵头 {}{}{}  落实 {}",
            r.lead_department,
            if r.co_departments.is_empty() {
                String::new()
            } else {
                format!("  协办 {}", r.co_departments.join("、"))
            },
            if r.due_date.is_empty() {
                String::new()
            } else {
                format!("  截止 {}", r.due_date)
            },
            implementation_text(r)
        );
    }
    for s in &r.steps {
        let _ = writeln!(out, "{indent}   · {} {}", s.kind, s.text);
    }
    for why in &r.refused {
        let _ = writeln!(out, "{indent}   ! refused: {why}");
    }
    out
}

fn evaluation(e: &pb::EvaluationView) -> String {
    let mut out = format!(
        "评价 {}  {} by {} {}  v{}  overall {:.1}\n",
        short(&e.id),
        e.topic_title,
        e.evaluator,
        e.evaluator_name,
        e.version,
        e.overall
    );
    let scores: Vec<String> = e
        .scores
        .iter()
        .map(|s| format!("{} {}", s.stage, s.score))
        .collect();
    let _ = writeln!(out, "   {}", scores.join(" · "));
    if !e.comment.is_empty() {
        let _ = writeln!(out, "   {}", e.comment);
    }
    out
}

fn publication(p: &pb::PublicationView) -> String {
    format!(
        "成果公开 {}  {}  ({})  by {} {} → {}\n",
        short(&p.id),
        p.title,
        p.topic_title,
        p.author,
        p.author_name,
        p.audience
    )
}

fn overdue(l: &pb::OverdueList) -> String {
    if l.items.is_empty() {
        return format!(
            "nothing overdue in this committee's subtree (as of {})\n",
            l.today
        );
    }
    let mut out = format!("overdue as of {}:\n", l.today);
    for i in &l.items {
        let _ = writeln!(
            out,
            "  {:>4} d  {:<14} {}  {}  → {} {}  截止 {}  [{}]  ({})",
            i.days_overdue,
            i.kind,
            short(&i.id),
            i.title,
            i.committee,
            i.committee_name,
            i.due_date,
            i.state,
            i.topic_title
        );
    }
    out
}

/// The cycle part of `topic show`.
pub fn topic_cycle(c: &pb::TopicCycleView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "   phase: {}   建议 {} open / {} closed",
        c.phase, c.recommendations_open, c.recommendations_closed
    );
    if let Some(p) = &c.proposal {
        let _ = writeln!(
            out,
            "   from proposal {} by {} {} ({}, classified {} → {})",
            short(&p.id),
            p.proposer,
            p.proposer_name,
            p.source,
            p.decided_tier,
            p.consultation
        );
    }
    if !c.plans.is_empty() {
        let _ = writeln!(out, "   in plan(s): {}", c.plans.join(" "));
    }
    for m in &c.meetings {
        out.push_str(&meeting_text(m, "   "));
    }
    for r in &c.recommendations {
        out.push_str(&rec_text(r, "   "));
    }
    for r in &c.rounds {
        let _ = writeln!(out, "   再协商 round {} {}: {}", r.round, r.date, r.summary);
        for v in &r.reviews {
            let _ = writeln!(
                out,
                "      {} {}{}",
                short(&v.recommendation_id),
                v.outcome,
                if v.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", v.note)
                }
            );
        }
        if !r.added.is_empty() {
            let _ = writeln!(
                out,
                "      added {}",
                r.added
                    .iter()
                    .map(|a| short(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    for e in &c.evaluations {
        out.push_str("   ");
        out.push_str(&evaluation(e));
    }
    for p in &c.publications {
        out.push_str("   ");
        out.push_str(&publication(p));
    }
    out
}

/// 落实 as the department reported it: its last percentage, "implemented" once a review closed
/// it so, and "not reported" rather than a 0 % nobody said.
fn implementation_text(r: &pb::RecommendationView) -> String {
    let reported = r.steps.iter().any(|s| s.kind == "update");
    match (reported, r.closed_as == "implemented") {
        (true, true) => format!("{}%，已落实 implemented", r.percent),
        (true, false) => format!("{}%", r.percent),
        (false, true) => "已落实 implemented".into(),
        (false, false) => "未报进度 no progress reported".into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("liandong").chain(line.split(' ')))
    }

    #[test]
    fn implementation_is_said_as_reported() {
        let mut r = crate::pb::RecommendationView::default();
        assert_eq!(
            super::implementation_text(&r),
            "未报进度 no progress reported"
        );
        r.closed_as = "implemented".into();
        assert_eq!(super::implementation_text(&r), "已落实 implemented");
        r.steps.push(crate::pb::RecommendationStepView {
            kind: "update".into(),
            text: "60% 已开工".into(),
            at_ms: 0,
        });
        r.percent = 60;
        assert_eq!(super::implementation_text(&r), "60%，已落实 implemented");
        r.closed_as.clear();
        assert_eq!(super::implementation_text(&r), "60%");
    }

    /// The commands the integration tests do not run, and the arguments clap must insist on.
    #[test]
    fn every_cycle_command_parses() {
        for line in [
            "proposal submit --title 饮水安全 --source party-government",
            "proposal decline 1a2b3c4d --reason 属基层协商 --tier grassroots",
            "proposal adopt 1a2b3c4d --topic",
            "plan add --topic 1a2b3c4d --year 2026",
            "plan remove --topic 1a2b3c4d --reason 并入其他议题",
            "plan show --committee 620100 --year 2026",
            "meeting schedule --meeting 1a2b3c4d --date 2026-10-01 --place 白银",
            "meeting cancel 1a2b3c4d --reason 延期",
            "meeting list",
            "rec add --topic 1a2b3c4d --text 建议 --lead 省水利厅 --co 省财政厅 --co 省农业农村厅 --due 2027-01-01",
            "rec list",
            "reconsult --topic 1a2b3c4d --date 2027-09-10 --summary 再协商 --superseded 1a2b3c4d --not-implemented 5e6f7a8b=资金未到位 --rec 新建议",
            "evaluation record --topic 1a2b3c4d --score handling=85:及时",
            "publication issue --topic 1a2b3c4d --title 成果 --text 正文 --up-to 620000",
            "overdue",
        ] {
            let cli = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(matches!(cli.command, Command::Cycle(_)), "{line}");
        }
        for line in [
            "meeting schedule --date 2026-10-01 --place 白银",
            "evaluation record --topic 1a2b3c4d",
            "proposal decline 1a2b3c4d",
            "rec handle 1a2b3c4d",
        ] {
            assert!(parse(line).is_err(), "{line} should be refused");
        }
    }
}
