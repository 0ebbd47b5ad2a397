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
        let storage = SledStorage {
            db,
            tree,
            dir: dir.to_path_buf(),
            log_file: Mutex::new(None),
            synced_blobs: Mutex::new(HashSet::new()),
        };
        // A new store's files must survive a power cut too: sync their directory entries.
        storage.sync()?;
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
        let mut b = sled::Batch::default();
        for (space, key, value) in batch.ops {
            match value {
                Some(v) => b.insert(Self::key(space, &key), v),
                None => b.remove(Self::key(space, &key)),
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
