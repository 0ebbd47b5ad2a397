//! The whole consultation cycle over seven real nodes (issue 4A): a county proposes a topic
//! upward, the province adopts it into its annual plan, researches it through assignments,
//! holds a meeting with contributions from two cities, concludes recommendations, records
//! their handling, the government's feedback and its evaluations ("not satisfied" reopens
//! one), and holds re-consultation rounds until every recommendation is closed. Every node
//! that holds a record must derive the same state for it.
mod common;

use anyhow::{Context, Result};
use common::*;
use liandong::domain::record::{
    AssignmentStatus, Folded, MeetingStatus, ProposalStatus, Recommendation, RecommendationStatus,
    RecordKey, RecordState,
};
use liandong::pb;
use uuid::Uuid;

const YEAR: u32 = 2026;

fn recommendation(
    fed: &liandong::fixture::Federation,
    at: &str,
    id: Uuid,
) -> Option<Folded<Recommendation>> {
    match state(fed, at, RecordKey::Recommendation(id))? {
        RecordState::Recommendation(r) if r.record.owner.is_some() => Some(r),
        _ => None,
    }
}

fn rec_status(
    fed: &liandong::fixture::Federation,
    at: &str,
    id: Uuid,
) -> Option<RecommendationStatus> {
    recommendation(fed, at, id).map(|r| r.record.status)
}

fn plan_key(code: &str, year: u32) -> RecordKey {
    let c: [u8; 6] = code.as_bytes().try_into().expect("a 6-digit code");
    RecordKey::Plan(c, year)
}

/// An assignment due far in the future (the test must not depend on today's date).
fn task(topic: &str, parent: &str, to: &str, title: &str, weight: u32) -> pb::AssignRequest {
    let mut a = assign(topic, parent, to, title, weight);
    a.due_date = "2099-12-31".into();
    a
}

fn draft(text: &str, lead: &str, due: &str) -> pb::RecommendationDraft {
    pb::RecommendationDraft {
        text: text.into(),
        lead_department: lead.into(),
        co_departments: vec!["省财政厅".into()],
        due_date: due.into(),
    }
}

