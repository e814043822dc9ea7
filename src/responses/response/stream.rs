//! The writer's [`Sink`] half: each relay event becomes the Responses stream events that open,
//! grow and close output items, in order.

use std::io;

use serde_json::json;

use crate::conversation::OutputEvent;
use crate::relay::Sink;
use crate::util::random_hex;
use crate::websearch::{Citation, SearchFailure, SearchHit};

use super::super::tools::{custom_input, CustomInputStream};
use super::{Item, ResponseWriter};

impl ResponseWriter<'_> {
    fn on_text(&mut self, t: String, refusal: bool) -> io::Result<()> {
        if t.is_empty() {
            return Ok(());
        }
        let index = self.message(refusal)?;
        let Some(Item::Message { id, text, .. }) = self.items.get_mut(index) else {
            return Ok(());
        };
        text.push_str(&t);
        let id = id.clone();
        if refusal {
            return self.send(
                "response.refusal.delta",
                json!({"item_id": id, "output_index": index, "content_index": 0, "delta": t}),
            );
        }
        self.send(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": t,
                "logprobs": []}),
        )
    }

    fn on_reasoning(&mut self, t: String) -> io::Result<()> {
        if t.is_empty() {
            return Ok(());
        }
        let index = self.reasoning()?;
        let Some(Item::Reasoning {
            id,
            text,
            part_open,
            ..
        }) = self.items.get_mut(index)
        else {
            return Ok(());
        };
        text.push_str(&t);
        let id = id.clone();
        if !*part_open {
            *part_open = true;
            self.send(
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}}),
            )?;
        }
        self.send(
            "response.reasoning_summary_text.delta",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": t}),
        )
    }

    fn on_call_start(&mut self, index: usize, call_id: String, name: String) -> io::Result<()> {
        self.close_open("completed")?;
        let tool = self.head.tools.client(&name);
        let prefix = match (tool.custom, tool.tool_search) {
            (true, _) => "ctc",
            (_, true) => "tsc",
            _ => "fc",
        };
        let item = self.add_item(Item::Call {
            id: format!("{prefix}_{}", random_hex(48)),
            call_id,
            kiro_name: name,
            tool,
            arguments: String::new(),
            input: CustomInputStream::default(),
            done: false,
        })?;
        if self.calls.len() <= index {
            self.calls.resize(index + 1, None);
        }
        if let Some(slot) = self.calls.get_mut(index) {
            *slot = Some(item);
        }
        Ok(())
    }

    fn call_item(&self, index: usize) -> Option<usize> {
        self.calls.get(index).copied().flatten()
    }

    fn on_call_arguments(&mut self, index: usize, fragment: String) -> io::Result<()> {
        let Some(item) = self.call_item(index) else {
            return Ok(());
        };
        let Some(Item::Call {
            id,
            arguments,
            tool,
            input,
            done: false,
            ..
        }) = self.items.get_mut(item)
        else {
            return Ok(());
        };
        arguments.push_str(&fragment);
        let id = id.clone();
        if tool.tool_search {
            // A tool search call has no argument events: it is sent whole when done.
            return Ok(());
        }
        if tool.custom {
            let delta = input.push(&fragment);
            if delta.is_empty() {
                return Ok(());
            }
            return self.send(
                "response.custom_tool_call_input.delta",
                json!({"item_id": id, "output_index": item, "delta": delta}),
            );
        }
        self.send(
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": item, "delta": fragment}),
        )
    }

    fn on_call_end(&mut self, index: usize, args: String) -> io::Result<()> {
        let Some(item) = self.call_item(index) else {
            return Ok(());
        };
        let Some(Item::Call {
            id,
            tool,
            arguments,
            input,
            done,
            ..
        }) = self.items.get_mut(item)
        else {
            return Ok(());
        };
        if *done {
            return Ok(());
        }
        *arguments = args;
        *done = true;
        if tool.tool_search {
            // Only the finished item (below).
        } else if tool.custom {
            let whole = custom_input(arguments);
            let id = id.clone();
            // What was not streamed yet follows as one delta (all of it when the arguments had
            // another shape than the one the stream decoder follows).
            let rest = if input.is_prefix_of(&whole) {
                whole[input.decoded.len()..].to_string()
            } else {
                whole.clone()
            };
            if !rest.is_empty() {
                self.send(
                    "response.custom_tool_call_input.delta",
                    json!({"item_id": id, "output_index": item, "delta": rest}),
                )?;
            }
            self.send(
                "response.custom_tool_call_input.done",
                json!({"item_id": id, "output_index": item, "input": whole}),
            )?;
        } else {
            let body = json!({"item_id": id, "output_index": item, "name": tool.name,
                "arguments": arguments});
            self.send("response.function_call_arguments.done", body)?;
        }
        let json = self.items.get(item).map(Item::json);
        if let Some(json) = json {
            self.send(
                "response.output_item.done",
                json!({"output_index": item, "item": json}),
            )?;
        }
        Ok(())
    }
}

