//! The process logger: `simple_logger` writes one line per record to stderr (UTC timestamp, no
//! colours); this module only adds a per-thread capture, so that `debug` can save the log lines
//! of one request (`app_logs.txt`). Never log a token or key: callers pass redacted values.

use std::cell::RefCell;
use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};
use simple_logger::SimpleLogger;

use crate::util::{format_iso8601, now_unix_millis, IsoStyle};

/// Lines one request may capture; a runaway loop must not grow its buffer without bound.
const MAX_CAPTURED_LINES: usize = 10_000;

thread_local! {
    static CAPTURE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// `simple_logger` at the configured level, plus the gateway's own debug records for a thread
/// that is capturing.
struct Logger {
    output: SimpleLogger,
    level: LevelFilter,
}

fn capturing() -> bool {
    CAPTURE.with(|c| c.borrow().is_some())
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level || capturing() && metadata.target().starts_with("kiro")
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        CAPTURE.with(|c| {
            if let Some(lines) = c.borrow_mut().as_mut() {
                if lines.len() < MAX_CAPTURED_LINES {
                    let ts = format_iso8601(now_unix_millis() as i64, IsoStyle::MillisZ);
                    lines.push(format!(
                        "{ts} {:<5} [{}] {}",
                        record.level(),
                        record.target(),
                        record.args()
                    ));
                }
            }
        });
        if self.output.enabled(record.metadata()) {
            // simple_logger writes with eprintln!, which panics when stderr is gone (a closed
            // pipe, a log shipper that died): every log call would then panic, and the signal
            // thread with it, leaving a gateway that SIGTERM no longer stops. The same line,
            // written here, with a failed write ignored.
            let ts = format_iso8601(now_unix_millis() as i64, IsoStyle::MillisZ);
            let line = format!(
                "{ts} {:<5} [{}] {}\n",
                record.level(),
                record.target(),
                record.args()
            );
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Install the logger. Calling it twice is harmless (the second call is ignored).
pub fn init(level: LevelFilter) {
    // No colours: the crate's `colors` feature is off (logs go to journald and files).
    let output = SimpleLogger::new().with_level(level).with_utc_timestamps();
    if log::set_boxed_logger(Box::new(Logger { output, level })).is_ok() {
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
