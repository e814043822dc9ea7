//! The opaque strings the gateway mints for Anthropic's search blocks (`encrypted_content` of a
//! result, `encrypted_index` of a citation), and reads back when a client replays them.
//!
//! Anthropic's own values are encrypted; ours only need to be opaque to the client and to carry
//! the result's text, because the client sends the block back in its history and the model must
//! still see what the page said (Kiro has no way to resolve a reference). They are
//! `kgw1.` + unpadded base64url of a small JSON object. Values minted by others decode to `None`.
//! [`mint`] and [`read`] are the one such encoding in the gateway; other opaque values (Anthropic's
//! thinking signatures under `display: "omitted"`) use them with a JSON shape of their own.

use serde::{Deserialize, Serialize};

use super::SearchHit;

const PREFIX: &str = "kgw1.";

#[derive(Serialize, Deserialize)]
struct Content {
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    snippet: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Index {
    #[serde(rename = "u")]
    url: String,
}

/// `encrypted_content` of a result: its excerpt.
pub fn encode_content(hit: &SearchHit) -> String {
    let c = Content {
        snippet: hit.snippet.clone(),
    };
    mint(&c)
}

/// The excerpt carried by an `encrypted_content` the gateway minted.
pub fn decode_content(value: &str) -> Option<Option<String>> {
    read::<Content>(value).map(|c| c.snippet)
}

/// `encrypted_index` of a citation.
pub fn encode_index(url: &str) -> String {
    mint(&Index { url: url.into() })
}

/// `kgw1.` + base64url of `value` as JSON.
pub fn mint<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    format!("{PREFIX}{}", base64url_encode(&json))
}

/// The value a [`mint`]ed string holds; `None` for anything else (another prefix, bad base64,
/// JSON of another shape).
pub fn read<T: for<'de> Deserialize<'de>>(value: &str) -> Option<T> {
    let body = value.strip_prefix(PREFIX)?;
    let bytes = base64url_decode(body)?;
    serde_json::from_slice(&bytes).ok()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url.
pub fn base64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            let idx = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    out
}

/// Unpadded (or padded) base64url; `None` on any other character.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        for len in 0..20 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 250) as u8).collect();
            let enc = base64url_encode(&data);
            assert!(!enc.contains(['+', '/', '=']));
            assert_eq!(base64url_decode(&enc).unwrap(), data);
        }
        assert_eq!(base64url_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url_encode(b"fo"), "Zm8");
        assert_eq!(base64url_decode("Zm8=").unwrap(), b"fo");
        assert!(base64url_decode("Zm+v").is_none());
    }

    #[test]
    fn content_carries_the_excerpt_and_foreign_values_are_not_read() {
        let hit = SearchHit {
            title: "T".into(),
            url: "https://a.com".into(),
            snippet: Some("Ünïcode excerpt".into()),
            page_age: None,
        };
        let c = encode_content(&hit);
        assert!(c.starts_with("kgw1."));
        assert_eq!(
            decode_content(&c),
            Some(Some("Ünïcode excerpt".to_string()))
        );
        assert_eq!(
            decode_content("EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5LTQ1NGUtODgxNC1kNjNjNTk1ZWI3Y2MSDAi"),
            None
        );
        assert_eq!(decode_content("kgw1.!!"), None);
        assert!(encode_index("https://a.com").starts_with("kgw1."));
    }
}
