//! The sled engine. One sled tree holds every keyspace under a one-byte prefix, so that a
//! [`WriteBatch`] is one `apply_batch`: atomic across keyspaces without sled's slower
//! transactions.
//!
//! Durability: sled 0.34's `flush()` ends in `sync_file_range`, which survives a killed
//! process but not a power cut (sled's own background thread does a full sync only every
//! 500 ms). [`SledStorage::sync`] therefore flushes and then calls `fdatasync` on sled's log
//! file itself. sled writes values over 128 KiB (a segment / 4) to separate blob files without
//! syncing them, so `sync` also syncs every blob file it has not synced before, and the
//! folders once, so that new files' directory entries are durable too. Callers group many
//! batches under one `sync` (group commit).
//!
//! Small batches go around sled's `apply_batch`. That call takes a lock that is global to the
//! **process** (sled's `concurrency_control`), exclusively, and sled's `flush` holds the same
//! lock shared for as long as its write reaches the device; so an `apply_batch` anywhere in
//! the process waits for every flush in progress anywhere in it, and while it waits every
//! read of every sled tree in the process waits behind it. With one node per process that
//! stalls a node's reads behind its own sync; with many nodes in one process (the benchmarks,
//! the simulation) it chains every node's sync to every other's (BENCHMARKS.md, "Fan-out").
//! A batch of at most [`REDO_MAX_BYTES`] is instead written as one **redo record** (a single
//! key, so atomic by itself), then key by key with plain inserts (which take that lock only
//! shared), then the redo record is removed. sled recovers a prefix of the writes one thread
//! made (its own crash test, `tests/test_crash_recovery.rs`, checks exactly that), so after a
//! crash either the redo record is there and [`SledStorage::open`] applies it again — every
//! write in it sets a key to a value, so applying it twice is applying it once — or it was
//! removed, and then every write it covered is there. Larger batches (a catch-up's groups,
//! hundreds of events) still go through `apply_batch`, where one wait is shared by all their
//! events and a redo record would be a blob file of its own.
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Entry, Space, Storage, WriteBatch};
use crate::{Error, Result};

pub struct SledStorage {
    db: sled::Db,
    tree: sled::Tree,
    dir: PathBuf,
    /// sled's log file, kept open for fdatasync.
    log_file: Mutex<Option<File>>,
    /// Blob files already synced (sled never rewrites a blob file).
    synced_blobs: Mutex<HashSet<std::ffi::OsString>>,
    /// Held for a whole redo-record commit: there is one redo key, so two such commits
    /// must not interleave (the node's writer is the only committer, so it never waits).
    redo: Mutex<()>,
}

/// The redo record's key. Its first byte is below every keyspace's tag ([`Space::tag`]), so
/// no scan of a keyspace ever meets it.
const REDO_KEY: &[u8] = b"\x00redo";

/// Format of the redo record, its first byte.
const REDO_VERSION: u8 = 1;

/// Batches whose redo record would be at most this many bytes skip sled's `apply_batch`
/// (module docs): every group of a few events — guidance fanned out, a submission, a
/// review — which is where a node's latency is. Below a quarter of sled's 512 KiB segment,
/// so the record stays inline in sled's log instead of becoming a blob file.
pub const REDO_MAX_BYTES: usize = 64 * 1024;

