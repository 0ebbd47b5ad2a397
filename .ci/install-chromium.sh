#!/usr/bin/env bash
# Installs headless Chromium and the CJK fonts the console's screenshots need (Debian's
# packages: chromium, fonts-noto-cjk). Idempotent: does nothing when both are there.
# Exit status: 0 when chromium is usable afterwards; 1 (with the reason on stderr) when it
# could not be installed (no apt-get, not root, no package mirror reachable).
set -euo pipefail

have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
have_cjk_fonts() { fc-list :lang=zh 2>/dev/null | grep -q .; }

if have_chromium && have_cjk_fonts; then
  echo "install-chromium: chromium and CJK fonts are already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get on this machine: install chromium and a CJK font (fonts-noto-cjk) by hand" >&2
  exit 1
fi
SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "install-chromium: not root and no password-less sudo: run 'apt-get install chromium fonts-noto-cjk' as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: apt-get update"
"${SUDO[@]}" apt-get update -qq >/dev/null || {
  echo "install-chromium: apt-get update failed (is a Debian mirror reachable?)" >&2
  exit 1
}
echo "install-chromium: apt-get install chromium fonts-noto-cjk (a few minutes the first time)"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk fontconfig >/dev/null || {
  echo "install-chromium: apt-get install chromium fonts-noto-cjk failed" >&2
  exit 1
}
have_chromium || {
  echo "install-chromium: chromium is still missing after apt-get install" >&2
  exit 1
}
echo "install-chromium: installed $(chromium --version 2>/dev/null || echo chromium)"
