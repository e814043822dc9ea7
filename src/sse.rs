//! The streaming response writer: the HTTP head and a chunked body written by hand on the raw
//! connection, one chunk per event, flushed at once so the client sees each token as it arrives.
//!
//! (tiny_http buffers a reader-based chunked body; writing on `Request::into_writer()` does not.)
//! A write error means the client went away: callers stop and release the upstream.

use std::io::{self, Write};

/// Writes one server-sent-events response.
pub struct SseWriter {
    out: Box<dyn Write + Send>,
    chunked: bool,
    bytes: usize,
    finished: bool,
}

impl SseWriter {
    /// Send the response head (`200`, `text/event-stream`) and return the writer.
    /// `extra` headers are added as given (names and values must be ASCII without CR/LF).
    pub fn start(request: tiny_http::Request, extra: &[(&str, String)]) -> io::Result<SseWriter> {
        let http10 = request.http_version() == &tiny_http::HTTPVersion(1, 0);
        let mut out = request.into_writer();
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
        out.write_all(head.as_bytes())?;
        out.flush()?;
        Ok(SseWriter {
            out,
            chunked: !http10,
            bytes: 0,
            finished: false,
        })
    }

    /// Write one event (`event: NAME` when given, then `data: ...`) and flush it.
    pub fn event(&mut self, name: Option<&str>, data: &str) -> io::Result<()> {
        let mut body = String::with_capacity(data.len() + 32);
        if let Some(n) = name {
            body.push_str("event: ");
            body.push_str(n);
            body.push('\n');
        }
        body.push_str("data: ");
        body.push_str(data);
        body.push_str("\n\n");
        self.write_chunk(body.as_bytes())
    }

    /// Write an SSE comment line (`: text`), used as a keep-alive.
    pub fn comment(&mut self, text: &str) -> io::Result<()> {
        self.write_chunk(format!(": {text}\n\n").as_bytes())
    }

    fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if self.chunked {
            let mut buf = Vec::with_capacity(data.len() + 16);
            buf.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            buf.extend_from_slice(data);
            buf.extend_from_slice(b"\r\n");
            self.out.write_all(&buf)?;
        } else {
            self.out.write_all(data)?;
        }
        self.bytes += data.len();
        self.out.flush()
    }

    /// End the body properly (the terminating chunk), so the connection can be reused.
    pub fn finish(mut self) -> io::Result<usize> {
        self.finished = true;
        if self.chunked {
            self.out.write_all(b"0\r\n\r\n")?;
        }
        self.out.flush()?;
        Ok(self.bytes)
    }

    /// Body bytes written so far.
    pub fn bytes_written(&self) -> usize {
        self.bytes
    }
}