impl SledStorage {
    /// Opens (or creates) the store in `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledStorage> {
        std::fs::create_dir_all(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // We sync explicitly after each group of batches; sled's timer only adds IO.
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                    Error::Config(format!(
                        "the store in {} is in use by another liandong process; stop it first",
                        dir.display()
                    ))
                }
                other => Error::Storage(format!(
                    "cannot open the store in {}: {other}",
                    dir.display()
                )),
            })?;
        let tree = db.open_tree("liandong")?;
        let storage = SledStorage {
            db,
            tree,
            dir: dir.to_path_buf(),
            log_file: Mutex::new(None),
            synced_blobs: Mutex::new(HashSet::new()),
            redo: Mutex::new(()),
        };
        storage.finish_interrupted_commit()?;
        // A new store's files must survive a power cut too: sync their directory entries.
        storage.sync()?;
        sync_dir(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(storage)
    }

    /// A redo record left by a commit that a crash interrupted: apply it (again) and remove
    /// it, durably, before anyone reads the store.
    fn finish_interrupted_commit(&self) -> Result<()> {
        let Some(record) = self.tree.get(REDO_KEY)? else {
            return Ok(());
        };
        let writes = decode_redo(&record).map_err(|what| {
            Error::Storage(format!(
                "the store in {} holds the record of an interrupted write that cannot be read \
                 ({what}); nothing was changed. Restore the store from a backup \
                 (`liandong backup import`) or let its parent send it again from scratch",
                self.dir.display()
            ))
        })?;
        tracing::warn!(
            store = %self.dir.display(),
            writes = writes.len(),
            "finishing a write that a crash interrupted"
        );
        for (key, value) in writes {
            self.write_one(key, value)?;
        }
        self.tree.remove(REDO_KEY)?;
        self.sync()
    }

    /// One batch through the redo record (module docs).
    fn commit_with_redo(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        let _one_at_a_time = self
            .redo
            .lock()
            .map_err(|_| Error::Storage("redo lock poisoned".into()))?;
        self.tree.insert(REDO_KEY, encode_redo(&writes))?;
        for (key, value) in writes {
            self.write_one(key, value)?;
        }
        self.tree.remove(REDO_KEY)?;
        Ok(())
    }

    /// One key, with a plain insert or remove: atomic by itself, and only a shared hold on
    /// sled's process-wide lock (module docs).
    fn write_one(&self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<()> {
        match value {
            Some(v) => self.tree.insert(key, v)?,
            None => self.tree.remove(key)?,
        };
        Ok(())
    }

    fn key(space: Space, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(key.len() + 1);
        k.push(space.tag());
        k.extend_from_slice(key);
        k
    }

    fn fdatasync(&self) -> Result<()> {
        let mut guard = self
            .log_file
            .lock()
            .map_err(|_| Error::Storage("log file lock poisoned".into()))?;
        if guard.is_none() {
            *guard = Some(File::open(self.dir.join("db"))?);
        }
        if let Some(f) = guard.as_ref() {
            f.sync_data()?;
        }
        drop(guard);
        self.sync_new_blobs()
    }

    fn sync_new_blobs(&self) -> Result<()> {
        let blobs = self.dir.join("blobs");
        let Ok(entries) = std::fs::read_dir(&blobs) else {
            return Ok(());
        };
        let mut synced = self
            .synced_blobs
            .lock()
            .map_err(|_| Error::Storage("blob list lock poisoned".into()))?;
        let mut any = false;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !synced.contains(&name) {
                // A blob can vanish when sled collects it; that is not an error.
                if let Ok(f) = File::open(entry.path()) {
                    f.sync_data()?;
                }
                synced.insert(name);
                any = true;
            }
        }
        if any {
            sync_dir(&blobs)?;
        }
        Ok(())
    }
}

/// Bytes of the redo record for these writes.
fn redo_len(writes: &[(Vec<u8>, Option<Vec<u8>>)]) -> usize {
    5 + writes
        .iter()
        .map(|(k, v)| 1 + 4 + k.len() + v.as_ref().map_or(0, |v| 4 + v.len()))
        .sum::<usize>()
}

/// The redo record: version (1), number of writes (u32 BE), then per write 1 (put) or 0
/// (remove), the key's length (u32 BE) and the key, and for a put the value's length (u32 BE)
/// and the value. Keys are sled's (keyspace tag first).
fn encode_redo(writes: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(redo_len(writes));
    out.push(REDO_VERSION);
    out.extend_from_slice(&(writes.len() as u32).to_be_bytes());
    for (key, value) in writes {
        out.push(u8::from(value.is_some()));
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        if let Some(v) = value {
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v);
        }
    }
    out
}

