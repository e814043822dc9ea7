//! Native reasoning: the client's effort or budget mapped onto the model's
//! `additionalModelRequestFieldsSchema` (`docs/kiro-wire.md#reasoning`).

use serde_json::{Map, Value};

use crate::conversation::ReasoningRequest;

/// Reasoning effort levels, in the order used for "nearest allowed value upward".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
    Max,
}

impl Effort {
    fn parse(s: &str) -> Option<Effort> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "none" => Effort::None,
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            "xhigh" => Effort::XHigh,
            "max" => Effort::Max,
            _ => return None,
        })
    }

    /// Anthropic `budget_tokens` → effort: ≤2048 low, ≤8192 medium, ≤24576 high, above that
    /// max. A budget that large asks for the deepest reasoning on offer; when the schema lacks
    /// `max`, the mapping falls back to its highest value (`xhigh` or `high`).
    fn from_budget(budget: u32) -> Effort {
        match budget {
            0..=2048 => Effort::Low,
            2049..=8192 => Effort::Medium,
            8193..=24576 => Effort::High,
            _ => Effort::Max,
        }
    }
}

/// What the client asked for, reduced to one of two intents.
enum Wanted {
    Off,
    Level(Effort),
}

/// The client's intent: `disabled` or effort `none` → off; else a known effort string; else the
/// budget; else nothing (an unknown effort string without a budget counts as nothing).
fn wanted(request: &ReasoningRequest) -> Option<Wanted> {
    if request.disabled {
        return Some(Wanted::Off);
    }
    match request.effort.as_deref().and_then(Effort::parse) {
        Some(Effort::None) => Some(Wanted::Off),
        Some(level) => Some(Wanted::Level(level)),
        None => request
            .budget_tokens
            .map(|b| Wanted::Level(Effort::from_budget(b))),
    }
}

/// The allowed value for `want` in a schema enum: exact match, else the nearest higher allowed
/// level, else the highest allowed. Values we do not know are never chosen.
fn pick_effort(allowed: &[Value], want: Effort) -> Option<String> {
    let known: Vec<(Effort, &str)> = allowed
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|s| Effort::parse(s).map(|e| (e, s)))
        .collect();
    let chosen = known
        .iter()
        .filter(|(e, _)| *e >= want)
        .min_by_key(|(e, _)| *e)
        .or_else(|| known.iter().max_by_key(|(e, _)| *e))?;
    Some(chosen.1.to_string())
}

/// `properties.<outer>.properties.<inner>.enum` of a schema's `properties` map.
fn enum_at<'a>(props: &'a Map<String, Value>, outer: &str, inner: &str) -> Option<&'a [Value]> {
    props
        .get(outer)?
        .get("properties")?
        .get(inner)?
        .get("enum")?
        .as_array()
        .map(Vec::as_slice)
}

fn offers(values: Option<&[Value]>, wanted: &str) -> bool {
    values.is_some_and(|vs| vs.iter().any(|v| v.as_str() == Some(wanted)))
}

