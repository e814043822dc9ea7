//! An open reply from Kiro, read on the worker that serves the request and decoded frame by frame
//! as the bytes arrive.
//!
//! There is no reader thread: each read of the response body blocks for at most one *tick* (the
//! per-read timeout the request was sent with), so waiting for a frame with a deadline is a loop
//! of reads, and a reply that is dropped (an attempt given up at the first-token timeout, a client
//! that left) closes its connection at once instead of leaving a thread and a socket waiting.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::kiro::events::{decode_event, KiroEvent};
use crate::kiro::eventstream::{Decoder, Frame};

/// Raw stream bytes kept for the debug files, at most.
const MAX_RAW_CAPTURE: usize = 32 * 1024 * 1024;
/// Bytes asked of the connection per read at first: a burst of frames that is already here is
/// taken in one read (and then written to the client in one write). Every open stream holds one.
const READ_BUFFER: usize = 8 * 1024;
/// A reply that keeps filling the buffer (a fast bulk stream) gets a larger one, up to this: fewer
/// reads and writes per byte, while slow streams keep the small one.
const MAX_READ_BUFFER: usize = 128 * 1024;

/// What the next read of the reply gave.
#[derive(Debug)]
pub enum Next {
    Event(KiroEvent),
    /// Nothing arrived within the wait; the stream is still open.
    Idle,
    /// The reply ended cleanly.
    End,
}

/// An open reply from Kiro.
pub struct Upstream {
    /// None once the body ended (the connection went back to the pool or was closed).
    body: Option<Box<dyn Read + Send>>,
    buf: Vec<u8>,
    decoder: Decoder,
    frames: VecDeque<Frame>,
    raw: Option<Vec<u8>>,
    /// Which account served the reply (for logs and stickiness).
    pub account: String,
}

impl Upstream {
    /// A reply whose body is read from `body`; each read of it returns within the request's
    /// per-read timeout (an error of kind `TimedOut` or `WouldBlock` when nothing came).
    pub fn new(body: Box<dyn Read + Send>, capture_raw: bool, account: String) -> Upstream {
        Upstream {
            body: Some(body),
            buf: Vec::new(),
            decoder: Decoder::new(),
            frames: VecDeque::new(),
            raw: capture_raw.then(Vec::new),
            account,
        }
    }

    /// Bytes from the connection: into the decoder, and into the debug capture when kept.
    fn take_in(&mut self, n: usize) {
        let Some(bytes) = self.buf.get(..n) else {
            return;
        };
        if let Some(raw) = self.raw.as_mut() {
            if raw.len() < MAX_RAW_CAPTURE {
                raw.extend_from_slice(bytes);
            }
        }
        self.decoder.feed(bytes);
    }

    fn decode_buffered(&mut self) -> Result<(), Error> {
        while let Some(frame) = self
            .decoder
            .next_frame()
            .map_err(|e| Error::Stream(format!("invalid event-stream frame: {e}")))?
        {
            self.frames.push_back(frame);
        }
        Ok(())
    }

    /// One read of the body. `Ok(false)`: nothing came within the tick.
    fn read_once(&mut self) -> Result<bool, Error> {
        let Some(body) = self.body.as_mut() else {
            return Ok(false);
        };
        if self.buf.len() < READ_BUFFER {
            self.buf.resize(READ_BUFFER, 0);
        }
        match body.read(&mut self.buf) {
            Ok(0) => {
                self.body = None;
                self.buf = Vec::new();
                Ok(true)
            }
            Ok(n) => {
                self.take_in(n);
                if n == self.buf.len() && n < MAX_READ_BUFFER {
                    self.buf.resize(n * 2, 0);
                }
                Ok(true)
            }
            Err(e) if is_tick(&e) => Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
            Err(e) => {
                self.body = None;
                Err(Error::Stream(format!("the connection to Kiro broke: {e}")))
            }
        }
    }

