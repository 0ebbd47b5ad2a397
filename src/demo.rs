//! `liandong demo`: a whole linked-consultation round in one process.
//!
//! Seven real nodes — 甘肃省政协, 兰州市政协 and 白银市政协, and two counties under each — each
//! with its own sled store in a temporary folder and its own gRPC ports on 127.0.0.1, linked
//! child → parent over the real `Federation` service. The round: the province publishes a
//! topic and splits it for the cities, the cities split it for their counties, counties
//! acknowledge and submit, one result is returned and resubmitted, guidance goes down and is
//! acknowledged by all, a report goes up. 会宁县 is offline while its task is issued and
//! catches up when it comes back. The progress tree is printed as the round goes.
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use uuid::Uuid;

use crate::cli::print;
use crate::domain::record::{AssignmentStatus, RecordKey, RecordState};
use crate::fixture::{gansu, Federation};
use crate::pb;

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Keep the nodes' folders (printed at the end) instead of deleting them.
    #[arg(long)]
    pub keep: bool,
    /// Print only the final state, as JSON.
    #[arg(long, hide = true)]
    pub quiet: bool,
    /// After the round, start a second topic that is still in progress (one county overdue),
    /// print each node's web console address, and keep the nodes running until Ctrl-C or
    /// SIGTERM.
    #[arg(long)]
    pub keep_running: bool,
    /// Run the links in plaintext instead of mutual TLS (for comparison).
    #[arg(long)]
    pub insecure: bool,
    /// gansu: one province, two cities, four counties, a linked-consultation round (the
    /// default). yellow-river: a joint topic of the Yellow River group across 甘肃, 青海 and
    /// 宁夏, three federations linked laterally, through the whole cycle with a
    /// re-consultation round.
    #[arg(long, default_value = "gansu", value_parser = ["gansu", "yellow-river"])]
    pub scenario: String,
}

const WAIT: Duration = Duration::from_secs(30);

const PROVINCE: &str = "620000";
const LANZHOU: &str = "620100";
const BAIYIN: &str = "620400";
const YUZHONG: &str = "620123";
const YONGDENG: &str = "620121";
const JINGYUAN: &str = "620421";
const HUINING: &str = "620422";

struct Demo {
    fed: Federation,
    json: bool,
    started: Instant,
}

impl Demo {
    fn say(&self, line: &str) {
        if !self.json {
            println!("[{:>5.2}s] {line}", self.started.elapsed().as_secs_f64());
        }
    }

    fn show_tree(&self, at: &str, topic: &str) -> Result<()> {
        if self.json {
            return Ok(());
        }
        let view = self.fed.node(at)?.topic_view(topic)?;
        println!();
        println!(
            "    ── progress tree as {} {} sees it ──",
            at,
            self.fed.spec(at)?.name
        );
        for line in print::topic(&view).lines() {
            println!("    {line}");
        }
        println!();
        Ok(())
    }

    async fn wait_status(&self, at: &str, assignment: Uuid, want: AssignmentStatus) -> Result<()> {
        let what = format!(
            "{at} to see assignment {} {}",
            print::short(&assignment.to_string()),
            want.name()
        );
        self.fed
            .wait_until(&what, WAIT, |f| status_at(f, at, assignment) == Some(want))
            .await
            .map_err(Into::into)
    }
}

fn status_at(f: &Federation, at: &str, assignment: Uuid) -> Option<AssignmentStatus> {
    match f
        .node(at)
        .ok()?
        .store()
        .state(&RecordKey::Assignment(assignment))
        .ok()??
    {
        RecordState::Assignment(a) if a.record.issue.is_some() => Some(a.record.status),
        _ => None,
    }
}

fn acked_guidance(f: &Federation, at: &str, guidance: Uuid, who: &str) -> bool {
    matches!(
        f.node(at).ok().and_then(|n| n.store().state(&RecordKey::Guidance(guidance)).ok().flatten()),
        Some(RecordState::Guidance(g)) if g.record.acknowledged_by.contains(who)
    )
}

fn id_of(r: &pb::Receipt) -> Result<Uuid> {
    Uuid::parse_str(&r.record_id).context("receipt without a record id")
}

fn assign(
    topic: &str,
    parent: &str,
    to: &str,
    title: &str,
    due: &str,
    weight: u32,
) -> pb::AssignRequest {
    pb::AssignRequest {
        topic_id: topic.into(),
        parent_assignment_id: parent.into(),
        assignee: to.into(),
        title: title.into(),
        description: String::new(),
        due_date: due.into(),
        weight,
    }
}

