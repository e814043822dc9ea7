//! Deterministic fuzzing of the event-stream decoder and the event mapper.
//!
//! A tiny xorshift PRNG with fixed seeds drives random bytes, valid streams and mutated streams
//! (bit flips, truncation, corrupted and huge length fields) through `Decoder` in random chunk
//! sizes, and every decoded frame through `decode_event`. The properties: nothing panics, the
//! buffer never holds more than one maximal frame plus the chunk just fed, a valid stream decodes
//! to exactly the frames that were encoded, and frames that lie wholly before the first damaged
//! byte still decode unchanged. Iterations are bounded so the test stays fast in debug builds.

use kiro_gateway::kiro::events::{decode_event, KiroEvent};
use kiro_gateway::kiro::eventstream::{
    crc32, encode_frame, Decoder, Frame, FrameError, HeaderValue, MAX_FRAME_LEN,
};

/// xorshift64* — enough randomness for fuzzing, fully reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const EVENT_TYPES: &[&str] = &[
    "assistantResponseEvent",
    "codeEvent",
    "toolUseEvent",
    "reasoningContentEvent",
    "meteringEvent",
    "contextUsageEvent",
    "metadataEvent",
    "messageMetadataEvent",
    "invalidStateEvent",
    "followupPromptEvent",
    "somethingNewEvent",
];

const PAYLOADS: &[&str] = &[
    r#"{"content":"Hello, world"}"#,
    r#"{"content":"Привет, 世界 🎉"}"#,
    r#"{"assistantResponseEvent":{"content":"wrapped"}}"#,
    r#"{"content":"x","followupPrompt":{"content":"y"}}"#,
    r#"{"name":"read","toolUseId":"t1"}"#,
    r#"{"input":"{\"path\":\"/a\"","name":"read","toolUseId":"t1"}"#,
    r#"{"input":{"cmd":"ls"},"name":"sh","stop":true,"toolUseId":"t2"}"#,
    r#"{"text":"thinking","signature":"sig"}"#,
    r#"{"unit":"credit","unitPlural":"credits","usage":0.25}"#,
    r#"{"contextUsagePercentage":42.5}"#,
    r#"{"tokenUsage":{"outputTokens":5,"totalTokens":9},"stopReason":"end_turn"}"#,
    r#"{"reason":"STALE_CONVERSATION","message":"stale"}"#,
    r#"{"message":"Rate exceeded","reason":"USER_REQUEST_RATE_EXCEEDED"}"#,
    r#"{"content":5}"#,
    r#"{"usage":"NaN"}"#,
    r#"[1,2,3]"#,
    r#"{"content":"unterminated"#,
    "",
    "plain text",
    "{}",
];

fn random_header_value(rng: &mut Rng) -> HeaderValue {
    match rng.below(10) {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(rng.next() as i8),
        3 => HeaderValue::Short(rng.next() as i16),
        4 => HeaderValue::Int(rng.next() as i32),
        5 => HeaderValue::Long(rng.next() as i64),
        6 => {
            let len = rng.below(40);
            HeaderValue::Bytes(rng.bytes(len))
        }
        7 => HeaderValue::String(format!("value-{}-é", rng.below(1000))),
        8 => HeaderValue::Timestamp(rng.next() as i64),
        _ => {
            let mut uuid = [0u8; 16];
            uuid.copy_from_slice(&rng.bytes(16));
            HeaderValue::Uuid(uuid)
        }
    }
}

