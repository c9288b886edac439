//! A small ordered YAML tree and its block-style writer.
//!
//! The renderers build documents as [`Node`]s and write them here rather than through a serde
//! serializer because the output is checked in and read by people: keys must stay in the order
//! a human expects (`image` before `command` before `environment`), multi-line text such as a
//! scenario file must come out as a literal block, and the file needs a header comment. The
//! writer quotes every string that YAML 1.1 or 1.2 could read as anything but a string
//! (`on`, `0.5`, `8080:8080`, which old parsers read as a base-60 number), so the documents mean
//! the same thing to docker compose, kubectl and our own tests.

use std::fmt::Write as _;

/// One YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A string, written plain when that is unambiguous and double-quoted otherwise.
    Str(String),
    /// An integer.
    Int(i64),
    /// A floating-point number, always written with a decimal point.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A block sequence.
    Seq(Vec<Node>),
    /// A block mapping whose keys keep their insertion order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// An empty mapping, to be filled with [`Node::with`].
    pub fn map() -> Node {
        Node::Map(Vec::new())
    }

    /// This mapping with one more entry; on anything but a mapping it returns `self` unchanged.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Node>) -> Node {
        if let Node::Map(entries) = &mut self {
            entries.push((key.into(), value.into()));
        }
        self
    }

    /// A sequence of strings.
    pub fn strings<I, S>(items: I) -> Node
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Node::Seq(
            items
                .into_iter()
                .map(|item| Node::Str(item.into()))
                .collect(),
        )
    }
}

impl From<&str> for Node {
    fn from(value: &str) -> Node {
        Node::Str(value.to_owned())
    }
}

impl From<String> for Node {
    fn from(value: String) -> Node {
        Node::Str(value)
    }
}

impl From<&String> for Node {
    fn from(value: &String) -> Node {
        Node::Str(value.clone())
    }
}

impl From<i64> for Node {
    fn from(value: i64) -> Node {
        Node::Int(value)
    }
}

impl From<u32> for Node {
    fn from(value: u32) -> Node {
        Node::Int(i64::from(value))
    }
}

impl From<u16> for Node {
    fn from(value: u16) -> Node {
        Node::Int(i64::from(value))
    }
}

impl From<bool> for Node {
    fn from(value: bool) -> Node {
        Node::Bool(value)
    }
}

impl From<Vec<Node>> for Node {
    fn from(value: Vec<Node>) -> Node {
        Node::Seq(value)
    }
}

/// Writes one document (without the `---` separator), ending in a newline.
pub fn to_string(node: &Node) -> String {
    let mut out = String::new();
    match node {
        Node::Map(entries) if !entries.is_empty() => write_map(&mut out, entries, 0),
        Node::Seq(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        other => {
            write_inline(&mut out, other, 0);
            out.push('\n');
        }
    }
    out
}

/// Writes the entries of a mapping, each starting at column `indent`.
fn write_map(out: &mut String, entries: &[(String, Node)], indent: usize) {
    for (key, value) in entries {
        pad(out, indent);
        write_entry(out, key, value, indent);
    }
}

/// Writes `key: value` from the current position, where the key's column is `indent`.
fn write_entry(out: &mut String, key: &str, value: &Node, indent: usize) {
    write_string(out, key, indent);
    out.push(':');
    match value {
        Node::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            write_map(out, entries, indent + 2);
        }
        Node::Seq(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, indent + 2);
        }
        other => {
            out.push(' ');
            write_inline(out, other, indent + 2);
            out.push('\n');
        }
    }
}

/// Writes the items of a sequence, each `- ` starting at column `indent`.
fn write_seq(out: &mut String, items: &[Node], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push_str("- ");
        match item {
            Node::Map(entries) if !entries.is_empty() => {
                // The first entry shares the line of the dash; the others line up under it.
                let (first_key, first_value) = &entries[0];
                write_entry(out, first_key, first_value, indent + 2);
                write_map(out, &entries[1..], indent + 2);
            }
            Node::Seq(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            other => {
                write_inline(out, other, indent + 2);
                out.push('\n');
            }
        }
    }
}

/// Writes a scalar or an empty collection after a `key: ` or `- `, without the newline.
/// `indent` is the column block-scalar content starts at.
fn write_inline(out: &mut String, node: &Node, indent: usize) {
    match node {
        Node::Str(text) => write_string(out, text, indent),
        Node::Int(value) => {
            let _ = write!(out, "{value}");
        }
        Node::Float(value) => write_float(out, *value),
        Node::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Node::Seq(_) => out.push_str("[]"),
        Node::Map(_) => out.push_str("{}"),
    }
}

fn write_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str(".nan");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { ".inf" } else { "-.inf" });
    } else {
        let text = format!("{value}");
        out.push_str(&text);
        // `1` would read back as an integer; the type of a number is part of its meaning.
        if !text.contains(['.', 'e', 'E']) {
            out.push_str(".0");
        }
    }
}

