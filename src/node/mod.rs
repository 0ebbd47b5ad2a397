//! A running node.
//!
//! Data flows one way: frames from a link or the local API → [`Envelope::open`] → signature
//! against the roster → [`authz::authorize`] → scope → persist (one atomic batch per event:
//! the event, its indexes and its record's new state) → fold → after a `sync` of the whole
//! group, reply, then wake the links and watchers.
//!
//! All writes go through one writer thread that drains every job waiting and syncs once for
//! all of them (group commit): a flood of small batches costs one `fdatasync` per group, not
//! one per batch. Links only ever read up to the *durable* head, so nothing leaves this node
//! before it would survive a crash here.
pub mod lateral;
pub mod ops;
pub mod ops_cycle;
pub mod prepare;
#[cfg(test)]
mod tests;
pub mod views;
pub mod views_cycle;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use ed25519_dalek::SigningKey;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::record::{RecordKey, RecordState};
use crate::domain::{audience, authz, Fact, Level, Member, Refusal, Roster};
use crate::event::{self, hlc, Envelope};
use crate::pb;
use crate::store::{Cursor, NodeStore, QuarantineRecord, WriteBatch};
use crate::{Error, Result};

/// What a node needs to know about itself.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// This node's committee code.
    pub code: String,
    /// The federation's root committee and its key: the trust anchor.
    pub root_code: String,
    pub root_key: ed25519_dalek::VerifyingKey,
    /// Events whose clock is further ahead of ours than this are refused (clock sanity).
    pub max_clock_skew_ms: u64,
    /// Most jobs one group commit takes in.
    pub max_group: usize,
}

/// The narrow seams the deterministic simulation ([`crate::sim`]) drives; real nodes use
/// [`Seams::default`] (what [`Node::open`] does): a writer thread, UUID v7 ids from the
/// system clock and OS randomness, and OS randomness for backoff jitter.
#[derive(Clone, Default)]
pub struct Seams {
    /// Where the writer runs.
    pub writer: WriterMode,
    /// Where new event and record ids come from (must give UUID v7s); None: `Uuid::now_v7`.
    pub ids: Option<IdSource>,
    /// Random numbers below a bound (backoff jitter); None: `rand::random`.
    pub random: Option<RandomSource>,
}

/// Gives a new UUID v7.
pub type IdSource = Arc<dyn Fn() -> Uuid + Send + Sync>;
/// Gives a number in `0..bound` (`bound` > 0).
pub type RandomSource = Arc<dyn Fn(u64) -> u64 + Send + Sync>;
/// How long a task-mode writer waits between a group's writes and its sync.
pub type SyncDelay = Arc<dyn Fn() -> std::time::Duration + Send + Sync>;

/// Where the writer runs.
#[derive(Clone, Default)]
pub enum WriterMode {
    /// An OS thread of its own (real nodes).
    #[default]
    Thread,
    /// A task on the current tokio runtime, so that a single-threaded runtime runs the whole
    /// node (the simulation: no OS threads, a deterministic schedule). The same group-commit
    /// code runs; `before_sync`, if given, is awaited between a group's writes and its sync —
    /// the window in which a simulated crash ([`Node::halt`]) loses the group's writes.
    Task { before_sync: Option<SyncDelay> },
}

/// A link's state as the status report shows it.
#[derive(Clone, Debug, Default)]
pub struct LinkStatus {
    pub role: &'static str,
    pub address: String,
    pub state: &'static str,
    /// The peer's last acknowledged batch covered our log up to here.
    pub acked_position: u64,
    /// The peer's head, as it last told us.
    pub peer_head: u64,
    /// What we hold of the peer's log.
    pub received_position: u64,
    /// The peer's own chain head (seq, hash) as its heartbeats last told us.
    pub peer_chain: Option<(u64, [u8; 32])>,
    pub last_seen_ms: u64,
    pub last_error: String,
    /// Batches received in this session (0 until the first; reset at each link-up).
    pub session_batches: u64,
    /// A backlog being received: set by the session's first batch when the peer is far
    /// ahead, cleared once what it held then is here.
    pub catching_up: Option<CatchUp>,
}

/// A link's catch-up: from our position in the peer's log to the peer's head at the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchUp {
    pub from: u64,
    pub to: u64,
    pub started_ms: u64,
}

/// A write to carry out on the writer thread.
enum Job {
    Author {
        audience: pb::audience::Kind,
        body: pb::event::Body,
        reply: oneshot::Sender<Result<pb::Receipt>>,
    },
    Ingest {
        from: String,
        /// Opened and, on a link, verified already ([`prepare`]).
        items: Vec<prepare::Prepared>,
        cursor: Option<Cursor>,
        reply: oneshot::Sender<Result<IngestReport>>,
    },
    /// Continue this committee's own chain from a peer's record of it, if ours is behind
    /// (a store that was lost and rebuilt).
    AdoptChain {
        seq: u64,
        hash: [u8; 32],
        reply: oneshot::Sender<Result<()>>,
    },
    /// Record a message from a link that could not be read at all (over the size limit, not
    /// a sync frame) in the quarantine.
    QuarantineMessage {
        from: String,
        refusal: Refusal,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Finish the group in hand, sync, and end the writer thread.
    Stop,
}

/// What happened to a batch of frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub stored: u32,
    pub duplicates: u32,
    pub refused: u32,
}

enum Outcome {
    Stored,
    Duplicate,
    Refused,
}

pub(crate) struct Inner {
    pub settings: NodeSettings,
    /// This committee's signing keys: the current one first, then a new one waiting for the
    /// parent's rotation. Authoring picks the one the roster expects for the next seq.
    keys: Mutex<Vec<SigningKey>>,
    pub store: NodeStore,
    pub roster: RwLock<Roster>,
    pub clock: Arc<dyn Clock>,
    jobs: mpsc::Sender<Job>,
    /// The durable head of the local log: links send up to here.
    pub head: watch::Sender<u64>,
    /// Bumped whenever the roster grows: links re-check what the peer may now see.
    pub roster_version: watch::Sender<u64>,
    /// What each durable group stored, for watchers (the API's `Watch`, tests). Made at the
    /// first subscription: its 4,096 slots are half a megabyte, a third of an idle node's
    /// heap, and most nodes are never watched.
    pub changes: std::sync::OnceLock<broadcast::Sender<pb::Change>>,
    pub links: Mutex<BTreeMap<String, LinkStatus>>,
    pub shutdown: watch::Sender<bool>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The writer when it runs as a task ([`WriterMode::Task`]).
    writer_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Whether the writer signs a run of its own events on every core ([`sign_drafts`]):
    /// a thread-mode writer does; the simulation's task-mode writer starts no threads.
    sign_side_by_side: bool,
    ids: Option<IdSource>,
    random: Option<RandomSource>,
}

