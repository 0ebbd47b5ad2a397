#!/usr/bin/env bash
# Faults across real hosts: the seven-node federation in containers, a workload through the
# CLI while a city is cut off the network and containers are stopped, killed and restarted;
# then, after the network heals, the invariants, checked through the CLI's --json outputs and
# on the stopped nodes' stores (`liandong verify`, `liandong export`).
#
#   deploy/docker/faults.sh            build the image, run, check, tear down; non-zero on failure
#   deploy/docker/faults.sh --keep     on failure, keep the containers and volumes to look at
#   deploy/docker/faults.sh --ci       as in .ci/run: without a Docker engine, print
#                                      "SKIPPED: <reason>" and exit 0
#
# Environment:
#   LIANDONG_BIN      the binary to package (default: target/release/liandong if it exists,
#                     else target/debug/liandong, else build-image.sh builds a release)
#   LIANDONG_IMAGE    the image tag (default liandong:faults-$LIANDONG_PROJECT, removed at the end)
#   LIANDONG_NO_BUILD 1: use the existing image $LIANDONG_IMAGE as it is (and keep it)
#   LIANDONG_PROJECT  name prefix of the containers, volumes and network (default ldfaults)
#   LIANDONG_NET      first three octets of the private /24 network (default 172.29.63)
#   LIANDONG_WAIT_SECS  how long each wait for an event to arrive may take (default 90)
#   FAULTS_BURST      notices and reports written on each side of the cut (default 10 each)
#   FAULTS_SELFTEST=unrecorded   make one write the checks do not know of: the run must fail
#
# Everything it made (containers, network, volumes, its image) is removed at the end,
# also on failure or Ctrl-C (unless --keep). See deploy/docker/README.md for what it checks.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
KEEP=0
CI=0
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    --ci) CI=1 ;;
    -h | --help)
      sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "usage: $0 [--keep] [--ci]" >&2
      exit 2
      ;;
  esac
done

# What the test needs; with --ci, a machine without it skips the test and says why.
preflight() {
  command -v docker >/dev/null || {
    echo "docker is not installed"
    return 1
  }
  docker info >/dev/null 2>&1 || {
    echo "no Docker engine answers here (docker info fails)"
    return 1
  }
  docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1 || {
    echo "neither 'docker compose' nor 'docker-compose' is installed"
    return 1
  }
  command -v python3 >/dev/null || {
    echo "python3 is not installed"
    return 1
  }
}
if ! why="$(preflight)"; then
  if ((CI == 1)); then
    echo "SKIPPED: deploy/docker/faults.sh: $why"
    exit 0
  fi
  echo "faults.sh: $why" >&2
  exit 1
fi

export LIANDONG_PROJECT="${LIANDONG_PROJECT:-ldfaults}"
export LIANDONG_NET="${LIANDONG_NET:-172.29.63}"
# Its own image tag, so as not to replace the liandong:local an operator built; removed at the
# end unless it was given (LIANDONG_NO_BUILD=1).
export LIANDONG_IMAGE="${LIANDONG_IMAGE:-liandong:faults-$LIANDONG_PROJECT}"
BUILT_IMAGE=0
# One run per project name at a time on this machine (two CI runs would fight over the names
# and the network): a second one waits for the first.
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/liandong-faults-$LIANDONG_PROJECT.lock"
  if ! flock -n 9; then
    echo "faults.sh: another run of project $LIANDONG_PROJECT is going on; waiting for it (up to 15 min)"
    flock -w 900 9 || {
      echo "faults.sh: the other run did not end within 15 min" >&2
      exit 1
    }
  fi
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/liandong-faults.XXXXXX")"
CHECK="$WORK/check"
mkdir -p "$CHECK/live" "$CHECK/stores"
export LIANDONG_DOCKER_STATE="$WORK/state"
export LEDGER="$CHECK/ledger.jsonl"
: >"$LEDGER"
# shellcheck source=SCRIPTDIR/federation.sh
source "$HERE/federation.sh"

