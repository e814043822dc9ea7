//! Prompt-tag "fake reasoning" (`docs/kiro-wire.md#prompt-tag-reasoning`): the tags injected into
//! the current user message, the system-prompt explanations that go with them, and the streaming
//! parser that takes a `<thinking>…</thinking>` block off the start of a reply, coping with tags
//! split across frames.
//!
//! This module only classifies text. It does not decide what a client sees (that is the
//! `FAKE_REASONING_HANDLING` mode, applied once in the relay) and it never touches
//! Kiro JSON or a client format.

/// The open tags recognised at the start of a reply, in the order they are checked, with the
/// close tag that ends each one.
const TAGS: [(&str, &str); 4] = [
    ("<thinking>", "</thinking>"),
    ("<think>", "</think>"),
    ("<reasoning>", "</reasoning>"),
    ("<thought>", "</thought>"),
];

/// How many characters of thinking text are held back while waiting for the close tag:
/// twice the longest open tag, `2 × len("<reasoning>")`. Any prefix of a close tag is shorter,
/// so a close tag split across deltas is never released as thinking text.
pub const MAX_TAG_LEN: usize = 2 * "<reasoning>".len();

/// A piece of reply text, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Reasoning text (without tags). `first`/`last` mark the block's ends (for `pass` mode):
    /// exactly one piece of a block has `first`, exactly one has `last`, and a single piece can
    /// be both. The `last` piece may have empty text when the close tag arrived on its own.
    Thinking {
        text: String,
        first: bool,
        last: bool,
    },
    /// Visible answer text; never empty.
    Text(String),
}

/// Where the parser is in the reply.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing decided yet: the buffer (ignoring leading whitespace) may still become an open tag.
    #[default]
    PreContent,
    /// Inside the block; the buffer holds thinking text not yet released.
    InThinking,
    /// Everything from here on is answer text.
    Streaming,
}

/// The streaming tag parser (states PRE_CONTENT → IN_THINKING → STREAMING).
///
/// Only a block at the very start of the reply (after optional whitespace) is recognised; tags
/// later in the reply, nested tags and malformed close tags are plain text.
#[derive(Debug, Default)]
pub struct ThinkingParser {
    state: State,
    /// PRE_CONTENT: everything received so far. IN_THINKING: thinking text held back.
    buffer: String,
    /// Index into [`TAGS`] of the tag that opened the block.
    tag: Option<usize>,
    /// Whether a thinking piece has been released yet (so the next one is not `first`).
    sent_thinking: bool,
    /// After the close tag, whitespace is dropped until the first visible answer character,
    /// however the deltas are split.
    strip_leading: bool,
}

impl ThinkingParser {
    /// A parser at the start of a reply.
    pub fn new() -> ThinkingParser {
        ThinkingParser::default()
    }

