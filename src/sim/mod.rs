//! Deterministic simulation: two federations of real node code in one process, under one
//! seed — Gansu ([`GANSU`]: a province, three cities, nine counties) and Qinghai
//! ([`QINGHAI`]: a province, two cities, three counties), each the root of its own tree with
//! its own trust anchor, their roots linked laterally ([`LATERAL`], `Role::Peer`) as members
//! of the group yellow-river-9.
//!
//! Everything runs on a single-threaded tokio runtime with paused time, so the schedule is a
//! function of the seed: the nodes' writers run as tasks ([`crate::node::WriterMode::Task`]),
//! their stores are [`MemoryStorage`] (a crash drops what was not synced), their clocks are
//! [`clock::SimClock`]s (virtual time plus a per-node skew), their ids and backoff jitter
//! come from seeded generators ([`crate::node::Seams`]), and their links run over the
//! simulated network of [`net`], which applies latency, partitions, resets, duplicates,
//! replays and forged events. A seeded driver issues the workload ([`workload`]: topics,
//! assignments, acknowledgements, submissions, returns, reviews, guidance, reports in both
//! trees; charter amendments and endorsements, joint meetings, contributions, roll-ups,
//! drafts, comments in the group) and the faults, then heals everything, waits for both
//! federations to settle, and checks the invariants ([`crate::invariants`], shared with the
//! crash test of real processes).
//!
//! `run(&Config::new(seed))` gives an [`Outcome`]: the trace (the same seed gives the same
//! trace, line for line), the violations, and counters. `tests/sim.rs` runs the seeds;
//! docs/architecture.md ("Deterministic simulation") describes the whole.
pub mod clock;
pub mod net;
pub mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::domain::Level;
use crate::invariants as check;
use crate::node::{Node, NodeSettings, Seams, WriterMode};
use crate::store::memory::MemoryStorage;
use crate::store::{NodeStore, Storage};
use crate::sync::{run_parent_link, run_peer_link, SyncSettings};
use clock::SimClock;
use net::{Faults, Net, SimConnector};

/// One committee of the simulated federation.
#[derive(Clone, Debug)]
pub struct Member {
    pub code: &'static str,
    pub name: &'static str,
    pub parent: Option<&'static str>,
}

const fn m(code: &'static str, name: &'static str, parent: Option<&'static str>) -> Member {
    Member { code, name, parent }
}

/// Gansu: the province, three cities, three counties under each (13 nodes).
pub const GANSU: [Member; 13] = [
    m("620000", "甘肃省政协", None),
    m("620100", "兰州市政协", Some("620000")),
    m("620400", "白银市政协", Some("620000")),
    m("620500", "天水市政协", Some("620000")),
    m("620121", "永登县政协", Some("620100")),
    m("620122", "皋兰县政协", Some("620100")),
    m("620123", "榆中县政协", Some("620100")),
    m("620421", "靖远县政协", Some("620400")),
    m("620422", "会宁县政协", Some("620400")),
    m("620423", "景泰县政协", Some("620400")),
    m("620521", "清水县政协", Some("620500")),
    m("620522", "秦安县政协", Some("620500")),
    m("620523", "甘谷县政协", Some("620500")),
];

/// Qinghai: the root of a federation of its own (its own trust anchor), two cities and three
/// counties (6 nodes), codes from `shared/data/divisions`.
pub const QINGHAI: [Member; 6] = [
    m("630000", "青海省政协", None),
    m("630100", "西宁市政协", Some("630000")),
    m("630200", "海东市政协", Some("630000")),
    m("630121", "大通回族土族自治县政协", Some("630100")),
    m("630123", "湟源县政协", Some("630100")),
    m("630223", "互助土族自治县政协", Some("630200")),
];

/// The lateral links between the federations' roots, as (lower code, higher code): the lower
/// code dials ([`crate::sync::dials`]) with `Role::Peer`.
pub const LATERAL: [(&str, &str); 1] = [("620000", "630000")];

/// Every committee of the simulation, Gansu's tree then Qinghai's.
pub fn members() -> impl Iterator<Item = &'static Member> {
    GANSU.iter().chain(QINGHAI.iter())
}

/// The root of `code`'s federation.
pub fn root_of(code: &str) -> Option<&'static str> {
    let mut m = members().find(|m| m.code == code)?;
    while let Some(p) = m.parent {
        m = members().find(|x| x.code == p)?;
    }
    Some(m.code)
}

/// The roots of the federations.
pub fn roots() -> impl Iterator<Item = &'static Member> {
    members().filter(|m| m.parent.is_none())
}

/// What one run does.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// Workload and fault decisions, one every 20–300 ms of virtual time.
    pub steps: usize,
    /// Node and link faults (partitions, resets, crashes, latency, clock steps).
    pub faults: bool,
    /// Per-frame faults of the network while the faults last.
    pub net_faults: Faults,
    /// How many counties are registered only during the run (their scope grows late).
    pub late_counties: usize,
    /// Whether the lateral group is founded during the setup (before any fault) or only
    /// proposed there and endorsed by the workload while the faults go on.
    pub found_in_setup: bool,
    /// Largest clock skew of a node, either way (below the nodes' 300 s clock-sanity limit
    /// when two nodes are skewed apart).
    pub max_skew_ms: i64,
    /// Longest wait between a group's writes and its sync (the window a crash loses).
    pub max_sync_delay_ms: u64,
    /// How long (virtual) the federation may take to settle after the faults heal.
    pub settle_limit: Duration,
    /// Echo the trace to stderr as it happens (`SIM_TRACE=1`).
    pub echo: bool,
}

