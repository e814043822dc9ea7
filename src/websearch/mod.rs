//! Web search, format-neutral: what a client asked for (limits, domain filters, location), the
//! results of one search, its failure, and the citations found in the model's answer.
//!
//! Every client API has a hosted web search tool (Anthropic `web_search_2025…`, Responses
//! `web_search`, Chat `web_search_options`); Kiro's models cannot run it, but Kiro offers a search
//! of its own (`kiro::mcp`). The formats parse their tool into a [`WebSearchRequest`] with the
//! helpers here, and write [`SearchHit`]s, [`SearchFailure`]s and [`Citation`]s in their own shapes.
//! Nothing here knows client JSON beyond those three tool shapes, nor Kiro JSON.
//! See `docs/web-search.md` for the client shapes.

pub mod codec;

use serde_json::Value;

/// Searches allowed per request when the client sets no `max_uses`.
pub const DEFAULT_MAX_USES: u32 = 5;

/// The name of the tool the gateway offers Kiro; Kiro's own MCP tool has the same name.
pub const TOOL_NAME: &str = "web_search";

/// Longest query the gateway sends (longer ones are refused as `query_too_long`).
pub const MAX_QUERY_CHARS: usize = 500;

/// A client's hosted web search tool, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebSearchRequest {
    /// The tool's type as the client wrote it (`web_search_20250305`, `web_search_preview`, or
    /// `web_search_options` for Chat), to name it when it is not served.
    pub tool_type: String,
    /// Searches allowed in this request (at least 1).
    pub max_uses: u32,
    /// Only results from these domains (lowercase, no scheme); empty means all.
    pub allowed_domains: Vec<String>,
    /// Never results from these domains.
    pub blocked_domains: Vec<String>,
    /// Where the user is, as the client said (passed to the model as a hint).
    pub user_location: Option<UserLocation>,
    /// Responses `include: ["web_search_call.action.sources"]`: list the sources in the call item.
    pub include_sources: bool,
}

/// An approximate location.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserLocation {
    pub city: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub timezone: Option<String>,
}

impl UserLocation {
    /// "Paris, Île-de-France, FR (Europe/Paris)", or None when every field is empty.
    pub fn describe(&self) -> Option<String> {
        let place: Vec<&str> = [&self.city, &self.region, &self.country]
            .into_iter()
            .filter_map(|f| f.as_deref())
            .filter(|s| !s.is_empty())
            .collect();
        let tz = self.timezone.as_deref().filter(|s| !s.is_empty());
        match (place.is_empty(), tz) {
            (true, None) => None,
            (true, Some(tz)) => Some(format!("time zone {tz}")),
            (false, None) => Some(place.join(", ")),
            (false, Some(tz)) => Some(format!("{} ({tz})", place.join(", "))),
        }
    }
}

/// One page found by a search.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchHit {
    pub title: String,
    pub url: String,
    /// The page's text as the search engine excerpted it.
    pub snippet: Option<String>,
    /// When the page was published, as a date for people ("March 3, 2026").
    pub page_age: Option<String>,
}

/// Why a search gave no results. Each maps to one of Anthropic's `web_search_tool_result_error`
/// codes ([`SearchFailure::code`]); the Responses and Chat shapes have no such codes and report a
/// `failed` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchFailure {
    /// Kiro's search failed, answered something unreadable, or is switched off.
    Unavailable,
    /// Kiro's search did not answer within `WEB_SEARCH_TIMEOUT`.
    Timeout,
    /// Kiro throttled the search.
    TooManyRequests,
    /// The model called the tool without a usable query.
    InvalidInput,
    /// The query is longer than [`MAX_QUERY_CHARS`].
    QueryTooLong,
    /// The request's `max_uses` searches were already made.
    MaxUsesExceeded,
}