STARTED=$SECONDS
PHASE="setup"
phase() {
  PHASE="$1"
  say "== $1 ($((SECONDS - STARTED)) s)"
}
fail() {
  printf '\nFAULTS: FAILED in phase "%s": %s\n' "$PHASE" "$*" >&2
  exit 1
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((rc != 0)); then
    printf '\nFAULTS: FAILED (exit %s) after %s s; the last log lines of each node:\n' "$rc" "$((SECONDS - STARTED))" >&2
    local code
    for code in $(all_codes); do
      printf -- '--- %s %s (%s) ---\n' "$code" "$(name_of "$code")" "$(container_state "$code")" >&2
      docker logs --tail 8 "$(cname "$code")" 2>&1 | sed 's/^/    /' >&2 || true
    done
  fi
  if ((rc != 0 && KEEP == 1)); then
    printf 'kept for inspection (--keep): containers %s-*, network %s, the outputs in %s\n' \
      "$LIANDONG_PROJECT" "$(network_name)" "$WORK" >&2
    printf 'remove them with: LIANDONG_PROJECT=%s LIANDONG_DOCKER_STATE=%s %s/federation.sh clean\n' \
      "$LIANDONG_PROJECT" "$LIANDONG_DOCKER_STATE" "$HERE" >&2
  else
    cmd_clean >/dev/null 2>&1 || echo "faults.sh: docker-compose down failed; remove the containers $LIANDONG_PROJECT-* by hand" >&2
    # Whatever compose did not remove (a container it no longer knows of, a renamed network).
    local left
    left="$(docker ps -aq --filter "name=^$LIANDONG_PROJECT-")"
    [[ -z "$left" ]] || xargs docker rm -f <<<"$left" >/dev/null 2>&1 || true
    docker network rm "$(network_name)" >/dev/null 2>&1 || true
    if ((BUILT_IMAGE == 1)); then
      docker image rm "$LIANDONG_IMAGE" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
# Writes and waits.

# w ORIGIN KIND ABOUT_JSON ARGS...: `liandong ARGS --json` on ORIGIN's node; the receipt goes
# to the ledger; prints the record id.
w() {
  local origin="$1" kind="$2" about="$3" out
  shift 3
  out="$(ld "$origin" --json "$@" 2>&1)" || fail "$origin: liandong $* failed: $out"
  record_receipt "$origin" "$kind" "$about" <<<"$out" || fail "$origin: liandong $*: no receipt"
}
has_task() { ld "$1" tasks --json | jpy "any(t['id'] == '$2' for t in d['tasks'])" >/dev/null; }
task_state() { ld "$1" tasks --json | jpy "any(t['id'] == '$2' and t['state'] == '$3' for t in d['tasks'])" >/dev/null; }
shown_state() { ld "$1" topic show "$2" --json | jpy "(find(d['assignments'], '$3') or {}).get('state') == '$4'" >/dev/null; }
shown_versions() {
  ld "$1" topic show "$2" --json | jpy "len((find(d['assignments'], '$3') or {}).get('submissions', [])) == $4" >/dev/null
}
has_guidance() { ld "$1" guidance list --json | jpy "any(g['id'] == '$2' for g in d['guidance'])" >/dev/null; }
has_report() { ld "$1" report list --json | jpy "any(r['id'] == '$2' for r in d['reports'])" >/dev/null; }
link_up() {
  ld "$1" status --json | jpy "any(l['state'] == 'connected' for l in d['links'] if l['peer'] == '$2')" >/dev/null
}
link_down() {
  ld "$1" status --json | jpy "all(l['state'] != 'connected' for l in d['links'] if l['peer'] == '$2')" >/dev/null
}
wait_task() { wait_for "$1 to receive assignment $2" has_task "$1" "$2" || fail "assignment $2 did not reach $1"; }
wait_shown() { wait_for "$1 to see $3 $4" shown_state "$1" "$2" "$3" "$4" || fail "$1 never saw $3 $4"; }
wait_guidance() { wait_for "$1 to receive guidance $2" has_guidance "$1" "$2" || fail "guidance $2 did not reach $1"; }

restart_and_wait() {
  docker start "$(cname "$1")" >/dev/null
  wait_for "$1 to answer after its restart" api_answers "$1" || fail "$1 did not come back after docker start"
}

attached() { docker inspect -f '{{json .NetworkSettings.Networks}}' "$(cname "$1")" | grep -q "\"$(network_name)\""; }

# ---------------------------------------------------------------------------------------

phase "build the image"
if [[ "${LIANDONG_NO_BUILD:-0}" == 1 ]]; then
  need_image
else
  if [[ -z "${LIANDONG_BIN:-}" ]]; then
    for candidate in "$REPO/target/release/liandong" "$REPO/target/debug/liandong"; do
      if [[ -x "$candidate" ]]; then
        export LIANDONG_BIN="$candidate"
        break
      fi
    done
  fi
  # Without LIANDONG_BIN, build-image.sh runs cargo build --release.
  "$HERE/build-image.sh" || fail "the image could not be built"
  BUILT_IMAGE=1
fi

phase "bring the federation up"
# A previous run killed hard may have left its containers behind: start from nothing.
cmd_clean >/dev/null 2>&1 || true
mkdir -p "$LIANDONG_DOCKER_STATE"
cmd_up

DUE="$(date -d '+30 days' +%F)"
P=620000 LZ=620100 BY=620400 YZ=620123 YD=620121 JY=620421 HN=620422
# Extra writes on each side of the cut (a notice and a report each).
BURST="${FAULTS_BURST:-10}"

phase "workload, all links up"
T="$(w $P topic_published '{}' topic create --publish --title "黄河流域生态保护和高质量发展专题调研" \
  --description "围绕黄河甘肃段水土保持、水资源节约集约利用开展联动协商" --source party-government --form thematic)"
A1="$(w $P assignment_issued "{\"topic\": \"$T\", \"to\": \"$LZ\"}" assign --topic "$T" --to $LZ --title "黄河兰州段水资源节约集约利用" --due "$DUE")"
A2="$(w $P assignment_issued "{\"topic\": \"$T\", \"to\": \"$BY\"}" assign --topic "$T" --to $BY --title "黄河白银段生态修复" --due "$DUE")"
wait_task $LZ "$A1"
wait_task $BY "$A2"
w $LZ assignment_acknowledged '{}' ack "$A1" >/dev/null
w $BY assignment_acknowledged '{}' ack "$A2" >/dev/null
S1="$(w $LZ assignment_issued "{\"parent\": \"$A1\", \"to\": \"$YZ\"}" assign --parent "$A1" --to $YZ --title "榆中县水土保持调研" --due "$DUE")"
S2="$(w $LZ assignment_issued "{\"parent\": \"$A1\", \"to\": \"$YD\"}" assign --parent "$A1" --to $YD --title "永登县节水灌溉调研" --due "$DUE")"
S3="$(w $BY assignment_issued "{\"parent\": \"$A2\", \"to\": \"$JY\"}" assign --parent "$A2" --to $JY --title "靖远县黄河湿地保护调研" --due "$DUE")"
S4="$(w $BY assignment_issued "{\"parent\": \"$A2\", \"to\": \"$HN\"}" assign --parent "$A2" --to $HN --title "会宁县旱作农业调研" --due "$DUE")"
G1="$(w $P guidance_issued '{}' guidance send --title "关于做好联动协商成果汇总的通知" --body "请各市县政协于${DUE}前报送调研成果。")"
G2="$(w $LZ guidance_issued "{\"to\": \"$YZ\"}" guidance send --to $YZ --title "关于榆中县调研的补充要求" --body "请补充梯田监测数据。")"
for pair in "$YZ:$S1" "$YD:$S2" "$JY:$S3" "$HN:$S4"; do
  wait_task "${pair%%:*}" "${pair#*:}"
  w "${pair%%:*}" assignment_acknowledged '{}' ack "${pair#*:}" >/dev/null
done
w $YZ submission_made '{}' submit "$S1" --text "榆中县水土保持调研报告：梯田建设与淤地坝监测" --rec "加强梯田建设" >/dev/null
R1="$(w $YD report_sent "{\"to\": \"$P\"}" report send --to $P --kind public-opinion --title "永登县群众关于灌区改造的意见" --body "建议加快灌区节水改造。")"
for code in $LZ $BY $YZ $YD $JY $HN; do wait_guidance "$code" "$G1"; done
wait_shown $LZ "$T" "$S1" submitted
wait_for "$P to receive report $R1" has_report $P "$R1" || fail "report $R1 did not reach $P"

phase "cut $BY $(name_of $BY) off the network"
docker network disconnect "$(network_name)" "$(cname $BY)"
wait_for "$P to notice that $BY is gone" link_down $P $BY || fail "the link $P-$BY stays up after the disconnect"
wait_for "$JY to notice that its city is gone" link_down $JY $BY || fail "the link $JY-$BY stays up after the disconnect"
wait_for "$HN to notice that its city is gone" link_down $HN $BY || fail "the link $HN-$BY stays up after the disconnect"
say "the links to $BY are down"

phase "workload while $BY is cut off"
# The province keeps assigning to the cut city and writing to one of its counties.
A3="$(w $P assignment_issued "{\"topic\": \"$T\", \"to\": \"$BY\"}" assign --topic "$T" --to $BY --title "白银市黄河支流污染治理" --due "$DUE")"
G3="$(w $P guidance_issued "{\"to\": \"$JY\"}" guidance send --to $JY --title "关于靖远县湿地调研的指导意见" --body "请重点关注湿地退化。")"
# The cut city keeps working on its own, for its counties.
S5="$(w $BY assignment_issued "{\"parent\": \"$A2\", \"to\": \"$JY\"}" assign --parent "$A2" --to $JY --title "靖远县黄河滩区综合治理" --due "$DUE")"
G4="$(w $BY guidance_issued "{\"to\": \"$HN\"}" guidance send --to $HN --title "关于会宁县调研进度的通知" --body "请于月底前提交。")"
# Its counties, cut off from it, keep working too.
w $JY submission_made '{}' submit "$S3" --text "靖远县黄河湿地保护调研报告" --rec "划定湿地保护红线" >/dev/null
w $JY guidance_acknowledged '{}' guidance ack "$G1" >/dev/null
w $HN submission_made '{}' submit "$S4" --text "会宁县旱作农业调研报告" --rec "推广全膜双垄沟播" >/dev/null
R2="$(w $HN report_sent "{\"to\": \"$P\"}" report send --to $P --kind work-summary --title "会宁县联动协商工作总结" --body "完成调研三次。")"
# A burst on both sides of the cut, so that the heal has batches to carry: notices from the
# province to 白银's counties and to everyone, reports from 靖远 up to the province.
for i in $(seq 1 "$BURST"); do
  case $((i % 3)) in
    0) to="" ;;
    1) to=$JY ;;
    *) to=$HN ;;
  esac
  w $P guidance_issued "{\"to\": \"$to\"}" guidance send ${to:+--to "$to"} --title "第${i}号通知" --body "断网期间下发。" >/dev/null
  w $JY report_sent "{\"to\": \"$P\"}" report send --to $P --kind public-opinion --title "靖远县社情民意第${i}期" --body "断网期间报送。" >/dev/null
