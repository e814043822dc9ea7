//! Collects a reply for a client that asked for no stream: every format that answers in one JSON
//! object builds it from a [`Collector`].

use std::io;

use crate::conversation::OutputEvent;
use crate::websearch::{Citation, SearchFailure, SearchHit};

use super::Sink;

/// A tool call being collected for a non-streaming reply.
#[derive(Debug, Clone, Default)]
pub struct CollectedCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub complete: bool,
}

/// Collects events for a non-streaming reply (shared by the formats that answer in one JSON).
#[derive(Debug, Default)]
pub struct Collector {
    pub text: String,
    /// What the model said instead of the structured answer asked for.
    pub refusal: String,
    pub reasoning: String,
    pub signature: Option<String>,
    pub redacted: Option<String>,
    pub calls: Vec<CollectedCall>,
    /// Web searches and the text around them, in order (empty when no search was made).
    pub parts: Vec<Part>,
    /// Citations, with offsets in characters into [`Collector::text`].
    pub citations: Vec<Citation>,
    /// Characters in `text` so far.
    text_chars: usize,
    /// Where the text since the last part started (characters, bytes).
    part_start: (usize, usize),
    /// Where the text since the last non-text event started (characters): citation offsets
    /// count from there.
    run_start: usize,
}

/// A piece of a reply with web searches, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// `Collector::text[start..end]` (bytes), with the citations in it (offsets relative to it).
    Text {
        start: usize,
        end: usize,
        citations: Vec<Citation>,
    },
    SearchCall {
        id: String,
        query: String,
    },
    SearchResult {
        id: String,
        query: String,
        outcome: Result<Vec<SearchHit>, SearchFailure>,
    },
}

impl Collector {
    /// The text written since the last part, as a part of its own (before a search event).
    fn end_run(&mut self) {
        let (start_chars, start) = self.part_start;
        let end = self.text.len();
        if end > start {
            let citations = self
                .citations
                .iter()
                .filter(|c| c.start >= start_chars)
                .map(|c| Citation {
                    start: c.start - start_chars,
                    end: c.end - start_chars,
                    ..c.clone()
                })
                .collect();
            self.parts.push(Part::Text {
                start,
                end,
                citations,
            });
        }
        self.part_start = (self.text_chars, end);
    }

    /// Adds the text after the last search to the parts (once the reply is complete).
    pub fn close_parts(&mut self) {
        if !self.parts.is_empty() {
            self.end_run();
        }
    }
}

impl Collector {
    /// Completed calls only: a truncated call is withheld, never sent broken.
    pub fn complete_calls(&self) -> impl Iterator<Item = &CollectedCall> {
        self.calls.iter().filter(|c| c.complete)
    }
}

impl Sink for Collector {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        if !matches!(event, OutputEvent::Text(_) | OutputEvent::Citations(_)) {
            self.run_start = self.text_chars;
        }
        match event {
            OutputEvent::Text(t) => {
                self.text_chars += t.chars().count();
                self.text.push_str(&t);
            }
            OutputEvent::WebSearchCall { id, query } => {
                self.end_run();
                self.parts.push(Part::SearchCall { id, query });
            }
            OutputEvent::WebSearchResult { id, query, outcome } => {
                self.end_run();
                self.parts.push(Part::SearchResult { id, query, outcome });
            }
            OutputEvent::Citations(list) => {
                let run_chars = self.run_start;
                self.citations.extend(list.into_iter().map(|c| Citation {
                    start: c.start + run_chars,
                    end: c.end + run_chars,
                    ..c
                }));
            }
            OutputEvent::Refusal(t) => self.refusal.push_str(&t),
            OutputEvent::Reasoning(t) => self.reasoning.push_str(&t),
            OutputEvent::ReasoningSignature(s) => self.signature = Some(s),
            OutputEvent::RedactedReasoning(r) => self.redacted = Some(r),
            OutputEvent::ToolCallStart { index, id, name } => {
                if self.calls.len() <= index {
                    self.calls.resize(index + 1, CollectedCall::default());
                }
                if let Some(c) = self.calls.get_mut(index) {
                    c.id = id;
                    c.name = name;
                }
            }
            OutputEvent::ToolCallArguments { index, fragment } => {
                if let Some(c) = self.calls.get_mut(index) {
                    c.arguments.push_str(&fragment);
                }
            }
            OutputEvent::ToolCallEnd { index, arguments } => {
                if let Some(c) = self.calls.get_mut(index) {
                    c.arguments = arguments;
                    c.complete = true;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_withholds_truncated_calls() {
        let mut c = Collector::default();
        c.emit(OutputEvent::ToolCallStart {
            index: 0,
            id: "a".into(),
            name: "f".into(),
        })
        .unwrap();
        c.emit(OutputEvent::ToolCallArguments {
            index: 0,
            fragment: "{\"x\":".into(),
        })
        .unwrap();
        assert_eq!(c.complete_calls().count(), 0);
        c.emit(OutputEvent::ToolCallEnd {
            index: 0,
            arguments: "{\"x\":1}".into(),
        })
        .unwrap();
        assert_eq!(c.complete_calls().count(), 1);
    }
}
