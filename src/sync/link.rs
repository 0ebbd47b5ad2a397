//! Establishing links: the child's dialing loop with backoff, and the parent's accept.
//! How a stream is opened is behind [`Connector`], so a simulation can replace tonic.
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{info, warn};

use super::{hello_for, run_session, Role, SyncSettings, PROTOCOL};
use crate::node::Node;
use crate::pb::{self, sync_frame::Kind as Frame};
use crate::tls::Transport;
use crate::{Error, Result};

pub type FrameStream =
    Pin<Box<dyn Stream<Item = std::result::Result<pb::SyncFrame, tonic::Status>> + Send>>;

/// Opens a sync stream to committee `peer` at an address: sends `outbound`, returns what
/// comes back. The connector authenticates the far end as `peer` (the TLS certificate).
pub trait Connector: Send + Sync + 'static {
    fn open(
        &self,
        peer: String,
        address: String,
        outbound: ReceiverStream<pb::SyncFrame>,
    ) -> Pin<Box<dyn Future<Output = Result<FrameStream>> + Send>>;
}

/// HTTP/2 flow-control window of a link's stream: how much may be in flight before the
/// receiver grants more. 4 MiB keeps a 200 ms county link at up to 20 MB/s; HTTP/2's default
/// 64 KiB would hold it to about 320 KiB/s (BENCHMARKS.md).
pub const STREAM_WINDOW_BYTES: u32 = 4 << 20;
/// The connection's window (a link is one stream, plus health checks).
pub const CONNECTION_WINDOW_BYTES: u32 = 8 << 20;

/// Largest gRPC message accepted on a sync stream.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The real thing: tonic over HTTP/2, with mutual TLS unless the node runs `--insecure`.
#[derive(Clone)]
pub struct TonicConnector {
    transport: Transport,
    /// The decoding and encoding limit of the stream (`[sync] max_message_kib`).
    max_message_bytes: usize,
}

impl TonicConnector {
    pub fn new(transport: Transport) -> TonicConnector {
        TonicConnector {
            transport,
            max_message_bytes: MAX_FRAME_BYTES,
        }
    }

    /// Another message size limit than the default 16 MiB.
    pub fn max_message_bytes(mut self, bytes: usize) -> TonicConnector {
        self.max_message_bytes = bytes;
        self
    }

    /// A channel to committee `peer` at `address`; with TLS, only if the far end's certificate
    /// is from the federation's CA and names `peer`.
    pub async fn channel(&self, peer: &str, address: &str) -> Result<tonic::transport::Channel> {
        let uri = self.transport.dial_uri(address);
        let mut endpoint = tonic::transport::Endpoint::from_shared(uri.clone())
            .map_err(|e| Error::Config(format!("parent address '{address}': {e}")))?
            .connect_timeout(Duration::from_secs(10))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            // As on the server (`server::start`): large windows, not HTTP/2's 64 KiB.
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES);
        if let Transport::Tls(tls) = &self.transport {
            endpoint = endpoint
                .tls_config(tls.client_config(peer))
                .map_err(|e| Error::Config(format!("TLS for {address}: {e}")))?;
        }
        endpoint.connect().await.map_err(|e| {
            let text = crate::error::chain(&e);
            Error::Transport(format!("{uri}: {text}{}", tls_hint(&text, peer)))
        })
    }
}

/// What a TLS failure while dialing `peer` most likely means, for the link's last error.
fn tls_hint(text: &str, peer: &str) -> String {
    let t = text.to_ascii_lowercase();
    if t.contains("notvalidforname") || t.contains("not valid for name") {
        format!(
            " (TLS: the node there is not {peer}: its certificate does not name {}; check [parent] code and address)",
            crate::tls::dns_name(peer)
        )
    } else if t.contains("unknownissuer")
        || t.contains("unknown issuer")
        || t.contains("badsignature")
    {
        " (TLS: its certificate is not from this federation's CA; check [tls] ca_cert)".into()
    } else if t.contains("certificate") || t.contains("alert") {
        " (TLS: the handshake failed; was this node's certificate issued by the parent's CA, and is it for this committee?)".into()
    } else {
        String::new()
    }
}

