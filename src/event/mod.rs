//! The signed envelope.
//!
//! An author builds a [`pb::Event`], encodes it once with prost and signs exactly those
//! bytes ([`seal`]). Everyone else only ever holds the author's bytes: [`Envelope::open`]
//! decodes them for reading, and [`Envelope::signed_bytes`] gives back the stored frame
//! verbatim, because protobuf encoding is not canonical and a re-encoding could break the
//! signature.
//!
//! Each origin's events form a hash chain: `prev` is the SHA-256 of the origin's previous
//! event bytes. A node that holds an origin's consecutive events checks the link; a node that
//! holds a scoped subset sees holes, which are normal.
pub mod hlc;
pub mod signature;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use prost::Message;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::{ids, CommitteeCode, Refusal};
use crate::pb;

/// SHA-256 of an event's bytes: what `prev` links to.
pub type EventHash = [u8; 32];

/// Largest encoded event accepted (128 KiB). Attachments travel as digests, not bytes.
pub const MAX_EVENT_BYTES: usize = 128 * 1024;

/// A decoded event with the exact bytes it came in.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The author's encoding of `event`, as signed.
    pub event_bytes: Vec<u8>,
    pub signature: [u8; 64],
    pub event: pb::Event,
    pub id: Uuid,
    pub hash: EventHash,
}

impl Envelope {
    /// Decodes a `SignedEvent` frame and checks its structure. Does not check the signature
    /// (that needs the roster): see [`Envelope::verify`].
    pub fn open(frame: &[u8]) -> Result<Envelope, Refusal> {
        if frame.len() > MAX_EVENT_BYTES + 128 {
            return Err(Refusal::Malformed(format!(
                "event frame of {} bytes is over the {} byte limit",
                frame.len(),
                MAX_EVENT_BYTES
            )));
        }
        let signed = pb::SignedEvent::decode(frame)
            .map_err(|e| Refusal::Malformed(format!("not a SignedEvent: {e}")))?;
        Self::from_signed(signed)
    }

    pub fn from_signed(signed: pb::SignedEvent) -> Result<Envelope, Refusal> {
        let signature: [u8; 64] = signed.signature.as_slice().try_into().map_err(|_| {
            Refusal::Malformed(format!(
                "signature is {} bytes, an ed25519 signature is 64",
                signed.signature.len()
            ))
        })?;
        if signed.event.len() > MAX_EVENT_BYTES {
            return Err(Refusal::Malformed(format!(
                "event of {} bytes is over the {} byte limit",
                signed.event.len(),
                MAX_EVENT_BYTES
            )));
        }
        let event = pb::Event::decode(signed.event.as_slice())
            .map_err(|e| Refusal::Malformed(format!("not an Event: {e}")))?;
        let id = Uuid::from_slice(&event.id).map_err(|_| {
            Refusal::Malformed(format!("event id is {} bytes, not 16", event.id.len()))
        })?;
        if id.get_version_num() != 7 {
            return Err(Refusal::Malformed(format!(
                "event id {id} is not a UUID v7"
            )));
        }
        CommitteeCode::parse(&event.origin)
            .map_err(|e| Refusal::Malformed(format!("origin: {e}")))?;
        if !ids::is_minted_by(&id, &event.origin) {
            return Err(Refusal::Malformed(format!(
                "event id {id} does not carry its origin {}'s code: an event's id is minted by its author (domain::ids), so this one was copied or forged",
                event.origin
            )));
        }
        if event.seq == 0 {
            return Err(Refusal::Malformed("seq must start at 1".into()));
        }
        match (event.seq, event.prev.len()) {
            (1, 0) | (2.., 32) => {}
            (1, n) => {
                return Err(Refusal::Malformed(format!(
                "the first event of an origin has no previous hash, but this one carries {n} bytes"
            )))
            }
            (_, n) => {
                return Err(Refusal::Malformed(format!(
                    "prev must be a 32-byte SHA-256, got {n} bytes"
                )))
            }
        }
        if event
            .audience
            .as_ref()
            .and_then(|a| a.kind.as_ref())
            .is_none()
        {
            return Err(Refusal::Malformed("event has no audience".into()));
        }
        // An empty body is a kind from a newer version (prost skips unknown fields): it is
        // kept and forwarded by its audience if its signature verifies, but not applied.
        let hash = hash_of(&signed.event);
        Ok(Envelope {
            event_bytes: signed.event,
            signature,
            event,
            id,
            hash,
        })
    }

