//! Forged events: refused, quarantined with the reason, never stored, and the node goes on.
//! Pushed straight into a node's ingest, and over the network by a peer posing as a county.
mod common;

use anyhow::{bail, Context, Result};
use common::*;
use ed25519_dalek::SigningKey;
use liandong::domain::record::RecordKey;
use liandong::event::{self, hlc, ChainHead, Envelope};
use liandong::node::Node;
use liandong::pb::{self, audience::Kind, event::Body, sync_frame::Kind as Frame};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn now_hlc(node: &Node) -> u64 {
    hlc::tick(0, node.now_ms())
}

/// A report of `origin` up to `to`, signed with `key` (which may well not be `origin`'s).
fn report_event(key: &SigningKey, origin: &str, head: &ChainHead, at: u64, to: &str) -> Envelope {
    event::seal(
        key,
        origin,
        head,
        at,
        Kind::Ancestors(to.into()),
        Body::ReportSent(pb::ReportSent {
            report_id: liandong::domain::ids::new(origin).as_bytes().to_vec(),
            to: to.into(),
            kind: pb::ReportKind::PublicOpinion as i32,
            title: "关于沿黄乡镇饮水安全的社情民意信息".into(),
            body: "……".into(),
        }),
    )
}

/// Guidance of `origin` to its whole subtree, signed with `key`.
fn guidance_event(key: &SigningKey, origin: &str, head: &ChainHead, at: u64) -> Envelope {
    event::seal(
        key,
        origin,
        head,
        at,
        Kind::Subtree(origin.into()),
        Body::GuidanceIssued(pb::GuidanceIssued {
            guidance_id: liandong::domain::ids::new(origin).as_bytes().to_vec(),
            title: "伪造的通知".into(),
            body: "……".into(),
        }),
    )
}

