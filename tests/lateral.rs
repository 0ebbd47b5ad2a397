//! Lateral groups over real nodes: four provinces, each the root of its own federation (own
//! trust anchor, own TLS CA) with a city and a county, linked laterally province to province.
//!
//! Gansu, Qinghai and Ningxia found yellow-river-9 (every member endorses); Ningxia, the host
//! of 2026, convenes a joint meeting; each province carries its share down its own tree and
//! publishes a roll-up; the host sees the roll-up across the members while no province ever
//! stores another's internal topic or assignments; the report is drafted, commented,
//! finalized and sent. Then Shaanxi, linked from the start but not a member, joins by an
//! amendment (a majority and the newcomer endorse) and receives the group's earlier events
//! through the backfill of links whose cursors had long passed them.
mod common;

use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use common::{assign, init_tracing, review, submit, topic, WAIT};
use liandong::domain::record::{AssignmentStatus, JointStatus, RecordKey, RecordState};
use liandong::event::Envelope;
use liandong::fixture_groups::{province, Lateral};
use liandong::node::Node;
use liandong::pb::{self, audience::Kind, sync_frame::Kind as Frame};
use liandong::tls::{NodeTls, Transport};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

const G: &str = "yellow-river-9";
const SHAANXI: &str = "610000";
const GANSU: &str = "620000";
const QINGHAI: &str = "630000";
const NINGXIA: &str = "640000";

async fn wait(l: &Lateral, what: &str, done: impl Fn(&Lateral) -> bool) -> Result<()> {
    l.wait_until(what, WAIT, done)
        .await
        .map_err(|e| anyhow!("{e}"))
}

fn tree(l: &Lateral, root: &str) -> Vec<String> {
    l.fed(root)
        .map(|f| f.specs.iter().map(|s| s.code.clone()).collect())
        .unwrap_or_default()
}

fn in_force(l: &Lateral, at: &str) -> Option<u32> {
    let n = l.node(at).ok()?;
    let r = n.roster();
    r.group(G)?.in_force.as_ref().map(|c| c.version)
}

/// The pending proposal of `version` at `at` (its digest), once it is there.
fn pending(l: &Lateral, at: &str, version: u32) -> Option<String> {
    let v = l.node(at).ok()?.groups_view().ok()?;
    v.groups
        .iter()
        .find(|g| g.id == G)?
        .proposals
        .iter()
        .find(|p| p.version == version && p.status == "pending")
        .map(|p| p.digest.clone())
}

