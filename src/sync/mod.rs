//! One link between two nodes.
//!
//! The child dials; both ends then run the same [`run_session`]: send `Hello` with the cursor
//! of what we hold from the peer, then concurrently
//! - **send**: walk the local log from the peer's cursor up to our *durable* head, keep what
//!   the peer is entitled to and did not send us itself, and ship it in batches; then tail
//!   the head and heartbeat when idle;
//! - **receive**: ingest each batch (verified, durable, with the cursor moved in the same
//!   step) and only then acknowledge it.
//!
//! Backfill: visibility can grow after the cursor passed an event (a committee registered
//! later, a roster entry that arrived late). Every registration bumps the node's roster
//! version; the receiver keeps, next to its cursor, the version at which the sender last
//! completed a backfill pass. When ours is newer, we re-walk the log up to the cursor and
//! re-send what is visible now; the receiver drops what it already holds. An interrupted
//! pass is redone on reconnect because the version is only recorded when it completes.
pub mod link;

pub use link::{run_parent_link, run_peer_link, Connector, TonicConnector};

use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::domain::audience;
use crate::node::Node;
use crate::pb::{self, sync_frame::Kind as Frame};
use crate::store::Cursor;
use crate::{Error, Result};

/// How long the log must be quiet before a link tells its peer, in an empty batch, that it
/// walked past events the peer may not see.
const QUIET_BEFORE_EMPTY_BATCH: Duration = Duration::from_millis(200);

/// Protocol version spoken here.
pub const PROTOCOL: u32 = 1;

/// Tunables of a link.
#[derive(Clone, Debug)]
pub struct SyncSettings {
    /// Most events in one batch.
    pub batch_events: usize,
    /// Most bytes of events in one batch.
    pub batch_bytes: usize,
    /// Heartbeat interval when idle; a peer silent for 3 intervals is dropped.
    pub heartbeat: Duration,
    /// Largest gRPC message of a link, either way (`[sync] max_message_kib`).
    pub max_message_bytes: usize,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            batch_events: 256,
            batch_bytes: 1 << 20,
            heartbeat: Duration::from_secs(5),
            max_message_bytes: link::MAX_FRAME_BYTES,
        }
    }
}

/// Which side of the tree the peer is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The peer is our parent.
    Parent,
    /// The peer is our child.
    Child,
    /// The peer is a member of a lateral group of ours, the root of another federation,
    /// linked directly (the lower-numbered of the two dials).
    Peer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Parent => "parent",
            Role::Child => "child",
            Role::Peer => "peer",
        }
    }
}

/// Which of two lateral peers dials the other: the lower-numbered.
pub fn dials(me: &str, peer: &str) -> bool {
    me < peer
}

pub fn frame(kind: Frame) -> pb::SyncFrame {
    pb::SyncFrame { kind: Some(kind) }
}

/// Our `Hello` to `peer`: where to resume.
pub fn hello_for(node: &Node, peer: &str) -> Result<pb::Hello> {
    let c = node.store().cursor(peer)?;
    let (your_chain_seq, your_chain_hash) = node
        .store()
        .last_of_origin(peer)?
        .map(|(s, h)| (s, h.to_vec()))
        .unwrap_or_default();
    Ok(pb::Hello {
        protocol: PROTOCOL,
        committee: node.code().to_string(),
        resume_from: c.position,
        roster_version: c.roster_version,
        log_id: node.store().store_id()?,
        resume_log_id: c.peer_log_id,
        your_chain_seq,
        your_chain_hash,
    })
}

