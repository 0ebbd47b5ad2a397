#!/usr/bin/env bash
# Builds the liandong container image locally, FROM scratch, without any registry.
#
#   deploy/docker/build-image.sh            cargo build --release, then the image liandong:local
#   LIANDONG_BIN=target/debug/liandong deploy/docker/build-image.sh   use that binary instead
#
# The image holds only: the binary (/usr/local/bin/liandong), exactly the shared libraries
# `ldd` lists for it and the dynamic loader, a minimal /etc (passwd and group with the
# unprivileged user liandong, uid/gid 10001; nsswitch.conf; an empty hosts file is replaced
# by Docker's), and /data, the node's folder, owned by that user. See deploy/docker/README.md
# and docs/architecture.md ("The container image").
#
# Environment:
#   LIANDONG_BIN     the binary to package (default: build target/release/liandong)
#   LIANDONG_IMAGE   the image tag (default liandong:local)
#   LIANDONG_STRIP   1 (default): strip debug symbols from the packaged copy; 0: keep them
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
IMAGE="${LIANDONG_IMAGE:-liandong:local}"
STRIP="${LIANDONG_STRIP:-1}"
# The unprivileged user the node runs as inside the container.
UID_GID=10001

say() { printf '[%s] build-image: %s\n' "$(date +%H:%M:%S)" "$*"; }
die() {
  printf 'build-image.sh: %s\n' "$*" >&2
  exit 1
}

command -v docker >/dev/null || die "docker is not installed"
command -v ldd >/dev/null || die "ldd is not installed (package libc-bin)"

if [[ -n "${LIANDONG_BIN:-}" ]]; then
  BIN="$LIANDONG_BIN"
  [[ "$BIN" == /* ]] || BIN="$PWD/$BIN"
  [[ -x "$BIN" ]] || die "LIANDONG_BIN=$LIANDONG_BIN is not an executable file"
  say "packaging $BIN (from LIANDONG_BIN)"
else
  say "cargo build --release --locked"
  (cd "$REPO" && cargo build --release --locked)
  BIN="$REPO/target/release/liandong"
fi

# The build context: a folder with the Dockerfile and rootfs/, made fresh each time.
CTX="$(mktemp -d "${TMPDIR:-/tmp}/liandong-image.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
ROOTFS="$CTX/rootfs"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$CTX/data"
chmod 1777 "$ROOTFS/tmp"

if [[ "$STRIP" == 1 ]] && command -v strip >/dev/null; then
  strip --strip-debug -o "$ROOTFS/usr/local/bin/liandong" "$BIN"
else
  cp "$BIN" "$ROOTFS/usr/local/bin/liandong"
fi
chmod 0755 "$ROOTFS/usr/local/bin/liandong"

# Every library ldd resolves, at the path it resolves it to (symlinks followed, so the file
# itself is copied), and the loader at the path the binary names in its PT_INTERP.
# ldd lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2
# (0x...)", "linux-vdso.so.1 (0x...)" (in the kernel: nothing to copy).
ldd_out="$(ldd "$BIN" 2>&1)" || die "ldd $BIN failed: $ldd_out"
if grep -q 'not a dynamic executable\|statically linked' <<<"$ldd_out"; then
  die "$BIN is statically linked: this script packages a dynamically linked glibc binary"
fi
if grep -q 'not found' <<<"$ldd_out"; then
  die "ldd cannot resolve every library of $BIN:"$'\n'"$ldd_out"
fi
libs=()
while read -r line; do
  case "$line" in
    *'=>'*) libs+=("$(awk '{print $3}' <<<"$line")") ;;
    /*) libs+=("$(awk '{print $1}' <<<"$line")") ;;
    *) ;; # linux-vdso.so.1 and the like
  esac
done <<<"$ldd_out"
((${#libs[@]} > 0)) || die "ldd listed no library for $BIN:"$'\n'"$ldd_out"
for lib in "${libs[@]}"; do
  [[ -e "$lib" ]] || die "ldd named $lib, which does not exist"
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
done
say "libraries (from ldd): ${libs[*]}"

# A minimal /etc: the unprivileged user, and name resolution through /etc/hosts and DNS
# (Docker mounts its own hosts and resolv.conf over these at run time).
cat >"$ROOTFS/etc/passwd" <<EOF
root:x:0:0:root:/nonexistent:/sbin/nologin
liandong:x:$UID_GID:$UID_GID:liandong node:/data:/sbin/nologin
EOF
cat >"$ROOTFS/etc/group" <<EOF
root:x:0:
liandong:x:$UID_GID:
EOF
cat >"$ROOTFS/etc/nsswitch.conf" <<'EOF'
passwd: files
group:  files
hosts:  files dns
EOF
: >"$ROOTFS/etc/hosts"

version="$("$ROOTFS/usr/local/bin/liandong" --version 2>/dev/null | awk '{print $2}')" ||
  die "the packaged binary does not run here: $ROOTFS/usr/local/bin/liandong --version"

cp "$HERE/Dockerfile" "$CTX/Dockerfile"
say "docker build -t $IMAGE (liandong $version)"
# (The legacy builder prints a deprecation notice on stderr: shown only if the build fails.)
if ! docker build --quiet --label "org.opencontainers.image.version=$version" \
  --build-arg "UID_GID=$UID_GID" -t "$IMAGE" "$CTX" >"$CTX/build.log" 2>&1; then
  cat "$CTX/build.log" >&2
  die "docker build failed"
fi
# The image must run: --version as the unprivileged user, with only what we put in.
out="$(docker run --rm "$IMAGE" --version 2>&1)" || die "the image does not run: $out"
say "built $IMAGE: $out, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"
