//! Ingest under bad input, on the in-memory engine: every refusal is quarantined with its
//! reason, nothing refused is stored, and the node goes on.
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use prost::Message;
use uuid::Uuid;

use super::*;
use crate::clock::ManualClock;
use crate::domain::ids;
use crate::event::ChainHead;
use crate::pb::{audience::Kind, event::Body};
use crate::store::memory::MemoryStorage;

const NOW: u64 = 1_795_449_600_000;

struct Setup {
    province: Node,
    province_key: SigningKey,
    city_key: SigningKey,
    clock: ManualClock,
}

fn settings(code: &str, root_key: &SigningKey) -> NodeSettings {
    NodeSettings {
        code: code.into(),
        root_code: "620000".into(),
        root_key: root_key.verifying_key(),
        max_clock_skew_ms: 60_000,
        max_group: 64,
    }
}

fn open(code: &str, key: &SigningKey, root_key: &SigningKey, clock: &ManualClock) -> Node {
    let store = NodeStore::new(Arc::new(MemoryStorage::new()));
    Node::open(
        settings(code, root_key),
        key.clone(),
        store,
        Arc::new(clock.clone()),
    )
    .expect("open")
}

async fn setup() -> Setup {
    let clock = ManualClock::new(NOW);
    let province_key = SigningKey::from_bytes(&[1; 32]);
    let city_key = SigningKey::from_bytes(&[2; 32]);
    let province = open("620000", &province_key, &province_key, &clock);
    province
        .register_root("甘肃省政协", Level::Province)
        .await
        .expect("root");
    province
        .register_committee(
            "620100",
            "兰州市政协",
            &hex::encode(city_key.verifying_key().as_bytes()),
        )
        .await
        .expect("city");
    province
        .register_committee(
            "620400",
            "白银市政协",
            &hex::encode(SigningKey::from_bytes(&[3; 32]).verifying_key().as_bytes()),
        )
        .await
        .expect("city");
    Setup {
        province,
        province_key,
        city_key,
        clock,
    }
}

/// Guidance that `issuer` issues (its id minted by the issuer).
fn guidance_body(issuer: &str) -> Body {
    Body::GuidanceIssued(pb::GuidanceIssued {
        guidance_id: ids::new(issuer).as_bytes().to_vec(),
        title: "通知".into(),
        body: String::new(),
    })
}

/// An event of `origin`, sealed with `key`, continuing from `head`.
fn sealed(
    key: &SigningKey,
    origin: &str,
    head: &ChainHead,
    hlc_ms: u64,
    aud: Kind,
    body: Body,
) -> Envelope {
    event::seal(key, origin, head, hlc_ms << 16, aud, body)
}

async fn refused_with(node: &Node, frame: Vec<u8>, category: &str) {
    let before_head = node.durable_head();
    let before: Vec<Uuid> = node
        .store()
        .quarantine_list()
        .expect("list")
        .iter()
        .map(|q| q.id)
        .collect();
    let report = node
        .ingest("620100", vec![frame], None)
        .await
        .expect("ingest");
    assert_eq!(
        report.refused, 1,
        "expected a refusal ({category}), got {report:?}"
    );
    assert_eq!(
        node.durable_head(),
        before_head,
        "nothing refused is stored"
    );
    let after = node.store().quarantine_list().expect("list");
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(
        node.store().quarantined().expect("count"),
        after.len() as u64
    );
    let new = after
        .iter()
        .find(|q| !before.contains(&q.id))
        .expect("a new entry");
    assert_eq!(new.category, category, "reason: {}", new.reason);
    assert!(!new.frame_hex.is_empty(), "the frame is kept as evidence");
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_quarantined() {
    let s = setup().await;
    let stranger = SigningKey::from_bytes(&[9; 32]);
    let env = sealed(
        &stranger,
        "620100",
        &ChainHead::default(),
        NOW,
        Kind::Subtree("620100".into()),
        guidance_body("620100"),
    );
    refused_with(&s.province, env.signed_bytes(), "bad signature").await;
    // the same forgery again (a re-send) does not grow the quarantine
    let again = s
        .province
        .ingest("620100", vec![env.signed_bytes()], None)
        .await
        .expect("ingest");
    assert_eq!(again.refused, 1);
    assert_eq!(s.province.store().quarantine_list().expect("list").len(), 1);
    assert_eq!(s.province.store().quarantined().expect("count"), 1);
    // the node goes on: a genuine event from the city is taken
    let good = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW,
        Kind::Subtree("620100".into()),
        guidance_body("620100"),
    );
    let r = s
        .province
        .ingest("620100", vec![good.signed_bytes()], None)
        .await
        .expect("ingest");
    assert_eq!(r.stored, 1);
}

