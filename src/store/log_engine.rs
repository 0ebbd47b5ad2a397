//! The log engine: one append-only file and an index in memory (the Bitcask design, as in
//! toydb's `BitCask`). Every [`WriteBatch`] becomes one **record** at the end of the file; the
//! index maps each live key to where its latest value sits in the file; a read is one lookup
//! and, for a value already written out, one positioned read.
//!
//! Why a second engine: sled 0.34 is what bounds the relay, the catch-up and the fan-out
//! (BENCHMARKS.md). Its `apply_batch` splits and rewrites whole leaves, clones them in memory,
//! takes a lock shared by every tree in the process, and hands every flush to a thread of its
//! own; a node writes a few small records per event, always at the right edge of their
//! keyspace, and reads little of what it wrote long ago — an append-only file fits that.
//!
//! **Format.** The file starts with [`MAGIC`] (eight bytes, the last one the format version).
//! Then records: `body length (u32 LE) ++ CRC-32 of the body (u32 LE) ++ body`, the body one
//! op after another — `keyspace tag (1) ++ kind (1: put, 0: delete) ++ key length (u32 LE) ++
//! key`, and for a put `value length (u32 LE) ++ value`.
//!
//! **Durability.** [`Storage::commit`] appends the record to a buffer in memory and updates
//! the index (so it is visible at once); [`Storage::sync`] writes the buffer at the file's end
//! and `fdatasync`s it. Nothing is acknowledged before that returns, so what a crash can take
//! is only unacknowledged writes, and only whole records: at [`LogStorage::open`] the file is
//! read from the start, and the first record that is cut short or fails its CRC ends the log —
//! the file is truncated there, after the bytes from there on are copied to
//! `liandong.log.torn-<offset>` so that nothing is thrown away unseen. A record is a whole
//! batch, so a batch is there entirely or not at all.
//!
//! **Compaction.** Overwritten and deleted values stay in the file as garbage. When a sync
//! leaves more garbage than live data (and the file is past [`COMPACT_FLOOR_BYTES`]), the live
//! values are copied to `liandong.log.compact`, which is synced and renamed over the log; the
//! directory is synced after the rename. Commits and reads go on meanwhile: the copy is of what
//! had been written when it began, and the index moves to the new file in one step at the end,
//! with the offsets of what was committed during the copy moved along. A crash before the
//! rename leaves the old log whole (the half-written copy is removed at the next open); after
//! it, the new one.
//!
//! **Cost.** The index holds every key in memory — about 45 bytes per key built at open, 80
//! grown by inserts, three or four keys per event.
//!
//! **Start-up.** A start after a crash reads the whole log. A clean stop (the store dropped
//! with everything synced, the log over [`SNAPSHOT_FLOOR_BYTES`]) writes the index to
//! `liandong.index` — the log length it covers, every key and location, a CRC — through a
//! synced temporary file and a rename; the next open reads that instead of the log, if its
//! CRC holds and it covers exactly the log's length, and **removes it, durably, before
//! anything else**: from the store's first write on it would be stale, so a snapshot exists
//! only between a clean stop and the next open, and a crash never meets an old one.
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use smallvec::SmallVec;

use super::{Entry, Space, Storage, WriteBatch};
use crate::{Error, Result};

/// The log's file name inside the store folder; its presence is what marks a store as one of
/// this engine's ([`super::EngineKind::detect`]).
pub const LOG_FILE: &str = "liandong.log";
/// A compaction in progress (removed at open: the log beside it is whole).
const COMPACT_FILE: &str = "liandong.log.compact";
/// Held locked (`flock`) while a process has the store open.
const LOCK_FILE: &str = "liandong.lock";
/// The index as a clean stop left it (module docs, "Start-up").
const SNAPSHOT_FILE: &str = "liandong.index";
const SNAPSHOT_TMP: &str = "liandong.index.tmp";
/// The snapshot's first eight bytes; the last is its format version.
const SNAPSHOT_MAGIC: &[u8; 8] = b"LDIDX\0\0\x01";
/// Below this much log a start reads the log itself: a snapshot would save nothing.
pub const SNAPSHOT_FLOOR_BYTES: u64 = 4 << 20;

/// The file's first eight bytes; the last is the format version.
pub const MAGIC: &[u8; 8] = b"LDLOG\0\0\x01";

/// Bytes of a record's header: body length and CRC.
const RECORD_HEADER: u64 = 8;
/// Bytes of an op's header: tag, kind, key length; plus a put's value length.
const OP_HEADER: u64 = 6;
const VALUE_HEADER: u64 = 4;

/// Below this size the log is never compacted: a small store's garbage costs nothing, and a
/// compaction of a few megabytes after every few syncs would.
pub const COMPACT_FLOOR_BYTES: u64 = 16 << 20;

/// The most a torn tail can be: a crash interrupts one sync's write, a group of at most a few
/// hundred events of at most 128 KiB each, with their states. A bad record further from the
/// end than this is damage, and the open refuses it instead of cutting it off.
pub const TORN_TAIL_MAX_BYTES: u64 = 256 << 20;

/// The most of the last sync's records kept in memory for reads ([`Inner::recent`]).
const RECENT_MAX_BYTES: usize = 8 << 20;

/// Bodies of the compacted file hold about this many bytes each.
const COMPACT_RECORD_BYTES: usize = 1 << 20;

/// A key in the index: keyspace tag ++ key, inline up to 24 bytes (every key but the
/// committees' record index and long counter names), so that most keys cost no allocation
/// of their own.
type Key = SmallVec<[u8; 24]>;

/// Where a live value is in the file (or in the bytes not yet written to it). Packed to 12
/// bytes: the index holds one per key, three or four per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed(4))]
struct Loc {
    /// Offset of the value's first byte in the file.
    offset: u64,
    len: u32,
}