/// A handle to a running node; cheap to clone.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
}

impl Node {
    /// Opens a node over `store` and starts its writer thread. Links are started separately
    /// ([`crate::sync`]), so that tests and the simulation can wire them as they like.
    pub fn open(
        settings: NodeSettings,
        key: SigningKey,
        store: NodeStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Node> {
        Node::open_with(settings, key, store, clock, Seams::default())
    }

    /// [`Node::open`] with the simulation's seams ([`Seams`]). A task-mode writer needs to be
    /// called inside a tokio runtime.
    pub fn open_with(
        settings: NodeSettings,
        key: SigningKey,
        store: NodeStore,
        clock: Arc<dyn Clock>,
        seams: Seams,
    ) -> Result<Node> {
        // Every write of a group reaches the engine as one batch, at the group's sync.
        let store = store.staged();
        let mut roster = Roster::new(&settings.root_code, settings.root_key);
        for env in store.registrations()? {
            if let Some(body) = env.body() {
                apply_to_roster(&mut roster, body);
            }
        }
        // Lateral groups: the roster mirrors each group's folded charter.
        for (_, state) in store.states_with_tag(b'L')? {
            if let RecordState::Group(g) = state {
                roster.set_group(g.record.roster_entry());
            }
        }
        let head = store.head()?;
        if head == 0 && !store.late_indexed()? {
            // A new store marks its late events from the first on (see `may_see_more_later`).
            let mut batch = WriteBatch::default();
            store.set_late_indexed(&mut batch);
            store.commit(batch)?;
        }
        let roster_version = store.roster_version()?;
        let (jobs_tx, jobs_rx) = mpsc::channel(1024);
        let inner = Arc::new(Inner {
            settings,
            keys: Mutex::new(vec![key]),
            store,
            roster: RwLock::new(roster),
            clock,
            jobs: jobs_tx,
            head: watch::channel(head).0,
            roster_version: watch::channel(roster_version).0,
            changes: std::sync::OnceLock::new(),
            links: Mutex::new(BTreeMap::new()),
            shutdown: watch::channel(false).0,
            writer: Mutex::new(None),
            writer_task: Mutex::new(None),
            sign_side_by_side: matches!(seams.writer, WriterMode::Thread),
            ids: seams.ids,
            random: seams.random,
        });
        let writer = Arc::clone(&inner);
        match seams.writer {
            WriterMode::Thread => {
                let (to_syncer, flushed) = std::sync::mpsc::sync_channel::<Flushed>(1);
                let syncer = {
                    let inner = Arc::clone(&inner);
                    std::thread::Builder::new()
                        .name(format!("liandong-sync-{}", inner.settings.code))
                        .spawn(move || syncer_loop(&inner, flushed))?
                };
                let handle = std::thread::Builder::new()
                    .name(format!("liandong-writer-{}", inner.settings.code))
                    .spawn(move || writer_loop(writer, jobs_rx, to_syncer, syncer))?;
                if let Ok(mut w) = inner.writer.lock() {
                    *w = Some(handle);
                }
            }
            WriterMode::Task { before_sync } => {
                let handle = tokio::spawn(writer_task(writer, jobs_rx, before_sync));
                if let Ok(mut w) = inner.writer_task.lock() {
                    *w = Some(handle);
                }
            }
        }
        info!(committee = %inner.settings.code, head, "node opened");
        Ok(Node { inner })
    }

    pub fn code(&self) -> &str {
        &self.inner.settings.code
    }

    pub fn public_key_hex(&self) -> String {
        self.inner
            .keys
            .lock()
            .ok()
            .and_then(|k| k.first().map(|k| hex::encode(k.verifying_key().as_bytes())))
            .unwrap_or_default()
    }

    /// Adds a key this node may sign with once the roster expects it (a rotation in progress).
    pub fn add_key(&self, key: SigningKey) {
        if let Ok(mut keys) = self.inner.keys.lock() {
            if !keys
                .iter()
                .any(|k| k.verifying_key() == key.verifying_key())
            {
                keys.push(key);
            }
        }
    }

    /// The public key this node was opened with.
    pub(crate) fn verifying_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        self.inner
            .keys
            .lock()
            .ok()
            .and_then(|k| k.first().map(SigningKey::verifying_key))
    }

    pub fn store(&self) -> &NodeStore {
        &self.inner.store
    }

    pub fn roster(&self) -> std::sync::RwLockReadGuard<'_, Roster> {
        // ok: a writer that panicked while holding the roster lock leaves it poisoned; the
        // roster itself is only ever replaced whole, so its data is still consistent.
        self.inner.roster.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn durable_head(&self) -> u64 {
        *self.inner.head.borrow()
    }

    pub fn subscribe_head(&self) -> watch::Receiver<u64> {
        self.inner.head.subscribe()
    }

    pub fn subscribe_roster(&self) -> watch::Receiver<u64> {
        self.inner.roster_version.subscribe()
    }

    pub fn subscribe_changes(&self) -> broadcast::Receiver<pb::Change> {
        self.inner
            .changes
            .get_or_init(|| broadcast::channel(CHANGES_CAPACITY).0)
            .subscribe()
    }

