//! The process logger: one line per record on stderr with a UTC timestamp, and an optional
//! per-thread capture so that `debug` can save the log lines of one request (`app_logs.txt`).
//!
//! Our own because the capture must be per request (per worker thread), which off-the-shelf
//! loggers cannot do. Never log a token or key: callers pass redacted values.

use std::cell::RefCell;
use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

use crate::util::{format_iso8601, now_unix_millis, IsoStyle};

thread_local! {
    static CAPTURE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

struct Logger {
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
            || CAPTURE.with(|c| c.borrow().is_some()) && metadata.target().starts_with("kiro")
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ts = format_iso8601(now_unix_millis() as i64, IsoStyle::MillisZ);
        let line = format!(
            "{ts} {:<5} [{}] {}",
            record.level(),
            record.target(),
            record.args()
        );
        CAPTURE.with(|c| {
            if let Some(buf) = c.borrow_mut().as_mut() {
                if buf.len() < 10_000 {
                    buf.push(line.clone());
                }
            }
        });
        if record.level() <= self.level {
            let mut bytes = line.into_bytes();
            bytes.push(b'\n');
            let _ = std::io::stderr().lock().write_all(&bytes);
        }
    }

    fn flush(&self) {}
}

/// Install the logger. Calling it twice is harmless (the second call is ignored).
pub fn init(level: LevelFilter) {
    if log::set_logger(Box::leak(Box::new(Logger { level }))).is_ok() {
        // Debug records must reach `log` so that per-request capture can keep them.
        log::set_max_level(LevelFilter::Debug.max(level));
    }
}

/// Start capturing this thread's log lines (for one request's `app_logs.txt`).
pub fn start_capture() {
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
}

/// Stop capturing and return the lines captured since `start_capture`.
pub fn take_capture() -> Vec<String> {
    CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default()
}
