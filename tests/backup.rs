//! Backup and moving data: an export of a node imported into a fresh node gives the same
//! derived states; `verify` passes on a good store and names what is wrong in a damaged one.
mod common;

use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use common::*;
use liandong::backup;
use liandong::clock::SystemClock;
use liandong::domain::record::{AssignmentStatus, RecordKey, RecordState};
use liandong::fixture::Federation;
use liandong::node::{Node, NodeSettings};
use liandong::store::memory::MemoryStorage;
use liandong::store::{NodeStore, Space, WriteBatch};

fn no_progress() -> impl FnMut(&str, u64, u64) {
    |_, _, _| {}
}

/// A round's worth of events at 兰州: a topic from the province, its assignment to 兰州, a
/// sub-assignment to 榆中 acknowledged, submitted, returned, resubmitted and approved, and a
/// notice from the province acknowledged by 兰州.
async fn round_at_lanzhou(fed: &Federation) -> Result<()> {
    let province = fed.node(PROVINCE)?.clone();
    let lanzhou = fed.node(LANZHOU)?.clone();
    let yuzhong = fed.node(YUZHONG)?.clone();
    let t = province
        .create_topic(topic("黄河流域生态保护专题调研"))
        .await?;
    let a = id_of(
        &province
            .assign(assign(&t.record_id, "", LANZHOU, "黄河兰州段水资源", 1))
            .await?,
    );
    wait_status(fed, LANZHOU, a, AssignmentStatus::Issued).await?;
    lanzhou.acknowledge(&a.to_string()).await?;
    let s = id_of(
        &lanzhou
            .assign(assign("", &a.to_string(), YUZHONG, "榆中县水土保持", 1))
            .await?,
    );
    wait_status(fed, YUZHONG, s, AssignmentStatus::Issued).await?;
    yuzhong.acknowledge(&s.to_string()).await?;
    yuzhong.submit(submit(s, "初稿")).await?;
    wait_status(fed, LANZHOU, s, AssignmentStatus::Submitted).await?;
    lanzhou.review(review(s, false, "请补充监测数据")).await?;
    wait_status(fed, YUZHONG, s, AssignmentStatus::Returned).await?;
    yuzhong.submit(submit(s, "修改稿")).await?;
    wait_status(fed, LANZHOU, s, AssignmentStatus::Submitted).await?;
    lanzhou.review(review(s, true, "通过")).await?;
    let g = province
        .send_guidance("关于做好联动协商调研的通知", "请按时报送。", &[])
        .await?;
    let g = id_of(&g);
    wait_guidance(fed, LANZHOU, g).await?;
    lanzhou.acknowledge_guidance(&g.to_string()).await?;
    wait_status(fed, LANZHOU, s, AssignmentStatus::Approved).await?;
    Ok(())
}

/// A fresh node for `code` of `fed`'s federation, over an in-memory store.
fn fresh_node(fed: &Federation, code: &str) -> Result<Node> {
    let settings = NodeSettings {
        code: code.to_string(),
        root_code: PROVINCE.to_string(),
        root_key: fed.key(PROVINCE)?.verifying_key(),
        max_clock_skew_ms: 300_000,
        max_group: 256,
    };
    let store = NodeStore::new(Arc::new(MemoryStorage::new()));
    Ok(Node::open(
        settings,
        fed.key(code)?.clone(),
        store,
        Arc::new(SystemClock),
    )?)
}

/// Every derived state a node holds, by record.
fn all_states(node: &Node) -> Result<Vec<(RecordKey, RecordState)>> {
    let mut out = Vec::new();
    for tag in [b't', b'a', b'g', b'r'] {
        out.extend(node.store().states_with_tag(tag)?);
    }
    Ok(out)
}

fn verify(node: &Node) -> Result<backup::VerifyReport> {
    let roster = node.roster().clone();
    Ok(backup::verify(
        node.store(),
        &roster,
        node.code(),
        &mut no_progress(),
    )?)
}