impl SearchFailure {
    /// Anthropic's `error_code`.
    pub fn code(self) -> &'static str {
        match self {
            SearchFailure::Unavailable | SearchFailure::Timeout => "unavailable",
            SearchFailure::TooManyRequests => "too_many_requests",
            SearchFailure::InvalidInput => "invalid_tool_input",
            SearchFailure::QueryTooLong => "query_too_long",
            SearchFailure::MaxUsesExceeded => "max_uses_exceeded",
        }
    }

    /// The failure an Anthropic `error_code` names (unknown codes read as `unavailable`).
    pub fn from_code(code: &str) -> SearchFailure {
        match code {
            "too_many_requests" => SearchFailure::TooManyRequests,
            "invalid_tool_input" => SearchFailure::InvalidInput,
            "query_too_long" => SearchFailure::QueryTooLong,
            "max_uses_exceeded" => SearchFailure::MaxUsesExceeded,
            _ => SearchFailure::Unavailable,
        }
    }

    /// What the model is told instead of results.
    pub fn explain(self) -> &'static str {
        match self {
            SearchFailure::Unavailable => "The web search service is unavailable right now.",
            SearchFailure::Timeout => "The web search did not answer in time.",
            SearchFailure::TooManyRequests => "Too many web searches right now; try later.",
            SearchFailure::InvalidInput => "The web_search call needs a non-empty 'query' string.",
            SearchFailure::QueryTooLong => "The query is too long; use a shorter query.",
            SearchFailure::MaxUsesExceeded => {
                "No more web searches are allowed in this request; answer with what you have."
            }
        }
    }
}

/// A failed search with what the log may say about it (never secrets, never the query).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchError {
    pub failure: SearchFailure,
    pub detail: String,
}

impl std::fmt::Display for SearchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "web search {}: {}", self.failure.code(), self.detail)
    }
}

/// A place in the model's answer that names a search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Citation {
    pub url: String,
    pub title: String,
    /// Text of the cited page (the start of its snippet, at most 150 characters).
    pub cited_text: String,
    /// Offsets in characters (Unicode scalar values) into the text run that cites, end exclusive.
    pub start: usize,
    pub end: usize,
}

/// A client field that is not acceptable: the formats turn it into their 400.
#[derive(Debug, Clone, PartialEq)]
pub struct BadField {
    /// The field's path as the client wrote it (`tools[0].max_uses`).
    pub field: String,
    pub message: String,
}

impl From<BadField> for crate::error::Error {
    fn from(b: BadField) -> crate::error::Error {
        crate::error::Error::BadRequest(format!("{}.", b.message))
    }
}

impl BadField {
    fn new(field: String, message: impl Into<String>) -> BadField {
        BadField {
            field,
            message: message.into(),
        }
    }
}

