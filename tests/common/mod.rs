//! Helpers shared by the integration tests: the Gansu federation of `liandong::fixture`,
//! request builders, readers of a node's store, and waits that poll (never sleep-and-hope).
//!
//! Every wait polls with [`WAIT`] as its limit: CI has 2 cores and other builds may run
//! next to the tests, so the limit is generous, while a passing run takes a fraction of it.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use liandong::domain::audience;
use liandong::domain::record::{
    Assignment, AssignmentStatus, Folded, Guidance, RecordKey, RecordState, Report,
};
use liandong::domain::Roster;
use liandong::event::Envelope;
use liandong::fixture::{gansu, Federation};
use liandong::node::Node;
use liandong::pb;
use uuid::Uuid;

/// How long any one wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

pub const PROVINCE: &str = "620000"; // 甘肃省政协
pub const LANZHOU: &str = "620100"; // 兰州市政协
pub const BAIYIN: &str = "620400"; // 白银市政协
pub const YUZHONG: &str = "620123"; // 榆中县政协, under 兰州
pub const YONGDENG: &str = "620121"; // 永登县政协, under 兰州
pub const JINGYUAN: &str = "620421"; // 靖远县政协, under 白银
pub const HUINING: &str = "620422"; // 会宁县政协, under 白银

pub const ALL: [&str; 7] = [
    PROVINCE, LANZHOU, BAIYIN, YUZHONG, YONGDENG, JINGYUAN, HUINING,
];

/// Logs of the nodes go to the test's captured output; `RUST_LOG=liandong=debug` shows them.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// The Gansu federation (a province, 2 cities, 4 counties), every committee registered,
/// all running except `offline`.
pub async fn gansu_federation(offline: &[&str]) -> Result<Federation> {
    init_tracing();
    let mut fed = Federation::new(gansu())?;
    fed.bring_up(offline).await?;
    Ok(fed)
}

pub async fn wait(fed: &Federation, what: &str, done: impl Fn(&Federation) -> bool) -> Result<()> {
    fed.wait_until(what, WAIT, done)
        .await
        .map_err(|e| anyhow!("{e}"))
}

pub fn id_of(r: &pb::Receipt) -> Uuid {
    Uuid::parse_str(&r.record_id).expect("a receipt names its record by UUID")
}

pub fn event_of(r: &pb::Receipt) -> Uuid {
    Uuid::parse_str(&r.event_id).expect("a receipt names its event by UUID")
}

// ---- requests ----

pub fn topic(title: &str) -> pb::CreateTopicRequest {
    pb::CreateTopicRequest {
        title: title.into(),
        description: "围绕黄河甘肃段水土保持、水资源节约集约利用开展联动协商".into(),
        source: "party-government".into(),
        form: "thematic".into(),
        tier: "county-and-above".into(),
        plan_year: 2026,
        publish: true,
    }
}

/// A top-level assignment of `topic` (`parent` empty) or a sub-assignment of `parent`.
pub fn assign(topic: &str, parent: &str, to: &str, title: &str, weight: u32) -> pb::AssignRequest {
    pb::AssignRequest {
        topic_id: topic.into(),
        parent_assignment_id: parent.into(),
        assignee: to.into(),
        title: title.into(),
        description: String::new(),
        due_date: "2026-12-20".into(),
        weight,
    }
}

pub fn submit(assignment: Uuid, text: &str) -> pb::SubmitRequest {
    pb::SubmitRequest {
        assignment_id: assignment.to_string(),
        text: text.into(),
        recommendations: vec!["加强监测".into()],
        attachment_digests: vec![],
    }
}

pub fn review(assignment: Uuid, approve: bool, comment: &str) -> pb::ReviewRequest {
    pb::ReviewRequest {
        assignment_id: assignment.to_string(),
        verdict: if approve { "approve" } else { "return" }.into(),
        comment: comment.into(),
    }
}

// ---- reading a node's store ----

pub fn state(fed: &Federation, at: &str, key: RecordKey) -> Option<RecordState> {
    fed.node(at).ok()?.store().state(&key).ok()?
}

pub fn assignment(fed: &Federation, at: &str, id: Uuid) -> Option<Folded<Assignment>> {
    match state(fed, at, RecordKey::Assignment(id))? {
        RecordState::Assignment(a) => Some(a),
        _ => None,
    }
}

/// The assignment's status at `at`, once its issue has arrived there.
pub fn status(fed: &Federation, at: &str, id: Uuid) -> Option<AssignmentStatus> {
    assignment(fed, at, id)
        .filter(|a| a.record.issue.is_some())
        .map(|a| a.record.status)
}

pub async fn wait_status(
    fed: &Federation,
    at: &str,
    id: Uuid,
    want: AssignmentStatus,
) -> Result<()> {
    wait(
        fed,
        &format!("{at} to see assignment {id} {}", want.name()),
        |f| status(f, at, id) == Some(want),
    )
    .await
}

