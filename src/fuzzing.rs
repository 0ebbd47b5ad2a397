//! Entry points for fuzzing the decoders and validators: the cargo-fuzz targets in `fuzz/`
//! call them with arbitrary bytes, and `tests/fuzz_corpus.rs` replays the kept corpus and a
//! deterministic stream of mutations through them on stable Rust in every CI run. Each must
//! return normally whatever the input: a panic is a bug.
use std::sync::OnceLock;

use prost::Message;

use crate::domain::record::{RecordKey, RecordState};
use crate::domain::{audience, authz, Fact, Level, Member, Roster};
use crate::event::Envelope;
use crate::pb;

/// A small fixed roster (Gansu) to validate against.
fn roster() -> &'static Roster {
    static ROSTER: OnceLock<Roster> = OnceLock::new();
    ROSTER.get_or_init(|| {
        let key = |seed: u8| ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
        let mut r = Roster::new("620000", key(1));
        for (code, parent, level, seed) in [
            ("620000", None, Level::Province, 1),
            ("620100", Some("620000"), Level::City, 2),
            ("620400", Some("620000"), Level::City, 3),
            ("620123", Some("620100"), Level::County, 4),
            ("620421", Some("620400"), Level::County, 5),
        ] {
            r.insert(Member::new(code, "委员会", level, parent, key(seed)));
        }
        r
    })
}

/// A signed event frame, as a node receives it: decode, verify against the roster, check the
/// author's standing and the audience, fold it.
pub fn event_frame(data: &[u8]) {
    let Ok(env) = Envelope::open(data) else {
        return;
    };
    let roster = roster();
    if let Ok(key) = roster.key_for(env.origin(), env.seq()) {
        let _ = env.verify(key);
    }
    let _ = env.signed_bytes();
    for node in ["620000", "620100", "620123", "620421", "999999"] {
        let _ = audience::visible_within(roster, env.audience(), env.origin(), node);
        let _ = audience::visible_outside(roster, env.audience(), env.origin(), node);
        let _ = audience::visible_to(roster, env.audience(), env.origin(), node);
    }
    let _ = audience::members(roster, env.audience(), env.origin());
    let Some(body) = env.body() else { return };
    let _ = authz::authorize(roster, env.origin(), env.audience(), body);
    if let (Ok(rk), Some(fact)) = (RecordKey::of(body), Fact::of(&env)) {
        let _ = RecordKey::from_bytes(&rk.to_bytes());
        if let Some(state) = RecordState::fold(&rk, &[fact.clone(), fact], roster) {
            let _ = serde_json::to_vec(&state);
        }
    }
}

/// A sync stream frame, as a link receives it; every event of a batch goes through
/// [`event_frame`].
pub fn sync_frame(data: &[u8]) {
    let Ok(frame) = pb::SyncFrame::decode(data) else {
        return;
    };
    if let Some(pb::sync_frame::Kind::Batch(b)) = frame.kind {
        for e in b.events {
            event_frame(&e);
        }
    }
}

/// A few valid frames to start mutating from.
pub fn seeds() -> Vec<Vec<u8>> {
    use pb::{audience::Kind, event::Body};
    let key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    // Ids minted by the author, as a real node's (`domain::ids`).
    let id = || crate::domain::ids::new("620123").as_bytes().to_vec();
    let mut out = Vec::new();
    let bodies: Vec<(Kind, Body)> = vec![
        (
            Kind::Ancestors("620000".into()),
            Body::ReportSent(pb::ReportSent {
                report_id: id(),
                to: "620000".into(),
                kind: 1,
                title: "社情民意".into(),
                body: "正文".into(),
            }),
        ),
        (
            Kind::Committees(pb::CommitteeList {
                codes: vec!["620123".into(), "620000".into()],
            }),
            Body::AssignmentAcknowledged(pb::AssignmentAcknowledged {
                assignment_id: id(),
            }),
        ),
        (
            Kind::Subtree("620000".into()),
            Body::CommitteeRegistered(pb::CommitteeRegistered {
                code: "620122".into(),
                name: "皋兰县".into(),
                level: 4,
                parent: "620100".into(),
                public_key: vec![9; 32],
            }),
        ),
        (
            Kind::Subtree("620123".into()),
            Body::GuidanceIssued(pb::GuidanceIssued {
                guidance_id: id(),
                title: "通知".into(),
                body: String::new(),
            }),
        ),
    ];
    let mut head = crate::event::ChainHead::default();
    for (aud, body) in bodies {
        let env = crate::event::seal(&key, "620123", &head, 1 << 20, aud, body);
        head = crate::event::ChainHead {
            seq: env.seq(),
            hash: Some(env.hash),
        };
        let frame = env.signed_bytes();
        out.push(frame.clone());
        let batch = pb::SyncFrame {
            kind: Some(pb::sync_frame::Kind::Batch(pb::Batch {
                batch_id: 1,
                events: vec![frame.clone()],
                up_to: 1,
                backfill_complete_at: 0,
                sender_head: 1,
                sender_chain_seq: 0,
                sender_chain_hash: vec![],
            })),
        };
        out.push(batch.encode_to_vec());
    }
    out
}