/// Whether an Anthropic tool `type` is the web search server tool: `web_search_20250305` and the
/// later dated versions (`web_search_20260209`, `web_search_20260318`, …).
pub fn is_anthropic_tool(kind: &str) -> bool {
    kind.strip_prefix("web_search_")
        .is_some_and(|date| date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a Responses tool `type` is a web search tool (`web_search`, `web_search_preview` and
/// their dated versions).
pub fn is_responses_tool(kind: &str) -> bool {
    matches!(
        kind,
        "web_search"
            | "web_search_preview"
            | "web_search_2025_08_26"
            | "web_search_preview_2025_03_11"
    ) || kind.starts_with("web_search_preview_")
        || kind.starts_with("web_search_20")
}

/// An Anthropic web search tool (`at` is its path, `tools[2]`): `max_uses` ≥ 1, one of
/// `allowed_domains` / `blocked_domains` as lists of strings, `user_location`.
pub fn parse_anthropic_tool(tool: &Value, at: &str) -> Result<WebSearchRequest, BadField> {
    let max_uses = parse_max_uses(tool.get("max_uses"), &format!("{at}.max_uses"))?;
    let allowed = parse_domains(
        tool.get("allowed_domains"),
        &format!("{at}.allowed_domains"),
    )?;
    let blocked = parse_domains(
        tool.get("blocked_domains"),
        &format!("{at}.blocked_domains"),
    )?;
    if !allowed.is_empty() && !blocked.is_empty() {
        return Err(BadField::new(
            format!("{at}.allowed_domains"),
            format!("{at}.allowed_domains and {at}.blocked_domains cannot be used together"),
        ));
    }
    let user_location = parse_location(tool.get("user_location"), &format!("{at}.user_location"))?;
    Ok(WebSearchRequest {
        tool_type: tool_type(tool),
        max_uses,
        allowed_domains: allowed,
        blocked_domains: blocked,
        user_location,
        include_sources: false,
    })
}

/// A Responses web search tool: `filters.allowed_domains`, `user_location`. Responses has no
/// `max_uses`; the default applies.
pub fn parse_responses_tool(tool: &Value, at: &str) -> Result<WebSearchRequest, BadField> {
    let allowed = match tool.get("filters") {
        None | Some(Value::Null) => Vec::new(),
        Some(f @ Value::Object(_)) => parse_domains(
            f.get("allowed_domains"),
            &format!("{at}.filters.allowed_domains"),
        )?,
        Some(_) => {
            return Err(BadField::new(
                format!("{at}.filters"),
                format!("{at}.filters must be an object"),
            ))
        }
    };
    let user_location = parse_location(tool.get("user_location"), &format!("{at}.user_location"))?;
    Ok(WebSearchRequest {
        tool_type: tool_type(tool),
        max_uses: DEFAULT_MAX_USES,
        allowed_domains: allowed,
        blocked_domains: Vec::new(),
        user_location,
        include_sources: false,
    })
}

/// Chat Completions `web_search_options`: `user_location: {type: "approximate", approximate:
/// {…}}`, `search_context_size` (accepted, not used).
pub fn parse_chat_options(options: &Value) -> Result<WebSearchRequest, BadField> {
    const AT: &str = "web_search_options";
    if !options.is_object() {
        return Err(BadField::new(
            AT.into(),
            "web_search_options must be an object",
        ));
    }
    let user_location = match options.get("user_location") {
        None | Some(Value::Null) => None,
        Some(loc @ Value::Object(_)) => {
            let inner = loc.get("approximate").unwrap_or(&Value::Null);
            parse_location(Some(inner), &format!("{AT}.user_location.approximate"))?
        }
        Some(_) => {
            return Err(BadField::new(
                format!("{AT}.user_location"),
                format!("{AT}.user_location must be an object"),
            ))
        }
    };
    Ok(WebSearchRequest {
        tool_type: AT.into(),
        max_uses: DEFAULT_MAX_USES,
        user_location,
        ..WebSearchRequest::default()
    })
}

fn tool_type(tool: &Value) -> String {
    tool.get("type")
        .and_then(Value::as_str)
        .unwrap_or(TOOL_NAME)
        .to_string()
}

fn parse_max_uses(v: Option<&Value>, at: &str) -> Result<u32, BadField> {
    match v {
        None | Some(Value::Null) => Ok(DEFAULT_MAX_USES),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if n >= 1 => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => Err(BadField::new(
                at.into(),
                format!("{at} must be an integer of at least 1"),
            )),
        },
        Some(_) => Err(BadField::new(
            at.into(),
            format!("{at} must be an integer of at least 1"),
        )),
    }
}

fn parse_domains(v: Option<&Value>, at: &str) -> Result<Vec<String>, BadField> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(BadField::new(
                at.into(),
                format!("{at} must be a list of strings"),
            ))
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, d) in list.iter().enumerate() {
        let Some(d) = d.as_str() else {
            return Err(BadField::new(
                format!("{at}[{i}]"),
                format!("{at} must be a list of strings"),
            ));
        };
        let d = normalise_domain(d);
        if d.is_empty() {
            return Err(BadField::new(
                format!("{at}[{i}]"),
                format!("{at}[{i}] is not a domain"),
            ));
        }
        out.push(d);
    }
    Ok(out)
}