pub fn guidance(fed: &Federation, at: &str, id: Uuid) -> Option<Folded<Guidance>> {
    match state(fed, at, RecordKey::Guidance(id))? {
        RecordState::Guidance(g) if g.record.issuer.is_some() => Some(g),
        _ => None,
    }
}

pub async fn wait_guidance(fed: &Federation, at: &str, id: Uuid) -> Result<()> {
    wait(fed, &format!("{at} to receive guidance {id}"), |f| {
        guidance(f, at, id).is_some()
    })
    .await
}

pub fn report(fed: &Federation, at: &str, id: Uuid) -> Option<Folded<Report>> {
    match state(fed, at, RecordKey::Report(id))? {
        RecordState::Report(r) if r.record.sender.is_some() => Some(r),
        _ => None,
    }
}

/// Whether the node at `at` stores the event.
pub fn holds(fed: &Federation, at: &str, event: Uuid) -> bool {
    fed.node(at)
        .ok()
        .and_then(|n| n.store().has_event(&event).ok())
        .unwrap_or(false)
}

/// The event ids of the node's local log, in log order.
pub fn log_ids(node: &Node) -> Result<Vec<Uuid>> {
    Ok(node
        .store()
        .log_after(0, usize::MAX)?
        .into_iter()
        .map(|e| e.id)
        .collect())
}

/// Every event in the node's log, decoded from its stored frame.
pub fn log_envelopes(node: &Node) -> Result<Vec<Envelope>> {
    let mut out = Vec::new();
    for entry in node.store().log_after(0, usize::MAX)? {
        let frame = node
            .store()
            .event_frame(&entry.id)?
            .with_context(|| format!("log position {} names a missing event", entry.position))?;
        out.push(Envelope::open(&frame).map_err(|e| anyhow!("stored event {}: {e}", entry.id))?);
    }
    Ok(out)
}

/// The records the events held at a node are about.
pub fn records_held(node: &Node) -> Result<HashSet<RecordKey>> {
    log_envelopes(node)?
        .iter()
        .map(|e| {
            e.body()
                .ok_or_else(|| anyhow!("an event of an unknown kind"))
                .and_then(|b| RecordKey::of(b).map_err(|m| anyhow!(m)))
        })
        .collect()
}

/// Checks that the log holds each event once: positions 1..=n without holes, every id
/// distinct, every frame present, and the durable head not past the log. Returns n. (The
/// durable head may trail the log by a group commit in flight; tests that know the node is
/// settled compare it with what they expect.)
pub fn assert_log_clean(node: &Node) -> Result<usize> {
    let durable = node.durable_head();
    let entries = node.store().log_after(0, usize::MAX)?;
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e.position,
            i as u64 + 1,
            "{}: the log has a hole or is out of order at {}",
            node.code(),
            e.position
        );
        assert!(
            node.store().has_event(&e.id)?,
            "{}: log position {} names event {}, which is not stored",
            node.code(),
            e.position,
            e.id
        );
    }
    let distinct: HashSet<Uuid> = entries.iter().map(|e| e.id).collect();
    assert_eq!(
        distinct.len(),
        entries.len(),
        "{}: some event is in the log more than once",
        node.code()
    );
    assert!(
        durable <= entries.len() as u64,
        "{}: durable head {durable} is past the log's {} entries",
        node.code(),
        entries.len()
    );
    Ok(entries.len())
}

/// Every event held anywhere among `nodes` that `to` is entitled to store: visible to `to`
/// or to something below it, by the audience rules, against `roster`. Computed from the
/// other nodes' stores, independently of what `to` received.
pub fn entitled(roster: &Roster, nodes: &[&Node], to: &str) -> Result<BTreeSet<Uuid>> {
    let mut out = BTreeSet::new();
    for node in nodes {
        for env in log_envelopes(node)? {
            if audience::visible_within(roster, env.audience(), env.origin(), to) {
                out.insert(env.id);
            }
        }
    }
    Ok(out)
}

/// The running nodes of the federation.
pub fn running_nodes(fed: &Federation) -> Vec<&Node> {
    ALL.iter().filter_map(|c| fed.node(c).ok()).collect()
}

pub fn quarantine(fed: &Federation, at: &str) -> Result<Vec<pb::QuarantineEntry>> {
    Ok(fed.node(at)?.quarantine_view()?.entries)
}

/// Asserts that no running node refused anything: a legitimate round quarantines nothing.
pub fn assert_nothing_quarantined(fed: &Federation) -> Result<()> {
    for c in ALL {
        if let Ok(n) = fed.node(c) {
            let q = n.quarantine_view()?.entries;
            assert!(q.is_empty(), "{c} quarantined legitimate events: {q:#?}");
        }
    }
    Ok(())
}