#[tokio::test]
async fn malformed_bytes_are_refused_and_unknown_kinds_kept_unapplied() {
    let s = setup().await;
    refused_with(&s.province, vec![0xff, 0x01, 0x02], "malformed").await;
    // an event whose body is a kind this version does not know (field 99): prost skips it,
    // the body decodes as empty
    let unknown = |key: &SigningKey| {
        let mut ev = pb::Event {
            id: ids::new("620100").as_bytes().to_vec(),
            origin: "620100".into(),
            seq: 1,
            prev: vec![],
            hlc: NOW << 16,
            audience: Some(pb::Audience {
                kind: Some(Kind::Subtree("620100".into())),
            }),
            body: None,
        }
        .encode_to_vec();
        prost::encoding::string::encode(99, &"from the future".to_string(), &mut ev);
        let sig = ed25519_dalek::Signer::sign(key, &ev).to_bytes().to_vec();
        pb::SignedEvent {
            event: ev,
            signature: sig,
        }
        .encode_to_vec()
    };
    // signed by someone else: refused like any forgery
    refused_with(
        &s.province,
        unknown(&SigningKey::from_bytes(&[9; 32])),
        "bad signature",
    )
    .await;
    // signed by its origin: kept (to be forwarded by its audience) but applied to nothing
    let frame = unknown(&s.city_key);
    let head = s.province.durable_head();
    let r = s
        .province
        .ingest("620100", vec![frame.clone()], None)
        .await
        .expect("ingest");
    assert_eq!(r.stored, 1);
    assert_eq!(s.province.durable_head(), head + 1);
    let env = Envelope::open(&frame).expect("opens");
    assert!(env.body().is_none());
    let held = s
        .province
        .store()
        .event_frame(&env.id)
        .expect("read")
        .expect("held");
    assert_eq!(
        held, frame,
        "kept byte for byte, so it can be forwarded and verified again"
    );
    assert_eq!(
        s.province
            .store()
            .by_origin("620100", 1)
            .expect("index")
            .map(|(id, _)| id),
        Some(env.id)
    );
}

#[tokio::test]
async fn a_replay_changes_nothing() {
    let s = setup().await;
    let env = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW,
        Kind::Subtree("620100".into()),
        guidance_body("620100"),
    );
    let first = s
        .province
        .ingest("620100", vec![env.signed_bytes()], None)
        .await
        .expect("ingest");
    let head = s.province.durable_head();
    let again = s
        .province
        .ingest("620100", vec![env.signed_bytes(), env.signed_bytes()], None)
        .await
        .expect("ingest");
    assert_eq!((first.stored, again.stored, again.duplicates), (1, 0, 2));
    assert_eq!(s.province.durable_head(), head);
}

#[tokio::test]
async fn equivocation_and_broken_chains_are_caught() {
    let s = setup().await;
    let aud = Kind::Subtree("620100".into());
    let one = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW,
        aud.clone(),
        guidance_body("620100"),
    );
    s.province
        .ingest("620100", vec![one.signed_bytes()], None)
        .await
        .expect("ingest");
    // another event signed as seq 1
    let other_one = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW + 1,
        aud.clone(),
        guidance_body("620100"),
    );
    refused_with(&s.province, other_one.signed_bytes(), "equivocation").await;
    // seq 2 that does not link to the held seq 1
    let bad_link = sealed(
        &s.city_key,
        "620100",
        &ChainHead {
            seq: 1,
            hash: Some([7; 32]),
        },
        NOW + 2,
        aud.clone(),
        guidance_body("620100"),
    );
    refused_with(&s.province, bad_link.signed_bytes(), "broken chain").await;
    let good_link = sealed(
        &s.city_key,
        "620100",
        &ChainHead {
            seq: 1,
            hash: Some(one.hash),
        },
        NOW + 3,
        aud,
        guidance_body("620100"),
    );
    assert_eq!(
        s.province
            .ingest("620100", vec![good_link.signed_bytes()], None)
            .await
            .expect("ingest")
            .stored,
        1
    );
}

#[tokio::test]
async fn far_future_timestamps_are_refused() {
    let s = setup().await;
    let env = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW + 3_600_000,
        Kind::Subtree("620100".into()),
        guidance_body("620100"),
    );
    refused_with(&s.province, env.signed_bytes(), "future timestamp").await;
    // within the allowed skew it is fine
    let ok = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW + 30_000,
        Kind::Subtree("620100".into()),
        guidance_body("620100"),
    );
    assert_eq!(
        s.province
            .ingest("620100", vec![ok.signed_bytes()], None)
            .await
            .expect("ingest")
            .stored,
        1
    );
}

