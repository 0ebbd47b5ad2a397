//! A whole linked-consultation round over seven real nodes (real tonic on 127.0.0.1, sled in
//! temporary folders): province → cities → counties and back.
mod common;

use std::collections::BTreeSet;

use anyhow::Result;
use common::*;
use liandong::domain::record::{AssignmentStatus, RecordKey};
use liandong::pb;
use uuid::Uuid;

/// Every assignment of a topic view, sub-assignments included.
fn flatten(views: &[pb::AssignmentView], out: &mut Vec<pb::AssignmentView>) {
    for v in views {
        out.push(v.clone());
        flatten(&v.children, out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_level_round() -> Result<()> {
    let mut fed = gansu_federation(&[]).await?;
    let province = fed.node(PROVINCE)?.clone();
    let lanzhou = fed.node(LANZHOU)?.clone();
    let baiyin = fed.node(BAIYIN)?.clone();

    // 议题 published to the whole province, 分课题 to the two cities.
    let t = province
        .create_topic(topic("黄河流域生态保护和高质量发展专题调研"))
        .await?;
    let topic_id = t.record_id.clone();
    let a_lz = id_of(
        &province
            .assign(assign(&topic_id, "", LANZHOU, "黄河兰州段水资源", 1))
            .await?,
    );
    let a_by = id_of(
        &province
            .assign(assign(&topic_id, "", BAIYIN, "黄河白银段水土保持", 1))
            .await?,
    );
    wait_status(&fed, LANZHOU, a_lz, AssignmentStatus::Issued).await?;
    wait_status(&fed, BAIYIN, a_by, AssignmentStatus::Issued).await?;
    lanzhou.acknowledge(&a_lz.to_string()).await?;
    baiyin.acknowledge(&a_by.to_string()).await?;

    // 子课题: each city splits its assignment for its two counties.
    let parent_lz = a_lz.to_string();
    let parent_by = a_by.to_string();
    let s_yz = id_of(
        &lanzhou
            .assign(assign("", &parent_lz, YUZHONG, "榆中县水土保持", 2))
            .await?,
    );
    let s_yd = id_of(
        &lanzhou
            .assign(assign("", &parent_lz, YONGDENG, "永登县节水灌溉", 1))
            .await?,
    );
    let s_jy = id_of(
        &baiyin
            .assign(assign("", &parent_by, JINGYUAN, "靖远县沿黄生态修复", 1))
            .await?,
    );
    let s_hn = id_of(
        &baiyin
            .assign(assign("", &parent_by, HUINING, "会宁县旱作农业", 1))
            .await?,
    );
    let subs = [
        (YUZHONG, s_yz),
        (YONGDENG, s_yd),
        (JINGYUAN, s_jy),
        (HUINING, s_hn),
    ];

    // Counties acknowledge (签收) and submit.
    for (county, a) in subs {
        wait_status(&fed, county, a, AssignmentStatus::Issued).await?;
        fed.node(county)?.acknowledge(&a.to_string()).await?;
        fed.node(county)?
            .submit(submit(a, &format!("{county} 调研报告 v1")))
            .await?;
    }
    // The province follows the sub-assignments it never issued, through the relays.
    for (_, a) in subs {
        wait_status(&fed, PROVINCE, a, AssignmentStatus::Submitted).await?;
    }

    // 兰州 returns 榆中's result (退回); 榆中 resubmits; then everything is approved.
    wait_status(&fed, LANZHOU, s_yz, AssignmentStatus::Submitted).await?;
    lanzhou
        .review(review(s_yz, false, "请补充近三年水土流失监测数据"))
        .await?;
    wait_status(&fed, YUZHONG, s_yz, AssignmentStatus::Returned).await?;
    fed.node(YUZHONG)?
        .submit(submit(s_yz, "榆中县调研报告 v2（补充2023—2025年监测数据）"))
        .await?;
    wait_status(&fed, LANZHOU, s_yz, AssignmentStatus::Submitted).await?;
    for (city, a) in [
        (&lanzhou, s_yz),
        (&lanzhou, s_yd),
        (&baiyin, s_jy),
        (&baiyin, s_hn),
    ] {
        wait_status(&fed, city.code(), a, AssignmentStatus::Submitted).await?;
        city.review(review(a, true, "通过")).await?;
    }
    lanzhou.submit(submit(a_lz, "兰州市汇总报告")).await?;
    baiyin.submit(submit(a_by, "白银市汇总报告")).await?;
    for a in [a_lz, a_by] {
        wait_status(&fed, PROVINCE, a, AssignmentStatus::Submitted).await?;
        province.review(review(a, true, "通过")).await?;
    }

    // 指导意见 to the whole subtree, acknowledged by all six committees below.
    let g = id_of(
        &province
            .send_guidance(
                "关于做好联动协商成果汇总的通知",
                "请于12月20日前报送。",
                &[],
            )
            .await?,
    );
    let below: Vec<&str> = ALL.iter().copied().filter(|c| *c != PROVINCE).collect();
    for c in &below {
        wait_guidance(&fed, c, g).await?;
        fed.node(c)?.acknowledge_guidance(&g.to_string()).await?;
    }

    // 报送: a county's report goes up to the province, which acknowledges it.
    let r = id_of(
        &fed.node(JINGYUAN)?
            .send_report(
                PROVINCE,
                "public-opinion",
                "关于沿黄乡镇饮水安全的社情民意信息",
                "建议加强监测。",
            )
            .await?,
    );
    wait(&fed, "the province to receive the report", |f| {
        report(f, PROVINCE, r).is_some()
    })
    .await?;
    province.acknowledge_report(&r.to_string()).await?;

    // ---- wait for the round to settle everywhere it should ----
    let all_assignments = [a_lz, a_by, s_yz, s_yd, s_jy, s_hn];
    for a in all_assignments {
        wait_status(&fed, PROVINCE, a, AssignmentStatus::Approved).await?;
    }
    for a in [a_lz, s_yz, s_yd] {
        wait_status(&fed, LANZHOU, a, AssignmentStatus::Approved).await?;
    }
    for a in [a_by, s_jy, s_hn] {
        wait_status(&fed, BAIYIN, a, AssignmentStatus::Approved).await?;
    }
    for (county, a) in subs {
        wait_status(&fed, county, a, AssignmentStatus::Approved).await?;
    }
    wait(&fed, "the province to see all six acknowledgements", |f| {
        guidance(f, PROVINCE, g).is_some_and(|g| g.record.acknowledged_by.len() == 6)
    })
    .await?;
    wait(
        &fed,
        "靖远县 and 白银市 to see the report acknowledged",
        |f| {
            [JINGYUAN, BAIYIN]
                .iter()
                .all(|c| report(f, c, r).is_some_and(|r| r.record.acknowledged))
        },
    )
    .await?;

    // ---- the province's view of the topic ----
    let view = province.topic_view(&topic_id)?;
    assert_eq!(view.state, "published");
    assert!(
        (view.progress - 1.0).abs() < 1e-9,
        "topic progress at the province is {}, expected 100 %",
        view.progress
    );
    assert_eq!(view.assignments.len(), 2, "two 分课题 at the top");
    let mut flat = Vec::new();
    flatten(&view.assignments, &mut flat);
    assert_eq!(
        flat.iter().map(|a| a.id.clone()).collect::<BTreeSet<_>>(),
        all_assignments.iter().map(Uuid::to_string).collect(),
        "the province's tree holds all six assignments"
    );
    for a in &flat {
        assert_eq!(a.state, "approved", "{} {} at the province", a.id, a.title);
        assert!(a.acknowledged, "{} acknowledged", a.title);
        assert!(a.refused.is_empty(), "{}: refused {:?}", a.title, a.refused);
    }
    let yz = flat
        .iter()
        .find(|a| a.id == s_yz.to_string())
        .expect("榆中");
    assert_eq!(
        yz.submissions.iter().map(|s| s.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(
        yz.reviews
            .iter()
            .map(|r| r.verdict.as_str())
            .collect::<Vec<_>>(),
        vec!["return", "approve"]
    );
    assert!(yz.reviews.iter().all(|r| r.reviewer == LANZHOU));
    let lz = view
        .assignments
        .iter()
        .find(|a| a.id == a_lz.to_string())
        .expect("兰州's assignment at the top");
    assert_eq!(
        lz.children
            .iter()
            .map(|c| c.assignee.as_str())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([YUZHONG, YONGDENG])
    );

    // ---- the same derived state at every node that holds a record ----
    let state_at = |at: &str, a: Uuid| state(&fed, at, RecordKey::Assignment(a));
    for a in [a_lz, s_yz, s_yd] {
        assert!(state_at(LANZHOU, a).is_some());
        assert_eq!(state_at(LANZHOU, a), state_at(PROVINCE, a), "{a} at 兰州");
    }
    for a in [a_by, s_jy, s_hn] {
        assert!(state_at(BAIYIN, a).is_some());
        assert_eq!(state_at(BAIYIN, a), state_at(PROVINCE, a), "{a} at 白银");
    }
    for (county, a) in subs {
        assert_eq!(
            state_at(county, a),
            state_at(PROVINCE, a),
            "{a} at {county}"
        );
    }
    assert_eq!(
        state(&fed, BAIYIN, RecordKey::Report(r)),
        state(&fed, PROVINCE, RecordKey::Report(r)),
        "the relaying city holds the report as the province does"
    );
    let topic_key = RecordKey::Topic(uuid::Uuid::parse_str(&topic_id)?);
    for c in ALL {
        assert_eq!(
            state(&fed, c, topic_key),
            state(&fed, PROVINCE, topic_key),
            "topic at {c}"
        );
    }

    // ---- guidance: six recipients, six acknowledgements, seen at the province ----
    let list = province.guidance_list()?;
    assert_eq!(list.guidance.len(), 1);
    let gv = &list.guidance[0];
    let want: BTreeSet<String> = below.iter().map(|c| c.to_string()).collect();
    assert_eq!(gv.recipients.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(
        gv.acknowledged_by.iter().cloned().collect::<BTreeSet<_>>(),
        want
    );

    // ---- the report: acknowledged, and only on its path ----
    let reports = province.report_list()?;
    assert_eq!(reports.reports.len(), 1);
    assert!(reports.reports[0].acknowledged);
    assert_eq!(reports.reports[0].sender, JINGYUAN);
    for c in [LANZHOU, YUZHONG, YONGDENG, HUINING] {
        assert!(report(&fed, c, r).is_none(), "{c} is off the report's path");
    }

    assert_nothing_quarantined(&fed)?;
    for n in running_nodes(&fed) {
        assert_log_clean(n)?;
    }
    // The stop waits for every handle of a node to go: drop ours first.
    drop((province, lanzhou, baiyin));
    fed.stop_all().await;
    Ok(())
}
