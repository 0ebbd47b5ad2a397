//! Scoped sync: an assignment and its whole history stay on the path between the assigner
//! and the assignee; no other county (same city or not) and no other city ever stores it.
mod common;

use std::collections::HashSet;

use anyhow::Result;
use common::*;
use liandong::domain::record::{AssignmentStatus, RecordKey};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sibling_county_never_sees_anothers_assignment() -> Result<()> {
    let mut fed = gansu_federation(&[]).await?;
    let province = fed.node(PROVINCE)?.clone();
    let lanzhou = fed.node(LANZHOU)?.clone();
    let yuzhong = fed.node(YUZHONG)?.clone();

    // Two assignments for 榆中县 620123: one from the province directly (relayed by 兰州市),
    // one split by 兰州市 from its own; with their whole history.
    let t = province
        .create_topic(topic("黄河流域生态保护专题调研"))
        .await?;
    let direct = id_of(
        &province
            .assign(assign(&t.record_id, "", YUZHONG, "省直接交办榆中县", 1))
            .await?,
    );
    let a_lz = id_of(
        &province
            .assign(assign(&t.record_id, "", LANZHOU, "兰州段", 1))
            .await?,
    );
    wait_status(&fed, LANZHOU, a_lz, AssignmentStatus::Issued).await?;
    lanzhou.acknowledge(&a_lz.to_string()).await?;
    let split = id_of(
        &lanzhou
            .assign(assign("", &a_lz.to_string(), YUZHONG, "榆中县子课题", 1))
            .await?,
    );
    for a in [direct, split] {
        wait_status(&fed, YUZHONG, a, AssignmentStatus::Issued).await?;
        yuzhong.acknowledge(&a.to_string()).await?;
        yuzhong.submit(submit(a, "榆中县调研报告")).await?;
    }
    for a in [direct, split] {
        wait_status(&fed, PROVINCE, a, AssignmentStatus::Submitted).await?;
        wait_status(&fed, LANZHOU, a, AssignmentStatus::Submitted).await?;
    }
    province.review(review(direct, true, "通过")).await?;
    lanzhou.review(review(split, false, "请补充数据")).await?;
    wait_status(&fed, YUZHONG, direct, AssignmentStatus::Approved).await?;
    wait_status(&fed, YUZHONG, split, AssignmentStatus::Returned).await?;

    // A province-wide notice sent after all of that: once the others hold it, their links
    // have carried (or filtered) everything before it.
    let g = id_of(&province.send_guidance("全省通知", "……", &[]).await?);
    let others = [YONGDENG, JINGYUAN, HUINING, BAIYIN];
    for c in others.into_iter().chain([YUZHONG, LANZHOU]) {
        wait_guidance(&fed, c, g).await?;
    }
    // ...including 兰州市's own log, which 永登县 reads from.
    wait(&fed, "永登县's cursor to reach 兰州市's head", |f| {
        let (Ok(y), Ok(l)) = (f.node(YONGDENG), f.node(LANZHOU)) else {
            return false;
        };
        y.store().cursor(LANZHOU).map(|c| c.position).unwrap_or(0) == l.durable_head()
    })
    .await?;

    let secret: HashSet<RecordKey> = [direct, split]
        .into_iter()
        .map(RecordKey::Assignment)
        .collect();
    for c in others {
        let node = fed.node(c)?;
        for a in [direct, split] {
            assert!(
                node.store().state(&RecordKey::Assignment(a))?.is_none(),
                "{c} holds a state for 榆中县's assignment {a}"
            );
        }
        let held = records_held(node)?;
        assert!(
            held.is_disjoint(&secret),
            "{c} stores events of 榆中县's assignments"
        );
        assert!(node.tasks()?.tasks.is_empty(), "{c} lists tasks");
        // Not sent and refused either: nothing out of scope arrived at all.
        assert!(node.quarantine_view()?.entries.is_empty(), "{c} quarantine");
    }
    // The path does hold them: assigner, relay, assignee.
    for c in [PROVINCE, LANZHOU, YUZHONG] {
        let held = records_held(fed.node(c)?)?;
        assert!(secret.is_subset(&held), "{c} should hold both assignments");
    }
    // 兰州市's own 分课题 is not for 榆中县.
    assert!(status(&fed, YUZHONG, a_lz).is_none());

    // A relay that pushes it anyway (here: straight into 永登县's ingest) is refused as out of
    // scope, quarantined, and still not stored.
    let frames: Vec<Vec<u8>> = log_envelopes(&lanzhou)?
        .into_iter()
        .filter(|e| {
            e.body()
                .and_then(|b| RecordKey::of(b).ok())
                .is_some_and(|k| secret.contains(&k))
        })
        .map(|e| e.signed_bytes())
        .collect();
    assert!(frames.len() >= 8, "issue, 签收, submission, review of each");
    let yongdeng = fed.node(YONGDENG)?.clone();
    let report = yongdeng.ingest(LANZHOU, frames.clone(), None).await?;
    assert_eq!(report.refused as usize, frames.len());
    assert_eq!(report.stored, 0);
    let q = yongdeng.quarantine_view()?.entries;
    assert_eq!(q.len(), frames.len());
    // The sibling's own events (签收, submission) are refused before the scope check: 永登县
    // does not even hold 榆中县's registration (the roster is scoped to each lineage).
    assert!(
        q.iter().all(|e| if e.origin == YUZHONG {
            e.category == "unknown author"
        } else {
            e.category == "out of scope"
        }),
        "{q:#?}"
    );
    assert!(q.iter().any(|e| e.category == "out of scope"), "{q:#?}");
    assert!(records_held(&yongdeng)?.is_disjoint(&secret));

    for n in running_nodes(&fed) {
        assert_log_clean(n)?;
    }
    drop((province, lanzhou, yuzhong, yongdeng));
    fed.stop_all().await;
    Ok(())
}
