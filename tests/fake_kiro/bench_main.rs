//! Stand-alone fake Kiro for the benchmark:
//! `cargo run --release --example fake_kiro -- --port 9000 [--frames N] [--frame-bytes B] [--words W]`.
//!
//! Serves forever on 127.0.0.1:PORT and prints `listening on http://127.0.0.1:PORT` once.
//! Inference calls get a short text reply of W words, or — when the current user message
//! contains `BENCH_LONG_STREAM` — N frames of B bytes (default 51200 × 1024 = 50 MB) built once
//! and reused. It must stay cheap per request: no recording, no logging, no per-request
//! allocation of the long stream.
#![cfg_attr(test, allow(dead_code))]

#[path = "mod.rs"]
mod fake_kiro;

use fake_kiro::{FakeKiro, Reply};
use std::io::Write;

/// The marker in the last user message that selects the long stream.
const LONG_STREAM_MARKER: &str = "BENCH_LONG_STREAM";

struct Args {
    port: u16,
    frames: usize,
    frame_bytes: usize,
    words: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        frames: 51_200,
        frame_bytes: 1024,
        words: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = number(&flag, &value()?)?,
            "--frames" => args.frames = number(&flag, &value()?)?,
            "--frame-bytes" => args.frame_bytes = number(&flag, &value()?)?,
            "--words" => args.words = number(&flag, &value()?)?,
            "-h" | "--help" => {
                println!("usage: fake_kiro [--port P] [--frames N] [--frame-bytes B] [--words W]");
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
    let long = Reply::long_stream(args.frames, args.frame_bytes);
    fake.set_reply_fn(move |request| {
        request
            .user_content()
            .filter(|content| content.contains(LONG_STREAM_MARKER))
            .map(|_| long.clone())
    });
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", fake.url());
    let _ = stdout.flush();
    loop {
        std::thread::park();
    }
}