    pub fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Whether [`Node::shutdown`] was called (by a signal, or by the writer after a storage
    /// failure).
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Asks links and servers to stop. The writer finishes the group in hand and syncs.
    pub fn shutdown(&self) {
        // `send` would leave the flag unset while nobody watches it (a node without links).
        self.inner.shutdown.send_replace(true);
    }

    /// Stops the node for good: signals shutdown, lets the writer finish its group and sync,
    /// and waits (up to 3 s) until nothing else holds the node, so its store is released
    /// (for a restart in the same process; the data is already durable).
    pub async fn close(self) {
        self.shutdown();
        let _ = self.inner.jobs.send(Job::Stop).await;
        let handle = self.inner.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        let task = self
            .inner
            .writer_task
            .lock()
            .ok()
            .and_then(|mut w| w.take());
        if let Some(t) = task {
            let _ = t.await;
        }
        // tokio's clock: the real one, except under the simulation's paused time.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        while Arc::strong_count(&self.inner) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops the node the way a crash would (for the simulation): signals shutdown and
    /// aborts a task-mode writer at once, so the group in hand is neither synced nor
    /// answered. A thread-mode writer cannot be aborted; it finishes its group as on
    /// [`Node::shutdown`].
    pub fn halt(&self) {
        self.shutdown();
        if let Some(t) = self
            .inner
            .writer_task
            .lock()
            .ok()
            .and_then(|mut w| w.take())
        {
            t.abort();
        }
    }

    /// A new id for an event or a record: UUID v7 (from the [`Seams`] in the simulation).
    pub fn new_id(&self) -> Uuid {
        new_id(&self.inner)
    }

    /// A random number in `0..bound` (from the [`Seams`] in the simulation); 0 if `bound` is 0.
    pub fn random_below(&self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        match &self.inner.random {
            Some(r) => r(bound) % bound,
            None => rand::random::<u64>() % bound,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    pub fn update_link(&self, peer: &str, f: impl FnOnce(&mut LinkStatus)) {
        if let Ok(mut links) = self.inner.links.lock() {
            f(links.entry(peer.to_string()).or_default());
        }
    }

    pub fn links(&self) -> BTreeMap<String, LinkStatus> {
        self.inner
            .links
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// Authors, signs and stores a new event of this committee; returns once it is durable.
    pub async fn author(
        &self,
        audience: pb::audience::Kind,
        body: pb::event::Body,
    ) -> Result<pb::Receipt> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::Author {
                audience,
                body,
                reply,
            })
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// If a peer holds more of this committee's own chain than this store does (the store was
    /// lost or restored from an old backup), continue from there instead of reusing numbers.
    pub async fn adopt_chain(&self, seq: u64, hash: [u8; 32]) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::AdoptChain { seq, hash, reply })
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Records in the quarantine a message from the link to `from` that could not be read
    /// at all (over the size limit, or not a sync frame), so that an operator sees it beside
    /// the refused events. There are no bytes to keep: the decoder never produced them.
    pub async fn quarantine_message(&self, from: &str, refusal: Refusal) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::QuarantineMessage {
                from: from.to_string(),
                refusal,
                reply,
            })
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Ingests frames received from `from` and, when given, moves that link's cursor in the
    /// same durable step. Returns once everything is durable.
    pub async fn ingest(
        &self,
        from: &str,
        frames: Vec<Vec<u8>>,
        cursor: Option<Cursor>,
    ) -> Result<IngestReport> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::Ingest {
                from: from.to_string(),
                items: frames
                    .into_iter()
                    .map(prepare::Prepared::unverified)
                    .collect(),
                cursor,
                reply,
            })
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }
}

pub(crate) fn member_of(reg: &pb::CommitteeRegistered) -> Option<Member> {
    let key_bytes: [u8; 32] = reg.public_key.as_slice().try_into().ok()?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes).ok()?;
    let parent = (!reg.parent.is_empty()).then_some(reg.parent.as_str());
    Some(Member::new(
        &reg.code,
        &reg.name,
        Level::from_pb(reg.level)?,
        parent,
        key,
    ))
}

/// A fresh id minted by this committee ([`crate::domain::ids`]): for its events and for
/// every record it creates.
fn new_id(inner: &Inner) -> Uuid {
    let base = match &inner.ids {
        Some(ids) => ids(),
        None => Uuid::now_v7(),
    };
    crate::domain::ids::mint(&inner.settings.code, base)
}

fn key_of_bytes(bytes: &[u8]) -> Option<ed25519_dalek::VerifyingKey> {
    let arr: [u8; 32] = bytes.try_into().ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&arr).ok()
}

fn adopt_chain(inner: &Inner, seq: u64, hash: [u8; 32]) -> Result<()> {
    let own = inner.store.own_chain()?;
    if own.seq >= seq {
        return Ok(());
    }
    warn!(
        held = own.seq,
        peer_holds = seq,
        "this store is behind this committee's own chain: continuing after seq {seq}"
    );
    let mut batch = WriteBatch::default();
    inner.store.put_own_chain(&mut batch, seq, &hash);
    inner.store.commit(batch)?;
    inner.store.sync()
}

fn is_roster_body(body: &pb::event::Body) -> bool {
    matches!(
        body,
        pb::event::Body::CommitteeRegistered(_)
            | pb::event::Body::CommitteeKeyRotated(_)
            | pb::event::Body::CommitteeKeyRevoked(_)
            | pb::event::Body::GroupCharterProposed(_)
            | pb::event::Body::GroupCharterEndorsed(_)
    )
}

/// Applies a roster event (名册: registration, rotation, revocation); false for other kinds.
pub(crate) fn apply_to_roster(roster: &mut Roster, body: &pb::event::Body) -> bool {
    match body {
        pb::event::Body::CommitteeRegistered(reg) => {
            if let Some(m) = member_of(reg) {
                if roster.get(&m.code).is_none() {
                    roster.insert(m);
                }
            }
            true
        }
        pb::event::Body::CommitteeKeyRotated(r) => {
            if let Some(key) = key_of_bytes(&r.public_key) {
                roster.rotate(&r.code, key, r.from_seq);
            }
            true
        }
        pb::event::Body::CommitteeKeyRevoked(r) => {
            if let Some(key) = key_of_bytes(&r.public_key) {
                roster.revoke(&r.code, &key, r.valid_through_seq, &r.reason);
            }
            true
        }
        _ => false,
    }
}

/// The writer thread ([`WriterMode::Thread`]): writes each group and hands it to the syncer
/// thread ([`syncer_loop`]) through `to_syncer`, then writes the next while that one syncs
/// (BENCHMARKS.md, "Sync beside the writer"). The channel has room for one group, so the
/// writer is never more than one group ahead of the disk. Ends with the syncer.
fn writer_loop(
    inner: Arc<Inner>,
    mut jobs: mpsc::Receiver<Job>,
    to_syncer: std::sync::mpsc::SyncSender<Flushed>,
    syncer: std::thread::JoinHandle<()>,
) {
    while let Some(first) = jobs.blocking_recv() {
        let group = take_group(&inner, first, &mut jobs);
        let mut written = write_group(&inner, group);
        // The group goes to the engine now, in one batch, before the next is staged; its
        // head is read now, as the next group moves the staged one.
        if let Err(e) = inner.store.flush_staged() {
            written.failed = Some(e.to_string());
        }
        let head = inner.store.head().ok();
        let stopping = written.stopping;
        if let Err(std::sync::mpsc::SendError(f)) = to_syncer.send(Flushed { written, head }) {
            // The syncer stopped: storage failed there. Nobody hears of success.
            for r in f.written.replies {
                r.fail("storage failed; the node stopped accepting writes");
            }
            break;
        }
        if stopping {
            break;
        }
    }
    drop(to_syncer);
    let _ = syncer.join();
}

/// A group handed to the engine, waiting for its sync on the syncer thread.
struct Flushed {
    written: Written,
    /// The head with this group in it (None if it could not be read).
    head: Option<u64>,
}

/// Syncs each flushed group in turn, then answers it ([`answer_group`]). Stops after a
/// failed sync (the writer stops at its next group) or after the group that stops the writer.
fn syncer_loop(inner: &Inner, groups: std::sync::mpsc::Receiver<Flushed>) {
    while let Ok(Flushed { written, head }) = groups.recv() {
        let synced = timed_sync(|| inner.store.sync_flushed());
        if !answer_group(inner, written, synced, head) {
            return;
        }
    }
}

