//! Fan-out latency: a province with 14 cities and 100 counties, all connected (real nodes,
//! real gRPC on loopback). The province publishes guidance to its whole subtree; the time
//! from the publishing call until every county holds it (durable, and announced to its
//! watchers), over many rounds: p50 and p99.
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{quantile, BenchArgs};
use crate::fixture::{Federation, Spec};
use crate::Result;

/// The province, `cities` cities, and `counties` counties spread over them.
pub fn tree(cities: usize, counties: usize) -> Vec<Spec> {
    let mut specs = vec![Spec::new("620000", "甘肃省政协", None)];
    for c in 1..=cities {
        specs.push(Spec::new(
            &format!("62{c:02}00"),
            &format!("第{c}市政协"),
            Some("620000"),
        ));
    }
    for k in 0..counties {
        let c = k % cities + 1;
        let n = k / cities + 1;
        specs.push(Spec::new(
            &format!("62{c:02}{n:02}"),
            &format!("第{c}市第{n}县政协"),
            Some(&format!("62{c:02}00")),
        ));
    }
    specs
}

pub async fn run(args: &BenchArgs) -> Result<Value> {
    let (cities, counties, rounds) = if args.quick {
        (2, 4, 5)
    } else {
        (14, 100, 200)
    };
    let specs = tree(cities, counties);
    let county_codes: Vec<String> = specs
        .iter()
        .filter(|s| s.parent.as_deref().is_some_and(|p| p != "620000"))
        .map(|s| s.code.clone())
        .collect();
    let mut fed = if args.insecure {
        Federation::new_insecure(specs)?
    } else {
        Federation::new(specs)?
    };
    fed.engine = args.engine;
    let t_up = Instant::now();
    fed.bring_up(&[]).await?;
    let up = t_up.elapsed();
    // Every county reports (event id, when it became durable there).
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Instant)>();
    for code in &county_codes {
        let mut changes = fed.node(code)?.subscribe_changes();
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(c) => {
                        if tx.send((c.event_id, Instant::now())).is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                }
            }
        });
    }
    drop(tx);
    // Let the registrations settle everywhere before timing.
    let wanted: Vec<(String, u64)> = county_codes
        .iter()
        .map(|c| (c.clone(), fed.lineage_size(c) as u64))
        .collect();
    fed.wait_until(
        "every county to hold the roster of its lineage",
        Duration::from_secs(120),
        |f| {
            wanted.iter().all(|(c, total)| {
                f.node(c)
                    .map(|n| n.durable_head() >= *total)
                    .unwrap_or(false)
            })
        },
    )
    .await?;
    while rx.try_recv().is_ok() {}
    let province = fed.node("620000")?.clone();
    let mut latencies = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let t0 = Instant::now();
        let receipt = province
            .send_guidance(&format!("fan-out {i}"), &super::payload(i), &[])
            .await?;
        let mut seen = 0usize;
        let mut last = t0;
        let deadline = t0 + Duration::from_secs(30);
        while seen < county_codes.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some((id, at))) if id == receipt.event_id => {
                    seen += 1;
                    last = last.max(at);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    return Err(crate::Error::Transport(format!(
                        "round {i}: {seen} of {} counties got the notice within 30 s",
                        county_codes.len()
                    )))
                }
            }
        }
        latencies.push((last - t0).as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut sorted = latencies.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let p50 = quantile(&sorted, 0.5);
    let p99 = quantile(&sorted, 0.99);
    let max = sorted.last().copied().unwrap_or(0.0);
    println!(
        "fanout   province → {cities} cities → {counties} counties (all connected, {} nodes up in {:.1} s): guidance to the whole subtree in every county p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms over {rounds} rounds",
        fed.specs.len(),
        up.as_secs_f64()
    );
    super::relay::stop(&mut fed, [province]).await;
    Ok(json!({
        "cities": cities,
        "counties": counties,
        "rounds": rounds,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max,
        "bring_up_s": up.as_secs_f64(),
    }))
}
