#!/usr/bin/env python3
"""The SDK-level contract, checked with the real client libraries and injected Kiro faults.

Starts the fake Kiro in its weather-agent mode (`fake_kiro --script tools`: with tools it calls
the first one for Paris, then Oslo, then answers naming the results; without tools it answers in
text) and the gateway in front of it, then drives them with:

* `openai`: Chat (`create`, `stream=True` with usage, the `.stream()` helper, `.parse()`,
  `with_raw_response`, images, a tool loop) and Responses (`create`, the `responses.stream`
  helper and its events, `.parse()`, a tool loop, images);
* `anthropic`: `messages.create`, `messages.stream` (`text_stream`, `get_final_message`), a tool
  loop, thinking blocks replayed with their signature, `count_tokens`, images;
* the frameworks on top, when installed: `openai-agents` (Chat and Responses models),
  `pydantic-ai` (OpenAI and Anthropic models), `langchain-openai`, `langchain-anthropic`, `llm`.

Each raw SDK also meets every fault the fake can inject (a `KIRO_FAULT:<name>` marker in the user
message, see tests/fake_kiro/bench_main.rs): Kiro 429 throttle, spent quota, 500, 503, an HTML
502, 403, 400 "Input is too long", a throttle as JSON on a 200, a dropped connection, a hang
before the first frame; and, after the first words, a cut connection, a corrupt frame, an
exception frame, a context overflow, silence. Plus an invalid proxy key, malformed JSON, an
oversize body and a client that goes away mid-stream. For each it checks the exception class the
SDK raises (or, for a stream that breaks after it started, the SDK's documented error: an
`APIError` from the Chat stream, a `response.failed` event on Responses, an error from the
Anthropic stream), the status, the useful part of the message, the retry headers and how many
requests the SDK's own retry logic made, and that the next request is served.

    python3 -m venv venv && venv/bin/pip install openai anthropic \\
        openai-agents "pydantic-ai-slim[openai,anthropic]" langchain-openai langchain-anthropic llm
    venv/bin/python scripts/e2e_sdks.py            # builds the release binaries first
    venv/bin/python scripts/e2e_sdks.py --no-build --debug --only openai,anthropic

Uses $CARGO_TARGET_DIR (default ./target). Prints one line per check and a table at the end; exit
status 0 when every check passed. scripts/e2e_sdks.mjs does the same for the Node SDKs.
"""

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import traceback
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_harness import KEY, launch  # noqa: E402

try:
    import anthropic
    import httpx
    import openai
    from pydantic import BaseModel
except ImportError as e:
    print(f"{e.name} is not installed: pip install openai anthropic", file=sys.stderr)
    sys.exit(2)

MODEL = "claude-sonnet-4.5"
THINKING_MODEL = "claude-opus-4.8"
WEATHER = {"Paris": "18 C, sunny", "Oslo": "5 C, rain"}
GATEWAY_ENV = {
    "MAX_RETRIES": "2",
    "BASE_RETRY_DELAY": "0.05",
    "FIRST_TOKEN_TIMEOUT": "2",
    "STREAMING_READ_TIMEOUT": "3",
    "MAX_REQUEST_BODY_BYTES": "3000000",
}
OVERSIZE = 3_200_000

CHAT_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
RESPONSES_TOOL = {"type": "function", **CHAT_TOOL["function"]}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": CHAT_TOOL["function"]["parameters"],
}


class Weather(BaseModel):
    city: str
    unit: str