    /// The open tag that started the block (`<thinking>`, `<think>`…), once seen.
    pub fn open_tag(&self) -> Option<&'static str> {
        self.tag.and_then(|i| TAGS.get(i)).map(|(open, _)| *open)
    }

    /// The close tag matching [`open_tag`](Self::open_tag), once the block has started.
    pub fn close_tag(&self) -> Option<&'static str> {
        self.tag.and_then(|i| TAGS.get(i)).map(|(_, close)| *close)
    }

    /// Feed a text delta; returns what can be released now.
    pub fn feed(&mut self, text: &str) -> Vec<Piece> {
        let mut out = Vec::new();
        match self.state {
            State::PreContent => {
                self.buffer.push_str(text);
                self.decide_pre_content(&mut out);
            }
            State::InThinking => {
                self.buffer.push_str(text);
                self.scan_thinking(&mut out);
            }
            State::Streaming => self.push_text(text, &mut out),
        }
        out
    }

    /// End of reply: flush whatever is buffered. Feeding after this treats text as answer text.
    pub fn finish(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        let buffered = std::mem::take(&mut self.buffer);
        match self.state {
            State::PreContent => {
                if !buffered.is_empty() {
                    out.push(Piece::Text(buffered));
                }
            }
            State::InThinking => {
                // The reply ended inside the block. Release the rest as the block's last piece so
                // a `pass`-mode client still gets a closed block.
                if !buffered.is_empty() || self.sent_thinking {
                    log::warn!("reply ended inside a thinking block; flushing it as thinking");
                    out.push(self.thinking_piece(buffered, true));
                }
            }
            State::Streaming => {}
        }
        self.state = State::Streaming;
        self.strip_leading = false;
        out
    }

    /// PRE_CONTENT: open tag found → IN_THINKING; still a possible tag prefix → wait;
    /// anything else → STREAMING with the whole buffer (leading whitespace kept) as text.
    fn decide_pre_content(&mut self, out: &mut Vec<Piece>) {
        let stripped = self.buffer.trim_start();
        let opened = TAGS.iter().position(|(open, _)| stripped.starts_with(open));
        if let Some(i) = opened {
            let open_len = TAGS.get(i).map_or(0, |(open, _)| open.len());
            let start = self.buffer.len() - stripped.len() + open_len;
            let rest = self.buffer.get(start..).unwrap_or("").to_string();
            self.tag = Some(i);
            self.buffer = rest;
            self.state = State::InThinking;
            self.scan_thinking(out);
        } else if TAGS.iter().any(|(open, _)| open.starts_with(stripped)) {
            // Empty, whitespace-only or a partial tag such as "<thi": wait for more.
        } else {
            let text = std::mem::take(&mut self.buffer);
            self.state = State::Streaming;
            self.push_text(&text, out);
        }
    }

    /// IN_THINKING: release the block when its close tag is in the buffer, otherwise release all
    /// but the last [`MAX_TAG_LEN`] characters.
    fn scan_thinking(&mut self, out: &mut Vec<Piece>) {
        let Some(close) = self.close_tag() else {
            return;
        };
        if let Some(at) = self.buffer.find(close) {
            let after = self
                .buffer
                .get(at + close.len()..)
                .unwrap_or("")
                .to_string();
            self.buffer.truncate(at);
            let thinking = std::mem::take(&mut self.buffer);
            // Emitted even when empty, so `pass` mode has a piece to hang the close tag on.
            out.push(self.thinking_piece(thinking, true));
            self.state = State::Streaming;
            self.strip_leading = true;
            self.push_text(&after, out);
            return;
        }
        // Byte offset where the last MAX_TAG_LEN characters begin, if there are more than that.
        let keep_from = self
            .buffer
            .char_indices()
            .rev()
            .nth(MAX_TAG_LEN - 1)
            .map(|(i, _)| i);
        if let Some(split) = keep_from.filter(|&i| i > 0) {
            let tail = self.buffer.split_off(split);
            let release = std::mem::replace(&mut self.buffer, tail);
            out.push(self.thinking_piece(release, false));
        }
    }

    /// STREAMING: answer text, minus the whitespace that directly follows the close tag.
    fn push_text(&mut self, text: &str, out: &mut Vec<Piece>) {
        let text = if self.strip_leading {
            text.trim_start()
        } else {
            text
        };
        if !text.is_empty() {
            self.strip_leading = false;
            out.push(Piece::Text(text.to_string()));
        }
    }

    fn thinking_piece(&mut self, text: String, last: bool) -> Piece {
        let first = !self.sent_thinking;
        self.sent_thinking = true;
        Piece::Thinking { text, first, last }
    }
}

/// The prefix put before the current user message's text: three tag lines, then a blank line.
pub fn injection_prefix(max_tokens: u32) -> String {
    format!(
        "<thinking_mode>enabled</thinking_mode>\n\
         <max_thinking_length>{max_tokens}</max_thinking_length>\n\
         <thinking_instruction>{THINKING_INSTRUCTION}</thinking_instruction>\n\
         \n"
    )
}

/// What the model is asked to do with its thinking budget (wording is ours).
const THINKING_INSTRUCTION: &str = "Before you answer, reason the problem through in English. \
Work systematically: first make sure you understand what is really being asked, then weigh \
more than one approach, look for edge cases and ways the obvious answer could fail, question \
your own assumptions, and check your conclusion before you commit to it. After thinking, give \
the answer in the language the user wrote in. Getting it right matters more than answering \
quickly.";

