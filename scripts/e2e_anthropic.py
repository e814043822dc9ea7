#!/usr/bin/env python3
"""End-to-end check of the Anthropic Messages API with the real `anthropic` Python SDK.

Starts a small scripted fake Kiro (written here, in Python: an AWS event-stream encoder and the
few endpoints the gateway calls), starts the gateway binary against it, and runs text,
streaming, tool-use, thinking (native and prompt-tag), count_tokens and error conversations
through `anthropic.Anthropic(base_url=...)`. Not part of `cargo test`.

    pip install anthropic
    cargo build            # the script uses $CARGO_TARGET_DIR/debug/kiro-gateway (builds it when missing)
    python3 scripts/e2e_anthropic.py

Exit status 0 when every check passed.
"""

import binascii
import json
import os
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BINARY = os.path.join(TARGET, "debug", "kiro-gateway")
KEY = "e2e-proxy-key-0123456789"
PROFILE_ARN = "arn:aws:codewhisperer:us-east-1:123456789012:profile/E2EFAKE"
SIGNATURE = "EqQBCkYIBxgCKkBe2eRealSignature"

# ---------------------------------------------------------------------------------------------
# The fake Kiro
# ---------------------------------------------------------------------------------------------


def frame(event_type, payload):
    """One AWS event-stream frame: prelude, three string headers, JSON payload, CRCs."""
    headers = b""
    for name, value in (
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ):
        n, v = name.encode(), value.encode()
        headers += struct.pack("B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def text(t):
    return frame("assistantResponseEvent", {"content": t})


def tail():
    return [
        frame("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": 0.3}),
        frame("contextUsageEvent", {"contextUsagePercentage": 1.2}),
    ]


def script_for(content, has_tool_results):
    """Pick the reply from markers in the current user message."""
    if "OVERFLOW" in content:
        return 400, {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}
    if has_tool_results:
        return 200, [text("It is 21 degrees in Paris.")] + tail()
    if "TOOL" in content:
        args = json.dumps({"city": "Paris", "unit": "celsius"})
        frames = [frame("toolUseEvent", {"name": "get_weather", "toolUseId": "tooluse_e2e1"})]
        for piece in (args[:9], args[9:20], args[20:]):
            frames.append(
                frame("toolUseEvent", {"input": piece, "name": "get_weather", "toolUseId": "tooluse_e2e1"})
            )
        frames.append(frame("toolUseEvent", {"name": "get_weather", "stop": True, "toolUseId": "tooluse_e2e1"}))
        return 200, frames + tail()
    if "NATIVE" in content:
        return 200, [
            frame("reasoningContentEvent", {"text": "The user wants "}),
            frame("reasoningContentEvent", {"text": "a short answer."}),
            frame("reasoningContentEvent", {"signature": SIGNATURE}),
            text("Forty-two."),
        ] + tail()
    if "TAGS" in content:
        return 200, [text("<thinking>Plan the"), text(" answer.</thinking>"), text("Tagged answer.")] + tail()
    return 200, [text("Hello"), text(" from the"), text(" Python fake")] + tail()


MODELS = [
    {"modelId": "claude-sonnet-4.5", "modelName": "Claude Sonnet 4.5",
     "tokenLimits": {"maxInputTokens": 200000, "maxOutputTokens": 64000}},
    {"modelId": "claude-opus-4.8", "modelName": "Claude Opus 4.8",
     "tokenLimits": {"maxInputTokens": 1000000, "maxOutputTokens": 128000},
     "additionalModelRequestFieldsSchema": {"type": "object", "properties": {
         "output_config": {"type": "object", "properties": {
             "effort": {"type": "string", "enum": ["low", "medium", "high", "xhigh", "max"]}}},
         "thinking": {"type": "object", "properties": {
             "type": {"type": "string", "enum": ["adaptive", "disabled"]}}}}}},
]


