//! The model table: client name → Kiro `modelId` normalisation, the static fallback catalogue,
//! the cache filled from `List-Available-Models`, and the native-reasoning field mapping.
//!
//! Pure data and lookups: this module makes no HTTP calls (the client fetches the pages and hands
//! them to [`parse_models_page`] and [`ModelCatalog::replace`]) and knows no client format.

use std::sync::{PoisonError, RwLock};

use serde_json::{Map, Value};

use crate::conversation::ReasoningRequest;
use crate::error::Error;

/// Max input tokens assumed for a model whose limits we do not know (`docs/kiro-wire.md#model-catalogue`).
pub const DEFAULT_MAX_INPUT_TOKENS: u64 = 200_000;

/// Client aliases → Kiro ids. Case-sensitive, applied before normalisation. `auto-kiro` exists
/// because Cursor has its own "auto".
const ALIASES: [(&str, &str); 1] = [("auto-kiro", "auto")];

/// Models Kiro serves but does not list: display name → the internal id sent as `modelId`.
const HIDDEN_MODELS: [(&str, &str); 1] = [("claude-3.7-sonnet", "CLAUDE_3_7_SONNET_20250219_V1_0")];

/// Ids that resolve but are not shown by `/v1/models` (`auto` clashes with Cursor's own "auto";
/// `auto-kiro` is listed instead).
const HIDDEN_FROM_LIST: [&str; 1] = ["auto"];

/// Names the original README advertised; always listed and always resolvable, whatever Kiro's
/// own list says, so configurations written against the README keep working.
const README_NAMES: [&str; 9] = [
    "claude-opus-4-5",
    "claude-opus-4-5-20251101",
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
    "claude-sonnet-4",
    "claude-sonnet-4-20250514",
    "claude-haiku-4-5",
    "claude-3-7-sonnet-20250219",
    "auto-kiro",
];

/// The static fallback catalogue (`docs/kiro-wire.md#model-catalogue`): id, max input tokens,
/// max output tokens. Limits are filled in only where known: 1M input for Claude 4.6+/5.x,
/// 200k for ≤4.5; output limits from the `max_tokens` ranges of the reasoning schemas.
const FALLBACK_MODELS: [(&str, Option<u64>, Option<u64>); 19] = [
    ("auto", None, None),
    ("claude-sonnet-4", Some(200_000), None),
    ("claude-sonnet-4.5", Some(200_000), None),
    ("claude-haiku-4.5", Some(200_000), None),
    ("claude-opus-4.5", Some(200_000), None),
    ("claude-opus-4.6", Some(1_000_000), Some(64_000)),
    ("claude-sonnet-4.6", Some(1_000_000), Some(64_000)),
    ("claude-opus-4.7", Some(1_000_000), Some(64_000)),
    ("claude-opus-4.8", Some(1_000_000), Some(128_000)),
    ("claude-sonnet-5", Some(1_000_000), None),
    ("claude-opus-5", Some(1_000_000), None),
    ("gpt-5.6-sol", Some(272_000), Some(128_000)),
    ("gpt-5.6-terra", Some(272_000), Some(128_000)),
    ("gpt-5.6-luna", Some(272_000), Some(128_000)),
    ("deepseek-3.2", Some(164_000), None),
    ("minimax-m2.1", None, None),
    ("minimax-m2.5", Some(196_000), None),
    ("glm-5", Some(200_000), None),
    ("qwen3-coder-next", Some(256_000), None),
];

/// What we know of one Kiro model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelInfo {
    /// Kiro's id, e.g. `claude-sonnet-4.5`.
    pub id: String,
    pub display_name: Option<String>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    /// `additionalModelRequestFieldsSchema`: present only for models with native reasoning.
    pub reasoning_schema: Option<Value>,
}

/// The model catalogue shared by all workers.
///
/// Holds Kiro's models (the static fallback until Kiro's own list arrives). Aliases, the hidden
/// model and the README names live outside the swappable list, so they survive [`replace`].
/// A poisoned lock is used as is: the data is a plain list that a panicking writer cannot leave
/// half-updated (the write is a single assignment).
///
/// [`replace`]: ModelCatalog::replace
#[derive(Debug)]
pub struct ModelCatalog {
    models: RwLock<Vec<ModelInfo>>,
}

