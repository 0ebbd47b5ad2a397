//! The invariants of issue 5, checked over a federation's stores once it has settled: by the
//! deterministic simulation ([`crate::sim`], in-memory stores) after its faults heal, and by
//! `tests/crash_federation.rs` over the sled stores of real `liandong serve` processes that
//! were killed with SIGKILL again and again. Each check reads the nodes' stores directly and
//! returns what it found wrong, one line per violation, naming the node, the event and what
//! was expected.
//!
//! The simulation runs two federations (Gansu's tree and Qinghai's), linked root to root by a
//! lateral group. Who must hold an event is the union over the federations of who must hold
//! it in each one's roster (a tree event reaches no other federation; a group event reaches
//! the members in force and, with `include_subtrees`, their trees), and every per-node check
//! uses the roster of that node's own federation.
use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::record::{RecordKey, RecordState};
use crate::domain::{audience, authz, Fact, Roster};
use crate::event::Envelope;
use crate::node::Node;
use crate::pb::{self, audience::Kind};
use crate::store::node_store::LogEntry;
use crate::store::Space;

/// What the network forged or tampered with, for the checks: none of it may be held anywhere
/// (empty where nothing was injected).
#[derive(Clone, Debug, Default)]
pub struct Injected {
    /// Ids of injected events that no genuine event has.
    pub ids: BTreeSet<Uuid>,
    /// SHA-256 of every injected `SignedEvent` frame, as the quarantine keeps it.
    pub frames: BTreeSet<[u8; 32]>,
}

/// What one node holds, read once.
pub struct Held {
    pub code: String,
    pub log: Vec<LogEntry>,
    pub events: BTreeMap<Uuid, Envelope>,
}

impl Held {
    pub fn read(code: &str, node: &Node) -> crate::Result<Held> {
        let log = node.store().log_after(0, usize::MAX)?;
        let mut events = BTreeMap::new();
        for e in &log {
            if let Some(frame) = node.store().event_frame(&e.id)? {
                if let Ok(env) = Envelope::open(&frame) {
                    events.insert(e.id, env);
                }
            }
        }
        Ok(Held {
            code: code.to_string(),
            log,
            events,
        })
    }
}

/// Every event held anywhere, by id.
pub fn union(held: &[Held]) -> BTreeMap<Uuid, Envelope> {
    let mut all = BTreeMap::new();
    for h in held {
        for (id, env) in &h.events {
            all.entry(*id).or_insert_with(|| env.clone());
        }
    }
    all
}

/// The federations of the run: each one's roster as its root holds it, and which federation
/// each committee belongs to.
pub struct Feds {
    pub rosters: BTreeMap<String, Roster>,
    pub fed_of: BTreeMap<String, String>,
}

impl Feds {
    /// The roster of `code`'s own federation.
    pub fn roster_of(&self, code: &str) -> Option<&Roster> {
        self.rosters.get(self.fed_of.get(code)?)
    }

    fn same_fed(&self, a: &str, b: &str) -> bool {
        self.fed_of
            .get(a)
            .is_some_and(|f| self.fed_of.get(b) == Some(f))
    }
}

/// Whether an event belongs to a lateral group (and so may cross federations).
pub fn is_group_event(env: &Envelope) -> bool {
    matches!(env.audience(), Kind::Group(_))
}

/// The committees that must hold `env` in the federations of `feds`: the union of
/// [`required`] over each federation's roster.
pub fn required_in(feds: &Feds, env: &Envelope) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for roster in feds.rosters.values() {
        out.extend(required(roster, env));
    }
    out
}

/// The committees of one federation (`roster`) that must hold `env`: its author, every
/// committee in its audience ([`audience::visible_to`]), and every relay on the tree path
/// from the author to one of them. ([`audience::visible_within`] is the looser rule a node admits by: it also takes an
/// event that only something below it may see, such as a county's own topic at the
/// province, which routing never brings there.)
pub fn required(roster: &Roster, env: &Envelope) -> BTreeSet<String> {
    let (aud, origin) = (env.audience(), env.origin());
    let mut codes: Vec<String> = roster.members().map(|m| m.code.clone()).collect();
    codes.push(roster.root.clone());
    let mut out = BTreeSet::new();
    out.insert(origin.to_string());
    for m in codes {
        if audience::visible_to(roster, aud, origin, &m) {
            for n in audience::path(roster, origin, &m) {
                out.insert(n.to_string());
            }
            out.insert(m);
        }
    }
    out
}