fn record_of(env: &Envelope) -> RecordKey {
    RecordKey::of(env.body().expect("a known kind")).expect("a record key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_event_is_quarantined() -> Result<()> {
    // 榆中县 620123 is registered but offline: part B poses as it.
    let mut fed = gansu_federation(&[YUZHONG]).await?;
    let province = fed.node(PROVINCE)?.clone();
    let lanzhou = fed.node(LANZHOU)?.clone();

    // ---- A: frames pushed into the province's ingest as if 兰州市 relayed them ----
    // 1. A county's real key claiming to be the province, with the province's next seq.
    let chain = province.store().own_chain()?;
    let posing = guidance_event(fed.key(YONGDENG)?, PROVINCE, &chain, now_hlc(&province));
    let ingested = province
        .ingest(LANZHOU, vec![posing.signed_bytes()], None)
        .await?;
    assert_eq!(ingested.refused, 1, "{ingested:?}");
    assert_eq!(ingested.stored, 0);
    // 2. A random key claiming to be 榆中县 (which has authored nothing).
    let random = report_event(
        &event::generate_key(),
        YUZHONG,
        &ChainHead::default(),
        now_hlc(&province),
        PROVINCE,
    );
    let ingested = province
        .ingest(LANZHOU, vec![random.signed_bytes()], None)
        .await?;
    assert_eq!(ingested.refused, 1, "{ingested:?}");

    let q = province.quarantine_view()?.entries;
    assert_eq!(q.len(), 2, "{q:#?}");
    for (entry, forged) in q.iter().zip([&posing, &random]) {
        assert!(
            entry.reason.contains("signature"),
            "the reason names the signature: {}",
            entry.reason
        );
        assert_eq!(entry.origin, forged.origin());
        assert_eq!(entry.received_from, LANZHOU);
        assert!(!province.store().has_event(&forged.id)?);
        assert!(province.store().state(&record_of(forged))?.is_none());
    }
    assert_eq!(province.status()?.quarantined, 2);
    // What an operator sees: `liandong quarantine list | show` against the running node.
    let listed = cli(&fed, PROVINCE, &["--json", "quarantine", "list"])?;
    let listed: serde_json::Value = serde_json::from_str(&listed)?;
    let entries = listed["entries"].as_array().context("entries")?;
    assert_eq!(entries.len(), 2, "{listed}");
    let first = entries[0]["id"].as_str().context("id")?;
    // Abbreviated as the CLI shows it: the last 8 hex digits.
    let shown = cli(
        &fed,
        PROVINCE,
        &["quarantine", "show", &first[first.len() - 8..]],
    )?;
    assert!(shown.contains("category bad signature"), "{shown}");
    assert!(shown.contains(&format!("from link {LANZHOU}")), "{shown}");
    assert!(
        shown.contains("guidance_issued") || shown.contains("report_sent"),
        "{shown}"
    );
    let text = cli(&fed, PROVINCE, &["quarantine", "list"])?;
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("signature"), "{text}");
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_liandong"))
        .args([
            "--api",
            &fed.running(PROVINCE)?.api_url(),
            "quarantine",
            "show",
            "ffffffff",
        ])
        .env(
            "LIANDONG_TOKEN",
            fed.running(PROVINCE)?.api_token().secret(),
        )
        .env_remove("LIANDONG_CONFIG")
        .output()?;
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("ffffffff"),
        "the error names what was not found: {err}"
    );
    assert!(province.guidance_list()?.guidance.is_empty());
    assert!(province.report_list()?.reports.is_empty());

    // The province goes on: its next own event takes the seq the forger claimed, is stored,
    // and reaches the counties.
    let g = province.send_guidance("真实的通知", "……", &[]).await?;
    assert_eq!(g.seq, posing.seq());
    let g = id_of(&g);
    for c in [LANZHOU, YONGDENG, JINGYUAN] {
        wait_guidance(&fed, c, g).await?;
    }

    // ---- B: over the network, a peer posing as 榆中县 sends 兰州市 a batch ----
    // Over mutual TLS with 榆中县's certificate: the transport lets it speak for 榆中县 only.
    let mut client = fed.federation_client(LANZHOU, YUZHONG).await?;
    let (tx, rx) = mpsc::channel(16);
    tx.send(pb::SyncFrame {
        kind: Some(Frame::Hello(pb::Hello {
            protocol: liandong::sync::PROTOCOL,
            committee: YUZHONG.into(),
            resume_from: 0,
            roster_version: 0,
            ..Default::default()
        })),
    })
    .await?;
    let mut inbound = client.sync(ReceiverStream::new(rx)).await?.into_inner();
    match tokio::time::timeout(WAIT, inbound.message()).await?? {
        Some(pb::SyncFrame {
            kind: Some(Frame::Hello(h)),
        }) => assert_eq!(h.committee, LANZHOU),
        other => bail!("兰州市 did not answer with its Hello: {other:?}"),
    }
    // The forged one: 榆中县's real key claiming to be the province.
    let chain = province.store().own_chain()?;
    let forged = guidance_event(fed.key(YUZHONG)?, PROVINCE, &chain, now_hlc(&lanzhou));
    // The legit one: a report 榆中县 really signed; it has authored nothing, so seq 1.
    let legit = report_event(
        fed.key(YUZHONG)?,
        YUZHONG,
        &ChainHead::default(),
        now_hlc(&lanzhou),
        PROVINCE,
    );
    // Out of scope: a notice the province really signed for 白银市 only, which nothing under
    // 兰州市 may see, pushed by 榆中县's link. (Numbered well past the province's chain, so
    // that it never meets the province's own events.) An event of 白银市's counties would be
    // refused earlier, as by an unknown author: 兰州市 holds the registrations of its lineage
    // only, and 靖远县 is not in it.
    let ahead = ChainHead {
        seq: chain.seq + 50,
        hash: Some([7; 32]),
    };
    let elsewhere = event::seal(
        fed.key(PROVINCE)?,
        PROVINCE,
        &ahead,
        now_hlc(&lanzhou),
        Kind::Committees(pb::CommitteeList {
            codes: vec![BAIYIN.into()],
        }),
        Body::GuidanceIssued(pb::GuidanceIssued {
            guidance_id: liandong::domain::ids::new(PROVINCE).as_bytes().to_vec(),
            title: "白银市专属通知".into(),
            body: "……".into(),
        }),
    );
    const BATCH: u64 = 1;
    tx.send(pb::SyncFrame {
        kind: Some(Frame::Batch(pb::Batch {
            batch_id: BATCH,
            events: vec![
                forged.signed_bytes(),
                legit.signed_bytes(),
                elsewhere.signed_bytes(),
            ],
            up_to: 0,
            backfill_complete_at: 0,
            sender_head: 1,
            sender_chain_seq: 0,
            sender_chain_hash: vec![],
        })),
    })
    .await?;
    // 兰州市 acknowledges the batch (once durable) and says one event was refused. It also
    // streams us what 榆中县 may see; skip that.
    let ack = tokio::time::timeout(WAIT, async {
        loop {
            match inbound.message().await? {
                Some(pb::SyncFrame {
                    kind: Some(Frame::Ack(a)),
                }) if a.batch_id == BATCH => return anyhow::Ok(a),
                Some(_) => continue,
                None => bail!("兰州市 closed the stream before acknowledging"),
            }
        }
    })
    .await
    .context("no Ack from 兰州市")??;
    assert_eq!(ack.refused, 2);

    let q = lanzhou.quarantine_view()?.entries;
    assert_eq!(q.len(), 2, "{q:#?}");
    let by_category = |c: &str| q.iter().find(|e| e.category == c).cloned();
    let bad_sig = by_category("bad signature").context("the forgery's entry")?;
    assert_eq!(bad_sig.origin, PROVINCE);
    assert!(bad_sig.reason.contains("signature"), "{}", bad_sig.reason);
    assert_eq!(bad_sig.received_from, YUZHONG);
    let scope =
        by_category("out of scope").with_context(|| format!("the out-of-scope entry: {q:#?}"))?;
    assert_eq!(scope.origin, PROVINCE);
    assert_eq!(scope.category, "out of scope", "{scope:#?}");
    assert!(scope.reason.contains(LANZHOU), "{}", scope.reason);
    assert_eq!(scope.received_from, YUZHONG);
    assert!(!lanzhou.store().has_event(&elsewhere.id)?);
    assert!(!lanzhou.store().has_event(&forged.id)?);
    assert!(lanzhou.store().state(&record_of(&forged))?.is_none());
    // The rest of the batch was applied, and relayed up to the province.
    assert!(lanzhou.store().has_event(&legit.id)?);
    let report_id = match record_of(&legit) {
        RecordKey::Report(id) => id,
        other => bail!("{other:?}"),
    };
    assert!(report(&fed, LANZHOU, report_id).is_some());
    wait(&fed, "the province to receive 榆中县's report", |f| {
        report(f, PROVINCE, report_id).is_some()
    })
    .await?;
    // The forgery went nowhere: the province's quarantine is still the two of part A.
    assert_eq!(province.quarantine_view()?.entries.len(), 2);
    assert!(!province.store().has_event(&forged.id)?);
    drop(tx);
    drop(inbound);

    // Both nodes go on working.
    province.acknowledge_report(&report_id.to_string()).await?;
    wait(
        &fed,
        "兰州市 to see the province's acknowledgement",
        |f| report(f, LANZHOU, report_id).is_some_and(|r| r.record.acknowledged),
    )
    .await?;
    for n in running_nodes(&fed) {
        assert_log_clean(n)?;
    }
    drop((province, lanzhou));
    fed.stop_all().await;
    Ok(())
}

