//! Deterministic fuzzing of the request parsers (issue 6, item 7).
//!
//! A xorshift PRNG with fixed seeds feeds `parse_chat_request` (and, for breadth, the Anthropic
//! and Responses parsers) with random bytes, random JSON, valid requests mutated node by node
//! (values swapped for other types, keys dropped, arrays grown) and valid requests damaged byte
//! by byte (flips, cuts, insertions). The property: every input gives `Ok` or an `Err` with a
//! message — never a panic — and the valid seeds themselves parse. Bounded so it runs in well
//! under five seconds in a debug build.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use kiro_gateway::anthropic::request::{parse_messages_request, Purpose};
use kiro_gateway::error::Error;
use kiro_gateway::openai::request::parse_chat_request;
use kiro_gateway::responses::request::parse_responses_request;
use serde_json::{json, Map, Value};

const MAX_IMAGE: usize = 64 * 1024;

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Words the parsers look for, so random objects often hit real fields.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "image_url",
    "url",
    "stream",
    "stream_options",
    "include_usage",
    "tools",
    "function",
    "name",
    "description",
    "parameters",
    "tool_calls",
    "id",
    "arguments",
    "tool_call_id",
    "tool_choice",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "stop",
    "reasoning_effort",
    "system",
    "thinking",
    "budget_tokens",
    "tool_use",
    "tool_result",
    "input",
    "source",
    "data",
    "media_type",
    "instructions",
    "previous_response_id",
    "input_text",
    "output_text",
    "function_call",
    "call_id",
    "output",
    "cache_control",
    "signature",
    "redacted_thinking",
    "metadata",
];

const STRINGS: &[&str] = &[
    "",
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "wizard",
    "text",
    "image_url",
    "tool_use",
    "tool_result",
    "thinking",
    "claude-sonnet-4-5",
    "auto",
    "none",
    "required",
    "data:image/png;base64,iVBORw0KGgo=",
    "data:image/png;base64,!!!!",
    "data:;base64,",
    "http://example.com/x.png",
    "{\"a\":",
    "{}",
    "[]",
    "\u{0}",
    "\u{feff}",
    "🦀🦀",
    "\u{10ffff}",
    "a\nb\r\n",
    "xxx",
];

fn random_json(rng: &mut Rng, depth: usize) -> Value {
    let leaf = depth == 0 || rng.chance(3);
    if leaf {
        return match rng.below(7) {
            0 => Value::Null,
            1 => json!(rng.chance(2)),
            2 => json!(rng.next() as i64),
            3 => json!((rng.next() % 1000) as f64 / 7.0),
            4 => json!(u64::MAX),
            5 => json!(*rng.pick(KEYS)),
            _ => json!(*rng.pick(STRINGS)),
        };
    }
    if rng.chance(2) {
        let n = rng.below(5);
        Value::Array((0..n).map(|_| random_json(rng, depth - 1)).collect())
    } else {
        let n = rng.below(6);
        let mut m = Map::new();
        for _ in 0..n {
            m.insert(rng.pick(KEYS).to_string(), random_json(rng, depth - 1));
        }
        Value::Object(m)
    }
}

fn seeds() -> Vec<Value> {
    vec![
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]}),
        json!({"model": "claude-sonnet-4-5", "stream": true, "stream_options": {"include_usage": true},
               "max_tokens": 100, "temperature": 0.2, "stop": ["END"],
               "messages": [
                 {"role": "system", "content": "Be terse."},
                 {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                   {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
                 {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                   "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]},
                 {"role": "tool", "tool_call_id": "call_1", "content": "result"},
                 {"role": "user", "content": "and now?"}],
               "tools": [{"type": "function", "function": {"name": "lookup", "description": "find",
                 "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
               "tool_choice": "auto", "reasoning_effort": "high"}),
        json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "system": [{"type": "text", "text": "sys"}],
               "thinking": {"type": "enabled", "budget_tokens": 2000},
               "messages": [
                 {"role": "user", "content": "Use the tool"},
                 {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"},
                   {"type": "tool_use", "id": "tu_1", "name": "lookup", "input": {"q": "x"}}]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "r"}]}],
               "tools": [{"name": "lookup", "description": "find", "input_schema": {"type": "object"}}]}),
        json!({"model": "claude-sonnet-4-5", "instructions": "Be kind.",
               "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
                         {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                         {"type": "function_call_output", "call_id": "c1", "output": "ok"}],
               "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}),
    ]
}

/// Replace, remove or add one node somewhere in `v`.
fn mutate_tree(rng: &mut Rng, v: &mut Value, depth: usize) {
    let here = depth > 6 || rng.chance(3);
    match v {
        Value::Object(m) if !m.is_empty() && !here => {
            let key = m.keys().nth(rng.below(m.len())).cloned().unwrap();
            match rng.below(6) {
                0 => {
                    m.remove(&key);
                }
                1 => {
                    m.insert(rng.pick(KEYS).to_string(), random_json(rng, 3));
                }
                _ => mutate_tree(rng, m.get_mut(&key).unwrap(), depth + 1),
            }
        }
        Value::Array(a) if !a.is_empty() && !here => match rng.below(6) {
            0 => {
                a.remove(rng.below(a.len()));
            }
            1 => {
                let dup = a[rng.below(a.len())].clone();
                for _ in 0..rng.below(40) {
                    a.push(dup.clone());
                }
            }
            _ => {
                let i = rng.below(a.len());
                mutate_tree(rng, &mut a[i], depth + 1);
            }
        },
        _ => *v = random_json(rng, 3),
    }
}

/// Flip, cut, insert or duplicate bytes.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            bytes.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(bytes.len());
        match rng.below(5) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes.truncate(at),
            2 => bytes.insert(at, *rng.pick(b"{}[]\",:\\\x00\xff\xc3 0-eE".as_slice())),
            3 => {
                let end = (at + rng.below(16)).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                bytes.splice(at..at, piece);
            }
            _ => bytes[at] = rng.next() as u8,
        }
    }
}

