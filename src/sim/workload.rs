//! The simulation's workload: what a committee may do next, chosen at random from what its
//! own node holds, and carried out through the node's ordinary operations ([`crate::node::ops`]
//! for the tree, [`crate::node::lateral`] for the lateral group the two roots share).
use rand::rngs::StdRng;
use rand::Rng;
use uuid::Uuid;

use crate::domain::record::group::ProposalStatus;
use crate::domain::record::{AssignmentStatus, JointStatus, RecordKey, RecordState, TopicStatus};
use crate::node::lateral::MemberInput;
use crate::node::Node;
use crate::pb;

/// The lateral group the two provinces of the simulation share.
pub const GROUP: &str = "yellow-river-9";
/// Its name, as `shared/data/groups.toml` gives it.
pub const GROUP_NAME: &str = "沿黄九省区政协黄河流域生态保护和高质量发展协商研讨会";

/// One operation of a committee.
#[derive(Clone, Debug)]
pub enum Op {
    Topic,
    Assign {
        topic: Uuid,
        parent: Option<Uuid>,
        to: String,
    },
    Acknowledge(Uuid),
    Submit(Uuid),
    Review(Uuid, bool),
    Cancel(Uuid),
    Conclude(Uuid),
    Guidance(Vec<String>),
    AcknowledgeGuidance(Uuid),
    Report(String),
    AcknowledgeReport(Uuid),
    /// Lateral: propose an amendment of the charter naming `host` for `year`.
    Amend {
        year: u32,
        host: String,
    },
    /// Lateral: endorse the pending charter proposal with this digest.
    Endorse(String),
    /// Lateral: the host of `year` convenes a joint meeting.
    Convene {
        year: u32,
        subtrees: bool,
    },
    /// Lateral: a member's contribution, new or a revision of one of its own.
    Contribute {
        meeting: Uuid,
        revise: Option<String>,
    },
    /// Lateral: a member's roll-up of its own topic.
    Rollup {
        meeting: Uuid,
        topic: Uuid,
    },
    /// Lateral: the host's next draft.
    Draft(Uuid),
    /// Lateral: a member (not the host) comments on the latest draft.
    Comment {
        meeting: Uuid,
        agree: bool,
    },
    Finalize(Uuid),
    Dispatch(Uuid),
}

impl Op {
    pub fn name(&self) -> String {
        let short = |u: &Uuid| u.simple().to_string()[24..].to_string();
        match self {
            Op::Topic => "topic".into(),
            Op::Assign { parent, to, .. } => match parent {
                None => format!("assign to {to}"),
                Some(p) => format!("split {} to {to}", short(p)),
            },
            Op::Acknowledge(a) => format!("ack {}", short(a)),
            Op::Submit(a) => format!("submit {}", short(a)),
            Op::Review(a, true) => format!("approve {}", short(a)),
            Op::Review(a, false) => format!("return {}", short(a)),
            Op::Cancel(a) => format!("cancel {}", short(a)),
            Op::Conclude(t) => format!("conclude {}", short(t)),
            Op::Guidance(to) if to.is_empty() => "guidance to subtree".into(),
            Op::Guidance(to) => format!("guidance to {}", to.join(",")),
            Op::AcknowledgeGuidance(g) => format!("ack guidance {}", short(g)),
            Op::Report(to) => format!("report to {to}"),
            Op::AcknowledgeReport(r) => format!("ack report {}", short(r)),
            Op::Amend { year, host } => format!("amend charter: {year} hosted by {host}"),
            Op::Endorse(d) => format!("endorse charter {}", &d[..d.len().min(12)]),
            Op::Convene { year, subtrees } => format!(
                "convene joint meeting {year}{}",
                if *subtrees {
                    " with subtrees"
                } else {
                    " (members only)"
                }
            ),
            Op::Contribute { meeting, revise } => match revise {
                None => format!("contribute to {}", short(meeting)),
                Some(c) => format!("revise {} in {}", &c[..c.len().min(8)], short(meeting)),
            },
            Op::Rollup { meeting, topic } => {
                format!("roll up {} to {}", short(topic), short(meeting))
            }
            Op::Draft(m) => format!("draft {}", short(m)),
            Op::Comment { meeting, agree } => format!(
                "comment on {} ({})",
                short(meeting),
                if *agree { "agree" } else { "changes" }
            ),
            Op::Finalize(m) => format!("finalize {}", short(m)),
            Op::Dispatch(m) => format!("send {}", short(m)),
        }
    }

