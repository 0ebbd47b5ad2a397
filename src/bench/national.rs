//! National scale: every committee of `shared/data/divisions/` (the national committee, 31
//! provinces, their cities and counties; the placeholder cities 市辖区 / 县 / 省直辖县级行政区划
//! have no committee, their counties hang under the province) as real nodes in this process,
//! linked in memory ([`MemConnector`]: the same sessions as over gRPC, without sockets), each
//! with an in-memory store ([`CompactMemory`]).
//!
//! Set-up registers the whole roster top-down (each registration reaches the registered
//! committee's lineage: its ancestors, itself and its subtree). Then, timed: a national guidance notice until every county
//! holds it, and a report from every county until the national committee holds them all.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Future, StreamExt};
use serde_json::{json, Value};
use tokio_stream::wrappers::ReceiverStream;

use super::{proc_status_kib, BenchArgs};
use crate::clock::SystemClock;
use crate::node::{Node, NodeSettings};
use crate::pb;
use crate::store::{Entry, NodeStore, Space, Storage, WriteBatch};
use crate::sync::link::{accept_child, Connector, FrameStream};
use crate::sync::{run_parent_link, SyncSettings};
use crate::{Error, Result};

pub const NATIONAL: &str = "000000";

/// One committee: code, name, parent.
#[derive(Clone, Debug)]
pub struct Committee {
    pub code: String,
    pub name: String,
    pub parent: Option<String>,
}

/// Placeholder "cities" without a committee of their own.
fn is_placeholder(name: &str) -> bool {
    matches!(name, "市辖区" | "县" | "省直辖县级行政区划")
}

fn csv_rows(path: &Path) -> Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|f| f.trim().trim_matches('"').to_string())
                .collect()
        })
        .collect())
}

/// The committees of the divisions data set, parents before children.
pub fn committees(dir: &Path, provinces: Option<&HashSet<String>>) -> Result<Vec<Committee>> {
    let keep = |p: &str| provinces.is_none_or(|set| set.contains(p));
    let mut out = vec![Committee {
        code: NATIONAL.into(),
        name: "全国政协".into(),
        parent: None,
    }];
    for r in csv_rows(&dir.join("provinces.csv"))? {
        if r.len() >= 2 && keep(&r[0]) {
            out.push(Committee {
                code: format!("{}0000", r[0]),
                name: r[1].clone(),
                parent: Some(NATIONAL.into()),
            });
        }
    }
    let mut city_committee: HashMap<String, String> = HashMap::new();
    for r in csv_rows(&dir.join("cities.csv"))? {
        if r.len() >= 3 && keep(&r[2]) && !is_placeholder(&r[1]) {
            let code = format!("{}00", r[0]);
            city_committee.insert(r[0].clone(), code.clone());
            out.push(Committee {
                code,
                name: r[1].clone(),
                parent: Some(format!("{}0000", r[2])),
            });
        }
    }
    let mut seen: HashSet<String> = out.iter().map(|c| c.code.clone()).collect();
    for r in csv_rows(&dir.join("areas.csv"))? {
        if r.len() >= 4 && keep(&r[3]) {
            // A city without counties may be listed as its own only "area" (东莞市 441900).
            if !seen.insert(r[0].clone()) {
                continue;
            }
            let parent = city_committee
                .get(&r[2])
                .cloned()
                .unwrap_or_else(|| format!("{}0000", r[3]));
            out.push(Committee {
                code: r[0].clone(),
                name: r[1].clone(),
                parent: Some(parent),
            });
        }
    }
    Ok(out)
}

/// Finds `shared/data/divisions` from the working directory upwards.
pub fn find_divisions() -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        for rel in ["shared/data/divisions", "../shared/data/divisions"] {
            let p = dir.join(rel);
            if p.join("areas.csv").exists() {
                return Some(p);
            }
        }
        if !dir.pop() {
            return None;
        }
    }
}

/// A compact in-memory engine for thousands of nodes in one process: one ordered map per
/// node, and values of 64 bytes or more (event frames, derived states) shared between nodes
/// when equal, as the same event is held by every node that may see it. Committed is
/// durable (there is no crash to simulate here).
#[derive(Default)]
pub struct CompactMemory {
    map: Mutex<BTreeMap<Box<[u8]>, Value8>>,
    shared: Arc<Interner>,
}

