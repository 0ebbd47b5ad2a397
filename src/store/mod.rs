//! Storage: one narrow trait ([`Storage`]) with three engines — sled ([`sled_engine`]) and an
//! append-only log with its index in memory ([`log_engine`]) for real nodes, and an in-memory
//! one ([`memory`]) that can simulate a crash by dropping everything not yet synced — and the
//! node's keyspaces on top ([`NodeStore`]). [`open_engine`] opens a store folder with the
//! engine that wrote it.
//!
//! The trait is the whole contract the node relies on:
//! - [`Storage::commit`] applies a [`WriteBatch`] atomically (all of it or none, also across
//!   keyspaces);
//! - [`Storage::sync`] makes everything committed so far durable against a killed process
//!   *and* a power cut; nothing is acknowledged to anyone before it returns;
//! - scans return keys in byte order, which is why every key is big-endian.
pub mod log_engine;
pub mod memory;
pub mod node_store;
pub mod sled_engine;
pub mod staging;

pub use node_store::{Cursor, NodeStore, QuarantineRecord};

use std::path::Path;
use std::sync::Arc;

use crate::Result;

/// The engine of a store on disk: `[node] engine` in the config chooses it for a new store;
/// an existing store is opened with the engine that wrote it ([`EngineKind::detect`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// sled 0.34, one tree with a prefix per keyspace ([`sled_engine`]): what every store
    /// was until 2026-12-06.
    Sled,
    /// One append-only file and an index in memory ([`log_engine`]): the default since
    /// 2026-12-06 (docs/architecture.md, "The log engine").
    #[default]
    Log,
}

impl EngineKind {
    /// The engine whose files are in `dir`, if any.
    pub fn detect(dir: &Path) -> Option<EngineKind> {
        if dir.join(log_engine::LOG_FILE).exists() {
            Some(EngineKind::Log)
        } else if dir.join("conf").exists() || dir.join("db").exists() {
            Some(EngineKind::Sled)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Sled => "sled",
            EngineKind::Log => "log",
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "sled" => Ok(EngineKind::Sled),
            "log" => Ok(EngineKind::Log),
            other => Err(format!(
                "unknown storage engine {other:?}: use \"sled\" or \"log\""
            )),
        }
    }
}

/// Opens the store in `dir` with the engine that wrote it, or creates one with `for_new`.
/// `cache_bytes` is sled's page cache (the log engine has none: the OS caches its file).
pub fn open_engine(dir: &Path, for_new: EngineKind, cache_bytes: u64) -> Result<Arc<dyn Storage>> {
    let kind = EngineKind::detect(dir).unwrap_or(for_new);
    if kind != for_new {
        tracing::info!(
            store = %dir.display(),
            engine = kind.name(),
            configured = for_new.name(),
            "the store was written by another engine than the one configured for new stores; \
             opening it with its own (move it with `liandong backup export` and `import` to change)"
        );
    }
    let started = std::time::Instant::now();
    let engine: Arc<dyn Storage> = match kind {
        EngineKind::Sled => Arc::new(sled_engine::SledStorage::open(dir, cache_bytes)?),
        EngineKind::Log => Arc::new(log_engine::LogStorage::open(dir)?),
    };
    tracing::info!(
        store = %dir.display(),
        engine = kind.name(),
        bytes = engine.size_on_disk(),
        ms = started.elapsed().as_millis() as u64,
        "store opened"
    );
    Ok(engine)
}

/// The keyspaces ("trees") of a node, one per concern. Engines may map them to separate
/// trees or to a one-byte prefix in a single tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// event id (16) → the signed frame, verbatim.
    Events,
    /// local position (u64 BE) → event id (16) ++ code of the link it came from (0 or 6):
    /// the log of a store written before 2026-12-03, up to the position where its
    /// [`Space::LogPages`] begin.
    Log,
    /// page number (u64 BE, `(position - 1) / 128`) → the page's first position (u64 BE),
    /// then per entry the length of the link's code (1), the event id (16) and the code: the
    /// local log, 128 positions to a sled record instead of one each (BENCHMARKS.md).
    LogPages,
    /// origin (6) ++ seq (u64 BE) → event id (16) ++ event hash (32).
    Origins,
    /// record key (17) ++ hlc (u64 BE) ++ origin (6) ++ seq (u64 BE) → event id: the events,
    /// in canonical order, of each record that has no state (the committees'); a record with
    /// a state lists its events in the state's history instead.
    Records,
    /// record key (17) → derived state (JSON), with the history of every event folded in.
    State,
    /// peer code (6) → the cursor of what we hold from that peer.
    Cursors,
    /// quarantine id (UUID v7, 16) → what was refused and why (JSON).
    Quarantine,
    /// named counters and chain heads.
    Meta,
}