#[tokio::test]
async fn unauthorized_kinds_and_audiences_are_refused() {
    let s = setup().await;
    // a city sending "guidance" upwards to the whole province
    let env = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW,
        Kind::Subtree("620000".into()),
        guidance_body("620100"),
    );
    refused_with(&s.province, env.signed_bytes(), "not allowed").await;
    // a city registering a committee outside its region
    let reg = Body::CommitteeRegistered(pb::CommitteeRegistered {
        code: "620421".into(),
        name: "靖远县政协".into(),
        level: pb::Level::County as i32,
        parent: "620100".into(),
        public_key: SigningKey::from_bytes(&[5; 32])
            .verifying_key()
            .as_bytes()
            .to_vec(),
    });
    let env = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW,
        Kind::Subtree("620000".into()),
        reg,
    );
    refused_with(&s.province, env.signed_bytes(), "not allowed").await;
}

#[tokio::test]
async fn an_unknown_author_is_retried_once_registered() {
    let s = setup().await;
    let county_key = SigningKey::from_bytes(&[4; 32]);
    // the county's report arrives before the city's registration of the county
    let report = sealed(
        &county_key,
        "620123",
        &ChainHead::default(),
        NOW,
        Kind::Ancestors("620000".into()),
        Body::ReportSent(pb::ReportSent {
            report_id: ids::new("620123").as_bytes().to_vec(),
            to: "620000".into(),
            kind: pb::ReportKind::PublicOpinion as i32,
            title: "社情民意".into(),
            body: String::new(),
        }),
    );
    refused_with(&s.province, report.signed_bytes(), "unknown author").await;
    let reg = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW,
        Kind::Subtree("620000".into()),
        Body::CommitteeRegistered(pb::CommitteeRegistered {
            code: "620123".into(),
            name: "榆中县政协".into(),
            level: pb::Level::County as i32,
            parent: "620100".into(),
            public_key: county_key.verifying_key().as_bytes().to_vec(),
        }),
    );
    s.province
        .ingest("620100", vec![reg.signed_bytes()], None)
        .await
        .expect("ingest");
    assert_eq!(
        s.province.store().quarantined().expect("count"),
        0,
        "the report left the quarantine"
    );
    assert!(
        s.province.store().has_event(&report.id).expect("has"),
        "and was stored"
    );
    assert_eq!(s.province.report_list().expect("reports").reports.len(), 1);
}

#[tokio::test]
async fn a_city_refuses_what_nothing_under_it_may_see() {
    let s = setup().await;
    let city = open("620100", &s.city_key, &s.province_key, &s.clock);
    // give the city the province's whole roster: it keeps its lineage (the province and
    // itself), and refuses the other city's registration, which sync would not have sent
    let frames: Vec<Vec<u8>> = s
        .province
        .store()
        .registrations()
        .expect("roster")
        .iter()
        .map(Envelope::signed_bytes)
        .collect();
    let report = city.ingest("620000", frames, None).await.expect("ingest");
    assert_eq!((report.stored, report.refused), (2, 1));
    assert!(!city.roster().knows("620400"));
    // guidance from the province to the other city only
    let to_baiyin = s
        .province
        .send_guidance("白银专属通知", "", &["620400".into()])
        .await
        .expect("send");
    let id = Uuid::parse_str(&to_baiyin.record_id).expect("id");
    let env = s
        .province
        .store()
        .record_envelopes(&crate::domain::record::RecordKey::Guidance(id))
        .expect("events");
    refused_with(&city, env[0].signed_bytes(), "out of scope").await;
}

#[tokio::test]
async fn only_records_without_a_state_are_indexed_apart() {
    let s = setup().await;
    let sent = s
        .province
        .send_guidance("防汛通知", "请各市做好防汛准备", &[])
        .await
        .expect("send");
    let id = Uuid::parse_str(&sent.record_id).expect("id");
    let rk = crate::domain::record::RecordKey::Guidance(id);
    // The guidance's events are found through its state's history ...
    let events = s.province.store().record_envelopes(&rk).expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id.to_string(), sent.event_id);
    // ... and the record index holds the committees' registrations only.
    let indexed = s
        .province
        .store()
        .engine()
        .scan(crate::store::Space::Records, b"", None, usize::MAX)
        .expect("scan");
    assert!(!indexed.is_empty(), "the registrations are indexed");
    assert!(
        indexed.iter().all(|(k, _)| k.first() == Some(&b'c')),
        "only committee records are indexed: {:?}",
        indexed
            .iter()
            .map(|(k, _)| k[0] as char)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        s.province.store().registrations().expect("roster").len(),
        indexed.len()
    );
}

/// Every window of the log reads as the same slice of the whole.
fn assert_log_windows(store: &NodeStore, all: &[crate::store::node_store::LogEntry], at: &[u64]) {
    for &after in at {
        for limit in [1, 64, 129, 1024] {
            let got = store.log_after(after, limit).expect("window");
            let want: Vec<_> = all
                .iter()
                .filter(|e| e.position > after)
                .take(limit)
                .cloned()
                .collect();
            assert_eq!(got, want, "after {after}, limit {limit}");
        }
        if after > 0 {
            assert_eq!(
                store.log_at(after).expect("at").as_ref(),
                all.get(after as usize - 1)
            );
        }
    }
}

