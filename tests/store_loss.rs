//! A county PC's disk dies; the county keeps its key (on a USB stick) and starts again with an
//! empty store. It must get its own earlier work back from its parent, continue its own chain
//! after the last event its parent holds (never reuse a sequence number, which would look
//! like equivocation), and its new work must reach the province although the city's cursor
//! for it points far into the old, lost log.
mod common;

use anyhow::Result;
use common::*;

fn reports_at(fed: &liandong::fixture::Federation, code: &str) -> Vec<String> {
    fed.node(code)
        .ok()
        .and_then(|n| n.report_list().ok())
        .map(|l| l.reports.into_iter().map(|r| r.title).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_that_lost_its_store_recovers_its_chain_and_its_work() -> Result<()> {
    let mut fed = gansu_federation(&[]).await?;
    let county = fed.node(JINGYUAN)?.clone();
    for i in 0..5 {
        county
            .send_report(PROVINCE, "public-opinion", &format!("旧报送 {i}"), "")
            .await?;
    }
    let own_before = county.store().own_chain()?.seq;
    wait(&fed, "the province to hold the five old reports", |f| {
        reports_at(f, PROVINCE).len() == 5
    })
    .await?;
    drop(county);

    // the disk dies: stop the node and delete its store, keep its key
    fed.stop(JINGYUAN).await;
    std::fs::remove_dir_all(fed.store_dir(JINGYUAN))?;
    fed.start(JINGYUAN).await?;

    // its own earlier reports come back from its parent
    wait(&fed, "the county to get its own old reports back", |f| {
        reports_at(f, JINGYUAN).len() == 5
    })
    .await?;
    let county = fed.node(JINGYUAN)?.clone();
    assert!(
        county.store().own_chain()?.seq >= own_before,
        "the chain continues after what the parent holds ({} < {own_before})",
        county.store().own_chain()?.seq
    );

    // new work continues the chain and reaches the province
    let r = county
        .send_report(PROVINCE, "public-opinion", "新报送", "")
        .await?;
    assert_eq!(
        r.seq,
        own_before + 1,
        "the next seq after the lost store's last"
    );
    wait(&fed, "the province to receive the new report", |f| {
        reports_at(f, PROVINCE).iter().any(|t| t == "新报送")
    })
    .await?;
    for code in [PROVINCE, BAIYIN] {
        let q = fed.node(code)?.quarantine_view()?;
        assert!(
            q.entries.is_empty(),
            "{code} refused nothing: {:?}",
            q.entries
        );
        assert!(
            fed.node(code)?.status()?.flagged.is_empty(),
            "nobody flagged at {code}"
        );
    }
    drop(county);
    fed.stop_all().await;
    Ok(())
}
