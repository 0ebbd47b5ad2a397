#!/usr/bin/env bash
# The seven-node Gansu federation in containers (docker-compose.yml next to this script).
#
#   deploy/docker/federation.sh up       volumes, CA, init, certificates, registrations (first
#                                        time only), then start all seven containers
#   deploy/docker/federation.sh status   one line per node, from `liandong status --json`
#   deploy/docker/federation.sh stop     stop the containers (SIGTERM), keep everything
#   deploy/docker/federation.sh clean    remove the containers, the network, every volume
#                                        (the nodes' data and the CA!) and the run folder
#   deploy/docker/federation.sh cli CODE ARGS...   the CLI of node CODE (docker exec)
#
# The image must exist: deploy/docker/build-image.sh builds it. See deploy/docker/README.md.
# deploy/docker/faults.sh sources this file for its functions.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPOSE_FILE="$HERE/docker-compose.yml"
export LIANDONG_PROJECT="${LIANDONG_PROJECT:-liandong}"
export LIANDONG_NET="${LIANDONG_NET:-172.29.62}"
export LIANDONG_IMAGE="${LIANDONG_IMAGE:-liandong:local}"
# Public keys printed by each node's init (the registrations need them), per project.
STATE="${LIANDONG_DOCKER_STATE:-$HERE/run/$LIANDONG_PROJECT}"
# How long to wait for a node to come up or for an event to sync, in seconds.
WAIT_SECS="${LIANDONG_WAIT_SECS:-90}"
# How long one CLI call may take before it is abandoned.
CALL_SECS="${LIANDONG_CALL_SECS:-20}"

# code | name | parent code | last octet of its address on the federation network
NODES=(
  "620000|甘肃省政协||10"
  "620100|兰州市政协|620000|20"
  "620400|白银市政协|620000|40"
  "620123|榆中县政协|620100|23"
  "620121|永登县政协|620100|21"
  "620421|靖远县政协|620400|41"
  "620422|会宁县政协|620400|42"
)
ROOT=620000
CITIES=(620100 620400)
COUNTIES=(620123 620121 620421 620422)

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() {
  printf '%s: %s\n' "$(basename "$0")" "$*" >&2
  exit 1
}

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
ip_of() { echo "$LIANDONG_NET.$(field "$1" 4)"; }
all_codes() {
  local row
  for row in "${NODES[@]}"; do echo "${row%%|*}"; done
}
# Container and volume names, as docker-compose.yml spells them.
cname() { echo "$LIANDONG_PROJECT-$1"; }
volume_of() { echo "$LIANDONG_PROJECT-$1"; }
ca_volume() { echo "$LIANDONG_PROJECT-ca"; }
network_name() { echo "$LIANDONG_PROJECT-net"; }

