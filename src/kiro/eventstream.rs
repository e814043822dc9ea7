//! AWS event-stream frame decoder (`docs/kiro-wire.md#event-stream`): bytes in, frames out, CRCs checked.
//!
//! Feed it whatever the socket returned; it yields each complete frame as soon as its last byte
//! arrives. A frame's declared length is checked against the 16 MiB limit as soon as its 12-byte
//! prelude is in, so a corrupt or hostile length never makes us buffer (or allocate) that much.
//! Every error is fatal: an event stream has no resynchronisation point, so after one bad frame
//! the decoder refuses everything that follows.
//!
//! No JSON and no I/O here: turning frames into Kiro events is `kiro::events`' job.

use std::fmt;

/// Largest `total_length` accepted (the AWS limit for one message).
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;
/// Largest `headers_length` accepted (the AWS limit for a message's headers).
pub const MAX_HEADERS_LEN: usize = 128 * 1024;
/// Bytes before the headers: total length, headers length, prelude CRC.
const PRELUDE_LEN: usize = 12;
/// Prelude plus the trailing message CRC: the smallest possible frame.
const MIN_FRAME_LEN: usize = PRELUDE_LEN + 4;
/// A drained buffer bigger than this is given back to the allocator, so one large frame does not
/// pin its memory for the rest of a long stream.
const RETAINED_CAPACITY: usize = 1024 * 1024;

/// A header value (the ten types of the event-stream format; types 0 and 1 are both `Bool`).
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Headers in wire order. Look them up by name; their order carries no meaning.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload bytes as sent (for Kiro: UTF-8 JSON, decoded by `kiro::events`).
    pub payload: Vec<u8>,
}

impl Frame {
    /// The value of a string header, whatever its position.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }

    /// The value of a header of any type, whatever its position (the first if repeated).
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find_map(|(n, v)| if n == name { Some(v) } else { None })
    }
}

/// Why the byte stream is not a valid event stream. Every variant is fatal for the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameError {
    /// The CRC of the first 8 bytes does not match: the lengths cannot be trusted.
    /// `expected` is the CRC written in the frame, `actual` the one computed.
    PreludeCrc { expected: u32, actual: u32 },
    /// The CRC of the whole frame does not match: headers or payload were damaged.
    MessageCrc { expected: u32, actual: u32 },
    /// The prelude declares a frame longer than [`MAX_FRAME_LEN`] (the declared length).
    TooLarge(usize),
    /// Lengths that contradict each other, headers that overrun their block, an unknown header
    /// type or a header name / string value that is not UTF-8.
    Malformed(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::PreludeCrc { expected, actual } => write!(
                f,
                "event-stream prelude CRC mismatch (frame says {expected:#010x}, computed {actual:#010x})"
            ),
            FrameError::MessageCrc { expected, actual } => write!(
                f,
                "event-stream message CRC mismatch (frame says {expected:#010x}, computed {actual:#010x})"
            ),
            FrameError::TooLarge(len) => write!(
                f,
                "event-stream frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit"
            ),
            FrameError::Malformed(why) => write!(f, "malformed event-stream frame: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Incremental decoder for one stream.
///
/// Consumed bytes are not shifted out on every frame: a read offset moves forward and the buffer
/// is compacted only when the consumed prefix is at least half of it (or when keeping it would
/// push the buffer past [`MAX_FRAME_LEN`]), so decoding costs amortised O(1) copies per byte.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the first byte not yet returned as part of a frame. Always `<= buf.len()`.
    pos: usize,
    /// Set by the first error; every later call returns it again.
    failed: Option<FrameError>,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Append bytes as they arrive from the socket. Once the stream has failed, bytes are dropped.
    ///
    /// Call [`Decoder::next_frame`] until it returns `Ok(None)` after each feed; then the buffer
    /// never holds more than one partial frame (≤ [`MAX_FRAME_LEN`]) plus the latest chunk.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() || bytes.is_empty() {
            return;
        }
        if self.pos > 0
            && (self.pos >= self.buf.len() / 2
                || self.buf.len().saturating_add(bytes.len()) > MAX_FRAME_LEN)
        {
            self.compact();
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    ///
    /// After an `Err`, the same error is returned forever: the stream is unusable.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let pending = self.buf.get(self.pos..).unwrap_or_default();
        match decode_frame(pending) {
            Ok(Some((frame, len))) => {
                self.pos += len;
                if self.pos >= self.buf.len() {
                    self.reset_buffer();
                }
                Ok(Some(frame))
            }
            Ok(None) => Ok(None),
            Err(err) => {
                self.failed = Some(err.clone());
                self.reset_buffer();
                self.buf.shrink_to_fit();
                Err(err)
            }
        }
    }

    /// Bytes not yet returned as a frame are waiting: a stream ending now is truncated.
    /// False once the stream has failed (the error already said what is wrong).
    pub fn has_partial(&self) -> bool {
        self.failed.is_none() && self.pos < self.buf.len()
    }

    /// Bytes held in the internal buffer, including an already consumed prefix that is awaiting
    /// compaction. Exposed so tests can check that memory stays bounded.
    pub fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    /// The error that ended the stream, if any.
    pub fn error(&self) -> Option<&FrameError> {
        self.failed.as_ref()
    }

    /// Drop the consumed prefix; the unconsumed tail moves to the front.
    fn compact(&mut self) {
        let start = self.pos.min(self.buf.len());
        self.buf.drain(..start);
        self.pos = 0;
    }

    fn reset_buffer(&mut self) {
        self.buf.clear();
        self.pos = 0;
        if self.buf.capacity() > RETAINED_CAPACITY {
            self.buf.shrink_to(RETAINED_CAPACITY / 16);
        }
    }
}

