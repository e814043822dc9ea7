//! Stand-alone fake Kiro for the benchmark, the soak test and checks with real client libraries:
//! `cargo run --release --example fake_kiro -- --port 9000 [--frames N] [--frame-bytes B] [--words W]
//! [--faults PCT] [--delay-ms MS] [--seed S] [--script tools|agent|search]`.
//!
//! Serves forever on 127.0.0.1:PORT and prints `listening on http://127.0.0.1:PORT` once.
//! Inference calls get a short text reply of W words, or — when the current user message
//! contains `BENCH_LONG_STREAM` — N frames of B bytes (default 51200 × 1024 = 50 MB) built once
//! and reused. It must stay cheap per request: no recording, no logging, no per-request
//! allocation of the long stream.
//!
//! A current message containing `BENCH_SLOW_STREAM` gets a slow stream instead: `--slow-frames`
//! short text frames (default 60) sent `--slow-interval-ms` apart (default 500), then the usage
//! tail, about 30 s in all (the bench's `--long-streams` scenario).
//!
//! `--script tools` plays a small weather agent instead (used by `scripts/e2e_openai.py`): see
//! [`tools_script`]. `--script agent` drives a real client's own tools through a write / edit /
//! shell plan (used by `scripts/e2e_clients.sh`): see `agent_script.rs`.
//! `--script search` searches the web for what the user asked and answers citing the first page,
//! whenever the client offers a web search tool (used by `scripts/e2e_web_search.py`): see
//! `mcp::search_script`.
//!
//! `--faults PCT` makes that percentage of the other inference replies faulty, picked at random
//! (reproducible with `--seed`): a 429 throttle, a 500, a quota 429, a JSON-on-200 throttle, a
//! dropped connection, a corrupt first frame, or a reply that breaks after its first words (cut
//! connection, exception frame, corrupt CRC, silence). `--delay-ms` delays every first frame.
//!
//! In every mode, a current user message containing `KIRO_FAULT:<name>` gets that one fault
//! instead of its answer, every time it is sent (see [`marked_fault`]; used by
//! `scripts/e2e_sdks.py` to check what each client library makes of it), or one of the broken
//! replies of `broken.rs` (damaged frames, payloads of the wrong shape; used by
//! `scripts/fuzz_requests.py`).
#![cfg_attr(test, allow(dead_code))]

#[path = "mod.rs"]
mod fake_kiro;

use fake_kiro::{Ev, FakeKiro, Recorded, Reply};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The marker in the last user message that selects the long stream.
const LONG_STREAM_MARKER: &str = "BENCH_LONG_STREAM";

/// The marker in the last user message that selects the slow stream.
const SLOW_STREAM_MARKER: &str = "BENCH_SLOW_STREAM";