def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather for a city."""
    return WEATHER.get(city, "unknown")


def tiny_png():
    """A valid 1x1 PNG, built here so the script needs no files."""

    def chunk(kind, data):
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    pixels = zlib.compress(b"\x00\xff\x80\x00")
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


PNG = tiny_png()


# ------------------------------------------------------------------------------------------
# Bookkeeping
# ------------------------------------------------------------------------------------------


class Failed(AssertionError):
    pass


def expect(cond, what):
    if not cond:
        raise Failed(what)


RESULTS = []  # (sdk, check, ok, detail)


def run(sdk, check, fn):
    try:
        detail = fn() or ""
        RESULTS.append((sdk, check, True, detail))
        print(f"ok   {sdk:18} {check:28} {detail}", flush=True)
    except Exception as e:  # every failure is reported, not only the first
        detail = f"{type(e).__module__}.{type(e).__name__}: {e}"
        RESULTS.append((sdk, check, False, detail))
        print(f"FAIL {sdk:18} {check:28} {detail}", flush=True)
        if os.environ.get("E2E_TRACE"):
            traceback.print_exc()


class Counter:
    """An httpx event hook counting the requests an SDK sends, retries included."""

    def __init__(self):
        self.n = 0

    def __call__(self, request):
        self.n += 1


def counted_http(counter, module=httpx):
    """An HTTP client for an SDK (anthropic brings its own fork of httpx, `httpx2`)."""
    return module.Client(event_hooks={"request": [counter]}, timeout=60)


def raw_json(raw):
    """The body of a `with_raw_response` answer (`.text` is a method in some SDK versions)."""
    text = raw.text() if callable(raw.text) else raw.text
    return json.loads(text)


def user(text):
    return [{"role": "user", "content": text}]


def fault(name, text="Tell me something."):
    return f"{text} KIRO_FAULT:{name}"


# ------------------------------------------------------------------------------------------
# The faults, and what every SDK must make of them
# ------------------------------------------------------------------------------------------

# name → (status, retry (x-should-retry), OpenAI code or None, words the message must contain)
BEFORE_OUTPUT = {
    "throttle": (429, True, "rate_limit_exceeded", "Too many requests"),
    "quota": (429, False, "insufficient_quota", "limit for this month"),
    "500": (500, True, None, "unexpected error"),
    "503": (503, True, None, "temporarily unavailable"),
    "html502": (502, True, None, "502 Bad Gateway"),
    "403": (403, False, None, "not authorized"),
    "too_long": (400, False, "context_length_exceeded", "Input is too long"),
    "json_throttle": (429, True, "rate_limit_exceeded", "Rate exceeded"),
    "disconnect": (502, True, None, ""),
    "hang": (504, True, None, ""),
}
# name → (status of the non-streamed error, OpenAI code or None, words in the message)
AFTER_OUTPUT = {
    "cut": (502, None, ""),
    "crc": (502, None, ""),
    "exception": (502, None, "boom in the middle"),
    "overflow": (400, "context_length_exceeded", "Input is too long"),
    "idle": (504, None, "sent nothing"),
}

OPENAI_CLASS = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    429: openai.RateLimitError,
}


def openai_class(status):
    return OPENAI_CLASS.get(status) or (
        openai.InternalServerError if status >= 500 else openai.APIStatusError
    )


def anthropic_class(status):
    """The class anthropic's `_make_status_error` picks for a status (as of the installed
    version: newer versions know more statuses)."""
    named = {
        400: "BadRequestError",
        401: "AuthenticationError",
        403: "PermissionDeniedError",
        404: "NotFoundError",
        413: "RequestTooLargeError",
        429: "RateLimitError",
        503: "ServiceUnavailableError",
        504: "DeadlineExceededError",
        529: "OverloadedError",
    }
    cls = getattr(anthropic, named.get(status, ""), None)
    if cls is None:
        cls = anthropic.InternalServerError if status >= 500 else anthropic.APIStatusError
    return cls


def check_status_error(e, status, retry, words, cls):
    expect(isinstance(e, cls), f"{type(e).__name__} is not a {cls.__name__}: {e}")
    expect(e.status_code == status, f"status {e.status_code}, want {status}")
    expect((e.request_id or "").startswith("req_"), f"request id {e.request_id!r}")
    expect(words.lower() in str(e).lower(), f"message lacks {words!r}: {e}")
    should = e.response.headers.get("x-should-retry")
    if retry is not None:
        expect(should == ("true" if retry else "false"), f"x-should-retry {should!r}")
    after = e.response.headers.get("retry-after")
    if retry and status in (429, 503):
        expect(after is not None, "a transient error without Retry-After")
    if after is not None:
        expect(after.isdigit() and int(after) <= 120, f"Retry-After {after!r}")
    return f"{type(e).__name__} {e.status_code}" + (f" retry-after {after}" if after else "")


def raised(fn):
    try:
        fn()
    except Exception as e:
        return e
    raise Failed("no exception")


# ------------------------------------------------------------------------------------------
# openai: Chat Completions
# ------------------------------------------------------------------------------------------


def validate(model_cls, data, what):
    """The SDK builds its objects without validation; a typed consumer that validates must not
    fail on what the gateway sent."""
    try:
        model_cls.model_validate(data)
    except Exception as e:
        raise Failed(f"{what} does not validate as {model_cls.__name__}: {e}")


def chat_create(client):
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=user("Say hi."))
    resp = raw.parse()
    data = raw_json(raw)
    from openai.types.chat import ChatCompletion

    validate(ChatCompletion, data, "the completion")
    expect(resp.id.startswith("chatcmpl-"), resp.id)
    expect(resp.object == "chat.completion", resp.object)
    expect(abs(resp.created - time.time()) < 120, f"created {resp.created}")
    choice = resp.choices[0]
    expect(choice.message.role == "assistant" and choice.message.content, choice)
    expect(choice.finish_reason == "stop", choice.finish_reason)
    u = resp.usage
    expect(u.prompt_tokens > 0 and u.completion_tokens > 0, u)
    expect(u.total_tokens == u.prompt_tokens + u.completion_tokens, u)
    expect(raw.headers.get("content-type", "").startswith("application/json"), raw.headers)
    expect((resp._request_id or "").startswith("req_"), f"request id {resp._request_id!r}")
    return f"{resp.id[:14]}… usage {u.prompt_tokens}+{u.completion_tokens}"


def chat_stream(client):
    from openai.types.chat import ChatCompletionChunk

    stream = client.chat.completions.create(
        model=MODEL, messages=user("Say hi."), stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage, ids, n = "", None, None, set(), 0
    for chunk in stream:
        n += 1
        validate(ChatCompletionChunk, chunk.to_dict(), f"chunk {n}")
        expect(chunk.object == "chat.completion.chunk", chunk.object)
        ids.add(chunk.id)
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    expect(len(ids) == 1, f"chunk ids {ids}")
    expect(text and finish == "stop", (text, finish))
    expect(usage and usage.prompt_tokens > 0 and usage.completion_tokens > 0, usage)
    return f"{n} chunks, usage {usage.prompt_tokens}+{usage.completion_tokens}"


def chat_tool_loop(client):
    messages = user("Compare the weather in Paris and Oslo.")
    for step in range(4):
        with client.chat.completions.stream(
            model=MODEL, messages=messages, tools=[CHAT_TOOL]
        ) as stream:
            kinds = {e.type for e in stream}
            final = stream.get_final_completion()
        msg = final.choices[0].message
        if not msg.tool_calls:
            expect(all(v in msg.content for v in WEATHER.values()), msg.content)
            return f"{step} tool steps through .stream(), then the answer"
        expect("tool_calls.function.arguments.done" in kinds, kinds)
        messages.append(msg.model_dump(exclude_none=True))
        for tc in msg.tool_calls:
            args = json.loads(tc.function.arguments)
            messages.append(
                {"role": "tool", "tool_call_id": tc.id, "content": get_weather(**args)}
            )
    raise Failed("the loop never ended")


def chat_tool_loop_plain(client):
    messages = user("Compare the weather in Paris and Oslo.")
    for step in range(4):
        resp = client.chat.completions.create(model=MODEL, messages=messages, tools=[CHAT_TOOL])
        choice = resp.choices[0]
        if not choice.message.tool_calls:
            expect(all(v in choice.message.content for v in WEATHER.values()), choice.message)
            return f"{step} tool steps, then the answer"
        expect(choice.finish_reason == "tool_calls", choice.finish_reason)
        messages.append(choice.message.model_dump(exclude_none=True))
        for tc in choice.message.tool_calls:
            args = json.loads(tc.function.arguments)
            messages.append(
                {"role": "tool", "tool_call_id": tc.id, "content": get_weather(**args)}
            )
    raise Failed("the loop never ended")


def chat_parse(client):
    resp = client.chat.completions.parse(
        model=MODEL, messages=user("The weather in Paris as JSON."), response_format=Weather
    )
    parsed = resp.choices[0].message.parsed
    expect(isinstance(parsed, Weather), f"parsed {parsed!r}: {resp.choices[0].message.content}")
    return f"parsed {parsed!r}"


def chat_image(client):
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]}],
    )
    expect(resp.choices[0].message.content, resp)
    return "answered"


def chat_fault(client, name, stream):
    if name in BEFORE_OUTPUT:
        status, retry, code, words = BEFORE_OUTPUT[name]
    else:
        status, code, words = AFTER_OUTPUT[name]
        retry = None
        if stream:
            return chat_broken_stream(client, name, code, words)

    def call():
        r = client.chat.completions.create(
            model=MODEL, messages=user(fault(name)), stream=stream
        )
        for _ in r if stream else ():
            pass

    e = raised(call)
    detail = check_status_error(e, status, retry, words, openai_class(status))
    if code:
        expect(e.code == code, f"code {e.code!r}, want {code!r}")
    expect(isinstance(e.body, dict) and e.body.get("message"), f"body {e.body!r}")
    return detail + (f" code={e.code}" if e.code else "")


def chat_broken_stream(client, name, code, words):
    got = ""

    def call():
        nonlocal got
        for chunk in client.chat.completions.create(
            model=MODEL, messages=user(fault(name)), stream=True
        ):
            for c in chunk.choices:
                got += c.delta.content or ""
                expect(c.finish_reason is None, f"a normal finish {c.finish_reason}")

    e = raised(call)
    expect(type(e) is openai.APIError, f"{type(e).__name__}: {e}")
    expect(got.startswith("The answer starts here"), f"text before the error: {got!r}")
    expect(words.lower() in e.message.lower(), f"message {e.message!r}")
    if code:
        expect(e.code == code, f"code {e.code!r}")
    return f"APIError after {len(got)} chars: {e.message[:60]}"


# ------------------------------------------------------------------------------------------
# openai: Responses
# ------------------------------------------------------------------------------------------


def responses_create(client):
    from openai.types.responses import Response

    raw = client.responses.with_raw_response.create(model=MODEL, input="Say hi.")
    resp = raw.parse()
    validate(Response, raw_json(raw), "the response")
    expect(resp.id.startswith("resp_"), resp.id)
    expect(resp.object == "response" and resp.status == "completed", resp.status)
    expect(resp.output_text, resp.output)
    u = resp.usage
    expect(u.input_tokens > 0 and u.output_tokens > 0, u)
    expect(u.total_tokens == u.input_tokens + u.output_tokens, u)
    return f"{resp.id[:12]}… usage {u.input_tokens}+{u.output_tokens}"


def responses_stream(client):
    from openai.types.responses import ResponseStreamEvent
    from pydantic import TypeAdapter

    adapter = TypeAdapter(ResponseStreamEvent)
    kinds, text, seqs = [], "", []
    with client.responses.stream(model=MODEL, input="Say hi.") as stream:
        for event in stream:
            kinds.append(event.type)
            if hasattr(event, "sequence_number"):
                seqs.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                text += event.delta
            try:
                adapter.validate_python(event.to_dict())
            except Exception as e:
                raise Failed(f"{event.type} does not validate: {e}")
        final = stream.get_final_response()
    expect(kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds)
    expect(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"sequence numbers {seqs}")
    expect(final.output_text == text and text, (final.output_text, text))
    expect(final.usage and final.usage.output_tokens > 0, final.usage)
    return f"{len(kinds)} events, final text matches the deltas"


def responses_tool_loop(client, stream):
    items = [{"role": "user", "content": "Compare the weather in Paris and Oslo."}]
    for step in range(4):
        if stream:
            with client.responses.stream(model=MODEL, input=items, tools=[RESPONSES_TOOL]) as s:
                kinds = {e.type for e in s}
                resp = s.get_final_response()
        else:
            resp = client.responses.create(model=MODEL, input=items, tools=[RESPONSES_TOOL])
        calls = [o for o in resp.output if o.type == "function_call"]
        if not calls:
            expect(all(v in resp.output_text for v in WEATHER.values()), resp.output_text)
            return f"{step} tool steps, then the answer"
        if stream:
            expect("response.function_call_arguments.done" in kinds, kinds)
        items += [o.model_dump(exclude_none=True) for o in resp.output]
        for c in calls:
            out = get_weather(**json.loads(c.arguments))
            items.append({"type": "function_call_output", "call_id": c.call_id, "output": out})
    raise Failed("the loop never ended")


def responses_parse(client):
    resp = client.responses.parse(
        model=MODEL, input="The weather in Paris as JSON.", text_format=Weather
    )
    expect(isinstance(resp.output_parsed, Weather), f"parsed {resp.output_parsed!r}")
    return f"parsed {resp.output_parsed!r}"


def responses_image(client):
    resp = client.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": [
            {"type": "input_text", "text": "What is in this picture?"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
        ]}],
    )
    expect(resp.output_text, resp)
    return "answered"


def responses_fault(client, name, stream):
    if name in BEFORE_OUTPUT:
        status, retry, code, words = BEFORE_OUTPUT[name]
    else:
        status, code, words = AFTER_OUTPUT[name]
        retry = None
        if stream:
            return responses_broken_stream(client, name, code, words)

    def call():
        if stream:
            with client.responses.stream(model=MODEL, input=fault(name)) as s:
                for _ in s:
                    pass
        else:
            client.responses.create(model=MODEL, input=fault(name))

    e = raised(call)
    detail = check_status_error(e, status, retry, words, openai_class(status))
    if code:
        expect(e.code == code, f"code {e.code!r}, want {code!r}")
    return detail + (f" code={e.code}" if e.code else "")


def responses_broken_stream(client, name, code, words):
    kinds, text = [], ""
    with client.responses.stream(model=MODEL, input=fault(name)) as s:
        for event in s:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.failed":
                failed = event.response
    expect(kinds[-1] == "response.failed", f"last event {kinds[-1:]}")
    expect("response.completed" not in kinds, kinds)
    expect(text.startswith("The answer starts here"), text)
    err = failed.error
    expect(err and words.lower() in err.message.lower(), f"error {err}")
    if code:
        expect(err.code == code, f"code {err.code!r}")
    partial = "".join(
        c.text for o in failed.output if o.type == "message" for c in o.content
        if c.type == "output_text"
    )
    expect(partial.startswith("The answer starts here"), f"output kept: {failed.output}")
    return f"response.failed code={err.code} after {len(text)} chars"


# ------------------------------------------------------------------------------------------
# anthropic
# ------------------------------------------------------------------------------------------


def anthropic_create(client):
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=512, messages=user("Say hi.")
    )
    msg = raw.parse()
    validate(anthropic.types.Message, raw_json(raw), "the message")
    expect(msg.id.startswith("msg_") and msg.type == "message", msg.id)
    # Anthropic sends thinking blocks only when thinking was asked for; `content[0].text` is how
    # most code reads an answer.
    expect([b.type for b in msg.content] == ["text"], f"blocks {msg.content}")
    expect(msg.stop_reason == "end_turn", msg.stop_reason)
    u = msg.usage
    expect(u.input_tokens > 0 and u.output_tokens > 0, u)
    expect((msg._request_id or "").startswith("req_"), f"request id {msg._request_id!r}")
    return f"{msg.id[:10]}… usage {u.input_tokens}+{u.output_tokens}"


def anthropic_stream(client):
    from anthropic.types import RawMessageStreamEvent
    from pydantic import TypeAdapter

    adapter = TypeAdapter(RawMessageStreamEvent)
    text = ""
    with client.messages.stream(model=MODEL, max_tokens=512, messages=user("Say hi.")) as s:
        for t in s.text_stream:
            text += t
        final = s.get_final_message()
    # the raw events, validated: replay the same request without the helper
    kinds = []
    for event in client.messages.create(
        model=MODEL, max_tokens=512, messages=user("Say hi."), stream=True
    ):
        kinds.append(event.type)
        try:
            adapter.validate_python(event.to_dict())
        except Exception as e:
            raise Failed(f"{event.type} does not validate: {e}")
    expect(kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds)
    expect(final.content[0].text == text and text, (final.content, text))
    expect(final.stop_reason == "end_turn", final.stop_reason)
    expect(final.usage.output_tokens > 0 and final.usage.input_tokens > 0, final.usage)
    return f"{len(kinds)} events, final message matches the text stream"


def anthropic_tool_loop(client, stream, thinking=False):
    messages = user("Compare the weather in Paris and Oslo.")
    extra = {}
    model = MODEL
    if thinking:
        model = THINKING_MODEL
        extra = {"thinking": {"type": "enabled", "budget_tokens": 2000}}
    for step in range(4):
        if stream:
            with client.messages.stream(
                model=model, max_tokens=4096, messages=messages, tools=[ANTHROPIC_TOOL], **extra
            ) as s:
                msg = s.get_final_message()
        else:
            msg = client.messages.create(
                model=model, max_tokens=4096, messages=messages, tools=[ANTHROPIC_TOOL], **extra
            )
        if thinking:
            blocks = [b for b in msg.content if b.type == "thinking"]
            expect(blocks and blocks[0].signature, f"thinking blocks: {msg.content}")
        uses = [b for b in msg.content if b.type == "tool_use"]
        if not uses:
            text = "".join(b.text for b in msg.content if b.type == "text")
            expect(all(v in text for v in WEATHER.values()), text)
            if thinking:
                expect("Replayed 2 signed" in text, f"signatures replayed: {text}")
            return f"{step} tool steps, then the answer"
        expect(msg.stop_reason == "tool_use", msg.stop_reason)
        messages.append({"role": "assistant", "content": [
            b.model_dump(exclude_none=True) for b in msg.content
        ]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": u.id, "content": get_weather(**u.input)}
            for u in uses
        ]})
    raise Failed("the loop never ended")


def anthropic_tool_runner(client, stream):
    """The SDK's tool runner opens a server-held thread; the gateway refuses threads with the code
    the runner falls back on, so it sends the whole conversation and the loop runs as usual."""
    tool = anthropic.beta_tool(get_weather)
    runner = client.beta.messages.tool_runner(
        model=MODEL, max_tokens=1024, tools=[tool], stream=stream,
        messages=user("Compare the weather in Paris and Oslo."),
    )
    final = runner.until_done()
    text = "".join(b.text for b in final.content if b.type == "text")
    expect(all(v in text for v in WEATHER.values()), text)
    return "ran the tool twice, then the answer"


def anthropic_thread(client):
    """An explicit thread (default `unsupported_request_behavior="error"`) raises the SDK's own
    class for it, naming `thread`."""
    thread = client.beta.messages.thread(model=MODEL, max_tokens=256)
    e = raised(lambda: thread.send({"role": "user", "content": "Say hi."}))
    expect(type(e).__name__ == "ThreadUnsupportedRequestError", f"{type(e).__name__}: {e}")
    expect("thread" in str(e), str(e))
    fallback = client.beta.messages.thread(
        model=MODEL, max_tokens=256, unsupported_request_behavior="continue_unthreaded")
    first = fallback.send({"role": "user", "content": "Say hi."})
    second = fallback.send({"role": "user", "content": "Again."})
    expect(first.content and second.content, (first, second))
    return f"{type(e).__name__}; continue_unthreaded works"


def anthropic_models(client):
    listed = list(client.models.list())
    expect(listed and all(m.type == "model" and m.display_name for m in listed), listed[:2])
    one = client.models.retrieve(MODEL)
    validate(anthropic.types.ModelInfo, one.to_dict(), "the model")
    expect(one.id == MODEL and one.display_name, one)
    e = raised(lambda: client.models.retrieve("no-such-model-at-all"))
    expect(isinstance(e, anthropic.NotFoundError), f"{type(e).__name__}: {e}")
    return f"{len(listed)} models, retrieve {one.display_name!r}, unknown: NotFoundError"


def openai_models(client):
    from openai.types import Model

    listed = list(client.models.list())
    for m in listed:
        validate(Model, m.to_dict(), m.id)
    expect(any(m.id == MODEL for m in listed), [m.id for m in listed])
    one = client.models.retrieve(MODEL)
    expect(one.id == MODEL and one.object == "model", one)
    e = raised(lambda: client.models.retrieve("no-such-model-at-all"))
    expect(isinstance(e, openai.NotFoundError) and e.code == "model_not_found", f"{e!r}")
    return f"{len(listed)} models, retrieve, unknown: NotFoundError model_not_found"


def anthropic_count_tokens(client):
    n = client.messages.count_tokens(
        model=MODEL, messages=user("Compare the weather in Paris and Oslo."), tools=[ANTHROPIC_TOOL]
    )
    expect(isinstance(n.input_tokens, int) and n.input_tokens > 0, n)
    return f"{n.input_tokens} tokens"


def anthropic_image(client):
    msg = client.messages.create(
        model=MODEL,
        max_tokens=256,
        messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "text", "text": "What is in this picture?"},
        ]}],
    )
    expect(msg.content and msg.content[0].type == "text", msg.content)
    return "answered"


def anthropic_fault(client, name, stream):
    if name in BEFORE_OUTPUT:
        status, retry, _, words = BEFORE_OUTPUT[name]
        if name == "too_long":
            words = "prompt is too long"
        if status == 503:
            status = 529  # Anthropic's status for overloaded_error
    else:
        status, code, words = AFTER_OUTPUT[name]
        retry = None
        if name == "overflow":
            words = "prompt is too long"
        if stream:
            return anthropic_broken_stream(client, name, words)

    def call():
        if stream:
            with client.messages.stream(
                model=MODEL, max_tokens=256, messages=user(fault(name))
            ) as s:
                for _ in s:
                    pass
        else:
            client.messages.create(model=MODEL, max_tokens=256, messages=user(fault(name)))

    e = raised(call)
    detail = check_status_error(e, status, retry, words, anthropic_class(status))
    body = e.body if isinstance(e.body, dict) else {}
    expect(body.get("type") == "error" and body.get("error", {}).get("type"), f"body {e.body!r}")
    return detail + f" {body['error']['type']}"


def anthropic_broken_stream(client, name, words):
    text = ""

    def call():
        nonlocal text
        with client.messages.stream(model=MODEL, max_tokens=256, messages=user(fault(name))) as s:
            for t in s.text_stream:
                text += t

    e = raised(call)
    expect(isinstance(e, anthropic.APIStatusError), f"{type(e).__name__}: {e}")
    expect(text.startswith("The answer starts here"), text)
    expect(words.lower() in str(e).lower(), f"message {e}")
    body = e.body if isinstance(e.body, dict) else {}
    kind = body.get("error", {}).get("type")
    expect(kind, f"body {e.body!r}")
    return f"{type(e).__name__} ({kind}) after {len(text)} chars"


# ------------------------------------------------------------------------------------------
# What no fake fault covers: the key, the body, the connection
# ------------------------------------------------------------------------------------------


def bad_key(make_client, call, cls):
    counter = Counter()
    client = make_client("wrong-key-0123456789", counter)
    e = raised(lambda: call(client))
    detail = check_status_error(e, 401, False, "", cls)
    expect(counter.n == 1, f"the SDK sent {counter.n} requests for a wrong key")
    return detail + ", not retried"


def malformed_json(base_url, path, headers, sdk_client):
    r = httpx.post(base_url + path, content=b'{"model": "x", "messages": [', headers=headers)
    e = sdk_client._make_status_error_from_response(r)
    expect(r.status_code == 400, r.status_code)
    expect(type(e).__name__ == "BadRequestError", type(e).__name__)
    expect("json" in str(e).lower(), str(e))
    return f"{type(e).__name__}: {str(e)[:70]}"


def oversize(call, cls_name):
    e = raised(call)
    expect(type(e).__name__ == cls_name or getattr(e, "status_code", None) == 413,
           f"{type(e).__name__}: {e}")
    expect(getattr(e, "status_code", None) == 413, f"status {getattr(e, 'status_code', None)}")
    return f"{type(e).__name__} 413"


def not_retried(make_client, call, name):
    """A fault no retry can fix is tried once, with the SDK's default retries on."""
    counter = Counter()
    client = make_client(KEY, counter, retries=2)
    raised(lambda: call(client, name))
    expect(counter.n == 1, f"{counter.n} requests")
    return "1 request"


