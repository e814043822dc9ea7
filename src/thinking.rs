//! Prompt-tag "fake reasoning" (base spec §5): the tags injected into the current user message,
//! and the streaming parser that takes a `<thinking>…</thinking>` block off the start of a reply,
//! coping with tags split across frames.

/// A piece of reply text, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Reasoning text (without tags). `first`/`last` mark the block's ends (for `pass` mode).
    Thinking { text: String, first: bool, last: bool },
    /// Visible answer text.
    Text(String),
}

/// The streaming tag parser (states PRE_CONTENT → IN_THINKING → STREAMING).
#[derive(Debug, Default)]
pub struct ThinkingParser {}

impl ThinkingParser {
    pub fn new() -> ThinkingParser {
        ThinkingParser::default()
    }
    /// The open tag that started the block (`<thinking>`, `<think>`…), once seen.
    pub fn open_tag(&self) -> Option<&str> {
        None
    }
    /// Feed a text delta; returns what can be released now.
    pub fn feed(&mut self, text: &str) -> Vec<Piece> {
        vec![Piece::Text(text.to_string())]
    }
    /// End of reply: flush whatever is buffered.
    pub fn finish(&mut self) -> Vec<Piece> {
        Vec::new()
    }
}

/// The prefix put before the current user message's text.
pub fn injection_prefix(max_tokens: u32) -> String {
    format!("<thinking_mode>enabled</thinking_mode>\n<max_thinking_length>{max_tokens}</max_thinking_length>\n")
}

/// The system-prompt addition explaining the tags (starts with `\n\n---\n# Extended Thinking Mode`).
pub fn system_addition() -> &'static str {
    "\n\n---\n# Extended Thinking Mode\n"
}
