//! Read views for people and applications: records joined with the roster's names, the
//! assignment tree of a topic, and the progress roll-up.
//!
//! Progress: a leaf assignment counts by its status (acknowledged 10 %, returned 50 %,
//! submitted 80 %, approved 100 %). An assignment that was split counts 80 % from its
//! sub-assignments (by weight) and 20 % from its own status, and 100 % once approved. A topic
//! is the weighted mean of its top-level assignments. Cancelled work does not count.
use std::collections::BTreeMap;

use uuid::Uuid;

use super::Node;
use crate::domain::record::{Assignment, AssignmentStatus, Folded, RecordKey, RecordState};
use crate::domain::{audience, Roster};
use crate::pb;
use crate::Result;

fn uuid_text(b: &[u8]) -> String {
    Uuid::from_slice(b)
        .map(|u| u.to_string())
        .unwrap_or_default()
}

fn enum_name<E: TryFrom<i32> + PartialEq>(v: i32, names: &[(E, &str)]) -> String {
    let e = E::try_from(v).ok();
    names
        .iter()
        .find(|(n, _)| Some(n) == e.as_ref())
        .map(|(_, s)| s.to_string())
        .unwrap_or_default()
}

pub fn source_name(v: i32) -> String {
    use pb::TopicSource::*;
    enum_name(
        v,
        &[
            (PartyGovernment, "party-government"),
            (Members, "members"),
            (Committee, "committee"),
        ],
    )
}

pub fn form_name(v: i32) -> String {
    use pb::TopicForm::*;
    enum_name(
        v,
        &[
            (Thematic, "thematic"),
            (Counterpart, "counterpart"),
            (Sector, "sector"),
            (ProposalHandling, "proposal-handling"),
        ],
    )
}

pub fn tier_name(v: i32) -> String {
    use pb::TopicTier::*;
    enum_name(
        v,
        &[
            (CountyAndAbove, "county-and-above"),
            (Grassroots, "grassroots"),
        ],
    )
}

pub fn report_kind_name(v: i32) -> String {
    use pb::ReportKind::*;
    enum_name(
        v,
        &[
            (PublicOpinion, "public-opinion"),
            (Proposal, "proposal"),
            (WorkSummary, "work-summary"),
        ],
    )
}

fn assignment_view(
    id: Uuid,
    a: &Folded<Assignment>,
    roster: &Roster,
    today: &str,
) -> pb::AssignmentView {
    let r = &a.record;
    let issue = r.issue.clone().unwrap_or_default();
    pb::AssignmentView {
        id: id.to_string(),
        topic_id: uuid_text(&issue.topic_id),
        topic_title: issue.topic_title.clone(),
        parent_assignment_id: uuid_text(&issue.parent_assignment_id),
        assigner_name: roster.name_of(&issue.assigner),
        assigner: issue.assigner.clone(),
        assignee_name: roster.name_of(&issue.assignee),
        assignee: issue.assignee.clone(),
        title: issue.title.clone(),
        description: issue.description.clone(),
        due_date: issue.due_date.clone(),
        weight: issue.weight,
        state: r.status.name().to_string(),
        acknowledged: r.acknowledged,
        overdue: r.status.is_open()
            && !issue.due_date.is_empty()
            && issue.due_date.as_str() < today,
        progress: r.status.progress(),
        submissions: r
            .submissions
            .iter()
            .map(|s| pb::SubmissionView {
                id: uuid_text(&s.id),
                version: s.version,
                text: s.text.clone(),
                recommendations: s.recommendations.clone(),
                attachment_digests: s.attachment_digests.clone(),
            })
            .collect(),
        reviews: r
            .reviews
            .iter()
            .map(|v| pb::ReviewView {
                version: v.version,
                verdict: if v.approved { "approve" } else { "return" }.into(),
                comment: v.comment.clone(),
                reviewer: v.reviewer.clone(),
            })
            .collect(),
        children: Vec::new(),
        refused: a
            .history
            .iter()
            .filter_map(|h| {
                h.refused
                    .as_ref()
                    .map(|why| format!("{} by {}: {why}", h.kind, h.key.origin))
            })
            .collect(),
    }
}

