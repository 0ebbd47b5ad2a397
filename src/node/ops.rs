//! What a committee does through its node: each operation checks the request against what
//! this node holds (so that a person gets a clear answer now rather than a refusal in the
//! record's history later), then authors one event. The fold re-checks everything anyway.
use uuid::Uuid;

use super::Node;
use crate::domain::record::{AssignmentStatus, RecordKey, RecordState, TopicStatus};
use crate::domain::{CommitteeCode, Level};
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

pub fn parse_source(s: &str) -> Result<pb::TopicSource> {
    Ok(match s {
        "" | "committee" | "政协选题" => pb::TopicSource::Committee,
        "party-government" | "党政点题" => pb::TopicSource::PartyGovernment,
        "members" | "委员征题" => pb::TopicSource::Members,
        _ => return Err(invalid(format!("unknown topic source '{s}': use party-government (党政点题), members (委员征题) or committee (政协选题)"))),
    })
}

pub fn parse_form(s: &str) -> Result<pb::TopicForm> {
    Ok(match s {
        "" | "thematic" | "专题协商" => pb::TopicForm::Thematic,
        "counterpart" | "对口协商" => pb::TopicForm::Counterpart,
        "sector" | "界别协商" => pb::TopicForm::Sector,
        "proposal-handling" | "提案办理协商" => pb::TopicForm::ProposalHandling,
        _ => {
            return Err(invalid(format!(
                "unknown topic form '{s}': use thematic, counterpart, sector or proposal-handling"
            )))
        }
    })
}

pub fn parse_tier(s: &str) -> Result<pb::TopicTier> {
    Ok(match s {
        "" | "county-and-above" | "县级及以上" => pb::TopicTier::CountyAndAbove,
        "grassroots" | "基层" => pb::TopicTier::Grassroots,
        _ => {
            return Err(invalid(format!(
                "unknown tier '{s}': use county-and-above or grassroots"
            )))
        }
    })
}

fn parse_report_kind(s: &str) -> Result<pb::ReportKind> {
    Ok(match s {
        "" | "public-opinion" | "社情民意信息" => pb::ReportKind::PublicOpinion,
        "proposal" | "提案" => pb::ReportKind::Proposal,
        "work-summary" | "工作总结" => pb::ReportKind::WorkSummary,
        _ => {
            return Err(invalid(format!(
                "unknown report kind '{s}': use public-opinion, proposal or work-summary"
            )))
        }
    })
}

fn check_date(d: &str) -> Result<()> {
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
            "due date '{d}' is not a date: write it as YYYY-MM-DD, e.g. 2026-12-31"
        )))
    }
}