    /// Whether this is an operation of the lateral group.
    pub fn lateral(&self) -> bool {
        matches!(
            self,
            Op::Amend { .. }
                | Op::Endorse(_)
                | Op::Convene { .. }
                | Op::Contribute { .. }
                | Op::Rollup { .. }
                | Op::Draft(_)
                | Op::Comment { .. }
                | Op::Finalize(_)
                | Op::Dispatch(_)
        )
    }
}

fn uuid_of(bytes: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(bytes).ok()
}

/// Picks something `node`'s committee may do now, weighted, from what its node holds.
pub fn pick(rng: &mut StdRng, node: &Node) -> Option<Op> {
    let me = node.code().to_string();
    let (below, above) = {
        let roster = node.roster();
        roster.get(&me)?;
        let below: Vec<String> = roster
            .subtree(&me)
            .into_iter()
            .filter(|c| *c != me)
            .collect();
        let above: Vec<String> = roster
            .path_to_root(&me)
            .into_iter()
            .filter(|c| *c != me)
            .map(String::from)
            .collect();
        (below, above)
    };
    let mut choices: Vec<(u32, Op)> = vec![(3, Op::Topic)];
    let pick_below = |rng: &mut StdRng| below[rng.gen_range(0..below.len())].clone();
    if let Ok(topics) = node.store().states_with_tag(b't') {
        for (key, state) in topics {
            let (RecordState::Topic(t), Some(id)) = (state, uuid_of(&key.to_bytes()[1..])) else {
                continue;
            };
            if t.record.owner.as_deref() == Some(me.as_str())
                && t.record.status == TopicStatus::Published
            {
                if !below.is_empty() {
                    choices.push((
                        4,
                        Op::Assign {
                            topic: id,
                            parent: None,
                            to: pick_below(rng),
                        },
                    ));
                }
                choices.push((1, Op::Conclude(id)));
            }
        }
    }
    if let Ok(assignments) = node.store().states_with_tag(b'a') {
        for (key, state) in assignments {
            let (RecordState::Assignment(a), Some(id)) = (state, uuid_of(&key.to_bytes()[1..]))
            else {
                continue;
            };
            let Some(issue) = &a.record.issue else {
                continue;
            };
            let status = a.record.status;
            if issue.assignee == me {
                if status == AssignmentStatus::Issued && !a.record.acknowledged {
                    choices.push((6, Op::Acknowledge(id)));
                }
                if matches!(
                    status,
                    AssignmentStatus::Acknowledged | AssignmentStatus::Returned
                ) {
                    choices.push((5, Op::Submit(id)));
                }
                if status.is_open() && !below.is_empty() {
                    if let Some(topic) = uuid_of(&issue.topic_id) {
                        choices.push((
                            2,
                            Op::Assign {
                                topic,
                                parent: Some(id),
                                to: pick_below(rng),
                            },
                        ));
                    }
                }
            }
            if issue.assigner == me {
                if status == AssignmentStatus::Submitted {
                    choices.push((6, Op::Review(id, rng.gen_bool(0.6))));
                }
                if status.is_open() {
                    choices.push((1, Op::Cancel(id)));
                }
            }
        }
    }
    if let Ok(guidance) = node.store().states_with_tag(b'g') {
        let roster = node.roster();
        for (key, state) in guidance {
            let (RecordState::Guidance(g), Some(id)) = (state, uuid_of(&key.to_bytes()[1..]))
            else {
                continue;
            };
            let Some(issuer) = &g.record.issuer else {
                continue;
            };
            let recipient = match &g.record.audience {
                Some(pb::audience::Kind::Subtree(c)) => roster.is_proper_ancestor(c, &me),
                Some(pb::audience::Kind::Committees(list)) => list.codes.contains(&me),
                _ => false,
            };
            if *issuer != me && recipient && !g.record.acknowledged_by.contains(&me) {
                choices.push((5, Op::AcknowledgeGuidance(id)));
            }
        }
    }
    if let Ok(reports) = node.store().states_with_tag(b'r') {
        for (key, state) in reports {
            let (RecordState::Report(r), Some(id)) = (state, uuid_of(&key.to_bytes()[1..])) else {
                continue;
            };
            if r.record.to == me && r.record.sender.is_some() && !r.record.acknowledged {
                choices.push((5, Op::AcknowledgeReport(id)));
            }
        }
    }
    if !below.is_empty() {
        choices.push((2, Op::Guidance(Vec::new())));
        let n = rng.gen_range(1..=below.len().min(3));
        let mut to: Vec<String> = (0..n).map(|_| pick_below(rng)).collect();
        to.sort();
        to.dedup();
        choices.push((1, Op::Guidance(to)));
    }
    if !above.is_empty() {
        choices.push((3, Op::Report(above[rng.gen_range(0..above.len())].clone())));
    }
    weighted(rng, choices)
}

