//! Relay throughput, catch-up, and scoped efficiency: real nodes (stores of `--engine` in
//! temporary folders, tonic on 127.0.0.1, mutual TLS unless `--insecure`) through
//! [`crate::fixture`].
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_stream::wrappers::ReceiverStream;

use super::{author_guidance, thousands, wait_head, BenchArgs};
use crate::event::Envelope;
use crate::fixture::{Federation, Spec};
use crate::node::Node;
use crate::pb;
use crate::sync::link::{Connector, FrameStream};
use crate::Result;

const PROVINCE: &str = "620000";
const CITY: &str = "620100";
const COUNTY: &str = "620123";

fn chain() -> Vec<Spec> {
    vec![
        Spec::new(PROVINCE, "甘肃省政协", None),
        Spec::new(CITY, "兰州市政协", Some(PROVINCE)),
        Spec::new(COUNTY, "榆中县政协", Some(CITY)),
    ]
}

fn federation(args: &BenchArgs, specs: Vec<Spec>) -> Result<Federation> {
    let mut fed = if args.insecure {
        Federation::new_insecure(specs)?
    } else {
        Federation::new(specs)?
    };
    fed.engine = args.engine;
    Ok(fed)
}

/// Signals every node at once, then stops them (one by one they would each wait for the
/// others' streams to close). `held` are the bench's own handles on nodes: they go first,
/// because a closing node waits (up to 3 s) until nothing else holds it.
pub async fn stop(fed: &mut Federation, held: impl IntoIterator<Item = Node>) {
    drop(held.into_iter().collect::<Vec<_>>());
    for s in fed.specs.clone() {
        if let Ok(n) = fed.node(&s.code) {
            n.shutdown();
        }
    }
    fed.stop_all().await;
}

fn events(args: &BenchArgs) -> usize {
    args.events
        .unwrap_or(if args.quick { 1_000 } else { 100_000 })
}

fn transport_name(args: &BenchArgs) -> &'static str {
    if args.insecure {
        "plaintext"
    } else {
        "mutual TLS"
    }
}

/// Events authored at the province while they flow to the county: the time from the first
/// authoring call until the county holds the last one, verified and durable at each hop.
pub async fn relay(args: &BenchArgs) -> Result<Value> {
    let n = events(args);
    let mut fed = federation(args, chain())?;
    fed.bring_up(&[]).await?;
    let province = fed.node(PROVINCE)?.clone();
    let county = fed.node(COUNTY)?.clone();
    let base = province.durable_head();
    wait_head(&county, base, Duration::from_secs(20)).await?;
    let base_county = county.durable_head();
    let t0 = Instant::now();
    let author = {
        let province = province.clone();
        tokio::spawn(async move {
            author_guidance(&province, n, &[], 512).await?;
            Ok::<Duration, crate::Error>(t0.elapsed())
        })
    };
    wait_head(&county, base_county + n as u64, Duration::from_secs(600)).await?;
    let total = t0.elapsed();
    let authored = author
        .await
        .map_err(|e| crate::Error::Storage(e.to_string()))??;
    let rate = n as f64 / total.as_secs_f64();
    let author_rate = n as f64 / authored.as_secs_f64();
    stop(&mut fed, [province, county]).await;
    // The two hops alone: the province holds the events already; the city and the county
    // start and take them through.
    let mut fed = federation(args, chain())?;
    fed.bring_up(&[]).await?;
    let base_county = fed.node(COUNTY)?.durable_head();
    fed.stop(COUNTY).await;
    fed.stop(CITY).await;
    let province = fed.node(PROVINCE)?.clone();
    author_guidance(&province, n, &[], 512).await?;
    let t1 = Instant::now();
    fed.start(CITY).await?;
    fed.start(COUNTY).await?;
    let county = fed.node(COUNTY)?.clone();
    wait_head(&county, base_county + n as u64, Duration::from_secs(600)).await?;
    let hops = t1.elapsed();
    let hops_rate = n as f64 / hops.as_secs_f64();
    println!(
        "relay    the two hops alone (province pre-loaded with {n} events; city and county start): {} events/s ({:.2} s)",
        thousands(hops_rate),
        hops.as_secs_f64()
    );
    println!(
        "relay    province → city → county, {n} events of 300-byte payloads, {}: {} events/s end to end ({:.2} s); the province's authoring calls returned at {} events/s",
        transport_name(args),
        thousands(rate),
        total.as_secs_f64(),
        thousands(author_rate)
    );
    stop(&mut fed, [province, county]).await;
    Ok(json!({
        "events": n,
        "transport": transport_name(args),
        "seconds": total.as_secs_f64(),
        "events_per_s": rate,
        "authoring_events_per_s": author_rate,
        "hops_only_seconds": hops.as_secs_f64(),
        "hops_only_events_per_s": hops_rate,
    }))
}

