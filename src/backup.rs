//! Backup and moving data: [`export`] a node's events to a portable file, [`import`] one into a
//! node through the normal ingest pipeline (signatures and rules are checked again), and
//! [`verify`] a store end to end.
//!
//! ## The export file (format version 1)
//!
//! ```text
//! 8 bytes   magic "LDEXPORT"
//! 4 bytes   format version, u32 big-endian (1)
//! 4 bytes   header length H, u32 big-endian
//! H bytes   header, JSON: {"committee", "name", "root_code", "events", "exported_at_ms",
//!           "liandong_version"}
//! events times:
//!   4 bytes length L, u32 big-endian (1 ..= 16 MiB)
//!   L bytes one signed event frame (`SignedEvent` protobuf), verbatim as stored and signed
//! 4 bytes   0 (end of events)
//! 32 bytes  SHA-256 of every byte before these 32
//! ```
//!
//! Events come in the exporting node's log order, in which every event follows the roster
//! entries that admit it, so an import can replay them in file order. Only events travel:
//! derived state, indexes and cursors are rebuilt by the importing node, the quarantine stays
//! behind, and the node's key is not in the file (back it up separately).
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::record::{RecordKey, RecordState};
use crate::domain::{Fact, Refusal, Roster};
use crate::event::Envelope;
use crate::node::Node;
use crate::store::{NodeStore, Space};
use crate::{Error, Result};

pub const MAGIC: &[u8; 8] = b"LDEXPORT";
pub const FORMAT_VERSION: u32 = 1;
/// Largest frame an export may hold (an event is at most 128 KiB; this leaves room).
const MAX_FRAME: u32 = 16 * 1024 * 1024;
/// Frames handed to the ingest pipeline per durable step.
const IMPORT_CHUNK: usize = 512;

/// What an export file says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportHeader {
    /// The committee whose node was exported.
    pub committee: String,
    pub name: String,
    /// The federation's root (trust anchor) the events were verified against.
    pub root_code: String,
    /// Number of event frames that follow.
    pub events: u64,
    pub exported_at_ms: u64,
    pub liandong_version: String,
}

/// Long work reports here: (what, done, total).
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// Writes every event of `store`, in log order, to `out`. Works on a running node's store
/// (in process) as on a stopped one's; `committee`, `name` and `root_code` go in the header.
pub fn export(
    store: &NodeStore,
    committee: &str,
    name: &str,
    root_code: &str,
    now_ms: u64,
    out: impl Write,
    progress: Progress<'_>,
) -> Result<ExportHeader> {
    let head = store.head()?;
    let header = ExportHeader {
        committee: committee.to_string(),
        name: name.to_string(),
        root_code: root_code.to_string(),
        events: head,
        exported_at_ms: now_ms,
        liandong_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut w = HashingWriter {
        inner: BufWriter::new(out),
        hash: Sha256::new(),
    };
    let header_json = serde_json::to_vec(&header)
        .map_err(|e| Error::Invalid(format!("cannot encode the export header: {e}")))?;
    w.write_all(MAGIC)?;
    w.write_all(&FORMAT_VERSION.to_be_bytes())?;
    w.write_all(&(header_json.len() as u32).to_be_bytes())?;
    w.write_all(&header_json)?;
    let mut after = 0u64;
    let mut written = 0u64;
    while after < head {
        let entries = store.log_after(after, 1024)?;
        if entries.is_empty() {
            break;
        }
        for entry in entries {
            if entry.position > head {
                break;
            }
            if entry.position != after + 1 {
                return Err(Error::Storage(format!(
                    "the log jumps from position {after} to {}: the store is damaged; run `liandong verify`",
                    entry.position
                )));
            }
            after = entry.position;
            let frame = store.event_frame(&entry.id)?.ok_or_else(|| {
                Error::Storage(format!(
                    "log position {} names event {}, which is not stored: the store is damaged; run `liandong verify`",
                    entry.position, entry.id
                ))
            })?;
            w.write_all(&(frame.len() as u32).to_be_bytes())?;
            w.write_all(&frame)?;
            written += 1;
            if written.is_multiple_of(1000) {
                progress("exporting", written, head);
            }
        }
    }
    if written != head {
        return Err(Error::Storage(format!(
            "the log holds {written} events but its head says {head}: the store is damaged; run `liandong verify`"
        )));
    }
    w.write_all(&0u32.to_be_bytes())?;
    let digest = w.hash.finalize_reset();
    w.inner.write_all(&digest)?;
    w.inner.flush()?;
    progress("exporting", written, head);
    Ok(header)
}

/// Exports to a file: written to a temporary name beside it, synced, then renamed, so a
/// crash never leaves a half-written file under the final name.
pub fn export_to_file(
    store: &NodeStore,
    committee: &str,
    name: &str,
    root_code: &str,
    now_ms: u64,
    path: &Path,
    progress: Progress<'_>,
) -> Result<ExportHeader> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        Error::Invalid(format!(
            "cannot create a file in {}: {e}; check that the folder exists and is writable",
            dir.display()
        ))
    })?;
    let header = export(
        store,
        committee,
        name,
        root_code,
        now_ms,
        tmp.as_file(),
        progress,
    )?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| Error::Invalid(format!("cannot write {}: {}", path.display(), e.error)))?;
    Ok(header)
}

struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads an export file frame by frame, hashing as it goes.
pub struct ExportReader<R: Read> {
    inner: R,
    hash: Sha256,
    pub header: ExportHeader,
    read: u64,
    done: bool,
    what: String,
}

impl<R: Read> ExportReader<R> {
    /// Reads and checks the magic, the format version and the header.
    pub fn new(inner: R, what: &str) -> Result<ExportReader<R>> {
        let mut r = ExportReader {
            inner,
            hash: Sha256::new(),
            header: ExportHeader {
                committee: String::new(),
                name: String::new(),
                root_code: String::new(),
                events: 0,
                exported_at_ms: 0,
                liandong_version: String::new(),
            },
            read: 0,
            done: false,
            what: what.to_string(),
        };
        let mut magic = [0u8; 8];
        r.fill(&mut magic, "its start")?;
        if &magic != MAGIC {
            return Err(Error::Malformed(format!(
                "{} is not a liandong export (it does not start with {:?})",
                r.what,
                String::from_utf8_lossy(MAGIC)
            )));
        }
        let version = r.u32("the format version")?;
        if version != FORMAT_VERSION {
            return Err(Error::Malformed(format!(
                "{} is export format {version}; this liandong reads format {FORMAT_VERSION}: use the liandong version that wrote it, or a newer one",
                r.what
            )));
        }
        let len = r.u32("the header length")?;
        if len > 1 << 20 {
            return Err(Error::Malformed(format!(
                "{}: the header claims {len} bytes; the file is damaged",
                r.what
            )));
        }
        let mut json = vec![0u8; len as usize];
        r.fill(&mut json, "the header")?;
        r.header = serde_json::from_slice(&json)
            .map_err(|e| Error::Malformed(format!("{}: the header does not parse: {e}", r.what)))?;
        Ok(r)
    }

    fn fill(&mut self, buf: &mut [u8], part: &str) -> Result<()> {
        self.inner.read_exact(buf).map_err(|e| {
            Error::Malformed(format!(
                "{} ends early, in {part} ({e}): the file is truncated or damaged",
                self.what
            ))
        })?;
        self.hash.update(&*buf);
        Ok(())
    }

    fn u32(&mut self, part: &str) -> Result<u32> {
        let mut b = [0u8; 4];
        self.fill(&mut b, part)?;
        Ok(u32::from_be_bytes(b))
    }

