#!/usr/bin/env bash
# A seven-node Gansu federation as separate `liandong serve` processes on 127.0.0.1.
#
#   deploy/local/federation.sh up       init and TLS certs (first time only), start all seven
#   deploy/local/federation.sh down     SIGTERM every node, wait up to 10 s, then SIGKILL
#   deploy/local/federation.sh status   one line per node, from `liandong status --json`
#   deploy/local/federation.sh round    a linked-consultation round across the processes
#   deploy/local/federation.sh clean    down, then delete run/
#
# See deploy/local/README.md for the port table and where the logs are.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RUN="${LIANDONG_RUN_DIR:-$HERE/run}"
# How long to wait for a node to come up or for an event to sync, in seconds.
WAIT_SECS="${LIANDONG_WAIT_SECS:-60}"
# How long `down` waits for the nodes to exit after SIGTERM.
STOP_SECS="${LIANDONG_STOP_SECS:-10}"
# How long one CLI call may take before it is abandoned.
CALL_SECS="${LIANDONG_CALL_SECS:-15}"

# code | name | parent code | federation port | local API port
NODES=(
  "620000|甘肃省政协||7400|7500"
  "620100|兰州市政协|620000|7410|7510"
  "620400|白银市政协|620000|7440|7540"
  "620123|榆中县政协|620100|7413|7513"
  "620121|永登县政协|620100|7411|7511"
  "620421|靖远县政协|620400|7441|7541"
  "620422|会宁县政协|620400|7442|7542"
)
ROOT=620000
CITIES=(620100 620400)
COUNTIES=(620123 620121 620421 620422)

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() {
  printf 'federation.sh: %s\n' "$*" >&2
  exit 1
}

# field CODE INDEX: one column of the NODES table (1 code, 2 name, 3 parent, 4 fed, 5 api).
field() {
  local row
  for row in "${NODES[@]}"; do
    if [[ "${row%%|*}" == "$1" ]]; then
      cut -d'|' -f"$2" <<<"$row"
      return 0
    fi
  done
  die "no node $1 in the table"
}
name_of() { field "$1" 2; }
parent_of() { field "$1" 3; }
fed_port() { field "$1" 4; }
api_port() { field "$1" 5; }
all_codes() {
  local row
  for row in "${NODES[@]}"; do echo "${row%%|*}"; done
}

node_dir() { echo "$RUN/$1"; }
config_of() { echo "$RUN/$1/liandong.toml"; }
pid_file() { echo "$RUN/pids/$1.pid"; }
log_file() { echo "$RUN/logs/$1.log"; }

