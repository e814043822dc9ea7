#!/usr/bin/env bash
# End-to-end runs of real agent clients through the gateway against the fake Kiro.
#
# The fake plays a coding model (`fake_kiro --script agent`, see tests/fake_kiro/agent_script.rs)
# that drives each client's own tools: write notes.txt, edit it, run `wc -l notes.txt > count.txt`,
# then answer. The script checks the files on disk afterwards. Nothing leaves 127.0.0.1: every
# client gets a throw-away HOME whose config points it at the gateway, with a dummy key.
#
# Clients (each skipped with a note when it cannot be found or installed):
#   claude-code   `claude -p` (npm @anthropic-ai/claude-code), default model and tools; then the
#                 interactive `claude` in a pseudo-terminal (`script`), stopped once the task is done;
#                 then `claude -p --mcp-config` with an MCP tool whose name is over 64 characters
#   codex         `codex exec` (npm @openai/codex), default model, a provider block with
#                 wire_api = "responses"; again with -m gpt-5.5 (apply_patch tool) and with
#                 -m claude-sonnet-4.5 (a model Codex does not know: exec_command only); then
#                 -m gpt-5.5 with an MCP server, whose tool it finds through its tool_search
#                 (both: a web search task, served through the fake's /mcp: see run_claude_search)
#   opencode      `opencode run` (npm opencode-ai), provider @ai-sdk/openai-compatible
#   aider         `aider --message` (pip aider-chat), whole-file edit format: writes the file only
#   cline         `cline "…"` (npm cline, the CLI of Cline 3), provider openai-compatible (Chat
#                 Completions), then openai-native with the same base URL (Responses API)
#   continue      `cn -p --auto` (npm @continuedev/cli), a config.yaml model with provider openai,
#                 then one with provider anthropic (Messages API)
#   kilo          `kilo run` (npm @kilocode/cli 7.7.7, an opencode fork), provider
#                 @ai-sdk/openai-compatible; installed on its own (its newest release, 7.8.1, lacks
#                 the Linux binary packages it names)
#
# Then each of Claude Code and Codex meets a spent Kiro quota (the fake answers 429
# MONTHLY_REQUEST_COUNT): it must stop after one request and say so ("429" / "Quota exceeded").
#
# Usage: scripts/e2e_clients.sh [--no-build] [--no-install] [--debug] [client ...]
# (client: claude-code, codex, opencode, aider, cline, continue, kilo, or search: only the two web
# search runs)
# Clients are installed into $E2E_CLIENTS_DIR (default ~/.cache/kiro-gateway-e2e) when they are
# not on PATH. Exit status 0 when every client that ran passed.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CLIENTS_DIR=${E2E_CLIENTS_DIR:-$HOME/.cache/kiro-gateway-e2e}
KEY=e2e-proxy-key-0123456789
BUILD=1
INSTALL=1
PROFILE=release
WANT=()
for arg in "$@"; do
    case $arg in
        --no-build) BUILD=0 ;;
        --no-install) INSTALL=0 ;;
        --debug) PROFILE=debug ;;
        -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
        *) WANT+=("$arg") ;;
    esac
