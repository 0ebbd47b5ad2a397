#!/usr/bin/env python3
"""The invariants of deploy/docker/faults.sh, checked on what the CLI printed.

    invariants.py live DIR     the nodes' `--json` outputs in DIR/live/<code>/ against the
                               ledger of receipts DIR/ledger.jsonl
    invariants.py stores DIR   the stopped nodes' `liandong export` files and `verify --json`
                               reports in DIR/stores/, against the ledger and DIR/live/

DIR/tree.json names the federation: {"root": code, "parent": {code: parent or ""}}.

Prints one line per violation and exits 1 if there is any; prints a summary and exits 0
otherwise. Standard library only.

The ledger has one JSON line per write the script made through the CLI and got a receipt for:
{"origin", "kind", "about": {...}, "event_id", "seq", "record_id"}. From it this file derives
what every node must show (the expected state of each assignment, guidance and report, and who
may see it), with the audience rules of docs/architecture.md ("Audience and routing").
"""
import hashlib
import json
import os
import sys
import uuid

# ---------------------------------------------------------------------------------------
# The tree and the audience rules (src/domain/audience.rs, for one federation, no groups).


class Tree:
    def __init__(self, d):
        self.root = d["root"]
        self.parent = d["parent"]
        self.codes = sorted(self.parent)

    def up(self, c):
        out = [c]
        while self.parent.get(out[-1]):
            out.append(self.parent[out[-1]])
        return out

    def path(self, a, b):
        """The committees on the tree path between a and b, both included."""
        ua, ub = self.up(a), self.up(b)
        meet = next(i for i, x in enumerate(ua) if x in ub)
        lca = ua[meet]
        return ua[: meet + 1] + list(reversed(ub[: ub.index(lca)]))

    def under(self, anc, c):
        return anc in self.up(c)

    def visible_to(self, aud, author, node):
        if node == author:
            return True
        kind, arg = aud
        if kind == "subtree":
            return self.under(arg, node) or node in self.path(author, arg)
        if kind == "committees":
            return any(node in self.path(author, t) for t in arg)
        if kind == "ancestors":
            return self.under(arg, author) and node in self.path(author, arg)
        if kind == "lineage":  # a roster event: the committee, above it and below it
            return self.under(node, arg) or self.under(arg, node)
        return False  # lateral groups: not used here

    def holders(self, aud, author):
        """Who must hold an event: its author, its audience, and every relay between."""
        out = {author}
        for m in self.codes:
            if self.visible_to(aud, author, m):
                out.update(self.path(author, m))
        return out


# ---------------------------------------------------------------------------------------
# The expected state, replayed from the ledger in the order the script wrote it.