done
# The other city's side goes on: a return, a resubmission, then a hard kill of the county
# right after its receipt (what it was told is stored must survive).
w $LZ review_recorded '{"verdict": "return"}' review "$S1" --return --comment "请补充监测数据" >/dev/null
wait_for "$YZ to see $S1 returned" task_state $YZ "$S1" returned || fail "$YZ never saw the return of $S1"
w $YZ submission_made '{}' submit "$S1" --text "榆中县水土保持调研报告（修订）：含淤地坝监测数据" --rec "加强梯田建设" --rec "建立淤地坝监测网络" >/dev/null
docker kill "$(cname $YZ)" >/dev/null
say "killed $YZ (SIGKILL) right after its resubmission's receipt"
w $YD submission_made '{}' submit "$S2" --text "永登县节水灌溉调研报告" --rec "推进高效节水灌溉" >/dev/null
wait_shown $LZ "$T" "$S2" submitted
docker stop "$(cname $YD)" >/dev/null
say "stopped $YD (SIGTERM); assigning to it while it is down"
S6="$(w $LZ assignment_issued "{\"parent\": \"$A1\", \"to\": \"$YD\"}" assign --parent "$A1" --to $YD --title "永登县庄浪河治理调研" --due "$DUE")"
G5="$(w $LZ guidance_issued "{\"to\": \"$YD\"}" guidance send --to $YD --title "关于永登县新增子课题的通知" --body "请及时签收。")"
restart_and_wait $YD
wait_task $YD "$S6"
w $YD assignment_acknowledged '{}' ack "$S6" >/dev/null
restart_and_wait $YZ
# The province dies hard with the cut city's work queued; then the cut city restarts, still cut.
docker kill "$(cname $P)" >/dev/null
say "killed $P (SIGKILL) with its work for $BY queued"
restart_and_wait $P
docker stop "$(cname $BY)" >/dev/null
restart_and_wait $BY
say "restarted $BY while it is cut off"
if attached $BY; then
  fail "$BY is attached to $(network_name) again after docker start: the cut did not hold"
