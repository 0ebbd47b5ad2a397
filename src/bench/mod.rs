//! `liandong bench`: the performance suite (issue 6). Each scenario prints its figures; the
//! NATS JetStream side of the comparison is `bench/nats/compare.sh`, which runs this suite's
//! relay and catch-up in the same run. `--quick` runs every scenario small, so that CI checks
//! that they all still run (not how fast); BENCHMARKS.md has the full figures and what bounds
//! each of them.
//!
//! Scenarios:
//! - `limits`: the physical limits on this machine (ed25519 verification single and batched,
//!   SHA-256, raw sled batch inserts with a sync each, fdatasync, one loopback gRPC stream);
//! - `relay`: province → city → county, events authored at the province while they flow,
//!   every hop verifying and syncing before it acknowledges;
//! - `catchup`: a county that missed N events reconnects;
//! - `fanout`: a province, 14 cities, 100 counties; guidance to the whole subtree, p50/p99
//!   until every county holds it;
//! - `scoped`: bytes a county receives against the events it may see; bytes per event
//!   against the same data as JSON;
//! - `footprint`: resident memory of an idle node and of one holding N events (separate
//!   processes), disk bytes per event, start-up time;
//! - `national`: every committee of `shared/data/divisions/` in one process over in-memory
//!   links: a national notice reaches every county, every county's report reaches the root;
//! - `backup`: export, verify and import of a province's store of N events.
pub mod backup;
pub mod fanout;
pub mod footprint;
pub mod limits;
pub mod national;
pub mod relay;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::node::Node;
use crate::{Error, Result};

/// `liandong bench [SCENARIO...] [--quick]`
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Scenarios to run: limits, relay, catchup, fanout, scoped, footprint, national, backup
    /// (all when none is named).
    pub scenarios: Vec<String>,
    /// Small sizes: checks that every scenario runs (CI), not how fast.
    #[arg(long)]
    pub quick: bool,
    /// Events for relay, catch-up and backup (default 100,000; 2,000 with --quick).
    #[arg(long)]
    pub events: Option<usize>,
    /// Events held by the loaded node of `footprint` (default 1,000,000; 5,000 with --quick).
    #[arg(long)]
    pub footprint_events: Option<usize>,
    /// Links in plaintext (as `serve --insecure`) instead of mutual TLS.
    #[arg(long)]
    pub insecure: bool,
    /// The storage engine of the benchmarks' stores (relay, catchup, fanout, scoped,
    /// footprint): log or sled.
    #[arg(long, default_value = "log")]
    pub engine: crate::store::EngineKind,
    /// Where the divisions CSVs are (national); default: ../shared/data/divisions from the
    /// working directory or its parents.
    #[arg(long)]
    pub divisions: Option<std::path::PathBuf>,
    /// Only these provinces (2-digit codes, comma-separated) in `national`; default all.
    #[arg(long)]
    pub provinces: Option<String>,
    /// Write the figures as JSON to this file too.
    #[arg(long)]
    pub json_out: Option<std::path::PathBuf>,
    /// Internal: run as the measured child process of `footprint` on this store folder.
    #[arg(long, hide = true)]
    pub footprint_child: Option<std::path::PathBuf>,
}

const ALL: [&str; 8] = [
    "limits",
    "relay",
    "catchup",
    "fanout",
    "scoped",
    "footprint",
    "national",
    "backup",
];

/// Runs the chosen scenarios and prints their figures.
pub async fn run(args: BenchArgs, json_stdout: bool) -> Result<()> {
    if let Some(dir) = &args.footprint_child {
        return footprint::child(dir).await;
    }
    let chosen: Vec<String> = if args.scenarios.is_empty() {
        ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    for s in &chosen {
        if !ALL.contains(&s.as_str()) {
            return Err(Error::Invalid(format!(
                "no benchmark '{s}': choose from {}",
                ALL.join(", ")
            )));
        }
    }
    let started = Instant::now();
    println!(
        "liandong bench{} — {} store engine, {} cores, load average {}",
        if args.quick { " --quick" } else { "" },
        args.engine.name(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        load_average()
    );
    let mut figures = serde_json::Map::new();
    for s in &chosen {
        let t = Instant::now();
        let v = match s.as_str() {
            "limits" => limits::run(&args).await?,
            "relay" => relay::relay(&args).await?,
            "catchup" => relay::catch_up(&args).await?,
            "fanout" => fanout::run(&args).await?,
            "scoped" => relay::scoped(&args).await?,
            "footprint" => footprint::run(&args).await?,
            "national" => national::run(&args).await?,
            "backup" => backup::run(&args).await?,
            _ => Value::Null,
        };
        println!("  ({s}: {:.1} s)", t.elapsed().as_secs_f64());
        figures.insert(s.clone(), v);
    }
    let out = json!({
        "quick": args.quick,
        "engine": args.engine.name(),
        "load_average_at_end": load_average(),
        "seconds": started.elapsed().as_secs_f64(),
        "figures": figures,
    });
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&out)?)?;
    }
    if json_stdout {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    println!(
        "bench: {} scenarios ran in {:.1} s",
        chosen.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A field of /proc/self/status in KiB (VmRSS, VmHWM).
pub fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A 300-byte payload (ASCII), different for every `i`.
pub fn payload(i: usize) -> String {
    let mut s = format!("payload {i:>10} ");
    while s.len() < 300 {
        s.push_str("联动协商 linked consultation ");
    }
    // Cut on a char boundary at or below 300 bytes, then pad with ASCII.
    let mut cut = 300.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    while s.len() < 300 {
        s.push('.');
    }
    s
}

/// Authors `n` guidance notices (300-byte bodies) at `node`, `concurrency` at a time so that
/// the writer's group commit batches them; `to` empty: the node's whole subtree.
pub async fn author_guidance(
    node: &Node,
    n: usize,
    to: &[String],
    concurrency: usize,
) -> Result<()> {
    let mut s = futures::stream::iter(0..n)
        .map(|i| {
            let node = node.clone();
            let to = to.to_vec();
            async move {
                node.send_guidance(&format!("bench {i}"), &payload(i), &to)
                    .await
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = s.next().await {
        r?;
    }
    Ok(())
}

/// Waits until `node`'s durable head reaches `target`, or fails after `timeout`.
pub async fn wait_head(node: &Node, target: u64, timeout: Duration) -> Result<()> {
    let mut rx = node.subscribe_head();
    let reached = tokio::time::timeout(timeout, async {
        rx.wait_for(|h| *h >= target).await.map(|_| ())
    })
    .await;
    match reached {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Error::Shutdown),
        Err(_) => Err(Error::Transport(format!(
            "{} reached {} of {target} events within {timeout:?}",
            node.code(),
            node.durable_head()
        ))),
    }
}

/// `1234567.8` → "1,234,568".
pub fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The value at quantile `q` (0..=1) of sorted `v` (nearest rank).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
