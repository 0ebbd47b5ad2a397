//! Group commit down to the engine: [`Staging`] wraps a [`Storage`] engine and keeps every
//! batch committed through it in memory (readable at once, by everyone, in order) until the
//! next [`Storage::sync`], which writes them all to the engine as **one** batch and then
//! syncs it. The node's writer commits one small batch per event (the event, its indexes
//! and its record's state) and syncs once per group; with this wrapper a group of thousands
//! of events costs one `apply_batch` in sled instead of thousands (measured in BENCHMARKS.md).
//!
//! Semantics are those of the engine, with a larger unit of atomicity: what is committed is
//! visible to every reader at once (as it was), and a crash before the sync loses the whole
//! group instead of a prefix of it — nothing of it had been acknowledged to anyone. Dropping
//! the wrapper without a sync drops the staged writes, as a crash would (the simulation
//! relies on that); the node always syncs before it stops.
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use super::{Entry, NodeStore, Space, Storage, WriteBatch};
use crate::{Error, Result};

/// Staged values of one keyspace: key → latest value (None: deleted).
type Staged = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

struct Pending {
    /// The latest staged value of every key written since the last sync (None: deleted),
    /// per keyspace ([`Space::index`]; a map each, so that a read looks a key up by its bytes
    /// without building a key of its own): what readers see, and what the one engine batch
    /// writes — in key order, and each key once, however often the group wrote it (the head,
    /// the clock, a record's state).
    latest: [Staged; Space::ALL.len()],
    /// Whether anything is staged: most reads come when nothing is.
    any: bool,
}

impl Default for Pending {
    fn default() -> Pending {
        Pending {
            latest: std::array::from_fn(|_| BTreeMap::new()),
            any: false,
        }
    }
}

pub struct Staging {
    engine: Arc<dyn Storage>,
    pending: Mutex<Pending>,
}