/// The writer as a task on the current runtime ([`WriterMode::Task`]): the same steps as
/// [`writer_loop`], with an optional wait before each group's sync.
async fn writer_task(
    inner: Arc<Inner>,
    mut jobs: mpsc::Receiver<Job>,
    before_sync: Option<SyncDelay>,
) {
    while let Some(first) = jobs.recv().await {
        let group = take_group(&inner, first, &mut jobs);
        let written = write_group(&inner, group);
        if let Some(delay) = &before_sync {
            tokio::time::sleep(delay()).await;
        }
        if !finish_group(&inner, written) {
            return;
        }
    }
}

/// Every job waiting, up to `max_group`.
fn take_group(inner: &Inner, first: Job, jobs: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut group = vec![first];
    while group.len() < inner.settings.max_group.max(1) {
        match jobs.try_recv() {
            Ok(j) => group.push(j),
            Err(_) => break,
        }
    }
    metrics::histogram!(crate::telemetry::names::GROUP_COMMIT_JOBS).record(group.len() as f64);
    group
}

/// A group's writes, committed but not yet synced nor answered.
struct Written {
    replies: Vec<Reply>,
    changes: Vec<pb::Change>,
    failed: Option<String>,
    stopping: bool,
}

fn write_group(inner: &Inner, group: Vec<Job>) -> Written {
    let mut w = Written {
        replies: Vec::with_capacity(group.len()),
        changes: Vec::new(),
        failed: None,
        stopping: false,
    };
    // Consecutive events of ours that leave the roster as it is go through in one run.
    let mut run: Vec<AuthorJob> = Vec::new();
    for job in group {
        let job = match job {
            Job::Author {
                audience,
                body,
                reply,
            } if !is_roster_body(&body) => {
                run.push((audience, body, reply));
                continue;
            }
            other => other,
        };
        author_run(inner, std::mem::take(&mut run), &mut w);
        match job {
            Job::Author {
                audience,
                body,
                reply,
            } => {
                let r = author_one(inner, audience, body, &mut w.changes);
                if let Err(Error::Storage(e)) = &r {
                    w.failed = Some(e.clone());
                }
                w.replies.push(Reply::Author(reply, r));
            }
            Job::Ingest {
                from,
                items,
                cursor,
                reply,
            } => {
                let r = ingest_batch(inner, &from, items, cursor, &mut w.changes);
                if let Err(Error::Storage(e)) = &r {
                    w.failed = Some(e.clone());
                }
                w.replies.push(Reply::Ingest(reply, r));
            }
            Job::AdoptChain { seq, hash, reply } => {
                let r = adopt_chain(inner, seq, hash);
                let _ = reply.send(r);
            }
            Job::QuarantineMessage {
                from,
                refusal,
                reply,
            } => {
                let _ = reply.send(quarantine(inner, &[], None, &from, &refusal));
            }
            Job::Stop => w.stopping = true,
        }
    }
    author_run(inner, run, &mut w);
    w
}

/// Syncs a written group, then moves the head and answers. False when the writer stops.
fn finish_group(inner: &Inner, w: Written) -> bool {
    let synced = timed_sync(|| inner.store.sync());
    let head = inner.store.head().ok();
    answer_group(inner, w, synced, head)
}

fn timed_sync(sync: impl FnOnce() -> Result<()>) -> Result<()> {
    let sync_started = std::time::Instant::now();
    let r = sync();
    metrics::histogram!(crate::telemetry::names::STORE_SYNC_SECONDS)
        .record(sync_started.elapsed().as_secs_f64());
    r
}

/// After a group's sync: moves the durable head to `head` and answers everyone, or, if the
/// group or its sync failed, answers nobody with success and stops the node's writes.
/// False when the writer stops.
fn answer_group(inner: &Inner, w: Written, synced: Result<()>, head: Option<u64>) -> bool {
    let Written {
        replies,
        changes,
        mut failed,
        stopping,
    } = w;
    // Group commit: one sync makes the whole group durable before anyone hears of it.
    if let Err(e) = synced {
        failed = Some(e.to_string());
    }
    if let Some(e) = failed {
        metrics::counter!(crate::telemetry::names::STORAGE_ERRORS).increment(1);
        // Storage is broken: answer nobody with success, and stop taking writes.
        tracing::error!(error = %e, "storage failed; the node stops accepting writes");
        // Stopping before anyone hears of the failure, so that they see the node stopping.
        inner.shutdown.send_replace(true);
        for r in replies {
            r.fail(&e);
        }
        return false;
    }
    // Durable now: move the head (links may send it), tell watchers, then answer, so
    // that a caller who reads the node after its reply sees its own write.
    if !changes.is_empty() {
        if let Some(head) = head {
            inner.head.send_replace(head);
        }
        if let Some(watchers) = inner.changes.get() {
            for c in changes {
                let _ = watchers.send(c);
            }
        }
    }
    for r in replies {
        r.send();
    }
    !stopping
}

enum Reply {
    Author(oneshot::Sender<Result<pb::Receipt>>, Result<pb::Receipt>),
    Ingest(oneshot::Sender<Result<IngestReport>>, Result<IngestReport>),
}

impl Reply {
    fn send(self) {
        match self {
            Reply::Author(tx, r) => drop(tx.send(r)),
            Reply::Ingest(tx, r) => drop(tx.send(r)),
        }
    }
    fn fail(self, e: &str) {
        match self {
            Reply::Author(tx, _) => drop(tx.send(Err(Error::Storage(e.to_string())))),
            Reply::Ingest(tx, _) => drop(tx.send(Err(Error::Storage(e.to_string())))),
        }
    }
}

fn write_roster(inner: &Inner) -> std::sync::RwLockWriteGuard<'_, Roster> {
    inner.roster.write().unwrap_or_else(|p| p.into_inner())
}

fn read_roster(inner: &Inner) -> std::sync::RwLockReadGuard<'_, Roster> {
    inner.roster.read().unwrap_or_else(|p| p.into_inner())
}

/// An event of this committee's, checked and numbered, waiting for its signature
/// ([`event::draft_with_id`]).
struct Draft {
    env: Envelope,
    key: SigningKey,
    record: RecordKey,
    signed: bool,
}

impl Draft {
    fn sign(&mut self) {
        self.env.sign(&self.key);
        self.signed = true;
    }
}

/// Where the next draft continues: this committee's chain head and the clock, as the drafts
/// before it in the same run left them (their writes come after all of them are signed).
struct DraftHead {
    chain: event::ChainHead,
    hlc: u64,
}

impl DraftHead {
    /// Where this committee's stored chain and clock stand.
    fn stored(inner: &Inner) -> Result<DraftHead> {
        Ok(DraftHead {
            chain: inner.store.own_chain()?,
            hlc: inner.store.last_hlc()?,
        })
    }
}

