//! JSON-schema cleaning for Kiro's tool specifications (`docs/kiro-wire.md#schema-cleaning`).
//!
//! Pure: a client's schema in, the schema Kiro accepts out.

use serde_json::{Map, Value};

/// Cleans a client's JSON Schema for `toolSpecification.inputSchema.json`.
///
/// Drops every `"required": []` (an empty list only) and every `additionalProperties` key at any
/// depth, through nested objects and arrays (`anyOf`, `items` lists…): both make Kiro answer
/// 400 "Improperly formed request" (`docs/kiro-wire.md#schema-cleaning`). Keys that are property
/// *names* (inside `properties`, `patternProperties`, `$defs`, `definitions`, `dependentSchemas`) are
/// never dropped, only their schemas cleaned. Everything else (`$schema`, `format`, …) passes
/// through. A missing, `null` or otherwise non-object top-level schema becomes `{}`.
pub fn clean_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(_) => clean_schema_value(schema),
        _ => Value::Object(Map::new()),
    }
}

fn clean_schema_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                if key == "additionalProperties" {
                    continue;
                }
                if key == "required" && v.as_array().is_some_and(|a| a.is_empty()) {
                    continue;
                }
                let cleaned = if is_name_map_key(key) {
                    clean_name_map(v)
                } else {
                    clean_schema_value(v)
                };
                out.insert(key.clone(), cleaned);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(clean_schema_value).collect()),
        other => other.clone(),
    }
}

/// Keywords whose object maps names to schemas: the names are data, not keywords.
fn is_name_map_key(key: &str) -> bool {
    matches!(
        key,
        "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas"
    )
}

fn clean_name_map(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, schema)| (name.clone(), clean_schema_value(schema)))
                .collect(),
        ),
        other => clean_schema_value(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clean_schema_drops_empty_required_and_additional_properties_at_any_depth() {
        let schema = json!({
            "type": "object",
            "required": ["a"],
            "additionalProperties": false,
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {
                "a": {"type": "object", "required": [], "additionalProperties": {"type": "string"},
                      "properties": {"deep": {"type": "object", "additionalProperties": true}}},
                "b": {"anyOf": [{"type": "object", "required": [], "additionalProperties": false},
                                {"type": "null"}]},
                "c": {"type": "array", "items": [{"type": "object", "additionalProperties": false}]},
                "additionalProperties": {"type": "string"},
                "required": {"type": "boolean"}
            },
            "$defs": {"additionalProperties": {"type": "object", "additionalProperties": false}}
        });
        let expected = json!({
            "type": "object",
            "required": ["a"],
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {
                "a": {"type": "object", "properties": {"deep": {"type": "object"}}},
                "b": {"anyOf": [{"type": "object"}, {"type": "null"}]},
                "c": {"type": "array", "items": [{"type": "object"}]},
                "additionalProperties": {"type": "string"},
                "required": {"type": "boolean"}
            },
            "$defs": {"additionalProperties": {"type": "object"}}
        });
        assert_eq!(clean_schema(&schema), expected);
    }

    #[test]
    fn clean_schema_turns_non_object_into_empty_object() {
        assert_eq!(clean_schema(&Value::Null), json!({}));
        assert_eq!(clean_schema(&json!(true)), json!({}));
        assert_eq!(clean_schema(&json!({})), json!({}));
    }
}
