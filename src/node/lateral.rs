//! Lateral groups (协作组) and joint meetings (联席会议) through a node: charter proposals and
//! endorsements, the meeting cycle, the members' roll-ups, and their read views.
//!
//! Only a federation's root acts for it in a group. Each operation checks what it can here
//! (so that a person gets a clear answer now); the rules themselves are in `domain::authz`
//! (stateless) and the folds of `domain::record::{group, joint}`.
use std::collections::BTreeSet;

use uuid::Uuid;

use super::Node;
use crate::domain::record::group::{charter_digest, check_group_id, Group, ProposalStatus};
use crate::domain::record::{
    joint, AssignmentStatus, Folded, JointMeeting, JointStatus, RecordKey, RecordState,
};
use crate::pb::{self, audience::Kind, event::Body};
use crate::{Error, Result};

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

fn group_key(id: &str) -> Result<RecordKey> {
    check_group_id(id).map_err(invalid)?;
    let mut key = [0u8; 16];
    key[..id.len()].copy_from_slice(id.as_bytes());
    Ok(RecordKey::Group(key))
}

fn charter_audience(group: &str) -> Kind {
    Kind::Group(pb::GroupAudience {
        group_id: group.to_string(),
        include_subtrees: true,
        charter: true,
    })
}

/// A member of a charter to propose: code, name, public key (hex).
#[derive(Clone, Debug)]
pub struct MemberInput {
    pub code: String,
    pub name: String,
    pub key: String,
}

impl Node {
    fn group_state(&self, id: &str) -> Result<Option<Folded<Group>>> {
        match self.store().state(&group_key(id)?)? {
            Some(RecordState::Group(g)) => Ok(Some(g)),
            _ => Ok(None),
        }
    }

    fn check_root(&self, what: &str) -> Result<()> {
        let root = self.roster().root.clone();
        if root != self.code() {
            return Err(invalid(format!(
                "only the root of a federation ({root}) {what} in a lateral group; {} cannot",
                self.code()
            )));
        }
        Ok(())
    }

    /// Proposes a charter: version 1 founds the group; when a charter is in force, the next
    /// version amends it — `members` and `hosts` are added to those in force (which stay as
    /// they are), and an empty `name` keeps the group's name. This federation's root is
    /// listed with its anchor key whether or not `members` names it.
    pub async fn propose_charter(
        &self,
        group: &str,
        name: &str,
        members: &[MemberInput],
        hosts: &[(u32, String)],
    ) -> Result<pb::Receipt> {
        self.check_root("proposes charters")?;
        check_group_id(group).map_err(invalid)?;
        let (anchor, my_name) = {
            let r = self.roster();
            (r.root_key, r.name_of(self.code()))
        };
        let in_force = self
            .group_state(group)?
            .and_then(|g| g.record.in_force().cloned());
        let mut list: Vec<pb::GroupMember> = Vec::new();
        let mut host_terms: Vec<pb::GroupHostTerm> = Vec::new();
        let (version, amends, name) = match &in_force {
            None => (1, Vec::new(), name.trim().to_string()),
            Some(f) => {
                for (code, m) in &f.members {
                    list.push(pb::GroupMember {
                        code: code.clone(),
                        name: m.name.clone(),
                        public_key: hex::decode(&m.key).unwrap_or_default(),
                    });
                }
                for (year, code) in &f.hosts {
                    host_terms.push(pb::GroupHostTerm {
                        year: *year,
                        code: code.clone(),
                    });
                }
                let name = if name.trim().is_empty() {
                    f.name.clone()
                } else {
                    name.trim().to_string()
                };
                (
                    f.version + 1,
                    hex::decode(&f.digest).unwrap_or_default(),
                    name,
                )
            }
        };
        if name.is_empty() {
            return Err(invalid(
                "give the group's name, e.g. --name 沿黄九省区政协协商研讨会",
            ));
        }
        if !list.iter().any(|m| m.code == self.code()) {
            list.push(pb::GroupMember {
                code: self.code().to_string(),
                name: my_name,
                public_key: anchor.as_bytes().to_vec(),
            });
        }
        for m in members {
            let key = crate::event::parse_public_key(&m.key)
                .map_err(|e| invalid(format!("the key of {}: {e}", m.code)))?;
            match list.iter().find(|x| x.code == m.code) {
                Some(x) if x.public_key == key.as_bytes() => {}
                Some(_) => {
                    return Err(invalid(format!(
                        "{} is listed already with another key (a member's key cannot change by amendment)",
                        m.code
                    )))
                }
                None => list.push(pb::GroupMember {
                    code: m.code.clone(),
                    name: if m.name.trim().is_empty() {
                        format!("{}政协", m.code)
                    } else {
                        m.name.trim().to_string()
                    },
                    public_key: key.as_bytes().to_vec(),
                }),
            }
        }
        for (year, code) in hosts {
            match host_terms.iter().find(|t| t.year == *year) {
                Some(t) if t.code == *code => {}
                Some(t) => {
                    return Err(invalid(format!(
                        "the host of {year} is {} already; an amendment cannot change it",
                        t.code
                    )))
                }
                None => host_terms.push(pb::GroupHostTerm {
                    year: *year,
                    code: code.clone(),
                }),
            }
        }
        if let Some(f) = &in_force {
            if list.len() == f.members.len() && host_terms.len() == f.hosts.len() && name == f.name
            {
                return Err(invalid(format!(
                    "version {} is in force and this amendment changes nothing: add members (--member CODE=KEY) or host years (--host YEAR=CODE), or rename",
                    f.version
                )));
            }
        }
        list.sort_by(|a, b| a.code.cmp(&b.code));
        host_terms.sort_by_key(|t| t.year);
        let proposal = pb::GroupCharterProposed {
            group_id: group.to_string(),
            name,
            version,
            amends,
            members: list,
            hosts: host_terms,
        };
        let mut receipt = self
            .author(
                charter_audience(group),
                Body::GroupCharterProposed(proposal.clone()),
            )
            .await?;
        receipt.record_id = hex::encode(charter_digest(&proposal));
        Ok(receipt)
    }