fn parse_location(v: Option<&Value>, at: &str) -> Result<Option<UserLocation>, BadField> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(BadField::new(at.into(), format!("{at} must be an object"))),
    };
    let field = |name: &str| -> Result<Option<String>, BadField> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Some(_) => Err(BadField::new(
                format!("{at}.{name}"),
                format!("{at}.{name} must be a string"),
            )),
        }
    };
    let loc = UserLocation {
        city: field("city")?,
        region: field("region")?,
        country: field("country")?,
        timezone: field("timezone")?,
    };
    Ok(Some(loc).filter(|l| l.describe().is_some()))
}

/// `https://Docs.Example.com/path/` → `docs.example.com/path`: the form filters compare.
fn normalise_domain(d: &str) -> String {
    let d = d.trim();
    let d = d.split_once("://").map_or(d, |(_, rest)| rest);
    d.trim_end_matches('/').to_ascii_lowercase()
}

/// Whether `url` is on `domain` (a subdomain counts; a domain with a path only covers that path).
pub fn url_matches_domain(url: &str, domain: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let (want_host, want_path) = match domain.find('/') {
        Some(i) => (&domain[..i], &domain[i..]),
        None => (domain, ""),
    };
    let host_ok = host == want_host
        || host
            .strip_suffix(want_host)
            .is_some_and(|prefix| prefix.ends_with('.'));
    let path_ok = want_path.is_empty()
        || path
            .to_ascii_lowercase()
            .strip_prefix(want_path)
            .is_some_and(|after| after.is_empty() || after.starts_with(['/', '?', '#']));
    host_ok && path_ok
}

impl WebSearchRequest {
    /// Keep only the hits the client's domain filters allow.
    pub fn filter(&self, hits: Vec<SearchHit>) -> Vec<SearchHit> {
        hits.into_iter()
            .filter(|h| {
                (self.allowed_domains.is_empty()
                    || self
                        .allowed_domains
                        .iter()
                        .any(|d| url_matches_domain(&h.url, d)))
                    && !self
                        .blocked_domains
                        .iter()
                        .any(|d| url_matches_domain(&h.url, d))
            })
            .collect()
    }

    /// The description of the `web_search` tool the gateway offers Kiro in place of the client's
    /// hosted one: what it does, and the client's limits.
    pub fn tool_description(&self) -> String {
        let mut description = String::from(
            "Search the web for current information. Returns pages with title, URL and an \
             excerpt. Cite the pages you use by writing their URL as a markdown link.",
        );
        if !self.allowed_domains.is_empty() {
            description.push_str(&format!(
                " Only results from these domains are returned: {}.",
                self.allowed_domains.join(", ")
            ));
        }
        if !self.blocked_domains.is_empty() {
            description.push_str(&format!(
                " Results from these domains are never returned: {}.",
                self.blocked_domains.join(", ")
            ));
        }
        if let Some(place) = self.user_location.as_ref().and_then(UserLocation::describe) {
            description.push_str(&format!(" The user is near {place}."));
        }
        description
    }
}

/// The query of a `web_search` call's arguments, checked.
pub fn query_of(arguments: &Value) -> Result<String, SearchFailure> {
    let q = arguments
        .get("query")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or(SearchFailure::InvalidInput)?;
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(SearchFailure::QueryTooLong);
    }
    Ok(q.to_string())
}

/// The tool result the model reads: the pages, numbered, with their excerpts.
pub fn results_for_model(query: &str, hits: &[SearchHit]) -> String {
    if hits.is_empty() {
        return format!("The web search for \"{query}\" found no results.");
    }
    let mut out = format!("Web search results for \"{query}\":\n");
    for (i, h) in hits.iter().enumerate() {
        out.push_str(&format!("\n[{}] {}\nURL: {}\n", i + 1, h.title, h.url));
        if let Some(age) = &h.page_age {
            out.push_str(&format!("Published: {age}\n"));
        }
        if let Some(s) = h.snippet.as_deref().filter(|s| !s.is_empty()) {
            out.push_str(s.trim());
            out.push('\n');
        }
    }
    out.push_str("\nWhen you use one of these pages, cite it as a markdown link to its URL.");
    out
}