/// Decode the frame at the start of `bytes`: `Ok(None)` if it is not complete yet, else the frame
/// and how many bytes it took.
fn decode_frame(bytes: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(prelude) = bytes.get(..PRELUDE_LEN) else {
        return Ok(None);
    };
    let (total_len, headers_len) = check_prelude(prelude)?;
    let Some(frame) = bytes.get(..total_len) else {
        return Ok(None);
    };
    let crc_at = total_len - 4; // check_prelude guarantees total_len >= 16
    let expected = be_u32(frame, crc_at)?;
    let actual = crc32(frame.get(..crc_at).unwrap_or_default());
    if expected != actual {
        return Err(FrameError::MessageCrc { expected, actual });
    }
    let header_block = frame
        .get(PRELUDE_LEN..PRELUDE_LEN + headers_len)
        .ok_or_else(|| malformed("header block outside the frame"))?;
    let payload = frame
        .get(PRELUDE_LEN + headers_len..crc_at)
        .ok_or_else(|| malformed("payload outside the frame"))?;
    let headers = parse_headers(header_block)?;
    let frame = Frame {
        headers,
        payload: payload.to_vec(),
    };
    Ok(Some((frame, total_len)))
}

/// Check the prelude's CRC and lengths; returns `(total_length, headers_length)`.
fn check_prelude(prelude: &[u8]) -> Result<(usize, usize), FrameError> {
    let total_len = be_u32(prelude, 0)? as usize;
    let headers_len = be_u32(prelude, 4)? as usize;
    let expected = be_u32(prelude, 8)?;
    let actual = crc32(prelude.get(..8).unwrap_or_default());
    if expected != actual {
        return Err(FrameError::PreludeCrc { expected, actual });
    }
    if total_len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(total_len));
    }
    if total_len < MIN_FRAME_LEN {
        return Err(malformed(format!(
            "total length {total_len} is below the {MIN_FRAME_LEN}-byte minimum"
        )));
    }
    if headers_len > MAX_HEADERS_LEN {
        return Err(malformed(format!(
            "headers length {headers_len} exceeds the {MAX_HEADERS_LEN}-byte limit"
        )));
    }
    if headers_len > total_len - MIN_FRAME_LEN {
        return Err(malformed(format!(
            "headers length {headers_len} does not fit in a {total_len}-byte frame"
        )));
    }
    Ok((total_len, headers_len))
}