COMPOSE=()
find_compose() {
  ((${#COMPOSE[@]} > 0)) && return 0
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null && docker-compose version >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
  else
    die "neither 'docker compose' nor 'docker-compose' works here"
  fi
}
compose() {
  find_compose
  "${COMPOSE[@]}" -p "$LIANDONG_PROJECT" -f "$COMPOSE_FILE" "$@"
}

# ld CODE ARGS...: the CLI inside CODE's container, against its own node. docker exec needs
# no network, so this works while the container is cut off too.
ld() {
  local code="$1"
  shift
  timeout "$CALL_SECS" docker exec "$(cname "$code")" /usr/local/bin/liandong --timeout 10 "$@"
}

# oneoff ARGS...: liandong in a throwaway container without network; the caller adds -v.
oneoff() {
  local vols=()
  while [[ "${1:-}" == -v ]]; do
    vols+=("$1" "$2")
    shift 2
  done
  docker run --rm --network none "${vols[@]}" "$LIANDONG_IMAGE" "$@"
}

# jq-like helper without jq: `... --json | jpy 'EXPR'` evaluates EXPR with d = the parsed JSON
# and prints the result. Exits 1 if EXPR is false or None.
jpy() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
def find(items, id):
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

# wait_for WHAT CMD...: runs CMD every 0.5 s until it succeeds, for at most WAIT_SECS.
wait_for() {
  local what="$1"
  shift
  local deadline=$((SECONDS + WAIT_SECS)) out
  while true; do
    if out="$("$@" 2>&1)"; then
      return 0
    fi
    if ((SECONDS >= deadline)); then
      printf '%s: timed out after %s s waiting for %s\n  last output: %s\n' \
        "$(basename "$0")" "$WAIT_SECS" "$what" "$(head -c 600 <<<"$out")" >&2
      return 1
    fi
    sleep 0.5
  done
}

container_state() { docker inspect -f '{{.State.Status}}' "$(cname "$1")" 2>/dev/null || echo missing; }

api_answers() { ld "$1" status --json >/dev/null 2>&1; }
registered() { ld "$1" status --json | jpy "d['level'] != ''" >/dev/null; }

need_image() {
  docker image inspect "$LIANDONG_IMAGE" >/dev/null 2>&1 ||
    die "no image $LIANDONG_IMAGE: build it first with deploy/docker/build-image.sh"
}

key_file() { echo "$STATE/$1.public.key"; }

# init_node CODE: `liandong init` into CODE's volume (first time only); keeps the public key.
init_node() {
  local code="$1" parent out
  if [[ -s "$(key_file "$code")" ]]; then
    return 0
  fi
  parent="$(parent_of "$code")"
  local args=(init --dir /data --code "$code" --name "$(name_of "$code")" --json
    --listen 0.0.0.0:7400 --api-listen 127.0.0.1:7401)
  if [[ -n "$parent" ]]; then
    args+=(--parent-code "$parent" --parent-address "https://$(ip_of "$parent"):7400"
      --root-code "$ROOT" --root-key "$(tr -d ' \n' <"$(key_file "$ROOT")")")
  fi
  if ! out="$(oneoff -v "$(volume_of "$code"):/data" "${args[@]}" 2>&1)"; then
    if grep -q 'already exists' <<<"$out"; then
      die "volume $(volume_of "$code") already holds a node, but $(key_file "$code") (its public key) is gone: run '$0 clean' to start over"
    fi
    die "liandong init for $code failed: $out"
  fi
  jpy "d['public_key']" <<<"$out" >"$(key_file "$code")" ||
    die "no public key in the output of init for $code: $out"
  say "initialised $code $(name_of "$code") in volume $(volume_of "$code")"
}

# The federation's CA, in its own volume (first time only), then CODE's certificate.
ensure_ca() {
  [[ -f "$STATE/ca.done" ]] && return 0
  local out
  out="$(oneoff -v "$(ca_volume):/ca" certs ca --dir /ca --name "$(name_of "$ROOT") $ROOT" 2>&1)" ||
    die "liandong certs ca failed: $out"
  touch "$STATE/ca.done"
  say "created the federation's CA in volume $(ca_volume)"
}
ensure_cert() {
  local code="$1" out
  [[ -f "$STATE/$code.cert.done" ]] && return 0
  out="$(oneoff -v "$(ca_volume):/ca" -v "$(volume_of "$code"):/data" \
    certs issue --ca /ca --code "$code" --out /data 2>&1)" ||
    die "liandong certs issue for $code failed: $out"
  touch "$STATE/$code.cert.done"
  say "issued the TLS certificate of $code $(name_of "$code") (c$code.liandong)"
}

# start_node CODE: start its container and wait until its local API answers.
start_node() {
  local code="$1" deadline
  docker start "$(cname "$code")" >/dev/null
  deadline=$((SECONDS + WAIT_SECS))
  until api_answers "$code"; do
    if [[ "$(container_state "$code")" != running ]]; then
      docker logs --tail 20 "$(cname "$code")" >&2 || true
      die "$code $(name_of "$code") exited while starting (docker logs $(cname "$code"))"
    fi
    ((SECONDS < deadline)) || die "$code did not answer on its local API within $WAIT_SECS s (docker logs $(cname "$code"))"
    sleep 0.3
  done
}

register_on_parent() {
  local code="$1" parent out
  parent="$(parent_of "$code")"
  if ld "$parent" committee list --json | jpy "any(c['code'] == '$code' for c in d['committees'])" >/dev/null; then
    return 0
  fi
  out="$(ld "$parent" committee register --code "$code" --name "$(name_of "$code")" \
    --key "$(tr -d ' \n' <"$(key_file "$code")")" --json 2>&1)" ||
    die "registering $code on $parent failed: $out"
  # Every receipt goes to the ledger the fault test checks against (harmless otherwise).
  record_receipt "$parent" committee_registered "{\"code\": \"$code\"}" <<<"$out" >/dev/null
  say "registered $code $(name_of "$code") on $parent $(name_of "$parent")"
}

# The receipts of writes, one JSON line each: {"origin", "kind", "about", "event_id", "seq",
# "record_id"}, in $LEDGER. faults.sh checks that every one of them is held where it must be.
# record_receipt ORIGIN KIND ABOUT_JSON < receipt: appends the line, prints the record id.
LEDGER="${LEDGER:-$STATE/receipts.jsonl}"
record_receipt() {
  python3 -c '
import json, sys
origin, kind, about, ledger = sys.argv[1:5]
text = sys.stdin.read()
try:
    r = json.loads(text)
    line = {"origin": origin, "kind": kind, "about": json.loads(about or "{}"),
            "event_id": r["event_id"], "seq": int(r["seq"]), "record_id": r["record_id"]}
except (ValueError, KeyError) as e:
    sys.exit(f"not a receipt ({e}): {text[:300]}")
with open(ledger, "a", encoding="utf-8") as f:
    f.write(json.dumps(line, ensure_ascii=False) + "\n")
print(r["record_id"])
' "$1" "$2" "${3:-}" "$LEDGER"
}

cmd_up() {
  command -v python3 >/dev/null || die "python3 is needed to read the nodes' --json output"
  need_image
  mkdir -p "$STATE"
  # Network, volumes and containers, none started yet.
  compose up --no-start >"$STATE/compose.log" 2>&1 || {
    cat "$STATE/compose.log" >&2
    die "docker-compose up --no-start failed"
  }
  local code
  for code in $(all_codes); do init_node "$code"; done
  ensure_ca
  for code in $(all_codes); do ensure_cert "$code"; done

  start_node "$ROOT"
  for code in "${CITIES[@]}"; do register_on_parent "$code"; done
  for code in "${CITIES[@]}"; do start_node "$code"; done
  for code in "${CITIES[@]}"; do
    wait_for "$code $(name_of "$code") to learn its registration from $ROOT" registered "$code"
  done
  for code in "${COUNTIES[@]}"; do register_on_parent "$code"; done
  for code in "${COUNTIES[@]}"; do start_node "$code"; done
  for code in "${COUNTIES[@]}"; do
    wait_for "$code $(name_of "$code") to learn its registration from $(parent_of "$code")" registered "$code"
  done
  say "all 7 containers up and registered on network $(network_name) ($LIANDONG_NET.0/24)"
}

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

cmd_status() {
  local code out down=0
  for code in $(all_codes); do
    if [[ "$(container_state "$code")" != running ]]; then
      printf '%s %s  container %s: %s\n' "$code" "$(name_of "$code")" "$(cname "$code")" "$(container_state "$code")"
      down=1
    elif out="$(ld "$code" status --json 2>&1)"; then
      python3 -c "$PY_STATUS" <<<"$out"
    else
      printf '%s %s  running, but its API fails: %s\n' "$code" "$(name_of "$code")" "$out"
      down=1
    fi
  done
  return "$down"
}

cmd_stop() { compose stop; }

cmd_clean() {
  local out
  out="$(compose down --volumes --remove-orphans --timeout 20 2>&1)" || {
    printf '%s\n' "$out" >&2
    die "docker-compose down failed"
  }
  rm -rf "$STATE"
  say "removed the containers, network $(network_name), the volumes and $STATE"
}

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

main() {
  case "${1:-}" in
    up) cmd_up ;;
    status) cmd_status ;;
    stop) cmd_stop ;;
    clean) cmd_clean ;;
    cli)
      [[ $# -ge 2 ]] || die "usage: $0 cli CODE ARGS..."
      shift
      local code="$1"
      shift
      docker exec -i "$(cname "$code")" /usr/local/bin/liandong "$@"
      ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