fn meeting(l: &Lateral, at: &str, id: Uuid) -> Option<liandong::domain::record::JointMeeting> {
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

async fn wait_status(l: &Lateral, at: &str, id: Uuid, want: AssignmentStatus) -> Result<()> {
    wait(
        l,
        &format!("{at} to see assignment {id} {}", want.name()),
        |l| status(l, at, id) == Some(want),
    )
    .await
}

fn id_of(r: &pb::Receipt) -> Result<Uuid> {
    Uuid::parse_str(&r.record_id).context("a receipt names its record by UUID")
}

fn log(node: &Node) -> Result<Vec<Envelope>> {
    let mut out = Vec::new();
    for e in node.store().log_after(0, usize::MAX)? {
        let frame = node.store().event_frame(&e.id)?.context("missing frame")?;
        out.push(Envelope::open(&frame).map_err(|e| anyhow!("{e}"))?);
    }
    Ok(out)
}

/// A province's share: its own topic, one assignment to its city split for its county; the
/// county goes as far as `upto` (acknowledged, submitted or approved all the way up).
/// Returns the topic id and the county's sub-assignment.
async fn carry_share(
    l: &Lateral,
    root: &str,
    upto: AssignmentStatus,
) -> Result<(String, Uuid, Uuid)> {
    let t = tree(l, root);
    let (city, county) = (t[1].clone(), t[2].clone());
    let p = l.node(root)?.clone();
    let c = l.node(&city)?.clone();
    let k = l.node(&county)?.clone();
    let topic_id = p
        .create_topic(topic("黄河流域生态保护本省分课题"))
        .await?
        .record_id;
    let a = id_of(
        &p.assign(assign(&topic_id, "", &city, "市级分课题", 1))
            .await?,
    )?;
    wait_status(l, &city, a, AssignmentStatus::Issued).await?;
    c.acknowledge(&a.to_string()).await?;
    let s = id_of(
        &c.assign(assign("", &a.to_string(), &county, "县级子课题", 1))
            .await?,
    )?;
    wait_status(l, &county, s, AssignmentStatus::Issued).await?;
    k.acknowledge(&s.to_string()).await?;
    if upto >= AssignmentStatus::Submitted {
        k.submit(submit(s, "县级调研报告")).await?;
        wait_status(l, &city, s, AssignmentStatus::Submitted).await?;
    }
    if upto == AssignmentStatus::Approved {
        c.review(review(s, true, "通过")).await?;
        c.submit(submit(a, "市级调研报告")).await?;
        wait_status(l, root, a, AssignmentStatus::Submitted).await?;
        p.review(review(a, true, "通过")).await?;
        wait_status(l, root, a, AssignmentStatus::Approved).await?;
    }
    wait_status(l, root, s, upto).await?;
    Ok((topic_id, a, s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provinces_hold_a_joint_meeting_and_a_later_member_gets_its_history() -> Result<()> {
    init_tracing();
    let mut l = Lateral::new(vec![
        province(SHAANXI)?,
        province(GANSU)?,
        province(QINGHAI)?,
        province(NINGXIA)?,
    ])?;
    l.link_all(&[SHAANXI, GANSU, QINGHAI, NINGXIA])?;
    l.bring_up(&[]).await?;
    let (gansu, qinghai, ningxia, shaanxi) = (
        l.node(GANSU)?.clone(),
        l.node(QINGHAI)?.clone(),
        l.node(NINGXIA)?.clone(),
        l.node(SHAANXI)?.clone(),
    );
    let member = |code: &str, name: &str| -> Result<liandong::node::lateral::MemberInput> {
        Ok(liandong::node::lateral::MemberInput {
            code: code.into(),
            name: name.into(),
            key: l.anchor_key(code)?,
        })
    };

    // ---- founding: every member endorses ----
    gansu
        .propose_charter(
            G,
            "沿黄九省区政协黄河流域生态保护和高质量发展协商研讨会",
            &[
                member(QINGHAI, "青海省政协")?,
                member(NINGXIA, "宁夏回族自治区政协")?,
            ],
            &[(2026, NINGXIA.into())],
        )
        .await?;
    for m in [QINGHAI, NINGXIA] {
        wait(&l, &format!("{m} to hold the proposal"), |l| {
            pending(l, m, 1).is_some()
        })
        .await?;
    }
    ensure!(
        in_force(&l, GANSU).is_none(),
        "in force before every member endorsed"
    );
    qinghai.endorse_charter(G, "").await?;
    wait(&l, "Qinghai's endorsement at Gansu", |l| {
        l.node(GANSU)
            .ok()
            .and_then(|n| n.groups_view().ok())
            .is_some_and(|v| {
                v.groups[0].proposals[0]
                    .members
                    .iter()
                    .any(|m| m.code == QINGHAI && m.endorsed)
            })
    })
    .await?;
    ensure!(
        in_force(&l, GANSU).is_none(),
        "two of three endorsements must not found the group"
    );
    ningxia.endorse_charter(G, "").await?;
    let members: Vec<String> = [GANSU, QINGHAI, NINGXIA]
        .iter()
        .flat_map(|r| tree(&l, r))
        .collect();
    for c in &members {
        wait(&l, &format!("the charter in force at {c}"), |l| {
            in_force(l, c) == Some(1)
        })
        .await?;
    }
    // Shaanxi, linked to all three but named by no charter, knows nothing of the group.
    ensure!(shaanxi.roster().group(G).is_none());
    ensure!(log(&shaanxi)?
        .iter()
        .all(|e| !matches!(e.audience(), Kind::Group(_))));

    // ---- the host of 2026 convenes; each province carries its share down its own tree ----
    let err = gansu
        .convene_joint_meeting(G, 2026, "黄河", "", "", "", false)
        .await
        .expect_err("Gansu is not the host of 2026");
    ensure!(err.to_string().contains("640000"), "{err}");
    let m = id_of(
        &ningxia
            .convene_joint_meeting(
                G,
                2026,
                "黄河流域生态保护和高质量发展联合调研",
                "九省区联动",
                "2026-09-01",
                "银川",
                false,
            )
            .await?,
    )?;
    for c in [GANSU, QINGHAI] {
        wait(&l, &format!("{c} to hold the meeting"), |l| {
            meeting(l, c, m).is_some()
        })
        .await?;
    }
    let (gs_topic, gs_a, gs_s) = carry_share(&l, GANSU, AssignmentStatus::Approved).await?;
    let (qh_topic, _, qh_s) = carry_share(&l, QINGHAI, AssignmentStatus::Submitted).await?;
    let (nx_topic, _, _) = carry_share(&l, NINGXIA, AssignmentStatus::Acknowledged).await?;
    let ms = m.to_string();
    gansu.publish_rollup(&ms, &gs_topic, "甘肃段完成").await?;
    qinghai.publish_rollup(&ms, &qh_topic, "").await?;
    ningxia.publish_rollup(&ms, &nx_topic, "").await?;

    // The host sees the roll-up across the members.
    wait(&l, "the host to see three roll-ups", |l| {
        meeting(l, NINGXIA, m).is_some_and(|x| x.rollups.len() == 3)
    })
    .await?;
    let view = ningxia.joint_meeting_view(&ms)?;
    let by = |code: &str| view.rollups.iter().find(|r| r.member == code).cloned();
    let gs = by(GANSU).context("Gansu's roll-up")?;
    ensure!(
        gs.progress == 1.0 && gs.approved == 2 && gs.committees == 2,
        "{gs:?}"
    );
    let qh = by(QINGHAI).context("Qinghai's roll-up")?;
    ensure!(
        qh.submitted == 1 && qh.progress > 0.0 && qh.progress < 1.0,
        "{qh:?}"
    );
    ensure!(
        view.progress > 0.0 && view.not_reported.is_empty(),
        "{view:?}"
    );

    // ---- nothing internal crosses: each store holds its own tree's events and group
    // events only; the members-only meeting never reaches a city or a county ----
    for root in [GANSU, QINGHAI, NINGXIA, SHAANXI] {
        let own = tree(&l, root);
        for c in &own {
            for e in log(l.node(c)?)? {
                let foreign = !own.contains(&e.origin().to_string());
                ensure!(
                    !foreign || matches!(e.audience(), Kind::Group(_)),
                    "{c} holds {} of {} with a tree audience {:?}",
                    e.kind_name(),
                    e.origin(),
                    e.audience()
                );
                if c != root {
                    ensure!(
                        !e.kind_name().starts_with("joint_"),
                        "{c} holds the members-only {} of {}",
                        e.kind_name(),
                        e.origin()
                    );
                }
            }
        }
    }
    for (at, other_assignment) in [(NINGXIA, gs_a), (NINGXIA, gs_s), (GANSU, qh_s)] {
        ensure!(
            !l.node(at)?.store().has_event(&other_assignment)?
                && status(&l, at, other_assignment).is_none(),
            "{at} holds another member's internal assignment {other_assignment}"
        );
    }
    ensure!(
        ningxia.topic_view(&gs_topic).is_err(),
        "the host holds Gansu's topic"
    );

    // ---- contributions, drafts, comments, the final report, where it went ----
    gansu
        .contribute_joint(
            &ms,
            "",
            "research",
            "甘肃段",
            "水土保持成效……",
            vec![],
            vec![],
        )
        .await?;
    qinghai
        .contribute_joint(&ms, "", "research", "青海段", "三江源……", vec![], vec![])
        .await?;
    wait(&l, "the host to hold two contributions", |l| {
        meeting(l, NINGXIA, m).is_some_and(|x| x.contributions.len() == 2)
    })
    .await?;
    ningxia
        .draft_joint_report(
            &ms,
            "联合调研报告",
            "第一稿",
            vec!["建立生态补偿机制".into()],
        )
        .await?;
    wait(&l, "Gansu to hold the draft", |l| {
        meeting(l, GANSU, m).is_some_and(|x| x.drafts.len() == 1)
    })
    .await?;
    ensure!(
        gansu.finalize_joint_report(&ms).await.is_err(),
        "only the host finalizes"
    );
    gansu
        .comment_joint_report(&ms, 0, false, "补充甘肃数据")
        .await?;
    wait(&l, "the host to hold the comment", |l| {
        meeting(l, NINGXIA, m).is_some_and(|x| x.comments.len() == 1)
    })
    .await?;
    ningxia
        .draft_joint_report(
            &ms,
            "联合调研报告",
            "第二稿",
            vec!["建立生态补偿机制".into()],
        )
        .await?;
    ningxia.finalize_joint_report(&ms).await?;
    ningxia
        .send_joint_report(&ms, "national-committee", "全国政协", "", "2026-10-08")
        .await?;
    wait(&l, "Qinghai to see the report final and sent", |l| {
        meeting(l, QINGHAI, m)
            .is_some_and(|x| x.status == JointStatus::Finalized && x.dispatches.len() == 1)
    })
    .await?;

    // ---- Shaanxi joins: an amendment, endorsed by a majority and by the newcomer ----
    let before = shaanxi.store().cursor(GANSU)?.position;
    ensure!(
        before > 0,
        "Shaanxi's link to Gansu has been syncing all along"
    );
    gansu
        .propose_charter(
            G,
            "",
            &[member(SHAANXI, "陕西省政协")?],
            &[(2027, SHAANXI.into())],
        )
        .await?;
    wait(
        &l,
        "Shaanxi to hold the amendment on top of the charter in force",
        |l| in_force(l, SHAANXI) == Some(1) && pending(l, SHAANXI, 2).is_some(),
    )
    .await?;
    shaanxi.endorse_charter(G, "").await?;
    wait(&l, "Qinghai to hold the amendment", |l| {
        pending(l, QINGHAI, 2).is_some()
    })
    .await?;
    qinghai.endorse_charter(G, "").await?;
    for c in [GANSU, QINGHAI, NINGXIA, SHAANXI] {
        wait(&l, &format!("the amendment in force at {c}"), |l| {
            in_force(l, c) == Some(2)
        })
        .await?;
    }
    // The earlier meeting, with its roll-ups, contributions and final report, reaches the
    // newcomer although every cursor had passed it: the backfill.
    wait(&l, "Shaanxi to hold the whole earlier meeting", |l| {
        meeting(l, SHAANXI, m).is_some_and(|x| {
            x.status == JointStatus::Finalized
                && x.rollups.len() == 3
                && x.contributions.len() == 2
                && x.dispatches.len() == 1
        })
    })
    .await?;
    // ... and its cities and counties still get nothing of a members-only meeting.
    for c in &tree(&l, SHAANXI)[1..] {
        ensure!(
            meeting(&l, c, m).is_none(),
            "{c} holds the members-only meeting"
        );
        wait(&l, &format!("the amendment in force at {c}"), |l| {
            in_force(l, c) == Some(2)
        })
        .await?;
    }
    // Nothing was refused for good along the way: what waited for a charter cleared.
    for c in [GANSU, QINGHAI, NINGXIA, SHAANXI] {
        let stuck: Vec<String> = l
            .node(c)?
            .store()
            .quarantine_list()?
            .into_iter()
            .filter(|q| q.category != "awaiting charter")
            .map(|q| format!("{} {}", q.category, q.reason))
            .collect();
        ensure!(stuck.is_empty(), "{c} refused: {stuck:?}");
    }
    l.stop_all().await;
    Ok(())
}

/// A certificate that a lateral peer's CA issued for a committee of *this* tree does not open
/// a child's link: the accepting node checks which CA issued a caller's certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_federations_ca_cannot_stand_in_for_a_child() -> Result<()> {
    init_tracing();
    let mut l = Lateral::new(vec![province(GANSU)?, province(NINGXIA)?])?;
    l.link(GANSU, NINGXIA)?;
    l.bring_up(&[]).await?;
    let ningxia_ca = l.fed(NINGXIA)?.ca().context("TLS")?;
    // Ningxia's CA makes a certificate naming 兰州市 620100, a registered child of Gansu.
    let forged = ningxia_ca.issue("620100", 1)?;
    let gansu_ca = l.fed(GANSU)?.ca().context("TLS")?.cert_pem().to_string();
    let tls = NodeTls::from_pem(ningxia_ca.cert_pem(), &forged.cert_pem, &forged.key_pem)?
        .with_peer_ca(GANSU, &gansu_ca)?;
    let address = l.fed(GANSU)?.running(GANSU)?.federation_url();
    let channel = liandong::sync::TonicConnector::new(Transport::Tls(std::sync::Arc::new(tls)))
        .channel(GANSU, &address)
        .await?;
    let mut client = pb::federation_client::FederationClient::new(channel);
    let (tx, rx) = mpsc::channel(4);
    tx.send(pb::SyncFrame {
        kind: Some(Frame::Hello(pb::Hello {
            protocol: liandong::sync::PROTOCOL,
            committee: "620100".into(),
            ..Default::default()
        })),
    })
    .await?;
    let status = match client.sync(ReceiverStream::new(rx)).await {
        Err(s) => s,
        Ok(r) => {
            let mut inbound = r.into_inner();
            match tokio::time::timeout(Duration::from_secs(5), inbound.message()).await {
                Ok(Err(s)) => s,
                other => anyhow::bail!("the forged child got an answer: {other:?}"),
            }
        }
    };
    ensure!(
        status.code() == tonic::Code::PermissionDenied && status.message().contains("CA"),
        "{status:?}"
    );
    l.stop_all().await;
    Ok(())
}

/// `liandong demo --scenario yellow-river --json`: the whole joint cycle across three
/// federations, as a person would run it.
#[test]
fn the_yellow_river_demo_runs_the_whole_cycle() -> Result<()> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liandong"))
        .args(["demo", "--scenario", "yellow-river", "--json"])
        .env("RUST_LOG", "off")
        .output()?;
    ensure!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let m = &v["meeting"];
    ensure!(m["status"] == "finalized" && m["host"] == NINGXIA, "{m}");
    let rollups = m["rollups"].as_array().context("roll-ups")?;
    ensure!(rollups.len() == 3, "{m}");
    for r in rollups {
        ensure!(
            r["progress"] == 1.0
                && r["recommendations_closed"] == 2
                && r["reconsultation_rounds"] == 1,
            "{r}"
        );
    }
    ensure!(m["dispatches"].as_array().map(Vec::len) == Some(3), "{m}");
    ensure!(v["group"]["version"] == 1, "{}", v["group"]);
    for pair in v["foreign_internal_events"].as_array().context("counts")? {
        ensure!(pair[1] == 0, "{pair}");
    }
    Ok(())
}

/// Runs `liandong --api <node> --json ARGS` against a running node of `l`.
async fn cli(l: &Lateral, at: &str, args: &[&str]) -> Result<serde_json::Value> {
    let running = l.fed_of(at)?.running(at)?;
    let api = running.api_url();
    let token = running.api_token().secret().to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let shown = args.join(" ");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_liandong"))
            .args(["--api", &api, "--json"])
            .args(&args)
            .env("LIANDONG_TOKEN", token)
            .env_remove("LIANDONG_CONFIG")
            .stdin(std::process::Stdio::null())
            .output()
    })
    .await??;
    ensure!(
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

/// The `liandong group ...` commands, with --json, on two provinces' root nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_commands_from_the_command_line() -> Result<()> {
    init_tracing();
    let mut l = Lateral::new(vec![province(GANSU)?, province(NINGXIA)?])?;
    l.link(GANSU, NINGXIA)?;
    l.bring_up(&[]).await?;
    let ningxia_key = l.anchor_key(NINGXIA)?;
    let member = format!("{NINGXIA}={ningxia_key}=宁夏回族自治区政协");
    let r = cli(
        &l,
        GANSU,
        &[
            "group",
            "charter",
            "propose",
            "--group",
            G,
            "--name",
            "沿黄省区协商研讨会",
            "--member",
            &member,
            "--host",
            "2026=640000",
        ],
    )
    .await?;
    ensure!(r["record_id"].as_str().map(str::len) == Some(64), "{r}");
    wait(&l, "Ningxia to hold the proposal", |l| {
        pending(l, NINGXIA, 1).is_some()
    })
    .await?;
    let groups = cli(&l, NINGXIA, &["group", "list"]).await?;
    ensure!(
        groups["groups"][0]["proposals"][0]["missing"] == serde_json::json!([NINGXIA]),
        "{groups}"
    );
    cli(&l, NINGXIA, &["group", "charter", "endorse", "--group", G]).await?;
    wait(&l, "the charter in force at Gansu", |l| {
        in_force(l, GANSU) == Some(1)
    })
    .await?;
    let m = cli(
        &l,
        NINGXIA,
        &[
            "group",
            "meeting",
            "convene",
            "--group",
            G,
            "--year",
            "2026",
            "--theme",
            "黄河流域生态保护",
        ],
    )
    .await?;
    let meeting_id = m["record_id"].as_str().context("meeting id")?.to_string();
    let mid = Uuid::parse_str(&meeting_id)?;
    wait(&l, "Gansu to hold the meeting", |l| {
        meeting(l, GANSU, mid).is_some()
    })
    .await?;
    let t = cli(
        &l,
        GANSU,
        &["topic", "create", "--title", "甘肃分课题", "--publish"],
    )
    .await?;
    let topic_id = t["record_id"].as_str().context("topic id")?.to_string();
    let short = &meeting_id[meeting_id.len() - 8..];
    cli(&l, GANSU, &["group", "rollup", short, "--topic", &topic_id]).await?;
    cli(
        &l,
        GANSU,
        &[
            "group",
            "meeting",
            "contribute",
            short,
            "--text",
            "甘肃段调研",
            "--rec",
            "生态补偿",
        ],
    )
    .await?;
    wait(
        &l,
        "the host to hold the roll-up and the contribution",
        |l| {
            meeting(l, NINGXIA, mid)
                .is_some_and(|x| x.rollups.len() == 1 && x.contributions.len() == 1)
        },
    )
    .await?;
    cli(
        &l,
        NINGXIA,
        &["group", "meeting", "draft", short, "--text", "第一稿"],
    )
    .await?;
    wait(&l, "Gansu to hold the draft", |l| {
        meeting(l, GANSU, mid).is_some_and(|x| x.drafts.len() == 1)
    })
    .await?;
    cli(
        &l,
        GANSU,
        &["group", "meeting", "comment", short, "--agree"],
    )
    .await?;
    cli(&l, NINGXIA, &["group", "meeting", "finalize", short]).await?;
    cli(
        &l,
        NINGXIA,
        &[
            "group",
            "meeting",
            "send",
            short,
            "--to",
            "national-committee",
            "--recipient",
            "全国政协",
        ],
    )
    .await?;
    wait(&l, "the comment at the host", |l| {
        meeting(l, NINGXIA, mid).is_some_and(|x| x.comments.len() == 1)
    })
    .await?;
    let v = cli(&l, NINGXIA, &["group", "meeting", "show", short]).await?;
    ensure!(
        v["status"] == "finalized"
            && v["final_version"] == 1
            && v["rollups"][0]["member"] == GANSU
            && v["not_reported"] == serde_json::json!([NINGXIA])
            && v["dispatches"][0]["destination"] == "national-committee",
        "{v}"
    );
    let list = cli(&l, GANSU, &["group", "meeting", "list"]).await?;
    ensure!(
        list["meetings"].as_array().map(Vec::len) == Some(1),
        "{list}"
    );
    // A refusal says what is wrong: Gansu is not the host of 2026.
    let running = l.fed(GANSU)?.running(GANSU)?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liandong"))
        .args(["--api", &running.api_url()])
        .args([
            "group", "meeting", "convene", "--group", G, "--year", "2026", "--theme", "x",
        ])
        .env("LIANDONG_TOKEN", running.api_token().secret())
        .env_remove("LIANDONG_CONFIG")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success() && err.contains("host"), "{err}");
    l.stop_all().await;
    Ok(())
}