/// A forger who reuses a (origin, seq) that the node already holds must be refused for what
/// it is, a bad signature, and must not get the origin accused of equivocation: only two
/// events that both carry the origin's valid signature prove that the origin signed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_event_with_a_taken_seq_is_refused_for_its_signature() -> Result<()> {
    let mut fed = gansu_federation(&[]).await?;
    let lanzhou = fed.node(LANZHOU)?.clone();
    // 兰州市 holds the province's seq 1 (its own registration); forge another seq 1.
    assert!(lanzhou.store().by_origin(PROVINCE, 1)?.is_some());
    let forged = guidance_event(
        &event::generate_key(),
        PROVINCE,
        &ChainHead::default(),
        now_hlc(&lanzhou),
    );
    let ingested = lanzhou
        .ingest(PROVINCE, vec![forged.signed_bytes()], None)
        .await?;
    assert_eq!(ingested.refused, 1, "{ingested:?}");
    assert!(!lanzhou.store().has_event(&forged.id)?);
    let q = lanzhou.quarantine_view()?.entries;
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(
        q[0].reason.contains("signature"),
        "a forgery is refused for its signature, not blamed on {PROVINCE}: {}",
        q[0].reason
    );
    drop(lanzhou);
    fed.stop_all().await;
    Ok(())
}