class FakeKiro(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests = queue.Queue()

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/List-Available-Models"):
            return self.send_json(200, {"models": MODELS})
        self.send_json(404, {"message": "not found"})

    def do_POST(self):
        body = self.body()
        if self.path == "/refreshToken":
            return self.send_json(200, {"accessToken": "e2e-access", "refreshToken": "e2e-refresh",
                                        "expiresIn": 3600, "profileArn": PROFILE_ARN})
        if self.path == "/List-Available-Profiles":
            return self.send_json(200, {"profiles": [{"arn": PROFILE_ARN, "profileName": "e2e"}]})
        # The model list the IDE's way: AWS JSON 1.0 on the management host, `POST /`.
        if (self.headers.get("x-amz-target") or "").endswith(".ListAvailableModels"):
            return self.send_json(200, {"models": MODELS})
        if self.path not in ("/", "/generateAssistantResponse"):
            return self.send_json(404, {"message": "not found"})
        FakeKiro.requests.put(body)
        current = (body or {}).get("conversationState", {}).get("currentMessage", {})
        user = current.get("userInputMessage", {})
        results = user.get("userInputMessageContext", {}).get("toolResults")
        status, reply = script_for(user.get("content", ""), bool(results))
        if status != 200:
            return self.send_json(status, reply)
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for f in reply:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(f), f))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# ---------------------------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------------------------


def start_gateway(fake_url):
    if not os.path.exists(BINARY):
        subprocess.run(["cargo", "build", "--bin", "kiro-gateway"], cwd=ROOT, check=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "PROXY_API_KEY": KEY,
        "SERVER_HOST": "127.0.0.1",
        "SERVER_PORT": "0",
        "KIRO_API_URL": fake_url,
        "KIRO_MANAGEMENT_URL": fake_url,
        "KIRO_DESKTOP_AUTH_URL": fake_url + "/refreshToken",
        "REFRESH_TOKEN": "e2e-refresh-token",
        "BASE_RETRY_DELAY": "0.01",
        "LOG_LEVEL": "INFO",
    }
    workdir = tempfile.mkdtemp(prefix="kgw-e2e-")
    proc = subprocess.Popen([BINARY], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    found = queue.Queue()
    logs = []

    def pump():
        for line in proc.stderr:
            logs.append(line)
            if "listening on http://" in line:
                found.put(line.split("listening on http://", 1)[1].split()[0])
            if "models from Kiro" in line:
                found.put("models")

    threading.Thread(target=pump, daemon=True).start()
    addr = found.get(timeout=20)
    return proc, "http://" + addr, found, logs


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------

FAILURES = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"))
    if not cond:
        FAILURES.append(name)


WEATHER = {"name": "get_weather", "description": "Current weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                                                             "unit": {"type": "string"}},
                            "required": ["city"]}}


