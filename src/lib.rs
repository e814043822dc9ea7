//! kiro-gateway: OpenAI Chat Completions, Anthropic Messages and OpenAI Responses in front of the
//! Kiro API (the AWS CodeWhisperer / Amazon Q backend).
//!
//! Data flows one way: HTTP request (`server`, which picks the client format from the path) → the
//! one [`pipeline`] every format shares → parse (`openai`, `anthropic`, `responses`) → neutral
//! [`conversation`] → Kiro request (`kiro::payload`) → upstream (`kiro::client`) → frames
//! (`kiro::eventstream`) → events (`kiro::events`) → neutral output (`relay`, `thinking`) → the
//! client's format → SSE or JSON (`sse`).

pub mod access_log;
pub mod alerts;
pub mod anthropic;
pub mod auth;
pub mod config;
pub mod conversation;
pub mod debug;
pub mod error;
pub mod http;
pub mod keys;
pub mod kiro;
pub mod logger;
pub mod metrics;
pub mod monitor;
pub mod net;
pub mod openai;
pub mod pipeline;
pub mod relay;
pub mod responses;
pub mod server;
pub mod sse;
pub mod status_page;
pub mod structured;
pub mod sys;
pub mod thinking;
pub mod tokens;
pub mod usage;
pub mod util;
pub mod websearch;

/// The version reported by `--version`, `/` and `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