/// What [`Storage::commit`] and [`Storage::sync`] share with readers.
struct Inner {
    /// Keyspace tag ++ key → its latest value.
    index: BTreeMap<Key, Loc>,
    /// The log; replaced by a compaction, so readers hold an `Arc` to the one their offsets
    /// belong to.
    file: Arc<File>,
    /// Bytes of the file that are written (not necessarily synced): reads below this go to
    /// the file.
    written: u64,
    /// Records a sync is writing now, from offset `written`: still read from memory.
    in_flight: Option<Arc<Vec<u8>>>,
    /// The records the last sync wrote, from this offset, kept in memory until the next one:
    /// the node's links read what was just made durable (to send it on), and the writer the
    /// chain heads it just wrote, without a system call each (up to [`RECENT_MAX_BYTES`]).
    recent: Option<(u64, Arc<Vec<u8>>)>,
    /// Records committed since, from offset `written + in_flight.len()`.
    buffer: Vec<u8>,
    /// Bytes of the file (and buffers) that hold live values, with their op headers: what a
    /// compaction would keep.
    live_bytes: u64,
    /// Every value of [`Space::Meta`], also kept here (key without its keyspace tag → value):
    /// the node reads its head, clock and chain counters at almost every event, and a read
    /// from the file is a system call each (BENCHMARKS.md, "Fewer copies in the writer").
    /// They are a few dozen bytes each, and few but for the `late/` marks, which are empty.
    meta: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Inner {
    fn end(&self) -> u64 {
        self.written
            + self.in_flight.as_ref().map_or(0, |b| b.len() as u64)
            + self.buffer.len() as u64
    }

    /// Where to read `loc` from: the file (later, without the lock) or memory (now).
    fn locate(&self, loc: Loc) -> Source {
        if loc.offset + u64::from(loc.len) <= self.written {
            if let Some((from, recent)) = &self.recent {
                if loc.offset >= *from {
                    return Source::Bytes(slice(recent, loc.offset - from, loc.len));
                }
            }
            return Source::File(self.file.clone(), loc);
        }
        let mut start = loc.offset - self.written;
        if let Some(in_flight) = &self.in_flight {
            let n = in_flight.len() as u64;
            if start < n {
                return Source::Bytes(slice(in_flight, start, loc.len));
            }
            start -= n;
        }
        Source::Bytes(slice(&self.buffer, start, loc.len))
    }

    fn should_compact(&self, floor: u64) -> bool {
        let total = self.end();
        total >= floor && total.saturating_sub(self.live_bytes) > self.live_bytes
    }
}

fn slice(bytes: &[u8], start: u64, len: u32) -> Vec<u8> {
    let start = start as usize;
    bytes[start..start + len as usize].to_vec()
}

enum Source {
    File(Arc<File>, Loc),
    Bytes(Vec<u8>),
}

impl Source {
    fn read(self) -> Result<Vec<u8>> {
        match self {
            Source::Bytes(b) => Ok(b),
            Source::File(file, loc) => {
                let mut out = vec![0; loc.len as usize];
                file.read_exact_at(&mut out, loc.offset)?;
                Ok(out)
            }
        }
    }
}

/// A store in one append-only file (module docs).
pub struct LogStorage {
    dir: PathBuf,
    inner: RwLock<Inner>,
    /// One sync (and compaction) at a time; commits and reads do not wait for it.
    syncing: Mutex<()>,
    /// Set once a sync's write or `fdatasync` failed: the file's tail is then unknown, so the
    /// store refuses further syncs rather than acknowledge on top of it.
    failed: std::sync::atomic::AtomicBool,
    /// [`COMPACT_FLOOR_BYTES`], smaller in tests.
    compact_floor: u64,
    /// [`SNAPSHOT_FLOOR_BYTES`], smaller in tests.
    snapshot_floor: u64,
    /// Keeps the store's lock file locked while open.
    _lock: File,
}

impl LogStorage {
    /// Opens (or creates) the store in `dir`, recovering its index from the log.
    pub fn open(dir: &Path) -> Result<LogStorage> {
        Self::open_tuned(dir, COMPACT_FLOOR_BYTES, SNAPSHOT_FLOOR_BYTES)
    }

    #[cfg(test)]
    fn open_with_floor(dir: &Path, compact_floor: u64) -> Result<LogStorage> {
        Self::open_tuned(dir, compact_floor, SNAPSHOT_FLOOR_BYTES)
    }