    /// Checks the signature against the origin's key.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), Refusal> {
        if signature::verify_one(key, &self.event_bytes, &self.signature) {
            return Ok(());
        }
        Err(Refusal::BadSignature(format!(
            "signature of event {} does not verify against the key of {}",
            self.id, self.event.origin
        )))
    }

    /// The frame to store and forward: the author's bytes, untouched.
    pub fn signed_bytes(&self) -> Vec<u8> {
        pb::SignedEvent {
            event: self.event_bytes.clone(),
            signature: self.signature.to_vec(),
        }
        .encode_to_vec()
    }

    /// Signs the event's bytes with `key` (a draft's, [`draft_with_id`]).
    pub fn sign(&mut self, key: &SigningKey) {
        self.signature = key.sign(&self.event_bytes).to_bytes();
    }

    /// Whether `frame` is exactly [`Envelope::signed_bytes`] (what every node sends), so that
    /// a received frame can be stored as it came; another wrapper around the same signed
    /// bytes (fields in another order, unknown fields) is stored re-encoded, so that every node
    /// holds and forwards the same frame for an event.
    pub fn is_signed_bytes(&self, frame: &[u8]) -> bool {
        let n = self.event_bytes.len() as u64;
        let mut head = [0u8; 11];
        head[0] = 0x0a; // field 1, length-delimited
        let mut rest = &mut head[1..];
        prost::encoding::encode_varint(n, &mut rest);
        let head_len = 11 - rest.len();
        let Some((h, tail)) = frame.split_at_checked(head_len) else {
            return false;
        };
        let Some((event, tail)) = tail.split_at_checked(self.event_bytes.len()) else {
            return false;
        };
        h == &head[..head_len]
            && event == self.event_bytes.as_slice()
            && tail.len() == 66
            && tail[..2] == [0x12, 64] // field 2, length-delimited, 64 bytes
            && tail[2..] == self.signature
    }

    pub fn origin(&self) -> &str {
        &self.event.origin
    }

    pub fn seq(&self) -> u64 {
        self.event.seq
    }

    pub fn hlc(&self) -> u64 {
        self.event.hlc
    }

    /// The body, or None for a kind this version does not know (kept and forwarded, not
    /// applied).
    pub fn body(&self) -> Option<&pb::event::Body> {
        self.event.body.as_ref()
    }

    pub fn kind_name(&self) -> &'static str {
        self.body().map(kind_name).unwrap_or("unknown_kind")
    }

    pub fn audience(&self) -> &pb::audience::Kind {
        // ok: `from_signed` refuses events without an audience.
        self.event
            .audience
            .as_ref()
            .and_then(|a| a.kind.as_ref())
            .expect("checked in from_signed")
    }
}

pub fn hash_of(bytes: &[u8]) -> EventHash {
    Sha256::digest(bytes).into()
}

/// What an author needs to continue its chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: Option<EventHash>,
}

/// Builds, encodes once and signs a new event of `origin`.
pub fn seal(
    key: &SigningKey,
    origin: &str,
    head: &ChainHead,
    hlc: u64,
    audience: pb::audience::Kind,
    body: pb::event::Body,
) -> Envelope {
    seal_with_id(Uuid::now_v7(), key, origin, head, hlc, audience, body)
}

/// [`seal`] with a given id (a UUID v7, from the node's id seam [`crate::node::Seams`]),
/// stamped with `origin`'s code ([`ids::mint`]).
pub fn seal_with_id(
    id: Uuid,
    key: &SigningKey,
    origin: &str,
    head: &ChainHead,
    hlc: u64,
    audience: pb::audience::Kind,
    body: pb::event::Body,
) -> Envelope {
    let mut env = draft_with_id(id, origin, head, hlc, audience, body);
    env.sign(key);
    env
}

