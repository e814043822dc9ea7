//! Kiro's calls of an aliased tool go back under the client's own name: tool names Kiro refuses
//! were given short aliases toward Kiro (`docs/kiro-wire.md#tool-names`), and the client never
//! sees one.

use super::RelayOptions;

impl RelayOptions {
    /// The client's name for a tool Kiro called by `name`.
    pub(super) fn client_tool_name(&self, name: String) -> String {
        match self.tool_names.iter().find(|(alias, _)| *alias == name) {
            Some((_, client)) => client.clone(),
            None => name,
        }
    }
}