/// Checks, numbers and encodes one event of ours, and moves `head` past it. Nothing is
/// written: a draft that fails here leaves the chain where it was.
fn draft_one(
    inner: &Inner,
    head: &mut DraftHead,
    audience: pb::audience::Kind,
    body: pb::event::Body,
) -> Result<Draft> {
    let me = inner.settings.code.as_str();
    let chain = &head.chain;
    let key = {
        let roster = read_roster(inner);
        let self_registration =
            matches!(&body, pb::event::Body::CommitteeRegistered(r) if r.code == me);
        if !roster.knows(me)
            || (me == roster.root && roster.get(me).is_none() && !self_registration)
        {
            return Err(Error::Invalid(format!(
                "committee {me} is not in the roster yet: its parent must register it (`liandong committee register`) and this node must have synced since"
            )));
        }
        authz::authorize(&roster, me, &audience, &body)?;
        let expected = roster.key_for(me, chain.seq + 1).map_err(|r| {
            Error::Invalid(format!(
                "this committee cannot write: {r}. Its parent must give it a new key (`liandong committee rotate-key`)"
            ))
        })?;
        let keys = inner
            .keys
            .lock()
            .map_err(|_| Error::Storage("key lock poisoned".into()))?;
        keys.iter()
            .find(|k| k.verifying_key() == *expected)
            .cloned()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the roster expects seq {} of {me} to be signed with key {}, which this node does not hold: install it (node.key.next) or ask the parent to rotate to this node's key",
                    chain.seq + 1,
                    hex::encode(expected.as_bytes())
                ))
            })?
    };
    let record = RecordKey::of(&body).map_err(Error::Invalid)?;
    let hlc = hlc::tick(head.hlc, inner.clock.now_ms());
    let env = event::draft_with_id(new_id(inner), me, chain, hlc, audience, body);
    head.chain = event::ChainHead {
        seq: env.seq(),
        hash: Some(env.hash),
    };
    head.hlc = head.hlc.max(hlc);
    Ok(Draft {
        env,
        key,
        record,
        signed: false,
    })
}

/// Stores a signed draft (its chain predecessor is stored already) and says what it made.
fn finish_draft(inner: &Inner, draft: Draft, changes: &mut Vec<pb::Change>) -> Result<pb::Receipt> {
    let Draft { env, record, .. } = draft;
    let change = persist(inner, &env, env.signed_bytes(), None, Some(&record), true)?;
    metrics::counter!(crate::telemetry::names::EVENTS_AUTHORED).increment(1);
    let receipt = pb::Receipt {
        event_id: env.id.to_string(),
        seq: env.seq(),
        record_id: record.id_text(),
    };
    changes.push(change);
    if matches!(
        env.body(),
        Some(pb::event::Body::GroupCharterProposed(_) | pb::event::Body::GroupCharterEndorsed(_))
    ) {
        // Our own endorsement may have put a charter in force here: what waited for it
        // gets another chance.
        retry_quarantined(inner, changes)?;
    }
    Ok(receipt)
}

/// Authors one event: draft, sign, store.
fn author_one(
    inner: &Inner,
    audience: pb::audience::Kind,
    body: pb::event::Body,
    changes: &mut Vec<pb::Change>,
) -> Result<pb::Receipt> {
    let mut head = DraftHead::stored(inner)?;
    let mut draft = draft_one(inner, &mut head, audience, body)?;
    draft.sign();
    finish_draft(inner, draft, changes)
}

/// A job to author an event, waiting in a run ([`author_run`]).
type AuthorJob = (
    pb::audience::Kind,
    pb::event::Body,
    oneshot::Sender<Result<pb::Receipt>>,
);

/// Authors a run of consecutive jobs whose events do not touch the roster, so that each one's
/// checks hold for the whole run: all are drafted in order, signed side by side on every core
/// (a writer thread's signing was the end-to-end relay's bound: BENCHMARKS.md), then stored
/// in order. Each caller hears of its own event.
fn author_run(inner: &Inner, run: Vec<AuthorJob>, w: &mut Written) {
    if run.is_empty() {
        return;
    }
    let mut head = match DraftHead::stored(inner) {
        Ok(head) => head,
        Err(e) => {
            w.failed = Some(e.to_string());
            for (_, _, reply) in run {
                w.replies
                    .push(Reply::Author(reply, Err(Error::Storage(e.to_string()))));
            }
            return;
        }
    };
    let mut drafts = Vec::with_capacity(run.len());
    let mut replies = Vec::with_capacity(run.len());
    for (audience, body, reply) in run {
        match draft_one(inner, &mut head, audience, body) {
            Ok(d) => {
                drafts.push(d);
                replies.push(reply);
            }
            Err(e) => {
                if let Error::Storage(s) = &e {
                    w.failed = Some(s.clone());
                }
                w.replies.push(Reply::Author(reply, Err(e)));
            }
        }
    }
    sign_drafts(&mut drafts, inner.sign_side_by_side);
    let mut stopped: Option<String> = None;
    for (draft, reply) in drafts.into_iter().zip(replies) {
        let r = match &stopped {
            // The drafts after one that could not be stored link to it: none of them may be
            // stored either, or this committee's chain would have a hole.
            Some(why) => Err(Error::Invalid(format!(
                "an earlier event of the same group could not be stored ({why}); try again"
            ))),
            None => finish_draft(inner, draft, &mut w.changes),
        };
        if let Err(e) = &r {
            if stopped.is_none() {
                stopped = Some(e.to_string());
            }
            if let Error::Storage(s) = e {
                w.failed = Some(s.clone());
            }
        }
        w.replies.push(Reply::Author(reply, r));
    }
}

/// Fewest drafts worth a second thread: a thread costs tens of microseconds to start, a
/// signature about as much, and a lone event (a notice, the fan-out) should not wait for one.
const SIGN_SIDE_BY_SIDE_FROM: usize = 8;

/// Changes a watcher may fall behind by before it is told so (`Lagged`, the API's
/// `data_loss`) and must re-read state: a few groups' worth.
const CHANGES_CAPACITY: usize = 4096;

/// Signs every draft, on every core when there are enough of them and `side_by_side`
/// (a thread-mode writer; the simulation's task-mode writer signs in turn).
fn sign_drafts(drafts: &mut [Draft], side_by_side: bool) {
    let threads = if side_by_side {
        prepare::cores().min(drafts.len() / SIGN_SIDE_BY_SIDE_FROM)
    } else {
        1
    };
    if threads > 1 {
        let per = drafts.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut chunks = drafts.chunks_mut(per);
            let here = chunks.next();
            for chunk in chunks {
                let helper = std::thread::Builder::new()
                    .name("liandong-sign".into())
                    .spawn_scoped(scope, move || chunk.iter_mut().for_each(Draft::sign));
                if let Err(e) = helper {
                    // No thread to be had: what it would have signed is signed below.
                    debug!(error = %e, "signing on the writer thread alone");
                }
            }
            if let Some(chunk) = here {
                chunk.iter_mut().for_each(Draft::sign);
            }
        });
    }
    drafts
        .iter_mut()
        .filter(|d| !d.signed)
        .for_each(Draft::sign);
}