impl Default for ModelCatalog {
    fn default() -> ModelCatalog {
        ModelCatalog::new()
    }
}

impl ModelCatalog {
    /// The static fallback catalogue, used until Kiro's own list arrives.
    pub fn new() -> ModelCatalog {
        let models = FALLBACK_MODELS
            .iter()
            .map(|&(id, max_in, max_out)| ModelInfo {
                id: id.to_string(),
                max_input_tokens: max_in,
                max_output_tokens: max_out,
                ..ModelInfo::default()
            })
            .collect();
        ModelCatalog {
            models: RwLock::new(models),
        }
    }

    /// Replace the catalogue with Kiro's list (static README names, aliases and the hidden model
    /// stay listed and resolvable). An empty list is ignored: it would make every model a 404,
    /// and it means Kiro's answer was unusable rather than that the account has no models.
    /// Later duplicates of an id (pagination overlap) are dropped.
    pub fn replace(&self, models: Vec<ModelInfo>) {
        if models.is_empty() {
            log::warn!("Kiro returned an empty model list; keeping the current catalogue");
            return;
        }
        let mut unique: Vec<ModelInfo> = Vec::with_capacity(models.len());
        for m in models {
            if !unique.iter().any(|u| u.id == m.id) {
                unique.push(m);
            }
        }
        *self.models.write().unwrap_or_else(PoisonError::into_inner) = unique;
    }

    /// The Kiro model id for a client's model name, or 404 with the valid names.
    ///
    /// Order: an exact catalogue id (case-insensitive, so Kiro ids that normalisation would
    /// change, such as `-1m` variants, still work) → alias and normalisation → catalogue →
    /// hidden model (its internal id) → a README name → `ModelNotFound`.
    pub fn resolve(&self, client_name: &str) -> Result<String, Error> {
        if let Some(id) = self.catalogue_id(client_name) {
            return Ok(id);
        }
        if let Some((_, internal)) = HIDDEN_MODELS
            .iter()
            .find(|(_, internal)| internal.eq_ignore_ascii_case(client_name))
        {
            return Ok(internal.to_string());
        }
        let normalised = normalise_model_name(client_name);
        if let Some(id) = self.catalogue_id(&normalised) {
            return Ok(id);
        }
        if let Some((_, internal)) = HIDDEN_MODELS
            .iter()
            .find(|(shown, _)| shown.eq_ignore_ascii_case(&normalised))
        {
            return Ok(internal.to_string());
        }
        let always = README_NAMES
            .iter()
            .map(|r| normalise_model_name(r))
            .any(|r| r.eq_ignore_ascii_case(&normalised));
        if always {
            return Ok(normalised.to_ascii_lowercase());
        }
        Err(Error::ModelNotFound {
            model: client_name.to_string(),
            available: self.list_ids(),
        })
    }

    /// What we know about a Kiro model id.
    pub fn info(&self, kiro_id: &str) -> Option<ModelInfo> {
        self.models
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|m| m.id == kiro_id)
            .cloned()
    }

    /// The model's input window for context maths: Kiro's `maxInputTokens`, else 200000.
    pub fn max_input_tokens(&self, kiro_id: &str) -> u64 {
        self.info(kiro_id)
            .and_then(|m| m.max_input_tokens)
            .unwrap_or(DEFAULT_MAX_INPUT_TOKENS)
    }

    /// Names for `/v1/models`, sorted, without duplicates: the catalogue's ids and the hidden
    /// model's display name, minus `auto`, plus the aliases and the README names.
    pub fn list_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .models
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|m| m.id.clone())
            .chain(HIDDEN_MODELS.iter().map(|(shown, _)| shown.to_string()))
            .filter(|id| !HIDDEN_FROM_LIST.contains(&id.as_str()))
            .chain(ALIASES.iter().map(|(alias, _)| alias.to_string()))
            .chain(README_NAMES.iter().map(|r| r.to_string()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The catalogue's spelling of `id`, matched case-insensitively.
    fn catalogue_id(&self, id: &str) -> Option<String> {
        self.models
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|m| m.id.eq_ignore_ascii_case(id))
            .map(|m| m.id.clone())
    }
}