def load_ledger(d):
    with open(os.path.join(d, "ledger.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Model:
    def __init__(self, tree, ledger):
        self.tree = tree
        self.assignments = {}  # id -> dict
        self.guidance = {}
        self.reports = {}
        self.topics = {}
        for e in ledger:
            k, rid, o, a = e["kind"], e["record_id"], e["origin"], e["about"]
            if k == "topic_published":
                self.topics[rid] = {"owner": o}
            elif k == "assignment_issued":
                topic = a.get("topic", "")
                if a.get("parent"):
                    topic = self.assignments[a["parent"]]["topic"]
                self.assignments[rid] = {
                    "topic": topic, "assigner": o, "assignee": a["to"], "parent": a.get("parent", ""),
                    "state": "issued", "acknowledged": False, "versions": 0, "verdicts": [],
                }
            elif k == "assignment_acknowledged":
                x = self.assignments[rid]
                x["state"], x["acknowledged"] = "acknowledged", True
            elif k == "submission_made":
                x = self.assignments[rid]
                x["state"], x["versions"] = "submitted", x["versions"] + 1
            elif k == "review_recorded":
                x = self.assignments[rid]
                x["verdicts"].append(a["verdict"])
                x["state"] = "approved" if a["verdict"] == "approve" else "returned"
            elif k == "guidance_issued":
                self.guidance[rid] = {"issuer": o, "to": a.get("to", ""), "acked_by": set()}
            elif k == "guidance_acknowledged":
                self.guidance[rid]["acked_by"].add(o)
            elif k == "report_sent":
                self.reports[rid] = {"sender": o, "to": a["to"], "acknowledged": False}
            elif k == "report_acknowledged":
                self.reports[rid]["acknowledged"] = True

    # Who holds what (the audience of each record's first event; follow-ups repeat it).
    def assignment_holders(self, aid):
        x = self.assignments[aid]
        owner = self.topics[x["topic"]]["owner"]
        return self.tree.holders(("committees", [x["assignee"], owner]), x["assigner"])

    def guidance_holders(self, gid):
        g = self.guidance[gid]
        aud = ("committees", [g["to"]]) if g["to"] else ("subtree", g["issuer"])
        return self.tree.holders(aud, g["issuer"])

    def guidance_recipients(self, gid):
        g = self.guidance[gid]
        if g["to"]:
            return {g["to"]}
        return {c for c in self.tree.codes if c != g["issuer"] and self.tree.under(g["issuer"], c)}

    def report_holders(self, rid):
        r = self.reports[rid]
        return self.tree.holders(("ancestors", r["to"]), r["sender"])


# ---------------------------------------------------------------------------------------


class Violations:
    def __init__(self):
        self.lines = []

    def add(self, what):
        self.lines.append(what)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def flatten(items):
    for a in items:
        yield a
        yield from flatten(a.get("children", []))


def view_of(a, tree_progress=True):
    """The derived state of an assignment as a node shows it, for comparing across nodes.
    `tasks` does not roll progress up from the sub-assignments: only a topic tree's counts."""
    out = {
        "state": a["state"],
        "acknowledged": a.get("acknowledged", False),
        "versions": [s.get("version", 0) for s in a.get("submissions", [])],
        "verdicts": [r.get("verdict", "") for r in a.get("reviews", [])],
        "assignee": a.get("assignee", ""),
        "assigner": a.get("assigner", ""),
        "progress": round(a.get("progress", 0.0), 6),
        "refused": a.get("refused", []),
    }
    if not tree_progress:
        del out["progress"]
    return out


def check_live(d):
    tree = Tree(read_json(os.path.join(d, "tree.json")))
    ledger = load_ledger(d)
    m = Model(tree, ledger)
    v = Violations()
    live = lambda code, name: read_json(os.path.join(d, "live", code, name + ".json"))

    # Status: level, roster, links up without lag, nothing quarantined or flagged, and the
    # node's own log as long as its last receipt says.
    max_seq = {}
    for e in ledger:
        max_seq[e["origin"]] = max(max_seq.get(e["origin"], 0), e["seq"])
    for code in tree.codes:
        s = live(code, "status")
        if not s.get("level"):
            v.add(f"{code}: status shows no level (its own registration has not arrived)")
        # The roster of its lineage: the committees above it, itself and those below it.
        lineage = sum(1 for c in tree.codes if tree.under(c, code) or tree.under(code, c))
        if s.get("roster_size") != lineage:
            v.add(f"{code}: roster of {s.get('roster_size')} committees, expected {lineage} (its lineage)")
        if s.get("quarantined", 0) != 0:
            v.add(f"{code}: {s['quarantined']} event(s) quarantined")
        if s.get("flagged"):
            v.add(f"{code}: flagged committees: {s['flagged']}")
        peers = {l["peer"]: l for l in s.get("links", [])}
        want = {c for c, p in tree.parent.items() if p == code}
        if tree.parent[code]:
            want.add(tree.parent[code])
        if set(peers) != want:
            v.add(f"{code}: links to {sorted(peers)}, expected {sorted(want)}")
        for p, l in sorted(peers.items()):
            if l["state"] != "connected" or l["outbound_lag"] or l["inbound_lag"]:
                v.add(f"{code}: link to {p} is {l['state']}, lag out/in {l['outbound_lag']}/{l['inbound_lag']} {l.get('last_error', '')}")
        own = s.get("own_events", 0)
        if code in max_seq and own != max_seq[code]:
            v.add(f"{code}: {own} events of its own, but its last receipt was seq {max_seq[code]} (an acknowledged write lost, or an event made twice)")
        if s.get("events", 0) < own or s.get("log_head") != s.get("events"):
            v.add(f"{code}: counts disagree: events {s.get('events')}, own {own}, log head {s.get('log_head')}")
        q = live(code, "quarantine").get("entries", [])
        if q:
            v.add(f"{code}: quarantine holds {len(q)} entr(y/ies): " + "; ".join(f"{x['origin']} seq {x['seq']}: {x['reason']}" for x in q[:3]))

    # Assignments: every holder shows each one it must, in the expected state, identically;
    # nobody shows one it must not (a county never sees its sibling's).
    seen = {}  # aid -> {code: view}
    for code in tree.codes:
        tasks = live(code, "tasks").get("tasks", [])
        got = {t["id"] for t in tasks}
        want = {a for a, x in m.assignments.items() if x["assignee"] == code}
        for a in sorted(want - got):
            v.add(f"{code}: tasks lacks assignment {a} addressed to it (from {m.assignments[a]['assigner']})")
        for a in sorted(got - want):
            who = m.assignments.get(a, {}).get("assignee", "nobody the script knows")
            v.add(f"{code}: tasks shows assignment {a}, which is addressed to {who}")
        for t in tasks:
            seen.setdefault(t["id"], {})[code + " tasks"] = view_of(t, tree_progress=False)
        for tid in m.topics:
            path = os.path.join(d, "live", code, f"topic-{tid}.json")
            if not os.path.exists(path):
                v.add(f"{code}: does not hold topic {tid} (published to the whole federation)")
                continue
            t = read_json(path)
            if t.get("state") != "published":
                v.add(f"{code}: topic {tid} is {t.get('state')}, expected published")
            shown = {a["id"]: a for a in flatten(t.get("assignments", []))}
            for a, x in m.assignments.items():
                if x["topic"] != tid:
                    continue
                must = code in m.assignment_holders(a)
                if must and a not in shown:
                    v.add(f"{code}: topic {tid} does not show assignment {a} ({x['assigner']} -> {x['assignee']}), which it must hold")
                if not must and a in shown:
                    v.add(f"{code}: topic {tid} shows assignment {a} ({x['assigner']} -> {x['assignee']}), outside its scope")
            for a in shown:
                if a not in m.assignments:
                    v.add(f"{code}: topic {tid} shows assignment {a}, which the script never issued")
                else:
                    seen.setdefault(a, {})[code] = view_of(shown[a])
    for a, x in m.assignments.items():
        views = seen.get(a, {})
        for where, got in sorted(views.items()):
            exp = {"state": x["state"], "acknowledged": x["acknowledged"],
                   "versions": list(range(1, x["versions"] + 1)), "verdicts": x["verdicts"]}
            diff = {k: (got[k], exp[k]) for k in exp if got[k] != exp[k]}
            if diff:
                v.add(f"{where}: assignment {a} differs from what was written (shown, expected): {diff}")
            if got["refused"]:
                v.add(f"{where}: assignment {a} has refused transitions: {got['refused']}")
        distinct = {json.dumps({k: x for k, x in g.items() if k != "progress"}, sort_keys=True)
                    for g in views.values()}
        distinct_progress = {g["progress"] for g in views.values() if "progress" in g}
        if len(distinct_progress) > 1:
            distinct.add("progress differs")
        if len(distinct) > 1:
            v.add(f"assignment {a}: nodes disagree on its derived state: " + json.dumps(views, ensure_ascii=False, sort_keys=True))

    # Guidance: each node holds exactly the guidance it may see; acknowledgements are seen on
    # the path from the recipient to the issuer.
    for code in tree.codes:
        items = {g["id"]: g for g in live(code, "guidance").get("guidance", [])}
        want = {g for g in m.guidance if code in m.guidance_holders(g)}
        for g in sorted(want - set(items)):
            v.add(f"{code}: lacks guidance {g} from {m.guidance[g]['issuer']} (to {m.guidance[g]['to'] or 'its subtree'})")
        for g in sorted(set(items) - want):
            x = m.guidance.get(g)
            v.add(f"{code}: holds guidance {g}" + (f" from {x['issuer']} to {x['to'] or 'its subtree'}, outside its scope" if x else ", which the script never sent"))
        for g in sorted(want & set(items)):
            x = m.guidance[g]
            exp = {r for r in x["acked_by"] if code in tree.path(r, x["issuer"])}
            got = set(items[g].get("acknowledged_by", []))
            if got != exp:
                v.add(f"{code}: guidance {g} acknowledged by {sorted(got)}, expected {sorted(exp)}")
            if code in m.guidance_recipients(g) and items[g].get("acknowledged_here") != (code in x["acked_by"]):
                v.add(f"{code}: guidance {g} acknowledged_here is {items[g].get('acknowledged_here')}")

    # Reports: held by the sender, the addressee and the relays between, with the same state.
    for code in tree.codes:
        items = {r["id"]: r for r in live(code, "reports").get("reports", [])}
        want = {r for r in m.reports if code in m.report_holders(r)}
        for r in sorted(want - set(items)):
            v.add(f"{code}: lacks report {r} from {m.reports[r]['sender']} to {m.reports[r]['to']}")
        for r in sorted(set(items) - want):
            v.add(f"{code}: holds report {r}, outside its scope")
        for r in sorted(want & set(items)):
            if items[r].get("acknowledged", False) != m.reports[r]["acknowledged"]:
                v.add(f"{code}: report {r} acknowledged={items[r].get('acknowledged')}, expected {m.reports[r]['acknowledged']}")

    summary = (f"{len(ledger)} receipts; {len(m.assignments)} assignments, {len(m.guidance)} guidance, "
               f"{len(m.reports)} reports checked on {len(tree.codes)} nodes")
    return v, summary


# ---------------------------------------------------------------------------------------
# The export files (src/backup.rs, format 1) and the events in them (proto/liandong/v1).

KINDS = {10: "committee_registered", 11: "committee_key_rotated", 12: "committee_key_revoked",
         19: "topic_drafted", 20: "topic_published", 21: "topic_concluded", 22: "topic_withdrawn",
         30: "assignment_issued", 31: "assignment_acknowledged", 32: "submission_made",
         33: "review_recorded", 34: "assignment_cancelled", 40: "guidance_issued",
         41: "guidance_acknowledged", 50: "report_sent", 51: "report_acknowledged"}


def varint(b, i):
    shift = n = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            return n, i
        shift += 7


def fields(b):
    """(field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = varint(b, i)
        elif wt == 1:
            val, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(b, i)
            val, i = b[i:i + n], i + n
        elif wt == 5:
            val, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, val


def parse_event(frame):
    ev = None
    for num, _, val in fields(frame):
        if num == 1:
            ev = val
    if ev is None:
        raise ValueError("a frame without an event")
    out = {"bytes": ev, "prev": b"", "kind": "?", "aud": ("none", None)}
    for num, _, val in fields(ev):
        if num == 1:
            out["id"] = str(uuid.UUID(bytes=bytes(val)))
        elif num == 2:
            out["origin"] = val.decode()
        elif num == 3:
            out["seq"] = val
        elif num == 4:
            out["prev"] = bytes(val)
        elif num == 6:
            for an, _, av in fields(val):
                if an == 1:
                    out["aud"] = ("subtree", av.decode())
                elif an == 2:
                    out["aud"] = ("committees", [c.decode() for n2, _, c in fields(av) if n2 == 1])
                elif an == 3:
                    out["aud"] = ("ancestors", av.decode())
                elif an == 4:
                    out["aud"] = ("group", None)
                elif an == 5:
                    out["aud"] = ("lineage", av.decode())
        elif num >= 10:
            out["kind"] = KINDS.get(num, f"kind {num}")
    return out


def read_export(path):
    data = open(path, "rb").read()
    if data[:8] != b"LDEXPORT":
        raise ValueError("not an export file")
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise ValueError("its SHA-256 trailer does not match")
    hl = int.from_bytes(data[12:16], "big")
    header = json.loads(data[16:16 + hl])
    i, events = 16 + hl, []
    while True:
        n = int.from_bytes(data[i:i + 4], "big")
        i += 4
        if n == 0:
            break
        events.append(parse_event(data[i:i + n]))
        i += n
    return header, events


def check_stores(d):
    tree = Tree(read_json(os.path.join(d, "tree.json")))
    ledger = load_ledger(d)
    v = Violations()
    held = {}
    for code in tree.codes:
        st = os.path.join(d, "stores")
        rep = read_json(os.path.join(st, f"{code}.verify.json"))
        if not rep.get("ok"):
            v.add(f"{code}: liandong verify found {len(rep.get('problems', []))} problem(s): " + "; ".join(rep.get("problems", [])[:5]))
        try:
            header, events = read_export(os.path.join(st, f"{code}.ldx"))
        except (OSError, ValueError, IndexError) as e:
            v.add(f"{code}: cannot read its export file: {e}")
            continue
        status = read_json(os.path.join(d, "live", code, "status.json"))
        counts = {"export header": header["events"], "export frames": len(events),
                  "verify": rep.get("events"), "status": status.get("events")}
        if len(set(counts.values())) != 1:
            v.add(f"{code}: event counts disagree: {counts}")
        ids = [e["id"] for e in events]
        if len(set(ids)) != len(ids):
            v.add(f"{code}: {len(ids) - len(set(ids))} event(s) stored twice")
        by = {}
        for e in events:
            if (e["origin"], e["seq"]) in by and by[(e["origin"], e["seq"])]["id"] != e["id"]:
                v.add(f"{code}: {e['origin']} seq {e['seq']} is two different events")
            by[(e["origin"], e["seq"])] = e
        held[code] = {e["id"]: e for e in events}
        # The node's own chain: 1..n without gaps, each event linked to the one before.
        mine = sorted((e for e in events if e["origin"] == code), key=lambda e: e["seq"])
        for n, e in enumerate(mine, 1):
            if e["seq"] != n:
                v.add(f"{code}: its own log jumps to seq {e['seq']} where {n} was due")
                break
            want_prev = hashlib.sha256(mine[n - 2]["bytes"]).digest() if n > 1 else b""
            if e["prev"] != want_prev:
                v.add(f"{code}: its own event seq {n} does not link to seq {n - 1}")
                break
        if len(mine) != status.get("own_events"):
            v.add(f"{code}: {len(mine)} own events in the store, status said {status.get('own_events')}")

    union = {}
    for h in held.values():
        for i, e in h.items():
            union.setdefault(i, e)
    # 1. Every acknowledged write is stored, by its author, with the seq the receipt gave.
    for r in ledger:
        e = held.get(r["origin"], {}).get(r["event_id"])
        if e is None:
            where = [c for c, h in held.items() if r["event_id"] in h]
            v.add(f"{r['origin']}: got a receipt for event {r['event_id']} ({r['kind']}, seq {r['seq']}) and does not hold it" + (f" (held by {where})" if where else " (nobody holds it: lost)"))
        elif e["seq"] != r["seq"]:
            v.add(f"{r['origin']}: event {r['event_id']} has seq {e['seq']}, its receipt said {r['seq']}")
    # 1 and 2. Each node holds exactly the events its position entitles it to.
    for i, e in union.items():
        must = tree.holders(e["aud"], e["origin"])
        for code in tree.codes:
            has = i in held.get(code, {})
            if code in must and not has and code in held:
                v.add(f"{code}: lacks {e['origin']} seq {e['seq']} ({e['kind']}, {i}), which it must hold")
            if has and code not in must:
                v.add(f"{code}: holds {e['origin']} seq {e['seq']} ({e['kind']}, {i}), outside its scope")
    # 6. Wherever an origin's whole log is visible, it is held 1..n.
    for origin in tree.codes:
        evs = sorted((e for e in union.values() if e["origin"] == origin), key=lambda e: e["seq"])
        seqs = [e["seq"] for e in evs]
        if seqs != list(range(1, len(seqs) + 1)):
            v.add(f"{origin}: the federation holds its seqs {seqs[:10]}..., not 1..{len(seqs)} without gaps")
    kinds = {}
    for e in union.values():
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    summary = (f"{len(union)} distinct events in 7 stores (" +
               ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) +
               f"); {len(ledger)} receipts checked")
    return v, summary


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("live", "stores"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    v, summary = (check_live if sys.argv[1] == "live" else check_stores)(sys.argv[2])
    for line in v.lines:
        print(f"VIOLATION: {line}")
    if v.lines:
        print(f"{len(v.lines)} violation(s) ({summary})")
        sys.exit(1)
    print(f"ok: {summary}")


if __name__ == "__main__":
    main()