/// Writes a string scalar: a literal block for multi-line text, plain when safe, else quoted.
fn write_string(out: &mut String, text: &str, indent: usize) {
    if is_literal_block_safe(text) {
        write_literal_block(out, text, indent);
    } else if is_plain_safe(text) {
        out.push_str(text);
    } else {
        // A JSON string literal is a valid YAML double-quoted scalar with the same value.
        out.push_str(&serde_json::Value::String(text.to_owned()).to_string());
    }
}

/// A literal block keeps multi-line text (a scenario file, a script) readable in the output.
/// It cannot carry control characters or lines that start with whitespace ambiguity resolved
/// only by an indentation indicator, so those fall back to a quoted string.
fn is_literal_block_safe(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with([' ', '\t', '\n'])
        && !text
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{feff}')
        && !text
            .lines()
            .any(|line| line.ends_with(' ') || line.ends_with('\t'))
}

fn write_literal_block(out: &mut String, text: &str, indent: usize) {
    let trailing_newlines = text.len() - text.trim_end_matches('\n').len();
    // The chomping indicator says how many final line breaks belong to the value.
    let header = match trailing_newlines {
        0 => "|-",
        1 => "|",
        _ => "|+",
    };
    out.push_str(header);
    let body = text.trim_end_matches('\n');
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
    }
    for _ in 1..trailing_newlines {
        out.push('\n');
    }
}

/// Whether `text` reads back as the same string when written without quotes, in both YAML 1.1
/// (docker compose's parser) and YAML 1.2.
fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    // Starting with a letter or a slash rules out numbers, indicators (`-`, `?`, `&`, `*`, `!`,
    // `|`, `>`, `%`, `@`, quotes) and YAML 1.1 base-60 integers such as `8080:8080`.
    let starts_well = first.is_ascii_alphabetic() || first == '/';
    let chars_ok = text.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | '-' | '.' | '/' | ':' | '=' | '@' | ',' | '+')
    });
    let reserved = matches!(
        text.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
    );
    // A trailing colon would start a mapping; `.inf`-like words are covered by the first char.
    starts_well && chars_ok && !reserved && !text.ends_with(':')
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> serde_json::Value {
        serde_saphyr::from_str(text).expect("the writer produced YAML that does not parse")
    }

    #[test]
    fn strings_that_look_like_other_types_are_quoted() {
        for text in [
            "on",
            "No",
            "true",
            "0.5",
            "8080:8080",
            "1e3",
            "",
            " padded",
            "-x",
            "a: b",
            "x #y",
            "~",
        ] {
            let doc = to_string(&Node::map().with("k", text));
            assert_eq!(
                parse(&doc)["k"],
                serde_json::Value::String(text.to_owned()),
                "{doc}"
            );
        }
    }

    #[test]
    fn plain_strings_stay_plain() {
        let doc = to_string(&Node::map().with("image", "grafana/tempo:2.10.8"));
        assert_eq!(doc, "image: grafana/tempo:2.10.8\n");
    }

    #[test]
    fn nested_collections_round_trip() {
        let node = Node::map()
            .with("name", "lab")
            .with(
                "items",
                vec![
                    Node::map()
                        .with("a", 1i64)
                        .with("b", Node::strings(["x", "y"])),
                    Node::Str("plain".into()),
                    Node::Seq(vec![Node::Bool(true)]),
                ],
            )
            .with("empty_map", Node::map())
            .with("empty_seq", Node::Seq(vec![]))
            .with("ratio", Node::Float(1.0));
        let doc = to_string(&node);
        let value = parse(&doc);
        assert_eq!(
            value,
            serde_json::json!({
                "name": "lab",
                "items": [{"a": 1, "b": ["x", "y"]}, "plain", [true]],
                "empty_map": {},
                "empty_seq": [],
                "ratio": 1.0
            }),
            "{doc}"
        );
    }

    #[test]
    fn multi_line_text_is_a_literal_block_with_the_same_value() {
        for text in [
            "a: 1\nb:\n  - c\n",
            "no final newline\nsecond",
            "two\n\n",
            "blank\n\nline\n",
        ] {
            let doc = to_string(&Node::map().with("outer", Node::map().with("file", text)));
            assert!(doc.contains('|'), "{doc}");
            assert_eq!(
                parse(&doc)["outer"]["file"],
                serde_json::Value::String(text.to_owned()),
                "{doc}"
            );
        }
    }

    #[test]
    fn awkward_multi_line_text_falls_back_to_quotes() {
        for text in [
            "  indented first\nline",
            "trailing space \nx",
            "tab\u{7}bell\nx",
        ] {
            let doc = to_string(&Node::map().with("file", text));
            assert_eq!(
                parse(&doc)["file"],
                serde_json::Value::String(text.to_owned()),
                "{doc}"
            );
        }
    }
}