fn submit(assignment: Uuid, text: &str, recs: &[&str]) -> pb::SubmitRequest {
    pb::SubmitRequest {
        assignment_id: assignment.to_string(),
        text: text.into(),
        recommendations: recs.iter().map(|s| s.to_string()).collect(),
        attachment_digests: vec![],
    }
}

fn review(assignment: Uuid, approve: bool, comment: &str) -> pb::ReviewRequest {
    pb::ReviewRequest {
        assignment_id: assignment.to_string(),
        verdict: if approve { "approve" } else { "return" }.into(),
        comment: comment.into(),
    }
}

/// The final state the demo prints with `--json`.
#[derive(serde::Serialize)]
struct FinalState {
    topic: pb::TopicView,
    guidance: pb::GuidanceList,
    reports: pb::ReportList,
    statuses: Vec<pb::StatusView>,
    seconds: f64,
}

pub async fn run(args: &DemoArgs, json: bool) -> Result<()> {
    if args.scenario == "yellow-river" {
        return crate::demo_lateral::run(args, json).await;
    }
    let json = json || args.quiet;
    let mut fed = if args.insecure {
        Federation::new_insecure(gansu())?
    } else {
        Federation::new(gansu())?
    };
    fed.sync.heartbeat = Duration::from_secs(1);
    let mut demo = Demo {
        fed,
        json,
        started: Instant::now(),
    };
    let result = round(&mut demo).await;
    let result = match result {
        Ok(state) if args.keep_running => in_progress(&mut demo).await.map(|()| state),
        other => other,
    };
    if let Ok(final_state) = &result {
        if json {
            println!("{}", serde_json::to_string_pretty(final_state)?);
        } else {
            println!("done in {:.2} s: 7 nodes, every result approved, guidance acknowledged by all, the report acknowledged.", final_state.seconds);
        }
        if args.keep_running {
            print_consoles(&demo, json)?;
            crate::cli::init::wait_for_signal().await;
        }
    }
    demo.fed.stop_all().await;
    result?;
    if args.keep {
        let dir = demo.fed.dir.clone();
        std::mem::forget(demo.fed); // keep the temporary folder
        eprintln!("stores kept in {}", dir.display());
    }
    Ok(())
}

/// Each node's console address, with its in-memory token, one `console CODE NAME URL` line
/// each, then `ready` (to standard error with --json, so the JSON stays clean).
fn print_consoles(d: &Demo, json: bool) -> Result<()> {
    let mut lines = vec![
        String::new(),
        "web console of each node (open the address once; the browser keeps the token as a cookie):".to_string(),
    ];
    for s in &d.fed.specs {
        let r = d.fed.running(&s.code)?;
        lines.push(format!(
            "  console {} {} {}",
            s.code,
            s.name,
            r.console_url()
        ));
    }
    lines.push("ready: the nodes keep running until Ctrl-C (or SIGTERM)".into());
    for l in lines {
        if json {
            eprintln!("{l}");
        } else {
            println!("{l}");
        }
    }
    Ok(())
}

/// `--keep-running`: a second topic, still in progress, so that the console has open work to
/// show: 兰州市 has split its task, 榆中县 has not acknowledged its part and is past the due
/// date, 永登县 has submitted; 白银市 has not acknowledged yet.
async fn in_progress(d: &mut Demo) -> Result<()> {
    let province = d.fed.node(PROVINCE)?.clone();
    let now = province.now_ms();
    let day = 86_400_000;
    let past = crate::clock::date_of(now.saturating_sub(6 * day));
    let soon = crate::clock::date_of(now + 20 * day);
    let later = crate::clock::date_of(now + 45 * day);
    let topic = province
        .create_topic(pb::CreateTopicRequest {
            title: "县域医疗卫生服务能力提升对口协商".into(),
            description: "围绕县域医共体建设、基层医疗人才队伍开展调研".into(),
            source: "members".into(),
            form: "counterpart".into(),
            tier: "county-and-above".into(),
            plan_year: 2026,
            publish: true,
        })
        .await?;
    let topic_id = topic.record_id.clone();
    let a_lz = id_of(
        &province
            .assign(assign(
                &topic_id,
                "",
                LANZHOU,
                "兰州市县域医共体建设情况调研",
                &later,
                2,
            ))
            .await?,
    )?;
    let a_by = id_of(
        &province
            .assign(assign(
                &topic_id,
                "",
                BAIYIN,
                "白银市基层医疗人才队伍调研",
                &later,
                1,
            ))
            .await?,
    )?;
    d.wait_status(LANZHOU, a_lz, AssignmentStatus::Issued)
        .await?;
    let lanzhou = d.fed.node(LANZHOU)?.clone();
    lanzhou.acknowledge(&a_lz.to_string()).await?;
    let s_yz = id_of(
        &lanzhou
            .assign(assign(
                "",
                &a_lz.to_string(),
                YUZHONG,
                "榆中县乡镇卫生院服务能力调研",
                &past,
                1,
            ))
            .await?,
    )?;
    let s_yd = id_of(
        &lanzhou
            .assign(assign(
                "",
                &a_lz.to_string(),
                YONGDENG,
                "永登县村医队伍建设调研",
                &soon,
                1,
            ))
            .await?,
    )?;
    d.wait_status(YONGDENG, s_yd, AssignmentStatus::Issued)
        .await?;
    let yongdeng = d.fed.node(YONGDENG)?.clone();
    yongdeng.acknowledge(&s_yd.to_string()).await?;
    yongdeng
        .submit(submit(
            s_yd,
            "永登县村医队伍建设调研报告",
            &["提高村医补助标准"],
        ))
        .await?;
    d.wait_status(YUZHONG, s_yz, AssignmentStatus::Issued)
        .await?;
    d.wait_status(PROVINCE, s_yd, AssignmentStatus::Submitted)
        .await?;
    d.wait_status(PROVINCE, s_yz, AssignmentStatus::Issued)
        .await?;
    d.wait_status(BAIYIN, a_by, AssignmentStatus::Issued)
        .await?;
    d.say(&format!(
        "a second topic is in progress: 县域医疗卫生服务能力提升对口协商; 榆中县's part was due {past} and is not acknowledged"
    ));
    d.show_tree(PROVINCE, &topic_id)?;
    Ok(())
}