def run(client, bad_client):
    model = "claude-sonnet-4-5"

    m = client.messages.create(model=model, max_tokens=256,
                               system=[{"type": "text", "text": "Be brief.",
                                        "cache_control": {"type": "ephemeral"}}],
                               messages=[{"role": "user", "content": "Say hi"}])
    check("text: content", [b.type for b in m.content] == ["text"]
          and m.content[0].text == "Hello from the Python fake", m)
    check("text: stop_reason end_turn", m.stop_reason == "end_turn", m.stop_reason)
    check("text: id and usage", m.id.startswith("msg_") and m.usage.output_tokens > 0, m)

    with client.messages.stream(model=model, max_tokens=256,
                                messages=[{"role": "user", "content": "Say hi"}]) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    check("stream: text", streamed == "Hello from the Python fake", streamed)
    check("stream: final message", final.stop_reason == "end_turn"
          and final.content[0].text == streamed, final)

    with client.messages.stream(model=model, max_tokens=256, tools=[WEATHER],
                                messages=[{"role": "user", "content": "TOOL: weather in Paris?"}]) as s:
        kinds = [e.type for e in s]
        final = s.get_final_message()
    tool = final.content[-1] if final.content else None
    check("stream tools: tool_use block", tool is not None and tool.type == "tool_use"
          and tool.name == "get_weather" and tool.input == {"city": "Paris", "unit": "celsius"}, final)
    check("stream tools: input_json deltas", kinds.count("input_json") >= 2, kinds)
    check("stream tools: stop_reason tool_use", final.stop_reason == "tool_use", final.stop_reason)

    m = client.messages.create(model=model, max_tokens=256, tools=[WEATHER],
                               tool_choice={"type": "auto"},
                               messages=[{"role": "user", "content": "TOOL: weather in Paris?"}])
    check("tools: non-streaming tool_use", m.stop_reason == "tool_use"
          and m.content[-1].input == {"city": "Paris", "unit": "celsius"}, m)
    follow = client.messages.create(
        model=model, max_tokens=256, tools=[WEATHER],
        messages=[{"role": "user", "content": "TOOL: weather in Paris?"},
                  {"role": "assistant", "content": m.content},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": m.content[-1].id,
                                                "content": [{"type": "text", "text": "21C"}]}]}])
    check("tools: result round trip", follow.content[0].text == "It is 21 degrees in Paris.", follow)
    sent = None
    while not FakeKiro.requests.empty():
        sent = FakeKiro.requests.get()
    results = sent["conversationState"]["currentMessage"]["userInputMessage"][
        "userInputMessageContext"]["toolResults"]
    check("tools: Kiro got the result", results[0]["toolUseId"] == "tooluse_e2e1", results)

    with client.messages.stream(model="claude-opus-4.8", max_tokens=2048,
                                thinking={"type": "adaptive"},
                                messages=[{"role": "user", "content": "NATIVE: meaning of life?"}]) as s:
        final = s.get_final_message()
    kinds = [b.type for b in final.content]
    check("native thinking: blocks", kinds == ["thinking", "text"], final)
    if kinds == ["thinking", "text"]:
        check("native thinking: Kiro's signature", final.content[0].signature == SIGNATURE, final.content[0])
        check("native thinking: text", final.content[0].thinking == "The user wants a short answer.", final)
    while not FakeKiro.requests.empty():
        sent = FakeKiro.requests.get()
    check("native thinking: effort sent", sent.get("additionalModelRequestFields", {})
          .get("output_config", {}).get("effort") == "high", sent.get("additionalModelRequestFields"))
    again = client.messages.create(
        model="claude-opus-4.8", max_tokens=2048, thinking={"type": "adaptive"},
        messages=[{"role": "user", "content": "NATIVE: meaning of life?"},
                  {"role": "assistant", "content": final.content},
                  {"role": "user", "content": "NATIVE: and again?"}])
    while not FakeKiro.requests.empty():
        sent = FakeKiro.requests.get()
    replay = sent["conversationState"]["history"][1]["assistantResponseMessage"].get("reasoningContent")
    check("native thinking: replayed with signature", again.stop_reason == "end_turn" and replay ==
          {"reasoningText": {"text": "The user wants a short answer.", "signature": SIGNATURE}}, replay)

    m = client.messages.create(model=model, max_tokens=4096,
                               thinking={"type": "enabled", "budget_tokens": 2048},
                               messages=[{"role": "user", "content": "TAGS: think first"}])
    kinds = [b.type for b in m.content]
    check("tag thinking: blocks", kinds == ["thinking", "text"], m)
    if kinds == ["thinking", "text"]:
        check("tag thinking: placeholder signature", m.content[0].signature.startswith("sig_"), m.content[0])
        check("tag thinking: text", m.content[0].thinking == "Plan the answer."
              and m.content[1].text == "Tagged answer.", m)

    n = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "Hi there"}],
                                     tools=[WEATHER])
    check("count_tokens", n.input_tokens > 0, n)

    try:
        client.messages.create(model=model, max_tokens=10,
                               messages=[{"role": "user", "content": "OVERFLOW please"}])
        check("overflow raises", False, "no error")
    except anthropic.BadRequestError as e:
        check("overflow: BadRequestError 'prompt is too long'",
              e.status_code == 400 and "prompt is too long" in str(e), e)

    try:
        bad_client.messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "x"}])
        check("bad key raises", False, "no error")
    except anthropic.AuthenticationError as e:
        check("bad key: AuthenticationError", e.status_code == 401, e)


def main():
    # The SDK warns about retired model names; the gateway accepts them on purpose.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeKiro)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    fake_url = "http://127.0.0.1:%d" % fake.server_address[1]
    proc, url, found, logs = start_gateway(fake_url)
    try:
        try:
            found.get(timeout=20)  # Kiro's model list (reasoning schemas) is loaded
        except queue.Empty:
            print("warning: the gateway did not load the model list")
        client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
        bad = anthropic.Anthropic(base_url=url, api_key="wrong", max_retries=0)
        run(client, bad)
    except Exception as e:  # report, then show the gateway's log
        FAILURES.append(repr(e))
        print("FAIL exception:", repr(e))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        fake.shutdown()
    if FAILURES:
        print("".join(logs[-40:]), file=sys.stderr)
        print(f"{len(FAILURES)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