fn export_of(node: &Node, dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let path = dir.join(format!("{}.ldx", node.code()));
    backup::export_to_file(
        node.store(),
        node.code(),
        "兰州市政协",
        PROVINCE,
        node.now_ms(),
        &path,
        &mut no_progress(),
    )?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_into_a_fresh_node_gives_the_same_states() -> Result<()> {
    let fed = gansu_federation(&[]).await?;
    round_at_lanzhou(&fed).await?;
    let lanzhou = fed.node(LANZHOU)?.clone();
    let report = verify(&lanzhou)?;
    ensure!(
        report.ok(),
        "the live store verifies: {:?}",
        report.problems
    );

    let tmp = tempfile::tempdir()?;
    let file = export_of(&lanzhou, tmp.path())?;
    let header = backup::check_file(&file, &mut no_progress())?;
    assert_eq!(header.committee, LANZHOU);
    assert_eq!(header.events, lanzhou.durable_head());

    let fresh = fresh_node(&fed, LANZHOU)?;
    let summary = backup::import(&fresh, &file, &mut no_progress()).await?;
    assert_eq!(summary.stored, header.events, "{summary:?}");
    assert_eq!(summary.refused, 0, "{summary:?}");
    assert_eq!(fresh.durable_head(), lanzhou.durable_head());
    let want = all_states(&lanzhou)?;
    ensure!(want.len() >= 4, "the round left records: {}", want.len());
    assert_eq!(all_states(&fresh)?, want, "the same derived states");
    assert_eq!(
        fresh.store().own_chain()?,
        lanzhou.store().own_chain()?,
        "the restored node continues its own chain where the backup ends"
    );
    let report = verify(&fresh)?;
    ensure!(
        report.ok(),
        "the imported store verifies: {:?}",
        report.problems
    );
    assert_eq!(report.events, header.events);

    // Importing again changes nothing.
    let again = backup::import(&fresh, &file, &mut no_progress()).await?;
    assert_eq!(again.duplicates, header.events, "{again:?}");
    assert_eq!(fresh.durable_head(), lanzhou.durable_head());

    // The restored node authors on from its chain, and its events verify.
    let t = fresh.create_topic(topic("恢复后的第一个议题")).await?;
    assert_eq!(t.seq, lanzhou.store().own_chain()?.seq + 1);
    ensure!(verify(&fresh)?.ok());
    fresh.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_each_kind_of_damage() -> Result<()> {
    let fed = gansu_federation(&[]).await?;
    round_at_lanzhou(&fed).await?;
    let tmp = tempfile::tempdir()?;
    let file = export_of(fed.node(LANZHOU)?, tmp.path())?;
    let restored = || async {
        let node = fresh_node(&fed, LANZHOU)?;
        backup::import(&node, &file, &mut no_progress()).await?;
        ensure!(verify(&node)?.ok());
        anyhow::Ok(node)
    };
    let problems = |node: &Node| -> Result<String> {
        let r = verify(node)?;
        ensure!(!r.ok(), "verify found nothing wrong");
        Ok(r.problems.join("\n"))
    };
    let submission = |node: &Node| -> Result<(RecordKey, uuid::Uuid)> {
        let (rk, state) = node
            .store()
            .states_with_tag(b'a')?
            .into_iter()
            .find(|(_, s)| s.history().len() > 3)
            .context("an assignment with a history")?;
        Ok((rk, state.history()[1].event_id))
    };

    // 1. A stored frame altered on disk: its signature no longer verifies.
    let node = restored().await?;
    let (_, event) = submission(&node)?;
    let mut frame = node.store().event_frame(&event)?.context("held")?;
    let last = frame.len() - 1;
    frame[last] ^= 0x01; // inside the signature, the frame's last field
    let mut b = WriteBatch::default();
    b.put(Space::Events, event.as_bytes().to_vec(), frame);
    node.store().engine().commit(b)?;
    let p = problems(&node)?;
    assert!(
        p.contains(&event.to_string()) && p.contains("signature does not verify"),
        "{p}"
    );
    node.close().await;

    // 2. An index entry lost. A committee's registration has no state, so the record index
    //    lists its events: drop one entry there.
    let node = restored().await?;
    let lanzhou = RecordKey::Committee(*b"620100");
    let entry = node
        .store()
        .engine()
        .scan(Space::Records, &lanzhou.to_bytes(), None, usize::MAX)?
        .into_iter()
        .next()
        .context("the registration's index entry")?;
    let registration = uuid::Uuid::from_slice(&entry.1)?;
    let mut b = WriteBatch::default();
    b.delete(Space::Records, entry.0);
    node.store().engine().commit(b)?;
    let p = problems(&node)?;
    assert!(
        p.contains(&format!(
            "event {registration} of record 620100 is missing from the record index"
        )),
        "{p}"
    );
    node.close().await;

    //    An assignment lists its events in its state's history: drop one entry there.
    let node = restored().await?;
    let (rk, event) = submission(&node)?;
    let mut state: serde_json::Value = serde_json::from_slice(
        &node
            .store()
            .engine()
            .get(Space::State, &rk.to_bytes())?
            .context("the assignment's state")?,
    )?;
    let history = state
        .pointer_mut("/Assignment/history")
        .and_then(|h| h.as_array_mut())
        .context("the state's history")?;
    let before = history.len();
    history.retain(|h| h["event_id"] != serde_json::json!(event.to_string()));
    assert_eq!(history.len(), before - 1, "the entry was in the history");
    let mut b = WriteBatch::default();
    b.put(
        Space::State,
        rk.to_bytes().to_vec(),
        serde_json::to_vec(&state)?,
    );
    node.store().engine().commit(b)?;
    let p = problems(&node)?;
    assert!(
        p.contains(&format!(
            "event {event} of record {} is missing from the history of its stored state",
            rk.id_text()
        )),
        "{p}"
    );
    node.close().await;

    // 3. A derived state that is not the fold of its events.
    let node = restored().await?;
    let (rk, _) = submission(&node)?;
    let (other, other_state) = node
        .store()
        .states_with_tag(b'a')?
        .into_iter()
        .find(|(k, _)| *k != rk)
        .context("another assignment")?;
    assert_ne!(other, rk);
    let mut b = WriteBatch::default();
    b.put(
        Space::State,
        rk.to_bytes().to_vec(),
        serde_json::to_vec(&other_state)?,
    );
    node.store().engine().commit(b)?;
    let p = problems(&node)?;
    assert!(
        p.contains(&format!(
            "the stored state of {} differs from the fold",
            rk.id_text()
        )),
        "{p}"
    );
    node.close().await;

    // 4. A head counter that does not match the log.
    let node = restored().await?;
    let head = node.store().head()?;
    let mut b = WriteBatch::default();
    b.put(
        Space::Meta,
        b"head".to_vec(),
        (head + 3).to_be_bytes().to_vec(),
    );
    node.store().engine().commit(b)?;
    let p = problems(&node)?;
    assert!(
        p.contains(&format!("the head counter says {} events", head + 3)),
        "{p}"
    );
    node.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_export_file_is_refused_before_anything_is_imported() -> Result<()> {
    let fed = gansu_federation(&[]).await?;
    round_at_lanzhou(&fed).await?;
    let tmp = tempfile::tempdir()?;
    let file = export_of(fed.node(LANZHOU)?, tmp.path())?;
    let mut bytes = std::fs::read(&file)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let bad = tmp.path().join("bad.ldx");
    std::fs::write(&bad, &bytes)?;
    let node = fresh_node(&fed, LANZHOU)?;
    let err = backup::import(&node, &bad, &mut no_progress())
        .await
        .expect_err("a damaged file is refused");
    assert!(err.to_string().contains("checksum does not match"), "{err}");
    assert_eq!(node.durable_head(), 0, "nothing was imported");

    let truncated = tmp.path().join("short.ldx");
    std::fs::write(&truncated, &std::fs::read(&file)?[..middle])?;
    let err = backup::import(&node, &truncated, &mut no_progress())
        .await
        .expect_err("a truncated file is refused");
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(node.durable_head(), 0);
    node.close().await;
    Ok(())
}