async fn round(d: &mut Demo) -> Result<FinalState> {
    d.say("starting 7 nodes on 127.0.0.1 (each its own sled store); 会宁县 620422 stays offline for now");
    d.fed.bring_up(&[HUINING]).await?;
    d.say("roster registered top-down: 甘肃省 → 兰州市, 白银市 → 榆中县, 永登县, 靖远县 (会宁县 registered, offline)");

    let province = d.fed.node(PROVINCE)?.clone();
    let topic = province
        .create_topic(pb::CreateTopicRequest {
            title: "黄河流域生态保护和高质量发展专题调研".into(),
            description: "围绕黄河甘肃段水土保持、水资源节约集约利用开展联动协商".into(),
            source: "party-government".into(),
            form: "thematic".into(),
            tier: "county-and-above".into(),
            plan_year: 2026,
            publish: true,
        })
        .await?;
    let topic_id = topic.record_id.clone();
    d.say(&format!(
        "甘肃省政协 publishes topic {} 黄河流域生态保护和高质量发展专题调研 (党政点题, 专题协商)",
        print::short(&topic_id)
    ));

    let a_lz = id_of(
        &province
            .assign(assign(
                &topic_id,
                "",
                LANZHOU,
                "黄河兰州段水资源节约集约利用",
                "2026-12-20",
                1,
            ))
            .await?,
    )?;
    let a_by = id_of(
        &province
            .assign(assign(
                &topic_id,
                "",
                BAIYIN,
                "黄河白银段水土保持与生态修复",
                "2026-12-20",
                1,
            ))
            .await?,
    )?;
    d.say("province issues 分课题 to 兰州市 and 白银市");

    d.wait_status(LANZHOU, a_lz, AssignmentStatus::Issued)
        .await?;
    d.wait_status(BAIYIN, a_by, AssignmentStatus::Issued)
        .await?;
    let lanzhou = d.fed.node(LANZHOU)?.clone();
    let baiyin = d.fed.node(BAIYIN)?.clone();
    lanzhou.acknowledge(&a_lz.to_string()).await?;
    baiyin.acknowledge(&a_by.to_string()).await?;
    d.say("兰州市 and 白银市 acknowledge (签收)");

    let s_yz = id_of(
        &lanzhou
            .assign(assign(
                "",
                &a_lz.to_string(),
                YUZHONG,
                "榆中县水土保持调研",
                "2026-12-10",
                2,
            ))
            .await?,
    )?;
    let s_yd = id_of(
        &lanzhou
            .assign(assign(
                "",
                &a_lz.to_string(),
                YONGDENG,
                "永登县节水灌溉调研",
                "2026-12-10",
                1,
            ))
            .await?,
    )?;
    let s_jy = id_of(
        &baiyin
            .assign(assign(
                "",
                &a_by.to_string(),
                JINGYUAN,
                "靖远县沿黄生态修复调研",
                "2026-12-10",
                1,
            ))
            .await?,
    )?;
    let s_hn = id_of(
        &baiyin
            .assign(assign(
                "",
                &a_by.to_string(),
                HUINING,
                "会宁县旱作农业与水土流失调研",
                "2026-12-10",
                1,
            ))
            .await?,
    )?;
    d.say("cities split their work into 子课题 for four counties (会宁县 is offline: its task waits at 白银市)");

    for (county, a) in [(YUZHONG, s_yz), (YONGDENG, s_yd), (JINGYUAN, s_jy)] {
        d.wait_status(county, a, AssignmentStatus::Issued).await?;
        d.wait_status(PROVINCE, a, AssignmentStatus::Issued).await?;
    }
    d.wait_status(PROVINCE, s_hn, AssignmentStatus::Issued)
        .await?;
    d.show_tree(PROVINCE, &topic_id)?;

    for (county, a) in [(YUZHONG, s_yz), (YONGDENG, s_yd), (JINGYUAN, s_jy)] {
        d.fed.node(county)?.acknowledge(&a.to_string()).await?;
    }
    d.say("榆中县, 永登县, 靖远县 acknowledge their tasks");
    d.fed
        .node(YUZHONG)?
        .submit(submit(
            s_yz,
            "榆中县水土保持调研报告（初稿）",
            &["加强梯田建设"],
        ))
        .await?;
    d.fed
        .node(YONGDENG)?
        .submit(submit(
            s_yd,
            "永登县节水灌溉调研报告",
            &["推广高效节水灌溉", "完善水价机制"],
        ))
        .await?;
    d.fed
        .node(JINGYUAN)?
        .submit(submit(
            s_jy,
            "靖远县沿黄生态修复调研报告",
            &["实施沿黄防护林工程"],
        ))
        .await?;
    d.say("three counties submit their reports");

    d.wait_status(LANZHOU, s_yz, AssignmentStatus::Submitted)
        .await?;
    lanzhou
        .review(review(s_yz, false, "请补充近三年水土流失监测数据"))
        .await?;
    d.say("兰州市 returns 榆中县's report (退回): 请补充近三年水土流失监测数据");
    d.wait_status(YUZHONG, s_yz, AssignmentStatus::Returned)
        .await?;
    d.fed
        .node(YUZHONG)?
        .submit(submit(
            s_yz,
            "榆中县水土保持调研报告（修改稿，补充2023—2025年监测数据）",
            &["加强梯田建设", "建立淤地坝监测网络"],
        ))
        .await?;
    d.say("榆中县 resubmits (version 2)");
    d.wait_status(LANZHOU, s_yz, AssignmentStatus::Submitted)
        .await?;
    lanzhou.review(review(s_yz, true, "通过")).await?;
    d.wait_status(LANZHOU, s_yd, AssignmentStatus::Submitted)
        .await?;
    lanzhou.review(review(s_yd, true, "通过")).await?;
    d.wait_status(BAIYIN, s_jy, AssignmentStatus::Submitted)
        .await?;
    baiyin.review(review(s_jy, true, "通过")).await?;
    d.say("兰州市 approves 榆中县 v2 and 永登县; 白银市 approves 靖远县");

    let g = province
        .send_guidance(
            "关于做好联动协商成果汇总的通知",
            "请各市县政协于12月20日前报送调研成果。",
            &[],
        )
        .await?;
    let g_id = id_of(&g)?;
    d.say("甘肃省政协 sends guidance to its whole subtree: 关于做好联动协商成果汇总的通知");
    for c in [LANZHOU, BAIYIN, YUZHONG, YONGDENG, JINGYUAN] {
        let code = c.to_string();
        d.fed
            .wait_until(&format!("{c} to receive the guidance"), WAIT, |f| {
                f.node(&code)
                    .map(|n| {
                        n.guidance_list()
                            .map(|l| !l.guidance.is_empty())
                            .unwrap_or(false)
                    })
                    .unwrap_or(false)
            })
            .await?;
        d.fed
            .node(c)?
            .acknowledge_guidance(&g_id.to_string())
            .await?;
    }
    d.say("every online committee acknowledges the guidance (签收)");

    d.wait_status(PROVINCE, s_yz, AssignmentStatus::Approved)
        .await?;
    d.show_tree(PROVINCE, &topic_id)?;

    d.say("会宁县 620422 comes online and catches up");
    let t0 = Instant::now();
    d.fed.start(HUINING).await?;
    d.wait_status(HUINING, s_hn, AssignmentStatus::Issued)
        .await?;
    let code = HUINING.to_string();
    d.fed
        .wait_until("会宁县 to receive the guidance", WAIT, |f| {
            f.node(&code)
                .map(|n| {
                    n.guidance_list()
                        .map(|l| !l.guidance.is_empty())
                        .unwrap_or(false)
                })
                .unwrap_or(false)
        })
        .await?;
    d.say(&format!(
        "会宁县 caught up in {:.0} ms: its task and the guidance arrived",
        t0.elapsed().as_secs_f64() * 1000.0
    ));
    let huining = d.fed.node(HUINING)?.clone();
    huining.acknowledge(&s_hn.to_string()).await?;
    huining.acknowledge_guidance(&g_id.to_string()).await?;
    huining
        .submit(submit(
            s_hn,
            "会宁县旱作农业与水土流失调研报告",
            &["推广全膜双垄沟播技术"],
        ))
        .await?;
    d.wait_status(BAIYIN, s_hn, AssignmentStatus::Submitted)
        .await?;
    baiyin.review(review(s_hn, true, "通过")).await?;
    d.say("会宁县 acknowledges, submits; 白银市 approves");

    lanzhou
        .submit(submit(
            a_lz,
            "黄河兰州段水资源节约集约利用调研报告（汇总榆中、永登）",
            &["推进再生水利用"],
        ))
        .await?;
    baiyin
        .submit(submit(
            a_by,
            "黄河白银段水土保持与生态修复调研报告（汇总靖远、会宁）",
            &["统筹沿黄生态廊道建设"],
        ))
        .await?;
    d.wait_status(PROVINCE, a_lz, AssignmentStatus::Submitted)
        .await?;
    d.wait_status(PROVINCE, a_by, AssignmentStatus::Submitted)
        .await?;
    province
        .review(review(a_lz, true, "通过，纳入全省汇总报告"))
        .await?;
    province
        .review(review(a_by, true, "通过，纳入全省汇总报告"))
        .await?;
    d.say("the cities submit their consolidated reports; the province approves both");

    let rep = d
        .fed
        .node(JINGYUAN)?
        .send_report(
            PROVINCE,
            "public-opinion",
            "关于沿黄乡镇饮水安全的社情民意信息",
            "靖远县部分沿黄乡镇汛期饮水水质波动，建议加强监测。",
        )
        .await?;
    let rep_id = id_of(&rep)?;
    d.say("靖远县 sends a 社情民意信息 report up to the province (relayed by 白银市)");
    d.fed
        .wait_until("the province to receive the report", WAIT, |f| {
            f.node(PROVINCE)
                .map(|n| {
                    n.report_list()
                        .map(|l| !l.reports.is_empty())
                        .unwrap_or(false)
                })
                .unwrap_or(false)
        })
        .await?;
    province.acknowledge_report(&rep_id.to_string()).await?;
    d.fed
        .wait_until(
            "靖远县 to see the province's acknowledgement",
            WAIT,
            |f| {
                f.node(JINGYUAN)
                    .map(|n| {
                        n.report_list()
                            .map(|l| l.reports.iter().any(|r| r.acknowledged))
                            .unwrap_or(false)
                    })
                    .unwrap_or(false)
            },
        )
        .await?;
    d.say("the province acknowledges the report; 靖远县 sees the acknowledgement");

    for c in [LANZHOU, BAIYIN, YUZHONG, YONGDENG, JINGYUAN, HUINING] {
        let code = c.to_string();
        d.fed
            .wait_until(
                &format!("the province to see {c}'s acknowledgement"),
                WAIT,
                |f| acked_guidance(f, PROVINCE, g_id, &code),
            )
            .await?;
    }
    d.wait_status(PROVINCE, s_hn, AssignmentStatus::Approved)
        .await?;
    d.wait_status(LANZHOU, a_lz, AssignmentStatus::Approved)
        .await?;
    d.wait_status(BAIYIN, a_by, AssignmentStatus::Approved)
        .await?;
    province
        .close_topic(
            &topic_id,
            "形成《黄河流域甘肃段生态保护联动协商报告》，提出建议6条",
            false,
        )
        .await?;
    d.say("the province concludes the topic");

    d.show_tree(PROVINCE, &topic_id)?;
    let guidance = province.guidance_list()?;
    if !d.json {
        print!("    {}", print::guidance(&guidance));
        print!("    {}", print::reports(&province.report_list()?));
        println!();
    }
    let mut statuses = Vec::new();
    for s in d.fed.specs.clone() {
        statuses.push(d.fed.node(&s.code)?.status()?);
    }
    Ok(FinalState {
        topic: province.topic_view(&topic_id)?,
        guidance,
        reports: province.report_list()?,
        statuses,
        seconds: d.started.elapsed().as_secs_f64(),
    })
}
