//! Structured outputs and single tool calls for a model API that has neither.
//!
//! A `json_schema` answer becomes a tool the model is told to call, whose input schema is the
//! requested schema; the call's arguments are then handed to the client as the message text,
//! streamed as they arrive, and the call itself is never seen. A `json_object` answer is asked
//! for in the prompt and checked once complete. `parallel_tool_calls: false` is asked for in the
//! prompt too (the relay drops any further call). When the model still does not give the answer
//! asked for, what it said goes out as a refusal with [`FinishReason::FormatNotMet`], never as a
//! silent success.
//!
//! Works on the neutral conversation and output events only: no client format, no Kiro JSON.

use std::io;

use serde_json::Value;

use crate::conversation::{
    Conversation, FinishReason, Outcome, OutputEvent, OutputFormat, ToolChoice, ToolSpec,
};
use crate::relay::Sink;

/// The name of the tool that carries a `json_schema` answer (made unique against the client's).
const ANSWER_TOOL: &str = "structured_answer";

/// How the answer of a conversation shaped by [`shape`] is read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The tool that carries the answer (`json_schema`); `None` for `json_object`.
    tool: Option<String>,
}

/// Tell the model what the client asked for: the answer tool and its instruction for a
/// `json_schema` format, an instruction for `json_object` and for a single tool call. Returns how
/// to read the answer back, when a format was asked for.
pub fn shape(conv: &mut Conversation) -> Option<Plan> {
    if conv.single_tool_call && !conv.tools.is_empty() {
        instruct(conv, "[Tool calls] Call at most one tool in each answer.");
    }
    match conv.output_format.clone()? {
        OutputFormat::JsonObject => {
            instruct(
                conv,
                "[Answer format] Answer with one JSON object and nothing else: no prose before or after it, no code fences.",
            );
            Some(Plan { tool: None })
        }
        OutputFormat::JsonSchema {
            name,
            description,
            schema,
            ..
        } => {
            let tool = unique_tool_name(conv);
            let what = description.map(|d| format!(": {d}")).unwrap_or_default();
            conv.tools.push(ToolSpec {
                name: tool.clone(),
                description: format!(
                    "Give the final answer ('{name}'{what}). The input of this call is the answer itself."
                ),
                schema,
            });
            conv.tool_choice = match &conv.tool_choice {
                // The client's tools stay usable; answering means calling this one.
                ToolChoice::Auto if conv.tools.len() > 1 => ToolChoice::Required,
                ToolChoice::Auto | ToolChoice::None => ToolChoice::Named(tool.clone()),
                other => other.clone(),
            };
            instruct(
                conv,
                &format!("[Answer format] Give your final answer by calling the tool `{tool}`, with the answer as its input. Do not write the answer as text."),
            );
            Some(Plan { tool: Some(tool) })
        }
    }
}

fn instruct(conv: &mut Conversation, text: &str) {
    if !conv.system.is_empty() {
        conv.system.push_str("\n\n");
    }
    conv.system.push_str(text);
}

fn unique_tool_name(conv: &Conversation) -> String {
    let mut name = ANSWER_TOOL.to_string();
    while conv.tools.iter().any(|t| t.name == name) {
        name.push('_');
    }
    name
}

/// Sits between the relay and the client's format: turns the answer tool's arguments into text,
/// holds plain text back until it is known whether it is the answer, and renumbers the client's
/// own tool calls.
pub struct Structured<'a> {
    out: &'a mut dyn Sink,
    plan: &'a Plan,
    /// Plain text not yet released.
    held: String,
    /// The relay's index of the answer call, once it started.
    answer: Option<usize>,
    answer_done: bool,
    /// The relay's call index → the client's (`None`: dropped).
    calls: Vec<Option<usize>>,
    client_calls: usize,
    client_calls_done: usize,
}

