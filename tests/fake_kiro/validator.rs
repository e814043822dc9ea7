//! The fake's request validator: the body rules of Kiro's that the gateway must never break
//! (`docs/kiro-wire.md#validation-quirks`). Off by default; `FakeKiro::validate_bodies(true)`
//! makes a body that breaks one get Kiro's 400 "Improperly formed request.".

use serde_json::Value;

use super::Reply;

/// The longest tool name Kiro accepts.
pub const MAX_TOOL_NAME: usize = 64;

/// Kiro's answer to a body it does not accept, or None.
pub fn refusal(body: &Value) -> Option<Reply> {
    let broken = broken_rule(body)?;
    Some(Reply::error(
        400,
        &format!("Improperly formed request. ({broken})"),
        Some("REQUEST_BODY_INVALID"),
    ))
}

/// The first rule `body` breaks, in words (the fake's own diagnostics; real Kiro says nothing).
pub fn broken_rule(body: &Value) -> Option<String> {
    let state = &body["conversationState"];
    let current = &state["currentMessage"]["userInputMessage"];
    let offered: Vec<&str> = current["userInputMessageContext"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["toolSpecification"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if let Some(bad) = offered.iter().find(|n| !valid_tool_name(n)) {
        return Some(format!("tool name '{bad}' is not valid"));
    }
    let history = state["history"].as_array().cloned().unwrap_or_default();
    let mut used: Vec<String> = Vec::new();
    let mut has_tool_content = current["userInputMessageContext"]
        .get("toolResults")
        .is_some();
    for entry in &history {
        if let Some(uses) = entry["assistantResponseMessage"]["toolUses"].as_array() {
            has_tool_content = true;
            used.extend(
                uses.iter()
                    .filter_map(|u| u["name"].as_str())
                    .map(String::from),
            );
        }
        if entry["userInputMessage"]["userInputMessageContext"]
            .get("toolResults")
            .is_some()
        {
            has_tool_content = true;
        }
    }
    if has_tool_content && offered.is_empty() {
        return Some("tool history without tools".into());
    }
    if let Some(unknown) = used.iter().find(|n| !offered.contains(&n.as_str())) {
        return Some(format!(
            "history uses tool '{unknown}', which is not offered"
        ));
    }
    None
}

/// At most 64 characters of `[A-Za-z0-9_-]`.
pub fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
