//! Mutual TLS on node-to-node links: a federation over mTLS works end to end; a peer is
//! refused when its certificate names another committee than its Hello claims, when its
//! certificate comes from another CA, or when it has none; and a dialing child refuses a
//! parent whose certificate names another committee than the one it is configured for.
mod common;

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use common::*;
use liandong::domain::Level;
use liandong::fixture::{Federation, Spec};
use liandong::pb::{self, sync_frame::Kind as Frame};
use liandong::tls::{dns_name, Authority, NodeTls, Transport};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

fn tls_of(fed: &Federation, code: &str) -> Result<NodeTls> {
    match fed.transport(code)? {
        Transport::Tls(t) => Ok(NodeTls::clone(&t)),
        Transport::Insecure => bail!("{code} has no certificate: the fixture runs plaintext"),
    }
}

fn hello(committee: &str) -> pb::SyncFrame {
    pb::SyncFrame {
        kind: Some(Frame::Hello(pb::Hello {
            protocol: liandong::sync::PROTOCOL,
            committee: committee.into(),
            resume_from: 0,
            roster_version: 0,
            ..Default::default()
        })),
    }
}

/// Opens a sync stream on `client` with a Hello claiming `claim`, and returns everything that
/// came back before the stream ended or 3 s of silence: frames, then the error if any.
async fn sync_as(
    client: &mut pb::federation_client::FederationClient<tonic::transport::Channel>,
    claim: &str,
) -> (Vec<pb::SyncFrame>, Option<tonic::Status>) {
    let (tx, rx) = mpsc::channel(4);
    if tx.send(hello(claim)).await.is_err() {
        return (vec![], None);
    }
    let mut inbound = match client.sync(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return (vec![], Some(s)),
    };
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(3), inbound.message()).await {
            Err(_) | Ok(Ok(None)) => return (frames, None),
            Ok(Ok(Some(f))) => frames.push(f),
            Ok(Err(s)) => return (frames, Some(s)),
        }
    }
}