#[tokio::test]
async fn the_log_reads_the_same_across_its_pages_and_from_an_older_store() {
    use crate::store::{Space, WriteBatch};
    let s = setup().await;
    for i in 0..300 {
        s.province
            .send_guidance(&format!("通知 {i}"), "", &[])
            .await
            .expect("send");
    }
    let store = s.province.store().clone();
    let before = store.log_after(0, usize::MAX).expect("log");
    let head = store.head().expect("head");
    assert_eq!(before.len() as u64, head);
    assert!(before
        .iter()
        .enumerate()
        .all(|(i, e)| e.position == i as u64 + 1));
    assert_log_windows(
        &store,
        &before,
        &[0, 1, 127, 128, 129, 255, 256, head - 1, head],
    );

    // The same log as a store written before pages existed holds it: one record a position.
    let mut old = WriteBatch::default();
    for e in &before {
        let mut v = e.id.as_bytes().to_vec();
        v.extend_from_slice(e.source.as_deref().unwrap_or_default().as_bytes());
        old.put(Space::Log, e.position.to_be_bytes().to_vec(), v);
    }
    for (k, _) in store
        .engine()
        .scan(Space::LogPages, b"", None, usize::MAX)
        .expect("pages")
    {
        old.delete(Space::LogPages, k);
    }
    old.delete(Space::Meta, b"log_pages_from".to_vec());
    store.commit(old).expect("commit");
    assert_eq!(store.log_after(0, usize::MAX).expect("old log"), before);
    // New events go to pages from the next position on; the log reads on across the seam.
    for i in 0..140 {
        s.province
            .send_guidance(&format!("续 {i}"), "", &[])
            .await
            .expect("send");
    }
    let all = store.log_after(0, usize::MAX).expect("log");
    assert_eq!(all.len() as u64, head + 140);
    assert_eq!(&all[..before.len()], before.as_slice());
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, e)| e.position == i as u64 + 1));
    assert_log_windows(
        &store,
        &all,
        &[
            0,
            head - 2,
            head - 1,
            head,
            head + 1,
            head + 130,
            head + 140,
        ],
    );
}

