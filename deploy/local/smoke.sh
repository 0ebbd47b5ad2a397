#!/usr/bin/env bash
# Smoke test of the seven-process federation: up → round → assertions → down → clean
# (after checking deploy/liandong.example.toml with ../check-example-config.sh).
# Exits non-zero on any failure, leaving the run folder (with the logs) in place and printing
# the tail of every node's log.
#
# It uses its own run folder, deploy/local/run-smoke/ (override with LIANDONG_RUN_DIR), so it
# never touches a federation you keep in deploy/local/run/; but the ports are the same, so
# stop that one first (federation.sh down).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export LIANDONG_RUN_DIR="${LIANDONG_RUN_DIR:-$HERE/run-smoke}"
FED="$HERE/federation.sh"
RUN="$LIANDONG_RUN_DIR"
started=$SECONDS

fail() {
  echo "smoke: FAIL: $*" >&2
  exit 1
}

on_exit() {
  local rc=$?
  if ((rc != 0)); then
    echo "smoke: failed (exit $rc) after $((SECONDS - started)) s; stopping the nodes" >&2
    "$FED" down >&2 || true
    for log in "$RUN"/logs/*.log; do
      [[ -f "$log" ]] || continue
      echo "--- tail of $log ---" >&2
      tail -n 15 "$log" >&2
    done
    echo "smoke: the run folder is kept for inspection: $RUN (remove it with LIANDONG_RUN_DIR=$RUN $FED clean)" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT

# The example config still parses with the real loader and has every key.
"$HERE/../check-example-config.sh"

if [[ -d "$RUN" ]]; then
  echo "smoke: removing the previous $RUN"
  "$FED" clean
fi

"$FED" up
"$FED" round
"$FED" status

# shellcheck disable=SC1091
source "$RUN/round.env"
[[ -n "${TOPIC:-}" && -n "${SUBASSIGNMENT:-}" && -n "${GUIDANCE:-}" ]] || fail "round.env lacks the round's ids"

BIN="${LIANDONG_BIN:-}"
if [[ -z "$BIN" ]]; then
  BIN="$HERE/../../target/release/liandong"
  [[ -x "$BIN" ]] || BIN="$HERE/../../target/debug/liandong"
fi
province() { "$BIN" --config "$RUN/620000/liandong.toml" "$@"; }

# At the province: the county's 子课题 is approved, sits under the city's 分课题, and carries
# the county's submission; the city's 分课题 is approved too, so the topic is at 100%.
province topic show "$TOPIC" --json >"$RUN/smoke-topic.json"
python3 - "$RUN/smoke-topic.json" "$ASSIGNMENT" "$SUBASSIGNMENT" "$COUNTY" <<'EOF' || fail "the topic at the province is not as expected (see $RUN/smoke-topic.json)"
import json, sys
path, a_id, s_id, county = sys.argv[1:]
t = json.load(open(path))
assert t["state"] == "published", f"topic state {t['state']!r}"
tops = [a for a in t["assignments"] if a["id"] == a_id]
assert tops, f"assignment {a_id} not in the topic at the province"
a = tops[0]
assert a["assignee"] == "620100" and a["acknowledged"], f"city assignment: {a['assignee']} acknowledged={a['acknowledged']}"
assert a["state"] == "approved", f"city assignment state {a['state']!r}, want 'approved'"
subs = [c for c in a["children"] if c["id"] == s_id]
assert subs, f"sub-assignment {s_id} not under {a_id} at the province"
s = subs[0]
assert s["assignee"] == county, f"sub-assignment assignee {s['assignee']}"
assert s["state"] == "approved", f"sub-assignment state {s['state']!r}, want 'approved'"
assert s["acknowledged"], "sub-assignment not acknowledged"
assert s["submissions"] and s["reviews"] and s["reviews"][-1]["verdict"] == "approve", \
    f"submissions {len(s['submissions'])}, reviews {s['reviews']}"
assert abs(t["progress"] - 1.0) < 1e-9, f"topic progress {t['progress']}, want 1.0"
print(f"smoke: ok: {county}'s task {s_id[-8:]} is approved at the province, topic at 100%")
EOF

# At the province: the guidance is acknowledged by the county.
province guidance list --json >"$RUN/smoke-guidance.json"
python3 - "$RUN/smoke-guidance.json" "$GUIDANCE" "$COUNTY" <<'EOF' || fail "the guidance at the province is not as expected (see $RUN/smoke-guidance.json)"
import json, sys
path, g_id, county = sys.argv[1:]
gs = [g for g in json.load(open(path))["guidance"] if g["id"] == g_id]
assert gs, f"guidance {g_id} not held at the province"
g = gs[0]
assert county in g["recipients"], f"{county} not among the recipients {g['recipients']}"
assert county in g["acknowledged_by"], f"{county} not among acknowledged_by {g['acknowledged_by']}"
print(f"smoke: ok: guidance {g_id[-8:]} acknowledged by {county}, as the province sees it")
EOF

# Nothing was quarantined anywhere.
for dir in "$RUN"/6*/; do
  q="$("$BIN" --config "$dir/liandong.toml" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["quarantined"])')"
  [[ "$q" == 0 ]] || fail "$(basename "$dir") has $q quarantined events"
done

"$FED" down
if pgrep -f "serve --config $RUN/" >/dev/null; then
  pgrep -af "serve --config $RUN/" >&2
  fail "liandong processes are still running after down"
fi
"$FED" clean
echo "smoke: passed in $((SECONDS - started)) s"
