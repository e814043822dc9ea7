//! The state every worker shares, and the steps of the pipeline that need it: resolve the model,
//! decide how to reason, build the Kiro body, open the upstream reply (choosing the account), and
//! relay it while learning how far the token estimate is from Kiro's figures.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::accounts::Pool;
use crate::config::{AuthSettings, Config, UpstreamSettings};
use crate::conversation::Conversation;
use crate::conversation::Outcome;
use crate::debug::DebugCapture;
use crate::error::Error;
use crate::keys::Keys;
use crate::kiro::client::{GenerateParams, KiroClient, Upstream};
use crate::kiro::models::{parse_aliases, reasoning_fields, ModelCatalog};
use crate::kiro::payload::{self, BuiltPayload, PayloadOptions};
use crate::kiro::wire::AttemptShape;
use crate::metrics::RetryReason;
use crate::relay::{RelayError, RelayOptions, Sink};
use crate::tokens::Calibration;
use crate::usage::Usage;
use crate::util::now_unix_millis;

use super::store::ResponseStore;

/// Everything the workers share.
pub struct App {
    pub config: Arc<Config>,
    /// The Kiro accounts (one, unless `KIRO_ACCOUNTS_FILE` lists several).
    pub pool: Pool,
    pub client: KiroClient,
    pub models: ModelCatalog,
    /// Corrects the input-token estimate by what Kiro reported.
    tokens: Calibration,
    /// Conversations kept for follow-ups that name an earlier reply (Responses'
    /// `previous_response_id`); bounded, in memory.
    pub responses: ResponseStore,
    /// Hosted tool types already logged as left out (each is logged once).
    ignored_tools_logged: Mutex<HashSet<String>>,
    /// The client keys (`PROXY_API_KEY`, `PROXY_API_KEYS_FILE`).
    pub keys: Keys,
    /// Usage per client key and day, saved in the state directory.
    pub usage: Arc<Usage>,
}

/// A request ready to be sent.
pub struct Prepared {
    pub model_id: String,
    /// The model was substituted (`MODEL_ALIASES` or the family fallback): the client is told
    /// which one served it.
    pub model_substituted: bool,
    pub payload: BuiltPayload,
    pub relay: RelayOptions,
    /// Identifies the conversation across follow-ups (account stickiness).
    pub conversation_key: String,
}

impl App {
    /// Build the shared state from the configuration (loads the login; no network).
    pub fn new(config: Config) -> Result<App, Error> {
        let config = Arc::new(config);
        let pool = Pool::new(&Arc::new(AuthSettings::from_config(&config)))?;
        let keys = Keys::load(config.keys_file.as_deref(), config.proxy_api_key.as_deref())?;
        let usage = Usage::open(&config.state_dir.join("usage.sqlite"), now_unix_millis());
        let aliases = parse_aliases(&config.model_aliases).map_err(Error::Config)?;
        Ok(App {
            keys,
            usage: Arc::new(usage),
            client: KiroClient::new(UpstreamSettings::from_config(&config)),
            pool,
            models: ModelCatalog::new().with_rules(aliases, config.model_fallback_family),
            tokens: Calibration::default(),
            responses: ResponseStore::new(
                config.responses_store_size,
                config.responses_store_mb.saturating_mul(1 << 20),
                config.responses_store_ttl,
            ),
            ignored_tools_logged: Mutex::new(HashSet::new()),
            config,
        })
    }

    /// Log at WARN, once per tool type for the life of the process, that a client's hosted tool
    /// was left out (clients send them with every request).
    pub fn log_ignored_tools(&self, tools: &[String]) {
        let Ok(mut logged) = self.ignored_tools_logged.lock() else {
            return;
        };
        for t in tools {
            if logged.insert(t.clone()) {
                log::warn!(
                    "a client offered the hosted tool '{t}', which the gateway cannot run: it is left out of what Kiro sees (named in x-kiro-gateway-ignored-tools); logged once"
                );
            }
        }
    }