fn weighted(rng: &mut StdRng, choices: Vec<(u32, Op)>) -> Option<Op> {
    let total: u32 = choices.iter().map(|(w, _)| w).sum();
    if total == 0 {
        return None;
    }
    let mut x = rng.gen_range(0..total);
    for (w, op) in choices {
        if x < w {
            return Some(op);
        }
        x -= w;
    }
    None
}

/// Picks something a federation's root may do in the lateral group now, weighted, from what
/// its node holds; None when there is nothing (not a root, or the charter not held here).
pub fn pick_lateral(rng: &mut StdRng, node: &Node) -> Option<Op> {
    if node.roster().root != node.code() {
        return None;
    }
    let mut choices = Vec::new();
    lateral_choices(rng, node, &mut choices);
    weighted(rng, choices)
}

/// What a federation's root may do in the group now, from what its node holds.
fn lateral_choices(rng: &mut StdRng, node: &Node, choices: &mut Vec<(u32, Op)>) {
    let me = node.code().to_string();
    let Ok(Some(RecordState::Group(g))) = node.store().state(&group_key()) else {
        return;
    };
    for p in &g.record.proposals {
        if p.status == ProposalStatus::Pending
            && p.members.contains_key(&me)
            && !p.endorsed_by.contains(&me)
        {
            choices.push((6, Op::Endorse(p.digest.clone())));
        }
    }
    let Some(charter) = g.record.in_force() else {
        return;
    };
    if !charter.members.contains_key(&me) {
        return;
    }
    // An amendment naming the host of the next year: a member at random. Two members may
    // propose at once; one of the competing versions is superseded.
    let pending = g
        .record
        .proposals
        .iter()
        .any(|p| p.status == ProposalStatus::Pending);
    let next_year = charter.hosts.keys().next_back().map_or(2026, |y| y + 1);
    if !pending && next_year < 2034 {
        let members: Vec<&String> = charter.members.keys().collect();
        let host = members[rng.gen_range(0..members.len())].clone();
        choices.push((
            1,
            Op::Amend {
                year: next_year,
                host,
            },
        ));
    }
    let mine: Vec<u32> = charter
        .hosts
        .iter()
        .filter(|(_, h)| **h == me)
        .map(|(y, _)| *y)
        .collect();
    let meetings: Vec<(Uuid, crate::domain::record::JointMeeting)> = node
        .store()
        .states_with_tag(b'J')
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, s)| match (k, s) {
            (RecordKey::JointMeeting(id), RecordState::JointMeeting(m))
                if m.record.convening.is_some() =>
            {
                Some((id, m.record))
            }
            _ => None,
        })
        .collect();
    let open = meetings
        .iter()
        .filter(|(_, m)| m.status != JointStatus::Finalized)
        .count();
    if !mine.is_empty() && open < 2 && meetings.len() < 4 {
        let year = mine[rng.gen_range(0..mine.len())];
        choices.push((
            2,
            Op::Convene {
                year,
                subtrees: rng.gen_bool(0.5),
            },
        ));
    }
    let topics: Vec<Uuid> = node
        .store()
        .states_with_tag(b't')
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, s)| match (k, s) {
            (RecordKey::Topic(id), RecordState::Topic(t))
                if t.record.owner.as_deref() == Some(me.as_str())
                    && t.record.status != TopicStatus::Pending =>
            {
                Some(id)
            }
            _ => None,
        })
        .collect();
    for (id, m) in &meetings {
        let host = m.convening.as_ref().map(|c| c.host.as_str()) == Some(me.as_str());
        if m.status != JointStatus::Finalized {
            let own: Vec<&String> = m
                .contributions
                .values()
                .filter(|c| c.member == me)
                .map(|c| &c.id)
                .collect();
            let revise = (!own.is_empty() && rng.gen_bool(0.4))
                .then(|| own[rng.gen_range(0..own.len())].clone());
            choices.push((
                3,
                Op::Contribute {
                    meeting: *id,
                    revise,
                },
            ));
            if host {
                choices.push((2, Op::Draft(*id)));
                if !m.drafts.is_empty() {
                    choices.push((1, Op::Finalize(*id)));
                }
            } else if !m.drafts.is_empty() {
                choices.push((
                    3,
                    Op::Comment {
                        meeting: *id,
                        agree: rng.gen_bool(0.5),
                    },
                ));
            }
        } else if host && m.dispatches.len() < 3 {
            choices.push((1, Op::Dispatch(*id)));
        }
        if !topics.is_empty() {
            let topic = topics[rng.gen_range(0..topics.len())];
            choices.push((
                2,
                Op::Rollup {
                    meeting: *id,
                    topic,
                },
            ));
        }
    }
}