    fn open_tuned(dir: &Path, compact_floor: u64, snapshot_floor: u64) -> Result<LogStorage> {
        std::fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        if lock.try_lock().is_err() {
            return Err(Error::Config(format!(
                "the store in {} is in use by another liandong process; stop it first",
                dir.display()
            )));
        }
        let path = dir.join(LOG_FILE);
        let _ = std::fs::remove_file(dir.join(COMPACT_FILE));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        // New, or a crash came between creating the file and syncing its header: nothing was
        // ever stored in it, so it is started afresh.
        if is_unstarted(&file)? {
            file.write_all_at(MAGIC, 0)?;
            file.sync_all()?;
            sync_dir(dir)?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let snapshot = take_snapshot(dir, file.metadata()?.len())?;
        let (index, written, live_bytes) = match snapshot {
            Some(recovered) => recovered,
            None => recover(dir, &file, TORN_TAIL_MAX_BYTES)?,
        };
        let meta = read_meta(&index, &file)?;
        let storage = LogStorage {
            dir: dir.to_path_buf(),
            inner: RwLock::new(Inner {
                index,
                file: Arc::new(file),
                written,
                in_flight: None,
                recent: None,
                buffer: Vec::new(),
                live_bytes,
                meta,
            }),
            syncing: Mutex::new(()),
            failed: std::sync::atomic::AtomicBool::new(false),
            compact_floor,
            snapshot_floor,
            _lock: lock,
        };
        {
            let _one = storage.sync_lock()?;
            if storage.read()?.should_compact(compact_floor) {
                storage.compact()?;
            }
        }
        // The snapshot's bytes and the sorted entries the index was built from are freed.
        crate::memory::release_freed();
        Ok(storage)
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Inner>> {
        self.inner
            .read()
            .map_err(|_| Error::Storage("log store lock poisoned".into()))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Inner>> {
        self.inner
            .write()
            .map_err(|_| Error::Storage("log store lock poisoned".into()))
    }

    fn sync_lock(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.syncing
            .lock()
            .map_err(|_| Error::Storage("log store sync lock poisoned".into()))
    }

    /// Writes what was committed since the last sync and `fdatasync`s it.
    fn write_out(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.failed.load(Ordering::Acquire) {
            return Err(Error::Storage(format!(
                "an earlier write to {} failed; restart the node to recover the store from \
                 its log",
                self.dir.join(LOG_FILE).display()
            )));
        }
        let (chunk, at, file) = {
            let mut w = self.write()?;
            if w.buffer.is_empty() {
                return Ok(());
            }
            let chunk = Arc::new(std::mem::take(&mut w.buffer));
            w.in_flight = Some(chunk.clone());
            (chunk, w.written, w.file.clone())
        };
        let done = file
            .write_all_at(&chunk, at)
            .and_then(|()| file.sync_data());
        let mut w = self.write()?;
        w.in_flight = None;
        match done {
            Ok(()) => {
                w.recent = (chunk.len() <= RECENT_MAX_BYTES).then(|| (w.written, chunk.clone()));
                w.written += chunk.len() as u64;
                Ok(())
            }
            Err(e) => {
                // What was committed stays readable in memory, but its place in the file is
                // unknown: no later sync may report it durable.
                let mut restored = Vec::with_capacity(chunk.len() + w.buffer.len());
                restored.extend_from_slice(&chunk);
                restored.extend_from_slice(&w.buffer);
                w.buffer = restored;
                self.failed.store(true, Ordering::Release);
                Err(Error::Storage(format!(
                    "cannot write {}: {e}. Nothing written since the last sync was \
                     acknowledged; free the disk (or fix it) and restart the node, which \
                     recovers the store from its log",
                    self.dir.join(LOG_FILE).display()
                )))
            }
        }
    }

    /// Writes the index to [`SNAPSHOT_FILE`] if everything committed is synced (a stop with
    /// unsynced commits is a crash as far as the next start is concerned: it reads the log).
    fn write_snapshot(&self) -> Result<()> {
        if self.failed.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let r = self.read()?;
        if !r.buffer.is_empty()
            || r.in_flight.is_some()
            || r.written < self.snapshot_floor
            || r.index.keys().any(|k| k.len() > usize::from(u16::MAX))
        {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let tmp = self.dir.join(SNAPSHOT_TMP);
        let file = File::create(&tmp)?;
        let mut crc = crc32fast::Hasher::new();
        let mut out = BufWriter::with_capacity(1 << 20, &file);
        let mut put = |bytes: &[u8]| -> std::io::Result<()> {
            crc.update(bytes);
            out.write_all(bytes)
        };
        put(SNAPSHOT_MAGIC)?;
        put(&r.written.to_le_bytes())?;
        put(&(r.index.len() as u64).to_le_bytes())?;
        for (key, loc) in &r.index {
            let (offset, len) = (loc.offset, loc.len);
            put(&(key.len() as u16).to_le_bytes())?;
            put(key)?;
            put(&offset.to_le_bytes())?;
            put(&len.to_le_bytes())?;
        }
        let keys = r.index.len();
        let covered = r.written;
        drop(r);
        out.write_all(&crc.finalize().to_le_bytes())?;
        out.flush()?;
        drop(out);
        file.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(SNAPSHOT_FILE))?;
        sync_dir(&self.dir)?;
        tracing::debug!(
            store = %self.dir.display(),
            keys,
            covered,
            ms = started.elapsed().as_millis() as u64,
            "wrote the index snapshot"
        );
        Ok(())
    }

    /// Copies the live values to a new log and switches to it (module docs). The caller
    /// holds the sync lock, so nothing is in flight. A failure before the new file replaces
    /// the log leaves everything as it was (the data was synced already), so it is only
    /// logged; one after it stops the store from syncing again.
    fn compact(&self) -> Result<()> {
        match self.copy_live() {
            Ok(copy) => {
                let switched = self.switch_to(copy).inspect_err(|_| {
                    self.failed
                        .store(true, std::sync::atomic::Ordering::Release);
                });
                // The copy's map of moved keys, as large as the index, is freed.
                crate::memory::release_freed();
                switched
            }
            Err(e) => {
                let _ = std::fs::remove_file(self.dir.join(COMPACT_FILE));
                tracing::warn!(
                    store = %self.dir.display(),
                    error = %e,
                    "could not compact the log (nothing was lost; it will be tried again)"
                );
                Ok(())
            }
        }
    }

    /// Writes every live value, as of one moment, to the compaction file and syncs it.
    ///
    /// The moment is taken under the lock, *including* commits not yet synced: the new file
    /// must hold the state after a whole number of batches (a batch that deleted one key and
    /// wrote another must not come back half applied from a crash), and the state after every
    /// batch committed so far is one. The buffered records still reach the file after it at
    /// the next sync; replaying them over the state they led to changes nothing.
    fn copy_live(&self) -> Result<Compacted> {
        let started = std::time::Instant::now();
        let (mut live, cut, old) = {
            let r = self.read()?;
            let live: Vec<(Key, Loc, Option<Vec<u8>>)> = r
                .index
                .iter()
                .map(|(k, loc)| {
                    let in_memory = match r.locate(*loc) {
                        Source::Bytes(b) => Some(b),
                        Source::File(..) => None,
                    };
                    (k.clone(), *loc, in_memory)
                })
                .collect();
            (live, r.written, r.file.clone())
        };
        // In the order they were written: sequential reads, and what belongs together in
        // time stays together.
        live.sort_by_key(|(_, loc, _)| loc.offset);
        let path = self.dir.join(COMPACT_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let mut out = BufWriter::with_capacity(1 << 20, &file);
        out.write_all(MAGIC)?;
        let mut at = MAGIC.len() as u64;
        let mut moved: HashMap<Key, (Loc, Loc)> = HashMap::with_capacity(live.len());
        let mut body = Vec::with_capacity(COMPACT_RECORD_BYTES + (64 << 10));
        let mut pending: Vec<(Key, Loc, u64)> = Vec::new();
        let mut from_file = Vec::new();
        let mut write_record = |out: &mut BufWriter<&File>,
                                body: &mut Vec<u8>,
                                pending: &mut Vec<(Key, Loc, u64)>|
         -> Result<()> {
            if body.is_empty() {
                return Ok(());
            }
            out.write_all(&(body.len() as u32).to_le_bytes())?;
            out.write_all(&crc32fast::hash(body).to_le_bytes())?;
            out.write_all(body)?;
            let base = at + RECORD_HEADER;
            for (key, was, rel) in pending.drain(..) {
                let now = Loc {
                    offset: base + rel,
                    len: was.len,
                };
                moved.insert(key, (was, now));
            }
            at = base + body.len() as u64;
            body.clear();
            Ok(())
        };
        for (key, loc, in_memory) in live {
            let value = match &in_memory {
                Some(v) => v.as_slice(),
                None => {
                    from_file.resize(loc.len as usize, 0);
                    old.read_exact_at(&mut from_file, loc.offset)?;
                    from_file.as_slice()
                }
            };
            let rel = encode_put(&mut body, &key, value);
            pending.push((key, loc, rel));
            if body.len() >= COMPACT_RECORD_BYTES {
                write_record(&mut out, &mut body, &mut pending)?;
            }
        }
        write_record(&mut out, &mut body, &mut pending)?;
        out.flush()?;
        drop(out);
        file.sync_all()?;
        Ok(Compacted {
            file,
            end: at,
            cut,
            moved,
            started,
        })
    }

    /// Puts the compaction file in place of the log, and the index on it.
    fn switch_to(&self, copy: Compacted) -> Result<()> {
        let Compacted {
            file,
            end,
            cut,
            moved,
            started,
        } = copy;
        std::fs::rename(self.dir.join(COMPACT_FILE), self.dir.join(LOG_FILE))?;
        let mut w = self.write()?;
        let before = w.end();
        for (key, loc) in w.index.iter_mut() {
            match moved.get(key.as_slice()) {
                // Unchanged since the copy: where the copy put it.
                Some((was, now)) if was == loc => *loc = *now,
                // Committed since (or before it, not yet written): its record follows the
                // copy in the new file, after what the old file held.
                _ => loc.offset = loc.offset - cut + end,
            }
        }
        w.file = Arc::new(file);
        w.written = end;
        // Its offsets are the old file's.
        w.recent = None;
        let after = w.end();
        drop(w);
        sync_dir(&self.dir)?;
        tracing::info!(
            store = %self.dir.display(),
            before_bytes = before,
            after_bytes = after,
            ms = started.elapsed().as_millis() as u64,
            "compacted the log"
        );
        Ok(())
    }
}

impl Drop for LogStorage {
    fn drop(&mut self) {
        if let Err(e) = self.write_snapshot() {
            let _ = std::fs::remove_file(self.dir.join(SNAPSHOT_TMP));
            tracing::warn!(
                store = %self.dir.display(),
                error = %e,
                "could not write the index snapshot; the next start reads the whole log"
            );
        }
    }
}

/// Reads the index snapshot a clean stop left, if there is one that fits the log, and
/// removes it (durably) before the store is used: from the first write on it would be stale.
/// A snapshot that is damaged or does not fit the log is ignored; the log is read instead.
fn take_snapshot(dir: &Path, log_len: u64) -> Result<Option<Recovered>> {
    let path = dir.join(SNAPSHOT_FILE);
    let _ = std::fs::remove_file(dir.join(SNAPSHOT_TMP));
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let parsed = parse_snapshot(&bytes, log_len);
    // Before the index is built from the entries: the two need not be in memory together.
    drop(bytes);
    std::fs::remove_file(&path).map_err(|e| {
        Error::Storage(format!(
            "cannot remove {} ({e}): it must go before the store is written; remove it by \
             hand (the next start reads the log instead)",
            path.display()
        ))
    })?;
    sync_dir(dir)?;
    match parsed {
        Ok((live, live_bytes)) => Ok(Some((live.into_iter().collect(), log_len, live_bytes))),
        Err(why) => {
            tracing::warn!(
                store = %dir.display(),
                why = %why,
                "ignored the index snapshot; reading the whole log"
            );
            Ok(None)
        }
    }
}

/// The snapshot's entries, in key order, and the bytes of log they keep live.
type SnapshotEntries = (Vec<(Key, Loc)>, u64);

fn parse_snapshot(bytes: &[u8], log_len: u64) -> std::result::Result<SnapshotEntries, String> {
    if bytes.len() < 28 || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err("not a snapshot of this format".into());
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32fast::hash(body) != crc {
        return Err("its checksum does not match".into());
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let covered = u64_at(8);
    if covered != log_len {
        return Err(format!(
            "it covers {covered} bytes of log, the log has {log_len}"
        ));
    }
    let count = u64_at(16) as usize;
    let mut live = Vec::with_capacity(count.min(body.len() / 15));
    let mut live_bytes = 0u64;
    let mut at = 24usize;
    for _ in 0..count {
        let short = || "it ends inside an entry".to_string();
        let key_len = body
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(short)?;
        at += 2;
        let key = body.get(at..at + key_len).ok_or_else(short)?;
        at += key_len;
        let loc = body.get(at..at + 12).ok_or_else(short)?;
        at += 12;
        let mut off = [0u8; 8];
        off.copy_from_slice(&loc[..8]);
        let loc = Loc {
            offset: u64::from_le_bytes(off),
            len: u32::from_le_bytes([loc[8], loc[9], loc[10], loc[11]]),
        };
        let end = loc.offset.checked_add(u64::from(loc.len));
        if key.is_empty() || end.is_none_or(|end| end > log_len) {
            return Err("an entry points outside the log".into());
        }
        live_bytes += live_cost(key.len(), loc.len);
        live.push((Key::from_slice(key), loc));
    }
    if at != body.len() {
        return Err("bytes follow its last entry".into());
    }
    if live.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("its keys are out of order".into());
    }
    Ok((live, live_bytes))
}

/// A compaction's copy, synced, not yet in place of the log.
struct Compacted {
    file: File,
    /// Bytes of the copy.
    end: u64,
    /// Bytes of the old log that were written when the copy began.
    cut: u64,
    /// Key → (where it was, where the copy put it).
    moved: HashMap<Key, (Loc, Loc)>,
    started: std::time::Instant,
}

/// Appends a put op to `body`; returns the offset of its value within `body`.
fn encode_put(body: &mut Vec<u8>, full_key: &[u8], value: &[u8]) -> u64 {
    body.push(full_key[0]);
    body.push(1);
    body.extend_from_slice(&(full_key.len() as u32 - 1).to_le_bytes());
    body.extend_from_slice(&full_key[1..]);
    body.extend_from_slice(&(value.len() as u32).to_le_bytes());
    let rel = body.len() as u64;
    body.extend_from_slice(value);
    rel
}

/// What a live value costs in the file: its op's bytes.
fn live_cost(full_key_len: usize, value_len: u32) -> u64 {
    OP_HEADER + VALUE_HEADER + full_key_len as u64 - 1 + u64::from(value_len)
}

type Recovered = (BTreeMap<Key, Loc>, u64, u64);

/// Whether `file` holds nothing but (a prefix of) the header.
fn is_unstarted(file: &File) -> Result<bool> {
    let len = file.metadata()?.len();
    if len >= MAGIC.len() as u64 {
        return Ok(false);
    }
    let mut head = vec![0; len as usize];
    file.read_exact_at(&mut head, 0)?;
    Ok(MAGIC.starts_with(&head))
}

/// Reads the log from the start into an index; cuts a torn tail off (module docs).
fn recover(dir: &Path, file: &File, torn_max: u64) -> Result<Recovered> {
    let path = dir.join(LOG_FILE);
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    if file_len < MAGIC.len() as u64 || reader.read_exact(&mut magic).is_err() {
        return Err(Error::Storage(format!(
            "{} is shorter than its header: it is not a liandong store; move it away or \
             restore the store from a backup (`liandong backup import`)",
            path.display()
        )));
    }
    if magic[..7] != MAGIC[..7] {
        return Err(Error::Storage(format!(
            "{} is not a liandong log store (its first bytes are {:02x?}); check `store_dir`",
            path.display(),
            magic
        )));
    }
    if magic[7] != MAGIC[7] {
        return Err(Error::Storage(format!(
            "{} is in log format {}, this liandong reads format {}; run the liandong that \
             wrote it",
            path.display(),
            magic[7],
            MAGIC[7]
        )));
    }
    // Every op, bucketed by keyspace; sorted and reduced to the last op of each key at the
    // end, and the index built from that in one pass (denser and faster than an insert per
    // op: BENCHMARKS.md, "The log engine").
    let mut ops: Vec<Vec<(Key, Option<Loc>)>> = vec![Vec::new(); 256];
    let mut at = MAGIC.len() as u64;
    let mut body = Vec::new();
    let torn_at = loop {
        if at == file_len {
            break None;
        }
        let mut header = [0u8; 8];
        if at + RECORD_HEADER > file_len || reader.read_exact(&mut header).is_err() {
            break Some(at);
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as u64;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if at + RECORD_HEADER + len > file_len {
            break Some(at);
        }
        body.resize(len as usize, 0);
        if reader.read_exact(&mut body).is_err() || crc32fast::hash(&body) != crc {
            break Some(at);
        }
        let base = at + RECORD_HEADER;
        read_body(&body, base, &mut ops).map_err(|what| {
            Error::Storage(format!(
                "{}: the record at byte {at} passes its checksum but cannot be read ({what}); \
                 nothing was changed. Restore the store from a backup (`liandong backup \
                 import`)",
                path.display()
            ))
        })?;
        at = base + len;
    };
    if let Some(torn) = torn_at {
        let tail_len = file_len - torn;
        if tail_len > torn_max {
            // A crash tears at most the write in flight, one group; damage this far from the
            // end is the disk's, and cutting there would throw synced data away.
            return Err(Error::Storage(format!(
                "{} is damaged at byte {torn}, {tail_len} bytes before its end: more than a \
                 crash can leave unwritten, so this is not a torn write; nothing was changed. \
                 Restore the store from a backup (`liandong backup import`), or move the \
                 store folder aside and let the node's parent send everything again",
                path.display()
            )));
        }
        let aside = dir.join(format!("{LOG_FILE}.torn-{torn}"));
        let mut f = file;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(torn))?;
        let mut kept = File::create(&aside)?;
        std::io::copy(&mut f, &mut kept)?;
        kept.sync_all()?;
        file.set_len(torn)?;
        file.sync_all()?;
        sync_dir(dir)?;
        tracing::warn!(
            store = %dir.display(),
            offset = torn,
            bytes = tail_len,
            kept_in = %aside.display(),
            "the log ended in a record a crash cut short (never acknowledged): cut it off"
        );
    }
    let mut live_bytes = 0u64;
    let mut live: Vec<(Key, Loc)> = Vec::with_capacity(ops.iter().map(Vec::len).sum());
    for mut bucket in ops {
        // Stable: the ops of one key stay in log order, so the last is the latest.
        bucket.sort_by(|a, b| a.0.cmp(&b.0));
        let mut ops = bucket.into_iter().peekable();
        while let Some((key, loc)) = ops.next() {
            if ops.peek().is_some_and(|(next, _)| *next == key) {
                continue;
            }
            if let Some(loc) = loc {
                live_bytes += live_cost(key.len(), loc.len);
                live.push((key, loc));
            }
        }
    }
    // Sorted and unique already (the buckets go in tag order, and every key starts with its
    // tag), so this builds the tree without a search per key.
    let index: BTreeMap<Key, Loc> = live.into_iter().collect();
    Ok((index, torn_at.unwrap_or(at), live_bytes))
}

/// Reads one record's ops into `ops`; says what is wrong with a body it cannot read.
fn read_body(
    body: &[u8],
    base: u64,
    ops: &mut [Vec<(Key, Option<Loc>)>],
) -> std::result::Result<(), String> {
    fn take<'a>(
        body: &'a [u8],
        at: &mut usize,
        n: usize,
        what: &str,
    ) -> std::result::Result<&'a [u8], String> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= body.len())
            .ok_or_else(|| format!("it ends inside {what}"))?;
        let out = &body[*at..end];
        *at = end;
        Ok(out)
    }
    fn length(body: &[u8], at: &mut usize, what: &str) -> std::result::Result<usize, String> {
        let b = take(body, at, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    let mut at = 0usize;
    while at < body.len() {
        let head = take(body, &mut at, 2, "an op's header")?;
        let (tag, kind) = (head[0], head[1]);
        let key_len = length(body, &mut at, "a key's length")?;
        let key = take(body, &mut at, key_len, "a key")?;
        let mut full = Key::with_capacity(key_len + 1);
        full.push(tag);
        full.extend_from_slice(key);
        let loc = match kind {
            1 => {
                let len = length(body, &mut at, "a value's length")?;
                let offset = base + at as u64;
                take(body, &mut at, len, "a value")?;
                Some(Loc {
                    offset,
                    len: len as u32,
                })
            }
            0 => None,
            other => return Err(format!("an op of unknown kind {other}")),
        };
        ops[usize::from(tag)].push((full, loc));
    }
    Ok(())
}

/// The values of [`Space::Meta`] that `index` locates in `file` ([`Inner::meta`]).
fn read_meta(index: &BTreeMap<Key, Loc>, file: &File) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let tag = [Space::Meta.tag()];
    index
        .range::<[u8], _>((Bound::Included(&tag[..]), Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(&tag))
        .map(|(k, loc)| {
            let mut value = vec![0; loc.len as usize];
            file.read_exact_at(&mut value, loc.offset)?;
            Ok((k[1..].to_vec(), value))
        })
        .collect()
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

fn full_key(space: Space, key: &[u8]) -> Key {
    let mut k = Key::with_capacity(key.len() + 1);
    k.push(space.tag());
    k.extend_from_slice(key);
    k
}

impl Storage for LogStorage {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let source = {
            let r = self.read()?;
            if space == Space::Meta {
                return Ok(r.meta.get(key).cloned());
            }
            match r.index.get(&full_key(space, key)) {
                None => return Ok(None),
                Some(loc) => r.locate(*loc),
            }
        };
        source.read().map(Some)
    }

    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        if space == Space::Meta {
            let r = self.read()?;
            let start = match after {
                Some(a) if a >= prefix => Bound::Excluded(a),
                _ => Bound::Included(prefix),
            };
            return Ok(r
                .meta
                .range::<[u8], _>((start, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect());
        }
        let full_prefix = full_key(space, prefix);
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(full_key(space, a)),
            _ => Bound::Included(full_prefix.clone()),
        };
        let found: Vec<(Vec<u8>, Source)> = {
            let r = self.read()?;
            r.index
                .range::<Key, _>((start, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(&full_prefix))
                .take(limit)
                .map(|(k, loc)| (k[1..].to_vec(), r.locate(*loc)))
                .collect()
        };
        found
            .into_iter()
            .map(|(k, source)| Ok((k, source.read()?)))
            .collect()
    }

    fn commit(&self, batch: WriteBatch) -> Result<()> {
        if batch.ops.is_empty() {
            return Ok(());
        }
        let size: usize = batch
            .ops
            .iter()
            .map(|(_, k, v)| 10 + k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        if size > u32::MAX as usize {
            return Err(Error::Invalid(format!(
                "a batch of {size} bytes is larger than a log record can hold (4 GiB)"
            )));
        }
        // Encoded straight into the buffer under the lock (readers wait for it, for the
        // length of a copy of the batch): one copy of each value instead of two.
        let mut w = self.write()?;
        let inner = &mut *w;
        let base = inner.end() + RECORD_HEADER;
        let buffer = &mut inner.buffer;
        let start = buffer.len();
        buffer.reserve(size + RECORD_HEADER as usize);
        buffer.extend_from_slice(&[0; RECORD_HEADER as usize]);
        let body_start = buffer.len();
        for (space, key, value) in batch.ops {
            if space == Space::Meta {
                match &value {
                    Some(v) => inner.meta.insert(key.clone(), v.clone()),
                    None => inner.meta.remove(&key),
                };
            }
            buffer.push(space.tag());
            buffer.push(u8::from(value.is_some()));
            buffer.extend_from_slice(&(key.len() as u32).to_le_bytes());
            buffer.extend_from_slice(&key);
            let full = full_key(space, &key);
            let old = match value {
                Some(v) => {
                    buffer.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    let loc = Loc {
                        offset: base + (buffer.len() - body_start) as u64,
                        len: v.len() as u32,
                    };
                    buffer.extend_from_slice(&v);
                    inner.live_bytes += live_cost(full.len(), loc.len);
                    inner.index.insert(full.clone(), loc)
                }
                None => inner.index.remove(&full),
            };
            if let Some(old) = old {
                inner.live_bytes = inner
                    .live_bytes
                    .saturating_sub(live_cost(full.len(), old.len));
            }
        }
        let body_len = (buffer.len() - body_start) as u32;
        let crc = crc32fast::hash(&buffer[body_start..]);
        buffer[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
        buffer[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let _one = self.sync_lock()?;
        self.write_out()?;
        if self.read()?.should_compact(self.compact_floor) {
            self.compact()?;
        }
        Ok(())
    }

    fn size_on_disk(&self) -> u64 {
        self.read().map_or(0, |r| r.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn put(space: Space, k: &[u8], v: &[u8]) -> WriteBatch {
        let mut b = WriteBatch::default();
        b.put(space, k.to_vec(), v.to_vec());
        b
    }

    #[test]
    fn storage_laws_hold_for_the_log_engine() {
        let dirs = std::sync::Mutex::new(Vec::new());
        super::super::suite::run_all(&|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let s = LogStorage::open(dir.path()).expect("open");
            dirs.lock().expect("dirs").push(dir);
            Box::new(s)
        });
    }

    #[test]
    fn synced_batches_survive_reopen_and_unsynced_ones_do_not_half_apply() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let s = LogStorage::open(dir.path()).expect("open");
            s.commit(put(Space::Meta, b"a", b"1")).expect("commit");
            let mut b = WriteBatch::default();
            b.put(Space::Events, b"e1".to_vec(), vec![7; 1000]);
            b.delete(Space::Meta, b"a".to_vec());
            s.commit(b).expect("commit");
            s.sync().expect("sync");
            // Committed, never synced: gone with the process, as if it had crashed.
            s.commit(put(Space::Meta, b"later", b"x")).expect("commit");
        }
        let s = LogStorage::open(dir.path()).expect("reopen");
        assert_eq!(s.get(Space::Meta, b"a").expect("get"), None);
        assert_eq!(
            s.get(Space::Events, b"e1").expect("get"),
            Some(vec![7; 1000])
        );
        assert_eq!(s.get(Space::Meta, b"later").expect("get"), None);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_kept_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LOG_FILE);
        let whole = {
            let s = LogStorage::open(dir.path()).expect("open");
            s.commit(put(Space::Meta, b"kept", b"1")).expect("commit");
            s.sync().expect("sync");
            let whole = std::fs::metadata(&path).expect("meta").len();
            s.commit(put(Space::Meta, b"torn", &[9; 300]))
                .expect("commit");
            s.sync().expect("sync");
            whole
        };
        // A crash in the middle of the second record's write.
        let len = std::fs::metadata(&path).expect("meta").len();
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open file");
        f.set_len(len - 100).expect("truncate");
        drop(f);
        let s = LogStorage::open(dir.path()).expect("reopen");
        assert_eq!(
            s.get(Space::Meta, b"kept").expect("get"),
            Some(b"1".to_vec())
        );
        assert_eq!(s.get(Space::Meta, b"torn").expect("get"), None);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), whole);
        let aside = dir.path().join(format!("{LOG_FILE}.torn-{whole}"));
        assert_eq!(
            std::fs::metadata(&aside).expect("torn tail kept").len(),
            len - 100 - whole
        );
        // The store goes on from where the whole records end.
        s.commit(put(Space::Meta, b"next", b"2")).expect("commit");
        s.sync().expect("sync");
        drop(s);
        let s = LogStorage::open(dir.path()).expect("reopen");
        assert_eq!(
            s.get(Space::Meta, b"next").expect("get"),
            Some(b"2".to_vec())
        );
    }

    #[test]
    fn a_record_that_fails_its_checksum_ends_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LOG_FILE);
        {
            let s = LogStorage::open(dir.path()).expect("open");
            s.commit(put(Space::Meta, b"a", b"1")).expect("commit");
            s.commit(put(Space::Meta, b"b", b"2")).expect("commit");
            s.sync().expect("sync");
        }
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let s = LogStorage::open(dir.path()).expect("reopen");
        assert_eq!(s.get(Space::Meta, b"a").expect("get"), Some(b"1".to_vec()));
        assert_eq!(s.get(Space::Meta, b"b").expect("get"), None);
    }

    #[test]
    fn damage_far_from_the_end_is_refused_not_cut_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LOG_FILE);
        {
            let s = LogStorage::open(dir.path()).expect("open");
            for i in 0u32..20 {
                s.commit(put(Space::Events, &i.to_be_bytes(), &[3; 500]))
                    .expect("commit");
                s.sync().expect("sync");
            }
        }
        let _ = std::fs::remove_file(dir.path().join(SNAPSHOT_FILE));
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[MAGIC.len() + 20] ^= 0xff;
        std::fs::write(&path, &bytes).expect("write");
        let file = File::open(&path).expect("open file");
        let err = recover(dir.path(), &file, 2048)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("not a torn write"), "{err}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "nothing changed"
        );
    }

