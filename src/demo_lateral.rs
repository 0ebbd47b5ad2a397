//! `liandong demo --scenario yellow-river`: a joint topic of the Yellow River group (沿黄九省区)
//! across three provinces, each the root of its own federation.
//!
//! Nine real nodes: 甘肃 620000 (兰州市, 榆中县), 青海 630000 (西宁市, 大通县) and 宁夏 640000
//! (银川市, 永宁县); three federations with a trust anchor and a TLS CA each, linked
//! province to province (the lower code dials). The cycle: 甘肃 proposes the group's charter,
//! 青海 and 宁夏 endorse it (it is in force once all three have); 宁夏, host of 2026, convenes
//! the joint meeting; each province carries its share down its own tree (topic → city →
//! county; one county result is returned once) and publishes a roll-up, which is all the host
//! sees of it; the members contribute their research, the host drafts the joint report, the
//! members comment, the host redrafts, finalizes and records where it went; then each province
//! runs the rest of the cycle in its own tree: its county proposed the share (议题建议), the
//! province adopted it into a topic and its annual plan, holds a consultation meeting with its
//! city as a branch venue and concludes it with the joint recommendations, tracks them
//! (handled, evaluated not satisfied, one re-consultation round that closes them), evaluates
//! the topic along the seven stages and publishes the results, and publishes its roll-up again.
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use uuid::Uuid;

use crate::cli::{group as group_print, print};
use crate::demo::DemoArgs;
use crate::domain::record::{AssignmentStatus, JointMeeting, JointStatus, RecordKey, RecordState};
use crate::fixture_groups::{province, Lateral};
use crate::node::lateral::MemberInput;
use crate::node::Node;
use crate::pb;

const WAIT: Duration = Duration::from_secs(30);
const GROUP: &str = "yellow-river-9";
const GROUP_NAME: &str = "沿黄九省区政协黄河流域生态保护和高质量发展协商研讨会";
const GANSU: &str = "620000";
const QINGHAI: &str = "630000";
const NINGXIA: &str = "640000";
const MEMBERS: [&str; 3] = [GANSU, QINGHAI, NINGXIA];

struct Demo {
    l: Lateral,
    json: bool,
    started: Instant,
}

/// What `--json` prints: the group and the meeting as the host sees them.
#[derive(serde::Serialize)]
struct FinalState {
    group: pb::GroupView,
    meeting: pb::JointMeetingView,
    /// Per member: how many events of the other members' trees (not group events) its
    /// store holds — zero.
    foreign_internal_events: Vec<(String, usize)>,
    seconds: f64,
}

impl Demo {
    fn say(&self, line: &str) {
        if !self.json {
            println!("[{:>5.2}s] {line}", self.started.elapsed().as_secs_f64());
        }
    }

    fn block(&self, title: &str, text: &str) {
        if self.json {
            return;
        }
        println!();
        println!("    ── {title} ──");
        for line in text.lines() {
            println!("    {line}");
        }
        println!();
    }

    fn node(&self, code: &str) -> Result<Node> {
        Ok(self.l.node(code)?.clone())
    }

    fn name(&self, code: &str) -> String {
        self.l
            .fed_of(code)
            .ok()
            .and_then(|f| f.spec(code).ok().map(|s| s.name.clone()))
            .unwrap_or_default()
    }

    async fn wait(&self, what: &str, done: impl Fn(&Lateral) -> bool) -> Result<()> {
        self.l
            .wait_until(what, WAIT, done)
            .await
            .map_err(Into::into)
    }

    async fn wait_status(&self, at: &str, id: Uuid, want: AssignmentStatus) -> Result<()> {
        self.wait(
            &format!(
                "{at} to see assignment {} {}",
                print::short(&id.to_string()),
                want.name()
            ),
            |l| status(l, at, id) == Some(want),
        )
        .await
    }
}