/// A gRPC status and its causes (a refused TLS handshake shows only there) on one line.
fn status_text(s: &tonic::Status) -> String {
    let mut out = s.message().to_string();
    if let Some(src) = std::error::Error::source(s) {
        let cause = crate::error::chain(src);
        if !out.contains(&cause) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&cause);
        }
    }
    if out.is_empty() {
        out = format!("{:?}", s.code());
    }
    out
}

impl Connector for TonicConnector {
    fn open(
        &self,
        peer: String,
        address: String,
        outbound: ReceiverStream<pb::SyncFrame>,
    ) -> Pin<Box<dyn Future<Output = Result<FrameStream>> + Send>> {
        let this = self.clone();
        Box::pin(async move {
            let channel = this.channel(&peer, &address).await?;
            let mut client = pb::federation_client::FederationClient::new(channel)
                .max_decoding_message_size(this.max_message_bytes)
                .max_encoding_message_size(this.max_message_bytes);
            let response = client.sync(outbound).await.map_err(|s| {
                let text = status_text(&s);
                Error::Transport(format!("{address}: {text}{}", tls_hint(&text, &peer)))
            })?;
            Ok(Box::pin(response.into_inner()) as FrameStream)
        })
    }
}

/// Keeps the link to the parent up until shutdown: dial, run the session, back off, redial.
pub async fn run_parent_link(
    node: Node,
    parent: String,
    address: String,
    connector: std::sync::Arc<dyn Connector>,
    settings: SyncSettings,
) {
    run_dialed_link(node, parent, address, Role::Parent, connector, settings).await
}

/// Keeps a lateral link up until shutdown (this node is the lower-numbered member, so it
/// dials): dial, run the session, back off, redial.
pub async fn run_peer_link(
    node: Node,
    peer: String,
    address: String,
    connector: std::sync::Arc<dyn Connector>,
    settings: SyncSettings,
) {
    run_dialed_link(node, peer, address, Role::Peer, connector, settings).await
}

async fn run_dialed_link(
    node: Node,
    parent: String,
    address: String,
    role: Role,
    connector: std::sync::Arc<dyn Connector>,
    settings: SyncSettings,
) {
    let mut shutdown = node.subscribe_shutdown();
    let mut backoff = Duration::from_millis(100);
    let max_backoff = Duration::from_secs(30);
    // A peer that stays unreachable for days must not fill the log: the same failure is
    // logged at warn once, then every 10 minutes; the retries between are at debug.
    let mut last_warned: Option<(String, tokio::time::Instant)> = None;
    node.update_link(&parent, |l| {
        l.role = role.name();
        l.address = address.clone();
        l.state = "connecting";
    });
    loop {
        if *shutdown.borrow() {
            return;
        }
        // tokio's clock (the real one, except under the simulation's paused time).
        let started = tokio::time::Instant::now();
        let mut established = None;
        match dial_once(
            &node,
            &parent,
            &address,
            role,
            connector.as_ref(),
            &settings,
            &mut established,
        )
        .await
        {
            Ok(()) => info!(me = node.code(), peer = %parent, role = role.name(), "link closed"),
            Err(e) => {
                let text = e.to_string();
                let repeat = last_warned
                    .as_ref()
                    .is_some_and(|(t, at)| *t == text && at.elapsed() < Duration::from_secs(600));
                if repeat {
                    tracing::debug!(me = node.code(), peer = %parent, role = role.name(), error = %e, "link failed again");
                } else {
                    warn!(me = node.code(), peer = %parent, role = role.name(), %address, error = %e, retry_in = ?backoff, "link failed; retrying with backoff");
                    last_warned = Some((text, tokio::time::Instant::now()));
                }
                node.update_link(&parent, |l| {
                    l.state = "disconnected";
                    l.last_error = e.to_string();
                });
            }
        }
        // A session that got going (Hellos exchanged) and ran for a second, or an attempt
        // that lasted a while, resets the backoff; quick failures grow it. (Counting only
        // attempts of 10 s made a parent that restarted a few times within minutes — each
        // session cut short by its next restart — keep its children waiting up to 30 s
        // before each redial although it was up again: found by tests/crash_federation.rs.)
        let ran = established
            .is_some_and(|at: tokio::time::Instant| at.elapsed() >= SESSION_RESETS_BACKOFF);
        if ran || started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(100);
            last_warned = None;
        }
        // Random unless the node was opened with the simulation's seams.
        let jitter = Duration::from_millis(node.random_below(backoff.as_millis() as u64 / 2 + 1));
        tokio::select! {
            // In order: tokio's unbiased select draws from an unseeded RNG, which would
            // make the simulation's single-threaded schedule differ from run to run.
            biased;
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(backoff + jitter) => {}
        }
        backoff = (backoff * 2).min(max_backoff);
        node.update_link(&parent, |l| l.state = "connecting");
    }
}