/// Whether `at`'s node has a link to `peer` that is or was connected.
fn ever_connected(fed: &Federation, at: &str, peer: &str) -> Result<bool> {
    Ok(fed
        .node(at)?
        .links()
        .get(peer)
        .is_some_and(|l| l.state == "connected" || l.last_seen_ms > 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federation_over_mutual_tls_syncs_both_ways() -> Result<()> {
    let mut fed = gansu_federation(&[]).await?;
    ensure!(fed.is_tls(), "the fixture runs mutual TLS by default");
    let province = fed.node(PROVINCE)?.clone();
    let g = id_of(&province.send_guidance("全省通知", "……", &[]).await?);
    for c in ALL {
        wait_guidance(&fed, c, g).await?;
    }
    // Upwards too: a county's report reaches the province through its city.
    let r = id_of(
        &fed.node(HUINING)?
            .send_report(PROVINCE, "public-opinion", "会宁县社情民意", "……")
            .await?,
    );
    wait(&fed, "the province to receive 会宁县's report", |f| {
        report(f, PROVINCE, r).is_some()
    })
    .await?;
    // Every link is up, with no error.
    for c in ALL {
        for (peer, l) in fed.node(c)?.links() {
            ensure!(
                l.state == "connected" && l.last_error.is_empty(),
                "{c} ↔ {peer}: {} {}",
                l.state,
                l.last_error
            );
        }
    }
    assert_nothing_quarantined(&fed)?;
    fed.stop_all().await;
    Ok(())
}

/// 榆中县 620123 is registered but its node runs with 永登县 620121's certificate: 兰州市
/// refuses the link (the Hello claims 620123), and 榆中县 receives nothing. A raw client with
/// 620121's certificate claiming 620123 is refused before any frame, while the same client
/// claiming 620121 (the truth) is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_committee_is_refused_and_gets_nothing() -> Result<()> {
    let mut fed = gansu_federation(&[YUZHONG]).await?;
    let yongdeng_tls = tls_of(&fed, YONGDENG)?;

    // A raw peer: 永登县's certificate, a Hello claiming 榆中县.
    let mut client = fed.federation_client(LANZHOU, YONGDENG).await?;
    let (frames, status) = sync_as(&mut client, YUZHONG).await;
    ensure!(frames.is_empty(), "the impostor received {frames:?}");
    let status = status.context("the impostor's stream was not refused")?;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("names committee 620121")
            && status.message().contains("claims 620123"),
        "the refusal names the mismatch: {}",
        status.message()
    );
    // The same certificate, honest about who it is: served (Hello, then batches).
    let mut client = fed.federation_client(LANZHOU, YONGDENG).await?;
    let (frames, status) = sync_as(&mut client, YONGDENG).await;
    ensure!(status.is_none(), "the honest peer was refused: {status:?}");
    match frames.first() {
        Some(pb::SyncFrame {
            kind: Some(Frame::Hello(h)),
        }) => assert_eq!(h.committee, LANZHOU),
        other => bail!("兰州市 did not answer with its Hello: {other:?}"),
    }

    // A real node with the wrong certificate.
    fed.set_tls(YUZHONG, yongdeng_tls)?;
    fed.start(YUZHONG).await?;
    wait(
        &fed,
        "榆中县's link to be refused for its certificate",
        |f| {
            f.node(YUZHONG)
                .map(|n| {
                    n.links()
                        .get(LANZHOU)
                        .is_some_and(|l| l.last_error.contains("names committee 620121"))
                })
                .unwrap_or(false)
        },
    )
    .await?;
    let link = fed.node(YUZHONG)?.links()[LANZHOU].clone();
    assert_ne!(link.state, "connected", "{link:?}");
    assert!(
        !ever_connected(&fed, YUZHONG, LANZHOU)?,
        "the link never came up"
    );
    assert!(
        log_ids(fed.node(YUZHONG)?)?.is_empty(),
        "榆中县 received nothing, not even its registration"
    );
    assert!(
        !ever_connected(&fed, LANZHOU, YUZHONG)?,
        "兰州市 never ran a session with it"
    );

    // With its own certificate, it is let in and catches up.
    fed.stop(YUZHONG).await;
    let own = fed
        .ca()
        .context("the fixture has a CA")?
        .issue(YUZHONG, 1)?
        .to_node_tls()?;
    fed.set_tls(YUZHONG, own)?;
    fed.start(YUZHONG).await?;
    wait(&fed, "榆中县 to receive its registration", |f| {
        f.node(YUZHONG)
            .map(|n| n.roster().get(YUZHONG).is_some())
            .unwrap_or(false)
    })
    .await?;
    assert_nothing_quarantined(&fed)?;
    fed.stop_all().await;
    Ok(())
}

/// A client certificate from another CA, no client certificate at all, and plaintext: all
/// refused at the transport, before any Hello is read; 兰州市 never runs a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_a_certificate_from_the_federation_ca_are_refused() -> Result<()> {
    let mut fed = gansu_federation(&[YUZHONG]).await?;
    let address = fed.running(LANZHOU)?.federation_addr;
    let ca_pem = fed
        .ca()
        .context("the fixture has a CA")?
        .cert_pem()
        .to_string();

    // Trusts the real CA (so the client accepts 兰州市), presents a 榆中县 certificate that
    // a foreign CA issued.
    let foreign = Authority::generate("not this federation", 1)?.issue(YUZHONG, 1)?;
    let with_foreign = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca_pem))
        .identity(Identity::from_pem(&foreign.cert_pem, &foreign.key_pem))
        .domain_name(dns_name(LANZHOU));
    let without_cert = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca_pem))
        .domain_name(dns_name(LANZHOU));
    for (what, config) in [
        ("a certificate from another CA", Some(with_foreign)),
        ("no client certificate", Some(without_cert)),
        ("plaintext", None),
    ] {
        let outcome = async {
            let endpoint = match &config {
                Some(c) => {
                    Endpoint::from_shared(format!("https://{address}"))?.tls_config(c.clone())?
                }
                None => Endpoint::from_shared(format!("http://{address}"))?,
            };
            let channel = endpoint
                .connect_timeout(Duration::from_secs(5))
                .connect()
                .await?;
            let mut client = pb::federation_client::FederationClient::new(channel);
            let (frames, status) = sync_as(&mut client, YUZHONG).await;
            anyhow::Ok((frames, status))
        }
        .await;
        match outcome {
            Err(e) => eprintln!("{what}: refused at connect: {e:#}"),
            Ok((frames, status)) => {
                ensure!(frames.is_empty(), "{what}: received {frames:?}");
                let s = status.with_context(|| format!("{what}: the stream was not refused"))?;
                eprintln!("{what}: refused: {:?} {}", s.code(), s.message());
            }
        }
    }
    assert!(
        !ever_connected(&fed, LANZHOU, YUZHONG)?,
        "兰州市 never ran a session with 榆中县"
    );
    assert!(quarantine(&fed, LANZHOU)?.is_empty());

    // A whole node whose CA is another one (for its certificate and its trust) gets nowhere:
    // it refuses 兰州市's certificate, and 兰州市 would refuse its own.
    let stranger = Authority::generate("strangers", 1)?
        .issue(YUZHONG, 1)?
        .to_node_tls()?;
    fed.set_tls(YUZHONG, stranger)?;
    fed.start(YUZHONG).await?;
    wait(&fed, "榆中县's link to fail on the certificate", |f| {
        f.node(YUZHONG)
            .map(|n| {
                n.links()
                    .get(LANZHOU)
                    .is_some_and(|l| l.last_error.contains("TLS"))
            })
            .unwrap_or(false)
    })
    .await?;
    assert!(log_ids(fed.node(YUZHONG)?)?.is_empty());
    fed.stop_all().await;
    Ok(())
}