done
[ ${#WANT[@]} -eq 0 ] && WANT=(claude-code codex opencode aider cline continue kilo)

if [ $BUILD = 1 ]; then
    PROFILE_FLAG=$([ $PROFILE = release ] && echo --release)
    (cd "$ROOT" && cargo build $PROFILE_FLAG --bin kiro-gateway --example fake_kiro) || exit 2
fi
GATEWAY=$TARGET/$PROFILE/kiro-gateway
FAKE=$TARGET/$PROFILE/examples/fake_kiro
[ -x "$GATEWAY" ] && [ -x "$FAKE" ] || { echo "build first: $GATEWAY, $FAKE"; exit 2; }

WORK=$(mktemp -d /tmp/kgw-e2e-clients.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

FAKE_PORT=$(free_port)
"$FAKE" --port "$FAKE_PORT" --script agent >"$WORK/fake.log" 2>&1 &
PIDS+=($!)
wait_port "$FAKE_PORT" || { echo "fake Kiro did not start"; cat "$WORK/fake.log"; exit 2; }
FAKE_URL=http://127.0.0.1:$FAKE_PORT

GW_PORT=$(free_port)
mkdir -p "$WORK/gateway"
(cd "$WORK/gateway" && exec env -i PATH="$PATH" HOME="$WORK/gateway" \
    PROXY_API_KEY=$KEY SERVER_HOST=127.0.0.1 SERVER_PORT="$GW_PORT" \
    KIRO_API_URL="$FAKE_URL" KIRO_MANAGEMENT_URL="$FAKE_URL" \
    KIRO_DESKTOP_AUTH_URL="$FAKE_URL/refreshToken" KIRO_SSO_OIDC_URL="$FAKE_URL/token" \
    REFRESH_TOKEN=e2e-refresh-token LOG_LEVEL=INFO KIRO_IDE_VERSION=off \
    "$GATEWAY" >"$WORK/gateway.log" 2>&1) &
PIDS+=($!)
wait_port "$GW_PORT" || { echo "gateway did not start"; cat "$WORK/gateway.log"; exit 2; }
BASE=http://127.0.0.1:$GW_PORT

# ---- finding and installing the clients ---------------------------------------------------------

export PATH="$CLIENTS_DIR/npm/node_modules/.bin:$CLIENTS_DIR/npm-kilo/node_modules/.bin:$CLIENTS_DIR/venv/bin:$PATH"

npm_client() { # command package
    command -v "$1" >/dev/null && return 0
    [ $INSTALL = 1 ] && command -v npm >/dev/null || return 1
    mkdir -p "$CLIENTS_DIR/npm"
    (cd "$CLIENTS_DIR/npm" && npm i --no-fund --no-audit "$2" >/dev/null 2>&1)
    command -v "$1" >/dev/null
}

pip_client() { # command package
    command -v "$1" >/dev/null && return 0
    [ $INSTALL = 1 ] || return 1
    [ -x "$CLIENTS_DIR/venv/bin/pip" ] || python3 -m venv "$CLIENTS_DIR/venv" || return 1
    "$CLIENTS_DIR/venv/bin/pip" install -q "$2" >/dev/null 2>&1
    command -v "$1" >/dev/null
}

# ---- checks -------------------------------------------------------------------------------------

RESULTS=()
FAILED=0

check() { # name dir log full(1: write+edit+shell, 0: write only)
    local name=$1 dir=$2 log=$3 full=$4 want got problems=()
    want=$([ "$full" = 1 ] && echo "first line, edited" || echo "first line")
    got=$(cat "$dir/notes.txt" 2>/dev/null)
    [ "$got" = "$want" ] || problems+=("notes.txt is '${got:-<missing>}', want '$want'")
    if [ "$full" = 1 ]; then
        grep -q "^1 notes.txt$" "$dir/count.txt" 2>/dev/null \
            || problems+=("count.txt is '$(cat "$dir/count.txt" 2>/dev/null || echo '<missing>')'")
        grep -q "E2E done" "$log" || problems+=("no final answer in the output")
    fi
    if [ ${#problems[@]} -eq 0 ]; then
        RESULTS+=("PASS  $name")
    else
        FAILED=1
        local error
        error=$(grep -m1 -E "API Error|ERROR|Error:" "$log" | cut -c1-240)
        [ -n "$error" ] && problems+=("first error: $error")
        RESULTS+=("FAIL  $name: $(IFS=';'; echo "${problems[*]}")")
        echo "---- $name output (last 15 lines) ----"
        tail -n 15 "$log"
    fi
}

prompt() { echo "Run the E2E plan in E2E_DIR=$1 : write notes.txt, edit it, then count its lines."; }

new_dir() { mkdir -p "$WORK/$1/home" "$WORK/$1/project"; echo "$WORK/$1"; }

run_claude() {
    npm_client claude @anthropic-ai/claude-code || { RESULTS+=("SKIP  claude-code: not installed"); return; }
    local d; d=$(new_dir claude-code)
    (cd "$d/project" && HOME="$d/home" IS_SANDBOX=1 ANTHROPIC_BASE_URL=$BASE ANTHROPIC_API_KEY=$KEY \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1 \
        timeout 300 claude -p --dangerously-skip-permissions "$(prompt "$d/project")") >"$d/out.log" 2>&1
    check "claude-code (claude -p, $(claude --version 2>/dev/null | head -1))" "$d/project" "$d/out.log" 1
}

# The interactive TUI, in a pseudo-terminal: onboarding and the folder trust are pre-accepted in its
# config, the key goes as ANTHROPIC_AUTH_TOKEN (an ANTHROPIC_API_KEY would be asked about first).
run_claude_interactive() {
    command -v claude >/dev/null && command -v script >/dev/null \
        || { RESULTS+=("SKIP  claude-code interactive: needs claude and script"); return; }
    local d; d=$(new_dir claude-code-interactive)
    cat >"$d/home/.claude.json" <<EOF
{"hasCompletedOnboarding": true, "theme": "dark", "bypassPermissionsModeAccepted": true,
 "projects": {"$d/project": {"hasTrustDialogAccepted": true, "hasCompletedProjectOnboarding": true}}}
EOF
    local cmd pid
    cmd="claude --dangerously-skip-permissions '$(prompt "$d/project")'"
    (cd "$d/project" && HOME="$d/home" IS_SANDBOX=1 ANTHROPIC_BASE_URL=$BASE ANTHROPIC_AUTH_TOKEN=$KEY \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 TERM=xterm-256color \
        exec timeout 300 script -qfc "$cmd" "$d/tty.log") </dev/null >/dev/null 2>&1 &
    pid=$!
    # The TUI draws with escape sequences and drops spaces: compare without them.
    for _ in $(seq 240); do
        sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' "$d/tty.log" 2>/dev/null | tr -d ' ' | grep -q "E2Edone" && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.5
    done
    sleep 1
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
    sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' "$d/tty.log" | tr -d ' ' | sed 's/E2Edone/E2E done/' >"$d/out.log"
    check "claude-code interactive (claude in a terminal)" "$d/project" "$d/out.log" 1
}

run_codex() { # label [codex args...]
    npm_client codex @openai/codex || { RESULTS+=("SKIP  codex: not installed"); return; }
    local label=$1; shift
    local d; d=$(new_dir "codex-$label")
    mkdir -p "$d/home/.codex"
    cat >"$d/home/.codex/config.toml" <<EOF
model_provider = "kiro"

[model_providers.kiro]
name = "kiro-gateway"
base_url = "$BASE/v1"
env_key = "KIRO_GATEWAY_KEY"
wire_api = "responses"
EOF
    (cd "$d/project" && HOME="$d/home" KIRO_GATEWAY_KEY=$KEY \
        timeout 300 codex exec --skip-git-repo-check ${CODEX_SANDBOX_ARGS:--s workspace-write} "$@" \
        "$(prompt "$d/project")" </dev/null) >"$d/out.log" 2>&1
    check "codex $label (codex exec $*, $(codex --version 2>/dev/null))" "$d/project" "$d/out.log" 1
}

run_opencode() {
    npm_client opencode opencode-ai || { RESULTS+=("SKIP  opencode: not installed"); return; }
    local d; d=$(new_dir opencode)
    mkdir -p "$d/home/.config/opencode"
    cat >"$d/home/.config/opencode/opencode.json" <<EOF
{
  "\$schema": "https://opencode.ai/config.json",
  "autoupdate": false,
  "share": "disabled",
  "provider": {
    "kiro": {
      "npm": "@ai-sdk/openai-compatible",
      "name": "kiro-gateway",
      "options": {"baseURL": "$BASE/v1", "apiKey": "$KEY"},
      "models": {"claude-sonnet-4.5": {"name": "Claude Sonnet 4.5 (Kiro)", "tool_call": true}}
    }
  },
  "model": "kiro/claude-sonnet-4.5"
}
EOF
    (cd "$d/project" && HOME="$d/home" OPENCODE_DISABLE_MODELS_FETCH=1 OPENCODE_DISABLE_AUTOUPDATE=1 \
        timeout 300 opencode run "$(prompt "$d/project")" </dev/null) >"$d/out.log" 2>&1
    check "opencode (opencode run, $(opencode --version 2>/dev/null))" "$d/project" "$d/out.log" 1
}

run_aider() {
    pip_client aider aider-chat || { RESULTS+=("SKIP  aider: not installed"); return; }
    local d; d=$(new_dir aider)
    (cd "$d/project" && HOME="$d/home" LITELLM_LOCAL_MODEL_COST_MAP=True \
        timeout 300 aider --model openai/claude-sonnet-4.5 --openai-api-base "$BASE/v1" \
        --openai-api-key $KEY --message "$(prompt "$d/project")" --yes-always --no-git \
        --no-show-model-warnings --no-check-update --analytics-disable --no-pretty </dev/null) \
        >"$d/out.log" 2>&1
    check "aider ($(aider --version 2>/dev/null), whole-file format: write only)" "$d/project" "$d/out.log" 0
}

# Cline's CLI takes a base URL only for its OpenAI providers: openai-compatible speaks Chat
# Completions, openai-native the Responses API. `cline auth` only writes its config file. A run
# starts Cline's hub daemon, which outlives it: each run gets a hub port of its own (not the
# user's hub) and stops that hub afterwards.
run_cline() { # label provider
    npm_client cline cline || { RESULTS+=("SKIP  cline: not installed"); return; }
    local label=$1 provider=$2
    local d; d=$(new_dir "cline-$label")
    local hub_port; hub_port=$(free_port)
    local env=(HOME="$d/home" CLINE_NO_AUTO_UPDATE=1 DISABLE_TELEMETRY=1 CLINE_DISABLE_CLINE_PASS_NOTICE=1
        CLINE_HUB_PORT="$hub_port")
    env "${env[@]}" cline auth -p "$provider" -k $KEY -m claude-sonnet-4.5 -b "$BASE/v1" >"$d/auth.log" 2>&1
    (cd "$d/project" && env "${env[@]}" timeout 300 cline "$(prompt "$d/project")" </dev/null) \
        >"$d/out.log" 2>&1
    env "${env[@]}" timeout 30 cline hub stop >"$d/hub-stop.log" 2>&1
    check "cline $label (cline $(env "${env[@]}" cline --version 2>/dev/null), provider $provider)" \
        "$d/project" "$d/out.log" 1
}

# Continue's CLI with a local config.yaml; CONTINUE_API_BASE points its hub client at a closed
# local port, so that nothing leaves 127.0.0.1.
run_continue() { # label provider api-base
    npm_client cn @continuedev/cli || { RESULTS+=("SKIP  continue: not installed"); return; }
    local label=$1 provider=$2 api_base=$3
    local d; d=$(new_dir "continue-$label")
    mkdir -p "$d/home/.continue"
    cat >"$d/home/.continue/config.yaml" <<EOF
name: kiro-gateway
version: 1.0.0
schema: v1
models:
  - name: Claude Sonnet 4.5 (Kiro)
    provider: $provider
    model: claude-sonnet-4.5
    apiBase: $api_base
    apiKey: $KEY
EOF
    (cd "$d/project" && HOME="$d/home" CONTINUE_CLI_ENABLE_TELEMETRY=0 CONTINUE_METRICS_ENABLED=0 \
        CONTINUE_API_BASE=http://127.0.0.1:9/ timeout 300 cn --config "$d/home/.continue/config.yaml" \
        --auto -p "$(prompt "$d/project")" </dev/null) >"$d/out.log" 2>&1
    check "continue $label (cn $(HOME="$d/home" cn --version 2>/dev/null), provider $provider)" \
        "$d/project" "$d/out.log" 1
}

# Kilo's package names a binary package per platform, and npm refuses the whole install when one
# of them is missing: it goes into a directory of its own, with only this machine's binary.
kilo_client() {
    command -v kilo >/dev/null && return 0
    [ $INSTALL = 1 ] && command -v npm >/dev/null || return 1
    local arch
    case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) return 1 ;; esac
    mkdir -p "$CLIENTS_DIR/npm-kilo"
    (cd "$CLIENTS_DIR/npm-kilo" && npm i --no-fund --no-audit --omit=optional \
        @kilocode/cli@7.7.7 "@kilocode/cli-linux-$arch@7.7.7" >/dev/null 2>&1)
    command -v kilo >/dev/null
}

run_kilo() {
    kilo_client || { RESULTS+=("SKIP  kilo: not installed"); return; }
    local d; d=$(new_dir kilo)
    cat >"$d/home/kilo.json" <<EOF
{
  "autoupdate": false,
  "share": "disabled",
  "provider": {
    "kiro": {
      "npm": "@ai-sdk/openai-compatible",
      "name": "kiro-gateway",
      "options": {"baseURL": "$BASE/v1", "apiKey": "$KEY"},
      "models": {"claude-sonnet-4.5": {"name": "Claude Sonnet 4.5 (Kiro)", "tool_call": true}}
    }
  },
  "model": "kiro/claude-sonnet-4.5"
}
EOF
    (cd "$d/project" && HOME="$d/home" KILO_CONFIG="$d/home/kilo.json" KILO_DISABLE_AUTOUPDATE=1 \
        KILO_DISABLE_MODELS_FETCH=1 KILO_DISABLE_SHARE=1 KILO_DISABLE_LSP_DOWNLOAD=1 \
        KILO_DISABLE_SESSION_INGEST=1 KILO_DISABLE_PRESENCE=1 \
        timeout 300 kilo run "$(prompt "$d/project")" </dev/null) >"$d/out.log" 2>&1
    check "kilo (kilo run, $(HOME="$d/home" kilo --version 2>/dev/null | tail -1))" "$d/project" "$d/out.log" 1
}

# A stdio MCP server with one tool, "Weather report for a city."
write_mcp_server() { # path
    cat >"$1" <<'EOF'
import json, sys
TOOL = {"name": "fetch_the_current_weather_report_for_a_given_city_name",
        "description": "Weather report for a city.",
        "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("id") is None:
        continue
    method = msg.get("method")
    if method == "initialize":
        result = {"protocolVersion": msg.get("params", {}).get("protocolVersion", "2025-06-18"),
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "weather", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": [TOOL]}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": "MCP says: 18 C, sunny"}]}
    else:
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": method}}), flush=True)
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
EOF
}

# An MCP server whose tool gets a name over 64 characters in Claude Code
# (mcp__weather_service_for_long_names__fetch_the_current_weather_report_for_a_given_city_name):
# the model calls it once and answers with what it returned.
run_claude_mcp() {
    command -v claude >/dev/null || return
    local d; d=$(new_dir claude-code-mcp)
    write_mcp_server "$d/mcp_server.py"
    printf '{"mcpServers": {"weather_service_for_long_names": {"type": "stdio", "command": "python3", "args": ["%s"]}}}\n' \
        "$d/mcp_server.py" >"$d/mcp.json"
    (cd "$d/project" && HOME="$d/home" IS_SANDBOX=1 ANTHROPIC_BASE_URL=$BASE ANTHROPIC_API_KEY=$KEY \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
        timeout 300 claude -p --dangerously-skip-permissions \
        "E2E_MCP in E2E_DIR=$d/project : what is the weather in Paris?" --mcp-config "$d/mcp.json") \
        >"$d/out.log" 2>&1
    if grep -q "MCP says: 18 C, sunny" "$d/out.log"; then
        RESULTS+=("PASS  claude-code MCP tool with a 91-character name")
    else
        FAILED=1
        RESULTS+=("FAIL  claude-code MCP tool with a 91-character name: $(tail -n 2 "$d/out.log" | tr '\n' ' ' | cut -c1-240)")
    fi
}

# Codex with the same MCP server: it defers MCP tools behind its client-run tool_search (with
# -m gpt-5.5), so the model searches, then calls mcp__weather_service_for_long_names / the tool.
run_codex_mcp() {
    command -v codex >/dev/null || return
    local d; d=$(new_dir codex-mcp)
    write_mcp_server "$d/mcp_server.py"
    mkdir -p "$d/home/.codex"
    cat >"$d/home/.codex/config.toml" <<EOF
model_provider = "kiro"

[model_providers.kiro]
name = "kiro-gateway"
base_url = "$BASE/v1"
env_key = "KIRO_GATEWAY_KEY"
wire_api = "responses"

[mcp_servers.weather_service_for_long_names]
command = "python3"
args = ["$d/mcp_server.py"]
EOF
    (cd "$d/project" && HOME="$d/home" KIRO_GATEWAY_KEY=$KEY \
        timeout 300 codex exec --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox \
        -m gpt-5.5 "E2E_MCP in E2E_DIR=$d/project : what is the weather in Paris?" </dev/null) \
        >"$d/out.log" 2>&1
    if grep -q "MCP says: 18 C, sunny" "$d/out.log"; then
        RESULTS+=("PASS  codex MCP tool found by tool_search (-m gpt-5.5)")
    else
        FAILED=1
        RESULTS+=("FAIL  codex MCP tool found by tool_search (-m gpt-5.5): $(grep -m1 -E "ERROR|error" "$d/out.log" | cut -c1-240)")
    fi
}

# Web search (WEB_SEARCH=kiro): the model asks for a search, the gateway runs it against the fake's
# /mcp and the client shows the answer, which names the first page found. Claude Code calls its
# WebSearch tool, which sends the gateway a request with the web_search server tool; Codex's hosted
# web_search is offered to the model by the gateway directly.
search_check() { # name log
    if grep -q "E2E search done: https://example.com/rust-1-90-release-notes" "$2"; then
        RESULTS+=("PASS  $1")
    else
        FAILED=1
        RESULTS+=("FAIL  $1: $(tail -n 2 "$2" | tr '\n' ' ' | cut -c1-240)")
    fi
}

run_claude_search() {
    command -v claude >/dev/null || return
    local d; d=$(new_dir claude-code-search)
    (cd "$d/project" && HOME="$d/home" IS_SANDBOX=1 ANTHROPIC_BASE_URL=$BASE ANTHROPIC_API_KEY=$KEY \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
        timeout 300 claude -p --dangerously-skip-permissions \
        "E2E_SEARCH in E2E_DIR=$d/project : search the web for the rust 1.90 release notes") \
        >"$d/out.log" 2>&1
    search_check "claude-code web search (WebSearch through Kiro's search)" "$d/out.log"
}

run_codex_search() {
    command -v codex >/dev/null || return
    local d; d=$(new_dir codex-search)
    mkdir -p "$d/home/.codex"
    printf 'model_provider = "kiro"\nmodel = "claude-sonnet-4.5"\n[model_providers.kiro]\nname = "kiro-gateway"\nbase_url = "%s/v1"\nenv_key = "KIRO_GATEWAY_KEY"\nwire_api = "responses"\n' \
        "$BASE" >"$d/home/.codex/config.toml"
    (cd "$d/project" && HOME="$d/home" KIRO_GATEWAY_KEY=$KEY \
        timeout 300 codex exec --skip-git-repo-check \
        "E2E_SEARCH in E2E_DIR=$d/project : search the web for the rust 1.90 release notes" </dev/null) \
        >"$d/out.log" 2>&1
    search_check "codex web search (hosted web_search through Kiro's search)" "$d/out.log"
}

# A spent quota: one request, no retries, and the client says why.
quota_check() { # name log gateway-route expected-text
    local name=$1 log=$2 route=$3 want=$4 sent
    sent=$(grep -c "POST $route 429" "$WORK/gateway.log")
    if [ "$sent" = 1 ] && grep -q "$want" "$log"; then
        RESULTS+=("PASS  $name")
    else
        FAILED=1
        RESULTS+=("FAIL  $name: $sent requests answered 429 (want 1); output: $(tail -n 2 "$log" | tr '\n' ' ' | cut -c1-200)")
    fi
}

run_claude_quota() {
    command -v claude >/dev/null || return
    local d; d=$(new_dir claude-code-quota)
    (cd "$d/project" && HOME="$d/home" IS_SANDBOX=1 ANTHROPIC_BASE_URL=$BASE ANTHROPIC_API_KEY=$KEY \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
        timeout 300 claude -p "E2E_QUOTA: say hi") >"$d/out.log" 2>&1
    quota_check "claude-code quota (stops at once)" "$d/out.log" /v1/messages "429"
}

run_codex_quota() {
    command -v codex >/dev/null || return
    local d; d=$(new_dir codex-quota)
    mkdir -p "$d/home/.codex"
    printf 'model_provider = "kiro"\nmodel = "claude-sonnet-4.5"\n[model_providers.kiro]\nname = "kiro-gateway"\nbase_url = "%s/v1"\nenv_key = "KIRO_GATEWAY_KEY"\nwire_api = "responses"\n' \
        "$BASE" >"$d/home/.codex/config.toml"
    (cd "$d/project" && HOME="$d/home" KIRO_GATEWAY_KEY=$KEY \
        timeout 300 codex exec --skip-git-repo-check "E2E_QUOTA: say hi" </dev/null) >"$d/out.log" 2>&1
    quota_check "codex quota (stops at once)" "$d/out.log" /v1/responses "Quota exceeded"
}

for client in "${WANT[@]}"; do
    case $client in
        claude-code)
            run_claude
            run_claude_interactive
            run_claude_mcp
            run_claude_search
            run_claude_quota
            ;;
        codex)
            run_codex default
            run_codex gpt-5.5 -m gpt-5.5
            run_codex sonnet -m claude-sonnet-4.5
            run_codex_mcp
            run_codex_search
            run_codex_quota
            ;;
        search) # only the web search runs of Claude Code and Codex
            run_claude_search
            run_codex_search
            ;;
        opencode) run_opencode ;;
        aider) run_aider ;;
        cline)
            run_cline chat openai-compatible
            run_cline responses openai-native
            ;;
        continue)
            run_continue openai openai "$BASE/v1"
            run_continue anthropic anthropic "$BASE/v1/"
            ;;
        kilo) run_kilo ;;
        *) RESULTS+=("SKIP  $client: unknown client") ;;
    esac
done

echo
echo "== e2e_clients: $(date -u +%Y-%m-%dT%H:%MZ), gateway $("$GATEWAY" --version 2>/dev/null) =="
printf '%s\n' "${RESULTS[@]}"
echo "(logs in $WORK)"
exit $FAILED