/// The top-level `additionalModelRequestFields` for a model with a reasoning schema, mapped from
/// what the client asked (`docs/kiro-wire.md#reasoning`), or `None` when nothing should be sent.
///
/// * Claude family (`output_config.effort` and/or `thinking.type` in the schema):
///   `{"output_config":{"effort":E},"thinking":{"type":"adaptive"}}`, with
///   `"display":"summarized"` only when the schema's display enum offers it. Turning thinking off
///   gives `{"thinking":{"type":"disabled"}}` when the enum has `disabled`, otherwise nothing.
/// * GPT family (`reasoning.effort`): `{"reasoning":{"effort":E}}`; off maps to `none`, or the
///   lowest allowed effort when the enum has no `none`.
///
/// The effort comes from `request.effort`, else from `budget_tokens` (see `Effort::from_budget`),
/// and is mapped onto the enum: exact match, else nearest upward in
/// none < minimal < low < medium < high < xhigh < max, else the highest allowed. A client that
/// asked nothing gets `None`, and no field the schema does not declare is ever produced.
pub fn reasoning_fields(schema: &Value, request: &ReasoningRequest) -> Option<Value> {
    let props = schema.get("properties")?.as_object()?;
    let wanted = wanted(request)?;
    let claude_effort = enum_at(props, "output_config", "effort");
    let thinking_types = enum_at(props, "thinking", "type");
    let display = enum_at(props, "thinking", "display");
    let gpt_effort = enum_at(props, "reasoning", "effort");

    let mut fields = Map::new();
    match wanted {
        Wanted::Off => {
            if offers(thinking_types, "disabled") {
                fields.insert("thinking".into(), serde_json::json!({"type": "disabled"}));
            }
            if let Some(e) = gpt_effort.and_then(|vs| pick_effort(vs, Effort::None)) {
                fields.insert("reasoning".into(), serde_json::json!({"effort": e}));
            }
        }
        Wanted::Level(level) => {
            if let Some(e) = claude_effort.and_then(|vs| pick_effort(vs, level)) {
                fields.insert("output_config".into(), serde_json::json!({"effort": e}));
            }
            if offers(thinking_types, "adaptive") {
                let mut thinking = Map::new();
                thinking.insert("type".into(), Value::from("adaptive"));
                if offers(display, "summarized") {
                    thinking.insert("display".into(), Value::from("summarized"));
                }
                fields.insert("thinking".into(), Value::Object(thinking));
            }
            if let Some(e) = gpt_effort.and_then(|vs| pick_effort(vs, level)) {
                fields.insert("reasoning".into(), serde_json::json!({"effort": e}));
            }
        }
    }
    if fields.is_empty() {
        None
    } else {
        Some(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claude_schema(efforts: &[&str], types: &[&str], display: Option<&[&str]>) -> Value {
        let mut thinking = json!({"type": {"type": "string", "enum": types}});
        if let Some(d) = display {
            thinking["display"] = json!({"type": "string", "enum": d});
        }
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "output_config": {"type": "object", "properties": {"effort": {"type": "string", "enum": efforts}}},
                "thinking": {"type": "object", "properties": thinking}
            }
        })
    }

    fn gpt_schema(efforts: &[&str]) -> Value {
        json!({"properties": {"reasoning": {"properties": {"effort": {"enum": efforts}}}}})
    }

    fn effort(e: &str) -> ReasoningRequest {
        ReasoningRequest {
            effort: Some(e.into()),
            ..ReasoningRequest::default()
        }
    }

    fn budget(b: u32) -> ReasoningRequest {
        ReasoningRequest {
            budget_tokens: Some(b),
            ..ReasoningRequest::default()
        }
    }

    fn disabled() -> ReasoningRequest {
        ReasoningRequest {
            disabled: true,
            ..ReasoningRequest::default()
        }
    }

    const OPUS_48: [&str; 5] = ["low", "medium", "high", "xhigh", "max"];
    const OPUS_46: [&str; 4] = ["low", "medium", "high", "max"];

    #[test]
    fn claude_family_gets_effort_and_adaptive_thinking_with_display_when_offered() {
        let schema = claude_schema(
            &OPUS_48,
            &["adaptive", "disabled"],
            Some(&["summarized", "omitted"]),
        );
        assert_eq!(
            reasoning_fields(&schema, &effort("high")),
            Some(json!({
                "output_config": {"effort": "high"},
                "thinking": {"type": "adaptive", "display": "summarized"}
            }))
        );
        let no_display = claude_schema(&OPUS_46, &["adaptive", "disabled"], None);
        assert_eq!(
            reasoning_fields(&no_display, &effort("medium")),
            Some(json!({"output_config": {"effort": "medium"}, "thinking": {"type": "adaptive"}}))
        );
        let omitted_only = claude_schema(&OPUS_46, &["adaptive"], Some(&["omitted"]));
        assert_eq!(
            reasoning_fields(&omitted_only, &effort("low")),
            Some(json!({"output_config": {"effort": "low"}, "thinking": {"type": "adaptive"}}))
        );
    }

    #[test]
    fn claude_disabled_only_when_the_enum_allows_it() {
        let with = claude_schema(&OPUS_48, &["adaptive", "disabled"], None);
        let without = claude_schema(&OPUS_48, &["adaptive"], None);
        assert_eq!(
            reasoning_fields(&with, &disabled()),
            Some(json!({"thinking": {"type": "disabled"}}))
        );
        assert_eq!(
            reasoning_fields(&with, &effort("none")),
            Some(json!({"thinking": {"type": "disabled"}}))
        );
        assert_eq!(reasoning_fields(&without, &disabled()), None);
    }

    #[test]
    fn effort_maps_to_the_nearest_allowed_value_upward() {
        let schema = claude_schema(&OPUS_46, &["adaptive"], None);
        let effort_of = |r: &ReasoningRequest| {
            reasoning_fields(&schema, r).map(|v| v["output_config"]["effort"].clone())
        };
        // xhigh is not offered by 4.6: the next value up is max.
        assert_eq!(effort_of(&effort("xhigh")), Some(json!("max")));
        // minimal is below everything offered: the nearest upward is low.
        assert_eq!(effort_of(&effort("minimal")), Some(json!("low")));
        assert_eq!(effort_of(&effort("HIGH")), Some(json!("high")));

        let capped = claude_schema(&["low", "medium", "high"], &["adaptive"], None);
        let out = reasoning_fields(&capped, &effort("max"));
        assert_eq!(
            out.map(|v| v["output_config"]["effort"].clone()),
            Some(json!("high")),
            "nothing higher offered: the highest allowed"
        );
    }

    #[test]
    fn budget_tokens_map_to_effort_tiers() {
        let schema = claude_schema(&OPUS_48, &["adaptive"], None);
        let effort_of = |b: u32| {
            reasoning_fields(&schema, &budget(b)).map(|v| v["output_config"]["effort"].clone())
        };
        assert_eq!(effort_of(1024), Some(json!("low")));
        assert_eq!(effort_of(2048), Some(json!("low")));
        assert_eq!(effort_of(2049), Some(json!("medium")));
        assert_eq!(effort_of(8192), Some(json!("medium")));
        assert_eq!(effort_of(16000), Some(json!("high")));
        assert_eq!(effort_of(24576), Some(json!("high")));
        assert_eq!(effort_of(31999), Some(json!("max")));
        let no_max = claude_schema(&["low", "medium", "high", "xhigh"], &["adaptive"], None);
        assert_eq!(
            reasoning_fields(&no_max, &budget(60000)).map(|v| v["output_config"]["effort"].clone()),
            Some(json!("xhigh"))
        );
        // An explicit effort wins over the budget.
        let both = ReasoningRequest {
            effort: Some("low".into()),
            budget_tokens: Some(60000),
            ..ReasoningRequest::default()
        };
        assert_eq!(
            reasoning_fields(&schema, &both).map(|v| v["output_config"]["effort"].clone()),
            Some(json!("low"))
        );
    }

    #[test]
    fn gpt_family_gets_reasoning_effort() {
        let schema = gpt_schema(&["none", "low", "medium", "high", "xhigh", "max"]);
        assert_eq!(
            reasoning_fields(&schema, &effort("medium")),
            Some(json!({"reasoning": {"effort": "medium"}}))
        );
        assert_eq!(
            reasoning_fields(&schema, &effort("minimal")),
            Some(json!({"reasoning": {"effort": "low"}}))
        );
        assert_eq!(
            reasoning_fields(&schema, &disabled()),
            Some(json!({"reasoning": {"effort": "none"}}))
        );
        let no_none = gpt_schema(&["low", "high"]);
        assert_eq!(
            reasoning_fields(&no_none, &disabled()),
            Some(json!({"reasoning": {"effort": "low"}}))
        );
        assert_eq!(
            reasoning_fields(&no_none, &budget(5000)),
            Some(json!({"reasoning": {"effort": "high"}}))
        );
    }

    #[test]
    fn nothing_asked_or_nothing_declared_sends_nothing() {
        let claude = claude_schema(&OPUS_48, &["adaptive", "disabled"], Some(&["summarized"]));
        assert_eq!(
            reasoning_fields(&claude, &ReasoningRequest::default()),
            None
        );
        assert_eq!(reasoning_fields(&claude, &effort("bogus")), None);
        let gpt = gpt_schema(&["low"]);
        assert_eq!(reasoning_fields(&gpt, &ReasoningRequest::default()), None);
        for schema in [
            json!({}),
            json!({"type": "object"}),
            json!({"properties": {}}),
            json!({"properties": "nope"}),
            json!({"properties": {"max_tokens": {"type": "integer"}}}),
            json!({"properties": {"reasoning": {"properties": {"effort": {"enum": ["turbo"]}}}}}),
            Value::Null,
        ] {
            assert_eq!(reasoning_fields(&schema, &effort("high")), None, "{schema}");
            assert_eq!(reasoning_fields(&schema, &disabled()), None, "{schema}");
        }
    }

    #[test]
    fn only_declared_claude_fields_are_produced() {
        let effort_only = json!({"properties": {"output_config": {"properties": {"effort": {"enum": ["low", "high"]}}}}});
        assert_eq!(
            reasoning_fields(&effort_only, &effort("medium")),
            Some(json!({"output_config": {"effort": "high"}}))
        );
        assert_eq!(reasoning_fields(&effort_only, &disabled()), None);
        let thinking_only =
            json!({"properties": {"thinking": {"properties": {"type": {"enum": ["adaptive"]}}}}});
        assert_eq!(
            reasoning_fields(&thinking_only, &effort("high")),
            Some(json!({"thinking": {"type": "adaptive"}}))
        );
    }
}
