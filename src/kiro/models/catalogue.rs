//! The model catalogue: the static fallback list, the cache filled from `List-Available-Models`
//! (`docs/kiro-wire.md#model-list`), and the lookups the gateway makes in it.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError, RwLock};

use serde_json::Value;

use super::names::{newest_of_family, normalise_model_name, ALIASES};
use crate::error::Error;

/// Max input tokens assumed for a model whose limits we do not know (`docs/kiro-wire.md#model-catalogue`).
pub const DEFAULT_MAX_INPUT_TOKENS: u64 = 200_000;

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
const FALLBACK_MODELS: [(&str, Option<u64>, Option<u64>); 22] = [
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
    ("claude-opus-5.5", Some(1_000_000), None),
    ("claude-sonnet-5.5", Some(1_000_000), Some(128_000)),
    ("claude-haiku-5.5", Some(1_000_000), None),
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
    /// `MODEL_ALIASES`: requested name → Kiro id, tried when the name is not Kiro's.
    aliases: Vec<(String, String)>,
    /// `MODEL_FALLBACK=family`: an unknown name gets the newest listed model of its family.
    family_fallback: bool,
    /// Requested names whose substitution was logged (each is logged once).
    logged: Mutex<HashSet<String>>,
}

/// The Kiro model a request is served by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The Kiro id sent as `modelId`.
    pub id: String,
    /// The id came from `MODEL_ALIASES` or the family fallback, not from the name itself: the
    /// client is told (`x-kiro-gateway-model`).
    pub substituted: bool,
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
            aliases: Vec::new(),
            family_fallback: true,
            logged: Mutex::new(HashSet::new()),
        }
    }

    /// The catalogue with `MODEL_ALIASES` and `MODEL_FALLBACK` applied to resolution.
    pub fn with_rules(mut self, aliases: Vec<(String, String)>, family_fallback: bool) -> Self {
        self.aliases = aliases;
        self.family_fallback = family_fallback;
        self
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
    pub fn resolve(&self, client_name: &str) -> Result<String, Error> {
        self.resolve_model(client_name).map(|r| r.id)
    }

    /// The Kiro model for a client's model name (`docs/kiro-wire.md#model-names`): Kiro's own id
    /// or its normalised form ([`ModelCatalog::known`]), else a `MODEL_ALIASES` entry, else (with
    /// `MODEL_FALLBACK=family`) the newest listed model of the same family, else 404 naming the
    /// valid models. A substitution is logged once per requested name.
    pub fn resolve_model(&self, client_name: &str) -> Result<Resolved, Error> {
        if let Some(id) = self.known(client_name) {
            return Ok(Resolved {
                id,
                substituted: false,
            });
        }
        let normalised = normalise_model_name(client_name);
        let alias = self.aliases.iter().find(|(from, _)| {
            from.eq_ignore_ascii_case(client_name) || from.eq_ignore_ascii_case(&normalised)
        });
        if let Some((_, to)) = alias {
            let id = self.known(to).unwrap_or_else(|| to.clone());
            self.log_substitution(client_name, &id, "MODEL_ALIASES");
            return Ok(Resolved {
                id,
                substituted: true,
            });
        }
        if self.family_fallback {
            let listed = self.ids();
            let refs: Vec<&str> = listed.iter().map(String::as_str).collect();
            if let Some(id) = newest_of_family(client_name, &refs) {
                let id = id.to_string();
                self.log_substitution(client_name, &id, "the newest listed model of its family");
                return Ok(Resolved {
                    id,
                    substituted: true,
                });
            }
        }
        Err(Error::ModelNotFound {
            model: client_name.to_string(),
            available: self.list_ids(),
        })
    }

    /// The Kiro id a name stands for by itself: an exact catalogue id (case-insensitive, so Kiro
    /// ids that normalisation would change, such as `-1m` variants, still work) → alias and
    /// normalisation → catalogue → hidden model (its internal id) → a README name.
    fn known(&self, client_name: &str) -> Option<String> {
        if let Some(id) = self.catalogue_id(client_name) {
            return Some(id);
        }
        if let Some((_, internal)) = HIDDEN_MODELS
            .iter()
            .find(|(_, internal)| internal.eq_ignore_ascii_case(client_name))
        {
            return Some(internal.to_string());
        }
        let normalised = normalise_model_name(client_name);
        if let Some(id) = self.catalogue_id(&normalised) {
            return Some(id);
        }
        if let Some((_, internal)) = HIDDEN_MODELS
            .iter()
            .find(|(shown, _)| shown.eq_ignore_ascii_case(&normalised))
        {
            return Some(internal.to_string());
        }
        let always = README_NAMES
            .iter()
            .map(|r| normalise_model_name(r))
            .any(|r| r.eq_ignore_ascii_case(&normalised));
        always.then(|| normalised.to_ascii_lowercase())
    }

    fn log_substitution(&self, requested: &str, id: &str, how: &str) {
        let first = self
            .logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(requested.to_string());
        if first {
            log::info!("model '{requested}' is not listed by Kiro; serving it with '{id}' ({how})");
        }
    }

    /// The catalogue's ids, in list order.
    fn ids(&self) -> Vec<String> {
        self.models
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|m| m.id.clone())
            .collect()
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

    /// What Kiro told us of the model a client name resolves to (display name, token limits).
    pub fn info_for(&self, client_name: &str) -> Option<ModelInfo> {
        self.info(&self.resolve(client_name).ok()?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        for december in ["claude-opus-5.5", "claude-sonnet-5.5", "claude-haiku-5.5"] {
            assert_eq!(c.max_input_tokens(december), 1_000_000, "{december}");
        }
    }

    fn listing(ids: &[&str]) -> ModelCatalog {
        let c = ModelCatalog::new();
        c.replace(
            ids.iter()
                .map(|id| ModelInfo {
                    id: id.to_string(),
                    ..ModelInfo::default()
                })
                .collect(),
        );
        c
    }

    #[test]
    fn names_kiro_does_not_list_get_the_newest_model_of_their_family() {
        let c = listing(&[
            "claude-sonnet-4.5",
            "claude-opus-4.5",
            "claude-opus-4.7",
            "claude-haiku-4.5",
        ]);
        let substituted = |id: &str| Resolved {
            id: id.to_string(),
            substituted: true,
        };
        assert_eq!(
            c.resolve_model("claude-opus-4-8").unwrap(),
            substituted("claude-opus-4.7")
        );
        assert_eq!(
            c.resolve_model("claude-sonnet-5").unwrap(),
            substituted("claude-sonnet-4.5")
        );
        assert_eq!(
            c.resolve_model("claude-3-5-haiku-20241022").unwrap(),
            substituted("claude-haiku-4.5")
        );
        assert_eq!(
            c.resolve_model("claude-opus-4-7").unwrap(),
            Resolved {
                id: "claude-opus-4.7".into(),
                substituted: false
            }
        );
        assert!(matches!(
            c.resolve_model("claude-fable-5"),
            Err(Error::ModelNotFound { .. })
        ));
    }

    #[test]
    fn family_fallback_off_leaves_unknown_names_a_404() {
        let c = listing(&["claude-opus-4.5"]).with_rules(Vec::new(), false);
        assert!(matches!(
            c.resolve_model("claude-opus-4-8"),
            Err(Error::ModelNotFound { .. })
        ));
    }

    #[test]
    fn model_aliases_come_after_kiro_ids_and_before_the_family() {
        let aliases = vec![
            ("gpt-4o".to_string(), "claude-sonnet-4-5".to_string()),
            ("claude-opus-4-8".to_string(), "claude-opus-4.5".to_string()),
            (
                "claude-sonnet-4.5".to_string(),
                "claude-haiku-4.5".to_string(),
            ),
        ];
        let c = listing(&[
            "claude-sonnet-4.5",
            "claude-opus-4.5",
            "claude-opus-4.7",
            "claude-haiku-4.5",
        ])
        .with_rules(aliases, true);
        assert_eq!(
            c.resolve_model("GPT-4o").unwrap(),
            Resolved {
                id: "claude-sonnet-4.5".into(),
                substituted: true
            }
        );
        assert_eq!(c.resolve("claude-opus-4-8").unwrap(), "claude-opus-4.5");
        // Kiro's own id wins over an alias of the same name.
        assert_eq!(c.resolve("claude-sonnet-4.5").unwrap(), "claude-sonnet-4.5");
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
        match c.resolve("mistral-large") {
            Err(Error::ModelNotFound { model, available }) => {
                assert_eq!(model, "mistral-large");
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
}