impl Space {
    /// Every keyspace, in the order of [`Space::index`] (and of `Ord`).
    pub const ALL: [Space; 9] = [
        Space::Events,
        Space::Log,
        Space::LogPages,
        Space::Origins,
        Space::Records,
        Space::State,
        Space::Cursors,
        Space::Quarantine,
        Space::Meta,
    ];

    /// The keyspace's place in [`Space::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn tag(self) -> u8 {
        match self {
            Space::Events => b'E',
            Space::Log => b'L',
            Space::LogPages => b'P',
            Space::Origins => b'O',
            Space::Records => b'R',
            Space::State => b'S',
            Space::Cursors => b'C',
            Space::Quarantine => b'Q',
            Space::Meta => b'M',
        }
    }
}

/// Writes that commit together.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub ops: Vec<(Space, Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    pub fn put(&mut self, space: Space, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((space, key.into(), Some(value.into())));
    }
    pub fn delete(&mut self, space: Space, key: impl Into<Vec<u8>>) {
        self.ops.push((space, key.into(), None));
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// The value this batch will leave at `key`, if it writes one (last write wins).
    pub fn pending(&self, space: Space, key: &[u8]) -> Option<Option<&[u8]>> {
        self.ops
            .iter()
            .rev()
            .find(|(s, k, _)| *s == space && k == key)
            .map(|(_, _, v)| v.as_deref())
    }
}

pub type Entry = (Vec<u8>, Vec<u8>);

pub trait Storage: Send + Sync + 'static {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Entries of `space` whose key starts with `prefix` and is greater than `after` (or all
    /// of them when `after` is None), in key order, at most `limit`.
    fn scan(
        &self,
        space: Space,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>>;
    /// Applies the batch atomically.
    fn commit(&self, batch: WriteBatch) -> Result<()>;
    /// Makes every committed batch durable (process kill and power loss).
    fn sync(&self) -> Result<()>;
    /// Bytes used on disk (0 in memory).
    fn size_on_disk(&self) -> u64;
    /// Whether this is a [`staging::Staging`] wrapper already.
    fn is_staged(&self) -> bool {
        false
    }
    /// Hands what a wrapper holds back to its engine, not yet synced (nothing to do for an
    /// engine itself). With [`Storage::sync_flushed`] it splits [`Storage::sync`] in two, so
    /// that the node's writer can flush one group and sync it on another thread while it
    /// writes the next (`node::writer_loop`).
    fn flush_staged(&self) -> Result<()> {
        Ok(())
    }
    /// Makes durable what [`Storage::flush_staged`] handed to the engine (and whatever else
    /// the engine holds), without flushing what was staged since.
    fn sync_flushed(&self) -> Result<()> {
        self.sync()
    }
}

#[cfg(test)]
pub(crate) mod suite {
    //! One test suite, run against every engine (the garage way): the laws of [`Storage`].
    use super::*;

    pub fn run_all(make: &dyn Fn() -> Box<dyn Storage>) {
        batches_are_visible_and_ordered(make().as_ref());
        scans_respect_prefix_after_and_limit(make().as_ref());
        spaces_do_not_overlap(make().as_ref());
    }

