//! The size of a body: image limits, the byte budget and trimming of the oldest turns
//! (`docs/kiro-wire.md#body-size`), and the token estimate of what the model reads.

use std::io;

use super::normalise::Prepared;
use super::{PayloadOptions, MAX_IMAGE_BASE64_BYTES};
use crate::conversation::{Conversation, Role};
use crate::error::Error;
use crate::kiro::wire::{AttemptShape, GenerateRequest, HistoryEntry, UserInputMessage};
use crate::tokens::CharCounts;

/// How far a predicted size may be over the budget and still be measured: the prediction ignores
/// the few bytes that move with the system prompt and the `"history"` key.
const PREDICTION_SLACK: usize = 256;

/// Which cut of the history fits, and the serialized length of the body with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fit {
    /// History entries left out.
    pub dropped: usize,
    /// Length of the body serialized with [`AttemptShape::DEFAULT`].
    pub body_len: usize,
}

/// Images over [`MAX_IMAGE_BASE64_BYTES`], wherever they are (history included).
pub(super) fn check_image_sizes(conv: &Conversation) -> Result<(), Error> {
    let images = conv.messages.iter().flat_map(|m| {
        m.images
            .iter()
            .chain(m.tool_results.iter().flat_map(|r| r.images.iter()))
    });
    for image in images {
        if image.data.len() > MAX_IMAGE_BASE64_BYTES {
            return Err(Error::PayloadTooLarge(format!(
                "An image is {} bytes as base64; Kiro accepts at most {MAX_IMAGE_BASE64_BYTES} \
                 bytes of base64 per image (about 3.75 MiB decoded). Send a smaller or more \
                 compressed image.",
                image.data.len()
            )));
        }
    }
    Ok(())
}

/// The whole body if it fits `max_body_bytes` (or there is no limit), else the result of
/// [`fit_by_trimming`].
pub(super) fn fit(p: &Prepared, opts: &PayloadOptions) -> Result<Fit, Error> {
    let full = p.request(0, &AttemptShape::DEFAULT);
    let full_len = serialized_len(&full)?;
    let measured = full_len.saturating_sub(request_image_bytes(&full));
    if opts.max_body_bytes == 0 || measured <= opts.max_body_bytes {
        return Ok(Fit {
            dropped: 0,
            body_len: full_len,
        });
    }
    fit_by_trimming(p, opts, measured)
}

/// Drops the oldest whole turns until the body fits `max_body_bytes`, so Kiro does not answer
/// 400 `CONTENT_LENGTH_EXCEEDS_THRESHOLD` / "Input is too long". `full_len` and every size
/// compared with the budget leave image data out: the Kiro IDE sends images of up to
/// [`MAX_IMAGE_BASE64_BYTES`] each, so Kiro's threshold cannot be counting them, and a screenshot
/// must not trigger the overflow error (clients compact on it, in vain).
///
/// Every cut is checked against the real serialized length. To keep a long history from costing
/// one render per turn, a cut is only rendered once the entries it drops (measured one by one)
/// predict a fit within [`PREDICTION_SLACK`]; the deepest cut is always rendered.
fn fit_by_trimming(p: &Prepared, opts: &PayloadOptions, full_len: usize) -> Result<Fit, Error> {
    let max = opts.max_body_bytes;
    if !opts.trim_oldest {
        return Err(too_long(full_len, max, ""));
    }
    let mut dropped_bytes = Vec::with_capacity(p.history.len() + 1);
    dropped_bytes.push(0usize);
    let mut sum = 0usize;
    for m in &p.history {
        let entry = p.history_entry(m, None, &AttemptShape::DEFAULT);
        // +1 for the comma between array elements.
        sum += serialized_len(&entry)?.saturating_sub(entry_image_bytes(&entry)) + 1;
        dropped_bytes.push(sum);
    }
    let points = trim_points(p);
    let Some(&deepest) = points.last() else {
        return Err(too_long(
            full_len,
            max,
            " No older turn could be dropped to make it fit.",
        ));
    };
    let mut deepest_len = full_len;
    for &k in &points {
        let predicted = full_len.saturating_sub(dropped_bytes.get(k).copied().unwrap_or(sum));
        if predicted > max.saturating_add(PREDICTION_SLACK) && k != deepest {
            continue;
        }
        let body = p.request(k, &AttemptShape::DEFAULT);
        let len = serialized_len(&body)?;
        let measured = len.saturating_sub(request_image_bytes(&body));
        if measured <= max {
            return Ok(Fit {
                dropped: k,
                body_len: len,
            });
        }
        deepest_len = measured;
    }
    Err(too_long(
        full_len,
        max,
        &format!(
            " Dropping the {} oldest turn(s) still leaves {deepest_len} bytes.",
            deepest / 2
        ),
    ))
}