def retried(make_client, call, name):
    """A transient fault is retried by the SDK (x-should-retry: true), quickly."""
    counter = Counter()
    client = make_client(KEY, counter, retries=1)
    started = time.time()
    raised(lambda: call(client, name))
    took = time.time() - started
    expect(counter.n == 2, f"{counter.n} requests")
    return f"2 requests in {took:.1f}s"


def gives_up_waiting(make_client, call, gateway_log):
    """The SDK's own timeout runs out while Kiro hangs: APITimeoutError, and the gateway makes no
    further Kiro attempt for the gone client (its log says so)."""
    client = make_client(KEY, None, retries=0).with_options(timeout=1.0)
    before = gateway_log().count("the client has gone")
    e = raised(lambda: call(client, "hang"))
    expect(type(e).__name__ == "APITimeoutError", f"{type(e).__name__}: {e}")
    deadline = time.time() + 15
    while gateway_log().count("the client has gone") == before:
        expect(time.time() < deadline, "the gateway kept trying Kiro for a gone client")
        time.sleep(0.1)
    return "APITimeoutError; the gateway stopped retrying Kiro"


def disconnect_mid_stream(stream_first_chunk, next_call):
    stream_first_chunk()
    started = time.time()
    next_call()
    return f"next request served in {time.time() - started:.1f}s"


