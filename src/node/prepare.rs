//! Signatures checked before the writer, in batches and on every core.
//!
//! A link's receive loop hands a whole received batch to [`Node::prepare`]: each frame is
//! opened (decoded, structure checked) and its signature checked against the key the roster
//! gives its origin for that seq, with ed25519 batch verification (one multiscalar
//! multiplication for the whole batch, ~2.7× the rate of one-by-one checks), split over the
//! cores on tokio's blocking pool. The writer then only checks that the key it would use is
//! the key the signature was verified with — if the roster changed in between (a rotation
//! earlier in the same batch), it verifies again — so the single writer thread no longer
//! spends most of its time in signature checks.
//!
//! If a batch does not verify as a whole, each of its signatures is checked on its own, so
//! that only the bad event is refused (quarantined by the writer, with the usual reason).
//! On a single-threaded runtime (the simulation) everything runs inline, in order.
use ed25519_dalek::VerifyingKey;

use super::{read_roster, IngestReport, Inner, Job, Node};
use crate::domain::{authz, Refusal};
use crate::event::Envelope;
use crate::store::Cursor;
use crate::{Error, Result};

/// A received event, opened and, where the roster allowed, verified.
pub struct Prepared {
    pub(crate) frame: Vec<u8>,
    pub(crate) opened: std::result::Result<Envelope, Refusal>,
    /// The key its signature verified against, if it was checked and did.
    pub(crate) verified_with: Option<VerifyingKey>,
}

impl Prepared {
    /// A frame opened but not verified (the writer verifies it).
    pub fn unverified(frame: Vec<u8>) -> Prepared {
        let opened = Envelope::open(&frame);
        Prepared {
            frame,
            opened,
            verified_with: None,
        }
    }
}

/// The cores to split a batch's check over. Asked once: the standard library reads the
/// cgroup's CPU quota from files each time it is asked (three system calls a batch).
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Below this many events a batch is verified in one piece on one core.
const SPLIT_AT: usize = 64;

impl Node {
    /// Opens the events of a batch received from `from` and verifies their signatures in
    /// batches, on the blocking pool (inline on a single-threaded runtime).
    pub async fn prepare(&self, from: &str, events: Vec<Vec<u8>>) -> Result<Vec<Prepared>> {
        let multi = tokio::runtime::Handle::try_current()
            .map(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
            .unwrap_or(false);
        if !multi || events.len() < 2 {
            return Ok(prepare_now(&self.inner, from, events));
        }
        let cores = cores();
        let chunks = if events.len() >= SPLIT_AT { cores } else { 1 };
        let per = events.len().div_ceil(chunks);
        let mut events = events;
        let mut tasks = Vec::with_capacity(chunks);
        while !events.is_empty() {
            let rest = events.split_off(per.min(events.len()));
            let chunk = std::mem::replace(&mut events, rest);
            let inner = self.inner.clone();
            let from = from.to_string();
            tasks.push(tokio::task::spawn_blocking(move || {
                prepare_now(&inner, &from, chunk)
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.extend(
                t.await
                    .map_err(|e| Error::Storage(format!("signature check task failed: {e}")))?,
            );
        }
        Ok(out)
    }

    /// Ingests prepared events (see [`Node::prepare`]) received from `from` and, when given,
    /// moves that link's cursor in the same durable step. Returns once everything is durable.
    pub async fn ingest_prepared(
        &self,
        from: &str,
        items: Vec<Prepared>,
        cursor: Option<Cursor>,
    ) -> Result<IngestReport> {
        self.submit_prepared(from, items, cursor)
            .await?
            .await
            .map_err(|_| Error::Shutdown)?
    }

    /// [`Node::ingest_prepared`] in two steps: hands the batch to the writer, and returns
    /// what answers once it is durable. The writer takes jobs in the order handed over, so a
    /// link hands over its next batch before the last is durable, and the writer finds
    /// several waiting to share one sync.
    pub async fn submit_prepared(
        &self,
        from: &str,
        items: Vec<Prepared>,
        cursor: Option<Cursor>,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<IngestReport>>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.inner
            .jobs
            .send(Job::Ingest {
                from: from.to_string(),
                items,
                cursor,
                reply,
            })
            .await
            .map_err(|_| Error::Shutdown)?;
        Ok(rx)
    }
}

/// Opens and verifies `events` here and now.
pub(crate) fn prepare_now(inner: &Inner, from: &str, events: Vec<Vec<u8>>) -> Vec<Prepared> {
    let mut out: Vec<Prepared> = events.into_iter().map(Prepared::unverified).collect();
    let keys: Vec<Option<VerifyingKey>> = {
        let roster = read_roster(inner);
        let parent = roster.parent_of(&inner.settings.code).map(str::to_string);
        out.iter()
            .map(|p| {
                let env = p.opened.as_ref().ok()?;
                // The same key `admit` will ask for (see there).
                let direct = from == env.origin() || parent.as_deref() == Some(from);
                authz::verifying_key(
                    &roster,
                    env.origin(),
                    env.seq(),
                    env.audience(),
                    env.body(),
                    direct,
                )
                .ok()
            })
            .collect()
    };
    let checkable: Vec<usize> = (0..out.len()).filter(|&i| keys[i].is_some()).collect();
    let all_good = checkable.len() >= 2 && {
        let items: Vec<_> = checkable
            .iter()
            .filter_map(|&i| match (&out[i].opened, &keys[i]) {
                (Ok(env), Some(key)) => Some((key, env.event_bytes.as_slice(), &env.signature)),
                _ => None,
            })
            .collect();
        items.len() == checkable.len() && crate::event::signature::verify_all(items)
    };
    for i in checkable {
        let Some(key) = keys[i] else { continue };
        let good = all_good
            || out[i]
                .opened
                .as_ref()
                .is_ok_and(|env| env.verify(&key).is_ok());
        if good {
            out[i].verified_with = Some(key);
        }
    }
    out
}