fn status(l: &Lateral, at: &str, id: Uuid) -> Option<AssignmentStatus> {
    match l
        .node(at)
        .ok()?
        .store()
        .state(&RecordKey::Assignment(id))
        .ok()??
    {
        RecordState::Assignment(a) if a.record.issue.is_some() => Some(a.record.status),
        _ => None,
    }
}

fn meeting(l: &Lateral, at: &str, id: Uuid) -> Option<JointMeeting> {
    match l
        .node(at)
        .ok()?
        .store()
        .state(&RecordKey::JointMeeting(id))
        .ok()??
    {
        RecordState::JointMeeting(m) if m.record.convening.is_some() => Some(m.record),
        _ => None,
    }
}

fn in_force(l: &Lateral, at: &str) -> Option<u32> {
    let n = l.node(at).ok()?;
    let r = n.roster();
    r.group(GROUP)?.in_force.as_ref().map(|c| c.version)
}

fn id_of(r: &pb::Receipt) -> Result<Uuid> {
    Uuid::parse_str(&r.record_id).context("receipt without a record id")
}

fn request(topic: &str, parent: &str, to: &str, title: &str, due: &str) -> pb::AssignRequest {
    pb::AssignRequest {
        topic_id: topic.into(),
        parent_assignment_id: parent.into(),
        assignee: to.into(),
        title: title.into(),
        description: String::new(),
        due_date: due.into(),
        weight: 1,
    }
}

fn submission(a: Uuid, text: &str, recs: &[&str]) -> pb::SubmitRequest {
    pb::SubmitRequest {
        assignment_id: a.to_string(),
        text: text.into(),
        recommendations: recs.iter().map(|s| s.to_string()).collect(),
        attachment_digests: vec![],
    }
}

fn verdict(a: Uuid, approve: bool, comment: &str) -> pb::ReviewRequest {
    pb::ReviewRequest {
        assignment_id: a.to_string(),
        verdict: if approve { "approve" } else { "return" }.into(),
        comment: comment.into(),
    }
}

/// One province's share of the joint topic, carried down its own tree.
struct Share {
    root: String,
    city: String,
    county: String,
    topic: String,
    city_task: Uuid,
    county_task: Uuid,
}

/// The events a province's store holds that belong to another member's tree and are not
/// group events (the answer is 0: nothing internal crosses).
fn foreign_internal(l: &Lateral, root: &str) -> Result<usize> {
    let own: Vec<String> = l.fed(root)?.specs.iter().map(|s| s.code.clone()).collect();
    let node = l.node(root)?;
    let mut n = 0;
    for e in node.store().log_after(0, usize::MAX)? {
        let Some(frame) = node.store().event_frame(&e.id)? else {
            continue;
        };
        let env = crate::event::Envelope::open(&frame)
            .map_err(|r| anyhow::anyhow!("stored event {}: {r}", e.id))?;
        if !own.iter().any(|c| c == env.origin())
            && !matches!(env.audience(), pb::audience::Kind::Group(_))
        {
            n += 1;
        }
    }
    Ok(n)
}

pub async fn run(args: &DemoArgs, json: bool) -> Result<()> {
    let json = json || args.quiet;
    let trees = vec![province(GANSU)?, province(QINGHAI)?, province(NINGXIA)?];
    let mut l = if args.insecure {
        Lateral::new_insecure(trees)?
    } else {
        Lateral::new(trees)?
    };
    for fed in l.feds.values_mut() {
        fed.sync.heartbeat = Duration::from_secs(1);
    }
    l.link_all(&MEMBERS)?;
    let mut demo = Demo {
        l,
        json,
        started: Instant::now(),
    };
    let result = cycle(&mut demo).await;
    if let Ok(state) = &result {
        if json {
            println!("{}", serde_json::to_string_pretty(state)?);
        } else {
            println!(
                "done in {:.2} s: 9 nodes in 3 federations; the charter in force everywhere, the joint report final and sent, every share approved and its recommendations closed by a re-consultation round; no province holds another's internal records.",
                state.seconds
            );
        }
    }
    demo.l.stop_all().await;
    result?;
    if args.keep {
        let dirs: Vec<String> = demo
            .l
            .feds
            .values()
            .map(|f| f.dir.display().to_string())
            .collect();
        std::mem::forget(demo.l); // keep the temporary folders
        eprintln!("stores kept in {}", dirs.join(", "));
    }
    Ok(())
}

