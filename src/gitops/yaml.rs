//! A YAML reader that keeps where every node came from.
//!
//! The delivery rules need two things serde-style deserialisation throws away: the line and
//! column of each value (findings a person can jump to) and its exact byte range in the file
//! (promotion edits that replace a digest and leave comments, order and quoting untouched).
//! This builds a small spanned tree from the event stream of `granit-parser` (the parser under
//! `serde-saphyr`, already in the build), refusing duplicate keys and bounding depth and size.

use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, Span};

/// Deepest nesting accepted (Kubernetes objects nest ~15 deep).
pub const MAX_DEPTH: usize = 64;
/// Most nodes accepted in one file (a 1 MiB values file has ~50 000).
pub const MAX_NODES: usize = 500_000;

/// A position in a file: 1-based line and column, and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1 (in characters).
    pub column: usize,
    /// Byte offset, from 0.
    #[serde(skip)]
    pub offset: usize,
}

/// A YAML node with its place in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A scalar: its value after YAML processing, and where it is written.
    Scalar(Scalar),
    /// A mapping, in source order.
    Map(Vec<(Scalar, Node)>, Pos),
    /// A sequence.
    Seq(Vec<Node>, Pos),
    /// An alias (`*name`): not followed; image references must be written out.
    Alias(Pos),
}

/// A scalar and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// The value after unquoting and escape processing.
    pub value: String,
    /// Where it starts.
    pub pos: Pos,
    /// Its bytes in the file (quotes included for quoted scalars).
    pub bytes: Range<usize>,
    /// Whether it is a plain (unquoted, non-block) scalar: `null`, `~` and the empty plain
    /// scalar are nulls, not strings.
    pub plain: bool,
}

impl Scalar {
    /// Whether this is a YAML null (`~`, `null`, or nothing).
    pub fn is_null(&self) -> bool {
        self.plain && matches!(self.value.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }
}

impl Node {
    /// Where the node starts.
    pub fn pos(&self) -> Pos {
        match self {
            Node::Scalar(s) => s.pos,
            Node::Map(_, p) | Node::Seq(_, p) | Node::Alias(p) => *p,
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries, _) => entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar, if this is one (and not a null).
    pub fn scalar(&self) -> Option<&Scalar> {
        match self {
            Node::Scalar(s) if !s.is_null() => Some(s),
            _ => None,
        }
    }

    /// The string value of `key`, if it is a non-null scalar.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(Node::scalar)
            .map(|s| s.value.as_str())
    }
}

/// Why a file is not YAML custody can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {}, column {}: {message}", pos.line, pos.column)]
pub struct YamlError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

fn pos_of(span: &Span, source: &str) -> Pos {
    let m = span.start;
    Pos {
        line: m.line(),
        column: m.col() + 1,
        offset: m
            .byte_offset()
            .unwrap_or_else(|| char_to_byte(source, m.index())),
    }
}

fn char_to_byte(source: &str, chars: usize) -> usize {
    source
        .char_indices()
        .nth(chars)
        .map_or(source.len(), |(i, _)| i)
}

fn byte_range(span: &Span, source: &str) -> Range<usize> {
    span.byte_range().unwrap_or_else(|| {
        char_to_byte(source, span.start.index())..char_to_byte(source, span.end.index())
    })
}

struct Builder<'a> {
    source: &'a str,
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    nodes: usize,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<Option<(Event<'a>, Span)>, YamlError> {
        loop {
            let e = self.next_raw()?;
            // Comments and anchor metadata are presentation, not nodes.
            if !matches!(e, Some((Event::Comment(..) | Event::Anchor(..), _))) {
                return Ok(e);
            }
        }
    }

    fn next_raw(&mut self) -> Result<Option<(Event<'a>, Span)>, YamlError> {
        match self.parser.next_event() {
            None => Ok(None),
            Some(Ok(e)) => {
                self.nodes += 1;
                if self.nodes > MAX_NODES {
                    return Err(YamlError {
                        pos: pos_of(&e.1, self.source),
                        message: format!("more than {MAX_NODES} YAML nodes (limit)"),
                    });
                }
                Ok(Some(e))
            }
            Some(Err(e)) => {
                let m = e.marker();
                Err(YamlError {
                    pos: Pos {
                        line: m.line(),
                        column: m.col() + 1,
                        offset: m.byte_offset().unwrap_or(0),
                    },
                    message: e.info(),
                })
            }
        }
    }

    fn scalar(&self, value: &str, style: ScalarStyle, span: &Span) -> Scalar {
        Scalar {
            value: value.to_owned(),
            pos: pos_of(span, self.source),
            bytes: byte_range(span, self.source),
            plain: style == ScalarStyle::Plain,
        }
    }