/// [`seal_with_id`] without the signature (all zeros until [`Envelope::sign`]): the event is
/// numbered, linked and hashed, so the next one can link to it before it is signed (the hash
/// covers the event's bytes, not its signature), and a run of them can be signed side by side.
pub fn draft_with_id(
    id: Uuid,
    origin: &str,
    head: &ChainHead,
    hlc: u64,
    audience: pb::audience::Kind,
    body: pb::event::Body,
) -> Envelope {
    let id = ids::mint(origin, id);
    let event = pb::Event {
        id: id.as_bytes().to_vec(),
        origin: origin.to_string(),
        seq: head.seq + 1,
        prev: head.hash.map(|h| h.to_vec()).unwrap_or_default(),
        hlc,
        audience: Some(pb::Audience {
            kind: Some(audience),
        }),
        body: Some(body),
    };
    let event_bytes = event.encode_to_vec();
    let hash = hash_of(&event_bytes);
    Envelope {
        event_bytes,
        signature: [0; 64],
        event,
        id,
        hash,
    }
}

/// A new random signing key.
pub fn generate_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

pub fn parse_public_key(hex_text: &str) -> Result<VerifyingKey, String> {
    let bytes = hex::decode(hex_text.trim()).map_err(|e| format!("public key is not hex: {e}"))?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "public key is {} bytes, an ed25519 key is 32 (64 hex digits)",
            bytes.len()
        )
    })?;
    VerifyingKey::from_bytes(&arr).map_err(|e| format!("not a valid ed25519 public key: {e}"))
}