/// Ascending numbers of history entries that may be dropped: whole turns only, never the
/// protected tail (the prefill turn), and never a cut that leaves `toolResults` first, whose
/// `toolUses` would be gone (Kiro answers 400 to unpaired results).
fn trim_points(p: &Prepared) -> Vec<usize> {
    let protected = if p.prefill { 2 } else { 0 };
    let limit = p.history.len().saturating_sub(protected);
    (2..=limit)
        .step_by(2)
        .filter(|&k| {
            let first = p.history.get(k).unwrap_or(&p.current);
            first.role == Role::User && first.tool_results.is_empty()
        })
        .collect()
}

/// The overflow error. It starts with "prompt is too long" because that is what Claude Code,
/// OpenCode and Cline look for before compacting.
fn too_long(len: usize, max: usize, trim_note: &str) -> Error {
    Error::ContextLengthExceeded(format!(
        "prompt is too long: the conversation is {len} bytes as a Kiro request (images not \
         counted) and the limit is {max} bytes (KIRO_MAX_BODY_BYTES).{trim_note} Compact the \
         conversation or start a new one."
    ))
}

/// Counts bytes written to it: serialized lengths without building the bytes.
struct ByteCount(usize);

impl io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn serialized_len(value: &impl serde::Serialize) -> Result<usize, Error> {
    let mut count = ByteCount(0);
    serde_json::to_writer(&mut count, value)
        .map_err(|e| Error::Internal(format!("serializing the Kiro request body: {e}")))?;
    Ok(count.0)
}

fn message_image_bytes(m: &UserInputMessage) -> usize {
    m.images.iter().map(|img| img.source.bytes.len()).sum()
}

fn entry_image_bytes(entry: &HistoryEntry) -> usize {
    match entry {
        HistoryEntry::User(m) => message_image_bytes(m),
        HistoryEntry::Assistant(_) => 0,
    }
}

fn request_image_bytes(req: &GenerateRequest) -> usize {
    let state = &req.conversation_state;
    message_image_bytes(&state.current_message.user_input_message)
        + state.history.iter().map(entry_image_bytes).sum::<usize>()
}

/// The JSON text of tool specifications and tool inputs, counted as the model reads it.
struct JsonText<'a>(&'a mut CharCounts);

impl io::Write for JsonText<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // serde_json writes whole characters; a lossy view only guards against a split one.
        self.0.add(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// [`crate::tokens::estimate_tokens`] over the text the model reads in a body: contents, tool specifications and
/// tool inputs as JSON, tool names, tool results, replayed reasoning text. Ids, routing fields,
/// images and opaque blobs are not counted.
pub(super) fn estimate_request_tokens(req: &GenerateRequest) -> u64 {
    let mut counts = CharCounts::default();
    let state = &req.conversation_state;
    count_user_message(&state.current_message.user_input_message, &mut counts);
    for entry in &state.history {
        match entry {
            HistoryEntry::User(m) => count_user_message(m, &mut counts),
            HistoryEntry::Assistant(m) => {
                counts.add(m.content);
                for tool_use in &m.tool_uses {
                    counts.add(tool_use.name);
                    let _ = serde_json::to_writer(JsonText(&mut counts), tool_use.input);
                }
                if let Some(crate::kiro::wire::ReasoningContent::ReasoningText { text, .. }) =
                    &m.reasoning_content
                {
                    counts.add(text);
                }
            }
        }
    }
    counts.tokens()
}

fn count_user_message(m: &UserInputMessage, counts: &mut CharCounts) {
    counts.add(&m.content);
    if let Some(context) = &m.user_input_message_context {
        for tool in context.tools {
            let _ = serde_json::to_writer(JsonText(counts), &tool.tool_specification);
        }
        for result in &context.tool_results {
            result.content.iter().for_each(|b| counts.add(b.text));
        }
    }
}
