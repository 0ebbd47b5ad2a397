//! The city between the province and a county restarts while it relays a stream of notices:
//! the county still gets every one of them, exactly once. And a county that stores a burst of
//! notices from its city does not make the city write (and sync) a new cursor for each.
mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use tokio::sync::mpsc;
use uuid::Uuid;

const NOTICES: usize = 300;
/// The province pauses after this many notices until the city is down...
const PAUSE_DOWN: usize = 150;
/// ...and after this many until it has been started again.
const PAUSE_UP: usize = 225;

/// The guidance records 榆中县 holds.
fn held_at(fed: &liandong::fixture::Federation, at: &str) -> usize {
    fed.node(at)
        .ok()
        .and_then(|n| n.guidance_list().ok())
        .map(|l| l.guidance.len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn city_restarts_mid_relay() -> Result<()> {
    let mut fed = gansu_federation(&[]).await?;
    let province = fed.node(PROVINCE)?.clone();

    // The province sends 300 notices to 榆中县 alone, one after another; they can only
    // travel through 兰州市. It pauses twice so that some are sent while 兰州市 is down and
    // some while it comes back.
    let (paused_tx, mut paused) = mpsc::channel::<usize>(1);
    let (resume, mut resume_rx) = mpsc::channel::<()>(1);
    let sender = tokio::spawn(async move {
        let mut sent = Vec::with_capacity(NOTICES);
        for i in 0..NOTICES {
            if i == PAUSE_DOWN || i == PAUSE_UP {
                paused_tx.send(i).await?;
                resume_rx.recv().await.context("resume")?;
            }
            let r = province
                .send_guidance(&format!("致榆中县第{i}号通知"), "……", &[YUZHONG.into()])
                .await?;
            sent.push((event_of(&r), id_of(&r)));
        }
        anyhow::Ok(sent)
    });

    // Stop 兰州市 as soon as the notices are flowing through it to 榆中县.
    wait(&fed, "榆中县 to receive the first notices", |f| {
        held_at(f, YUZHONG) >= 20
    })
    .await?;
    fed.stop(LANZHOU).await;
    let at_stop = held_at(&fed, YUZHONG);
    eprintln!("兰州市 stopped with {at_stop} of {NOTICES} notices at 榆中县");
    assert!(at_stop < NOTICES);

    assert_eq!(paused.recv().await, Some(PAUSE_DOWN));
    resume.send(()).await?; // sent while 兰州市 is down
    assert_eq!(paused.recv().await, Some(PAUSE_UP));
    fed.start(LANZHOU).await?;
    resume.send(()).await?; // sent while 兰州市 reconnects and catches up
    let sent = sender.await??;
    assert_eq!(sent.len(), NOTICES);

    wait(&fed, "榆中县 to hold all 300 notices", |f| {
        held_at(f, YUZHONG) >= NOTICES
    })
    .await?;

    let yuzhong = fed.node(YUZHONG)?;
    let ids: BTreeSet<Uuid> = log_ids(yuzhong)?.into_iter().collect();
    for (event, record) in &sent {
        assert!(ids.contains(event), "榆中县 lacks notice event {event}");
        let g = guidance(&fed, YUZHONG, *record).expect("held");
        assert_eq!(g.record.issuer.as_deref(), Some(PROVINCE));
    }
    assert_eq!(yuzhong.guidance_list()?.guidance.len(), NOTICES);
    // Exactly once: each stored once, and nothing beyond what it is entitled to.
    let roster = fed.node(PROVINCE)?.roster().clone();
    let expected = entitled(&roster, &running_nodes(&fed), YUZHONG)?;
    assert_eq!(ids, expected);
    assert_eq!(assert_log_clean(yuzhong)?, expected.len());
    // The registrations of its lineage (the province, 兰州市, itself) and the notices:
    // nothing else was sent to it.
    assert_eq!(expected.len(), 3 + NOTICES);
    // The relay holds them once too, and its sibling county none of them.
    assert_log_clean(fed.node(LANZHOU)?)?;
    assert_eq!(held_at(&fed, LANZHOU), NOTICES);
    assert_eq!(held_at(&fed, YONGDENG), 0);
    assert_eq!(held_at(&fed, BAIYIN), 0);
    assert_nothing_quarantined(&fed)?;

    fed.stop_all().await;
    Ok(())
}

/// Counts the batches without events that a node sends up its parent link (besides the ones
/// that end a backfill, whose batch id is 0).
struct CountingEmptyBatchesUp {
    inner: Arc<dyn liandong::sync::Connector>,
    empty: Arc<AtomicU64>,
}

impl liandong::sync::Connector for CountingEmptyBatchesUp {
    fn open(
        &self,
        peer: String,
        address: String,
        outbound: tokio_stream::wrappers::ReceiverStream<liandong::pb::SyncFrame>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = liandong::Result<liandong::sync::link::FrameStream>>
                + Send,
        >,
    > {
        use futures::StreamExt;
        let (tx, rx) = mpsc::channel(64);
        let empty = self.empty.clone();
        tokio::spawn(async move {
            let mut outbound = outbound;
            while let Some(f) = outbound.next().await {
                if let Some(liandong::pb::sync_frame::Kind::Batch(b)) = &f.kind {
                    if b.events.is_empty() && b.batch_id > 0 {
                        empty.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if tx.send(f).await.is_err() {
                    return;
                }
            }
        });
        self.inner.open(
            peer,
            address,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )
    }
}

/// The notices a county gets from its city are nothing the city needs back; a county used
/// to tell it so at once, in an empty batch per notice, and the city wrote and synced its
/// cursor each time (BENCHMARKS.md, "Fan-out"). Now the county tells its city once its log is
/// quiet (or once a heartbeat), as a parent tells a child, unless its own chain moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_the_city_is_not_echoed_back_notice_by_notice() -> Result<()> {
    const BURST: usize = 30;
    init_tracing();
    let mut fed = liandong::fixture::Federation::new(liandong::fixture::gansu())?;
    let empty = Arc::new(AtomicU64::new(0));
    {
        let empty = empty.clone();
        fed.wrap_connector(
            YUZHONG,
            Arc::new(move |inner| {
                Arc::new(CountingEmptyBatchesUp {
                    inner,
                    empty: empty.clone(),
                }) as Arc<dyn liandong::sync::Connector>
            }),
        );
    }
    fed.bring_up(&[]).await?;
    let province = fed.node(PROVINCE)?.clone();
    // Settled: whatever the start-up sent up has gone.
    let first = id_of(&province.send_guidance("开始", "……", &[]).await?);
    wait_guidance(&fed, YUZHONG, first).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = empty.load(Ordering::Relaxed);
    let started = std::time::Instant::now();
    let mut last = first;
    for i in 0..BURST {
        last = id_of(
            &province
                .send_guidance(&format!("第{i}号通知"), "……", &[])
                .await?,
        );
    }
    wait_guidance(&fed, YUZHONG, last).await?;
    let during = empty.load(Ordering::Relaxed) - before;
    // One a heartbeat (2 s in the fixture) at most while the log is never quiet.
    let allowed = 1 + started.elapsed().as_secs() / 2;
    assert!(
        during <= allowed,
        "榆中县 sent its city {during} empty batches while it stored {BURST} notices \
         (at most {allowed} expected)"
    );
    // Once its log is quiet, the county still tells the city where it is.
    let told = async {
        while empty.load(Ordering::Relaxed) - before == during {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), told)
        .await
        .context("the county never told its city, once quiet, that its log moved on")?;
    fed.stop_all().await;
    Ok(())
}