    /// The next frame; None after the last one, once the end marker and the checksum have
    /// been read and checked.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let len = self.u32("a frame length")?;
        if len == 0 {
            let want = self.hash.finalize_reset();
            let mut got = [0u8; 32];
            self.inner.read_exact(&mut got).map_err(|e| {
                Error::Malformed(format!(
                    "{} ends before its checksum ({e}): the file is truncated",
                    self.what
                ))
            })?;
            if got[..] != want[..] {
                return Err(Error::Malformed(format!(
                    "{}: the SHA-256 checksum does not match: the file was altered or damaged after export",
                    self.what
                )));
            }
            if self.read != self.header.events {
                return Err(Error::Malformed(format!(
                    "{} holds {} events but its header says {}: the file is damaged",
                    self.what, self.read, self.header.events
                )));
            }
            self.done = true;
            return Ok(None);
        }
        if len > MAX_FRAME {
            return Err(Error::Malformed(format!(
                "{}: frame {} claims {len} bytes; the file is damaged",
                self.what,
                self.read + 1
            )));
        }
        let mut frame = vec![0u8; len as usize];
        self.fill(&mut frame, "a frame")?;
        self.read += 1;
        Ok(Some(frame))
    }
}

/// Opens an export file and checks it whole (structure, count, checksum) without keeping it.
pub fn check_file(path: &Path, progress: Progress<'_>) -> Result<ExportHeader> {
    let mut r = open_export(path)?;
    let total = r.header.events;
    let mut n = 0u64;
    while r.next_frame()?.is_some() {
        n += 1;
        if n.is_multiple_of(5000) {
            progress("checking the file", n, total);
        }
    }
    Ok(r.header)
}

pub fn open_export(path: &Path) -> Result<ExportReader<BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Invalid(format!("cannot open the export {}: {e}", path.display())))?;
    ExportReader::new(
        BufReader::with_capacity(1 << 20, file),
        &path.display().to_string(),
    )
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub committee: String,
    pub events_in_file: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub refused: u64,
}

/// The link name imported events are recorded as coming from (in the log and quarantine).
pub const IMPORT_SOURCE: &str = "import";

/// Feeds every frame of an export file through the node's ingest pipeline — decode,
/// signature against the roster, chain, authorization, scope — exactly as if a link had sent
/// them; what is refused goes to the quarantine with its reason. The whole file is checked
/// (checksum, count) before anything is ingested.
pub async fn import(node: &Node, path: &Path, progress: Progress<'_>) -> Result<ImportSummary> {
    let header = check_file(path, &mut *progress)?;
    let mut r = open_export(path)?;
    let mut summary = ImportSummary {
        committee: header.committee.clone(),
        events_in_file: header.events,
        ..Default::default()
    };
    let mut chunk = Vec::with_capacity(IMPORT_CHUNK);
    let mut done = 0u64;
    loop {
        let frame = r.next_frame()?;
        let end = frame.is_none();
        if let Some(f) = frame {
            chunk.push(f);
        }
        if chunk.len() >= IMPORT_CHUNK || (end && !chunk.is_empty()) {
            let n = chunk.len() as u64;
            let report = node
                .ingest(IMPORT_SOURCE, std::mem::take(&mut chunk), None)
                .await?;
            summary.stored += u64::from(report.stored);
            summary.duplicates += u64::from(report.duplicates);
            summary.refused += u64::from(report.refused);
            done += n;
            progress("importing", done, header.events);
        }
        if end {
            break;
        }
    }
    Ok(summary)
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub records: u64,
    pub origins: u64,
    /// Every problem, one sentence each; empty for a good store.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Problems kept per report; a badly damaged store would otherwise print millions of lines.
const MAX_PROBLEMS: usize = 1000;

struct Problems {
    list: Vec<String>,
    more: u64,
}

impl Problems {
    fn add(&mut self, p: String) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(p);
        } else {
            self.more += 1;
        }
    }
}

struct Held {
    origin: String,
    seq: u64,
    hash: [u8; 32],
    prev: [u8; 32],
}

