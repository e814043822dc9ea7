//! Stand-alone fake Kiro for the benchmark and for checks with real client libraries:
//! `cargo run --release --example fake_kiro -- --port 9000 [--frames N] [--frame-bytes B] [--words W]
//! [--script tools]`.
//!
//! Serves forever on 127.0.0.1:PORT and prints `listening on http://127.0.0.1:PORT` once.
//! Inference calls get a short text reply of W words, or — when the current user message
//! contains `BENCH_LONG_STREAM` — N frames of B bytes (default 51200 × 1024 = 50 MB) built once
//! and reused. It must stay cheap per request: no recording, no logging, no per-request
//! allocation of the long stream.
//!
//! `--script tools` plays a small weather agent instead (used by `scripts/e2e_openai.py`): see
//! [`tools_script`].
#![cfg_attr(test, allow(dead_code))]

#[path = "mod.rs"]
mod fake_kiro;

use fake_kiro::{Ev, FakeKiro, Recorded, Reply};
use serde_json::{json, Value};
use std::io::Write;

/// The marker in the last user message that selects the long stream.
const LONG_STREAM_MARKER: &str = "BENCH_LONG_STREAM";

struct Args {
    port: u16,
    frames: usize,
    frame_bytes: usize,
    words: usize,
    script: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        frames: 51_200,
        frame_bytes: 1024,
        words: 8,
        script: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = number(&flag, &value()?)?,
            "--frames" => args.frames = number(&flag, &value()?)?,
            "--frame-bytes" => args.frame_bytes = number(&flag, &value()?)?,
            "--words" => args.words = number(&flag, &value()?)?,
            "--script" => match value()?.as_str() {
                "tools" => args.script = Some("tools".into()),
                other => return Err(format!("unknown script {other} (known: tools)")),
            },
            "-h" | "--help" => {
                println!(
                    "usage: fake_kiro [--port P] [--frames N] [--frame-bytes B] [--words W] [--script tools]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value}"))
}

fn words(n: usize) -> String {
    const VOCABULARY: [&str; 8] = [
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "elit",
    ];
    (0..n)
        .map(|i| VOCABULARY[i % VOCABULARY.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("fake_kiro: {message}");
            std::process::exit(2);
        }
    };
    let fake = FakeKiro::start_on(args.port);
    fake.set_recording(false);
    fake.set_default_reply(Reply::text(&words(args.words)));
    if args.script.is_some() {
        fake.set_reply_fn(|request| Some(tools_script(request)));
    } else {
        let long = Reply::long_stream(args.frames, args.frame_bytes);
        fake.set_reply_fn(move |request| {
            request
                .user_content()
                .filter(|content| content.contains(LONG_STREAM_MARKER))
                .map(|_| long.clone())
        });
    }
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", fake.url());
    let _ = stdout.flush();
    loop {
        std::thread::park();
    }
}

/// A user message ending with this gets a tool call cut off mid-arguments.
const CUT_MARKER: &str = "CUT_TOOL_CALL";

/// The cities the scripted agent asks about, one tool call per step.
const CITIES: [&str; 2] = ["Paris", "Oslo"];

/// The scripted weather agent. While the request defines tools and fewer than two tool results
/// have come back, it calls the first tool with `{"city":…,"unit":"celsius"}` (id
/// `tooluse_step<N>`, arguments in six fragments); then it answers in text, naming the results it
/// received and how many signed reasoning blocks the client replayed. A current message ending
/// with [`CUT_MARKER`] gets a call whose stream ends in the middle of its arguments.
///
/// Reasoning comes first in every reply: native `reasoningContentEvent`s signed `sig-step-<N>`
/// when the request has `additionalModelRequestFields`, a `<thinking>` block when the thinking
/// tags were injected. A replayed signature the script never issued gets Kiro's 400
/// `THINKING_SIGNATURE_INVALID`.
fn tools_script(request: &Recorded) -> Reply {
    let state = &request.body["conversationState"];
    let current = &state["currentMessage"]["userInputMessage"];
    let history: &[Value] = state["history"].as_array().map_or(&[], Vec::as_slice);
    let mut results: Vec<String> = Vec::new();
    let mut replayed = 0;
    for entry in history.iter().chain([&state["currentMessage"]]) {
        if let Some(list) =
            entry["userInputMessage"]["userInputMessageContext"]["toolResults"].as_array()
        {
            for r in list {
                results.push(r["content"][0]["text"].as_str().unwrap_or("").to_string());
            }
        }
        if let Some(signature) = entry["assistantResponseMessage"]["reasoningContent"]
            ["reasoningText"]["signature"]
            .as_str()
        {
            if !signature.starts_with("sig-step-") {
                return Reply::error(
                    400,
                    "Invalid signature in thinking block",
                    Some("THINKING_SIGNATURE_INVALID"),
                );
            }
            replayed += 1;
        }
    }
    let step = results.len();
    let tool = current["userInputMessageContext"]["tools"][0]["toolSpecification"]["name"]
        .as_str()
        .map(str::to_string);
    let native = request.body.get("additionalModelRequestFields").is_some();
    let tagged = current["content"]
        .as_str()
        .is_some_and(|c| c.contains("<thinking_mode>enabled"));
    let content = current["content"].as_str().unwrap_or("");
    if let (Some(name), true) = (&tool, content.ends_with(CUT_MARKER)) {
        // The stream ends in the middle of the arguments: no stop, unfinished JSON.
        return Reply::events(vec![
            Ev::text("Writing the file."),
            Ev::tool_start("tooluse_cut", name),
            Ev::tool_input("tooluse_cut", name, r#"{"city":"Par"#),
            Ev::tool_input("tooluse_cut", name, r#"is","unit":"cel"#),
            Ev::Metering(fake_kiro::DEFAULT_CREDITS),
        ]);
    }
    let city = CITIES.get(step).copied();
    let thought = match city {
        Some(c) if tool.is_some() => format!("I need the weather in {c}."),
        _ => "I have what I need.".to_string(),
    };
    let mut events = Vec::new();
    if native {
        let (a, b) = thought.split_at(thought.len() / 2);
        events.push(Ev::reasoning(a));
        events.push(Ev::reasoning(b));
        events.push(Ev::reasoning_signature(&format!("sig-step-{step}")));
    } else if tagged {
        events.push(Ev::text("<thinking>"));
        events.push(Ev::text(&thought));
        events.push(Ev::text("</thinking>\n\n"));
    }
    let mut output = events.len() as u64;
    match (tool, city) {
        (Some(name), Some(city)) => {
            let args = json!({"city": city, "unit": "celsius"}).to_string();
            events.extend(Ev::tool_call(
                &format!("tooluse_step{step}"),
                &name,
                &args,
                6,
            ));
            output += 8;
        }
        _ => {
            let text = format!(
                "Results: {}. Replayed {replayed} signed reasoning blocks.",
                results.join("; ")
            );
            let words = Ev::words(&text);
            output += words.len() as u64;
            events.extend(words);
        }
    }
    events.push(Ev::Metering(fake_kiro::DEFAULT_CREDITS));
    events.push(Ev::ContextUsage(fake_kiro::DEFAULT_CONTEXT_PCT));
    events.push(Ev::Metadata {
        input: fake_kiro::DEFAULT_INPUT_TOKENS,
        output,
    });
    Reply::events(events)
}