impl Node {
    /// Resolves a full UUID, or a unique prefix or suffix of one (at least 4 hex digits; the
    /// CLI shows the last 8), among the records of one family (`tag`: b't' topics,
    /// b'a' assignments, b'g' guidance, b'r' reports).
    pub fn resolve(&self, tag: u8, text: &str, what: &str) -> Result<Uuid> {
        let text = text.trim();
        if let Ok(id) = Uuid::parse_str(text) {
            return Ok(id);
        }
        let wanted = text.replace('-', "").to_lowercase();
        if wanted.len() < 4 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "'{text}' is not a {what} id: give the id or at least its first 4 hex digits"
            )));
        }
        let matches: Vec<Uuid> = self
            .store()
            .states_with_tag(tag)?
            .into_iter()
            .filter_map(|(k, _)| match k {
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
                | RecordKey::JointMeeting(u) => Some(u),
                RecordKey::Committee(_) | RecordKey::Plan(..) | RecordKey::Group(_) => None,
            })
            .filter(|u| {
                let s = u.simple().to_string();
                s.starts_with(&wanted) || s.ends_with(&wanted)
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::NotFound(format!(
                "no {what} here starts with '{text}'"
            ))),
            _ => Err(invalid(format!(
                "'{text}' matches {} {what}s: give more digits",
                matches.len()
            ))),
        }
    }

    fn topic_state(
        &self,
        id: Uuid,
    ) -> Result<crate::domain::record::Folded<crate::domain::record::Topic>> {
        match self.store().state(&RecordKey::Topic(id))? {
            Some(RecordState::Topic(t)) => Ok(t),
            _ => Err(Error::NotFound(format!("topic {id} is not held here"))),
        }
    }

    fn assignment_state(
        &self,
        id: Uuid,
    ) -> Result<crate::domain::record::Folded<crate::domain::record::Assignment>> {
        match self.store().state(&RecordKey::Assignment(id))? {
            Some(RecordState::Assignment(a)) => Ok(a),
            _ => Err(Error::NotFound(format!("assignment {id} is not held here"))),
        }
    }

    /// 名册: registers a child committee and its key.
    pub async fn register_committee(
        &self,
        code: &str,
        name: &str,
        public_key_hex: &str,
    ) -> Result<pb::Receipt> {
        let code = CommitteeCode::parse(code).map_err(invalid)?;
        let key = crate::event::parse_public_key(public_key_hex).map_err(invalid)?;
        let my_level = {
            let roster = self.roster();
            let me = roster
                .get(self.code())
                .ok_or_else(|| invalid("this committee is not in the roster yet"))?;
            me.level
        };
        let implied = Level::implied_by(code.as_str());
        let level = if implied > my_level {
            implied
        } else {
            // e.g. a county-level city whose code ends in 00 under a province: one level down
            match my_level {
                Level::National => Level::Province,
                Level::Province => Level::City,
                _ => Level::County,
            }
        };
        if name.trim().is_empty() {
            return Err(invalid("give the committee's name, e.g. --name 榆中县"));
        }
        if let Some(existing) = self.roster().get(code.as_str()) {
            if existing.key == key && existing.parent.as_deref() == Some(self.code()) {
                // Already so: say it, write nothing (scripts can register idempotently).
                return Ok(pb::Receipt {
                    event_id: String::new(),
                    seq: 0,
                    record_id: code.to_string(),
                });
            }
            return Err(invalid(format!(
                "{code} is already registered with another key or parent; key rotation is not supported in this version"
            )));
        }
        self.author(
            Kind::Lineage(code.to_string()),
            Body::CommitteeRegistered(pb::CommitteeRegistered {
                code: code.to_string(),
                name: name.trim().to_string(),
                level: level.to_pb() as i32,
                parent: self.code().to_string(),
                public_key: key.as_bytes().to_vec(),
            }),
        )
        .await
    }

    /// The furthest point of a child's chain this node knows: the last of its events held
    /// here, or the head its links reported (kept with the cursor, and live), which also counts
    /// the events this node does not see (a county's notices to its own subtree).
    fn child_chain_head(&self, code: &str) -> Result<Option<(u64, [u8; 32])>> {
        let held = self.store().last_of_origin(code)?;
        let cursor = self.store().cursor(code)?.peer_chain();
        let live = self.links().get(code).and_then(|l| l.peer_chain);
        Ok([held, cursor, live]
            .into_iter()
            .flatten()
            .max_by_key(|(s, _)| *s))
    }

    /// Gives a child a new key. Its chain continues after the furthest of its events this
    /// node knows of ([`Node::child_chain_head`]); the new key signs from the next seq on.
    pub async fn rotate_key(&self, code: &str, public_key_hex: &str) -> Result<pb::Receipt> {
        let key = crate::event::parse_public_key(public_key_hex).map_err(invalid)?;
        self.check_own_child(code)?;
        let (chain_seq, chain_hash) = self
            .child_chain_head(code)?
            .map(|(s, h)| (s, h.to_vec()))
            .unwrap_or((0, Vec::new()));
        self.author(
            Kind::Lineage(code.to_string()),
            Body::CommitteeKeyRotated(pb::CommitteeKeyRotated {
                code: code.to_string(),
                public_key: key.as_bytes().to_vec(),
                from_seq: chain_seq + 1,
                chain_seq,
                chain_hash,
            }),
        )
        .await
    }

    /// Revokes a child's key; what it signed up to the furthest point of its chain this node
    /// knows of stays valid ([`Node::revoke_key_through`]).
    pub async fn revoke_key(&self, code: &str, reason: &str) -> Result<pb::Receipt> {
        self.revoke_key_through(code, reason, None).await
    }

    /// Revokes a child's key: its events after `valid_through` (default: the furthest this
    /// node knows the child's chain went — the events of it held here, and the chain head the
    /// child's batches last reported, kept with the link's cursor, which also counts the
    /// child's events this node does not see) become void everywhere.
    pub async fn revoke_key_through(
        &self,
        code: &str,
        reason: &str,
        valid_through: Option<u64>,
    ) -> Result<pb::Receipt> {
        self.check_own_child(code)?;
        if reason.trim().is_empty() {
            return Err(invalid(
                "say why the key is revoked (--reason), e.g. \"办公电脑被盗\"",
            ));
        }
        let key = self
            .roster()
            .get(code)
            .map(|m| m.key)
            .ok_or_else(|| invalid("not in the roster"))?;
        let known = self.child_chain_head(code)?.map_or(0, |(s, _)| s);
        let valid_through = valid_through.unwrap_or(known);
        self.author(
            Kind::Lineage(code.to_string()),
            Body::CommitteeKeyRevoked(pb::CommitteeKeyRevoked {
                code: code.to_string(),
                public_key: key.as_bytes().to_vec(),
                valid_through_seq: valid_through,
                reason: reason.trim().to_string(),
            }),
        )
        .await
    }

    fn check_own_child(&self, code: &str) -> Result<()> {
        CommitteeCode::parse(code).map_err(invalid)?;
        match self.roster().get(code) {
            Some(m) if m.parent.as_deref() == Some(self.code()) => Ok(()),
            Some(m) => Err(invalid(format!(
                "{code} is not a child of {}: its parent {} manages its keys",
                self.code(),
                m.parent.clone().unwrap_or_default()
            ))),
            None => Err(invalid(format!("{code} is not in the roster"))),
        }
    }

    /// The root's registration of itself, written once by `init`.
    pub async fn register_root(&self, name: &str, level: Level) -> Result<pb::Receipt> {
        let root = self.roster().root.clone();
        if root != self.code() {
            return Err(invalid("only the root committee registers itself"));
        }
        self.author(
            Kind::Lineage(root.clone()),
            Body::CommitteeRegistered(pb::CommitteeRegistered {
                code: root,
                name: name.to_string(),
                level: level.to_pb() as i32,
                parent: String::new(),
                public_key: self
                    .verifying_key()
                    .ok_or_else(|| invalid("this node has no key"))?
                    .as_bytes()
                    .to_vec(),
            }),
        )
        .await
    }

    pub async fn create_topic(&self, req: pb::CreateTopicRequest) -> Result<pb::Receipt> {
        if req.title.trim().is_empty() {
            return Err(invalid("a topic needs a title"));
        }
        let content = pb::TopicContent {
            title: req.title.trim().to_string(),
            description: req.description,
            source: parse_source(&req.source)? as i32,
            form: parse_form(&req.form)? as i32,
            tier: parse_tier(&req.tier)? as i32,
            plan_year: if req.plan_year == 0 {
                self.this_year()
            } else {
                req.plan_year
            },
        };
        let topic_id = self.new_id().as_bytes().to_vec();
        if req.publish {
            self.author(
                Kind::Subtree(self.code().to_string()),
                Body::TopicPublished(pb::TopicPublished {
                    topic_id,
                    content: Some(content),
                }),
            )
            .await
        } else {
            self.author(
                committees(&[self.code()]),
                Body::TopicDrafted(pb::TopicDrafted {
                    topic_id,
                    content: Some(content),
                }),
            )
            .await
        }
    }

    pub async fn publish_topic(&self, topic: &str) -> Result<pb::Receipt> {
        let id = self.resolve(b't', topic, "topic")?;
        let t = self.topic_state(id)?;
        if t.record.owner.as_deref() != Some(self.code()) {
            return Err(invalid("only the topic's owner publishes it"));
        }
        if t.record.status != TopicStatus::Draft {
            return Err(invalid(format!(
                "the topic is {}, only a draft can be published",
                t.record.status.name()
            )));
        }
        let c = &t.record.content;
        let content = pb::TopicContent {
            title: c.title.clone(),
            description: c.description.clone(),
            source: c.source,
            form: c.form,
            tier: c.tier,
            plan_year: c.plan_year,
        };
        self.author(
            Kind::Subtree(self.code().to_string()),
            Body::TopicPublished(pb::TopicPublished {
                topic_id: id.as_bytes().to_vec(),
                content: Some(content),
            }),
        )
        .await
    }

    pub async fn close_topic(
        &self,
        topic: &str,
        text: &str,
        withdraw: bool,
    ) -> Result<pb::Receipt> {
        let id = self.resolve(b't', topic, "topic")?;
        let t = self.topic_state(id)?;
        if t.record.owner.as_deref() != Some(self.code()) {
            return Err(invalid("only the topic's owner concludes or withdraws it"));
        }
        let topic_id = id.as_bytes().to_vec();
        let aud = Kind::Subtree(self.code().to_string());
        if withdraw {
            if !matches!(t.record.status, TopicStatus::Draft | TopicStatus::Published) {
                return Err(invalid(format!(
                    "a {} topic cannot be withdrawn",
                    t.record.status.name()
                )));
            }
            self.author(
                aud,
                Body::TopicWithdrawn(pb::TopicWithdrawn {
                    topic_id,
                    reason: text.into(),
                }),
            )
            .await
        } else {
            if t.record.status != TopicStatus::Published {
                return Err(invalid(format!(
                    "only a published topic can be concluded; it is {}",
                    t.record.status.name()
                )));
            }
            self.author(
                aud,
                Body::TopicConcluded(pb::TopicConcluded {
                    topic_id,
                    summary: text.into(),
                }),
            )
            .await
        }
    }

    /// 分课题 (top level, by the topic's owner) or 子课题 (splitting one's own assignment).
    pub async fn assign(&self, req: pb::AssignRequest) -> Result<pb::Receipt> {
        let me = self.code().to_string();
        let assignee = CommitteeCode::parse(&req.assignee)
            .map_err(invalid)?
            .to_string();
        if req.title.trim().is_empty() {
            return Err(invalid("an assignment needs a title"));
        }
        check_date(&req.due_date)?;
        let (topic_id, topic_owner, topic_title, parent) = if req.parent_assignment_id.is_empty() {
            let id = self.resolve(b't', &req.topic_id, "topic")?;
            let t = self.topic_state(id)?;
            if t.record.owner.as_deref() != Some(me.as_str()) {
                return Err(invalid(format!(
                    "topic {id} belongs to {}; to pass work down, split your own assignment with --parent",
                    t.record.owner.unwrap_or_default()
                )));
            }
            if t.record.status != TopicStatus::Published {
                return Err(invalid(format!(
                    "publish the topic before assigning work (it is {})",
                    t.record.status.name()
                )));
            }
            (id, me.clone(), t.record.content.title.clone(), Vec::new())
        } else {
            let pid = self.resolve(b'a', &req.parent_assignment_id, "assignment")?;
            let p = self.assignment_state(pid)?;
            let issue = p
                .record
                .issue
                .ok_or_else(|| invalid("the parent assignment has not arrived here yet"))?;
            if issue.assignee != me {
                return Err(invalid(format!(
                    "assignment {pid} is assigned to {}, not to this committee",
                    issue.assignee
                )));
            }
            if !p.record.status.is_open() {
                return Err(invalid(format!(
                    "assignment {pid} is {}; it cannot be split further",
                    p.record.status.name()
                )));
            }
            let topic =
                Uuid::from_slice(&issue.topic_id).map_err(|_| invalid("bad topic id in parent"))?;
            (
                topic,
                issue.topic_owner,
                issue.topic_title,
                pid.as_bytes().to_vec(),
            )
        };
        {
            let roster = self.roster();
            if !roster.knows(&assignee) {
                return Err(invalid(format!(
                    "{assignee} is not in the roster: register it first"
                )));
            }
            if !roster.is_proper_ancestor(&me, &assignee) {
                return Err(invalid(format!(
                    "{assignee} ({}) is not below {me}",
                    roster.name_of(&assignee)
                )));
            }
        }
        self.author(
            committees(&[&assignee, &topic_owner]),
            Body::AssignmentIssued(pb::AssignmentIssued {
                assignment_id: self.new_id().as_bytes().to_vec(),
                topic_id: topic_id.as_bytes().to_vec(),
                parent_assignment_id: parent,
                assignee,
                title: req.title.trim().to_string(),
                description: req.description,
                due_date: req.due_date,
                weight: req.weight.max(1),
                topic_owner,
                topic_title,
            }),
        )
        .await
    }

    /// The audience every follow-up of an assignment repeats.
    fn follow_up(
        &self,
        assignment: &str,
    ) -> Result<(
        Uuid,
        crate::domain::record::Folded<crate::domain::record::Assignment>,
        Kind,
    )> {
        let id = self.resolve(b'a', assignment, "assignment")?;
        let a = self.assignment_state(id)?;
        let codes = a
            .record
            .audience
            .clone()
            .ok_or_else(|| invalid("the assignment itself has not arrived here yet"))?;
        let aud = Kind::Committees(pb::CommitteeList { codes });
        Ok((id, a, aud))
    }

    pub async fn acknowledge(&self, assignment: &str) -> Result<pb::Receipt> {
        let (id, a, aud) = self.follow_up(assignment)?;
        let issue = a
            .record
            .issue
            .as_ref()
            .ok_or_else(|| invalid("not issued"))?;
        if issue.assignee != self.code() {
            return Err(invalid(format!(
                "this assignment is for {}, not for this committee",
                issue.assignee
            )));
        }
        if a.record.acknowledged {
            return Err(invalid("already acknowledged (已签收)"));
        }
        self.author(
            aud,
            Body::AssignmentAcknowledged(pb::AssignmentAcknowledged {
                assignment_id: id.as_bytes().to_vec(),
            }),
        )
        .await
    }

    pub async fn submit(&self, req: pb::SubmitRequest) -> Result<pb::Receipt> {
        let (id, a, aud) = self.follow_up(&req.assignment_id)?;
        let issue = a
            .record
            .issue
            .as_ref()
            .ok_or_else(|| invalid("not issued"))?;
        if issue.assignee != self.code() {
            return Err(invalid(format!(
                "this assignment is for {}, not for this committee",
                issue.assignee
            )));
        }
        match a.record.status {
            AssignmentStatus::Acknowledged | AssignmentStatus::Returned => {}
            AssignmentStatus::Issued => {
                return Err(invalid(
                    "acknowledge (签收) the assignment first: `liandong ack <id>`",
                ))
            }
            s => {
                return Err(invalid(format!(
                    "the assignment is {}; nothing can be submitted now",
                    s.name()
                )))
            }
        }
        if req.text.trim().is_empty() {
            return Err(invalid("a submission needs its text (the report)"));
        }
        self.author(
            aud,
            Body::SubmissionMade(pb::SubmissionMade {
                assignment_id: id.as_bytes().to_vec(),
                submission_id: self.new_id().as_bytes().to_vec(),
                version: a.record.submissions.len() as u32 + 1,
                text: req.text,
                recommendations: req.recommendations,
                attachment_digests: req.attachment_digests,
            }),
        )
        .await
    }

    pub async fn review(&self, req: pb::ReviewRequest) -> Result<pb::Receipt> {
        let (id, a, aud) = self.follow_up(&req.assignment_id)?;
        let issue = a
            .record
            .issue
            .as_ref()
            .ok_or_else(|| invalid("not issued"))?;
        if issue.assigner != self.code() {
            return Err(invalid(format!(
                "only the assigner {} reviews this assignment",
                issue.assigner
            )));
        }
        let verdict = match req.verdict.as_str() {
            "approve" | "通过" => pb::Verdict::Approve,
            "return" | "退回" => pb::Verdict::Return,
            v => {
                return Err(invalid(format!(
                    "verdict '{v}': use approve (通过) or return (退回)"
                )))
            }
        };
        if verdict == pb::Verdict::Return && req.comment.trim().is_empty() {
            return Err(invalid("say why the result is returned (--comment)"));
        }
        if a.record.status != AssignmentStatus::Submitted {
            return Err(invalid(format!(
                "nothing awaits review: the assignment is {}",
                a.record.status.name()
            )));
        }
        let latest = a
            .record
            .submissions
            .last()
            .ok_or_else(|| invalid("no submission"))?;
        self.author(
            aud,
            Body::ReviewRecorded(pb::ReviewRecorded {
                assignment_id: id.as_bytes().to_vec(),
                submission_id: latest.id.clone(),
                version: latest.version,
                verdict: verdict as i32,
                comment: req.comment,
            }),
        )
        .await
    }

    pub async fn cancel_assignment(&self, assignment: &str, reason: &str) -> Result<pb::Receipt> {
        let (id, a, aud) = self.follow_up(assignment)?;
        let issue = a
            .record
            .issue
            .as_ref()
            .ok_or_else(|| invalid("not issued"))?;
        if issue.assigner != self.code() {
            return Err(invalid(format!(
                "only the assigner {} cancels this assignment",
                issue.assigner
            )));
        }
        if !a.record.status.is_open() {
            return Err(invalid(format!(
                "a {} assignment cannot be cancelled",
                a.record.status.name()
            )));
        }
        self.author(
            aud,
            Body::AssignmentCancelled(pb::AssignmentCancelled {
                assignment_id: id.as_bytes().to_vec(),
                reason: reason.into(),
            }),
        )
        .await
    }

    /// 指导意见: to this committee's whole subtree (`to` empty) or to named committees below.
    pub async fn send_guidance(
        &self,
        title: &str,
        body: &str,
        to: &[String],
    ) -> Result<pb::Receipt> {
        if title.trim().is_empty() {
            return Err(invalid("guidance needs a title"));
        }
        let aud = if to.is_empty() {
            Kind::Subtree(self.code().to_string())
        } else {
            let roster = self.roster();
            for t in to {
                if !roster.is_proper_ancestor(self.code(), t) {
                    return Err(invalid(format!(
                        "{t} is not below {}: guidance goes down",
                        self.code()
                    )));
                }
            }
            let refs: Vec<&str> = to.iter().map(String::as_str).collect();
            committees(&refs)
        };
        self.author(
            aud,
            Body::GuidanceIssued(pb::GuidanceIssued {
                guidance_id: self.new_id().as_bytes().to_vec(),
                title: title.trim().into(),
                body: body.into(),
            }),
        )
        .await
    }

    pub async fn acknowledge_guidance(&self, guidance: &str) -> Result<pb::Receipt> {
        let id = self.resolve(b'g', guidance, "guidance")?;
        let Some(RecordState::Guidance(g)) = self.store().state(&RecordKey::Guidance(id))? else {
            return Err(Error::NotFound(format!("guidance {id} is not held here")));
        };
        let issuer = g
            .record
            .issuer
            .clone()
            .ok_or_else(|| invalid("the guidance has not arrived here yet"))?;
        if issuer == self.code() {
            return Err(invalid("the issuer does not acknowledge its own guidance"));
        }
        if g.record.acknowledged_by.contains(self.code()) {
            return Err(invalid("already acknowledged (已签收)"));
        }
        self.author(
            committees(&[&issuer]),
            Body::GuidanceAcknowledged(pb::GuidanceAcknowledged {
                guidance_id: id.as_bytes().to_vec(),
                issuer,
            }),
        )
        .await
    }

    /// 报送: to an ancestor (the parent by default).
    pub async fn send_report(
        &self,
        to: &str,
        kind: &str,
        title: &str,
        body: &str,
    ) -> Result<pb::Receipt> {
        let to = if to.is_empty() {
            self.roster()
                .parent_of(self.code())
                .map(String::from)
                .ok_or_else(|| invalid("this committee has no parent to report to"))?
        } else {
            to.to_string()
        };
        if !self.roster().is_proper_ancestor(&to, self.code()) {
            return Err(invalid(format!(
                "{to} is not above {}: reports go up",
                self.code()
            )));
        }
        if title.trim().is_empty() {
            return Err(invalid("a report needs a title"));
        }
        self.author(
            Kind::Ancestors(to.clone()),
            Body::ReportSent(pb::ReportSent {
                report_id: self.new_id().as_bytes().to_vec(),
                to,
                kind: parse_report_kind(kind)? as i32,
                title: title.trim().into(),
                body: body.into(),
            }),
        )
        .await
    }

    pub async fn acknowledge_report(&self, report: &str) -> Result<pb::Receipt> {
        let id = self.resolve(b'r', report, "report")?;
        let Some(RecordState::Report(r)) = self.store().state(&RecordKey::Report(id))? else {
            return Err(Error::NotFound(format!("report {id} is not held here")));
        };
        let sender = r
            .record
            .sender
            .clone()
            .ok_or_else(|| invalid("the report has not arrived here yet"))?;
        if r.record.to != self.code() {
            return Err(invalid(format!(
                "the report is addressed to {}, not to this committee",
                r.record.to
            )));
        }
        if r.record.acknowledged {
            return Err(invalid("already acknowledged"));
        }
        self.author(
            committees(&[&sender]),
            Body::ReportAcknowledged(pb::ReportAcknowledged {
                report_id: id.as_bytes().to_vec(),
                sender,
            }),
        )
        .await
    }
}
