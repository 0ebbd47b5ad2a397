//! `liandong export`, `liandong import` and `liandong verify`: they work on a **stopped**
//! node's store, named by `--config` (sled lets one process hold a store at a time). The
//! logic is in [`crate::backup`]; this is the command line, with a progress bar on a
//! terminal and plain progress lines otherwise.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::progress::Progress;
use super::Cli;
use crate::backup;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::node::Node;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The file to write (replaced if it exists).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// An export file written by `liandong export`.
    #[arg(long)]
    pub file: PathBuf,
    /// Allow a file exported by another committee's node (events this node may not see are
    /// refused and quarantined as out of scope).
    #[arg(long)]
    pub from_other_committee: bool,
}

/// A stopped node's store, opened by this process.
struct Offline {
    cfg: Config,
    node: Node,
}

fn open_offline(cli: &Cli) -> Result<Offline> {
    let (cfg, base) = Config::load(&cli.config)?;
    // The node never signs here (import only ingests): a throwaway key will do, so that
    // verify and export need no access to the real one.
    let key = crate::event::generate_key();
    // No link is opened: the transport is never used.
    let opts = super::init::options(&cfg, &base, key.clone(), crate::tls::Transport::Insecure)?;
    let engine = opts.open_engine().map_err(|e| {
            anyhow::anyhow!(
                "{e}\n(export, import and verify work on a stopped node: stop `liandong serve` first, e.g. `systemctl stop liandong`)"
            )
        })?;
    let store = crate::store::NodeStore::new(engine);
    let node = Node::open(opts.settings, key, store, Arc::new(SystemClock))
        .context("opening the node's store")?;
    Ok(Offline { cfg, node })
}

pub async fn export(args: &ExportArgs, cli: &Cli) -> Result<()> {
    let off = open_offline(cli)?;
    let started = Instant::now();
    let mut progress = Progress::new();
    let result = backup::export_to_file(
        off.node.store(),
        &off.cfg.committee.code,
        &off.cfg.committee.name,
        &off.cfg.trust.root_code,
        SystemClock.now_ms(),
        &args.out,
        &mut |p, d, t| progress.update(p, d, t),
    );
    progress.finish();
    off.node.close().await;
    let header = result.with_context(|| format!("exporting to {}", args.out.display()))?;
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    if cli.json {
        let out = serde_json::json!({
            "file": args.out,
            "committee": header.committee,
            "events": header.events,
            "bytes": bytes,
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "exported {} events of {} {} to {} ({} bytes, {:.1} s)",
            header.events,
            header.committee,
            header.name,
            args.out.display(),
            bytes,
            started.elapsed().as_secs_f64()
        );
        println!("the node's key is not in the file: keep a copy of node.key apart, safely");
    }
    Ok(())
}

pub async fn import(args: &ImportArgs, cli: &Cli) -> Result<()> {
    let header = backup::open_export(&args.file)?.header;
    let off = open_offline(cli)?;
    let me = off.cfg.committee.code.clone();
    if header.committee != me && !args.from_other_committee {
        off.node.close().await;
        bail!(
            "{} was exported by committee {} ({}), and this node is {me}: pass --from-other-committee if that is what you mean",
            args.file.display(),
            header.committee,
            header.name
        );
    }
    if header.root_code != off.cfg.trust.root_code {
        off.node.close().await;
        bail!(
            "{} belongs to the federation rooted at {}, and this node's [trust] root_code is {}: its events would all be refused",
            args.file.display(),
            header.root_code,
            off.cfg.trust.root_code
        );
    }
    let started = Instant::now();
    let mut progress = Progress::new();
    let result = backup::import(&off.node, &args.file, &mut |p, d, t| {
        progress.update(p, d, t)
    })
    .await;
    progress.finish();
    off.node.close().await;
    let summary = result.with_context(|| format!("importing {}", args.file.display()))?;
    if cli.json {
        let mut v = serde_json::to_value(&summary)?;
        v["seconds"] = started.elapsed().as_secs_f64().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "imported {}: {} events in the file, {} stored, {} already held, {} refused ({:.1} s)",
            args.file.display(),
            summary.events_in_file,
            summary.stored,
            summary.duplicates,
            summary.refused,
            started.elapsed().as_secs_f64()
        );
        if summary.refused > 0 {
            println!("the refused events are in the quarantine with their reasons: start the node and run `liandong quarantine list`");
        }
    }
    Ok(())
}

pub async fn verify(cli: &Cli) -> Result<()> {
    let off = open_offline(cli)?;
    let started = Instant::now();
    let mut progress = Progress::new();
    let roster = off.node.roster().clone();
    let result = backup::verify(
        off.node.store(),
        &roster,
        off.node.code(),
        &mut |p, d, t| progress.update(p, d, t),
    );
    progress.finish();
    off.node.close().await;
    let report = result.context("verifying the store")?;
    if cli.json {
        let mut v = serde_json::to_value(&report)?;
        v["ok"] = report.ok().into();
        v["seconds"] = started.elapsed().as_secs_f64().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if report.ok() {
        println!(
            "the store is sound: {} events, {} records, {} origin index entries checked ({:.1} s)",
            report.events,
            report.records,
            report.origins,
            started.elapsed().as_secs_f64()
        );
    } else {
        for p in &report.problems {
            println!("problem: {p}");
        }
    }
    if !report.ok() {
        bail!(
            "the store in {} has {} problem(s); see docs/operations.md (\"A store that fails verify\")",
            store_dir(&off.cfg, &cli.config).display(),
            report.problems.len()
        );
    }
    Ok(())
}

fn store_dir(cfg: &Config, config_path: &Path) -> PathBuf {
    let base = config_path.parent().unwrap_or(Path::new(""));
    if cfg.node.data_dir.is_absolute() {
        cfg.node.data_dir.clone()
    } else {
        base.join(&cfg.node.data_dir)
    }
}