fn ingest_batch(
    inner: &Inner,
    from: &str,
    items: Vec<prepare::Prepared>,
    cursor: Option<Cursor>,
    changes: &mut Vec<pb::Change>,
) -> Result<IngestReport> {
    let mut report = IngestReport::default();
    for item in items {
        let prepare::Prepared {
            frame,
            opened,
            verified_with,
        } = item;
        match ingest_opened(inner, frame, opened, from, verified_with.as_ref(), changes)? {
            Outcome::Stored => report.stored += 1,
            Outcome::Duplicate => report.duplicates += 1,
            Outcome::Refused => report.refused += 1,
        }
    }
    count_ingested(&report);
    if let Some(mut c) = cursor {
        // Cursors only move forward, even if two sessions of one link overlap, unless the
        // peer's store was replaced (another log id): then it starts over.
        let held = inner.store.cursor(from)?;
        if held.peer_log_id == c.peer_log_id {
            c.position = c.position.max(held.position);
            c.roster_version = c.roster_version.max(held.roster_version);
        }
        let mut batch = WriteBatch::default();
        inner.store.put_cursor(&mut batch, from, &c)?;
        inner.store.commit(batch)?;
    }
    Ok(report)
}

/// Verifies and stores one frame; a refusal is quarantined and reported as `Refused`.
/// Only a storage failure is an `Err`.
fn ingest_frame(
    inner: &Inner,
    frame: &[u8],
    from: &str,
    changes: &mut Vec<pb::Change>,
) -> Result<Outcome> {
    ingest_opened(
        inner,
        frame.to_vec(),
        Envelope::open(frame),
        from,
        None,
        changes,
    )
}

/// [`ingest_frame`] of a frame opened already, whose signature may have been verified with
/// `verified_with` ([`prepare`]). The frame is stored as it came, if it is.
fn ingest_opened(
    inner: &Inner,
    frame: Vec<u8>,
    opened: std::result::Result<Envelope, Refusal>,
    from: &str,
    verified_with: Option<&ed25519_dalek::VerifyingKey>,
    changes: &mut Vec<pb::Change>,
) -> Result<Outcome> {
    let env = match opened {
        Ok(env) => env,
        Err(refusal) => {
            quarantine(inner, &frame, None, from, &refusal)?;
            return Ok(Outcome::Refused);
        }
    };
    if inner.store.has_event(&env.id)? {
        let held = inner.store.by_origin(env.origin(), env.seq())?;
        if matches!(held, Some((id, hash)) if id == env.id && hash == env.hash) {
            return Ok(Outcome::Duplicate);
        }
        // Another event under an id held here. Ids carry their origin (`domain::ids`), so
        // if the origin signed this one it made two events with one id: equivocation. The
        // held one stays; this one is evidence.
        let refusal = match check_signature(inner, &env, from, verified_with) {
            Err(forged) => forged,
            Ok(()) => Refusal::Equivocation(format!(
                "{} signed two different events with id {} (seq {} here)",
                env.origin(),
                env.id,
                env.seq()
            )),
        };
        quarantine(inner, &frame, Some(&env), from, &refusal)?;
        if let Refusal::Equivocation(why) = &refusal {
            inner.store.flag_origin(env.origin(), why)?;
        }
        return Ok(Outcome::Refused);
    }
    match admit_verified(inner, &env, from, verified_with) {
        Ok(record) => {
            let frame = if env.is_signed_bytes(&frame) {
                frame
            } else {
                env.signed_bytes()
            };
            let change = persist(inner, &env, frame, Some(from), record.as_ref(), false)?;
            let roster_event = matches!(
                env.body(),
                Some(
                    pb::event::Body::CommitteeRegistered(_)
                        | pb::event::Body::CommitteeKeyRotated(_)
                        | pb::event::Body::GroupCharterProposed(_)
                        | pb::event::Body::GroupCharterEndorsed(_)
                )
            );
            changes.push(change);
            if roster_event {
                retry_quarantined(inner, changes)?;
            }
            Ok(Outcome::Stored)
        }
        Err(refusal) => {
            debug!(event = %env.id, origin = env.origin(), %refusal, "refused");
            quarantine(inner, &frame, Some(&env), from, &refusal)?;
            if let Refusal::Equivocation(why) = &refusal {
                inner.store.flag_origin(env.origin(), why)?;
            }
            Ok(Outcome::Refused)
        }
    }
}

/// The stateless gate: signature against the roster, equivocation, chain, clock,
/// authorization, scope. The signature comes first, so nobody can get a committee blamed for
/// an event it did not sign. Returns the record the event is about (None for a kind this
/// version does not know: kept and forwarded, not applied).
///
/// The signature check is skipped when it was verified already, with the very key the
/// roster gives now (`verified_with`, from [`prepare`]).
fn admit_verified(
    inner: &Inner,
    env: &Envelope,
    from: &str,
    verified_with: Option<&ed25519_dalek::VerifyingKey>,
) -> std::result::Result<Option<RecordKey>, Refusal> {
    let store = &inner.store;
    let storage = |e: Error| Refusal::Malformed(format!("could not check against the store: {e}"));
    check_signature(inner, env, from, verified_with)?;
    let roster = read_roster(inner);
    if let Some((other, _)) = store.by_origin(env.origin(), env.seq()).map_err(storage)? {
        if other != env.id {
            return Err(Refusal::Equivocation(format!(
                "{} signed two different events with seq {}: {other} (held) and {}",
                env.origin(),
                env.seq(),
                env.id
            )));
        }
    }
    if env.seq() > 1 {
        if let Some((_, prev_hash)) = store
            .by_origin(env.origin(), env.seq() - 1)
            .map_err(storage)?
        {
            if env.event.prev != prev_hash {
                return Err(Refusal::BrokenChain(format!(
                    "{} seq {} does not link to the held seq {}",
                    env.origin(),
                    env.seq(),
                    env.seq() - 1
                )));
            }
        }
    }
    if let Some((next, _)) = store
        .by_origin(env.origin(), env.seq() + 1)
        .map_err(storage)?
    {
        if let Ok(Some(frame)) = store.event_frame(&next) {
            if let Ok(next_env) = Envelope::open(&frame) {
                if next_env.event.prev != env.hash {
                    return Err(Refusal::BrokenChain(format!(
                        "the held {} seq {} does not link to this seq {}",
                        env.origin(),
                        env.seq() + 1,
                        env.seq()
                    )));
                }
            }
        }
    }
    let now = inner.clock.now_ms();
    let at = hlc::physical_ms(env.hlc());
    if at > now + inner.settings.max_clock_skew_ms {
        return Err(Refusal::FutureTimestamp(format!(
            "event {} is stamped {} ms ahead of this node's clock (limit {} ms)",
            env.id,
            at - now,
            inner.settings.max_clock_skew_ms
        )));
    }
    if let Some(body) = env.body() {
        authz::authorize(&roster, env.origin(), env.audience(), body)?;
    }
    // A charter proposal that names this federation's root is in scope before it is stored
    // (it is what makes the group known here).
    let proposal_scope = match env.body() {
        Some(pb::event::Body::GroupCharterProposed(p)) => {
            Some(roster.with_named(&p.group_id, p.members.iter().map(|m| m.code.as_str())))
        }
        _ => None,
    };
    let scope_roster = proposal_scope.as_ref().unwrap_or(&*roster);
    if !audience::visible_within(
        scope_roster,
        env.audience(),
        env.origin(),
        &inner.settings.code,
    ) {
        if let pb::audience::Kind::Group(g) = env.audience() {
            // A group's membership only grows, and the charter event that admits us may
            // still be on its way (a backfill sends older events first): retried when the
            // group's charter changes here.
            return Err(Refusal::AwaitingCharter(format!(
                "{from} sent event {} of group {}, but {} (yet)",
                env.id,
                g.group_id,
                if g.charter {
                    "no charter version held here names this federation's root"
                } else {
                    "the charter in force here does not reach this node"
                }
            )));
        }
        return Err(Refusal::OutOfScope(format!(
            "{from} sent event {} of {}, which nothing under {} may see",
            env.id,
            env.origin(),
            inner.settings.code
        )));
    }
    env.body()
        .map(RecordKey::of)
        .transpose()
        .map_err(Refusal::Malformed)
}