impl ResponseWriter<'_> {
    /// The search starts: its item (`in_progress`), then `in_progress` and `searching`.
    fn on_search_call(&mut self, id: String, query: String) -> io::Result<()> {
        self.close_open("completed")?;
        let item_id = format!("ws_{id}");
        let index = self.add_item(Item::Search {
            id: item_id.clone(),
            query,
            outcome: None,
            sources: self.head.echo.search_sources,
        })?;
        for kind in [
            "response.web_search_call.in_progress",
            "response.web_search_call.searching",
        ] {
            self.send(kind, json!({"item_id": item_id, "output_index": index}))?;
        }
        Ok(())
    }

    /// The search ended: `completed` (a failed search has no event of its own: its item says
    /// `failed`), then the item.
    fn on_search_result(
        &mut self,
        id: String,
        result: Result<Vec<SearchHit>, SearchFailure>,
    ) -> io::Result<()> {
        let item_id = format!("ws_{id}");
        let found = self
            .items
            .iter()
            .position(|i| matches!(i, Item::Search { id, .. } if *id == item_id));
        let Some(index) = found else {
            return Ok(());
        };
        let ok = result.is_ok();
        if let Some(Item::Search { outcome, .. }) = self.items.get_mut(index) {
            *outcome = Some(result);
        }
        if ok {
            self.send(
                "response.web_search_call.completed",
                json!({"item_id": item_id, "output_index": index}),
            )?;
        }
        let item = self.items.get(index).map(Item::json);
        if let Some(item) = item {
            self.send(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            )?;
        }
        Ok(())
    }

    /// `url_citation` annotations on the open message's text.
    fn on_citations(&mut self, list: Vec<Citation>) -> io::Result<()> {
        let Some(index) = self.open else {
            return Ok(());
        };
        let run = self.run_chars;
        let Some(Item::Message {
            id,
            text,
            annotations,
            ..
        }) = self.items.get_mut(index)
        else {
            return Ok(());
        };
        let offset = text.chars().count().saturating_sub(run);
        let id = id.clone();
        let mut events = Vec::new();
        for c in list {
            let a = json!({"type": "url_citation", "start_index": c.start + offset,
                "end_index": c.end + offset, "url": c.url, "title": c.title});
            events.push(
                json!({"item_id": id, "output_index": index, "content_index": 0,
                "annotation_index": annotations.len(), "annotation": a}),
            );
            annotations.push(a);
        }
        for e in events {
            self.send("response.output_text.annotation.added", e)?;
        }
        Ok(())
    }
}

impl Sink for ResponseWriter<'_> {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        match &event {
            OutputEvent::Text(t) => self.run_chars += t.chars().count(),
            OutputEvent::Citations(_) => {}
            _ => self.run_chars = 0,
        }
        match event {
            OutputEvent::Text(t) => self.on_text(t, false),
            OutputEvent::Refusal(t) => self.on_text(t, true),
            OutputEvent::WebSearchCall { id, query } => self.on_search_call(id, query),
            OutputEvent::WebSearchResult { id, outcome, .. } => self.on_search_result(id, outcome),
            OutputEvent::Citations(list) => self.on_citations(list),
            OutputEvent::Reasoning(t) => self.on_reasoning(t),
            OutputEvent::ReasoningSignature(s) => {
                let i = self.reasoning_for_signature()?;
                if let Some(Item::Reasoning { signature, .. }) = self.items.get_mut(i) {
                    *signature = Some(s);
                }
                Ok(())
            }
            OutputEvent::RedactedReasoning(r) => {
                let i = self.reasoning_for_signature()?;
                if let Some(Item::Reasoning { redacted, .. }) = self.items.get_mut(i) {
                    *redacted = Some(r);
                }
                Ok(())
            }
            OutputEvent::ToolCallStart { index, id, name } => self.on_call_start(index, id, name),
            OutputEvent::ToolCallArguments { index, fragment } => {
                self.on_call_arguments(index, fragment)
            }
            OutputEvent::ToolCallEnd { index, arguments } => self.on_call_end(index, arguments),
        }
    }

    fn keepalive(&mut self) -> io::Result<()> {
        self.out.as_mut().map_or(Ok(()), |o| o.keepalive())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().map_or(Ok(()), |o| o.flush())
    }
}