    /// Resolve the model and build the Kiro body.
    pub fn prepare(&self, conv: &Conversation) -> Result<Prepared, Error> {
        let cfg = &*self.config;
        // A hosted web search tool is offered to Kiro as a plain tool the gateway runs.
        let with_search = super::websearch::offer_tool(conv, cfg);
        let conv = with_search.as_ref().unwrap_or(conv);
        let resolved = self.models.resolve_model(&conv.model)?;
        let key = conversation_key(conv);
        let model_id = resolved.id;
        let info = self.models.info(&model_id);
        let schema = info.as_ref().and_then(|m| m.reasoning_schema.as_ref());
        // Native reasoning where the model's schema allows it; the prompt-tag fallback otherwise.
        let (native, fake) = match schema {
            Some(s) => (reasoning_fields(s, &conv.reasoning), None),
            None if cfg.fake_reasoning && !conv.reasoning.disabled && !conv.reasoning.unasked => (
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
            conversation_id: conversation_id(&key),
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
            bracket_calls: !conv.tools.is_empty(),
            single_tool_call: conv.single_tool_call,
            tool_names: payload.tool_names_back(),
        };
        Ok(Prepared {
            model_id,
            model_substituted: resolved.substituted,
            payload,
            relay,
            conversation_key: key,
        })
    }

    /// Open the upstream reply (retries happen inside; nothing has reached the client yet). No
    /// further attempt or account is tried once `abandoned` says the client has gone.
    pub fn open(
        &self,
        prepared: &Prepared,
        debug: &mut DebugCapture,
        abandoned: &dyn Fn() -> bool,
    ) -> Result<Upstream, Error> {
        if debug.enabled() {
            debug.kiro_request(&prepared.payload.request(&AttemptShape::DEFAULT));
        }
        let multi = self.pool.is_multi();
        let params = GenerateParams {
            payload: &prepared.payload,
            capture_raw: debug.wants_raw(),
            // With other accounts to move to, a throttle is not waited out on this one.
            fail_fast_on_throttle: multi,
            abandoned,
        };
        let key = Some(prepared.conversation_key.as_str());
        let mut last = None;
        let candidates = self.pool.candidates(key)?;
        for (n, &index) in candidates.iter().enumerate() {
            if n > 0 && abandoned() {
                break;
            }
            let Some(account) = self.pool.accounts.get(index) else {
                continue;
            };
            match self
                .client
                .generate(&account.store, &account.agent, &params)
            {
                Ok(mut up) => {
                    up.account = account.name.clone();
                    self.pool.report_success(index, key);
                    return Ok(up);
                }
                // The pool decides: with one account only a suspension moves on (to the 403).
                Err(e) if self.pool.report_failure(index, &e) => {
                    log::warn!(
                        "account '{}' failed ({e}); trying the next account",
                        account.name
                    );
                    if n + 1 < candidates.len() {
                        let metrics = crate::metrics::global();
                        metrics.retry(RetryReason::of(&e), &account.name);
                        metrics.failover(&account.name, &e.to_string());
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        // Every candidate failed over: say why each account is out.
        Err(match self.pool.peek_candidates() {
            Err(all_out) => all_out,
            Ok(_) => last.unwrap_or_else(|| Error::Internal("no account answered".into())),
        })
    }

    /// Relay the reply into `sink`, and learn how far our input estimate is from Kiro's figure.
    pub fn relay(
        &self,
        up: &mut Upstream,
        prepared: &Prepared,
        sink: &mut dyn Sink,
    ) -> Result<Outcome, RelayError> {
        let outcome = crate::relay::relay(up, &prepared.relay, sink)?;
        self.tokens.learn(
            &prepared.model_id,
            prepared.payload.estimated_input_tokens,
            outcome.usage.input_tokens,
        );
        Ok(outcome)
    }

    /// Input tokens of a prepared request: the estimate, corrected by what Kiro reported for this
    /// model so far (used by `count_tokens`).
    pub fn input_tokens(&self, prepared: &Prepared) -> u64 {
        self.tokens
            .correct(&prepared.model_id, prepared.payload.estimated_input_tokens)
    }

    /// Fetch Kiro's model list into the catalogue (background thread at start-up and hourly).
    pub fn refresh_models(&self) {
        let Some(account) = self
            .pool
            .peek_candidates()
            .ok()
            .and_then(|c| c.first().copied())
            .and_then(|i| self.pool.accounts.get(i))
        else {
            return;
        };
        match self.client.list_models(&account.store, &account.agent) {
            Ok(models) if !models.is_empty() => {
                log::info!("model list: {} models from Kiro", models.len());
                self.models.replace(models);
            }
            Ok(_) => log::warn!("Kiro returned an empty model list; keeping the built-in list"),
            Err(e) => log::warn!("could not fetch the model list ({e}); using the built-in list"),
        }
    }
}

/// A key that stays the same across a conversation's follow-up requests: the client's own
/// conversation key when it sends one, else the system prompt and the first user message;
/// hashed (nothing of the text is kept).
pub fn conversation_key(conv: &Conversation) -> String {
    let material = match &conv.client_key {
        Some(key) => key.clone(),
        None => format!("{}\u{1}{}", conv.system, conv.first_user_text()),
    };
    crate::util::sha256_hex(material.as_bytes())[..32].to_string()
}

/// Kiro's `conversationId`: the conversation key in UUID form, so every turn of one conversation
/// carries the same id, as the IDE's do (`docs/kiro-wire.md#conversation-id`).
pub fn conversation_id(key: &str) -> String {
    let hex: String = key
        .chars()
        .filter(char::is_ascii_hexdigit)
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