    /// Read until a whole frame is buffered or the stream ended; `Ok(false)` when `wait` passed
    /// first (give or take one tick).
    pub(crate) fn fill(&mut self, wait: Duration) -> Result<bool, Error> {
        let deadline = Instant::now() + wait;
        loop {
            self.decode_buffered()?;
            if !self.frames.is_empty() {
                return Ok(true);
            }
            if self.body.is_none() {
                if self.decoder.has_partial() {
                    return Err(Error::Stream(
                        "the connection closed in the middle of a frame".into(),
                    ));
                }
                return Ok(true);
            }
            if !self.read_once()? && Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// The next event, waiting at most `wait` for it (give or take one tick).
    pub fn next(&mut self, wait: Duration) -> Result<Next, Error> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                match decode_event(&frame) {
                    Ok(ev) => return Ok(Next::Event(ev)),
                    // Skipping it would change the answer without telling the client
                    // (docs/kiro-wire.md#events).
                    Err(e) if e.loses_answer => return Err(Error::Stream(e.to_string())),
                    Err(e) => {
                        log::warn!("skipping an undecodable Kiro event: {}", e.message);
                        continue;
                    }
                }
            }
            if !self.fill(wait)? {
                return Ok(Next::Idle);
            }
            if self.frames.is_empty() && self.body.is_none() {
                return Ok(Next::End);
            }
        }
    }

    /// When the first buffered frame is an exception: its kind, message and reason.
    pub(crate) fn leading_exception(&self) -> Option<(String, String, Option<String>)> {
        let frame = self.frames.front()?;
        match decode_event(frame) {
            Ok(KiroEvent::Exception {
                kind,
                message,
                reason,
            }) => Some((kind, message, reason)),
            _ => None,
        }
    }

    /// Whether another frame is already decoded: the writer then gathers it into the same write
    /// instead of flushing now. Never waits.
    pub fn has_pending(&mut self) -> bool {
        if self.frames.is_empty() {
            let _ = self.decode_buffered();
        }
        !self.frames.is_empty()
    }

    /// The raw bytes received so far, when capture was enabled (debug logs).
    pub fn take_raw(&mut self) -> Option<Vec<u8>> {
        self.raw.take()
    }
}

/// Whether a read error only says that nothing came within the per-read timeout.
fn is_tick(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
        || matches!(
            e.get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>()),
            Some(ureq::Error::Timeout(ureq::Timeout::PerRead))
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// A body that gives its chunks one read at a time, with a timeout between them.
    struct Script(VecDeque<Option<Vec<u8>>>);

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop_front() {
                None => Ok(0),
                Some(None) => Err(io::Error::new(ErrorKind::TimedOut, "tick")),
                Some(Some(bytes)) => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    Ok(bytes.len())
                }
            }
        }
    }

    fn frame(event: &str, payload: &str) -> Vec<u8> {
        use crate::kiro::eventstream::{encode_frame, HeaderValue};
        encode_frame(
            &[
                (":event-type", HeaderValue::String(event.into())),
                (
                    ":content-type",
                    HeaderValue::String("application/json".into()),
                ),
                (":message-type", HeaderValue::String("event".into())),
            ],
            payload.as_bytes(),
        )
    }

    #[test]
    fn a_timed_out_read_is_idle_and_the_stream_goes_on() {
        let f = frame("assistantResponseEvent", r#"{"content":"hi"}"#);
        let script = Script(VecDeque::from(vec![None, Some(f)]));
        let mut up = Upstream::new(Box::new(script), false, "a".into());
        assert!(matches!(up.next(Duration::ZERO).unwrap(), Next::Idle));
        assert!(matches!(
            up.next(Duration::ZERO).unwrap(),
            Next::Event(KiroEvent::Text(t)) if t == "hi"
        ));
        assert!(matches!(up.next(Duration::ZERO).unwrap(), Next::End));
    }

    #[test]
    fn a_burst_read_at_once_is_pending_for_one_write() {
        let mut both = frame("assistantResponseEvent", r#"{"content":"a"}"#);
        both.extend(frame("assistantResponseEvent", r#"{"content":"b"}"#));
        let mut up = Upstream::new(
            Box::new(Script(VecDeque::from(vec![Some(both)]))),
            true,
            "a".into(),
        );
        assert!(matches!(up.next(Duration::ZERO).unwrap(), Next::Event(_)));
        assert!(up.has_pending());
        assert!(matches!(up.next(Duration::ZERO).unwrap(), Next::Event(_)));
        assert!(!up.has_pending());
        assert!(up.take_raw().is_some_and(|r| !r.is_empty()));
    }

    #[test]
    fn a_cut_inside_a_frame_is_an_error() {
        let f = frame("assistantResponseEvent", r#"{"content":"hi"}"#);
        let half = f[..f.len() / 2].to_vec();
        let mut up = Upstream::new(
            Box::new(Script(VecDeque::from(vec![Some(half)]))),
            false,
            "a".into(),
        );
        assert!(up.next(Duration::ZERO).is_err());
    }
}
