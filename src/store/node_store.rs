//! The node's keyspaces over a [`Storage`] engine: typed reads, and the batches that ingest
//! commits. Every key is big-endian so that scans come out in order.
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Space, Storage, WriteBatch};
use crate::domain::record::{RecordKey, RecordState};
use crate::domain::{Fact, OrderKey};
use crate::event::{ChainHead, Envelope, EventHash};
use crate::{Error, Result};

const META_HEAD: &[u8] = b"head";
const META_OWN_SEQ: &[u8] = b"own_seq";
const META_OWN_HASH: &[u8] = b"own_hash";
const META_HLC: &[u8] = b"hlc";
const META_ROSTER_VERSION: &[u8] = b"roster_version";
const META_QUARANTINED: &[u8] = b"quarantined";
const META_FLAGGED: &[u8] = b"flagged/";
const META_STORE_ID: &[u8] = b"store_id";
/// `late/` ++ log position (u64 BE) → nothing: events whose visibility may still grow.
const META_LATE: &[u8] = b"late/";
/// Present when every event of this store was checked for `late/` as it was stored.
const META_LATE_INDEXED: &[u8] = b"late_indexed";
/// The first log position kept in [`Space::LogPages`] (u64 BE); the positions before it are
/// in [`Space::Log`], one record each (a store written before pages existed). Absent until
/// the store's first event after the upgrade, or in a new store's first event (then 1).
const META_LOG_PAGES_FROM: &[u8] = b"log_pages_from";
/// Log positions per [`Space::LogPages`] record.
const LOG_PAGE: u64 = 128;

/// What this node holds from one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// "I hold everything the peer held up to its local log position `position` that I may see."
    pub position: u64,
    /// The peer's roster version at which its last backfill pass to us completed.
    pub roster_version: u64,
    /// The peer's store id that `position` refers to (a replaced store starts over).
    #[serde(default)]
    pub peer_log_id: Vec<u8>,
    /// The peer's own chain head as its batches last said (`Batch.sender_chain_seq`): how far
    /// a child's chain went, for a revocation of its key, even where the parent does not see
    /// the events themselves.
    #[serde(default)]
    pub peer_chain_seq: u64,
    /// The hash of the peer's event `peer_chain_seq` (empty with 0).
    #[serde(default)]
    pub peer_chain_hash: Vec<u8>,
}

impl Cursor {
    /// The peer's chain head as far as this cursor knows: (seq, hash).
    pub fn peer_chain(&self) -> Option<(u64, [u8; 32])> {
        let hash: [u8; 32] = self.peer_chain_hash.as_slice().try_into().ok()?;
        (self.peer_chain_seq > 0).then_some((self.peer_chain_seq, hash))
    }
}

/// A refused event, kept with its reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// The refused event's id when it could be read (so a repeat replaces the entry), else a
    /// fresh UUID v7.
    pub id: Uuid,
    pub reason: String,
    /// The refusal's category, e.g. "bad signature".
    pub category: String,
    pub origin: String,
    pub seq: u64,
    pub event_id: Option<Uuid>,
    /// The link it arrived on, or "local".
    pub received_from: String,
    pub at_ms: u64,
    /// The frame as received (hex), for evidence and for retrying.
    pub frame_hex: String,
    /// Whether a later roster change may let it in (it is retried then).
    pub retryable: bool,
}

/// One entry of the local log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub position: u64,
    pub id: Uuid,
    /// The peer it came from; None when authored here.
    pub source: Option<String>,
}

#[derive(Clone)]
pub struct NodeStore {
    engine: Arc<dyn Storage>,
}

