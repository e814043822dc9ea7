#!/usr/bin/env bash
# Save a screenshot of the status page (docs/status-page.png) from a real gateway in front of the
# project's fake Kiro: two accounts, three client keys, a few requests of each API, some of them
# throttled by the fake so that retries show. Needs chromium (Debian: apt-get install chromium).
#
#   scripts/status_screenshot.sh [OUTPUT.png]
#
# GATEWAY_BIN / FAKE_BIN pick the binaries (default: debug builds, built here).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/docs/status-page.png}
target=${CARGO_TARGET_DIR:-$root/target}
if [[ -z "${GATEWAY_BIN:-}" || -z "${FAKE_BIN:-}" ]]; then
    (cd "$root" && cargo build -q --bin kiro-gateway --example fake_kiro)
fi
gateway_bin=${GATEWAY_BIN:-$target/debug/kiro-gateway}
fake_bin=${FAKE_BIN:-$target/debug/examples/fake_kiro}
chromium=$(command -v chromium || command -v chromium-browser || true)
[[ -n "$chromium" ]] || { echo "chromium is not installed" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

fake_port=$(free_port)
# One reply in five is a fault (throttle, 500, cut stream, …): the page shows retries and errors.
"$fake_bin" --port "$fake_port" --faults 20 --seed 7 --words 12 >"$work/fake.log" 2>&1 &
pids+=($!)

cat >"$work/accounts.json" <<'EOF'
[
  {"name": "work", "api_key": "ksk_screenshot_work", "priority": 0},
  {"name": "spare", "api_key": "ksk_screenshot_spare", "priority": 1}
]
EOF
cat >"$work/keys.json" <<'EOF'
[
  {"name": "alice", "key": "alice-screenshot-key", "daily_credits": 20},
  {"name": "ci-agent", "key": "ci-screenshot-key", "models": ["claude-sonnet-4.5", "claude-haiku-4.5"]}
]
EOF

key=screenshot-admin-key-0001
gw_port=$(free_port)
env -i PATH="$PATH" HOME="$work" \
    PROXY_API_KEY="$key" SERVER_HOST=127.0.0.1 SERVER_PORT="$gw_port" \
    KIRO_API_URL="http://127.0.0.1:$fake_port" KIRO_MANAGEMENT_URL="http://127.0.0.1:$fake_port" \
    KIRO_ACCOUNTS_FILE="$work/accounts.json" PROXY_API_KEYS_FILE="$work/keys.json" \
    STATE_DIR="$work/state" KIRO_IDE_VERSION=off BASE_RETRY_DELAY=0.01 \
    "$gateway_bin" >"$work/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$gw_port/health" >/dev/null && break
    sleep 0.1
done

request() { # key path body
    curl -s -o /dev/null -H "authorization: Bearer $1" -H 'content-type: application/json' \
        "http://127.0.0.1:$gw_port$2" -d "$3" || true
}
chat='{"model": "claude-sonnet-4.5", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}'
haiku='{"model": "claude-haiku-4.5", "messages": [{"role": "user", "content": "Hi"}]}'
messages='{"model": "claude-sonnet-4-5", "max_tokens": 200, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}'
responses='{"model": "claude-sonnet-4.5", "input": "Hi"}'
for i in $(seq 4); do
    request alice-screenshot-key /v1/chat/completions "$chat"
    request ci-screenshot-key /v1/messages "$messages"
    request "$key" /v1/responses "$responses"
    request ci-screenshot-key /v1/chat/completions "$haiku"
done
# A model outside ci-agent's list: refused by the gateway, listed as an error.
request ci-screenshot-key /v1/chat/completions '{"model": "claude-opus-4.5", "messages": [{"role": "user", "content": "Hi"}]}'

mkdir -p "$(dirname "$out")"
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$work/chromium" --window-size=1280,1500 \
    --screenshot="$out" "http://admin:$key@127.0.0.1:$gw_port/" >/dev/null 2>&1
echo "saved $out"