# ------------------------------------------------------------------------------------------
# Frameworks on top of the SDKs
# ------------------------------------------------------------------------------------------


def agents_run(base_url, api):
    from agents import (Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner,
                        function_tool, set_tracing_disabled)

    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    model_cls = OpenAIChatCompletionsModel if api == "chat" else OpenAIResponsesModel
    agent = Agent(
        name="weather",
        instructions="Answer with the weather.",
        model=model_cls(model=MODEL, openai_client=client),
        tools=[function_tool(get_weather)],
    )
    result = Runner.run_sync(agent, "Compare the weather in Paris and Oslo.")
    expect(all(v in result.final_output for v in WEATHER.values()), result.final_output)
    calls = [i for i in result.new_items if i.type == "tool_call_item"]
    expect(len(calls) == 2, f"{len(calls)} tool calls")
    e = raised(lambda: Runner.run_sync(agent, fault("throttle")))
    expect(isinstance(e, openai.RateLimitError), f"{type(e).__name__}: {e}")
    return f"2 tool calls, answer; a throttle raises {type(e).__name__}"


def pydantic_ai_run(base_url, which):
    from pydantic_ai import Agent
    from pydantic_ai.exceptions import ModelHTTPError

    if which == "openai":
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        model = OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=base_url, api_key=KEY))
    else:
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        model = AnthropicModel(
            MODEL, provider=AnthropicProvider(
                anthropic_client=anthropic.AsyncAnthropic(
                    base_url=base_url.removesuffix("/v1"), api_key=KEY, max_retries=0)))
    agent = Agent(model, tools=[get_weather])
    result = agent.run_sync("Compare the weather in Paris and Oslo.")
    expect(all(v in result.output for v in WEATHER.values()), result.output)
    usage = result.usage()
    expect(usage.input_tokens > 0 and usage.output_tokens > 0, usage)
    structured = Agent(model, output_type=Weather).run_sync("The weather in Paris.")
    expect(isinstance(structured.output, Weather), structured.output)
    e = raised(lambda: agent.run_sync(fault("quota")))
    expect(isinstance(e, ModelHTTPError) and e.status_code == 429, f"{type(e).__name__}: {e}")
    return f"tool loop, structured output, usage {usage.input_tokens}+{usage.output_tokens}; " \
           f"quota raises ModelHTTPError 429"