impl Staging {
    pub fn new(engine: Arc<dyn Storage>) -> Staging {
        Staging {
            engine,
            pending: Mutex::new(Pending::default()),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Pending>> {
        self.pending
            .lock()
            .map_err(|_| Error::Storage("staging lock poisoned".into()))
    }

    /// Writes what is staged to the engine as one batch (not yet synced).
    fn flush(&self) -> Result<()> {
        let mut p = self.lock()?;
        if !p.any {
            return Ok(());
        }
        // Readers wait on the lock, held until the engine has the values, so the staged maps
        // move into the engine's batch instead of being copied.
        p.any = false;
        let mut batch = WriteBatch::default();
        batch.ops.reserve(p.latest.iter().map(BTreeMap::len).sum());
        for (space, staged) in Space::ALL.into_iter().zip(p.latest.iter_mut()) {
            batch.ops.extend(
                std::mem::take(staged)
                    .into_iter()
                    .map(|(key, value)| (space, key, value)),
            );
        }
        self.engine.commit(batch)
    }
}

impl Storage for Staging {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        {
            let p = self.lock()?;
            if p.any {
                if let Some(v) = p.latest[space.index()].get(key) {
                    return Ok(v.clone());
                }
            }
        }
        self.engine.get(space, key)
    }

    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        // The staged writes in range, taken under the lock; then the engine's entries.
        let staged: Vec<(Vec<u8>, Option<Vec<u8>>)> = {
            let p = self.lock()?;
            p.latest[space.index()]
                .range::<[u8], _>((start, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        if staged.is_empty() {
            return self.engine.scan(space, prefix, after, limit);
        }
        let deletions = staged.iter().filter(|(_, v)| v.is_none()).count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = self
            .engine
            .scan(space, prefix, after, limit.saturating_add(deletions))?
            .into_iter()
            .collect();
        // The engine's scan stopped at `limit + deletions` entries: staged keys past its last
        // key would not be in order with what it left out.
        let engine_full = merged.len() >= limit.saturating_add(deletions);
        let engine_last = merged.keys().next_back().cloned();
        for (k, v) in staged {
            if engine_full && engine_last.as_ref().is_some_and(|last| k > *last) {
                break;
            }
            match v {
                Some(v) => {
                    merged.insert(k, v);
                }
                None => {
                    merged.remove(&k);
                }
            }
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    fn commit(&self, batch: WriteBatch) -> Result<()> {
        let mut p = self.lock()?;
        p.any |= !batch.ops.is_empty();
        for (space, key, value) in batch.ops {
            p.latest[space.index()].insert(key, value);
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.flush()?;
        self.engine.sync()
    }

    fn size_on_disk(&self) -> u64 {
        self.engine.size_on_disk()
    }

    fn is_staged(&self) -> bool {
        true
    }

    fn flush_staged(&self) -> Result<()> {
        self.flush()
    }

    fn sync_flushed(&self) -> Result<()> {
        self.engine.sync()
    }
}

impl NodeStore {
    /// This store with its writes staged until each sync ([`Staging`]); itself if it is
    /// staged already.
    pub fn staged(&self) -> NodeStore {
        if self.engine().is_staged() {
            return self.clone();
        }
        NodeStore::new(Arc::new(Staging::new(self.engine().clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStorage;

    #[test]
    fn storage_laws_hold_when_staged() {
        super::super::suite::run_all(&|| Box::new(Staging::new(Arc::new(MemoryStorage::new()))));
    }

    #[test]
    fn staged_writes_reach_the_engine_at_sync_in_one_piece() {
        let engine = Arc::new(MemoryStorage::new());
        let s = Staging::new(engine.clone());
        for i in 0u64..10 {
            let mut b = WriteBatch::default();
            b.put(Space::Log, i.to_be_bytes().to_vec(), vec![i as u8]);
            s.commit(b).expect("commit");
        }
        let mut d = WriteBatch::default();
        d.delete(Space::Log, 3u64.to_be_bytes().to_vec());
        s.commit(d).expect("commit");
        // Visible through the wrapper at once, not yet in the engine.
        assert_eq!(s.scan(Space::Log, b"", None, 100).expect("scan").len(), 9);
        assert!(engine
            .scan(Space::Log, b"", None, 100)
            .expect("scan")
            .is_empty());
        assert_eq!(
            s.get(Space::Log, &4u64.to_be_bytes()).expect("get"),
            Some(vec![4])
        );
        assert_eq!(s.get(Space::Log, &3u64.to_be_bytes()).expect("get"), None);
        s.sync().expect("sync");
        assert_eq!(
            engine.scan(Space::Log, b"", None, 100).expect("scan").len(),
            9
        );
        // A crash before the next sync loses only what came after it.
        let mut b = WriteBatch::default();
        b.put(Space::Log, 20u64.to_be_bytes().to_vec(), vec![20]);
        s.commit(b).expect("commit");
        drop(s);
        engine.crash();
        assert_eq!(
            engine.scan(Space::Log, b"", None, 100).expect("scan").len(),
            9
        );
    }

    #[test]
    fn scans_merge_staged_and_engine_entries_in_order_with_limits() {
        let engine = Arc::new(MemoryStorage::new());
        let mut b = WriteBatch::default();
        for i in [1u64, 3, 5, 7, 9] {
            b.put(Space::Log, i.to_be_bytes().to_vec(), vec![i as u8]);
        }
        engine.commit(b).expect("commit");
        let s = Staging::new(engine);
        let mut b = WriteBatch::default();
        for i in [2u64, 4, 10] {
            b.put(Space::Log, i.to_be_bytes().to_vec(), vec![i as u8]);
        }
        b.delete(Space::Log, 5u64.to_be_bytes().to_vec());
        s.commit(b).expect("commit");
        let values = |after: Option<u64>, limit| {
            s.scan(
                Space::Log,
                b"",
                after.map(|a| a.to_be_bytes().to_vec()).as_deref(),
                limit,
            )
            .expect("scan")
            .into_iter()
            .map(|(_, v)| v[0])
            .collect::<Vec<_>>()
        };
        assert_eq!(values(None, 100), vec![1, 2, 3, 4, 7, 9, 10]);
        assert_eq!(values(None, 3), vec![1, 2, 3]);
        assert_eq!(values(Some(3), 2), vec![4, 7]);
        assert_eq!(values(Some(4), 2), vec![7, 9]);
        assert_eq!(values(Some(9), 5), vec![10]);
    }
}
