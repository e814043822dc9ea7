//! The `.env` file parser. Hand-written rather than a crate: the format we accept is a dozen
//! lines of rules, and a dependency for it would cost more binary size than it saves.

/// Parse the text of a `.env` file: `KEY=value` lines, optional `export `, `#` comments, single
/// or double quotes (double quotes understand `\n`, `\t`, `\"` and `\\`).
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        out.push((key.to_string(), parse_value(value.trim())));
    }
    out
}

fn parse_value(v: &str) -> String {
    if let Some(rest) = v.strip_prefix('"') {
        let mut s = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return s,
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some(o) => s.push(o),
                    None => s.push('\\'),
                },
                o => s.push(o),
            }
        }
        s
    } else if let Some(rest) = v.strip_prefix('\'') {
        rest.split('\'').next().unwrap_or("").to_string()
    } else {
        // An unquoted value ends at " #" (an inline comment).
        let end = v.find(" #").unwrap_or(v.len());
        v[..end].trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_parses_quotes_comments_and_export() {
        let text = "# comment\nA=1\nexport B=\"two words\"\nC='single # kept'\nD=plain # trailing\nE=\"line\\nbreak\"\n bad line\n";
        let got = parse_dotenv(text);
        assert_eq!(
            got,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "single # kept".into()),
                ("D".into(), "plain".into()),
                ("E".into(), "line\nbreak".into()),
            ]
        );
    }
}