def langchain_run(base_url, which):
    from langchain_core.messages import HumanMessage, ToolMessage

    if which == "openai":
        from langchain_openai import ChatOpenAI

        # With a base_url of its own ChatOpenAI asks for usage in streams only when told to.
        llm = ChatOpenAI(model=MODEL, base_url=base_url, api_key=KEY, max_retries=0,
                         stream_usage=True)
        err = openai.RateLimitError
    else:
        from langchain_anthropic import ChatAnthropic

        llm = ChatAnthropic(model=MODEL, base_url=base_url.removesuffix("/v1"), api_key=KEY,
                            max_retries=0, max_tokens=1024)
        err = anthropic.RateLimitError
    bound = llm.bind_tools([get_weather])
    for streamed in (False, True):
        messages = [HumanMessage("Compare the weather in Paris and Oslo.")]
        for _ in range(4):
            if streamed:
                ai = None
                for chunk in bound.stream(messages):
                    ai = chunk if ai is None else ai + chunk
            else:
                ai = bound.invoke(messages)
            if not ai.tool_calls:
                break
            messages.append(ai)
            for tc in ai.tool_calls:
                messages.append(ToolMessage(get_weather(**tc["args"]), tool_call_id=tc["id"]))
        text = ai.content if isinstance(ai.content, str) else "".join(
            b.get("text", "") for b in ai.content if isinstance(b, dict))
        expect(all(v in text for v in WEATHER.values()), text)
        expect(ai.usage_metadata and ai.usage_metadata["input_tokens"] > 0, ai.usage_metadata)
    structured = llm.with_structured_output(Weather).invoke("The weather in Paris.")
    expect(isinstance(structured, Weather), structured)
    e = raised(lambda: llm.invoke(fault("throttle")))
    expect(isinstance(e, err), f"{type(e).__name__}: {e}")
    return f"invoke and stream tool loops, structured output; throttle raises {type(e).__name__}"