struct Args {
    port: u16,
    frames: usize,
    frame_bytes: usize,
    words: usize,
    slow_frames: usize,
    slow_interval_ms: u64,
    script: Option<String>,
    faults: u64,
    delay_ms: u64,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        frames: 51_200,
        frame_bytes: 1024,
        words: 8,
        slow_frames: 60,
        slow_interval_ms: 500,
        script: None,
        faults: 0,
        delay_ms: 0,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = number(&flag, &value()?)?,
            "--frames" => args.frames = number(&flag, &value()?)?,
            "--frame-bytes" => args.frame_bytes = number(&flag, &value()?)?,
            "--words" => args.words = number(&flag, &value()?)?,
            "--slow-frames" => args.slow_frames = number(&flag, &value()?)?,
            "--slow-interval-ms" => args.slow_interval_ms = number(&flag, &value()?)?,
            "--faults" => args.faults = number(&flag, &value()?)?,
            "--delay-ms" => args.delay_ms = number(&flag, &value()?)?,
            "--seed" => args.seed = number(&flag, &value()?)?,
            "--script" => match value()?.as_str() {
                "tools" => args.script = Some("tools".into()),
                "agent" => args.script = Some("agent".into()),
                "search" => args.script = Some("search".into()),
                other => {
                    return Err(format!(
                        "unknown script {other} (known: tools, agent, search)"
                    ))
                }
            },
            "-h" | "--help" => {
                println!(
                    "usage: fake_kiro [--port P] [--frames N] [--frame-bytes B] [--words W] \
                     [--slow-frames N] [--slow-interval-ms MS] [--faults PCT] [--delay-ms MS] [--seed S] [--script tools|agent|search]"
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

/// xorshift64*: a reproducible stream of random numbers shared by the server's threads.
fn next_random(state: &AtomicU64) -> u64 {
    let mut x = state.load(Ordering::Relaxed);
    loop {
        let mut y = x;
        y ^= y >> 12;
        y ^= y << 25;
        y ^= y >> 27;
        match state.compare_exchange_weak(x, y, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return y.wrapping_mul(0x2545_F491_4F6C_DD1D),
            Err(now) => x = now,
        }
    }
}

/// One faulty reply, chosen by `pick`.
fn faulty_reply(pick: u64, text: &str) -> Reply {
    let pause = || Ev::Sleep(Duration::from_millis(50));
    match pick % 10 {
        0 => Reply::error(
            429,
            "Too many requests, please wait before trying again.",
            Some("SERVICE_REQUEST_RATE_EXCEEDED"),
        ),
        1 => Reply::error(500, "Encountered an unexpected error.", None),
        2 => Reply::error(
            429,
            "You have reached the limit for this month.",
            Some("MONTHLY_REQUEST_COUNT"),
        ),
        3 => Reply::json_on_200(json!({
            "__type": "com.amazon.aws.codewhisperer#ThrottlingException",
            "message": "Rate exceeded"
        })),
        4 => Reply::disconnect(),
        5 => Reply::events(vec![Ev::corrupt_crc(Ev::text(text))]),
        6 => Reply::events(vec![Ev::text(text), pause(), Ev::Cut]),
        7 => Reply::events(vec![
            Ev::text(text),
            pause(),
            Ev::exception("InternalServerException", "boom in the middle", None),
        ]),
        8 => Reply::events(vec![
            Ev::text(text),
            pause(),
            Ev::corrupt_crc(Ev::text(text)),
        ]),
        _ => Reply::events(vec![
            Ev::text(text),
            Ev::Sleep(Duration::from_secs(4)),
            Ev::text(text),
        ]),
    }
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
    let text = words(args.words);
    let delay = Duration::from_millis(args.delay_ms);
    fake.set_default_reply(Reply::text(&text).delay_first_frame(delay));
    if args.script.as_deref() == Some("agent") {
        fake.set_reply_fn(|request| {
            marked_fault(request)
                .or_else(|| fake_kiro::mcp::agent_search(request))
                .or_else(|| Some(fake_kiro::agent_script::reply(request)))
        });
    } else if args.script.as_deref() == Some("search") {
        fake.set_reply_fn(|request| {
            marked_fault(request).or_else(|| fake_kiro::mcp::search_script(request))
        });
    } else if args.script.is_some() {
        fake.set_reply_fn(|request| marked_fault(request).or_else(|| Some(tools_script(request))));
    } else {
        let long = Reply::long_stream(args.frames, args.frame_bytes);
        let slow = slow_stream(
            args.slow_frames,
            Duration::from_millis(args.slow_interval_ms),
        );
        let random = AtomicU64::new(args.seed.max(1));
        let faults = args.faults.min(100);
        fake.set_reply_fn(move |request| {
            if let Some(fault) = marked_fault(request) {
                return Some(fault);
            }
            let content = request.user_content().unwrap_or_default();
            if content.contains(LONG_STREAM_MARKER) {
                return Some(long.clone());
            }
            if content.contains(SLOW_STREAM_MARKER) {
                return Some(slow.clone());
            }
            if faults == 0 {
                return None;
            }
            let roll = next_random(&random);
            (roll % 100 < faults).then(|| faulty_reply(roll / 100, &text))
        });
    }
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", fake.url());
    let _ = stdout.flush();
    loop {
        std::thread::park();
    }
}

/// The marker that names a fault in the current user message: `KIRO_FAULT:<name>`.
const FAULT_MARKER: &str = "KIRO_FAULT:";

/// The fault a `KIRO_FAULT:<name>` marker asks for. Before any output: `throttle` (429
/// SERVICE_REQUEST_RATE_EXCEEDED), `quota` (429 MONTHLY_REQUEST_COUNT), `500`, `503`, `html502`
/// (a proxy's HTML page), `403`, `too_long` (400 "Input is too long."), `json_throttle` (a
/// throttle as JSON on a 200), `disconnect` (no answer at all), `hang` (the head, then nothing
/// for a minute). After the first words (a pause lets them reach the client): `cut` (connection
/// closed), `crc` (a frame with a bad CRC), `exception` (an exception frame), `overflow` (the
/// context-overflow exception), `idle` (silence for a minute). Then the broken replies of
/// `broken.rs` by their names. Unknown names get a 400 naming them, so a typo in a check is not
/// mistaken for a gateway fault.
fn marked_fault(request: &Recorded) -> Option<Reply> {
    let content = request.user_content()?;
    let name = content.split(FAULT_MARKER).nth(1)?;
    let name = name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    let pause = || Ev::Sleep(Duration::from_millis(300));
    let first_words = || Ev::text("The answer starts here");
    let minute = Duration::from_secs(60);
    Some(match name {
        "throttle" => Reply::error(
            429,
            "Too many requests, please wait before trying again.",
            Some("SERVICE_REQUEST_RATE_EXCEEDED"),
        ),
        "quota" => Reply::error(
            429,
            "You have reached the limit for this month.",
            Some("MONTHLY_REQUEST_COUNT"),
        ),
        "500" => Reply::error(500, "Encountered an unexpected error.", None),
        "503" => Reply::error(503, "Service is temporarily unavailable", None),
        "html502" => Reply::status_text(
            502,
            "text/html",
            "<html><body>502 Bad Gateway</body></html>",
        ),
        "403" => Reply::error(403, "User is not authorized to make this call.", None),
        "too_long" => Reply::error(
            400,
            "Input is too long.",
            Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
        ),
        "json_throttle" => Reply::json_on_200(json!({
            "__type": "com.amazon.aws.codewhisperer#ThrottlingException",
            "message": "Rate exceeded"
        })),
        "disconnect" => Reply::disconnect(),
        "hang" => Reply::text("too late").delay_first_frame(minute),
        "cut" => Reply::events(vec![first_words(), pause(), Ev::Cut]),
        "crc" => Reply::events(vec![
            first_words(),
            pause(),
            Ev::corrupt_crc(Ev::text(" and breaks")),
        ]),
        "exception" => Reply::events(vec![
            first_words(),
            pause(),
            Ev::exception("InternalServerException", "boom in the middle", None),
        ]),
        "overflow" => Reply::events(vec![
            first_words(),
            pause(),
            Ev::exception(
                "ValidationException",
                "Input is too long.",
                Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
            ),
        ]),
        "idle" => Reply::events(vec![first_words(), Ev::Sleep(minute), Ev::text(" late")]),
        other => fake_kiro::broken::broken_reply(other).unwrap_or_else(|| {
            Reply::error(400, &format!("fake Kiro: unknown fault {other:?}"), None)
        }),
    })
}

/// `frames` one-word text frames `interval` apart, then the usage tail (also paced).
fn slow_stream(frames: usize, interval: Duration) -> Reply {
    let mut events: Vec<Ev> = (0..frames).map(|i| Ev::text(&format!("w{i} "))).collect();
    events.push(Ev::Metering(fake_kiro::DEFAULT_CREDITS));
    events.push(Ev::ContextUsage(fake_kiro::DEFAULT_CONTEXT_PCT));
    events.push(Ev::Metadata {
        input: fake_kiro::DEFAULT_INPUT_TOKENS,
        output: frames as u64,
    });
    Reply::events(events).delay_between(interval)
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