/// The event's signature against the key the roster gives its origin for its seq (skipped
/// when [`prepare`] verified it with that very key).
fn check_signature(
    inner: &Inner,
    env: &Envelope,
    from: &str,
    verified_with: Option<&ed25519_dalek::VerifyingKey>,
) -> std::result::Result<(), Refusal> {
    let roster = read_roster(inner);
    // Straight from its author, or from our parent (which admitted it so): what a lateral
    // member's provisional key needs (`authz::verifying_key`).
    let direct = from == env.origin() || roster.parent_of(&inner.settings.code) == Some(from);
    let key = authz::verifying_key(
        &roster,
        env.origin(),
        env.seq(),
        env.audience(),
        env.body(),
        direct,
    )?;
    if verified_with != Some(&key) {
        env.verify(&key)?;
    }
    Ok(())
}

/// Stores an admitted event (`frame`, its signed bytes) with its indexes and its record's new
/// state, atomically.
fn persist(
    inner: &Inner,
    env: &Envelope,
    frame: Vec<u8>,
    source: Option<&str>,
    record: Option<&RecordKey>,
    own: bool,
) -> Result<pb::Change> {
    let store = &inner.store;
    let position = store.head()? + 1;
    // One of our own events coming back (an import of this node's backup) moves the chain
    // counter too, so the next event authored here continues after it, never reusing its seq.
    let own = own || (env.origin() == inner.settings.code && env.seq() > store.own_chain()?.seq);
    // Read under the lock (only this writer thread changes the roster, below, after the
    // guard is gone): a clone of a national roster per event would cost more than the rest.
    let roster_snapshot = read_roster(inner);
    let state = match (record, Fact::of(env)) {
        (Some(record), Some(fact)) => {
            match store.state(record)?.or_else(|| RecordState::empty(record)) {
                Some(mut s) if s.can_append(&fact) => {
                    s.apply(&fact, &roster_snapshot);
                    Some(s)
                }
                Some(_) => {
                    // Arrived out of order: refold the record from its whole set of events.
                    let mut facts = store.record_facts(record)?;
                    facts.push(fact);
                    RecordState::fold(record, &facts, &roster_snapshot)
                }
                None => None,
            }
        }
        _ => None,
    };
    let late = may_see_more_later(&roster_snapshot, env, &inner.settings.code);
    drop(roster_snapshot);
    let roster_event = env.body().is_some_and(is_roster_body);
    let mut batch = WriteBatch::default();
    store.put_event(
        &mut batch,
        position,
        env,
        frame,
        source,
        record,
        state.as_ref(),
        own,
        roster_event,
    )?;
    if late {
        store.put_late(&mut batch, position);
    }
    store.commit(batch)?;
    if roster_event {
        if let Some(RecordState::Group(g)) = &state {
            // A lateral group's charter: the roster mirrors its fold.
            write_roster(inner).set_group(g.record.roster_entry());
        } else if let Some(body) = env.body() {
            apply_to_roster(&mut write_roster(inner), body);
            after_roster_change(inner, body)?;
        }
        inner.roster_version.send_replace(store.roster_version()?);
    }
    Ok(pb::Change {
        position,
        event_id: env.id.to_string(),
        origin: env.origin().to_string(),
        seq: env.seq(),
        kind: env.kind_name().to_string(),
        record_id: record.map(RecordKey::id_text).unwrap_or_default(),
    })
}

/// Whether more committees may come to see this event as the roster grows: it names a
/// committee this node cannot place yet (or this node cannot place itself yet), or it is for
/// a lateral group, whose membership changes. Only such events can become visible to a link
/// after its cursor passed them — a committee, once placed, keeps its place — so backfill
/// passes re-check only these (`NodeStore::put_late`).
fn may_see_more_later(roster: &Roster, env: &Envelope, me: &str) -> bool {
    if !roster.knows(me) || !roster.knows(env.origin()) {
        return true;
    }
    match env.audience() {
        pb::audience::Kind::Subtree(c) => !roster.knows(c),
        pb::audience::Kind::Committees(list) => list.codes.iter().any(|c| !roster.knows(c)),
        pb::audience::Kind::Ancestors(u) => !roster.knows(u),
        pb::audience::Kind::Lineage(c) => !roster.knows(c),
        pb::audience::Kind::Group(_) => true,
    }
}

