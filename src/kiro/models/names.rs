//! Client model names → Kiro ids (`docs/kiro-wire.md#model-names`).

/// Client aliases → Kiro ids. Case-sensitive, applied before normalisation. `auto-kiro` exists
/// because Cursor has its own "auto".
pub(super) const ALIASES: [(&str, &str); 1] = [("auto-kiro", "auto")];

/// Client name → Kiro id (`docs/kiro-wire.md#model-names`).
///
/// First the case-sensitive aliases (`auto-kiro` → `auto`). Then the Claude rules,
/// matched case-insensitively, first match wins, result lower-case:
/// 1. `claude-<family>-<major>-<minor 1–2 digits>[-<digits>|-latest]` → `claude-<family>-<major>.<minor>`
/// 2. `claude-<family>-<major>[-<8 digits>]` → `claude-<family>-<major>`
/// 3. `claude-<major>-<minor>-<family>[-<digits>|-latest]` → `claude-<major>.<minor>-<family>`
/// 4. a dotted name with an 8-digit date (`claude-haiku-4.5-20251001`, `claude-3.7-sonnet-20250219`)
///    → the name without the date
/// 5. `claude-<M>.<m>-<family>-<anything non-empty>` → `claude-<family>-<M>.<m>`
///
/// Anything else gets the generic rule, case preserved: a dash between two digits
/// becomes a dot (`deepseek-3-2` → `deepseek-3.2`, `gpt-5-6-sol` → `gpt-5.6-sol`). Matches do not
/// overlap, left to right, like the peers' `(\d)-(\d)` regex, so `x-1-2-3` → `x-1.2-3` and a
/// date after a version (`m-3-2-20250101` → `m-3.2-20250101`) is not turned into a dot.
pub fn normalise_model_name(name: &str) -> String {
    if let Some((_, target)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return target.to_string();
    }
    let lower = name.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('-').collect();
    if let Some(normalised) = claude_rules(&parts) {
        return normalised;
    }
    dots_between_digits(name)
}

/// Rules 1–5 of [`normalise_model_name`] on the lower-cased, dash-split name.
fn claude_rules(parts: &[&str]) -> Option<String> {
    // Rule 1: claude-<family>-<major>-<minor>[-suffix]
    if let ["claude", family, major, minor, rest @ ..] = parts {
        if is_family(family)
            && is_digits(major)
            && is_digits(minor)
            && minor.len() <= 2
            && optional(rest, is_version_suffix)
        {
            return Some(format!("claude-{family}-{major}.{minor}"));
        }
    }
    // Rule 2: claude-<family>-<major>[-<date>]
    if let ["claude", family, major, rest @ ..] = parts {
        if is_family(family) && is_digits(major) && optional(rest, is_date) {
            return Some(format!("claude-{family}-{major}"));
        }
    }
    // Rule 3: claude-<major>-<minor>-<family>[-suffix]
    if let ["claude", major, minor, family, rest @ ..] = parts {
        if is_digits(major)
            && is_digits(minor)
            && is_family(family)
            && optional(rest, is_version_suffix)
        {
            return Some(format!("claude-{major}.{minor}-{family}"));
        }
    }
    // Rule 4: claude-[<M.m>-]<family>[-<M.m>]-<date>
    if let ["claude", middle @ .., date] = parts {
        let middle_ok = match middle {
            [family] => is_family(family),
            [a, b] => (is_dotted(a) && is_family(b)) || (is_family(a) && is_dotted(b)),
            [a, family, b] => is_dotted(a) && is_family(family) && is_dotted(b),
            _ => false,
        };
        if middle_ok && is_date(date) {
            let mut kept = vec!["claude"];
            kept.extend_from_slice(middle);
            return Some(kept.join("-"));
        }
    }
    // Rule 5: claude-<M.m>-<family>-<anything>
    if let ["claude", version, family, rest @ ..] = parts {
        if is_dotted(version) && is_family(family) && !rest.join("-").is_empty() {
            return Some(format!("claude-{family}-{version}"));
        }
    }
    None
}

/// `rest` is empty, or one part accepted by `accept`.
fn optional(rest: &[&str], accept: fn(&str) -> bool) -> bool {
    match rest {
        [] => true,
        [one] => accept(one),
        _ => false,
    }
}

fn is_family(s: &str) -> bool {
    matches!(s, "haiku" | "sonnet" | "opus")
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    s.len() == 8 && is_digits(s)
}

/// A trailing `-<digits>` or `-latest` (rules 1 and 3).
fn is_version_suffix(s: &str) -> bool {
    s == "latest" || is_digits(s)
}

/// `<digits>.<digits>`.
fn is_dotted(s: &str) -> bool {
    s.split_once('.')
        .is_some_and(|(a, b)| is_digits(a) && is_digits(b))
}

