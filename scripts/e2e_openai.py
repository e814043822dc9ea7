#!/usr/bin/env python3
"""End-to-end check of tool calling and reasoning with real client libraries (issue 5).

Starts the fake Kiro in its scripted agent mode (`fake_kiro --script tools`, see
tests/fake_kiro/bench_main.rs) and the gateway in front of it, then runs a multi-step weather
agent through the gateway four ways:

* the `openai` SDK, streamed with `client.chat.completions.stream` (tool-call argument deltas
  counted per call, `reasoning_content` read from the chunks);
* the `openai` SDK, not streamed (`message.tool_calls`, `message.reasoning_content`);
* LangChain `ChatOpenAI.bind_tools(...).invoke(...)`;
* LangChain `.stream(...)`, chunks added up (`tool_call_chunks` counted per call);
* a tool call cut off mid-arguments, with the SDK's raw stream and with LangChain
  (`finish_reason` "length", arguments no parser can complete, the broken call sent back with
  the next turn, which must still be answered);

each with native reasoning (claude-opus-4.8, `reasoning_effort="high"`) and with the prompt-tag
fallback (claude-sonnet-4.5). The fake calls the tool twice (Paris, Oslo) and then answers with
the results it received and how many signed reasoning blocks came back in history.

Not part of `cargo test`: it needs Python with `openai` and `langchain-openai`.
Run from anywhere: `python3 scripts/e2e_openai.py [--no-build]`. Exit status 0 when every check
passed.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_harness import KEY, launch  # noqa: E402

CITIES = ["Paris", "Oslo"]
WEATHER = {"Paris": "18 C, sunny", "Oslo": "5 C, rain"}
NATIVE = ("claude-opus-4.8", "high")
TAGS = ("claude-sonnet-4.5", None)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def run_tool(name, arguments):
    assert name == "get_weather", name
    args = json.loads(arguments) if isinstance(arguments, str) else arguments
    return WEATHER[args["city"]]


# ------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def check_final_answer(text, native):
    for city in CITIES:
        expect(WEATHER[city] in text, f"final answer names the {city} result: {text!r}")
    replayed = 2 if native else 0
    expect(
        f"Replayed {replayed} signed reasoning blocks" in text,
        f"{replayed} signed reasoning blocks replayed: {text!r}",
    )


def openai_streamed(client, model, effort):
    messages = [{"role": "user", "content": "Compare the weather in Paris and Oslo."}]
    extra = {"reasoning_effort": effort} if effort else {}
    for step in range(5):
        reasoning, signature, arg_deltas = "", None, {}
        with client.chat.completions.stream(
            model=model, messages=messages, tools=[WEATHER_TOOL], **extra
        ) as stream:
            for event in stream:
                if event.type == "chunk" and event.chunk.choices:
                    delta = event.chunk.choices[0].delta
                    reasoning += getattr(delta, "reasoning_content", None) or ""
                    signature = getattr(delta, "reasoning_signature", None) or signature
                elif event.type == "tool_calls.function.arguments.delta":
                    arg_deltas[event.index] = arg_deltas.get(event.index, 0) + 1
            final = stream.get_final_completion()
        choice = final.choices[0]
        expect(reasoning, f"step {step}: reasoning_content streamed")
        expect(bool(signature) == bool(effort), f"step {step}: signature {signature!r}")
        message = choice.message
        if not message.tool_calls:
            expect(choice.finish_reason == "stop", choice.finish_reason)
            check_final_answer(message.content, bool(effort))
            return f"{step} tool steps, then the answer"
        expect(choice.finish_reason == "tool_calls", choice.finish_reason)
        call = message.tool_calls[0]
        expect(arg_deltas.get(0, 0) > 1, f"arguments arrived in several deltas: {arg_deltas}")
        expect(json.loads(call.function.arguments)["city"] == CITIES[step], call.function.arguments)
        assistant = {
            "role": "assistant",
            "content": message.content,
            "tool_calls": [tc.model_dump(exclude_none=True) for tc in message.tool_calls],
            "reasoning_content": reasoning,
        }
        if signature:
            assistant["reasoning_signature"] = signature
        messages.append(assistant)
        for tc in message.tool_calls:
            result = run_tool(tc.function.name, tc.function.arguments)
            messages.append({"role": "tool", "tool_call_id": tc.id, "content": result})
    raise AssertionError("the agent never finished")


def openai_plain(client, model, effort):
    messages = [{"role": "user", "content": "Compare the weather in Paris and Oslo."}]
    extra = {"reasoning_effort": effort} if effort else {}
    for step in range(5):
        resp = client.chat.completions.create(
            model=model, messages=messages, tools=[WEATHER_TOOL], **extra
        )
        choice = resp.choices[0]
        message = choice.message
        expect(getattr(message, "reasoning_content", None), f"step {step}: reasoning_content")
        if not message.tool_calls:
            check_final_answer(message.content, bool(effort))
            return f"{step} tool steps, then the answer"
        expect(choice.finish_reason == "tool_calls", choice.finish_reason)
        # The message goes back as the SDK parsed it, extra fields (reasoning_content,
        # reasoning_signature) included.
        messages.append(message.model_dump(exclude_none=True))
        for tc in message.tool_calls:
            result = run_tool(tc.function.name, tc.function.arguments)
            messages.append({"role": "tool", "tool_call_id": tc.id, "content": result})
    raise AssertionError("the agent never finished")


def langchain_model(base_url, model, effort):
    from langchain_core.messages import AIMessage
    from langchain_openai import ChatOpenAI

    keys = ("reasoning_content", "reasoning_signature")

    class ChatKiroGateway(ChatOpenAI):
        """ChatOpenAI keeping the gateway's reasoning fields (as provider packages do for
        DeepSeek-style `reasoning_content`) and sending them back in history."""

        def _create_chat_result(self, response, generation_info=None):
            result = super()._create_chat_result(response, generation_info)
            raw = response if isinstance(response, dict) else response.model_dump()
            for gen, choice in zip(result.generations, raw.get("choices") or []):
                for key in keys:
                    if (choice.get("message") or {}).get(key):
                        gen.message.additional_kwargs[key] = choice["message"][key]
            return result

        def _convert_chunk_to_generation_chunk(self, chunk, default_chunk_class, info):
            gen = super()._convert_chunk_to_generation_chunk(chunk, default_chunk_class, info)
            choices = chunk.get("choices") or chunk.get("chunk", {}).get("choices") or []
            if gen is not None and choices:
                delta = choices[0].get("delta") or {}
                for key in keys:
                    if delta.get(key):
                        gen.message.additional_kwargs[key] = delta[key]
            return gen

        def _get_request_payload(self, input_, *, stop=None, **kwargs):
            payload = super()._get_request_payload(input_, stop=stop, **kwargs)
            sent = self._convert_input(input_).to_messages()
            for msg, out in zip(sent, payload.get("messages", [])):
                if isinstance(msg, AIMessage):
                    for key in keys:
                        if msg.additional_kwargs.get(key):
                            out[key] = msg.additional_kwargs[key]
            return payload

    kwargs = {"reasoning_effort": effort} if effort else {}
    return ChatKiroGateway(
        model=model,
        base_url=base_url,
        api_key=KEY,
        use_responses_api=False,
        max_retries=0,
        **kwargs,
    ).bind_tools([WEATHER_TOOL])


def langchain_loop(base_url, model, effort, streamed):
    from langchain_core.messages import HumanMessage, ToolMessage

    llm = langchain_model(base_url, model, effort)
    messages = [HumanMessage("Compare the weather in Paris and Oslo.")]
    for step in range(5):
        if streamed:
            ai, chunks_per_call = None, {}
            for chunk in llm.stream(messages):
                ai = chunk if ai is None else ai + chunk
                for tcc in chunk.tool_call_chunks:
                    if tcc.get("args"):
                        idx = tcc.get("index", 0)
                        chunks_per_call[idx] = chunks_per_call.get(idx, 0) + 1
        else:
            ai = llm.invoke(messages)
        reasoning = ai.additional_kwargs.get("reasoning_content")
        expect(reasoning, f"step {step}: reasoning_content visible: {ai.additional_kwargs}")
        if not ai.tool_calls:
            check_final_answer(ai.content, bool(effort))
            return f"{step} tool steps, then the answer"
        if streamed:
            expect(chunks_per_call.get(0, 0) > 1, f"argument chunks: {chunks_per_call}")
        call = ai.tool_calls[0]
        expect(call["args"]["city"] == CITIES[step], call)
        messages.append(ai)
        for tc in ai.tool_calls:
            result = run_tool(tc["name"], tc["args"])
            messages.append(ToolMessage(result, tool_call_id=tc["id"]))
    raise AssertionError("the agent never finished")


def langchain_cut_call(base_url, model, effort):
    """A tool call cut off mid-arguments: the stream ends with finish_reason "length" and a note,
    and no fragment follows the cut (issue 10). LangChain repairs partial JSON, so the cut call may
    show up in `tool_calls` with truncated arguments: an agent must honour finish_reason. Sending
    the message back with the next turn must still work."""
    from langchain_core.messages import HumanMessage

    llm = langchain_model(base_url, model, effort)
    messages = [HumanMessage("Weather please. CUT_TOOL_CALL")]
    ai = None
    for chunk in llm.stream(messages):
        ai = chunk if ai is None else ai + chunk
    expect(ai.response_metadata.get("finish_reason") == "length", ai.response_metadata)
    sent = "".join(c.get("args") or "" for c in ai.tool_call_chunks)
    expect(sent == '{"city":"Paris","unit":"cel', f"exactly the cut fragments: {sent!r}")
    expect("cut off" in ai.content, ai.content)
    messages += [ai, HumanMessage("Then just tell me what you know.")]
    reply = llm.invoke(messages)  # raises on a 400
    expect(reply.content or reply.tool_calls, "the next turn answers")
    return "cut call ended with length, sent back, next turn answered"


def openai_cut_call(client, model, effort):
    """The same with the SDK's raw stream, deltas accumulated by hand (the `.stream()` helper
    raises LengthFinishReasonError on finish_reason "length" by design); the broken call goes
    back with an error result, as a simple agent loop would send it."""
    extra = {"reasoning_effort": effort} if effort else {}
    messages = [{"role": "user", "content": "Weather please. CUT_TOOL_CALL"}]
    content, calls, finish = "", {}, None
    for chunk in client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER_TOOL], stream=True, **extra
    ):
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        content += choice.delta.content or ""
        for tc in choice.delta.tool_calls or []:
            call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = tc.id or call["id"]
            if tc.function and tc.function.name:
                call["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                call["arguments"] += tc.function.arguments
    expect(finish == "length", finish)
    call = calls.get(0)
    expect(call and call["arguments"].startswith('{"city":"Par'), calls)
    try:
        json.loads(call["arguments"])
        raise AssertionError(f"cut arguments parse: {call['arguments']}")
    except json.JSONDecodeError:
        pass
    messages.append({"role": "assistant", "content": content, "tool_calls": [{
        "id": call["id"], "type": "function",
        "function": {"name": call["name"], "arguments": call["arguments"]}}]})
    messages.append({"role": "tool", "tool_call_id": call["id"], "content": "Error: bad JSON"})
    messages.append({"role": "user", "content": "Then just tell me what you know."})
    resp = client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER_TOOL], **extra
    )
    expect(resp.choices[0].finish_reason in ("stop", "tool_calls"), resp.choices[0])
    return "cut call left invalid, sent back, next turn answered"


def main():
    from openai import OpenAI

    fake, gateway = launch(script="tools", build_first="--no-build" not in sys.argv)
    failures = 0
    try:
        base_url = gateway.url + "/v1"
        client = OpenAI(base_url=base_url, api_key=KEY, max_retries=0)
        checks = [
            ("openai stream", lambda m, e: openai_streamed(client, m, e)),
            ("openai create", lambda m, e: openai_plain(client, m, e)),
            ("langchain invoke", lambda m, e: langchain_loop(base_url, m, e, False)),
            ("langchain stream", lambda m, e: langchain_loop(base_url, m, e, True)),
            ("openai cut call", lambda m, e: openai_cut_call(client, m, e)),
            ("langchain cut call", lambda m, e: langchain_cut_call(base_url, m, e)),
        ]
        for name, check in checks:
            for label, (model, effort) in (("native", NATIVE), ("tags", TAGS)):
                try:
                    result = check(model, effort)
                    print(f"ok   {name:18} {label:6} {model}: {result}")
                except Exception as e:  # report every failure, not only the first
                    failures += 1
                    print(f"FAIL {name:18} {label:6} {model}: {type(e).__name__}: {e}")
    finally:
        gateway.stop()
        fake.stop()
    if failures:
        print(f"{failures} check(s) failed; gateway log:\n{gateway.text()[-4000:]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