#[tokio::test]
async fn local_writes_are_checked_too() {
    let s = setup().await;
    // the province cannot report upwards: it has no parent
    let err = s
        .province
        .send_report("", "public-opinion", "x", "")
        .await
        .expect_err("no parent");
    assert!(err.to_string().contains("no parent"), "{err}");
    // a bad committee code, a bad key, a date that is not a date
    assert!(s
        .province
        .register_committee("62012", "x", "00")
        .await
        .is_err());
    assert!(s
        .province
        .register_committee("620500", "x", "zz")
        .await
        .is_err());
    let t = s
        .province
        .create_topic(pb::CreateTopicRequest {
            title: "议题".into(),
            publish: true,
            ..Default::default()
        })
        .await
        .expect("topic");
    let bad_due = s
        .province
        .assign(pb::AssignRequest {
            topic_id: t.record_id.clone(),
            assignee: "620100".into(),
            title: "分课题".into(),
            due_date: "31/12/2026".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad date");
    assert!(bad_due.to_string().contains("YYYY-MM-DD"), "{bad_due}");
    // nothing of that was stored: only the roster (3) and the topic
    assert_eq!(s.province.durable_head(), 4);
}

/// The city's guidance number `seq`, continuing `prev`, signed with `key`.
fn city_guidance(key: &SigningKey, seq: u64, prev: Option<[u8; 32]>) -> Envelope {
    sealed(
        key,
        "620100",
        &ChainHead {
            seq: seq - 1,
            hash: prev,
        },
        NOW + seq,
        Kind::Subtree("620100".into()),
        guidance_body("620100"),
    )
}

#[tokio::test]
async fn revocation_voids_later_events_everywhere_and_rotation_lets_the_committee_write_again() {
    let s = setup().await;
    // the city writes four notices with its first key; the province holds them
    let mut chain = Vec::new();
    let mut prev = None;
    for seq in 1..=4 {
        let env = city_guidance(&s.city_key, seq, prev);
        prev = Some(env.hash);
        chain.push(env);
    }
    let frames: Vec<Vec<u8>> = chain.iter().map(Envelope::signed_bytes).collect();
    assert_eq!(
        s.province
            .ingest("620100", frames.clone(), None)
            .await
            .expect("ingest")
            .stored,
        4
    );
    // the city's PC is stolen: the province revokes its key after the last event it holds
    s.province
        .revoke_key("620100", "办公电脑被盗")
        .await
        .expect("revoke");
    let stolen = city_guidance(&s.city_key, 5, prev);
    refused_with(&s.province, stolen.signed_bytes(), "revoked key").await;
    assert!(s
        .province
        .committee_list()
        .committees
        .iter()
        .any(|c| c.code == "620100" && c.revoked.contains("办公电脑被盗")));

    // another node had already applied the thief's seq 5 before the revocation reached it
    let observer = open("620000", &s.province_key, &s.province_key, &s.clock);
    let roster: Vec<Vec<u8>> = s
        .province
        .store()
        .registrations()
        .expect("roster")
        .iter()
        .map(Envelope::signed_bytes)
        .collect();
    let (registrations, revocation): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
        roster.into_iter().partition(|f| {
            !matches!(
                Envelope::open(f).ok().and_then(|e| e.body().cloned()),
                Some(Body::CommitteeKeyRevoked(_))
            )
        });
    observer
        .ingest("620000", registrations, None)
        .await
        .expect("roster");
    let mut with_theft = frames.clone();
    with_theft.push(stolen.signed_bytes());
    assert_eq!(
        observer
            .ingest("620100", with_theft, None)
            .await
            .expect("ingest")
            .stored,
        5
    );
    let stolen_record = match stolen.body() {
        Some(Body::GuidanceIssued(g)) => crate::domain::record::RecordKey::Guidance(
            Uuid::from_slice(&g.guidance_id).expect("id"),
        ),
        _ => unreachable!("a guidance"),
    };
    let issued = |n: &Node| match n.store().state(&stolen_record).expect("state") {
        Some(crate::domain::record::RecordState::Guidance(g)) => (
            g.record.issuer.is_some(),
            g.history.last().and_then(|h| h.refused.clone()),
        ),
        other => panic!("unexpected state {other:?}"),
    };
    assert_eq!(
        issued(&observer),
        (true, None),
        "applied while the key was still good here"
    );
    observer
        .ingest("620000", revocation, None)
        .await
        .expect("revocation");
    let (applied, refused) = issued(&observer);
    assert!(!applied, "voided by the revocation");
    assert!(refused.is_some_and(|r| r.contains("revoked")));

    // the city gets a new key; its chain continues after seq 4
    let new_key = SigningKey::from_bytes(&[12; 32]);
    s.province
        .rotate_key("620100", &hex::encode(new_key.verifying_key().as_bytes()))
        .await
        .expect("rotate");
    // seq 5 on is the new key's: the old key's signature does not verify there
    let with_old = city_guidance(&s.city_key, 5, prev);
    refused_with(&s.province, with_old.signed_bytes(), "bad signature").await;
    let with_new = city_guidance(&new_key, 5, prev);
    assert_eq!(
        s.province
            .ingest("620100", vec![with_new.signed_bytes()], None)
            .await
            .expect("ingest")
            .stored,
        1
    );
    // only the parent manages keys
    let err = s
        .province
        .rotate_key("620123", &hex::encode(new_key.verifying_key().as_bytes()))
        .await
        .expect_err("not a child");
    assert!(err.to_string().contains("not in the roster"), "{err}");
}

#[tokio::test]
async fn a_committee_writes_with_whichever_key_the_roster_expects() {
    let s = setup().await;
    let city = open("620100", &s.city_key, &s.province_key, &s.clock);
    let roster: Vec<Vec<u8>> = s
        .province
        .store()
        .registrations()
        .expect("roster")
        .iter()
        .map(Envelope::signed_bytes)
        .collect();
    city.ingest("620000", roster, None).await.expect("roster");
    city.send_guidance("旧钥匙", "", &[])
        .await
        .expect("old key writes");
    // the parent rotates to a key the city does not hold yet: the city cannot write
    let next = SigningKey::from_bytes(&[13; 32]);
    s.province
        .rotate_key("620100", &hex::encode(next.verifying_key().as_bytes()))
        .await
        .expect("rotate");
    let rotation: Vec<Vec<u8>> = s
        .province
        .store()
        .registrations()
        .expect("roster")
        .iter()
        .filter(|e| matches!(e.body(), Some(Body::CommitteeKeyRotated(_))))
        .map(Envelope::signed_bytes)
        .collect();
    city.ingest("620000", rotation, None)
        .await
        .expect("rotation");
    let err = city
        .send_guidance("无钥匙", "", &[])
        .await
        .expect_err("the new key is missing");
    assert!(err.to_string().contains("does not hold"), "{err}");
    // with node.key.next installed it writes, signed with the new key
    city.add_key(next.clone());
    let r = city
        .send_guidance("新钥匙", "", &[])
        .await
        .expect("new key writes");
    let id = Uuid::parse_str(&r.event_id).expect("id");
    let env = Envelope::open(&city.store().event_frame(&id).expect("read").expect("held"))
        .expect("opens");
    env.verify(&next.verifying_key())
        .expect("signed with the new key");
}

/// Lateral groups at ingest: a provisional key (one a proposal lists) is taken only from
/// its holder's own link, so a third member cannot sign "as" another and get it flagged for
/// equivocation; a member's group events wait (quarantined, retryable) until the charter that
/// admits it is in force here, then go in by themselves; a foreign member's tree event never
/// goes in.
#[tokio::test]
async fn a_lateral_member_is_taken_only_as_its_groups_charter_says() {
    let s = setup().await;
    let g = "yellow-river-9";
    let qinghai = SigningKey::from_bytes(&[63; 32]);
    let ningxia = SigningKey::from_bytes(&[64; 32]);
    let fake_ningxia = SigningKey::from_bytes(&[99; 32]);
    let hexkey = |k: &SigningKey| hex::encode(k.verifying_key().as_bytes());
    let member = |code: &str, k: &SigningKey| lateral::MemberInput {
        code: code.into(),
        name: format!("{code}政协"),
        key: hexkey(k),
    };
    s.province
        .propose_charter(
            g,
            "沿黄省区",
            &[member("630000", &qinghai), member("640000", &ningxia)],
            &[(2026, "640000".into())],
        )
        .await
        .expect("proposal");
    let digest_of = |node: &Node| -> Vec<u8> {
        let v = node.groups_view().expect("groups");
        hex::decode(&v.groups[0].proposals[0].digest).expect("hex")
    };
    let real_digest = digest_of(&s.province);
    let charter_aud = Kind::Group(pb::GroupAudience {
        group_id: g.into(),
        include_subtrees: true,
        charter: true,
    });
    let at = |k: u64| NOW + k * 1000;
    // Qinghai proposes a rival charter listing a key of its own making for Ningxia, then
    // relays an endorsement "by Ningxia" signed with that key.
    let mut rival = pb::GroupCharterProposed {
        group_id: g.into(),
        name: "沿黄省区".into(),
        version: 1,
        amends: vec![],
        members: vec![],
        hosts: vec![],
    };
    for (code, k) in [
        ("620000", &s.province_key),
        ("630000", &qinghai),
        ("640000", &fake_ningxia),
    ] {
        rival.members.push(pb::GroupMember {
            code: code.into(),
            name: code.into(),
            public_key: k.verifying_key().as_bytes().to_vec(),
        });
    }
    let rival_digest = crate::domain::record::group::charter_digest(&rival).to_vec();
    let q1 = sealed(
        &qinghai,
        "630000",
        &ChainHead::default(),
        at(1),
        charter_aud.clone(),
        Body::GroupCharterProposed(rival),
    );
    let r = s
        .province
        .ingest("630000", vec![q1.signed_bytes()], None)
        .await
        .expect("ingest");
    assert_eq!(r.stored, 1, "Qinghai's own proposal, from its own link");
    let endorse = |digest: Vec<u8>| {
        Body::GroupCharterEndorsed(pb::GroupCharterEndorsed {
            group_id: g.into(),
            version: 1,
            digest,
        })
    };
    let forged = sealed(
        &fake_ningxia,
        "640000",
        &ChainHead::default(),
        at(2),
        charter_aud.clone(),
        endorse(rival_digest),
    );
    let r = s
        .province
        .ingest("630000", vec![forged.signed_bytes()], None)
        .await
        .expect("ingest");
    assert_eq!(
        r.refused, 1,
        "a provisional key only from its holder's link"
    );
    assert!(s
        .province
        .store()
        .flagged_origins()
        .expect("flags")
        .is_empty());

    // Ningxia's meeting arrives before the charter is in force: it waits.
    let real = sealed(
        &ningxia,
        "640000",
        &ChainHead::default(),
        at(2),
        charter_aud.clone(),
        endorse(real_digest.clone()),
    );
    let meeting = sealed(
        &ningxia,
        "640000",
        &ChainHead {
            seq: 1,
            hash: Some(real.hash),
        },
        at(3),
        Kind::Group(pb::GroupAudience {
            group_id: g.into(),
            include_subtrees: false,
            charter: false,
        }),
        Body::JointMeetingConvened(pb::JointMeetingConvened {
            meeting_id: ids::new("640000").as_bytes().to_vec(),
            group_id: g.into(),
            year: 2026,
            theme: "黄河".into(),
            ..Default::default()
        }),
    );
    let r = s
        .province
        .ingest("640000", vec![meeting.signed_bytes()], None)
        .await
        .expect("ingest");
    assert_eq!(r.refused, 1, "no charter in force yet");
    // The real endorsements, each from its own link: in force; the meeting goes in.
    s.province
        .ingest("640000", vec![real.signed_bytes()], None)
        .await
        .expect("ingest");
    let q2 = sealed(
        &qinghai,
        "630000",
        &ChainHead {
            seq: 1,
            hash: Some(q1.hash),
        },
        at(4),
        charter_aud,
        endorse(real_digest),
    );
    s.province
        .ingest("630000", vec![q2.signed_bytes()], None)
        .await
        .expect("ingest");
    assert_eq!(
        s.province
            .roster()
            .group(g)
            .and_then(|x| x.in_force.as_ref())
            .map(|c| c.version),
        Some(1)
    );
    let held = s.province.joint_meetings().expect("meetings");
    assert_eq!(held.meetings.len(), 1, "the waiting meeting went in");
    assert!(s
        .province
        .store()
        .flagged_origins()
        .expect("flags")
        .is_empty());
    // A member in force still cannot author anything of a tree.
    let tree = sealed(
        &ningxia,
        "640000",
        &ChainHead {
            seq: 2,
            hash: Some(meeting.hash),
        },
        at(5),
        Kind::Subtree("620000".into()),
        guidance_body("640000"),
    );
    refused_with(&s.province, tree.signed_bytes(), "unknown author").await;
}

/// Record ids name their owner: a committee that copies another's record id into an event of
/// its own, even stamped earlier than the owner's, does not take the record over.
#[tokio::test]
async fn a_copied_record_id_does_not_take_the_record_over() {
    let s = setup().await;
    let receipt = s
        .province
        .create_topic(pb::CreateTopicRequest {
            title: "黄河流域生态保护".into(),
            publish: true,
            ..Default::default()
        })
        .await
        .expect("topic");
    let topic_id = Uuid::parse_str(&receipt.record_id).expect("uuid");
    // 兰州市 publishes "its own" topic under the province's id, backdated an hour.
    let squat = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW - 3_600_000,
        Kind::Subtree("620100".into()),
        Body::TopicPublished(pb::TopicPublished {
            topic_id: topic_id.as_bytes().to_vec(),
            content: Some(pb::TopicContent {
                title: "抢注".into(),
                ..Default::default()
            }),
        }),
    );
    refused_with(&s.province, squat.signed_bytes(), "not allowed").await;
    let view = s.province.topic_view(&receipt.record_id).expect("view");
    assert_eq!(
        (view.owner.as_str(), view.title.as_str()),
        ("620000", "黄河流域生态保护")
    );
}

/// Two different events of one origin under one id: the first stays, the second is kept as
/// evidence, and the origin is flagged (as for two events under one seq).
#[tokio::test]
async fn one_id_for_two_events_is_equivocation_and_flags_the_origin() {
    let s = setup().await;
    let aud = Kind::Subtree("620100".into());
    let first = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW,
        aud.clone(),
        guidance_body("620100"),
    );
    let again = event::seal_with_id(
        first.id,
        &s.city_key,
        "620100",
        &ChainHead {
            seq: 1,
            hash: Some(first.hash),
        },
        (NOW + 1) << 16,
        aud,
        guidance_body("620100"),
    );
    assert_eq!(again.id, first.id);
    assert!(s.province.status().expect("status").flagged.is_empty());
    s.province
        .ingest("620100", vec![first.signed_bytes()], None)
        .await
        .expect("ingest");
    refused_with(&s.province, again.signed_bytes(), "equivocation").await;
    let flagged = s.province.status().expect("status").flagged;
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert!(flagged[0].contains("620100"), "{flagged:?}");
    // the first is still there, unchanged; a true duplicate of it is just a duplicate
    let dup = s
        .province
        .ingest("620100", vec![first.signed_bytes()], None)
        .await
        .expect("ingest");
    assert_eq!((dup.stored, dup.duplicates, dup.refused), (0, 1, 0));
    // and the flag is there after the seq-reuse kind of equivocation too
    let same_seq = sealed(
        &s.city_key,
        "620100",
        &ChainHead::default(),
        NOW + 2,
        Kind::Subtree("620100".into()),
        guidance_body("620100"),
    );
    refused_with(&s.province, same_seq.signed_bytes(), "equivocation").await;
    assert_eq!(s.province.status().expect("status").flagged.len(), 1);
}

