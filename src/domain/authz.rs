//! Who may author what, to whom: the stateless rules checked at ingest, before anything is
//! stored. They need only the event and the roster. Rules that depend on a record's state
//! (only the assignee acknowledges, only the assigner reviews) live in the fold
//! ([`super::record`]), where a refused transition is recorded with its reason.
use super::{uuid_field, CommitteeCode, Level, Refusal, Roster};
use crate::pb::{self, audience::Kind, event::Body};

fn deny(msg: impl Into<String>) -> Refusal {
    Refusal::Unauthorized(msg.into())
}

fn committees(aud: &Kind) -> Option<&[String]> {
    match aud {
        Kind::Committees(list) => Some(&list.codes),
        _ => None,
    }
}

/// Checks that `origin` may author `body` with `audience`: the ids it names were minted by
/// the committees that own them ([`minted_ids`]), and the rules of its kind ([`rules`]).
/// Assumes the signature already verified against `origin`'s key.
pub fn authorize(
    roster: &Roster,
    origin: &str,
    audience: &Kind,
    body: &Body,
) -> Result<(), Refusal> {
    ownership(origin, body)?;
    rules(roster, origin, audience, body)
}

/// The rules of each kind: who may author it, about whom, to which audience.
fn rules(roster: &Roster, origin: &str, audience: &Kind, body: &Body) -> Result<(), Refusal> {
    if !is_group_body(body) && roster.is_foreign(origin) {
        return Err(deny(format!(
            "{origin} belongs to another federation: its key is known here only through a lateral group's charter, for that group's events"
        )));
    }
    match body {
        Body::CommitteeRegistered(reg) => registration(roster, origin, audience, reg),
        Body::CommitteeKeyRotated(r) => {
            key_change(
                roster,
                origin,
                audience,
                &r.code,
                &r.public_key,
                "give a new key to",
            )?;
            if r.from_seq == 0 || r.from_seq != r.chain_seq + 1 {
                return Err(Refusal::Malformed(format!(
                    "a rotation's new key starts right after the chain it continues: from_seq {} with chain_seq {}",
                    r.from_seq, r.chain_seq
                )));
            }
            if !(r.chain_hash.is_empty() && r.chain_seq == 0) && r.chain_hash.len() != 32 {
                return Err(Refusal::Malformed(
                    "chain_hash must be a 32-byte SHA-256".into(),
                ));
            }
            Ok(())
        }
        Body::CommitteeKeyRevoked(r) => {
            key_change(
                roster,
                origin,
                audience,
                &r.code,
                &r.public_key,
                "revoke a key of",
            )?;
            let known = roster.get(&r.code).is_some_and(|m| {
                m.epochs
                    .iter()
                    .any(|e| e.key.as_bytes() == r.public_key.as_slice())
            });
            if !known {
                return Err(deny(format!("{} never had the key being revoked", r.code)));
            }
            Ok(())
        }
        Body::TopicDrafted(t) => {
            uuid_field(&t.topic_id, "topic_id").map_err(Refusal::Malformed)?;
            match committees(audience) {
                Some(list) if list.iter().all(|c| c == origin) => Ok(()),
                _ => Err(deny(
                    "a topic draft stays with its author: its audience must be the author alone",
                )),
            }
        }
        Body::TopicPublished(pb::TopicPublished { topic_id, .. })
        | Body::TopicConcluded(pb::TopicConcluded { topic_id, .. })
        | Body::TopicWithdrawn(pb::TopicWithdrawn { topic_id, .. }) => {
            uuid_field(topic_id, "topic_id").map_err(Refusal::Malformed)?;
            match audience {
                Kind::Subtree(c) if c == origin => Ok(()),
                _ => Err(deny(format!("a topic of {origin} is published to its own subtree (audience subtree({origin}))"))),
            }
        }
        Body::AssignmentIssued(a) => {
            uuid_field(&a.assignment_id, "assignment_id").map_err(Refusal::Malformed)?;
            uuid_field(&a.topic_id, "topic_id").map_err(Refusal::Malformed)?;
            if !a.parent_assignment_id.is_empty() {
                uuid_field(&a.parent_assignment_id, "parent_assignment_id")
                    .map_err(Refusal::Malformed)?;
            }
            if !placed_below(roster, origin, &a.assignee) {
                return Err(deny(format!(
                    "{origin} may not assign to {}: an assignment goes to a committee below its assigner",
                    a.assignee
                )));
            }
            if a.parent_assignment_id.is_empty() && a.topic_owner != origin {
                return Err(deny(format!(
                    "only the topic's owner {} issues its top-level assignments; {origin} must split its own assignment instead",
                    a.topic_owner
                )));
            }
            if !roster.is_ancestor_or_self(&a.topic_owner, origin) {
                return Err(deny(format!(
                    "{origin} is not under the topic owner {}",
                    a.topic_owner
                )));
            }
            expect_route(audience, &[&a.assignee, &a.topic_owner], "an assignment")
        }
        Body::AssignmentAcknowledged(pb::AssignmentAcknowledged { assignment_id })
        | Body::SubmissionMade(pb::SubmissionMade { assignment_id, .. })
        | Body::ReviewRecorded(pb::ReviewRecorded { assignment_id, .. })
        | Body::AssignmentCancelled(pb::AssignmentCancelled { assignment_id, .. }) => {
            uuid_field(assignment_id, "assignment_id").map_err(Refusal::Malformed)?;
            if let Body::SubmissionMade(s) = body {
                uuid_field(&s.submission_id, "submission_id").map_err(Refusal::Malformed)?;
            }
            match committees(audience) {
                Some(list) if !list.is_empty() => Ok(()),
                _ => Err(deny("events about an assignment go to the assignment's committees (audience committees[assignee, topic owner])")),
            }
        }
        Body::GuidanceIssued(g) => {
            uuid_field(&g.guidance_id, "guidance_id").map_err(Refusal::Malformed)?;
            match audience {
                Kind::Subtree(c) if c == origin => Ok(()),
                Kind::Committees(list) if !list.codes.is_empty() => {
                    match list.codes.iter().find(|t| !placed_below(roster, origin, t)) {
                        Some(t) => Err(deny(format!(
                            "guidance goes down: {t} is not below {origin}"
                        ))),
                        None => Ok(()),
                    }
                }
                _ => Err(deny(format!("guidance goes down: its audience is subtree({origin}) or named committees below it"))),
            }
        }
        Body::GuidanceAcknowledged(g) => {
            uuid_field(&g.guidance_id, "guidance_id").map_err(Refusal::Malformed)?;
            if !roster.is_proper_ancestor(&g.issuer, origin) {
                return Err(deny(format!(
                    "{origin} cannot acknowledge guidance of {}, which is not above it",
                    g.issuer
                )));
            }
            expect_route(audience, &[&g.issuer], "a guidance acknowledgement")
        }
        Body::ReportSent(r) => {
            uuid_field(&r.report_id, "report_id").map_err(Refusal::Malformed)?;
            if !roster.is_proper_ancestor(&r.to, origin) {
                return Err(deny(format!(
                    "reports go up: {} is not above {origin}",
                    r.to
                )));
            }
            match audience {
                Kind::Ancestors(u) if *u == r.to => Ok(()),
                _ => Err(deny(format!(
                    "a report to {} has the audience ancestors({})",
                    r.to, r.to
                ))),
            }
        }
        Body::ReportAcknowledged(r) => {
            uuid_field(&r.report_id, "report_id").map_err(Refusal::Malformed)?;
            if !roster.is_proper_ancestor(origin, &r.sender) {
                return Err(deny(format!(
                    "{origin} cannot acknowledge a report of {}, which is not below it",
                    r.sender
                )));
            }
            expect_route(audience, &[&r.sender], "a report acknowledgement")
        }
        Body::TopicProposalSubmitted(_)
        | Body::TopicProposalDecided(_)
        | Body::PlanEntrySet(_)
        | Body::PlanEntryRemoved(_)
        | Body::PlanAdopted(_)
        | Body::MeetingScheduled(_)
        | Body::MeetingContributionSubmitted(_)
        | Body::MeetingConcluded(_)
        | Body::MeetingCancelled(_)
        | Body::RecommendationIssued(_)
        | Body::RecommendationHandled(_)
        | Body::RecommendationProgressed(_)
        | Body::RecommendationFeedbackRecorded(_)
        | Body::RecommendationEvaluated(_)
        | Body::RecommendationReviewed(_)
        | Body::ReConsultationHeld(_)
        | Body::EvaluationRecorded(_)
        | Body::PublicationIssued(_) => cycle(roster, origin, audience, body),
        Body::GroupCharterProposed(_)
        | Body::GroupCharterEndorsed(_)
        | Body::JointMeetingConvened(_)
        | Body::JointContributionMade(_)
        | Body::JointReportDrafted(_)
        | Body::JointReportCommented(_)
        | Body::JointReportFinalized(_)
        | Body::JointReportSent(_)
        | Body::JointRollupPublished(_) => lateral_group(roster, origin, audience, body),
    }
}