/// Citations of `hits` in `text`: every place the text names a hit's URL, as a markdown link
/// `[label](url)` (the whole link is the span) or as the bare URL.
pub fn find_citations(text: &str, hits: &[SearchHit]) -> Vec<Citation> {
    let mut found: Vec<(usize, usize, &SearchHit)> = Vec::new();
    for hit in hits {
        if hit.url.is_empty() || found.iter().any(|(_, _, h)| h.url == hit.url) {
            continue;
        }
        let mut from = 0;
        while let Some(pos) = text.get(from..).and_then(|t| t.find(hit.url.as_str())) {
            let start = from + pos;
            let end = start + hit.url.len();
            from = end;
            if !url_ends_at(text, end) {
                continue;
            }
            let (s, e) = markdown_link_around(text, start, end).unwrap_or((start, end));
            if !found.iter().any(|(fs, fe, _)| s < *fe && *fs < e) {
                found.push((s, e, hit));
            }
        }
    }
    found.sort_by_key(|(s, _, _)| *s);
    found
        .into_iter()
        .map(|(s, e, hit)| Citation {
            url: hit.url.clone(),
            title: hit.title.clone(),
            cited_text: cited_text(hit),
            start: text[..s].chars().count(),
            end: text[..e].chars().count(),
        })
        .collect()
}

/// Whether a URL found in text ends at byte `end` (and is not the prefix of a longer URL).
fn url_ends_at(text: &str, end: usize) -> bool {
    let mut rest = text[end..].chars();
    match rest.next() {
        None => true,
        Some(c) if c.is_alphanumeric() => false,
        Some('/' | '-' | '_' | '?' | '#' | '=' | '&' | '%' | '~' | '+' | '@') => false,
        Some('.' | ':' | ',' | ';' | '!') => rest.next().is_none_or(|n| !n.is_alphanumeric()),
        Some(_) => true,
    }
}

/// `[label](url)` around the URL at `start..end` (bytes), as byte offsets of the whole link.
fn markdown_link_around(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let before = &text[..start];
    let after = &text[end..];
    if !before.ends_with("](") {
        return None;
    }
    let close = after.strip_prefix(')').map(|_| end + 1).or_else(|| {
        // `[label](url "title")`
        let quote = after.strip_prefix(" \"")?;
        let q = quote.find("\")")?;
        Some(end + 2 + q + 2)
    })?;
    let label_end = before.len() - 2;
    let open = before[..label_end].rfind('[')?;
    (!before[open..label_end].contains(['\n', ']'])).then_some((open, close))
}

/// Anthropic's `cited_text`: up to 150 characters of the page's excerpt (the title when none).
fn cited_text(hit: &SearchHit) -> String {
    let source = hit
        .snippet
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(&hit.title);
    source.chars().take(150).collect()
}

