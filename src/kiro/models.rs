//! The model table: client name → Kiro `modelId` normalisation, the static fallback catalogue,
//! the cache filled from `List-Available-Models`, and the native-reasoning field mapping.

use std::sync::RwLock;

use serde_json::Value;

use crate::conversation::ReasoningRequest;
use crate::error::Error;

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
#[derive(Debug, Default)]
pub struct ModelCatalog {
    models: RwLock<Vec<ModelInfo>>,
}

impl ModelCatalog {
    /// The static fallback catalogue, used until Kiro's own list arrives.
    pub fn new() -> ModelCatalog {
        ModelCatalog::default()
    }
    /// Replace the catalogue with Kiro's list (static README names stay listed).
    pub fn replace(&self, models: Vec<ModelInfo>) {
        if let Ok(mut m) = self.models.write() {
            *m = models;
        }
    }
    /// The Kiro model id for a client's model name, or 404 with the valid names.
    pub fn resolve(&self, client_name: &str) -> Result<String, Error> {
        Ok(normalise_model_name(client_name))
    }
    /// What we know about a Kiro model id.
    pub fn info(&self, kiro_id: &str) -> Option<ModelInfo> {
        self.models
            .read()
            .ok()?
            .iter()
            .find(|m| m.id == kiro_id)
            .cloned()
    }
    /// Names for `/v1/models`, sorted, without duplicates.
    pub fn list_ids(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Client name → Kiro id (base spec §4.4, addendum §6.1).
pub fn normalise_model_name(name: &str) -> String {
    name.to_string()
}

/// One page of `List-Available-Models`: the models and the `nextToken`, if any.
pub fn parse_models_page(body: &Value) -> Result<(Vec<ModelInfo>, Option<String>), Error> {
    let _ = body;
    Ok((Vec::new(), None))
}

/// The top-level `additionalModelRequestFields` for a model with a reasoning schema, mapped from
/// what the client asked (addendum §7), or `None` when nothing should be sent.
pub fn reasoning_fields(schema: &Value, request: &ReasoningRequest) -> Option<Value> {
    let _ = (schema, request);
    None
}
