//! The shared core behind every client format: resolve the model, decide how to reason, build the
//! Kiro body, open the upstream reply (choosing the account), and the relay options.
//!
//! Each format is a thin translation at the edges: it parses into a [`Conversation`], calls
//! [`App::prepare`] and [`App::open`], then relays into its own writer.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::TokenStore;
use crate::config::Config;
use crate::conversation::Conversation;
use crate::debug::DebugCapture;
use crate::error::Error;
use crate::kiro::client::{GenerateParams, KiroClient, Upstream};
use crate::kiro::models::{reasoning_fields, ModelCatalog};
use crate::kiro::payload::{self, BuiltPayload, PayloadOptions};
use crate::relay::RelayOptions;
use crate::util::uuid_v4;

/// Everything the workers share.
pub struct App {
    pub config: Arc<Config>,
    pub stores: Vec<Arc<TokenStore>>,
    pub agent: ureq::Agent,
    pub client: KiroClient,
    pub models: ModelCatalog,
    /// Responses kept for `previous_response_id` (bounded, in memory).
    pub responses: crate::responses::store::ResponseStore,
}

/// A request ready to be sent.
pub struct Prepared {
    pub model_id: String,
    pub payload: BuiltPayload,
    pub relay: RelayOptions,
}

impl App {
    /// Build the shared state from the configuration (loads the login; no network).
    pub fn new(config: Config) -> Result<App, Error> {
        let config = Arc::new(config);
        let store = TokenStore::from_config(&config)?;
        let agent = crate::net::agent(&config, None)?;
        Ok(App {
            client: KiroClient::new(config.clone()),
            stores: vec![store],
            agent,
            models: ModelCatalog::new(),
            responses: crate::responses::store::ResponseStore::new(
                config.responses_store_size,
                config.responses_store_ttl,
            ),
            config,
        })
    }

    /// Resolve the model and build the Kiro body.
    pub fn prepare(&self, conv: &Conversation) -> Result<Prepared, Error> {
        let cfg = &*self.config;
        let model_id = self.models.resolve(&conv.model)?;
        let info = self.models.info(&model_id);
        let schema = info.as_ref().and_then(|m| m.reasoning_schema.as_ref());
        // Native reasoning where the model's schema allows it; the prompt-tag fallback otherwise.
        let (native, fake) = match schema {
            Some(s) => (reasoning_fields(s, &conv.reasoning), None),
            None if cfg.fake_reasoning && !conv.reasoning.disabled => (
                None,
                Some(
                    conv.reasoning
                        .budget_tokens
                        .unwrap_or(cfg.fake_reasoning_max_tokens),
                ),
            ),
            None => (None, None),
        };
        let opts = PayloadOptions {
            model_id: model_id.clone(),
            origin: "AI_EDITOR".into(),
            runtime_shape: true,
            conversation_id: uuid_v4(),
            fake_reasoning_max_tokens: fake,
            reasoning_fields: native,
            tool_description_max_length: cfg.tool_description_max_length,
            truncation_notice: cfg.truncation_recovery,
            max_body_bytes: cfg.kiro_max_body_bytes,
            trim_oldest: cfg.history_trim == crate::config::HistoryTrim::Oldest,
        };
        let payload = payload::build(conv, &opts)?;
        if payload.trimmed_turns > 0 {
            log::info!(
                "history trimmed: dropped the {} oldest turn(s) to fit {} bytes",
                payload.trimmed_turns,
                cfg.kiro_max_body_bytes
            );
        }
        let relay = RelayOptions {
            thinking: payload
                .fake_reasoning_injected
                .then_some(cfg.fake_reasoning_handling),
            stop_sequences: conv.stop_sequences.clone(),
            estimated_input_tokens: payload.estimated_input_tokens,
            max_input_tokens: self.models.max_input_tokens(&model_id),
            read_timeout: cfg.streaming_read_timeout,
            keepalive_every: Duration::from_secs(15).min(cfg.streaming_read_timeout),
        };
        Ok(Prepared {
            model_id,
            payload,
            relay,
        })
    }

    /// Open the upstream reply (retries happen inside; nothing has reached the client yet).
    pub fn open(&self, prepared: &Prepared, debug: &mut DebugCapture) -> Result<Upstream, Error> {
        debug.kiro_request(&prepared.payload.body);
        let store = self
            .stores
            .first()
            .ok_or_else(|| Error::Internal("no account configured".into()))?;
        let params = GenerateParams {
            body: &prepared.payload.body,
            capture_raw: debug.wants_raw(),
        };
        self.client.generate(store, &self.agent, &params)
    }

    /// Fetch Kiro's model list into the catalogue (background thread at start-up and hourly).
    pub fn refresh_models(&self) {
        let Some(store) = self.stores.first() else {
            return;
        };
        match self.client.list_models(store, &self.agent) {
            Ok(models) if !models.is_empty() => {
                log::info!("model list: {} models from Kiro", models.len());
                self.models.replace(models);
            }
            Ok(_) => log::warn!("Kiro returned an empty model list; keeping the built-in list"),
            Err(e) => log::warn!("could not fetch the model list ({e}); using the built-in list"),
        }
    }
}
