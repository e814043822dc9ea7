#!/usr/bin/env python3
"""End-to-end check of the Responses API with the official `openai` Python SDK.

Runs `client.responses.create` and `client.responses.stream` through a running kiro-gateway:
text, a function-call round trip with `function_call_output` continued by
`previous_response_id`, reasoning, a follow-up that needs the stored history, an unknown
`previous_response_id` (404) and a context overflow (400 `context_length_exceeded`).

Not part of the default test run. Two ways to use it:

  * against a gateway you started (real Kiro behind it):
        OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=<PROXY_API_KEY> \
            python3 scripts/e2e_responses.py
  * against the fake Kiro, driven by the ignored Rust test that starts both and scripts the
    answers: `cargo test --test responses -- --ignored openai_sdk`

Needs `pip install openai`. Exits non-zero on the first failed check.
"""

import os
import sys

try:
    import openai
except ImportError:
    print("the openai package is not installed: pip install openai", file=sys.stderr)
    sys.exit(2)

MODEL = os.environ.get("E2E_MODEL", "claude-sonnet-4-5")
EXPECT_REASONING = os.environ.get("E2E_EXPECT_REASONING") == "1"

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


def text_create(client):
    r = client.responses.create(model=MODEL, input="Say hello in one short sentence.")
    check(r.id.startswith("resp_"), "create: response id is resp_…")
    check(r.status == "completed", "create: status completed")
    check(len(r.output_text) > 0, "create: output_text is not empty")
    check(r.usage is not None and r.usage.input_tokens > 0, "create: usage has input tokens")


def text_stream(client):
    deltas = []
    with client.responses.stream(model=MODEL, input="Say hello in one short sentence.") as s:
        for event in s:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = s.get_final_response()
    check(final.status == "completed", "stream: final response completed")
    check("".join(deltas) == final.output_text, "stream: deltas add up to the final text")


def tool_round_trip(client):
    args = []
    with client.responses.stream(
        model=MODEL,
        input="What is the weather in Paris? Use the tool.",
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
    ) as s:
        for event in s:
            if event.type == "response.function_call_arguments.delta":
                args.append(event.delta)
        first = s.get_final_response()
    calls = [o for o in first.output if o.type == "function_call"]
    check(len(calls) == 1, "tools: one function_call item")
    call = calls[0]
    check(call.name == "get_weather", "tools: the call names get_weather")
    check("".join(args) == call.arguments, "tools: argument deltas add up to the arguments")
    check("paris" in call.arguments.lower(), "tools: the arguments mention Paris")

    with client.responses.stream(
        model=MODEL,
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
        input=[
            {
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": '{"temperature_c": 24, "sky": "sunny"}',
            }
        ],
    ) as s:
        second = s.get_final_response()
    check(second.status == "completed", "tools: follow-up with function_call_output completed")
    check(second.previous_response_id == first.id, "tools: follow-up echoes previous_response_id")
    check(len(second.output_text) > 0, "tools: the model answered from the tool output")


def reasoning(client):
    summaries = []
    with client.responses.stream(
        model=MODEL,
        input="Think step by step: what is 17 * 23?",
        reasoning={"effort": "high", "summary": "auto"},
    ) as s:
        for event in s:
            if event.type == "response.reasoning_summary_text.delta":
                summaries.append(event.delta)
        final = s.get_final_response()
    check(final.status == "completed", "reasoning: completed")
    items = [o for o in final.output if o.type == "reasoning"]
    if EXPECT_REASONING or items:
        check(len(items) == 1, "reasoning: one reasoning item")
        text = "".join(x.text for x in items[0].summary)
        check(len(text) > 0 and text == "".join(summaries), "reasoning: summary deltas add up")
    check("391" in final.output_text, "reasoning: the answer is 391")


def follow_up(client):
    first = client.responses.create(model=MODEL, input="My name is Ada. Reply with just OK.")
    second = client.responses.create(
        model=MODEL, previous_response_id=first.id, input="What is my name? One word."
    )
    check("ada" in second.output_text.lower(), "follow-up: the stored history was used")


def unknown_previous(client):
    try:
        client.responses.create(model=MODEL, previous_response_id="resp_unknown", input="hi")
    except openai.NotFoundError as e:
        check(e.code == "previous_response_not_found", "unknown id: 404 previous_response_not_found")
        return
    raise AssertionError("unknown id: no error raised")


def overflow(client):
    big = "lorem ipsum " * 200_000  # about 2.4 MB, over Kiro's body budget
    try:
        client.responses.create(model=MODEL, input=big)
    except openai.BadRequestError as e:
        check(e.code == "context_length_exceeded", "overflow: 400 context_length_exceeded")
        return
    raise AssertionError("overflow: no error raised")


def main():
    client = openai.OpenAI(max_retries=0, timeout=120)
    for step in (text_create, text_stream, tool_round_trip, reasoning, follow_up,
                 unknown_previous, overflow):
        step(client)
    print("all Responses API checks passed")


if __name__ == "__main__":
    main()
