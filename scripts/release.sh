#!/usr/bin/env bash
# Build static, stripped release binaries of kiro-gateway for x86_64 and aarch64 Linux (musl), copy
# them to dist/, print their size and SHA-256, check that they are static, and with --check run each
# one (--version, a served /health, a readable error for a port in use); aarch64 runs under
# qemu-aarch64.
#
# On Debian, as root, it installs what is missing: musl-tools (x86_64), and for aarch64 the arm64
# foreign architecture, gcc-aarch64-linux-gnu and musl-dev:arm64 (whose aarch64-linux-musl-gcc
# wrapper is both the linker and the C compiler: the cc crate derives the C compiler from the
# linker's name, and aarch64-linux-gnu-gcc alone fails to link the bundled SQLite with undefined
# open64/stat64), qemu-user for --check, and the rustup targets. Nothing is asked interactively.
#
# Usage: scripts/release.sh [--targets x86_64,aarch64] [--check] [--no-install]
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

targets="x86_64,aarch64"
check=0
install=1
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) targets="${2:?--targets needs a list such as x86_64,aarch64}"; shift 2 ;;
    --targets=*) targets="${1#--targets=}"; shift ;;
    --check) check=1; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "release.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
root=$(pwd)
# Budget from issue 8: the x86_64 binary stays at or under 5 MiB.
size_budget=$((5 * 1024 * 1024))

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'release.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------

apt_updated=0
apt_install() {
  [ "$install" = 1 ] || die "missing: $* (run as root without --no-install, or install them)"
  [ "$(id -u)" = 0 ] || die "missing: $* (run as root to install them with apt-get)"
  command -v apt-get >/dev/null || die "missing: $* and no apt-get here: install them by hand"
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

rust_target_add() {
  local t="$1"
  if ! rustup target list --installed | grep -qx "$t"; then
    [ "$install" = 1 ] || die "missing rust target $t (rustup target add $t)"
    say "rustup target add $t"
    rustup target add "$t" >/dev/null
  fi
}

prepare_x86_64() {
  command -v x86_64-linux-musl-gcc >/dev/null || apt_install musl-tools
  rust_target_add x86_64-unknown-linux-musl
}

prepare_aarch64() {
  local need=()
  if command -v dpkg >/dev/null && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [ "$install" = 1 ] && [ "$(id -u)" = 0 ] || die "missing: the arm64 dpkg architecture"
    say "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
    apt_updated=0 # the arm64 package lists are new
  fi
  command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
  command -v aarch64-linux-musl-gcc >/dev/null || need+=(musl-dev:arm64)
  if [ "$check" = 1 ] && ! command -v qemu-aarch64 >/dev/null; then need+=(qemu-user); fi
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
  command -v aarch64-linux-musl-gcc >/dev/null || die "aarch64-linux-musl-gcc not found after installing musl-dev:arm64"
  rust_target_add aarch64-unknown-linux-musl
}

# ---------------------------------------------------------------------------------------------
# Build, copy, describe
# ---------------------------------------------------------------------------------------------

triple_of() {
  case "$1" in
    x86_64) echo x86_64-unknown-linux-musl ;;
    aarch64) echo aarch64-unknown-linux-musl ;;
    *) die "unknown target '$1' (x86_64 or aarch64)" ;;
  esac
}

build() {
  local arch="$1" triple
  triple=$(triple_of "$arch")
  say "cargo build --release --locked --target $triple"
  if [ "$arch" = aarch64 ]; then
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-musl-gcc \
      CC_aarch64_unknown_linux_musl=aarch64-linux-musl-gcc \
      AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar \
      cargo build --release --locked --target "$triple" --bin kiro-gateway
  else
    CC_x86_64_unknown_linux_musl=x86_64-linux-musl-gcc \
      cargo build --release --locked --target "$triple" --bin kiro-gateway
  fi
  mkdir -p dist
  cp "target/$triple/release/kiro-gateway" "dist/kiro-gateway-$triple"
}

# Static: no program interpreter and no NEEDED shared library (static-pie still has a dynamic
# section, for its own relocations, but needs nothing).
check_static() {
  local bin="$1"
  if command -v readelf >/dev/null; then
    if readelf -lW "$bin" | grep -q 'INTERP'; then die "$bin has a program interpreter: not static"; fi
    if readelf -dW "$bin" | grep -q '(NEEDED)'; then
      die "$bin needs shared libraries: $(readelf -dW "$bin" | grep '(NEEDED)' | tr -s ' ' | tr '\n' ' ')"
    fi
  elif command -v file >/dev/null; then
    file -b "$bin" | grep -Eq 'statically linked|static-pie linked' || die "$bin is not static: $(file -b "$bin")"
  else
    die "neither readelf nor file is installed: cannot check $bin"
  fi
}

describe() {
  local arch="$1" triple bin size
  triple=$(triple_of "$arch")
  bin="dist/kiro-gateway-$triple"
  check_static "$bin"
  size=$(stat -c %s "$bin")
  printf '%-46s %9d bytes (%s MiB)  static\n' "$bin" "$size" \
    "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')"
  if [ "$arch" = x86_64 ] && [ "$size" -gt "$size_budget" ]; then
    die "$bin is $size bytes, over the 5 MiB budget of issue 8"
  fi
}

