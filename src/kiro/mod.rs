//! Everything that speaks Kiro: the request body, the client identity, the HTTP calls, the
//! event-stream decoder, the event types and the model table. Never sees a client format.

pub mod answer;
pub mod client;
pub mod discovery;
pub mod events;
pub mod eventstream;
pub mod identity;
pub mod mcp;
pub mod model_list;
pub mod models;
pub mod payload;
pub mod refusal;
pub mod schema;
pub mod upstream;
pub mod usage_limits;
pub mod wire;