/// Who must have minted each record id an event names ([`super::ids`]): the owner of the
/// record it creates or changes is in the id, so a committee cannot write under a record id
/// that another committee minted, however it stamps its clock. `(id, minter, field)`; an
/// empty id is an optional reference left out (required ids are checked by each kind's rule).
fn minted_ids<'a>(origin: &'a str, body: &'a Body) -> Vec<(&'a [u8], &'a str, &'static str)> {
    match body {
        Body::CommitteeRegistered(_)
        | Body::CommitteeKeyRotated(_)
        | Body::CommitteeKeyRevoked(_)
        | Body::PlanEntrySet(_)
        | Body::PlanEntryRemoved(_)
        | Body::PlanAdopted(_)
        | Body::GroupCharterProposed(_)
        | Body::GroupCharterEndorsed(_) => vec![], // keyed by code or group id
        Body::TopicDrafted(t) => vec![(&t.topic_id, origin, "topic_id")],
        Body::TopicPublished(t) => vec![(&t.topic_id, origin, "topic_id")],
        Body::TopicConcluded(t) => vec![(&t.topic_id, origin, "topic_id")],
        Body::TopicWithdrawn(t) => vec![(&t.topic_id, origin, "topic_id")],
        Body::AssignmentIssued(a) => vec![
            (&a.assignment_id, origin, "assignment_id"),
            (&a.topic_id, &a.topic_owner, "topic_id"),
        ],
        // The assignee's: the assignment is the assigner's (checked in the fold).
        Body::AssignmentAcknowledged(_) => vec![],
        Body::SubmissionMade(s) => vec![(&s.submission_id, origin, "submission_id")],
        // Only the assigner reviews or cancels: the assignment id is its own.
        Body::ReviewRecorded(r) => vec![(&r.assignment_id, origin, "assignment_id")],
        Body::AssignmentCancelled(c) => vec![(&c.assignment_id, origin, "assignment_id")],
        Body::GuidanceIssued(g) => vec![(&g.guidance_id, origin, "guidance_id")],
        Body::GuidanceAcknowledged(g) => vec![(&g.guidance_id, &g.issuer, "guidance_id")],
        Body::ReportSent(r) => vec![(&r.report_id, origin, "report_id")],
        Body::ReportAcknowledged(r) => vec![(&r.report_id, &r.sender, "report_id")],
        Body::TopicProposalSubmitted(p) => vec![(&p.proposal_id, origin, "proposal_id")],
        Body::TopicProposalDecided(d) => vec![
            (&d.proposal_id, &d.proposer, "proposal_id"),
            (&d.topic_id, origin, "topic_id"),
        ],
        Body::MeetingScheduled(m) => vec![
            (&m.meeting_id, origin, "meeting_id"),
            (&m.topic_id, origin, "topic_id"),
        ],
        Body::MeetingConcluded(m) => vec![(&m.meeting_id, origin, "meeting_id")],
        Body::MeetingCancelled(m) => vec![(&m.meeting_id, origin, "meeting_id")],
        Body::MeetingContributionSubmitted(c) => vec![
            (&c.contribution_id, origin, "contribution_id"),
            (&c.meeting_id, &c.meeting_owner, "meeting_id"),
        ],
        Body::RecommendationIssued(r) => vec![
            (&r.recommendation_id, origin, "recommendation_id"),
            (&r.topic_id, origin, "topic_id"),
            (&r.meeting_id, origin, "meeting_id"),
        ],
        Body::RecommendationHandled(r) => {
            vec![(&r.recommendation_id, origin, "recommendation_id")]
        }
        Body::RecommendationProgressed(r) => {
            vec![(&r.recommendation_id, origin, "recommendation_id")]
        }
        Body::RecommendationFeedbackRecorded(r) => {
            vec![(&r.recommendation_id, origin, "recommendation_id")]
        }
        Body::RecommendationEvaluated(r) => {
            vec![(&r.recommendation_id, origin, "recommendation_id")]
        }
        Body::RecommendationReviewed(r) => vec![
            (&r.recommendation_id, origin, "recommendation_id"),
            (&r.round_id, origin, "round_id"),
        ],
        Body::ReConsultationHeld(r) => {
            let mut v = vec![
                (r.round_id.as_slice(), origin, "round_id"),
                (r.topic_id.as_slice(), origin, "topic_id"),
            ];
            for id in r.reviewed.iter().chain(&r.added) {
                v.push((id.as_slice(), origin, "recommendation id"));
            }
            v
        }
        Body::EvaluationRecorded(e) => vec![
            (&e.evaluation_id, origin, "evaluation_id"),
            (&e.topic_id, &e.topic_owner, "topic_id"),
        ],
        Body::PublicationIssued(p) => vec![(&p.publication_id, origin, "publication_id")],
        Body::JointMeetingConvened(m) => vec![(&m.meeting_id, origin, "meeting_id")],
        Body::JointReportDrafted(m) => vec![(&m.meeting_id, origin, "meeting_id")],
        Body::JointReportFinalized(m) => vec![(&m.meeting_id, origin, "meeting_id")],
        Body::JointReportSent(m) => vec![(&m.meeting_id, origin, "meeting_id")],
        // A member's own contribution, comment or roll-up on the host's meeting (the fold
        // checks the host and the membership).
        Body::JointContributionMade(c) => {
            vec![(&c.contribution_id, origin, "contribution_id")]
        }
        Body::JointReportCommented(_) => vec![],
        Body::JointRollupPublished(r) => vec![(&r.topic_id, origin, "topic_id")],
    }
}

/// Refuses an event that names a record id minted by another committee than the one that
/// must own it ([`minted_ids`]).
fn ownership(origin: &str, body: &Body) -> Result<(), Refusal> {
    for (bytes, minter, field) in minted_ids(origin, body) {
        if bytes.is_empty() {
            continue;
        }
        let id = uuid_field(bytes, field).map_err(Refusal::Malformed)?;
        if !super::ids::is_minted_by(&id, minter) {
            let actual = super::ids::owner_of(&id).unwrap_or_else(|| "no committee".into());
            return Err(deny(format!(
                "{field} {id} belongs to {actual}, not {minter}: {origin} cannot write under a record id that another committee created"
            )));
        }
    }
    Ok(())
}

fn malformed_uuid(bytes: &[u8], field: &str) -> Result<(), Refusal> {
    uuid_field(bytes, field)
        .map(|_| ())
        .map_err(Refusal::Malformed)
}

/// The audience must be `subtree(origin)`: records of a topic's owner about its topic.
fn own_subtree(origin: &str, audience: &Kind, what: &str) -> Result<(), Refusal> {
    match audience {
        Kind::Subtree(c) if c == origin => Ok(()),
        _ => Err(deny(format!(
            "{what} of {origin} goes to its subtree (audience subtree({origin}))"
        ))),
    }
}

