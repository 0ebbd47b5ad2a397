//! The simulated network: a [`Connector`] whose streams are channels between the nodes of
//! one process, with faults applied per direction of each link.
//!
//! A connection is two pipes (child → parent, parent → child; on a lateral link, dialer →
//! peer and back: the roots of two federations, `Role::Peer` on both ends). A pipe keeps the order of
//! the frames it carries, as HTTP/2 over TCP does, and adds to each frame the link's latency
//! and jitter. On top of that it may (see [`Faults`]):
//! - hold frames while its direction is *clogged* (a partition: TCP keeps retransmitting;
//!   if the clog outlasts the peers' patience, their silence timeout drops the session and
//!   the held frames go with the connection);
//! - deliver a batch twice in a row, or deliver a copy of it again after one to three later
//!   frames (a stale batch overtaken by newer ones — what a resent batch from an earlier
//!   session looks like to the receiver);
//! - add forged or unauthorized events to a batch (a relay or a man in the middle);
//! - be reset (both ends see an error) or half-closed: the child's end fails at once and it
//!   redials, while the parent's end keeps receiving the frames already in flight, after a
//!   stall, so that two sessions of one link overlap at the parent.
//!
//! It never reorders original frames of one stream, nor drops one and delivers later ones:
//! no real stream does, and the protocol relies on it (a batch's `up_to` covers everything
//! sent before it on that stream). See docs/architecture.md, "Deterministic simulation".
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use futures::{Stream, StreamExt};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::clock::EPOCH_MS;
use super::Trace;
use crate::event::hlc::LOGICAL_BITS;
use crate::node::Node;
use crate::pb::{self, sync_frame::Kind as Frame};
use crate::sync::link::{accept_link, Accept, Connector, FrameStream};
use crate::sync::SyncSettings;
use crate::{Error, Result};

/// What happened to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kill {
    Alive,
    /// Both ends see an error now; frames in flight are lost.
    Reset,
    /// The child's end fails now; the parent's end still gets what was in flight.
    HalfOpen,
}

/// Probabilities of the per-frame faults (0.0 switches one off).
#[derive(Clone, Debug)]
pub struct Faults {
    /// A batch delivered twice in a row.
    pub duplicate: f64,
    /// A copy of a batch delivered again after 1–3 later frames.
    pub replay: f64,
    /// A forged or unauthorized event added to a batch.
    pub inject: f64,
}

impl Faults {
    pub fn none() -> Faults {
        Faults {
            duplicate: 0.0,
            replay: 0.0,
            inject: 0.0,
        }
    }
}

/// Counters of what the network did.
#[derive(Clone, Debug, Default)]
pub struct NetStats {
    pub dials: u64,
    pub refused: u64,
    pub connections: u64,
    pub resets: u64,
    pub half_open: u64,
    pub frames: u64,
    pub duplicates: u64,
    pub replays: u64,
    pub injected: u64,
}

pub use crate::invariants::Injected;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// Child to parent.
    Up,
    /// Parent to child.
    Down,
}

struct Conn {
    child: String,
    parent: String,
    kill: Arc<watch::Sender<Kill>>,
}

struct NetInner {
    rng: StdRng,
    /// The nodes that accept connections now.
    up: BTreeMap<String, Node>,
    /// Directed links (from, to) whose frames are held.
    clogged: BTreeSet<(String, String)>,
    /// Per directed link: base latency and jitter, in ms.
    latency: BTreeMap<(String, String), (u64, u64)>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    faults: Faults,
    /// Every committee's real key (to sign unauthorized events) and the codes to forge for.
    keys: BTreeMap<String, SigningKey>,
    /// The root of each committee's federation.
    roots: BTreeMap<String, String>,
    /// Per accepting root: the lateral peers configured to dial it (`[[peers]]`).
    peers: BTreeMap<String, Vec<String>>,
    injected: Injected,
    forged_seq: u64,
    stats: NetStats,
}

/// The simulated network of one run.
pub struct Net {
    inner: Mutex<NetInner>,
    /// Bumped whenever the set of clogged links changes.
    clog: watch::Sender<u64>,
    settings: SyncSettings,
    trace: Trace,
}

