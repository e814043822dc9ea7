//! Token estimates without a tokenizer, and their calibration from the figures Kiro reports.
//!
//! The estimate is what usage figures start from when Kiro gives none, what `count_tokens`
//! answers, and what the relay counts a reply with as it passes. Nothing here knows a client
//! format or Kiro JSON.

use std::collections::HashMap;
use std::sync::Mutex;

/// A tokenizer-free estimate of the tokens in `text`: every four ASCII characters count as one
/// token (rounded up), every other character as one token.
///
/// English prose and code average about four characters per token in Claude's and cl100k's
/// vocabularies; CJK and most other non-ASCII text is close to one token per character, so this
/// errs on the high side for accented Latin text, which is the safe side for context maths.
pub fn estimate_tokens(text: &str) -> u64 {
    let mut counts = CharCounts::default();
    counts.add(text);
    counts.tokens()
}

/// Counts of ASCII and other characters, summed over many strings before rounding: the running
/// form of [`estimate_tokens`] (the relay counts a reply as it passes, without keeping it).
#[derive(Debug, Default, Clone, Copy)]
pub struct CharCounts {
    ascii: u64,
    other: u64,
}

impl CharCounts {
    /// Count `text`.
    pub fn add(&mut self, text: &str) {
        let ascii = text.bytes().filter(u8::is_ascii).count() as u64;
        self.ascii += ascii;
        // Every non-ASCII character has exactly one lead byte (not 10xxxxxx).
        self.other += text
            .bytes()
            .filter(|b| !b.is_ascii() && (b & 0xC0) != 0x80)
            .count() as u64;
    }

    /// The token estimate of everything counted.
    pub fn tokens(&self) -> u64 {
        self.ascii.div_ceil(4) + self.other
    }
}

/// Per model: real input tokens (from Kiro) ÷ our estimate, learnt during the process's life.
#[derive(Debug, Default)]
pub struct Calibration {
    ratios: Mutex<HashMap<String, f64>>,
}

impl Calibration {
    /// Learn from one reply: we estimated `estimate` input tokens, Kiro counted `real`.
    pub fn learn(&self, model_id: &str, estimate: u64, real: u64) {
        if estimate == 0 || real == 0 || real == estimate {
            return;
        }
        let ratio = (real as f64 / estimate as f64).clamp(0.2, 5.0);
        if let Ok(mut r) = self.ratios.lock() {
            // A moving average, so one odd reply does not swing the correction.
            let e = r.entry(model_id.to_string()).or_insert(ratio);
            *e = *e * 0.7 + ratio * 0.3;
        }
    }

    /// `estimate` corrected by what Kiro reported for this model so far.
    pub fn correct(&self, model_id: &str, estimate: u64) -> u64 {
        let ratio = self
            .ratios
            .lock()
            .ok()
            .and_then(|r| r.get(model_id).copied())
            .unwrap_or(1.0);
        (estimate as f64 * ratio).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_counts_round_once_over_all_strings() {
        let mut c = CharCounts::default();
        c.add("ab");
        c.add("cd");
        c.add("é");
        assert_eq!(c.tokens(), 2);
        assert_eq!(estimate_tokens("ab") + estimate_tokens("cd"), 2);
    }

    #[test]
    fn calibration_moves_towards_kiro_figures_and_leaves_other_models_alone() {
        let c = Calibration::default();
        assert_eq!(c.correct("m", 100), 100);
        c.learn("m", 100, 200);
        assert_eq!(c.correct("m", 100), 200);
        c.learn("m", 100, 100);
        assert_eq!(c.correct("m", 100), 200);
        c.learn("m", 100, 50);
        assert_eq!(c.correct("m", 100), 155);
        assert_eq!(c.correct("other", 100), 100);
    }
}