impl Config {
    /// The default run for `seed`; `SIM_STEPS` overrides the number of steps.
    pub fn new(seed: u64) -> Config {
        let steps = std::env::var("SIM_STEPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(150);
        Config {
            seed,
            steps,
            faults: true,
            net_faults: Faults {
                duplicate: 0.03,
                replay: 0.03,
                inject: 0.01,
            },
            late_counties: 2,
            found_in_setup: seed.is_multiple_of(2),
            max_skew_ms: 120_000,
            max_sync_delay_ms: 8,
            settle_limit: Duration::from_secs(900),
            echo: std::env::var("SIM_TRACE").is_ok_and(|v| !v.is_empty() && v != "0"),
        }
    }

    /// A harsher run for exploration (`SIM_HARSH=1` in `tests/sim.rs`): more per-frame
    /// faults, more late counties, wider crash windows, twice the steps.
    pub fn harsh(seed: u64) -> Config {
        let base = Config::new(seed);
        Config {
            steps: base.steps * 2,
            net_faults: Faults {
                duplicate: 0.1,
                replay: 0.1,
                inject: 0.05,
            },
            late_counties: 6,
            max_sync_delay_ms: 40,
            ..base
        }
    }

    /// The same run without any fault: the baseline.
    pub fn calm(seed: u64) -> Config {
        Config {
            faults: false,
            net_faults: Faults::none(),
            ..Config::new(seed)
        }
    }
}

/// The trace of a run: one line per decision and per thing that happened, stamped with
/// virtual milliseconds since the start.
pub struct TraceLog {
    start: Instant,
    lines: Mutex<Vec<String>>,
    echo: bool,
}

pub type Trace = Arc<TraceLog>;

impl TraceLog {
    fn new(echo: bool) -> Trace {
        Arc::new(TraceLog {
            start: Instant::now(),
            lines: Mutex::new(Vec::new()),
            echo,
        })
    }