async fn cycle(d: &mut Demo) -> Result<FinalState> {
    d.say("starting 9 nodes: 甘肃 620000, 青海 630000 and 宁夏 640000, each the root of its own federation (own trust anchor, own TLS CA) with a city and a county");
    d.l.bring_up(&[]).await?;
    for (a, b) in [(GANSU, QINGHAI), (GANSU, NINGXIA), (QINGHAI, NINGXIA)] {
        d.wait(&format!("the lateral link {a} → {b}"), |l| {
            l.node(a)
                .ok()
                .and_then(|n| n.links().get(b).map(|s| s.state == "connected"))
                .unwrap_or(false)
        })
        .await?;
    }
    d.say("lateral links up: 620000 → 630000, 620000 → 640000, 630000 → 640000 (the lower code dials; each end trusts only the other federation's CA for that link)");
    let (gansu, qinghai, ningxia) = (d.node(GANSU)?, d.node(QINGHAI)?, d.node(NINGXIA)?);
    // Due at the end of next June, whatever today is.
    let year: u32 = gansu
        .today()
        .get(..4)
        .and_then(|y| y.parse().ok())
        .unwrap_or(2026);
    let due = format!("{}-06-30", year + 1);

    // ---- 章程: proposed by Gansu, in force once every member has endorsed it ----
    let members: Vec<MemberInput> = [QINGHAI, NINGXIA]
        .iter()
        .map(|c| -> Result<MemberInput> {
            Ok(MemberInput {
                code: c.to_string(),
                name: d.name(c),
                key: d.l.anchor_key(c)?,
            })
        })
        .collect::<Result<_>>()?;
    let r = gansu
        .propose_charter(
            GROUP,
            GROUP_NAME,
            &members,
            &[(2026, NINGXIA.into()), (2027, QINGHAI.into())],
        )
        .await?;
    d.say(&format!(
        "甘肃 proposes the charter of {GROUP} (members 620000 630000 640000 with their anchor keys; hosts 2026 宁夏, 2027 青海), digest {}",
        &r.record_id[..12]
    ));
    for (c, n) in [(QINGHAI, &qinghai), (NINGXIA, &ningxia)] {
        d.wait(&format!("{c} to receive the proposal"), |l| {
            l.node(c)
                .ok()
                .and_then(|n| n.groups_view().ok())
                .is_some_and(|v| {
                    v.groups
                        .iter()
                        .any(|g| g.proposals.iter().any(|p| p.status == "pending"))
                })
        })
        .await?;
        n.endorse_charter(GROUP, "").await?;
        d.say(&format!("{} {c} endorses it (签署)", d.name(c)));
    }
    let all: Vec<String> =
        d.l.feds
            .values()
            .flat_map(|f| f.specs.iter().map(|s| s.code.clone()))
            .collect();
    for c in &all {
        d.wait(&format!("the charter in force at {c}"), |l| {
            in_force(l, c) == Some(1)
        })
        .await?;
    }
    d.say("the charter is in force at all 9 nodes (every member endorsed; each tree learned it from its own root)");
    d.block(
        "the group as 甘肃 sees it (liandong group list)",
        &group_print::groups(&gansu.groups_view()?),
    );

    // ---- 联席会议: the host of 2026 convenes ----
    let m = id_of(
        &ningxia
            .convene_joint_meeting(
                GROUP,
                2026,
                "黄河流域生态保护和高质量发展联合调研",
                "九省区联动，各省区分段调研，形成联合调研报告",
                "2026-09-15",
                "银川",
                false,
            )
            .await?,
    )?;
    let ms = m.to_string();
    for c in [GANSU, QINGHAI] {
        d.wait(&format!("{c} to receive the meeting"), |l| {
            meeting(l, c, m).is_some()
        })
        .await?;
    }
    d.say(&format!(
        "宁夏 (host of 2026) convenes the joint meeting {}: 黄河流域生态保护和高质量发展联合调研",
        print::short(&ms)
    ));

    // ---- each province carries its share down its own tree ----
    let mut shares = Vec::new();
    for root in MEMBERS {
        let specs = d.l.fed(root)?.specs.clone();
        let (city, county) = (specs[1].code.clone(), specs[2].code.clone());
        let p = d.node(root)?;
        // The share starts as a proposal (议题建议) from the province's county, which the
        // province classifies (县级及以上: a CPPCC consultation) and adopts into a topic and
        // its annual plan (年度协商计划).
        let proposal = d
            .node(&county)?
            .submit_proposal(pb::TopicProposalRequest {
                title: format!(
                    "{}黄河流域生态保护分课题",
                    d.name(root).trim_end_matches("政协")
                ),
                description: format!("联席会议 {} 的本省区分课题", print::short(&ms)),
                source: "members".into(),
                form: "thematic".into(),
                tier: "county-and-above".into(),
                plan_year: 2026,
                to: root.into(),
            })
            .await?;
        let proposal = id_of(&proposal)?;
        d.wait(&format!("{root} to receive its county's proposal"), |l| {
            l.fed(root).is_ok_and(|f| {
                f.node(root).is_ok_and(|n| {
                    n.store()
                        .state(&RecordKey::TopicProposal(proposal))
                        .is_ok_and(|s| s.is_some())
                })
            })
        })
        .await?;
        let decided = p
            .decide_proposal(pb::TopicProposalDecisionRequest {
                proposal_id: proposal.to_string(),
                adopt: true,
                tier: "county-and-above".into(),
                create_topic: true,
                add_to_plan: true,
                ..Default::default()
            })
            .await?;
        let t = decided.topic.context("the adopted proposal's topic")?;
        p.adopt_plan(pb::PlanAdoptRequest {
            year: 2026,
            note: "常委会议审议通过".into(),
        })
        .await?;
        let a = id_of(
            &p.assign(request(&t.record_id, "", &city, "市级分段调研", &due))
                .await?,
        )?;
        shares.push(Share {
            root: root.into(),
            city,
            county,
            topic: t.record_id.clone(),
            city_task: a,
            county_task: Uuid::nil(),
        });
    }
    for s in &mut shares {
        d.wait_status(&s.city, s.city_task, AssignmentStatus::Issued)
            .await?;
        let c = d.node(&s.city)?;
        c.acknowledge(&s.city_task.to_string()).await?;
        s.county_task = id_of(
            &c.assign(request(
                "",
                &s.city_task.to_string(),
                &s.county,
                "县级子课题",
                &due,
            ))
            .await?,
        )?;
    }
    for s in &shares {
        d.wait_status(&s.county, s.county_task, AssignmentStatus::Issued)
            .await?;
        d.node(&s.county)?
            .acknowledge(&s.county_task.to_string())
            .await?;
        d.wait_status(&s.root, s.county_task, AssignmentStatus::Acknowledged)
            .await?;
        d.node(&s.root)?
            .publish_rollup(&ms, &s.topic, "任务已分解到市县")
            .await?;
    }
    d.say("each province's county proposes its share (议题建议, 委员征题); the province classifies it 县级及以上, adopts it into a topic and its 2026 plan (年度协商计划) and splits it: → its city → its county; the counties acknowledge (签收); each province publishes a roll-up");
    d.wait(
        &format!("the host to hold {} roll-ups", shares.len()),
        |l| meeting(l, NINGXIA, m).is_some_and(|x| x.rollups.len() == shares.len()),
    )
    .await?;
    d.block(
        "the joint meeting as the host 宁夏 sees it: the roll-up across the members",
        &group_print::joint_meeting(&ningxia.joint_meeting_view(&ms)?),
    );

    // counties report; 大通县's first result goes back once
    for s in &shares {
        d.node(&s.county)?
            .submit(submission(
                s.county_task,
                &format!("{}黄河干支流生态状况调研报告", d.name(&s.county)),
                &["加强水土流失综合治理"],
            ))
            .await?;
    }
    for s in &shares {
        d.wait_status(&s.city, s.county_task, AssignmentStatus::Submitted)
            .await?;
        let c = d.node(&s.city)?;
        if s.root == QINGHAI {
            c.review(verdict(s.county_task, false, "请补充湟水河段监测数据"))
                .await?;
            d.say("西宁市 returns 大通县's result (退回): 请补充湟水河段监测数据");
            d.wait_status(&s.county, s.county_task, AssignmentStatus::Returned)
                .await?;
            d.node(&s.county)?
                .submit(submission(
                    s.county_task,
                    "大通县调研报告（补充湟水河段监测数据）",
                    &["加强水土流失综合治理", "完善湟水河段监测网络"],
                ))
                .await?;
            d.wait_status(&s.city, s.county_task, AssignmentStatus::Submitted)
                .await?;
        }
        c.review(verdict(s.county_task, true, "通过")).await?;
        c.submit(submission(
            s.city_task,
            &format!("{}分段调研报告", d.name(&s.city)),
            &["建立流域横向生态补偿机制"],
        ))
        .await?;
    }
    for s in &shares {
        d.wait_status(&s.root, s.city_task, AssignmentStatus::Submitted)
            .await?;
        let p = d.node(&s.root)?;
        p.review(verdict(s.city_task, true, "通过")).await?;
        d.wait_status(&s.root, s.city_task, AssignmentStatus::Approved)
            .await?;
        p.publish_rollup(&ms, &s.topic, "本省区分课题完成").await?;
        p.contribute_joint(
            &ms,
            "",
            "research",
            &format!("{}段调研成果", d.name(&s.root).trim_end_matches("政协")),
            &format!(
                "{}：水土保持、水资源节约集约利用的调研结论",
                d.name(&s.root)
            ),
            vec!["建立流域横向生态补偿机制".into()],
            vec![],
        )
        .await?;
    }
    d.say("cities review and report up, each province approves its share, publishes its roll-up and contributes its research (调研成果) to the meeting");
    d.wait(
        "the host to hold every contribution and the final roll-ups",
        |l| {
            meeting(l, NINGXIA, m).is_some_and(|x| {
                x.contributions.len() == MEMBERS.len()
                    && x.rollups.values().all(|r| r.progress_permille == 1000)
            })
        },
    )
    .await?;

    // ---- the joint report ----
    let recs = vec![
        "建立黄河流域横向生态补偿机制".to_string(),
        "统一沿黄省区水土保持监测标准".to_string(),
    ];
    ningxia
        .draft_joint_report(
            &ms,
            "沿黄省区黄河流域生态保护联合调研报告",
            "（第一稿）",
            recs.clone(),
        )
        .await?;
    d.say("宁夏 drafts the joint report (v1)");
    for c in [GANSU, QINGHAI] {
        d.wait(&format!("{c} to receive the draft"), |l| {
            meeting(l, c, m).is_some_and(|x| x.drafts.len() == 1)
        })
        .await?;
    }
    gansu
        .comment_joint_report(&ms, 0, false, "补充甘肃段黄土高原水土流失数据")
        .await?;
    qinghai.comment_joint_report(&ms, 0, true, "").await?;
    d.say("甘肃 comments (修改意见: 补充甘肃段数据); 青海 agrees (无修改意见)");
    d.wait("the host to hold both comments", |l| {
        meeting(l, NINGXIA, m).is_some_and(|x| x.comments.len() == 2)
    })
    .await?;
    ningxia
        .draft_joint_report(
            &ms,
            "沿黄省区黄河流域生态保护联合调研报告",
            "（第二稿，已补充甘肃段数据）",
            recs.clone(),
        )
        .await?;
    ningxia.finalize_joint_report(&ms).await?;
    ningxia
        .send_joint_report(
            &ms,
            "national-committee",
            "全国政协",
            "宁政协函〔2026〕18号",
            "2026-10-10",
        )
        .await?;
    ningxia
        .send_joint_report(
            &ms,
            "joint-proposal",
            "全国政协十四届五次会议",
            "联名提案",
            "2027-03-04",
        )
        .await?;
    ningxia
        .send_joint_report(
            &ms,
            "governments",
            "甘肃、青海、宁夏党委政府",
            "",
            "2026-10-12",
        )
        .await?;
    d.say("宁夏 redrafts (v2), finalizes it and records where it went: 全国政协, a joint proposal (联名提案), the three provinces' governments");
    for c in [GANSU, QINGHAI] {
        d.wait(
            &format!("{c} to see the final report and its destinations"),
            |l| {
                meeting(l, c, m)
                    .is_some_and(|x| x.status == JointStatus::Finalized && x.dispatches.len() == 3)
            },
        )
        .await?;
    }

    // ---- in each tree: the province's own consultation meeting (协商会议) on its share,
    // with its city as a branch venue (分会场); the joint recommendations become its own ----
    for s in &shares {
        let p = d.node(&s.root)?;
        let meeting = id_of(
            &p.schedule_meeting(pb::MeetingScheduleRequest {
                topic_id: s.topic.clone(),
                date: "2026-12-18".into(),
                place: format!("{}常委会议室", d.name(&s.root)),
                main_venue: d.name(&s.root),
                branch_venues: vec![pb::MeetingVenueView {
                    committee: s.city.clone(),
                    place: format!("{}分会场", d.name(&s.city)),
                }],
                participants: vec![s.city.clone()],
                ..Default::default()
            })
            .await?,
        )?;
        d.wait(&format!("{} to see the meeting", s.city), |l| {
            l.fed(&s.root).is_ok_and(|f| {
                f.node(&s.city).is_ok_and(|n| {
                    n.store()
                        .state(&RecordKey::Meeting(meeting))
                        .is_ok_and(|x| x.is_some())
                })
            })
        })
        .await?;
        d.node(&s.city)?
            .contribute(pb::MeetingContributionRequest {
                meeting_id: meeting.to_string(),
                title: "市级调研情况发言".into(),
                text: "本市沿黄段生态修复成效与问题".into(),
                speaker: "市政协副主席".into(),
            })
            .await?;
        d.wait(&format!("{} to hold its city's speech", s.root), |l| {
            l.fed(&s.root).is_ok_and(|f| {
                f.node(&s.root).is_ok_and(|n| {
                    n.topic_cycle(&s.topic)
                        .is_ok_and(|c| c.meetings.iter().any(|m| !m.contributions.is_empty()))
                })
            })
        })
        .await?;
        p.conclude_meeting(pb::MeetingConcludeRequest {
            meeting_id: meeting.to_string(),
            summary: "会议形成协商意见，采纳联合调研报告建议".into(),
            recommendations: recs
                .iter()
                .map(|text| pb::RecommendationDraft {
                    text: text.clone(),
                    lead_department: "省生态环境厅".into(),
                    co_departments: vec!["省水利厅".into()],
                    due_date: "2027-06-30".into(),
                })
                .collect(),
        })
        .await?;
    }
    d.say("each province holds its own consultation meeting on its share (主会场 at the province, 分会场 at its city, which speaks), and concludes it with the joint report's recommendations");

    // ---- follow-up in each tree, with one re-consultation round (再协商) ----
    for s in &shares {
        let p = d.node(&s.root)?;
        let cycle = p.topic_cycle(&s.topic)?;
        let ids: Vec<String> = cycle.recommendations.iter().map(|r| r.id.clone()).collect();
        anyhow::ensure!(ids.len() == recs.len(), "the meeting's recommendations");
        for id in &ids {
            p.handle_recommendation(pb::RecommendationHandleRequest {
                recommendation_id: id.clone(),
                result: "planned".into(),
                lead_department: "省生态环境厅".into(),
                co_departments: vec![],
                note: "列入年度计划".into(),
            })
            .await?;
        }
        p.evaluate_recommendation(pb::RecommendationEvaluateRequest {
            recommendation_id: ids[0].clone(),
            verdict: "not-satisfied".into(),
            comment: "补偿标准尚未出台".into(),
        })
        .await?;
        p.publish_rollup(&ms, &s.topic, "建议办理中").await?;
        p.hold_reconsultation(pb::ReConsultationRequest {
            topic_id: s.topic.clone(),
            date: "2027-09-20".into(),
            summary: "就联合调研报告建议落实情况再协商".into(),
            committee_evaluation: "办理积极，补偿标准已出台".into(),
            government_evaluation: "建议具有针对性".into(),
            reviews: ids
                .iter()
                .map(|id| pb::ReConsultationNote {
                    recommendation_id: id.clone(),
                    outcome: "implemented".into(),
                    note: "已落实".into(),
                })
                .collect(),
            new_recommendations: vec![],
        })
        .await?;
        p.publish_rollup(&ms, &s.topic, "再协商后建议全部落实")
            .await?;
        // 质量评价 along the seven stages, and the results published (成果公开) to its tree.
        let stages = [
            ("selection", 92),
            ("organisation", 88),
            ("handling", 85),
            ("use-of-results", 86),
            ("follow-up", 90),
            ("assessment", 84),
            ("publication", 87),
        ];
        p.record_evaluation(pb::EvaluationRequest {
            topic_id: s.topic.clone(),
            scores: stages
                .iter()
                .map(|(stage, score)| pb::EvaluationScoreView {
                    stage: stage.to_string(),
                    score: *score,
                    comment: String::new(),
                })
                .collect(),
            comment: "联动协商全过程评价".into(),
        })
        .await?;
        p.publish_results(pb::PublicationRequest {
            topic_id: s.topic.clone(),
            title: "黄河流域生态保护联动协商成果".into(),
            text: "联合调研报告、协商意见及建议落实情况".into(),
            ..Default::default()
        })
        .await?;
    }
    d.say("each province tracks the two recommendations in its own tree: handled (B 列入计划), one evaluated 不满意 and reopened, then a re-consultation round (再协商) finds both implemented; each publishes its roll-up, evaluates the topic along the seven stages (质量评价) and publishes the results to its tree (成果公开)");
    d.wait("the host to see every recommendation closed", |l| {
        meeting(l, NINGXIA, m).is_some_and(|x| {
            x.rollups.len() == MEMBERS.len()
                && x.rollups.values().all(|r| {
                    r.recommendations == 2
                        && r.recommendations_closed == 2
                        && r.reconsultation_rounds == 1
                })
        })
    })
    .await?;
    let gansu_share = &shares[0];
    let gansu = d.node(GANSU)?;
    d.block(
        "甘肃's share in its own tree: its 2026 plan, and the topic's whole cycle",
        &format!(
            "{}\n{}",
            crate::cli::cycle::plan(&gansu.plan(pb::PlanRef {
                committee: String::new(),
                year: 2026,
            })?),
            crate::cli::cycle::topic_cycle(&gansu.topic_cycle(&gansu_share.topic)?)
        ),
    );
    let view = ningxia.joint_meeting_view(&ms)?;
    d.block(
        "the joint meeting as the host 宁夏 sees it, at the end",
        &group_print::joint_meeting(&view),
    );
    let mut foreign = Vec::new();
    for root in MEMBERS {
        foreign.push((root.to_string(), foreign_internal(&d.l, root)?));
    }
    d.say(&format!(
        "events of another province's tree that are not group events, per province store: {}",
        foreign
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    anyhow::ensure!(
        foreign.iter().all(|(_, n)| *n == 0),
        "a province holds another's internal events: {foreign:?}"
    );
    let group = ningxia
        .groups_view()?
        .groups
        .into_iter()
        .find(|g| g.id == GROUP)
        .context("the group at the host")?;
    Ok(FinalState {
        group,
        meeting: view,
        foreign_internal_events: foreign,
        seconds: d.started.elapsed().as_secs_f64(),
    })
}
