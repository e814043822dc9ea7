//! Collects a reply for a client that asked for no stream: every format that answers in one JSON
//! object builds it from a [`Collector`].

use std::io;

use crate::conversation::OutputEvent;

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
}

impl Collector {
    /// Completed calls only: a truncated call is withheld, never sent broken.
    pub fn complete_calls(&self) -> impl Iterator<Item = &CollectedCall> {
        self.calls.iter().filter(|c| c.complete)
    }
}

impl Sink for Collector {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        match event {
            OutputEvent::Text(t) => self.text.push_str(&t),
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