fn group_key() -> RecordKey {
    let mut key = [0u8; 16];
    key[..GROUP.len()].copy_from_slice(GROUP.as_bytes());
    RecordKey::Group(key)
}

/// Carries out `op` at `node`; `n` numbers the texts.
pub async fn run(node: &Node, op: Op, n: u64) -> crate::Result<pb::Receipt> {
    let text = |what: &str| format!("{what} #{n} of {}", node.code());
    match op {
        Op::Topic => {
            node.create_topic(pb::CreateTopicRequest {
                title: text("黄河流域生态保护协商议题"),
                description: "模拟".into(),
                source: "party-government".into(),
                form: "thematic".into(),
                tier: "county-and-above".into(),
                plan_year: 2026,
                publish: true,
            })
            .await
        }
        Op::Assign { topic, parent, to } => {
            node.assign(pb::AssignRequest {
                topic_id: topic.to_string(),
                parent_assignment_id: parent.map(|p| p.to_string()).unwrap_or_default(),
                assignee: to,
                title: text("调研课题"),
                description: String::new(),
                due_date: "2026-12-20".into(),
                weight: (n % 3 + 1) as u32,
            })
            .await
        }
        Op::Acknowledge(a) => node.acknowledge(&a.to_string()).await,
        Op::Submit(a) => {
            node.submit(pb::SubmitRequest {
                assignment_id: a.to_string(),
                text: text("调研报告"),
                recommendations: vec!["加强监测".into()],
                attachment_digests: vec![],
            })
            .await
        }
        Op::Review(a, approve) => {
            node.review(pb::ReviewRequest {
                assignment_id: a.to_string(),
                verdict: if approve { "approve" } else { "return" }.into(),
                comment: text("审核意见"),
            })
            .await
        }
        Op::Cancel(a) => node.cancel_assignment(&a.to_string(), &text("撤销")).await,
        Op::Conclude(t) => {
            node.close_topic(&t.to_string(), &text("协商结论"), false)
                .await
        }
        Op::Guidance(to) => {
            node.send_guidance(&text("指导意见"), "按要求开展调研", &to)
                .await
        }
        Op::AcknowledgeGuidance(g) => node.acknowledge_guidance(&g.to_string()).await,
        Op::Report(to) => {
            node.send_report(&to, "public-opinion", &text("社情民意信息"), "群众反映")
                .await
        }
        Op::AcknowledgeReport(r) => node.acknowledge_report(&r.to_string()).await,
        Op::Amend { year, host } => {
            let none: [MemberInput; 0] = [];
            node.propose_charter(GROUP, "", &none, &[(year, host)])
                .await
        }
        Op::Endorse(digest) => node.endorse_charter(GROUP, &digest).await,
        Op::Convene { year, subtrees } => {
            node.convene_joint_meeting(
                GROUP,
                year,
                &text("黄河流域生态保护和高质量发展联席会议"),
                "模拟",
                &format!("{year}-09-20"),
                "兰州",
                subtrees,
            )
            .await
        }
        Op::Contribute { meeting, revise } => {
            node.contribute_joint(
                &meeting.to_string(),
                revise.as_deref().unwrap_or(""),
                if n.is_multiple_of(2) {
                    "research"
                } else {
                    "comment"
                },
                &text("调研成果"),
                &text("本省调研情况"),
                vec!["加强水土保持".into()],
                vec![],
            )
            .await
        }
        Op::Rollup { meeting, topic } => {
            node.publish_rollup(&meeting.to_string(), &topic.to_string(), &text("进展"))
                .await
        }
        Op::Draft(m) => {
            node.draft_joint_report(
                &m.to_string(),
                &text("联合调研报告"),
                &text("报告正文"),
                vec!["建立协作机制".into()],
            )
            .await
        }
        Op::Comment { meeting, agree } => {
            node.comment_joint_report(&meeting.to_string(), 0, agree, &text("修改意见"))
                .await
        }
        Op::Finalize(m) => node.finalize_joint_report(&m.to_string()).await,
        Op::Dispatch(m) => {
            node.send_joint_report(
                &m.to_string(),
                ["national-committee", "joint-proposal", "governments"][(n % 3) as usize],
                "全国政协办公厅",
                &text("报送"),
                "2026-10-01",
            )
            .await
        }
    }
}
