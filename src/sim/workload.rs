//! The simulation's workload: what a committee may do next, chosen at random from what its
//! own node holds, and carried out through the node's ordinary operations ([`crate::node::ops`]).
use rand::rngs::StdRng;
use rand::Rng;
use uuid::Uuid;

use crate::domain::record::{AssignmentStatus, RecordState, TopicStatus};
use crate::node::Node;
use crate::pb;

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
        }
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
    let total: u32 = choices.iter().map(|(w, _)| w).sum();
    let mut x = rng.gen_range(0..total);
    for (w, op) in choices {
        if x < w {
            return Some(op);
        }
        x -= w;
    }
    None
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
    }
}