    pub fn line(&self, text: String) {
        let line = format!("{:>8} {text}", self.start.elapsed().as_millis());
        if self.echo {
            eprintln!("{line}");
        }
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub seed: u64,
    pub trace: Vec<String>,
    pub violations: Vec<String>,
    pub stats: BTreeMap<String, u64>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// SHA-256 of the trace: equal for two runs of one seed.
    pub fn trace_digest(&self) -> String {
        let mut h = Sha256::new();
        for l in &self.trace {
            h.update(l.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }

    /// How to replay this run.
    pub fn replay_hint(&self) -> String {
        format!(
            "SIM_SEED={} cargo test --test sim replay -- --nocapture",
            self.seed
        )
    }

    /// The violations, the replay command and the end of the trace.
    pub fn report(&self, trace_lines: usize) -> String {
        let mut s = format!(
            "simulation seed {} failed ({} violations); replay: {}\n",
            self.seed,
            self.violations.len(),
            self.replay_hint()
        );
        for v in self.violations.iter().take(40) {
            s.push_str(&format!("  violation: {v}\n"));
        }
        let from = self.trace.len().saturating_sub(trace_lines);
        s.push_str(&format!(
            "last {} of {} trace lines:\n",
            self.trace.len() - from,
            self.trace.len()
        ));
        for l in &self.trace[from..] {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// Whether runs replay exactly: tokio's own RNG is seeded only in a build with
/// `--cfg tokio_unstable` (.cargo/config.toml; a `RUSTFLAGS` variable replaces it).
pub fn deterministic() -> bool {
    cfg!(tokio_unstable)
}

/// Runs one seeded simulation on a fresh single-threaded runtime with paused time.
pub fn run(config: &Config) -> Outcome {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time().start_paused(true);
    // tokio draws from a runtime RNG of its own (the branch order of `select!`, and which
    // waiter list a `watch` receiver joins, hence the order of wakeups); it can be seeded
    // only under `--cfg tokio_unstable`, which .cargo/config.toml sets.
    #[cfg(tokio_unstable)]
    builder.rng_seed(tokio::runtime::RngSeed::from_bytes(
        &derive(config.seed, 2).to_le_bytes(),
    ));
    // ok: a runtime that cannot be built is a broken environment, not a finding.
    let rt = builder.build().expect("a current-thread tokio runtime");
    let config = config.clone();
    rt.block_on(async move { Sim::new(config).run().await })
}

/// A seed for one purpose, derived from the run's seed.
fn derive(seed: u64, tag: u64) -> u64 {
    // SplitMix64 of the pair.
    let mut z = seed ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn locked(rng: &Mutex<StdRng>) -> std::sync::MutexGuard<'_, StdRng> {
    rng.lock().unwrap_or_else(|p| p.into_inner())
}

/// One committee's machine: its store survives crashes; its node comes and goes.
struct Slot {
    member: Member,
    /// The root of its federation: its trust anchor.
    root: &'static str,
    key: SigningKey,
    storage: Arc<MemoryStorage>,
    clock: Arc<SimClock>,
    ids: Arc<Mutex<StdRng>>,
    random: Arc<Mutex<StdRng>>,
    writes: Arc<Mutex<StdRng>>,
    /// The next write group of this node crashes it before its sync.
    crash_armed: Arc<AtomicBool>,
    node: Option<Node>,
    tasks: Vec<JoinHandle<()>>,
    incarnation: u32,
    /// Registered (by its parent) from the start, or late.
    late: bool,
}

#[derive(Clone, Debug)]
enum Action {
    Step,
    Clog(String, String),
    Unclog(String, String),
    Latency(String, String, u64, u64),
    Restart(String),
    Register(String),
}

struct Sim {
    cfg: Config,
    rng: StdRng,
    start: Instant,
    trace: Trace,
    net: Arc<Net>,
    slots: BTreeMap<String, Slot>,
    /// Each federation's root and its anchor key.
    roots: BTreeMap<String, ed25519_dalek::VerifyingKey>,
    sync: SyncSettings,
    agenda: BTreeMap<(u64, u64), Action>,
    agenda_seq: u64,
    steps_done: usize,
    crash_tx: mpsc::UnboundedSender<String>,
    crash_rx: mpsc::UnboundedReceiver<String>,
    ops: Vec<JoinHandle<()>>,
    op_count: u64,
    receipts: Arc<Mutex<Vec<(String, Uuid)>>>,
    announced: Arc<Mutex<BTreeMap<String, BTreeSet<Uuid>>>>,
    counters: Arc<Mutex<BTreeMap<String, u64>>>,
    violations: Vec<String>,
}

fn bump(counters: &Mutex<BTreeMap<String, u64>>, what: &str) {
    if let Ok(mut c) = counters.lock() {
        *c.entry(what.to_string()).or_default() += 1;
    }
}

impl Sim {
    fn new(cfg: Config) -> Sim {
        let trace = TraceLog::new(cfg.echo);
        let mut rng = StdRng::seed_from_u64(derive(cfg.seed, 0));
        let mut keys = BTreeMap::new();
        for mem in members() {
            let mut seed = [0u8; 32];
            rng.fill(&mut seed);
            keys.insert(mem.code.to_string(), SigningKey::from_bytes(&seed));
        }
        let roots: BTreeMap<String, ed25519_dalek::VerifyingKey> = self::roots()
            .map(|m| (m.code.to_string(), keys[m.code].verifying_key()))
            .collect();
        let sync = SyncSettings {
            // Small batches: more of them, more interleavings.
            batch_events: 8,
            batch_bytes: 1 << 20,
            heartbeat: Duration::from_secs(1),
            max_message_bytes: crate::sync::link::MAX_FRAME_BYTES,
        };
        let net = Net::new(
            derive(cfg.seed, 1),
            sync.clone(),
            cfg.net_faults.clone(),
            keys.clone(),
            trace.clone(),
        );
        // Which counties are registered late.
        let counties: Vec<&Member> = members()
            .filter(|m| Level::implied_by(m.code) == Level::County)
            .collect();
        let mut late = BTreeSet::new();
        while late.len() < cfg.late_counties.min(counties.len()) {
            late.insert(counties[rng.gen_range(0..counties.len())].code);
        }
        let mut slots = BTreeMap::new();
        for (i, mem) in members().enumerate() {
            let skew = if cfg.faults && cfg.max_skew_ms > 0 {
                rng.gen_range(-cfg.max_skew_ms..=cfg.max_skew_ms)
            } else {
                0
            };
            let tag = 100 + 10 * i as u64;
            slots.insert(
                mem.code.to_string(),
                Slot {
                    member: mem.clone(),
                    root: root_of(mem.code).unwrap_or(mem.code),
                    key: keys[mem.code].clone(),
                    storage: Arc::new(MemoryStorage::new()),
                    clock: Arc::new(SimClock::new(skew)),
                    ids: Arc::new(Mutex::new(StdRng::seed_from_u64(derive(cfg.seed, tag)))),
                    random: Arc::new(Mutex::new(StdRng::seed_from_u64(derive(cfg.seed, tag + 1)))),
                    writes: Arc::new(Mutex::new(StdRng::seed_from_u64(derive(cfg.seed, tag + 2)))),
                    crash_armed: Arc::new(AtomicBool::new(false)),
                    node: None,
                    tasks: Vec::new(),
                    incarnation: 0,
                    late: late.contains(mem.code),
                },
            );
        }
        let (crash_tx, crash_rx) = mpsc::unbounded_channel();
        Sim {
            rng,
            start: Instant::now(),
            trace,
            net,
            slots,
            roots,
            sync,
            agenda: BTreeMap::new(),
            agenda_seq: 0,
            steps_done: 0,
            crash_tx,
            crash_rx,
            ops: Vec::new(),
            op_count: 0,
            receipts: Arc::new(Mutex::new(Vec::new())),
            announced: Arc::new(Mutex::new(BTreeMap::new())),
            counters: Arc::new(Mutex::new(BTreeMap::new())),
            violations: Vec::new(),
            cfg,
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn schedule(&mut self, after_ms: u64, action: Action) {
        self.agenda_seq += 1;
        let at = self.now_ms() + after_ms;
        self.agenda.insert((at, self.agenda_seq), action);
    }

    fn line(&self, text: String) {
        self.trace.line(text);
    }

    fn node(&self, code: &str) -> Option<Node> {
        self.slots.get(code).and_then(|s| s.node.clone())
    }

    /// Opens `code`'s node over its store (again) and starts its link to the parent.
    fn start_node(&mut self, code: &str) {
        let net = self.net.clone();
        let crash_tx = self.crash_tx.clone();
        let announced = self.announced.clone();
        let counters = self.counters.clone();
        let trace = self.trace.clone();
        let roots = self.roots.clone();
        let sync = self.sync.clone();
        let max_delay = self.cfg.max_sync_delay_ms;
        let Some(slot) = self.slots.get_mut(code) else {
            return;
        };
        if slot.node.is_some() {
            return;
        }
        let Some(&root_key) = roots.get(slot.root) else {
            return;
        };
        let settings = NodeSettings {
            code: code.to_string(),
            root_code: slot.root.to_string(),
            root_key,
            max_clock_skew_ms: 300_000,
            max_group: 256,
        };
        let ids = slot.ids.clone();
        let id_clock = slot.clock.clone();
        let random = slot.random.clone();
        let writes = slot.writes.clone();
        let armed = slot.crash_armed.clone();
        let me = code.to_string();
        let seams = Seams {
            writer: WriterMode::Task {
                before_sync: Some(Arc::new(move || {
                    if armed.swap(false, Ordering::SeqCst) {
                        // Crash inside this group's window: its writes are not synced yet.
                        let _ = crash_tx.send(me.clone());
                        return Duration::from_millis(50);
                    }
                    Duration::from_millis(locked(&writes).gen_range(0..=max_delay))
                })),
            },
            ids: Some(Arc::new(move || {
                let mut bytes = [0u8; 10];
                locked(&ids).fill(&mut bytes);
                uuid::Builder::from_unix_timestamp_millis(
                    crate::clock::Clock::now_ms(id_clock.as_ref()),
                    &bytes,
                )
                .into_uuid()
            })),
            random: Some(Arc::new(move |bound| {
                locked(&random).gen_range(0..bound.max(1))
            })),
        };
        let store = NodeStore::new(slot.storage.clone() as Arc<dyn Storage>);
        // ok: opening over a memory store fails only on a corrupt store: a finding.
        let node =
            match Node::open_with(settings, slot.key.clone(), store, slot.clock.clone(), seams) {
                Ok(n) => n,
                Err(e) => {
                    trace.line(format!("{code}: could not open: {e}"));
                    self.violations
                        .push(format!("{code}: the node could not reopen its store: {e}"));
                    return;
                }
            };
        slot.incarnation += 1;
        if let Some(parent) = slot.member.parent {
            let connector = Arc::new(SimConnector {
                net: net.clone(),
                me: code.to_string(),
            });
            slot.tasks.push(tokio::spawn(run_parent_link(
                node.clone(),
                parent.to_string(),
                format!("sim://{parent}"),
                connector,
                sync.clone(),
            )));
        }
        // A root dials its lateral peers of higher code, over the same simulated network.
        for (low, high) in LATERAL {
            if low == code {
                let connector = Arc::new(SimConnector {
                    net: net.clone(),
                    me: code.to_string(),
                });
                slot.tasks.push(tokio::spawn(run_peer_link(
                    node.clone(),
                    high.to_string(),
                    format!("sim://{high}"),
                    connector,
                    sync.clone(),
                )));
            }
        }
        // What the node announces as durable: it must still hold it at the end.
        let mut changes = node.subscribe_changes();
        let watched = node.clone();
        let me = code.to_string();
        slot.tasks.push(tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(c) => {
                        if let Ok(id) = Uuid::parse_str(&c.event_id) {
                            if let Ok(mut a) = announced.lock() {
                                a.entry(me.clone()).or_default().insert(id);
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        bump(&counters, "watcher lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                if *watched.subscribe_shutdown().borrow() {
                    return;
                }
            }
        }));
        net.set_up(code, node.clone());
        slot.node = Some(node);
        let inc = slot.incarnation;
        trace.line(format!("{code}: up (incarnation {inc})"));
    }

    /// Kills `code`'s node as a power cut would: tasks gone, unsynced writes lost.
    fn crash(&mut self, code: &str, how: &str) {
        let Some(slot) = self.slots.get_mut(code) else {
            return;
        };
        let Some(node) = slot.node.take() else {
            return;
        };
        node.halt();
        for t in slot.tasks.drain(..) {
            t.abort();
        }
        self.net.set_down(code);
        slot.storage.crash();
        bump(&self.counters, "crashes");
        self.line(format!("{code}: crash ({how})"));
        let down = self.rng.gen_range(200..20_000);
        self.schedule(down, Action::Restart(code.to_string()));
    }

    /// Every link: the trees' as (child, parent), then the lateral ones as (dialer, peer).
    fn links(&self) -> Vec<(String, String)> {
        members()
            .filter_map(|m| m.parent.map(|p| (m.code.to_string(), p.to_string())))
            .chain(LATERAL.iter().map(|(a, b)| (a.to_string(), b.to_string())))
            .collect()
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.rng.gen_range(0..items.len())].clone()
    }

    /// Waits (virtually) until `done` holds, up to `limit`; false on time out.
    async fn wait_for(&mut self, limit: Duration, done: impl Fn(&Sim) -> bool) -> bool {
        let until = Instant::now() + limit;
        while !done(self) {
            if Instant::now() > until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }

    fn knows_itself(&self, code: &str) -> bool {
        self.node(code)
            .is_some_and(|n| n.roster().get(code).is_some())
    }

    async fn register(&mut self, code: &str) -> bool {
        let Some(slot) = self.slots.get(code) else {
            return false;
        };
        let Some(parent) = slot.member.parent else {
            return false;
        };
        let name = slot.member.name;
        let key = hex::encode(slot.key.verifying_key().as_bytes());
        let Some(p) = self.node(parent) else {
            return false;
        };
        match p.register_committee(code, name, &key).await {
            Ok(r) => {
                self.line(format!("{parent}: registered {code} (seq {})", r.seq));
                true
            }
            Err(e) => {
                self.line(format!("{parent}: register {code} failed: {e}"));
                false
            }
        }
    }

    async fn setup(&mut self) -> bool {
        let codes: Vec<String> = self.slots.keys().cloned().collect();
        for c in &codes {
            self.start_node(c);
        }
        for root in roots() {
            let Some(r) = self.node(root.code) else {
                return false;
            };
            if let Err(e) = r.register_root(root.name, Level::Province).await {
                self.violations
                    .push(format!("setup: root registration of {}: {e}", root.code));
                return false;
            }
        }
        // Top-down: each committee registers its children once it knows itself.
        for level in [Level::City, Level::County] {
            let members: Vec<Member> = members()
                .filter(|m| Level::implied_by(m.code) == level)
                .cloned()
                .collect();
            for mem in &members {
                if self.slots[mem.code].late {
                    continue;
                }
                if !self.register(mem.code).await {
                    self.violations
                        .push(format!("setup: could not register {}", mem.code));
                    return false;
                }
            }
            let wanted: Vec<&str> = members
                .iter()
                .filter(|m| !self.slots[m.code].late)
                .map(|m| m.code)
                .collect();
            if !self
                .wait_for(Duration::from_secs(120), |s| {
                    wanted.iter().all(|c| s.knows_itself(c))
                })
                .await
            {
                self.violations
                    .push("setup: committees did not learn their registration".into());
                return false;
            }
        }
        if !self.found_group().await {
            return false;
        }
        self.line("setup done".into());
        true
    }

    /// The roots found the lateral group over their (simulated) lateral link: the lowest code
    /// proposes version 1 naming every root with its anchor key and hosts for 2026 and 2027;
    /// with `found_in_setup`, the others endorse it once it reached them, and the setup is
    /// done when it is in force at every root (it reaches the rest of each tree under the
    /// faults); without, the workload endorses it during the faults.
    async fn found_group(&mut self) -> bool {
        let codes: Vec<&'static Member> = roots().collect();
        let Some(first) = codes.first().and_then(|m| self.node(m.code)) else {
            return false;
        };
        let others: Vec<crate::node::lateral::MemberInput> = codes[1..]
            .iter()
            .map(|m| crate::node::lateral::MemberInput {
                code: m.code.to_string(),
                name: m.name.to_string(),
                key: hex::encode(self.slots[m.code].key.verifying_key().as_bytes()),
            })
            .collect();
        let hosts: Vec<(u32, String)> = codes
            .iter()
            .enumerate()
            .map(|(i, m)| (2026 + i as u32, m.code.to_string()))
            .collect();
        match first
            .propose_charter(workload::GROUP, workload::GROUP_NAME, &others, &hosts)
            .await
        {
            Ok(r) => self.line(format!(
                "{}: proposed charter v1 of {} (seq {})",
                first.code(),
                workload::GROUP,
                r.seq
            )),
            Err(e) => {
                self.violations
                    .push(format!("setup: charter proposal: {e}"));
                return false;
            }
        }
        if !self.cfg.found_in_setup {
            // The others endorse it when the workload gets to it, under the faults.
            return true;
        }
        for m in &codes[1..] {
            let code = m.code;
            let holds = |s: &Sim| {
                s.node(code).is_some_and(|n| {
                    n.roster()
                        .group(workload::GROUP)
                        .is_some_and(|g| !g.proposals.is_empty())
                })
            };
            if !self.wait_for(Duration::from_secs(120), holds).await {
                self.violations
                    .push(format!("setup: the charter proposal did not reach {code}"));
                return false;
            }
            let Some(n) = self.node(code) else {
                return false;
            };
            match n.endorse_charter(workload::GROUP, "").await {
                Ok(r) => self.line(format!("{code}: endorsed charter v1 (seq {})", r.seq)),
                Err(e) => {
                    self.violations
                        .push(format!("setup: {code} could not endorse: {e}"));
                    return false;
                }
            }
        }
        let in_force = |s: &Sim| {
            codes.iter().all(|m| {
                s.node(m.code).is_some_and(|n| {
                    n.roster()
                        .group(workload::GROUP)
                        .is_some_and(|g| g.in_force.is_some())
                })
            })
        };
        if !self.wait_for(Duration::from_secs(120), in_force).await {
            self.violations
                .push("setup: the charter did not come in force at every root".into());
            return false;
        }
        true
    }

    async fn run(mut self) -> Outcome {
        if self.setup().await {
            self.main_phase().await;
            self.heal().await;
            self.settle().await;
        }
        self.finish()
    }

    async fn main_phase(&mut self) {
        self.schedule(0, Action::Step);
        // Late counties join at some point of the run.
        let late: Vec<String> = self
            .slots
            .values()
            .filter(|s| s.late)
            .map(|s| s.member.code.to_string())
            .collect();
        let span = (self.cfg.steps as u64) * 160;
        for c in late {
            let at = self.rng.gen_range(0..span.max(1));
            self.schedule(at, Action::Register(c));
        }
        while let Some((&(at, seq), _)) = self.agenda.first_key_value() {
            let due = self.start + Duration::from_millis(at);
            tokio::select! {
                biased;
                Some(code) = self.crash_rx.recv() => {
                    self.crash(&code, "in a write group, before its sync");
                    continue;
                }
                _ = tokio::time::sleep_until(due) => {}
            }
            let Some(action) = self.agenda.remove(&(at, seq)) else {
                continue;
            };
            self.act(action).await;
        }
    }

    async fn act(&mut self, action: Action) {
        match action {
            Action::Step => {
                self.steps_done += 1;
                self.step();
                if self.steps_done < self.cfg.steps {
                    let next = self.rng.gen_range(20..300);
                    self.schedule(next, Action::Step);
                }
            }
            Action::Clog(a, b) => {
                self.line(format!("clog {a}->{b}"));
                self.net.clog(&a, &b);
            }
            Action::Unclog(a, b) => {
                self.line(format!("unclog {a}->{b}"));
                self.net.unclog(&a, &b);
            }
            Action::Latency(a, b, base, jitter) => {
                self.line(format!("latency {a}->{b} {base}+{jitter} ms"));
                self.net.set_latency(&a, &b, base, jitter);
            }
            Action::Restart(code) => self.start_node(&code),
            Action::Register(code) => {
                let parent = self.slots[&code].member.parent.unwrap_or_default();
                if self.knows_itself(parent) {
                    if !self.register(&code).await {
                        self.schedule(2_000, Action::Register(code));
                    }
                } else {
                    self.schedule(2_000, Action::Register(code));
                }
            }
        }
    }

    /// One decision: a committee acts, or (if faults are on) a fault starts.
    fn step(&mut self) {
        let fault = self.cfg.faults && self.rng.gen_bool(0.3);
        if fault {
            self.fault();
        } else {
            self.operate();
        }
    }

    fn operate(&mut self) {
        let codes: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.node.is_some())
            .map(|(c, _)| c.clone())
            .collect();
        if codes.is_empty() {
            return;
        }
        // A quarter of the decisions go to the lateral group: a root that is up acts in it.
        let roots: Vec<String> = codes
            .iter()
            .filter(|c| self.roots.contains_key(*c))
            .cloned()
            .collect();
        let lateral = !roots.is_empty() && self.rng.gen_bool(0.25);
        let code = if lateral {
            self.pick(&roots)
        } else {
            self.pick(&codes)
        };
        let Some(node) = self.node(&code) else { return };
        let op = if lateral {
            workload::pick_lateral(&mut self.rng, &node)
                .or_else(|| workload::pick(&mut self.rng, &node))
        } else {
            workload::pick(&mut self.rng, &node)
        };
        let Some(op) = op else {
            return;
        };
        self.op_count += 1;
        let n = self.op_count;
        let name = op.name();
        self.line(format!("op #{n} {code}: {name}"));
        let trace = self.trace.clone();
        let receipts = self.receipts.clone();
        let counters = self.counters.clone();
        self.ops.push(tokio::spawn(async move {
            match workload::run(&node, op, n).await {
                Ok(r) => {
                    bump(&counters, "ops done");
                    trace.line(format!("op #{n} {code}: done, seq {}", r.seq));
                    if let Ok(id) = Uuid::parse_str(&r.event_id) {
                        if let Ok(mut v) = receipts.lock() {
                            v.push((code.clone(), id));
                        }
                    }
                }
                Err(e) => {
                    bump(&counters, "ops refused");
                    let text = e.to_string();
                    let short: String = text.chars().take(70).collect();
                    trace.line(format!("op #{n} {code}: {short}"));
                }
            }
        }));
    }

    fn fault(&mut self) {
        let links = self.links();
        let roll = self.rng.gen_range(0..100);
        match roll {
            // A symmetric partition of one link.
            0..=14 => {
                let (a, b) = self.pick(&links);
                let hold = self.rng.gen_range(500..20_000);
                self.line(format!("fault: partition {a}<->{b} for {hold} ms"));
                self.net.clog(&a, &b);
                self.net.clog(&b, &a);
                self.schedule(hold, Action::Unclog(a.clone(), b.clone()));
                self.schedule(hold, Action::Unclog(b, a));
            }
            // A one-way partition.
            15..=24 => {
                let (mut a, mut b) = self.pick(&links);
                if self.rng.gen_bool(0.5) {
                    std::mem::swap(&mut a, &mut b);
                }
                let hold = self.rng.gen_range(500..20_000);
                self.line(format!("fault: one-way partition {a}->{b} for {hold} ms"));
                self.net.clog(&a, &b);
                self.schedule(hold, Action::Unclog(a, b));
            }
            // A whole city cut off: its uplink and every link to its counties.
            25..=31 => {
                let cities: Vec<String> = members()
                    .filter(|m| Level::implied_by(m.code) == Level::City)
                    .map(|m| m.code.to_string())
                    .collect();
                let city = self.pick(&cities);
                let hold = self.rng.gen_range(2_000..30_000);
                self.line(format!("fault: city {city} cut off for {hold} ms"));
                for (a, b) in links.iter().filter(|(a, b)| *a == city || *b == city) {
                    self.net.clog(a, b);
                    self.net.clog(b, a);
                    self.schedule(hold, Action::Unclog(a.clone(), b.clone()));
                    self.schedule(hold, Action::Unclog(b.clone(), a.clone()));
                }
            }
            // Swizzle-clog: clog links one by one, then heal them in another random order.
            32..=38 => {
                let n = self.rng.gen_range(2..=links.len().min(6));
                let mut chosen = links.clone();
                shuffle(&mut self.rng, &mut chosen);
                chosen.truncate(n);
                self.line(format!("fault: swizzle {n} links"));
                let mut t = 0;
                for (a, b) in &chosen {
                    t += self.rng.gen_range(100..2_000);
                    self.schedule(t, Action::Clog(a.clone(), b.clone()));
                    self.schedule(t, Action::Clog(b.clone(), a.clone()));
                }
                t += self.rng.gen_range(1_000..10_000);
                shuffle(&mut self.rng, &mut chosen);
                for (a, b) in chosen {
                    t += self.rng.gen_range(100..2_000);
                    self.schedule(t, Action::Unclog(a.clone(), b.clone()));
                    self.schedule(t, Action::Unclog(b, a));
                }
            }
            // A connection reset, or half-open (the parent keeps receiving the old stream).
            39..=58 => {
                let half = self.rng.gen_bool(0.4);
                match self.net.kill_random(half) {
                    Some((id, child, parent)) => self.line(format!(
                        "fault: conn #{id} {child}->{parent} {}",
                        if half { "half-open" } else { "reset" }
                    )),
                    None => self.line("fault: no connection to kill".into()),
                }
            }
            // A node crashes now, or in its next write group, before the sync.
            59..=74 => {
                let up: Vec<String> = self
                    .slots
                    .iter()
                    .filter(|(_, s)| s.node.is_some())
                    .map(|(c, _)| c.clone())
                    .collect();
                if up.is_empty() {
                    return;
                }
                let code = self.pick(&up);
                if self.rng.gen_bool(0.5) {
                    self.crash(&code, "now");
                } else {
                    self.line(format!("fault: {code} will crash in its next write group"));
                    self.slots[&code].crash_armed.store(true, Ordering::SeqCst);
                }
            }
            // A slow link for a while.
            75..=89 => {
                let (mut a, mut b) = self.pick(&links);
                if self.rng.gen_bool(0.5) {
                    std::mem::swap(&mut a, &mut b);
                }
                let base = self.rng.gen_range(100..2_000);
                let jitter = self.rng.gen_range(0..base);
                let hold = self.rng.gen_range(1_000..20_000);
                self.line(format!("fault: slow {a}->{b} for {hold} ms"));
                self.schedule(0, Action::Latency(a.clone(), b.clone(), base, jitter));
                self.schedule(hold, Action::Latency(a, b, 5, 20));
            }
            // A node's clock steps to another skew.
            _ => {
                let codes: Vec<String> = self.slots.keys().cloned().collect();
                let code = self.pick(&codes);
                let skew = self
                    .rng
                    .gen_range(-self.cfg.max_skew_ms..=self.cfg.max_skew_ms);
                self.line(format!("fault: {code}'s clock skew now {skew} ms"));
                self.slots[&code].clock.set_skew(skew);
            }
        }
    }

    /// Ends every fault: links unclogged and fast, crashed nodes back, late counties
    /// registered, no more per-frame faults.
    async fn heal(&mut self) {
        self.agenda.clear();
        for s in self.slots.values() {
            s.crash_armed.store(false, Ordering::SeqCst);
        }
        // A crash request already on its way still happens.
        while let Ok(code) = self.crash_rx.try_recv() {
            self.crash(&code, "in a write group, before its sync");
        }
        self.agenda.clear();
        self.net.unclog_all();
        self.net.reset_latencies();
        self.net.set_faults(Faults::none());
        let codes: Vec<String> = self.slots.keys().cloned().collect();
        for c in &codes {
            self.start_node(c);
        }
        self.line("healed".into());
        // Late counties not registered yet are registered now.
        let late: Vec<String> = codes
            .iter()
            .filter(|c| self.slots[*c].late)
            .cloned()
            .collect();
        for c in late {
            let parent = self.slots[&c].member.parent.unwrap_or_default().to_string();
            let ok = self
                .wait_for(Duration::from_secs(120), |s| s.knows_itself(&parent))
                .await;
            let known = self
                .node(&parent)
                .is_some_and(|p| p.roster().get(&c).is_some());
            let registered = known || (ok && self.register(&c).await);
            if !registered {
                self.violations
                    .push(format!("heal: could not register the late county {c}"));
            }
        }
    }

    fn running(&self) -> Vec<(String, Node)> {
        self.slots
            .iter()
            .filter_map(|(c, s)| s.node.clone().map(|n| (c.clone(), n)))
            .collect()
    }

    /// The federations as their roots see them now (None while a root is down).
    fn feds(&self) -> Option<check::Feds> {
        let mut rosters = BTreeMap::new();
        for root in self.roots.keys() {
            rosters.insert(root.clone(), self.node(root)?.roster().clone());
        }
        let fed_of = self
            .slots
            .iter()
            .map(|(c, s)| (c.clone(), s.root.to_string()))
            .collect();
        Some(check::Feds { rosters, fed_of })
    }

    fn converged(&self) -> bool {
        let Some(feds) = self.feds() else {
            return false;
        };
        if !self.ops.iter().all(|t| t.is_finished()) {
            return false;
        }
        // Each node's ids; each event opened once, from the first node that holds it.
        let mut all = BTreeMap::new();
        let mut held: Vec<(String, BTreeSet<Uuid>)> = Vec::new();
        for (code, node) in self.running() {
            let Ok(log) = node.store().log_after(0, usize::MAX) else {
                return false;
            };
            let ids: BTreeSet<Uuid> = log.iter().map(|e| e.id).collect();
            for id in &ids {
                if all.contains_key(id) {
                    continue;
                }
                if let Ok(Some(frame)) = node.store().event_frame(id) {
                    if let Ok(env) = crate::event::Envelope::open(&frame) {
                        all.insert(*id, env);
                    }
                }
            }
            held.push((code, ids));
        }
        let req = check::requirements(&feds, &all);
        held.iter().all(|(code, ids)| {
            req.iter()
                .all(|(id, who)| ids.contains(id) || !who.contains(code))
        })
    }

    /// Lets the healed federation run until every node holds what it is entitled to.
    async fn settle(&mut self) {
        let limit = self.cfg.settle_limit;
        let healed_at = self.now_ms();
        let mut settled = false;
        let until = Instant::now() + limit;
        // The full check reads every store: it runs only once no node's log moved for 2 s.
        let mut last: Vec<(String, u64)> = Vec::new();
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let heads: Vec<(String, u64)> = self
                .running()
                .into_iter()
                .map(|(c, n)| (c, n.durable_head()))
                .collect();
            let quiet = heads == last;
            last = heads;
            if quiet && self.converged() {
                settled = true;
                break;
            }
        }
        let took = self.now_ms() - healed_at;
        if settled {
            self.line(format!("settled {took} ms after healing"));
        } else {
            self.line(format!("did not settle within {} s", limit.as_secs()));
            self.violations.push(format!(
                "1 liveness: the federation did not settle within {} s of virtual time after the faults healed",
                limit.as_secs()
            ));
        }
        // A little longer: late duplicates and heartbeats must not change anything.
        tokio::time::sleep(Duration::from_secs(5)).await;
        if let Ok(mut c) = self.counters.lock() {
            c.insert("settle ms".into(), took);
        }
    }

    fn finish(mut self) -> Outcome {
        let nodes = self.running();
        if let Some(feds) = self.feds() {
            let injected = self.net.injected();
            let announced = self.announced.lock().map(|a| a.clone()).unwrap_or_default();
            let receipts = self.receipts.lock().map(|r| r.clone()).unwrap_or_default();
            let found = check::check_all(
                &nodes,
                &check::Expect {
                    feds: &feds,
                    injected: &injected,
                    announced: &announced,
                    receipts: &receipts,
                },
            );
            self.violations.extend(found);
        } else {
            self.violations.push("a root is not running".into());
        }
        // The end state, in the trace: two runs of a seed must agree on it too.
        let mut total = BTreeSet::new();
        for (code, node) in &nodes {
            let log = node.store().log_after(0, usize::MAX).unwrap_or_default();
            let mut h = Sha256::new();
            for e in &log {
                h.update(e.id.as_bytes());
                total.insert(e.id);
            }
            let digest = hex::encode(&h.finalize()[..8]);
            self.line(format!("end {code}: {} events, log {digest}", log.len()));
        }
        let mut stats: BTreeMap<String, u64> =
            self.counters.lock().map(|c| c.clone()).unwrap_or_default();
        let n = self.net.stats();
        for (k, v) in [
            ("dials", n.dials),
            ("dials refused", n.refused),
            ("connections", n.connections),
            ("resets", n.resets),
            ("half-open", n.half_open),
            ("frames", n.frames),
            ("duplicated batches", n.duplicates),
            ("replayed batches", n.replays),
            ("injected events", n.injected),
            ("events", total.len() as u64),
            ("virtual ms", self.now_ms()),
        ] {
            stats.insert(k.to_string(), v);
        }
        // The group as the first root ends with it.
        if let Some(root) = roots().next().and_then(|m| self.node(m.code)) {
            let version = root
                .roster()
                .group(workload::GROUP)
                .and_then(|g| g.in_force.as_ref().map(|c| c.version))
                .unwrap_or(0);
            let meetings = root
                .store()
                .states_with_tag(b'J')
                .map(|v| v.len())
                .unwrap_or(0);
            self.line(format!(
                "end group {}: charter v{version} in force, {meetings} joint meetings",
                workload::GROUP
            ));
            stats.insert("charter version".into(), u64::from(version));
            stats.insert("joint meetings".into(), meetings as u64);
        }
        for v in &self.violations {
            self.trace.line(format!("VIOLATION {v}"));
        }
        Outcome {
            seed: self.cfg.seed,
            trace: self.trace.lines(),
            violations: std::mem::take(&mut self.violations),
            stats,
        }
    }
}

fn shuffle<T>(rng: &mut StdRng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.gen_range(0..=i);
        v.swap(i, j);
    }
}
