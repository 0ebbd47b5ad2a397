//! Key rotation and revocation over real nodes: a city's office PC is stolen with its key and
//! its TLS identity; its parent revokes the key, which every node of the federation learns;
//! what the thief then signs is refused (and quarantined) wherever it is pushed; the city gets
//! a new key by rotation and writes again; what it signed before stays valid everywhere —
//! also at a county that was offline throughout and receives it only after the rotation.
mod common;

use anyhow::{bail, Context, Result};
use common::*;
use liandong::domain::ids;
use liandong::event::{self, hlc, Envelope};
use liandong::pb::{self, audience::Kind, event::Body, sync_frame::Kind as Frame};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn revoked_at(fed: &liandong::fixture::Federation, at: &str, code: &str) -> Option<String> {
    let node = fed.node(at).ok()?;
    node.committee_list()
        .committees
        .into_iter()
        .find(|c| c.code == code && !c.revoked.is_empty())
        .map(|c| c.revoked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_everywhere_and_a_rotated_key_writes_again() -> Result<()> {
    // 永登县 is offline throughout: it receives everything only after the rotation.
    let mut fed = gansu_federation(&[YONGDENG]).await?;
    let province = fed.node(PROVINCE)?.clone();
    let lanzhou = fed.node(LANZHOU)?.clone();

    // Before the theft: a notice of 兰州市, signed with its key, reaches its counties.
    let before = id_of(&lanzhou.send_guidance("被盗前的通知", "……", &[]).await?);
    for c in [YUZHONG] {
        wait_guidance(&fed, c, before).await?;
    }

    // The PC is stolen. The province revokes 兰州市's key; every node that can hear from
    // 兰州市 learns it (its lineage: the province, itself, its counties). 白银市's branch never
    // held 兰州市's key, so it has nothing to revoke there.
    province.revoke_key(LANZHOU, "办公电脑被盗").await?;
    for c in [PROVINCE, LANZHOU, YUZHONG] {
        wait(
            &fed,
            &format!("{c} to know 兰州市's key is revoked"),
            |f| revoked_at(f, c, LANZHOU).is_some_and(|r| r.contains("办公电脑被盗")),
        )
        .await?;
    }
    for c in [BAIYIN, JINGYUAN, HUINING] {
        assert!(!fed.node(c)?.roster().knows(LANZHOU), "{c} knows 兰州市");
    }

    // The real node cannot write with the revoked key: it says what to do.
    let err = lanzhou
        .send_guidance("吊销后", "……", &[])
        .await
        .expect_err("a revoked key signs nothing");
    assert!(err.to_string().contains("rotate"), "{err}");

    // The thief signs a report to the province with the stolen key, continuing 兰州市's
    // chain, and pushes it to the province over mutual TLS with 兰州市's certificate.
    let chain = lanzhou.store().own_chain()?;
    let stolen = event::seal(
        fed.key(LANZHOU)?,
        LANZHOU,
        &chain,
        hlc::tick(0, province.now_ms()),
        Kind::Ancestors(PROVINCE.into()),
        Body::ReportSent(pb::ReportSent {
            report_id: ids::new(LANZHOU).as_bytes().to_vec(),
            to: PROVINCE.into(),
            kind: pb::ReportKind::WorkSummary as i32,
            title: "伪造的工作总结".into(),
            body: "……".into(),
        }),
    );
    let mut client = fed.federation_client(PROVINCE, LANZHOU).await?;
    let (tx, rx) = mpsc::channel(8);
    tx.send(pb::SyncFrame {
        kind: Some(Frame::Hello(pb::Hello {
            protocol: liandong::sync::PROTOCOL,
            committee: LANZHOU.into(),
            ..Default::default()
        })),
    })
    .await?;
    let mut inbound = client.sync(ReceiverStream::new(rx)).await?.into_inner();
    tx.send(pb::SyncFrame {
        kind: Some(Frame::Batch(pb::Batch {
            batch_id: 7,
            events: vec![stolen.signed_bytes()],
            up_to: 0,
            backfill_complete_at: 0,
            sender_head: 1,
            sender_chain_seq: 0,
            sender_chain_hash: vec![],
        })),
    })
    .await?;
    let ack = tokio::time::timeout(WAIT, async {
        loop {
            match inbound.message().await? {
                Some(pb::SyncFrame {
                    kind: Some(Frame::Ack(a)),
                }) if a.batch_id == 7 => return anyhow::Ok(a),
                Some(_) => continue,
                None => bail!("the province closed the stream before acknowledging"),
            }
        }
    })
    .await
    .context("no Ack from the province")??;
    assert_eq!(ack.refused, 1, "{ack:?}");
    drop((tx, inbound));
    let q = quarantine(&fed, PROVINCE)?;
    let entry = q
        .iter()
        .find(|e| e.id == stolen.id.to_string())
        .with_context(|| format!("the stolen-key event is not in the quarantine: {q:#?}"))?;
    assert_eq!(entry.category, "revoked key", "{entry:#?}");
    assert!(!province.store().has_event(&stolen.id)?);

    // A new key by rotation: the city installs it (node.key.next) and writes again.
    let new_key = event::generate_key();
    province
        .rotate_key(LANZHOU, &hex::encode(new_key.verifying_key().as_bytes()))
        .await?;
    wait(&fed, "兰州市 to receive its rotation", |f| {
        f.node(LANZHOU).is_ok_and(|n| {
            n.roster()
                .get(LANZHOU)
                .is_some_and(|m| m.key == new_key.verifying_key())
        })
    })
    .await?;
    lanzhou.add_key(new_key.clone());
    let after = lanzhou.send_guidance("换钥后的通知", "……", &[]).await?;
    fed.start(YONGDENG).await?;
    let after_event = event_of(&after);
    let after = id_of(&after);
    for c in [YUZHONG, YONGDENG] {
        wait_guidance(&fed, c, after).await?;
        let frame = fed
            .node(c)?
            .store()
            .event_frame(&after_event)?
            .context("the new notice's event")?;
        Envelope::open(&frame)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .verify(&new_key.verifying_key())
            .map_err(|e| anyhow::anyhow!("{c}: {e}"))?;
        // What the old key signed before the revocation stays valid.
        let old = guidance(&fed, c, before).context("the earlier notice")?;
        assert!(old.record.issuer.is_some(), "{c}: {old:?}");
    }
    // The late county knows the whole story: the new key is current, the old one revoked.
    assert!(fed
        .node(YONGDENG)?
        .roster()
        .get(LANZHOU)
        .is_some_and(|m| m.key == new_key.verifying_key()));
    // Nothing else was refused anywhere: only the thief's event.
    for c in ALL {
        let q = quarantine(&fed, c)?;
        let others: Vec<_> = q.iter().filter(|e| e.id != stolen.id.to_string()).collect();
        assert!(others.is_empty(), "{c}: {others:#?}");
    }
    drop((province, lanzhou));
    fed.stop_all().await;
    Ok(())
}
