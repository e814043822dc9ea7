//! OpenAI Chat Completions and the model list: `POST /v1/chat/completions`, `GET /v1/models`.

pub mod request;
pub mod response;
