//! Tool calls written as text: some models answer `[Called NAME with args: {...}]` instead of a
//! tool-use event when tools were declared; the relay turns those into real tool calls.

use serde_json::Value;

/// Whether two argument texts are the same JSON (the same text, when either is not JSON).
pub fn same_json(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Find `[Called NAME with args: {JSON}]` in text (case-insensitive; NAME is `\w+`; the JSON
/// object is brace-matched respecting strings). Returns (name, compact JSON arguments).
pub fn find_bracket_calls(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(rel) = lower.get(from..).and_then(|s| s.find("[called ")) {
        let start = from + rel + "[called ".len();
        from = start;
        let rest = &text[start..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let after = &rest[name.len()..];
        let Some(args_start) = after
            .to_ascii_lowercase()
            .strip_prefix(" with args:")
            .map(|s| after.len() - s.len())
        else {
            continue;
        };
        let json_part = after[args_start..].trim_start();
        if let Some(end) = match_braces(json_part) {
            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&json_part[..end]) {
                out.push((name, v.to_string()));
            }
        }
    }
    out
}

/// Length of the balanced `{...}` at the start of `s`, respecting JSON strings and escapes.
fn match_braces(s: &str) -> Option<usize> {
    if !s.starts_with('{') {
        return None;
    }
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for (i, c) in s.char_indices() {
        if in_str {
            match c {
                _ if esc => esc = false,
                '\\' => esc = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_calls_are_found_with_nested_json() {
        let t = "ok [Called get_weather with args: {\"city\": \"Paris {x}\", \"n\": {\"a\": 1}}] done [called x with args: {bad]";
        let got = find_bracket_calls(t);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "get_weather");
        assert_eq!(got[0].1, r#"{"city":"Paris {x}","n":{"a":1}}"#);
        assert!(find_bracket_calls("no calls here").is_empty());
    }
}