/// The consultation cycle (issue 4A): proposals, plans, meetings, contributions,
/// recommendations, re-consultation, quality evaluation, publication.
fn cycle(roster: &Roster, origin: &str, audience: &Kind, body: &Body) -> Result<(), Refusal> {
    match body {
        Body::TopicProposalSubmitted(p) => {
            malformed_uuid(&p.proposal_id, "proposal_id")?;
            if p.to == origin {
                expect_route(
                    audience,
                    &[origin],
                    "a proposal recorded by its own committee",
                )
            } else if roster.is_proper_ancestor(&p.to, origin) {
                match audience {
                    Kind::Ancestors(u) if *u == p.to => Ok(()),
                    _ => Err(deny(format!(
                        "a proposal to {} has the audience ancestors({})",
                        p.to, p.to
                    ))),
                }
            } else {
                Err(deny(format!(
                    "{origin} proposes topics to itself or to a committee above it, not to {}",
                    p.to
                )))
            }
        }
        Body::TopicProposalDecided(d) => {
            malformed_uuid(&d.proposal_id, "proposal_id")?;
            if !d.topic_id.is_empty() {
                malformed_uuid(&d.topic_id, "topic_id")?;
            }
            if d.proposer != origin && !roster.is_proper_ancestor(origin, &d.proposer) {
                return Err(deny(format!(
                    "{origin} cannot decide a proposal of {}, which is not below it",
                    d.proposer
                )));
            }
            expect_route(audience, &[&d.proposer], "a proposal's decision")
        }
        Body::PlanEntrySet(pb::PlanEntrySet {
            committee,
            year,
            topic_id,
            ..
        })
        | Body::PlanEntryRemoved(pb::PlanEntryRemoved {
            committee,
            year,
            topic_id,
            ..
        }) => {
            malformed_uuid(topic_id, "topic_id")?;
            plan(roster, origin, audience, committee, *year)
        }
        Body::PlanAdopted(a) => plan(roster, origin, audience, &a.committee, a.year),
        Body::MeetingScheduled(m) => {
            malformed_uuid(&m.meeting_id, "meeting_id")?;
            malformed_uuid(&m.topic_id, "topic_id")?;
            let venues = m.branch_venues.iter().map(|v| &v.committee);
            if let Some(c) = m
                .participants
                .iter()
                .chain(venues)
                .find(|c| *c != origin && !placed_below(roster, origin, c))
            {
                return Err(deny(format!(
                    "{c} is not in the subtree of {origin}: a meeting's participants and branch venues are"
                )));
            }
            own_subtree(origin, audience, "a meeting")
        }
        Body::MeetingConcluded(pb::MeetingConcluded { meeting_id, .. })
        | Body::MeetingCancelled(pb::MeetingCancelled { meeting_id, .. }) => {
            malformed_uuid(meeting_id, "meeting_id")?;
            own_subtree(origin, audience, "a meeting")
        }
        Body::MeetingContributionSubmitted(c) => {
            malformed_uuid(&c.contribution_id, "contribution_id")?;
            malformed_uuid(&c.meeting_id, "meeting_id")?;
            if !roster.is_ancestor_or_self(&c.meeting_owner, origin) {
                return Err(deny(format!(
                    "{origin} cannot contribute to a meeting of {}, which is not above it",
                    c.meeting_owner
                )));
            }
            match audience {
                Kind::Ancestors(u) if *u == c.meeting_owner => Ok(()),
                _ => Err(deny(format!(
                    "a contribution goes up to the meeting's organiser: audience ancestors({})",
                    c.meeting_owner
                ))),
            }
        }
        Body::RecommendationIssued(r) => {
            malformed_uuid(&r.recommendation_id, "recommendation_id")?;
            malformed_uuid(&r.topic_id, "topic_id")?;
            if !r.meeting_id.is_empty() {
                malformed_uuid(&r.meeting_id, "meeting_id")?;
            }
            own_subtree(origin, audience, "a recommendation")
        }
        Body::RecommendationHandled(pb::RecommendationHandled {
            recommendation_id, ..
        })
        | Body::RecommendationProgressed(pb::RecommendationProgressed {
            recommendation_id, ..
        })
        | Body::RecommendationFeedbackRecorded(pb::RecommendationFeedbackRecorded {
            recommendation_id,
            ..
        })
        | Body::RecommendationEvaluated(pb::RecommendationEvaluated {
            recommendation_id, ..
        }) => {
            malformed_uuid(recommendation_id, "recommendation_id")?;
            own_subtree(origin, audience, "a recommendation")
        }
        Body::RecommendationReviewed(r) => {
            malformed_uuid(&r.recommendation_id, "recommendation_id")?;
            malformed_uuid(&r.round_id, "round_id")?;
            own_subtree(origin, audience, "a recommendation")
        }
        Body::ReConsultationHeld(r) => {
            malformed_uuid(&r.round_id, "round_id")?;
            malformed_uuid(&r.topic_id, "topic_id")?;
            for id in r.reviewed.iter().chain(&r.added) {
                malformed_uuid(id, "recommendation id")?;
            }
            own_subtree(origin, audience, "a re-consultation round")
        }
        Body::EvaluationRecorded(e) => {
            malformed_uuid(&e.evaluation_id, "evaluation_id")?;
            malformed_uuid(&e.topic_id, "topic_id")?;
            if !roster.knows(&e.topic_owner) {
                return Err(Refusal::UnknownAuthor(format!(
                    "the topic's owner {} is not in the roster yet",
                    e.topic_owner
                )));
            }
            expect_route(audience, &[&e.topic_owner], "an evaluation")
        }
        Body::PublicationIssued(p) => {
            malformed_uuid(&p.publication_id, "publication_id")?;
            malformed_uuid(&p.topic_id, "topic_id")?;
            match audience {
                Kind::Subtree(c) if c == origin => Ok(()),
                Kind::Committees(list)
                    if list.codes.iter().any(|c| roster.knows(c)) =>
                {
                    Ok(())
                }
                Kind::Ancestors(u) if roster.is_proper_ancestor(u, origin) => Ok(()),
                _ => Err(deny(format!(
                    "results are published to subtree({origin}), to named committees, or up to an ancestor"
                ))),
            }
        }
        _ => Err(deny("not an event of the consultation cycle")),
    }
}

/// A plan is written by its committee and seen by every committee above: ancestors(root).
fn plan(
    roster: &Roster,
    origin: &str,
    audience: &Kind,
    committee: &str,
    year: u32,
) -> Result<(), Refusal> {
    if committee != origin {
        return Err(deny(format!(
            "the plan of {committee} is written by {committee} only, not {origin}"
        )));
    }
    if !(2000..=2200).contains(&year) {
        return Err(Refusal::Malformed(format!("{year} is not a plan year")));
    }
    match audience {
        Kind::Ancestors(u) if *u == roster.root => Ok(()),
        _ => Err(deny(format!(
            "a plan is seen by every committee above its own: audience ancestors({})",
            roster.root
        ))),
    }
}

/// Whether `c` is below `upper`, as far as this node can tell. The roster is scoped
/// ([`roster_scope`]): a node below `upper` knows its own branch, not its cousins, so a
/// committee it cannot place is not checked here but by the nodes that can — `upper` itself,
/// which authorized the event before signing it, and every node on the way to `c`, all of
/// which hold `c`'s registration. An event naming it reaches nobody here on its account.
fn placed_below(roster: &Roster, upper: &str, c: &str) -> bool {
    let unplaceable = !roster.knows(c) && !roster.is_foreign(c) && upper != c;
    unplaceable || roster.is_proper_ancestor(upper, c)
}

/// The audience of a roster event about `code` (its registration, a key change): the
/// committees that can receive what `code` signs, `lineage(code)`. Stores written before the
/// roster was scoped hold such events with `subtree(root)` (everyone), still valid.
fn roster_scope(roster: &Roster, audience: &Kind, code: &str) -> Result<(), Refusal> {
    match audience {
        Kind::Lineage(c) if c == code => Ok(()),
        Kind::Subtree(c) if *c == roster.root => Ok(()),
        _ => Err(deny(format!(
            "a roster event about {code} goes to the committees that can hear from it: audience lineage({code})"
        ))),
    }
}

/// Rotations and revocations: only the parent, about a registered child, to its lineage.
fn key_change(
    roster: &Roster,
    origin: &str,
    audience: &Kind,
    code: &str,
    key: &[u8],
    what: &str,
) -> Result<(), Refusal> {
    crate::event::parse_public_key(&hex::encode(key)).map_err(Refusal::Malformed)?;
    roster_scope(roster, audience, code)?;
    match roster.get(code) {
        Some(m) if m.parent.as_deref() == Some(origin) => Ok(()),
        Some(m) => Err(deny(format!(
            "only {}'s parent {} may {what} it, not {origin}",
            code,
            m.parent.as_deref().unwrap_or(
                "(none: the root's key is the trust anchor, changed in every node's config)"
            )
        ))),
        None => Err(Refusal::UnknownAuthor(format!(
            "{code} is not in the roster yet"
        ))),
    }
}

/// The audience must be `committees` of exactly these codes (in any order, repeats ignored).
fn expect_route(audience: &Kind, codes: &[&str], what: &str) -> Result<(), Refusal> {
    let mut want: Vec<&str> = codes.to_vec();
    want.sort();
    want.dedup();
    let mut got: Vec<&str> = committees(audience)
        .unwrap_or(&[])
        .iter()
        .map(String::as_str)
        .collect();
    got.sort();
    got.dedup();
    if got == want {
        Ok(())
    } else {
        Err(deny(format!(
            "{what} has the audience committees{want:?}, not {audience:?}"
        )))
    }
}