/// A message over the link's size limit ends the session and is recorded in the quarantine
/// with what was wrong; the node goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_message_is_quarantined_and_the_node_goes_on() -> Result<()> {
    let mut fed = gansu_federation(&[YUZHONG]).await?;
    let lanzhou = fed.node(LANZHOU)?.clone();
    let limit = fed.sync.max_message_bytes;
    let client = fed.federation_client(LANZHOU, YUZHONG).await?;
    let mut client = client
        .max_encoding_message_size(limit * 2)
        .max_decoding_message_size(limit * 2);
    let (tx, rx) = mpsc::channel::<pb::SyncFrame>(4);
    tx.send(pb::SyncFrame {
        kind: Some(Frame::Hello(pb::Hello {
            protocol: liandong::sync::PROTOCOL,
            committee: YUZHONG.into(),
            ..Default::default()
        })),
    })
    .await?;
    let mut inbound = client.sync(ReceiverStream::new(rx)).await?.into_inner();
    let _hello = tokio::time::timeout(WAIT, inbound.message()).await??;
    // One event of more than the limit: the decoder refuses the message before reading it.
    tx.send(pb::SyncFrame {
        kind: Some(Frame::Batch(pb::Batch {
            batch_id: 1,
            events: vec![prost::Message::encode_to_vec(&pb::SignedEvent {
                event: vec![0x20; limit + 1024],
                signature: vec![0; 64],
            })],
            ..Default::default()
        })),
    })
    .await?;
    tokio::time::timeout(WAIT, async {
        while let Ok(Some(_)) = inbound.message().await {}
    })
    .await
    .context("兰州市 did not end the session")?;
    wait(&fed, "兰州市 to quarantine the message", |_| {
        lanzhou
            .quarantine_view()
            .is_ok_and(|q| !q.entries.is_empty())
    })
    .await?;
    let q = lanzhou.quarantine_view()?.entries;
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(q[0].reason.contains("size limit"), "{}", q[0].reason);
    assert!(q[0].reason.contains("max_message_kib"), "{}", q[0].reason);
    assert_eq!(q[0].received_from, YUZHONG);
    drop(tx);
    // 兰州市 goes on: guidance from the province still reaches it and its other county.
    let g = fed
        .node(PROVINCE)?
        .send_guidance("之后的通知", "……", &[])
        .await?;
    let g = id_of(&g);
    for c in [LANZHOU, YONGDENG] {
        wait_guidance(&fed, c, g).await?;
    }
    drop(lanzhou);
    fed.stop_all().await;
    Ok(())
}

/// Runs the `liandong` CLI against a running node of `fed`, with its token; its stdout.
fn cli(fed: &liandong::fixture::Federation, code: &str, args: &[&str]) -> Result<String> {
    let running = fed.running(code)?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liandong"))
        .args(["--api", &running.api_url()])
        .args(args)
        .env("LIANDONG_TOKEN", running.api_token().secret())
        .env_remove("LIANDONG_CONFIG")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "liandong {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// An event of a kind this version does not know (from a newer node), properly signed: kept
/// byte for byte, forwarded by its audience to the counties, applied to nothing, refused
/// nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kind_is_kept_and_forwarded_but_not_applied() -> Result<()> {
    use prost::Message;
    let mut fed = gansu_federation(&[]).await?;
    let province = fed.node(PROVINCE)?.clone();
    let chain = province.store().own_chain()?;
    let mut event = pb::Event {
        id: liandong::domain::ids::new(PROVINCE).as_bytes().to_vec(),
        origin: PROVINCE.into(),
        seq: chain.seq + 1,
        prev: chain.hash.map(|h| h.to_vec()).unwrap_or_default(),
        hlc: now_hlc(&province),
        audience: Some(pb::Audience {
            kind: Some(Kind::Subtree(PROVINCE.into())),
        }),
        body: None,
    }
    .encode_to_vec();
    // Field 200 of Event: a body kind added by a later version.
    prost::encoding::string::encode(200, &"协商议程（新版本）".to_string(), &mut event);
    let signature = ed25519_dalek::Signer::sign(fed.key(PROVINCE)?, &event)
        .to_bytes()
        .to_vec();
    let frame = pb::SignedEvent {
        event: event.clone(),
        signature,
    }
    .encode_to_vec();
    let id = Envelope::open(&frame)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .id;
    let r = province.ingest("import", vec![frame.clone()], None).await?;
    assert_eq!((r.stored, r.refused), (1, 0), "{r:?}");
    for c in [LANZHOU, YUZHONG, JINGYUAN, HUINING] {
        wait(&fed, &format!("{c} to hold the unknown kind"), |f| {
            holds(f, c, id)
        })
        .await?;
        let node = fed.node(c)?;
        let held = node.store().event_frame(&id)?.context("held")?;
        let kept = pb::SignedEvent::decode(held.as_slice())?;
        assert_eq!(
            kept.event, event,
            "{c} keeps the exact bytes, unknown field included"
        );
    }
    assert_nothing_quarantined(&fed)?;
    drop(province);
    fed.stop_all().await;
    Ok(())
}
