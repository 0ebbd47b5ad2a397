#!/usr/bin/env bash
# The web console in a real browser: starts `liandong demo --keep-running` (seven nodes on
# 127.0.0.1, a finished round plus a topic still in progress with one county overdue), loads
# console pages with headless Chromium, checks what the DOM shows, and takes a screenshot.
#
#   tests/console/check.sh                 screenshot to target/console/console.png
#   CONSOLE_SCREENSHOT=docs/console.png tests/console/check.sh   refresh the one in docs/
#
# Chromium and CJK fonts come from .ci/install-chromium.sh when missing. If they cannot be
# installed, the check prints "SKIPPED" with the reason and exits 0, unless
# LIANDONG_REQUIRE_BROWSER=1, when it fails. Uses $LIANDONG_BIN, else target/debug/liandong
# (built if missing).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SHOT="${CONSOLE_SCREENSHOT:-$REPO/target/console/console.png}"
[[ "$SHOT" == /* ]] || SHOT="$PWD/$SHOT"
started=$SECONDS

say() { echo "console-check: $*"; }
fail() {
  echo "console-check: FAIL: $*" >&2
  exit 1
}

chromium_bin() { command -v chromium || command -v chromium-browser || true; }
if [[ -z "$(chromium_bin)" ]] || ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  say "chromium or CJK fonts missing: running .ci/install-chromium.sh"
  if ! "$REPO/.ci/install-chromium.sh"; then
    if [[ "${LIANDONG_REQUIRE_BROWSER:-0}" == 1 ]]; then
      fail "chromium could not be installed and LIANDONG_REQUIRE_BROWSER=1"
    fi
    echo "console-check: SKIPPED: chromium could not be installed (see above); the console was NOT checked in a browser"
    exit 0
  fi
fi
CHROMIUM="$(chromium_bin)"
[[ -n "$CHROMIUM" ]] || fail "chromium is still missing after .ci/install-chromium.sh"
command -v python3 >/dev/null || fail "python3 is needed to read the DOM"

BIN="${LIANDONG_BIN:-$REPO/target/debug/liandong}"
if [[ ! -x "$BIN" ]]; then
  say "building $BIN"
  (cd "$REPO" && cargo build --quiet)
fi

TMP="$(mktemp -d)"
demo_pid=""
cleanup() {
  local rc=$?
  if [[ -n "$demo_pid" ]] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -TERM "$demo_pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$demo_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$demo_pid" 2>/dev/null || true
  fi
  if ((rc != 0)); then
    echo "--- demo output ---" >&2
    tail -n 30 "$TMP/demo.out" >&2 2>/dev/null || true
    echo "--- files kept in $TMP ---" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT

say "starting liandong demo --keep-running"
NO_COLOR=1 "$BIN" demo --keep-running >"$TMP/demo.out" 2>&1 &
demo_pid=$!
for _ in $(seq 600); do
  grep -q '^ready:' "$TMP/demo.out" && break
  kill -0 "$demo_pid" 2>/dev/null || fail "the demo exited before it was ready"
  sleep 0.2
done
grep -q '^ready:' "$TMP/demo.out" || fail "the demo was not ready within 120 s"

url_of() {
  local url
  url="$(awk -v c="$1" '$1 == "console" && $2 == c { print $4 }' "$TMP/demo.out")"
  [[ -n "$url" ]] || fail "the demo printed no console address for $1"
  echo "$url"
}

# chrome ARGS...: headless Chromium with a fresh profile each time (no cookie carried over).
n=0
chrome() {
  n=$((n + 1))
  timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --hide-scrollbars --user-data-dir="$TMP/profile-$n" "$@" 2>>"$TMP/chromium.log"
}

# check DOM_FILE SECTION_ID TEXT...: every TEXT appears in the text of <section id=SECTION_ID>
# (SECTION_ID "-" for the whole page); a TEXT starting with "!" must not appear.
check() {
  python3 - "$@" <<'EOF_PY'
import sys
from html.parser import HTMLParser

path, section, *wants = sys.argv[1:]

class Sections(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.text, self.all = [], {}, []
    # Only <section> is tracked (the console's sections do not nest).
    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.stack.append(dict(attrs).get("id") or "")
    def handle_endtag(self, tag):
        if tag == "section" and self.stack:
            self.stack.pop()
    def handle_data(self, data):
        self.all.append(data)
        for s in self.stack:
            if s:
                self.text.setdefault(s, []).append(data)

p = Sections()
p.feed(open(path, encoding="utf-8").read())
text = "".join(p.all) if section == "-" else "".join(p.text.get(section, []))
if section != "-" and section not in p.text:
    sys.exit(f"{path}: no <section id={section!r}>")
bad = [w for w in wants if (w[1:] in text if w.startswith("!") else w not in text)]
if bad:
    sys.exit(f"{path}, section {section}: " + "; ".join(
        (f"shows {w[1:]!r}, which it must not" if w.startswith("!") else f"does not show {w!r}") for w in bad))
EOF_PY
}

province="$(url_of 620000)"
city="$(url_of 620100)"
county="$(url_of 620123)"
base="${county%%\?*}"

say "without the token: the refusal page"
chrome --dump-dom "$base" >"$TMP/none.html"
check "$TMP/none.html" - "需要访问令牌" "?token=" "!榆中县" || fail "the console answered without a token"
chrome --dump-dom "${base}?token=0000000000000000000000000000000000000000000000000000000000000000" >"$TMP/wrong.html"
check "$TMP/wrong.html" - "令牌不正确" "!榆中县水土保持调研" || fail "the console took a wrong token"

say "the province (620000): topic titles, the whole tree down to the counties, links to both cities"
chrome --dump-dom "$province" >"$TMP/620000.html"
grep -q '<html lang="zh-CN">' "$TMP/620000.html" || fail "the page is not lang=zh-CN"
check "$TMP/620000.html" topics "黄河流域生态保护和高质量发展专题调研" "县域医疗卫生服务能力提升对口协商" \
  "榆中县水土保持调研" "会宁县旱作农业与水土流失调研" "签收 ✓" "签收 ✗" "已通过" "总体进度" ||
  fail "the province's topics are not as expected"
check "$TMP/620000.html" overdue "榆中县乡镇卫生院服务能力调研" "榆中县政协" "天" ||
  fail "the province does not list 榆中县's overdue task"
check "$TMP/620000.html" links "下级" "兰州市政协" "白银市政协" "已连接" || fail "the province's links are not shown"
check "$TMP/620000.html" quarantine "隔离区为空" || fail "the province's quarantine is not empty"

say "the county (620123): its own tasks with due dates, its link up, nothing of its sibling's"
chrome --dump-dom "$county" >"$TMP/620123.html"
check "$TMP/620123.html" tasks "榆中县水土保持调研" "榆中县乡镇卫生院服务能力调研" "兰州市政协" "截止" "逾期" ||
  fail "the county's tasks are not shown"
check "$TMP/620123.html" links "上级" "兰州市政协" "已连接" || fail "the county's link to its city is not shown"
check "$TMP/620123.html" - "!永登县节水灌溉调研" "!靖远县" || fail "the county's console shows a sibling's work"

say "the city (620100): screenshot to $SHOT"
mkdir -p "$(dirname "$SHOT")"
chrome --screenshot="$SHOT" --window-size=1280,900 "$city" >/dev/null
python3 - "$SHOT" <<'EOF_PY' || fail "the screenshot is not a 1280x900 PNG"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1280, 900), f"{w}x{h}"
assert len(data) > 20_000, f"only {len(data)} bytes: a blank page?"
EOF_PY
say "passed in $((SECONDS - started)) s (screenshot $SHOT)"
