//! Per-request debug capture (`DEBUG_MODE`, `DEBUG_DIR`): the six files of the original project,
//! kept in memory per request (no state shared between concurrent requests) and written when the
//! request ends — always in `all` mode (the last request to finish wins), only on failure in
//! `errors` mode. Known secrets are replaced by `[REDACTED]` before anything is written.

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::Value;

use crate::config::DebugMode;

/// Serialises the final write of the directory (the buffers themselves are per request).
static WRITE_LOCK: Mutex<()> = Mutex::new(());

/// The capture of one request.
pub struct DebugCapture {
    mode: DebugMode,
    dir: PathBuf,
    secrets: Vec<String>,
    request_body: Option<Vec<u8>>,
    kiro_body: Option<Vec<u8>>,
    raw: Vec<u8>,
    modified: String,
    error: Option<(u16, String)>,
}

impl DebugCapture {
    /// A capture for one request; `secrets` are redacted from every file.
    pub fn new(mode: DebugMode, dir: PathBuf, secrets: Vec<String>) -> DebugCapture {
        if mode != DebugMode::Off {
            crate::logger::start_capture();
        }
        DebugCapture {
            mode,
            dir,
            secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect(),
            request_body: None,
            kiro_body: None,
            raw: Vec::new(),
            modified: String::new(),
            error: None,
        }
    }

    /// A capture that records nothing.
    pub fn off() -> DebugCapture {
        DebugCapture::new(DebugMode::Off, PathBuf::new(), Vec::new())
    }

    /// Whether anything is recorded.
    pub fn enabled(&self) -> bool {
        self.mode != DebugMode::Off
    }

    /// Whether the raw Kiro stream should be kept.
    pub fn wants_raw(&self) -> bool {
        self.enabled()
    }

    pub fn client_request(&mut self, body: &[u8]) {
        if self.enabled() {
            self.request_body = Some(body.to_vec());
        }
    }

    pub fn kiro_request(&mut self, body: &impl serde::Serialize) {
        if self.enabled() {
            self.kiro_body = serde_json::to_vec_pretty(body).ok();
        }
    }

    pub fn raw_stream(&mut self, bytes: Vec<u8>) {
        if self.enabled() {
            self.raw = bytes;
        }
    }

    /// A piece of what was sent to the client.
    pub fn modified(&mut self, text: &str) {
        if self.enabled() && self.modified.len() < 8 * 1024 * 1024 {
            self.modified.push_str(text);
        }
    }

    /// The request failed with this status and message.
    pub fn error(&mut self, status: u16, message: &str) {
        if self.enabled() {
            self.error = Some((status, message.to_string()));
        }
    }

    /// More values to redact (the current tokens, which may have been refreshed while the
    /// request ran).
    pub fn add_secrets(&mut self, secrets: impl IntoIterator<Item = String>) {
        if self.enabled() {
            for s in secrets {
                if s.len() >= 4 && !self.secrets.contains(&s) {
                    self.secrets.push(s);
                }
            }
        }
    }

    fn redact(&self, text: &str) -> String {
        let mut t = text.to_string();
        for s in &self.secrets {
            if t.contains(s.as_str()) {
                t = t.replace(s.as_str(), "[REDACTED]");
            }
        }
        t
    }

    /// Byte-wise, so binary data (the raw event stream) is redacted too.
    fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for s in &self.secrets {
            out = replace_bytes(&out, s.as_bytes(), b"[REDACTED]");
        }
        out
    }

    /// The request ended: write the files if the mode says so.
    pub fn finish(self) {
        if self.mode == DebugMode::Off {
            return;
        }
        let logs = crate::logger::take_capture();
        if self.mode == DebugMode::Errors && self.error.is_none() {
            return;
        }
        let _guard = WRITE_LOCK.lock();
        if let Err(e) = self.write(&logs) {
            log::warn!("could not write debug logs to {}: {e}", self.dir.display());
        }
    }

    fn write(&self, logs: &[String]) -> std::io::Result<()> {
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir)?;
        if let Some(b) = &self.request_body {
            let pretty = serde_json::from_slice::<Value>(b)
                .ok()
                .and_then(|v| serde_json::to_vec_pretty(&v).ok())
                .unwrap_or_else(|| b.clone());
            std::fs::write(
                self.dir.join("request_body.json"),
                self.redact_bytes(&pretty),
            )?;
        }
        if let Some(b) = &self.kiro_body {
            std::fs::write(
                self.dir.join("kiro_request_body.json"),
                self.redact_bytes(b),
            )?;
        }
        if !self.raw.is_empty() {
            std::fs::write(
                self.dir.join("response_stream_raw.txt"),
                self.redact_bytes(&self.raw),
            )?;
        }
        if !self.modified.is_empty() {
            std::fs::write(
                self.dir.join("response_stream_modified.txt"),
                self.redact(&self.modified),
            )?;
        }
        if !logs.is_empty() {
            std::fs::write(self.dir.join("app_logs.txt"), self.redact(&logs.join("\n")))?;
        }
        if let Some((status, message)) = &self.error {
            let info =
                serde_json::json!({"status_code": status, "error_message": self.redact(message)});
            std::fs::write(
                self.dir.join("error_info.json"),
                serde_json::to_vec_pretty(&info).unwrap_or_default(),
            )?;
        }
        Ok(())
    }
}

/// `haystack` with every occurrence of `needle` replaced by `with`.
fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack.get(i..i + needle.len()) == Some(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.extend_from_slice(haystack.get(i..i + 1).unwrap_or_default());
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_inside_binary_data() {
        let mut raw = vec![0u8, 0xff, 0xfe];
        raw.extend_from_slice(b"token=abcd1234;abcd1234");
        raw.push(0x80);
        let out = replace_bytes(&raw, b"abcd1234", b"[REDACTED]");
        assert_eq!(&out[..3], &[0u8, 0xff, 0xfe]);
        assert_eq!(&out[3..out.len() - 1], b"token=[REDACTED];[REDACTED]");
        assert_eq!(replace_bytes(b"ab", b"abc", b"x"), b"ab");
        assert_eq!(replace_bytes(b"abc", b"", b"x"), b"abc");
    }
}