def llm_run(base_url):
    import llm

    home = tempfile.mkdtemp()
    with open(os.path.join(home, "extra-openai-models.yaml"), "w") as f:
        f.write(f"- model_id: kiro\n  model_name: {MODEL}\n  api_base: {base_url}\n"
                f"  api_key_name: kiro\n  supports_tools: true\n")
    with open(os.path.join(home, "keys.json"), "w") as f:
        json.dump({"kiro": KEY}, f)
    os.environ["LLM_USER_PATH"] = home
    model = llm.get_model("kiro")
    text = model.prompt("Say hi.").text()
    expect(text, "an answer")
    chain = model.chain("Compare the weather in Paris and Oslo.", tools=[get_weather])
    answer = chain.text()
    expect(all(v in answer for v in WEATHER.values()), answer)
    e = raised(lambda: model.prompt(fault("quota")).text())
    expect("limit for this month" in str(e), f"{type(e).__name__}: {e}")
    return f"prompt, tool chain; quota raises {type(e).__name__}"


# ------------------------------------------------------------------------------------------


def openai_checks(base_url, gateway_log):
    def make(key, counter=None, retries=0):
        http = counted_http(counter) if counter else None
        return openai.OpenAI(base_url=base_url, api_key=key, max_retries=retries, http_client=http,
                             timeout=60)

    client = make(KEY)
    sdk = "openai"
    run(sdk, "chat create", lambda: chat_create(client))
    run(sdk, "chat stream", lambda: chat_stream(client))
    run(sdk, "chat tool loop .stream()", lambda: chat_tool_loop(client))
    run(sdk, "chat tool loop create", lambda: chat_tool_loop_plain(client))
    run(sdk, "chat .parse()", lambda: chat_parse(client))
    run(sdk, "chat image", lambda: chat_image(client))
    run(sdk, "models", lambda: openai_models(client))
    run(sdk, "responses create", lambda: responses_create(client))
    run(sdk, "responses .stream()", lambda: responses_stream(client))
    run(sdk, "responses tool loop", lambda: responses_tool_loop(client, False))
    run(sdk, "responses tool loop stream", lambda: responses_tool_loop(client, True))
    run(sdk, "responses .parse()", lambda: responses_parse(client))
    run(sdk, "responses image", lambda: responses_image(client))
    for name in [*BEFORE_OUTPUT, *AFTER_OUTPUT]:
        for stream in (False, True):
            tag = " stream" if stream else ""
            run(sdk, f"chat {name}{tag}", lambda: chat_fault(client, name, stream))
            run(sdk, f"responses {name}{tag}", lambda: responses_fault(client, name, stream))
        run(sdk, f"next after {name}", lambda: chat_create(client))
    chat_call = lambda c, name="": c.chat.completions.create(  # noqa: E731
        model=MODEL, messages=user(fault(name) if name else "hi"))
    resp_call = lambda c, name="": c.responses.create(  # noqa: E731
        model=MODEL, input=fault(name) if name else "hi")
    run(sdk, "chat bad key", lambda: bad_key(make, chat_call, openai.AuthenticationError))
    run(sdk, "responses bad key", lambda: bad_key(make, resp_call, openai.AuthenticationError))
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    run(sdk, "chat malformed JSON",
        lambda: malformed_json(base_url, "/chat/completions", auth, client))
    run(sdk, "responses malformed JSON",
        lambda: malformed_json(base_url, "/responses", auth, client))
    big = "x" * OVERSIZE
    run(sdk, "chat oversize body", lambda: oversize(
        lambda: client.chat.completions.create(model=MODEL, messages=user(big)), "APIStatusError"))
    run(sdk, "responses oversize body", lambda: oversize(
        lambda: client.responses.create(model=MODEL, input=big), "APIStatusError"))
    for name in ("quota", "too_long", "403"):
        run(sdk, f"chat {name} not retried", lambda: not_retried(make, chat_call, name))
    for name in ("throttle", "500"):
        run(sdk, f"chat {name} retried", lambda: retried(make, chat_call, name))
    run(sdk, "chat client gives up", lambda: gives_up_waiting(make, chat_call, gateway_log))

    def chat_leave():
        s = client.chat.completions.create(model=MODEL, messages=user(fault("idle")), stream=True)
        next(iter(s))
        s.close()

    def resp_leave():
        s = client.responses.create(model=MODEL, input=fault("idle"), stream=True)
        next(iter(s))
        s.close()

    run(sdk, "chat client leaves stream",
        lambda: disconnect_mid_stream(chat_leave, lambda: chat_create(client)))
    run(sdk, "responses client leaves",
        lambda: disconnect_mid_stream(resp_leave, lambda: responses_create(client)))


