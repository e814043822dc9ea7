//! HTTP framing for the handlers: the incoming request (headers, body read with a size limit),
//! JSON responses, and the start of an SSE response. Records what the access log prints.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::access_log::RequestRecord;
use crate::error::Error;
use crate::keys::ClientKey;
use crate::sse::SseWriter;

/// tiny_http reads a body of up to this many bytes (without `Expect: 100-continue`) while it parses
/// the head; a longer one stays on the socket until read, and whatever is left unread is drained
/// from the socket when the request is dropped.
const PREREAD_BODY_BYTES: usize = 1024;

/// The slowest upload accepted once `CLIENT_READ_TIMEOUT` has passed, in bytes per second: a client
/// trickling its body just fast enough to dodge the per-read timeout must not hold a worker.
const MIN_UPLOAD_RATE: f64 = 8.0 * 1024.0;

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
    /// The whole body was read from the socket.
    body_read: bool,
    /// When the request was taken up.
    pub started: Instant,
    /// What the access log, the metrics and the status page learn of this request, filled in as
    /// it is served.
    pub record: RequestRecord,
    /// The client key that was presented (once checked).
    pub client: Option<Arc<ClientKey>>,
    /// Tells whether the client has closed its connection (set by the server, which can see the
    /// connection; absent: never known to be gone).
    gone: Option<Box<dyn Fn() -> bool>>,
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
        let (route, api) = crate::access_log::route_of(&path);
        // The SDKs keep this header on every answer and error (`request_id`), so a user's report
        // leads to the access log line.
        let request_id = format!("req_{}", crate::util::random_hex(24));
        let extra_headers = vec![
            ("x-request-id".to_string(), request_id.clone()),
            ("request-id".to_string(), request_id.clone()),
        ];
        let record = RequestRecord {
            unix_ms: crate::util::now_unix_millis(),
            route,
            api,
            request_id,
            ..RequestRecord::default()
        };
        Incoming {
            started: Instant::now(),
            record,
            client: None,
            method: request.method().as_str().to_ascii_uppercase(),
            request: Some(request),
            path,
            query,
            headers,
            body: Vec::new(),
            status: 0,
            bytes: 0,
            model: String::new(),
            extra_headers,
            body_read: false,
            gone: None,
        }
    }

    /// How to tell whether the client has closed its connection.
    pub fn set_gone_check(&mut self, check: impl Fn() -> bool + 'static) {
        self.gone = Some(Box::new(check));
    }

    /// Whether the client has closed its connection: nobody will read the answer.
    pub fn client_gone(&self) -> bool {
        self.gone.as_ref().is_some_and(|check| check())
    }

    /// A request header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Read the body, refusing more than `max` bytes (413) and reporting read failures (400): a
    /// read that waits longer than `timeout` (the socket's own timeout, `CLIENT_READ_TIMEOUT`), or
    /// an upload slower than [`MIN_UPLOAD_RATE`] once `timeout` has passed.
    pub fn read_body(&mut self, max: usize, timeout: Duration) -> Result<(), Error> {
        let too_large = || {
            Error::PayloadTooLarge(format!(
                "The request body is larger than {max} bytes (MAX_REQUEST_BODY_BYTES)."
            ))
        };
        let too_slow = |what: String| {
            Error::BadRequest(format!(
                "Could not read the request body ({what}); the client was too slow or disconnected."
            ))
        };
        if self.content_length().is_some_and(|len| len > max) {
            return Err(too_large());
        }
        let Some(req) = self.request.as_mut() else {
            return Ok(());
        };
        let started = Instant::now();
        let reader = req.as_reader();
        let mut body = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(too_slow(format!(
                        "nothing arrived for {} s, CLIENT_READ_TIMEOUT",
                        timeout.as_secs_f64()
                    )))
                }
                Err(e) => return Err(too_slow(e.to_string())),
            };
            body.extend_from_slice(buf.get(..n).unwrap_or_default());
            if body.len() > max {
                return Err(too_large());
            }
            let allowed = timeout.as_secs_f64() + body.len() as f64 / MIN_UPLOAD_RATE;
            if started.elapsed().as_secs_f64() > allowed {
                return Err(too_slow(format!(
                    "{} bytes in {:.0} s",
                    body.len(),
                    started.elapsed().as_secs_f64()
                )));
            }
        }
        self.body = body;
        self.body_read = true;
        Ok(())
    }

    fn content_length(&self) -> Option<usize> {
        self.header("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok())
    }

    /// Whether part of the body may still be on the socket, to be drained when the request is
    /// dropped (see [`PREREAD_BODY_BYTES`]).
    fn body_left_on_socket(&self) -> bool {
        let expects_continue = self
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        !self.body_read
            && self
                .content_length()
                .is_some_and(|len| len > PREREAD_BODY_BYTES || (expects_continue && len > 0))
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
        if self.body_left_on_socket() {
            // Dropping the request drains the unread body, which a slow client can stretch out
            // for as long as it likes: answer and drain off this thread (a worker or the acceptor).
            let spawned = std::thread::Builder::new()
                .name("drain-body".into())
                .spawn(move || {
                    let _ = req.respond(resp);
                });
            if let Err(e) = spawned {
                log::warn!("could not start a thread to answer a request: {e}");
            }
            return;
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
        let http10 = req.http_version() == &tiny_http::HTTPVersion(1, 0);
        Ok(SseWriter::new(req.into_writer(), http10, &extra))
    }
}