/// An engine whose syncs fail once `broken` is set (a disk that went away).
struct BreakingDisk {
    engine: MemoryStorage,
    broken: std::sync::atomic::AtomicBool,
}

impl crate::store::Storage for BreakingDisk {
    fn get(&self, space: crate::store::Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.engine.get(space, key)
    }
    fn scan(
        &self,
        space: crate::store::Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<crate::store::Entry>> {
        self.engine.scan(space, prefix, after, limit)
    }
    fn commit(&self, batch: WriteBatch) -> Result<()> {
        self.engine.commit(batch)
    }
    fn sync(&self) -> Result<()> {
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Storage("the disk went away".into()));
        }
        self.engine.sync()
    }
    fn size_on_disk(&self) -> u64 {
        0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_is_answered_as_a_failure_and_stops_the_writes() {
    let clock = ManualClock::new(NOW);
    let key = SigningKey::from_bytes(&[1; 32]);
    let disk = Arc::new(BreakingDisk {
        engine: MemoryStorage::new(),
        broken: std::sync::atomic::AtomicBool::new(false),
    });
    let node = Node::open(
        settings("620000", &key),
        key.clone(),
        NodeStore::new(disk.clone()),
        Arc::new(clock.clone()),
    )
    .expect("open");
    node.register_root("甘肃省政协", Level::Province)
        .await
        .expect("root");
    node.send_guidance("黄河流域生态保护", "调研提纲", &[])
        .await
        .expect("guidance while the disk works");
    let durable = node.durable_head();
    assert_eq!(durable, 2);
    disk.broken.store(true, std::sync::atomic::Ordering::SeqCst);
    // Several at once, so that groups queue behind the one whose sync fails.
    let sends: Vec<_> = (0..8)
        .map(|i| {
            let node = node.clone();
            tokio::spawn(async move { node.send_guidance(&format!("第{i}次"), "正文", &[]).await })
        })
        .collect();
    for s in sends {
        let r = s.await.expect("task");
        assert!(
            r.is_err(),
            "nothing is acknowledged that is not durable: {r:?}"
        );
    }
    assert_eq!(
        node.durable_head(),
        durable,
        "the durable head did not move"
    );
    assert!(node.is_shutting_down(), "a failed sync stops the node");
    let later = node.send_guidance("之后", "正文", &[]).await;
    assert!(later.is_err(), "no writes after a failed sync: {later:?}");
    node.close().await;
}

/// Many events of ours at once go through the writer in runs signed side by side: the chain
/// comes out whole (every seq once, each linked to the one before, each signed with our key),
/// and events refused by their checks in the middle of a run leave no hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_signed_side_by_side_makes_one_chain_without_holes() {
    let s = setup().await;
    let mut tasks = Vec::new();
    for i in 0..300 {
        let node = s.province.clone();
        tasks.push(tokio::spawn(async move {
            if i % 25 == 7 {
                // Guidance goes down: upwards it is refused by the draft's checks.
                node.author(Kind::Ancestors("620100".into()), guidance_body("620000"))
                    .await
            } else {
                node.send_guidance(&format!("通知 {i}"), "正文", &[]).await
            }
        }));
    }
    let (mut stored, mut refused) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => stored += 1,
            Err(e) if e.to_string().contains("guidance goes down") => refused += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((stored, refused), (288, 12));
    let store = s.province.store();
    let entries = store.origin_entries("620000").expect("origin index");
    let seqs: Vec<u64> = entries.iter().map(|(seq, _)| *seq).collect();
    // The root's registration and two cities before the notices.
    assert_eq!(seqs, (1..=3 + 288).collect::<Vec<u64>>());
    let mut prev: Option<[u8; 32]> = None;
    for (seq, id) in entries {
        let frame = store.event_frame(&id).expect("read").expect("held");
        let env = Envelope::open(&frame).expect("opens");
        assert_eq!(env.seq(), seq);
        env.verify(&s.province_key.verifying_key())
            .expect("signed with the province's key");
        assert_eq!(env.event.prev, prev.map(|h| h.to_vec()).unwrap_or_default());
        assert!(env.is_signed_bytes(&frame), "stored as signed");
        prev = Some(env.hash);
    }
    assert_eq!(store.own_chain().expect("chain").seq, 291);
}