fi
# Nothing crossed the cut: the province has neither the county's submission nor its report.
shown_state $P "$T" "$S3" acknowledged || fail "$P sees $S3 other than acknowledged while $BY is cut off: the cut leaked"
if has_report $P "$R2"; then fail "$P holds report $R2 while $BY is cut off: the cut leaked"; fi
if has_task $BY "$A3"; then fail "$BY holds $A3 while it is cut off: the cut leaked"; fi
if [[ "${FAULTS_SELFTEST:-}" == unrecorded ]]; then
  say "FAULTS_SELFTEST=unrecorded: a guidance the checks do not know of, to $JY"
  ld $P guidance send --to $JY --title "self-test: not in the ledger" >/dev/null
fi

phase "heal: reconnect $BY"
docker network connect --ip "$(ip_of $BY)" "$(network_name)" "$(cname $BY)"
# The relay dies as soon as its link to the province is back, in or just after its catch-up.
wait_for "$BY to reconnect to $P" link_up $BY $P || fail "$BY did not reconnect to $P after the heal"
docker kill "$(cname $BY)" >/dev/null
say "killed $BY (SIGKILL) as soon as its link to $P was up again (in or just after its catch-up)"
restart_and_wait $BY
wait_task $BY "$A3"
wait_shown $P "$T" "$S3" submitted
wait_for "$P to receive report $R2" has_report $P "$R2" || fail "report $R2 did not reach $P after the heal"
say "the cut city's work reached the province, and the province's reached it"

