//! The streaming response writer: the HTTP head and a chunked body written by hand on the raw
//! connection, one chunk per event, flushed at once so the client sees each token as it arrives.
//!
//! (tiny_http buffers a reader-based chunked body; writing on `Request::into_writer()` does not.)
//! It writes to any [`Write`], so tests read back exactly the bytes a client would get. A write
//! error means the client went away: callers stop and release the upstream.

use std::io::{self, Write};
use std::time::Instant;

/// Writes one server-sent-events response.
///
/// Events are gathered in a buffer and leave on [`SseWriter::flush`]: the relay flushes whenever
/// no further Kiro frame is already waiting, so the first token still leaves at once, while a
/// fast stream goes out in few large writes. The buffer never grows past [`MAX_BUFFER`].
pub struct SseWriter<W: Write = Box<dyn Write + Send>> {
    out: W,
    chunked: bool,
    bytes: usize,
    finished: bool,
    buf: Vec<u8>,
    /// When the head and the first events left (the client's time to first token).
    first_sent: Option<Instant>,
}

/// Buffered bytes that force a write even before the relay asks for one.
const MAX_BUFFER: usize = 64 * 1024;

impl<W: Write> SseWriter<W> {
    /// Queue the response head (`200`, `text/event-stream`) and return the writer. An HTTP/1.0
    /// client gets the body unchunked, ended by closing the connection. `extra` headers are added
    /// as given (names and values must be ASCII without CR/LF).
    pub fn new(out: W, http10: bool, extra: &[(&str, String)]) -> SseWriter<W> {
        let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\nX-Accel-Buffering: no\r\n");
        if http10 {
            head.push_str("Connection: close\r\n");
        } else {
            head.push_str("Transfer-Encoding: chunked\r\n");
        }
        for (k, v) in extra {
            if !k.contains(['\r', '\n']) && !v.contains(['\r', '\n']) {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str(&format!(
            "Date: {}\r\n\r\n",
            httpdate::fmt_http_date(std::time::SystemTime::now())
        ));
        // The head leaves with the first event (the caller flushes once Kiro's first frame is
        // relayed, and Kiro's first frame is already here when a stream starts).
        // Small to start: an open stream keeps its buffer, and most streams are slow.
        let mut buf = Vec::with_capacity(1024);
        buf.extend_from_slice(head.as_bytes());
        SseWriter {
            out,
            chunked: !http10,
            bytes: 0,
            finished: false,
            buf,
            first_sent: None,
        }
    }

    /// Queue one event (`event: NAME` when given, then `data: ...`); it leaves on the next
    /// [`SseWriter::flush`].
    pub fn event(&mut self, name: Option<&str>, data: &str) -> io::Result<()> {
        let len = name.map_or(0, |n| n.len() + 8) + data.len() + 8;
        self.begin_chunk(len);
        if let Some(n) = name {
            self.buf.extend_from_slice(b"event: ");
            self.buf.extend_from_slice(n.as_bytes());
            self.buf.push(b'\n');
        }
        self.buf.extend_from_slice(b"data: ");
        self.buf.extend_from_slice(data.as_bytes());
        self.buf.extend_from_slice(b"\n\n");
        self.end_chunk(len)
    }

    /// Queue an SSE comment line (`: text`), used as a keep-alive.
    pub fn comment(&mut self, text: &str) -> io::Result<()> {
        let len = text.len() + 4;
        self.begin_chunk(len);
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(text.as_bytes());
        self.buf.extend_from_slice(b"\n\n");
        self.end_chunk(len)
    }

    fn begin_chunk(&mut self, len: usize) {
        if self.chunked {
            self.buf
                .extend_from_slice(format!("{len:x}\r\n").as_bytes());
        }
    }

    fn end_chunk(&mut self, len: usize) -> io::Result<()> {
        if self.chunked {
            self.buf.extend_from_slice(b"\r\n");
        }
        self.bytes += len;
        if self.buf.len() >= MAX_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// Send everything queued, now.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
            if self.first_sent.is_none() {
                self.first_sent = Some(Instant::now());
            }
        }
        self.out.flush()
    }

    /// End the body properly (the terminating chunk), so the connection can be reused.
    pub fn finish(mut self) -> io::Result<usize> {
        self.end()?;
        Ok(self.bytes)
    }

    fn end(&mut self) -> io::Result<()> {
        self.finished = true;
        if self.chunked {
            self.buf.extend_from_slice(b"0\r\n\r\n");
        }
        self.flush()
    }

    /// End the body and hand back the output (tests read what a client would have received).
    pub fn into_inner(mut self) -> io::Result<W> {
        self.end()?;
        Ok(self.out)
    }

    /// When the first events were sent, if they were.
    pub fn first_sent(&self) -> Option<Instant> {
        self.first_sent
    }

    /// Body bytes written so far.
    pub fn bytes_written(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes).to_string();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn events_are_chunked_and_the_body_ends_with_the_last_chunk() {
        let mut w = SseWriter::new(Vec::new(), false, &[]);
        w.event(Some("ping"), "{}").unwrap();
        w.comment("keep-alive").unwrap();
        w.event(None, "[DONE]").unwrap();
        let out = w.into_inner().unwrap();
        let head = String::from_utf8_lossy(&out).to_string();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("Transfer-Encoding: chunked\r\n"));
        assert_eq!(
            body_of(&out),
            "16\r\nevent: ping\ndata: {}\n\n\r\ne\r\n: keep-alive\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
        );
    }

    #[test]
    fn an_http_1_0_client_gets_a_plain_body_and_connection_close() {
        let mut w = SseWriter::new(Vec::new(), true, &[]);
        w.event(None, "x").unwrap();
        assert_eq!(w.bytes_written(), 9);
        let out = w.into_inner().unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        assert!(text.contains("Connection: close\r\n"));
        assert!(!text.contains("chunked"));
        assert_eq!(body_of(&out), "data: x\n\n");
    }

    #[test]
    fn extra_headers_with_line_breaks_are_dropped() {
        let extra = [
            ("x-kiro-gateway-trimmed", "2 turns".to_string()),
            ("x-bad", "a\r\nSet-Cookie: b".to_string()),
        ];
        let out = SseWriter::new(Vec::new(), false, &extra)
            .into_inner()
            .unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        assert!(text.contains("x-kiro-gateway-trimmed: 2 turns\r\n"));
        assert!(!text.contains("x-bad"));
    }

    #[test]
    fn nothing_leaves_before_a_flush() {
        let mut out = Vec::new();
        let mut w = SseWriter::new(&mut out, false, &[]);
        w.event(None, "x").unwrap();
        drop(w);
        assert!(out.is_empty());
        let mut w = SseWriter::new(&mut out, false, &[]);
        w.event(None, "x").unwrap();
        w.flush().unwrap();
        drop(w);
        assert!(String::from_utf8_lossy(&out).ends_with("data: x\n\n\r\n"));
    }

    /// A connection the client has closed.
    struct Gone;

    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_gone_client_is_a_write_error_on_flush() {
        let mut w = SseWriter::new(Gone, false, &[]);
        w.event(None, "x").unwrap();
        assert!(w.flush().is_err());
    }
}
