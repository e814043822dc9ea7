//! The answer of a management call (model list, usage limits): the body of a 200, or Kiro's
//! refusal as [`Error::Upstream`] with its message and reason. Reads at most a bounded body.

use std::io::Read;

use crate::error::Error;
use crate::kiro::refusal::error_message;

/// The body text of a successful answer to `sent`, read up to `max_body` bytes.
pub(crate) fn ok_body(
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    max_body: u64,
) -> Result<String, Error> {
    let resp = sent.map_err(|e| Error::Network {
        message: e.to_string(),
        timeout: matches!(e, ureq::Error::Timeout(_)),
    })?;
    let status = resp.status().as_u16();
    let mut text = String::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(max_body)
        .read_to_string(&mut text);
    if status != 200 {
        let (message, reason) = error_message(&text);
        return Err(Error::Upstream {
            status,
            message,
            reason,
            retry_after: None,
        });
    }
    Ok(text)
}