/// The short name of an event body's kind, for logs, lists and quarantine entries.
pub fn kind_name(body: &pb::event::Body) -> &'static str {
    use pb::event::Body::*;
    match body {
        CommitteeRegistered(_) => "committee_registered",
        CommitteeKeyRotated(_) => "committee_key_rotated",
        CommitteeKeyRevoked(_) => "committee_key_revoked",
        TopicDrafted(_) => "topic_drafted",
        TopicPublished(_) => "topic_published",
        TopicConcluded(_) => "topic_concluded",
        TopicWithdrawn(_) => "topic_withdrawn",
        AssignmentIssued(_) => "assignment_issued",
        AssignmentAcknowledged(_) => "assignment_acknowledged",
        SubmissionMade(_) => "submission_made",
        ReviewRecorded(_) => "review_recorded",
        AssignmentCancelled(_) => "assignment_cancelled",
        GuidanceIssued(_) => "guidance_issued",
        GuidanceAcknowledged(_) => "guidance_acknowledged",
        ReportSent(_) => "report_sent",
        ReportAcknowledged(_) => "report_acknowledged",
        TopicProposalSubmitted(_) => "topic_proposal_submitted",
        TopicProposalDecided(_) => "topic_proposal_decided",
        PlanEntrySet(_) => "plan_entry_set",
        PlanEntryRemoved(_) => "plan_entry_removed",
        PlanAdopted(_) => "plan_adopted",
        MeetingScheduled(_) => "meeting_scheduled",
        MeetingContributionSubmitted(_) => "meeting_contribution_submitted",
        MeetingConcluded(_) => "meeting_concluded",
        MeetingCancelled(_) => "meeting_cancelled",
        RecommendationIssued(_) => "recommendation_issued",
        RecommendationHandled(_) => "recommendation_handled",
        RecommendationProgressed(_) => "recommendation_progressed",
        RecommendationFeedbackRecorded(_) => "recommendation_feedback_recorded",
        RecommendationEvaluated(_) => "recommendation_evaluated",
        RecommendationReviewed(_) => "recommendation_reviewed",
        ReConsultationHeld(_) => "re_consultation_held",
        EvaluationRecorded(_) => "evaluation_recorded",
        PublicationIssued(_) => "publication_issued",
        GroupCharterProposed(_) => "group_charter_proposed",
        GroupCharterEndorsed(_) => "group_charter_endorsed",
        JointMeetingConvened(_) => "joint_meeting_convened",
        JointContributionMade(_) => "joint_contribution_made",
        JointReportDrafted(_) => "joint_report_drafted",
        JointReportCommented(_) => "joint_report_commented",
        JointReportFinalized(_) => "joint_report_finalized",
        JointReportSent(_) => "joint_report_sent",
        JointRollupPublished(_) => "joint_rollup_published",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &SigningKey) -> Envelope {
        seal(
            key,
            "620000",
            &ChainHead::default(),
            1 << 16,
            pb::audience::Kind::Subtree("620000".into()),
            pb::event::Body::GuidanceIssued(pb::GuidanceIssued {
                guidance_id: Uuid::now_v7().as_bytes().to_vec(),
                title: "通知".into(),
                body: "正文".into(),
            }),
        )
    }

    #[test]
    fn sealed_event_opens_and_verifies_from_its_own_bytes() {
        let key = generate_key();
        let env = sample(&key);
        let opened = Envelope::open(&env.signed_bytes()).expect("opens");
        assert_eq!(opened.id, env.id);
        assert_eq!(opened.event_bytes, env.event_bytes);
        assert_eq!(opened.hash, env.hash);
        opened.verify(&key.verifying_key()).expect("verifies");
    }

    #[test]
    fn only_the_canonical_frame_counts_as_the_signed_bytes() {
        let key = generate_key();
        let env = sample(&key);
        assert!(env.is_signed_bytes(&env.signed_bytes()));
        // The same two fields the other way round, or with an unknown field after them:
        // the same event, another frame.
        let swapped = [
            &env.signed_bytes()[env.signed_bytes().len() - 66..],
            &env.signed_bytes()[..env.signed_bytes().len() - 66],
        ]
        .concat();
        let reopened = Envelope::open(&swapped).expect("opens");
        assert_eq!(reopened.id, env.id);
        assert!(!env.is_signed_bytes(&swapped));
        let mut extra = env.signed_bytes();
        extra.extend_from_slice(&[0x18, 1]);
        assert!(Envelope::open(&extra).is_ok());
        assert!(!env.is_signed_bytes(&extra));
        let mut other_sig = env.signed_bytes();
        let last = other_sig.len() - 1;
        other_sig[last] ^= 1;
        assert!(!env.is_signed_bytes(&other_sig));
        assert!(!env.is_signed_bytes(&env.signed_bytes()[..10]));
        assert!(!env.is_signed_bytes(&[]));
    }

    #[test]
    fn a_flipped_byte_or_another_key_fails_verification() {
        let key = generate_key();
        let env = sample(&key);
        assert!(matches!(
            env.verify(&generate_key().verifying_key()),
            Err(Refusal::BadSignature(_))
        ));
        let mut tampered = env.clone();
        let last = tampered.event_bytes.len() - 1;
        tampered.event_bytes[last] ^= 1;
        assert!(tampered.verify(&key.verifying_key()).is_err());
    }

    #[test]
    fn structural_errors_are_refused_with_reasons() {
        assert!(matches!(
            Envelope::open(b"\xff\xff\xff"),
            Err(Refusal::Malformed(_))
        ));
        let key = generate_key();
        let mut env = sample(&key);
        env.event.seq = 2; // seq 2 without a prev hash
        let bytes = env.event.encode_to_vec();
        let frame = pb::SignedEvent {
            event: bytes,
            signature: vec![0; 64],
        }
        .encode_to_vec();
        match Envelope::open(&frame) {
            Err(Refusal::Malformed(m)) => assert!(m.contains("32-byte"), "{m}"),
            other => panic!("expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn events_over_the_size_limit_are_refused_before_decoding() {
        let key = generate_key();
        let env = seal(
            &key,
            "620123",
            &ChainHead::default(),
            1 << 16,
            pb::audience::Kind::Ancestors("620000".into()),
            pb::event::Body::ReportSent(pb::ReportSent {
                report_id: Uuid::now_v7().as_bytes().to_vec(),
                to: "620000".into(),
                kind: 1,
                title: "超长报送".into(),
                body: "字".repeat(MAX_EVENT_BYTES / 3 + 1),
            }),
        );
        match Envelope::open(&env.signed_bytes()) {
            Err(Refusal::Malformed(m)) => assert!(m.contains("limit"), "{m}"),
            other => panic!("expected a size refusal, got {other:?}"),
        }
    }
}