def anthropic_checks(base_url, gateway_log):
    root = base_url.removesuffix("/v1")

    try:
        import httpx2 as http_module  # anthropic 2.x
    except ImportError:
        http_module = httpx

    def make(key, counter=None, retries=0):
        http = counted_http(counter, http_module) if counter else None
        return anthropic.Anthropic(base_url=root, api_key=key, max_retries=retries,
                                   http_client=http, timeout=60)

    client = make(KEY)
    sdk = "anthropic"
    run(sdk, "messages create", lambda: anthropic_create(client))
    run(sdk, "messages stream", lambda: anthropic_stream(client))
    run(sdk, "tool loop create", lambda: anthropic_tool_loop(client, False))
    run(sdk, "tool loop stream", lambda: anthropic_tool_loop(client, True))
    run(sdk, "thinking tool loop", lambda: anthropic_tool_loop(client, False, thinking=True))
    run(sdk, "thinking tool loop stream", lambda: anthropic_tool_loop(client, True, thinking=True))
    run(sdk, "tool_runner", lambda: anthropic_tool_runner(client, False))
    run(sdk, "tool_runner stream", lambda: anthropic_tool_runner(client, True))
    run(sdk, "thread", lambda: anthropic_thread(client))
    run(sdk, "count_tokens", lambda: anthropic_count_tokens(client))
    run(sdk, "models", lambda: anthropic_models(client))
    run(sdk, "image", lambda: anthropic_image(client))
    for name in [*BEFORE_OUTPUT, *AFTER_OUTPUT]:
        run(sdk, f"{name}", lambda: anthropic_fault(client, name, False))
        run(sdk, f"{name} stream", lambda: anthropic_fault(client, name, True))
        run(sdk, f"next after {name}", lambda: anthropic_create(client))
    call = lambda c, name="": c.messages.create(  # noqa: E731
        model=MODEL, max_tokens=64, messages=user(fault(name) if name else "hi"))
    run(sdk, "bad key", lambda: bad_key(make, call, anthropic.AuthenticationError))
    run(sdk, "malformed JSON", lambda: malformed_json(
        base_url, "/messages", {"x-api-key": KEY, "content-type": "application/json"}, client))
    run(sdk, "oversize body", lambda: oversize(
        lambda: client.messages.create(model=MODEL, max_tokens=64, messages=user("x" * OVERSIZE)),
        "RequestTooLargeError"))
    for name in ("quota", "too_long", "403"):
        run(sdk, f"{name} not retried", lambda: not_retried(make, call, name))
    for name in ("throttle", "500"):
        run(sdk, f"{name} retried", lambda: retried(make, call, name))
    run(sdk, "client gives up", lambda: gives_up_waiting(make, call, gateway_log))

    def leave():
        with client.messages.stream(model=MODEL, max_tokens=64, messages=user(fault("idle"))) as s:
            next(iter(s))

    run(sdk, "client leaves stream",
        lambda: disconnect_mid_stream(leave, lambda: anthropic_create(client)))