/// Each `<digit>-<digit>` becomes `<digit>.<digit>`, non-overlapping, left to right.
fn dots_between_digits(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let dash_then_digit =
            chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|d| d.is_ascii_digit());
        if c.is_ascii_digit() && dash_then_digit {
            // The digit after the dash is consumed with this match, so it cannot start the
            // next one: matches do not overlap.
            out.push(c);
            out.push('.');
            if let Some(&next) = chars.get(i + 2) {
                out.push(next);
            }
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The family of a model name: the Claude line (`opus`, `sonnet`, `haiku`, or whatever word
/// follows `claude-`) or, for other makers, the leading letters (`gpt`, `deepseek`, `glm`…).
/// `None` for names without one (`auto`).
pub fn family_of(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('-').collect();
    if parts.first() == Some(&"claude") {
        return parts
            .iter()
            .skip(1)
            .find(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphabetic()))
            .map(|p| format!("claude-{p}"));
    }
    let letters: String = lower
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    (!letters.is_empty() && lower != "auto").then_some(letters)
}

/// The version numbers in an id, in order (`claude-opus-4.8` → `[4, 8]`, `claude-3.7-sonnet` →
/// `[3, 7]`, `gpt-5.6-sol` → `[5, 6]`), for "newest": larger compares newer. Dates and other
/// long digit runs are not versions.
pub fn version_of(id: &str) -> Vec<u64> {
    id.split('-')
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .flat_map(|p| p.split('.'))
        .filter(|n| !n.is_empty() && n.len() < 6)
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Among `candidates` (Kiro ids in list order), the newest of `requested`'s family: the highest
/// version, then the one sharing the most words with the request (`-sol`, `-1m`), then the first
/// listed. `None` when no candidate is of that family.
pub fn newest_of_family<'a>(requested: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let family = family_of(requested)?;
    let lower = requested.to_ascii_lowercase();
    let words: Vec<&str> = lower.split('-').collect();
    let shared = |id: &str| {
        id.to_ascii_lowercase()
            .split('-')
            .filter(|w| words.contains(w))
            .count()
    };
    let mut best: Option<(&str, Vec<u64>, usize)> = None;
    for &id in candidates {
        if family_of(id).as_deref() != Some(family.as_str()) {
            continue;
        }
        let key = (version_of(id), shared(id));
        let better = match &best {
            None => true,
            Some((_, v, s)) => key.0 > *v || (key.0 == *v && key.1 > *s),
        };
        if better {
            best = Some((id, key.0, key.1));
        }
    }
    best.map(|(id, _, _)| id)
}

/// `MODEL_ALIASES`: `requested=kiro-id` pairs separated by commas. Spaces around names are
/// ignored; an entry without `=` or with an empty side is an error naming it.
pub fn parse_aliases(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                Ok((from.trim().to_string(), to.trim().to_string()))
            }
            _ => Err(format!(
                "MODEL_ALIASES entry '{entry}' is not requested=kiro-id"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table_of_the_base_spec() {
        let table = [
            // Rule 1
            ("claude-haiku-4-5", "claude-haiku-4.5"),
            ("claude-haiku-4-5-20251001", "claude-haiku-4.5"),
            ("claude-opus-4-5-latest", "claude-opus-4.5"),
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
            ("claude-opus-4-5-1", "claude-opus-4.5"),
            ("claude-sonnet-4-6", "claude-sonnet-4.6"),
            ("claude-opus-4-8", "claude-opus-4.8"),
            ("CLAUDE-Sonnet-4-5", "claude-sonnet-4.5"),
            // Rule 2
            ("claude-sonnet-4", "claude-sonnet-4"),
            ("claude-sonnet-4-20250514", "claude-sonnet-4"),
            ("claude-opus-5", "claude-opus-5"),
            // Rule 3
            ("claude-3-7-sonnet", "claude-3.7-sonnet"),
            ("claude-3-7-sonnet-20250219", "claude-3.7-sonnet"),
            ("claude-3-5-haiku", "claude-3.5-haiku"),
            ("claude-3-0-opus", "claude-3.0-opus"),
            ("claude-3-5-sonnet-latest", "claude-3.5-sonnet"),
            // Rule 4
            ("claude-haiku-4.5-20251001", "claude-haiku-4.5"),
            ("claude-3.7-sonnet-20250219", "claude-3.7-sonnet"),
            // Rule 5
            ("claude-4.5-opus-high", "claude-opus-4.5"),
            ("claude-4.5-sonnet-low-thinking", "claude-sonnet-4.5"),
            ("CLAUDE-4.5-OPUS-HIGH", "claude-opus-4.5"),
            ("Claude-4.5-Sonnet-Low", "claude-sonnet-4.5"),
            // Passthrough
            ("claude-3.7-sonnet", "claude-3.7-sonnet"),
            ("claude-4.5-opus", "claude-4.5-opus"),
            ("claude-sonnet-4.5", "claude-sonnet-4.5"),
            ("auto", "auto"),
            ("gpt-4", "gpt-4"),
            ("gpt-4-turbo", "gpt-4-turbo"),
            ("unknown-model", "unknown-model"),
            ("Unknown-Model", "Unknown-Model"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(normalise_model_name(input), want, "input {input:?}");
        }
    }

    #[test]
    fn normalisation_turns_dashes_between_digits_into_dots() {
        let table = [
            ("deepseek-3-2", "deepseek-3.2"),
            ("minimax-m2-5", "minimax-m2.5"),
            ("gpt-5-6-sol", "gpt-5.6-sol"),
            ("glm-5", "glm-5"),
            ("qwen3-coder-next", "qwen3-coder-next"),
            ("deepseek-3.2", "deepseek-3.2"),
            ("DeepSeek-3-2", "DeepSeek-3.2"),
            ("m-3-2-20250101", "m-3.2-20250101"),
            ("x-1-2-3", "x-1.2-3"),
            ("a-1-b", "a-1-b"),
            ("9-", "9-"),
        ];
        for (input, want) in table {
            assert_eq!(normalise_model_name(input), want, "input {input:?}");
        }
    }

    #[test]
    fn aliases_apply_case_sensitively() {
        assert_eq!(normalise_model_name("auto-kiro"), "auto");
        assert_eq!(normalise_model_name("AUTO-KIRO"), "AUTO-KIRO");
    }

    #[test]
    fn families_are_the_claude_line_or_the_leading_letters() {
        assert_eq!(family_of("claude-opus-4.8").as_deref(), Some("claude-opus"));
        assert_eq!(family_of("claude-opus-4-8").as_deref(), Some("claude-opus"));
        assert_eq!(
            family_of("claude-3-5-haiku-20241022").as_deref(),
            Some("claude-haiku")
        );
        assert_eq!(
            family_of("claude-3.7-sonnet").as_deref(),
            Some("claude-sonnet")
        );
        assert_eq!(
            family_of("claude-sonnet-5").as_deref(),
            Some("claude-sonnet")
        );
        assert_eq!(family_of("gpt-6.2-sol").as_deref(), Some("gpt"));
        assert_eq!(family_of("deepseek-3.2").as_deref(), Some("deepseek"));
        assert_eq!(family_of("auto"), None);
        assert_eq!(family_of("4o"), None);
    }

    #[test]
    fn versions_compare_newest_first_and_ignore_dates() {
        assert!(version_of("claude-opus-5") > version_of("claude-opus-4.8"));
        assert!(version_of("claude-opus-5.5") > version_of("claude-opus-5"));
        assert_eq!(version_of("claude-haiku-4.5-20251001"), vec![4, 5]);
        assert_eq!(version_of("claude-3.7-sonnet"), vec![3, 7]);
    }

    #[test]
    fn newest_of_family_picks_the_highest_version_then_shared_words() {
        let listed = [
            "auto",
            "claude-sonnet-4.5",
            "claude-opus-4.5",
            "claude-opus-4.7",
            "claude-haiku-4.5",
            "gpt-5.6-sol",
            "gpt-5.6-luna",
        ];
        assert_eq!(
            newest_of_family("claude-opus-4-8", &listed),
            Some("claude-opus-4.7")
        );
        assert_eq!(
            newest_of_family("claude-sonnet-5", &listed),
            Some("claude-sonnet-4.5")
        );
        assert_eq!(
            newest_of_family("claude-3-5-haiku-20241022", &listed),
            Some("claude-haiku-4.5")
        );
        assert_eq!(
            newest_of_family("gpt-6.2-sol", &listed),
            Some("gpt-5.6-sol")
        );
        assert_eq!(
            newest_of_family("gpt-6.2-luna", &listed),
            Some("gpt-5.6-luna")
        );
        assert_eq!(newest_of_family("mistral-large", &listed), None);
        assert_eq!(newest_of_family("claude-fable-5", &listed), None);
    }

    #[test]
    fn aliases_setting_is_pairs_separated_by_commas() {
        assert_eq!(
            parse_aliases(" gpt-4o = claude-sonnet-4.5 ,opus=claude-opus-4.8,").unwrap(),
            vec![
                ("gpt-4o".to_string(), "claude-sonnet-4.5".to_string()),
                ("opus".to_string(), "claude-opus-4.8".to_string())
            ]
        );
        assert!(parse_aliases("").unwrap().is_empty());
        assert!(parse_aliases("a=b,c").unwrap_err().contains("'c'"));
        assert!(parse_aliases("=b").is_err());
    }
}