fn registration(
    roster: &Roster,
    origin: &str,
    audience: &Kind,
    reg: &pb::CommitteeRegistered,
) -> Result<(), Refusal> {
    CommitteeCode::parse(&reg.code).map_err(Refusal::Malformed)?;
    let level = Level::from_pb(reg.level)
        .ok_or_else(|| Refusal::Malformed(format!("registration of {} has no level", reg.code)))?;
    crate::event::parse_public_key(&hex::encode(&reg.public_key)).map_err(Refusal::Malformed)?;
    if reg.name.trim().is_empty() {
        return Err(Refusal::Malformed(format!(
            "registration of {} has no name",
            reg.code
        )));
    }
    roster_scope(roster, audience, &reg.code)?;
    if reg.parent.is_empty() {
        // The root registers itself, signed with the trust anchor.
        if reg.code != roster.root || origin != roster.root {
            return Err(deny(format!(
                "only the root {} registers itself; {} has no parent in this registration",
                roster.root, reg.code
            )));
        }
        if reg.public_key != roster.root_key.as_bytes() {
            return Err(deny(
                "the root's registered key differs from the configured trust anchor",
            ));
        }
        return Ok(());
    }
    if reg.parent != origin {
        return Err(deny(format!(
            "{} can only be registered by its parent {}, not by {origin}",
            reg.code, reg.parent
        )));
    }
    let parent = roster
        .get(origin)
        .ok_or_else(|| Refusal::UnknownAuthor(format!("{origin} is not in the roster yet")))?;
    if level <= parent.level {
        return Err(deny(format!(
            "{} ({}) cannot be below {origin} ({})",
            reg.code,
            level.name(),
            parent.level.name()
        )));
    }
    let prefix = match parent.level {
        Level::National => 0,
        Level::Province => 2,
        Level::City => 4,
        Level::County => 6,
    };
    if reg.code[..prefix] != origin[..prefix] {
        return Err(deny(format!(
            "{} is not in the region of {origin}",
            reg.code
        )));
    }
    if let Some(existing) = roster.get(&reg.code) {
        if existing.key.as_bytes() != reg.public_key.as_slice()
            || existing.parent.as_deref() != Some(origin)
        {
            return Err(deny(format!(
                "{} is already registered with another key or parent; key rotation is not supported in this version",
                reg.code
            )));
        }
    }
    Ok(())
}

/// The kinds of a lateral group: its charter and its joint meetings.
pub fn is_group_body(body: &Body) -> bool {
    matches!(
        body,
        Body::GroupCharterProposed(_)
            | Body::GroupCharterEndorsed(_)
            | Body::JointMeetingConvened(_)
            | Body::JointContributionMade(_)
            | Body::JointReportDrafted(_)
            | Body::JointReportCommented(_)
            | Body::JointReportFinalized(_)
            | Body::JointReportSent(_)
            | Body::JointRollupPublished(_)
    )
}

/// The key that verifies `origin`'s event number `seq`. A committee of this tree: its
/// roster key ([`Roster::key_for`]). A committee of another federation has no roster entry
/// and never gets one; it is known only through a lateral group, and only for that group's
/// events (audience `group(g)`):
/// - a member of the charter in force: the key the charter lists for it, for every event;
/// - otherwise a *provisional* key, only for the charter's own events: a proposal is
///   verified against the key it lists for its proposer (for an amendment the fold then
///   checks that key against the charter in force), an endorsement against the key the
///   endorsed proposal lists for the endorser. Anybody can list any key,
///   so a provisional key is accepted only for an event that came `direct`ly: over the
///   author's own lateral link (its TLS certificate, from the CA configured for that peer,
///   names it), or from this node's parent, which accepted it so. Otherwise a third party
///   could sign "its" events and get it blamed for equivocation. A provisional key gives
///   nothing by itself: the charter takes effect only once every member it lists, this
///   federation's root included, has endorsed it.
///
/// "Not yet" (the charter or proposal has not arrived or taken effect here, or the event
/// came the long way round) is [`Refusal::AwaitingCharter`], which the node retries when
/// the group's charter changes.
pub fn verifying_key(
    roster: &Roster,
    origin: &str,
    seq: u64,
    audience: &Kind,
    body: Option<&Body>,
    direct: bool,
) -> Result<ed25519_dalek::VerifyingKey, Refusal> {
    let group = match audience {
        Kind::Group(g) if !roster.knows(origin) => g,
        _ => return roster.key_for(origin, seq).copied(),
    };
    let g = group.group_id.as_str();
    if let Some(key) = roster.group_key(g, origin) {
        return Ok(*key);
    }
    let not_yet = |what: &str| Refusal::AwaitingCharter(format!("{origin} in group {g}: {what}"));
    let provisional = match body {
        Some(Body::GroupCharterProposed(p)) => {
            let m = p.members.iter().find(|m| m.code == origin).ok_or_else(|| {
                Refusal::Unauthorized(format!(
                    "a charter proposal must list its proposer {origin}"
                ))
            })?;
            crate::event::parse_public_key(&hex::encode(&m.public_key))
                .map_err(|e| Refusal::Malformed(format!("the key listed for {origin}: {e}")))?
        }
        Some(Body::GroupCharterEndorsed(e)) => *roster
            .proposal_key(g, &hex::encode(&e.digest), origin)
            .ok_or_else(|| {
                not_yet("the endorsed proposal, listing this endorser, has not arrived here (yet)")
            })?,
        _ => {
            return Err(not_yet(
                "not a member of the charter in force here (or no charter is in force here yet)",
            ))
        }
    };
    if !direct {
        return Err(not_yet(
            "not yet a member in force, so its charter events are taken only from its own link (or from this node's parent)",
        ));
    }
    Ok(provisional)
}

/// 协作组 and 联席会议: the stateless rules. Members are the roots of their federations.
/// The charter's own events go to `group(g, include_subtrees, charter)`; every other group
/// event to `group(g)` without `charter`, by a member of the charter in force (a committee of
/// this tree can only be one if it is this federation's root). The host of a meeting must be
/// the one the charter in force names for its year. The fold checks the rest (who drafts,
/// who revises what, versions, the audience repeated).
fn lateral_group(
    roster: &Roster,
    origin: &str,
    audience: &Kind,
    body: &Body,
) -> Result<(), Refusal> {
    let Kind::Group(aud) = audience else {
        return Err(deny(format!(
            "{} is a lateral group's event: its audience is group(..)",
            crate::event::kind_name(body)
        )));
    };
    let charter_route = |g: &str| -> Result<(), Refusal> {
        if aud.group_id == g && aud.include_subtrees && aud.charter {
            Ok(())
        } else {
            Err(deny(format!(
                "a charter's events go to every member's whole tree: audience group({g}) with include_subtrees and charter"
            )))
        }
    };
    match body {
        Body::GroupCharterProposed(p) => {
            super::record::group::check_group_id(&p.group_id).map_err(Refusal::Malformed)?;
            charter_route(&p.group_id)?;
            charter_content(roster, origin, p)
        }
        Body::GroupCharterEndorsed(e) => {
            super::record::group::check_group_id(&e.group_id).map_err(Refusal::Malformed)?;
            charter_route(&e.group_id)?;
            if e.digest.len() != 32 || e.version == 0 {
                return Err(Refusal::Malformed(
                    "an endorsement names a charter version and its 32-byte digest".into(),
                ));
            }
            if roster.knows(origin) && origin != roster.root {
                return Err(deny(format!(
                    "only the root {} endorses a charter for this federation, not {origin}",
                    roster.root
                )));
            }
            Ok(())
        }
        _ => {
            if aud.charter {
                return Err(deny(
                    "only a charter's own events use the charter audience; a group's other events go to the members in force",
                ));
            }
            let g = aud.group_id.as_str();
            super::record::group::check_group_id(g).map_err(Refusal::Malformed)?;
            let Some(charter) = roster.group(g).and_then(|x| x.in_force.as_ref()) else {
                return Err(Refusal::AwaitingCharter(format!(
                    "no charter of group {g} is in force here (yet)"
                )));
            };
            if !charter.members.contains_key(origin) {
                return Err(deny(format!(
                    "{origin} is not a member of group {g} (charter version {})",
                    charter.version
                )));
            }
            let uuid = |b: &[u8], f: &str| uuid_field(b, f).map(|_| ()).map_err(Refusal::Malformed);
            match body {
                Body::JointMeetingConvened(m) => {
                    uuid(&m.meeting_id, "meeting_id")?;
                    if m.group_id != g {
                        return Err(deny(format!(
                            "a meeting of group {} goes to group({}), not group({g})",
                            m.group_id, m.group_id
                        )));
                    }
                    if m.theme.trim().is_empty() {
                        return Err(Refusal::Malformed("a joint meeting needs its theme".into()));
                    }
                    match charter.hosts.get(&m.year) {
                        Some(host) if host == origin => Ok(()),
                        Some(host) => Err(deny(format!(
                            "the host of group {g} in {} is {host}, not {origin}",
                            m.year
                        ))),
                        None => Err(Refusal::AwaitingCharter(format!(
                            "the charter of group {g} in force here (version {}) names no host for {}",
                            charter.version, m.year
                        ))),
                    }
                }
                Body::JointContributionMade(c) => {
                    uuid(&c.meeting_id, "meeting_id")?;
                    uuid(&c.contribution_id, "contribution_id")
                }
                Body::JointReportDrafted(pb::JointReportDrafted { meeting_id, .. })
                | Body::JointReportCommented(pb::JointReportCommented { meeting_id, .. })
                | Body::JointReportFinalized(pb::JointReportFinalized { meeting_id, .. })
                | Body::JointReportSent(pb::JointReportSent { meeting_id, .. }) => {
                    uuid(meeting_id, "meeting_id")
                }
                Body::JointRollupPublished(r) => {
                    uuid(&r.meeting_id, "meeting_id")?;
                    uuid(&r.topic_id, "topic_id")?;
                    if r.progress_permille > 1000 {
                        return Err(Refusal::Malformed(format!(
                            "progress is per mille (0..=1000), not {}",
                            r.progress_permille
                        )));
                    }
                    Ok(())
                }
                _ => Err(deny("not a lateral group event")),
            }
        }
    }
}