    fn batches_are_visible_and_ordered(s: &dyn Storage) {
        let mut b = WriteBatch::default();
        b.put(Space::Log, 2u64.to_be_bytes(), b"two".to_vec());
        b.put(Space::Log, 1u64.to_be_bytes(), b"one".to_vec());
        b.put(Space::Meta, b"k".to_vec(), b"v".to_vec());
        s.commit(b).expect("commit");
        s.sync().expect("sync");
        assert_eq!(s.get(Space::Meta, b"k").expect("get"), Some(b"v".to_vec()));
        let all = s.scan(Space::Log, b"", None, 10).expect("scan");
        assert_eq!(
            all.iter().map(|(_, v)| v.as_slice()).collect::<Vec<_>>(),
            vec![b"one".as_slice(), b"two"]
        );
        let mut d = WriteBatch::default();
        d.delete(Space::Meta, b"k".to_vec());
        s.commit(d).expect("commit");
        assert_eq!(s.get(Space::Meta, b"k").expect("get"), None);
    }

    fn scans_respect_prefix_after_and_limit(s: &dyn Storage) {
        let mut b = WriteBatch::default();
        for k in ["aa1", "aa2", "aa3", "ab1", "b"] {
            b.put(Space::Records, k.as_bytes().to_vec(), k.as_bytes().to_vec());
        }
        s.commit(b).expect("commit");
        let keys = |v: Vec<Entry>| {
            v.into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(s.scan(Space::Records, b"aa", None, 10).expect("scan")),
            vec!["aa1", "aa2", "aa3"]
        );
        assert_eq!(
            keys(
                s.scan(Space::Records, b"aa", Some(b"aa1"), 10)
                    .expect("scan")
            ),
            vec!["aa2", "aa3"]
        );
        assert_eq!(
            keys(s.scan(Space::Records, b"a", None, 2).expect("scan")),
            vec!["aa1", "aa2"]
        );
        assert_eq!(
            keys(s.scan(Space::Records, b"", Some(b"ab1"), 10).expect("scan")),
            vec!["b"]
        );
        assert_eq!(
            keys(s.scan(Space::Records, b"b", Some(b"a"), 10).expect("scan")),
            vec!["b"]
        );
    }

    fn spaces_do_not_overlap(s: &dyn Storage) {
        let mut b = WriteBatch::default();
        b.put(Space::Events, b"x".to_vec(), b"e".to_vec());
        b.put(Space::State, b"x".to_vec(), b"s".to_vec());
        s.commit(b).expect("commit");
        assert_eq!(
            s.get(Space::Events, b"x").expect("get"),
            Some(b"e".to_vec())
        );
        assert_eq!(s.scan(Space::State, b"", None, 10).expect("scan").len(), 1);
        assert!(s
            .scan(Space::Cursors, b"", None, 10)
            .expect("scan")
            .is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_opens_with_the_engine_that_wrote_it() {
        for (first, then) in [
            (EngineKind::Sled, EngineKind::Log),
            (EngineKind::Log, EngineKind::Sled),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = dir.path().join("store");
            assert_eq!(EngineKind::detect(&store), None);
            {
                let s = open_engine(&store, first, 1 << 20).expect("create");
                let mut b = WriteBatch::default();
                b.put(Space::Meta, b"k".to_vec(), b"v".to_vec());
                s.commit(b).expect("commit");
                s.sync().expect("sync");
            }
            assert_eq!(EngineKind::detect(&store), Some(first));
            // The config now names the other engine: the store keeps its own.
            let s = open_engine(&store, then, 1 << 20).expect("reopen");
            assert_eq!(s.get(Space::Meta, b"k").expect("get"), Some(b"v".to_vec()));
            assert_eq!(EngineKind::detect(&store), Some(first));
        }
    }

    #[test]
    fn every_keyspace_is_listed_once_in_order() {
        for (i, space) in Space::ALL.into_iter().enumerate() {
            assert_eq!(space.index(), i, "{space:?}");
        }
        assert!(Space::ALL.windows(2).all(|w| w[0] < w[1]));
        let mut tags: Vec<u8> = Space::ALL.iter().map(|s| s.tag()).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), Space::ALL.len(), "tags are unique");
    }

    #[test]
    fn engine_names_parse_and_a_wrong_one_says_what_to_use() {
        assert_eq!("log".parse::<EngineKind>(), Ok(EngineKind::Log));
        assert_eq!("sled".parse::<EngineKind>(), Ok(EngineKind::Sled));
        let err = "rocksdb".parse::<EngineKind>().expect_err("unknown");
        assert!(err.contains("\"sled\" or \"log\""), "{err}");
    }
}
