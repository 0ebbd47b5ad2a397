//! A malicious city. 白银市 (620400) relays between its counties and the province, and on the
//! way up it alters a county's report, forges another, drops a county's acknowledgement (签收),
//! injects an acknowledgement of its own, and reverses the order of every batch. Signatures
//! are end to end, so the province must refuse every alteration and forgery (quarantined, with
//! the city named as the link it came from), refuse the city's pretend acknowledgement in the
//! record's history, apply the genuine events whatever their order — and the dropped
//! acknowledgement must show: the province's progress tree marks that county's task as not
//! acknowledged, although the county itself acknowledged it.
mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use common::*;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use liandong::event::{seal, ChainHead, Envelope};
use liandong::pb::{self, event::Body, sync_frame::Kind as Frame};
use liandong::sync::link::FrameStream;
use liandong::sync::Connector;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// What the city did, for the test's own checks.
#[derive(Default)]
struct Misdeeds {
    altered: usize,
    forged: usize,
    dropped: usize,
    injected: usize,
}

struct TamperingRelay {
    inner: Arc<dyn Connector>,
    city_key: SigningKey,
    misdeeds: Arc<Mutex<Misdeeds>>,
}

fn tamper(batch: &mut pb::Batch, city_key: &SigningKey, misdeeds: &Mutex<Misdeeds>) {
    let mut out = Vec::new();
    for frame in batch.events.drain(..) {
        let Ok(env) = Envelope::open(&frame) else {
            out.push(frame);
            continue;
        };
        match (env.origin(), env.body()) {
            // alter 靖远县's report in flight: one byte of the signed bytes
            ("620421", Some(Body::SubmissionMade(s))) => {
                let mut altered = env.clone();
                let last = altered.event_bytes.len() - 1;
                altered.event_bytes[last] ^= 0x01;
                out.push(altered.signed_bytes());
                // and forge a "better" one in 靖远县's name, signed with the city's key
                let mut fake = s.clone();
                fake.text = "（伪造）一切正常，无需整改".into();
                fake.submission_id = liandong::domain::ids::new("620421").as_bytes().to_vec();
                let forged = seal(
                    city_key,
                    "620421",
                    &ChainHead {
                        seq: env.seq() - 1,
                        hash: <[u8; 32]>::try_from(env.event.prev.as_slice()).ok(),
                    },
                    env.hlc() + 1,
                    env.audience().clone(),
                    Body::SubmissionMade(fake),
                );
                out.push(forged.signed_bytes());
                if let Ok(mut m) = misdeeds.lock() {
                    m.altered += 1;
                    m.forged += 1;
                }
            }
            // drop 会宁县's acknowledgement, and acknowledge in its place, as the city
            ("620422", Some(Body::AssignmentAcknowledged(a))) => {
                let pretend = seal(
                    city_key,
                    "620400",
                    &ChainHead {
                        seq: 999,
                        hash: Some([7; 32]),
                    },
                    env.hlc() + 1,
                    env.audience().clone(),
                    Body::AssignmentAcknowledged(a.clone()),
                );
                out.push(pretend.signed_bytes());
                if let Ok(mut m) = misdeeds.lock() {
                    m.dropped += 1;
                    m.injected += 1;
                }
            }
            _ => out.push(frame),
        }
    }
    out.reverse();
    batch.events = out;
}

impl Connector for TamperingRelay {
    fn open(
        &self,
        peer: String,
        address: String,
        outbound: ReceiverStream<pb::SyncFrame>,
    ) -> Pin<Box<dyn Future<Output = liandong::Result<FrameStream>> + Send>> {
        let (tx, rx) = mpsc::channel(16);
        let key = self.city_key.clone();
        let misdeeds = self.misdeeds.clone();
        tokio::spawn(async move {
            let mut outbound = outbound;
            while let Some(mut frame) = outbound.next().await {
                if let Some(Frame::Batch(b)) = &mut frame.kind {
                    tamper(b, &key, &misdeeds);
                }
                if tx.send(frame).await.is_err() {
                    break;
                }
            }
        });
        self.inner.open(peer, address, ReceiverStream::new(rx))
    }
}