type Value8 = Arc<[u8]>;

/// Equal values, held once.
#[derive(Default)]
pub struct Interner {
    set: Mutex<HashSet<Arc<[u8]>>>,
}

impl Interner {
    fn intern(&self, v: Vec<u8>) -> Arc<[u8]> {
        if v.len() < 64 {
            return Arc::from(v);
        }
        let Ok(mut set) = self.set.lock() else {
            return Arc::from(v);
        };
        if let Some(a) = set.get(v.as_slice()) {
            return a.clone();
        }
        let a: Arc<[u8]> = Arc::from(v);
        set.insert(a.clone());
        a
    }
}

impl CompactMemory {
    pub fn new(shared: Arc<Interner>) -> CompactMemory {
        CompactMemory {
            map: Mutex::new(BTreeMap::new()),
            shared,
        }
    }

    fn key(space: Space, key: &[u8]) -> Box<[u8]> {
        let mut k = Vec::with_capacity(key.len() + 1);
        k.push(space.tag());
        k.extend_from_slice(key);
        k.into_boxed_slice()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<Box<[u8]>, Value8>>> {
        self.map
            .lock()
            .map_err(|_| Error::Storage("store lock poisoned".into()))
    }
}

impl Storage for CompactMemory {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lock()?
            .get(&*Self::key(space, key))
            .map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let full = Self::key(space, prefix);
        let map = self.lock()?;
        let start = match after.map(|a| Self::key(space, a)) {
            Some(a) if a >= full => std::ops::Bound::Excluded(a),
            _ => std::ops::Bound::Included(full.clone()),
        };
        Ok(map
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&full))
            .take(limit)
            .map(|(k, v)| (k[1..].to_vec(), v.to_vec()))
            .collect())
    }

    fn commit(&self, batch: WriteBatch) -> Result<()> {
        let values: Vec<_> = batch
            .ops
            .into_iter()
            .map(|(s, k, v)| (Self::key(s, &k), v.map(|v| self.shared.intern(v))))
            .collect();
        let mut map = self.lock()?;
        for (k, v) in values {
            match v {
                Some(v) => {
                    map.insert(k, v);
                }
                None => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> u64 {
        0
    }
}

/// Links in memory: a child's dial reaches its parent's `accept_child` directly.
#[derive(Clone, Default)]
pub struct MemConnector {
    nodes: Arc<Mutex<HashMap<String, Node>>>,
    settings: Arc<Mutex<SyncSettings>>,
}

impl MemConnector {
    pub fn add(&self, node: Node) {
        if let Ok(mut n) = self.nodes.lock() {
            n.insert(node.code().to_string(), node);
        }
    }
}

impl Connector for MemConnector {
    fn open(
        &self,
        peer: String,
        _address: String,
        outbound: ReceiverStream<pb::SyncFrame>,
    ) -> Pin<Box<dyn Future<Output = Result<FrameStream>> + Send>> {
        let node = self.nodes.lock().ok().and_then(|n| n.get(&peer).cloned());
        let settings = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        Box::pin(async move {
            let node = node.ok_or_else(|| Error::Transport(format!("{peer} is not up")))?;
            let inbound = outbound.map(Ok::<_, tonic::Status>);
            let out = accept_child(node, inbound, settings, None)
                .await
                .map_err(|s| Error::Transport(s.message().to_string()))?;
            Ok(Box::pin(out.map(Ok)) as FrameStream)
        })
    }
}

pub async fn run(args: &BenchArgs) -> Result<Value> {
    let Some(dir) = args.divisions.clone().or_else(find_divisions) else {
        if args.quick {
            println!(
                "national SKIPPED: shared/data/divisions not found from here (--divisions DIR)"
            );
            return Ok(json!({ "skipped": true }));
        }
        return Err(Error::Config(
            "shared/data/divisions not found from here: give --divisions DIR".into(),
        ));
    };
    let only: Option<HashSet<String>> = match (&args.provinces, args.quick) {
        (Some(p), _) => Some(p.split(',').map(|s| s.trim().to_string()).collect()),
        // 宁夏: 5 cities, 22 counties; and 北京 (市辖区: districts right under the province).
        (None, true) => Some(["64", "11"].iter().map(|s| s.to_string()).collect()),
        (None, false) => None,
    };
    let list = committees(&dir, only.as_ref())?;
    let counties: Vec<String> = list
        .iter()
        .filter(|c| c.code != NATIONAL && !c.code.ends_with("00"))
        .map(|c| c.code.clone())
        .collect();
    let n = list.len();
    let rss0 = proc_status_kib("VmRSS:");
    let t_setup = Instant::now();
    let interner = Arc::new(Interner::default());
    let connector = MemConnector::default();
    if let Ok(mut s) = connector.settings.lock() {
        s.heartbeat = Duration::from_secs(10);
    }
    let keys: HashMap<String, ed25519_dalek::SigningKey> = list
        .iter()
        .map(|c| (c.code.clone(), crate::event::generate_key()))
        .collect();
    let root_key = keys
        .get(NATIONAL)
        .ok_or_else(|| Error::Config("no national key".into()))?
        .verifying_key();
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(SystemClock);
    let mut nodes: HashMap<String, Node> = HashMap::new();
    for c in &list {
        let key = keys
            .get(&c.code)
            .ok_or_else(|| Error::Config(format!("no key for {}", c.code)))?
            .clone();
        let store = NodeStore::new(Arc::new(CompactMemory::new(interner.clone())));
        let node = Node::open(
            NodeSettings {
                code: c.code.clone(),
                root_code: NATIONAL.into(),
                root_key,
                max_clock_skew_ms: 300_000,
                max_group: 256,
            },
            key,
            store,
            clock.clone(),
        )?;
        connector.add(node.clone());
        nodes.insert(c.code.clone(), node);
    }
    let node = |code: &str| -> Result<Node> {
        nodes
            .get(code)
            .cloned()
            .ok_or_else(|| Error::NotFound(code.to_string()))
    };
    let root = node(NATIONAL)?;
    root.register_root("全国政协", crate::domain::Level::National)
        .await?;
    // Waves: a parent registers its children once it knows itself; then they dial it.
    let children: BTreeMap<String, Vec<&Committee>> =
        list.iter().fold(BTreeMap::new(), |mut m, c| {
            if let Some(p) = &c.parent {
                m.entry(p.clone()).or_insert_with(Vec::new).push(c);
            }
            m
        });
    let mut wave = vec![NATIONAL.to_string()];
    let mut links = Vec::new();
    let settings = connector
        .settings
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    while !wave.is_empty() {
        let mut next = Vec::new();
        let mut regs = futures::stream::FuturesUnordered::new();
        for parent in &wave {
            let p = node(parent)?;
            for c in children.get(parent).into_iter().flatten() {
                let key = keys
                    .get(&c.code)
                    .map(|k| hex::encode(k.verifying_key().as_bytes()))
                    .unwrap_or_default();
                let p = p.clone();
                let (code, name) = (c.code.clone(), c.name.clone());
                regs.push(async move { p.register_committee(&code, &name, &key).await });
                next.push(c.code.clone());
            }
        }
        while let Some(r) = regs.next().await {
            r?;
        }
        for code in &next {
            let c = node(code)?;
            let parent = list
                .iter()
                .find(|x| x.code == *code)
                .and_then(|x| x.parent.clone())
                .unwrap_or_default();
            links.push(tokio::spawn(run_parent_link(
                c,
                parent,
                "mem".into(),
                Arc::new(connector.clone()),
                settings.clone(),
            )));
        }
        // Each child knows itself before it registers its own children.
        for code in &next {
            let c = node(code)?;
            let deadline = Instant::now() + Duration::from_secs(600);
            while c.roster().get(code).is_none() {
                if Instant::now() > deadline {
                    return Err(Error::Transport(format!(
                        "{code} never got its registration"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        eprintln!(
            "national: {} committees registered so far ({:.1} s)",
            root.roster().len(),
            t_setup.elapsed().as_secs_f64()
        );
        wave = next;
    }
    // Every node holds its lineage: its ancestors, itself and everything below it.
    let parent_of: HashMap<&str, &str> = list
        .iter()
        .filter_map(|c| Some((c.code.as_str(), c.parent.as_deref()?)))
        .collect();
    let mut lineage: HashMap<&str, usize> = list.iter().map(|c| (c.code.as_str(), 1)).collect();
    for c in &list {
        let mut up = parent_of.get(c.code.as_str()).copied();
        while let Some(p) = up {
            // c is below p, and p above c.
            *lineage.entry(p).or_default() += 1;
            *lineage.entry(c.code.as_str()).or_default() += 1;
            up = parent_of.get(p).copied();
        }
    }
    let roster_events: usize = lineage.values().sum();
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let behind = list
            .iter()
            .filter(|c| {
                let want = lineage.get(c.code.as_str()).copied().unwrap_or(n);
                nodes.get(&c.code).is_some_and(|x| x.roster().len() < want)
            })
            .count();
        if behind == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::Transport(format!(
                "{behind} nodes never got the roster of their lineage"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let setup = t_setup.elapsed();
    let rss_setup = proc_status_kib("VmRSS:");
    eprintln!(
        "national: {n} nodes hold the roster of their lineage ({roster_events} registrations in all) after {:.1} s",
        setup.as_secs_f64()
    );

    // Timed: a national notice to every county.
    let mut arrivals = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    for code in &counties {
        let mut changes = node(code)?.subscribe_changes();
        let tx = arrivals.0.clone();
        tokio::spawn(async move {
            while let Ok(c) = changes.recv().await {
                if tx.send((c.event_id, Instant::now())).is_err() {
                    return;
                }
            }
        });
    }
    let t0 = Instant::now();
    let receipt = root
        .send_guidance("全国政协通知", &super::payload(0), &[])
        .await?;
    let mut got = 0;
    let mut last = t0;
    while got < counties.len() {
        match tokio::time::timeout(Duration::from_secs(120), arrivals.1.recv()).await {
            Ok(Some((id, at))) if id == receipt.event_id => {
                got += 1;
                last = last.max(at);
            }
            Ok(Some(_)) => {}
            _ => {
                return Err(Error::Transport(format!(
                    "the notice reached {got} of {} counties",
                    counties.len()
                )))
            }
        }
    }
    let notice = last - t0;
    // Timed: every county reports to the national committee.
    let base = root.durable_head();
    let t1 = Instant::now();
    let mut sends = futures::stream::FuturesUnordered::new();
    for code in &counties {
        let c = node(code)?;
        sends.push(async move {
            c.send_report(NATIONAL, "", "社情民意信息", &super::payload(1))
                .await
        });
    }
    while let Some(r) = sends.next().await {
        r?;
    }
    super::wait_head(
        &root,
        base + counties.len() as u64,
        Duration::from_secs(600),
    )
    .await?;
    let reports = t1.elapsed();
    let rss = proc_status_kib("VmRSS:");
    let hwm = proc_status_kib("VmHWM:");
    println!(
        "national {n} nodes ({} counties) in one process, in-memory links and stores: roster set-up {:.1} s; a national notice in every county {:.2} s; every county's report at the national committee {:.2} s; memory {:.0} MiB resident ({:.0} MiB peak, {:.0} MiB before)",
        counties.len(),
        setup.as_secs_f64(),
        notice.as_secs_f64(),
        reports.as_secs_f64(),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        rss0 as f64 / 1024.0,
    );
    for node in nodes.values() {
        node.shutdown();
    }
    for l in links {
        l.abort();
    }
    Ok(json!({
        "nodes": n,
        "counties": counties.len(),
        "roster_events": roster_events,
        "setup_s": setup.as_secs_f64(),
        "notice_s": notice.as_secs_f64(),
        "reports_s": reports.as_secs_f64(),
        "notice_and_reports_s": notice.as_secs_f64() + reports.as_secs_f64(),
        "rss_mib": rss as f64 / 1024.0,
        "rss_after_setup_mib": rss_setup as f64 / 1024.0,
        "peak_rss_mib": hwm as f64 / 1024.0,
    }))
}