    /// Endorses (签署) a charter proposal of `group`: the one whose digest starts with
    /// `digest`, or, when `digest` is empty, the one pending proposal that lists this
    /// committee and that it has not endorsed.
    pub async fn endorse_charter(&self, group: &str, digest: &str) -> Result<pb::Receipt> {
        self.check_root("endorses charters")?;
        let g = self.group_state(group)?.ok_or_else(|| {
            Error::NotFound(format!(
                "no charter of group {group} has reached this node (yet): the proposer's link must be up"
            ))
        })?;
        let me = self.code();
        let wanted = digest.trim().to_lowercase();
        let candidates: Vec<_> = g
            .record
            .proposals
            .iter()
            .filter(|p| {
                p.status == ProposalStatus::Pending
                    && p.members.contains_key(me)
                    && !p.endorsed_by.contains(me)
                    && p.digest.starts_with(&wanted)
            })
            .collect();
        let p = match candidates.as_slice() {
            [one] => *one,
            [] => {
                return Err(invalid(format!(
                    "nothing of group {group} awaits this committee's endorsement{}",
                    if wanted.is_empty() {
                        String::new()
                    } else {
                        format!(" under digest {wanted}")
                    }
                )))
            }
            many => {
                return Err(invalid(format!(
                    "{} proposals await endorsement ({}): name one with --digest",
                    many.len(),
                    many.iter()
                        .map(|p| format!("v{} {}", p.version, &p.digest[..12]))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        };
        let mut receipt = self
            .author(
                charter_audience(group),
                Body::GroupCharterEndorsed(pb::GroupCharterEndorsed {
                    group_id: group.to_string(),
                    version: p.version,
                    digest: hex::decode(&p.digest).unwrap_or_default(),
                }),
            )
            .await?;
        receipt.record_id = p.digest.clone();
        Ok(receipt)
    }

    /// The groups this node knows, with their charters.
    pub fn groups_view(&self) -> Result<pb::GroupList> {
        let mut out = pb::GroupList::default();
        for (_, state) in self.store().states_with_tag(b'L')? {
            if let RecordState::Group(g) = state {
                out.groups.push(self.group_view(&g));
            }
        }
        Ok(out)
    }

    fn group_view(&self, g: &Folded<Group>) -> pb::GroupView {
        let roster = self.roster();
        let hosts = |h: &std::collections::BTreeMap<u32, String>| {
            h.iter()
                .map(|(year, code)| pb::CharterHostInput {
                    year: *year,
                    code: code.clone(),
                })
                .collect::<Vec<_>>()
        };
        let proposals: Vec<pb::CharterView> = g
            .record
            .proposals
            .iter()
            .map(|p| {
                let prev = g
                    .record
                    .proposals
                    .iter()
                    .find(|q| q.digest == p.amends && !p.amends.is_empty());
                let (missing, short) = p.missing(prev);
                pb::CharterView {
                    version: p.version,
                    digest: p.digest.clone(),
                    amends: p.amends.clone(),
                    name: p.name.clone(),
                    proposer: p.proposer.clone(),
                    status: p.status.name().into(),
                    members: p
                        .members
                        .iter()
                        .map(|(code, m)| pb::GroupMemberView {
                            code: code.clone(),
                            name: m.name.clone(),
                            public_key: m.key.clone(),
                            endorsed: p.endorsed_by.contains(code),
                        })
                        .collect(),
                    hosts: hosts(&p.hosts),
                    missing: missing.into_iter().collect(),
                    majority_short: short as u32,
                }
            })
            .collect();
        let in_force = g.record.in_force();
        pb::GroupView {
            id: g.record.id.clone(),
            name: in_force
                .map(|p| p.name.clone())
                .or_else(|| g.record.proposals.last().map(|p| p.name.clone()))
                .unwrap_or_default(),
            version: in_force.map_or(0, |p| p.version),
            members: in_force
                .map(|p| {
                    p.members
                        .iter()
                        .map(|(code, m)| pb::GroupMemberView {
                            code: code.clone(),
                            name: if roster.knows(code) {
                                roster.name_of(code)
                            } else {
                                m.name.clone()
                            },
                            public_key: m.key.clone(),
                            endorsed: true,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            hosts: in_force.map(|p| hosts(&p.hosts)).unwrap_or_default(),
            proposals,
            refused: g
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

    fn joint_state(&self, id: Uuid) -> Result<Folded<JointMeeting>> {
        match self.store().state(&RecordKey::JointMeeting(id))? {
            Some(RecordState::JointMeeting(m)) if m.record.convening.is_some() => Ok(m),
            _ => Err(Error::NotFound(format!(
                "joint meeting {id} is not held here"
            ))),
        }
    }

    /// The meeting and the audience every later event of it repeats.
    fn joint(&self, meeting: &str) -> Result<(Uuid, Folded<JointMeeting>, Kind)> {
        let id = self.resolve(b'J', meeting, "joint meeting")?;
        let m = self.joint_state(id)?;
        let c = m
            .record
            .convening
            .clone()
            .ok_or_else(|| invalid("the meeting has not arrived here yet"))?;
        let aud = Kind::Group(pb::GroupAudience {
            group_id: c.group_id,
            include_subtrees: c.include_subtrees,
            charter: false,
        });
        Ok((id, m, aud))
    }

    fn check_member(&self, group: &str) -> Result<()> {
        let roster = self.roster();
        let charter = roster
            .group(group)
            .and_then(|g| g.in_force.as_ref())
            .ok_or_else(|| {
                invalid(format!(
                    "no charter of group {group} is in force here: every member must endorse it first (`liandong group list`)"
                ))
            })?;
        if !charter.members.contains_key(self.code()) {
            return Err(invalid(format!(
                "{} is not a member of group {group}",
                self.code()
            )));
        }
        Ok(())
    }

    /// 联席会议: convened by the host the charter in force names for `year`.
    #[allow(clippy::too_many_arguments)]
    pub async fn convene_joint_meeting(
        &self,
        group: &str,
        year: u32,
        theme: &str,
        description: &str,
        date: &str,
        place: &str,
        include_subtrees: bool,
    ) -> Result<pb::Receipt> {
        self.check_member(group)?;
        let host = self
            .roster()
            .group(group)
            .and_then(|g| g.in_force.as_ref())
            .and_then(|c| c.hosts.get(&year).cloned());
        match host {
            Some(h) if h == self.code() => {}
            Some(h) => {
                return Err(invalid(format!(
                    "the host of group {group} in {year} is {h}, not {}",
                    self.code()
                )))
            }
            None => {
                return Err(invalid(format!(
                    "the charter of group {group} names no host for {year}: amend it first (`liandong group charter propose --group {group} --host {year}=CODE`)"
                )))
            }
        }
        if theme.trim().is_empty() {
            return Err(invalid("a joint meeting needs its theme (--theme)"));
        }
        self.author(
            Kind::Group(pb::GroupAudience {
                group_id: group.to_string(),
                include_subtrees,
                charter: false,
            }),
            Body::JointMeetingConvened(pb::JointMeetingConvened {
                meeting_id: self.new_id().as_bytes().to_vec(),
                group_id: group.to_string(),
                year,
                theme: theme.trim().to_string(),
                description: description.to_string(),
                date: date.to_string(),
                place: place.to_string(),
            }),
        )
        .await
    }

    /// A member's research or comment; with `revise`, a new version of its own contribution.
    #[allow(clippy::too_many_arguments)]
    pub async fn contribute_joint(
        &self,
        meeting: &str,
        revise: &str,
        kind: &str,
        title: &str,
        text: &str,
        recommendations: Vec<String>,
        attachment_digests: Vec<String>,
    ) -> Result<pb::Receipt> {
        let (id, m, aud) = self.joint(meeting)?;
        if m.record.status == JointStatus::Finalized {
            return Err(invalid("the joint report is final: no more contributions"));
        }
        if text.trim().is_empty() {
            return Err(invalid("a contribution needs its text"));
        }
        let kind = match kind {
            "" | "research" | "调研成果" => pb::JointContributionKind::Research,
            "comment" | "意见建议" => pb::JointContributionKind::Comment,
            k => {
                return Err(invalid(format!(
                    "contribution kind '{k}': use research (调研成果) or comment (意见建议)"
                )))
            }
        };
        let (cid, version) = if revise.is_empty() {
            (self.new_id().as_bytes().to_vec(), 1)
        } else {
            let wanted = revise.replace('-', "").to_lowercase();
            let found: Vec<&joint::Contribution> = m
                .record
                .contributions
                .values()
                .filter(|c| c.id.starts_with(&wanted) && c.member == self.code())
                .collect();
            match found.as_slice() {
                [c] => (hex::decode(&c.id).unwrap_or_default(), c.version + 1),
                _ => {
                    return Err(invalid(format!(
                        "no single contribution of this committee starts with '{revise}'"
                    )))
                }
            }
        };
        self.author(
            aud,
            Body::JointContributionMade(pb::JointContributionMade {
                meeting_id: id.as_bytes().to_vec(),
                contribution_id: cid,
                version,
                kind: kind as i32,
                title: title.trim().to_string(),
                text: text.to_string(),
                recommendations,
                attachment_digests,
            }),
        )
        .await
    }

    fn host_of(&self, m: &Folded<JointMeeting>, what: &str) -> Result<()> {
        let host = m
            .record
            .convening
            .as_ref()
            .map(|c| c.host.clone())
            .unwrap_or_default();
        if host != self.code() {
            return Err(invalid(format!("only the host {host} {what}")));
        }
        if m.record.status == JointStatus::Finalized && what != "records where it was sent" {
            return Err(invalid("the joint report is final already"));
        }
        Ok(())
    }

    /// The host's next draft of the joint report.
    pub async fn draft_joint_report(
        &self,
        meeting: &str,
        title: &str,
        text: &str,
        recommendations: Vec<String>,
    ) -> Result<pb::Receipt> {
        let (id, m, aud) = self.joint(meeting)?;
        self.host_of(&m, "drafts the joint report")?;
        if text.trim().is_empty() {
            return Err(invalid("a draft needs its text"));
        }
        self.author(
            aud,
            Body::JointReportDrafted(pb::JointReportDrafted {
                meeting_id: id.as_bytes().to_vec(),
                version: m.record.drafts.len() as u32 + 1,
                title: title.trim().to_string(),
                text: text.to_string(),
                recommendations,
            }),
        )
        .await
    }

    /// A member's comment on a draft (`version` 0: the latest).
    pub async fn comment_joint_report(
        &self,
        meeting: &str,
        version: u32,
        agree: bool,
        text: &str,
    ) -> Result<pb::Receipt> {
        let (id, m, aud) = self.joint(meeting)?;
        if m.record.status == JointStatus::Finalized {
            return Err(invalid("the joint report is final already"));
        }
        let latest = m.record.drafts.len() as u32;
        if latest == 0 {
            return Err(invalid("there is no draft to comment on yet"));
        }
        let version = if version == 0 { latest } else { version };
        if !agree && text.trim().is_empty() {
            return Err(invalid(
                "say what should change (--text), or --agree if nothing",
            ));
        }
        self.author(
            aud,
            Body::JointReportCommented(pb::JointReportCommented {
                meeting_id: id.as_bytes().to_vec(),
                version,
                agree,
                text: text.to_string(),
            }),
        )
        .await
    }

    /// The host makes the latest draft final.
    pub async fn finalize_joint_report(&self, meeting: &str) -> Result<pb::Receipt> {
        let (id, m, aud) = self.joint(meeting)?;
        self.host_of(&m, "finalizes the joint report")?;
        let version = m.record.drafts.len() as u32;
        if version == 0 {
            return Err(invalid("draft the report before finalizing it"));
        }
        self.author(
            aud,
            Body::JointReportFinalized(pb::JointReportFinalized {
                meeting_id: id.as_bytes().to_vec(),
                version,
            }),
        )
        .await
    }

    /// Records where the host sent the final report.
    pub async fn send_joint_report(
        &self,
        meeting: &str,
        destination: &str,
        recipient: &str,
        reference: &str,
        date: &str,
    ) -> Result<pb::Receipt> {
        let (id, m, aud) = self.joint(meeting)?;
        self.host_of(&m, "records where it was sent")?;
        if m.record.status != JointStatus::Finalized {
            return Err(invalid("finalize the joint report before sending it"));
        }
        let destination = match destination {
            "national-committee" | "national" | "全国政协" => {
                pb::JointReportDestination::NationalCommittee
            }
            "joint-proposal" | "proposal" | "联名提案" => pb::JointReportDestination::JointProposal,
            "governments" | "government" | "党委政府" => pb::JointReportDestination::Governments,
            d => {
                return Err(invalid(format!(
                    "destination '{d}': use national-committee (全国政协), joint-proposal (联名提案) or governments (党委政府)"
                )))
            }
        };
        self.author(
            aud,
            Body::JointReportSent(pb::JointReportSent {
                meeting_id: id.as_bytes().to_vec(),
                destination: destination as i32,
                recipient: recipient.to_string(),
                reference: reference.to_string(),
                date: date.to_string(),
            }),
        )
        .await
    }

    /// Publishes this member's roll-up of its share of a joint meeting's topic: the progress
    /// of its own `topic` and the counts of its assignments, recommendations and
    /// re-consultation rounds, computed from what its own tree reported here. Only the
    /// numbers go to the group; the topic and its assignments stay in this tree.
    pub async fn publish_rollup(
        &self,
        meeting: &str,
        topic: &str,
        note: &str,
    ) -> Result<pb::Receipt> {
        let (id, _, aud) = self.joint(meeting)?;
        let view = self.topic_view(topic)?;
        if view.owner != self.code() {
            return Err(invalid(format!(
                "topic {} belongs to {}; a member rolls up its own topic",
                view.id, view.owner
            )));
        }
        let topic_id = Uuid::parse_str(&view.id).map_err(|_| invalid("bad topic id"))?;
        let mut r = pb::JointRollupPublished {
            meeting_id: id.as_bytes().to_vec(),
            topic_id: topic_id.as_bytes().to_vec(),
            topic_title: view.title.clone(),
            progress_permille: (view.progress.clamp(0.0, 1.0) * 1000.0).round() as u32,
            note: note.to_string(),
            ..Default::default()
        };
        let mut committees = BTreeSet::new();
        let mut stack: Vec<&pb::AssignmentView> = view.assignments.iter().collect();
        while let Some(a) = stack.pop() {
            stack.extend(a.children.iter());
            if a.state == AssignmentStatus::Cancelled.name() {
                continue;
            }
            r.assignments += 1;
            committees.insert(a.assignee.clone());
            r.acknowledged += u32::from(a.acknowledged);
            r.submitted += u32::from(!a.submissions.is_empty());
            r.approved += u32::from(a.state == AssignmentStatus::Approved.name());
            r.overdue += u32::from(a.overdue);
        }
        r.committees = committees.len() as u32;
        for (_, s) in self.store().states_with_tag(b'd')? {
            if let RecordState::Recommendation(rec) = s {
                if rec.record.topic_id == Some(topic_id) {
                    r.recommendations += 1;
                    r.recommendations_closed += u32::from(
                        !rec.record.status.is_open()
                            && rec.record.status
                                != crate::domain::record::RecommendationStatus::Pending,
                    );
                }
            }
        }
        for (_, s) in self.store().states_with_tag(b'x')? {
            if let RecordState::ReConsultation(x) = s {
                if x.record.topic_id == Some(topic_id) {
                    r.reconsultation_rounds += 1;
                }
            }
        }
        self.author(aud, Body::JointRollupPublished(r)).await
    }

    /// Every joint meeting held here.
    pub fn joint_meetings(&self) -> Result<pb::JointMeetingList> {
        let mut out = pb::JointMeetingList::default();
        for (k, s) in self.store().states_with_tag(b'J')? {
            if let (RecordKey::JointMeeting(id), RecordState::JointMeeting(m)) = (k, s) {
                if m.record.convening.is_some() {
                    out.meetings.push(self.joint_view_of(id, &m));
                }
            }
        }
        out.meetings.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// One joint meeting, with the group-wide roll-up of the members' shares.
    pub fn joint_meeting_view(&self, meeting: &str) -> Result<pb::JointMeetingView> {
        let id = self.resolve(b'J', meeting, "joint meeting")?;
        let m = self.joint_state(id)?;
        Ok(self.joint_view_of(id, &m))
    }

    fn joint_view_of(&self, id: Uuid, m: &Folded<JointMeeting>) -> pb::JointMeetingView {
        let roster = self.roster();
        let c = m.record.convening.clone().unwrap_or_default();
        let charter = roster.group(&c.group_id).and_then(|g| g.in_force.clone());
        let name_of = |code: &str| -> String {
            if roster.knows(code) {
                roster.name_of(code)
            } else {
                charter
                    .as_ref()
                    .and_then(|ch| ch.members.get(code).map(|(n, _)| n.clone()))
                    .unwrap_or_default()
            }
        };
        let members: Vec<String> = charter
            .as_ref()
            .map(|ch| ch.members.keys().cloned().collect())
            .unwrap_or_default();
        let r = &m.record;
        pb::JointMeetingView {
            id: id.to_string(),
            group_id: c.group_id.clone(),
            group_name: charter
                .as_ref()
                .map(|ch| ch.name.clone())
                .unwrap_or_default(),
            host_name: name_of(&c.host),
            host: c.host.clone(),
            year: c.year,
            theme: c.theme.clone(),
            description: c.description.clone(),
            date: c.date.clone(),
            place: c.place.clone(),
            include_subtrees: c.include_subtrees,
            status: r.status.name().into(),
            contributions: r
                .contributions
                .values()
                .map(|k| pb::JointContributionView {
                    id: k.id.clone(),
                    member: k.member.clone(),
                    member_name: name_of(&k.member),
                    version: k.version,
                    kind: k.kind.clone(),
                    title: k.title.clone(),
                    text: k.text.clone(),
                    recommendations: k.recommendations.clone(),
                })
                .collect(),
            drafts: r
                .drafts
                .iter()
                .map(|d| pb::JointDraftView {
                    version: d.version,
                    title: d.title.clone(),
                    text: d.text.clone(),
                    recommendations: d.recommendations.clone(),
                })
                .collect(),
            comments: r
                .comments
                .iter()
                .map(|k| pb::JointCommentView {
                    member: k.member.clone(),
                    member_name: name_of(&k.member),
                    version: k.version,
                    agree: k.agree,
                    text: k.text.clone(),
                })
                .collect(),
            final_version: r.final_version.unwrap_or(0),
            dispatches: r
                .dispatches
                .iter()
                .map(|d| pb::JointDispatchView {
                    destination: d.destination.clone(),
                    recipient: d.recipient.clone(),
                    reference: d.reference.clone(),
                    date: d.date.clone(),
                })
                .collect(),
            rollups: r
                .rollups
                .values()
                .map(|u| pb::JointRollupView {
                    member: u.member.clone(),
                    member_name: name_of(&u.member),
                    topic_id: u.topic_id.clone(),
                    topic_title: u.topic_title.clone(),
                    progress: f64::from(u.progress_permille) / 1000.0,
                    assignments: u.assignments,
                    acknowledged: u.acknowledged,
                    submitted: u.submitted,
                    approved: u.approved,
                    overdue: u.overdue,
                    committees: u.committees,
                    recommendations: u.recommendations,
                    recommendations_closed: u.recommendations_closed,
                    reconsultation_rounds: u.reconsultation_rounds,
                    note: u.note.clone(),
                    updates: u.count,
                })
                .collect(),
            progress: f64::from(r.progress_permille()) / 1000.0,
            not_reported: members
                .iter()
                .filter(|code| !r.rollups.contains_key(*code))
                .cloned()
                .collect(),
            members,
            refused: m
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
}