impl<'a> Structured<'a> {
    pub fn new(out: &'a mut dyn Sink, plan: &'a Plan) -> Structured<'a> {
        Structured {
            out,
            plan,
            held: String::new(),
            answer: None,
            answer_done: false,
            calls: Vec::new(),
            client_calls: 0,
            client_calls_done: 0,
        }
    }

    fn client_index(&self, index: usize) -> Option<usize> {
        self.calls.get(index).copied().flatten()
    }

    fn release_held(&mut self) -> io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let text = std::mem::take(&mut self.held);
        self.out.emit(OutputEvent::Text(text))
    }

    fn on_call_start(&mut self, index: usize, id: String, name: String) -> io::Result<()> {
        if self.calls.len() <= index {
            self.calls.resize(index + 1, None);
        }
        if self.plan.tool.as_deref() == Some(name.as_str()) {
            if self.answer.is_none() {
                // Text before the answer is the model thinking aloud, not the answer.
                self.answer = Some(index);
                self.held.clear();
            }
            return Ok(());
        }
        self.release_held()?;
        let client = self.client_calls;
        self.client_calls += 1;
        if let Some(slot) = self.calls.get_mut(index) {
            *slot = Some(client);
        }
        self.out.emit(OutputEvent::ToolCallStart {
            index: client,
            id,
            name,
        })
    }

    /// Release what is left, and say how the reply ended as the client sees it.
    pub fn finish(mut self, mut outcome: Outcome) -> io::Result<Outcome> {
        if self.answer.is_some() {
            if self.answer_done && outcome.finish == FinishReason::ToolCalls {
                if self.client_calls_done == 0 {
                    outcome.finish = FinishReason::Stop;
                }
            } else if !self.answer_done {
                outcome.finish = FinishReason::Length;
            }
            return Ok(outcome);
        }
        let text = std::mem::take(&mut self.held);
        let free = self.client_calls_done > 0
            || matches!(
                outcome.finish,
                FinishReason::Length | FinishReason::StopSequence(_)
            );
        if free {
            if !text.is_empty() {
                self.out.emit(OutputEvent::Text(text))?;
            }
            return Ok(outcome);
        }
        match json_object_text(&text) {
            Some(json) => self.out.emit(OutputEvent::Text(json.to_string()))?,
            None => {
                log::info!(
                    "the model did not answer in the requested format; returned as a refusal"
                );
                if !text.is_empty() {
                    self.out.emit(OutputEvent::Refusal(text))?;
                }
                outcome.finish = FinishReason::FormatNotMet;
            }
        }
        Ok(outcome)
    }
}

