#!/usr/bin/env bash
# Checks deploy/liandong.example.toml against the real config loader:
#  1. it has exactly the keys that `liandong init` writes (so a key added to or renamed in
#     src/config.rs without updating the example is caught), each with a comment above it;
#  2. `liandong serve` starts with it as its liandong.toml, next to a real node.key and TLS
#     files from `liandong certs` (on ports 127.0.0.1:0, so nothing else is disturbed), and
#     stops on SIGTERM.
# Uses $LIANDONG_BIN, else target/release/liandong, else target/debug/liandong.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
EXAMPLE="$HERE/liandong.example.toml"
BIN="${LIANDONG_BIN:-$REPO/target/release/liandong}"
[[ -x "$BIN" ]] || BIN="$REPO/target/debug/liandong"
[[ -x "$BIN" ]] || {
  echo "check-example-config: no liandong binary; cargo build first" >&2
  exit 1
}

TMP="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# A real node folder (key, store) of a non-root node, so that init writes every key.
"$BIN" init --dir "$TMP/node" --code 620123 --name 榆中县政协 \
  --parent-code 620100 --parent-address http://127.0.0.1:7400 --root-code 620000 \
  --root-key d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a >/dev/null

python3 - "$EXAMPLE" "$TMP/node/liandong.toml" <<'EOF'
import sys, tomllib
example_path, written_path = sys.argv[1:]
def keys(d, prefix=""):
    out = set()
    for k, v in d.items():
        if isinstance(v, dict):
            out |= keys(v, f"{prefix}{k}.")
        else:
            out.add(prefix + k)
    return out
with open(example_path, "rb") as f:
    example = keys(tomllib.load(f))
with open(written_path, "rb") as f:
    written = keys(tomllib.load(f))
problems = []
if written - example:
    problems.append(f"keys that liandong writes but the example lacks: {sorted(written - example)}")
if example - written:
    problems.append(f"keys in the example that liandong does not write: {sorted(example - written)}")
lines = open(example_path, encoding="utf-8").read().splitlines()
for i, line in enumerate(lines):
    s = line.strip()
    if s and not s.startswith("#") and not s.startswith("[") and "=" in s:
        if i == 0 or not lines[i - 1].strip().startswith("#"):
            problems.append(f"line {i + 1} ({s.split('=')[0].strip()}) has no comment above it")
if problems:
    print("check-example-config: " + "\n  ".join(["the example config is out of date:"] + problems), file=sys.stderr)
    sys.exit(1)
print(f"check-example-config: {len(example)} keys, all documented, the same as liandong writes")
EOF

cp "$EXAMPLE" "$TMP/node/liandong.toml"
# Its TLS files where [tls] expects them, from a CA made for this check.
"$BIN" certs ca --dir "$TMP/ca" >/dev/null
"$BIN" certs issue --ca "$TMP/ca" --code 620123 --out "$TMP/node" >/dev/null
# The example's parent is not running: the link retries in the background, which is fine here.
NO_COLOR=1 "$BIN" serve --config "$TMP/node/liandong.toml" --listen 127.0.0.1:0 \
  --api-listen 127.0.0.1:0 >"$TMP/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  grep -q ' serving: ' "$TMP/serve.log" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q ' serving: ' "$TMP/serve.log"; then
  echo "check-example-config: liandong serve did not start with the example config:" >&2
  cat "$TMP/serve.log" >&2
  exit 1
fi
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
if ((rc != 0)); then
  echo "check-example-config: liandong serve exited $rc on SIGTERM:" >&2
  cat "$TMP/serve.log" >&2
  exit 1
fi
echo "check-example-config: liandong serve started with the example config and stopped cleanly"