const DEFAULT_LATENCY: (u64, u64) = (5, 20);

impl Net {
    pub fn new(
        seed: u64,
        settings: SyncSettings,
        faults: Faults,
        keys: BTreeMap<String, SigningKey>,
        trace: Trace,
    ) -> Arc<Net> {
        let roots = keys
            .keys()
            .map(|c| (c.clone(), super::root_of(c).unwrap_or(c).to_string()))
            .collect();
        let mut peers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (low, high) in super::LATERAL {
            peers
                .entry(high.to_string())
                .or_default()
                .push(low.to_string());
        }
        Arc::new(Net {
            inner: Mutex::new(NetInner {
                rng: StdRng::seed_from_u64(seed),
                up: BTreeMap::new(),
                clogged: BTreeSet::new(),
                latency: BTreeMap::new(),
                conns: BTreeMap::new(),
                next_conn: 0,
                faults,
                keys,
                roots,
                peers,
                injected: Injected::default(),
                forged_seq: 1_000_000,
                stats: NetStats::default(),
            }),
            clog: watch::channel(0).0,
            settings,
            trace,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NetInner> {
        // ok: the simulation's own state; a panic while holding it already failed the run.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> NetStats {
        self.lock().stats.clone()
    }

    pub fn injected(&self) -> Injected {
        self.lock().injected.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// The node accepts connections from now on.
    pub fn set_up(&self, code: &str, node: Node) {
        self.lock().up.insert(code.to_string(), node);
    }

    /// The node is gone: it accepts nothing, and every connection it has is reset.
    pub fn set_down(&self, code: &str) {
        let mut g = self.lock();
        g.up.remove(code);
        let ids: Vec<u64> = g
            .conns
            .iter()
            .filter(|(_, c)| c.child == code || c.parent == code)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(c) = g.conns.remove(&id) {
                c.kill.send_replace(Kill::Reset);
            }
        }
    }

    pub fn clog(&self, from: &str, to: &str) {
        self.lock()
            .clogged
            .insert((from.to_string(), to.to_string()));
        self.clog.send_modify(|v| *v += 1);
    }

    pub fn unclog(&self, from: &str, to: &str) {
        self.lock()
            .clogged
            .remove(&(from.to_string(), to.to_string()));
        self.clog.send_modify(|v| *v += 1);
    }

    pub fn unclog_all(&self) {
        self.lock().clogged.clear();
        self.clog.send_modify(|v| *v += 1);
    }

    pub fn clogged(&self) -> Vec<(String, String)> {
        self.lock().clogged.iter().cloned().collect()
    }

    fn is_clogged(&self, from: &str, to: &str) -> bool {
        self.lock()
            .clogged
            .contains(&(from.to_string(), to.to_string()))
    }

    /// Base latency and jitter (ms) of one direction of a link.
    pub fn set_latency(&self, from: &str, to: &str, base_ms: u64, jitter_ms: u64) {
        self.lock()
            .latency
            .insert((from.to_string(), to.to_string()), (base_ms, jitter_ms));
    }

    pub fn reset_latencies(&self) {
        self.lock().latency.clear();
    }

    fn delay(&self, from: &str, to: &str) -> Duration {
        let mut g = self.lock();
        let (base, jitter) = g
            .latency
            .get(&(from.to_string(), to.to_string()))
            .copied()
            .unwrap_or(DEFAULT_LATENCY);
        let j = if jitter == 0 {
            0
        } else {
            g.rng.gen_range(0..=jitter)
        };
        Duration::from_millis(base + j)
    }

    fn roll(&self, p: impl Fn(&Faults) -> f64) -> bool {
        let mut g = self.lock();
        let p = p(&g.faults);
        p > 0.0 && g.rng.gen_bool(p.min(1.0))
    }

    fn gen_range(&self, range: std::ops::Range<u64>) -> u64 {
        self.lock().rng.gen_range(range)
    }

    /// Ends one live connection, if any (chosen at random): reset or half-open.
    pub fn kill_random(&self, half_open: bool) -> Option<(u64, String, String)> {
        let mut g = self.lock();
        g.conns.retain(|_, c| Arc::strong_count(&c.kill) > 1);
        if g.conns.is_empty() {
            return None;
        }
        let n = g.conns.len();
        let i = g.rng.gen_range(0..n);
        let id = *g.conns.keys().nth(i)?;
        let c = g.conns.remove(&id)?;
        if half_open {
            g.stats.half_open += 1;
            c.kill.send_replace(Kill::HalfOpen);
        } else {
            g.stats.resets += 1;
            c.kill.send_replace(Kill::Reset);
        }
        Some((id, c.child, c.parent))
    }

    /// Dials `peer` for `me`: the simulated [`Connector::open`].
    async fn open(
        self: Arc<Self>,
        me: String,
        peer: String,
        outbound: ReceiverStream<pb::SyncFrame>,
    ) -> Result<FrameStream> {
        self.lock().stats.dials += 1;
        tokio::time::sleep(self.delay(&me, &peer)).await;
        let (target, peers) = {
            let g = self.lock();
            (
                g.up.get(&peer).cloned(),
                g.peers.get(&peer).cloned().unwrap_or_default(),
            )
        };
        let Some(target) = target else {
            tokio::time::sleep(self.delay(&peer, &me)).await;
            self.lock().stats.refused += 1;
            self.trace
                .line(format!("dial {me}->{peer}: refused (down)"));
            return Err(Error::Transport(format!(
                "{peer}: connection refused (simulated)"
            )));
        };
        if self.is_clogged(&me, &peer) || self.is_clogged(&peer, &me) {
            let wait = self.gen_range(1000..5000);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            self.lock().stats.refused += 1;
            self.trace
                .line(format!("dial {me}->{peer}: timed out (partition)"));
            return Err(Error::Transport(format!(
                "{peer}: connect timed out (simulated partition)"
            )));
        }
        let (id, kill) = {
            let mut g = self.lock();
            let id = g.next_conn;
            g.next_conn += 1;
            g.stats.connections += 1;
            let kill = Arc::new(watch::channel(Kill::Alive).0);
            g.conns.insert(
                id,
                Conn {
                    child: me.clone(),
                    parent: peer.clone(),
                    kill: kill.clone(),
                },
            );
            (id, kill)
        };
        self.trace.line(format!("conn #{id} {me}->{peer} open"));
        let (up_tx, up_rx) = mpsc::channel(64);
        tokio::spawn(pipe(
            self.clone(),
            me.clone(),
            peer.clone(),
            Dir::Up,
            outbound,
            up_tx,
            kill.clone(),
        ));
        // The acceptor's side as `serve` runs it: its registered children, and the lateral
        // peers its `[[peers]]` name (the certificate checks are the TLS tests' business).
        let accept = Accept {
            peers,
            certificate: None,
        };
        match accept_link(
            target,
            ReceiverStream::new(up_rx),
            self.settings.clone(),
            Some(me.clone()),
            &accept,
        )
        .await
        {
            Err(status) => {
                kill.send_replace(Kill::Reset);
                self.trace.line(format!(
                    "conn #{id} {me}->{peer} refused: {}",
                    status.message()
                ));
                Err(Error::Transport(format!(
                    "{peer} refused the link: {}",
                    status.message()
                )))
            }
            Ok(down) => {
                let (down_tx, down_rx) = mpsc::channel(64);
                tokio::spawn(pipe(self.clone(), peer, me, Dir::Down, down, down_tx, kill));
                Ok(Box::pin(ReceiverStream::new(down_rx)) as FrameStream)
            }
        }
    }

    /// A forged or unauthorized event to add to a batch (or None when there is nothing to
    /// forge from). Recorded in [`Injected`].
    fn forge(&self, batch: &pb::Batch) -> Option<(Vec<u8>, &'static str)> {
        let mut g = self.lock();
        let kind = g.rng.gen_range(0..4);
        let (signed, what) = match kind {
            // A genuine event with one bit flipped: the signature no longer verifies (or the
            // bytes no longer decode).
            0 if !batch.events.is_empty() => {
                let i = g.rng.gen_range(0..batch.events.len());
                let Ok(mut e) = pb::SignedEvent::decode(batch.events[i].as_slice()) else {
                    return None;
                };
                if e.event.is_empty() {
                    return None;
                }
                let byte = g.rng.gen_range(0..e.event.len());
                let bit = g.rng.gen_range(0..8);
                e.event[byte] ^= 1 << bit;
                (e, "tampered")
            }
            // A new event in a committee's name, signed with a stranger's key.
            1 => {
                let origin = pick_code(&mut g)?;
                let mut seed = [0u8; 32];
                g.rng.fill(&mut seed);
                let stranger = SigningKey::from_bytes(&seed);
                let seq = g.rng.gen_range(1..40);
                let e = forged_event(&mut g, &origin, seq, &stranger, &origin);
                (e, "forged")
            }
            // An event its author may not write (guidance "down" to the root's whole tree,
            // by someone below the root), signed with the author's real key.
            2 => {
                let origin = pick_code(&mut g)?;
                let root = g.roots.get(&origin)?.clone();
                if origin == root {
                    return None;
                }
                let key = g.keys.get(&origin)?.clone();
                g.forged_seq += 1;
                let seq = g.forged_seq;
                let e = forged_event(&mut g, &origin, seq, &key, &root);
                (e, "unauthorized")
            }
            // A lateral group's event by a committee that is not a member (only roots are),
            // signed with its real key.
            _ => {
                let origin = pick_code(&mut g)?;
                if g.roots.get(&origin) == Some(&origin) {
                    return None;
                }
                let key = g.keys.get(&origin)?.clone();
                g.forged_seq += 1;
                let seq = g.forged_seq;
                let e = forged_group_event(&mut g, &origin, seq, &key);
                (e, "unauthorized group")
            }
        };
        let frame = signed.encode_to_vec();
        g.injected.frames.insert(crate::event::hash_of(&frame));
        if what != "tampered" {
            if let Ok(env) = crate::event::Envelope::from_signed(signed.clone()) {
                g.injected.ids.insert(env.id);
            }
        }
        g.stats.injected += 1;
        Some((frame, what))
    }
}

fn pick_code(g: &mut NetInner) -> Option<String> {
    if g.keys.is_empty() {
        return None;
    }
    let i = g.rng.gen_range(0..g.keys.len());
    g.keys.keys().nth(i).cloned()
}

/// Guidance by `origin` to the subtree of `to`, signed with `key`.
fn forged_event(
    g: &mut NetInner,
    origin: &str,
    seq: u64,
    key: &SigningKey,
    to: &str,
) -> pb::SignedEvent {
    let mut rand10 = [0u8; 10];
    g.rng.fill(&mut rand10);
    let id = uuid::Builder::from_unix_timestamp_millis(EPOCH_MS, &rand10).into_uuid();
    let mut prev = vec![0u8; 32];
    g.rng.fill(prev.as_mut_slice());
    let mut gid = [0u8; 10];
    g.rng.fill(&mut gid);
    let event = pb::Event {
        id: id.as_bytes().to_vec(),
        origin: origin.to_string(),
        seq,
        prev: if seq > 1 { prev } else { Vec::new() },
        hlc: EPOCH_MS << LOGICAL_BITS,
        audience: Some(pb::Audience {
            kind: Some(pb::audience::Kind::Subtree(to.to_string())),
        }),
        body: Some(pb::event::Body::GuidanceIssued(pb::GuidanceIssued {
            guidance_id: uuid::Builder::from_unix_timestamp_millis(EPOCH_MS, &gid)
                .into_uuid()
                .as_bytes()
                .to_vec(),
            title: "伪造的通知".into(),
            body: "forged by the simulation".into(),
        })),
    };
    let bytes = event.encode_to_vec();
    let signature = key.sign(&bytes).to_bytes().to_vec();
    pb::SignedEvent {
        event: bytes,
        signature,
    }
}

/// A joint contribution by `origin` to a meeting of the simulation's group, signed with `key`.
fn forged_group_event(
    g: &mut NetInner,
    origin: &str,
    seq: u64,
    key: &SigningKey,
) -> pb::SignedEvent {
    let mut rand10 = [0u8; 10];
    g.rng.fill(&mut rand10);
    let id = uuid::Builder::from_unix_timestamp_millis(EPOCH_MS, &rand10).into_uuid();
    let mut prev = vec![0u8; 32];
    g.rng.fill(prev.as_mut_slice());
    let mut mid = [0u8; 10];
    g.rng.fill(&mut mid);
    let event = pb::Event {
        id: id.as_bytes().to_vec(),
        origin: origin.to_string(),
        seq,
        prev,
        hlc: EPOCH_MS << LOGICAL_BITS,
        audience: Some(pb::Audience {
            kind: Some(pb::audience::Kind::Group(pb::GroupAudience {
                group_id: super::workload::GROUP.to_string(),
                include_subtrees: false,
                charter: false,
            })),
        }),
        body: Some(pb::event::Body::JointContributionMade(
            pb::JointContributionMade {
                meeting_id: uuid::Builder::from_unix_timestamp_millis(EPOCH_MS, &mid)
                    .into_uuid()
                    .as_bytes()
                    .to_vec(),
                contribution_id: id.as_bytes().to_vec(),
                version: 1,
                kind: pb::JointContributionKind::Research as i32,
                title: "伪造的调研成果".into(),
                text: "forged by the simulation".into(),
                ..Default::default()
            },
        )),
    };
    let bytes = event.encode_to_vec();
    let signature = key.sign(&bytes).to_bytes().to_vec();
    pb::SignedEvent {
        event: bytes,
        signature,
    }
}

/// Resolves once the connection is no longer alive for this direction's receiver.
async fn killed(kill: &mut watch::Receiver<Kill>, dir: Dir) {
    loop {
        match *kill.borrow_and_update() {
            Kill::Reset => return,
            Kill::HalfOpen if dir == Dir::Down => return,
            _ => {}
        }
        if kill.changed().await.is_err() {
            // The connection's handle is gone: nobody can kill it any more.
            futures::future::pending::<()>().await;
        }
    }
}

/// Carries one direction of a connection: reads frames as the sender writes them, stamps
/// each with its delivery time, and delivers them in order.
async fn pipe<S>(
    net: Arc<Net>,
    from: String,
    to: String,
    dir: Dir,
    src: S,
    dst: mpsc::Sender<std::result::Result<pb::SyncFrame, tonic::Status>>,
    kill: Arc<watch::Sender<Kill>>,
) where
    S: Stream<Item = pb::SyncFrame> + Unpin + Send + 'static,
{
    let (q_tx, q_rx) = mpsc::unbounded_channel();
    tokio::spawn(read_side(
        net.clone(),
        from.clone(),
        to.clone(),
        kill.subscribe(),
        src,
        q_tx,
    ));
    deliver_side(net, from, to, dir, kill, q_rx, dst).await;
}

async fn read_side<S>(
    net: Arc<Net>,
    from: String,
    to: String,
    mut kill: watch::Receiver<Kill>,
    mut src: S,
    q: mpsc::UnboundedSender<(Instant, pb::SyncFrame)>,
) where
    S: Stream<Item = pb::SyncFrame> + Unpin + Send + 'static,
{
    let mut last_due = Instant::now();
    loop {
        let next = tokio::select! {
            biased;
            // Whatever ended the connection, the sender's end is gone: stop reading.
            r = kill.changed() => {
                if r.is_err() || *kill.borrow() != Kill::Alive {
                    return;
                }
                continue;
            }
            _ = q.closed() => return,
            f = src.next() => f,
        };
        let Some(frame) = next else { return };
        let due = (Instant::now() + net.delay(&from, &to)).max(last_due);
        last_due = due;
        if q.send((due, frame)).is_err() {
            return;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn deliver_side(
    net: Arc<Net>,
    from: String,
    to: String,
    dir: Dir,
    kill_tx: Arc<watch::Sender<Kill>>,
    mut q: mpsc::UnboundedReceiver<(Instant, pb::SyncFrame)>,
    dst: mpsc::Sender<std::result::Result<pb::SyncFrame, tonic::Status>>,
) {
    let mut kill = kill_tx.subscribe();
    // Held while this side delivers: the network counts a connection live while it is.
    let _live = kill_tx;
    let reset = |dst: &mpsc::Sender<_>| {
        let _ = dst.try_send(Err(tonic::Status::unavailable(
            "connection reset (simulated)",
        )));
    };
    // Copies of batches to deliver again after a few more frames.
    let mut replays: VecDeque<(u32, pb::SyncFrame)> = VecDeque::new();
    let mut stalled = false;
    loop {
        let item = tokio::select! {
            biased;
            _ = killed(&mut kill, dir) => return reset(&dst),
            _ = dst.closed() => return,
            x = q.recv() => x,
        };
        // The sender closed its end: the stream ends after what it sent.
        let Some((due, mut frame)) = item else { return };
        // A half-open connection: the child is gone, its last frames still trickle in.
        let mut due = due;
        if *kill.borrow() == Kill::HalfOpen && !stalled {
            stalled = true;
            due += Duration::from_millis(net.gen_range(0..3000));
        }
        tokio::select! {
            biased;
            _ = killed(&mut kill, dir) => return reset(&dst),
            _ = dst.closed() => return,
            _ = tokio::time::sleep_until(due) => {}
        }
        // Held while this direction is clogged.
        loop {
            let mut changes = net.clog.subscribe();
            if !net.is_clogged(&from, &to) {
                break;
            }
            tokio::select! {
                biased;
                _ = killed(&mut kill, dir) => return reset(&dst),
                _ = dst.closed() => return,
                _ = changes.changed() => {}
            }
        }
        let mut copies = 1;
        if let Some(Frame::Batch(b)) = &mut frame.kind {
            if net.roll(|f| f.inject) {
                if let Some((e, what)) = net.forge(b) {
                    let at = net.gen_range(0..b.events.len() as u64 + 1) as usize;
                    b.events.insert(at, e);
                    net.trace
                        .line(format!("inject {what} event into a batch {from}->{to}"));
                }
            }
            if net.roll(|f| f.duplicate) {
                copies = 2;
                net.lock().stats.duplicates += 1;
            }
            if net.roll(|f| f.replay) {
                let after = net.gen_range(1..4) as u32;
                replays.push_back((after, frame.clone()));
                net.lock().stats.replays += 1;
            }
        }
        for _ in 0..copies {
            if !send(&net, &mut kill, dir, &dst, frame.clone()).await {
                return;
            }
        }
        for r in replays.iter_mut() {
            r.0 = r.0.saturating_sub(1);
        }
        while replays.front().is_some_and(|r| r.0 == 0) {
            if let Some((_, copy)) = replays.pop_front() {
                if !send(&net, &mut kill, dir, &dst, copy).await {
                    return;
                }
            }
        }
    }
}

/// Delivers one frame; false when the connection or its receiver is gone.
async fn send(
    net: &Net,
    kill: &mut watch::Receiver<Kill>,
    dir: Dir,
    dst: &mpsc::Sender<std::result::Result<pb::SyncFrame, tonic::Status>>,
    frame: pb::SyncFrame,
) -> bool {
    tokio::select! {
        biased;
        _ = killed(kill, dir) => {
            let _ = dst.try_send(Err(tonic::Status::unavailable("connection reset (simulated)")));
            false
        }
        r = dst.send(Ok(frame)) => {
            net.lock().stats.frames += 1;
            r.is_ok()
        }
    }
}

/// A node's way out: dials through the simulated network.
pub struct SimConnector {
    pub net: Arc<Net>,
    /// The committee that dials.
    pub me: String,
}

impl Connector for SimConnector {
    fn open(
        &self,
        peer: String,
        _address: String,
        outbound: ReceiverStream<pb::SyncFrame>,
    ) -> Pin<Box<dyn Future<Output = Result<FrameStream>> + Send>> {
        let net = self.net.clone();
        let me = self.me.clone();
        Box::pin(net.open(me, peer, outbound))
    }
}