/// What a charter proposal must say, whatever the state of the group.
fn charter_content(
    roster: &Roster,
    origin: &str,
    p: &pb::GroupCharterProposed,
) -> Result<(), Refusal> {
    let bad = |m: String| Refusal::Malformed(m);
    if p.name.trim().is_empty() {
        return Err(bad(format!("the charter of {} has no name", p.group_id)));
    }
    match (p.version, p.amends.len()) {
        (0, _) => return Err(bad("charter versions count from 1".into())),
        (1, 0) | (2.., 32) => {}
        (1, _) => return Err(bad("version 1 founds the group: it amends nothing".into())),
        (v, _) => {
            return Err(bad(format!(
                "version {v} names the 32-byte digest of the version it amends"
            )))
        }
    }
    if p.members.len() < 2 {
        return Err(bad("a lateral group has at least two members".into()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in &p.members {
        CommitteeCode::parse(&m.code).map_err(bad)?;
        if Level::implied_by(&m.code) != Level::Province {
            return Err(deny(format!(
                "{} is not a province: a lateral group links provincial committees, each the root of its own federation",
                m.code
            )));
        }
        if !seen.insert(m.code.as_str()) {
            return Err(bad(format!("{} is listed twice", m.code)));
        }
        crate::event::parse_public_key(&hex::encode(&m.public_key))
            .map_err(|e| bad(format!("the key of {}: {e}", m.code)))?;
        if m.code == roster.root && m.public_key != roster.root_key.as_bytes() {
            return Err(deny(format!(
                "the charter lists {} with a key that is not this federation's trust anchor",
                m.code
            )));
        }
        if m.code != roster.root && roster.knows(&m.code) {
            return Err(deny(format!(
                "{} is inside this federation; a lateral group links the roots of separate federations",
                m.code
            )));
        }
    }
    if !seen.contains(origin) {
        return Err(deny(format!(
            "{origin} proposes a charter that does not list it"
        )));
    }
    if roster.knows(origin) && origin != roster.root {
        return Err(deny(format!(
            "only the root {} proposes a charter for this federation, not {origin}",
            roster.root
        )));
    }
    let mut years = std::collections::BTreeSet::new();
    for t in &p.hosts {
        if !(2000..=2200).contains(&t.year) || !years.insert(t.year) {
            return Err(bad(format!(
                "host year {} is out of range or listed twice",
                t.year
            )));
        }
        if !seen.contains(t.code.as_str()) {
            return Err(deny(format!(
                "the host of {} ({}) is not a member",
                t.year, t.code
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // The rows below test each kind's rules with ids of any origin; who must have minted
    // each id is tested on its own (`every_id_is_minted_by_its_owner`).
    use super::rules as authorize;
    use super::*;
    use crate::domain::roster::tests::gansu;
    use crate::pb::CommitteeList;

    fn to(codes: &[&str]) -> Kind {
        Kind::Committees(CommitteeList {
            codes: codes.iter().map(|c| c.to_string()).collect(),
        })
    }
    fn id() -> Vec<u8> {
        uuid::Uuid::now_v7().as_bytes().to_vec()
    }
    fn issue(assignee: &str, owner: &str, parent: Vec<u8>) -> Body {
        Body::AssignmentIssued(pb::AssignmentIssued {
            assignment_id: id(),
            topic_id: id(),
            parent_assignment_id: parent,
            assignee: assignee.into(),
            topic_owner: owner.into(),
            ..Default::default()
        })
    }

    #[test]
    fn assignments_go_down_from_the_right_committee() {
        let r = gansu();
        assert!(authorize(
            &r,
            "620000",
            &to(&["620100", "620000"]),
            &issue("620100", "620000", vec![])
        )
        .is_ok());
        // the city splits its own assignment for a county
        assert!(authorize(
            &r,
            "620100",
            &to(&["620123", "620000"]),
            &issue("620123", "620000", id())
        )
        .is_ok());
        // a county cannot assign upwards, a city not to another city's county
        assert!(authorize(
            &r,
            "620123",
            &to(&["620100", "620000"]),
            &issue("620100", "620000", id())
        )
        .is_err());
        assert!(authorize(
            &r,
            "620100",
            &to(&["620421", "620000"]),
            &issue("620421", "620000", id())
        )
        .is_err());
        // a city cannot issue top-level assignments of the province's topic
        assert!(authorize(
            &r,
            "620100",
            &to(&["620123", "620000"]),
            &issue("620123", "620000", vec![])
        )
        .is_err());
        // the audience must be the assignee and the topic owner
        assert!(authorize(
            &r,
            "620000",
            &Kind::Subtree("620000".into()),
            &issue("620100", "620000", vec![])
        )
        .is_err());
    }

    #[test]
    fn a_node_checks_the_committees_it_can_place_and_leaves_the_others_to_their_branch() {
        // 兰州市's view of the roster: its lineage only (the province, itself, its counties).
        let full = gansu();
        let mut lanzhou = Roster::new("620000", full.root_key);
        for m in full
            .members()
            .filter(|m| full.in_lineage(&m.code, "620100"))
        {
            lanzhou.insert(m.clone());
        }
        let g = Body::GuidanceIssued(pb::GuidanceIssued {
            guidance_id: id(),
            ..Default::default()
        });
        // The province's notice to a county of each city passes at 兰州市, which relays one
        // of them and cannot place the other (白银市's county is checked in 白银市's branch).
        let both = to(&["620123", "620421"]);
        assert!(authorize(&lanzhou, "620000", &both, &g).is_ok());
        assert!(authorize(&full, "620000", &both, &g).is_ok());
        // What 兰州市 can place it still checks: guidance does not go up to the province.
        assert!(authorize(&lanzhou, "620123", &to(&["620100"]), &g).is_err());
        // And a node that knows the whole tree refuses another city's county as a target.
        assert!(authorize(&full, "620100", &to(&["620421"]), &g).is_err());
    }

    #[test]
    fn guidance_goes_down_and_reports_go_up() {
        let r = gansu();
        let g = Body::GuidanceIssued(pb::GuidanceIssued {
            guidance_id: id(),
            ..Default::default()
        });
        assert!(authorize(&r, "620100", &Kind::Subtree("620100".into()), &g).is_ok());
        assert!(authorize(&r, "620100", &to(&["620123"]), &g).is_ok());
        assert!(
            authorize(&r, "620100", &to(&["620421"]), &g).is_err(),
            "another city's county"
        );
        assert!(authorize(&r, "620100", &Kind::Subtree("620000".into()), &g).is_err());
        let rep = |to: &str| {
            Body::ReportSent(pb::ReportSent {
                report_id: id(),
                to: to.into(),
                ..Default::default()
            })
        };
        assert!(authorize(
            &r,
            "620123",
            &Kind::Ancestors("620000".into()),
            &rep("620000")
        )
        .is_ok());
        assert!(
            authorize(
                &r,
                "620100",
                &Kind::Ancestors("620123".into()),
                &rep("620123")
            )
            .is_err(),
            "downward report"
        );
        assert!(authorize(
            &r,
            "620123",
            &Kind::Subtree("620000".into()),
            &rep("620000")
        )
        .is_err());
    }

    #[test]
    fn only_a_parent_registers_a_child_in_its_region() {
        let r = gansu();
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
        let reg = |code: &str, parent: &str, level: pb::Level| {
            Body::CommitteeRegistered(pb::CommitteeRegistered {
                code: code.into(),
                name: "某县".into(),
                level: level as i32,
                parent: parent.into(),
                public_key: key.as_bytes().to_vec(),
            })
        };
        let all = Kind::Subtree("620000".into());
        assert!(authorize(
            &r,
            "620100",
            &all,
            &reg("620122", "620100", pb::Level::County)
        )
        .is_ok());
        assert!(
            authorize(
                &r,
                "620400",
                &all,
                &reg("620122", "620100", pb::Level::County)
            )
            .is_err(),
            "not the parent"
        );
        assert!(
            authorize(
                &r,
                "620100",
                &all,
                &reg("620423", "620100", pb::Level::County)
            )
            .is_err(),
            "not its region"
        );
        assert!(
            authorize(
                &r,
                "620100",
                &all,
                &reg("620122", "620100", pb::Level::City)
            )
            .is_err(),
            "same level"
        );
        assert!(authorize(
            &r,
            "620100",
            &to(&["620122"]),
            &reg("620122", "620100", pb::Level::County)
        )
        .is_err());
        // re-registering an existing committee with a different key is refused
        assert!(authorize(
            &r,
            "620100",
            &all,
            &reg("620123", "620100", pb::Level::County)
        )
        .is_err());
    }

    /// docs/security.md, table "Authorization": each stateless row, allowed and refused.
    #[test]
    fn the_authorization_table_row_by_row() {
        let r = gansu();
        let all = Kind::Subtree("620000".into());
        let key = |seed: u8| {
            ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
                .verifying_key()
                .as_bytes()
                .to_vec()
        };
        let reg = |code: &str, parent: &str, level: pb::Level| {
            Body::CommitteeRegistered(pb::CommitteeRegistered {
                code: code.into(),
                name: "某县政协".into(),
                level: level as i32,
                parent: parent.into(),
                public_key: key(9),
            })
        };
        let rotate = |code: &str| {
            Body::CommitteeKeyRotated(pb::CommitteeKeyRotated {
                code: code.into(),
                public_key: key(10),
                from_seq: 4,
                chain_seq: 3,
                chain_hash: vec![0; 32],
            })
        };
        let revoke = |code: &str, k: Vec<u8>| {
            Body::CommitteeKeyRevoked(pb::CommitteeKeyRevoked {
                code: code.into(),
                public_key: k,
                valid_through_seq: 3,
                reason: "被盗".into(),
            })
        };
        let topic = |t: fn(pb::TopicPublished) -> Body| {
            t(pb::TopicPublished {
                topic_id: id(),
                content: None,
            })
        };
        let draft = Body::TopicDrafted(pb::TopicDrafted {
            topic_id: id(),
            content: None,
        });
        let guidance = Body::GuidanceIssued(pb::GuidanceIssued {
            guidance_id: id(),
            ..Default::default()
        });
        let g_ack = |issuer: &str| {
            Body::GuidanceAcknowledged(pb::GuidanceAcknowledged {
                guidance_id: id(),
                issuer: issuer.into(),
            })
        };
        let report = |to: &str| {
            Body::ReportSent(pb::ReportSent {
                report_id: id(),
                to: to.into(),
                ..Default::default()
            })
        };
        let r_ack = |sender: &str| {
            Body::ReportAcknowledged(pb::ReportAcknowledged {
                report_id: id(),
                sender: sender.into(),
            })
        };
        let follow = Body::AssignmentAcknowledged(pb::AssignmentAcknowledged {
            assignment_id: id(),
        });
        let county_key = r
            .get("620123")
            .map(|m| m.key.as_bytes().to_vec())
            .unwrap_or_default();

        // (row, author, audience, body, allowed)
        let cases: Vec<(&str, &str, Kind, Body, bool)> = vec![
            (
                "registered",
                "620100",
                all.clone(),
                reg("620122", "620100", pb::Level::County),
                true,
            ),
            (
                "registered: not the parent",
                "620000",
                all.clone(),
                reg("620122", "620100", pb::Level::County),
                false,
            ),
            (
                "registered: outside the region",
                "620100",
                all.clone(),
                reg("620421", "620100", pb::Level::County),
                false,
            ),
            (
                "registered: not below",
                "620100",
                all.clone(),
                reg("620101", "620100", pb::Level::City),
                false,
            ),
            (
                "registered: not federation-wide",
                "620100",
                Kind::Subtree("620100".into()),
                reg("620122", "620100", pb::Level::County),
                false,
            ),
            ("rotated", "620100", all.clone(), rotate("620123"), true),
            (
                "rotated: not the parent",
                "620000",
                all.clone(),
                rotate("620123"),
                false,
            ),
            (
                "rotated: a county by another city",
                "620400",
                all.clone(),
                rotate("620123"),
                false,
            ),
            (
                "revoked",
                "620100",
                all.clone(),
                revoke("620123", county_key.clone()),
                true,
            ),
            (
                "revoked: a key it never had",
                "620100",
                all.clone(),
                revoke("620123", key(11)),
                false,
            ),
            (
                "revoked: by the child itself",
                "620123",
                all.clone(),
                revoke("620123", county_key),
                false,
            ),
            ("drafted", "620123", to(&["620123"]), draft.clone(), true),
            (
                "drafted: shown to others",
                "620123",
                to(&["620123", "620100"]),
                draft,
                false,
            ),
            (
                "published",
                "620000",
                all.clone(),
                topic(Body::TopicPublished),
                true,
            ),
            (
                "published: a county publishing to the province",
                "620123",
                all.clone(),
                topic(Body::TopicPublished),
                false,
            ),
            (
                "concluded: a city to the province's subtree",
                "620100",
                all.clone(),
                topic(|t| {
                    Body::TopicConcluded(pb::TopicConcluded {
                        topic_id: t.topic_id,
                        summary: String::new(),
                    })
                }),
                false,
            ),
            (
                "issued",
                "620000",
                to(&["620100", "620000"]),
                issue("620100", "620000", vec![]),
                true,
            ),
            (
                "issued: split by the city",
                "620100",
                to(&["620123", "620000"]),
                issue("620123", "620000", id()),
                true,
            ),
            (
                "issued: upwards",
                "620123",
                to(&["620100", "620000"]),
                issue("620100", "620000", id()),
                false,
            ),
            (
                "issued: to another city's county",
                "620100",
                to(&["620421", "620000"]),
                issue("620421", "620000", id()),
                false,
            ),
            (
                "issued: top level by a non-owner",
                "620100",
                to(&["620123", "620000"]),
                issue("620123", "620000", vec![]),
                false,
            ),
            (
                "follow-up",
                "620123",
                to(&["620123", "620000"]),
                follow.clone(),
                true,
            ),
            ("follow-up: broadcast", "620123", all.clone(), follow, false),
            (
                "guidance",
                "620100",
                Kind::Subtree("620100".into()),
                guidance.clone(),
                true,
            ),
            (
                "guidance: named below",
                "620100",
                to(&["620123", "620121"]),
                guidance.clone(),
                true,
            ),
            (
                "guidance: another city's county",
                "620100",
                to(&["620421"]),
                guidance.clone(),
                false,
            ),
            (
                "guidance: upwards",
                "620100",
                Kind::Subtree("620000".into()),
                guidance,
                false,
            ),
            (
                "guidance ack",
                "620123",
                to(&["620000"]),
                g_ack("620000"),
                true,
            ),
            (
                "guidance ack: of a sibling's notice",
                "620123",
                to(&["620121"]),
                g_ack("620121"),
                false,
            ),
            (
                "report",
                "620421",
                Kind::Ancestors("620000".into()),
                report("620000"),
                true,
            ),
            (
                "report: downward",
                "620100",
                Kind::Ancestors("620123".into()),
                report("620123"),
                false,
            ),
            (
                "report: sideways",
                "620123",
                Kind::Ancestors("620400".into()),
                report("620400"),
                false,
            ),
            (
                "report ack",
                "620000",
                to(&["620421"]),
                r_ack("620421"),
                true,
            ),
            (
                "report ack: by a non-ancestor",
                "620100",
                to(&["620421"]),
                r_ack("620421"),
                false,
            ),
        ];
        for (row, author, aud, body, allowed) in cases {
            let got = authorize(&r, author, &aud, &body);
            assert_eq!(got.is_ok(), allowed, "{row}: {got:?}");
            if let Err(e) = got {
                assert!(!e.to_string().is_empty(), "{row}: a refusal says why");
            }
        }
    }

    /// The consultation cycle's rows (issue 4A): who may author each kind, to which audience.
    #[test]
    fn the_consultation_cycle_rows() {
        let r = gansu();
        let up = |c: &str| Kind::Ancestors(c.into());
        let sub = |c: &str| Kind::Subtree(c.into());
        let proposal = |to: &str| {
            Body::TopicProposalSubmitted(pb::TopicProposalSubmitted {
                proposal_id: id(),
                to: to.into(),
                ..Default::default()
            })
        };
        let decided = |proposer: &str| {
            Body::TopicProposalDecided(pb::TopicProposalDecided {
                proposal_id: id(),
                proposer: proposer.into(),
                ..Default::default()
            })
        };
        let plan = |committee: &str, year: u32| {
            Body::PlanEntrySet(pb::PlanEntrySet {
                committee: committee.into(),
                year,
                topic_id: id(),
                ..Default::default()
            })
        };
        let meeting = |participants: &[&str]| {
            Body::MeetingScheduled(pb::MeetingScheduled {
                meeting_id: id(),
                topic_id: id(),
                participants: participants.iter().map(|c| c.to_string()).collect(),
                ..Default::default()
            })
        };
        let contribution = |owner: &str| {
            Body::MeetingContributionSubmitted(pb::MeetingContributionSubmitted {
                contribution_id: id(),
                meeting_id: id(),
                meeting_owner: owner.into(),
                version: 1,
                ..Default::default()
            })
        };
        let handled = Body::RecommendationHandled(pb::RecommendationHandled {
            recommendation_id: id(),
            ..Default::default()
        });
        let evaluation = |owner: &str| {
            Body::EvaluationRecorded(pb::EvaluationRecorded {
                evaluation_id: id(),
                topic_id: id(),
                topic_owner: owner.into(),
                ..Default::default()
            })
        };
        let publication = Body::PublicationIssued(pb::PublicationIssued {
            publication_id: id(),
            topic_id: id(),
            ..Default::default()
        });
        let cases: Vec<(&str, &str, Kind, Body, bool)> = vec![
            (
                "proposal up",
                "620123",
                up("620000"),
                proposal("620000"),
                true,
            ),
            (
                "proposal to itself",
                "620123",
                to(&["620123"]),
                proposal("620123"),
                true,
            ),
            (
                "proposal down",
                "620100",
                up("620123"),
                proposal("620123"),
                false,
            ),
            (
                "proposal to a sibling's city",
                "620123",
                up("620400"),
                proposal("620400"),
                false,
            ),
            (
                "proposal: audience short of `to`",
                "620123",
                up("620100"),
                proposal("620000"),
                false,
            ),
            (
                "decision back down",
                "620000",
                to(&["620123"]),
                decided("620123"),
                true,
            ),
            (
                "decision of its own",
                "620123",
                to(&["620123"]),
                decided("620123"),
                true,
            ),
            (
                "decision by a sibling city",
                "620400",
                to(&["620123"]),
                decided("620123"),
                false,
            ),
            (
                "decision: subtree audience",
                "620000",
                sub("620000"),
                decided("620123"),
                false,
            ),
            (
                "plan entry",
                "620123",
                up("620000"),
                plan("620123", 2026),
                true,
            ),
            (
                "plan of another committee",
                "620100",
                up("620000"),
                plan("620123", 2026),
                false,
            ),
            (
                "plan not up to the root",
                "620123",
                up("620100"),
                plan("620123", 2026),
                false,
            ),
            (
                "plan of year 0",
                "620123",
                up("620000"),
                plan("620123", 0),
                false,
            ),
            (
                "meeting",
                "620000",
                sub("620000"),
                meeting(&["620100", "620400"]),
                true,
            ),
            (
                "meeting: participant outside",
                "620100",
                sub("620100"),
                meeting(&["620421"]),
                false,
            ),
            (
                "meeting: audience of another",
                "620100",
                sub("620000"),
                meeting(&[]),
                false,
            ),
            (
                "contribution up",
                "620100",
                up("620000"),
                contribution("620000"),
                true,
            ),
            (
                "contribution by the organiser",
                "620000",
                up("620000"),
                contribution("620000"),
                true,
            ),
            (
                "contribution to a meeting below",
                "620000",
                up("620100"),
                contribution("620100"),
                false,
            ),
            (
                "contribution: wrong audience",
                "620100",
                sub("620100"),
                contribution("620000"),
                false,
            ),
            (
                "recommendation follow-up",
                "620000",
                sub("620000"),
                handled.clone(),
                true,
            ),
            (
                "recommendation to another subtree",
                "620100",
                sub("620000"),
                handled,
                false,
            ),
            (
                "evaluation",
                "620000",
                to(&["620123"]),
                evaluation("620123"),
                true,
            ),
            (
                "evaluation: not routed to the owner",
                "620000",
                to(&["620100"]),
                evaluation("620123"),
                false,
            ),
            (
                "publication to its subtree",
                "620100",
                sub("620100"),
                publication.clone(),
                true,
            ),
            (
                "publication to named committees",
                "620100",
                to(&["620400", "620421"]),
                publication.clone(),
                true,
            ),
            (
                "publication up",
                "620123",
                up("620000"),
                publication.clone(),
                true,
            ),
            (
                "publication to another subtree",
                "620100",
                sub("620000"),
                publication.clone(),
                false,
            ),
            (
                "publication to an unknown committee",
                "620100",
                to(&["629999"]),
                publication,
                false,
            ),
        ];
        for (row, author, audience, body, allowed) in cases {
            let got = authorize(&r, author, &audience, &body);
            assert_eq!(got.is_ok(), allowed, "{row}: {got:?}");
            if let Err(e) = got {
                assert!(!e.to_string().is_empty(), "{row}: a refusal says why");
            }
        }
    }

    fn group_aud(g: &str, include_subtrees: bool, charter: bool) -> Kind {
        Kind::Group(pb::GroupAudience {
            group_id: g.into(),
            include_subtrees,
            charter,
        })
    }

    /// The lateral group rows: who may author a group's events, to which audience, and
    /// which key verifies a committee of another federation.
    #[test]
    fn lateral_group_rows() {
        use crate::domain::record::group::tests::{key, proposal};
        let r = crate::domain::roster::tests::gansu_with_groups();
        let yr = "yellow-river-9";
        let meeting = |year: u32| {
            Body::JointMeetingConvened(pb::JointMeetingConvened {
                meeting_id: id(),
                group_id: yr.into(),
                year,
                theme: "黄河流域生态保护".into(),
                ..Default::default()
            })
        };
        let rollup = Body::JointRollupPublished(pb::JointRollupPublished {
            meeting_id: id(),
            topic_id: id(),
            progress_permille: 500,
            ..Default::default()
        });
        let v1 = proposal(1, &[], &["620000", "630000", "640000"]);
        let mut wrong_anchor = v1.clone();
        wrong_anchor.members[0].public_key = key(9);
        let mut inside = v1.clone();
        inside.members.push(pb::GroupMember {
            code: "620100".into(),
            name: "兰州市政协".into(),
            public_key: key(2),
        });
        let endorse = Body::GroupCharterEndorsed(pb::GroupCharterEndorsed {
            group_id: yr.into(),
            version: 1,
            digest: vec![7; 32],
        });
        let published = Body::TopicPublished(pb::TopicPublished {
            topic_id: id(),
            content: None,
        });
        let cases: Vec<(&str, &str, Kind, Body, bool)> = vec![
            (
                "the host convenes its year",
                "640000",
                group_aud(yr, false, false),
                meeting(2026),
                true,
            ),
            (
                "another member may not convene the host's year",
                "630000",
                group_aud(yr, false, false),
                meeting(2026),
                false,
            ),
            (
                "no host named for that year (yet)",
                "640000",
                group_aud(yr, false, false),
                meeting(2030),
                false,
            ),
            (
                "a member's roll-up",
                "620000",
                group_aud(yr, false, false),
                rollup.clone(),
                true,
            ),
            (
                "a roll-up of a group not in force",
                "620000",
                group_aud("northwest-5", false, false),
                rollup.clone(),
                false,
            ),
            (
                "a city of a member's tree is not a member",
                "620100",
                group_aud(yr, true, false),
                rollup.clone(),
                false,
            ),
            (
                "a group event to a tree audience",
                "620000",
                Kind::Subtree("620000".into()),
                rollup.clone(),
                false,
            ),
            (
                "a meeting event with the charter audience",
                "620000",
                group_aud(yr, false, true),
                rollup.clone(),
                false,
            ),
            (
                "a foreign member's tree event",
                "640000",
                Kind::Subtree("640000".into()),
                published.clone(),
                false,
            ),
            (
                "a foreign member's topic to the group",
                "640000",
                group_aud(yr, false, false),
                published,
                false,
            ),
            (
                "the root proposes a charter",
                "620000",
                group_aud(yr, true, true),
                Body::GroupCharterProposed(v1.clone()),
                true,
            ),
            (
                "a charter without subtrees",
                "620000",
                group_aud(yr, false, true),
                Body::GroupCharterProposed(v1.clone()),
                false,
            ),
            (
                "a charter listing our root with another key",
                "640000",
                group_aud(yr, true, true),
                Body::GroupCharterProposed(wrong_anchor),
                false,
            ),
            (
                "a charter listing a city of this tree",
                "620000",
                group_aud(yr, true, true),
                Body::GroupCharterProposed(inside),
                false,
            ),
            (
                "a city proposes for its federation",
                "620100",
                group_aud(yr, true, true),
                Body::GroupCharterProposed(proposal(1, &[], &["620100", "630000"])),
                false,
            ),
            (
                "the root endorses",
                "620000",
                group_aud(yr, true, true),
                endorse.clone(),
                true,
            ),
            (
                "a city endorses",
                "620100",
                group_aud(yr, true, true),
                endorse,
                false,
            ),
        ];
        for (row, author, audience, body, allowed) in cases {
            let got = authorize(&r, author, &audience, &body);
            assert_eq!(got.is_ok(), allowed, "{row}: {got:?}");
        }

        // Keys: a member in force signs with the charter's key, for group events only.
        let aud = group_aud(yr, false, false);
        let ningxia = ed25519_dalek::SigningKey::from_bytes(&[64; 32]).verifying_key();
        assert_eq!(
            verifying_key(&r, "640000", 5, &aud, Some(&rollup), false),
            Ok(ningxia)
        );
        assert!(matches!(
            verifying_key(&r, "640000", 5, &Kind::Subtree("640000".into()), None, true),
            Err(Refusal::UnknownAuthor(_))
        ));
        // Shaanxi is only proposed: its provisional key (the one a proposal lists) counts
        // only when the event comes straight from it.
        let mut v2 = proposal(2, &[1; 32], &["620000", "630000", "640000", "610000"]);
        let shaanxi = ed25519_dalek::SigningKey::from_bytes(&[61; 32]).verifying_key();
        let charter = group_aud(yr, true, true);
        let by_shaanxi = {
            v2.members.retain(|m| m.code != "620000");
            v2.members.insert(
                0,
                pb::GroupMember {
                    code: "620000".into(),
                    name: "甘肃省政协".into(),
                    public_key: key(1),
                },
            );
            Body::GroupCharterProposed(v2)
        };
        assert_eq!(
            verifying_key(&r, "610000", 1, &charter, Some(&by_shaanxi), true),
            Ok(shaanxi)
        );
        assert!(matches!(
            verifying_key(&r, "610000", 1, &charter, Some(&by_shaanxi), false),
            Err(Refusal::AwaitingCharter(_))
        ));
        assert!(matches!(
            verifying_key(&r, "610000", 2, &aud, Some(&rollup), true),
            Err(Refusal::AwaitingCharter(_))
        ));
    }

    /// Who must have minted each id (the "ids minted by" column of docs/security.md): an
    /// event naming a record id that another committee minted is refused, whatever its clock.
    #[test]
    fn every_id_is_minted_by_its_owner() {
        use crate::domain::ids;
        let by = |code: &str| ids::new(code).as_bytes().to_vec();
        let ok = |origin: &str, body: Body| {
            let got = ownership(origin, &body);
            assert!(got.is_ok(), "{origin} {body:?}: {got:?}");
        };
        let refused = |origin: &str, body: Body, field: &str| match ownership(origin, &body) {
            Err(Refusal::Unauthorized(why)) => assert!(why.contains(field), "{why}"),
            other => panic!("{origin} {body:?} should be refused for {field}: {other:?}"),
        };
        let topic = |id: Vec<u8>| {
            Body::TopicPublished(pb::TopicPublished {
                topic_id: id,
                content: None,
            })
        };
        ok("620000", topic(by("620000")));
        refused("620100", topic(by("620000")), "topic_id");
        refused(
            "620100",
            topic(ids::mint("62x", uuid::Uuid::now_v7()).as_bytes().to_vec()),
            "no committee",
        );
        let issue = |aid: Vec<u8>, tid: Vec<u8>, owner: &str| {
            Body::AssignmentIssued(pb::AssignmentIssued {
                assignment_id: aid,
                topic_id: tid,
                topic_owner: owner.into(),
                ..Default::default()
            })
        };
        ok("620100", issue(by("620100"), by("620000"), "620000"));
        refused(
            "620400",
            issue(by("620100"), by("620000"), "620000"),
            "assignment_id",
        );
        refused(
            "620100",
            issue(by("620100"), by("620400"), "620000"),
            "topic_id",
        );
        // only the assigner reviews or cancels; the assignee submits its own submissions
        let review = |aid: Vec<u8>| {
            Body::ReviewRecorded(pb::ReviewRecorded {
                assignment_id: aid,
                submission_id: by("620123"),
                ..Default::default()
            })
        };
        ok("620100", review(by("620100")));
        refused("620123", review(by("620100")), "assignment_id");
        let cancel = Body::AssignmentCancelled(pb::AssignmentCancelled {
            assignment_id: by("620100"),
            ..Default::default()
        });
        refused("620000", cancel, "assignment_id");
        let submit = |sid: Vec<u8>| {
            Body::SubmissionMade(pb::SubmissionMade {
                assignment_id: by("620100"),
                submission_id: sid,
                ..Default::default()
            })
        };
        ok("620123", submit(by("620123")));
        refused("620123", submit(by("620121")), "submission_id");
        ok(
            "620123",
            Body::AssignmentAcknowledged(pb::AssignmentAcknowledged {
                assignment_id: by("620100"),
            }),
        );
        // notices: the issuer's or sender's id, acknowledged under that id
        let guidance = |gid: Vec<u8>| {
            Body::GuidanceIssued(pb::GuidanceIssued {
                guidance_id: gid,
                ..Default::default()
            })
        };
        ok("620100", guidance(by("620100")));
        refused("620123", guidance(by("620100")), "guidance_id");
        let g_ack = |issuer: &str| {
            Body::GuidanceAcknowledged(pb::GuidanceAcknowledged {
                guidance_id: by("620100"),
                issuer: issuer.into(),
            })
        };
        ok("620123", g_ack("620100"));
        refused("620123", g_ack("620000"), "guidance_id");
        let r_ack = |sender: &str| {
            Body::ReportAcknowledged(pb::ReportAcknowledged {
                report_id: by("620123"),
                sender: sender.into(),
            })
        };
        ok("620000", r_ack("620123"));
        refused("620000", r_ack("620121"), "report_id");
        // the consultation cycle
        let decided = |pid: Vec<u8>, tid: Vec<u8>| {
            Body::TopicProposalDecided(pb::TopicProposalDecided {
                proposal_id: pid,
                proposer: "620123".into(),
                topic_id: tid,
                ..Default::default()
            })
        };
        ok("620000", decided(by("620123"), by("620000")));
        ok("620000", decided(by("620123"), vec![]));
        refused("620000", decided(by("620121"), vec![]), "proposal_id");
        refused("620000", decided(by("620123"), by("620100")), "topic_id");
        let meeting = |mid: Vec<u8>, tid: Vec<u8>| {
            Body::MeetingScheduled(pb::MeetingScheduled {
                meeting_id: mid,
                topic_id: tid,
                ..Default::default()
            })
        };
        ok("620000", meeting(by("620000"), by("620000")));
        refused("620100", meeting(by("620100"), by("620000")), "topic_id");
        let contribution = |owner: &str| {
            Body::MeetingContributionSubmitted(pb::MeetingContributionSubmitted {
                contribution_id: by("620100"),
                meeting_id: by("620000"),
                meeting_owner: owner.into(),
                ..Default::default()
            })
        };
        ok("620100", contribution("620000"));
        refused("620100", contribution("620400"), "meeting_id");
        let handled = |rid: Vec<u8>| {
            Body::RecommendationHandled(pb::RecommendationHandled {
                recommendation_id: rid,
                ..Default::default()
            })
        };
        ok("620000", handled(by("620000")));
        refused("620100", handled(by("620000")), "recommendation_id");
        let round = |added: Vec<u8>| {
            Body::ReConsultationHeld(pb::ReConsultationHeld {
                round_id: by("620000"),
                topic_id: by("620000"),
                added: vec![added],
                ..Default::default()
            })
        };
        ok("620000", round(by("620000")));
        refused("620000", round(by("620100")), "recommendation id");
        let evaluation = |owner: &str| {
            Body::EvaluationRecorded(pb::EvaluationRecorded {
                evaluation_id: by("620100"),
                topic_id: by("620000"),
                topic_owner: owner.into(),
                ..Default::default()
            })
        };
        ok("620100", evaluation("620000"));
        refused("620100", evaluation("620100"), "topic_id");
        // lateral: the host's meeting, the members' own contributions and roll-ups
        let convened = |mid: Vec<u8>| {
            Body::JointMeetingConvened(pb::JointMeetingConvened {
                meeting_id: mid,
                ..Default::default()
            })
        };
        ok("640000", convened(by("640000")));
        refused("620000", convened(by("640000")), "meeting_id");
        let drafted = Body::JointReportDrafted(pb::JointReportDrafted {
            meeting_id: by("640000"),
            ..Default::default()
        });
        refused("620000", drafted, "meeting_id");
        let contributed = |cid: Vec<u8>| {
            Body::JointContributionMade(pb::JointContributionMade {
                meeting_id: by("640000"),
                contribution_id: cid,
                ..Default::default()
            })
        };
        ok("620000", contributed(by("620000")));
        refused("620000", contributed(by("630000")), "contribution_id");
    }
}