/// What routing reads of a stored frame: its event's origin and audience, decoded straight
/// from the frame without the body or the signature (prost skips the fields it does not
/// list, and an embedded message is encoded as its bytes are: `SignedEvent.event` reads as a
/// `RouteHead`). The frame was verified when it was stored.
#[derive(Clone, PartialEq, prost::Message)]
struct RouteFrame {
    #[prost(message, optional, tag = "1")]
    event: Option<RouteHead>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RouteHead {
    #[prost(string, tag = "2")]
    origin: String,
    #[prost(message, optional, tag = "6")]
    audience: Option<pb::Audience>,
}

/// Whether an event of `origin` to `audience` (at a log entry) goes to `peer`.
fn entitled_to(
    node: &Node,
    role: Role,
    peer: &str,
    audience: &pb::audience::Kind,
    origin: &str,
) -> bool {
    let roster = node.roster();
    match role {
        Role::Child => audience::visible_within(&roster, audience, origin, peer),
        Role::Parent => audience::visible_outside(&roster, audience, origin, node.code()),
        // Only group events it may see: never a tree event of ours, nor one of another
        // member's tree (those never reach us anyway).
        Role::Peer => audience::lateral(&roster, audience, origin, peer),
    }
}

/// Reads the next batch for `peer` from the log after `from`, up to `until`.
/// Returns the events and the last log position looked at.
fn next_batch(
    node: &Node,
    role: Role,
    peer: &str,
    from: u64,
    until: u64,
    send_back_until: u64,
    settings: &SyncSettings,
) -> Result<(Vec<Vec<u8>>, u64)> {
    let mut events = Vec::new();
    let mut bytes = 0usize;
    let mut last = from;
    while last < until && events.len() < settings.batch_events && bytes < settings.batch_bytes {
        // Read about as many entries as the batch has room for: a peer entitled to
        // everything (a catch-up) takes them all, and what is read past a full batch is read
        // again for the next one. At least 64, so a peer that sees few events is not read
        // one entry at a time.
        let room = settings.batch_events.saturating_sub(events.len()).max(64);
        let want = ((until - last) as usize).min(room).min(1024);
        let entries = node.store().log_after(last, want)?;
        if entries.is_empty() {
            break;
        }
        for entry in entries {
            if entry.position > until {
                return Ok((events, last));
            }
            last = entry.position;
            if let Some(frame) = route(node, role, peer, &entry, send_back_until)? {
                bytes += frame.len();
                events.push(frame);
                if events.len() >= settings.batch_events || bytes >= settings.batch_bytes {
                    break;
                }
            }
        }
    }
    Ok((events, last))
}

/// The stored frame of the event at a log entry, if it goes to `peer`: not from `peer`
/// itself (unless at or before `send_back_until`), and entitled. It goes as it was stored.
fn route(
    node: &Node,
    role: Role,
    peer: &str,
    entry: &crate::store::node_store::LogEntry,
    send_back_until: u64,
) -> Result<Option<Vec<u8>>> {
    if entry.source.as_deref() == Some(peer) && entry.position > send_back_until {
        return Ok(None); // it came from there
    }
    let Some(frame) = node.store().event_frame(&entry.id)? else {
        return Ok(None);
    };
    let bad = |e: prost::DecodeError| Error::Storage(format!("stored event {}: {e}", entry.id));
    let head = <RouteFrame as prost::Message>::decode(frame.as_slice())
        .map_err(bad)?
        .event
        .unwrap_or_default();
    let Some(kind) = head.audience.as_ref().and_then(|a| a.kind.as_ref()) else {
        return Err(Error::Storage(format!(
            "stored event {} has no audience",
            entry.id
        )));
    };
    Ok(entitled_to(node, role, peer, kind, &head.origin).then_some(frame))
}

/// The next batch of a backfill pass over the late events only (`NodeStore::put_late`):
/// those after position `after` up to `until`. Returns the events and the last position
/// looked at (`after` when there are none left).
fn next_late_batch(
    node: &Node,
    role: Role,
    peer: &str,
    after: u64,
    until: u64,
    settings: &SyncSettings,
) -> Result<(Vec<Vec<u8>>, u64)> {
    let mut events = Vec::new();
    let mut bytes = 0usize;
    let mut last = after;
    for position in node.store().late_after(after, settings.batch_events)? {
        if position > until {
            break;
        }
        last = position;
        let Some(entry) = node.store().log_at(position)? else {
            continue;
        };
        if let Some(frame) = route(node, role, peer, &entry, 0)? {
            bytes += frame.len();
            events.push(frame);
            if bytes >= settings.batch_bytes {
                break;
            }
        }
    }
    Ok((events, last))
}

/// Runs one established link until the stream ends, the peer goes silent, or shutdown.
pub async fn run_session<S>(
    node: Node,
    peer: String,
    role: Role,
    peer_hello: pb::Hello,
    tx: mpsc::Sender<pb::SyncFrame>,
    mut inbound: S,
    settings: SyncSettings,
) -> Result<()>
where
    S: Stream<Item = std::result::Result<pb::SyncFrame, tonic::Status>> + Unpin + Send,
{
    info!(me = node.code(), %peer, role = role.name(), resume_from = peer_hello.resume_from, "link up");
    node.update_link(&peer, |l| {
        l.role = role.name();
        l.state = "connected";
        l.last_error.clear();
        l.last_seen_ms = node.now_ms();
        l.received_position = node.store().cursor(&peer).map(|c| c.position).unwrap_or(0);
        l.session_batches = 0;
        l.catching_up = None;
        // The peer holds what it says it holds: no lag until something new is sent.
        l.acked_position = l.acked_position.max(peer_hello.resume_from);
    });
    let peer_hello_log_id = peer_hello.log_id.clone();
    if peer_hello.your_chain_seq > 0 {
        if let Ok(hash) = <[u8; 32]>::try_from(peer_hello.your_chain_hash.as_slice()) {
            node.adopt_chain(peer_hello.your_chain_seq, hash).await?;
        }
    }
    let clock = crate::telemetry::BatchClock::default();
    let sender = tokio::spawn(send_loop(
        node.clone(),
        peer.clone(),
        role,
        peer_hello,
        tx.clone(),
        settings.clone(),
        clock.clone(),
    ));
    let mut shutdown = node.subscribe_shutdown();
    let silence = settings.heartbeat * 3;
    // On a multi-threaded runtime, received batches go through a stage of their own (checked,
    // then written and acknowledged in order) so that the signatures of one batch are checked
    // while the writer stores the one before. A single-threaded runtime (the simulation) takes
    // each batch in turn, here.
    let multi = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    let (stage, mut ingester) = if multi {
        let (stage_tx, stage_rx) = mpsc::channel::<Checking>(2);
        let task = tokio::spawn(ingest_stage(
            node.clone(),
            peer.clone(),
            tx.clone(),
            stage_rx,
        ));
        (Some(stage_tx), Some(task))
    } else {
        (None, None)
    };
    let result = loop {
        let next = tokio::select! {
            // In order: tokio's unbiased select draws from an unseeded RNG, which would
            // make the simulation's single-threaded schedule differ from run to run.
            biased;
            _ = shutdown.changed() => break Ok(()),
            r = finish_stage(&mut ingester), if ingester.is_some() => break r,
            n = tokio::time::timeout(silence, inbound.next()) => n,
        };
        let incoming = match next {
            Err(_) => break Err(Error::Transport(format!("{peer} silent for {silence:?}"))),
            Ok(None) => break Ok(()),
            Ok(Some(Err(status))) => {
                if let Some(refusal) = unreadable(&peer, &status) {
                    if let Err(e) = node.quarantine_message(&peer, refusal).await {
                        warn!(me = node.code(), %peer, error = %e, "could not quarantine an unreadable message");
                    }
                }
                break Err(Error::Transport(format!("{peer}: {}", status.message())));
            }
            Ok(Some(Ok(f))) => f,
        };
        node.update_link(&peer, |l| l.last_seen_ms = node.now_ms());
        match incoming.kind {
            Some(Frame::Batch(b)) => {
                let mut cursor = None;
                if b.up_to > 0 || b.backfill_complete_at > 0 {
                    let held = node.store().cursor(&peer)?;
                    // A cursor is only good for the store it was made against.
                    let held = if held.peer_log_id == peer_hello_log_id {
                        held
                    } else {
                        Cursor::default()
                    };
                    cursor = Some(Cursor {
                        position: held.position.max(b.up_to),
                        roster_version: held.roster_version.max(b.backfill_complete_at),
                        peer_log_id: peer_hello_log_id.clone(),
                        peer_chain_seq: held.peer_chain_seq,
                        peer_chain_hash: held.peer_chain_hash.clone(),
                    });
                    if let Some(c) = cursor.as_mut() {
                        if b.sender_chain_seq > c.peer_chain_seq && b.sender_chain_hash.len() == 32
                        {
                            c.peer_chain_seq = b.sender_chain_seq;
                            c.peer_chain_hash = b.sender_chain_hash.clone();
                        }
                    }
                }
                crate::telemetry::batch_received(&peer, &b.events);
                let received = Received {
                    n: b.events.len(),
                    cursor,
                    batch_id: b.batch_id,
                    up_to: b.up_to,
                    sender_head: b.sender_head,
                };
                match &stage {
                    // Signatures checked in batches on the blocking pool while the writer
                    // stores the batch before; the writer takes batches in order.
                    Some(stage) => {
                        let (n2, p2) = (node.clone(), peer.clone());
                        let checked = tokio::spawn(async move { n2.prepare(&p2, b.events).await });
                        if stage.send((checked, received)).await.is_err() {
                            break finish_stage(&mut ingester).await;
                        }
                    }
                    None => {
                        let items = node.prepare(&peer, b.events).await?;
                        if !ingest_received(&node, &peer, &tx, items, received).await? {
                            break Ok(());
                        }
                    }
                }
            }
            Some(Frame::Ack(a)) => {
                clock.acked(&peer, a.batch_id);
                node.update_link(&peer, |l| {
                    l.acked_position = l.acked_position.max(a.batch_id)
                })
            }
            Some(Frame::Heartbeat(h)) => node.update_link(&peer, |l| {
                l.peer_head = l.peer_head.max(h.sender_head);
                if let Ok(hash) = <[u8; 32]>::try_from(h.sender_chain_hash.as_slice()) {
                    if h.sender_chain_seq > l.peer_chain.map_or(0, |(s, _)| s) {
                        l.peer_chain = Some((h.sender_chain_seq, hash));
                    }
                }
            }),
            Some(Frame::Hello(_)) => {
                break Err(Error::Malformed(format!("{peer} sent a second Hello")))
            }
            None => break Err(Error::Malformed(format!("{peer} sent an empty frame"))),
        }
    };
    sender.abort();
    if let Some(t) = &ingester {
        t.abort();
    }
    node.update_link(&peer, |l| {
        l.state = "disconnected";
        if let Err(e) = &result {
            l.last_error = e.to_string();
        }
    });
    crate::telemetry::link_ended(&peer, role.name(), result.is_err());
    match &result {
        Ok(()) => {
            info!(me = node.code(), %peer, role = role.name(), reason = "stream closed or shutting down", "link down")
        }
        Err(e) => warn!(me = node.code(), %peer, role = role.name(), reason = %e, "link down"),
    }
    result
}

/// The refusal to quarantine for a message the stream's decoder could not read: over the
/// size limit (tonic says OUT_OF_RANGE) or not a protobuf `SyncFrame` (INTERNAL, "decode").
/// Other stream errors (a reset, a timeout) are the transport's, not the peer's input.
fn unreadable(peer: &str, status: &tonic::Status) -> Option<crate::domain::Refusal> {
    use crate::domain::Refusal;
    match status.code() {
        tonic::Code::OutOfRange => Some(Refusal::Malformed(format!(
            "{peer} sent a message over this link's size limit ([sync] max_message_kib): {}",
            status.message()
        ))),
        tonic::Code::Internal if status.message().contains("decode") => {
            Some(Refusal::Malformed(format!(
                "{peer} sent a message that is not a sync frame: {}",
                status.message()
            )))
        }
        _ => None,
    }
}

/// A received batch, apart from its events.
struct Received {
    n: usize,
    cursor: Option<Cursor>,
    batch_id: u64,
    up_to: u64,
    sender_head: u64,
}

/// How far (in positions of the peer's log) a peer must be ahead at the start of a session
/// for its catch-up to be logged and shown (`serve`'s progress).
pub const CATCH_UP_WORTH_LOGGING: u64 = 500;

/// A batch whose signatures are being checked.
type Checking = (
    tokio::task::JoinHandle<Result<Vec<crate::node::prepare::Prepared>>>,
    Received,
);

/// Stores a checked batch (durable, with the cursor), then acknowledges it. False when the
/// acknowledgement cannot be sent any more (the session is over).
async fn ingest_received(
    node: &Node,
    peer: &str,
    tx: &mpsc::Sender<pb::SyncFrame>,
    items: Vec<crate::node::prepare::Prepared>,
    mut r: Received,
) -> Result<bool> {
    let report = node.ingest_prepared(peer, items, r.cursor.take()).await?;
    acknowledge(node, peer, tx, report, r).await
}

/// Once a batch is durable: the link's figures, then the acknowledgement. False when it
/// cannot be sent any more (the session is over).
async fn acknowledge(
    node: &Node,
    peer: &str,
    tx: &mpsc::Sender<pb::SyncFrame>,
    report: crate::node::IngestReport,
    r: Received,
) -> Result<bool> {
    debug!(me = node.code(), %peer, n = r.n, ?report, up_to = r.up_to, "batch ingested");
    let now_ms = node.now_ms();
    let mut caught_up = None;
    node.update_link(peer, |l| {
        if l.session_batches == 0
            && r.sender_head.saturating_sub(l.received_position) >= CATCH_UP_WORTH_LOGGING
        {
            info!(me = node.code(), %peer, behind = r.sender_head - l.received_position, "catching up");
            l.catching_up = Some(crate::node::CatchUp {
                from: l.received_position,
                to: r.sender_head,
                started_ms: now_ms,
            });
        }
        l.session_batches += 1;
        l.peer_head = l.peer_head.max(r.sender_head);
        l.received_position = l.received_position.max(r.up_to);
        if let Some(c) = l.catching_up {
            if l.received_position >= c.to {
                l.catching_up = None;
                caught_up = Some(c);
            }
        }
    });
    if let Some(c) = caught_up {
        info!(
            me = node.code(),
            %peer,
            positions = c.to - c.from,
            seconds = format!("{:.1}", now_ms.saturating_sub(c.started_ms) as f64 / 1000.0),
            events_held = node.durable_head(),
            "caught up"
        );
    }
    Ok(tx
        .send(frame(Frame::Ack(pb::Ack {
            batch_id: r.batch_id,
            refused: report.refused,
        })))
        .await
        .is_ok())
}

/// Batches handed to the writer and not yet durable, per link: enough that the writer
/// finds the next waiting when it finishes one (and takes several into one sync), few
/// enough that a session that ends leaves little to redo.
const BATCHES_IN_THE_WRITER: usize = 3;

/// The writing stage of a pipelined session: batches in the order received, handed to the
/// writer without waiting for the one before to be durable (up to
/// [`BATCHES_IN_THE_WRITER`]), and acknowledged in that order once each is.
async fn ingest_stage(
    node: Node,
    peer: String,
    tx: mpsc::Sender<pb::SyncFrame>,
    mut batches: mpsc::Receiver<Checking>,
) -> Result<()> {
    type Pending = (
        tokio::sync::oneshot::Receiver<Result<crate::node::IngestReport>>,
        Received,
    );
    let (pending_tx, mut pending_rx) = mpsc::channel::<Pending>(BATCHES_IN_THE_WRITER - 1);
    let submit = async {
        while let Some((checking, mut received)) = batches.recv().await {
            let items = checking
                .await
                .map_err(|e| Error::Storage(format!("signature check task failed: {e}")))??;
            let durable = node
                .submit_prepared(&peer, items, received.cursor.take())
                .await?;
            if pending_tx.send((durable, received)).await.is_err() {
                break; // the acknowledgements stopped: the session is over
            }
        }
        Ok::<(), Error>(())
    };
    let acknowledge_all = async {
        while let Some((durable, received)) = pending_rx.recv().await {
            let report = durable.await.map_err(|_| Error::Shutdown)??;
            if !acknowledge(&node, &peer, &tx, report, received).await? {
                break;
            }
        }
        Ok::<(), Error>(())
    };
    // Both in this one task, so that aborting the stage stops both; the stage ends when
    // either does (the session is over, or storage failed).
    tokio::select! {
        r = submit => r,
        r = acknowledge_all => r,
    }
}

/// How the writing stage ended (waits for it; pending forever when there is none).
async fn finish_stage(stage: &mut Option<tokio::task::JoinHandle<Result<()>>>) -> Result<()> {
    match stage {
        Some(t) => {
            let r = t.await;
            *stage = None;
            r.map_err(|e| Error::Storage(format!("ingest stage failed: {e}")))?
        }
        None => std::future::pending().await,
    }
}

async fn send_loop(
    node: Node,
    peer: String,
    role: Role,
    peer_hello: pb::Hello,
    tx: mpsc::Sender<pb::SyncFrame>,
    settings: SyncSettings,
    clock: crate::telemetry::BatchClock,
) -> Result<()> {
    let mine = node.store().store_id()?;
    let replaced = !peer_hello.resume_log_id.is_empty() && peer_hello.resume_log_id != mine;
    if replaced {
        tracing::warn!(me = node.code(), %peer, "the peer's cursor is for another store of ours: sending everything again");
    }
    let (mut position, mut peer_roster_version) = if replaced {
        (0, 0)
    } else {
        (peer_hello.resume_from, peer_hello.roster_version)
    };
    // A full exchange (a new peer, or one whose store was replaced) includes what came from
    // the peer itself: it may have lost it.
    let send_back_until = if position == 0 {
        node.durable_head()
    } else {
        0
    };
    let mut head_rx = node.subscribe_head();
    let mut roster_rx = node.subscribe_roster();
    // Where we have walked the log to without finding anything for a child, not yet told to
    // it: told once the log is quiet for a moment, not at every new event here (a county
    // that sees one event in six would otherwise get five empty batches for it).
    let mut untold: Option<(u64, tokio::time::Instant)> = None;
    let tell_delay = settings.heartbeat.min(QUIET_BEFORE_EMPTY_BATCH);
    // The seq of our own chain head as last sent to this peer (batches toward a parent carry
    // it); none yet.
    let mut told_chain: Option<u64> = None;
    loop {
        let roster_version = *roster_rx.borrow_and_update();
        if roster_version > peer_roster_version {
            backfill(
                &node,
                role,
                &peer,
                position,
                roster_version,
                &tx,
                &settings,
                &clock,
            )
            .await?;
            peer_roster_version = roster_version;
        }
        let head = *head_rx.borrow_and_update();
        if position < head {
            let (events, last) = next_batch(
                &node,
                role,
                &peer,
                position,
                head,
                send_back_until,
                &settings,
            )?;
            position = last;
            if events.is_empty() {
                let since = untold.map_or_else(tokio::time::Instant::now, |(_, since)| since);
                untold = Some((last, since));
                // Toward a parent (or a lateral peer) a batch also carries our chain head,
                // which the parent cuts a revocation or rotation at: when that has moved since
                // we last told it, the batch goes at once. Otherwise it waits for a quiet log
                // as toward a child, so that a parent is not asked to write (and sync) a new
                // cursor for every event it sent us itself. A log that is never quiet still
                // moves the peer's cursor once a heartbeat.
                let chain_moved =
                    role != Role::Child && told_chain != Some(node.store().own_chain()?.seq);
                if chain_moved || since.elapsed() >= settings.heartbeat {
                    untold = None;
                    told_chain =
                        Some(send_empty_batch(&node, role, &peer, last, &tx, &clock).await?);
                }
                continue;
            }
            untold = None;
            told_chain =
                Some(send_batch(&node, role, &peer, last, events, head, &tx, &clock).await?);
            continue;
        }
        tokio::select! {
            // In order: tokio's unbiased select draws from an unseeded RNG, which would
            // make the simulation's single-threaded schedule differ from run to run.
            biased;
            r = head_rx.changed() => if r.is_err() { return Ok(()) },
            r = roster_rx.changed() => if r.is_err() { return Ok(()) },
            _ = tokio::time::sleep(tell_delay), if untold.is_some() => {
                if let Some((last, _)) = untold.take() {
                    told_chain =
                        Some(send_empty_batch(&node, role, &peer, last, &tx, &clock).await?);
                }
            }
            _ = tokio::time::sleep(settings.heartbeat) => {
                let (sender_chain_seq, sender_chain_hash) = chain_head_for(&node, role)?;
                told_chain = Some(sender_chain_seq);
                let hb = pb::Heartbeat {
                    sender_head: node.durable_head(),
                    sender_chain_seq,
                    sender_chain_hash,
                };
                tx.send(frame(Frame::Heartbeat(hb))).await.map_err(|_| Error::Shutdown)?;
            }
        }
    }
}

/// Tells the peer that our log holds nothing more for it up to `last`: an empty batch, which
/// moves its cursor (and, once acknowledged, our lag figure for it). Returns the seq of the
/// chain head it carried, as [`send_batch`].
async fn send_empty_batch(
    node: &Node,
    role: Role,
    peer: &str,
    last: u64,
    tx: &mpsc::Sender<pb::SyncFrame>,
    clock: &crate::telemetry::BatchClock,
) -> Result<u64> {
    let head = node.durable_head();
    send_batch(node, role, peer, last, Vec::new(), head, tx, clock).await
}

/// Our own chain head as a batch or heartbeat to a peer in `role` carries it: toward a parent
/// (or a lateral peer), where a parent cuts a revocation or rotation of our key. A child
/// never uses its parent's chain head, so batches down leave it out: 37 bytes less on every
/// batch to a county, a tenth of a one-notice batch (`liandong bench scoped`).
fn chain_head_for(node: &Node, role: Role) -> Result<(u64, Vec<u8>)> {
    if role == Role::Child {
        return Ok((0, Vec::new()));
    }
    let own = node.store().own_chain()?;
    Ok((own.seq, own.hash.map(|h| h.to_vec()).unwrap_or_default()))
}

/// Ships `events`, the peer's share of our log up to position `last`, with our head and our
/// own chain head where the peer needs it ([`chain_head_for`]); returns that head's seq (0
/// toward a child, which is not told it).
#[allow(clippy::too_many_arguments)]
async fn send_batch(
    node: &Node,
    role: Role,
    peer: &str,
    last: u64,
    events: Vec<Vec<u8>>,
    head: u64,
    tx: &mpsc::Sender<pb::SyncFrame>,
    clock: &crate::telemetry::BatchClock,
) -> Result<u64> {
    clock.sent(peer, last, &events);
    let (sender_chain_seq, sender_chain_hash) = chain_head_for(node, role)?;
    let batch = pb::Batch {
        batch_id: last,
        events,
        up_to: last,
        backfill_complete_at: 0,
        sender_head: head,
        sender_chain_seq,
        sender_chain_hash,
    };
    tx.send(frame(Frame::Batch(batch)))
        .await
        .map_err(|_| Error::Shutdown)?;
    Ok(sender_chain_seq)
}

/// Re-sends what the peer may see now among the events before its cursor.
#[allow(clippy::too_many_arguments)]
async fn backfill(
    node: &Node,
    role: Role,
    peer: &str,
    until: u64,
    roster_version: u64,
    tx: &mpsc::Sender<pb::SyncFrame>,
    settings: &SyncSettings,
    clock: &crate::telemetry::BatchClock,
) -> Result<()> {
    let mut from = 0;
    let mut sent = 0usize;
    // Only the late events, where the store marked them from the start; else the whole log.
    let late_only = node.store().late_indexed()?;
    while from < until {
        let (events, last) = if late_only {
            next_late_batch(node, role, peer, from, until, settings)?
        } else {
            next_batch(node, role, peer, from, until, 0, settings)?
        };
        if last == from {
            break;
        }
        from = last;
        if events.is_empty() {
            continue;
        }
        sent += events.len();
        clock.sent(peer, 0, &events);
        let (sender_chain_seq, sender_chain_hash) = chain_head_for(node, role)?;
        let batch = pb::Batch {
            batch_id: 0,
            events,
            up_to: 0,
            backfill_complete_at: 0,
            sender_head: node.durable_head(),
            sender_chain_seq,
            sender_chain_hash,
        };
        tx.send(frame(Frame::Batch(batch)))
            .await
            .map_err(|_| Error::Shutdown)?;
    }
    let (sender_chain_seq, sender_chain_hash) = chain_head_for(node, role)?;
    let done = pb::Batch {
        batch_id: 0,
        events: Vec::new(),
        up_to: 0,
        backfill_complete_at: roster_version,
        sender_head: node.durable_head(),
        sender_chain_seq,
        sender_chain_hash,
    };
    tx.send(frame(Frame::Batch(done)))
        .await
        .map_err(|_| Error::Shutdown)?;
    debug!(
        me = node.code(),
        peer, sent, roster_version, "backfill pass done"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_the_decoder_could_not_read_are_quarantined() {
        let over = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 17825792 bytes, the limit is: 16777216 bytes",
        );
        let refusal = unreadable("620123", &over).expect("an oversize message");
        assert!(refusal.to_string().contains("size limit"), "{refusal}");
        let garbage =
            tonic::Status::internal("failed to decode Protobuf message: invalid wire type");
        let refusal = unreadable("620123", &garbage).expect("not a frame");
        assert!(
            refusal.to_string().contains("not a sync frame"),
            "{refusal}"
        );
        for transport in [
            tonic::Status::unavailable("connection reset"),
            tonic::Status::cancelled("stream closed"),
            tonic::Status::internal("h2 protocol error"),
        ] {
            assert!(unreadable("620123", &transport).is_none(), "{transport}");
        }
    }
}