/// Every parser on `input`; a panic fails the test with the input that caused it.
fn feed(input: &[u8], stats: &mut [usize; 2]) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let results = [
            parse_chat_request(input, MAX_IMAGE).err(),
            parse_messages_request(input, MAX_IMAGE, Purpose::Generate).err(),
            parse_messages_request(input, MAX_IMAGE, Purpose::CountTokens).err(),
            parse_responses_request(input, MAX_IMAGE).err(),
        ];
        for e in results.iter().flatten() {
            // Refusals are client errors with something to read, never an internal error.
            assert!(!e.to_string().trim().is_empty());
            assert!(
                matches!(
                    e,
                    Error::BadRequest(_)
                        | Error::PayloadTooLarge(_)
                        | Error::ContextLengthExceeded(_)
                        | Error::NotFound(_)
                        | Error::ModelNotFound { .. }
                ),
                "{e:?}"
            );
        }
        results[0].is_none()
    }));
    match outcome {
        Ok(true) => stats[0] += 1,
        Ok(false) => stats[1] += 1,
        Err(_) => panic!(
            "a parser panicked on input ({} bytes): {:?}",
            input.len(),
            String::from_utf8_lossy(input)
        ),
    }
}

#[test]
fn valid_seed_requests_parse() {
    let s = seeds();
    assert!(parse_chat_request(s[0].to_string().as_bytes(), MAX_IMAGE).is_ok());
    assert!(parse_chat_request(s[1].to_string().as_bytes(), MAX_IMAGE).is_ok());
    assert!(
        parse_messages_request(s[2].to_string().as_bytes(), MAX_IMAGE, Purpose::Generate).is_ok()
    );
    assert!(parse_responses_request(s[3].to_string().as_bytes(), MAX_IMAGE).is_ok());
}

#[test]
fn parsers_never_panic_on_random_and_mutated_input() {
    // Keep the default panic message quiet while catch_unwind probes; report the input instead.
    let started = Instant::now();
    let mut stats = [0usize; 2];
    let seeds = seeds();
    for seed in [1u64, 0x9E37_79B9_7F4A_7C15, 42, 0xDEAD_BEEF] {
        let mut rng = Rng(seed);
        // Random bytes.
        for _ in 0..300 {
            let n = rng.below(300);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            feed(&bytes, &mut stats);
        }
        // Random JSON documents.
        for _ in 0..400 {
            let v = random_json(&mut rng, 5);
            feed(v.to_string().as_bytes(), &mut stats);
        }
        // Valid requests mutated node by node, sometimes several times.
        for _ in 0..800 {
            let mut v = rng.pick(&seeds).clone();
            for _ in 0..1 + rng.below(3) {
                mutate_tree(&mut rng, &mut v, 0);
            }
            feed(v.to_string().as_bytes(), &mut stats);
        }
        // Valid requests damaged byte by byte.
        for _ in 0..500 {
            let mut bytes = rng.pick(&seeds).to_string().into_bytes();
            mutate_bytes(&mut rng, &mut bytes);
            feed(&bytes, &mut stats);
        }
    }
    // Pathological shapes: deep nesting, huge numbers, long strings, many messages.
    let deep = "[".repeat(100_000);
    feed(deep.as_bytes(), &mut stats);
    let deep_obj = format!(
        "{{\"model\":\"claude-sonnet-4-5\",\"messages\":[{{\"role\":\"user\",\"content\":{}1{}}}]}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    feed(deep_obj.as_bytes(), &mut stats);
    feed(br#"{"model":"claude-sonnet-4-5","max_tokens":1e999,"messages":[{"role":"user","content":"x"}]}"#, &mut stats);
    feed(br#"{"model":"claude-sonnet-4-5","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}"#, &mut stats);
    let many = json!({"model": "claude-sonnet-4-5",
        "messages": (0..5000).map(|i| json!({"role": if i % 2 == 0 {"user"} else {"assistant"}, "content": "x"})).collect::<Vec<_>>()});
    feed(many.to_string().as_bytes(), &mut stats);
    let long = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "é".repeat(1 << 20)}]});
    feed(long.to_string().as_bytes(), &mut stats);

    // The mutations reach both outcomes, so the parsers were really exercised.
    assert!(
        stats[0] > 100 && stats[1] > 1000,
        "accepted {}, refused {}",
        stats[0],
        stats[1]
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