/// For each event of `all`, who must hold it. (Who must hold an event depends only on its
/// audience and author: computed once per pair.)
pub fn requirements(
    feds: &Feds,
    all: &BTreeMap<Uuid, Envelope>,
) -> BTreeMap<Uuid, BTreeSet<String>> {
    let mut by_pair: BTreeMap<(Vec<u8>, &str), BTreeSet<String>> = BTreeMap::new();
    all.iter()
        .map(|(id, env)| {
            let aud = prost::Message::encode_to_vec(&pb::Audience {
                kind: Some(env.audience().clone()),
            });
            let req = by_pair
                .entry((aud, env.origin()))
                .or_insert_with(|| required_in(feds, env))
                .clone();
            (*id, req)
        })
        .collect()
}

/// The events of `all` that `h`'s committee must hold and does not.
pub fn missing(
    all: &BTreeMap<Uuid, Envelope>,
    req: &BTreeMap<Uuid, BTreeSet<String>>,
    h: &Held,
) -> Vec<Uuid> {
    all.keys()
        .filter(|id| !h.events.contains_key(id) && req.get(id).is_some_and(|r| r.contains(&h.code)))
        .copied()
        .collect()
}

fn describe(env: &Envelope) -> String {
    format!("{} seq {} ({})", env.origin(), env.seq(), env.kind_name())
}

fn digest(state: &RecordState) -> String {
    let json = serde_json::to_vec(state).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}

/// The inputs of the checks beyond the stores.
pub struct Expect<'a> {
    /// The federations' rosters (every node must have its own federation's).
    pub feds: &'a Feds,
    /// What the network forged or tampered with.
    pub injected: &'a Injected,
    /// Per node: every event it announced as durable while the run went on.
    pub announced: &'a BTreeMap<String, BTreeSet<Uuid>>,
    /// Events whose author got a receipt: (origin, event id).
    pub receipts: &'a [(String, Uuid)],
}