/// A county that missed `n` events (held by its city) reconnects: time until it holds them
/// all, verified and durable.
pub async fn catch_up(args: &BenchArgs) -> Result<Value> {
    let n = events(args);
    let mut fed = federation(args, chain())?;
    fed.bring_up(&[]).await?;
    let base = fed.node(COUNTY)?.durable_head();
    fed.stop(COUNTY).await;
    let province = fed.node(PROVINCE)?.clone();
    let city = fed.node(CITY)?.clone();
    let city_base = city.durable_head();
    author_guidance(&province, n, &[], 512).await?;
    wait_head(&city, city_base + n as u64, Duration::from_secs(600)).await?;
    let t0 = Instant::now();
    fed.start(COUNTY).await?;
    let county = fed.node(COUNTY)?.clone();
    wait_head(&county, base + n as u64, Duration::from_secs(600)).await?;
    let total = t0.elapsed();
    println!(
        "catchup  a county that missed {n} events reconnects ({}): {:.2} s to hold them all ({} events/s)",
        transport_name(args),
        total.as_secs_f64(),
        thousands(n as f64 / total.as_secs_f64())
    );
    stop(&mut fed, [province, city, county]).await;
    Ok(json!({
        "events": n,
        "transport": transport_name(args),
        "seconds": total.as_secs_f64(),
        "events_per_s": n as f64 / total.as_secs_f64(),
    }))
}

/// Counts the protobuf bytes of every frame a node receives on its parent link.
struct CountingConnector {
    inner: Arc<dyn Connector>,
    bytes: Arc<AtomicU64>,
    batch_events: Arc<AtomicU64>,
}