fn assignment_at(
    fed: &liandong::fixture::Federation,
    at: &str,
    assignee: &str,
) -> Option<pb::AssignmentView> {
    let node = fed.node(at).ok()?;
    let topics = node.topic_list().ok()?;
    let topic = topics.topics.first()?;
    let view = node.topic_view(&topic.id).ok()?;
    fn find(list: &[pb::AssignmentView], assignee: &str) -> Option<pb::AssignmentView> {
        list.iter().find_map(|a| {
            if a.assignee == assignee {
                Some(a.clone())
            } else {
                find(&a.children, assignee)
            }
        })
    }
    find(&view.assignments, assignee)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malicious_city_cannot_alter_forge_or_hide_what_it_relays() -> Result<()> {
    init_tracing();
    let mut fed = liandong::fixture::Federation::new(liandong::fixture::gansu())?;
    let misdeeds = Arc::new(Mutex::new(Misdeeds::default()));
    let city_key = fed.key(BAIYIN)?.clone();
    let m = misdeeds.clone();
    fed.wrap_connector(
        BAIYIN,
        Arc::new(move |inner| {
            Arc::new(TamperingRelay {
                inner,
                city_key: city_key.clone(),
                misdeeds: m.clone(),
            }) as Arc<dyn Connector>
        }),
    );
    fed.bring_up(&[]).await?;

    let province = fed.node(PROVINCE)?.clone();
    let topic = province
        .create_topic(pb::CreateTopicRequest {
            title: "黄河白银段生态调研".into(),
            publish: true,
            ..Default::default()
        })
        .await?;
    for county in [JINGYUAN, HUINING] {
        province
            .assign(pb::AssignRequest {
                topic_id: topic.record_id.clone(),
                assignee: county.into(),
                title: format!("{county} 调研"),
                due_date: "2026-12-31".into(),
                ..Default::default()
            })
            .await?;
    }
    for county in [JINGYUAN, HUINING] {
        let code = county.to_string();
        wait(&fed, &format!("{county} to receive its task"), |f| {
            f.node(&code)
                .ok()
                .and_then(|n| n.tasks().ok())
                .is_some_and(|t| !t.tasks.is_empty())
        })
        .await?;
        let node = fed.node(county)?;
        let task = node.tasks()?.tasks.remove(0);
        node.acknowledge(&task.id).await?;
        if county == JINGYUAN {
            node.submit(pb::SubmitRequest {
                assignment_id: task.id.clone(),
                text: "靖远县调研报告：沿黄乡镇饮水水质波动".into(),
                ..Default::default()
            })
            .await?;
        }
    }

    // the genuine acknowledgement of 靖远县 gets through (in reversed batches)
    wait(
        &fed,
        "the province to see 靖远县's acknowledgement",
        |f| assignment_at(f, PROVINCE, JINGYUAN).is_some_and(|a| a.acknowledged),
    )
    .await?;
    // the alteration and the forgery are quarantined at the province, blamed on no county
    wait(
        &fed,
        "the province to quarantine the altered and the forged report",
        |f| {
            f.node(PROVINCE)
                .ok()
                .and_then(|n| n.quarantine_view().ok())
                .is_some_and(|q| q.entries.len() >= 2)
        },
    )
    .await?;
    // the city's pretend acknowledgement is refused in the record's history
    wait(
        &fed,
        "the province to refuse the city's acknowledgement",
        |f| assignment_at(f, PROVINCE, HUINING).is_some_and(|a| !a.refused.is_empty()),
    )
    .await?;

    let q = province.quarantine_view()?;
    assert!(
        q.entries.iter().all(|e| e.received_from == BAIYIN),
        "everything refused came over the city's link: {q:?}"
    );
    assert!(
        q.entries.iter().all(|e| e.category == "bad signature"),
        "{q:?}"
    );
    assert!(
        province.status()?.flagged.is_empty(),
        "no county is framed for equivocation"
    );

    let jingyuan = assignment_at(&fed, PROVINCE, JINGYUAN).expect("held");
    assert!(
        jingyuan.submissions.is_empty(),
        "neither the altered nor the forged report was applied: {:?}",
        jingyuan.submissions
    );
    assert_eq!(jingyuan.state, "acknowledged");

    let huining = assignment_at(&fed, PROVINCE, HUINING).expect("held");
    assert!(
        !huining.acknowledged,
        "the dropped 签收 never arrived, and the tree shows it"
    );
    assert!(
        huining
            .refused
            .iter()
            .any(|r| r.contains("620400") && r.contains("only the assignee")),
        "{:?}",
        huining.refused
    );
    let tree = liandong::cli::print::topic(&province.topic_view(&topic.record_id)?);
    assert!(tree.contains("会宁县") && tree.contains("签收 ✗"), "{tree}");
    // while 会宁县 itself did acknowledge
    let own = fed.node(HUINING)?.tasks()?.tasks.remove(0);
    assert!(own.acknowledged);

    let m = misdeeds
        .lock()
        .map(|m| (m.altered, m.forged, m.dropped, m.injected))
        .unwrap_or_default();
    assert_eq!(m, (1, 1, 1, 1), "the city did each misdeed once");
    drop(province);
    fed.stop_all().await;
    Ok(())
}