/// Runs every check over the running nodes; returns the violations.
pub fn check_all(nodes: &[(String, Node)], expect: &Expect<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut held = Vec::new();
    for (code, node) in nodes {
        match Held::read(code, node) {
            Ok(h) => held.push(h),
            Err(e) => out.push(format!("{code}: could not read the store: {e}")),
        }
    }
    let all = union(&held);
    let feds = expect.feds;
    let req = requirements(feds, &all);

    // 0. Every node has its federation's roster as far as its lineage goes (the committees
    //    above it, itself and those below it: a roster event goes to the committees that
    //    can hear from the committee it is about), and every node of both federations the
    //    same mirror of each lateral group's charter.
    // `lineage_of`: only the members in that committee's lineage.
    let members = |r: &Roster, lineage_of: Option<&str>| -> Vec<(String, Option<String>, String)> {
        let mut v: Vec<_> = r
            .members()
            .filter(|m| lineage_of.is_none_or(|me| r.in_lineage(&m.code, me)))
            .map(|m| {
                (
                    m.code.clone(),
                    m.parent.clone(),
                    hex::encode(m.key.as_bytes()),
                )
            })
            .collect();
        v.sort();
        v
    };
    let mut groups: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (code, node) in nodes {
        let Some(want) = feds.roster_of(code) else {
            out.push(format!("0 roster: {code} belongs to no federation"));
            continue;
        };
        let mine = node.roster();
        if members(&mine, None) != members(want, Some(code)) || mine.root != want.root {
            out.push(format!(
                "0 roster: {code}'s roster differs from its lineage in its root {}'s",
                want.root
            ));
        }
        for r in feds.rosters.values() {
            for g in r.groups() {
                let line = format!("{:?}", mine.group(&g.id));
                groups
                    .entry(g.id.clone())
                    .or_default()
                    .insert(code.clone(), hex::encode(&Sha256::digest(line)[..8]));
            }
        }
    }
    for (g, by_node) in &groups {
        let distinct: BTreeSet<&String> = by_node.values().collect();
        if distinct.len() > 1 {
            out.push(format!(
                "0 group roster: the nodes disagree on the charter of {g}: {by_node:?}"
            ));
        }
    }

    // 1. Every acknowledged event is at every node entitled to it: what an author got a
    //    receipt for, what any node announced as durable, and anything held anywhere.
    for (origin, id) in expect.receipts {
        if !all.contains_key(id) {
            out.push(format!(
                "1 lost: {origin} got a receipt for event {id}, which no node holds"
            ));
        } else if let Some(h) = held.iter().find(|h| h.code == *origin) {
            // The author synced it before answering: it must hold it whatever happened since.
            if !h.events.contains_key(id) {
                out.push(format!(
                    "1 lost: {origin} got a receipt for {} ({id}) and no longer holds it",
                    describe(&all[id])
                ));
            }
        }
    }
    for (code, ids) in expect.announced {
        if let Some(h) = held.iter().find(|h| h.code == *code) {
            for id in ids {
                if !h.events.contains_key(id) {
                    let what = all
                        .get(id)
                        .map(describe)
                        .unwrap_or_else(|| "held nowhere".into());
                    out.push(format!(
                        "1 lost: {code} announced event {id} ({what}) durable and no longer holds it"
                    ));
                }
            }
        }
    }
    for h in &held {
        let quarantined = nodes
            .iter()
            .find(|(c, _)| *c == h.code)
            .and_then(|(_, n)| n.store().quarantine_list().ok())
            .unwrap_or_default();
        for id in missing(&all, &req, h) {
            let why = quarantined
                .iter()
                .find(|q| q.event_id == Some(id) || q.id == id)
                .map(|q| format!("; in its quarantine from {}: {}", q.received_from, q.reason))
                .unwrap_or_default();
            out.push(format!(
                "1 missing: {} lacks {} ({id}){why}",
                h.code,
                describe(&all[&id])
            ));
        }
    }

    // (event hash, signature, federation) → whether it verifies there.
    type Signed = ([u8; 32], [u8; 64], String);
    let mut verified: BTreeMap<Signed, Result<(), String>> = BTreeMap::new();
    for h in &held {
        let node = &nodes
            .iter()
            .find(|(c, _)| *c == h.code)
            .map(|(_, n)| n.clone());
        let Some(node) = node else { continue };
        let code = &h.code;
        let Some(roster) = feds.roster_of(code) else {
            continue;
        };
        // 2. Nothing outside its scope (nor anything routing should not have brought), and
        //    nothing of another federation but its lateral groups' events.
        for (id, env) in &h.events {
            if !is_group_event(env) && !feds.same_fed(code, env.origin()) {
                out.push(format!(
                    "2 federation: {code} holds {}, a tree event of another federation",
                    describe(env)
                ));
            }
            if !audience::visible_within(roster, env.audience(), env.origin(), code) {
                out.push(format!("2 scope: {code} holds {}", describe(env)));
            } else if !req.get(id).is_some_and(|r| r.contains(code)) {
                out.push(format!(
                    "2 extra: {code} holds {}, which it neither sees nor relays",
                    describe(env)
                ));
            }
        }
        // 3. Nothing applied twice: the log is 1..=n without holes, each id once, and the
        //    event, origin and record indexes count the same.
        for (i, e) in h.log.iter().enumerate() {
            if e.position != i as u64 + 1 {
                out.push(format!("3 log: {code} has a hole at position {}", i + 1));
                break;
            }
        }
        let distinct: BTreeSet<Uuid> = h.log.iter().map(|e| e.id).collect();
        if distinct.len() != h.log.len() {
            out.push(format!(
                "3 twice: {code}'s log has {} entries for {} events",
                h.log.len(),
                distinct.len()
            ));
        }
        let count = |space: Space| {
            node.store()
                .engine()
                .scan(space, b"", None, usize::MAX)
                .map(|v| v.len())
                .unwrap_or(0)
        };
        let (events, origins) = (count(Space::Events), count(Space::Origins));
        if events != distinct.len() || origins != distinct.len() {
            out.push(format!(
                "3 counts: {code} holds {events} events, {origins} origin entries, {} in its log",
                distinct.len()
            ));
        }
        if node.durable_head() != h.log.len() as u64 {
            out.push(format!(
                "3 head: {code}'s durable head {} but its log has {}",
                node.durable_head(),
                h.log.len()
            ));
        }
        // 4. Each record's stored state is the fold of the set of its events, and it applied
        //    each of them once.
        //    The facts come from the node's log, not from the record's own index (its
        //    state's history), so a history that lost or gained an event shows here.
        let mut records: BTreeMap<RecordKey, Vec<Fact>> = BTreeMap::new();
        for env in h.events.values() {
            if let Some(Ok(rk)) = env.body().map(RecordKey::of) {
                records.entry(rk).or_default().extend(Fact::of(env));
            }
        }
        for (rk, facts) in &records {
            if RecordState::empty(rk).is_none() {
                continue;
            }
            if let Err(e) = node.store().record_facts(rk) {
                out.push(format!("4 state: {code} cannot read {rk:?}: {e}"));
                continue;
            }
            let stored = node.store().state(rk).ok().flatten();
            let folded = RecordState::fold(rk, facts, roster);
            match (&stored, &folded) {
                (Some(s), Some(f)) if s == f => {}
                (s, f) => out.push(format!(
                    "4 state: {code}'s state of {} is {} but the fold of its {} events gives {}",
                    rk.id_text(),
                    s.as_ref().map(digest).unwrap_or_else(|| "none".into()),
                    facts.len(),
                    f.as_ref().map(digest).unwrap_or_else(|| "none".into()),
                )),
            }
            if let Some(s) = &stored {
                let ids: BTreeSet<Uuid> = s.history().iter().map(|e| e.event_id).collect();
                if ids.len() != s.history().len() || s.history().len() != facts.len() {
                    out.push(format!(
                        "3 twice: {code}'s {} has {} history entries for {} distinct events, {} in its log",
                        rk.id_text(),
                        s.history().len(),
                        ids.len(),
                        facts.len()
                    ));
                }
            }
        }
        // 5. Nothing forged or unauthorized: every held event verifies against the roster and
        //    is allowed to its author; nothing injected is held; the quarantine holds only
        //    injected frames.
        for (id, env) in &h.events {
            if expect.injected.ids.contains(id) {
                out.push(format!("5 forged: {code} holds injected {}", describe(env)));
            }
            // The same signed event, in the same federation, verifies once.
            let verdict = verified
                .entry((env.hash, env.signature, roster.root.clone()))
                .or_insert_with(|| {
                    match authz::verifying_key(
                        roster,
                        env.origin(),
                        env.seq(),
                        env.audience(),
                        env.body(),
                        true,
                    ) {
                        Ok(key) => env
                            .verify(&key)
                            .map_err(|_| "with a bad signature".to_string()),
                        Err(r) => Err(format!(": {r}")),
                    }
                });
            if let Err(why) = verdict {
                out.push(format!("5 forged: {code} holds {} {why}", describe(env)));
            }
            if let Some(body) = env.body() {
                if let Err(r) = authz::authorize(roster, env.origin(), env.audience(), body) {
                    out.push(format!(
                        "5 unauthorized: {code} holds {}: {r}",
                        describe(env)
                    ));
                }
            }
        }
        if let Ok(q) = node.store().quarantine_list() {
            for entry in q {
                let frame = hex::decode(&entry.frame_hex).unwrap_or_default();
                if !expect
                    .injected
                    .frames
                    .contains(&crate::event::hash_of(&frame))
                {
                    out.push(format!(
                        "5 quarantine: {code} refused a genuine event {} seq {} from {}: {} ({})",
                        entry.origin, entry.seq, entry.received_from, entry.category, entry.reason
                    ));
                }
            }
        }
        if let Ok(flagged) = node.store().flagged_origins() {
            for (origin, why) in flagged {
                out.push(format!("5 equivocation: {code} flagged {origin}: {why}"));
            }
        }
    }

    // 4. Shared records: every node holding the same set of a record's events has the same
    //    state (digests compared).
    let mut by_set: BTreeMap<(RecordKey, Vec<Uuid>), BTreeMap<String, String>> = BTreeMap::new();
    for (code, node) in nodes {
        let Some(h) = held.iter().find(|h| h.code == *code) else {
            continue;
        };
        let mut per_record: BTreeMap<RecordKey, Vec<Uuid>> = BTreeMap::new();
        for (id, env) in &h.events {
            if let Some(Ok(rk)) = env.body().map(RecordKey::of) {
                per_record.entry(rk).or_default().push(*id);
            }
        }
        for (rk, ids) in per_record {
            if let Ok(Some(state)) = node.store().state(&rk) {
                by_set
                    .entry((rk, ids))
                    .or_default()
                    .insert(code.clone(), digest(&state));
            }
        }
    }
    for ((rk, _), digests) in &by_set {
        let distinct: BTreeSet<&String> = digests.values().collect();
        if distinct.len() > 1 {
            out.push(format!(
                "4 diverged: nodes holding the same events of {} disagree on its state: {digests:?}",
                rk.id_text()
            ));
        }
    }

    // 4. Lateral records (each group's charter, each joint meeting): every root holds the
    //    same events of each, and the same state.
    let mut lateral: BTreeMap<RecordKey, BTreeMap<String, (Vec<Uuid>, String)>> = BTreeMap::new();
    for env in all.values() {
        if let Some(Ok(rk)) = env.body().map(RecordKey::of) {
            if matches!(rk, RecordKey::Group(_) | RecordKey::JointMeeting(_)) {
                lateral.entry(rk).or_default();
            }
        }
    }
    for (rk, at) in lateral.iter_mut() {
        for root in feds.rosters.keys() {
            let Some(h) = held.iter().find(|h| h.code == *root) else {
                continue;
            };
            let Some((_, node)) = nodes.iter().find(|(c, _)| c == root) else {
                continue;
            };
            let ids: Vec<Uuid> = h
                .events
                .iter()
                .filter(|(_, e)| e.body().map(RecordKey::of).and_then(|r| r.ok()) == Some(*rk))
                .map(|(id, _)| *id)
                .collect();
            let state = match node.store().state(rk) {
                Ok(Some(s)) => digest(&s),
                _ => "none".into(),
            };
            at.insert(root.clone(), (ids, state));
        }
        let distinct: BTreeSet<&(Vec<Uuid>, String)> = at.values().collect();
        if distinct.len() > 1 {
            let summary: BTreeMap<&String, (usize, &String)> =
                at.iter().map(|(c, (ids, d))| (c, (ids.len(), d))).collect();
            out.push(format!(
                "4 lateral: the roots disagree on {} (events, state): {summary:?}",
                rk.id_text()
            ));
        }
    }

    // 6. Each origin's events are held in sequence without gaps (and linked) wherever that
    //    origin's whole log is visible; no two events share an origin and seq.
    let mut by_origin: BTreeMap<&str, BTreeMap<u64, &Envelope>> = BTreeMap::new();
    for env in all.values() {
        let seqs = by_origin.entry(env.origin()).or_default();
        if let Some(other) = seqs.insert(env.seq(), env) {
            if other.id != env.id {
                out.push(format!(
                    "6 fork: {} seq {} is two events: {} and {}",
                    env.origin(),
                    env.seq(),
                    other.id,
                    env.id
                ));
            }
        }
    }
    for (origin, seqs) in &by_origin {
        let max = seqs.keys().next_back().copied().unwrap_or(0);
        for h in &held {
            let whole = seqs
                .values()
                .all(|env| req.get(&env.id).is_some_and(|r| r.contains(&h.code)));
            if !whole && h.code != *origin {
                continue;
            }
            let mine: BTreeMap<u64, &Envelope> = h
                .events
                .values()
                .filter(|e| e.origin() == *origin)
                .map(|e| (e.seq(), e))
                .collect();
            if let Some(gap) = (1..=max).find(|s| !mine.contains_key(s)) {
                out.push(format!(
                    "6 gap: {} holds {origin}'s events up to seq {max} but not seq {gap}",
                    h.code
                ));
                continue;
            }
            for s in 2..=max {
                if let (Some(a), Some(b)) = (mine.get(&(s - 1)), mine.get(&s)) {
                    if b.event.prev != a.hash {
                        out.push(format!(
                            "6 chain: at {}, {origin} seq {s} does not link to seq {}",
                            h.code,
                            s - 1
                        ));
                    }
                }
            }
        }
    }
    out
}
