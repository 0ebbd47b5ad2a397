//! Real crashes (issue 5): seven `liandong serve` processes — the province 620000, the cities
//! 620100 (counties 620123, 620121) and 620400 (620421, and 620422, registered only during the
//! run), linked over mutual TLS — run under a continuous workload through their local gRPC
//! APIs while a seeded schedule `kill -9`s a random one at a random moment, many times,
//! restarting it on the same store each time. Afterwards the links settle, every process is
//! killed once more, each node's store (sled or the log engine, every other node) is opened
//! in this process, and the invariants of [`liandong::invariants`] (the simulation's own
//! checks) must hold on them:
//!
//! 1. every event that was acknowledged — a write the API confirmed with a receipt, or an
//!    event a node announced as durable on its change stream, which is what it acks a peer's
//!    batch after — is still held by that node, and by every node entitled to it;
//! 2. no node holds an event outside its scope; 3. nothing is applied twice; 4. every node's
//!    state of every shared record is the same (digests), and each equals the fold of its
//!    events; 5. nothing forged or unauthorized is held, and nothing genuine was refused;
//! 6. each origin's events are held without gaps wherever its whole log is visible.
//!
//! `CRASH_SEED=…` replays the choice of victims and moments (the printed seed of a failing
//! run); `CRASH_KILLS=N` kills N times (default 20). The timing of the processes themselves is
//! the machine's, so a replay repeats the schedule, not the exact interleaving.
#[path = "common/process.rs"]
mod process;
use process::{free_port, liandong};

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use liandong::api::auth::{ApiToken, AttachToken};
use liandong::pb::{self, committee_client::CommitteeClient};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use uuid::Uuid;

/// The store engines the nodes take turns with (`init --engine`), so that one run kills
/// stores of both.
const ENGINES: [&str; 2] = ["log", "sled"];

/// How long a node may take to open its API after a (re)start.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long the federation may take to settle once the kills and the workload stop.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

struct Spec {
    code: &'static str,
    name: &'static str,
    parent: Option<&'static str>,
}

/// Registered only during the run, by its city, while the kills go on: what was published to
/// its city's or the province's subtree before reaches it by a backfill pass.
const LATE: &str = "620422";

const NODES: [Spec; 7] = [
    Spec {
        code: "620000",
        name: "甘肃省政协",
        parent: None,
    },
    Spec {
        code: "620100",
        name: "兰州市政协",
        parent: Some("620000"),
    },
    Spec {
        code: "620400",
        name: "白银市政协",
        parent: Some("620000"),
    },
    Spec {
        code: "620123",
        name: "榆中县政协",
        parent: Some("620100"),
    },
    Spec {
        code: "620121",
        name: "永登县政协",
        parent: Some("620100"),
    },
    Spec {
        code: "620421",
        name: "靖远县政协",
        parent: Some("620400"),
    },
    Spec {
        code: LATE,
        name: "会宁县政协",
        parent: Some("620400"),
    },
];

fn parent_of(code: &str) -> Option<&'static str> {
    NODES.iter().find(|s| s.code == code).and_then(|s| s.parent)
}

/// The committees above `code`, nearest first.
fn above(code: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut at = parent_of(code);
    while let Some(p) = at {
        out.push(p);
        at = parent_of(p);
    }
    out
}

/// The committees below `code`.
fn below(code: &str) -> Vec<&'static str> {
    NODES
        .iter()
        .map(|s| s.code)
        .filter(|c| above(c).contains(&code))
        .collect()
}

fn level(code: &str) -> &'static str {
    ["province", "city", "county"][above(code).len().min(2)]
}