def framework_checks(base_url):
    def guarded(sdk, check, module, fn):
        try:
            __import__(module)
        except ImportError:
            print(f"skip {sdk:18} {check:28} ({module} is not installed)")
            return
        run(sdk, check, fn)

    guarded("openai-agents", "chat model", "agents", lambda: agents_run(base_url, "chat"))
    guarded("openai-agents", "responses model", "agents",
            lambda: agents_run(base_url, "responses"))
    guarded("pydantic-ai", "openai model", "pydantic_ai",
            lambda: pydantic_ai_run(base_url, "openai"))
    guarded("pydantic-ai", "anthropic model", "pydantic_ai",
            lambda: pydantic_ai_run(base_url, "anthropic"))
    guarded("langchain-openai", "ChatOpenAI", "langchain_openai",
            lambda: langchain_run(base_url, "openai"))
    guarded("langchain-anthropic", "ChatAnthropic", "langchain_anthropic",
            lambda: langchain_run(base_url, "anthropic"))
    guarded("llm", "openai-compatible model", "llm", lambda: llm_run(base_url))


def stress(requests, profile):
    """Eight threads of SDK calls (Chat, Responses and Messages, streamed and not) against a fake
    that breaks 40 % of its replies at random (`fake_kiro --faults 40`): every call must succeed
    or raise one of the SDK's API errors, never anything else (a JSON decode error, a KeyError, a
    validation error), and the gateway must serve the next request."""
    import collections
    from concurrent.futures import ThreadPoolExecutor

    fake, gateway = launch(build_first=False, profile=profile, env=GATEWAY_ENV,
                           fake_args=["--faults", "40", "--seed", "7", "--words", "30"])
    try:
        o = openai.OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0, timeout=30)
        a = anthropic.Anthropic(base_url=gateway.url, api_key=KEY, max_retries=0, timeout=30)
        hi = user("hello")

        def chat_stream():
            for _ in o.chat.completions.create(model=MODEL, messages=hi, stream=True):
                pass

        def chat_helper():
            with o.chat.completions.stream(model=MODEL, messages=hi) as s:
                for _ in s:
                    pass

        def responses_stream():
            with o.responses.stream(model=MODEL, input="hello") as s:
                for _ in s:
                    pass

        def messages_stream():
            with a.messages.stream(model=MODEL, max_tokens=100, messages=hi) as s:
                s.get_final_message()

        calls = [
            lambda: o.chat.completions.create(model=MODEL, messages=hi),
            chat_stream,
            chat_helper,
            lambda: o.responses.create(model=MODEL, input="hello"),
            responses_stream,
            lambda: a.messages.create(model=MODEL, max_tokens=100, messages=hi),
            messages_stream,
        ]
        seen = collections.Counter()
        odd = []

        def one(i):
            try:
                calls[i % len(calls)]()
                seen["ok"] += 1
            except (openai.APIConnectionError, anthropic.APIConnectionError) as e:
                odd.append(repr(e))
            except (openai.APIError, anthropic.APIError) as e:
                seen[type(e).__name__] += 1
            except Exception as e:  # anything else is a contract break
                odd.append(f"{type(e).__name__}: {e}")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(requests)))
        expect(not odd, f"not an API error: {odd[:3]}")
        expect("panicked" not in gateway.text(), "a worker panicked")
        o.chat.completions.create(model=MODEL, messages=hi)
        return ", ".join(f"{k} {v}" for k, v in seen.most_common())
    finally:
        gateway.stop()
        fake.stop()


def node_checks(url, modules):
    """Runs scripts/e2e_sdks.cjs and folds its ok/FAIL lines into the results."""
    import shutil
    import subprocess

    if not modules or not shutil.which("node"):
        print("skip node: give --node path/to/node_modules (with openai and @anthropic-ai/sdk)")
        return
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e_sdks.cjs")
    env = dict(os.environ, NODE_PATH=os.path.abspath(modules), E2E_GATEWAY_URL=url, E2E_KEY=KEY)
    proc = subprocess.run(["node", script], env=env, text=True, capture_output=True, timeout=600)
    for line in proc.stdout.splitlines():
        print(line, flush=True)
        if line.startswith(("ok ", "FAIL ")):
            fields = line.split(None, 1)[1]
            sdk, rest = fields[:18].strip(), fields[19:]
            RESULTS.append((sdk, rest[:28].strip(), line.startswith("ok"), rest[29:]))
    if proc.returncode not in (0, 1):
        RESULTS.append(("node", "script", False, proc.stderr[-2000:]))
        print(proc.stderr[-2000:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    parser.add_argument("--debug", action="store_true", help="debug binaries, not release")
    parser.add_argument("--only", default="openai,anthropic,frameworks,node",
                        help="comma-separated: openai, anthropic, frameworks, node")
    parser.add_argument("--stress", type=int, default=0, metavar="N",
                        help="also N concurrent SDK calls against a fake that breaks 40%% of "
                             "its replies (none by default)")
    parser.add_argument("--node", metavar="NODE_MODULES",
                        default=os.environ.get("E2E_NODE_MODULES"),
                        help="a node_modules with openai and @anthropic-ai/sdk (or $E2E_NODE_MODULES);"
                             " without it the Node checks are skipped")
    args = parser.parse_args()
    profile = "debug" if args.debug else "release"
    fake, gateway = launch(script="tools", build_first=not args.no_build, profile=profile,
                           env=GATEWAY_ENV)
    base_url = gateway.url + "/v1"
    try:
        parts = set(args.only.split(","))
        if "openai" in parts:
            openai_checks(base_url, gateway.text)
        if "anthropic" in parts:
            anthropic_checks(base_url, gateway.text)
        if "frameworks" in parts:
            framework_checks(base_url)
        if "node" in parts:
            node_checks(gateway.url, args.node)
    finally:
        gateway.stop()
        fake.stop()
    if args.stress:
        run("all", f"stress {args.stress}", lambda: stress(args.stress, profile))
    failed = [r for r in RESULTS if not r[2]]
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    for sdk, check, _, detail in failed:
        print(f"  FAIL {sdk} / {check}: {detail[:200]}")
    if failed and os.environ.get("E2E_LOG"):
        print(gateway.text()[-6000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
