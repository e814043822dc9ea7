//! The relay's state machine, driven by scripted Kiro events into a recording sink: what the
//! client's format is handed, in order, and how the reply ends.

use std::collections::VecDeque;

use super::*;
use crate::kiro::events::{TokenUsage, ToolInput};

/// Kiro's reply as a script; `has_pending` says whether the next step is already here.
struct Script(VecDeque<Result<Next, Error>>);

impl Events for Script {
    fn next(&mut self, _: Duration) -> Result<Next, Error> {
        self.0.pop_front().unwrap_or(Ok(Next::End))
    }

    fn has_pending(&mut self) -> bool {
        matches!(self.0.front(), Some(Ok(Next::Event(_))))
    }
}

/// Records what the relay hands on; `flushes`/`keepalives` count the other calls.
#[derive(Default)]
struct Recorder {
    events: Vec<OutputEvent>,
    flushes: usize,
    keepalives: usize,
    /// Refuse writes after this many events (the client went away).
    gone_after: Option<usize>,
}

impl Sink for Recorder {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        if self.gone_after.is_some_and(|n| self.events.len() >= n) {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"));
        }
        self.events.push(event);
        Ok(())
    }

    fn keepalive(&mut self) -> io::Result<()> {
        self.keepalives += 1;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

fn opts() -> RelayOptions {
    RelayOptions {
        thinking: None,
        stop_sequences: Vec::new(),
        estimated_input_tokens: 100,
        max_input_tokens: 200_000,
        read_timeout: Duration::from_secs(30),
        keepalive_every: Duration::from_secs(10),
        bracket_calls: false,
        single_tool_call: false,
        tool_names: Vec::new(),
    }
}

fn text(t: &str) -> Result<Next, Error> {
    Ok(Next::Event(KiroEvent::Text(t.into())))
}

fn tool(id: &str, name: &str, fragment: Option<&str>, stop: bool) -> Result<Next, Error> {
    Ok(Next::Event(KiroEvent::ToolUse {
        id: id.into(),
        name: name.into(),
        input: fragment.map(|f| ToolInput::Fragment(f.into())),
        stop,
    }))
}

fn usage(input: u64, output: u64) -> Result<Next, Error> {
    Ok(Next::Event(KiroEvent::Metadata {
        usage: Some(TokenUsage {
            uncached_input_tokens: input,
            output_tokens: output,
            ..TokenUsage::default()
        }),
        stop_reason: None,
    }))
}

fn exception(message: &str, reason: Option<&str>) -> Result<Next, Error> {
    Ok(Next::Event(KiroEvent::Exception {
        kind: "ValidationException".into(),
        message: message.into(),
        reason: reason.map(str::to_string),
    }))
}

fn run(
    script: Vec<Result<Next, Error>>,
    opts: &RelayOptions,
) -> (Result<Outcome, RelayError>, Recorder) {
    let mut sink = Recorder::default();
    let result = relay(&mut Script(script.into()), opts, &mut sink);
    (result, sink)
}

fn texts(events: &[OutputEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            OutputEvent::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn text_deltas_pass_through_in_order_and_end_with_stop() {
    let (result, sink) = run(vec![text("Hel"), text("lo"), usage(7, 2)], &opts());
    let outcome = result.unwrap();
    assert_eq!(
        sink.events,
        vec![
            OutputEvent::Text("Hel".into()),
            OutputEvent::Text("lo".into())
        ]
    );
    assert_eq!(outcome.finish, FinishReason::Stop);
    assert_eq!(outcome.usage.input_tokens, 7);
    assert_eq!(outcome.usage.output_tokens, 2);
    assert_eq!(outcome.truncated_tool_calls, 0);
}

#[test]
fn events_already_waiting_go_out_in_one_flush() {
    let (_, sink) = run(vec![text("a"), text("b"), text("c")], &opts());
    assert_eq!(sink.events.len(), 3);
    assert_eq!(sink.flushes, 1);
}

#[test]
fn without_kiro_usage_the_estimate_is_used() {
    let (result, _) = run(vec![text(&"x".repeat(40))], &opts());
    let usage = result.unwrap().usage;
    assert_eq!(usage.input_tokens, 100);
    assert_eq!(usage.output_tokens, 10);
}

#[test]
fn context_usage_percentage_becomes_input_tokens() {
    let script = vec![text("abcd"), Ok(Next::Event(KiroEvent::ContextUsage(1.0)))];
    let usage = run(script, &opts()).0.unwrap().usage;
    assert_eq!(usage.input_tokens + usage.output_tokens, 2000);
}

#[test]
fn a_streamed_tool_call_is_started_fed_and_ended() {
    let script = vec![
        tool("t1", "get_weather", None, false),
        tool("t1", "get_weather", Some("{\"city\":"), false),
        tool("t1", "get_weather", Some("\"Paris\"}"), false),
        tool("t1", "get_weather", None, true),
    ];
    let (result, sink) = run(script, &opts());
    assert_eq!(
        sink.events,
        vec![
            OutputEvent::ToolCallStart {
                index: 0,
                id: "t1".into(),
                name: "get_weather".into()
            },
            OutputEvent::ToolCallArguments {
                index: 0,
                fragment: "{\"city\":".into()
            },
            OutputEvent::ToolCallArguments {
                index: 0,
                fragment: "\"Paris\"}".into()
            },
            OutputEvent::ToolCallEnd {
                index: 0,
                arguments: "{\"city\":\"Paris\"}".into()
            },
        ]
    );
    assert_eq!(result.unwrap().finish, FinishReason::ToolCalls);
}

#[test]
fn a_call_without_arguments_gets_an_empty_object() {
    let (result, sink) = run(vec![tool("t1", "now", None, true)], &opts());
    assert_eq!(
        sink.events.last(),
        Some(&OutputEvent::ToolCallEnd {
            index: 0,
            arguments: "{}".into()
        })
    );
    assert_eq!(result.unwrap().finish, FinishReason::ToolCalls);
}

#[test]
fn parallel_tool_calls_get_their_own_indices() {
    let script = vec![
        tool("a", "f", Some("{\"n\":1}"), true),
        tool("b", "g", Some("{\"n\":"), false),
        // A fragment without an id belongs to the call in progress.
        tool("", "", Some("2}"), true),
    ];
    let (result, sink) = run(script, &opts());
    let ends: Vec<(usize, String)> = sink
        .events
        .iter()
        .filter_map(|e| match e {
            OutputEvent::ToolCallEnd { index, arguments } => Some((*index, arguments.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(ends, vec![(0, "{\"n\":1}".into()), (1, "{\"n\":2}".into())]);
    assert!(sink.events.contains(&OutputEvent::ToolCallStart {
        index: 1,
        id: "b".into(),
        name: "g".into()
    }));
    assert_eq!(result.unwrap().finish, FinishReason::ToolCalls);
}

#[test]
fn a_call_cut_by_kiro_is_never_ended_and_the_reply_says_so() {
    let script = vec![
        text("Writing the file."),
        tool("t1", "write", Some("{\"content\":\"aaa"), false),
    ];
    let (result, sink) = run(script, &opts());
    let outcome = result.unwrap();
    assert_eq!(outcome.finish, FinishReason::Length);
    assert_eq!(outcome.truncated_tool_calls, 1);
    assert!(!sink
        .events
        .iter()
        .any(|e| matches!(e, OutputEvent::ToolCallEnd { .. })));
    assert!(texts(&sink.events).contains("'write' was cut off"));
}

#[test]
fn a_call_complete_at_the_end_without_a_stop_is_accepted() {
    let (result, sink) = run(vec![tool("t1", "f", Some("{\"a\":1}"), false)], &opts());
    assert_eq!(result.unwrap().finish, FinishReason::ToolCalls);
    assert!(matches!(
        sink.events.last(),
        Some(OutputEvent::ToolCallEnd { .. })
    ));
}

#[test]
fn bracket_calls_in_text_become_tool_calls_when_tools_were_sent() {
    let o = RelayOptions {
        bracket_calls: true,
        ..opts()
    };
    let (result, sink) = run(vec![text("[Called f with args: {\"x\": 1}]")], &o);
    assert_eq!(result.unwrap().finish, FinishReason::ToolCalls);
    assert!(sink.events.contains(&OutputEvent::ToolCallEnd {
        index: 0,
        arguments: "{\"x\":1}".into()
    }));
}

#[test]
fn calls_of_an_aliased_tool_go_back_under_the_clients_name() {
    let o = RelayOptions {
        bracket_calls: true,
        tool_names: vec![(
            "fetch_report_1a2b3c4d".into(),
            "mcp__weather__fetch.report".into(),
        )],
        ..opts()
    };
    let script = vec![
        tool("t1", "fetch_report_1a2b3c4d", Some("{}"), false),
        tool("t1", "fetch_report_1a2b3c4d", None, true),
        text("[Called fetch_report_1a2b3c4d with args: {\"x\": 1}]"),
    ];
    let (_, sink) = run(script, &o);
    let names: Vec<&str> = sink
        .events
        .iter()
        .filter_map(|e| match e {
            OutputEvent::ToolCallStart { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        ["mcp__weather__fetch.report", "mcp__weather__fetch.report"]
    );
}

#[test]
fn thinking_tags_split_across_deltas_become_reasoning() {
    let o = RelayOptions {
        thinking: Some(ThinkingHandling::AsReasoningContent),
        ..opts()
    };
    let script = vec![
        text("<think"),
        text("ing>Let me see"),
        text("</thinking>Answer"),
    ];
    let (result, sink) = run(script, &o);
    let reasoning: String = sink
        .events
        .iter()
        .filter_map(|e| match e {
            OutputEvent::Reasoning(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(reasoning, "Let me see");
    assert_eq!(texts(&sink.events), "Answer");
    assert_eq!(result.unwrap().finish, FinishReason::Stop);
}

#[test]
fn thinking_tags_follow_the_handling_mode() {
    let script = || vec![text("<thinking>hm</thinking>Hi")];
    let mode = |m| RelayOptions {
        thinking: Some(m),
        ..opts()
    };
    let (_, sink) = run(script(), &mode(ThinkingHandling::Remove));
    assert_eq!(sink.events, vec![OutputEvent::Text("Hi".into())]);
    let (_, sink) = run(script(), &mode(ThinkingHandling::StripTags));
    assert_eq!(texts(&sink.events), "hmHi");
    let (_, sink) = run(script(), &mode(ThinkingHandling::Pass));
    assert_eq!(texts(&sink.events), "<thinking>hm</thinking>Hi");
}

#[test]
fn native_reasoning_passes_with_its_signature_and_redacted_blob() {
    let script = vec![
        Ok(Next::Event(KiroEvent::Reasoning {
            text: Some("hmm".into()),
            signature: None,
            redacted: None,
        })),
        Ok(Next::Event(KiroEvent::Reasoning {
            text: None,
            signature: Some("sig".into()),
            redacted: Some("blob".into()),
        })),
        text("Hi"),
    ];
    let (_, sink) = run(script, &opts());
    assert_eq!(
        sink.events,
        vec![
            OutputEvent::Reasoning("hmm".into()),
            OutputEvent::ReasoningSignature("sig".into()),
            OutputEvent::RedactedReasoning("blob".into()),
            OutputEvent::Text("Hi".into()),
        ]
    );
}

#[test]
fn a_stop_sequence_split_across_deltas_ends_the_text_and_keeps_kiros_usage() {
    let o = RelayOptions {
        stop_sequences: vec!["STOP".into()],
        ..opts()
    };
    let script = vec![
        text("one ST"),
        text("OP two"),
        text("never shown"),
        tool("t1", "f", Some("{}"), true),
        usage(5, 9),
    ];
    let mut events = Script(script.into());
    let mut sink = Recorder::default();
    let outcome = relay(&mut events, &o, &mut sink).unwrap();
    assert_eq!(texts(&sink.events), "one ");
    assert!(sink
        .events
        .iter()
        .all(|e| matches!(e, OutputEvent::Text(_))));
    assert_eq!(outcome.finish, FinishReason::StopSequence("STOP".into()));
    // The rest of the reply is read for Kiro's figures, which win over the estimate.
    assert!(events.0.is_empty());
    assert_eq!(outcome.usage.output_tokens, 9);
    assert_eq!(outcome.usage.input_tokens, 5);
}

#[test]
fn with_single_tool_call_only_the_first_call_is_handed_on() {
    let o = RelayOptions {
        single_tool_call: true,
        ..opts()
    };
    let script = vec![
        tool("a", "f", Some("{\"n\":1}"), true),
        tool("b", "g", Some("{\"n\":"), false),
        tool("", "", Some("2}"), true),
        tool("c", "h", None, true),
    ];
    let (result, sink) = run(script, &o);
    let starts: Vec<&OutputEvent> = sink
        .events
        .iter()
        .filter(|e| matches!(e, OutputEvent::ToolCallStart { .. }))
        .collect();
    assert_eq!(starts.len(), 1);
    assert_eq!(
        sink.events.last(),
        Some(&OutputEvent::ToolCallEnd {
            index: 0,
            arguments: "{\"n\":1}".into()
        })
    );
    let outcome = result.unwrap();
    assert_eq!(outcome.finish, FinishReason::ToolCalls);
    assert_eq!(outcome.truncated_tool_calls, 0);
}

#[test]
fn text_that_only_looks_like_a_stop_sequence_start_is_released_at_the_end() {
    let o = RelayOptions {
        stop_sequences: vec!["STOP".into()],
        ..opts()
    };
    let (result, sink) = run(vec![text("almost ST")], &o);
    assert_eq!(texts(&sink.events), "almost ST");
    assert_eq!(result.unwrap().finish, FinishReason::Stop);
}

#[test]
fn an_exception_before_any_output_fails_with_nothing_written() {
    let (result, sink) = run(vec![exception("boom", None)], &opts());
    let Err(RelayError::Failed(Error::Stream(m))) = result else {
        panic!("expected a stream failure");
    };
    assert!(m.contains("boom"));
    assert!(sink.events.is_empty());
}

#[test]
fn an_exception_after_text_fails_after_the_text_went_out() {
    let (result, sink) = run(vec![text("partial"), exception("boom", None)], &opts());
    assert!(matches!(result, Err(RelayError::Failed(Error::Stream(_)))));
    assert_eq!(sink.events, vec![OutputEvent::Text("partial".into())]);
}

#[test]
fn a_context_overflow_exception_is_context_length_exceeded() {
    let script = vec![exception(
        "Input is too long.",
        Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
    )];
    let (result, _) = run(script, &opts());
    assert!(matches!(
        result,
        Err(RelayError::Failed(Error::ContextLengthExceeded(_)))
    ));
}

#[test]
fn a_broken_upstream_mid_reply_fails() {
    let script = vec![text("a"), Err(Error::Stream("connection reset".into()))];
    let (result, sink) = run(script, &opts());
    assert!(matches!(result, Err(RelayError::Failed(Error::Stream(_)))));
    assert_eq!(sink.events.len(), 1);
}

#[test]
fn silence_gets_keepalives_then_fails_after_the_read_timeout() {
    let o = RelayOptions {
        read_timeout: Duration::from_secs(3),
        keepalive_every: Duration::from_secs(1),
        ..opts()
    };
    let script = (0..10).map(|_| Ok(Next::Idle)).collect();
    let (result, sink) = run(script, &o);
    assert!(matches!(
        result,
        Err(RelayError::Failed(Error::StreamTimeout { seconds: 3 }))
    ));
    assert_eq!(sink.keepalives, 2);
}

#[test]
fn a_client_gone_stops_the_relay() {
    let mut sink = Recorder {
        gone_after: Some(1),
        ..Recorder::default()
    };
    let script = vec![text("a"), text("b"), text("c")];
    let mut events = Script(script.into());
    let result = relay(&mut events, &opts(), &mut sink);
    assert!(matches!(result, Err(RelayError::ClientGone)));
    assert_eq!(events.0.len(), 1);
}
