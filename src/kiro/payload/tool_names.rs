//! Tool names Kiro accepts (`docs/kiro-wire.md#tool-names`): at most 64 characters of
//! `[A-Za-z0-9_-]`. Clients allow more (Anthropic 128 characters; MCP servers add
//! `mcp__server__` prefixes), and Kiro refuses the whole request for one such name even when the
//! tool is never called, so every other name gets a short, stable, unique alias toward Kiro. The
//! aliases are mapped back before the client sees anything.

use crate::util::sha256_hex;

use super::MAX_TOOL_NAME_CHARS;

/// Hex digits of the name's hash in an alias: enough to keep aliases of different names apart.
const HASH_DIGITS: usize = 8;

/// The client's tool names that needed an alias, and the aliases.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolNames {
    /// (client name, Kiro alias).
    aliases: Vec<(String, String)>,
}

impl ToolNames {
    /// Aliases for every name in `names` that Kiro would refuse. An alias never equals another
    /// name of the request, and the same name always gets the same alias.
    pub fn for_names<'a>(names: impl Iterator<Item = &'a str> + Clone) -> ToolNames {
        let mut aliases: Vec<(String, String)> = Vec::new();
        for name in names.clone() {
            if valid(name) || aliases.iter().any(|(n, _)| n == name) {
                continue;
            }
            let taken = |alias: &str| {
                names.clone().any(|n| n == alias) || aliases.iter().any(|(_, a)| a == alias)
            };
            let mut digits = HASH_DIGITS;
            let mut alias = alias_for(name, digits);
            while taken(&alias) && digits < 32 {
                digits += 4;
                alias = alias_for(name, digits);
            }
            aliases.push((name.to_string(), alias));
        }
        ToolNames { aliases }
    }

    /// The name Kiro sees for the client's `name`.
    pub fn to_kiro<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases
            .iter()
            .find(|(n, _)| n == name)
            .map_or(name, |(_, a)| a.as_str())
    }

    /// (Kiro alias, client name) pairs, for mapping Kiro's calls back.
    pub fn back(&self) -> Vec<(String, String)> {
        self.aliases
            .iter()
            .map(|(n, a)| (a.clone(), n.clone()))
            .collect()
    }
}

/// What Kiro accepts as a tool name.
pub fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The end of the name (where an MCP tool's own name is) with invalid characters replaced,
/// followed by a hash of the whole name.
fn alias_for(name: &str, digits: usize) -> String {
    let hash = sha256_hex(name.as_bytes());
    let hash = hash.get(..digits).unwrap_or(&hash);
    let cleaned: Vec<char> = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let room = MAX_TOOL_NAME_CHARS - digits - 1;
    let tail: String = cleaned[cleaned.len().saturating_sub(room)..]
        .iter()
        .collect();
    let tail = tail.trim_start_matches('_');
    if tail.is_empty() {
        format!("tool_{hash}")
    } else {
        format!("{tail}_{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str =
        "mcp__weather_service_for_long_names__fetch_the_current_weather_report_for_a_given_city_name";

    #[test]
    fn valid_names_keep_theirs_and_others_get_a_short_stable_alias() {
        let names = ToolNames::for_names(["Bash", LONG, "a.b", ""].into_iter());
        assert_eq!(names.to_kiro("Bash"), "Bash");
        let alias = names.to_kiro(LONG).to_string();
        assert!(valid(&alias), "{alias}");
        assert!(alias.contains("for_a_given_city_name"), "{alias}");
        assert_eq!(
            ToolNames::for_names([LONG].into_iter()).to_kiro(LONG),
            alias,
            "stable across requests"
        );
        assert!(valid(names.to_kiro("a.b")));
        assert!(names.to_kiro("a.b").starts_with("a_b_"));
        assert!(valid(names.to_kiro("")));
        assert_eq!(names.back().len(), 3);
        assert!(names.back().contains(&(alias, LONG.to_string())));
    }

    #[test]
    fn names_that_differ_only_early_get_different_aliases() {
        let a = format!("server_one__{}", "x".repeat(70));
        let b = format!("server_two__{}", "x".repeat(70));
        let names = ToolNames::for_names([a.as_str(), b.as_str()].into_iter());
        assert_ne!(names.to_kiro(&a), names.to_kiro(&b));
    }

    #[test]
    fn an_alias_never_takes_a_name_the_request_already_uses() {
        let long = "y".repeat(80);
        let first = ToolNames::for_names([long.as_str()].into_iter())
            .to_kiro(&long)
            .to_string();
        let names = ToolNames::for_names([long.as_str(), first.as_str()].into_iter());
        assert_eq!(names.to_kiro(&first), first);
        assert_ne!(names.to_kiro(&long), first);
        assert!(valid(names.to_kiro(&long)));
    }
}