BIN=""
# Picks the binary: $LIANDONG_BIN, else target/release/liandong, else target/debug/liandong.
find_bin() {
  [[ -n "$BIN" ]] && return 0
  if [[ -n "${LIANDONG_BIN:-}" ]]; then
    BIN="$LIANDONG_BIN"
    [[ "$BIN" == /* ]] || BIN="$PWD/$BIN"
    [[ -x "$BIN" ]] || die "LIANDONG_BIN=$LIANDONG_BIN is not an executable file"
    say "using $BIN (from LIANDONG_BIN)" >&2
  elif [[ -x "$REPO/target/release/liandong" ]]; then
    BIN="$REPO/target/release/liandong"
    say "using the release binary $BIN" >&2
  elif [[ -x "$REPO/target/debug/liandong" ]]; then
    BIN="$REPO/target/debug/liandong"
    say "no release binary; using the debug binary $BIN" >&2
  else
    die "no liandong binary: run 'cargo build --release' in $REPO first, or set LIANDONG_BIN"
  fi
}

# ld CODE ARGS...: the CLI against CODE's node. The CLI has no timeout of its own, and a node
# that accepts connections but does not answer (e.g. stopped with SIGSTOP) would hang it.
ld() {
  local code="$1"
  shift
  timeout "$CALL_SECS" "$BIN" --config "$(config_of "$code")" "$@"
}

# jq-like helper without jq: `... --json | jpy 'EXPR'` evaluates EXPR with d = the parsed JSON
# and prints the result (booleans as true/false). Exits 1 if EXPR is false or None.
jpy() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
def find(items, id):
    """An assignment by id anywhere in a tree of assignments."""
    for a in items:
        if a["id"] == id:
            return a
        hit = find(a.get("children", []), id)
        if hit:
            return hit
    return None
v = eval(sys.argv[1])
if isinstance(v, bool):
    print("true" if v else "false")
    sys.exit(0 if v else 1)
if v is None:
    sys.exit(1)
print(v)
' "$1"
}

# wait_for WHAT CMD...: runs CMD every 0.25 s until it succeeds, for at most WAIT_SECS.
wait_for() {
  local what="$1"
  shift
  local deadline=$((SECONDS + WAIT_SECS)) out
  while true; do
    if out="$("$@" 2>&1)"; then
      return 0
    fi
    if ((SECONDS >= deadline)); then
      printf 'federation.sh: timed out after %s s waiting for %s\n  last output: %s\n' \
        "$WAIT_SECS" "$what" "$(head -c 600 <<<"$out")" >&2
      return 1
    fi
    sleep 0.25
  done
}

# The pid of CODE's running node, or nothing (and status 1). Checks that the pid is really
# `liandong serve` for that node, so a stale pid file never makes us signal another process.
running_pid() {
  local f pid
  f="$(pid_file "$1")"
  [[ -f "$f" ]] || return 1
  pid="$(<"$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "serve --config $(config_of "$1")" || return 1
  echo "$pid"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

is_initialised() { [[ -f "$(config_of "$1")" && -f "$(node_dir "$1")/node.key" ]]; }

public_key_of() {
  local f
  f="$(node_dir "$1")/public.key"
  [[ -s "$f" ]] || die "$f is missing: it is written by 'up' at init; run 'clean' and 'up' to start over"
  tr -d ' \n' <"$f"
}

init_node() {
  local code="$1" parent out root_key
  if is_initialised "$code"; then
    return 0
  fi
  parent="$(parent_of "$code")"
  local args=(init --dir "$(node_dir "$code")" --code "$code" --name "$(name_of "$code")"
    --listen "127.0.0.1:$(fed_port "$code")" --api-listen "127.0.0.1:$(api_port "$code")")
  if [[ -n "$parent" ]]; then
    root_key="$(public_key_of "$ROOT")"
    args+=(--parent-code "$parent" --parent-address "https://127.0.0.1:$(fed_port "$parent")"
      --root-code "$ROOT" --root-key "$root_key")
  fi
  out="$("$BIN" "${args[@]}" 2>&1)" || die "liandong init for $code failed: $out"
  printf '%s\n' "$out" >"$(node_dir "$code")/init.out"
  sed -n 's/^public key: \([0-9a-f]\{64\}\)$/\1/p' <<<"$out" >"$(node_dir "$code")/public.key"
  [[ -s "$(node_dir "$code")/public.key" ]] || die "could not find the public key in the output of init for $code: $out"
  say "initialised $code $(name_of "$code") in $(node_dir "$code")"
}

ca_dir() { echo "$RUN/ca"; }

# The federation's private CA (first time only), in run/ca/: it issues every node's certificate.
ensure_ca() {
  local out
  if [[ -f "$(ca_dir)/ca.crt" && -f "$(ca_dir)/ca.key.pem" ]]; then
    return 0
  fi
  out="$("$BIN" certs ca --dir "$(ca_dir)" --name "$(name_of "$ROOT") $ROOT" 2>&1)" ||
    die "liandong certs ca failed: $out"
  say "created the federation's CA in $(ca_dir)"
}

# CODE's TLS certificate (first time only): node.crt, node.key.pem and ca.crt in its folder,
# where its liandong.toml's [tls] expects them.
ensure_cert() {
  local code="$1" out
  if [[ -f "$(node_dir "$code")/node.crt" && -f "$(node_dir "$code")/node.key.pem" ]]; then
    return 0
  fi
  out="$("$BIN" certs issue --ca "$(ca_dir)" --code "$code" --out "$(node_dir "$code")" 2>&1)" ||
    die "liandong certs issue for $code failed: $out"
  say "issued the TLS certificate of $code $(name_of "$code") (c$code.liandong)"
}

api_answers() { ld "$1" status --json >/dev/null; }

start_node() {
  local code="$1" pid log port
  if pid="$(running_pid "$code")"; then
    say "$code $(name_of "$code") is already running (pid $pid)"
    return 0
  fi
  for port in "$(fed_port "$code")" "$(api_port "$code")"; do
    if port_busy "$port"; then
      die "port $port (for $code) is already in use on 127.0.0.1 by another process: stop it first (ss -ltnp 'sport = :$port')"
    fi
  done
  log="$(log_file "$code")"
  printf '\n=== %s liandong serve (%s) ===\n' "$(date -Is)" "$BIN" >>"$log"
  # setsid: the node gets its own session, so it outlives this script and the terminal.
  # NO_COLOR: tracing writes ANSI colour codes even into a file otherwise.
  # Metrics: the federation port + 2000 (9400 for the province, 9410 for 兰州, ...).
  NO_COLOR=1 LIANDONG_METRICS_LISTEN="127.0.0.1:$(($(fed_port "$code") + 2000))" \
    setsid "$BIN" serve --config "$(config_of "$code")" </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid" >"$(pid_file "$code")"
  local deadline=$((SECONDS + WAIT_SECS))
  until api_answers "$code" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "--- last lines of $log ---" >&2
      tail -n 20 "$log" >&2
      rm -f "$(pid_file "$code")"
      die "$code $(name_of "$code") exited while starting; see $log"
    fi
    ((SECONDS < deadline)) || die "$code did not answer on its API port $(api_port "$code") within $WAIT_SECS s; see $log"
    sleep 0.2
  done
  say "started $code $(name_of "$code") (pid $pid, federation 127.0.0.1:$(fed_port "$code"), API 127.0.0.1:$(api_port "$code"))"
}

# Registers CODE on its parent's node unless the parent's roster already has it.
register_on_parent() {
  local code="$1" parent out
  parent="$(parent_of "$code")"
  if ld "$parent" committee list --json | jpy "any(c['code'] == '$code' for c in d['committees'])" >/dev/null; then
    return 0
  fi
  out="$(ld "$parent" committee register --code "$code" --name "$(name_of "$code")" \
    --key "$(public_key_of "$code")" 2>&1)" || die "registering $code on $parent failed: $out"
  say "registered $code $(name_of "$code") on $parent $(name_of "$parent"): $out"
}

registered() { ld "$1" status --json | jpy "d['level'] != ''" >/dev/null; }

cmd_up() {
  find_bin
  command -v python3 >/dev/null || die "python3 is needed to read the nodes' --json output"
  mkdir -p "$RUN/pids" "$RUN/logs"
  local code port
  # Before anything else: the ports of the nodes that are not running yet must be free.
  for code in $(all_codes); do
    running_pid "$code" >/dev/null && continue
    for port in "$(fed_port "$code")" "$(api_port "$code")"; do
      if port_busy "$port"; then
        die "port $port (for $code $(name_of "$code")) is already in use on 127.0.0.1 by another process (another federation, from another run folder?): stop it first; see: ss -ltnp 'sport = :$port'"
      fi
    done
  done
  if is_initialised "$ROOT"; then
    say "reusing the initialised nodes in $RUN"
  fi
  for code in $(all_codes); do init_node "$code"; done
  ensure_ca
  for code in $(all_codes); do ensure_cert "$code"; done

  start_node "$ROOT"
  for code in "${CITIES[@]}"; do register_on_parent "$code"; done
  for code in "${CITIES[@]}"; do start_node "$code"; done
  for code in "${CITIES[@]}"; do
    wait_for "$code $(name_of "$code") to learn its registration from $ROOT" registered "$code"
  done
  say "cities registered"
  for code in "${COUNTIES[@]}"; do register_on_parent "$code"; done
  for code in "${COUNTIES[@]}"; do start_node "$code"; done
  for code in "${COUNTIES[@]}"; do
    wait_for "$code $(name_of "$code") to learn its registration from $(parent_of "$code")" registered "$code"
  done
  say "all 7 nodes up and registered; logs in $RUN/logs/"
}

cmd_down() {
  local code pid pids=() codes=()
  # Counties first, then cities, then the province: children stop before their parent.
  for code in $(all_codes | tac); do
    if pid="$(running_pid "$code")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      codes+=("$code")
    else
      rm -f "$(pid_file "$code")"
    fi
  done
  if ((${#pids[@]} == 0)); then
    say "no node is running"
    return 0
  fi
  say "sent SIGTERM to ${#pids[@]} nodes; waiting up to $STOP_SECS s"
  local deadline=$((SECONDS + STOP_SECS)) alive i
  while true; do
    alive=0
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive=$((alive + 1))
    done
    ((alive == 0)) && break
    ((SECONDS >= deadline)) && break
    sleep 0.1
  done
  local killed=0
  for i in "${!pids[@]}"; do
    pid="${pids[$i]}"
    code="${codes[$i]}"
    if kill -0 "$pid" 2>/dev/null; then
      echo "federation.sh: $code $(name_of "$code") (pid $pid) did not exit within $STOP_SECS s of SIGTERM: killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      killed=$((killed + 1))
    fi
    rm -f "$(pid_file "$code")"
  done
  # Wait for the killed ones to be gone too.
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
  if ((killed > 0)); then
    say "stopped ${#pids[@]} nodes ($killed had to be killed)"
    return 1
  fi
  say "stopped ${#pids[@]} nodes cleanly"
}

# One line per node: committee, level, events, links with their state and lag.
read -r -d '' PY_STATUS <<'EOF_PY' || true
import json, sys
d = json.load(sys.stdin)
links = "  ".join(
    f"{l['role']} {l['peer']} {l['state']} lag out/in {l['outbound_lag']}/{l['inbound_lag']}"
    + (f" ({l['last_error']})" if l["last_error"] else "")
    for l in d["links"]
)
level = d["level"] or "NOT REGISTERED"
print(f"{d['committee']} {d['name']}  {level:<8} events {d['events']:>4} (own {d['own_events']:>3})"
      f"  quarantined {d['quarantined']}  roster {d['roster_size']}  {links or 'no links'}")
EOF_PY
format_status() { python3 -c "$PY_STATUS"; }

cmd_status() {
  find_bin
  local code pid out down=0
  for code in $(all_codes); do
    if ! is_initialised "$code"; then
      printf '%s %s  not initialised (run: %s up)\n' "$code" "$(name_of "$code")" "$0"
      down=1
    elif ! pid="$(running_pid "$code")"; then
      printf '%s %s  not running\n' "$code" "$(name_of "$code")"
      down=1
    elif out="$(ld "$code" status --json 2>&1)"; then
      format_status <<<"$out"
    else
      [[ -n "$out" ]] || out="no answer within $CALL_SECS s"
      printf '%s %s  pid %s, but its API fails: %s\n' "$code" "$(name_of "$code")" "$pid" "$out"
      down=1
    fi
  done
  return "$down"
}

# record_id from a write's --json receipt.
rid() { jpy "d['record_id']"; }

assignment_state_in_tasks() {
  ld "$1" tasks --json | jpy "any(t['id'] == '$2' and t['state'] == '$3' for t in d['tasks'])" >/dev/null
}
assignment_state_in_topic() {
  ld "$1" topic show "$2" --json | jpy "(find(d['assignments'], '$3') or {}).get('state') == '$4'" >/dev/null
}
guidance_held() { ld "$1" guidance list --json | jpy "any(g['id'] == '$2' for g in d['guidance'])" >/dev/null; }
guidance_acked_by() {
  ld "$1" guidance list --json | jpy "any(g['id'] == '$2' and '$3' in g['acknowledged_by'] for g in d['guidance'])" >/dev/null
}

cmd_round() {
  find_bin
  local code
  for code in $(all_codes); do
    running_pid "$code" >/dev/null || die "$code $(name_of "$code") is not running: run '$0 up' first"
  done
  local province=620000 city=620100 county=620123 due topic a s g started=$SECONDS
  due="$(date -d '+30 days' +%F)"

  topic="$(ld $province topic create --publish --json \
    --title "黄河流域生态保护和高质量发展专题调研" \
    --description "围绕黄河甘肃段水土保持、水资源节约集约利用开展联动协商" \
    --source party-government --form thematic | rid)"
  say "$province 甘肃省政协 published topic $topic"

  a="$(ld $province assign --json --topic "$topic" --to $city \
    --title "黄河兰州段水资源节约集约利用" --due "$due" | rid)"
  say "$province assigned $a (分课题) to $city 兰州市政协"

  wait_for "$city to receive assignment $a" assignment_state_in_tasks $city "$a" issued
  ld $city ack "$a"
  s="$(ld $city assign --json --parent "$a" --to $county \
    --title "榆中县水土保持调研" --due "$due" | rid)"
  say "$city acknowledged $a and split it: $s (子课题) to $county 榆中县政协"

  wait_for "$county to receive assignment $s" assignment_state_in_tasks $county "$s" issued
  ld $county ack "$s"
  ld $county submit "$s" --text "榆中县水土保持调研报告：梯田建设与淤地坝监测" \
    --rec "加强梯田建设" --rec "建立淤地坝监测网络"
  say "$county acknowledged and submitted its result for $s"

  wait_for "$city to receive the submission for $s" assignment_state_in_topic $city "$topic" "$s" submitted
  ld $city review "$s" --approve --comment "通过"
  say "$city reviewed $s: approved (通过)"

  ld $city submit "$a" --text "兰州市汇总报告：黄河兰州段水资源节约集约利用（含榆中县成果）" \
    --rec "推进城市节水改造"
  say "$city submitted its own result for $a to the province"
  wait_for "$province to receive the submission for $a" assignment_state_in_topic $province "$topic" "$a" submitted
  ld $province review "$a" --approve --comment "通过"
  say "$province reviewed $a: approved (通过)"

  g="$(ld $province guidance send --json --title "关于做好联动协商成果汇总的通知" \
    --body "请各市县政协于${due}前报送调研成果。" | rid)"
  say "$province sent guidance $g to its whole subtree"

  wait_for "$county to receive guidance $g" guidance_held $county "$g"
  ld $county guidance ack "$g"
  say "$county acknowledged guidance $g"

  wait_for "$province to see $s approved" assignment_state_in_topic $province "$topic" "$s" approved
  wait_for "$province to see $county's acknowledgement of $g" guidance_acked_by $province "$g" $county

  printf 'TOPIC=%s\nASSIGNMENT=%s\nSUBASSIGNMENT=%s\nGUIDANCE=%s\nCOUNTY=%s\n' \
    "$topic" "$a" "$s" "$g" "$county" >"$RUN/round.env"
  say "round done in $((SECONDS - started)) s (ids in $RUN/round.env); the topic as $province sees it:"
  ld $province topic show "$topic"
}

cmd_clean() {
  cmd_down || true
  if [[ -d "$RUN" ]]; then
    rm -rf "$RUN"
    say "removed $RUN"
  fi
}

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  round) cmd_round ;;
  clean) cmd_clean ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