/// Attaches children and computes progress bottom-up.
fn build_tree(
    mut view: pb::AssignmentView,
    by_parent: &mut BTreeMap<String, Vec<pb::AssignmentView>>,
) -> pb::AssignmentView {
    let kids = by_parent.remove(&view.id).unwrap_or_default();
    view.children = kids.into_iter().map(|k| build_tree(k, by_parent)).collect();
    let counted: Vec<&pb::AssignmentView> = view
        .children
        .iter()
        .filter(|c| c.state != "cancelled")
        .collect();
    if view.state == AssignmentStatus::Approved.name() {
        view.progress = 1.0;
    } else if !counted.is_empty() {
        let total: f64 = counted.iter().map(|c| c.weight.max(1) as f64).sum();
        let rolled: f64 = counted
            .iter()
            .map(|c| c.progress * c.weight.max(1) as f64)
            .sum::<f64>()
            / total;
        view.progress = 0.8 * rolled + 0.2 * view.progress;
    }
    view
}

impl Node {
    pub fn today(&self) -> String {
        crate::clock::date_of(self.now_ms())
    }

    fn assignments(&self) -> Result<Vec<(Uuid, Folded<Assignment>)>> {
        Ok(self
            .store()
            .states_with_tag(b'a')?
            .into_iter()
            .filter_map(|(k, s)| match (k, s) {
                (RecordKey::Assignment(id), RecordState::Assignment(a))
                    if a.record.issue.is_some() =>
                {
                    Some((id, a))
                }
                _ => None,
            })
            .collect())
    }

    pub fn topic_view(&self, topic: &str) -> Result<pb::TopicView> {
        let id = self.resolve(b't', topic, "topic")?;
        let Some(RecordState::Topic(t)) = self.store().state(&RecordKey::Topic(id))? else {
            return Err(crate::Error::NotFound(format!(
                "topic {id} is not held here"
            )));
        };
        let roster = self.roster().clone();
        let today = self.today();
        let mut views: Vec<pb::AssignmentView> = self
            .assignments()?
            .into_iter()
            .filter(|(_, a)| {
                a.record.issue.as_ref().map(|i| i.topic_id.as_slice())
                    == Some(id.as_bytes().as_slice())
            })
            .map(|(aid, a)| assignment_view(aid, &a, &roster, &today))
            .collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
        let mut by_parent: BTreeMap<String, Vec<pb::AssignmentView>> = BTreeMap::new();
        let mut roots = Vec::new();
        for v in views {
            // A sub-assignment whose parent is not visible here is shown at the top.
            if v.parent_assignment_id.is_empty() || !ids.contains(&v.parent_assignment_id) {
                roots.push(v);
            } else {
                by_parent
                    .entry(v.parent_assignment_id.clone())
                    .or_default()
                    .push(v);
            }
        }
        let assignments: Vec<pb::AssignmentView> = roots
            .into_iter()
            .map(|r| build_tree(r, &mut by_parent))
            .collect();
        let counted: Vec<&pb::AssignmentView> = assignments
            .iter()
            .filter(|a| a.state != "cancelled")
            .collect();
        let total: f64 = counted.iter().map(|a| a.weight.max(1) as f64).sum();
        let progress = if total > 0.0 {
            counted
                .iter()
                .map(|a| a.progress * a.weight.max(1) as f64)
                .sum::<f64>()
                / total
        } else {
            0.0
        };
        let owner = t.record.owner.clone().unwrap_or_default();
        let c = &t.record.content;
        Ok(pb::TopicView {
            id: id.to_string(),
            owner_name: roster.name_of(&owner),
            owner,
            title: c.title.clone(),
            description: c.description.clone(),
            source: source_name(c.source),
            form: form_name(c.form),
            tier: tier_name(c.tier),
            plan_year: c.plan_year,
            state: t.record.status.name().into(),
            closing_text: t.record.closing_text.clone(),
            progress,
            assignments,
            history: t
                .history
                .iter()
                .map(|h| match &h.refused {
                    None => format!("{} by {}", h.kind, h.key.origin),
                    Some(why) => format!("{} by {} refused: {why}", h.kind, h.key.origin),
                })
                .collect(),
        })
    }

