//! The city between the province and a county restarts while it relays a stream of notices:
//! the county still gets every one of them, exactly once.
mod common;

use std::collections::BTreeSet;

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
