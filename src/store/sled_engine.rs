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
//! Frames live outside sled. sled 0.34 splits its leaves above 16 entries and rewrites a leaf
//! whole every few updates, so 480-byte frames inside the leaves made a county catching up
//! write about 8 KB per event and pushed most of the tree out of the page cache. The signed
//! frames ([`Space::Events`]) are therefore appended to one file, `frames`, beside sled's, and
//! sled holds a 12-byte pointer (offset, length) per event. [`Storage::commit`] writes a
//! batch's frames and `fdatasync`s them **before** the sled batch that points at them is
//! applied, so sled never holds a pointer to bytes that a power cut could take. Bytes written
//! by a commit whose sled batch then failed, or by a process killed between the two, are
//! unreferenced; they stay in the file (events are never deleted, so nothing else is
//! reclaimed either). Stores created before this layout keep their frames inside sled: the
//! layout is decided when a store is created and recorded under an engine-private key.
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
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
    /// The frame file, or None for a store created before frames left sled.
    frames: Option<FrameFile>,
}

/// The engine-private key (outside every [`Space`]'s prefix) that records a store's layout.
const LAYOUT_KEY: &[u8] = b"_layout";
/// Frames in the `frames` file, 12-byte pointers in sled.
const LAYOUT_FRAME_FILE: &[u8] = b"frames-file-1";
/// A pointer: offset (u64 BE) ++ length (u32 BE).
const POINTER_LEN: usize = 12;

/// The append-only file of signed frames.
struct FrameFile {
    path: PathBuf,
    /// Shared by appends and reads: both are positioned (`pwrite` / `pread`), so readers need
    /// no lock.
    file: File,
    /// Where the next frames go. Advanced only once they are written and synced, so a failed
    /// append is overwritten by the next one.
    end: Mutex<u64>,
}