/// Checks a store end to end against the roster it holds (`roster`, as the node builds it on
/// open, from the trust anchor):
/// - the log runs 1..=head without gaps, names stored events, each exactly once, and every
///   stored event is in the log;
/// - every event decodes and its signature verifies against its author's key;
/// - the origin index holds exactly the events, and nothing else; every record's events are
///   listed, in its state's history or (records without a state) in the record index;
/// - each origin's chain links wherever two consecutive sequence numbers are held;
/// - every record's stored state equals the fold of its events, and no state is without events;
/// - the counters (head, own chain, quarantine count, clock) agree with what is stored.
pub fn verify(
    store: &NodeStore,
    roster: &Roster,
    me: &str,
    progress: Progress<'_>,
) -> Result<VerifyReport> {
    let engine = store.engine();
    let mut problems = Problems {
        list: Vec::new(),
        more: 0,
    };
    let head = store.head()?;
    let mut ids: HashMap<Uuid, u64> = HashMap::new();
    let mut held: HashMap<Uuid, Held> = HashMap::new();
    let mut records: BTreeMap<RecordKey, BTreeSet<Uuid>> = BTreeMap::new();
    let mut max_hlc = 0u64;
    let mut own_max = 0u64;
    let mut own_hash: Option<[u8; 32]> = None;

    // 1. The log, and every event it names.
    let mut after = 0u64;
    let mut last_position = 0u64;
    loop {
        let entries = store.log_after(after, 1024)?;
        if entries.is_empty() {
            break;
        }
        for entry in entries {
            after = entry.position;
            if entry.position != last_position + 1 {
                problems.add(format!(
                    "the log jumps from position {last_position} to {}: entries are missing",
                    entry.position
                ));
            }
            last_position = entry.position;
            if let Some(first) = ids.insert(entry.id, entry.position) {
                problems.add(format!(
                    "event {} is in the log twice, at positions {first} and {}",
                    entry.id, entry.position
                ));
                continue;
            }
            let Some(frame) = store.event_frame(&entry.id)? else {
                problems.add(format!(
                    "log position {} names event {}, which is not stored",
                    entry.position, entry.id
                ));
                continue;
            };
            let env = match Envelope::open(&frame) {
                Ok(env) => env,
                Err(e) => {
                    problems.add(format!(
                        "event {} (log position {}) does not decode: {e}",
                        entry.id, entry.position
                    ));
                    continue;
                }
            };
            let who = format!("event {} ({} #{})", env.id, env.origin(), env.seq());
            if env.id != entry.id {
                problems.add(format!(
                    "{who} is stored under the id {}: the frame was altered or misplaced",
                    entry.id
                ));
            }
            match roster.key_for(env.origin(), env.seq()) {
                Ok(key) => {
                    if let Err(e) = env.verify(key) {
                        problems.add(format!(
                            "{who}: the signature does not verify against {}'s key ({e}): the stored frame was altered",
                            env.origin()
                        ));
                    }
                }
                // Held from before its key was revoked: kept, and voided by the fold.
                Err(Refusal::Revoked(_)) => {}
                Err(e) => problems.add(format!(
                    "{who}: no key in the roster this store holds verifies it: {e}"
                )),
            }
            match store.by_origin(env.origin(), env.seq()) {
                Ok(Some((id, hash))) if id == env.id && hash == env.hash => {}
                Ok(Some((id, _))) if id != env.id => problems.add(format!(
                    "{who}: the origin index names event {id} for that sequence number"
                )),
                Ok(Some(_)) => {
                    problems.add(format!("{who}: the origin index holds another hash for it"))
                }
                Ok(None) => problems.add(format!("{who} is missing from the origin index")),
                Err(e) => problems.add(format!("{who}: the origin index entry is unreadable: {e}")),
            }
            max_hlc = max_hlc.max(env.hlc());
            if env.origin() == me && env.seq() > own_max {
                own_max = env.seq();
                own_hash = Some(env.hash);
            }
            // An event of a kind this version does not know has no record: kept, not applied.
            match env.body().map(RecordKey::of) {
                Some(Ok(rk)) => {
                    records.entry(rk).or_default().insert(env.id);
                }
                Some(Err(e)) => problems.add(format!("{who}: names no record: {e}")),
                None => {}
            }
            let mut prev = [0u8; 32];
            if env.event.prev.len() == 32 {
                prev.copy_from_slice(&env.event.prev);
            }
            held.insert(
                env.id,
                Held {
                    origin: env.origin().to_string(),
                    seq: env.seq(),
                    hash: env.hash,
                    prev,
                },
            );
            if ids.len().is_multiple_of(1000) {
                progress("checking events", ids.len() as u64, head);
            }
        }
    }
    progress("checking events", ids.len() as u64, head);
    if last_position != head {
        problems.add(format!(
            "the head counter says {head} events, but the log ends at position {last_position}"
        ));
    }

    // 2. Nothing stored outside the log; the indexes name only held events.
    let mut stored = 0u64;
    scan_all(engine.as_ref(), Space::Events, |k, _| {
        stored += 1;
        match Uuid::from_slice(k) {
            Ok(id) if ids.contains_key(&id) => {}
            Ok(id) => problems.add(format!("event {id} is stored but not in the log")),
            Err(_) => problems.add(format!(
                "the events keyspace holds a bad key {}",
                hex::encode(k)
            )),
        }
    })?;
    let mut origins = 0u64;
    scan_all(engine.as_ref(), Space::Origins, |k, v| {
        origins += 1;
        let what = origin_key_text(k);
        match v.get(..16).map(Uuid::from_slice) {
            Some(Ok(id)) if held.contains_key(&id) => {}
            Some(Ok(id)) => problems.add(format!(
                "the origin index entry {what} names event {id}, which is not held"
            )),
            _ => problems.add(format!("the origin index entry {what} is unreadable")),
        }
    })?;
    let mut indexed: BTreeMap<RecordKey, BTreeSet<Uuid>> = BTreeMap::new();
    scan_all(engine.as_ref(), Space::Records, |k, v| {
        let rk = k.get(..17).and_then(RecordKey::from_bytes);
        match (rk, Uuid::from_slice(v)) {
            (Some(rk), Ok(id)) => {
                if !held.contains_key(&id) {
                    problems.add(format!(
                        "the record index of {} names event {id}, which is not held",
                        rk.id_text()
                    ));
                }
                indexed.entry(rk).or_default().insert(id);
            }
            _ => problems.add(format!(
                "the record index holds an unreadable entry {}",
                hex::encode(k)
            )),
        }
    })?;
    for (rk, want) in &records {
        let got = indexed.remove(rk).unwrap_or_default();
        // A record with a state lists its events in the state's history (checked in 4.);
        // only the others must be complete here.
        if RecordState::empty(rk).is_some() {
            continue;
        }
        for id in want.difference(&got) {
            problems.add(format!(
                "event {id} of record {} is missing from the record index",
                rk.id_text()
            ));
        }
    }
    for (rk, _) in indexed {
        problems.add(format!(
            "the record index lists record {}, none of whose events is held",
            rk.id_text()
        ));
    }

    // 3. The chains, wherever consecutive sequence numbers are held.
    let mut by_origin: BTreeMap<&str, BTreeMap<u64, &Held>> = BTreeMap::new();
    for h in held.values() {
        by_origin.entry(&h.origin).or_default().insert(h.seq, h);
    }
    for (origin, chain) in &by_origin {
        for (seq, h) in chain {
            if let Some(prev) = chain.get(&(seq.wrapping_sub(1))) {
                if h.prev != prev.hash {
                    problems.add(format!(
                        "the chain of {origin} is broken: #{seq} does not link to the held #{}",
                        seq - 1
                    ));
                }
            }
        }
    }

    // 4. Derived state: the fold of each record's events equals the stored state.
    let total = records.len() as u64;
    let mut folded = 0u64;
    let mut with_state: HashSet<[u8; 17]> = HashSet::new();
    for (rk, want_ids) in &records {
        folded += 1;
        let mut facts = Vec::with_capacity(want_ids.len());
        for id in want_ids {
            if let Some(frame) = store.event_frame(id)? {
                if let Some(fact) = Envelope::open(&frame).ok().as_ref().and_then(Fact::of) {
                    facts.push(fact);
                }
            }
        }
        let expected = RecordState::fold(rk, &facts, roster);
        let stored_state = match store.state(rk) {
            Ok(s) => s,
            Err(e) => {
                problems.add(format!(
                    "the stored state of {} is unreadable: {e}",
                    rk.id_text()
                ));
                continue;
            }
        };
        if let Some(state) = &stored_state {
            with_state.insert(rk.to_bytes());
            let listed: BTreeSet<Uuid> = state.history().iter().map(|h| h.event_id).collect();
            for id in want_ids.difference(&listed) {
                problems.add(format!(
                    "event {id} of record {} is missing from the history of its stored state",
                    rk.id_text()
                ));
            }
        }
        if stored_state != expected {
            problems.add(format!(
                "the stored state of {} differs from the fold of its {} events: it was altered, or written by a faulty version",
                rk.id_text(),
                facts.len()
            ));
        }
        if folded.is_multiple_of(1000) {
            progress("recomputing states", folded, total);
        }
    }
    progress("recomputing states", folded, total);
    scan_all(engine.as_ref(), Space::State, |k, _| {
        if let Some(rk) = RecordKey::from_bytes(k) {
            if !with_state.contains(&rk.to_bytes()) {
                problems.add(format!(
                    "a state is stored for record {}, none of whose events is held",
                    rk.id_text()
                ));
            }
        }
    })?;

    // 5. The counters.
    // The counter may be ahead of what is held (a replacement machine continues the chain
    // from its parent's record), never behind: that would sign a sequence number twice.
    let chain = store.own_chain()?;
    if chain.seq < own_max {
        problems.add(format!(
            "this committee's chain counter says #{}, but its event #{own_max} is held: the next event would reuse a sequence number",
            chain.seq
        ));
    } else if own_max > 0 && chain.seq == own_max && chain.hash != own_hash {
        problems.add(format!(
            "this committee's chain head hash does not match its event #{own_max}"
        ));
    }
    let mut quarantined = 0u64;
    scan_all(engine.as_ref(), Space::Quarantine, |_, _| quarantined += 1)?;
    if store.quarantined()? != quarantined {
        problems.add(format!(
            "the quarantine counter says {}, but {quarantined} entries are stored",
            store.quarantined()?
        ));
    }
    if store.last_hlc()? < max_hlc {
        problems.add(format!(
            "the clock counter ({}) is behind the newest event held ({max_hlc}): new events could be stamped before it",
            store.last_hlc()?
        ));
    }
    if problems.more > 0 {
        problems
            .list
            .push(format!("… and {} more problems not listed", problems.more));
    }
    Ok(VerifyReport {
        events: ids.len() as u64,
        records: records.len() as u64,
        origins,
        problems: problems.list,
    })
}

fn origin_key_text(k: &[u8]) -> String {
    if k.len() == 14 {
        let seq = u64::from_be_bytes(k[6..].try_into().unwrap_or_default());
        format!("{} #{seq}", String::from_utf8_lossy(&k[..6]))
    } else {
        hex::encode(k)
    }
}

/// Visits every entry of a keyspace, a page at a time.
fn scan_all(
    engine: &dyn crate::store::Storage,
    space: Space,
    mut f: impl FnMut(&[u8], &[u8]),
) -> Result<()> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = engine.scan(space, b"", after.as_deref(), 1024)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        let last = last.clone();
        for (k, v) in &page {
            f(k, v);
        }
        after = Some(last);
    }
}
