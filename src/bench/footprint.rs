//! Footprint: resident memory of an idle node and of a node holding many events, disk bytes
//! per event in its store, and the start-up time of the loaded node. Each node is measured in
//! a process of its own (this binary, `bench --footprint-child DIR`), started the way `serve`
//! starts a node: a store of the engine `--engine` names (sled with the default 16 MiB
//! cache), both gRPC servers, no links.
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

use super::{author_guidance, proc_status_kib, thousands, BenchArgs};
use crate::clock::SystemClock;
use crate::domain::Level;
use crate::node::NodeSettings;
use crate::server::{self, NodeOptions};
use crate::store::EngineKind;
use crate::sync::SyncSettings;
use crate::tls::Transport;
use crate::{Error, Result};

const CODE: &str = "620000";
const KEY_FILE: &str = "bench.key";
/// `[node] cache_mb`'s default.
const CACHE_BYTES: u64 = 16 << 20;

fn options(dir: &Path, key: &SigningKey, engine: EngineKind) -> NodeOptions {
    NodeOptions {
        settings: NodeSettings {
            code: CODE.into(),
            root_code: CODE.into(),
            root_key: key.verifying_key(),
            max_clock_skew_ms: 300_000,
            max_group: 256,
        },
        key: key.clone(),
        store_dir: dir.join("store"),
        engine,
        cache_bytes: CACHE_BYTES,
        federation_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        parent: None,
        sync: SyncSettings::default(),
        transport: Transport::Insecure,
        peers: Vec::new(),
    }
}

