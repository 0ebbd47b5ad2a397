//! Backup: export, verify and import of a province-sized store (sled, real fsyncs), the
//! figures docs/operations.md quotes. A province authors N notices (300-byte bodies, many at
//! a time so that group commit batches them), exports its store, verifies it end to end,
//! and a fresh store imports the file, checking every event again as a link would.
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::{author_guidance, thousands, BenchArgs};
use crate::clock::SystemClock;
use crate::domain::Level;
use crate::node::{Node, NodeSettings};
use crate::store::NodeStore;
use crate::{Error, Result};

const CODE: &str = "620000";

pub async fn run(args: &BenchArgs) -> Result<Value> {
    let n = args
        .events
        .unwrap_or(if args.quick { 2_000 } else { 100_000 });
    let tmp = tempfile::tempdir()?;
    let key = crate::event::generate_key();
    let settings = NodeSettings {
        code: CODE.into(),
        root_code: CODE.into(),
        root_key: key.verifying_key(),
        max_clock_skew_ms: 300_000,
        max_group: 256,
    };
    let open = |dir: &str| -> Result<Node> {
        let engine = crate::store::open_engine(&tmp.path().join(dir), args.engine, 16 << 20)?;
        Node::open(
            settings.clone(),
            key.clone(),
            NodeStore::new(engine),
            Arc::new(SystemClock),
        )
    };
    let source = open("source")?;
    source.register_root("甘肃省政协", Level::Province).await?;
    author_guidance(&source, n, &[], 64).await?;
    let events = source.durable_head();

    let file = tmp.path().join("province.ldx");
    let t = Instant::now();
    crate::backup::export_to_file(
        source.store(),
        CODE,
        "甘肃省政协",
        CODE,
        0,
        &file,
        &mut |_, _, _| {},
    )?;
    let export_s = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&file)?.len();
    let t = Instant::now();
    let roster = source.roster().clone();
    let report = crate::backup::verify(source.store(), &roster, CODE, &mut |_, _, _| {})?;
    let verify_s = t.elapsed().as_secs_f64();
    if !report.ok() {
        return Err(Error::Storage(format!(
            "verify found problems in the benchmark's own store: {:?}",
            report.problems
        )));
    }
    source.close().await;

    let restored = open("restored")?;
    let t = Instant::now();
    let summary = crate::backup::import(&restored, &file, &mut |_, _, _| {}).await?;
    let import_s = t.elapsed().as_secs_f64();
    restored.close().await;
    if summary.stored != events {
        return Err(Error::Storage(format!(
            "import stored {} of {events} events",
            summary.stored
        )));
    }
    println!(
        "backup: {} events, export file {} bytes ({:.0} B/event)",
        thousands(events as f64),
        thousands(bytes as f64),
        bytes as f64 / events as f64
    );
    for (what, s) in [
        ("export", export_s),
        ("verify", verify_s),
        ("import", import_s),
    ] {
        println!(
            "  {what:<7} {s:>6.2} s  {:>9} events/s",
            thousands(events as f64 / s.max(1e-9))
        );
    }
    Ok(json!({
        "events": events,
        "file_bytes": bytes,
        "export_seconds": export_s,
        "verify_seconds": verify_s,
        "import_seconds": import_s,
    }))
}