impl FrameFile {
    fn open(path: PathBuf) -> Result<FrameFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                Error::Storage(format!(
                    "cannot open the frame file {}: {e}",
                    path.display()
                ))
            })?;
        let end = file.metadata()?.len();
        Ok(FrameFile {
            path,
            file,
            end: Mutex::new(end),
        })
    }

    fn read(&self, key: &[u8], pointer: &[u8]) -> Result<Vec<u8>> {
        let corrupt = |what: &str| {
            Error::Storage(format!(
                "the frame of event {} {what} in {}; the store is damaged: restore it from a \
                 backup (`liandong backup import`) or let the node catch up from its peers on \
                 an empty store",
                hex(key),
                self.path.display()
            ))
        };
        let (offset, len) = match pointer {
            [o @ .., l0, l1, l2, l3] if pointer.len() == POINTER_LEN => {
                let mut ob = [0u8; 8];
                ob.copy_from_slice(o);
                (
                    u64::from_be_bytes(ob),
                    u32::from_be_bytes([*l0, *l1, *l2, *l3]),
                )
            }
            _ => return Err(corrupt("has a malformed pointer")),
        };
        let mut buf = vec![0u8; len as usize];
        self.file.read_exact_at(&mut buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                corrupt(&format!("at {offset}+{len} lies past the end of the file"))
            } else {
                Error::Storage(format!(
                    "cannot read the frame file {}: {e}",
                    self.path.display()
                ))
            }
        })?;
        Ok(buf)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

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
        let frame_file = match tree.get(LAYOUT_KEY)? {
            Some(layout) if layout.as_ref() == LAYOUT_FRAME_FILE => true,
            Some(layout) => {
                return Err(Error::Config(format!(
                    "the store in {} has the layout {:?}, which this liandong does not know; \
                     it was written by a newer version: run that version",
                    dir.display(),
                    String::from_utf8_lossy(&layout)
                )))
            }
            None => {
                let legacy = tree.scan_prefix([Space::Events.tag()]).next().is_some();
                if !legacy {
                    tree.insert(LAYOUT_KEY, LAYOUT_FRAME_FILE)?;
                }
                !legacy
            }
        };
        let frames = if frame_file {
            Some(FrameFile::open(dir.join("frames"))?)
        } else {
            None
        };
        let storage = SledStorage {
            db,
            tree,
            dir: dir.to_path_buf(),
            log_file: Mutex::new(None),
            synced_blobs: Mutex::new(HashSet::new()),
            frames,
        };
        // A new store's files must survive a power cut too: sync their directory entries.
        storage.sync()?;
        if let Some(frames) = &storage.frames {
            frames.file.sync_all()?;
        }
        sync_dir(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(storage)
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

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

impl Storage for SledStorage {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(value) = self.tree.get(Self::key(space, key))? else {
            return Ok(None);
        };
        match (&self.frames, space) {
            (Some(frames), Space::Events) => frames.read(key, &value).map(Some),
            _ => Ok(Some(value.to_vec())),
        }
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
            let value = match (&self.frames, space) {
                (Some(frames), Space::Events) => frames.read(&k[1..], &v)?,
                _ => v.to_vec(),
            };
            out.push((k[1..].to_vec(), value));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn commit(&self, batch: WriteBatch) -> Result<()> {
        let mut b = sled::Batch::default();
        let Some(frames) = &self.frames else {
            for (space, key, value) in batch.ops {
                match value {
                    Some(v) => b.insert(Self::key(space, &key), v),
                    None => b.remove(Self::key(space, &key)),
                }
            }
            self.tree.apply_batch(b)?;
            return Ok(());
        };
        let mut end = frames
            .end
            .lock()
            .map_err(|_| Error::Storage("frame file lock poisoned".into()))?;
        let start = *end;
        let mut appended = Vec::new();
        for (space, key, value) in batch.ops {
            match value {
                Some(v) if space == Space::Events => {
                    let len = u32::try_from(v.len()).map_err(|_| {
                        Error::Storage(format!("a frame of {} bytes is too large", v.len()))
                    })?;
                    let mut pointer = Vec::with_capacity(POINTER_LEN);
                    pointer.extend_from_slice(&(start + appended.len() as u64).to_be_bytes());
                    pointer.extend_from_slice(&len.to_be_bytes());
                    appended.extend_from_slice(&v);
                    b.insert(Self::key(space, &key), pointer);
                }
                Some(v) => b.insert(Self::key(space, &key), v),
                None => b.remove(Self::key(space, &key)),
            }
        }
        if !appended.is_empty() {
            // Durable before sled can hold a pointer to them (see the module docs).
            frames.file.write_all_at(&appended, start).map_err(|e| {
                Error::Storage(format!(
                    "cannot append to the frame file {}: {e}",
                    frames.path.display()
                ))
            })?;
            frames.file.sync_data()?;
            *end = start + appended.len() as u64;
        }
        // Applied under the lock, so that sled's batches follow the file's order.
        self.tree.apply_batch(b)?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.db.flush()?;
        self.fdatasync()
    }

    fn size_on_disk(&self) -> u64 {
        let frames = self
            .frames
            .as_ref()
            .and_then(|f| f.end.lock().ok().map(|end| *end))
            .unwrap_or(0);
        self.db.size_on_disk().unwrap_or(0) + frames
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

    #[test]
    fn frames_live_in_the_frame_file_and_survive_reopen() {
        let d = tempfile::tempdir().expect("tempdir");
        let frame = |i: u8| vec![i; 480];
        {
            let s = SledStorage::open(d.path(), 1 << 20).expect("open");
            let mut b = WriteBatch::default();
            for i in 0..40u8 {
                b.put(Space::Events, vec![i; 16], frame(i));
                b.put(Space::Log, vec![i], vec![i; 16]);
            }
            s.commit(b).expect("commit");
            s.sync().expect("sync");
            let inside = s
                .tree
                .get(SledStorage::key(Space::Events, &[3u8; 16]))
                .expect("get")
                .map(|v| v.len());
            assert_eq!(
                inside,
                Some(POINTER_LEN),
                "sled holds a pointer, not the frame"
            );
        }
        let len = std::fs::metadata(d.path().join("frames"))
            .expect("frame file")
            .len();
        assert_eq!(len, 40 * 480);
        let s = SledStorage::open(d.path(), 1 << 20).expect("reopen");
        assert_eq!(
            s.get(Space::Events, &[7u8; 16]).expect("get"),
            Some(frame(7))
        );
        let all = s.scan(Space::Events, b"", None, 100).expect("scan");
        assert_eq!(all.len(), 40);
        assert!(all.iter().all(|(k, v)| v == &frame(k[0])));
        // A second commit appends after the first.
        let mut b = WriteBatch::default();
        b.put(Space::Events, vec![200u8; 16], frame(200));
        s.commit(b).expect("commit");
        assert_eq!(
            s.get(Space::Events, &[200u8; 16]).expect("get"),
            Some(frame(200))
        );
        assert_eq!(
            s.get(Space::Events, &[0u8; 16]).expect("get"),
            Some(frame(0))
        );
    }

    #[test]
    fn a_truncated_frame_file_is_reported_not_misread() {
        let d = tempfile::tempdir().expect("tempdir");
        {
            let s = SledStorage::open(d.path(), 1 << 20).expect("open");
            let mut b = WriteBatch::default();
            b.put(Space::Events, vec![1u8; 16], vec![9u8; 480]);
            s.commit(b).expect("commit");
            s.sync().expect("sync");
        }
        let f = OpenOptions::new()
            .write(true)
            .open(d.path().join("frames"))
            .expect("frame file");
        f.set_len(100).expect("truncate");
        let s = SledStorage::open(d.path(), 1 << 20).expect("reopen");
        match s.get(Space::Events, &[1u8; 16]) {
            Err(Error::Storage(m)) => {
                assert!(m.contains("past the end"), "{m}");
                assert!(m.contains("restore it from a backup"), "{m}");
            }
            other => panic!("expected a storage error, got {other:?}"),
        }
    }

    #[test]
    fn a_store_with_frames_inside_sled_keeps_them_there() {
        let d = tempfile::tempdir().expect("tempdir");
        {
            // What a store written before the frame file looks like: frames in sled and no
            // layout key.
            let db = sled::open(d.path()).expect("sled");
            let tree = db.open_tree("liandong").expect("tree");
            tree.insert(SledStorage::key(Space::Events, &[5u8; 16]), vec![5u8; 480])
                .expect("insert");
            db.flush().expect("flush");
        }
        let s = SledStorage::open(d.path(), 1 << 20).expect("open");
        assert!(s.frames.is_none());
        assert_eq!(
            s.get(Space::Events, &[5u8; 16]).expect("get"),
            Some(vec![5u8; 480])
        );
        let mut b = WriteBatch::default();
        b.put(Space::Events, vec![6u8; 16], vec![6u8; 480]);
        s.commit(b).expect("commit");
        assert_eq!(
            s.get(Space::Events, &[6u8; 16]).expect("get"),
            Some(vec![6u8; 480])
        );
        assert!(!d.path().join("frames").exists());
    }
}