/// The committees that hold a record, and the check that they all derived the same state.
fn same_everywhere(
    fed: &liandong::fixture::Federation,
    key: RecordKey,
    holders: &[&str],
    not: &[&str],
) {
    let reference = state(fed, holders[0], key);
    assert!(reference.is_some(), "{} holds {key:?}", holders[0]);
    for c in &holders[1..] {
        assert_eq!(
            state(fed, c, key),
            reference,
            "{key:?} at {c} and at {}",
            holders[0]
        );
    }
    for c in not {
        assert!(
            state(fed, c, key).is_none(),
            "{c} is outside the audience of {key:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_consultation_cycle() -> Result<()> {
    let mut fed = gansu_federation(&[]).await?;
    let province = fed.node(PROVINCE)?.clone();
    let lanzhou = fed.node(LANZHOU)?.clone();
    let baiyin = fed.node(BAIYIN)?.clone();
    let yuzhong = fed.node(YUZHONG)?.clone();

    // ---- 议题建议: 榆中县 proposes a topic up to the province ----
    let proposal = id_of(
        &yuzhong
            .submit_proposal(pb::TopicProposalRequest {
                title: "黄河上游县域水土流失综合治理".into(),
                description: "榆中县北山水土流失严重，需省级统筹".into(),
                source: "members".into(),
                form: "thematic".into(),
                tier: "county-and-above".into(),
                plan_year: YEAR,
                to: PROVINCE.into(),
            })
            .await?,
    );
    wait(&fed, "the province to receive the proposal", |f| {
        matches!(state(f, PROVINCE, RecordKey::TopicProposal(proposal)),
            Some(RecordState::TopicProposal(p)) if p.record.status == ProposalStatus::Submitted)
    })
    .await?;
    // Only the committee it was made to decides it.
    assert!(lanzhou
        .decide_proposal(pb::TopicProposalDecisionRequest {
            proposal_id: proposal.to_string(),
            adopt: true,
            ..Default::default()
        })
        .await
        .is_err());
    let adopted = province
        .decide_proposal(pb::TopicProposalDecisionRequest {
            proposal_id: proposal.to_string(),
            adopt: true,
            tier: "county-and-above".into(),
            form: "thematic".into(),
            reason: "涉及全省沿黄地区，列入省政协年度协商计划".into(),
            create_topic: true,
            add_to_plan: true,
        })
        .await?;
    let topic = id_of(adopted.topic.as_ref().context("adopting made a topic")?);
    let topic_id = topic.to_string();
    assert_eq!(
        adopted.plan.as_ref().map(|p| p.record_id.as_str()),
        Some("620000/2026")
    );
    wait(&fed, "榆中县 to see its proposal adopted", |f| {
        matches!(state(f, YUZHONG, RecordKey::TopicProposal(proposal)),
            Some(RecordState::TopicProposal(p)) if p.record.status == ProposalStatus::Adopted)
    })
    .await?;
    let seen = yuzhong.proposal_list()?;
    assert_eq!(seen.proposals.len(), 1);
    assert_eq!(seen.proposals[0].consultation, "cppcc-consultation");
    assert_eq!(seen.proposals[0].topic_id, topic_id);

    // ---- 年度协商计划: adopted, then amended (visible history); a city's plan seen above ----
    province
        .adopt_plan(pb::PlanAdoptRequest {
            year: YEAR,
            note: "省政协十二届常委会第十次会议通过".into(),
        })
        .await?;
    let second = province
        .create_topic(pb::CreateTopicRequest {
            title: "沿黄城市群协同发展".into(),
            description: String::new(),
            source: "party-government".into(),
            form: "counterpart".into(),
            tier: "county-and-above".into(),
            plan_year: YEAR,
            publish: true,
        })
        .await?;
    let unreasoned = province
        .change_plan(pb::PlanChangeRequest {
            year: YEAR,
            topic_id: second.record_id.clone(),
            ..Default::default()
        })
        .await;
    assert!(
        unreasoned.is_err(),
        "an amendment of an adopted plan needs its reason"
    );
    province
        .change_plan(pb::PlanChangeRequest {
            year: YEAR,
            topic_id: second.record_id.clone(),
            form: "counterpart".into(),
            reason: "省委交办，年中增列".into(),
            remove: false,
            // counts three times as much as the first topic in the plan's progress
            weight: 3,
        })
        .await?;
    let city_topic = lanzhou
        .create_topic(pb::CreateTopicRequest {
            title: "兰州新区产业协同".into(),
            description: String::new(),
            source: "committee".into(),
            form: "sector".into(),
            tier: "county-and-above".into(),
            plan_year: YEAR,
            publish: true,
        })
        .await?;
    lanzhou
        .change_plan(pb::PlanChangeRequest {
            year: YEAR,
            topic_id: city_topic.record_id.clone(),
            ..Default::default()
        })
        .await?;
    wait(&fed, "the province to see 兰州市's plan", |f| {
        matches!(state(f, PROVINCE, plan_key(LANZHOU, YEAR)), Some(RecordState::Plan(p)) if p.record.entries.len() == 1)
    })
    .await?;

    // ---- before: joint research through assignments ----
    let a_lz = id_of(
        &province
            .assign(task(&topic_id, "", LANZHOU, "兰州段水土保持", 2))
            .await?,
    );
    let a_by = id_of(
        &province
            .assign(task(&topic_id, "", BAIYIN, "白银段水土保持", 1))
            .await?,
    );
    wait_status(&fed, LANZHOU, a_lz, AssignmentStatus::Issued).await?;
    wait_status(&fed, BAIYIN, a_by, AssignmentStatus::Issued).await?;
    lanzhou.acknowledge(&a_lz.to_string()).await?;
    baiyin.acknowledge(&a_by.to_string()).await?;
    let s_yz = id_of(
        &lanzhou
            .assign(task(
                "",
                &a_lz.to_string(),
                YUZHONG,
                "榆中县北山治理调研",
                1,
            ))
            .await?,
    );
    // 会宁县's part is long overdue and never acknowledged.
    let mut late = assign("", &a_by.to_string(), HUINING, "会宁县梯田调研", 1);
    late.due_date = "2020-06-30".into();
    let s_hn = id_of(&baiyin.assign(late).await?);
    wait_status(&fed, YUZHONG, s_yz, AssignmentStatus::Issued).await?;
    yuzhong.acknowledge(&s_yz.to_string()).await?;
    yuzhong
        .submit(submit(s_yz, "榆中县北山水土流失治理调研报告"))
        .await?;
    wait_status(&fed, LANZHOU, s_yz, AssignmentStatus::Submitted).await?;
    lanzhou.review(review(s_yz, true, "通过")).await?;
    lanzhou.submit(submit(a_lz, "兰州市汇总报告")).await?;
    wait_status(&fed, PROVINCE, s_hn, AssignmentStatus::Issued).await?;
    wait_status(&fed, PROVINCE, a_lz, AssignmentStatus::Submitted).await?;
    province.review(review(a_lz, true, "通过")).await?;

    // Overdue at a glance: the province and 白银市 see 会宁县's task; 兰州市 does not.
    let overdue = province.overdue()?;
    assert_eq!(
        overdue
            .items
            .iter()
            .map(|i| (i.kind.as_str(), i.id.clone(), i.committee.as_str()))
            .collect::<Vec<_>>(),
        vec![("assignment", s_hn.to_string(), HUINING)],
        "{overdue:#?}"
    );
    assert!(overdue.items[0].days_overdue > 365);
    wait_status(&fed, BAIYIN, s_hn, AssignmentStatus::Issued).await?;
    assert_eq!(baiyin.overdue()?.items.len(), 1);
    assert!(lanzhou.overdue()?.items.is_empty());
    // The plan's roll-up: topic 1 (weight 1) is half done, topic 2 (weight 3) has no work yet.
    let plan = province.plan(pb::PlanRef {
        committee: String::new(),
        year: YEAR,
    })?;
    assert_eq!(plan.entries.len(), 2);
    assert_eq!(plan.amendments, 1);
    let t1 = province.topic_view(&topic_id)?.progress;
    assert!(t1 > 0.5 && t1 < 1.0, "topic progress {t1}");
    assert_eq!(
        plan.entries.iter().map(|e| e.weight).collect::<Vec<_>>(),
        [1, 3]
    );
    assert!(
        (plan.progress - t1 / 4.0).abs() < 1e-9,
        "plan progress {} = ({t1} × 1 + 0 × 3) / 4",
        plan.progress
    );
    assert_eq!(
        plan.entries[0].overdue, 1,
        "the plan shows the overdue task of its topic"
    );

    // 白银市 cancels the late part and does the research itself.
    baiyin
        .cancel_assignment(&s_hn.to_string(), "会宁县并入白银市调研组")
        .await?;
    baiyin.submit(submit(a_by, "白银市调研报告")).await?;
    wait_status(&fed, PROVINCE, a_by, AssignmentStatus::Submitted).await?;
    province.review(review(a_by, true, "通过")).await?;
    wait_status(&fed, PROVINCE, s_hn, AssignmentStatus::Cancelled).await?;
    assert!(province.overdue()?.items.is_empty());
    let plan = province.plan(pb::PlanRef {
        committee: PROVINCE.into(),
        year: YEAR,
    })?;
    assert!(
        (plan.progress - 0.25).abs() < 1e-9,
        "plan progress {} = (1 × 1 + 0 × 3) / 4",
        plan.progress
    );

    // ---- during: the consultation meeting, with contributions from two cities ----
    let meeting = id_of(
        &province
            .schedule_meeting(pb::MeetingScheduleRequest {
                topic_id: topic_id.clone(),
                meeting_id: String::new(),
                date: "2026-09-15".into(),
                place: "兰州".into(),
                main_venue: "省政协机关会议中心".into(),
                branch_venues: vec![
                    pb::MeetingVenueView {
                        committee: LANZHOU.into(),
                        place: "兰州市政协".into(),
                    },
                    pb::MeetingVenueView {
                        committee: BAIYIN.into(),
                        place: "白银市政协".into(),
                    },
                ],
                participants: vec![LANZHOU.into(), BAIYIN.into()],
            })
            .await?,
    );
    for city in [&lanzhou, &baiyin] {
        let code = city.code().to_string();
        wait(&fed, &format!("{code} to see the meeting"), |f| {
            matches!(state(f, &code, RecordKey::Meeting(meeting)), Some(RecordState::Meeting(m)) if m.record.status == MeetingStatus::Scheduled)
        })
        .await?;
        city.contribute(pb::MeetingContributionRequest {
            meeting_id: meeting.to_string(),
            title: format!("{code} 发言"),
            text: "建议建立流域生态补偿机制".into(),
            speaker: "市政协主席".into(),
        })
        .await?;
    }
    // A county that is not a participant cannot contribute.
    assert!(yuzhong
        .contribute(pb::MeetingContributionRequest {
            meeting_id: meeting.to_string(),
            title: String::new(),
            text: "越权".into(),
            speaker: String::new(),
        })
        .await
        .is_err());
    // 兰州市 revises its contribution.
    lanzhou
        .contribute(pb::MeetingContributionRequest {
            meeting_id: meeting.to_string(),
            title: "兰州市政协发言（修改稿）".into(),
            text: "建议建立流域横向生态补偿机制".into(),
            speaker: "市政协主席".into(),
        })
        .await?;
    wait(&fed, "the province to hold both contributions", |f| {
        f.node(PROVINCE)
            .ok()
            .and_then(|n| n.meeting_view(&meeting.to_string()).ok())
            .is_some_and(|m| {
                m.awaiting.is_empty() && m.contributions.iter().any(|c| c.version == 2)
            })
    })
    .await?;
    let mv = province.meeting_view(&meeting.to_string())?;
    assert_eq!(mv.contributions.len(), 2);
    assert!(mv.contributions.iter().all(|c| c.participant));
    assert_eq!(mv.branch_venues.len(), 2);
    assert_eq!(
        province.topic_cycle(&topic_id)?.phase,
        "meeting",
        "a scheduled meeting"
    );

    let concluded = province
        .conclude_meeting(pb::MeetingConcludeRequest {
            meeting_id: meeting.to_string(),
            summary: "形成建议3条".into(),
            recommendations: vec![
                draft("建立黄河流域横向生态补偿机制", "省财政厅", "2027-06-30"),
                draft("实施北山淤地坝除险加固工程", "省水利厅", "2027-06-30"),
                draft("设立水土保持科研专项", "省科技厅", ""),
            ],
        })
        .await?;
    let recs: Vec<Uuid> = concluded.recommendations.iter().map(id_of).collect();
    assert_eq!(recs.len(), 3);
    province
        .close_topic(&topic_id, "协商形成建议3条，转入跟踪落实", false)
        .await?;
    assert_eq!(province.topic_cycle(&topic_id)?.phase, "follow-up");

    // ---- after: handling, updates, feedback, evaluation ----
    let handle = |id: Uuid, result: &str, note: &str| pb::RecommendationHandleRequest {
        recommendation_id: id.to_string(),
        result: result.into(),
        lead_department: String::new(),
        co_departments: vec![],
        note: note.into(),
    };
    province
        .handle_recommendation(handle(recs[0], "A", "已出台补偿办法"))
        .await?;
    province
        .handle_recommendation(handle(recs[1], "planned", "列入2027年计划"))
        .await?;
    province
        .handle_recommendation(handle(recs[2], "C", "留作参考"))
        .await?;
    province
        .update_recommendation(pb::RecommendationUpdateRequest {
            recommendation_id: recs[1].to_string(),
            note: "完成可研".into(),
            percent: 30,
        })
        .await?;
    province
        .record_feedback(pb::RecommendationFeedbackRequest {
            recommendation_id: recs[1].to_string(),
            from: "省水利厅".into(),
            text: "资金正在争取".into(),
        })
        .await?;
    let evaluate = |id: Uuid, verdict: &str, comment: &str| pb::RecommendationEvaluateRequest {
        recommendation_id: id.to_string(),
        verdict: verdict.into(),
        comment: comment.into(),
    };
    province
        .evaluate_recommendation(evaluate(recs[0], "satisfied", ""))
        .await?;
    province
        .evaluate_recommendation(evaluate(recs[1], "not-satisfied", "进度滞后，工程未开工"))
        .await?;
    province
        .evaluate_recommendation(evaluate(recs[2], "basically-satisfied", ""))
        .await?;
    assert_eq!(
        rec_status(&fed, PROVINCE, recs[1]),
        Some(RecommendationStatus::Reopened)
    );
    // A reopened recommendation is not evaluated again before it is handled again.
    assert!(province
        .evaluate_recommendation(evaluate(recs[1], "satisfied", ""))
        .await
        .is_err());

    // ---- 再协商: round 1 finds it still not implemented and adds a recommendation ----
    let round1 = province
        .hold_reconsultation(pb::ReConsultationRequest {
            topic_id: topic_id.clone(),
            date: "2027-09-10".into(),
            summary: "一年后再协商：补偿机制已落实，淤地坝工程仍未开工".into(),
            committee_evaluation: "部分满意".into(),
            government_evaluation: "建议具有针对性".into(),
            reviews: vec![pb::ReConsultationNote {
                recommendation_id: recs[1].to_string(),
                outcome: "not-implemented".into(),
                note: "资金未到位".into(),
            }],
            new_recommendations: vec![draft(
                "将淤地坝工程纳入省级专项债",
                "省发展改革委",
                "2028-06-30",
            )],
        })
        .await?;
    assert_eq!(
        round1.reviews.len(),
        1,
        "round 1 reviews the one open recommendation"
    );
    let rec4 = id_of(&round1.recommendations[0]);
    // Round 2 closes everything.
    let round2 = province
        .hold_reconsultation(pb::ReConsultationRequest {
            topic_id: topic_id.clone(),
            date: "2028-09-12".into(),
            summary: "第二轮再协商：全部落实".into(),
            committee_evaluation: "满意".into(),
            government_evaluation: String::new(),
            reviews: vec![
                pb::ReConsultationNote {
                    recommendation_id: recs[1].to_string(),
                    outcome: "implemented".into(),
                    note: "工程完工".into(),
                },
                pb::ReConsultationNote {
                    recommendation_id: rec4.to_string(),
                    outcome: "implemented".into(),
                    note: String::new(),
                },
            ],
            new_recommendations: vec![],
        })
        .await?;
    assert_eq!(round2.reviews.len(), 2);
    assert!(
        province
            .hold_reconsultation(pb::ReConsultationRequest {
                topic_id: topic_id.clone(),
                date: "2029-09-12".into(),
                summary: "多余的一轮".into(),
                ..Default::default()
            })
            .await
            .is_err(),
        "nothing left to re-consult"
    );

    // ---- quality evaluation and publication of results ----
    let stages = [
        "selection",
        "organisation",
        "handling",
        "use-of-results",
        "follow-up",
        "assessment",
        "publication",
    ];
    let evaluation = id_of(
        &province
            .record_evaluation(pb::EvaluationRequest {
                topic_id: topic_id.clone(),
                scores: stages
                    .iter()
                    .enumerate()
                    .map(|(i, s)| pb::EvaluationScoreView {
                        stage: s.to_string(),
                        score: 80 + i as u32,
                        comment: String::new(),
                    })
                    .collect(),
                comment: "整体较好".into(),
            })
            .await?,
    );
    let publication = id_of(
        &province
            .publish_results(pb::PublicationRequest {
                topic_id: topic_id.clone(),
                title: "黄河上游水土流失综合治理协商成果".into(),
                text: "建议4条全部落实".into(),
                to: vec![],
                up_to: String::new(),
            })
            .await?,
    );

    // ---- settle: every committee of the subtree sees the recommendations closed ----
    let all_recs: Vec<Uuid> = recs.iter().copied().chain([rec4]).collect();
    for c in ALL {
        for r in &all_recs {
            wait(
                &fed,
                &format!("{c} to see recommendation {r} closed"),
                |f| rec_status(f, c, *r) == Some(RecommendationStatus::Closed),
            )
            .await?;
        }
        wait(&fed, &format!("{c} to hold the publication"), |f| {
            state(f, c, RecordKey::Publication(publication)).is_some()
        })
        .await?;
    }
    for c in ALL {
        wait(&fed, &format!("{c} to see the meeting concluded"), |f| {
            matches!(state(f, c, RecordKey::Meeting(meeting)), Some(RecordState::Meeting(m)) if m.record.status == MeetingStatus::Concluded)
        })
        .await?;
    }

    // 兰州市 tries to write a recommendation of its own under the province's topic id: the
    // topic id names the province that minted it (domain::ids), so 兰州市's own node refuses.
    let rogue = liandong::domain::ids::new(LANZHOU);
    let refused = lanzhou
        .author(
            pb::audience::Kind::Subtree(LANZHOU.into()),
            pb::event::Body::RecommendationIssued(pb::RecommendationIssued {
                recommendation_id: rogue.as_bytes().to_vec(),
                topic_id: topic.as_bytes().to_vec(),
                topic_title: "冒用省政协议题".into(),
                text: "不属于该议题的建议".into(),
                ..Default::default()
            }),
        )
        .await;
    let err = refused.expect_err("a recommendation under another committee's topic id");
    assert!(err.to_string().contains("belongs to 620000"), "{err}");

    // ---- the cycle as the province and the proposing county see it ----
    let cycle = province.topic_cycle(&topic_id)?;
    assert_eq!(cycle.phase, "closed");
    assert_eq!(
        (cycle.recommendations_open, cycle.recommendations_closed),
        (0, 4)
    );
    assert_eq!(
        cycle.rounds.iter().map(|r| r.round).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        cycle.proposal.as_ref().map(|p| p.id.clone()),
        Some(proposal.to_string())
    );
    assert_eq!(cycle.plans, ["620000/2026"]);
    assert_eq!(cycle.meetings.len(), 1);
    assert_eq!(cycle.evaluations.len(), 1);
    assert!((cycle.evaluations[0].overall - 83.0).abs() < 1e-9);
    assert_eq!(cycle.publications.len(), 1);
    let r2 = cycle
        .recommendations
        .iter()
        .find(|r| r.id == recs[1].to_string())
        .context("recommendation 2 in the cycle")?;
    assert_eq!(r2.closed_as, "implemented");
    assert_eq!(
        r2.reopened, 1,
        "reopened by \"not satisfied\"; round 1 (not implemented) left it open"
    );
    assert_eq!(
        r2.steps.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(),
        [
            "handled",
            "update",
            "feedback",
            "evaluated",
            "reviewed",
            "reviewed"
        ]
    );
    let closed_as: Vec<&str> = cycle
        .recommendations
        .iter()
        .map(|r| r.closed_as.as_str())
        .collect();
    assert!(closed_as.contains(&"satisfied") && closed_as.contains(&"basically-satisfied"));
    let at_county = yuzhong.topic_cycle(&topic_id)?;
    assert_eq!(at_county.recommendations, cycle.recommendations);
    assert_eq!(at_county.rounds, cycle.rounds);
    assert_eq!(at_county.phase, "closed");

    // ---- the same derived state at every node that holds a record; nothing off-path ----
    let everyone: Vec<&str> = ALL.to_vec();
    for r in &all_recs {
        same_everywhere(&fed, RecordKey::Recommendation(*r), &everyone, &[]);
    }
    for c in ALL {
        assert!(
            state(&fed, c, RecordKey::Recommendation(rogue)).is_none(),
            "{c} holds the refused recommendation"
        );
    }
    for round in [&round1, &round2] {
        let id = id_of(round.round.as_ref().context("round receipt")?);
        same_everywhere(&fed, RecordKey::ReConsultation(id), &everyone, &[]);
    }
    same_everywhere(&fed, RecordKey::Meeting(meeting), &everyone, &[]);
    same_everywhere(&fed, RecordKey::Publication(publication), &everyone, &[]);
    same_everywhere(
        &fed,
        RecordKey::TopicProposal(proposal),
        &[PROVINCE, LANZHOU, YUZHONG],
        &[BAIYIN, YONGDENG, JINGYUAN, HUINING],
    );
    same_everywhere(
        &fed,
        plan_key(PROVINCE, YEAR),
        &[PROVINCE],
        &[LANZHOU, YUZHONG],
    );
    same_everywhere(
        &fed,
        plan_key(LANZHOU, YEAR),
        &[PROVINCE, LANZHOU],
        &[BAIYIN, YUZHONG],
    );
    same_everywhere(
        &fed,
        RecordKey::Evaluation(evaluation),
        &[PROVINCE],
        &[LANZHOU],
    );
    for c in &mv.contributions {
        let id = Uuid::parse_str(&c.id)?;
        let (holders, not): (&[&str], &[&str]) = if c.author == LANZHOU {
            (&[PROVINCE, LANZHOU], &[BAIYIN, YUZHONG])
        } else {
            (&[PROVINCE, BAIYIN], &[LANZHOU, JINGYUAN])
        };
        same_everywhere(&fed, RecordKey::Contribution(id), holders, not);
    }

    assert_nothing_quarantined(&fed)?;
    for n in running_nodes(&fed) {
        assert_log_clean(n)?;
    }
    drop((province, lanzhou, baiyin, yuzhong));
    fed.stop_all().await;
    Ok(())
}

// ---- the same cycle, step by step, through the real `liandong` binary with --json ----

const BIN: &str = env!("CARGO_BIN_EXE_liandong");

/// Runs `liandong --api <node> --json <args>` against a node of the federation and parses
/// its output. The binary runs on a blocking thread: the nodes live on this test's runtime.
async fn cli(
    fed: &liandong::fixture::Federation,
    at: &str,
    args: &[&str],
) -> Result<serde_json::Value> {
    let running = fed.running(at)?;
    let api = running.api_url();
    let token = running.api_token().secret().to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let shown = args.join(" ");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(["--api", &api, "--json"])
            .args(&args)
            .env("LIANDONG_TOKEN", token)
            .env_remove("LIANDONG_CONFIG")
            .stdin(std::process::Stdio::null())
            .output()
    })
    .await??;
    anyhow::ensure!(
        out.status.success(),
        "liandong {shown} at {at} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "output of liandong {shown}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn text<'v>(v: &'v serde_json::Value, path: &[&str]) -> Result<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p).with_context(|| format!("no '{p}' in {v}"))?;
    }
    cur.as_str()
        .with_context(|| format!("{path:?} is not text in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_from_the_command_line() -> Result<()> {
    let mut fed = gansu_federation(&[]).await?;

    let p = cli(
        &fed,
        YUZHONG,
        &[
            "proposal",
            "submit",
            "--title",
            "北山水土保持",
            "--source",
            "members",
            "--to",
            PROVINCE,
            "--year",
            "2026",
        ],
    )
    .await?;
    let proposal = text(&p, &["record_id"])?.to_string();
    wait(&fed, "the province to receive the proposal", |f| {
        state(
            f,
            PROVINCE,
            RecordKey::TopicProposal(Uuid::parse_str(&proposal).unwrap_or_default()),
        )
        .is_some()
    })
    .await?;
    let d = cli(
        &fed,
        PROVINCE,
        &[
            "proposal",
            "adopt",
            &proposal[28..],
            "--tier",
            "county-and-above",
            "--plan",
            "--reason",
            "纳入计划",
        ],
    )
    .await?;
    let topic = text(&d, &["topic", "record_id"])?.to_string();
    assert_eq!(text(&d, &["plan", "record_id"])?, "620000/2026");
    let l = cli(&fed, PROVINCE, &["proposal", "list"]).await?;
    assert_eq!(l["proposals"][0]["state"], "adopted");
    assert_eq!(l["proposals"][0]["consultation"], "cppcc-consultation");

    cli(
        &fed,
        PROVINCE,
        &["plan", "adopt", "--year", "2026", "--note", "常委会通过"],
    )
    .await?;
    cli(
        &fed,
        PROVINCE,
        &[
            "plan",
            "amend",
            "--topic",
            &topic,
            "--form",
            "counterpart",
            "--year",
            "2026",
            "--reason",
            "改为对口协商",
        ],
    )
    .await?;
    let plan = cli(&fed, PROVINCE, &["plan", "show", "--year", "2026"]).await?;
    assert_eq!(plan["adopted"], true);
    assert_eq!(plan["amendments"], 1);
    assert_eq!(plan["entries"][0]["form"], "counterpart");
    assert_eq!(
        cli(&fed, PROVINCE, &["plan", "list"]).await?["plans"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let m = cli(
        &fed,
        PROVINCE,
        &[
            "meeting",
            "schedule",
            "--topic",
            &topic,
            "--date",
            "2026-09-15",
            "--place",
            "兰州",
            "--main-venue",
            "省政协",
            "--branch",
            "620100=兰州市政协",
            "--participant",
            LANZHOU,
        ],
    )
    .await?;
    let meeting = text(&m, &["record_id"])?.to_string();
    wait(&fed, "兰州市 to see the meeting", |f| {
        state(
            f,
            LANZHOU,
            RecordKey::Meeting(Uuid::parse_str(&meeting).unwrap_or_default()),
        )
        .is_some()
    })
    .await?;
    cli(
        &fed,
        LANZHOU,
        &[
            "meeting",
            "contribute",
            &meeting,
            "--title",
            "兰州市发言",
            "--text",
            "建议设立专项",
        ],
    )
    .await?;
    wait(&fed, "the province to hold the contribution", |f| {
        f.node(PROVINCE)
            .ok()
            .and_then(|n| n.meeting_view(&meeting).ok())
            .is_some_and(|v| v.contributions.len() == 1)
    })
    .await?;
    let shown = cli(&fed, PROVINCE, &["meeting", "show", &meeting]).await?;
    assert_eq!(shown["contributions"][0]["author"], LANZHOU);
    let c = cli(
        &fed,
        PROVINCE,
        &[
            "meeting",
            "conclude",
            &meeting,
            "--summary",
            "形成建议2条",
            "--rec",
            "设立水土保持专项",
            "--rec",
            "加固淤地坝",
            "--lead",
            "省水利厅",
            "--due",
            "2027-06-30",
        ],
    )
    .await?;
    let r1 = text(&c["recommendations"][0], &["record_id"])?.to_string();
    let r2 = text(&c["recommendations"][1], &["record_id"])?.to_string();

    cli(&fed, PROVINCE, &["rec", "handle", &r1, "--result", "A"]).await?;
    cli(
        &fed,
        PROVINCE,
        &["rec", "handle", &r2, "--result", "B", "--note", "列入计划"],
    )
    .await?;
    cli(
        &fed,
        PROVINCE,
        &[
            "rec",
            "update",
            &r2,
            "--note",
            "完成设计",
            "--percent",
            "40",
        ],
    )
    .await?;
    cli(
        &fed,
        PROVINCE,
        &[
            "rec",
            "feedback",
            &r2,
            "--from",
            "省水利厅",
            "--text",
            "明年开工",
        ],
    )
    .await?;
    cli(
        &fed,
        PROVINCE,
        &["rec", "evaluate", &r1, "--verdict", "satisfied"],
    )
    .await?;
    cli(
        &fed,
        PROVINCE,
        &[
            "rec",
            "evaluate",
            &r2,
            "--verdict",
            "not-satisfied",
            "--comment",
            "太慢",
        ],
    )
    .await?;
    let recs = cli(&fed, PROVINCE, &["rec", "list", "--topic", &topic]).await?;
    let states: Vec<&str> = recs["recommendations"]
        .as_array()
        .context("a list")?
        .iter()
        .filter_map(|r| r["state"].as_str())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "reopened").count(),
        1,
        "{recs}"
    );
    cli(
        &fed,
        PROVINCE,
        &[
            "reconsult",
            "--topic",
            &topic,
            "--date",
            "2027-09-10",
            "--summary",
            "再协商",
            "--implemented",
            &r2,
        ],
    )
    .await?;

    cli(
        &fed,
        PROVINCE,
        &[
            "evaluation",
            "record",
            "--topic",
            &topic,
            "--score",
            "selection=90",
            "--score",
            "成果公开=70:及时公开",
        ],
    )
    .await?;
    let evals = cli(&fed, PROVINCE, &["evaluation", "list"]).await?;
    assert_eq!(evals["evaluations"][0]["overall"], 80.0);
    cli(
        &fed,
        PROVINCE,
        &[
            "publication",
            "issue",
            "--topic",
            &topic,
            "--title",
            "协商成果",
            "--text",
            "全部落实",
            "--to",
            LANZHOU,
            "--to",
            BAIYIN,
        ],
    )
    .await?;
    assert_eq!(
        cli(&fed, PROVINCE, &["publication", "list"]).await?["publications"][0]["audience"],
        "committees[620100,620400]"
    );
    let overdue = cli(&fed, PROVINCE, &["overdue"]).await?;
    assert_eq!(overdue["items"].as_array().map(Vec::len), Some(0));

    let show = cli(&fed, PROVINCE, &["topic", "show", &topic]).await?;
    assert_eq!(
        show["title"], "北山水土保持",
        "topic show keeps the topic's own fields"
    );
    assert_eq!(show["cycle"]["phase"], "closed");
    assert_eq!(show["cycle"]["recommendations_closed"], 2);
    assert_eq!(
        show["cycle"]["rounds"][0]["reviews"][0]["outcome"],
        "implemented"
    );

    // A refusal says what was wrong.
    let refused = cli(&fed, LANZHOU, &["proposal", "adopt", &proposal]).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("decides it")));

    assert_nothing_quarantined(&fed)?;
    fed.stop_all().await;
    Ok(())
}