/// Runs a setup command; returns its stdout.
fn run(what: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running liandong {what}"))?;
    ensure!(
        out.status.success(),
        "`liandong {what}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

type Client = CommitteeClient<InterceptedService<Channel, AttachToken>>;

/// One node: its folder, ports, token, and the `liandong serve` process while it runs.
struct Proc {
    code: &'static str,
    config: PathBuf,
    api: SocketAddr,
    log: PathBuf,
    public_key: String,
    client: Client,
    /// Without a request timeout: for the change stream.
    watcher: Client,
    child: Mutex<Option<Child>>,
}

impl Proc {
    fn client(&self) -> Client {
        self.client.clone()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Starts `liandong serve` on the node's folder and waits for its local API.
    async fn start(&self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = liandong()
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .arg("--metrics-listen=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawning liandong serve")?;
        *lock(&self.child) = Some(child);
        let started = Instant::now();
        loop {
            let exited = lock(&self.child)
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                bail!(
                    "{}: liandong serve exited with {status}:\n{}",
                    self.code,
                    self.log_tail()
                );
            }
            if tokio::net::TcpStream::connect(self.api).await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_LIMIT {
                bail!(
                    "{}: the API did not open within {START_LIMIT:?}:\n{}",
                    self.code,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9` (Child::kill is SIGKILL), and reap it.
    fn kill(&self) -> Result<()> {
        let Some(mut child) = lock(&self.child).take() else {
            bail!("{} is not running", self.code);
        };
        child.kill()?;
        let status = child.wait()?;
        ensure!(
            !status.success(),
            "{}: serve had exited by itself: {status}",
            self.code
        );
        Ok(())
    }

    async fn status(&self, limit: Duration) -> Option<pb::StatusView> {
        let mut client = self.client();
        match tokio::time::timeout(limit, client.status(pb::Empty {})).await {
            Ok(Ok(r)) => Some(r.into_inner()),
            _ => None,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = lock(&self.child).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The federation's folders: a CA, then `init` and a certificate for every node.
fn set_up(root: &Path) -> Result<Vec<Arc<Proc>>> {
    let ca = root.join("ca");
    run(
        "certs ca",
        liandong()
            .args(["certs", "ca", "--name", "甘肃省政协 620000", "--dir"])
            .arg(&ca),
    )?;
    let mut ports: BTreeMap<&str, (u16, u16)> = BTreeMap::new();
    for s in &NODES {
        ports.insert(s.code, (free_port()?, free_port()?));
    }
    let mut procs = Vec::new();
    let mut root_key = String::new();
    for (i, s) in NODES.iter().enumerate() {
        let dir = root.join(s.code);
        let (fed, api) = ports[s.code];
        let mut init = liandong();
        init.arg("init")
            .arg("--dir")
            .arg(&dir)
            .args(["--code", s.code, "--name", s.name])
            // Both engines, side by side in one federation: every other node on each.
            .args(["--engine", ENGINES[i % 2]])
            .args(["--listen", &format!("127.0.0.1:{fed}")])
            .args(["--api-listen", &format!("127.0.0.1:{api}")]);
        if let Some(p) = s.parent {
            init.args(["--parent-code", p])
                .args([
                    "--parent-address",
                    &format!("https://127.0.0.1:{}", ports[p].0),
                ])
                .args(["--root-code", "620000", "--root-key", &root_key]);
        }
        let out = run(&format!("init {}", s.code), &mut init)?;
        let public_key = out
            .lines()
            .find_map(|l| l.strip_prefix("public key: "))
            .with_context(|| format!("no public key in the output of init: {out}"))?
            .trim()
            .to_string();
        if s.parent.is_none() {
            root_key = public_key.clone();
        }
        run(
            &format!("certs issue {}", s.code),
            liandong()
                .args(["certs", "issue", "--code", s.code, "--ca"])
                .arg(&ca)
                .arg("--out")
                .arg(&dir),
        )?;
        let token = ApiToken::read(&dir.join("api.token"))?;
        let api_addr: SocketAddr = format!("127.0.0.1:{api}").parse()?;
        let endpoint = Endpoint::from_shared(format!("http://{api_addr}"))?
            .connect_timeout(Duration::from_millis(500));
        let channel = endpoint
            .clone()
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        let watcher = CommitteeClient::with_interceptor(
            endpoint.connect_lazy(),
            AttachToken::new(Some(&token)),
        );
        procs.push(Arc::new(Proc {
            code: s.code,
            config: dir.join("liandong.toml"),
            api: api_addr,
            log: root.join(format!("{}.log", s.code)),
            public_key,
            client: CommitteeClient::with_interceptor(channel, AttachToken::new(Some(&token))),
            watcher,
            child: Mutex::new(None),
        }));
    }
    Ok(procs)
}

fn registration(p: &Proc) -> Result<pb::RegisterCommitteeRequest> {
    let spec = NODES.iter().find(|s| s.code == p.code).context("spec")?;
    Ok(pb::RegisterCommitteeRequest {
        code: p.code.into(),
        name: spec.name.into(),
        public_key: p.public_key.clone(),
    })
}

/// Starts the federation top-down (all but [`LATE`]): each parent registers its children,
/// each child waits until its own registration has reached it.
async fn bring_up(procs: &[Arc<Proc>]) -> Result<()> {
    let by_code = |c: &str| procs.iter().find(|p| p.code == c).cloned();
    for depth in 0..3 {
        let level = || {
            procs
                .iter()
                .filter(move |p| above(p.code).len() == depth && p.code != LATE)
        };
        for p in level() {
            if let Some(parent) = parent_of(p.code).and_then(by_code) {
                parent
                    .client()
                    .register_committee(registration(p)?)
                    .await
                    .with_context(|| format!("registering {} on its parent", p.code))?;
            }
            p.start().await?;
        }
        for p in level() {
            let started = Instant::now();
            loop {
                if let Some(s) = p.status(Duration::from_secs(2)).await {
                    if !s.level.is_empty() {
                        break;
                    }
                }
                ensure!(
                    started.elapsed() < START_LIMIT,
                    "{} never learnt its registration:\n{}",
                    p.code,
                    p.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Ok(())
}

// ---- the workload ----

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Work {
    Issued,
    Acknowledged,
    Submitted,
    Returned,
    Approved,
}

struct Assignment {
    id: String,
    topic: String,
    assigner: &'static str,
    assignee: &'static str,
    state: Work,
}

struct Notice {
    id: String,
    /// Guidance: its recipients; a report: the addressee.
    to: Vec<&'static str>,
    acked: BTreeSet<&'static str>,
}

/// What the driver wrote and the API confirmed.
#[derive(Default)]
struct Ledger {
    /// (author, event id, what): every write with a receipt.
    receipts: Vec<(String, Uuid, String)>,
    /// Refused or failed calls, by gRPC code.
    failed: BTreeMap<String, u64>,
    /// A few of each code's messages.
    samples: Vec<(String, String)>,
}

struct Driver {
    rng: StdRng,
    procs: Vec<Arc<Proc>>,
    ledger: Arc<Mutex<Ledger>>,
    topics: Vec<(&'static str, String)>,
    assignments: Vec<Assignment>,
    guidance: Vec<Notice>,
    reports: Vec<Notice>,
    n: u64,
}

enum Op {
    Topic(&'static str),
    Assign(usize, &'static str),
    Split(usize, &'static str),
    Ack(usize),
    /// With a long report (tens of KiB) or not: big events, multi-megabyte groups, and
    /// record states past sled's 128 KiB threshold for values in files of their own.
    Submit(usize, bool),
    Review(usize, bool),
    Guidance(&'static str, Vec<&'static str>),
    AckGuidance(usize, &'static str),
    Report(&'static str, &'static str),
    AckReport(usize),
    /// Several guidance notices in a row: batches of many events down the links.
    Burst(&'static str),
}

impl Driver {
    fn proc(&self, code: &str) -> Arc<Proc> {
        self.procs
            .iter()
            .find(|p| p.code == code)
            .cloned()
            .expect("a node of the table")
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.rng.gen_range(0..items.len())].clone()
    }

    fn choose(&mut self) -> Op {
        let codes: Vec<&'static str> = NODES.iter().map(|s| s.code).collect();
        let leaders: Vec<&'static str> = codes
            .iter()
            .copied()
            .filter(|c| !below(c).is_empty())
            .collect();
        let mut choices: Vec<(u32, Op)> = Vec::new();
        let l = self.pick(&leaders);
        choices.push((2, Op::Topic(l)));
        if !self.topics.is_empty() {
            let t = self.rng.gen_range(0..self.topics.len());
            let to = self.pick(&below(self.topics[t].0));
            choices.push((4, Op::Assign(t, to)));
        }
        let recent = self.assignments.len().saturating_sub(60);
        let open: Vec<usize> = (recent..self.assignments.len())
            .filter(|i| self.assignments[*i].state != Work::Approved)
            .collect();
        if !open.is_empty() {
            let i = self.pick(&open);
            let a = &self.assignments[i];
            let (assignee, state) = (a.assignee, a.state);
            match state {
                Work::Issued => choices.push((6, Op::Ack(i))),
                Work::Acknowledged | Work::Returned => {
                    let big = self.rng.gen_bool(0.15);
                    choices.push((5, Op::Submit(i, big)))
                }
                Work::Submitted => {
                    let approve = self.rng.gen_bool(0.6);
                    choices.push((6, Op::Review(i, approve)))
                }
                Work::Approved => {}
            }
            let sub = below(assignee);
            if state != Work::Approved && !sub.is_empty() {
                let to = self.pick(&sub);
                choices.push((2, Op::Split(i, to)));
            }
        }
        let from = self.pick(&leaders);
        let sub = below(from);
        let to = if self.rng.gen_bool(0.5) {
            Vec::new()
        } else {
            vec![self.pick(&sub)]
        };
        choices.push((3, Op::Guidance(from, to)));
        choices.push((1, Op::Burst(self.pick(&leaders))));
        let pending: Vec<(usize, &'static str)> = self
            .guidance
            .iter()
            .enumerate()
            .skip(self.guidance.len().saturating_sub(40))
            .flat_map(|(i, g)| {
                g.to.iter()
                    .filter(|c| !g.acked.contains(*c))
                    .map(move |c| (i, *c))
            })
            .collect();
        if !pending.is_empty() {
            let (i, c) = self.pick(&pending);
            choices.push((4, Op::AckGuidance(i, c)));
        }
        let sender = self.pick(&codes[1..]);
        let to = self.pick(&above(sender));
        choices.push((3, Op::Report(sender, to)));
        let unacked: Vec<usize> = (0..self.reports.len())
            .skip(self.reports.len().saturating_sub(40))
            .filter(|i| self.reports[*i].acked.is_empty())
            .collect();
        if !unacked.is_empty() {
            choices.push((4, Op::AckReport(self.pick(&unacked))));
        }
        let total: u32 = choices.iter().map(|(w, _)| w).sum();
        let mut x = self.rng.gen_range(0..total);
        for (w, op) in choices {
            if x < w {
                return op;
            }
            x -= w;
        }
        unreachable!("the weights add up")
    }

    /// Records the outcome of a write; the receipt if the API confirmed it.
    fn confirmed(
        &mut self,
        at: &str,
        what: &str,
        r: std::result::Result<tonic::Response<pb::Receipt>, tonic::Status>,
    ) -> Option<pb::Receipt> {
        let mut ledger = lock(&self.ledger);
        match r {
            Ok(r) => {
                let r = r.into_inner();
                match Uuid::parse_str(&r.event_id) {
                    Ok(id) => ledger.receipts.push((at.to_string(), id, what.to_string())),
                    Err(_) => {
                        *ledger.failed.entry("bad receipt".into()).or_default() += 1;
                        return None;
                    }
                }
                Some(r)
            }
            Err(e) => {
                let code = format!("{:?}", e.code());
                *ledger.failed.entry(code.clone()).or_default() += 1;
                let seen = ledger.samples.iter().filter(|(c, _)| *c == code).count();
                if seen < 3 {
                    ledger
                        .samples
                        .push((code, format!("{what} at {at}: {}", e.message())));
                }
                None
            }
        }
    }

    async fn step(&mut self) {
        self.n += 1;
        let n = self.n;
        let op = self.choose();
        match op {
            Op::Topic(at) => {
                let r = self
                    .proc(at)
                    .client()
                    .create_topic(pb::CreateTopicRequest {
                        title: format!("黄河流域生态保护专题调研 #{n}"),
                        description: "崩溃测试".into(),
                        source: "party-government".into(),
                        form: "thematic".into(),
                        tier: "county-and-above".into(),
                        plan_year: 2026,
                        publish: true,
                    })
                    .await;
                if let Some(r) = self.confirmed(at, "topic", r) {
                    self.topics.push((at, r.record_id));
                }
            }
            Op::Assign(t, to) => {
                let (owner, topic) = self.topics[t].clone();
                self.assign(owner, topic, String::new(), to, n).await;
            }
            Op::Split(i, to) => {
                let a = &self.assignments[i];
                let (at, topic, parent) = (a.assignee, a.topic.clone(), a.id.clone());
                self.assign(at, topic, parent, to, n).await;
            }
            Op::Ack(i) => {
                let (at, id) = (self.assignments[i].assignee, self.assignments[i].id.clone());
                let r = self
                    .proc(at)
                    .client()
                    .acknowledge(pb::AssignmentRef { assignment_id: id })
                    .await;
                if self.confirmed(at, "ack", r).is_some() {
                    self.assignments[i].state = Work::Acknowledged;
                }
            }
            Op::Submit(i, big) => {
                let (at, id) = (self.assignments[i].assignee, self.assignments[i].id.clone());
                let text = if big {
                    let paras = self.rng.gen_range(300..750);
                    let para = "黄河甘肃段水土保持与水资源节约集约利用调研：梯田建设、淤地坝监测、灌区节水改造情况及建议。\n";
                    format!("调研报告 #{n}\n{}", para.repeat(paras))
                } else {
                    format!("调研报告 #{n}")
                };
                let r = self
                    .proc(at)
                    .client()
                    .submit(pb::SubmitRequest {
                        assignment_id: id,
                        text,
                        recommendations: vec!["加强监测".into()],
                        attachment_digests: vec![],
                    })
                    .await;
                let what = if big { "long submission" } else { "submission" };
                if self.confirmed(at, what, r).is_some() {
                    self.assignments[i].state = Work::Submitted;
                }
            }
            Op::Review(i, approve) => {
                let (at, id) = (self.assignments[i].assigner, self.assignments[i].id.clone());
                let r = self
                    .proc(at)
                    .client()
                    .review(pb::ReviewRequest {
                        assignment_id: id,
                        verdict: if approve { "approve" } else { "return" }.into(),
                        comment: format!("审核意见 #{n}"),
                    })
                    .await;
                if self.confirmed(at, "review", r).is_some() {
                    self.assignments[i].state = if approve {
                        Work::Approved
                    } else {
                        Work::Returned
                    };
                }
            }
            Op::Guidance(at, to) => self.guidance(at, to, n).await,
            Op::Burst(at) => {
                for k in 0..8 {
                    self.guidance(at, Vec::new(), n * 100 + k).await;
                }
            }
            Op::AckGuidance(i, at) => {
                let id = self.guidance[i].id.clone();
                let r = self
                    .proc(at)
                    .client()
                    .acknowledge_guidance(pb::GuidanceRef { guidance_id: id })
                    .await;
                if self.confirmed(at, "guidance ack", r).is_some() {
                    self.guidance[i].acked.insert(at);
                }
            }
            Op::Report(at, to) => {
                let r = self
                    .proc(at)
                    .client()
                    .send_report(pb::SendReportRequest {
                        to: to.into(),
                        kind: "public-opinion".into(),
                        title: format!("社情民意信息 #{n}"),
                        body: "群众反映".into(),
                    })
                    .await;
                if let Some(r) = self.confirmed(at, "report", r) {
                    self.reports.push(Notice {
                        id: r.record_id,
                        to: vec![to],
                        acked: BTreeSet::new(),
                    });
                }
            }
            Op::AckReport(i) => {
                let (at, id) = (self.reports[i].to[0], self.reports[i].id.clone());
                let r = self
                    .proc(at)
                    .client()
                    .acknowledge_report(pb::ReportRef { report_id: id })
                    .await;
                if self.confirmed(at, "report ack", r).is_some() {
                    self.reports[i].acked.insert(at);
                }
            }
        }
    }

    async fn assign(
        &mut self,
        at: &'static str,
        topic: String,
        parent: String,
        to: &'static str,
        n: u64,
    ) {
        let what = if parent.is_empty() {
            "assignment"
        } else {
            "sub-assignment"
        };
        let r = self
            .proc(at)
            .client()
            .assign(pb::AssignRequest {
                topic_id: topic.clone(),
                parent_assignment_id: parent,
                assignee: to.into(),
                title: format!("调研课题 #{n}"),
                description: String::new(),
                due_date: "2026-12-20".into(),
                weight: (n % 3 + 1) as u32,
            })
            .await;
        if let Some(r) = self.confirmed(at, what, r) {
            self.assignments.push(Assignment {
                id: r.record_id,
                topic,
                assigner: at,
                assignee: to,
                state: Work::Issued,
            });
        }
    }

    async fn guidance(&mut self, at: &'static str, to: Vec<&'static str>, n: u64) {
        let r = self
            .proc(at)
            .client()
            .send_guidance(pb::SendGuidanceRequest {
                title: format!("关于开展专题调研的通知 #{n}"),
                body: "请按时报送调研成果。".into(),
                to: to.iter().map(|c| c.to_string()).collect(),
            })
            .await;
        if let Some(r) = self.confirmed(at, "guidance", r) {
            let recipients = if to.is_empty() { below(at) } else { to };
            self.guidance.push(Notice {
                id: r.record_id,
                to: recipients,
                acked: BTreeSet::new(),
            });
        }
    }
}

/// Events each node announced on its change stream, which it does only once they are
/// durable (after the group's sync, before it acks a peer's batch): (node → event → origin).
type Announced = Arc<Mutex<BTreeMap<String, BTreeMap<Uuid, String>>>>;

/// Follows `p`'s change stream across its restarts until `stop`.
async fn watch(p: Arc<Proc>, announced: Announced, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        if let Ok(r) = p.watcher.clone().watch(pb::Empty {}).await {
            let mut stream = r.into_inner();
            loop {
                let next = tokio::time::timeout(Duration::from_millis(200), stream.message());
                match next.await {
                    Ok(Ok(Some(c))) => {
                        if let Ok(id) = Uuid::parse_str(&c.event_id) {
                            lock(&announced)
                                .entry(p.code.to_string())
                                .or_default()
                                .insert(id, c.origin);
                        }
                    }
                    Ok(_) => break,
                    Err(_) if stop.load(Ordering::SeqCst) => return,
                    Err(_) => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

// ---- the kills ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    /// Whenever the wait is over.
    Any,
    /// The first moment after the wait when one of the victim's links has events in flight
    /// (sent or to be sent, not yet acknowledged).
    InFlight,
    /// Right after the victim's own restart, while it catches up on what it missed.
    CatchingUp,
}

struct Kill {
    victim: &'static str,
    /// Wait after the previous kill (for `CatchingUp`: after the victim's restart).
    after: Duration,
    moment: Moment,
    /// How long the victim stays down; other kills go on meanwhile.
    down: Duration,
}

/// Before which kill [`LATE`] is registered and started.
fn joins_at(kills: usize) -> usize {
    kills / 3
}

/// The seed's kill schedule: random victims (every node at least once), random moments,
/// random downtimes, some long enough to overlap the next kills.
fn schedule(seed: u64, kills: usize) -> Vec<Kill> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6b69_6c6c);
    let mut not_yet: Vec<&'static str> = NODES.iter().map(|s| s.code).collect();
    let mut plan: Vec<Kill> = Vec::new();
    for k in 0..kills {
        let all: Vec<&'static str> = NODES
            .iter()
            .map(|s| s.code)
            .filter(|c| *c != LATE || k >= joins_at(kills))
            .collect();
        let due: Vec<&'static str> = not_yet
            .iter()
            .copied()
            .filter(|c| all.contains(c))
            .collect();
        let moment = match rng.gen_range(0..10) {
            0..=3 => Moment::Any,
            4..=7 => Moment::InFlight,
            _ => Moment::CatchingUp,
        };
        let victim = match (moment, plan.last_mut()) {
            (Moment::CatchingUp, Some(prev)) if kills - k > not_yet.len() => {
                // Down long enough for a backlog to build up at its peers.
                prev.down = Duration::from_millis(rng.gen_range(1_500..4_000));
                prev.victim
            }
            _ => {
                let pool = if kills - k <= not_yet.len() && !due.is_empty() {
                    &due
                } else {
                    &all
                };
                pool[rng.gen_range(0..pool.len())]
            }
        };
        not_yet.retain(|c| *c != victim);
        let (after, moment) = match (moment, plan.last()) {
            (Moment::CatchingUp, Some(prev)) if prev.victim == victim => {
                (Duration::from_millis(rng.gen_range(0..300)), moment)
            }
            (Moment::CatchingUp, _) => (
                Duration::from_millis(rng.gen_range(100..2_500)),
                Moment::Any,
            ),
            _ => (Duration::from_millis(rng.gen_range(100..2_500)), moment),
        };
        let down = if rng.gen_bool(0.2) {
            Duration::from_millis(rng.gen_range(2_000..5_000))
        } else {
            Duration::from_millis(rng.gen_range(0..1_000))
        };
        plan.push(Kill {
            victim,
            after,
            moment,
            down,
        });
    }
    plan
}

/// What happened at one kill.
struct Killed {
    victim: &'static str,
    moment: Moment,
    /// The victim's links with events in flight the moment before, if any.
    lag: Option<String>,
    /// The other nodes that were down at the time.
    also_down: Vec<&'static str>,
    /// Events from peers the victim had announced durable (hence acknowledged), up to then.
    received: usize,
}

fn lagging(s: &pb::StatusView) -> Option<String> {
    let lag: Vec<String> = s
        .links
        .iter()
        .filter(|l| l.outbound_lag > 0 || l.inbound_lag > 0)
        .map(|l| format!("{} out {} in {}", l.peer, l.outbound_lag, l.inbound_lag))
        .collect();
    (!lag.is_empty()).then(|| lag.join(", "))
}

/// Registers [`LATE`] at its city (waiting for the city if it is down), then starts it.
async fn register_late(
    procs: &[Arc<Proc>],
    pending: &mut Pending,
    ledger: &Mutex<Ledger>,
) -> Result<()> {
    let find = |c: &str| procs.iter().find(|p| p.code == c).cloned();
    let (late, city) = (find(LATE).context("late")?, find("620400").context("city")?);
    let started = Instant::now();
    loop {
        match city.client().register_committee(registration(&late)?).await {
            Ok(r) => {
                // No event when an earlier attempt went through but its answer was lost.
                if let Ok(id) = Uuid::parse_str(&r.into_inner().event_id) {
                    lock(ledger)
                        .receipts
                        .push(("620400".into(), id, "registration".into()));
                }
                break;
            }
            Err(e) => {
                ensure!(
                    started.elapsed() < START_LIMIT,
                    "registering {LATE} at 620400: {e}"
                );
                restart_due(pending, Instant::now() + Duration::from_millis(50)).await?;
            }
        }
    }
    late.start().await
}

/// Nodes down, with the moment each is to restart.
type Pending = Vec<(Instant, Arc<Proc>)>;

/// Restarts the nodes whose time comes before `until`, then waits until `until`.
async fn restart_due(pending: &mut Pending, until: Instant) -> Result<()> {
    loop {
        pending.sort_by_key(|(t, _)| *t);
        match pending.first() {
            Some((t, _)) if *t <= until => {
                tokio::time::sleep_until((*t).into()).await;
                let (_, p) = pending.remove(0);
                p.start().await?;
            }
            _ => {
                tokio::time::sleep_until(until.into()).await;
                return Ok(());
            }
        }
    }
}

async fn kill_all_the_time(
    procs: Vec<Arc<Proc>>,
    plan: Vec<Kill>,
    announced: Announced,
    ledger: Arc<Mutex<Ledger>>,
) -> Result<Vec<Killed>> {
    let mut done = Vec::new();
    let mut pending: Pending = Vec::new();
    let join = joins_at(plan.len());
    for (i, k) in plan.into_iter().enumerate() {
        if i == join {
            register_late(&procs, &mut pending, &ledger).await?;
            eprintln!(
                "registered {LATE} at 620400 and started it, before kill {}",
                i + 1
            );
        }
        let p = procs
            .iter()
            .find(|p| p.code == k.victim)
            .context("victim")?
            .clone();
        if k.moment == Moment::CatchingUp {
            if let Some(at) = pending
                .iter()
                .find(|(_, q)| q.code == k.victim)
                .map(|x| x.0)
            {
                restart_due(&mut pending, at).await?;
            }
        }
        restart_due(&mut pending, Instant::now() + k.after).await?;
        if let Some(i) = pending.iter().position(|(_, q)| q.code == k.victim) {
            // Still down from an earlier kill: up now, and down again.
            pending.remove(i);
            p.start().await?;
        }
        let mut lag = None;
        let waited = Instant::now();
        loop {
            if let Some(s) = p.status(Duration::from_millis(300)).await {
                lag = lagging(&s);
            }
            let waiting = k.moment == Moment::InFlight && lag.is_none();
            if !waiting || waited.elapsed() > Duration::from_millis(1_500) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        p.kill()?;
        let received = lock(&announced)
            .get(k.victim)
            .map(|m| m.values().filter(|o| *o != k.victim).count())
            .unwrap_or(0);
        done.push(Killed {
            victim: k.victim,
            moment: k.moment,
            lag,
            also_down: pending.iter().map(|(_, q)| q.code).collect(),
            received,
        });
        pending.push((Instant::now() + k.down, p));
    }
    let last = pending.iter().map(|(t, _)| *t).max();
    if let Some(last) = last {
        restart_due(&mut pending, last).await?;
    }
    Ok(done)
}

/// Waits until every link is up with nothing in flight and the heads stay put.
async fn settle(procs: &[Arc<Proc>]) -> Result<Duration, String> {
    let started = Instant::now();
    let mut last: Vec<u64> = Vec::new();
    let mut stable = 0;
    let mut why = String::new();
    let mut reported = 0;
    while started.elapsed() < SETTLE_LIMIT {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut statuses = BTreeMap::new();
        for p in procs {
            if let Some(s) = p.status(Duration::from_secs(2)).await {
                statuses.insert(p.code, s);
            }
        }
        why.clear();
        for s in &NODES {
            let Some(st) = statuses.get(s.code) else {
                why += &format!("{} does not answer; ", s.code);
                continue;
            };
            let mut peers: Vec<&str> = below(s.code)
                .into_iter()
                .filter(|c| parent_of(c) == Some(s.code))
                .collect();
            peers.extend(s.parent);
            for peer in peers {
                match st.links.iter().find(|l| l.peer == peer) {
                    Some(l)
                        if l.state == "connected" && l.outbound_lag == 0 && l.inbound_lag == 0 => {}
                    Some(l) => {
                        why += &format!(
                            "{}: link to {peer} {} out {} in {}; ",
                            s.code, l.state, l.outbound_lag, l.inbound_lag
                        )
                    }
                    None => why += &format!("{}: no link to {peer}; ", s.code),
                }
            }
        }
        if !why.is_empty() && started.elapsed().as_secs() > reported {
            reported = started.elapsed().as_secs();
            eprintln!("settling, {reported} s: {why}");
        }
        let heads: Vec<u64> = statuses.values().map(|s| s.log_head).collect();
        if why.is_empty() && heads == last {
            stable += 1;
            if stable >= 3 {
                return Ok(started.elapsed());
            }
        } else {
            stable = 0;
        }
        last = heads;
    }
    Err(format!(
        "the federation did not settle within {SETTLE_LIMIT:?}: {why}"
    ))
}

/// Opens each stopped node's store (either engine) in this process.
/// Also says how many values sled keeps in files of their own (over 128 KiB) in all stores.
fn open_stores(procs: &[Arc<Proc>]) -> Result<(Vec<(String, liandong::node::Node)>, usize)> {
    let mut out = Vec::new();
    let mut blobs = 0;
    for p in procs {
        let (cfg, base) = liandong::config::Config::load(&p.config)?;
        let key = liandong::event::generate_key();
        let opts = liandong::cli::init::options(
            &cfg,
            &base,
            key.clone(),
            liandong::tls::Transport::Insecure,
        )?;
        blobs += std::fs::read_dir(opts.store_dir.join("blobs"))
            .map(|d| d.count())
            .unwrap_or(0);
        let engine = opts
            .open_engine()
            .with_context(|| format!("opening {}'s store", p.code))?;
        let store = liandong::store::NodeStore::new(engine);
        let node = liandong::node::Node::open(
            opts.settings,
            key,
            store,
            Arc::new(liandong::clock::SystemClock),
        )
        .with_context(|| format!("opening {}'s node", p.code))?;
        out.push((p.code.to_string(), node));
    }
    Ok((out, blobs))
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_nodes_of_a_federation_lose_nothing() -> Result<()> {
    let seed = env_number("CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let kills = env_number("CRASH_KILLS").unwrap_or(20) as usize;
    eprintln!("crash_federation: seed {seed}, {kills} kills (CRASH_SEED={seed} CRASH_KILLS={kills} replays the schedule)");
    let began = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("liandong-crash-fed-")
        .tempdir()?;
    let procs = set_up(tmp.path())?;
    bring_up(&procs).await?;
    eprintln!("up in {:?}", began.elapsed());

    let stop = Arc::new(AtomicBool::new(false));
    let announced: Announced = Arc::default();
    let ledger: Arc<Mutex<Ledger>> = Arc::default();
    let watchers: Vec<_> = procs
        .iter()
        .map(|p| tokio::spawn(watch(p.clone(), announced.clone(), stop.clone())))
        .collect();
    let driver = {
        let (procs, ledger, stop) = (procs.clone(), ledger.clone(), stop.clone());
        tokio::spawn(async move {
            let mut d = Driver {
                rng: StdRng::seed_from_u64(seed),
                procs,
                ledger,
                topics: Vec::new(),
                assignments: Vec::new(),
                guidance: Vec::new(),
                reports: Vec::new(),
                n: 0,
            };
            while !stop.load(Ordering::SeqCst) {
                d.step().await;
                let pause = d.rng.gen_range(0..10);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            d.n
        })
    };
    let plan = schedule(seed, kills);
    let killed = kill_all_the_time(procs.clone(), plan, announced.clone(), ledger.clone()).await;
    stop.store(true, Ordering::SeqCst);
    let steps = driver.await?;
    let killed = killed?;
    let settled = settle(&procs).await;
    for w in watchers {
        w.await?;
    }
    // Stop everything the hard way once more, then read the stores as the processes left them.
    for p in &procs {
        p.kill()?;
    }
    let (nodes, blobs) = open_stores(&procs)?;
    let roster = nodes
        .iter()
        .find(|(c, _)| c == "620000")
        .map(|(_, n)| n.roster().clone())
        .context("the province's store")?;
    // One federation: every node's own roster is the province's.
    let feds = liandong::invariants::Feds {
        rosters: BTreeMap::from([("620000".to_string(), roster)]),
        fed_of: nodes
            .iter()
            .map(|(c, _)| (c.clone(), "620000".to_string()))
            .collect(),
    };
    let ledger = std::mem::take(&mut *lock(&ledger));
    let announced = std::mem::take(&mut *lock(&announced));
    let receipts: Vec<(String, Uuid)> = ledger
        .receipts
        .iter()
        .map(|(c, id, _)| (c.clone(), *id))
        .collect();
    let durable: BTreeMap<String, BTreeSet<Uuid>> = announced
        .iter()
        .map(|(c, m)| (c.clone(), m.keys().copied().collect()))
        .collect();
    let mut violations = liandong::invariants::check_all(
        &nodes,
        &liandong::invariants::Expect {
            feds: &feds,
            injected: &liandong::invariants::Injected::default(),
            announced: &durable,
            receipts: &receipts,
        },
    );
    if let Err(e) = &settled {
        violations.insert(0, format!("1 liveness: {e}"));
    }
    // The store's own end-to-end check (`liandong verify`) as well.
    for (code, node) in &nodes {
        let report =
            liandong::backup::verify(node.store(), &node.roster(), code, &mut |_, _, _| {})?;
        for p in report.problems {
            violations.push(format!("verify: {code}: {p}"));
        }
    }

    // What the run did, for the record.
    let mut by_level: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &killed {
        *by_level.entry(level(k.victim)).or_default() += 1;
    }
    let in_flight = killed.iter().filter(|k| k.lag.is_some()).count();
    let received: usize = killed.iter().map(|k| k.received).sum();
    eprintln!(
        "{} kills ({by_level:?}), {in_flight} with a batch in flight; {steps} steps, {} writes confirmed, failed calls {:?}",
        killed.len(),
        ledger.receipts.len(),
        ledger.failed
    );
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, what) in &ledger.receipts {
        *kinds.entry(what.as_str()).or_default() += 1;
    }
    eprintln!("  confirmed: {kinds:?}; {blobs} values in sled blob files");
    for (code, message) in &ledger.samples {
        eprintln!("  failed call ({code}): {message}");
    }
    for k in &killed {
        let down = if k.also_down.is_empty() {
            String::new()
        } else {
            format!(" while {} down", k.also_down.join(", "))
        };
        let lag = k
            .lag
            .as_ref()
            .map(|l| format!(", in flight: {l}"))
            .unwrap_or_default();
        eprintln!(
            "  killed {} {} ({:?}{lag}{down}; it had announced {} events from peers)",
            level(k.victim),
            k.victim,
            k.moment,
            k.received
        );
    }
    for (code, node) in &nodes {
        eprintln!(
            "  {code}: {} events, {} announced",
            node.durable_head(),
            durable.get(code).map(|s| s.len()).unwrap_or(0)
        );
    }
    eprintln!(
        "settled in {:?}; whole run {:?}",
        settled.as_ref().ok(),
        began.elapsed()
    );
    for (_, node) in nodes {
        node.close().await;
    }
    if !violations.is_empty() {
        let kept = tmp.keep();
        bail!(
            "seed {seed}: {} violations (logs and stores kept in {}):\n{}",
            violations.len(),
            kept.display(),
            violations
                .iter()
                .take(60)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // The run did what it claims: kills at every level, some with batches in flight, work
    // confirmed all along, and acknowledged batches at the victims.
    ensure!(
        killed.len() == kills,
        "seed {seed}: {} of {kills} kills",
        killed.len()
    );
    if kills >= NODES.len() {
        for l in ["province", "city", "county"] {
            ensure!(
                by_level.contains_key(l),
                "seed {seed}: no kill at the {l} level"
            );
        }
        ensure!(
            in_flight > 0,
            "seed {seed}: no kill came while a batch was in flight"
        );
    }
    ensure!(
        ledger.receipts.len() >= 20 * kills.max(1),
        "seed {seed}: only {} writes were confirmed",
        ledger.receipts.len()
    );
    ensure!(
        received > 0,
        "seed {seed}: no victim had acknowledged anything from a peer before its kill"
    );
    Ok(())
}
