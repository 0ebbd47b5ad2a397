//! An in-memory engine for tests and the simulation. It keeps what was synced apart from what
//! was only committed, so [`MemoryStorage::crash`] can drop the unsynced writes the way a
//! power cut would.
use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Entry, Space, Storage, WriteBatch};
use crate::{Error, Result};

type Map = BTreeMap<(u8, Vec<u8>), Vec<u8>>;

#[derive(Default)]
pub struct MemoryStorage {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    current: Map,
    durable: Map,
    unsynced: Vec<WriteBatch>,
}

fn apply(map: &mut Map, batch: &WriteBatch) {
    for (space, key, value) in &batch.ops {
        let k = (space.tag(), key.clone());
        match value {
            Some(v) => {
                map.insert(k, v.clone());
            }
            None => {
                map.remove(&k);
            }
        }
    }
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// Forgets every write since the last sync, as a power cut would.
    pub fn crash(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.current = inner.durable.clone();
            inner.unsynced.clear();
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::Storage("memory store lock poisoned".into()))
    }
}

impl Storage for MemoryStorage {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lock()?
            .current
            .get(&(space.tag(), key.to_vec()))
            .cloned())
    }

    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let inner = self.lock()?;
        let tag = space.tag();
        let start = match after {
            Some(a) if a >= prefix => std::ops::Bound::Excluded((tag, a.to_vec())),
            _ => std::ops::Bound::Included((tag, prefix.to_vec())),
        };
        Ok(inner
            .current
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|((t, k), _)| *t == tag && k.starts_with(prefix))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }

    fn commit(&self, batch: WriteBatch) -> Result<()> {
        let mut inner = self.lock()?;
        apply(&mut inner.current, &batch);
        inner.unsynced.push(batch);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let mut inner = self.lock()?;
        let pending = std::mem::take(&mut inner.unsynced);
        for b in &pending {
            apply(&mut inner.durable, b);
        }
        Ok(())
    }

    fn size_on_disk(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_laws_hold_in_memory() {
        super::super::suite::run_all(&|| Box::new(MemoryStorage::new()));
    }

    #[test]
    fn a_crash_loses_exactly_the_unsynced_writes() {
        let s = MemoryStorage::new();
        let mut a = WriteBatch::default();
        a.put(Space::Meta, b"a".to_vec(), b"1".to_vec());
        s.commit(a).expect("commit");
        s.sync().expect("sync");
        let mut b = WriteBatch::default();
        b.put(Space::Meta, b"b".to_vec(), b"2".to_vec());
        s.commit(b).expect("commit");
        s.crash();
        assert_eq!(s.get(Space::Meta, b"a").expect("get"), Some(b"1".to_vec()));
        assert_eq!(s.get(Space::Meta, b"b").expect("get"), None);
    }
}