    pub fn topic_list(&self) -> Result<pb::TopicList> {
        let mut topics = Vec::new();
        for (k, _) in self.store().states_with_tag(b't')? {
            if let RecordKey::Topic(id) = k {
                let mut v = self.topic_view(&id.to_string())?;
                if v.state == "pending" {
                    continue;
                }
                v.history.clear();
                topics.push(v);
            }
        }
        Ok(pb::TopicList { topics })
    }

    /// 任务: what is assigned to this committee.
    pub fn tasks(&self) -> Result<pb::TaskList> {
        let roster = self.roster().clone();
        let today = self.today();
        let mut tasks: Vec<pb::AssignmentView> = self
            .assignments()?
            .into_iter()
            .filter(|(_, a)| {
                a.record.issue.as_ref().map(|i| i.assignee.as_str()) == Some(self.code())
            })
            .map(|(id, a)| assignment_view(id, &a, &roster, &today))
            .collect();
        tasks.sort_by(|a, b| a.due_date.cmp(&b.due_date).then(a.id.cmp(&b.id)));
        Ok(pb::TaskList { tasks })
    }

    pub fn guidance_list(&self) -> Result<pb::GuidanceList> {
        let roster = self.roster().clone();
        let mut guidance = Vec::new();
        for (k, s) in self.store().states_with_tag(b'g')? {
            let (RecordKey::Guidance(id), RecordState::Guidance(g)) = (k, s) else {
                continue;
            };
            let Some(issuer) = g.record.issuer.clone() else {
                continue;
            };
            let recipients = g
                .record
                .audience
                .as_ref()
                .map(|a| audience::members(&roster, a, &issuer))
                .unwrap_or_default()
                .into_iter()
                .filter(|c| *c != issuer)
                .collect();
            guidance.push(pb::GuidanceView {
                id: id.to_string(),
                issuer_name: roster.name_of(&issuer),
                issuer,
                title: g.record.title.clone(),
                body: g.record.body.clone(),
                recipients,
                acknowledged_by: g.record.acknowledged_by.iter().cloned().collect(),
                acknowledged_here: g.record.acknowledged_by.contains(self.code()),
            });
        }
        Ok(pb::GuidanceList { guidance })
    }

    pub fn report_list(&self) -> Result<pb::ReportList> {
        let roster = self.roster().clone();
        let mut reports = Vec::new();
        for (k, s) in self.store().states_with_tag(b'r')? {
            let (RecordKey::Report(id), RecordState::Report(r)) = (k, s) else {
                continue;
            };
            let Some(sender) = r.record.sender.clone() else {
                continue;
            };
            reports.push(pb::ReportView {
                id: id.to_string(),
                sender_name: roster.name_of(&sender),
                sender,
                to: r.record.to.clone(),
                kind: report_kind_name(r.record.kind),
                title: r.record.title.clone(),
                body: r.record.body.clone(),
                acknowledged: r.record.acknowledged,
            });
        }
        Ok(pb::ReportList { reports })
    }

    pub fn committee_list(&self) -> pb::CommitteeList2 {
        let roster = self.roster();
        let mut committees: Vec<pb::CommitteeView> = roster
            .members()
            .map(|m| pb::CommitteeView {
                code: m.code.clone(),
                name: m.name.clone(),
                level: m.level.name().into(),
                parent: m.parent.clone().unwrap_or_default(),
                public_key: hex::encode(m.key.as_bytes()),
                revoked: m
                    .epochs
                    .last()
                    .filter(|e| e.revoked_after.is_some())
                    .map(|e| {
                        format!(
                            "after seq {}: {}",
                            e.revoked_after.unwrap_or(0),
                            e.revocation_reason
                        )
                    })
                    .unwrap_or_default(),
                key_epochs: m.epochs.len() as u32,
            })
            .collect();
        committees.sort_by(|a, b| a.code.cmp(&b.code));
        pb::CommitteeList2 { committees }
    }