/// Client name → Kiro id (`docs/kiro-wire.md#model-names`).
///
/// First the case-sensitive aliases (`auto-kiro` → `auto`). Then the Claude rules,
/// matched case-insensitively, first match wins, result lower-case:
/// 1. `claude-<family>-<major>-<minor 1–2 digits>[-<digits>|-latest]` → `claude-<family>-<major>.<minor>`
/// 2. `claude-<family>-<major>[-<8 digits>]` → `claude-<family>-<major>`
/// 3. `claude-<major>-<minor>-<family>[-<digits>|-latest]` → `claude-<major>.<minor>-<family>`
/// 4. a dotted name with an 8-digit date (`claude-haiku-4.5-20251001`, `claude-3.7-sonnet-20250219`)
///    → the name without the date
/// 5. `claude-<M>.<m>-<family>-<anything non-empty>` → `claude-<family>-<M>.<m>`
///
/// Anything else gets the generic rule, case preserved: a dash between two digits
/// becomes a dot (`deepseek-3-2` → `deepseek-3.2`, `gpt-5-6-sol` → `gpt-5.6-sol`). Matches do not
/// overlap, left to right, like the peers' `(\d)-(\d)` regex, so `x-1-2-3` → `x-1.2-3` and a
/// date after a version (`m-3-2-20250101` → `m-3.2-20250101`) is not turned into a dot.
pub fn normalise_model_name(name: &str) -> String {
    if let Some((_, target)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return target.to_string();
    }
    let lower = name.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('-').collect();
    if let Some(normalised) = claude_rules(&parts) {
        return normalised;
    }
    dots_between_digits(name)
}

/// Rules 1–5 of [`normalise_model_name`] on the lower-cased, dash-split name.
fn claude_rules(parts: &[&str]) -> Option<String> {
    // Rule 1: claude-<family>-<major>-<minor>[-suffix]
    if let ["claude", family, major, minor, rest @ ..] = parts {
        if is_family(family)
            && is_digits(major)
            && is_digits(minor)
            && minor.len() <= 2
            && optional(rest, is_version_suffix)
        {
            return Some(format!("claude-{family}-{major}.{minor}"));
        }
    }
    // Rule 2: claude-<family>-<major>[-<date>]
    if let ["claude", family, major, rest @ ..] = parts {
        if is_family(family) && is_digits(major) && optional(rest, is_date) {
            return Some(format!("claude-{family}-{major}"));
        }
    }
    // Rule 3: claude-<major>-<minor>-<family>[-suffix]
    if let ["claude", major, minor, family, rest @ ..] = parts {
        if is_digits(major)
            && is_digits(minor)
            && is_family(family)
            && optional(rest, is_version_suffix)
        {
            return Some(format!("claude-{major}.{minor}-{family}"));
        }
    }
    // Rule 4: claude-[<M.m>-]<family>[-<M.m>]-<date>
    if let ["claude", middle @ .., date] = parts {
        let middle_ok = match middle {
            [family] => is_family(family),
            [a, b] => (is_dotted(a) && is_family(b)) || (is_family(a) && is_dotted(b)),
            [a, family, b] => is_dotted(a) && is_family(family) && is_dotted(b),
            _ => false,
        };
        if middle_ok && is_date(date) {
            let mut kept = vec!["claude"];
            kept.extend_from_slice(middle);
            return Some(kept.join("-"));
        }
    }
    // Rule 5: claude-<M.m>-<family>-<anything>
    if let ["claude", version, family, rest @ ..] = parts {
        if is_dotted(version) && is_family(family) && !rest.join("-").is_empty() {
            return Some(format!("claude-{family}-{version}"));
        }
    }
    None
}

/// `rest` is empty, or one part accepted by `accept`.
fn optional(rest: &[&str], accept: fn(&str) -> bool) -> bool {
    match rest {
        [] => true,
        [one] => accept(one),
        _ => false,
    }
}