impl Connector for CountingConnector {
    fn open(
        &self,
        peer: String,
        address: String,
        outbound: ReceiverStream<pb::SyncFrame>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<FrameStream>> + Send>> {
        let inner = self.inner.clone();
        let bytes = self.bytes.clone();
        let batch_events = self.batch_events.clone();
        Box::pin(async move {
            let stream = inner.open(peer, address, outbound).await?;
            let counted = stream.map(move |f| {
                if let Ok(frame) = &f {
                    bytes.fetch_add(prost::Message::encoded_len(frame) as u64, Ordering::Relaxed);
                    if let Some(pb::sync_frame::Kind::Batch(b)) = &frame.kind {
                        batch_events.fetch_add(b.events.len() as u64, Ordering::Relaxed);
                    }
                }
                f
            });
            Ok(Box::pin(counted) as FrameStream)
        })
    }
}

/// The same event as JSON, the way a JSON API would carry it (ids as text, bytes as hex).
fn as_json(env: &Envelope) -> Value {
    let audience = match env.audience() {
        pb::audience::Kind::Subtree(c) => json!({ "subtree": c }),
        pb::audience::Kind::Committees(l) => json!({ "committees": l.codes }),
        pb::audience::Kind::Ancestors(u) => json!({ "ancestors": u }),
        pb::audience::Kind::Lineage(c) => json!({ "lineage": c }),
        pb::audience::Kind::Group(g) => json!({ "group": g.group_id }),
    };
    let body = match env.body() {
        Some(pb::event::Body::GuidanceIssued(g)) => json!({ "guidance_issued": {
            "guidance_id": uuid::Uuid::from_slice(&g.guidance_id).map(|u| u.to_string()).unwrap_or_default(),
            "title": g.title,
            "body": g.body,
        }}),
        Some(pb::event::Body::ReportSent(r)) => json!({ "report_sent": {
            "report_id": uuid::Uuid::from_slice(&r.report_id).map(|u| u.to_string()).unwrap_or_default(),
            "to": r.to, "kind": r.kind, "title": r.title, "body": r.body,
        }}),
        Some(pb::event::Body::CommitteeRegistered(r)) => json!({ "committee_registered": {
            "code": r.code, "name": r.name, "level": r.level, "parent": r.parent,
            "public_key": hex::encode(&r.public_key),
        }}),
        other => json!({ "kind": other.map(crate::event::kind_name).unwrap_or("unknown") }),
    };
    json!({
        "id": env.id.to_string(),
        "origin": env.origin(),
        "seq": env.seq(),
        "prev": hex::encode(&env.event.prev),
        "hlc": env.hlc(),
        "audience": audience,
        "body": body,
        "signature": hex::encode(env.signature),
    })
}

/// Bytes sent to a county against the encoded size of the events it may see, in a mixed
/// workload where most events are for others; and bytes per event against JSON.
pub async fn scoped(args: &BenchArgs) -> Result<Value> {
    let rounds = if args.quick { 3 } else { 500 };
    let mut fed = federation(args, crate::fixture::gansu())?;
    let bytes = Arc::new(AtomicU64::new(0));
    let batch_events = Arc::new(AtomicU64::new(0));
    {
        let bytes = bytes.clone();
        let batch_events = batch_events.clone();
        fed.wrap_connector(
            COUNTY,
            Arc::new(move |inner| {
                Arc::new(CountingConnector {
                    inner,
                    bytes: bytes.clone(),
                    batch_events: batch_events.clone(),
                }) as Arc<dyn Connector>
            }),
        );
    }
    fed.bring_up(&[]).await?;
    let province = fed.node(PROVINCE)?.clone();
    let lanzhou = fed.node(CITY)?.clone();
    let yongdeng = fed.node("620121")?.clone();
    let baiyin = fed.node("620400")?.clone();
    // Per round: one notice to the whole province (the county may see it) and five events it
    // may not: a notice to Baiyin only, Lanzhou's notice to its other county, a report from
    // Lanzhou, one from Yongdeng, one from Baiyin.
    for i in 0..rounds {
        let body = super::payload(i);
        province
            .send_guidance(&format!("all {i}"), &body, &[])
            .await?;
        province
            .send_guidance(&format!("baiyin {i}"), &body, &["620400".to_string()])
            .await?;
        lanzhou
            .send_guidance(&format!("yongdeng {i}"), &body, &["620121".to_string()])
            .await?;
        lanzhou
            .send_report("", "work-summary", &format!("lanzhou {i}"), &body)
            .await?;
        yongdeng
            .send_report("", "work-summary", &format!("yongdeng {i}"), &body)
            .await?;
        baiyin
            .send_report("", "work-summary", &format!("baiyin {i}"), &body)
            .await?;
    }
    let county = fed.node(COUNTY)?.clone();
    // The county may see the registrations of its lineage and the province's notices to all.
    let specs = fed.lineage_size(COUNTY);
    fed.wait_until(
        "the county to hold every notice of the province",
        Duration::from_secs(120),
        |f| {
            f.node(COUNTY)
                .map(|n| n.store().head().unwrap_or(0) as usize >= specs + rounds)
                .unwrap_or(false)
        },
    )
    .await?;
    // Heartbeats and anything late.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // What the county holds is what it was entitled to (the scope tests check that).
    let mut entitled_bytes = 0u64;
    let mut held = 0u64;
    let mut guidance_wire = 0u64;
    let mut guidance_json = 0u64;
    let mut guidance_n = 0u64;
    let mut after = 0;
    loop {
        let entries = county.store().log_after(after, 1024)?;
        if entries.is_empty() {
            break;
        }
        for e in entries {
            after = e.position;
            let Some(frame) = county.store().event_frame(&e.id)? else {
                continue;
            };
            entitled_bytes += frame.len() as u64;
            held += 1;
            if let Ok(env) = Envelope::open(&frame) {
                if matches!(env.body(), Some(pb::event::Body::GuidanceIssued(_))) {
                    guidance_n += 1;
                    guidance_wire += frame.len() as u64;
                    guidance_json += serde_json::to_vec(&as_json(&env))?.len() as u64;
                }
            }
        }
    }
    let received = bytes.load(Ordering::Relaxed);
    let total_events = province.store().head()?;
    let ratio = received as f64 / entitled_bytes.max(1) as f64;
    let wire_per_event = guidance_wire as f64 / guidance_n.max(1) as f64;
    let json_per_event = guidance_json as f64 / guidance_n.max(1) as f64;
    println!(
        "scoped   county 620123 holds {held} of {total_events} events the province holds: received {} bytes for {} bytes of entitled events = {ratio:.3}×; {} events arrived in batches",
        thousands(received as f64),
        thousands(entitled_bytes as f64),
        batch_events.load(Ordering::Relaxed)
    );
    println!(
        "scoped   a 300-byte-payload notice is {wire_per_event:.0} bytes signed on the wire, {json_per_event:.0} bytes as JSON ({:.2}×)",
        json_per_event / wire_per_event.max(1.0)
    );
    stop(&mut fed, [province, lanzhou, yongdeng, baiyin, county]).await;
    Ok(json!({
        "county_events": held,
        "province_events": total_events,
        "received_bytes": received,
        "entitled_bytes": entitled_bytes,
        "ratio": ratio,
        "wire_bytes_per_event": wire_per_event,
        "json_bytes_per_event": json_per_event,
    }))
}