/// A search the client sent back in its history, as the text Kiro gets in the assistant turn:
/// the query and what was found (pages, or why nothing was).
pub fn history_text(query: &str, outcome: &Result<Vec<SearchHit>, SearchFailure>) -> String {
    match outcome {
        Ok(hits) => {
            let mut out = format!("[Searched the web for \"{query}\"]\n");
            if hits.is_empty() {
                out.push_str("No results.\n");
            }
            for (i, h) in hits.iter().enumerate() {
                out.push_str(&format!("[{}] {} — {}\n", i + 1, h.title, h.url));
                if let Some(s) = h.snippet.as_deref().filter(|s| !s.is_empty()) {
                    out.push_str(s.trim());
                    out.push('\n');
                }
            }
            out
        }
        Err(f) => format!(
            "[Searched the web for \"{query}\": failed ({})]\n",
            f.code()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hit(url: &str, title: &str, snippet: &str) -> SearchHit {
        SearchHit {
            title: title.into(),
            url: url.into(),
            snippet: Some(snippet.into()).filter(|s: &String| !s.is_empty()),
            page_age: None,
        }
    }

    #[test]
    fn anthropic_tool_versions_are_recognised() {
        assert!(is_anthropic_tool("web_search_20250305"));
        assert!(is_anthropic_tool("web_search_20260209"));
        assert!(is_anthropic_tool("web_search_20260318"));
        assert!(!is_anthropic_tool("web_search"));
        assert!(!is_anthropic_tool("web_fetch_20250910"));
        assert!(is_responses_tool("web_search"));
        assert!(is_responses_tool("web_search_preview_2025_03_11"));
        assert!(!is_responses_tool("file_search"));
    }

    #[test]
    fn anthropic_tool_defaults_and_fields() {
        let r = parse_anthropic_tool(
            &json!({"type": "web_search_20250305", "name": "web_search"}),
            "tools[0]",
        )
        .unwrap();
        assert_eq!(r.max_uses, DEFAULT_MAX_USES);
        let r = parse_anthropic_tool(
            &json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 2,
                    "allowed_domains": ["https://Docs.Rust-Lang.org/", "example.com/blog"],
                    "user_location": {"type": "approximate", "city": "Lyon", "country": "FR",
                                      "timezone": "Europe/Paris"}}),
            "tools[0]",
        )
        .unwrap();
        assert_eq!(r.max_uses, 2);
        assert_eq!(
            r.allowed_domains,
            ["docs.rust-lang.org", "example.com/blog"]
        );
        assert_eq!(
            r.user_location.unwrap().describe().unwrap(),
            "Lyon, FR (Europe/Paris)"
        );
    }

    #[test]
    fn bad_anthropic_tool_fields_are_named() {
        let field = |t: Value| parse_anthropic_tool(&t, "tools[1]").unwrap_err().field;
        assert_eq!(field(json!({"max_uses": 0})), "tools[1].max_uses");
        assert_eq!(field(json!({"max_uses": -1})), "tools[1].max_uses");
        assert_eq!(field(json!({"max_uses": "3"})), "tools[1].max_uses");
        assert_eq!(field(json!({"max_uses": 1.5})), "tools[1].max_uses");
        assert_eq!(
            field(json!({"allowed_domains": "a.com"})),
            "tools[1].allowed_domains"
        );
        assert_eq!(
            field(json!({"blocked_domains": ["a.com", 3]})),
            "tools[1].blocked_domains[1]"
        );
        assert_eq!(
            field(json!({"allowed_domains": ["a.com"], "blocked_domains": ["b.com"]})),
            "tools[1].allowed_domains"
        );
        assert_eq!(
            field(json!({"user_location": "Paris"})),
            "tools[1].user_location"
        );
        // Empty lists are no filter, so they do not clash.
        assert!(parse_anthropic_tool(
            &json!({"allowed_domains": [], "blocked_domains": ["b.com"]}),
            "t"
        )
        .is_ok());
    }

    #[test]
    fn responses_and_chat_options() {
        let r = parse_responses_tool(
            &json!({"type": "web_search", "filters": {"allowed_domains": ["pubmed.ncbi.nlm.nih.gov"]},
                    "search_context_size": "low"}),
            "tools[0]",
        )
        .unwrap();
        assert_eq!(r.allowed_domains, ["pubmed.ncbi.nlm.nih.gov"]);
        assert_eq!(r.max_uses, DEFAULT_MAX_USES);
        let e = parse_responses_tool(
            &json!({"type": "web_search", "filters": {"allowed_domains": [1]}}),
            "tools[3]",
        )
        .unwrap_err();
        assert_eq!(e.field, "tools[3].filters.allowed_domains[0]");
        let c = parse_chat_options(&json!({"search_context_size": "high", "user_location":
            {"type": "approximate", "approximate": {"country": "GB", "city": "London"}}}))
        .unwrap();
        assert_eq!(c.user_location.unwrap().describe().unwrap(), "London, GB");
        assert_eq!(
            parse_chat_options(&json!([])).unwrap_err().field,
            "web_search_options"
        );
    }

    #[test]
    fn domains_match_subdomains_and_paths() {
        assert!(url_matches_domain(
            "https://docs.example.com/x",
            "example.com"
        ));
        assert!(url_matches_domain("http://EXAMPLE.com", "example.com"));
        assert!(url_matches_domain(
            "https://example.com:8443/a?b",
            "example.com"
        ));
        assert!(!url_matches_domain(
            "https://badexample.com/",
            "example.com"
        ));
        assert!(!url_matches_domain(
            "https://example.com.evil.org/",
            "example.com"
        ));
        assert!(url_matches_domain(
            "https://example.com/blog/post",
            "example.com/blog"
        ));
        assert!(url_matches_domain(
            "https://example.com/blog",
            "example.com/blog"
        ));
        assert!(!url_matches_domain(
            "https://example.com/blogger",
            "example.com/blog"
        ));
        assert!(!url_matches_domain(
            "https://example.com/",
            "example.com/blog"
        ));
    }

    #[test]
    fn filters_keep_allowed_and_drop_blocked() {
        let hits = vec![
            hit("https://a.com/1", "A", ""),
            hit("https://www.b.org/2", "B", ""),
            hit("https://c.net/3", "C", ""),
        ];
        let allow = WebSearchRequest {
            allowed_domains: vec!["b.org".into(), "c.net".into()],
            ..Default::default()
        };
        let urls: Vec<String> = allow
            .filter(hits.clone())
            .into_iter()
            .map(|h| h.url)
            .collect();
        assert_eq!(urls, ["https://www.b.org/2", "https://c.net/3"]);
        let block = WebSearchRequest {
            blocked_domains: vec!["b.org".into()],
            ..Default::default()
        };
        let urls: Vec<String> = block.filter(hits).into_iter().map(|h| h.url).collect();
        assert_eq!(urls, ["https://a.com/1", "https://c.net/3"]);
    }

    #[test]
    fn queries_are_checked() {
        assert_eq!(
            query_of(&json!({"query": " rust 1.90 "})).unwrap(),
            "rust 1.90"
        );
        assert_eq!(query_of(&json!({})), Err(SearchFailure::InvalidInput));
        assert_eq!(
            query_of(&json!({"query": "  "})),
            Err(SearchFailure::InvalidInput)
        );
        assert_eq!(
            query_of(&json!({"query": 3})),
            Err(SearchFailure::InvalidInput)
        );
        let long = "x".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(
            query_of(&json!({ "query": long })),
            Err(SearchFailure::QueryTooLong)
        );
    }

    #[test]
    fn citations_cover_markdown_links_and_bare_urls() {
        let hits = vec![
            hit("https://a.com/x", "Page A", "Alpha text"),
            hit("https://a.com/x/y", "Page AY", ""),
            hit("https://b.org", "Page B", "Beta"),
        ];
        let text = "Déjà vu: see [A](https://a.com/x) and https://a.com/x/y. Also https://b.org.";
        let c = find_citations(text, &hits);
        assert_eq!(c.len(), 3);
        let chars: Vec<char> = text.chars().collect();
        let span = |c: &Citation| chars[c.start..c.end].iter().collect::<String>();
        assert_eq!(span(&c[0]), "[A](https://a.com/x)");
        assert_eq!(c[0].title, "Page A");
        assert_eq!(c[0].cited_text, "Alpha text");
        assert_eq!(span(&c[1]), "https://a.com/x/y");
        assert_eq!(c[1].cited_text, "Page AY");
        assert_eq!(span(&c[2]), "https://b.org");
        assert!(find_citations("nothing cited", &hits).is_empty());
        // A prefix of a longer URL that is not a hit is not a citation.
        assert!(find_citations("https://b.orgy", &hits).is_empty());
    }

    #[test]
    fn results_text_numbers_pages() {
        let t = results_for_model(
            "rust",
            &[SearchHit {
                title: "Rust".into(),
                url: "https://rust-lang.org".into(),
                snippet: Some("A language".into()),
                page_age: Some("March 3, 2026".into()),
            }],
        );
        assert!(t.contains(
            "[1] Rust\nURL: https://rust-lang.org\nPublished: March 3, 2026\nA language\n"
        ));
        assert!(results_for_model("q", &[]).contains("no results"));
        let h = history_text("q", &Err(SearchFailure::MaxUsesExceeded));
        assert!(h.contains("max_uses_exceeded"), "{h}");
    }
}