/// How long an established session must run before its end resets the dialer's backoff: a
/// peer that accepts and drops each session at once still gets exponential backoff.
const SESSION_RESETS_BACKOFF: Duration = Duration::from_secs(1);

/// One attempt: dial, exchange Hellos, run the session until it ends. `established` is set
/// to the moment the session started, once the peer's Hello checked out.
async fn dial_once(
    node: &Node,
    parent: &str,
    address: &str,
    role: Role,
    connector: &dyn Connector,
    settings: &SyncSettings,
    established: &mut Option<tokio::time::Instant>,
) -> Result<()> {
    let (tx, rx) = mpsc::channel(16);
    tx.send(super::frame(Frame::Hello(hello_for(node, parent)?)))
        .await
        .map_err(|_| Error::Shutdown)?;
    let mut inbound = connector
        .open(
            parent.to_string(),
            address.to_string(),
            ReceiverStream::new(rx),
        )
        .await?;
    let hello = match tokio::time::timeout(Duration::from_secs(15), inbound.next()).await {
        Err(_) => {
            return Err(Error::Transport(format!(
                "{address} sent no Hello within 15 s"
            )))
        }
        Ok(None) => {
            return Err(Error::Transport(format!(
                "{address} closed the stream before its Hello"
            )))
        }
        Ok(Some(Err(s))) => {
            let text = status_text(&s);
            return Err(Error::Transport(format!(
                "{address} refused the link: {text}{}",
                tls_hint(&text, parent)
            )));
        }
        Ok(Some(Ok(pb::SyncFrame {
            kind: Some(Frame::Hello(h)),
        }))) => h,
        Ok(Some(Ok(_))) => {
            return Err(Error::Malformed(format!(
                "{address} did not start with Hello"
            )))
        }
    };
    if hello.committee != parent {
        return Err(Error::Config(format!(
            "the node at {address} is committee {}, but the {} is configured as {parent}: check [{}] in the config",
            hello.committee,
            role.name(),
            if role == Role::Peer { "[peers]" } else { "parent" }
        )));
    }
    check_protocol(&hello)?;
    *established = Some(tokio::time::Instant::now());
    run_session(
        node.clone(),
        parent.to_string(),
        role,
        hello,
        tx,
        inbound,
        settings.clone(),
    )
    .await
}

fn check_protocol(hello: &pb::Hello) -> Result<()> {
    if hello.protocol != PROTOCOL {
        return Err(Error::Malformed(format!(
            "peer {} speaks sync protocol {}, this node speaks {PROTOCOL}: upgrade the older node",
            hello.committee, hello.protocol
        )));
    }
    Ok(())
}

/// The parent's side: checks the child's `Hello`, answers with ours, and runs the session in
/// the background. Returns the stream of frames to send back.
///
/// `certified` is the committee the caller's TLS certificate names (None only on a node
/// running `--insecure`): the Hello must claim that same committee, so that a node can speak
/// only for itself and receives only what its own subtree may see.
pub async fn accept_child<S>(
    node: Node,
    inbound: S,
    settings: SyncSettings,
    certified: Option<String>,
) -> std::result::Result<ReceiverStream<pb::SyncFrame>, tonic::Status>
where
    S: Stream<Item = std::result::Result<pb::SyncFrame, tonic::Status>> + Unpin + Send + 'static,
{
    accept_link(node, inbound, settings, certified, &Accept::default()).await
}

/// Who else than registered children a node accepts links from, and how the caller's
/// certificate was issued.
#[derive(Clone, Debug, Default)]
pub struct Accept {
    /// The lateral peers configured here (`[[peers]]`) that dial this node (their code is
    /// lower than ours).
    pub peers: Vec<String>,
    /// The caller's certificate (DER) and our TLS material, to check which CA issued it
    /// (None without TLS): a child must come with a certificate of our own CA, a lateral
    /// peer with one of its own federation's CA.
    pub certificate: Option<(std::sync::Arc<crate::tls::NodeTls>, Vec<u8>)>,
}