/// Makes a root node's store in `dir` holding `n` notices besides its registration.
async fn make_store(dir: &Path, n: usize, engine: EngineKind) -> Result<(u64, Duration)> {
    let key = crate::event::generate_key();
    std::fs::write(dir.join(KEY_FILE), hex::encode(key.to_bytes()))?;
    let running = server::start(options(dir, &key, engine), Arc::new(SystemClock)).await?;
    let node = running.node.clone();
    node.register_root("甘肃省政协", Level::Province).await?;
    let t0 = Instant::now();
    // In chunks, so that a progress line shows on long runs.
    let chunk = 100_000;
    let mut done = 0;
    while done < n {
        let k = chunk.min(n - done);
        author_guidance(&node, k, &[], 512).await?;
        done += k;
        if n > chunk {
            eprintln!("footprint: {done} of {n} events written");
        }
    }
    let took = t0.elapsed();
    let head = node.durable_head();
    // A closing node waits until nothing else holds it: this handle goes first.
    drop(node);
    running.stop().await;
    Ok((head, took))
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Runs the child on `dir`; returns what it printed.
async fn measure(dir: &Path) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let dir = dir.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .arg("bench")
            .arg("--footprint-child")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .output()
    })
    .await
    .map_err(|e| Error::Storage(e.to_string()))??;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| {
            Error::Storage(format!(
                "the measured node printed no figures (exit {}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        })?;
    Ok(serde_json::from_str(line)?)
}

pub async fn run(args: &BenchArgs) -> Result<Value> {
    let n = args
        .footprint_events
        .unwrap_or(if args.quick { 2_000 } else { 1_000_000 });
    let idle_dir = tempfile::Builder::new()
        .prefix("liandong-bench-")
        .tempdir()?;
    make_store(idle_dir.path(), 0, args.engine).await?;
    let idle = measure(idle_dir.path()).await?;
    let loaded_dir = tempfile::Builder::new()
        .prefix("liandong-bench-")
        .tempdir()?;
    let (head, took) = make_store(loaded_dir.path(), n, args.engine).await?;
    let disk = dir_bytes(&loaded_dir.path().join("store"));
    let loaded = measure(loaded_dir.path()).await?;
    // sled 0.34 writes its page-table snapshot only when it opens a store, so the first start
    // after the writing replays the whole log written since; a restart after that does not.
    // The log engine reads its whole file at every start.
    let restarted = measure(loaded_dir.path()).await?;
    if std::env::var_os("LIANDONG_BENCH_KEEP").is_some() {
        // For profiling the start-up: `bench --footprint-child DIR` runs it again.
        let kept = loaded_dir.keep();
        eprintln!("footprint: the loaded store is kept in {}", kept.display());
    }
    let mib = |v: &Value| v["rss_kib"].as_f64().unwrap_or(0.0) / 1024.0;
    // Resident memory is mostly the binary's code pages an idle node has touched (file-backed,
    // shared, and moved by any change to the code's layout); the heap is the anonymous part.
    let anon_mib = |v: &Value| v["rss_anon_kib"].as_f64().unwrap_or(0.0) / 1024.0;
    let file_mib = |v: &Value| v["rss_file_kib"].as_f64().unwrap_or(0.0) / 1024.0;
    // Opening a large store builds its index through buffers freed once it stands.
    let peak_mib = |v: &Value| v["hwm_kib"].as_f64().unwrap_or(0.0) / 1024.0;
    let per_event = disk as f64 / head.max(1) as f64;
    println!(
        "footprint idle node: {:.1} MiB resident ({:.1} MiB anonymous, {:.1} MiB of the binary and other files); node holding {} events: {:.1} MiB resident ({:.1} MiB at the peak of its start-up), start-up {:.0} ms the first time after writing them, {:.0} ms when started again; {} store: {:.0} disk bytes per event ({:.1} MiB); writing them took {:.1} s ({} events/s authored)",
        mib(&idle),
        anon_mib(&idle),
        file_mib(&idle),
        thousands(head as f64),
        mib(&loaded),
        peak_mib(&loaded),
        loaded["startup_ms"].as_f64().unwrap_or(0.0),
        restarted["startup_ms"].as_f64().unwrap_or(0.0),
        args.engine.name(),
        per_event,
        disk as f64 / (1 << 20) as f64,
        took.as_secs_f64(),
        thousands(n as f64 / took.as_secs_f64().max(1e-9)),
    );
    Ok(json!({
        "engine": args.engine.name(),
        "idle_rss_mib": mib(&idle),
        "idle_rss_anon_mib": anon_mib(&idle),
        "idle_rss_file_mib": file_mib(&idle),
        "idle_startup_ms": idle["startup_ms"],
        "loaded_events": head,
        "loaded_rss_mib": mib(&loaded),
        "loaded_peak_rss_mib": peak_mib(&loaded),
        "loaded_startup_ms": loaded["startup_ms"],
        "loaded_restart_ms": restarted["startup_ms"],
        "disk_bytes_per_event": per_event,
        "disk_bytes": disk,
        "authoring_events_per_s": n as f64 / took.as_secs_f64().max(1e-9),
    }))
}

/// The measured process: starts the node in `dir` as `serve` would, idles, prints figures.
pub async fn child(dir: &Path) -> Result<()> {
    let text = std::fs::read_to_string(dir.join(KEY_FILE))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::Config("bad bench key".into()))?;
    let key = SigningKey::from_bytes(&bytes);
    let t0 = Instant::now();
    // The store exists: it is opened with the engine that wrote it.
    let running = server::start(
        options(dir, &key, EngineKind::default()),
        Arc::new(SystemClock),
    )
    .await?;
    let startup = t0.elapsed();
    let head = running.node.durable_head();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = proc_status_kib("VmRSS:");
    println!(
        "{}",
        json!({
            "startup_ms": startup.as_secs_f64() * 1000.0,
            "rss_kib": rss,
            "rss_anon_kib": proc_status_kib("RssAnon:"),
            "rss_file_kib": proc_status_kib("RssFile:"),
            "hwm_kib": proc_status_kib("VmHWM:"),
            "events": head,
        })
    );
    running.stop().await;
    Ok(())
}