phase "workload after the heal"
w $BY assignment_acknowledged '{}' ack "$A3" >/dev/null
wait_task $JY "$S5"
w $JY assignment_acknowledged '{}' ack "$S5" >/dev/null
w $JY submission_made '{}' submit "$S5" --text "靖远县黄河滩区综合治理调研报告" >/dev/null
wait_guidance $JY "$G3"
w $JY guidance_acknowledged '{}' guidance ack "$G3" >/dev/null
wait_guidance $HN "$G4"
w $HN guidance_acknowledged '{}' guidance ack "$G4" >/dev/null
w $BY review_recorded '{"verdict": "approve"}' review "$S3" --approve --comment "通过" >/dev/null
wait_shown $BY "$T" "$S4" submitted
w $BY review_recorded '{"verdict": "return"}' review "$S4" --return --comment "请补充产量数据" >/dev/null
wait_for "$HN to see $S4 returned" task_state $HN "$S4" returned || fail "$HN never saw the return of $S4"
w $HN submission_made '{}' submit "$S4" --text "会宁县旱作农业调研报告（修订）：含产量数据" >/dev/null
wait_for "$BY to see the second version of $S4" shown_versions $BY "$T" "$S4" 2 || fail "$BY never saw $S4 v2"
w $BY review_recorded '{"verdict": "approve"}' review "$S4" --approve --comment "通过" >/dev/null
wait_for "$LZ to see the second version of $S1" shown_versions $LZ "$T" "$S1" 2 || fail "$LZ never saw $S1 v2 (lost in the kill of $YZ?)"
w $LZ review_recorded '{"verdict": "approve"}' review "$S1" --approve --comment "通过" >/dev/null
w $LZ review_recorded '{"verdict": "approve"}' review "$S2" --approve --comment "通过" >/dev/null
w $YZ guidance_acknowledged '{}' guidance ack "$G2" >/dev/null
w $YZ guidance_acknowledged '{}' guidance ack "$G1" >/dev/null
wait_guidance $YD "$G5"
w $YD guidance_acknowledged '{}' guidance ack "$G5" >/dev/null
w $LZ submission_made '{}' submit "$A1" --text "兰州市汇总报告：黄河兰州段水资源节约集约利用" --rec "推进城市节水改造" >/dev/null
wait_shown $P "$T" "$A1" submitted
w $P review_recorded '{"verdict": "approve"}' review "$A1" --approve --comment "通过" >/dev/null
w $P report_acknowledged '{}' report ack "$R1" >/dev/null
w $P report_acknowledged '{}' report ack "$R2" >/dev/null
say "$(wc -l <"$LEDGER") writes with receipts in the ledger"

# ---------------------------------------------------------------------------------------
phase "wait for convergence"
python3 - "$CHECK/tree.json" "${NODES[@]}" <<'EOF_PY'
import json, sys
rows = [r.split("|") for r in sys.argv[2:]]
tree = {"root": next(r[0] for r in rows if not r[2]), "parent": {r[0]: r[2] for r in rows}}
json.dump(tree, open(sys.argv[1], "w"))
EOF_PY

