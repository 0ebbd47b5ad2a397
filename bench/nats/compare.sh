#!/usr/bin/env bash
# liandong against NATS JetStream, side by side, in the same run (issue 6):
#   relay   province -> city -> county, events/s end to end
#   catchup a county that missed N events reconnects, seconds until it holds them all
# Installs nats-server from Debian's packages and nats-py from PyPI if they are missing; if
# either cannot be had, says SKIPPED and runs liandong's side alone.
#
#   bench/nats/compare.sh [N]          N events (default 100000)
#   LIANDONG_BIN=target/release/liandong bench/nats/compare.sh
#   QUICK=1 bench/nats/compare.sh      CI: small N, checks that both sides run
set -uo pipefail
cd "$(dirname "$0")/../.."

N="${1:-100000}"
if [ "${QUICK:-0}" = "1" ]; then N="${1:-2000}"; fi
BIN="${LIANDONG_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release --locked --quiet || exit 1
  BIN="$PWD/target/release/liandong"
fi
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

have_nats=1
if ! command -v nats-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "== installing nats-server (Debian package)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server) \
      >"$OUT/apt.log" 2>&1 || true
  fi
  command -v nats-server >/dev/null 2>&1 || have_nats=0
fi
# The Debian package enables a system service on :4222; this script runs its own servers.
if [ "$have_nats" = "1" ] && ! python3 -c "import nats" >/dev/null 2>&1; then
  echo "== installing nats-py (PyPI)"
  python3 -m pip install --quiet nats-py >"$OUT/pip.log" 2>&1 || true
  python3 -c "import nats" >/dev/null 2>&1 || have_nats=0
fi

echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
if [ "$have_nats" = "1" ]; then
  echo "== NATS JetStream: province hub -> city leaf node -> county leaf node, mirrored streams, file storage, $N messages of 300 bytes"
  if ! timeout 900 python3 bench/nats/relay.py "$N" >"$OUT/nats.json" 2>"$OUT/nats.err"; then
    echo "NATS side failed:"; tail -20 "$OUT/nats.err"; have_nats=0
  fi
else
  echo "SKIPPED: NATS side (nats-server or nats-py could not be installed here)"
fi

echo "== liandong: province -> city -> county, $N events of 300-byte payloads"
"$BIN" bench relay catchup --events "$N" --json-out "$OUT/liandong.json" || exit 1

python3 - "$OUT/liandong.json" "$OUT/nats.json" "$have_nats" <<'PY'
import json, sys
l = json.load(open(sys.argv[1]))["figures"]
have = sys.argv[3] == "1"
n = json.load(open(sys.argv[2])) if have else None
print()
print("| figure | liandong | NATS JetStream | liandong / NATS |")
print("|---|---|---|---|")
lr = l["relay"]["events_per_s"]
lc = l["catchup"]["seconds"]
if n:
    nr = n["relay"]["events_per_s"]; nc = n["catchup"]["seconds"]
    print(f"| relay, events/s end to end | {lr:,.0f} | {nr:,.0f} | {lr/nr:.2f}x |")
    speed = f"liandong {nc/lc:.2f}x as fast" if lc <= nc else f"NATS {lc/nc:.2f}x as fast"
    print(f"| catch-up of {l['catchup']['events']:,} events, s | {lc:.2f} | {nc:.2f} | {speed} |")
    print(f"({n['nats_server']})")
else:
    print(f"| relay, events/s end to end | {lr:,.0f} | skipped | |")
    print(f"| catch-up of {l['catchup']['events']:,} events, s | {lc:.2f} | skipped | |")
PY