type RedoWrites = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Reads a redo record back; says what is wrong with one it cannot read.
fn decode_redo(record: &[u8]) -> std::result::Result<RedoWrites, String> {
    fn take<'a>(
        rest: &mut &'a [u8],
        n: usize,
        what: &str,
    ) -> std::result::Result<&'a [u8], String> {
        if rest.len() < n {
            return Err(format!("it ends inside {what}"));
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head)
    }
    fn length(rest: &mut &[u8], what: &str) -> std::result::Result<usize, String> {
        let b = take(rest, 4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    let mut rest = record;
    let version = take(&mut rest, 1, "its version")?[0];
    if version != REDO_VERSION {
        return Err(format!(
            "format {version}, this liandong reads {REDO_VERSION}; run the liandong that wrote it"
        ));
    }
    let count = length(&mut rest, "its count of writes")?;
    let mut writes = Vec::with_capacity(count.min(rest.len()));
    for i in 0..count {
        let kind = take(&mut rest, 1, "a write's kind")?[0];
        let key_len = length(&mut rest, "a key's length")?;
        let key = take(&mut rest, key_len, "a key")?.to_vec();
        let value = match kind {
            1 => {
                let len = length(&mut rest, "a value's length")?;
                Some(take(&mut rest, len, "a value")?.to_vec())
            }
            0 => None,
            other => return Err(format!("write {i} is of unknown kind {other}")),
        };
        writes.push((key, value));
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes follow its last write", rest.len()));
    }
    Ok(writes)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

impl Storage for SledStorage {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.get(Self::key(space, key))?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let full_prefix = Self::key(space, prefix);
        let mut out = Vec::new();
        let iter = match after.map(|a| Self::key(space, a)) {
            Some(start) if start >= full_prefix => self
                .tree
                .range((std::ops::Bound::Excluded(start), std::ops::Bound::Unbounded)),
            _ => self.tree.range(full_prefix.clone()..),
        };
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&full_prefix) {
                break;
            }
            out.push((k[1..].to_vec(), v.to_vec()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn commit(&self, batch: WriteBatch) -> Result<()> {
        let writes: RedoWrites = batch
            .ops
            .into_iter()
            .map(|(space, key, value)| (Self::key(space, &key), value))
            .collect();
        match writes.len() {
            0 => return Ok(()),
            // One key is atomic by itself.
            1 => {
                for (key, value) in writes {
                    self.write_one(key, value)?;
                }
                return Ok(());
            }
            _ if redo_len(&writes) <= REDO_MAX_BYTES => return self.commit_with_redo(writes),
            _ => {}
        }
        let mut b = sled::Batch::default();
        for (key, value) in writes {
            match value {
                Some(v) => b.insert(key, v),
                None => b.remove(key),
            }
        }
        self.tree.apply_batch(b)?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.db.flush()?;
        self.fdatasync()
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_laws_hold_for_sled() {
        let dirs = std::sync::Mutex::new(Vec::new());
        super::super::suite::run_all(&|| {
            let d = tempfile::tempdir().expect("tempdir");
            let s = SledStorage::open(d.path(), 1 << 20).expect("open");
            if let Ok(mut v) = dirs.lock() {
                v.push(d);
            }
            Box::new(s)
        });
    }

    /// Batches on both sides of [`REDO_MAX_BYTES`]: small ones through the redo record,
    /// large ones through `apply_batch`; both visible whole, and nothing left of the redo.
    #[test]
    fn small_and_large_batches_commit_whole() {
        let d = tempfile::tempdir().expect("tempdir");
        let s = SledStorage::open(d.path(), 1 << 20).expect("open");
        for (n, size) in [(3usize, 100usize), (40, 4096)] {
            let mut b = WriteBatch::default();
            for i in 0..n {
                b.put(
                    Space::Events,
                    format!("{size}-{i:03}").into_bytes(),
                    vec![1u8; size],
                );
            }
            let small = redo_len(
                &b.ops
                    .iter()
                    .map(|(sp, k, v)| (SledStorage::key(*sp, k), v.clone()))
                    .collect::<Vec<_>>(),
            ) <= REDO_MAX_BYTES;
            assert_eq!(small, n == 3, "one batch on each side of the limit");
            s.commit(b).expect("commit");
            let held = s
                .scan(Space::Events, format!("{size}-").as_bytes(), None, 1000)
                .expect("scan");
            assert_eq!(held.len(), n);
            assert_eq!(s.tree.get(REDO_KEY).expect("get"), None);
        }
    }

    /// A crash after the redo record and part of its writes reached the disk: the next open
    /// finishes the commit, and the record is gone.
    #[test]
    fn an_interrupted_commit_is_finished_at_open() {
        let d = tempfile::tempdir().expect("tempdir");
        {
            let s = SledStorage::open(d.path(), 1 << 20).expect("open");
            let mut old = WriteBatch::default();
            old.put(Space::State, b"gone".to_vec(), b"old".to_vec());
            old.put(Space::State, b"kept".to_vec(), b"old".to_vec());
            s.commit(old).expect("commit");
            let writes: RedoWrites = vec![
                (
                    SledStorage::key(Space::Events, b"a"),
                    Some(b"frame a".to_vec()),
                ),
                (SledStorage::key(Space::Meta, b"head"), Some(b"7".to_vec())),
                (SledStorage::key(Space::State, b"gone"), None),
            ];
            // What a crash between the first and the second write would leave.
            s.tree.insert(REDO_KEY, encode_redo(&writes)).expect("redo");
            s.tree
                .insert(&writes[0].0, b"frame a".to_vec())
                .expect("first write");
            s.sync().expect("sync");
        }
        let s = SledStorage::open(d.path(), 1 << 20).expect("reopen");
        assert_eq!(
            s.get(Space::Events, b"a").expect("get"),
            Some(b"frame a".to_vec())
        );
        assert_eq!(
            s.get(Space::Meta, b"head").expect("get"),
            Some(b"7".to_vec())
        );
        assert_eq!(s.get(Space::State, b"gone").expect("get"), None);
        assert_eq!(
            s.get(Space::State, b"kept").expect("get"),
            Some(b"old".to_vec())
        );
        assert_eq!(s.tree.get(REDO_KEY).expect("get"), None);
    }

    /// A redo record that cannot be read stops the open with a message that says so, and
    /// leaves the store as it was.
    #[test]
    fn an_unreadable_redo_record_refuses_the_open() {
        let d = tempfile::tempdir().expect("tempdir");
        {
            let s = SledStorage::open(d.path(), 1 << 20).expect("open");
            let mut record = encode_redo(&[(b"Mk".to_vec(), Some(b"value".to_vec()))]);
            record.truncate(record.len() - 2);
            s.tree.insert(REDO_KEY, record).expect("redo");
            s.sync().expect("sync");
        }
        match SledStorage::open(d.path(), 1 << 20) {
            Err(Error::Storage(m)) => {
                assert!(m.contains("interrupted write"), "{m}");
                assert!(m.contains("ends inside a value"), "{m}");
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("an unreadable redo record must stop the open"),
        }
    }

    #[test]
    fn redo_records_read_back_what_was_written() {
        let writes: RedoWrites = vec![
            (b"Ea".to_vec(), Some(vec![0u8; 300])),
            (b"S\x00b".to_vec(), None),
            (Vec::new(), Some(Vec::new())),
        ];
        let record = encode_redo(&writes);
        assert_eq!(record.len(), redo_len(&writes));
        assert_eq!(decode_redo(&record), Ok(writes));
        assert!(decode_redo(&[9]).is_err_and(|m| m.contains("format 9")));
        assert!(decode_redo(&[]).is_err());
    }

    #[test]
    fn a_store_in_use_says_so() {
        let d = tempfile::tempdir().expect("tempdir");
        let _first = SledStorage::open(d.path(), 1 << 20).expect("open");
        match SledStorage::open(d.path(), 1 << 20) {
            Err(Error::Config(m)) => {
                assert!(m.contains("in use by another liandong process"), "{m}")
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a second open of the same store must fail"),
        }
    }

    #[test]
    fn large_values_are_durable_blobs() {
        let d = tempfile::tempdir().expect("tempdir");
        {
            let s = SledStorage::open(d.path(), 1 << 20).expect("open");
            let mut b = WriteBatch::default();
            b.put(Space::State, b"big".to_vec(), vec![7u8; 300 * 1024]);
            s.commit(b).expect("commit");
            s.sync().expect("sync");
            let synced = s.synced_blobs.lock().map(|v| v.len()).unwrap_or(0);
            assert!(
                synced >= 1,
                "the 300 KiB value went to a blob file that sync covered"
            );
        }
        let s = SledStorage::open(d.path(), 1 << 20).expect("reopen");
        assert_eq!(
            s.get(Space::State, b"big").expect("get").map(|v| v.len()),
            Some(300 * 1024)
        );
    }

    #[test]
    fn synced_data_survives_reopen() {
        let d = tempfile::tempdir().expect("tempdir");
        {
            let s = SledStorage::open(d.path(), 1 << 20).expect("open");
            let mut b = WriteBatch::default();
            b.put(Space::Meta, b"head".to_vec(), 7u64.to_be_bytes().to_vec());
            s.commit(b).expect("commit");
            s.sync().expect("sync");
        }
        let s = SledStorage::open(d.path(), 1 << 20).expect("reopen");
        assert_eq!(
            s.get(Space::Meta, b"head").expect("get"),
            Some(7u64.to_be_bytes().to_vec())
        );
    }
}