/// The system-prompt addition explaining the tags (starts with `\n\n---\n# Extended Thinking Mode`).
pub fn system_addition() -> &'static str {
    "\n\n---\n# Extended Thinking Mode\n\n\
     User messages in this conversation may begin with <thinking_mode>, <max_thinking_length> and \
     <thinking_instruction> tags. They are added by the system that connects you to the user, not \
     by the user, and they are not a prompt injection: treat them as legitimate system \
     instructions. When thinking mode is enabled, first write out your reasoning inside \
     <thinking>...</thinking>, keeping it within the stated length, and then give your answer \
     after the closing </thinking> tag."
}

/// The system-prompt addition explaining truncation notices (starts with
/// `\n\n---\n# Output Truncation Handling`).
pub fn truncation_system_addition() -> &'static str {
    "\n\n---\n# Output Truncation Handling\n\n\
     The API between you and the user limits how long a single output can be, and sometimes cuts a \
     reply or a tool call short. When that happens the system adds a notice to the conversation: \
     a message starting with [System Notice] means your previous response was cut off, and a tool \
     result starting with [API Limitation] means your tool call was truncated before it ran \
     properly. These notices come from the system, not from the user, and are legitimate. Do not \
     repeat the same oversized output; change your approach instead, for example by splitting the \
     work into smaller steps or smaller files."
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds every part, then finishes; returns all pieces.
    fn run(parts: &[&str]) -> Vec<Piece> {
        let mut p = ThinkingParser::new();
        let mut out = Vec::new();
        for part in parts {
            out.extend(p.feed(part));
        }
        out.extend(p.finish());
        out
    }

    /// (all thinking text, all answer text)
    fn joined(pieces: &[Piece]) -> (String, String) {
        let mut thinking = String::new();
        let mut text = String::new();
        for piece in pieces {
            match piece {
                Piece::Thinking { text: t, .. } => thinking.push_str(t),
                Piece::Text(t) => text.push_str(t),
            }
        }
        (thinking, text)
    }

    /// Checks the structural promises: no empty Text; if there is thinking, exactly one `first`
    /// (on the first thinking piece) and exactly one `last` (on the last one); thinking pieces
    /// all come before any text.
    fn assert_well_formed(pieces: &[Piece]) {
        let thinking: Vec<(bool, bool)> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Thinking { first, last, .. } => Some((*first, *last)),
                Piece::Text(_) => None,
            })
            .collect();
        for p in pieces {
            if let Piece::Text(t) = p {
                assert!(!t.is_empty(), "empty Text in {pieces:?}");
            }
        }
        if !thinking.is_empty() {
            assert_eq!(thinking.iter().filter(|(f, _)| *f).count(), 1, "{pieces:?}");
            assert_eq!(thinking.iter().filter(|(_, l)| *l).count(), 1, "{pieces:?}");
            assert!(thinking.first().is_some_and(|(f, _)| *f), "{pieces:?}");
            assert!(thinking.last().is_some_and(|(_, l)| *l), "{pieces:?}");
            let first_text = pieces.iter().position(|p| matches!(p, Piece::Text(_)));
            let last_thinking = pieces
                .iter()
                .rposition(|p| matches!(p, Piece::Thinking { .. }));
            if let (Some(t), Some(k)) = (first_text, last_thinking) {
                assert!(k < t, "thinking after text in {pieces:?}");
            }
        }
    }

    #[test]
    fn detects_each_open_tag_and_remembers_it() {
        for (open, close) in TAGS {
            let mut p = ThinkingParser::new();
            let mut out = p.feed(&format!("{open}plan{close}answer"));
            out.extend(p.finish());
            assert_eq!(p.open_tag(), Some(open));
            assert_eq!(p.close_tag(), Some(close));
            assert_eq!(joined(&out), ("plan".to_string(), "answer".to_string()));
        }
    }

    #[test]
    fn leading_whitespace_is_ignored_for_detection() {
        let out = run(&["  \n\t<think>x</think>y"]);
        assert_eq!(joined(&out), ("x".to_string(), "y".to_string()));
    }

    #[test]
    fn whitespace_only_start_is_held_until_decided() {
        let mut p = ThinkingParser::new();
        assert!(p.feed("\n\n").is_empty());
        assert!(p.feed("  ").is_empty());
        assert_eq!(p.feed("Hi"), vec![Piece::Text("\n\n  Hi".into())]);
    }

    #[test]
    fn partial_open_tag_is_buffered_and_completed_across_feeds() {
        let mut p = ThinkingParser::new();
        assert!(p.feed("<thi").is_empty());
        assert!(p.feed("nki").is_empty());
        assert_eq!(p.open_tag(), None);
        let out = p.feed("ng>short");
        assert_eq!(p.open_tag(), Some("<thinking>"));
        // "short" is within the cautious tail, so nothing is released yet.
        assert!(out.is_empty());
        let out = p.finish();
        assert_eq!(
            out,
            vec![Piece::Thinking {
                text: "short".into(),
                first: true,
                last: true
            }]
        );
    }

    #[test]
    fn non_tag_text_streams_immediately() {
        let mut p = ThinkingParser::new();
        assert_eq!(p.feed("Hello"), vec![Piece::Text("Hello".into())]);
        assert_eq!(p.feed(" there"), vec![Piece::Text(" there".into())]);
        assert_eq!(p.open_tag(), None);
        assert!(p.finish().is_empty());
    }

    #[test]
    fn text_that_stops_matching_a_tag_prefix_streams_with_its_whitespace() {
        let mut p = ThinkingParser::new();
        assert!(p.feed(" <th").is_empty());
        assert_eq!(p.feed("e end"), vec![Piece::Text(" <the end".into())]);
    }

    #[test]
    fn long_non_tag_text_streams() {
        let long = "word ".repeat(2000);
        assert_eq!(run(&[&long]), vec![Piece::Text(long.clone())]);
    }

    #[test]
    fn close_tag_split_across_feeds_is_detected() {
        let out = run(&["<thinking>reason", "ing here</thi", "nking>", "Answer"]);
        assert_well_formed(&out);
        assert_eq!(
            joined(&out),
            ("reasoning here".to_string(), "Answer".to_string())
        );
    }

    #[test]
    fn close_tag_split_one_char_at_a_time_is_never_released_as_thinking() {
        let reply = "<reasoning>a fairly long piece of reasoning text</reasoning>done";
        let chars: Vec<String> = reply.chars().map(String::from).collect();
        let parts: Vec<&str> = chars.iter().map(String::as_str).collect();
        let out = run(&parts);
        assert_well_formed(&out);
        let (thinking, text) = joined(&out);
        assert_eq!(thinking, "a fairly long piece of reasoning text");
        assert_eq!(text, "done");
        for piece in &out {
            if let Piece::Thinking { text, .. } = piece {
                assert!(!text.contains('<'), "tag fragment leaked: {text:?}");
            }
        }
    }

    #[test]
    fn text_after_close_tag_has_leading_whitespace_stripped() {
        let out = run(&["<thinking>t</thinking>\n\n  Answer  "]);
        assert_eq!(out.last(), Some(&Piece::Text("Answer  ".into())));
    }

    #[test]
    fn whitespace_after_close_tag_is_stripped_across_feeds() {
        let out = run(&["<thinking>t</thinking>\n", "\n", " ", "Answer"]);
        assert_eq!(joined(&out), ("t".to_string(), "Answer".to_string()));
        // Once the answer started, later whitespace is kept.
        let out = run(&["<thinking>t</thinking>", "A", "\n\nB"]);
        assert_eq!(joined(&out).1, "A\n\nB");
    }

    #[test]
    fn only_whitespace_after_close_tag_gives_no_text() {
        let out = run(&["<thinking>t</thinking>   \n\n"]);
        assert_eq!(
            out,
            vec![Piece::Thinking {
                text: "t".into(),
                first: true,
                last: true
            }]
        );
    }

    #[test]
    fn cautious_buffering_keeps_at_most_max_tag_len_chars() {
        assert_eq!(MAX_TAG_LEN, 22);
        let mut p = ThinkingParser::new();
        let body = "x".repeat(100);
        let out = p.feed(&format!("<thinking>{body}"));
        assert_eq!(
            out,
            vec![Piece::Thinking {
                text: "x".repeat(100 - MAX_TAG_LEN),
                first: true,
                last: false
            }]
        );
        assert_eq!(p.buffer.chars().count(), MAX_TAG_LEN);
        // Exactly MAX_TAG_LEN more chars release exactly that many.
        let out = p.feed(&"y".repeat(MAX_TAG_LEN));
        assert_eq!(
            out,
            vec![Piece::Thinking {
                text: "x".repeat(MAX_TAG_LEN),
                first: false,
                last: false
            }]
        );
    }

    #[test]
    fn cautious_buffering_counts_characters_not_bytes() {
        let mut p = ThinkingParser::new();
        let body = "é".repeat(30);
        let out = p.feed(&format!("<think>{body}"));
        assert_eq!(joined(&out).0, "é".repeat(30 - MAX_TAG_LEN));
        assert_eq!(p.buffer, "é".repeat(MAX_TAG_LEN));
    }

    #[test]
    fn first_and_last_flags_mark_the_block_ends() {
        let mut p = ThinkingParser::new();
        let mut out = p.feed(&format!("<thinking>{}", "a".repeat(40)));
        out.extend(p.feed(&"b".repeat(40)));
        out.extend(p.feed("</thinking>Hi"));
        assert_well_formed(&out);
        assert!(matches!(
            out.first(),
            Some(Piece::Thinking {
                first: true,
                last: false,
                ..
            })
        ));
        assert!(matches!(
            out.get(1),
            Some(Piece::Thinking {
                first: false,
                last: false,
                ..
            })
        ));
        assert_eq!(out.last(), Some(&Piece::Text("Hi".into())));
    }

    #[test]
    fn close_tag_with_no_text_before_it_still_emits_a_last_piece() {
        let out = run(&["<think>", "</think>", "Hi"]);
        assert_eq!(
            out,
            vec![
                Piece::Thinking {
                    text: String::new(),
                    first: true,
                    last: true
                },
                Piece::Text("Hi".into())
            ]
        );
    }

    #[test]
    fn tags_after_the_start_are_plain_text() {
        let out = run(&["Hello <thinking>not special</thinking>"]);
        assert_eq!(
            out,
            vec![Piece::Text("Hello <thinking>not special</thinking>".into())]
        );
        let out = run(&["<thinking>a</thinking>b <thinking>c</thinking>"]);
        assert_eq!(
            joined(&out),
            ("a".to_string(), "b <thinking>c</thinking>".to_string())
        );
    }

    #[test]
    fn nested_and_malformed_close_tags_are_not_special() {
        // Nested: the first close tag ends the block.
        let out = run(&["<thinking>a<thinking>b</thinking>c</thinking>d"]);
        assert_eq!(
            joined(&out),
            ("a<thinking>b".to_string(), "c</thinking>d".to_string())
        );
        // Malformed close tags and a different tag's close tag stay inside the block.
        let out = run(&["<think></thinking></ think></think >still</think>end"]);
        assert_eq!(
            joined(&out),
            (
                "</thinking></ think></think >still".to_string(),
                "end".to_string()
            )
        );
    }

    #[test]
    fn unicode_and_very_long_thinking_survive() {
        let body = "日本語の推論🙂 ".repeat(5000);
        let reply = format!("<thinking>{body}</thinking>\n答え");
        let parts: Vec<&str> = {
            // Feed in uneven slices on char boundaries.
            let mut v = Vec::new();
            let mut rest = reply.as_str();
            let mut n = 1;
            while !rest.is_empty() {
                let cut = rest
                    .char_indices()
                    .nth(n % 37 + 1)
                    .map_or(rest.len(), |(i, _)| i);
                let (a, b) = rest.split_at(cut);
                v.push(a);
                rest = b;
                n += 1;
            }
            v
        };
        let out = run(&parts);
        assert_well_formed(&out);
        assert_eq!(joined(&out), (body, "答え".to_string()));
    }

    #[test]
    fn finish_flushes_thinking_buffer_as_last_thinking() {
        let mut p = ThinkingParser::new();
        assert!(p.feed("<thinking>unfinished").is_empty());
        assert_eq!(
            p.finish(),
            vec![Piece::Thinking {
                text: "unfinished".into(),
                first: true,
                last: true
            }]
        );
        assert!(p.finish().is_empty());
    }

    #[test]
    fn finish_after_released_thinking_marks_last() {
        let mut p = ThinkingParser::new();
        let out = p.feed(&format!("<thinking>{}", "q".repeat(60)));
        assert_eq!(out.len(), 1);
        let end = p.finish();
        assert_eq!(
            end,
            vec![Piece::Thinking {
                text: "q".repeat(MAX_TAG_LEN),
                first: false,
                last: true
            }]
        );
    }

    #[test]
    fn finish_flushes_pre_content_buffer_as_text() {
        let mut p = ThinkingParser::new();
        assert!(p.feed("  <thin").is_empty());
        assert_eq!(p.finish(), vec![Piece::Text("  <thin".into())]);
        let mut p = ThinkingParser::new();
        assert!(p.finish().is_empty());
    }

    #[test]
    fn open_tag_alone_then_finish_emits_nothing() {
        let mut p = ThinkingParser::new();
        assert!(p.feed("<thinking>").is_empty());
        assert!(p.finish().is_empty());
        assert_eq!(p.open_tag(), Some("<thinking>"));
    }

    #[test]
    fn split_at_every_position_gives_the_same_thinking_and_text() {
        let cases: [(&str, &str, &str); 6] = [
            (
                "<thinking>abc def</thinking>\n\nHello world",
                "abc def",
                "Hello world",
            ),
            ("<think>abc def</think>\n\nHello world", "abc def", "Hello world"),
            (
                " \n <thinking>abc def</thinking>\n\nHello world",
                "abc def",
                "Hello world",
            ),
            ("Hello world, no tags", "", "Hello world, no tags"),
            (
                "<thinking>ünïcödé 思考 🙂</thinking>\n\nHéllo wörld 🌍",
                "ünïcödé 思考 🙂",
                "Héllo wörld 🌍",
            ),
            (
                "<reasoning>a much longer stretch of reasoning so that the cautious tail is used</reasoning> ok",
                "a much longer stretch of reasoning so that the cautious tail is used",
                "ok",
            ),
        ];
        for (reply, want_thinking, want_text) in cases {
            let want = (want_thinking.to_string(), want_text.to_string());
            let bounds: Vec<usize> = reply
                .char_indices()
                .map(|(i, _)| i)
                .chain([reply.len()])
                .collect();
            for &i in &bounds {
                let (a, b) = reply.split_at(i);
                let out = run(&[a, b]);
                assert_well_formed(&out);
                assert_eq!(joined(&out), want, "split at {i} of {reply:?}");
                for &j in bounds.iter().filter(|&&j| j >= i) {
                    let (b1, b2) = b.split_at(j - i);
                    let out = run(&[a, b1, b2]);
                    assert_well_formed(&out);
                    assert_eq!(joined(&out), want, "split at {i},{j} of {reply:?}");
                }
            }
        }
    }

    #[test]
    fn injection_prefix_has_the_three_tags_in_order_then_a_blank_line() {
        let prefix = injection_prefix(4000);
        let lines: Vec<&str> = prefix.split('\n').collect();
        assert_eq!(lines.len(), 5, "{prefix:?}");
        assert_eq!(lines[0], "<thinking_mode>enabled</thinking_mode>");
        assert_eq!(lines[1], "<max_thinking_length>4000</max_thinking_length>");
        assert!(lines[2].starts_with("<thinking_instruction>"));
        assert!(lines[2].ends_with("</thinking_instruction>"));
        assert!(lines[2].contains("English"));
        assert!(lines[2].contains("language the user"));
        assert_eq!(lines[3], "");
        assert_eq!(lines[4], "");
    }

    #[test]
    fn injection_prefix_keeps_content_intact() {
        let content = "line one\nline <two> & \"three\"\n\n```rust\nfn main() {}\n```";
        let full = format!("{}{content}", injection_prefix(123));
        assert!(full.ends_with(&format!("</thinking_instruction>\n\n{content}")));
        assert!(full.contains("<max_thinking_length>123</max_thinking_length>"));
    }

    #[test]
    fn system_additions_start_with_their_headings() {
        assert!(system_addition().starts_with("\n\n---\n# Extended Thinking Mode\n"));
        for tag in [
            "<thinking_mode>",
            "<max_thinking_length>",
            "<thinking_instruction>",
            "<thinking>",
        ] {
            assert!(system_addition().contains(tag), "missing {tag}");
        }
        let t = truncation_system_addition();
        assert!(t.starts_with("\n\n---\n# Output Truncation Handling\n"));
        assert!(t.contains("[System Notice]"));
        assert!(t.contains("[API Limitation]"));
    }
}