impl Sink for Structured<'_> {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        match event {
            OutputEvent::Text(t) => {
                // Anything after the answer (a note, a repeat) is not part of it.
                if self.answer.is_none() {
                    self.held.push_str(&t);
                }
                Ok(())
            }
            OutputEvent::ToolCallStart { index, id, name } => self.on_call_start(index, id, name),
            OutputEvent::ToolCallArguments { index, fragment } => {
                if self.answer == Some(index) {
                    return self.out.emit(OutputEvent::Text(fragment));
                }
                match self.client_index(index) {
                    Some(index) => self
                        .out
                        .emit(OutputEvent::ToolCallArguments { index, fragment }),
                    None => Ok(()),
                }
            }
            OutputEvent::ToolCallEnd { index, arguments } => {
                if self.answer == Some(index) {
                    self.answer_done = true;
                    return Ok(());
                }
                match self.client_index(index) {
                    Some(index) => {
                        self.client_calls_done += 1;
                        self.out.emit(OutputEvent::ToolCallEnd { index, arguments })
                    }
                    None => Ok(()),
                }
            }
            other => self.out.emit(other),
        }
    }

    fn keepalive(&mut self) -> io::Result<()> {
        self.out.keepalive()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The JSON object in `text` (whitespace and a Markdown code fence around it allowed).
fn json_object_text(text: &str) -> Option<&str> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|r| r.strip_suffix("```"))
        .map(str::trim)
        .unwrap_or(t);
    matches!(serde_json::from_str::<Value>(t), Ok(Value::Object(_))).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Message, Role, Usage};

    #[derive(Default)]
    struct Record(Vec<OutputEvent>);

    impl Sink for Record {
        fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
            self.0.push(event);
            Ok(())
        }
    }

    fn outcome(finish: FinishReason) -> Outcome {
        Outcome {
            finish,
            usage: Usage::default(),
            truncated_tool_calls: 0,
        }
    }

    fn schema_conv(tools: Vec<ToolSpec>) -> Conversation {
        Conversation {
            messages: vec![Message::text(Role::User, "hi")],
            tools,
            output_format: Some(OutputFormat::JsonSchema {
                name: "weather".into(),
                description: None,
                schema: serde_json::json!({"type": "object"}),
                strict: true,
            }),
            ..Conversation::default()
        }
    }

    fn tool(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: String::new(),
            schema: serde_json::json!({}),
        }
    }

    #[test]
    fn a_schema_becomes_a_forced_tool_with_an_instruction() {
        let mut c = schema_conv(Vec::new());
        let plan = shape(&mut c).unwrap();
        assert_eq!(plan.tool.as_deref(), Some("structured_answer"));
        assert_eq!(c.tool_choice, ToolChoice::Named("structured_answer".into()));
        assert!(c.system.contains("`structured_answer`"));
        // With the client's own tools, any tool may be called, the answer tool included.
        let mut c = schema_conv(vec![tool("structured_answer"), tool("get")]);
        let plan = shape(&mut c).unwrap();
        assert_eq!(plan.tool.as_deref(), Some("structured_answer_"));
        assert_eq!(c.tool_choice, ToolChoice::Required);
    }

    #[test]
    fn the_answer_calls_arguments_become_the_text_and_the_reply_a_normal_stop() {
        let plan = Plan {
            tool: Some("structured_answer".into()),
        };
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        for ev in [
            OutputEvent::Text("Let me answer.".into()),
            OutputEvent::ToolCallStart {
                index: 0,
                id: "t".into(),
                name: "structured_answer".into(),
            },
            OutputEvent::ToolCallArguments {
                index: 0,
                fragment: "{\"a\":".into(),
            },
            OutputEvent::ToolCallArguments {
                index: 0,
                fragment: "1}".into(),
            },
            OutputEvent::ToolCallEnd {
                index: 0,
                arguments: "{\"a\":1}".into(),
            },
        ] {
            s.emit(ev).unwrap();
        }
        let o = s.finish(outcome(FinishReason::ToolCalls)).unwrap();
        assert_eq!(o.finish, FinishReason::Stop);
        assert_eq!(
            out.0,
            vec![
                OutputEvent::Text("{\"a\":".into()),
                OutputEvent::Text("1}".into())
            ]
        );
    }

    #[test]
    fn client_calls_keep_their_order_and_get_renumbered() {
        let plan = Plan {
            tool: Some("structured_answer".into()),
        };
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        s.emit(OutputEvent::Text("Checking.".into())).unwrap();
        s.emit(OutputEvent::ToolCallStart {
            index: 0,
            id: "t".into(),
            name: "get".into(),
        })
        .unwrap();
        s.emit(OutputEvent::ToolCallEnd {
            index: 0,
            arguments: "{}".into(),
        })
        .unwrap();
        let o = s.finish(outcome(FinishReason::ToolCalls)).unwrap();
        assert_eq!(o.finish, FinishReason::ToolCalls);
        assert_eq!(out.0.first(), Some(&OutputEvent::Text("Checking.".into())));
        assert_eq!(out.0.len(), 3);
    }

    #[test]
    fn text_that_is_not_the_answer_is_a_refusal_with_an_honest_finish() {
        let plan = Plan { tool: None };
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        s.emit(OutputEvent::Text("I cannot do that.".into()))
            .unwrap();
        let o = s.finish(outcome(FinishReason::Stop)).unwrap();
        assert_eq!(o.finish, FinishReason::FormatNotMet);
        assert_eq!(
            out.0,
            vec![OutputEvent::Refusal("I cannot do that.".into())]
        );
    }

    #[test]
    fn a_fenced_json_object_is_accepted_as_the_answer() {
        let plan = Plan { tool: None };
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        s.emit(OutputEvent::Text("```json\n{\"ok\": true}\n```".into()))
            .unwrap();
        let o = s.finish(outcome(FinishReason::Stop)).unwrap();
        assert_eq!(o.finish, FinishReason::Stop);
        assert_eq!(out.0, vec![OutputEvent::Text("{\"ok\": true}".into())]);
    }

    #[test]
    fn a_cut_answer_is_length() {
        let plan = Plan {
            tool: Some("structured_answer".into()),
        };
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        s.emit(OutputEvent::ToolCallStart {
            index: 0,
            id: "t".into(),
            name: "structured_answer".into(),
        })
        .unwrap();
        s.emit(OutputEvent::ToolCallArguments {
            index: 0,
            fragment: "{\"a\":".into(),
        })
        .unwrap();
        s.emit(OutputEvent::Text("[API Limitation] cut".into()))
            .unwrap();
        let o = s.finish(outcome(FinishReason::Length)).unwrap();
        assert_eq!(o.finish, FinishReason::Length);
        assert_eq!(out.0, vec![OutputEvent::Text("{\"a\":".into())]);
    }
}