# One node's --json outputs, into $CHECK/live/CODE/.
dump_node() {
  local code="$1" dir="$CHECK/live/$1"
  mkdir -p "$dir"
  ld "$code" status --json >"$dir/status.json" &&
    ld "$code" tasks --json >"$dir/tasks.json" &&
    ld "$code" guidance list --json >"$dir/guidance.json" &&
    ld "$code" report list --json >"$dir/reports.json" &&
    ld "$code" quarantine list --json >"$dir/quarantine.json" &&
    { rm -f "$dir"/topic-*.json; ld "$code" topic show "$T" --json >"$dir/topic-$T.json" || rm -f "$dir/topic-$T.json"; }
}
dump_all() {
  local code pids=() ok=0
  for code in $(all_codes); do
    dump_node "$code" 2>"$CHECK/live/$code.err" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || ok=1; done
  return "$ok"
}
# Quiet: every link up without lag and the event counts the same twice, 2 s apart.
quiet_sig() {
  local code out sig=""
  for code in $(all_codes); do
    out="$(ld "$code" status --json)" || return 1
    sig+="$(jpy "'%s:%s' % (d['events'], all(l['state'] == 'connected' and l['outbound_lag'] == 0 and l['inbound_lag'] == 0 for l in d['links']))" <<<"$out") "
  done
  echo "$sig"
}
# Converged: quiet (every link up without lag, the same event counts twice, 2 s apart) and
# every invariant holds. Quiet for QUIET_SECS with violations still there is a failure; so is
# never getting quiet within twice WAIT_SECS.
QUIET_SECS="${FAULTS_QUIET_SECS:-20}"
deadline=$((SECONDS + WAIT_SECS * 2))
prev="" report="" quiet_since=""
while true; do
  sig="$(quiet_sig 2>/dev/null || true)"
  if [[ -n "$sig" && "$sig" == "$prev" && "$sig" != *False* ]]; then
    [[ -n "$quiet_since" ]] || quiet_since=$SECONDS
    if dump_all; then
      rc=0
      report="$(python3 "$HERE/invariants.py" live "$CHECK" 2>&1)" || rc=$?
      ((rc == 0)) && break
      # 1: violations, perhaps not converged yet: look again. Anything else: the checker broke.
      ((rc == 1)) || fail "invariants.py failed (exit $rc): $report"
      if ((SECONDS - quiet_since >= QUIET_SECS)); then
        printf '%s\n' "$report" >&2
        fail "the federation is quiet (all links up, no lag, no new events for $((SECONDS - quiet_since)) s) and the invariants above are violated"
      fi
    fi
  else
    quiet_since=""
  fi
  if ((SECONDS >= deadline)); then
    [[ -n "$report" ]] && printf 'the last look:\n%s\n' "$report" >&2
    say "last status of each node:" >&2
    cmd_status >&2 || true
    fail "no convergence within $((WAIT_SECS * 2)) s after the workload"
  fi
  prev="$sig"
  sleep 2
done
say "converged after $((SECONDS - STARTED)) s"

phase "invariants through the CLI (--json of status, tasks, guidance, reports, topic show, quarantine)"
printf '%s\n' "$report"

phase "stop every node, then verify and export each store"
compose stop --timeout 20 >/dev/null 2>&1 || fail "docker-compose stop failed"
for code in $(all_codes); do
  rc="$(docker inspect -f '{{.State.ExitCode}}' "$(cname "$code")")"
  [[ "$rc" == 0 ]] || fail "$code exited with status $rc on SIGTERM (a graceful stop exits 0); see docker logs $(cname "$code")"
done
chmod 0777 "$CHECK/stores"
for code in $(all_codes); do
  oneoff -v "$(volume_of "$code"):/data" verify --json >"$CHECK/stores/$code.verify.json" 2>"$CHECK/stores/$code.verify.err" ||
    echo "(verify of $code exited non-zero: $(tail -n 2 "$CHECK/stores/$code.verify.err"))"
  oneoff -v "$(volume_of "$code"):/data" -v "$CHECK/stores:/out" export --out "/out/$code.ldx" --json \
    >"$CHECK/stores/$code.export.json" 2>"$CHECK/stores/$code.export.err" ||
    fail "export of $code failed: $(tail -n 3 "$CHECK/stores/$code.export.err")"
done
if ! report="$(python3 "$HERE/invariants.py" stores "$CHECK")"; then
  printf '%s\n' "$report" >&2
  fail "the stores break the invariants"
fi
printf '%s\n' "$report"

phase "done"
say "FAULTS: PASSED in $((SECONDS - STARTED)) s: cut $BY off, killed $YZ, $P and $BY, stopped $YD and $BY, healed; every invariant holds"