fn u64_at(v: Option<Vec<u8>>) -> u64 {
    v.and_then(|b| b.as_slice().try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

fn record_event_key(rk: &RecordKey, key: &OrderKey) -> Vec<u8> {
    let mut k = rk.to_bytes().to_vec();
    k.extend_from_slice(&key.hlc.to_be_bytes());
    k.extend_from_slice(key.origin.as_bytes());
    k.extend_from_slice(&key.seq.to_be_bytes());
    k
}

fn origin_key(origin: &str, seq: u64) -> Vec<u8> {
    let mut k = origin.as_bytes().to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The entries of one [`Space::LogPages`] record.
fn read_log_page(key: &[u8], page: &[u8]) -> Result<Vec<LogEntry>> {
    let bad = |what: &str| {
        Error::Storage(format!(
            "the log page {} is damaged: {what}; `liandong backup verify` checks the whole store",
            hex::encode(key)
        ))
    };
    let first: [u8; 8] = page
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("shorter than its header"))?;
    let mut position = u64::from_be_bytes(first);
    let mut rest = &page[8..];
    let mut out = Vec::with_capacity(rest.len() / 17);
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        let entry = tail
            .get(..16 + len)
            .ok_or_else(|| bad("an entry runs past its end"))?;
        let id = Uuid::from_slice(&entry[..16]).map_err(|_| bad("an event id"))?;
        let source = (len > 0).then(|| String::from_utf8_lossy(&entry[16..]).into_owned());
        out.push(LogEntry {
            position,
            id,
            source,
        });
        position += 1;
        rest = &tail[16 + len..];
    }
    Ok(out)
}

impl NodeStore {
    pub fn new(engine: Arc<dyn Storage>) -> NodeStore {
        NodeStore { engine }
    }

    pub fn engine(&self) -> &Arc<dyn Storage> {
        &self.engine
    }

    pub fn sync(&self) -> Result<()> {
        self.engine.sync()
    }

    /// The first half of [`NodeStore::sync`] ([`Storage::flush_staged`]).
    pub fn flush_staged(&self) -> Result<()> {
        self.engine.flush_staged()
    }

    /// The second half of [`NodeStore::sync`] ([`Storage::sync_flushed`]).
    pub fn sync_flushed(&self) -> Result<()> {
        self.engine.sync_flushed()
    }

    pub fn commit(&self, batch: WriteBatch) -> Result<()> {
        self.engine.commit(batch)
    }

    /// The local log's last position (= number of events held).
    pub fn head(&self) -> Result<u64> {
        Ok(u64_at(self.engine.get(Space::Meta, META_HEAD)?))
    }

    pub fn own_chain(&self) -> Result<ChainHead> {
        let seq = u64_at(self.engine.get(Space::Meta, META_OWN_SEQ)?);
        let hash = self
            .engine
            .get(Space::Meta, META_OWN_HASH)?
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok());
        Ok(ChainHead { seq, hash })
    }

    pub fn last_hlc(&self) -> Result<u64> {
        Ok(u64_at(self.engine.get(Space::Meta, META_HLC)?))
    }

    /// This store's random id, made on first use: peers tell a replaced store by it.
    pub fn store_id(&self) -> Result<Vec<u8>> {
        if let Some(id) = self.engine.get(Space::Meta, META_STORE_ID)? {
            return Ok(id);
        }
        let id = Uuid::now_v7().as_bytes().to_vec();
        let mut batch = WriteBatch::default();
        batch.put(Space::Meta, META_STORE_ID.to_vec(), id.clone());
        self.engine.commit(batch)?;
        self.engine.sync()?;
        Ok(id)
    }

    pub fn roster_version(&self) -> Result<u64> {
        Ok(u64_at(self.engine.get(Space::Meta, META_ROSTER_VERSION)?))
    }

    pub fn quarantined(&self) -> Result<u64> {
        Ok(u64_at(self.engine.get(Space::Meta, META_QUARANTINED)?))
    }

    pub fn has_event(&self, id: &Uuid) -> Result<bool> {
        Ok(self.engine.get(Space::Events, id.as_bytes())?.is_some())
    }

    /// The signed frame of an event, verbatim.
    pub fn event_frame(&self, id: &Uuid) -> Result<Option<Vec<u8>>> {
        self.engine.get(Space::Events, id.as_bytes())
    }

    /// The event held for (origin, seq), with its hash.
    pub fn by_origin(&self, origin: &str, seq: u64) -> Result<Option<(Uuid, EventHash)>> {
        let Some(v) = self.engine.get(Space::Origins, &origin_key(origin, seq))? else {
            return Ok(None);
        };
        if v.len() != 48 {
            return Err(Error::Storage(format!(
                "origin index entry of {origin}/{seq} is {} bytes",
                v.len()
            )));
        }
        let id = Uuid::from_slice(&v[..16]).map_err(|e| Error::Storage(e.to_string()))?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&v[16..]);
        Ok(Some((id, hash)))
    }

    /// Up to `limit` log entries after `after`.
    pub fn log_after(&self, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        let pages_from = self.log_pages_from()?;
        let mut out = Vec::new();
        if after.saturating_add(1) < pages_from.unwrap_or(u64::MAX) {
            out = self.unpaged_log_after(after, limit)?;
            // The unpaged log holds only positions before the pages; a scan that came back
            // short has reached its end.
            if out.len() >= limit || pages_from.is_none() {
                return Ok(out);
            }
        }
        let Some(pages_from) = pages_from else {
            return Ok(out);
        };
        let after = after.max(pages_from.saturating_sub(1));
        let first_page = after / LOG_PAGE; // the page holding position `after + 1`
        let want_pages = (limit - out.len())
            .div_ceil(LOG_PAGE as usize)
            .saturating_add(1);
        let from_key = first_page.checked_sub(1).map(u64::to_be_bytes);
        let pages = self.engine.scan(
            Space::LogPages,
            b"",
            from_key.as_ref().map(|k| k.as_slice()),
            want_pages,
        )?;
        for (key, page) in pages {
            for entry in read_log_page(&key, &page)? {
                if entry.position > after {
                    out.push(entry);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Where [`Space::LogPages`] begin, if they do yet.
    fn log_pages_from(&self) -> Result<Option<u64>> {
        Ok(self
            .engine
            .get(Space::Meta, META_LOG_PAGES_FROM)?
            .map(|v| u64_at(Some(v))))
    }

    /// Up to `limit` entries of the unpaged log [`Space::Log`] after `after`.
    fn unpaged_log_after(&self, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        let rows = self
            .engine
            .scan(Space::Log, b"", Some(&after.to_be_bytes()), limit)?;
        rows.into_iter()
            .map(|(k, v)| {
                let position = u64::from_be_bytes(
                    k.as_slice()
                        .try_into()
                        .map_err(|_| Error::Storage("bad log key".into()))?,
                );
                let id = Uuid::from_slice(v.get(..16).unwrap_or_default())
                    .map_err(|_| Error::Storage(format!("bad log entry at {position}")))?;
                let source = (v.len() > 16).then(|| String::from_utf8_lossy(&v[16..]).into_owned());
                Ok(LogEntry {
                    position,
                    id,
                    source,
                })
            })
            .collect()
    }

    /// Every event of a record, decoded, in canonical order. A record with a state finds
    /// them in the state's history (every event the fold saw, applied or refused, in fold
    /// order); the committee records, which have no state (the roster is kept by ingest),
    /// in the record index [`Space::Records`].
    pub fn record_envelopes(&self, rk: &RecordKey) -> Result<Vec<Envelope>> {
        let ids: Vec<Uuid> = match self.state(rk)? {
            Some(state) => state.history().iter().map(|h| h.event_id).collect(),
            None => self.record_index(rk)?,
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let frame = self.event_frame(&id)?.ok_or_else(|| {
                Error::Storage(format!(
                    "record {} names event {id}, which is missing",
                    rk.id_text()
                ))
            })?;
            let env = Envelope::open(&frame)
                .map_err(|e| Error::Storage(format!("stored event {id} does not decode: {e}")))?;
            out.push(env);
        }
        Ok(out)
    }

    /// The event ids the record index [`Space::Records`] lists for `rk`, in canonical order.
    /// Only records without a state are indexed there (stores written before 2026-12-03
    /// index every record; the extra entries are never read).
    pub fn record_index(&self, rk: &RecordKey) -> Result<Vec<Uuid>> {
        self.engine
            .scan(Space::Records, &rk.to_bytes(), None, usize::MAX)?
            .into_iter()
            .map(|(_, id)| {
                Uuid::from_slice(&id).map_err(|_| Error::Storage("bad record index entry".into()))
            })
            .collect()
    }

    pub fn record_facts(&self, rk: &RecordKey) -> Result<Vec<Fact>> {
        Ok(self
            .record_envelopes(rk)?
            .iter()
            .filter_map(Fact::of)
            .collect())
    }

    pub fn state(&self, rk: &RecordKey) -> Result<Option<RecordState>> {
        match self.engine.get(Space::State, &rk.to_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Every record of one family (`tag` is the record key's tag byte: b't', b'a', ...).
    pub fn states_with_tag(&self, tag: u8) -> Result<Vec<(RecordKey, RecordState)>> {
        let rows = self.engine.scan(Space::State, &[tag], None, usize::MAX)?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            let Some(rk) = RecordKey::from_bytes(&k) else {
                continue;
            };
            out.push((rk, serde_json::from_slice(&v)?));
        }
        Ok(out)
    }

    /// Every registration event held (the roster's source), in log order.
    pub fn registrations(&self) -> Result<Vec<Envelope>> {
        let rows = self.engine.scan(Space::Records, b"c", None, usize::MAX)?;
        let mut out = Vec::new();
        for (_, id) in rows {
            let id = Uuid::from_slice(&id)
                .map_err(|_| Error::Storage("bad record index entry".into()))?;
            if let Some(frame) = self.event_frame(&id)? {
                out.push(Envelope::open(&frame).map_err(|e| Error::Storage(e.to_string()))?);
            }
        }
        Ok(out)
    }

    pub fn cursor(&self, peer: &str) -> Result<Cursor> {
        match self.engine.get(Space::Cursors, peer.as_bytes())? {
            Some(v) => Ok(serde_json::from_slice(&v)?),
            None => Ok(Cursor::default()),
        }
    }

    pub fn put_cursor(&self, batch: &mut WriteBatch, peer: &str, cursor: &Cursor) -> Result<()> {
        batch.put(
            Space::Cursors,
            peer.as_bytes().to_vec(),
            serde_json::to_vec(cursor)?,
        );
        Ok(())
    }

    /// The quarantine entry filed under `id`, if any.
    pub fn quarantine_get(&self, id: &Uuid) -> Result<Option<QuarantineRecord>> {
        match self.engine.get(Space::Quarantine, id.as_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    pub fn quarantine_list(&self) -> Result<Vec<QuarantineRecord>> {
        self.engine
            .scan(Space::Quarantine, b"", None, usize::MAX)?
            .into_iter()
            .map(|(_, v)| Ok(serde_json::from_slice(&v)?))
            .collect()
    }

    /// Keeps a refused event. An entry with the same id (the same event refused again, e.g.
    /// re-sent after a reconnect) is replaced, not added twice.
    pub fn put_quarantine(&self, batch: &mut WriteBatch, rec: &QuarantineRecord) -> Result<()> {
        let key = rec.id.as_bytes().to_vec();
        if self.engine.get(Space::Quarantine, &key)?.is_none() {
            let count = self.quarantined()? + 1;
            batch.put(
                Space::Meta,
                META_QUARANTINED.to_vec(),
                count.to_be_bytes().to_vec(),
            );
        }
        batch.put(Space::Quarantine, key, serde_json::to_vec(rec)?);
        Ok(())
    }

    pub fn remove_quarantine(&self, batch: &mut WriteBatch, id: &Uuid) -> Result<()> {
        let count = self.quarantined()?.saturating_sub(1);
        batch.delete(Space::Quarantine, id.as_bytes().to_vec());
        batch.put(
            Space::Meta,
            META_QUARANTINED.to_vec(),
            count.to_be_bytes().to_vec(),
        );
        Ok(())
    }

    pub fn put_state(
        &self,
        batch: &mut WriteBatch,
        record: &RecordKey,
        state: &RecordState,
    ) -> Result<()> {
        batch.put(
            Space::State,
            record.to_bytes().to_vec(),
            serde_json::to_vec(state)?,
        );
        Ok(())
    }

    /// Sets where this committee's own chain continues (after a rotation on a new machine).
    pub fn put_own_chain(&self, batch: &mut WriteBatch, seq: u64, hash: &EventHash) {
        batch.put(
            Space::Meta,
            META_OWN_SEQ.to_vec(),
            seq.to_be_bytes().to_vec(),
        );
        batch.put(Space::Meta, META_OWN_HASH.to_vec(), hash.to_vec());
    }

    /// Every (seq, event id) held of one origin, in seq order.
    pub fn origin_entries(&self, origin: &str) -> Result<Vec<(u64, Uuid)>> {
        self.engine
            .scan(Space::Origins, origin.as_bytes(), None, usize::MAX)?
            .into_iter()
            .filter_map(|(k, v)| {
                let seq = u64::from_be_bytes(k.get(k.len().checked_sub(8)?..)?.try_into().ok()?);
                Some(Uuid::from_slice(v.get(..16)?).map(|id| (seq, id)))
            })
            .map(|r| r.map_err(|e| Error::Storage(format!("bad origin index entry: {e}"))))
            .collect()
    }

    /// The highest seq of `origin` held here, with its hash.
    pub fn last_of_origin(&self, origin: &str) -> Result<Option<(u64, EventHash)>> {
        let Some((seq, _)) = self.origin_entries(origin)?.last().copied() else {
            return Ok(None);
        };
        Ok(self.by_origin(origin, seq)?.map(|(_, h)| (seq, h)))
    }

    /// Marks a committee caught signing two different events with one seq (kept as evidence
    /// in the quarantine); `status` lists them.
    pub fn flag_origin(&self, origin: &str, why: &str) -> Result<()> {
        let mut batch = WriteBatch::default();
        let mut key = META_FLAGGED.to_vec();
        key.extend_from_slice(origin.as_bytes());
        batch.put(Space::Meta, key, why.as_bytes().to_vec());
        self.engine.commit(batch)
    }

    /// Committees flagged for equivocation, with the first evidence.
    pub fn flagged_origins(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .engine
            .scan(Space::Meta, META_FLAGGED, None, usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k[META_FLAGGED.len()..]).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect())
    }

    /// Marks the event at `position` as one whose visibility may still grow (it names a
    /// committee this node could not place yet, or a lateral group): backfill passes re-check
    /// only these.
    pub fn put_late(&self, batch: &mut WriteBatch, position: u64) {
        let mut key = META_LATE.to_vec();
        key.extend_from_slice(&position.to_be_bytes());
        batch.put(Space::Meta, key, Vec::new());
    }

    /// Whether every event held was checked for [`NodeStore::put_late`] when it was stored
    /// (a store made by an older version was not: its backfill passes walk the whole log).
    pub fn late_indexed(&self) -> Result<bool> {
        Ok(self.engine.get(Space::Meta, META_LATE_INDEXED)?.is_some())
    }

    /// Records that this store marks its late events (a new, empty store).
    pub fn set_late_indexed(&self, batch: &mut WriteBatch) {
        batch.put(Space::Meta, META_LATE_INDEXED.to_vec(), vec![1]);
    }

    /// Up to `limit` positions of late events after `after`, in order.
    pub fn late_after(&self, after: u64, limit: usize) -> Result<Vec<u64>> {
        let mut from = META_LATE.to_vec();
        from.extend_from_slice(&after.to_be_bytes());
        Ok(self
            .engine
            .scan(Space::Meta, META_LATE, Some(&from), limit)?
            .into_iter()
            .filter_map(|(k, _)| {
                let tail: [u8; 8] = k.get(META_LATE.len()..)?.try_into().ok()?;
                Some(u64::from_be_bytes(tail))
            })
            .collect())
    }

    /// The log entry at `position`, if any.
    pub fn log_at(&self, position: u64) -> Result<Option<LogEntry>> {
        Ok(self
            .log_after(position.saturating_sub(1), 1)?
            .into_iter()
            .find(|e| e.position == position))
    }

    /// Adds the log entry at `position` to its page: the page is rewritten whole, in memory
    /// until the group's sync ([`super::staging`]), so sled sees one record per page per group.
    fn append_to_log(
        &self,
        batch: &mut WriteBatch,
        position: u64,
        id: &Uuid,
        source: Option<&str>,
    ) -> Result<()> {
        let staged = batch
            .pending(Space::Meta, META_LOG_PAGES_FROM)
            .is_some_and(|v| v.is_some());
        if !staged && self.log_pages_from()?.is_none() {
            // The first event since pages exist: the earlier positions stay where they are.
            batch.put(
                Space::Meta,
                META_LOG_PAGES_FROM.to_vec(),
                position.to_be_bytes().to_vec(),
            );
        }
        let key = ((position - 1) / LOG_PAGE).to_be_bytes();
        let mut page = match batch.pending(Space::LogPages, &key) {
            Some(v) => v.map(<[u8]>::to_vec),
            None => self.engine.get(Space::LogPages, &key)?,
        }
        .unwrap_or_else(|| position.to_be_bytes().to_vec());
        let source = source.unwrap_or_default().as_bytes();
        let source_len = u8::try_from(source.len())
            .map_err(|_| Error::Storage(format!("a link code of {} bytes", source.len())))?;
        page.reserve(17 + source.len());
        page.push(source_len);
        page.extend_from_slice(id.as_bytes());
        page.extend_from_slice(source);
        batch.put(Space::LogPages, key.to_vec(), page);
        Ok(())
    }

    /// Adds an event (`frame`, its signed bytes as received or authored) with all its
    /// indexes and its record's new state to `batch`. `position` must be `head() + 1`; the
    /// batch moves the head.
    #[allow(clippy::too_many_arguments)]
    pub fn put_event(
        &self,
        batch: &mut WriteBatch,
        position: u64,
        env: &Envelope,
        frame: Vec<u8>,
        source: Option<&str>,
        record: Option<&RecordKey>,
        state: Option<&RecordState>,
        own: bool,
        roster_changed: bool,
    ) -> Result<()> {
        let id = env.id.as_bytes().to_vec();
        batch.put(Space::Events, id.clone(), frame);
        self.append_to_log(batch, position, &env.id, source)?;
        let mut origin_value = id.clone();
        origin_value.extend_from_slice(&env.hash);
        batch.put(
            Space::Origins,
            origin_key(env.origin(), env.seq()),
            origin_value,
        );
        // A kind this version does not know is kept and forwarded but belongs to no record.
        if let Some(record) = record {
            let key = OrderKey {
                hlc: env.hlc(),
                origin: env.origin().to_string(),
                seq: env.seq(),
            };
            // The state's history lists the record's events, so a record with a state needs no
            // index entry of its own: one sled record less per event (BENCHMARKS.md).
            match state {
                Some(state) => self.put_state(batch, record, state)?,
                None => batch.put(Space::Records, record_event_key(record, &key), id),
            }
        }
        batch.put(
            Space::Meta,
            META_HEAD.to_vec(),
            position.to_be_bytes().to_vec(),
        );
        let hlc = self.last_hlc()?.max(env.hlc());
        batch.put(Space::Meta, META_HLC.to_vec(), hlc.to_be_bytes().to_vec());
        if own {
            batch.put(
                Space::Meta,
                META_OWN_SEQ.to_vec(),
                env.seq().to_be_bytes().to_vec(),
            );
            batch.put(Space::Meta, META_OWN_HASH.to_vec(), env.hash.to_vec());
        }
        if roster_changed {
            let v = self.roster_version()? + 1;
            batch.put(
                Space::Meta,
                META_ROSTER_VERSION.to_vec(),
                v.to_be_bytes().to_vec(),
            );
        }
        Ok(())
    }
}
