//! The signatures the gateway writes on Anthropic `thinking` blocks, and what it reads back from
//! them when a client replays a block in its history.
//!
//! Every thinking block needs a signature. Kiro's native reasoning brings its own, handed to the
//! client as it is; prompt-tag reasoning has none, so it gets a placeholder that never goes back to
//! Kiro. Under `thinking.display: "omitted"` a block's text is empty, as Anthropic sends it, so the
//! signature must carry the reasoning: Kiro checks its signature against the text it signed
//! (`docs/kiro-wire.md#reasoning`), and a replayed block must give Kiro both exactly as they came.
//! That signature is a [`codec::mint`]ed value holding Kiro's signature and the text; it grows
//! with the reasoning, as Anthropic's own signatures do. Nothing here logs either.

use serde::{Deserialize, Serialize};

use crate::util::random_hex;
use crate::websearch::codec;

/// `sig_` + 32 hex: the signature of a thinking block whose reasoning has no real one
/// (prompt-tag reasoning). Clients require a signature on every thinking block.
pub fn placeholder_signature() -> String {
    format!("sig_{}", random_hex(32))
}

/// Whether `s` is one of our placeholder signatures (never to be replayed to Kiro).
pub fn is_placeholder_signature(s: &str) -> bool {
    s.strip_prefix("sig_")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What the signature of a block shown without its text holds. Both fields are required, so no
/// other value the codec mints reads as one.
#[derive(Serialize, Deserialize)]
struct Omitted {
    /// Kiro's signature.
    #[serde(rename = "k")]
    signature: String,
    /// The reasoning text Kiro signed.
    #[serde(rename = "t")]
    text: String,
}

/// The signature of a thinking block sent without its text: Kiro's `signature` and the `text`.
pub fn omitted_signature(signature: &str, text: &str) -> String {
    codec::mint(&Omitted {
        signature: signature.to_string(),
        text: text.to_string(),
    })
}

/// Kiro's signature and the reasoning text held by a signature from [`omitted_signature`];
/// `None` for any other (Kiro's own, Anthropic's, a placeholder).
pub fn read_omitted_signature(s: &str) -> Option<(String, String)> {
    codec::read::<Omitted>(s)
        .filter(|o| !o.signature.is_empty())
        .map(|o| (o.signature, o.text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_signatures_are_recognised() {
        assert!(is_placeholder_signature(&placeholder_signature()));
        assert!(!is_placeholder_signature("sig_short"));
        assert!(!is_placeholder_signature("EqQBCkYIBxgCKkB"));
    }

    #[test]
    fn an_omitted_signature_gives_back_kiros_signature_and_the_text() {
        let text = "Let me think: \"quotes\", ünïcode, \n newlines.";
        let s = omitted_signature("EqQBCkYreal", text);
        assert!(!s.contains("Let me"), "{s}");
        assert_eq!(
            read_omitted_signature(&s),
            Some(("EqQBCkYreal".to_string(), text.to_string()))
        );
        assert!(!is_placeholder_signature(&s));
    }

    #[test]
    fn other_signatures_are_not_read_as_omitted_ones() {
        for foreign in [
            "EqQBCkYIBxgCKkB",
            "sig_0123456789abcdef0123456789abcdef",
            "",
            "kgw1.!!",
            // What the web search codec mints for a result's content.
            &codec::mint(&serde_json::json!({"s": "a snippet"})),
            &codec::mint(&serde_json::json!({"k": "", "t": "no signature"})),
        ] {
            assert_eq!(read_omitted_signature(foreign), None, "{foreign}");
        }
    }
}
