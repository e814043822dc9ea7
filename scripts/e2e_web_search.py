#!/usr/bin/env python3
"""Web search through the gateway, checked with the real `anthropic` and `openai` Python SDKs.

Starts the fake Kiro in its search mode (`fake_kiro --script search`: the model calls the
`web_search` tool for what the user asked, the fake's `/mcp` answers with three pages, then the
model answers citing the first page) and the gateway in front of it, then asks the same question
through Anthropic Messages (plain and streamed), OpenAI Responses (plain and streamed) and Chat
Completions, and checks that each SDK parses the answer into its own web search types.

    pip install anthropic openai
    python3 scripts/e2e_web_search.py            # builds the binaries first (--no-build: don't)

Uses $CARGO_TARGET_DIR (default ./target). Exit status 0 when every check passed.
"""

import os
import sys

try:
    import anthropic
    import openai
except ImportError as e:
    print(f"{e.name} is not installed: pip install anthropic openai", file=sys.stderr)
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_harness import launch  # noqa: E402

KEY = "e2e-web-search-key-0123456789"
MODEL = "claude-sonnet-4.5"
QUESTION = "latest rust release"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def check_anthropic_message(msg, how):
    types = [b.type for b in msg.content]
    check(
        types[:2] == ["server_tool_use", "web_search_tool_result"] and types[-1] == "text",
        f"{how}: blocks {types}",
    )
    call, result, answer = msg.content[0], msg.content[1], msg.content[-1]
    check(isinstance(call, anthropic.types.ServerToolUseBlock), f"{how}: {type(call)}")
    check(call.input == {"query": QUESTION}, f"{how}: query {call.input}")
    check(isinstance(result, anthropic.types.WebSearchToolResultBlock), f"{how}: {type(result)}")
    check(result.tool_use_id == call.id, f"{how}: result belongs to the call")
    pages = result.content
    check(isinstance(pages, list) and len(pages) == 3, f"{how}: pages {pages}")
    check(all(isinstance(p, anthropic.types.WebSearchResultBlock) for p in pages), f"{how}: types")
    check(pages[0].page_age == "March 3, 2026", f"{how}: page_age {pages[0].page_age}")
    cites = answer.citations or []
    check(len(cites) == 1, f"{how}: citations {cites}")
    check(
        isinstance(cites[0], anthropic.types.CitationsWebSearchResultLocation),
        f"{how}: citation type {type(cites[0])}",
    )
    check(cites[0].url == pages[0].url, f"{how}: cited {cites[0].url}")
    check(msg.usage.server_tool_use.web_search_requests == 1, f"{how}: usage {msg.usage}")
    check(msg.stop_reason == "end_turn", f"{how}: stop_reason {msg.stop_reason}")


def anthropic_checks(url):
    client = anthropic.Anthropic(base_url=url, api_key=KEY)
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
    messages = [{"role": "user", "content": QUESTION}]
    msg = client.messages.create(model=MODEL, max_tokens=512, tools=tools, messages=messages)
    check_anthropic_message(msg, "anthropic")
    with client.messages.stream(
        model=MODEL, max_tokens=512, tools=tools, messages=messages
    ) as stream:
        streamed = stream.get_final_message()
    check_anthropic_message(streamed, "anthropic stream")
    # The search goes back in the history; the follow-up is answered without a new search.
    follow = client.messages.create(
        model=MODEL,
        max_tokens=512,
        tools=tools,
        messages=messages
        + [
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
            {"role": "user", "content": "thanks"},
        ],
    )
    check(follow.content[-1].type == "text", f"follow-up: {follow.content}")


def check_responses(resp, how):
    items = [i.type for i in resp.output]
    check(items == ["web_search_call", "message"], f"{how}: items {items}")
    call = resp.output[0]
    check(call.status == "completed", f"{how}: status {call.status}")
    check(call.action.type == "search" and call.action.query == QUESTION, f"{how}: {call.action}")
    check(len(call.action.sources or []) == 3, f"{how}: sources {call.action.sources}")
    part = resp.output[1].content[0]
    notes = [a for a in part.annotations if a.type == "url_citation"]
    check(len(notes) == 1, f"{how}: annotations {part.annotations}")
    span = part.text[notes[0].start_index : notes[0].end_index]
    check(notes[0].url in span, f"{how}: span {span!r}")


def openai_checks(url):
    client = openai.OpenAI(base_url=url + "/v1", api_key=KEY)
    args = dict(
        model=MODEL,
        input=QUESTION,
        tools=[{"type": "web_search"}],
        include=["web_search_call.action.sources"],
    )
    check_responses(client.responses.create(**args), "responses")
    kinds = []
    with client.responses.stream(**args) as stream:
        for event in stream:
            kinds.append(event.type)
        final = stream.get_final_response()
    check_responses(final, "responses stream")
    for kind in (
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_text.annotation.added",
    ):
        check(kind in kinds, f"responses stream: no {kind} in {kinds}")
    chat = client.chat.completions.create(
        model=MODEL,
        web_search_options={"search_context_size": "low"},
        messages=[{"role": "user", "content": QUESTION}],
    )
    message = chat.choices[0].message
    notes = message.annotations or []
    check(len(notes) == 1 and notes[0].type == "url_citation", f"chat: {message}")
    cited = message.content[notes[0].url_citation.start_index : notes[0].url_citation.end_index]
    check(notes[0].url_citation.url in cited, f"chat: span {cited!r}")


def main():
    fake, gateway = launch(script="search", build_first="--no-build" not in sys.argv, key=KEY)
    try:
        for name, run in (("anthropic", anthropic_checks), ("openai", openai_checks)):
            run(gateway.url)
            print(f"ok: {name}")
    except Exception:
        print(gateway.text()[-4000:], file=sys.stderr)
        raise
    finally:
        gateway.stop()
        fake.stop()
    print("all web search checks passed")


if __name__ == "__main__":
    main()