# ---------------------------------------------------------------------------------------------
# --check: run the binaries
# ---------------------------------------------------------------------------------------------

children=()
scratch=""
cleanup() {
  local p
  for p in "${children[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -z "$scratch" ] || rm -rf "$scratch"
}
trap cleanup EXIT

# run_env RUNNER... -- BIN ARGS: the binary with a clean environment that points every Kiro URL at
# 127.0.0.1:9 (nothing listens there: the background model fetch fails, which is fine).
gateway_env=(
  "PATH=/usr/bin:/bin"
  "HOME=/nonexistent"
  "SERVER_HOST=127.0.0.1"
  "PROXY_API_KEY=release-check-key-0123456789"
  "REFRESH_TOKEN=release-check-refresh-token"
  "KIRO_API_URL=http://127.0.0.1:9"
  "KIRO_MANAGEMENT_URL=http://127.0.0.1:9"
  "KIRO_DESKTOP_AUTH_URL=http://127.0.0.1:9/refreshToken"
  "KIRO_SSO_OIDC_URL=http://127.0.0.1:9/token"
  "LOG_LEVEL=INFO"
)

# GET http://ADDR/health with bash's /dev/tcp; prints the status code.
http_status() {
  local host="${1%:*}" port="${1##*:}" line
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
  IFS= read -r -t 10 line <&3 || line=""
  exec 3<&- 3>&-
  line=${line%$'\r'}
  echo "${line#* }" | cut -d' ' -f1
}

run_check() {
  local arch="$1" triple bin runner=() version log pid addr="" i status
  triple=$(triple_of "$arch")
  bin="$root/dist/kiro-gateway-$triple"
  if [ "$arch" = aarch64 ]; then
    command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 not found (Debian package qemu-user)"
    runner=(qemu-aarch64)
  fi
  [ -n "$scratch" ] || scratch=$(mktemp -d)
  say "check $triple${runner:+ under ${runner[*]}}"

  version=$(cd "$scratch" && env -i "${gateway_env[@]}" "${runner[@]}" "$bin" --version)
  case "$version" in
    kiro-gateway\ *) echo "  --version: $version" ;;
    *) die "$bin --version printed '$version'" ;;
  esac

  # Start on port 0 in an empty directory (no .env), read the port from the stderr line.
  log="$scratch/$arch.log"
  (cd "$scratch" && exec env -i "${gateway_env[@]}" SERVER_PORT=0 "${runner[@]}" "$bin") 2>"$log" >/dev/null &
  pid=$!
  children+=("$pid")
  for i in $(seq 1 300); do
    addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$log" | head -n1)
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "$triple exited before listening"; }
    sleep 0.1
  done
  [ -n "$addr" ] || { cat "$log" >&2; die "$triple did not print 'listening on' within 30 s"; }
  status=$(http_status "$addr" /health) || status=""
  [ "$status" = 200 ] || { cat "$log" >&2; die "$triple GET /health answered '$status', expected 200"; }
  echo "  GET http://$addr/health: 200"

  # A second instance on the same port: one readable line, a non-zero exit (not "Aborted").
  local port="${addr##*:}" rc=0 err
  err=$(cd "$scratch" && env -i "${gateway_env[@]}" SERVER_PORT="$port" timeout 60 "${runner[@]}" "$bin" 2>&1 >/dev/null) || rc=$?
  if [ "$rc" = 0 ] || [ "$rc" = 124 ] || [ "$rc" -ge 128 ]; then
    die "$triple with port $port in use: exit $rc, expected a clean non-zero exit; it printed: $err"
  fi
  # Timestamped log lines may come first; the error itself is one plain line naming the port.
  local plain
  plain=$(printf '%s\n' "$err" | grep -Ev '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' | grep . || true)
  if [ "$(printf '%s' "$plain" | grep -c .)" -ne 1 ] || ! printf '%s' "$plain" | grep -q "$port"; then
    die "$triple with port $port in use should print one line naming the port; it printed: $err"
  fi
  echo "  port in use: exit $rc, '$plain'"

  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------

IFS=',' read -r -a arches <<<"$targets"
[ ${#arches[@]} -gt 0 ] || die "--targets is empty"
for a in "${arches[@]}"; do triple_of "$a" >/dev/null; done

for a in "${arches[@]}"; do "prepare_$a"; done

if cargo tree --locked -e normal -i aws-lc-rs >/dev/null 2>&1; then
  die "aws-lc-rs is in the dependency tree (cargo tree -i aws-lc-rs): it needs cmake and a C toolchain per target; keep ureq on ring"
fi

for a in "${arches[@]}"; do build "$a"; done

echo
for a in "${arches[@]}"; do describe "$a"; done
files=()
for a in "${arches[@]}"; do files+=("kiro-gateway-$(triple_of "$a")"); done
(cd dist && sha256sum "${files[@]}" | tee SHA256SUMS)

if [ "$check" = 1 ]; then
  echo
  for a in "${arches[@]}"; do run_check "$a"; done
  say "all checks passed"
fi