/// One random but valid frame: message type, event type, random extra headers (all ten types),
/// a payload that is usually JSON and sometimes random or large.
fn random_frame(rng: &mut Rng) -> (Vec<(String, HeaderValue)>, Vec<u8>) {
    let mut headers: Vec<(String, HeaderValue)> = Vec::new();
    let message_type = rng.pick(&["event", "event", "event", "exception", "error", "other"]);
    if !rng.chance(8) {
        headers.push((
            ":message-type".into(),
            HeaderValue::String(message_type.into()),
        ));
    }
    if !rng.chance(10) {
        headers.push((
            ":event-type".into(),
            HeaderValue::String(rng.pick(EVENT_TYPES).into()),
        ));
    }
    match message_type {
        "exception" if rng.chance(2) => headers.push((
            ":exception-type".into(),
            HeaderValue::String("ThrottlingException".into()),
        )),
        "error" if rng.chance(2) => {
            headers.push((":error-code".into(), HeaderValue::String("Boom".into())));
            headers.push((":error-message".into(), HeaderValue::String("bad".into())));
        }
        _ => {}
    }
    for _ in 0..rng.below(4) {
        let name = format!("x-{}", rng.below(100));
        headers.push((name, random_header_value(rng)));
    }
    // Header order must not matter: shuffle.
    for i in (1..headers.len()).rev() {
        let j = rng.below(i + 1);
        headers.swap(i, j);
    }
    let payload = match rng.below(12) {
        0 => {
            let len = rng.below(300);
            rng.bytes(len)
        }
        1 => format!(r#"{{"content":"{}"}}"#, "z".repeat(rng.below(20_000))).into_bytes(),
        _ => PAYLOADS[rng.below(PAYLOADS.len())].as_bytes().to_vec(),
    };
    (headers, payload)
}

fn encode(headers: &[(String, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let refs: Vec<(&str, HeaderValue)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    encode_frame(&refs, payload)
}

/// A valid stream, its frames, and the offset where each frame ends.
fn random_stream(rng: &mut Rng, frames: usize) -> (Vec<u8>, Vec<Frame>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    let mut ends = Vec::new();
    for _ in 0..frames {
        let (headers, payload) = random_frame(rng);
        bytes.extend(encode(&headers, &payload));
        ends.push(bytes.len());
        expected.push(Frame { headers, payload });
    }
    (bytes, expected, ends)
}

/// What happened when a byte string was pushed through the decoder.
struct Outcome {
    frames: Vec<Frame>,
    error: Option<FrameError>,
    partial: bool,
}

/// Feed `bytes` in random chunks, draining after each feed; check the memory bound and that
/// every frame goes through `decode_event` without panicking.
fn run(rng: &mut Rng, bytes: &[u8], max_chunk: usize) -> Outcome {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    let mut error = None;
    let mut at = 0;
    while at < bytes.len() {
        let chunk = 1 + rng.below(max_chunk);
        let end = (at + chunk).min(bytes.len());
        decoder.feed(&bytes[at..end]);
        assert!(
            decoder.buffer_len() <= MAX_FRAME_LEN + (end - at),
            "buffer {} exceeds one frame plus the chunk",
            decoder.buffer_len()
        );
        at = end;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    check_event(&frame);
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(err) => {
                    // Fatal and sticky.
                    assert_eq!(decoder.next_frame(), Err(err.clone()));
                    assert!(!decoder.has_partial());
                    error = Some(err);
                    break;
                }
            }
        }
        if error.is_some() {
            // Later bytes must be dropped, not buffered.
            decoder.feed(&bytes[at..]);
            assert_eq!(decoder.buffer_len(), 0);
            break;
        }
    }
    Outcome {
        frames,
        error,
        partial: decoder.has_partial(),
    }
}

/// `decode_event` must not panic, and its result must agree with the frame in the basics.
fn check_event(frame: &Frame) {
    let result = decode_event(frame);
    if let Ok(KiroEvent::Text(_)) = &result {
        assert!(std::str::from_utf8(&frame.payload).is_ok());
    }
    if std::str::from_utf8(&frame.payload).is_err() {
        // Only events that are not read (ignored types) or that end the reply anyway
        // (exceptions, read leniently) may come out of a payload that is not UTF-8.
        assert!(
            matches!(
                result,
                Err(_) | Ok(KiroEvent::Ignored(_)) | Ok(KiroEvent::Exception { .. })
            ),
            "non-UTF-8 payload decoded as {result:?}"
        );
    }
}

#[test]
fn random_bytes_never_panic_and_stay_bounded() {
    let mut rng = Rng::new(0x5EED_0001);
    for _ in 0..5000 {
        let len = rng.below(2048);
        let bytes = rng.bytes(len);
        let outcome = run(&mut rng, &bytes, 64);
        // Random bytes with a matching CRC-32 are vanishingly unlikely.
        assert!(outcome.frames.is_empty());
        assert!(outcome.error.is_some() || outcome.partial || bytes.len() < 12);
    }
}

#[test]
fn valid_streams_decode_fully_in_any_chunking() {
    let mut rng = Rng::new(0x5EED_0002);
    for round in 0..150 {
        let count = 1 + rng.below(12);
        let (bytes, expected, _) = random_stream(&mut rng, count);
        let max_chunk = [1, 7, 64, 1000, 70_000][round % 5];
        let outcome = run(&mut rng, &bytes, max_chunk);
        assert_eq!(outcome.error, None, "round {round}");
        assert!(!outcome.partial, "round {round}");
        assert_eq!(outcome.frames, expected, "round {round}");
    }
}

#[test]
fn mutated_streams_never_panic_and_keep_the_undamaged_prefix() {
    let mut rng = Rng::new(0x5EED_0003);
    for round in 0..3000 {
        let count = 1 + rng.below(8);
        let (mut bytes, expected, ends) = random_stream(&mut rng, count);
        let (damage, first_damage) = mutate(&mut rng, &mut bytes, &ends);
        let max_chunk = 1 + rng.below(3000);
        let outcome = run(&mut rng, &bytes, max_chunk);
        // Every frame that ends before the first damaged byte must come out unchanged.
        let intact = ends.iter().filter(|&&end| end <= first_damage).count();
        assert!(
            outcome.frames.len() >= intact,
            "round {round}: {} frames, {intact} intact",
            outcome.frames.len()
        );
        assert_eq!(
            &outcome.frames[..intact],
            &expected[..intact],
            "round {round}"
        );
        match damage {
            // CRC-32 catches every such flip pattern here; the damaged frame never comes out.
            Damage::BitFlips | Damage::LengthGarbage => {
                assert!(
                    outcome.error.is_some(),
                    "round {round}: damage not detected"
                );
                assert_eq!(outcome.frames.len(), intact, "round {round}");
            }
            // A cut stream is not an error: it is a partial frame, unless cut on a boundary.
            Damage::Truncated => {
                assert_eq!(outcome.error, None, "round {round}");
                assert_eq!(outcome.frames.len(), intact, "round {round}");
                let on_boundary = first_damage == 0 || ends.contains(&first_damage);
                assert_eq!(outcome.partial, !on_boundary, "round {round}");
            }
            Damage::HugePrelude => {
                assert!(
                    matches!(outcome.error, Some(FrameError::TooLarge(_))),
                    "round {round}: {:?}",
                    outcome.error
                );
                assert_eq!(outcome.frames.len(), intact, "round {round}");
            }
            // A rewritten length with a valid prelude CRC may be refused, may wait for bytes that
            // never come, or may fail the message CRC; it must never yield a wrong frame.
            Damage::LengthRewritten => {
                assert!(
                    outcome.error.is_some() || outcome.partial,
                    "round {round}: rewritten length went unnoticed"
                );
                assert_eq!(outcome.frames.len(), intact, "round {round}");
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    BitFlips,
    Truncated,
    LengthGarbage,
    LengthRewritten,
    HugePrelude,
}

/// Damage the stream one of several ways; returns how, and the offset of the first changed byte
/// (for a truncation: where the stream was cut).
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, ends: &[usize]) -> (Damage, usize) {
    let frame_start = |i: usize| if i == 0 { 0 } else { ends[i - 1] };
    match rng.below(5) {
        // Flip a few bits anywhere.
        0 => {
            let mut first = bytes.len();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
                first = first.min(at);
            }
            (Damage::BitFlips, first)
        }
        // Truncate anywhere: frames ending at or before the cut must survive.
        1 => {
            let cut = rng.below(bytes.len());
            bytes.truncate(cut);
            (Damage::Truncated, cut)
        }
        // Overwrite a frame's total or headers length with random garbage (prelude CRC now wrong).
        2 => {
            let start = frame_start(rng.below(ends.len()));
            let field = start + 4 * rng.below(2);
            let garbage = (rng.next() as u32).to_be_bytes();
            bytes[field..field + 4].copy_from_slice(&garbage);
            (Damage::LengthGarbage, start)
        }
        // Rewrite a length and fix the prelude CRC, so only the length checks or the message
        // CRC can catch it.
        3 => {
            let start = frame_start(rng.below(ends.len()));
            let total = match rng.below(4) {
                0 => rng.next() as u32,
                1 => rng.below(40) as u32,
                2 => (MAX_FRAME_LEN + rng.below(1000)) as u32,
                _ => u32::from_be_bytes(bytes[start..start + 4].try_into().unwrap())
                    .wrapping_add(rng.below(64) as u32)
                    .wrapping_sub(32),
            };
            let original = u32::from_be_bytes(bytes[start..start + 4].try_into().unwrap());
            // The rewrite must change something, or it is no damage at all.
            let total = if total == original { total ^ 1 } else { total };
            bytes[start..start + 4].copy_from_slice(&total.to_be_bytes());
            if rng.chance(3) {
                let headers = rng.next() as u32 % 300_000;
                bytes[start + 4..start + 8].copy_from_slice(&headers.to_be_bytes());
            }
            let crc = crc32(&bytes[start..start + 8]);
            bytes[start + 8..start + 12].copy_from_slice(&crc.to_be_bytes());
            (Damage::LengthRewritten, start)
        }
        // Insert a prelude claiming a huge frame (valid CRC) between frames.
        _ => {
            let at = frame_start(rng.below(ends.len()));
            let total =
                (MAX_FRAME_LEN as u64 + 1 + rng.next() % (u32::MAX as u64 - MAX_FRAME_LEN as u64))
                    as u32;
            let mut prelude = Vec::new();
            prelude.extend_from_slice(&total.to_be_bytes());
            prelude.extend_from_slice(&0u32.to_be_bytes());
            let crc = crc32(&prelude);
            prelude.extend_from_slice(&crc.to_be_bytes());
            bytes.splice(at..at, prelude);
            (Damage::HugePrelude, at)
        }
    }
}

#[test]
fn huge_declared_lengths_are_refused_before_buffering() {
    let mut rng = Rng::new(0x5EED_0004);
    for _ in 0..200 {
        let total =
            MAX_FRAME_LEN as u64 + 1 + rng.next() % (u32::MAX as u64 - MAX_FRAME_LEN as u64);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(total as u32).to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        bytes.extend(rng.bytes(4096));
        let outcome = run(&mut rng, &bytes, 16);
        assert_eq!(outcome.error, Some(FrameError::TooLarge(total as usize)));
        assert!(outcome.frames.is_empty());
    }
}

#[test]
fn a_maximal_frame_streams_through_with_bounded_memory() {
    // One frame of exactly MAX_FRAME_LEN bytes, then a small one, fed in 256 KiB chunks.
    let headers = [(":event-type", HeaderValue::String("codeEvent".into()))];
    let overhead = encode_frame(&headers, b"").len();
    let big = encode_frame(&headers, &vec![b'a'; MAX_FRAME_LEN - overhead]);
    assert_eq!(big.len(), MAX_FRAME_LEN);
    let mut bytes = big;
    bytes.extend(encode_frame(&headers, br#"{"content":"end"}"#));
    let mut rng = Rng::new(0x5EED_0005);
    let outcome = run(&mut rng, &bytes, 256 * 1024);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.frames.len(), 2);
    assert_eq!(outcome.frames[0].payload.len(), MAX_FRAME_LEN - overhead);
    assert_eq!(
        decode_event(&outcome.frames[1]),
        Ok(KiroEvent::Text("end".into()))
    );
}
