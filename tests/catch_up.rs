//! A county that is offline catches up with exactly what it is entitled to: first a county
//! that was registered but never started, then the same county after a week offline.
mod common;

use std::collections::BTreeSet;

use anyhow::Result;
use common::*;
use liandong::domain::record::AssignmentStatus;
use uuid::Uuid;

/// Notices the province sends while 会宁县 is down ("a week offline").
const WEEK_OF_NOTICES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_county_catches_up() -> Result<()> {
    // 会宁县 620422 is registered by 白银市 but does not run yet.
    let mut fed = gansu_federation(&[HUINING]).await?;
    assert!(!fed.is_running(HUINING));
    let province = fed.node(PROVINCE)?.clone();
    let baiyin = fed.node(BAIYIN)?.clone();
    let lanzhou = fed.node(LANZHOU)?.clone();

    // ---- phase 1: work is issued while 会宁县 has never been online ----
    let t = province
        .create_topic(topic("黄河流域生态保护专题调研"))
        .await?;
    let a_by = id_of(
        &province
            .assign(assign(&t.record_id, "", BAIYIN, "白银段", 1))
            .await?,
    );
    let a_lz = id_of(
        &province
            .assign(assign(&t.record_id, "", LANZHOU, "兰州段", 1))
            .await?,
    );
    wait_status(&fed, BAIYIN, a_by, AssignmentStatus::Issued).await?;
    wait_status(&fed, LANZHOU, a_lz, AssignmentStatus::Issued).await?;
    baiyin.acknowledge(&a_by.to_string()).await?;
    lanzhou.acknowledge(&a_lz.to_string()).await?;
    let s_hn = id_of(
        &baiyin
            .assign(assign("", &a_by.to_string(), HUINING, "会宁县旱作农业", 1))
            .await?,
    );
    let s_jy = id_of(
        &baiyin
            .assign(assign("", &a_by.to_string(), JINGYUAN, "靖远县沿黄生态", 1))
            .await?,
    );
    let s_yz = id_of(
        &lanzhou
            .assign(assign("", &a_lz.to_string(), YUZHONG, "榆中县水土保持", 1))
            .await?,
    );
    let g1 = id_of(
        &province
            .send_guidance("关于做好联动协商成果汇总的通知", "请按时报送。", &[])
            .await?,
    );
    // Other traffic that 会宁县 must not get: its sibling's work, acknowledgements, a report.
    wait_status(&fed, JINGYUAN, s_jy, AssignmentStatus::Issued).await?;
    let jingyuan = fed.node(JINGYUAN)?.clone();
    jingyuan.acknowledge(&s_jy.to_string()).await?;
    jingyuan.submit(submit(s_jy, "靖远县调研报告")).await?;
    wait_guidance(&fed, JINGYUAN, g1).await?;
    jingyuan.acknowledge_guidance(&g1.to_string()).await?;
    jingyuan
        .send_report(BAIYIN, "public-opinion", "靖远县社情民意", "……")
        .await?;
    wait_status(&fed, YUZHONG, s_yz, AssignmentStatus::Issued).await?;
    fed.node(YUZHONG)?.acknowledge(&s_yz.to_string()).await?;
    wait_status(&fed, BAIYIN, s_jy, AssignmentStatus::Submitted).await?;
    drop(jingyuan);

    // What 会宁县 is entitled to, from the stores of every other node (every event exists at
    // least at its author), by the audience rules against the province's complete roster.
    let roster = province.roster().clone();
    let expected = entitled(&roster, &running_nodes(&fed), HUINING)?;
    // Derived by hand: the 3 registrations of its lineage (the province, 白银市 and itself:
    // a registration goes to the committees that can hear from the registered one), the
    // topic (published to the province's subtree), 会宁县's own sub-assignment, and the
    // province-wide guidance. Nothing of 靖远县's, 榆中县's or of the cities' own
    // assignments, acknowledgements and reports, nor the other committees' registrations.
    assert_eq!(expected.len(), 3 + 1 + 1 + 1, "entitled set: {expected:?}");

    fed.start(HUINING).await?;
    wait_status(&fed, HUINING, s_hn, AssignmentStatus::Issued).await?;
    wait_guidance(&fed, HUINING, g1).await?;
    wait(
        &fed,
        "会宁县 to hold everything it is entitled to",
        |f| {
            f.node(HUINING)
                .ok()
                .and_then(|n| log_ids(n).ok())
                .map(|ids| ids.into_iter().collect::<BTreeSet<_>>() == expected)
                .unwrap_or(false)
                && f.node(HUINING)
                    .is_ok_and(|n| n.durable_head() == expected.len() as u64)
        },
    )
    .await?;
    {
        let huining = fed.node(HUINING)?;
        assert_eq!(assert_log_clean(huining)?, expected.len());
        assert_eq!(huining.durable_head(), expected.len() as u64);
        assert!(status(&fed, HUINING, s_jy).is_none(), "the sibling's task");
        assert!(status(&fed, HUINING, a_by).is_none(), "the city's own task");
        assert!(huining.report_list()?.reports.is_empty());
        assert!(huining.quarantine_view()?.entries.is_empty());
        // Its lineage: the province, 白银市 and itself.
        assert_eq!(huining.roster().len(), 3);
    }

    // It can work at once: 签收, submit, acknowledge the guidance; 白银市 and the province see it.
    let huining = fed.node(HUINING)?.clone();
    huining.acknowledge(&s_hn.to_string()).await?;
    huining.submit(submit(s_hn, "会宁县调研报告 v1")).await?;
    huining.acknowledge_guidance(&g1.to_string()).await?;
    wait_status(&fed, BAIYIN, s_hn, AssignmentStatus::Submitted).await?;
    wait_status(&fed, PROVINCE, s_hn, AssignmentStatus::Submitted).await?;
    wait(
        &fed,
        "the province to see 会宁县's acknowledgement",
        |f| guidance(f, PROVINCE, g1).is_some_and(|g| g.record.acknowledged_by.contains(HUINING)),
    )
    .await?;
    // Its own three events: the 签收, the submission and the guidance acknowledgement.
    let own: Vec<Uuid> = log_ids(&huining)?
        .into_iter()
        .filter(|id| !expected.contains(id))
        .collect();
    assert_eq!(own.len(), 3);
    let before: BTreeSet<Uuid> = log_ids(&huining)?.into_iter().collect();
    let cursor_before = huining.store().cursor(BAIYIN)?;
    assert!(cursor_before.position > 0);
    drop(huining);

    // ---- phase 2: a week offline ----
    fed.stop(HUINING).await;
    let mut notices = Vec::new();
    for i in 0..WEEK_OF_NOTICES {
        let r = province
            .send_guidance(&format!("第{i}号通知"), "本周工作安排。", &[])
            .await?;
        notices.push(id_of(&r));
    }
    baiyin
        .review(review(s_hn, false, "请补充旱作农业示范区数据"))
        .await?;
    let to_huining = id_of(
        &baiyin
            .send_guidance("白银市致会宁县的通知", "……", &[HUINING.to_string()])
            .await?,
    );
    let to_jingyuan = id_of(
        &baiyin
            .send_guidance("白银市致靖远县的通知", "……", &[JINGYUAN.to_string()])
            .await?,
    );
    // Let the week's work reach 白银市 before 会宁县 comes back.
    let last = *notices.last().expect("notices");
    wait_guidance(&fed, BAIYIN, last).await?;

    let mut expected2 = entitled(&roster, &running_nodes(&fed), HUINING)?;
    expected2.extend(before.iter().copied());
    // By hand: what it held, the week's notices, 白银市's return (退回) of its result, and
    // 白银市's notice to it; not the notice to 靖远县.
    assert_eq!(expected2.len(), before.len() + WEEK_OF_NOTICES + 1 + 1);

    fed.start(HUINING).await?;
    wait(&fed, "会宁县 to catch up on the week", |f| {
        f.node(HUINING)
            .ok()
            .and_then(|n| log_ids(n).ok())
            .map(|ids| ids.into_iter().collect::<BTreeSet<_>>() == expected2)
            .unwrap_or(false)
            && f.node(HUINING)
                .is_ok_and(|n| n.durable_head() == expected2.len() as u64)
    })
    .await?;
    let huining = fed.node(HUINING)?.clone();
    assert_eq!(assert_log_clean(&huining)?, expected2.len());
    assert_eq!(huining.durable_head(), expected2.len() as u64);
    for n in &notices {
        assert!(guidance(&fed, HUINING, *n).is_some());
    }
    assert!(guidance(&fed, HUINING, to_huining).is_some());
    assert!(guidance(&fed, HUINING, to_jingyuan).is_none());
    assert_eq!(
        huining.guidance_list()?.guidance.len(),
        1 + WEEK_OF_NOTICES + 1
    );
    assert_eq!(
        status(&fed, HUINING, s_hn),
        Some(AssignmentStatus::Returned)
    );
    // Resumed from its cursor, which moved on with the parent's log.
    wait(&fed, "会宁县's cursor to reach 白银市's head", |f| {
        let (Ok(h), Ok(b)) = (f.node(HUINING), f.node(BAIYIN)) else {
            return false;
        };
        h.store().cursor(BAIYIN).map(|c| c.position).unwrap_or(0) == b.durable_head()
    })
    .await?;
    assert!(huining.store().cursor(BAIYIN)?.position > cursor_before.position);

    // And it works on: resubmit after the return; 白银市 approves.
    huining
        .submit(submit(s_hn, "会宁县调研报告 v2（补充示范区数据）"))
        .await?;
    wait_status(&fed, BAIYIN, s_hn, AssignmentStatus::Submitted).await?;
    baiyin.review(review(s_hn, true, "通过")).await?;
    wait_status(&fed, HUINING, s_hn, AssignmentStatus::Approved).await?;
    let a = assignment(&fed, HUINING, s_hn).expect("held");
    assert_eq!(a.record.submissions.len(), 2);
    assert_eq!(assert_log_clean(&huining)?, expected2.len() + 2);

    assert_nothing_quarantined(&fed)?;
    for n in running_nodes(&fed) {
        assert_log_clean(n)?;
    }
    drop((province, baiyin, lanzhou, huining));
    fed.stop_all().await;
    Ok(())
}