/// The accepting side of a link: a registered child, or a lateral peer that dials us.
pub async fn accept_link<S>(
    node: Node,
    mut inbound: S,
    settings: SyncSettings,
    certified: Option<String>,
    accept: &Accept,
) -> std::result::Result<ReceiverStream<pb::SyncFrame>, tonic::Status>
where
    S: Stream<Item = std::result::Result<pb::SyncFrame, tonic::Status>> + Unpin + Send + 'static,
{
    let hello = match tokio::time::timeout(Duration::from_secs(15), inbound.next()).await {
        Ok(Some(Ok(pb::SyncFrame {
            kind: Some(Frame::Hello(h)),
        }))) => h,
        Ok(Some(Err(s))) => return Err(s),
        Err(_) => return Err(tonic::Status::deadline_exceeded("no Hello within 15 s")),
        _ => {
            return Err(tonic::Status::invalid_argument(
                "a sync stream starts with Hello",
            ))
        }
    };
    let peer = hello.committee.clone();
    if let Some(cert) = &certified {
        if *cert != peer {
            warn!(me = node.code(), claimed = %peer, certificate = %cert, "refused a link: the Hello claims another committee than the TLS certificate");
            return Err(tonic::Status::permission_denied(format!(
                "the TLS certificate names committee {cert}, but the Hello claims {peer}: a node may only speak for the committee its certificate names"
            )));
        }
    }
    check_protocol(&hello).map_err(tonic::Status::from)?;
    let is_child = node.roster().parent_of(&peer) == Some(node.code());
    let is_peer = accept.peers.contains(&peer) && super::dials(&peer, node.code());
    let role = match (is_child, is_peer) {
        (true, _) => Role::Child,
        (false, true) => Role::Peer,
        (false, false) => {
            return Err(tonic::Status::permission_denied(format!(
                "{peer} is not a registered child of {} (register it first with `liandong committee register`) nor a lateral peer configured to dial it ([[peers]], the lower code dials)",
                node.code()
            )))
        }
    };
    if let Some((tls, der)) = &accept.certificate {
        let lateral = (role == Role::Peer).then_some(peer.as_str());
        if !tls.issued_by(der, lateral) {
            warn!(me = node.code(), %peer, role = role.name(), "refused a link: certificate from the wrong CA");
            return Err(tonic::Status::permission_denied(format!(
                "{peer}'s certificate was not issued by {}: a {} must present a certificate from {}",
                lateral.map_or("this federation's CA".to_string(), |c| format!("the CA configured for {c} ([[peers]] ca_cert)")),
                role.name(),
                if lateral.is_some() { "its own federation's CA" } else { "this federation's CA" },
            )));
        }
    }
    let (tx, rx) = mpsc::channel(16);
    let mine = hello_for(&node, &peer).map_err(tonic::Status::from)?;
    tx.send(super::frame(Frame::Hello(mine)))
        .await
        .map_err(|_| tonic::Status::unavailable("shutting down"))?;
    tokio::spawn(async move {
        if let Err(e) = run_session(node, peer.clone(), role, hello, tx, inbound, settings).await {
            // run_session has logged the link going down, with its reason.
            tracing::debug!(%peer, role = role.name(), error = %e, "link ended");
        }
    });
    Ok(ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::time::Instant;

    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::Level;
    use crate::node::{NodeSettings, Seams, WriterMode};
    use crate::store::memory::MemoryStorage;
    use crate::store::NodeStore;

    /// A link in memory to a parent whose connections end `life` after each dial (with an
    /// error, as when the parent's process is killed and comes straight back), or that
    /// cannot be reached at all (`life` None). Records when each dial came.
    struct Flaky {
        parent: Node,
        life: Option<Duration>,
        dials: Arc<Mutex<Vec<Instant>>>,
    }

    impl Connector for Flaky {
        fn open(
            &self,
            _peer: String,
            _address: String,
            outbound: ReceiverStream<pb::SyncFrame>,
        ) -> Pin<Box<dyn Future<Output = Result<FrameStream>> + Send>> {
            if let Ok(mut d) = self.dials.lock() {
                d.push(Instant::now());
            }
            let (parent, life) = (self.parent.clone(), self.life);
            Box::pin(async move {
                let life = life.ok_or_else(|| Error::Transport("connection refused".into()))?;
                let inbound = outbound.map(Ok::<_, tonic::Status>);
                let out = accept_child(parent, inbound, SyncSettings::default(), None)
                    .await
                    .map_err(|s| Error::Transport(s.message().to_string()))?;
                let cut = tokio::time::sleep(life);
                let reset = futures::stream::once(async {
                    Err(tonic::Status::unavailable("connection reset"))
                });
                Ok(Box::pin(out.map(Ok).take_until(cut).chain(reset)) as FrameStream)
            })
        }
    }

    fn open(code: &str, key: &ed25519_dalek::SigningKey, root: &ed25519_dalek::SigningKey) -> Node {
        let settings = NodeSettings {
            code: code.into(),
            root_code: "620000".into(),
            root_key: root.verifying_key(),
            max_clock_skew_ms: 300_000,
            max_group: 64,
        };
        let seams = Seams {
            writer: WriterMode::Task { before_sync: None },
            ..Seams::default()
        };
        let store = NodeStore::new(Arc::new(MemoryStorage::new()));
        Node::open_with(settings, key.clone(), store, Arc::new(SystemClock), seams).expect("open")
    }

    /// The gaps between one attempt's end and the next dial, over `run` of (paused) time.
    async fn redial_gaps(life: Option<Duration>, run: Duration) -> Vec<Duration> {
        let (province_key, city_key) = (crate::event::generate_key(), crate::event::generate_key());
        let province = open("620000", &province_key, &province_key);
        province
            .register_root("甘肃省政协", Level::Province)
            .await
            .expect("root");
        province
            .register_committee(
                "620100",
                "兰州市政协",
                &hex::encode(city_key.verifying_key().as_bytes()),
            )
            .await
            .expect("city");
        let city = open("620100", &city_key, &province_key);
        let dials = Arc::new(Mutex::new(Vec::new()));
        let connector = Arc::new(Flaky {
            parent: province.clone(),
            life,
            dials: dials.clone(),
        });
        let link = tokio::spawn(run_parent_link(
            city.clone(),
            "620000".into(),
            "mem://620000".into(),
            connector,
            SyncSettings::default(),
        ));
        tokio::time::sleep(run).await;
        city.halt();
        province.halt();
        link.abort();
        let dials = dials.lock().map(|d| d.clone()).unwrap_or_default();
        dials
            .windows(2)
            .map(|w| (w[1] - w[0]).saturating_sub(life.unwrap_or_default()))
            .collect()
    }

    /// Regression (tests/crash_federation.rs): a parent restarted again and again used to
    /// leave its children waiting longer and longer — up to 30 s — before each redial,
    /// because only attempts of 10 s reset the backoff.
    #[tokio::test(start_paused = true)]
    async fn a_session_that_ran_resets_the_backoff() {
        let gaps = redial_gaps(Some(Duration::from_secs(2)), Duration::from_secs(60)).await;
        assert!(
            gaps.len() >= 20,
            "only {} redials in 60 s: {gaps:?}",
            gaps.len()
        );
        for g in &gaps {
            assert!(
                *g <= Duration::from_millis(150),
                "the child waited {g:?} to redial a parent that was up: {gaps:?}"
            );
        }
    }

    /// And a parent that cannot be reached still gets exponential backoff, as does one that
    /// drops every session at once.
    #[tokio::test(start_paused = true)]
    async fn quick_failures_still_back_off() {
        for life in [None, Some(Duration::from_millis(200))] {
            let gaps = redial_gaps(life, Duration::from_secs(60)).await;
            assert!(
                (6..=12).contains(&gaps.len()),
                "{life:?}: {} redials in 60 s: {gaps:?}",
                gaps.len()
            );
            for w in gaps.windows(2) {
                assert!(
                    w[1] >= w[0] || w[1] >= Duration::from_secs(20),
                    "{life:?}: the backoff did not grow: {gaps:?}"
                );
            }
        }
    }
}