/// The province's node presents a certificate for 白银市 620400 (from the right CA): 兰州市,
/// configured with parent 620000, refuses it during the handshake and says why in its link's
/// last error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_refuses_a_parent_whose_certificate_names_another_committee() -> Result<()> {
    init_tracing();
    let mut fed = Federation::new(vec![
        Spec::new(PROVINCE, "甘肃省政协", None),
        Spec::new(LANZHOU, "兰州市政协", Some(PROVINCE)),
    ])?;
    let wrong = fed
        .ca()
        .context("the fixture has a CA")?
        .issue(BAIYIN, 1)?
        .to_node_tls()?;
    fed.set_tls(PROVINCE, wrong)?;
    fed.start(PROVINCE).await?;
    let province = fed.node(PROVINCE)?.clone();
    province
        .register_root("甘肃省政协", Level::implied_by(PROVINCE))
        .await?;
    let key = hex::encode(fed.key(LANZHOU)?.verifying_key().as_bytes());
    province
        .register_committee(LANZHOU, "兰州市政协", &key)
        .await?;
    fed.start(LANZHOU).await?;
    wait(
        &fed,
        "兰州市 to refuse the province's certificate",
        |f| {
            f.node(LANZHOU)
                .map(|n| {
                    n.links().get(PROVINCE).is_some_and(|l| {
                        l.last_error.contains("not 620000")
                            && l.last_error.contains("c620000.liandong")
                    })
                })
                .unwrap_or(false)
        },
    )
    .await?;
    let link = fed.node(LANZHOU)?.links()[PROVINCE].clone();
    eprintln!(
        "兰州市's link to the province: {} — {}",
        link.state, link.last_error
    );
    assert_ne!(link.state, "connected");
    assert!(!ever_connected(&fed, LANZHOU, PROVINCE)?);
    assert!(!ever_connected(&fed, PROVINCE, LANZHOU)?);
    assert!(
        log_ids(fed.node(LANZHOU)?)?.is_empty(),
        "兰州市 took nothing from a node that is not its parent"
    );
    fed.stop_all().await;
    Ok(())
}

/// Plaintext stays available to the fixture when asked for explicitly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_federation_runs_only_when_asked_for() -> Result<()> {
    init_tracing();
    let mut fed = Federation::new_insecure(vec![
        Spec::new(PROVINCE, "甘肃省政协", None),
        Spec::new(LANZHOU, "兰州市政协", Some(PROVINCE)),
    ])?;
    ensure!(!fed.is_tls());
    fed.bring_up(&[]).await?;
    let g = id_of(&fed.node(PROVINCE)?.send_guidance("通知", "……", &[]).await?);
    wait_guidance(&fed, LANZHOU, g).await?;
    fed.stop_all().await;
    Ok(())
}
