//! The physical limits on this machine, measured by the same suite: what bounds the figures
//! of the other scenarios.
use std::io::Write;
use std::pin::Pin;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use futures::{Stream, StreamExt};
use rand::Rng;
use serde_json::{json, Value};
use tokio_stream::wrappers::ReceiverStream;

use super::{thousands, BenchArgs};
use crate::pb::{self, sync_frame::Kind as Frame};
use crate::store::log_engine::LogStorage;
use crate::store::sled_engine::SledStorage;
use crate::store::{Space, Storage, WriteBatch};
use crate::Result;

/// Runs `f` repeatedly for about `dur`; returns operations per second (f returns how many
/// operations it did).
fn rate(dur: Duration, mut f: impl FnMut() -> usize) -> f64 {
    let t0 = Instant::now();
    let mut n = 0usize;
    while t0.elapsed() < dur {
        n += f();
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

/// Records per second into `engine` in batches of 256 records of `value`, each batch synced
/// the way the node syncs; keys go on from `next_key`.
fn synced_batches_rate(
    engine: &dyn Storage,
    dur: Duration,
    value: &[u8],
    next_key: &mut u64,
) -> Result<f64> {
    let mut failed = None;
    let records = rate(dur, || {
        let mut b = WriteBatch::default();
        for _ in 0..256 {
            *next_key += 1;
            b.put(
                Space::Events,
                next_key.to_be_bytes().to_vec(),
                value.to_vec(),
            );
        }
        if let Err(e) = engine.commit(b).and_then(|_| engine.sync()) {
            failed = Some(e);
        }
        256
    });
    failed.map_or(Ok(records), Err)
}

pub async fn run(args: &BenchArgs) -> Result<Value> {
    let dur = if args.quick {
        Duration::from_millis(100)
    } else {
        Duration::from_millis(1500)
    };
    let cpu = tokio::task::spawn_blocking(move || cpu_limits(dur))
        .await
        .map_err(|e| crate::Error::Storage(e.to_string()))??;
    // The records already in the tree for sled's small-record figures.
    let tree_records: u64 = if args.quick { 5_000 } else { 100_000 };
    let disk = tokio::task::spawn_blocking(move || disk_limits(dur, tree_records))
        .await
        .map_err(|e| crate::Error::Storage(e.to_string()))??;
    let grpc = grpc_limit(if args.quick { 20_000 } else { 2_000_000 }).await?;
    let mut out = cpu;
    if let (Some(o), Value::Object(d)) = (out.as_object_mut(), disk) {
        o.extend(d);
        o.insert("grpc_loopback_events_per_s".into(), json!(grpc));
    }
    Ok(out)
}

fn cpu_limits(dur: Duration) -> Result<Value> {
    let key = crate::event::generate_key();
    let vk = key.verifying_key();
    let msgs: Vec<Vec<u8>> = (0..256)
        .map(|i| super::payload(i).into_bytes())
        .map(|mut m| {
            m.extend_from_slice(&[0u8; 100]); // an event's envelope around its payload
            m
        })
        .collect();
    let sigs: Vec<Signature> = msgs.iter().map(|m| key.sign(m)).collect();
    let mut i = 0usize;
    let verify = rate(dur, || {
        i = (i + 1) % msgs.len();
        usize::from(vk.verify(&msgs[i], &sigs[i]).is_ok())
    });
    let strict = rate(dur, || {
        i = (i + 1) % msgs.len();
        usize::from(vk.verify_strict(&msgs[i], &sigs[i]).is_ok())
    });
    let batch = batch_limit(&msgs, &sigs, &vk, dur);
    let raw: Vec<[u8; 64]> = sigs.iter().map(Signature::to_bytes).collect();
    let zip215 = rate(dur, || {
        i = (i + 1) % msgs.len();
        usize::from(crate::event::signature::verify_one(&vk, &msgs[i], &raw[i]))
    });
    // What a node's batch check costs: the signatures of one origin (a link's usual batch),
    // and of 16 origins mixed.
    let others: Vec<SigningKey> = (0..15).map(|_| crate::event::generate_key()).collect();
    let mixed_keys: Vec<VerifyingKey> = (0..msgs.len())
        .map(|i| match i % 16 {
            0 => vk,
            k => others[k - 1].verifying_key(),
        })
        .collect();
    let mixed_sigs: Vec<[u8; 64]> = (0..msgs.len())
        .map(|i| match i % 16 {
            0 => raw[i],
            k => others[k - 1].sign(&msgs[i]).to_bytes(),
        })
        .collect();
    let one_key = vec![vk; msgs.len()];
    let node_batch = node_batch_limit(&msgs, &raw, &one_key, dur);
    let node_batch_mixed = node_batch_limit(&msgs, &mixed_sigs, &mixed_keys, dur);
    let sha = rate(dur, || {
        for m in msgs.iter().take(64) {
            std::hint::black_box(crate::event::hash_of(&m[..300]));
        }
        64
    });
    let sign = rate(dur, || {
        i = (i + 1) % msgs.len();
        std::hint::black_box(key.sign(&msgs[i]));
        1
    });
    let shown = |r: Option<f64>| r.map(thousands).unwrap_or_else(|| "n/a".into());
    println!(
        "limits   ed25519 per core: sign {} /s; ed25519-dalek verify {} /s, verify_strict {} /s, verify_batch (256) {} /s; as nodes check (ZIP 215, ed25519-zebra): one {} /s, batches of 256 from one key {} /s, from 16 keys {} /s; SHA-256 of 300 bytes {} /s",
        thousands(sign),
        thousands(verify),
        thousands(strict),
        shown(batch),
        thousands(zip215),
        shown(node_batch),
        shown(node_batch_mixed),
        thousands(sha)
    );
    Ok(json!({
        "ed25519_verify_per_s": verify,
        "ed25519_verify_strict_per_s": strict,
        "ed25519_batch_verify_per_s": batch,
        "zip215_verify_per_s": zip215,
        "zip215_batch_one_key_per_s": node_batch,
        "zip215_batch_16_keys_per_s": node_batch_mixed,
        "ed25519_sign_per_s": sign,
        "sha256_300b_per_s": sha,
    }))
}

/// Batch verification of 256 signatures at a time, signatures per second.
fn batch_limit(
    msgs: &[Vec<u8>],
    sigs: &[Signature],
    vk: &ed25519_dalek::VerifyingKey,
    dur: Duration,
) -> Option<f64> {
    let m: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let keys = vec![*vk; msgs.len()];
    let mut ok = true;
    let r = rate(dur, || {
        ok &= ed25519_dalek::verify_batch(&m, sigs, &keys).is_ok();
        msgs.len()
    });
    ok.then_some(r)
}

/// The node's own batch check ([`crate::event::signature::verify_all`]) of 256 signatures at
/// a time, signatures per second.
fn node_batch_limit(
    msgs: &[Vec<u8>],
    sigs: &[[u8; 64]],
    keys: &[VerifyingKey],
    dur: Duration,
) -> Option<f64> {
    let mut ok = true;
    let r = rate(dur, || {
        ok &= crate::event::signature::verify_all(
            keys.iter()
                .zip(msgs)
                .zip(sigs)
                .map(|((k, m), s)| (k, m.as_slice(), s)),
        );
        msgs.len()
    });
    ok.then_some(r)
}

fn disk_limits(dur: Duration, spread: u64) -> Result<Value> {
    let dir = tempfile::Builder::new()
        .prefix("liandong-bench-")
        .tempdir()?;
    // A real fdatasync of a small write.
    let path = dir.path().join("fsync");
    let mut f = std::fs::File::create(&path)?;
    let fsync = rate(dur, || {
        let _ = f.write_all(&[7u8; 512]);
        let _ = f.sync_data();
        1
    });
    // Raw sled: batches of 256 records of an event's size (~460 bytes), each batch synced the
    // way the node syncs (flush + fdatasync of sled's log).
    let sled = SledStorage::open(&dir.path().join("sled"), 16 << 20)?;
    let value = vec![42u8; 460];
    let mut k = 0u64;
    let sled_rate = synced_batches_rate(&sled, dur, &value, &mut k)?;
    let mut failed = None;
    // The same, one record per sled batch (what one event per commit costs).
    let single_rate = rate(dur, || {
        for _ in 0..256 {
            k += 1;
            let mut b = WriteBatch::default();
            b.put(Space::Events, k.to_be_bytes().to_vec(), value.clone());
            let _ = sled.commit(b);
        }
        let _ = sled.sync();
        256
    });
    // Where in the tree a batch lands matters as much as how many records it has: the
    // node's log, frames and chains grow at the right edge of their keyspaces, but a
    // record's index entry and its state go wherever the record's id puts them. The same
    // batches, synced the same way, of small (48-byte) values at keys appended in order and
    // at random keys into a tree that already holds `spread` of them.
    let small = vec![42u8; 48];
    let appended = SledStorage::open(&dir.path().join("sled-appended"), 16 << 20)?;
    let scattered = SledStorage::open(&dir.path().join("sled-scattered"), 16 << 20)?;
    let mut rng = rand::thread_rng();
    // Both trees start with `spread` records, so neither pays for the other's preload.
    let (mut in_order, mut at_random) = (WriteBatch::default(), WriteBatch::default());
    for i in 0..spread {
        in_order.put(Space::State, i.to_be_bytes().to_vec(), small.clone());
        at_random.put(Space::State, rng.gen::<[u8; 17]>().to_vec(), small.clone());
    }
    appended.commit(in_order)?;
    appended.sync()?;
    scattered.commit(at_random)?;
    scattered.sync()?;
    let mut small_batches = |engine: &SledStorage, random: bool| {
        let mut next = spread;
        rate(dur, || {
            let mut b = WriteBatch::default();
            for _ in 0..256 {
                next += 1;
                let key = if random {
                    rng.gen::<[u8; 17]>().to_vec()
                } else {
                    next.to_be_bytes().to_vec()
                };
                b.put(Space::State, key, small.clone());
            }
            if let Err(e) = engine.commit(b).and_then(|_| engine.sync()) {
                failed = Some(e);
            }
            256
        })
    };
    let appended_rate = small_batches(&appended, false);
    let scattered_rate = small_batches(&scattered, true);
    if let Some(e) = failed {
        return Err(e);
    }
    // The log engine, the first row's batches: one record appended and one fdatasync each.
    let log = LogStorage::open(&dir.path().join("log"))?;
    let log_rate = synced_batches_rate(&log, dur, &value, &mut k)?;
    println!(
        "limits   fdatasync {} /s; sled: batches of 256 records, one sync each: {} records/s; one record per batch, a sync per 256: {} records/s",
        thousands(fsync),
        thousands(sled_rate),
        thousands(single_rate)
    );
    println!(
        "limits   sled, batches of 256 records of 48 bytes, one sync each: appended in key order {} records/s, at random keys {} records/s (trees of {} records)",
        thousands(appended_rate),
        thousands(scattered_rate),
        thousands(spread as f64)
    );
    println!(
        "limits   log engine: batches of 256 records, one sync each: {} records/s",
        thousands(log_rate)
    );
    Ok(json!({
        "log_batch256_records_per_s": log_rate,
        "fdatasync_per_s": fsync,
        "sled_batch256_records_per_s": sled_rate,
        "sled_single_records_per_s": single_rate,
        "sled_small_appended_records_per_s": appended_rate,
        "sled_small_scattered_records_per_s": scattered_rate,
        "sled_small_tree_records": spread,
    }))
}

/// A `Federation` service that only counts: each batch is answered with an Ack.
struct Sink;

type FrameOut =
    Pin<Box<dyn Stream<Item = std::result::Result<pb::SyncFrame, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl pb::federation_server::Federation for Sink {
    type SyncStream = FrameOut;

    async fn sync(
        &self,
        request: tonic::Request<tonic::Streaming<pb::SyncFrame>>,
    ) -> std::result::Result<tonic::Response<Self::SyncStream>, tonic::Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(Ok(f)) = inbound.next().await {
                if let Some(Frame::Batch(b)) = f.kind {
                    let ack = pb::SyncFrame {
                        kind: Some(Frame::Ack(pb::Ack {
                            batch_id: b.batch_id,
                            refused: 0,
                        })),
                    };
                    if tx.send(Ok(ack)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// One bidirectional stream on loopback (plaintext): batches of 256 events of a 300-byte
/// payload's size, each acknowledged; events per second.
async fn grpc_limit(events: usize) -> Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .initial_stream_window_size(Some(crate::sync::link::STREAM_WINDOW_BYTES))
            .initial_connection_window_size(Some(crate::sync::link::CONNECTION_WINDOW_BYTES))
            .add_service(
                pb::federation_server::FederationServer::new(Sink)
                    .max_decoding_message_size(crate::sync::link::MAX_FRAME_BYTES),
            )
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stop_rx.await;
                },
            ),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| crate::Error::Config(e.to_string()))?
        .initial_stream_window_size(crate::sync::link::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(crate::sync::link::CONNECTION_WINDOW_BYTES)
        .connect()
        .await
        .map_err(|e| crate::Error::Transport(e.to_string()))?;
    let mut client = pb::federation_client::FederationClient::new(channel)
        .max_encoding_message_size(crate::sync::link::MAX_FRAME_BYTES);
    let batches = events.div_ceil(256);
    let event = prost::Message::encode_to_vec(&pb::SignedEvent {
        event: vec![1u8; 400],
        signature: vec![2u8; 64],
    });
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let t0 = Instant::now();
    let producer = tokio::spawn(async move {
        for i in 0..batches {
            let b = pb::Batch {
                batch_id: i as u64 + 1,
                events: vec![event.clone(); 256],
                up_to: 0,
                backfill_complete_at: 0,
                sender_head: 0,
                sender_chain_seq: 0,
                sender_chain_hash: vec![],
            };
            if tx
                .send(pb::SyncFrame {
                    kind: Some(Frame::Batch(b)),
                })
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut acks = client
        .sync(ReceiverStream::new(rx))
        .await
        .map_err(|e| crate::Error::Transport(e.to_string()))?
        .into_inner();
    let mut got = 0usize;
    while got < batches {
        match acks.next().await {
            Some(Ok(_)) => got += 1,
            _ => break,
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let _ = producer.await;
    let _ = stop_tx.send(());
    let _ = server.await;
    let r = (got * 256) as f64 / secs;
    println!(
        "limits   one loopback gRPC stream (plaintext), batches of 256 events of {} bytes: {} events/s",
        prost::Message::encoded_len(&pb::SignedEvent {
            event: vec![1u8; 400],
            signature: vec![2u8; 64]
        }),
        thousands(r)
    );
    Ok(r)
}