/// What a rotation or revocation changes beyond the roster: a revocation voids events that
/// may already have been applied here (their records are refolded under the new roster); a
/// rotation of this node's own key may carry the chain head a replacement machine continues.
fn after_roster_change(inner: &Inner, body: &pb::event::Body) -> Result<()> {
    match body {
        pb::event::Body::CommitteeKeyRevoked(r) => {
            let roster = read_roster(inner).clone();
            let mut records = std::collections::BTreeSet::new();
            for (seq, id) in inner.store.origin_entries(&r.code)? {
                if seq > r.valid_through_seq {
                    if let Some(frame) = inner.store.event_frame(&id)? {
                        if let Ok(env) = Envelope::open(&frame) {
                            if let Some(Ok(rk)) = env.body().map(RecordKey::of) {
                                records.insert(rk);
                            }
                        }
                    }
                }
            }
            for rk in records {
                let facts = inner.store.record_facts(&rk)?;
                if let Some(state) = RecordState::fold(&rk, &facts, &roster) {
                    let mut batch = WriteBatch::default();
                    inner.store.put_state(&mut batch, &rk, &state)?;
                    inner.store.commit(batch)?;
                }
            }
        }
        pb::event::Body::CommitteeKeyRotated(r) if r.code == inner.settings.code => {
            let own = inner.store.own_chain()?;
            if own.seq < r.chain_seq {
                if let Ok(hash) = <[u8; 32]>::try_from(r.chain_hash.as_slice()) {
                    info!(
                        seq = r.chain_seq,
                        "continuing this committee's chain from the parent's record"
                    );
                    let mut batch = WriteBatch::default();
                    inner.store.put_own_chain(&mut batch, r.chain_seq, &hash);
                    inner.store.commit(batch)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn quarantine(
    inner: &Inner,
    frame: &[u8],
    env: Option<&Envelope>,
    from: &str,
    refusal: &Refusal,
) -> Result<()> {
    let category = refusal_category(refusal);
    metrics::counter!(crate::telemetry::names::QUARANTINED, "category" => category).increment(1);
    if matches!(refusal, Refusal::AwaitingCharter(_)) {
        // Normal while a lateral group's charter events are still on their way; retried.
        tracing::info!(
            from,
            origin = env.map(|e| e.origin()).unwrap_or(""),
            seq = env.map(|e| e.seq()).unwrap_or(0),
            %refusal,
            "event waits for a lateral group's charter"
        );
    } else {
        warn!(
            from,
            category,
            origin = env.map(|e| e.origin()).unwrap_or(""),
            seq = env.map(|e| e.seq()).unwrap_or(0),
            %refusal,
            "event quarantined"
        );
    }
    // One entry per event id, so that a refused event sent again replaces its entry. But a
    // different frame under the same id (a tampered or forged copy) is filed under an id of
    // its own: replacing a genuine entry that waits for a retry would lose that event for
    // good (found by the simulation, seed 1692 in tests/sim.rs).
    let mut id = env.map(|e| e.id).unwrap_or_else(|| new_id(inner));
    let frame_hex = hex::encode(frame);
    if env.is_some()
        && inner
            .store
            .quarantine_get(&id)?
            .is_some_and(|q| q.frame_hex != frame_hex)
    {
        id = new_id(inner);
    }
    let rec = QuarantineRecord {
        id,
        reason: refusal.to_string(),
        category: refusal_category(refusal).to_string(),
        origin: env.map(|e| e.origin().to_string()).unwrap_or_default(),
        seq: env.map(|e| e.seq()).unwrap_or(0),
        event_id: env.map(|e| e.id),
        received_from: provenance(inner, env, from, refusal)?,
        at_ms: inner.clock.now_ms(),
        frame_hex,
        retryable: refusal.may_clear_later(),
    };
    let mut batch = WriteBatch::default();
    inner.store.put_quarantine(&mut batch, &rec)?;
    inner.store.commit(batch)
}

fn count_ingested(r: &IngestReport) {
    use crate::telemetry::names::EVENTS_INGESTED;
    metrics::counter!(EVENTS_INGESTED, "outcome" => "stored").increment(r.stored.into());
    metrics::counter!(EVENTS_INGESTED, "outcome" => "duplicate").increment(r.duplicates.into());
    metrics::counter!(EVENTS_INGESTED, "outcome" => "refused").increment(r.refused.into());
}

pub fn refusal_category(r: &Refusal) -> &'static str {
    match r {
        Refusal::Malformed(_) => "malformed",
        Refusal::Revoked(_) => "revoked key",
        Refusal::BadSignature(_) => "bad signature",
        Refusal::UnknownAuthor(_) => "unknown author",
        Refusal::BrokenChain(_) => "broken chain",
        Refusal::Equivocation(_) => "equivocation",
        Refusal::Unauthorized(_) => "not allowed",
        Refusal::OutOfScope(_) => "out of scope",
        Refusal::FutureTimestamp(_) => "future timestamp",
        Refusal::AwaitingCharter(_) => "awaiting charter",
    }
}

/// Events refused because their author was unknown get another chance once the roster grows.
fn retry_quarantined(inner: &Inner, changes: &mut Vec<pb::Change>) -> Result<()> {
    // One retrier at a time: an event stored by a retry can be a roster or charter event
    // itself; instead of retrying again from inside (and meeting entries the outer pass
    // still holds), the outer pass goes round again while it makes progress.
    thread_local! {
        static RETRYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if RETRYING.with(|r| r.replace(true)) {
        return Ok(());
    }
    let result = (|| -> Result<()> {
        loop {
            let waiting: Vec<QuarantineRecord> = inner
                .store
                .quarantine_list()?
                .into_iter()
                .filter(|q| {
                    q.retryable
                        && (q.category == "awaiting charter"
                            || read_roster(inner).may_verify(&q.origin))
                })
                .collect();
            let mut progress = false;
            for q in waiting {
                let mut batch = WriteBatch::default();
                inner.store.remove_quarantine(&mut batch, &q.id)?;
                inner.store.commit(batch)?;
                let frame = hex::decode(&q.frame_hex).unwrap_or_default();
                if let Outcome::Stored = ingest_frame(inner, &frame, &q.received_from, changes)? {
                    progress = true;
                }
            }
            if !progress {
                return Ok(());
            }
        }
    })();
    RETRYING.with(|r| r.set(false));
    result
}

/// The link to remember for a refused event. An event that waits for a lateral group's
/// charter may need to have come straight from its author (a provisional key,
/// `authz::verifying_key`): when a relayed copy is refused after a direct one, the entry keeps
/// the direct provenance, so that the retry can still take it.
fn provenance(
    inner: &Inner,
    env: Option<&Envelope>,
    from: &str,
    refusal: &Refusal,
) -> Result<String> {
    let (Refusal::AwaitingCharter(_), Some(env)) = (refusal, env) else {
        return Ok(from.to_string());
    };
    let parent = read_roster(inner)
        .parent_of(&inner.settings.code)
        .map(str::to_string);
    let direct = |f: &str| f == env.origin() || parent.as_deref() == Some(f);
    if direct(from) {
        return Ok(from.to_string());
    }
    let kept = inner
        .store
        .quarantine_list()?
        .into_iter()
        .find(|q| q.id == env.id && direct(&q.received_from))
        .map(|q| q.received_from);
    Ok(kept.unwrap_or_else(|| from.to_string()))
}
