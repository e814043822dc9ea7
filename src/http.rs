//! HTTP framing for the handlers: the incoming request (headers, body read with a size limit),
//! JSON responses, and the start of an SSE response. Records what the access log prints.

use std::io::Read;

use serde_json::Value;

use crate::error::Error;
use crate::sse::SseWriter;

/// One request being served. The tiny_http request is taken when the response starts.
pub struct Incoming {
    request: Option<tiny_http::Request>,
    pub method: String,
    pub path: String,
    pub query: String,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// For the access log.
    pub status: u16,
    pub bytes: usize,
    pub model: String,
    /// Extra response headers (e.g. `x-kiro-gateway-trimmed`).
    pub extra_headers: Vec<(String, String)>,
}

impl Incoming {
    /// Wrap a tiny_http request (the body is not read yet).
    pub fn new(request: tiny_http::Request) -> Incoming {
        let url = request.url().to_string();
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (url, String::new()),
        };
        let headers = request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect();
        Incoming {
            method: request.method().as_str().to_ascii_uppercase(),
            request: Some(request),
            path,
            query,
            headers,
            body: Vec::new(),
            status: 0,
            bytes: 0,
            model: String::new(),
            extra_headers: Vec::new(),
        }
    }

    /// A request header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Read the body, refusing more than `max` bytes (413) and reporting read failures (400).
    pub fn read_body(&mut self, max: usize) -> Result<(), Error> {
        let too_large = || {
            Error::PayloadTooLarge(format!(
                "The request body is larger than {max} bytes (MAX_REQUEST_BODY_BYTES)."
            ))
        };
        if let Some(len) = self
            .header("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            if len > max {
                return Err(too_large());
            }
        }
        let Some(req) = self.request.as_mut() else {
            return Ok(());
        };
        let mut body = Vec::new();
        match req.as_reader().take(max as u64 + 1).read_to_end(&mut body) {
            Ok(_) if body.len() > max => Err(too_large()),
            Ok(_) => {
                self.body = body;
                Ok(())
            }
            Err(e) => Err(Error::BadRequest(format!(
                "Could not read the request body ({e}); the client was too slow or disconnected."
            ))),
        }
    }

    /// Whether a response was already started.
    pub fn responded(&self) -> bool {
        self.request.is_none()
    }

    /// Send a JSON response.
    pub fn respond_json(&mut self, status: u16, body: &Value, extra: &[(&str, String)]) {
        let data = body.to_string().into_bytes();
        self.respond_bytes(status, "application/json", data, extra);
    }

    /// Send a complete response with the given content type.
    pub fn respond_bytes(
        &mut self,
        status: u16,
        content_type: &str,
        data: Vec<u8>,
        extra: &[(&str, String)],
    ) {
        let Some(req) = self.request.take() else {
            return;
        };
        self.status = status;
        self.bytes = data.len();
        let mut resp = tiny_http::Response::from_data(data).with_status_code(status);
        let mut add = |k: &str, v: &str| {
            if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                resp.add_header(h);
            }
        };
        add("Content-Type", content_type);
        add("Access-Control-Allow-Origin", "*");
        for (k, v) in extra {
            add(k, v);
        }
        for (k, v) in &self.extra_headers {
            add(k, v);
        }
        if let Err(e) = req.respond(resp) {
            log::debug!("client went away before the response was sent: {e}");
        }
    }

    /// Start a server-sent-events response (status 200).
    pub fn start_sse(&mut self) -> Result<SseWriter, Error> {
        let req = self
            .request
            .take()
            .ok_or_else(|| Error::Internal("response already started".into()))?;
        self.status = 200;
        let extra: Vec<(&str, String)> = self
            .extra_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        SseWriter::start(req, &extra).map_err(|e| Error::Internal(format!("client gone: {e}")))
    }
}

/// Compare two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | ((a.len() ^ b.len()) >> 8) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