    /// Reads the node whose first event is `first`.
    fn node(&mut self, first: (Event<'a>, Span), depth: usize) -> Result<Node, YamlError> {
        let (event, span) = first;
        let pos = pos_of(&span, self.source);
        if depth > MAX_DEPTH {
            return Err(YamlError {
                pos,
                message: format!("nested deeper than {MAX_DEPTH} levels (limit)"),
            });
        }
        match event {
            Event::Scalar(v, style, _, _) => Ok(Node::Scalar(self.scalar(&v, style, &span))),
            Event::Alias(_) | Event::UnresolvedAlias(_) => Ok(Node::Alias(pos)),
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                loop {
                    let e = self.expect_next(pos)?;
                    if matches!(e.0, Event::SequenceEnd) {
                        return Ok(Node::Seq(items, pos));
                    }
                    items.push(self.node(e, depth + 1)?);
                }
            }
            Event::MappingStart(..) => {
                let mut entries: Vec<(Scalar, Node)> = Vec::new();
                loop {
                    let (ke, kspan) = self.expect_next(pos)?;
                    let key = match ke {
                        Event::MappingEnd => return Ok(Node::Map(entries, pos)),
                        Event::Scalar(v, style, _, _) => self.scalar(&v, style, &kspan),
                        other => {
                            // A complex key (mapping or sequence as key): read past it, refuse.
                            let kpos = pos_of(&kspan, self.source);
                            self.node((other, kspan), depth + 1)?;
                            return Err(YamlError {
                                pos: kpos,
                                message: "complex mapping keys are not supported".into(),
                            });
                        }
                    };
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.value == key.value) {
                        return Err(YamlError {
                            pos: key.pos,
                            message: format!(
                                "duplicate key {:?} (first at line {}, column {}): which one applies depends on the tool reading it",
                                key.value, first.pos.line, first.pos.column
                            ),
                        });
                    }
                    let ve = self.expect_next(pos)?;
                    let value = self.node(ve, depth + 1)?;
                    entries.push((key, value));
                }
            }
            other => Err(YamlError {
                pos,
                message: format!("unexpected YAML event {other:?}"),
            }),
        }
    }

    fn expect_next(&mut self, open: Pos) -> Result<(Event<'a>, Span), YamlError> {
        self.next()?.ok_or(YamlError {
            pos: open,
            message: "unexpected end of input".into(),
        })
    }
}

/// Parses every document of `source` (`---`-separated). Empty documents are skipped.
///
/// # Errors
/// The first syntax error, duplicate key, or limit, with its position.
pub fn parse(source: &str) -> Result<Vec<Node>, YamlError> {
    let mut b = Builder {
        source,
        parser: Parser::new_from_str(source),
        nodes: 0,
    };
    let mut docs = Vec::new();
    while let Some(e) = b.next()? {
        match e.0 {
            Event::StreamStart | Event::DocumentStart(..) | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            _ => {
                let node = b.node(e, 0)?;
                if !matches!(&node, Node::Scalar(s) if s.is_null()) {
                    docs.push(node);
                }
            }
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_keep_line_column_and_exact_bytes() {
        let src = "# comment\napp:\n  image:\n    ref: \"ghcr.io/acme/app@sha256:ab\"  # pinned\n";
        let docs = parse(src).unwrap();
        let r = docs[0]
            .get("app")
            .unwrap()
            .get("image")
            .unwrap()
            .get("ref")
            .unwrap();
        let s = r.scalar().unwrap();
        assert_eq!(s.value, "ghcr.io/acme/app@sha256:ab");
        assert_eq!((s.pos.line, s.pos.column), (4, 10));
        assert_eq!(&src[s.bytes.clone()], "\"ghcr.io/acme/app@sha256:ab\"");
        assert!(!s.plain);
    }

    #[test]
    fn multi_byte_characters_before_a_value_do_not_shift_its_bytes() {
        let src = "note: \"größe ✓\"\nimage: repo@sha256:ab\n";
        let docs = parse(src).unwrap();
        let s = docs[0].get("image").unwrap().scalar().unwrap();
        assert_eq!(&src[s.bytes.clone()], "repo@sha256:ab");
        assert_eq!(s.pos.line, 2);
    }

    #[test]
    fn several_documents_are_read_and_empty_ones_skipped() {
        let docs = parse("a: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].str("b"), Some("2"));
    }

    #[test]
    fn a_duplicate_key_is_an_error_naming_both_places() {
        let e = parse("image:\n  ref: a\n  ref: b\n").unwrap_err();
        assert_eq!(e.pos.line, 3);
        assert!(e.message.contains("duplicate key \"ref\""), "{e}");
        assert!(e.message.contains("first at line 2"), "{e}");
    }

    #[test]
    fn a_syntax_error_reports_its_line() {
        let e = parse("a: 1\nb: [unclosed\nc: 3\n").unwrap_err();
        assert!(e.pos.line >= 2, "{e}");
    }

    #[test]
    fn tab_indentation_is_a_syntax_error_not_a_panic() {
        assert!(parse("a:\n\tb: 1\n").is_err());
    }

    #[test]
    fn nulls_are_not_strings() {
        let docs = parse("a: ~\nb:\nc: 'null'\n").unwrap();
        assert!(docs[0].get("a").unwrap().scalar().is_none());
        assert!(docs[0].get("b").unwrap().scalar().is_none());
        assert_eq!(docs[0].str("c"), Some("null"));
    }

    #[test]
    fn aliases_are_kept_as_aliases_not_followed() {
        let docs = parse("base: &img repo@sha256:ab\nimage: *img\n").unwrap();
        assert!(matches!(docs[0].get("image"), Some(Node::Alias(_))));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 5) + &"]".repeat(MAX_DEPTH + 5);
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("deeper"), "{e}");
    }

    #[test]
    fn complex_keys_are_refused() {
        assert!(parse("? [a, b]\n: c\n").is_err());
    }
}