fn malformed(why: impl Into<String>) -> FrameError {
    FrameError::Malformed(why.into())
}

fn be_u32(bytes: &[u8], at: usize) -> Result<u32, FrameError> {
    bytes
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| malformed("frame shorter than its prelude says"))
}

/// Reads the header block front to back; every read is bounds-checked.
struct HeaderReader<'a> {
    rest: &'a [u8],
}

impl<'a> HeaderReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| malformed("a header runs past the end of the header block"))?;
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| malformed("short header value"))
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        let [byte] = self.array::<1>()?;
        Ok(byte)
    }

    fn u16_len_bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let len = u16::from_be_bytes(self.array()?) as usize;
        self.take(len)
    }
}

fn parse_headers(block: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut reader = HeaderReader { rest: block };
    let mut headers = Vec::new();
    while !reader.rest.is_empty() {
        let name_len = reader.u8()? as usize;
        let name = std::str::from_utf8(reader.take(name_len)?)
            .map_err(|_| malformed("header name is not UTF-8"))?
            .to_owned();
        let value = match reader.u8()? {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(reader.array()?)),
            3 => HeaderValue::Short(i16::from_be_bytes(reader.array()?)),
            4 => HeaderValue::Int(i32::from_be_bytes(reader.array()?)),
            5 => HeaderValue::Long(i64::from_be_bytes(reader.array()?)),
            6 => HeaderValue::Bytes(reader.u16_len_bytes()?.to_vec()),
            7 => HeaderValue::String(
                std::str::from_utf8(reader.u16_len_bytes()?)
                    .map_err(|_| malformed(format!("header {name:?} is not UTF-8")))?
                    .to_owned(),
            ),
            8 => HeaderValue::Timestamp(i64::from_be_bytes(reader.array()?)),
            9 => HeaderValue::Uuid(reader.array()?),
            other => {
                return Err(malformed(format!(
                    "header {name:?} has unknown type {other}"
                )))
            }
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Encode one frame. Used by tests and by the fake upstream; real traffic only flows the other way.
///
/// Header names longer than 255 bytes and string / byte-array values longer than 65 535 bytes
/// cannot be represented and are cut (strings at a character boundary). A frame over
/// [`MAX_FRAME_LEN`] is still produced; the decoder will reject it.
pub fn encode_frame(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut header_block = Vec::new();
    for (name, value) in headers {
        let name = cut_str(name, u8::MAX as usize);
        header_block.push(name.len() as u8); // cut_str keeps it <= 255
        header_block.extend_from_slice(name.as_bytes());
        encode_header_value(&mut header_block, value);
    }
    let total_len = MIN_FRAME_LEN + header_block.len() + payload.len();
    let mut out = Vec::with_capacity(total_len);
    out.extend_from_slice(&u32::try_from(total_len).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(header_block.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&header_block);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

fn encode_header_value(out: &mut Vec<u8>, value: &HeaderValue) {
    match value {
        HeaderValue::Bool(true) => out.push(0),
        HeaderValue::Bool(false) => out.push(1),
        HeaderValue::Byte(v) => {
            out.push(2);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Short(v) => {
            out.push(3);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Int(v) => {
            out.push(4);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Long(v) => {
            out.push(5);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Bytes(v) => {
            out.push(6);
            let v = v.get(..v.len().min(u16::MAX as usize)).unwrap_or_default();
            out.extend_from_slice(&(v.len() as u16).to_be_bytes()); // cut to <= u16::MAX above
            out.extend_from_slice(v);
        }
        HeaderValue::String(v) => {
            out.push(7);
            let v = cut_str(v, u16::MAX as usize);
            out.extend_from_slice(&(v.len() as u16).to_be_bytes()); // cut to <= u16::MAX above
            out.extend_from_slice(v.as_bytes());
        }
        HeaderValue::Timestamp(v) => {
            out.push(8);
            out.extend_from_slice(&v.to_be_bytes());
        }
        HeaderValue::Uuid(v) => {
            out.push(9);
            out.extend_from_slice(v);
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut_str(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// CRC-32 lookup tables for slicing-by-8 (reflected IEEE polynomial `0xEDB88320`).
/// `CRC_TABLES[0]` is the classic byte-at-a-time table; table `k` advances a byte by `k` more
/// zero bytes, which lets the main loop fold 8 input bytes per step.
static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        tables[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = tables[k - 1][i];
            tables[k][i] = (prev >> 8) ^ tables[0][(prev & 0xFF) as usize];
            k += 1;
        }
        i += 1;
    }
    tables
}

/// CRC-32 (IEEE 802.3 / zlib: reflected, init and final XOR `0xFFFFFFFF`) of `bytes`.
/// By hand (size): a table and a loop, where a crate would bring SIMD variants we do not need.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_update(0, bytes)
}

/// Continue a CRC-32: `crc32_update(crc32(a), b) == crc32(a ++ b)`, and `crc32_update(0, b)`
/// is `crc32(b)`.
pub fn crc32_update(crc: u32, bytes: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut c = !crc;
    let mut blocks = bytes.chunks_exact(8);
    for block in &mut blocks {
        if let [b0, b1, b2, b3, b4, b5, b6, b7] = *block {
            let lo = u32::from_le_bytes([b0, b1, b2, b3]) ^ c;
            let hi = u32::from_le_bytes([b4, b5, b6, b7]);
            // Masked or shifted to < 256: these indexes cannot go out of bounds.
            c = t[7][(lo & 0xFF) as usize]
                ^ t[6][((lo >> 8) & 0xFF) as usize]
                ^ t[5][((lo >> 16) & 0xFF) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xFF) as usize]
                ^ t[2][((hi >> 8) & 0xFF) as usize]
                ^ t[1][((hi >> 16) & 0xFF) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
    }
    for &b in blocks.remainder() {
        c = t[0][((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appendix A of the protocol spec, byte for byte.
    const GOLDEN_HEX: &str = concat!(
        "0000007c 0000005c 3bddcf78",
        "0b 3a6576656e742d74797065 07 0016 617373697374616e74526573706f6e73654576656e74",
        "0d 3a636f6e74656e742d74797065 07 0010 6170706c69636174696f6e2f6a736f6e",
        "0d 3a6d6573736167652d74797065 07 0005 6576656e74",
        "7b22636f6e74656e74223a224869227d",
        "b02babdc",
    );

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn golden() -> Vec<u8> {
        unhex(GOLDEN_HEX)
    }

    fn text_frame(event: &str, payload: &str) -> Vec<u8> {
        encode_frame(
            &[
                (":message-type", HeaderValue::String("event".into())),
                (":event-type", HeaderValue::String(event.into())),
                (
                    ":content-type",
                    HeaderValue::String("application/json".into()),
                ),
            ],
            payload.as_bytes(),
        )
    }

    /// A stream of frames of varied sizes, plus the frames it should decode to.
    fn sample_stream() -> (Vec<u8>, Vec<Frame>) {
        let mut bytes = Vec::new();
        let mut frames = Vec::new();
        let payloads = [
            String::new(),
            r#"{"content":"Hello"}"#.to_string(),
            format!(r#"{{"content":"{}"}}"#, "x".repeat(700)),
            r#"{"usage":0.25}"#.to_string(),
        ];
        for (i, payload) in payloads.iter().enumerate() {
            let encoded = text_frame(&format!("event{i}"), payload);
            let mut decoder = Decoder::new();
            decoder.feed(&encoded);
            frames.push(decoder.next_frame().unwrap().unwrap());
            bytes.extend_from_slice(&encoded);
        }
        bytes.extend_from_slice(&golden());
        frames.push(golden_frame());
        (bytes, frames)
    }

    fn golden_frame() -> Frame {
        Frame {
            headers: vec![
                (
                    ":event-type".into(),
                    HeaderValue::String("assistantResponseEvent".into()),
                ),
                (
                    ":content-type".into(),
                    HeaderValue::String("application/json".into()),
                ),
                (":message-type".into(), HeaderValue::String("event".into())),
            ],
            payload: br#"{"content":"Hi"}"#.to_vec(),
        }
    }

    fn drain(decoder: &mut Decoder) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(frame) = decoder.next_frame().unwrap() {
            out.push(frame);
        }
        out
    }

    /// A prelude with a valid CRC announcing the given lengths.
    fn prelude(total_len: u32, headers_len: u32) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&total_len.to_be_bytes());
        p.extend_from_slice(&headers_len.to_be_bytes());
        let crc = crc32(&p);
        p.extend_from_slice(&crc.to_be_bytes());
        p
    }

    #[test]
    fn crc32_matches_the_zlib_check_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn crc32_update_continues_across_any_split() {
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        let whole = crc32(&data);
        for cut in 0..=data.len() {
            assert_eq!(crc32_update(crc32(&data[..cut]), &data[cut..]), whole);
        }
    }

    #[test]
    fn golden_frame_decodes_with_its_crcs() {
        let bytes = golden();
        assert_eq!(bytes.len(), 124);
        assert_eq!(crc32(&bytes[..8]), 0x3bdd_cf78);
        assert_eq!(crc32(&bytes[..120]), 0xb02b_abdc);
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        let frame = decoder.next_frame().unwrap().unwrap();
        assert_eq!(frame, golden_frame());
        assert_eq!(
            frame.header_str(":event-type"),
            Some("assistantResponseEvent")
        );
        assert_eq!(frame.header_str(":message-type"), Some("event"));
        assert_eq!(decoder.next_frame(), Ok(None));
        assert!(!decoder.has_partial());
    }

    #[test]
    fn encode_frame_produces_the_golden_bytes() {
        let encoded = encode_frame(
            &[
                (
                    ":event-type",
                    HeaderValue::String("assistantResponseEvent".into()),
                ),
                (
                    ":content-type",
                    HeaderValue::String("application/json".into()),
                ),
                (":message-type", HeaderValue::String("event".into())),
            ],
            br#"{"content":"Hi"}"#,
        );
        assert_eq!(encoded, golden());
    }

    #[test]
    fn header_lookup_ignores_header_order() {
        let mut headers = golden_frame().headers;
        headers.reverse();
        let refs: Vec<(&str, HeaderValue)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        let mut decoder = Decoder::new();
        decoder.feed(&encode_frame(&refs, b"{}"));
        let frame = decoder.next_frame().unwrap().unwrap();
        assert_eq!(
            frame.header_str(":event-type"),
            Some("assistantResponseEvent")
        );
        assert_eq!(frame.header_str(":message-type"), Some("event"));
        assert_eq!(
            frame.header(":content-type"),
            Some(&HeaderValue::String("application/json".into()))
        );
    }

    #[test]
    fn frame_split_at_every_offset_decodes() {
        let (bytes, expected) = sample_stream();
        for cut in 0..=bytes.len() {
            let mut decoder = Decoder::new();
            let mut got = Vec::new();
            decoder.feed(&bytes[..cut]);
            got.extend(drain(&mut decoder));
            decoder.feed(&bytes[cut..]);
            got.extend(drain(&mut decoder));
            assert_eq!(got, expected, "split at {cut}");
            assert!(!decoder.has_partial());
        }
    }

    #[test]
    fn stream_fed_one_byte_at_a_time_yields_each_frame_on_its_last_byte() {
        let (bytes, expected) = sample_stream();
        // Where each frame's last byte is, read from the length fields.
        let mut ends = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            at += u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            ends.push(at);
        }
        assert_eq!(ends.len(), expected.len());
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        for (i, byte) in bytes.iter().enumerate() {
            decoder.feed(std::slice::from_ref(byte));
            while let Some(frame) = decoder.next_frame().unwrap() {
                assert!(ends.contains(&(i + 1)), "frame emitted early at byte {i}");
                got.push(frame);
            }
            assert_eq!(got.len(), ends.iter().filter(|&&e| e <= i + 1).count());
        }
        assert_eq!(got, expected);
        assert!(!decoder.has_partial());
    }

    #[test]
    fn many_frames_in_one_feed_all_decode() {
        let mut bytes = Vec::new();
        for i in 0..1000 {
            bytes.extend(text_frame(
                "assistantResponseEvent",
                &format!(r#"{{"content":"{i}"}}"#),
            ));
        }
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        let frames = drain(&mut decoder);
        assert_eq!(frames.len(), 1000);
        assert_eq!(frames[999].payload, br#"{"content":"999"}"#);
        assert!(!decoder.has_partial());
        assert_eq!(decoder.buffer_len(), 0);
    }

    #[test]
    fn corrupted_prelude_crc_is_rejected() {
        let mut bytes = golden();
        bytes[9] ^= 0x01;
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::PreludeCrc {
                expected: 0x3bdc_cf78,
                actual: 0x3bdd_cf78
            })
        );
    }

    #[test]
    fn corrupted_length_is_caught_by_the_prelude_crc() {
        let mut bytes = golden();
        bytes[3] = 0x7d;
        let mut decoder = Decoder::new();
        decoder.feed(&bytes[..12]);
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::PreludeCrc { .. })
        ));
    }

    #[test]
    fn corrupted_payload_fails_the_message_crc() {
        let mut bytes = golden();
        bytes[110] ^= 0x20;
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::MessageCrc {
                expected: 0xb02b_abdc,
                ..
            })
        ));
    }

    #[test]
    fn corrupted_message_crc_is_rejected() {
        let mut bytes = golden();
        bytes[123] ^= 0xFF;
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::MessageCrc {
                expected: 0xb02b_ab23,
                actual: 0xb02b_abdc
            })
        );
    }

    #[test]
    fn decoder_stays_failed_after_an_error() {
        let mut bad = golden();
        bad[123] ^= 0xFF;
        let mut decoder = Decoder::new();
        decoder.feed(&bad);
        let err = decoder.next_frame().unwrap_err();
        decoder.feed(&golden());
        assert_eq!(decoder.next_frame(), Err(err.clone()));
        assert_eq!(decoder.next_frame(), Err(err.clone()));
        assert_eq!(decoder.error(), Some(&err));
        assert_eq!(decoder.buffer_len(), 0);
        assert!(!decoder.has_partial());
    }

    #[test]
    fn frames_before_a_bad_one_are_still_delivered() {
        let mut bytes = golden();
        let mut bad = golden();
        bad[115] ^= 0x01;
        bytes.extend(bad);
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        assert_eq!(decoder.next_frame(), Ok(Some(golden_frame())));
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::MessageCrc { .. })
        ));
    }

    #[test]
    fn truncated_stream_waits_and_reports_partial() {
        let bytes = golden();
        for cut in 1..bytes.len() {
            let mut decoder = Decoder::new();
            decoder.feed(&bytes[..cut]);
            assert_eq!(decoder.next_frame(), Ok(None), "cut at {cut}");
            assert!(decoder.has_partial(), "cut at {cut}");
        }
        let mut decoder = Decoder::new();
        assert!(!decoder.has_partial());
        decoder.feed(&bytes);
        decoder.feed(&bytes[..5]);
        assert!(decoder.next_frame().unwrap().is_some());
        assert_eq!(decoder.next_frame(), Ok(None));
        assert!(decoder.has_partial());
    }

    #[test]
    fn every_header_type_round_trips() {
        let headers = vec![
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("byte", HeaderValue::Byte(-7)),
            ("short", HeaderValue::Short(-12345)),
            ("int", HeaderValue::Int(-2_000_000_000)),
            ("long", HeaderValue::Long(-9_000_000_000_000_000_000)),
            ("bytes", HeaderValue::Bytes(vec![0, 255, 1, 254])),
            ("empty", HeaderValue::Bytes(Vec::new())),
            ("string", HeaderValue::String("héllo 世界".into())),
            ("ts", HeaderValue::Timestamp(1_767_225_600_123)),
            (
                "uuid",
                HeaderValue::Uuid([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]),
            ),
        ];
        let encoded = encode_frame(&headers, b"payload");
        // Type tags on the wire, in order: 0 and 1 for the booleans, then 2..=9.
        let mut decoder = Decoder::new();
        decoder.feed(&encoded);
        let frame = decoder.next_frame().unwrap().unwrap();
        let expected: Vec<(String, HeaderValue)> = headers
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        assert_eq!(frame.headers, expected);
        assert_eq!(frame.payload, b"payload");
        assert_eq!(encoded[12 + 2], 0); // "t" → type 0
        assert_eq!(encoded[12 + 2 + 3], 1); // "f" → type 1
    }

    #[test]
    fn unknown_header_type_is_malformed() {
        let mut block = vec![1, b'x', 10];
        block.extend_from_slice(&[0; 4]);
        let mut bytes = prelude(16 + block.len() as u32, block.len() as u32);
        bytes.extend_from_slice(&block);
        let crc = crc32(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn header_overrunning_its_block_is_malformed() {
        // A string header announcing 200 bytes in a 10-byte header block.
        let block = [1, b's', 7, 0, 200, b'a', b'b', b'c', b'd', b'e'];
        let mut bytes = prelude(16 + block.len() as u32 + 3, block.len() as u32);
        bytes.extend_from_slice(&block);
        bytes.extend_from_slice(b"xyz");
        let crc = crc32(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn oversize_length_is_rejected_from_the_prelude_alone() {
        let mut decoder = Decoder::new();
        decoder.feed(&prelude(u32::MAX, 0));
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::TooLarge(u32::MAX as usize))
        );
        assert_eq!(decoder.buffer_len(), 0);
        assert!(
            decoder.buf.capacity() < 1024,
            "nothing was allocated for it"
        );

        let mut decoder = Decoder::new();
        decoder.feed(&prelude(MAX_FRAME_LEN as u32 + 1, 0));
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::TooLarge(MAX_FRAME_LEN + 1))
        );
    }

    #[test]
    fn largest_allowed_length_waits_for_its_bytes() {
        let mut decoder = Decoder::new();
        decoder.feed(&prelude(MAX_FRAME_LEN as u32, 0));
        assert_eq!(decoder.next_frame(), Ok(None));
        assert!(decoder.has_partial());
        assert!(decoder.buf.capacity() < 1024, "no allocation up front");
    }

    #[test]
    fn inconsistent_lengths_are_malformed() {
        for (total, headers) in [
            (0, 0),
            (15, 0),
            (16, 1),
            (100, 85),
            (200_000, MAX_HEADERS_LEN as u32 + 1),
        ] {
            let mut decoder = Decoder::new();
            decoder.feed(&prelude(total, headers));
            assert!(
                matches!(decoder.next_frame(), Err(FrameError::Malformed(_))),
                "total {total}, headers {headers}"
            );
        }
    }

    #[test]
    fn empty_frame_is_valid() {
        let bytes = encode_frame(&[], b"");
        assert_eq!(bytes.len(), 16);
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        assert_eq!(
            decoder.next_frame(),
            Ok(Some(Frame {
                headers: Vec::new(),
                payload: Vec::new()
            }))
        );
    }

    #[test]
    fn buffer_is_compacted_instead_of_growing() {
        let frame = text_frame("assistantResponseEvent", &"y".repeat(1000));
        let mut stream = Vec::new();
        for _ in 0..2000 {
            stream.extend_from_slice(&frame);
        }
        let mut decoder = Decoder::new();
        let mut count = 0;
        let mut peak = 0;
        for chunk in stream.chunks(1500) {
            decoder.feed(chunk);
            peak = peak.max(decoder.buffer_len());
            count += drain(&mut decoder).len();
        }
        assert_eq!(count, 2000);
        assert!(peak <= 2 * (frame.len() + 1500), "peak buffer {peak}");
    }

    #[test]
    fn encode_frame_cuts_overlong_names_at_a_char_boundary() {
        let name = "é".repeat(200); // 400 bytes
        let bytes = encode_frame(&[(name.as_str(), HeaderValue::Bool(true))], b"");
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        let frame = decoder.next_frame().unwrap().unwrap();
        assert_eq!(frame.headers[0].0, "é".repeat(127));
    }
}
