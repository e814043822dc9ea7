//! The model table: client name → Kiro `modelId` resolution ([`names`]), the catalogue of Kiro's
//! models with the static fallback ([`catalogue`]), and the native-reasoning field mapping
//! ([`reasoning`]).
//!
//! Pure data and lookups: this module makes no HTTP calls (the client fetches the pages and hands
//! them to [`parse_models_page`] and [`ModelCatalog::replace`]) and knows no client format.

mod catalogue;
mod names;
mod reasoning;

pub use catalogue::{
    parse_models_page, ModelCatalog, ModelInfo, Resolved, DEFAULT_MAX_INPUT_TOKENS,
};
pub use names::normalise_model_name;
pub use names::parse_aliases;
pub use reasoning::reasoning_fields;