    #[test]
    fn a_log_cut_inside_its_header_by_a_crash_starts_afresh() {
        for len in [0, 3, MAGIC.len() - 1] {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(dir.path().join(LOG_FILE), &MAGIC[..len]).expect("write");
            let s = LogStorage::open(dir.path()).expect("opens as new");
            s.commit(put(Space::Meta, b"k", b"v")).expect("commit");
            s.sync().expect("sync");
            drop(s);
            let s = LogStorage::open(dir.path()).expect("reopen");
            assert_eq!(s.get(Space::Meta, b"k").expect("get"), Some(b"v".to_vec()));
        }
    }

    #[test]
    fn a_file_that_is_not_a_log_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LOG_FILE);
        std::fs::write(&path, b"not a liandong store at all").expect("write");
        let err = LogStorage::open(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("not a liandong log store"), "{err}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"not a liandong store at all"
        );
        let mut newer = MAGIC.to_vec();
        newer[7] = 9;
        std::fs::write(&path, &newer).expect("write");
        let err = LogStorage::open(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("format 9"), "{err}");
    }

    #[test]
    fn a_store_in_use_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _open = LogStorage::open(dir.path()).expect("open");
        let err = LogStorage::open(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("in use by another liandong process"), "{err}");
    }

    #[test]
    fn compaction_keeps_live_values_and_what_was_committed_meanwhile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = LogStorage::open_with_floor(dir.path(), 64 << 10).expect("open");
        // One record rewritten many times, as a record's state is: mostly garbage.
        for round in 0..200u32 {
            let mut b = WriteBatch::default();
            b.put(Space::State, b"topic".to_vec(), vec![round as u8; 2000]);
            b.put(Space::Events, round.to_be_bytes().to_vec(), vec![1; 100]);
            if round % 2 == 1 {
                b.delete(Space::Events, (round - 1).to_be_bytes().to_vec());
            }
            s.commit(b).expect("commit");
            s.sync().expect("sync");
        }
        let size = s.size_on_disk();
        assert!(size < 64 << 10, "compacted to {size} bytes");
        // Committed but not synced when a compaction runs: moved along with the rest.
        s.commit(put(Space::Meta, b"meanwhile", b"m"))
            .expect("commit");
        {
            let _one = s.sync_lock().expect("lock");
            s.compact().expect("compact");
        }
        let check = |s: &LogStorage| {
            assert_eq!(
                s.get(Space::State, b"topic").expect("get"),
                Some(vec![199; 2000])
            );
            let events = s.scan(Space::Events, b"", None, 1000).expect("scan");
            assert_eq!(events.len(), 100);
            assert!(events
                .iter()
                .all(|(k, v)| k[3] % 2 == 1 && v == &vec![1; 100]));
            assert_eq!(
                s.get(Space::Meta, b"meanwhile").expect("get"),
                Some(b"m".to_vec())
            );
        };
        check(&s);
        s.sync().expect("sync");
        drop(s);
        let s = LogStorage::open_with_floor(dir.path(), 64 << 10).expect("reopen");
        check(&s);
    }

    #[test]
    fn a_clean_stop_leaves_a_snapshot_that_the_next_open_reads_and_removes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshot = dir.path().join(SNAPSHOT_FILE);
        let expected: BTreeMap<Vec<u8>, Vec<u8>> = (0u32..500)
            .filter(|i| i % 7 != 0)
            .map(|i| {
                (
                    i.to_be_bytes().to_vec(),
                    vec![(i % 251) as u8; 1 + i as usize % 40],
                )
            })
            .collect();
        {
            let s = LogStorage::open_tuned(dir.path(), COMPACT_FLOOR_BYTES, 0).expect("open");
            for i in 0u32..500 {
                s.commit(put(Space::Events, &i.to_be_bytes(), b"first"))
                    .expect("commit");
                s.commit(put(
                    Space::Events,
                    &i.to_be_bytes(),
                    &vec![(i % 251) as u8; 1 + i as usize % 40],
                ))
                .expect("commit");
                if i % 7 == 0 {
                    let mut b = WriteBatch::default();
                    b.delete(Space::Events, i.to_be_bytes().to_vec());
                    s.commit(b).expect("commit");
                }
            }
            s.sync().expect("sync");
        }
        assert!(snapshot.exists(), "a clean stop writes the snapshot");
        let read_all = |s: &LogStorage| -> BTreeMap<Vec<u8>, Vec<u8>> {
            s.scan(Space::Events, b"", None, 10_000)
                .expect("scan")
                .into_iter()
                .collect()
        };
        let s = LogStorage::open_tuned(dir.path(), COMPACT_FLOOR_BYTES, 0).expect("reopen");
        assert!(!snapshot.exists(), "the open removes it before any write");
        assert_eq!(read_all(&s), expected);
        // A commit after the open, then a crash (no sync): the next open reads the log.
        s.commit(put(Space::Meta, b"unsynced", b"x"))
            .expect("commit");
        drop(s);
        assert!(!snapshot.exists(), "no snapshot with unsynced commits");
        let s = LogStorage::open_tuned(dir.path(), COMPACT_FLOOR_BYTES, 0).expect("reopen");
        assert_eq!(read_all(&s), expected);
        assert_eq!(s.get(Space::Meta, b"unsynced").expect("get"), None);
    }

    #[test]
    fn a_snapshot_entry_pointing_past_the_log_is_refused_not_trusted() {
        // A well-formed snapshot (CRC and all) whose entry's offset would overflow.
        let mut bytes = SNAPSHOT_MAGIC.to_vec();
        bytes.extend_from_slice(&100u64.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(b"Mk");
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(&10u32.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let err = parse_snapshot(&bytes, 100).expect_err("refused");
        assert!(err.contains("outside the log"), "{err}");
    }

    #[test]
    fn a_snapshot_that_does_not_fit_the_log_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshot = dir.path().join(SNAPSHOT_FILE);
        {
            let s = LogStorage::open_tuned(dir.path(), COMPACT_FLOOR_BYTES, 0).expect("open");
            s.commit(put(Space::Meta, b"a", b"1")).expect("commit");
            s.sync().expect("sync");
        }
        // Bytes the snapshot does not cover (a torn write by something else): the log is read
        // again, and its tail cut off, as after a crash.
        let log = dir.path().join(LOG_FILE);
        let mut bytes = std::fs::read(&log).expect("read");
        let whole = bytes.len();
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&log, &bytes).expect("write");
        let s = LogStorage::open_tuned(dir.path(), COMPACT_FLOOR_BYTES, 0).expect("reopen");
        assert!(!snapshot.exists());
        assert_eq!(s.get(Space::Meta, b"a").expect("get"), Some(b"1".to_vec()));
        assert_eq!(std::fs::metadata(&log).expect("meta").len() as usize, whole);
        drop(s);
        // A damaged snapshot: ignored too.
        let mut snap = std::fs::read(&snapshot).expect("snapshot written again");
        snap[30] ^= 0xff;
        std::fs::write(&snapshot, &snap).expect("write");
        let s = LogStorage::open_tuned(dir.path(), COMPACT_FLOOR_BYTES, 0).expect("reopen");
        assert!(!snapshot.exists());
        assert_eq!(s.get(Space::Meta, b"a").expect("get"), Some(b"1".to_vec()));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Put(u8, u8),
        Delete(u8),
        Sync,
        Reopen,
        Compact,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..24, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            2 => (0u8..24).prop_map(Op::Delete),
            2 => Just(Op::Sync),
            1 => Just(Op::Reopen),
            1 => Just(Op::Compact),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The engine agrees with a map that keeps what was synced apart from what was only
        /// committed: reads see every commit, a reopen (a crash) keeps exactly what was
        /// synced (and what a compaction copied: everything committed before it), and
        /// compaction changes nothing a reader can see.
        #[test]
        fn the_log_engine_behaves_like_a_map_with_crashes(ops in proptest::collection::vec(op(), 1..60)) {
            let dir = tempfile::tempdir().expect("tempdir");
            // Snapshots at every clean stop, so that reopens go both ways.
            let mut s = Some(LogStorage::open_tuned(dir.path(), 1 << 10, 0).expect("open"));
            let mut current: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
            let mut durable = current.clone();
            for op in ops {
                let store = s.as_ref().expect("open store");
                match op {
                    // Each write goes to a keyspace kept on disk and to Meta, whose values
                    // are also kept in memory (`Inner::meta`): both must tell the same story.
                    Op::Put(k, v) => {
                        let value = vec![v; 1 + (v as usize % 97)];
                        let mut b = put(Space::Records, &[k], &value);
                        b.put(Space::Meta, vec![k], value.clone());
                        store.commit(b).expect("commit");
                        current.insert(k, value);
                    }
                    Op::Delete(k) => {
                        let mut b = WriteBatch::default();
                        b.delete(Space::Records, vec![k]);
                        b.delete(Space::Meta, vec![k]);
                        store.commit(b).expect("commit");
                        current.remove(&k);
                    }
                    Op::Sync => {
                        store.sync().expect("sync");
                        durable = current.clone();
                    }
                    Op::Compact => {
                        let _one = store.sync_lock().expect("lock");
                        store.compact().expect("compact");
                        // The copy holds everything committed so far (`copy_live`).
                        durable = current.clone();
                    }
                    Op::Reopen => {
                        drop(s.take());
                        s = Some(LogStorage::open_tuned(dir.path(), 1 << 10, 0).expect("reopen"));
                        current = durable.clone();
                    }
                }
                let store = s.as_ref().expect("open store");
                let seen = |space| -> BTreeMap<u8, Vec<u8>> {
                    store
                        .scan(space, b"", None, 1000)
                        .expect("scan")
                        .into_iter()
                        .map(|(k, v)| (k[0], v))
                        .collect()
                };
                prop_assert_eq!(&seen(Space::Records), &current);
                prop_assert_eq!(&seen(Space::Meta), &current);
                for k in [0u8, 7, 23] {
                    prop_assert_eq!(
                        store.get(Space::Meta, &[k]).expect("get"),
                        current.get(&k).cloned()
                    );
                }
            }
        }
    }
}