fn is_family(s: &str) -> bool {
    matches!(s, "haiku" | "sonnet" | "opus")
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    s.len() == 8 && is_digits(s)
}

/// A trailing `-<digits>` or `-latest` (rules 1 and 3).
fn is_version_suffix(s: &str) -> bool {
    s == "latest" || is_digits(s)
}

/// `<digits>.<digits>`.
fn is_dotted(s: &str) -> bool {
    s.split_once('.')
        .is_some_and(|(a, b)| is_digits(a) && is_digits(b))
}

/// Each `<digit>-<digit>` becomes `<digit>.<digit>`, non-overlapping, left to right.
fn dots_between_digits(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let dash_then_digit =
            chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|d| d.is_ascii_digit());
        if c.is_ascii_digit() && dash_then_digit {
            // The digit after the dash is consumed with this match, so it cannot start the
            // next one: matches do not overlap.
            out.push(c);
            out.push('.');
            if let Some(&next) = chars.get(i + 2) {
                out.push(next);
            }
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// One page of `List-Available-Models`: the models and the `nextToken`, if any.
///
/// Every entry must carry a non-empty string `modelId` (a page without one is not a catalogue we
/// can trust, so the caller keeps its fallback). `modelName` (or the older `displayName`) becomes
/// the display name; missing `tokenLimits` or null limits are fine. The reasoning schema is taken
/// when it is a JSON object, or a string holding one.
pub fn parse_models_page(body: &Value) -> Result<(Vec<ModelInfo>, Option<String>), Error> {
    let entries = body
        .get("models")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Internal("ListAvailableModels answer has no 'models' list".into()))?;
    let mut models = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let id = entry
            .get("modelId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::Internal(format!(
                    "ListAvailableModels entry {index} has no string 'modelId'"
                ))
            })?;
        let display_name = ["modelName", "displayName"]
            .iter()
            .find_map(|key| entry.get(*key).and_then(Value::as_str))
            .map(str::to_string);
        let limit = |key: &str| {
            entry
                .get("tokenLimits")
                .and_then(|limits| limits.get(key))
                .and_then(Value::as_u64)
        };
        let reasoning_schema = match entry.get("additionalModelRequestFieldsSchema") {
            Some(schema @ Value::Object(_)) => Some(schema.clone()),
            Some(Value::String(text)) => serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_object),
            _ => None,
        };
        models.push(ModelInfo {
            id: id.to_string(),
            display_name,
            max_input_tokens: limit("maxInputTokens"),
            max_output_tokens: limit("maxOutputTokens"),
            reasoning_schema,
        });
    }
    let next_token = body
        .get("nextToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok((models, next_token))
}

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

    #[test]
    fn normalisation_table_of_the_base_spec() {
        let table = [
            // Rule 1
            ("claude-haiku-4-5", "claude-haiku-4.5"),
            ("claude-haiku-4-5-20251001", "claude-haiku-4.5"),
            ("claude-opus-4-5-latest", "claude-opus-4.5"),
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
            ("claude-opus-4-5-1", "claude-opus-4.5"),
            ("claude-sonnet-4-6", "claude-sonnet-4.6"),
            ("claude-opus-4-8", "claude-opus-4.8"),
            ("CLAUDE-Sonnet-4-5", "claude-sonnet-4.5"),
            // Rule 2
            ("claude-sonnet-4", "claude-sonnet-4"),
            ("claude-sonnet-4-20250514", "claude-sonnet-4"),
            ("claude-opus-5", "claude-opus-5"),
            // Rule 3
            ("claude-3-7-sonnet", "claude-3.7-sonnet"),
            ("claude-3-7-sonnet-20250219", "claude-3.7-sonnet"),
            ("claude-3-5-haiku", "claude-3.5-haiku"),
            ("claude-3-0-opus", "claude-3.0-opus"),
            ("claude-3-5-sonnet-latest", "claude-3.5-sonnet"),
            // Rule 4
            ("claude-haiku-4.5-20251001", "claude-haiku-4.5"),
            ("claude-3.7-sonnet-20250219", "claude-3.7-sonnet"),
            // Rule 5
            ("claude-4.5-opus-high", "claude-opus-4.5"),
            ("claude-4.5-sonnet-low-thinking", "claude-sonnet-4.5"),
            ("CLAUDE-4.5-OPUS-HIGH", "claude-opus-4.5"),
            ("Claude-4.5-Sonnet-Low", "claude-sonnet-4.5"),
            // Passthrough
            ("claude-3.7-sonnet", "claude-3.7-sonnet"),
            ("claude-4.5-opus", "claude-4.5-opus"),
            ("claude-sonnet-4.5", "claude-sonnet-4.5"),
            ("auto", "auto"),
            ("gpt-4", "gpt-4"),
            ("gpt-4-turbo", "gpt-4-turbo"),
            ("unknown-model", "unknown-model"),
            ("Unknown-Model", "Unknown-Model"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(normalise_model_name(input), want, "input {input:?}");
        }
    }

    #[test]
    fn normalisation_turns_dashes_between_digits_into_dots() {
        let table = [
            ("deepseek-3-2", "deepseek-3.2"),
            ("minimax-m2-5", "minimax-m2.5"),
            ("gpt-5-6-sol", "gpt-5.6-sol"),
            ("glm-5", "glm-5"),
            ("qwen3-coder-next", "qwen3-coder-next"),
            ("deepseek-3.2", "deepseek-3.2"),
            ("DeepSeek-3-2", "DeepSeek-3.2"),
            ("m-3-2-20250101", "m-3.2-20250101"),
            ("x-1-2-3", "x-1.2-3"),
            ("a-1-b", "a-1-b"),
            ("9-", "9-"),
        ];
        for (input, want) in table {
            assert_eq!(normalise_model_name(input), want, "input {input:?}");
        }
    }

    #[test]
    fn aliases_apply_case_sensitively() {
        assert_eq!(normalise_model_name("auto-kiro"), "auto");
        assert_eq!(normalise_model_name("AUTO-KIRO"), "AUTO-KIRO");
    }

    #[test]
    fn fallback_catalogue_has_kiro_ids_in_dot_form() {
        let catalogue = ModelCatalog::new();
        for (id, _, _) in FALLBACK_MODELS {
            assert!(catalogue.info(id).is_some(), "{id}");
            assert!(!id.contains('_'));
            assert_eq!(normalise_model_name(id), id, "{id} is not in normal form");
        }
        assert!(catalogue.info("claude-opus-4.8").is_some());
        assert!(catalogue.info("qwen3-coder-next").is_some());
    }

    #[test]
    fn fallback_limits_follow_the_known_windows() {
        let c = ModelCatalog::new();
        assert_eq!(c.max_input_tokens("claude-opus-4.6"), 1_000_000);
        assert_eq!(c.max_input_tokens("claude-sonnet-5"), 1_000_000);
        assert_eq!(c.max_input_tokens("claude-sonnet-4.5"), 200_000);
        assert_eq!(c.max_input_tokens("gpt-5.6-sol"), 272_000);
        assert_eq!(c.max_input_tokens("auto"), 200_000);
        assert_eq!(
            c.max_input_tokens("no-such-model"),
            DEFAULT_MAX_INPUT_TOKENS
        );
        assert_eq!(
            c.info("claude-opus-4.8").and_then(|m| m.max_output_tokens),
            Some(128_000)
        );
    }

    #[test]
    fn fallback_list_is_sorted_unique_and_shows_readme_names() {
        let ids = ModelCatalog::new().list_ids();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted);
        for name in README_NAMES {
            assert!(ids.iter().any(|i| i == name), "{name} missing");
        }
        assert!(ids.iter().any(|i| i == "claude-3.7-sonnet"));
        assert!(ids.iter().any(|i| i == "claude-opus-4.8"));
        assert!(
            !ids.iter().any(|i| i == "auto"),
            "auto is hidden from the list"
        );
    }

    #[test]
    fn resolve_maps_names_to_catalogue_ids() {
        let c = ModelCatalog::new();
        assert_eq!(c.resolve("claude-sonnet-4-5").unwrap(), "claude-sonnet-4.5");
        assert_eq!(c.resolve("claude-opus-4-8").unwrap(), "claude-opus-4.8");
        assert_eq!(c.resolve("Claude-Sonnet-4.5").unwrap(), "claude-sonnet-4.5");
        assert_eq!(c.resolve("deepseek-3-2").unwrap(), "deepseek-3.2");
        assert_eq!(c.resolve("gpt-5-6-sol").unwrap(), "gpt-5.6-sol");
        assert_eq!(c.resolve("auto").unwrap(), "auto");
        assert_eq!(c.resolve("auto-kiro").unwrap(), "auto");
    }

    #[test]
    fn resolve_maps_the_hidden_model_to_its_internal_id() {
        let c = ModelCatalog::new();
        for name in [
            "claude-3.7-sonnet",
            "claude-3-7-sonnet",
            "claude-3-7-sonnet-20250219",
            "CLAUDE_3_7_SONNET_20250219_V1_0",
        ] {
            assert_eq!(
                c.resolve(name).unwrap(),
                "CLAUDE_3_7_SONNET_20250219_V1_0",
                "{name}"
            );
        }
    }

    #[test]
    fn resolve_rejects_unknown_models_with_the_list() {
        let c = ModelCatalog::new();
        match c.resolve("gpt-4") {
            Err(Error::ModelNotFound { model, available }) => {
                assert_eq!(model, "gpt-4");
                assert_eq!(available, c.list_ids());
            }
            other => panic!("expected ModelNotFound, got {other:?}"),
        }
        assert!(
            c.resolve("AUTO-KIRO").is_err(),
            "aliases are case-sensitive"
        );
        assert!(c.resolve("").is_err());
    }

    #[test]
    fn replace_swaps_the_catalogue_but_keeps_readme_names_and_hidden_model() {
        let c = ModelCatalog::new();
        c.replace(vec![ModelInfo {
            id: "claude-sonnet-4.6-1m".into(),
            max_input_tokens: Some(1_000_000),
            ..ModelInfo::default()
        }]);
        assert!(c.info("claude-opus-4.8").is_none());
        assert!(matches!(
            c.resolve("claude-opus-4.8"),
            Err(Error::ModelNotFound { .. })
        ));
        // A Kiro id that normalisation would mangle is still found as is.
        assert_eq!(
            c.resolve("claude-sonnet-4.6-1m").unwrap(),
            "claude-sonnet-4.6-1m"
        );
        assert_eq!(c.max_input_tokens("claude-sonnet-4.6-1m"), 1_000_000);
        // README names and the hidden model survive.
        assert_eq!(c.resolve("claude-opus-4-5").unwrap(), "claude-opus-4.5");
        assert_eq!(
            c.resolve("claude-sonnet-4-20250514").unwrap(),
            "claude-sonnet-4"
        );
        assert_eq!(c.resolve("auto-kiro").unwrap(), "auto");
        assert_eq!(
            c.resolve("claude-3.7-sonnet").unwrap(),
            "CLAUDE_3_7_SONNET_20250219_V1_0"
        );
        let ids = c.list_ids();
        assert!(ids.contains(&"claude-sonnet-4.6-1m".to_string()));
        assert!(ids.contains(&"claude-opus-4-5".to_string()));
        assert!(ids.contains(&"claude-3.7-sonnet".to_string()));
        assert!(!ids.contains(&"claude-opus-4.8".to_string()));
    }

    #[test]
    fn replace_ignores_an_empty_list_and_drops_duplicates() {
        let c = ModelCatalog::new();
        c.replace(Vec::new());
        assert!(c.info("claude-opus-4.8").is_some());
        let m = |id: &str, max: u64| ModelInfo {
            id: id.into(),
            max_input_tokens: Some(max),
            ..ModelInfo::default()
        };
        c.replace(vec![m("glm-5", 1), m("glm-5", 2)]);
        assert_eq!(c.max_input_tokens("glm-5"), 1);
        assert_eq!(c.list_ids().iter().filter(|i| *i == "glm-5").count(), 1);
    }

    #[test]
    fn a_listed_hidden_model_is_not_overridden_by_the_hidden_mapping() {
        let c = ModelCatalog::new();
        c.replace(vec![ModelInfo {
            id: "claude-3.7-sonnet".into(),
            ..ModelInfo::default()
        }]);
        assert_eq!(c.resolve("claude-3-7-sonnet").unwrap(), "claude-3.7-sonnet");
    }

    #[test]
    fn catalogue_survives_a_poisoned_lock() {
        let c = std::sync::Arc::new(ModelCatalog::new());
        let c2 = std::sync::Arc::clone(&c);
        let _ = std::thread::spawn(move || {
            let _guard = c2.models.write().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(c.models.is_poisoned());
        assert_eq!(c.resolve("claude-sonnet-4-5").unwrap(), "claude-sonnet-4.5");
        c.replace(vec![ModelInfo {
            id: "glm-5".into(),
            ..ModelInfo::default()
        }]);
        assert!(c.info("glm-5").is_some());
        assert!(!c.list_ids().is_empty());
    }

    #[test]
    fn parse_models_page_reads_models_limits_schema_and_next_token() {
        let body = json!({
            "defaultModel": {"modelId": "auto"},
            "models": [
                {
                    "modelId": "claude-opus-4.8",
                    "modelName": "Claude Opus 4.8",
                    "description": "d",
                    "rateMultiplier": 2.2,
                    "tokenLimits": {"maxInputTokens": 1000000, "maxOutputTokens": 128000},
                    "additionalModelRequestFieldsSchema": {"type": "object", "properties": {}}
                },
                {"modelId": "glm-5"},
                {"modelId": "qwen3-coder-next", "tokenLimits": {"maxInputTokens": null}},
                {"modelId": "claude-sonnet-4.5", "displayName": "Claude Sonnet 4.5",
                 "additionalModelRequestFieldsSchema": "{\"properties\":{\"x\":{}}}"}
            ],
            "nextToken": "abc"
        });
        let (models, next) = parse_models_page(&body).unwrap();
        assert_eq!(next.as_deref(), Some("abc"));
        assert_eq!(models.len(), 4);
        assert_eq!(models[0].id, "claude-opus-4.8");
        assert_eq!(models[0].display_name.as_deref(), Some("Claude Opus 4.8"));
        assert_eq!(models[0].max_input_tokens, Some(1_000_000));
        assert_eq!(models[0].max_output_tokens, Some(128_000));
        assert!(models[0].reasoning_schema.is_some());
        assert_eq!(models[1].max_input_tokens, None);
        assert_eq!(models[1].reasoning_schema, None);
        assert_eq!(models[2].max_input_tokens, None);
        assert_eq!(models[3].display_name.as_deref(), Some("Claude Sonnet 4.5"));
        assert_eq!(
            models[3].reasoning_schema,
            Some(json!({"properties": {"x": {}}}))
        );

        let c = ModelCatalog::new();
        c.replace(models);
        assert_eq!(
            c.max_input_tokens("qwen3-coder-next"),
            DEFAULT_MAX_INPUT_TOKENS
        );
        assert_eq!(c.max_input_tokens("glm-5"), DEFAULT_MAX_INPUT_TOKENS);
        assert_eq!(c.max_input_tokens("claude-opus-4.8"), 1_000_000);
    }

    #[test]
    fn parse_models_page_without_next_token_is_the_last_page() {
        let (models, next) = parse_models_page(&json!({"models": [], "nextToken": ""})).unwrap();
        assert!(models.is_empty());
        assert_eq!(next, None);
        let (_, next) = parse_models_page(&json!({"models": []})).unwrap();
        assert_eq!(next, None);
    }

    #[test]
    fn parse_models_page_rejects_entries_without_a_string_model_id() {
        for body in [
            json!({"models": [{"modelId": "ok"}, {"modelName": "no id"}]}),
            json!({"models": [{"modelId": 5}]}),
            json!({"models": [{"modelId": ""}]}),
            json!({"nope": []}),
            json!({"models": {}}),
        ] {
            assert!(
                matches!(parse_models_page(&body), Err(Error::Internal(_))),
                "{body}"
            );
        }
    }

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
            disabled: false,
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