/// The signing of a run itself: drafts split over threads all come back signed, each
/// signature its own.
#[test]
fn drafts_signed_side_by_side_are_all_signed_correctly() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let mut head = ChainHead::default();
    let mut drafts: Vec<Draft> = (0..67)
        .map(|i| {
            let env = event::draft_with_id(
                Uuid::now_v7(),
                "620000",
                &head,
                (NOW + i) << 16,
                Kind::Subtree("620000".into()),
                guidance_body("620000"),
            );
            head = ChainHead {
                seq: env.seq(),
                hash: Some(env.hash),
            };
            let record = RecordKey::of(env.body().expect("body")).expect("record");
            Draft {
                env,
                key: key.clone(),
                record,
                signed: false,
            }
        })
        .collect();
    sign_drafts(&mut drafts, true);
    for d in &drafts {
        assert!(d.signed);
        d.env.verify(&key.verifying_key()).expect("verifies");
        assert_eq!(
            d.env.signature,
            event::seal_with_id(
                d.env.id,
                &key,
                "620000",
                &ChainHead {
                    seq: d.env.seq() - 1,
                    hash: <[u8; 32]>::try_from(d.env.event.prev.as_slice()).ok(),
                },
                d.env.hlc(),
                d.env.audience().clone(),
                d.env.body().cloned().expect("body"),
            )
            .signature,
            "the same signature as signing it alone"
        );
    }
}