    pub fn status(&self) -> Result<pb::StatusView> {
        let roster = self.roster().clone();
        let me = roster.get(self.code());
        let head = self.durable_head();
        let links = self
            .links()
            .into_iter()
            .map(|(peer, l)| pb::LinkView {
                role: l.role.into(),
                peer_name: roster.name_of(&peer),
                peer,
                address: l.address,
                state: l.state.into(),
                outbound_lag: head.saturating_sub(l.acked_position),
                inbound_lag: l.peer_head.saturating_sub(l.received_position),
                last_seen_ms: l.last_seen_ms,
                last_error: l.last_error,
            })
            .collect();
        Ok(pb::StatusView {
            committee: self.code().to_string(),
            name: me.map(|m| m.name.clone()).unwrap_or_default(),
            level: me.map(|m| m.level.name().to_string()).unwrap_or_default(),
            parent: me.and_then(|m| m.parent.clone()).unwrap_or_default(),
            events: head,
            own_events: self.store().own_chain()?.seq,
            log_head: head,
            quarantined: self.store().quarantined()?,
            roster_size: roster.len() as u64,
            links,
            data_dir: String::new(),
            flagged: self
                .store()
                .flagged_origins()?
                .into_iter()
                .map(|(code, why)| format!("{code}: {why}"))
                .collect(),
        })
    }

    pub fn quarantine_view(&self) -> Result<pb::QuarantineList> {
        Ok(pb::QuarantineList {
            entries: self
                .store()
                .quarantine_list()?
                .into_iter()
                .map(|q| pb::QuarantineEntry {
                    id: q.id.to_string(),
                    reason: q.reason,
                    origin: q.origin,
                    seq: q.seq,
                    received_from: q.received_from,
                    at_ms: q.at_ms,
                    category: q.category,
                    frame_hex: String::new(),
                    decoded: String::new(),
                })
                .collect(),
        })
    }
}

impl Node {
    /// One quarantine entry in full: the frame and what it decodes to.
    pub fn quarantine_entry(&self, id: &str) -> Result<pb::QuarantineEntry> {
        let wanted = id.trim().replace('-', "").to_lowercase();
        if wanted.len() < 4 {
            return Err(crate::Error::Invalid(
                "give the entry's id or at least 4 of its hex digits".into(),
            ));
        }
        let matches: Vec<_> = self
            .store()
            .quarantine_list()?
            .into_iter()
            .filter(|q| {
                let s = q.id.simple().to_string();
                s.starts_with(&wanted) || s.ends_with(&wanted)
            })
            .collect();
        let q = match matches.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(crate::Error::NotFound(format!(
                    "no quarantine entry matches '{id}'"
                )))
            }
            _ => {
                return Err(crate::Error::Invalid(format!(
                    "'{id}' matches {} entries: give more digits",
                    matches.len()
                )))
            }
        };
        let decoded = match hex::decode(&q.frame_hex)
            .ok()
            .map(|f| crate::event::Envelope::open(&f))
        {
            Some(Ok(env)) => format!(
                "event {} origin {} seq {} hlc {} audience {:?} kind {}",
                env.id,
                env.origin(),
                env.seq(),
                env.hlc(),
                env.audience(),
                env.kind_name()
            ),
            Some(Err(e)) => format!("does not decode: {e}"),
            None => "no frame kept".into(),
        };
        Ok(pb::QuarantineEntry {
            id: q.id.to_string(),
            reason: q.reason,
            origin: q.origin,
            seq: q.seq,
            received_from: q.received_from,
            at_ms: q.at_ms,
            category: q.category,
            frame_hex: q.frame_hex,
            decoded,
        })
    }
}
