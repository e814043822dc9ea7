//! Tool calls as Kiro streams them: fragments matched to their call by id (or to the call in
//! progress), each call started, fed and ended toward the sink, and calls beyond the one allowed
//! dropped.

use serde_json::Value;

use super::{Relay, RelayError, Sink};
use crate::conversation::OutputEvent;
use crate::error::Error;
use crate::kiro::events::ToolInput;
use crate::util::random_hex;

pub(super) struct ToolState {
    pub(super) kiro_id: String,
    pub(super) name: String,
    pub(super) args: String,
    pub(super) ended: bool,
    /// A call beyond the one allowed: nothing of it is handed on.
    pub(super) dropped: bool,
}

impl Relay<'_> {
    pub(super) fn on_tool(
        &mut self,
        id: String,
        name: String,
        input: Option<ToolInput>,
        stop: bool,
        sink: &mut dyn Sink,
    ) -> Result<(), RelayError> {
        // A fragment without an id belongs to the call in progress.
        let pos = if id.is_empty() {
            match self.tools.last() {
                Some(t) if t.dropped => Some(self.tools.len() - 1),
                _ => self.tools.iter().rposition(|t| !t.ended),
            }
        } else {
            self.tools.iter().position(|t| t.kiro_id == id)
        };
        let index = match pos {
            Some(i) => i,
            None => match self.start_tool(id, name, input.is_none() && stop, sink)? {
                Some(i) => i,
                None => return Ok(()),
            },
        };
        let Some(tool) = self.tools.get_mut(index) else {
            return Ok(());
        };
        if tool.ended {
            return Ok(());
        }
        let fragment = match input {
            Some(ToolInput::Fragment(f)) => f,
            Some(ToolInput::Object(v)) => {
                if tool.args.is_empty() {
                    serde_json::to_string(&v).unwrap_or_default()
                } else {
                    String::new()
                }
            }
            None => String::new(),
        };
        if !fragment.is_empty() {
            tool.args.push_str(&fragment);
            self.out_chars.add(&fragment);
            sink.emit(OutputEvent::ToolCallArguments { index, fragment })?;
        }
        if stop {
            self.end_tool(index, sink)?;
        }
        Ok(())
    }

    /// Open a new call for a fragment that matched none, and announce it (unless it is dropped).
    /// Returns its index, or `None` when nothing more of this fragment is handed on.
    fn start_tool(
        &mut self,
        id: String,
        name: String,
        bare_end: bool,
        sink: &mut dyn Sink,
    ) -> Result<Option<usize>, RelayError> {
        if bare_end && name.is_empty() {
            return Ok(None);
        }
        if name.is_empty() {
            // Every fragment of a call names its tool (docs/kiro-wire.md#events): one that starts
            // without a name could only reach the client as a call to no tool, which it can
            // neither run nor send back.
            return Err(RelayError::Failed(Error::Stream(format!(
                "Kiro started a tool call without a tool name (id {id:?})"
            ))));
        }
        let client_id = if id.is_empty() {
            format!("call_{}", random_hex(24))
        } else {
            id.clone()
        };
        let dropped = self.opts.single_tool_call && self.tools.iter().any(|t| !t.dropped);
        if dropped {
            log::info!(
                "parallel_tool_calls is false: the model's further call to '{name}' is dropped"
            );
        }
        self.tools.push(ToolState {
            kiro_id: id,
            name: name.clone(),
            args: String::new(),
            ended: dropped,
            dropped,
        });
        if dropped {
            return Ok(None);
        }
        let index = self.tools.len() - 1;
        sink.emit(OutputEvent::ToolCallStart {
            index,
            id: client_id,
            name,
        })?;
        Ok(Some(index))
    }

    /// Close tool call `index` if its arguments are complete JSON; otherwise leave it open
    /// (it is reported as truncated at the end).
    pub(super) fn end_tool(
        &mut self,
        index: usize,
        sink: &mut dyn Sink,
    ) -> Result<bool, RelayError> {
        let Some(tool) = self.tools.get_mut(index) else {
            return Ok(false);
        };
        if tool.args.trim().is_empty() {
            tool.args = "{}".into();
            sink.emit(OutputEvent::ToolCallArguments {
                index,
                fragment: "{}".into(),
            })?;
        }
        match serde_json::from_str::<Value>(&tool.args) {
            Ok(Value::Object(_)) => {
                tool.ended = true;
                sink.emit(OutputEvent::ToolCallEnd {
                    index,
                    arguments: tool.args.clone(),
                })?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
